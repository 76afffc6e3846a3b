"""A training run's checkpoint as a model: rebuilt from its config.json, with the weights it was tested with."""

from __future__ import annotations

import os

import keras

from mnist_tf.config import Config
from mnist_tf.training import build, run_state


def load_model(model_dir: str | os.PathLike) -> tuple[keras.Model, Config, str]:
    """(the model with the run's weights, the config it was trained with, the checkpoint they came from).

    The checkpoint is `run_state.restore_model`'s: early stopping's best epoch, as training itself tests and
    exports it, else the newest one that reads (a damaged one is set aside, with one line saying so).
    """
    config, image_shape, class_names = run_state.read_config(model_dir)
    model = build.model(config, image_shape, len(class_names))
    path = run_state.restore_model(model, model_dir, config)
    return model, config, path
