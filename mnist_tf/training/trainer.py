"""The training step, and `Trainer`: the compiled train and eval steps of one model, optimizer and strategy.

Read `Trainer.train_step` first: the forward pass under the tape, the loss of the global batch, the gradients, the
update and the metrics, in the order PyTorch's and Flax's MNIST examples write them. The rest of the class runs it
(`train`: several steps per call, under the strategy), evaluates, and says what a checkpoint holds.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from mnist_tf import distribute
from mnist_tf.config import Config
from mnist_tf.data.sources import NUM_CLASSES, Split
from mnist_tf.nn import losses
from mnist_tf.reporting.evaluation import Report
from mnist_tf.training import build
from mnist_tf.training.extras import PLAIN, Extras


def _xla_when_asked(method: Callable[..., Any]) -> Callable[..., Any]:
    """Compiles a Trainer method with XLA when the Trainer's `jit_compile` is on (once per Trainer and method)."""

    @functools.wraps(method)
    def call(self: Trainer, *args: Any) -> Any:
        if not self.jit_compile:
            return method(self, *args)
        if method.__name__ not in self._compiled:
            self._compiled[method.__name__] = tf.function(functools.partial(method, self), jit_compile=True)
        return self._compiled[method.__name__](*args)

    return call


class Trainer:
    """The compiled train and eval steps of one model, optimizer and strategy.

    The loss of each replica is its examples' summed loss divided by the *global* batch size, so the gradients the
    strategy sums across replicas are those of the global mean. Metrics are Keras metrics created under the
    strategy's scope and updated inside each replica. `step` counts the training steps taken (skipped ones
    included): with the model, the optimizer and the train metrics it is what a checkpoint must hold for a resumed
    run to continue exactly where it stopped.
    """

    def __init__(
        self,
        model: keras.Model,
        optimizer: keras.optimizers.Optimizer,
        strategy: tf.distribute.Strategy,
        *,
        global_batch_size: int,
        extras: Extras = PLAIN,
        loss: str = "cross_entropy",
        jit_compile: bool = False,
        nan_policy: str = "stop",
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.strategy = strategy
        self.global_batch_size = global_batch_size
        self.extras = extras  # what the run adds to the batch and to the loss (extras.py)
        self.loss = losses.LOSSES[loss]  # what validation and test report
        self.jit_compile = jit_compile
        self._compiled: dict[str, Callable[..., Any]] = {}
        self.skip_non_finite = nan_policy == "skip"
        with strategy.scope():
            # Optimizer slots must exist before the first distributed step: created lazily inside a replica
            # context they break Keras 3 under MirroredStrategy.
            optimizer.build(model.trainable_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            self.skipped_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="skipped_steps")
            self.train_loss = keras.metrics.Mean("loss")
            self.train_accuracy = keras.metrics.SparseCategoricalAccuracy("accuracy")
            self.eval_loss = keras.metrics.Mean("loss")
            self.eval_confusion = ConfusionMatrix(model.output_shape[-1])

    # The training step: what `train` runs on every replica, for each global batch.

    def train_step(self, images: tf.Tensor, labels: tf.Tensor) -> None:
        """One optimizer step on this replica's share of a global batch."""
        per_example_loss, logits, gradients = self.loss_and_gradients(images, labels)
        self.apply(gradients, labels, per_example_loss, logits)

    @_xla_when_asked  # the forward and backward pass only: the optimizer update may synchronize replicas
    def loss_and_gradients(self, images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, list[tf.Tensor]]:
        """The batch through the model under the tape; the global batch's mean loss and its gradients."""
        if self.extras.inputs:  # augmentation, and the not-digit images after the digits
            images = self.extras.inputs(images, self.step)
        with tf.GradientTape() as tape:
            outputs = tf.cast(self.model(images, training=True), tf.float32)
            logits = outputs[: tf.shape(labels)[0]]
            per_example_loss = self.extras.loss(labels, logits)
            # Over the *global* batch size: the replicas' gradients, summed, are those of the global mean.
            loss = tf.nn.compute_average_loss(per_example_loss, global_batch_size=self.global_batch_size)
            for term in self.extras.terms.values():  # outlier exposure, digit odds, distillation, weight decay
                loss += term(images, outputs, labels)
            loss = self.optimizer.scale_loss(loss)  # float16: scaled up so small gradients survive (and back down)
        return per_example_loss, logits, tape.gradient(loss, self.model.trainable_variables)

    def apply(
        self, gradients: list[tf.Tensor], labels: tf.Tensor, per_example_loss: tf.Tensor, logits: tf.Tensor
    ) -> None:
        """The optimizer's update (the strategy sums the replicas' gradients), then the train metrics."""
        with tf.name_scope("optimizer"):
            self.optimizer.apply_gradients(zip(gradients, self.model.trainable_variables, strict=True))
        with tf.name_scope("metrics"):
            self.train_loss.update_state(per_example_loss)
            self.train_accuracy.update_state(labels, logits)

    # The variant of --nan_policy=skip: the same step, unless a replica's loss or gradients are not finite.

    def skipping_train_step(self, images: Any, labels: Any) -> None:
        """`train_step` on every replica, or nothing but a count in `skipped_steps` when any replica's loss or
        gradients are NaN or infinite (under float16 the loss scaler already skips overflowing gradients, so only
        the loss is checked there).

        Cross-replica: the decision is taken on the sum over replicas, so that every replica takes the same branch
        (a branch that applies gradients synchronizes replicas, which cannot happen inside a replica's `tf.cond`).
        """
        per_example_loss, logits, gradients = self.strategy.run(self.loss_and_gradients, args=(images, labels))
        checked = self.strategy.run(self._non_finite, args=(per_example_loss, gradients))

        def apply() -> None:
            self.strategy.run(self.apply, args=(gradients, labels, per_example_loss, logits))

        def skip() -> None:
            self.skipped_steps.assign_add(1)

        tf.cond(self.strategy.reduce(tf.distribute.ReduceOp.SUM, checked, axis=None) > 0, skip, apply)

    def _non_finite(self, per_example_loss: tf.Tensor, gradients: list[tf.Tensor]) -> tf.Tensor:
        checked = [per_example_loss]
        if not isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
            checked += gradients
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(t)) for t in checked])
        return tf.cast(tf.logical_not(finite), tf.float32)

    def train(self, iterator: Any, steps: int = 1) -> None:
        """`steps` optimizer steps on the next global batches of a distributed iterator, in one call.

        Several steps per call (`--steps_per_loop`) keep the loop on the device: TPUs need it to stay busy.
        """
        self._train_steps(iterator, tf.constant(steps, tf.int32))  # a tensor: no retracing per count

    @tf.function
    def _train_steps(self, iterator: Any, steps: tf.Tensor) -> None:
        for _ in tf.range(steps):
            if self.skip_non_finite:
                self.skipping_train_step(*next(iterator))
            else:
                self.strategy.run(self.train_step, args=next(iterator))
            self.step.assign_add(1)

    @classmethod
    def from_config(
        cls,
        config: Config,
        strategy: tf.distribute.Strategy,
        train: Split,
        total_steps: int,
        classes: int = NUM_CLASSES,
        start: Mapping[str, np.ndarray] | None = None,
    ) -> Trainer:
        """The steps of the model (with `classes` logits) and optimizer a resolved `config` asks for, trained on
        `train`: what `run` trains; `start` is the weights a fine-tuning run starts from (`Extras.from_config`)."""
        model, optimizer = build.model_and_optimizer(config, strategy, train.images.shape[1:], total_steps, classes)
        return cls(
            model,
            optimizer,
            strategy,
            global_batch_size=config.batch_size,
            extras=Extras.from_config(config, strategy, train, model, start),
            loss=config.loss,
            jit_compile=distribute.use_jit(config.jit_compile),
            nan_policy=config.nan_policy,
        )

    def checkpoint(self, **extra: Any) -> tf.train.Checkpoint:
        """Everything a resumed run needs: weights, optimizer state, steps taken, this epoch's train metrics, and
        the `extra` objects the run adds (early stopping's state).

        Dropout's mask counters are model weights and the data pipeline restarts at `step`, so nothing random is
        left out.
        """
        return tf.train.Checkpoint(
            model=self.model,
            optimizer=self.optimizer,
            step=self.step,
            skipped_steps=self.skipped_steps,
            train_metrics=[*self.train_loss.variables, *self.train_accuracy.variables],
            **extra,
        )

    def inputs_as_trained(self, images: tf.Tensor, step: int) -> tf.Tensor:
        """A global batch as the model trains on it at `step`: distorted when the run augments."""
        distort = self.extras.augment
        return distort(images, step=tf.constant(step, tf.int64)) if distort else images

    def _replica_eval_step(self, images: tf.Tensor, labels: tf.Tensor, weights: tf.Tensor) -> None:
        logits = tf.cast(self.model(images, training=False), tf.float32)
        per_example_loss = self.loss(labels, logits)
        self.eval_loss.update_state(per_example_loss, sample_weight=weights)
        self.eval_confusion.update_state(labels, logits, sample_weight=weights)

    @tf.function
    def _eval_step(self, batch: Any) -> None:
        self.strategy.run(self._replica_eval_step, args=batch)

    def evaluate(self, dataset: tf.data.Dataset) -> Report:
        """Loss, confusion matrix and so accuracy over the examples of a `pipeline.eval_dataset` (padding
        excluded); no mistakes listed."""
        for metric in (self.eval_loss, self.eval_confusion):
            metric.reset_state()
        # One call per batch: faster on CPU than looping over the dataset inside one tf.function.
        for batch in distribute.distribute_dataset(self.strategy, dataset):
            self._eval_step(batch)
        confusion = np.rint(self.eval_confusion.result()).astype(np.int64)
        return Report(confusion, float(self.eval_loss.result()), mistakes=())

    def train_metrics(self) -> tuple[float, float]:
        """Mean loss and accuracy since the last reset."""
        return float(self.train_loss.result()), float(self.train_accuracy.result())

    def train_totals(self) -> np.ndarray:
        """[summed loss, correct predictions, examples] since the last reset.

        The difference of two readings gives the loss and accuracy of just the steps in between, at no cost to
        the train step (`EpochLoop` logs `step_loss` and `step_accuracy` this way).
        """
        return np.array(
            [float(v.numpy()) for v in (self.train_loss.total, self.train_accuracy.total, self.train_loss.count)]
        )

    def gradients(self, images: tf.Tensor, labels: tf.Tensor) -> dict[str, np.ndarray]:
        """Gradients of the mean loss on one batch with dropout off, by variable path: for histograms.

        Outside the train step, so it costs nothing when unused, and without dropout, so it draws no random
        numbers and training stays bit-identical with or without it.
        """
        gradients = self._probe_gradients(images, labels)
        first_replica = [self.strategy.experimental_local_results(g)[0] for g in gradients]
        return {v.path: g.numpy() for v, g in zip(self.model.trainable_variables, first_replica, strict=True)}

    @tf.function
    def _probe_gradients(self, images: tf.Tensor, labels: tf.Tensor) -> list[Any]:
        def replica_gradients(images: tf.Tensor, labels: tf.Tensor) -> list[tf.Tensor]:
            with tf.GradientTape() as tape:
                logits = tf.cast(self.model(images, training=False), tf.float32)
                loss = tf.reduce_mean(self.loss(labels, logits))
            return tape.gradient(loss, self.model.trainable_variables)

        return self.strategy.run(replica_gradients, args=(images, labels))

    def reset_train_metrics(self) -> None:
        self.train_loss.reset_state()
        self.train_accuracy.reset_state()


class ConfusionMatrix(keras.metrics.Metric):
    """Counts of (true label, predicted class) pairs, summed across replicas; float32 so TPUs can hold it."""

    def __init__(self, classes: int, name: str = "confusion_matrix") -> None:
        super().__init__(name=name)
        self.classes = classes
        self.matrix = self.add_variable(shape=(classes, classes), initializer="zeros", name="matrix")

    def update_state(self, labels: tf.Tensor, logits: tf.Tensor, sample_weight: tf.Tensor | None = None) -> None:
        predicted = tf.argmax(logits, axis=-1)
        self.matrix.assign_add(
            tf.math.confusion_matrix(labels, predicted, self.classes, weights=sample_weight, dtype=tf.float32)
        )

    def result(self) -> tf.Tensor:
        return tf.convert_to_tensor(self.matrix)

    def reset_state(self) -> None:
        self.matrix.assign(tf.zeros_like(self.matrix))
