"""The contenders of the race: each trains the same model on the same batches, as its users would write it.

- `ours`: the `Trainer` and input pipeline that `scripts/train.py` runs, with our layers (the default);
- `ours_keras_layers`: the same loop with Keras built-in layers;
- `keras_fit`: the Keras-layer model with `model.compile` + `model.fit` (verbose 0), fed by the same pipeline;
- `pytorch`: the same model, optimizer, schedule and batches in an eager PyTorch loop (`pytorch.py`), when torch
  is installed.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from typing import Protocol

import keras
import tensorflow as tf

from mnist_tf.config import Config
from mnist_tf.data import pipeline
from mnist_tf.data.sources import Splits
from mnist_tf.training import build
from mnist_tf.training.trainer import Trainer


class Contender(Protocol):
    def train(self, steps: int) -> float:
        """Trains `steps` more steps; returns the seconds they took."""

    def evaluate(self) -> tuple[float, float]:
        """(test accuracy, seconds it took)."""


class LoopContender:
    """`Trainer`, as `mnist_tf.run` drives it: one iterator over the whole run, `steps_per_loop` steps per call."""

    def __init__(self, config: Config, splits: Splits, total_steps: int) -> None:
        self.config = config
        strategy = tf.distribute.get_strategy()
        self.trainer = Trainer.from_config(config, strategy, splits.train, total_steps)
        self.iterator = iter(pipeline.train_dataset(splits.train, config.batch_size, config.seed))
        self.test = pipeline.eval_dataset(splits.test, config.eval_batch_size)

    def train(self, steps: int) -> float:
        start = time.perf_counter()
        for first in range(0, steps, self.config.steps_per_loop):
            self.trainer.train(self.iterator, min(self.config.steps_per_loop, steps - first))
        self.trainer.train_metrics()  # reading a metric waits for the last step
        return time.perf_counter() - start

    def evaluate(self) -> tuple[float, float]:
        start = time.perf_counter()
        accuracy = self.trainer.evaluate(self.test).accuracy
        return accuracy, time.perf_counter() - start


class FitContender:
    """What a Keras user writes: compile, then fit. Each segment is one `fit` call that continues the data where
    the last one stopped; a callback times its steps, so `fit`'s own set-up per call is not counted against it."""

    def __init__(self, config: Config, splits: Splits, total_steps: int) -> None:
        strategy = tf.distribute.get_strategy()
        self.model, optimizer = build.model_and_optimizer(config, strategy, splits.image_shape, total_steps)
        self.model.compile(
            optimizer=optimizer,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            weighted_metrics=["accuracy"],  # weighted: the padding of the last evaluation batch has weight 0
        )
        self.config, self.train_split, self.steps_done = config, splits.train, 0
        self.test = pipeline.eval_dataset(splits.test, config.eval_batch_size)

    def train(self, steps: int) -> float:
        batches = pipeline.train_dataset(self.train_split, self.config.batch_size, self.config.seed, self.steps_done)
        timer = _StepTimer()
        self.model.fit(batches, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0, callbacks=[timer])
        self.steps_done += steps
        return timer.seconds

    def evaluate(self) -> tuple[float, float]:
        start = time.perf_counter()
        _, accuracy = self.model.evaluate(self.test, verbose=0)
        return accuracy, time.perf_counter() - start


class _StepTimer(keras.callbacks.Callback):
    """From the start of a `fit` call's first step to the end of its last."""

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if batch == 0:
            self.start = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.seconds = time.perf_counter() - self.start


def _pytorch(config: Config, splits: Splits, total_steps: int) -> Contender:
    from mnist_tf.benchmark.pytorch import PyTorchContender  # torch is imported in its contender's process only

    return PyTorchContender(config, splits, total_steps)


# name -> (--layers it builds with, its maker)
CONTENDERS: dict[str, tuple[str, Callable[..., Contender]]] = {
    "ours": ("ours", LoopContender),
    "ours_keras_layers": ("keras", LoopContender),
    "keras_fit": ("keras", FitContender),
}
TORCH_INSTALLED = importlib.util.find_spec("torch") is not None
if TORCH_INSTALLED:
    CONTENDERS["pytorch"] = ("ours", _pytorch)
