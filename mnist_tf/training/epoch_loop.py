"""One epoch of training: the train calls of a `Trainer` and what happens between them."""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from mnist_tf import distribute
from mnist_tf.config import Config
from mnist_tf.data import pipeline
from mnist_tf.errors import MnistTfError
from mnist_tf.plan import Plan
from mnist_tf.reporting.console import ConsoleReporter, EpochResult
from mnist_tf.reporting.evaluation import Report
from mnist_tf.reporting.summaries import StepProfiler, Summaries
from mnist_tf.training import run_state
from mnist_tf.training.run_state import Resumed
from mnist_tf.training.trainer import Trainer


@dataclasses.dataclass(kw_only=True)
class EpochLoop:
    """One epoch of training calls, with what happens between them: progress, step summaries, profiling, clock
    checkpoints, and the checks that stop a run (a non-finite loss, a stop request); then validation, the epoch's
    checkpoint and summaries, epoch after epoch."""

    trainer: Trainer
    iterator: Any  # over the distributed global batches, from the run's first step on
    validation: tf.data.Dataset | None
    first_batch: tuple[tf.Tensor, tf.Tensor]  # shown in TensorBoard, and the gradient histograms' batch
    config: Config
    steps: int  # per epoch
    reporter: ConsoleReporter
    resumed: Resumed
    summaries: Summaries
    profiler: StepProfiler
    clock: run_state.CheckpointClock  # mid-epoch checkpoints

    @classmethod
    def for_run(
        cls, plan: Plan, *, trainer: Trainer, resumed: Resumed, reporter: ConsoleReporter, summaries: Summaries
    ) -> EpochLoop:
        """The loop of a run from the step its trainer was resumed at: the data from that step on, the first batch
        in TensorBoard, the profiler and the checkpoint clock."""
        config, splits, strategy, first_step = plan.config, plan.splits, plan.strategy, int(trainer.step.numpy())
        validation = pipeline.eval_dataset(splits.validation, config.eval_batch_size) if splits.validation else None
        train_batches = pipeline.train_dataset(splits.train, config.batch_size, config.seed, first_step)
        iterator = iter(distribute.distribute_dataset(strategy, train_batches))
        first_batch = next(iter(train_batches.take(1)))  # from its own iterator
        summaries.hparams(config)
        images, labels = first_batch
        summaries.inputs(first_step, trainer.inputs_as_trained(images, first_step).numpy(), labels.numpy())
        profiler = StepProfiler(Path(summaries.model_dir) / "train", config.profile_steps, enabled=summaries.enabled)
        # Under multi-worker the workers agree on the time (their clocks differ).
        agree = (lambda due: distribute.any_worker(strategy, due)) if config.strategy == "multi_worker" else None
        clock = run_state.CheckpointClock(config.checkpoint_every_steps, config.checkpoint_every_seconds, agree)
        return cls(
            trainer=trainer,
            iterator=iterator,
            validation=validation,
            first_batch=first_batch,
            config=config,
            steps=plan.steps_per_epoch,
            reporter=reporter,
            resumed=resumed,
            summaries=summaries,
            profiler=profiler,
            clock=clock,
        )

    def train_epochs(self, first_step: int) -> float:
        """Trains from global step `first_step` to the last epoch (or early stopping's), validating, checkpointing,
        summarizing and reporting each epoch, and ends with early stopping's best weights; returns the seconds spent
        training (validation excluded)."""
        steps, epochs, stopper = self.steps, self.config.epochs, self.resumed.stopper
        start, train_seconds = time.perf_counter(), 0.0
        with self.resumed.guard:
            for epoch in range(first_step // steps, epochs):
                if stopper and stopper.should_stop():  # resumed from the checkpoint of a run that stopped early
                    break
                result = self.train_epoch(epoch, first_step)
                validated = self.trainer.evaluate(self.validation) if self.validation is not None else None
                if validated is not None:
                    result = dataclasses.replace(
                        result, validation_loss=validated.loss, validation_accuracy=validated.accuracy
                    )
                    if stopper:
                        stopper.update(epoch + 1, validated.loss)
                train_seconds += result.seconds
                step = (epoch + 1) * steps
                self.resumed.guard.check(step)  # a stop requested during validation stops here, with this checkpoint
                run_state.save(self.resumed.manager, step)
                self.clock.saved()
                self.write_summaries(step, result, validated)
                elapsed = time.perf_counter() - start
                eta = elapsed / (step - first_step) * (epochs * steps - step)
                self.reporter.epoch_end(result, epochs, elapsed, eta)
        if stopper:
            stopper.restore_best()
            self.reporter.early_stopping(stopper.summary())
        return train_seconds

    def close(self) -> None:
        self.profiler.stop()

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
            self.resumed.guard.check(last)
            if self.clock.due(first, last) and step < self.steps:  # the epoch's end is checkpointed after validation
                run_state.save(self.resumed.manager, last)
                self.clock.saved()
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
        kept = self.resumed.manager.latest_checkpoint
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

    def write_summaries(self, step: int, result: EpochResult, validation: Report | None) -> None:
        """The epoch's TensorBoard scalars, confusion matrix, first-layer weights and (if asked) histograms."""
        trainer, summaries = self.trainer, self.summaries
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
            summaries.scalars(
                "validation", step, {"epoch_loss": validation.loss, "epoch_accuracy": validation.accuracy}
            )
            summaries.confusion("validation", step, validation.confusion)
        first_kernel = next(v for v in trainer.model.trainable_variables if len(v.shape) >= 2)  # made first
        summaries.first_layer(step, first_kernel.numpy(), tuple(trainer.model.input_shape[1:]))
        if "weights" in self.config.histograms:
            summaries.histograms(step, "weights", {v.path: v.numpy() for v in trainer.model.trainable_variables})
        if "gradients" in self.config.histograms:
            summaries.histograms(step, "gradients", trainer.gradients(*self.first_batch))
