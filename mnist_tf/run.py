"""A whole training run, told in order: set up, resume, train, test, export, record.

`run(config)` is what `scripts/train.py` calls, once per process (or per worker of a multi-worker cluster). Each
section of `_train` is a call or two; the machinery lives in the modules named: the step in `training.trainer`,
an epoch in `training.epoch_loop`, the run's folder and checkpoints in `training.run_state`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from mnist_tf import distribute, fine_tuning, results
from mnist_tf.config import Config
from mnist_tf.data import pipeline, sources
from mnist_tf.data.pipeline import normalize_images
from mnist_tf.errors import MnistTfError
from mnist_tf.export import classifier, litert, publish
from mnist_tf.files import make_dir, write_json_atomic
from mnist_tf.not_a_digit import decision
from mnist_tf.plan import Plan, prepare
from mnist_tf.reporting import evaluation
from mnist_tf.reporting.console import ConsoleReporter, RunStart, header
from mnist_tf.reporting.summaries import MISTAKE_IMAGES, Summaries
from mnist_tf.training import build, init_from, interruption, run_lock, run_state
from mnist_tf.training.epoch_loop import EpochLoop
from mnist_tf.training.trainer import Trainer


def run(config: Config, reporter: ConsoleReporter | None = None, fresh: bool = False) -> dict[str, Any]:
    """Trains, evaluates on the test split, exports, and writes `<model_dir>/results.json`; returns the results.

    A `model_dir` that already holds a checkpoint is resumed from it, at the very step it was saved, unless
    `fresh` clears the run's files first. A run owns its `model_dir` (`run_lock`): a second live one is refused.
    SIGTERM or SIGINT save a checkpoint at the next step boundary and raise `errors.Interrupted`. Under
    multi-worker every worker runs this; the chief writes to `model_dir` and `export_dir`, the others to a
    temporary directory that is removed at the end. A failed export raises after results.json is written, with
    the command that retries it.
    """
    reporter = reporter or ConsoleReporter()
    base = _starting_model(config.init_from) if config.init_from else None  # before minutes of loading
    plan = prepare(config, reporter.print, base=base)  # settings, strategy, precision, data, steps: decided once
    _refuse_what_cannot_end_well(plan)
    keras.utils.set_random_seed(plan.config.seed)
    with interruption.at_once_on_second_ctrl_c(plan.config.model_dir), _own_model_dir(plan, fresh, reporter) as out:
        return _train(plan, out, reporter)


def _refuse_what_cannot_end_well(plan: Plan) -> None:
    """What would fail only after the work, said before it: --init_from of another architecture (before the
    not-digit bank is drawn and any file written), an --export_dir that cannot be made (before the training)."""
    config = plan.config
    if plan.base and not run_state.latest(config.model_dir):  # a resumed run ignores --init_from
        model = build.model(config, plan.splits.image_shape, len(plan.splits.class_names))
        init_from.check(model, plan.base.weights(), config.init_from)
    if plan.chief and config.export_dir:
        make_dir(config.export_dir, "--export_dir")


def _train(plan: Plan, output_dir: Path, reporter: ConsoleReporter) -> dict[str, Any]:
    # Set up: the compiled steps of the model and optimizer.
    config, splits = plan.config, plan.splits
    start = plan.base.weights() if plan.base and (config.weight_decay or config.distillation) else None  # anchors
    trainer = Trainer.from_config(config, plan.strategy, splits.train, plan.total_steps, len(splits.class_names), start)

    # Resume: the newest readable checkpoint of model_dir, if it has one; else --init_from's weights, if given.
    resumed = _resume(plan, trainer, output_dir, reporter)
    first_step = int(trainer.step.numpy())
    reporter.start(header(config, _run_start(plan, resumed, first_step)), trainer.model)

    # Train the epochs from there, then test the final weights (or early stopping's best) on the test split.
    summaries = Summaries(output_dir, enabled=plan.chief)
    loop = EpochLoop.for_run(plan, trainer=trainer, resumed=resumed, reporter=reporter, summaries=summaries)
    with contextlib.closing(summaries), contextlib.closing(loop):
        train_seconds = loop.train_epochs(first_step)
        # Calibrate: the temperature of honest probabilities and the not-a-digit threshold, on validation digits.
        choice = decision.fit_model(
            trainer.model, splits, config.digit_acceptance, config.digit_score, config.eval_batch_size
        )
        test, confidence = _test(trainer, splits.test, config.eval_batch_size, summaries, choice)
    reporter.tested(test.loss, test.accuracy, confidence, choice.to_dict())

    # Export: a new SavedModel version and its verified LiteRT files, answering with that decision.
    published = _export(plan, trainer.model, test, output_dir, reporter, choice)

    # Record: results.json and the run's last lines; then what the export left out, or its one-line problem.
    record = results.record(
        plan,
        trainer,
        first_step=first_step,
        train_seconds=train_seconds,
        test=test,
        confidence=confidence,
        decision=choice,
        stopper=resumed.stopper,
        published=published,
    )
    results_path = output_dir / run_state.RESULTS_FILE
    write_json_atomic(results_path, record)
    reporter.finish(record, str(results_path) if plan.chief else None)
    if published.left_out():
        reporter.print(published.left_out())
    problem = published.problem(kept=_retry_export(config))
    if problem:
        raise MnistTfError(problem)
    return record


@contextlib.contextmanager
def _own_model_dir(plan: Plan, fresh: bool, reporter: ConsoleReporter) -> Iterator[Path]:
    """The directory this process writes to, held for the run: the chief locks model_dir (and clears it with
    `fresh`); the other workers write to a temporary directory."""
    model_dir = Path(plan.config.model_dir)
    lock = run_lock.hold(model_dir, reporter.print) if plan.chief else contextlib.nullcontext()
    with lock:
        if fresh:
            if plan.chief:
                run_state.clear(model_dir)
            distribute.barrier(plan.strategy)  # no worker may restore what the chief is deleting
        with run_state.output_dir(model_dir, plan.chief) as output_dir:
            yield output_dir


def _resume(plan: Plan, trainer: Trainer, output_dir: Path, reporter: ConsoleReporter) -> run_state.Resumed:
    """Restores the newest readable checkpoint of model_dir, if any, else --init_from's weights; writes the run's
    config.json."""
    config, splits = plan.config, plan.splits
    stopper = None
    if config.early_stopping_patience:
        stopper = run_state.EarlyStopping(config.early_stopping_patience, trainer.model, output_dir)
    checkpoint = trainer.checkpoint(**({"early_stopping": stopper.state()} if stopper else {}))
    changes = []
    if run_state.latest(config.model_dir):
        changes = run_state.changes(config.model_dir, config, splits.image_shape, splits.class_names)
    path = run_state.resume(checkpoint, config.model_dir, reporter.print, set_aside=plan.chief)
    manager = run_state.manager(checkpoint, output_dir)  # after the fall-back: it reads the checkpoints' index
    run_state.write_config(output_dir, config, splits.image_shape, splits.class_names)
    multi_worker = config.strategy == "multi_worker"
    preemption = (
        (plan.strategy.cluster_resolver, checkpoint, run_state.directory(config.model_dir)) if multi_worker else None
    )
    # Under multi-worker this restores too (the handler's own count of saves).
    guard = interruption.guard(
        save=lambda step: run_state.save(manager, step), model_dir=config.model_dir, preemption=preemption
    )
    if plan.base:  # trained weights to start from, unless the run resumes
        ignored = f"note: --init_from ignored: resuming from {path}"
        reporter.print(ignored if path else _start_from(trainer.model, plan.base, config.init_from))
    return run_state.Resumed(checkpoint, manager, stopper, guard, path, changes)


def _starting_model(path: str) -> classifier.Classifier:
    """--init_from's trained model, opened as any other (export/classifier.py): one with weights to train."""
    try:
        trained = classifier.load(path)
    except MnistTfError as e:
        raise MnistTfError(f"--init_from: {e}") from None
    if trained.weights is None:
        raise MnistTfError(f"--init_from={path}: a LiteRT file holds no weights to train; give its SavedModel")
    return trained


def _start_from(model: keras.Model, trained: fine_tuning.StartingModel, path: str) -> str:
    """--init_from: the weights of `trained` (`_starting_model(path)`) copied into `model`; the line saying so."""
    return init_from.load(model, trained.weights(), path, f"{trained.kind} {trained.source}")


def _run_start(plan: Plan, resumed: run_state.Resumed, first_step: int) -> RunStart:
    """What the run's header says of how it trains, and from where."""
    return RunStart(
        splits=plan.splits,
        strategy=distribute.describe(plan.strategy),
        per_replica_batch_size=plan.per_replica_batch,
        steps_per_epoch=plan.steps_per_epoch,
        precision=f"{distribute.DTYPE_POLICIES[plan.precision.dtype]} ({plan.precision.reason})",
        first_step=first_step,
        resumed_from=resumed.path,
        changes=resumed.changes,
    )


def _test(
    trainer: Trainer, test: sources.Split, batch_size: int, summaries: Summaries, choice: decision.Decision
) -> tuple[evaluation.Report, dict[str, Any]]:
    """Loss and accuracy on the test split, and how calibrated and selective `choice` is there; TensorBoard gets
    them, the confusion matrix, the reliability diagram and the worst mistakes."""
    step = int(trainer.step.numpy())
    report = trainer.evaluate(pipeline.eval_dataset(test, batch_size))
    logits = tf.function(lambda images: tf.cast(trainer.model(normalize_images(images), training=False), tf.float32))
    values = decision.answered(evaluation.predict_in_batches(lambda x: logits(x).numpy(), test.images, batch_size))
    confidence = decision.confidence(values, test.labels, choice)
    summaries.scalars(
        "test",
        step,
        {"epoch_loss": report.loss, "epoch_accuracy": report.accuracy, **decision.scalars(confidence)},
    )
    summaries.confusion("test", step, report.confusion)
    summaries.reliability("test", step, confidence["reliability"])
    mistakes = evaluation.report(test.labels, decision.softmax(values), num_mistakes=MISTAKE_IMAGES).mistakes
    if mistakes:
        indices = [m.index for m in mistakes]
        summaries.mistakes(step, test.images[indices], test.labels[indices], [m.predicted for m in mistakes])
    return report, confidence


def _export(
    plan: Plan,
    model: keras.Model,
    test: evaluation.Report,
    output_dir: Path,
    reporter: ConsoleReporter,
    choice: decision.Decision,
) -> publish.Published:
    """The trained model as a new SavedModel version and its LiteRT files (the chief's: the other workers export
    the SavedModel to their temporary directory, as saving takes part in collective ops)."""
    config = plan.config
    if not config.export_dir:
        return publish.Published(None, None, None)
    base = Path(config.export_dir) if plan.chief else output_dir / "export"
    return publish.publish(
        model,
        config,
        base / config.name,
        metadata={"config": dataclasses.asdict(config), "test_accuracy": test.accuracy, "test_loss": test.loss},
        class_names=plan.splits.class_names,
        decision=choice,
        with_litert=plan.chief and config.litert,
        float_model=lambda: litert.float32_copy(model, config),
        splits=lambda: plan.splits,
        note=reporter.print if plan.chief else lambda _: None,
    )


def _retry_export(config: Config) -> str:
    """Where the trained model still is when its export failed, and the command that exports it."""
    return (
        f"the trained model is in {run_state.directory(config.model_dir)}, export it with: python scripts/export.py "
        f"--model_dir={config.model_dir} --export_dir={config.export_dir}" + ("" if config.litert else " --nolitert")
    )
