"""What a training run writes for TensorBoard, and where: `tensorboard --logdir <model_dir>` (or a parent of several
runs) then shows the run without any code.

    <model_dir>/             hparams of the run (the HParams dashboard compares runs under one logdir)
    <model_dir>/train/       epoch_* and step_* scalars, inputs, first_layer_weights, histograms, the step's graph,
                             plugins/profile/ (--profile_steps)
    <model_dir>/validation/  epoch_loss, epoch_accuracy, confusion_matrix
    <model_dir>/test/        epoch_loss, epoch_accuracy, confusion_matrix, mistakes (after the last epoch)

Train, validation and test use the same tags in their own run directories, so their curves overlay. The x axis
is always the global training step. Under multi-worker only the chief writes: `Summaries(enabled=False)` makes
every method a no-op.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hparams_api

from mnist_tf.config import HPARAMS
from mnist_tf.reporting import figures

# Shown under each chart; keyed by tag.
DESCRIPTIONS = {
    "epoch_loss": "Mean loss (--loss: cross-entropy by default) over the epoch (train, while it trained) or over the "
    "split (validation, test).",
    "epoch_accuracy": "Share of images classified right, over the epoch or the split.",
    "epoch_learning_rate": "Learning rate at the end of the epoch.",
    "epoch_images_per_second": "Training throughput of the epoch, without validation.",
    "epoch_seconds": "Training time of the epoch, without validation.",
    "step_loss": "Mean loss of the training steps since the previous point (--log_every_steps).",
    "step_accuracy": "Training accuracy of the steps since the previous point (--log_every_steps).",
    "step_learning_rate": "Learning rate at this step.",
    "step_images_per_second": "Training throughput since the previous point, including logging and first-step tracing.",
}
SAMPLE_IMAGES = 64  # input samples shown from the first batch
MISTAKE_IMAGES = 36  # most confident test mistakes shown


def _when_enabled(method: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(method)
    def wrapper(self: Summaries, *args: Any, **kwargs: Any) -> None:
        if self.enabled:
            method(self, *args, **kwargs)

    return wrapper


class Summaries:
    RUNS = ("train", "validation", "test")  # the run directories under model_dir

    def __init__(self, model_dir: str | os.PathLike, enabled: bool = True) -> None:
        self.model_dir = os.fspath(model_dir)
        self.enabled = enabled
        self._writers: dict[str, tf.summary.SummaryWriter] = {}
        self._graph_written = False

    def _writer(self, run: str) -> tf.summary.SummaryWriter:
        if run not in self._writers:
            self._writers[run] = tf.summary.create_file_writer(os.path.join(self.model_dir, run))
        return self._writers[run]

    @_when_enabled
    def hparams(self, config: Any) -> None:
        """The run's hyperparameters; TensorBoard pairs them with each run's last validation and test scalars."""
        values = {name: getattr(config, name) for name in HPARAMS}
        values = {k: ",".join(map(str, v)) if isinstance(v, tuple) else v for k, v in values.items()}
        with self._writer("").as_default(step=0):
            hparams_api.hparams(values)

    @_when_enabled
    def scalars(self, run: str, step: int, values: Mapping[str, float]) -> None:
        with self._writer(run).as_default(step=step):
            for tag, value in values.items():
                tf.summary.scalar(tag, value, description=DESCRIPTIONS.get(tag))

    @_when_enabled
    def inputs(self, step: int, images: np.ndarray, labels: np.ndarray) -> None:
        """The first batch as the model trains on it (after the pipeline and --augment), captioned with labels."""
        images, labels = images[:SAMPLE_IMAGES], labels[:SAMPLE_IMAGES]
        low, high = float(images.min()), float(images.max())
        picture = figures.grid((images - low) / max(high - low, 1e-12), [str(y) for y in labels], columns=8, scale=2)
        description = (
            f"The first {len(images)} training images of the run as the model trains on them (values {low:.3g} to "
            f"{high:.3g} shown black to white), captioned with their labels."
        )
        self._image("train", step, "inputs", picture, description)

    @_when_enabled
    def first_layer(self, step: int, kernel: np.ndarray, image_shape: tuple[int, int, int]) -> None:
        """The first layer's learned weights: conv filters, or each hidden unit's weights over the image."""
        tiles = figures.weight_tiles(kernel, image_shape)
        scale = max(1, 48 // tiles.shape[1])  # 5x5 filters get big enough to see; 28x28 units stay as they are
        description = (
            f"{len(tiles)} units of the first layer (kernel {list(kernel.shape)}); gray is 0, white positive, "
            "black negative, each tile scaled by its own largest weight."
        )
        self._image("train", step, "first_layer_weights", figures.grid(tiles, scale=scale), description)

    @_when_enabled
    def histograms(self, step: int, kind: str, values: Mapping[str, tf.Tensor]) -> None:
        """One histogram per variable, tagged `<kind>/<variable path>` (kind: weights or gradients)."""
        with self._writer("train").as_default(step=step):
            for name, value in values.items():
                tf.summary.histogram(f"{kind}/{name}", value)

    @_when_enabled
    def confusion(self, run: str, step: int, confusion: np.ndarray) -> None:
        description = "Rows are true labels, columns predictions; blue cells are right answers, red mistakes."
        self._image(run, step, "confusion_matrix", figures.confusion_matrix(confusion), description)

    @_when_enabled
    def reliability(self, run: str, step: int, table: dict[str, list]) -> None:
        description = (
            "Accuracy against confidence per bin of the calibrated top probability: bars on the diagonal mean "
            "probabilities that say what they mean; the grey bars are how many images each bin holds."
        )
        self._image(run, step, "reliability_diagram", figures.reliability_diagram(table), description)

    @_when_enabled
    def mistakes(self, step: int, images: np.ndarray, labels: Sequence[int], predicted: Sequence[int]) -> None:
        """Misclassified test digits (uint8 pixels), most confident mistake first, captioned `true as predicted`."""
        picture = figures.mistakes(images, labels, predicted)
        description = f"Wrong test predictions, most confident first ({len(labels)} shown): true label as prediction."
        self._image("test", step, "mistakes", picture, description)

    @contextlib.contextmanager
    def graph(self, step: int) -> Iterator[None]:
        """Records the graph of the TensorFlow functions run inside (the first time only) for the Graphs tab."""
        if not self.enabled or self._graph_written:
            yield
            return
        tf.summary.trace_on(graph=True, profiler=False)
        try:
            yield
        finally:
            with self._writer("train").as_default(step=step):
                tf.summary.trace_export("train_step", step=step)
            self._graph_written = True

    def _image(self, run: str, step: int, tag: str, picture: np.ndarray, description: str) -> None:
        with self._writer(run).as_default(step=step):
            tf.summary.image(tag, picture[np.newaxis], description=description)

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()


class StepProfiler:
    """Captures a TF profiler trace of global steps `first..last` (1-based) for TensorBoard's Profile tab.

    Training runs several steps per call with --steps_per_loop, so the trace covers whole calls: from the one
    that holds step `first` to the one that holds step `last`.
    """

    def __init__(self, logdir: str | os.PathLike, steps: tuple[int, ...], enabled: bool = True) -> None:
        self._logdir = os.fspath(logdir)
        self._first, self._last = steps if steps and enabled else (0, -1)
        self._running = False

    def before(self, first_step: int, last_step: int) -> None:
        """Before a call that runs steps first_step..last_step."""
        if not self._running and first_step <= self._last and last_step >= self._first:
            tf.profiler.experimental.start(self._logdir)
            self._running = True

    def after(self, last_step: int) -> None:
        if self._running and last_step >= self._last:
            self.stop()

    def stop(self) -> None:
        if self._running:
            tf.profiler.experimental.stop()
            self._running = False
