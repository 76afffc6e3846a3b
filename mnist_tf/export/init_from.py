"""`--init_from`: a run that starts from trained weights instead of random ones (fine-tuning, transfer learning).

The weights come from a SavedModel export (a version folder, or a base folder: its highest version), a training
run's folder (the checkpoint it tested and exported), or one checkpoint of a run (`.../checkpoints/ckpt-N`).
Every variable is matched by its layer path (`conv1/kernel`): the same architecture loads them all. A model whose
logits have another number of classes keeps the body and gets a freshly initialized head. Any other difference is
another architecture, refused in one line.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from mnist_tf.config import Config
from mnist_tf.errors import MnistTfError, first_line
from mnist_tf.export import from_run, saved_model
from mnist_tf.training import build, run_state

HEAD = "logits"  # the layer a new number of classes replaces


def load(model: keras.Model, path: str | os.PathLike) -> str:
    """Copies the weights at `path` into `model`; returns the line that says what was loaded."""
    weights, where = _read(Path(path))
    shapes = {v.path: tuple(v.shape) for v in model.variables}
    new_head = any(
        name.startswith(f"{HEAD}/") and name in weights and weights[name].shape != shape
        for name, shape in shapes.items()
    )
    loaded = 0
    for variable in model.variables:
        if new_head and variable.path.startswith(f"{HEAD}/"):
            continue
        source = weights.get(variable.path)
        if source is None and not variable.trainable:
            continue  # a counter of ours (dropout's calls), absent from older exports: nothing learned
        if source is None or source.shape != tuple(variable.shape):
            found = "absent" if source is None else "x".join(map(str, source.shape))
            raise MnistTfError(
                f"--init_from={path}: another architecture ({variable.path} is "
                f"{'x'.join(map(str, variable.shape)) or 'a scalar'} here, {found} there); pass the same --model, "
                "--filters, --kernel_sizes and --hidden_units, on images of the same size"
            )
        variable.assign(source)
        loaded += int(np.prod(variable.shape)) if variable.trainable else 0
    head = f"; a new {HEAD} layer for {model.output_shape[-1]} classes" if new_head else ""
    return f"initialized from {where}: {loaded:,} trained weights{head}"


def _read(path: Path) -> tuple[dict[str, np.ndarray], str]:
    """{variable path: value} of the weights at `path`, and what they are, for the line."""
    if not path.exists() and not Path(f"{path}.index").is_file():
        raise MnistTfError(f"--init_from={path}: no such file or folder")
    if Path(f"{path}.index").is_file():
        return _checkpoint_weights(path), f"checkpoint {path}"
    if (path / run_state.CONFIG_FILE).is_file():
        model, _, checkpoint = from_run.load_model(path)
        return {v.path: v.numpy() for v in model.variables}, f"run {path} ({checkpoint})"
    version_dir, loaded = saved_model.load(path)
    return _saved_model_weights(version_dir, loaded.variables), f"SavedModel {version_dir}"


def _saved_model_weights(version_dir: Path, variables: list[tf.Variable]) -> dict[str, np.ndarray]:
    """{layer path: value} of an export's variables. Keras names them by path (`conv1/kernel:0`); older Keras
    (3.10) by name alone (`kernel:0`), and then they are paired, in order, with the model its metadata describes."""
    names = [v.name.removesuffix(":0") for v in variables]
    if all("/" in name for name in names):
        return {name: v.numpy() for name, v in zip(names, variables, strict=True)}
    metadata = saved_model.read_metadata(version_dir)
    try:
        config = Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in metadata["config"].items()})
        model = build.model(config.resolve(), metadata["image_shape"], len(metadata["class_names"]))
    except (KeyError, TypeError, MnistTfError) as e:
        raise MnistTfError(f"--init_from={version_dir}: its metadata does not say what model it is ({e})") from None
    if [tuple(v.shape) for v in model.variables] != [tuple(v.shape) for v in variables]:
        raise MnistTfError(f"--init_from={version_dir}: its variables are not those of the model it describes")
    return {target.path: source.numpy() for target, source in zip(model.variables, variables, strict=True)}


def _checkpoint_weights(prefix: Path) -> dict[str, np.ndarray]:
    """One checkpoint's model weights, in the model its run's config.json describes (in a parent folder)."""
    run_dir = next((p for p in prefix.parents if (p / run_state.CONFIG_FILE).is_file()), None)
    if run_dir is None:
        raise MnistTfError(f"--init_from={prefix}: a checkpoint outside a run folder (no config.json above it)")
    config, image_shape, class_names = run_state.read_config(run_dir)
    model = build.model(config, image_shape, len(class_names))
    try:
        tf.train.Checkpoint(model=model).restore(os.fspath(prefix)).expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as e:
        raise MnistTfError(f"--init_from={prefix}: cannot read the checkpoint ({first_line(e)})") from None
    return {v.path: v.numpy() for v in model.variables}
