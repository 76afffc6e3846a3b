"""A run's checkpoints: where they live, restoring them with clear errors, and turning one back into its model.

Training writes `<model_dir>/config.json` (the resolved Config and the image shape) before the first step, so a
checkpoint can be rebuilt into its model by `scripts/export.py` and `scripts/evaluate.py` without repeating the
training flags.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from mnist_tf import distribute, models
from mnist_tf.config import Config
from mnist_tf.errors import MnistTfError, first_line
from mnist_tf.files import write_json_atomic

CONFIG_FILE = "config.json"
MAX_TO_KEEP = 3


def directory(model_dir: str | os.PathLike) -> Path:
    return Path(model_dir) / "checkpoints"


def latest(model_dir: str | os.PathLike) -> str | None:
    """The newest checkpoint of a run, or None."""
    return tf.train.latest_checkpoint(os.fspath(directory(model_dir)))


def manager(checkpoint: tf.train.Checkpoint, model_dir: Path) -> tf.train.CheckpointManager:
    try:
        model_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MnistTfError(f"cannot create --model_dir {model_dir}: {e.strerror}") from None
    return tf.train.CheckpointManager(checkpoint, os.fspath(directory(model_dir)), max_to_keep=MAX_TO_KEEP)


def restore(checkpoint: tf.train.Checkpoint, path: str) -> None:
    """Restores `path` into `checkpoint`'s objects, all of which it must hold; a mismatch is one clear line."""
    try:
        checkpoint.restore(path).expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as e:
        raise MnistTfError(
            f"{path} does not fit this model ({first_line(e)}); use a new --model_dir to start over"
        ) from None


def write_config(model_dir: Path, config: Config, image_shape: tuple[int, ...]) -> None:
    write_json_atomic(model_dir / CONFIG_FILE, {"config": dataclasses.asdict(config), "image_shape": image_shape})


def read_config(model_dir: str | os.PathLike) -> tuple[Config, tuple[int, ...]]:
    """The resolved Config and image shape a run was trained with."""
    path = Path(model_dir) / CONFIG_FILE
    try:
        record = json.loads(path.read_text())
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in record["config"].items()}
        return Config(**values).resolve(), tuple(record["image_shape"])
    except FileNotFoundError:
        raise MnistTfError(f"{path} not found: --model_dir must be a training run's directory") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise MnistTfError(f"{path} is not a readable mnist_tf run configuration ({first_line(e)})") from None


def load_model(model_dir: str | os.PathLike) -> tuple[keras.Model, Config, str]:
    """(the model with its latest checkpoint's weights, the config it was trained with, the checkpoint path)."""
    config, image_shape = read_config(model_dir)
    path = latest(model_dir)
    if path is None:
        raise MnistTfError(f"no checkpoint in {directory(model_dir)}: the run has not finished an epoch")
    model = models.build(config, image_shape, distribute.dtype_policy(config.dtype))
    restore(tf.train.Checkpoint(model=model), path)
    return model, config, path
