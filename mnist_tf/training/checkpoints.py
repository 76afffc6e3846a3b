"""A run's checkpoints: where they live, saving and restoring them with clear errors, and the run's config.json.

Training writes `<model_dir>/config.json` (the resolved Config and the image shape) before the first step, so a
checkpoint can be rebuilt into its model (`mnist_tf.export.from_run`) without repeating the training flags.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Any

import tensorflow as tf

from mnist_tf.config import Config
from mnist_tf.errors import MnistTfError, first_line
from mnist_tf.files import write_json_atomic

CONFIG_FILE = "config.json"
DIRECTORY = "checkpoints"
MAX_TO_KEEP = 3
# Flags that make a different model whatever the architecture (its registry entry adds the ones that shape its
# weights): a checkpoint of one cannot be resumed as the other.
ARCHITECTURE = ("model", "layers", "activation")
# Flags that say where things are or what is logged: changing them on resume is not worth a mention.
_NOT_TRAINING = frozenset(
    {"model_dir", "export_dir", "data_dir", "source", "tfds_data_dir", "log_every_steps", "histograms", "profile_steps"}
)


def directory(model_dir: str | os.PathLike) -> Path:
    return Path(model_dir) / DIRECTORY


def best_directory(model_dir: str | os.PathLike) -> Path:
    """Where early stopping keeps the weights of the run's best epoch (one checkpoint)."""
    return directory(model_dir) / "best"


def latest(model_dir: str | os.PathLike) -> str | None:
    """The newest checkpoint of a run, or None."""
    return tf.train.latest_checkpoint(os.fspath(directory(model_dir)))


def manager(checkpoint: tf.train.Checkpoint, model_dir: Path) -> tf.train.CheckpointManager:
    try:
        model_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MnistTfError(f"cannot create --model_dir {model_dir}: {e.strerror}") from None
    return tf.train.CheckpointManager(checkpoint, os.fspath(directory(model_dir)), max_to_keep=MAX_TO_KEEP)


def save(manager: tf.train.CheckpointManager, step: int) -> str:
    """Saves checkpoint number `step`. TF writes it beside the others and only then points `checkpoint` at it, so a
    failed write (disk full, read-only) leaves the earlier checkpoints as they were: it is reported in one line."""
    try:
        return manager.save(checkpoint_number=step)
    except (OSError, tf.errors.OpError) as e:
        for partial in Path(manager.directory).glob(f"ckpt-{step}_temp*"):  # TF's staging folder for this save
            shutil.rmtree(partial, ignore_errors=True)
        raise MnistTfError(
            f"could not save a checkpoint in {manager.directory} ({first_line(e)}); the earlier checkpoints are intact"
        ) from None


def restore(checkpoint: tf.train.Checkpoint, path: str) -> None:
    """Restores `path` into `checkpoint`'s objects, all of which it must hold; a mismatch is one clear line."""
    try:
        checkpoint.restore(path).expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError) as e:
        problem = f"does not fit this run ({first_line(e)})"
    except (tf.errors.OpError, OSError, IndexError) as e:  # a damaged file: TF's reader raises all three
        problem = f"cannot be read ({first_line(e)})"
    else:
        return
    raise MnistTfError(f"{path} {problem}; pass --fresh to start over in that --model_dir, or use another one")


def changes(model_dir: str | os.PathLike, config: Config, image_shape: tuple[int, ...]) -> list[str]:
    """How `config` differs from the run whose checkpoints are in `model_dir`, e.g. ["epochs 4 -> 6"].

    Raises MnistTfError if it is another model (architecture or image shape): its checkpoints cannot continue here.
    Nothing to compare (a run from before config.json existed) is no change.
    """
    if not (Path(model_dir) / CONFIG_FILE).exists():
        return []
    previous, previous_shape = read_config(model_dir)
    other = [
        f"{name} {getattr(previous, name)}, not {getattr(config, name)}"
        for name in (*ARCHITECTURE, *config.architecture.shape_fields)
        if getattr(previous, name) != getattr(config, name)
    ]
    if tuple(previous_shape) != tuple(image_shape):
        other.append(f"images {'x'.join(map(str, previous_shape))}, not {'x'.join(map(str, image_shape))}")
    if other:
        raise MnistTfError(
            f"--model_dir={model_dir} holds checkpoints of another model ({', '.join(other)}); pass --fresh to "
            "start over there, or use another --model_dir"
        )
    return [
        f"{field.name} {getattr(previous, field.name)} -> {getattr(config, field.name)}"
        for field in dataclasses.fields(Config)
        if field.name not in _NOT_TRAINING and getattr(previous, field.name) != getattr(config, field.name)
    ]


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
