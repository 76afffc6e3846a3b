"""Fine-tuning: a trained model (--init_from) taught a small data set, someone's own digits, with defaults that
work for it, and forgetting nothing it was not asked to change.

A run with --init_from on at most SMALL training images fine-tunes. For the settings left at their defaults it
chooses these (docs/datasets.md, Fine-tuning, has what they do, measured), and says so in one line:

  learning rate  LEARNING_RATE: a nudge to the trained weights, not a new start
  batch, epochs  BATCH images, EPOCHS passes over an epoch of about EPOCH_IMAGES: the same steps for any size
  weight decay   WEIGHT_DECAY, toward the starting weights rather than zero (L2-SP, Li et al. 2018)
  distillation   DISTILLATION, a pull toward the starting model's answers on the not-digit images and on the digits
                 it reads right (Learning without Forgetting, Li and Hoiem 2016), for a model of the same classes
  replay         --replay of each epoch from the starting model's own training data (read as its run read it, or
                 from --replay_dir), the user's images repeated to fill the rest; the not-digit images are in
                 every batch, as in any run on digits
  calibration    the temperature and the digit threshold fitted on the starting model's validation split, with the
                 user's own held-out images (--validation_size) when there are any: never on images trained on
  classes        a folder of some of the model's classes (only 1s and 7s) is data of all of them
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from mnist_tf.config import Config, left_to_choose
from mnist_tf.data import sources
from mnist_tf.data.sources import Split, Splits
from mnist_tf.errors import MnistTfError, first_line

SMALL = 10_000  # training images: a run on more trains as any run does
LEARNING_RATE = 5e-4
BATCH = 64
EPOCHS = 5
EPOCH_IMAGES = 3_840  # 60 steps of BATCH
REPLAY = 0.5
WEIGHT_DECAY = 0.01  # toward the starting weights (L2-SP)
DISTILLATION = 1.0  # toward the starting model's answers (Learning without Forgetting)
_SALT = 0x7265706C  # "repl": draws of their own


class StartingModel(Protocol):
    """--init_from's model, opened (an `export.classifier.Classifier`): what the run reads of it."""

    kind: str  # SavedModel, run or checkpoint
    source: str
    config: dict[str, Any]  # the settings it was trained with ({} where its files do not say)
    class_names: tuple[str, ...]
    weights: Callable[[], dict[str, np.ndarray]] | None  # {layer path: value}


def applies(config: Config, splits: Splits) -> bool:
    """Whether `config`'s run on `splits` fine-tunes: it starts from a trained model, on a small data set."""
    return bool(config.init_from) and len(splits.train) <= SMALL


def prepare(config: Config, splits: Splits, base: StartingModel, note: Callable[[str], None]) -> tuple[Config, Splits]:
    """`config` with fine-tuning's defaults for the settings left at theirs, and `splits` with the starting model's
    data replayed in its training split and its validation split in theirs; `note` gets the line that says so."""
    own_classes = splits.class_names
    splits = _in_classes_of(splits, base.class_names)
    same_classes = splits.class_names == base.class_names  # its answers mean what the run's do
    if config.distillation and not same_classes:
        raise MnistTfError(
            f"--distillation keeps the starting model's answers, and its classes ({', '.join(base.class_names)}) "
            f"are not these ({', '.join(own_classes)}): give --distillation=0"
        )
    defaults = {"learning_rate": LEARNING_RATE, "batch_size": BATCH, "epochs": EPOCHS, "weight_decay": WEIGHT_DECAY}
    chosen = {name: value for name, value in defaults.items() if left_to_choose(config, name)}
    if config.distillation is None:  # on for a model of the same classes: answers of others cannot be kept
        chosen["distillation"] = DISTILLATION if same_classes else 0.0
    base_data = _base_data(config, base, splits.class_names)
    replay = (REPLAY if config.replay is None else config.replay) if base_data.splits else 0.0
    config = dataclasses.replace(config, **chosen, replay=replay)
    yours = f"your {len(splits.train):,} images"
    yours += "" if own_classes == splits.class_names else f" (of {', '.join(own_classes)})"
    train, epoch = _epoch(splits.train, yours, base_data, replay, config.seed)
    trained_on = base_data.splits
    validation = [v for v in (trained_on and trained_on.validation, splits.validation) if v]
    settings = ", ".join(f"{name} {getattr(config, name):g}" for name in chosen) or "your settings"
    note(
        f"fine-tuning: {settings} (for {len(splits.train):,} images; a flag you give wins) · an epoch: {epoch} · "
        f"{_calibration(base_data, splits.validation)}"
    )
    return config, dataclasses.replace(splits, train=train, validation=_joined(validation))


def _epoch(own: Split, yours: str, base_data: _BaseData, replay: float, seed: int) -> tuple[Split, str]:
    """An epoch's images: the user's (`own`, which the line calls `yours`), repeated to fill their share of about
    EPOCH_IMAGES, and `replay` of it drawn from the starting model's training split; and how the line says it."""
    repeats = max(1, round(EPOCH_IMAGES * (1 - replay) / len(own)))
    parts = [Split(np.tile(own.images, (repeats, 1, 1, 1)), np.tile(own.labels, repeats))]
    said = [yours + (f" {repeats} times" if repeats > 1 else "")]
    if base_data.splits:
        trained_on = base_data.splits.train
        count = min(round(len(parts[0]) * replay / (1 - replay)), len(trained_on))
        chosen = np.sort(np.random.default_rng([seed, _SALT]).choice(len(trained_on), size=count, replace=False))
        parts.append(Split(trained_on.images[chosen], trained_on.labels[chosen]))
        said.append(f"{count:,} of {base_data.name}'s replayed (--replay={replay:g})" if count else "no replay")
    elif base_data.why_not:
        said.append(base_data.why_not)
    return _joined(parts), " + ".join(said)


def _in_classes_of(splits: Splits, class_names: tuple[str, ...]) -> Splits:
    """A folder of some of the starting model's classes (drawings of 1s and 7s) as data of all its classes: the
    labels renumbered to the model's, which learns them among the others instead of getting a new head."""
    if splits.class_names == class_names or not set(splits.class_names) <= set(class_names):
        return splits
    renumbered = np.array([class_names.index(name) for name in splits.class_names])

    def relabeled(split: Split | None) -> Split | None:
        return split and Split(split.images, renumbered[split.labels])

    return dataclasses.replace(
        splits,
        train=relabeled(splits.train),
        validation=relabeled(splits.validation),
        test=relabeled(splits.test),
        class_names=class_names,
    )


@dataclasses.dataclass(frozen=True)
class _BaseData:
    splits: Splits | None  # the starting model's data, as its run read it
    name: str = ""  # its name, as lines say it
    why_not: str = ""  # why there is none


def _base_data(config: Config, base: StartingModel, class_names: tuple[str, ...]) -> _BaseData:
    """The data the starting model learned from: its training split to replay, its validation split to calibrate
    on; none for a model of other classes, or one that does not say what it learned from."""
    if base.class_names != class_names:
        return _BaseData(None, why_not="no replay: the starting model's classes are not these")
    if not base.config:
        return _BaseData(None, why_not=f"no replay: {base.source} does not say what it was trained on")
    try:
        trained = Config.from_dict(base.config)
    except TypeError:  # settings a later mnist_tf wrote
        return _BaseData(None, why_not=f"no replay: {base.source} was trained with settings this mnist_tf lacks")
    try:
        if config.replay_dir:
            loaded = sources.load(trained.dataset, config.replay_dir, "idx", trained.validation_size)
        else:
            loaded = sources.load_for(trained, note=lambda _: None)
    except MnistTfError as e:
        raise MnistTfError(
            f"fine-tuning reads what the starting model learned from ({trained.data_name}), to replay it and to "
            f"calibrate on, and cannot: {first_line(e)}; give --replay_dir=<a folder with its four IDX files>"
        ) from None
    return _BaseData(loaded, trained.data_name)


def _calibration(base_data: _BaseData, own: Split | None) -> str:
    """Where the run fits its temperature and digit threshold, as its line says it."""
    parts = []
    if base_data.splits and base_data.splits.validation:
        parts.append(f"{len(base_data.splits.validation):,} validation images of {base_data.name}")
    if own:
        parts.append(f"{len(own):,} of yours held out")
    if not parts:
        return "calibrated on the training images: give --validation_size to hold some of yours out"
    return f"calibrated on {' and '.join(parts)}, none of them trained on"


def _joined(splits: list[Split]) -> Split | None:
    if not splits:
        return None
    return Split(np.concatenate([s.images for s in splits]), np.concatenate([s.labels for s in splits]))
