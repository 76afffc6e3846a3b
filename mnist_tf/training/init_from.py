"""`--init_from`: a run that starts from trained weights instead of random ones (fine-tuning, transfer learning).

The run opens the trained model with `export.classifier.load` (a SavedModel, a run's folder or one checkpoint of a
run) and `load` copies its weights in. Every variable is matched by its layer path (`conv1/kernel`): the same
architecture loads them all. A model whose logits have another number of classes keeps the body and gets a freshly
initialized head. Any other difference is another architecture, refused in one line. A run on a small data set
fine-tunes (mnist_tf/fine_tuning.py).
"""

from __future__ import annotations

from collections.abc import Mapping

import keras
import numpy as np

from mnist_tf.errors import MnistTfError

HEAD = "logits"  # the layer a new number of classes replaces


def load(model: keras.Model, weights: Mapping[str, np.ndarray], path: str, where: str) -> str:
    """Copies `weights` ({layer path: value}, those of `--init_from=path`, which is `where`) into `model`; returns
    the line that says what was loaded."""
    new_head = check(model, weights, path)
    loaded = 0
    for variable in model.variables:
        source = weights.get(variable.path)
        if (new_head and variable.path.startswith(f"{HEAD}/")) or source is None:
            continue  # the new head keeps its initialization; a counter of ours (check) has nothing learned
        variable.assign(source)
        loaded += int(np.prod(variable.shape)) if variable.trainable else 0
    head = f"; a new {HEAD} layer for {model.output_shape[-1]} classes" if new_head else ""
    return f"initialized from {where}: {loaded:,} trained weights{head}"


def check(model: keras.Model, weights: Mapping[str, np.ndarray], path: str) -> bool:
    """Whether `weights` fit `model` with a new head (True) or as they are (False); another architecture is
    refused in one line."""
    new_head = any(
        v.path.startswith(f"{HEAD}/") and v.path in weights and weights[v.path].shape != tuple(v.shape)
        for v in model.variables
    )
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
    return new_head
