"""The custom training loop: tf.function steps under a tf.distribute strategy, checkpoints, results.

`run(config)` is the whole story of a training run; `Trainer` owns the compiled steps and metrics of one
model/optimizer/strategy, and is what tests and benchmarks drive directly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from mnist_tf import checkpoints, data, distribute, evaluation, interruption, losses, models, optimizers
from mnist_tf.config import Config
from mnist_tf.console import ConsoleReporter
from mnist_tf.early_stopping import EarlyStopping
from mnist_tf.errors import MnistTfError
from mnist_tf.export import export_saved_model, predict
from mnist_tf.files import write_json_atomic
from mnist_tf.summaries import MISTAKE_IMAGES, StepProfiler, Summaries

RESULTS_FILE = "results.json"


@dataclasses.dataclass(frozen=True)
class EpochResult:
    epoch: int  # 1-based
    train_loss: float
    train_accuracy: float
    validation_loss: float | None
    validation_accuracy: float | None
    seconds: float  # training only, without validation
    images_per_second: float
    skipped_steps: int = 0  # steps with a non-finite loss that --nan_policy=skip left out


@dataclasses.dataclass(frozen=True)
class Evaluation:
    loss: float
    accuracy: float
    confusion: np.ndarray  # int [classes, classes]: rows are true labels, columns predictions


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


class Trainer:
    """Compiled train and eval steps for one model, optimizer and strategy.

    The loss of each replica is its examples' summed loss (cross-entropy unless `loss` names another of
    `losses.LOSSES`) divided by the *global* batch size, so the gradients the strategy sums across replicas are
    those of the global mean. Metrics are Keras metrics created under the strategy's scope and updated inside
    each replica.

    `step` counts the training steps taken (skipped ones included): with the model, the optimizer and the train
    metrics it is what a checkpoint must hold for a resumed run to continue exactly where it stopped.
    """

    def __init__(
        self,
        model: keras.Model,
        optimizer: keras.optimizers.Optimizer,
        strategy: tf.distribute.Strategy,
        global_batch_size: int,
        weight_decay: float = 0.0,
        jit_compile: bool = False,
        nan_policy: str = "stop",
        loss: str = "cross_entropy",
    ) -> None:
        self.model = model
        self.loss = losses.LOSSES[loss]
        self.optimizer = optimizer
        self.strategy = strategy
        self.global_batch_size = global_batch_size
        self.weight_decay = weight_decay
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
            self.eval_accuracy = keras.metrics.SparseCategoricalAccuracy("accuracy")
            self.eval_confusion = ConfusionMatrix(model.output_shape[-1])
        # Weight decay applies to these; layers create their kernel first, so kernels[0] is the first layer's.
        self.kernels = [v for v in model.trainable_variables if len(v.shape) >= 2]
        # XLA compiles the forward/backward pass only: the optimizer update may synchronize replicas.
        self._gradients = self._loss_and_gradients
        if jit_compile:
            self._gradients = tf.function(self._loss_and_gradients, jit_compile=True)

    @classmethod
    def from_config(
        cls, config: Config, strategy: tf.distribute.Strategy, image_shape: tuple[int, ...], total_steps: int
    ) -> Trainer:
        """The steps of the model and optimizer a resolved `config` asks for: what `run` trains."""
        model, optimizer = model_and_optimizer(config, strategy, image_shape, total_steps)
        jit = distribute.use_jit(config.jit_compile)
        return cls(
            model, optimizer, strategy, config.batch_size, config.weight_decay, jit, config.nan_policy, config.loss
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

    def _loss_and_gradients(self, images: tf.Tensor, labels: tf.Tensor):
        with tf.GradientTape() as tape:
            logits = tf.cast(self.model(images, training=True), tf.float32)
            per_example_loss = self.loss(labels, logits)
            loss = tf.nn.compute_average_loss(per_example_loss, global_batch_size=self.global_batch_size)
            if self.weight_decay:
                l2 = self.weight_decay * tf.add_n([tf.nn.l2_loss(kernel) for kernel in self.kernels])
                loss += tf.nn.scale_regularization_loss(l2)
            # float16 scales the loss up so small gradients survive; the optimizer scales them back down.
            loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(loss, self.model.trainable_variables)
        return per_example_loss, logits, gradients

    def _replica_train_step(self, images: tf.Tensor, labels: tf.Tensor) -> None:
        self._replica_apply(labels, *self._gradients(images, labels))

    def _replica_apply(
        self, labels: tf.Tensor, per_example_loss: tf.Tensor, logits: tf.Tensor, gradients: list[tf.Tensor]
    ) -> None:
        self.optimizer.apply_gradients(zip(gradients, self.model.trainable_variables, strict=False))
        self.train_loss.update_state(per_example_loss)
        self.train_accuracy.update_state(labels, logits)

    def _replica_checked_gradients(self, images: tf.Tensor, labels: tf.Tensor):
        """The loss and gradients of one replica, and 1.0 if any of them is NaN or infinite (0.0 otherwise).

        Under float16 the loss scaler already skips steps whose scaled gradients overflow (and lowers the scale),
        so only the loss itself is checked there.
        """
        per_example_loss, logits, gradients = self._gradients(images, labels)
        checked = [per_example_loss]
        if not isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
            checked += gradients
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(t)) for t in checked])
        return per_example_loss, logits, gradients, tf.cast(tf.logical_not(finite), tf.float32)

    def _skipping_train_step(self, images: Any, labels: Any) -> None:
        """A train step that leaves weights, optimizer and metrics untouched when any replica's loss or
        gradients are not finite (`--nan_policy=skip`), and counts it in `skipped_steps`.

        The decision is taken in cross-replica context on the sum over replicas, so every replica takes the same
        branch: a branch that applies gradients synchronizes replicas, which DistributionStrategy cannot do from
        inside a `tf.cond` in replica context.
        """
        per_example_loss, logits, gradients, bad = self.strategy.run(
            self._replica_checked_gradients, args=(images, labels)
        )

        def apply() -> None:
            self.strategy.run(self._replica_apply, args=(labels, per_example_loss, logits, gradients))

        def skip() -> None:
            self.skipped_steps.assign_add(1)

        tf.cond(self.strategy.reduce(tf.distribute.ReduceOp.SUM, bad, axis=None) > 0, skip, apply)

    def _replica_eval_step(self, images: tf.Tensor, labels: tf.Tensor, weights: tf.Tensor) -> None:
        logits = tf.cast(self.model(images, training=False), tf.float32)
        per_example_loss = self.loss(labels, logits)
        self.eval_loss.update_state(per_example_loss, sample_weight=weights)
        self.eval_accuracy.update_state(labels, logits, sample_weight=weights)
        self.eval_confusion.update_state(labels, logits, sample_weight=weights)

    def train(self, iterator: Any, steps: int = 1) -> None:
        """`steps` optimizer steps on the next global batches of a distributed iterator, in one call.

        Several steps per call (`--steps_per_loop`) keep the loop on the device: TPUs need it to stay busy.
        """
        self._train_steps(iterator, tf.constant(steps, tf.int32))  # a tensor: no retracing per count

    @tf.function
    def _train_steps(self, iterator: Any, steps: tf.Tensor) -> None:
        for _ in tf.range(steps):
            if self.skip_non_finite:
                self._skipping_train_step(*next(iterator))
            else:
                self.strategy.run(self._replica_train_step, args=next(iterator))
            self.step.assign_add(1)

    @tf.function
    def _eval_step(self, batch: Any) -> None:
        self.strategy.run(self._replica_eval_step, args=batch)

    def evaluate(self, dataset: tf.data.Dataset) -> Evaluation:
        """Loss, accuracy and confusion matrix over the examples of a `data.eval_dataset` (padding excluded)."""
        for metric in (self.eval_loss, self.eval_accuracy, self.eval_confusion):
            metric.reset_state()
        # One call per batch: measured 1.7x faster on CPU than looping over the dataset inside one tf.function.
        for batch in distribute.distribute_dataset(self.strategy, dataset):
            self._eval_step(batch)
        confusion = np.rint(self.eval_confusion.result()).astype(np.int64)
        return Evaluation(float(self.eval_loss.result()), float(self.eval_accuracy.result()), confusion)

    def train_metrics(self) -> tuple[float, float]:
        """Mean loss and accuracy since the last reset."""
        return float(self.train_loss.result()), float(self.train_accuracy.result())

    def train_totals(self) -> np.ndarray:
        """[summed loss, correct predictions, examples] since the last reset.

        The difference of two readings gives the loss and accuracy of just the steps in between, at no cost to
        the train step (`_Loop` logs `step_loss` and `step_accuracy` this way).
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


def model_and_optimizer(
    config: Config, strategy: tf.distribute.Strategy, image_shape: tuple[int, ...], total_steps: int
) -> tuple[keras.Model, keras.optimizers.Optimizer]:
    """The model and optimizer (with its schedule over `total_steps`) a resolved `config` asks for."""
    with strategy.scope():
        model = models.build(config, image_shape, distribute.dtype_policy(config.dtype))
        return model, optimizers.make(config, total_steps=total_steps)


def run(config: Config, reporter: ConsoleReporter | None = None, fresh: bool = False) -> dict[str, Any]:
    """Trains, evaluates on the test split, exports, and writes `<model_dir>/results.json`; returns the results.

    A `model_dir` that already holds a checkpoint is resumed from it, at the very step it was saved, unless
    `fresh` clears the run's files first. SIGTERM or SIGINT save a checkpoint at the next step boundary and raise
    `interruption.Interrupted`. Under multi-worker every worker runs this; the chief writes to `model_dir` and
    `export_dir`, the others to a temporary directory that is removed at the end (they must write too: saving
    takes part in collective ops).
    """
    config = config.resolve()
    # First: the multi-worker and TPU strategies configure the runtime, which must precede other TF work.
    strategy = distribute.make_strategy(config.strategy, config.num_gpus, config.tpu)
    for flag in ("batch_size", "eval_batch_size"):
        distribute.per_replica_batch_size(flag, getattr(config, flag), strategy)
    keras.utils.set_random_seed(config.seed)
    chief = distribute.is_chief(strategy)
    if fresh:
        if chief:
            _clear_run(Path(config.model_dir))
        distribute.barrier(strategy)  # no worker may restore what the chief is deleting
    with _output_dir(Path(config.model_dir), chief) as output_dir:
        return _run(config, strategy, chief, output_dir, reporter or ConsoleReporter())


def _run(
    config: Config, strategy: tf.distribute.Strategy, chief: bool, output_dir: Path, reporter: ConsoleReporter
) -> dict[str, Any]:
    splits = data.load(config.dataset, config.data_dir, config.source, config.validation_size, config.tfds_data_dir)
    steps_per_epoch = data.steps_per_epoch(splits.train, config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    if config.profile_steps and config.profile_steps[1] > total_steps:
        raise MnistTfError(f"--profile_steps={config.profile_steps[1]} is past the run's last step, {total_steps}")
    trainer = Trainer.from_config(config, strategy, splits.image_shape, total_steps)
    model = trainer.model
    stopper = None
    if config.early_stopping_patience:
        stopper = EarlyStopping(config.early_stopping_patience, model, output_dir)
    checkpoint = trainer.checkpoint(**({"early_stopping": stopper.state()} if stopper else {}))
    manager = checkpoints.manager(checkpoint, output_dir)
    resumed_from = checkpoints.latest(config.model_dir)
    changes = []
    if resumed_from:
        changes = checkpoints.changes(config.model_dir, config, splits.image_shape)  # another model: one line
        checkpoints.restore(checkpoint, resumed_from)
    checkpoints.write_config(output_dir, config, splits.image_shape)
    guard = _guard(config, strategy, checkpoint, manager)
    first_step = int(trainer.step.numpy())

    validation = data.eval_dataset(splits.validation, config.eval_batch_size) if splits.validation else None
    train_batches = data.train_dataset(splits.train, config.batch_size, config.seed, first_step)
    train_iterator = iter(distribute.distribute_dataset(strategy, train_batches))
    # The first batch of the run, from its own iterator: shown in TensorBoard, and the gradient histograms' batch.
    first_batch = next(iter(train_batches.take(1)))
    header = _header(config, splits, strategy, steps_per_epoch, first_step, resumed_from, changes)
    reporter.start(header, model)
    summaries = Summaries(output_dir, enabled=chief)
    summaries.hparams(config)
    summaries.inputs(first_step, *(tensor.numpy() for tensor in first_batch))
    profiler = StepProfiler(output_dir / "train", config.profile_steps, enabled=chief)
    loop = _Loop(trainer, train_iterator, config, steps_per_epoch, reporter, manager, guard, summaries, profiler)
    run_start = time.perf_counter()
    train_seconds = 0.0
    try:
        with guard:
            for epoch in range(first_step // steps_per_epoch, config.epochs):
                if stopper and stopper.should_stop():  # resumed from the checkpoint of a run that stopped early
                    break
                result = loop.train_epoch(epoch, first_step)
                validated = trainer.evaluate(validation) if validation is not None else None
                if validated is not None:
                    result = dataclasses.replace(
                        result, validation_loss=validated.loss, validation_accuracy=validated.accuracy
                    )
                    if stopper:
                        stopper.update(epoch + 1, validated.loss)
                train_seconds += result.seconds
                step = (epoch + 1) * steps_per_epoch
                guard.check(step)  # a stop requested during validation stops here, with this very checkpoint
                checkpoints.save(manager, step)
                _write_epoch_summaries(
                    summaries, trainer, step, result, validated, first_batch, config, splits.image_shape
                )
                elapsed = time.perf_counter() - run_start
                eta = elapsed / (step - first_step) * (total_steps - step)
                reporter.epoch_end(result, config.epochs, elapsed, eta)
        if stopper:
            stopper.restore_best()
            reporter.early_stopping(stopper.summary())

        last_step = int(trainer.step.numpy())
        test = trainer.evaluate(data.eval_dataset(splits.test, config.eval_batch_size))
        summaries.scalars("test", last_step, {"epoch_loss": test.loss, "epoch_accuracy": test.accuracy})
        summaries.confusion("test", last_step, test.confusion)
        if summaries.enabled:
            _write_mistakes(summaries, last_step, model, splits.test, config.eval_batch_size)
    finally:
        profiler.stop()
        summaries.close()
    test_loss, test_accuracy = test.loss, test.accuracy
    export_path = None
    if config.export_dir:
        export_base = Path(config.export_dir) if chief else output_dir / "export"
        metadata = {"config": dataclasses.asdict(config), "test_accuracy": test_accuracy, "test_loss": test_loss}
        export_path = export_saved_model(model, export_base / config.name, metadata=metadata)
    trained_images = (last_step - first_step) * config.batch_size
    results = {
        "model": config.model,
        "recipe": config.recipe,
        "dataset": config.dataset,
        "data_source": splits.source,
        "epochs": config.epochs,
        "epochs_trained": last_step // steps_per_epoch,
        "early_stopping": stopper.summary() if stopper else None,
        "resumed_from_step": first_step,
        "skipped_steps": int(trainer.skipped_steps.numpy()),
        "train_seconds": round(train_seconds, 3),
        "images_per_second": round(trained_images / train_seconds, 1) if train_seconds else 0.0,
        "test_accuracy": test_accuracy,
        "test_loss": test_loss,
        "export_dir": os.fspath(export_path) if export_path and chief else None,
        "trainable_parameters": sum(math.prod(v.shape) for v in model.trainable_variables),
        "weights_sha256": weights_digest(model),
        "replicas": strategy.num_replicas_in_sync,
        "flags": dataclasses.asdict(config),
    }
    results_path = output_dir / RESULTS_FILE
    write_json_atomic(results_path, results)
    reporter.finish(results, os.fspath(results_path) if chief else None)
    return results


def weights_digest(model: keras.Model) -> str:
    """SHA-256 of every weight's bytes, in order: equal digests mean bit-identical models."""
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(weight.value).tobytes())
    return digest.hexdigest()


@contextlib.contextmanager
def _output_dir(model_dir: Path, chief: bool) -> Iterator[Path]:
    """`model_dir` for the chief; for other workers a temporary directory, removed when the run ends."""
    if chief:
        yield model_dir
        return
    temporary = Path(tempfile.mkdtemp(prefix="mnist_tf-worker-"))
    try:
        yield temporary
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def _clear_run(model_dir: Path) -> None:
    """--fresh: removes what a run writes in `model_dir` (checkpoints, TensorBoard logs, config and results)."""
    for name in (checkpoints.DIRECTORY, *Summaries.RUNS):
        shutil.rmtree(model_dir / name, ignore_errors=True)
    for path in [model_dir / checkpoints.CONFIG_FILE, model_dir / RESULTS_FILE, *model_dir.glob("events.out.*")]:
        path.unlink(missing_ok=True)


def _guard(
    config: Config,
    strategy: tf.distribute.Strategy,
    checkpoint: tf.train.Checkpoint,
    manager: tf.train.CheckpointManager,
) -> interruption.SignalGuard | interruption.PreemptionGuard:
    """How this run stops when told to (see `interruption`): all workers alike under multi-worker."""

    def save(step: int) -> str:
        return checkpoints.save(manager, step)

    if config.strategy == "multi_worker":
        directory = checkpoints.directory(config.model_dir)
        return interruption.PreemptionGuard(strategy.cluster_resolver, checkpoint, directory, save, config.model_dir)
    return interruption.SignalGuard(save, config.model_dir)


@dataclasses.dataclass
class _Loop:
    """One epoch of training calls, with what happens between them: progress, step summaries, profiling, and
    the checks that stop a run (a non-finite loss, a stop request)."""

    trainer: Trainer
    iterator: Any
    config: Config
    steps: int  # per epoch
    reporter: ConsoleReporter
    manager: tf.train.CheckpointManager
    guard: interruption.Guard
    summaries: Summaries
    profiler: StepProfiler

    def train_epoch(self, epoch: int, first_step: int) -> EpochResult:
        """Trains epoch `epoch` (0-based) from global step `first_step` on, or from its start if that is earlier.

        Resumed mid-epoch, the train metrics continue from the checkpoint's, so the epoch line covers the epoch.
        """
        trainer, config = self.trainer, self.config
        step = max(0, first_step - epoch * self.steps)  # within the epoch
        if step == 0:
            trainer.reset_train_metrics()
        skipped_before = int(trainer.skipped_steps.numpy())
        steps_run = self.steps - step
        start = time.perf_counter()
        window = (trainer.train_totals(), start)  # train totals and time at the last step summary
        while step < self.steps:
            calls = min(config.steps_per_loop, self.steps - step)
            first, last = epoch * self.steps + step + 1, epoch * self.steps + step + calls  # global, 1-based
            self.profiler.before(first, last)
            with self.summaries.graph(last):
                trainer.train(self.iterator, calls)
            self.profiler.after(last)
            step += calls
            if not trainer.skip_non_finite:
                self._stop_unless_finite(first, last, epoch)
            self.guard.check(last)
            every = config.log_every_steps
            # Every worker reads the metrics (a collective under multi-worker); only the chief writes them.
            if every and last // every > (first - 1) // every:
                window = self._write_step_summaries(last, *window)
            if self.reporter.wants_progress():
                self.reporter.progress(epoch + 1, config.epochs, step, self.steps, *trainer.train_metrics())
        loss, accuracy = trainer.train_metrics()  # reading the metrics waits for the last step to finish
        seconds = time.perf_counter() - start
        skipped = int(trainer.skipped_steps.numpy()) - skipped_before
        images_per_second = steps_run * config.batch_size / seconds
        return EpochResult(epoch + 1, loss, accuracy, None, None, seconds, images_per_second, skipped)

    def _stop_unless_finite(self, first: int, last: int, epoch: int) -> None:
        """Raises when a step of the last call had a NaN or infinite loss; no checkpoint is written after it."""
        loss_sum = float(self.trainer.train_loss.total.numpy())
        if math.isfinite(loss_sum):
            return
        steps = f"step {last}" if first == last else f"steps {first}-{last}"
        kept = self.manager.latest_checkpoint
        kept = f"the last good checkpoint is {kept}" if kept else "no checkpoint was written"
        raise MnistTfError(
            f"training loss became {loss_sum} at {steps} (epoch {epoch + 1}); {kept}; try a lower --learning_rate, "
            "or --nan_policy=skip to skip such steps"
        )

    def _write_step_summaries(self, step: int, totals: np.ndarray, time_: float) -> tuple[np.ndarray, float]:
        """Loss and accuracy of the steps since the last step summary; returns the new window start."""
        now_totals, now = self.trainer.train_totals(), time.perf_counter()
        loss_sum, correct, examples = now_totals - totals
        values = {
            "step_loss": loss_sum / examples,
            "step_accuracy": correct / examples,
            "step_learning_rate": float(self.trainer.optimizer.learning_rate),
            "step_images_per_second": examples / (now - time_),
        }
        self.summaries.scalars("train", step, values)
        return now_totals, now


def _header(
    config: Config,
    splits: data.Splits,
    strategy: tf.distribute.Strategy,
    steps_per_epoch: int,
    first_step: int,
    resumed_from: str | None,
    changes: list[str],
) -> list[str]:
    validation = f" · validation {len(splits.validation):,}" if splits.validation else ""
    per_replica = distribute.per_replica_batch_size("batch_size", config.batch_size, strategy)
    per_call = f" · {config.steps_per_loop} steps per call" if config.steps_per_loop > 1 else ""
    stopping = ""
    if config.early_stopping_patience:
        stopping = f" (early stopping: patience {config.early_stopping_patience})"
    recipe = f" · recipe {config.recipe}" if config.recipe else ""
    lines = [
        f"mnist_tf: {config.model} ({config.layers} layers) on {config.dataset} from {splits.source}{recipe}",
        f"data: train {len(splits.train):,}{validation} · test {len(splits.test):,} images",
        f"strategy: {distribute.describe(strategy)} · batch {config.batch_size} ({per_replica} per replica)"
        f" · {steps_per_epoch} steps/epoch{per_call} · {distribute.DTYPE_POLICIES[config.dtype]}",
        f"optimizer: {config.optimizer} lr {config.learning_rate:g} ({config.lr_schedule})"
        f" · weight decay {config.weight_decay:g} · {config.loss} loss · {config.epochs} epochs{stopping}"
        f" · seed {config.seed}",
        f"model_dir: {config.model_dir}",
    ]
    if resumed_from:
        epoch, step = divmod(first_step, steps_per_epoch)
        where = f"step {first_step}: epoch {epoch + 1}, step {step}/{steps_per_epoch}"
        lines.append(f"resuming from {resumed_from} ({where})")
    if changes:
        lines.append(f"changed since the checkpoint: {'; '.join(changes)}")
    return lines


def _write_epoch_summaries(
    summaries: Summaries,
    trainer: Trainer,
    step: int,
    result: EpochResult,
    validation: Evaluation | None,
    first_batch: tuple[tf.Tensor, tf.Tensor],
    config: Config,
    image_shape: tuple[int, int, int],
) -> None:
    summaries.scalars(
        "train",
        step,
        {
            "epoch_loss": result.train_loss,
            "epoch_accuracy": result.train_accuracy,
            "epoch_learning_rate": float(trainer.optimizer.learning_rate),
            "epoch_images_per_second": result.images_per_second,
            "epoch_seconds": result.seconds,
        },
    )
    if validation is not None:
        summaries.scalars("validation", step, {"epoch_loss": validation.loss, "epoch_accuracy": validation.accuracy})
        summaries.confusion("validation", step, validation.confusion)
    variables = trainer.model.trainable_variables
    summaries.first_layer(step, trainer.kernels[0].numpy(), image_shape)
    if "weights" in config.histograms:
        summaries.histograms(step, "weights", {v.path: v.numpy() for v in variables})
    if "gradients" in config.histograms:
        summaries.histograms(step, "gradients", trainer.gradients(*first_batch))


def _write_mistakes(summaries: Summaries, step: int, model: keras.Model, test: data.Split, batch_size: int) -> None:
    """The test images the trained model gets wrong most confidently (one more pass over the test split)."""
    probabilities = tf.function(lambda images: predict(model, images)["probabilities"])
    predicted = evaluation.predict_in_batches(lambda x: probabilities(x).numpy(), test.images, batch_size)
    report = evaluation.report(test.labels, predicted, num_mistakes=MISTAKE_IMAGES)
    if report.mistakes:
        indices = [m.index for m in report.mistakes]
        predicted_classes = [m.predicted for m in report.mistakes]
        summaries.mistakes(step, test.images[indices], test.labels[indices], predicted_classes)
