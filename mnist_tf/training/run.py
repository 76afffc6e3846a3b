"""A whole training run: set up, resume, train the epochs, test, export, record.

`run(config)` is what `scripts/train.py` calls, once per process (or per worker of a multi-worker cluster).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import threading
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from mnist_tf.config import Config
from mnist_tf.data import pipeline, sources
from mnist_tf.errors import MnistTfError, first_line
from mnist_tf.export import litert, saved_model
from mnist_tf.files import write_json_atomic
from mnist_tf.reporting import evaluation
from mnist_tf.reporting.console import ConsoleReporter, RunStart, header
from mnist_tf.reporting.summaries import MISTAKE_IMAGES, StepProfiler, Summaries
from mnist_tf.training import checkpoints, distribute, interruption, results, run_dir, run_lock
from mnist_tf.training.checkpoint_clock import CheckpointClock
from mnist_tf.training.early_stopping import EarlyStopping
from mnist_tf.training.epoch_loop import EpochLoop
from mnist_tf.training.trainer import Trainer


def run(config: Config, reporter: ConsoleReporter | None = None, fresh: bool = False) -> dict[str, Any]:
    """Trains, evaluates on the test split, exports, and writes `<model_dir>/results.json`; returns the results.

    A `model_dir` that already holds a checkpoint is resumed from it, at the very step it was saved, unless
    `fresh` clears the run's files first. A run owns its `model_dir` (`run_lock`): a second live one is refused.
    SIGTERM or SIGINT save a checkpoint at the next step boundary and raise `interruption.Interrupted`. Under
    multi-worker every worker runs this; the chief writes to `model_dir` and `export_dir`, the others to a
    temporary directory that is removed at the end. A failed export raises after results.json is written, with
    the command that retries it.
    """
    config = config.resolve()
    # First: the multi-worker and TPU strategies configure the runtime, which must precede other TF work.
    strategy = distribute.make_strategy(config.strategy, config.num_gpus, config.tpu)
    precision = distribute.choose_dtype(config.dtype, strategy)
    config = dataclasses.replace(config, dtype=precision.dtype)  # from here on, what the run computes in
    for flag in ("batch_size", "eval_batch_size"):
        distribute.per_replica_batch_size(flag, getattr(config, flag), strategy)
    keras.utils.set_random_seed(config.seed)
    chief = distribute.is_chief(strategy)
    reporter = reporter or ConsoleReporter()
    # The chief owns model_dir while it trains (the other workers write to temporary directories).
    lock = run_lock.hold(Path(config.model_dir), reporter.print) if chief else contextlib.nullcontext()
    with lock:
        if fresh:
            if chief:
                run_dir.clear(Path(config.model_dir))
            distribute.barrier(strategy)  # no worker may restore what the chief is deleting
        with run_dir.output_dir(Path(config.model_dir), chief) as output_dir:
            return _train(config, precision, strategy, chief, output_dir, reporter)


@dataclasses.dataclass(frozen=True)
class _Saved:
    """What the run saves and restores, and where it resumed from."""

    checkpoint: tf.train.Checkpoint
    manager: tf.train.CheckpointManager
    stopper: EarlyStopping | None
    resumed_from: str | None
    changes: list[str]  # settings changed since that checkpoint


def _train(
    config: Config,
    precision: distribute.Precision,
    strategy: tf.distribute.Strategy,
    chief: bool,
    output_dir: Path,
    reporter: ConsoleReporter,
) -> dict[str, Any]:
    # Set up: the data, the number of steps, the compiled steps.
    splits = sources.load_for(config)
    steps_per_epoch = pipeline.steps_per_epoch(splits.train, config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    if config.profile_steps and config.profile_steps[1] > total_steps:
        raise MnistTfError(f"--profile_steps={config.profile_steps[1]} is past the run's last step, {total_steps}")
    trainer = Trainer.from_config(config, strategy, splits.image_shape, total_steps)

    # Resume: the latest checkpoint of model_dir, if it has one.
    saved = _restore(config, trainer, output_dir, splits.image_shape)
    guard = _guard(config, strategy, saved)  # under multi-worker this restores too: before reading the step
    first_step = int(trainer.step.numpy())

    # Train the epochs, from where the checkpoint left off.
    validation = pipeline.eval_dataset(splits.validation, config.eval_batch_size) if splits.validation else None
    train_batches = pipeline.train_dataset(splits.train, config.batch_size, config.seed, first_step)
    iterator = iter(distribute.distribute_dataset(strategy, train_batches))
    # The first batch of the run, from its own iterator: shown in TensorBoard, and the gradient histograms' batch.
    first_batch = next(iter(train_batches.take(1)))
    reporter.start(header(config, _run_start(config, precision, strategy, splits, saved, first_step)), trainer.model)
    summaries = Summaries(output_dir, enabled=chief)
    summaries.hparams(config)
    first_images, first_labels = first_batch
    summaries.inputs(first_step, trainer.inputs_as_trained(first_images, first_step).numpy(), first_labels.numpy())
    profiler = StepProfiler(output_dir / "train", config.profile_steps, enabled=chief)
    loop = EpochLoop(
        trainer,
        iterator,
        config,
        steps_per_epoch,
        reporter,
        saved.manager,
        guard,
        summaries,
        profiler,
        _clock(config, strategy),
    )
    try:
        with guard:
            train_seconds = loop.train_epochs(first_step, validation, saved.stopper, first_batch)
        if saved.stopper:
            saved.stopper.restore_best()
            reporter.early_stopping(saved.stopper.summary())

        # Test: the final weights (or early stopping's best) on the test split.
        last_step = int(trainer.step.numpy())
        test = _test(trainer, splits.test, config.eval_batch_size, summaries, last_step)
    finally:
        profiler.stop()
        summaries.close()

    # Export: a new SavedModel version (workers other than the chief export to their temporary directory).
    export_path, export_error, litert_export = None, None, None
    if config.export_dir:
        export_base = Path(config.export_dir) if chief else output_dir / "export"
        export_path, export_error = _export(config, trainer.model, test, export_base / config.name)
    if export_path and chief and config.litert and _can_run_litert(reporter):
        litert_export, export_error = _export_litert(config, trainer.model, export_path, splits)

    # Record: results.json, and the run's last lines.
    progress = results.Progress(first_step, last_step, steps_per_epoch, train_seconds)
    record = results.record(
        config,
        splits,
        trainer,
        progress,
        test,
        saved.stopper,
        export_path if chief else None,
        precision=precision,
        export_error=export_error,
        litert=litert_export,
    )
    results_path = output_dir / results.RESULTS_FILE
    write_json_atomic(results_path, record)
    reporter.finish(record, str(results_path) if chief else None)
    if litert_export and litert_export.refused:
        raise MnistTfError(
            f"LiteRT {litert_export.refused}; the SavedModel and the other LiteRT files are kept "
            f"({litert_export.directory}/{litert.REPORT_FILE} has every number)"
        )
    if export_error:
        raise MnistTfError(
            f"the export failed ({export_error}); the trained model is in {checkpoints.directory(config.model_dir)}, "
            f"export it with: python scripts/export.py --model_dir={config.model_dir} --export_dir={config.export_dir}"
            + ("" if config.litert else " --nolitert")
        )
    return record


def _clock(config: Config, strategy: tf.distribute.Strategy) -> CheckpointClock:
    """Mid-epoch checkpoints; under multi-worker the workers agree on the time (their clocks differ)."""
    agree = (lambda due: distribute.any_worker(strategy, due)) if config.strategy == "multi_worker" else None
    return CheckpointClock(config.checkpoint_every_steps, config.checkpoint_every_seconds, agree)


def _export(config: Config, model: keras.Model, test: evaluation.Report, base: Path) -> tuple[Path | None, str | None]:
    """A new SavedModel version under `base`: (its path, None), or (None, why) when the export failed for any
    reason, which leaves the trained model in the run's checkpoint."""
    metadata = {"config": dataclasses.asdict(config), "test_accuracy": test.accuracy, "test_loss": test.loss}
    try:
        return saved_model.export_saved_model(model, base, metadata=metadata), None
    except Exception as e:  # a bug in an export path must not cost the training: it is reported, not raised
        return None, _why(e)


def _export_litert(
    config: Config, model: keras.Model, saved_model_dir: Path, splits: sources.Splits
) -> tuple[litert.Export | None, str | None]:
    """The LiteRT files of the SavedModel just exported: (what was written, None), or (None, why it failed)."""
    try:
        float_model = litert.float32_copy(model, config)
        return litert.export(float_model, config, saved_model_dir, splits.train, splits.test), None
    except Exception as e:  # as for the SavedModel: reported with the way to retry, never at the training's cost
        return None, f"LiteRT: {_why(e)}"


def _can_run_litert(reporter: ConsoleReporter) -> bool:
    """Whether ai-edge-litert, which verifies the LiteRT files, is installed; says so when it is not."""
    if importlib.util.find_spec("ai_edge_litert") is None:
        reporter.print("note: no LiteRT export: ai-edge-litert is not installed (pip install ai-edge-litert)")
        return False
    return True


def _why(error: Exception) -> str:
    return first_line(error) if isinstance(error, MnistTfError) else f"{type(error).__name__}: {first_line(error)}"


def _restore(config: Config, trainer: Trainer, output_dir: Path, image_shape: tuple[int, ...]) -> _Saved:
    """The run's checkpoint, restored from the latest one in model_dir if any; writes the run's config.json."""
    stopper = None
    if config.early_stopping_patience:
        stopper = EarlyStopping(config.early_stopping_patience, trainer.model, output_dir)
    checkpoint = trainer.checkpoint(**({"early_stopping": stopper.state()} if stopper else {}))
    manager = checkpoints.manager(checkpoint, output_dir)
    resumed_from = checkpoints.latest(config.model_dir)
    changes = []
    if resumed_from:
        changes = checkpoints.changes(config.model_dir, config, image_shape)  # another model: one line
        checkpoints.restore(checkpoint, resumed_from)
    checkpoints.write_config(output_dir, config, image_shape)
    return _Saved(checkpoint, manager, stopper, resumed_from, changes)


def _run_start(
    config: Config,
    precision: distribute.Precision,
    strategy: tf.distribute.Strategy,
    splits: sources.Splits,
    saved: _Saved,
    first_step: int,
) -> RunStart:
    return RunStart(
        splits,
        distribute.describe(strategy),
        distribute.per_replica_batch_size("batch_size", config.batch_size, strategy),
        pipeline.steps_per_epoch(splits.train, config.batch_size),
        f"{distribute.DTYPE_POLICIES[precision.dtype]} ({precision.reason})",
        first_step,
        saved.resumed_from,
        saved.changes,
    )


def _guard(config: Config, strategy: tf.distribute.Strategy, saved: _Saved) -> interruption.Guard:
    """How this run stops when told to (see `interruption`): all workers alike under multi-worker."""

    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        return interruption.NoGuard()

    def save(step: int) -> str:
        return checkpoints.save(saved.manager, step)

    if config.strategy == "multi_worker":
        directory = checkpoints.directory(config.model_dir)
        return interruption.PreemptionGuard(
            strategy.cluster_resolver, saved.checkpoint, directory, save, config.model_dir
        )
    return interruption.SignalGuard(save, config.model_dir)


def _test(trainer: Trainer, test: sources.Split, batch_size: int, summaries: Summaries, step: int) -> evaluation.Report:
    """Loss and accuracy on the test split; TensorBoard gets them, the confusion matrix and the worst mistakes."""
    report = trainer.evaluate(pipeline.eval_dataset(test, batch_size))
    summaries.scalars("test", step, {"epoch_loss": report.loss, "epoch_accuracy": report.accuracy})
    summaries.confusion("test", step, report.confusion)
    if summaries.enabled:  # the mistakes take one more pass over the test split
        probabilities = tf.function(lambda images: saved_model.predict(trainer.model, images)["probabilities"])
        predicted = evaluation.predict_in_batches(lambda x: probabilities(x).numpy(), test.images, batch_size)
        mistakes = evaluation.report(test.labels, predicted, num_mistakes=MISTAKE_IMAGES).mistakes
        if mistakes:
            indices = [m.index for m in mistakes]
            summaries.mistakes(step, test.images[indices], test.labels[indices], [m.predicted for m in mistakes])
    return report
