"""What the user sees in the terminal: a run's header, a progress bar, one line per epoch, the end."""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from mnist_tf.config import Config
from mnist_tf.data.sources import Splits

if TYPE_CHECKING:
    import keras


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
class RunStart:
    """What the header says about a run beyond its Config: the data, the strategy, where it resumes."""

    splits: Splits
    strategy: str  # e.g. "mirrored (2 replicas)"
    per_replica_batch_size: int
    steps_per_epoch: int
    precision: str  # the Keras dtype policy and why, e.g. "mixed_bfloat16 (auto: the CPU has native bfloat16 ...)"
    first_step: int
    resumed_from: str | None
    changes: list[str]  # settings changed since the checkpoint resumed from


def header(config: Config, start: RunStart) -> list[str]:
    """The lines a run starts with: model, data, strategy, optimizer, where it writes, and what it resumes."""
    splits, steps = start.splits, start.steps_per_epoch
    validation = f" · validation {len(splits.validation):,}" if splits.validation else ""
    per_call = f" · {config.steps_per_loop} steps per call" if config.steps_per_loop > 1 else ""
    stopping = ""
    if config.early_stopping_patience:
        stopping = f" (early stopping: patience {config.early_stopping_patience})"
    recipe = f" · recipe {config.recipe}" if config.recipe else ""
    smoothing = f" (label smoothing {config.label_smoothing:g})" if config.label_smoothing else ""
    toward = " (toward --init_from's weights: L2-SP)" if config.weight_decay and config.init_from else ""
    toward += f" · distillation {config.distillation:g} (toward its answers)" if config.distillation else ""
    augment = f" · augmented (strength {config.augment_strength:g})" if config.augment else ""
    if config.not_digits:
        augment += f" · not-digit images {config.not_digits:.1%} of each batch (weight {config.not_digit_weight:g}"
        augment += f", digit odds {config.digit_odds_weight:g})" if config.digit_odds_weight else ")"
    captured = f" ({splits.captured:,} of them captured: --captures)" if splits.captured else ""
    lines = [
        f"mnist_tf: {config.model} ({config.layers} layers) on {config.data_name} from {splits.source}{recipe}",
        f"data: train {len(splits.train):,}{captured}{validation} · test {len(splits.test):,} images",
        f"strategy: {start.strategy} · batch {config.batch_size} ({start.per_replica_batch_size} per replica)"
        f" · {steps} steps/epoch{per_call} · {start.precision}",
        f"optimizer: {config.optimizer} lr {config.learning_rate:g} ({config.lr_schedule})"
        f" · weight decay {config.weight_decay:g}{toward} · {config.loss} loss{smoothing} · "
        f"{_count(config.epochs, 'epoch')}"
        f"{stopping}{augment} · seed {config.seed}",
        f"model_dir: {config.model_dir}",
    ]
    if start.resumed_from:
        epoch, step = divmod(start.first_step, steps)
        where = f"step {start.first_step}: epoch {epoch + 1}, step {step}/{steps}"
        lines.append(f"resuming from {start.resumed_from} ({where})")
    if start.changes:
        lines.append(f"changed since the checkpoint: {'; '.join(start.changes)}")
    return lines


def format_duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


class ConsoleReporter:
    """Prints a run's start, an epoch line per epoch (with a live progress bar on a terminal) and the end."""

    BAR_WIDTH = 24
    REFRESH_SECONDS = 0.2

    def __init__(self, stream: TextIO | None = None, interactive: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self._last_refresh = 0.0

    def print(self, text: str = "") -> None:
        print(text, file=self.stream, flush=True)

    def start(self, header: list[str], model: keras.Model) -> None:
        for line in header:
            self.print(line)
        model.summary(print_fn=lambda line, **_: self.print(line))

    def wants_progress(self) -> bool:
        """True when a progress update is due; lets the loop skip reading metrics (a device sync) otherwise."""
        return self.interactive and time.monotonic() - self._last_refresh >= self.REFRESH_SECONDS

    def progress(self, epoch: int, epochs: int, step: int, steps: int, loss: float, accuracy: float) -> None:
        self._last_refresh = time.monotonic()
        done = int(self.BAR_WIDTH * step / steps)
        bar = "=" * done + (">" if done < self.BAR_WIDTH else "") + " " * (self.BAR_WIDTH - done - 1)
        self.stream.write(f"\repoch {epoch}/{epochs} [{bar}] {step}/{steps}  loss {loss:.4f}  acc {accuracy:.4f}")
        self.stream.flush()

    def epoch_end(self, result: EpochResult, epochs: int, elapsed: float, eta: float) -> None:
        if self.interactive:
            self.stream.write("\r\033[K")
        width = len(str(epochs))
        line = f"epoch {result.epoch:>{width}}/{epochs}  loss {result.train_loss:.4f}  acc {result.train_accuracy:.4f}"
        if result.validation_loss is not None:
            line += f"  | val loss {result.validation_loss:.4f}  acc {result.validation_accuracy:.4f}"
        line += (
            f"  | {result.images_per_second:,.0f} img/s  {result.seconds:.1f}s"
            f"  elapsed {format_duration(elapsed)}  ETA {format_duration(eta)}"
        )
        if result.skipped_steps:
            line += f"  | skipped {result.skipped_steps} steps (NaN/Inf)"
        self.print(line)

    def early_stopping(self, summary: dict[str, Any]) -> None:
        """Why training ended where it did, and which epoch's weights are tested and exported."""
        best = f"epoch {summary['best_epoch']} (validation loss {summary['best_validation_loss']:.4f})"
        if summary["stopped_early"]:
            self.print(
                f"early stopping: no better validation loss for {summary['patience']} epochs; using the best, {best}"
            )
        else:
            self.print(f"early stopping: did not trigger; using the best, {best}")

    def tested(self, loss: float, accuracy: float, confidence: dict[str, Any], decision: dict[str, Any]) -> None:
        """The test split's numbers, and the calibration and not-a-digit decision the export will answer with."""
        self.print(f"test  loss {loss:.4f}  accuracy {accuracy:.4f}")
        accepted = f"{confidence['accepted']:.1%} of test accepted as digits"
        if confidence["accepted_accuracy"] is not None:
            accepted += f", {confidence['accepted_accuracy']:.2%} of them right"
        self.print(
            f"calibrated  temperature {decision['temperature']:.2f}, calibration error "
            f"{confidence['calibration_error_before']:.2%} -> {confidence['calibration_error']:.2%} · not a digit "
            f"below p={decision['threshold_probability']:.3f}: {accepted}"
        )

    def finish(self, results: dict[str, Any], results_path: str | None) -> None:
        """The run's last lines (its export said its own as it went); `results_path` is None on a multi-worker
        worker that is not the chief."""
        self.print(
            f"trained {_count(results['epochs_trained'], 'epoch')} in {format_duration(results['train_seconds'])} "
            f"({results['images_per_second']:,.0f} img/s) · weights sha256 {results['weights_sha256'][:12]}"
        )
        if results_path is None:
            self.print("not the chief: this worker's checkpoints, logs and export were temporary and are removed")
            return
        self.print(f"results: {results_path}")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
