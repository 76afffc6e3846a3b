"""A training run's checkpoint as a model: rebuilt from its config.json, with the weights it was tested with."""

from __future__ import annotations

import os

import keras
import tensorflow as tf

from mnist_tf.config import Config
from mnist_tf.errors import MnistTfError
from mnist_tf.training import build, checkpoints


def load_model(model_dir: str | os.PathLike) -> tuple[keras.Model, Config, str]:
    """(the model with its latest checkpoint's weights, the config it was trained with, the checkpoint path).

    With early stopping, the weights are its best epoch's, as training itself tests and exports them.
    """
    config, image_shape = checkpoints.read_config(model_dir)
    path = checkpoints.latest(model_dir)
    if config.early_stopping_patience:
        path = tf.train.latest_checkpoint(os.fspath(checkpoints.best_directory(model_dir))) or path
    if path is None:
        raise MnistTfError(f"no checkpoint in {checkpoints.directory(model_dir)}: the run has not saved one yet")
    model = build.model(config, image_shape)
    checkpoints.restore(tf.train.Checkpoint(model=model), path)
    return model, config, path
