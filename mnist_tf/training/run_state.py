"""A run's state on disk, in one place: its folder, config.json, the checkpoints, the clock of mid-epoch checkpoints,
early stopping's best weights, and `restore_model`: which checkpoint is the model.

    <model_dir>/config.json          the resolved Config and image shape, written before the first step
    <model_dir>/checkpoints/ckpt-N   the newest MAX_TO_KEEP of: every epoch's end, the clock's, a stop's
    <model_dir>/checkpoints/best/    early stopping: the best epoch's weights
    <model_dir>/checkpoints/damaged/ checkpoints that could not be read, set aside (never deleted)
    <model_dir>/results.json         what the finished run reports
    <model_dir>/{train,validation,test}/   TensorBoard

A checkpoint that cannot be read (a truncated or overwritten file) is set aside and the newest one that reads is used
instead, with one line saying so: resuming, exporting and evaluating a run never lose more than that checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import keras
import tensorflow as tf

from mnist_tf.config import Config
from mnist_tf.data.sources import DIGITS
from mnist_tf.errors import MnistTfError, first_line
from mnist_tf.files import make_dir, write_json_atomic
from mnist_tf.nn import models
from mnist_tf.reporting.summaries import Summaries
from mnist_tf.training import interruption

CONFIG_FILE = "config.json"
RESULTS_FILE = "results.json"
DIRECTORY = "checkpoints"
DAMAGED = "damaged"
MAX_TO_KEEP = 3
# Flags that make a different model whatever the architecture (its registry entry adds the ones that shape its
# weights): a checkpoint of one cannot be resumed as the other.
ARCHITECTURE = ("model", "layers", "activation")
# Flags that say where things are or what is logged: changing them on resume is not worth a mention.
_NOT_TRAINING = frozenset(
    {"model_dir", "export_dir", "data_dir", "source", "tfds_data_dir", "log_every_steps", "histograms", "profile_steps"}
    | {"given"}
)
Note = Callable[[str], None]


# The run's folder.


def directory(model_dir: str | os.PathLike) -> Path:
    """Where a run's checkpoints are."""
    return Path(model_dir) / DIRECTORY


def best_directory(model_dir: str | os.PathLike) -> Path:
    """Where early stopping keeps the weights of the run's best epoch (one checkpoint)."""
    return directory(model_dir) / "best"


def latest(model_dir: str | os.PathLike) -> str | None:
    """The newest checkpoint of a run, or None (whether it reads is `resume`'s question)."""
    return tf.train.latest_checkpoint(os.fspath(directory(model_dir)))


@contextlib.contextmanager
def output_dir(model_dir: Path, chief: bool) -> Iterator[Path]:
    """`model_dir` for the chief; for other workers a temporary directory, removed when the run ends (they must
    write too: saving takes part in collective ops)."""
    if chief:
        yield model_dir
        return
    temporary = Path(tempfile.mkdtemp(prefix="mnist_tf-worker-"))
    try:
        yield temporary
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def clear(model_dir: Path) -> None:
    """--fresh: removes what a run writes in `model_dir` (checkpoints, TensorBoard logs, config and results)."""
    for name in (DIRECTORY, *Summaries.RUNS):
        shutil.rmtree(model_dir / name, ignore_errors=True)
    for path in [model_dir / CONFIG_FILE, model_dir / RESULTS_FILE, *model_dir.glob("events.out.*")]:
        path.unlink(missing_ok=True)


# config.json: what model the checkpoints are of.


def write_config(
    model_dir: Path, config: Config, image_shape: tuple[int, ...], class_names: tuple[str, ...] = DIGITS
) -> None:
    record = {"config": dataclasses.asdict(config), "image_shape": image_shape, "class_names": list(class_names)}
    write_json_atomic(model_dir / CONFIG_FILE, record)


def read_config(model_dir: str | os.PathLike) -> tuple[Config, tuple[int, ...], tuple[str, ...]]:
    """The resolved Config, image shape and class names a run was trained with (the digits for runs from before
    config.json named them)."""
    path = Path(model_dir) / CONFIG_FILE
    try:
        record = json.loads(path.read_text())
        class_names = tuple(record.get("class_names", DIGITS))
        return Config.from_dict(record["config"]).resolve(), tuple(record["image_shape"]), class_names
    except FileNotFoundError:
        raise MnistTfError(f"{path} not found: --model_dir must be a training run's directory") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise MnistTfError(f"{path} is not a readable mnist_tf run configuration ({first_line(e)})") from None


def changes(
    model_dir: str | os.PathLike,
    config: Config,
    image_shape: tuple[int, ...],
    class_names: tuple[str, ...] = DIGITS,
) -> list[str]:
    """How `config` differs from the run whose checkpoints are in `model_dir`, e.g. ["epochs 4 -> 6"].

    Raises MnistTfError if it is another model (architecture, image shape or classes): its checkpoints cannot
    continue here. Nothing to compare (a run from before config.json existed) is no change.
    """
    if not (Path(model_dir) / CONFIG_FILE).exists():
        return []
    previous, previous_shape, previous_classes = read_config(model_dir)
    other = [
        f"{name} {getattr(previous, name)}, not {getattr(config, name)}"
        for name in (*ARCHITECTURE, *models.SHAPE_FIELDS)
        if getattr(previous, name) != getattr(config, name)
    ]
    if tuple(previous_shape) != tuple(image_shape):
        other.append(f"images {'x'.join(map(str, previous_shape))}, not {'x'.join(map(str, image_shape))}")
    if tuple(previous_classes) != tuple(class_names):
        other.append(f"classes {', '.join(previous_classes)}, not {', '.join(class_names)}")
    if other:
        raise MnistTfError(
            f"--model_dir={model_dir} holds checkpoints of another model ({', '.join(other)}); pass --fresh to "
            "start over there, or use another --model_dir"
        )
    return [
        f"{field.name} {getattr(previous, field.name)} -> {getattr(config, field.name)}"
        for field in dataclasses.fields(Config)
        if field.name not in _NOT_TRAINING and getattr(previous, field.name) != getattr(config, field.name)
    ]


# Checkpoints: saving, restoring, and falling back past damaged ones.


def manager(checkpoint: tf.train.Checkpoint, model_dir: Path) -> tf.train.CheckpointManager:
    make_dir(model_dir)
    return tf.train.CheckpointManager(checkpoint, os.fspath(directory(model_dir)), max_to_keep=MAX_TO_KEEP)


def save(manager: tf.train.CheckpointManager, step: int) -> str:
    """Saves checkpoint number `step`. TF writes it beside the others and only then points `checkpoint` at it, so a
    failed write (disk full, read-only) leaves the earlier checkpoints as they were: it is reported in one line."""
    try:
        return manager.save(checkpoint_number=step)
    except (OSError, tf.errors.OpError) as e:
        for partial in Path(manager.directory).glob(f"ckpt-{step}_temp*"):  # TF's staging folder for this save
            shutil.rmtree(partial, ignore_errors=True)
        raise MnistTfError(
            f"could not save a checkpoint in {manager.directory} ({first_line(e)}); the earlier checkpoints are intact"
        ) from None


_START_OVER = "pass --fresh to start over in that --model_dir, or use another one"


class Unreadable(MnistTfError):
    """A checkpoint whose files are damaged or missing."""

    def __init__(self, path: str, why: str) -> None:
        self.damage = f"{path} cannot be read ({why})"
        super().__init__(f"{self.damage}; {_START_OVER}")


def restore(checkpoint: tf.train.Checkpoint, path: str) -> None:
    """Restores `path` into `checkpoint`'s objects, all of which it must hold; a mismatch is one clear line."""
    try:
        checkpoint.restore(path).expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError) as e:
        raise MnistTfError(f"{path} does not fit this run ({first_line(e)}); {_START_OVER}") from None
    except (tf.errors.OpError, OSError, IndexError) as e:  # a damaged file: TF's reader raises all three
        raise Unreadable(path, first_line(e)) from None


def resume(
    checkpoint: tf.train.Checkpoint, model_dir: str | os.PathLike, note: Note, set_aside: bool = True
) -> str | None:
    """Restores the newest checkpoint of `model_dir` that reads into `checkpoint`; returns its path (None: none yet).

    The newer ones that cannot be read are named in one line each and moved to checkpoints/damaged/ (unless
    `set_aside` is False: a worker that does not own the folder). When none reads, the newest one's error is raised
    and nothing is moved.
    """
    folder = directory(model_dir)
    state = tf.train.get_checkpoint_state(os.fspath(folder))
    newest_first = list(reversed(state.all_model_checkpoint_paths)) if state else []
    unreadable: list[Unreadable] = []
    for i, path in enumerate(newest_first):
        try:
            restore(checkpoint, path)
        except Unreadable as e:
            unreadable.append(e)
            continue
        for damaged, error in zip(newest_first[:i], unreadable, strict=True):
            if set_aside:
                _set_aside(damaged, newest_first[i:])
            note(f"note: {error.damage}; set aside in {folder / DAMAGED}; using {path}")
        return path
    if unreadable:
        raise unreadable[0]
    return None


def _set_aside(path: str, remaining_newest_first: list[str]) -> None:
    """Moves one checkpoint's files to checkpoints/damaged/ and points the folder's index at the remaining ones."""
    folder = Path(path).parent
    damaged = folder / DAMAGED
    damaged.mkdir(exist_ok=True)
    for file in folder.glob(Path(path).name + ".*"):
        target, n = damaged / file.name, 1
        while target.exists():
            target, n = damaged / f"{file.name}.{n}", n + 1
        file.rename(target)
    tf.compat.v1.train.update_checkpoint_state(
        os.fspath(folder), remaining_newest_first[0], list(reversed(remaining_newest_first))
    )


def restore_model(model: keras.Model, model_dir: str | os.PathLike, config: Config, note: Note | None = None) -> str:
    """Which checkpoint is the model, restored into `model`: early stopping's best epoch when the run had it (what
    training tested and exported), else the newest checkpoint that reads. Returns its path."""
    note = note or (lambda line: print(line, file=sys.stderr))
    checkpoint = tf.train.Checkpoint(model=model)
    best = tf.train.latest_checkpoint(os.fspath(best_directory(model_dir)))
    try:
        if config.early_stopping_patience and best:
            restore(checkpoint, best)
            return best
        path = resume(checkpoint, model_dir, note)
    except MnistTfError as e:  # the run is read here, not resumed: --fresh is no way out
        raise MnistTfError(
            f"{str(e).removesuffix(f'; {_START_OVER}')}: the run in {model_dir} cannot be used"
        ) from None
    if path is None:
        raise MnistTfError(f"no checkpoint in {directory(model_dir)}: the run has not saved one yet")
    return path


@dataclasses.dataclass(frozen=True)
class Resumed:
    """What a run saves and restores, where it resumed from, and how it stops when told to."""

    checkpoint: tf.train.Checkpoint
    manager: tf.train.CheckpointManager
    stopper: EarlyStopping | None
    guard: interruption.Guard
    path: str | None  # the checkpoint resumed from
    changes: list[str]  # settings changed since that checkpoint


# When to checkpoint mid-epoch.

# Under multi-worker every worker must save at the same step, but their clocks differ: they agree on "the time
# has come" by an all-reduce, every this many steps (a collective per step would cost more than the saves).
AGREE_EVERY_STEPS = 20


class CheckpointClock:
    """Says at which step boundaries a mid-epoch checkpoint is due: every N steps and/or every N seconds, so that
    a SIGKILL, an out-of-memory kill or a power cut loses at most that much work."""

    def __init__(
        self,
        every_steps: int,
        every_seconds: float,
        agree: Callable[[bool], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`agree(due)` is True if any worker's `due` is (None: a single process, whose own clock decides)."""
        self.every_steps, self.every_seconds, self.agree, self.clock = every_steps, every_seconds, agree, clock
        self.last_save = clock()

    def saved(self) -> None:
        """A checkpoint was written (by the clock, an epoch's end or a stop request): the seconds count from here."""
        self.last_save = self.clock()

    def due(self, first: int, last: int) -> bool:
        """After a call that trained global steps `first`..`last` (1-based): checkpoint at `last`?"""
        if self.every_steps and last // self.every_steps > (first - 1) // self.every_steps:
            return True
        if not self.every_seconds:
            return False
        late = self.clock() - self.last_save >= self.every_seconds
        if self.agree is None:
            return late
        if last // AGREE_EVERY_STEPS == (first - 1) // AGREE_EVERY_STEPS:
            return False
        return self.agree(late)


# Early stopping's state and best weights.


class EarlyStopping:
    """Says when the validation loss has not improved for `patience` epochs, and keeps the best epoch's weights.

    Its state (best loss, best epoch, last epoch) is variables that go into the run's checkpoint, and the best
    weights are a checkpoint of their own in `<model_dir>/checkpoints/best/`: a run resumed after an interruption
    stops at the epoch an uninterrupted one would, and ends with the same weights. The loss is the one training
    minimizes (`--loss`), measured on the validation split, so improving means going down at all.
    """

    def __init__(self, patience: int, model: keras.Model, model_dir: Path) -> None:
        self.patience = patience
        self.best_loss = tf.Variable(math.inf, dtype=tf.float64, trainable=False, name="best_loss")
        self.best_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="best_epoch")  # 1-based; 0: none
        self.last_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="last_epoch")
        directory = os.fspath(best_directory(model_dir))
        self._best = tf.train.CheckpointManager(tf.train.Checkpoint(model=model), directory, max_to_keep=1)

    def state(self) -> dict[str, tf.Variable]:
        """What the run's checkpoint must hold for a resumed run to decide as this one would."""
        return {"best_loss": self.best_loss, "best_epoch": self.best_epoch, "last_epoch": self.last_epoch}

    def update(self, epoch: int, validation_loss: float) -> None:
        """Records epoch `epoch` (1-based); saves the model's weights when its loss is the best so far."""
        self.last_epoch.assign(epoch)
        if validation_loss < float(self.best_loss.numpy()):
            self.best_loss.assign(validation_loss)
            self.best_epoch.assign(epoch)
            save(self._best, epoch)

    def should_stop(self) -> bool:
        return int(self.last_epoch.numpy()) - int(self.best_epoch.numpy()) >= self.patience

    def restore_best(self) -> None:
        """Puts the best epoch's weights back into the model (nothing to do when the last epoch was the best)."""
        if int(self.best_epoch.numpy()) != int(self.last_epoch.numpy()):
            restore(self._best.checkpoint, self._best.latest_checkpoint)

    def summary(self) -> dict[str, int | float | bool]:
        return {
            "patience": self.patience,
            "stopped_early": self.should_stop(),
            "epochs_trained": int(self.last_epoch.numpy()),
            "best_epoch": int(self.best_epoch.numpy()),
            "best_validation_loss": float(self.best_loss.numpy()),
        }
