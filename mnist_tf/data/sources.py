"""Data sets and where they come from: every source ends as the same in-memory uint8 splits.

- `idx`: a folder with the four LeCun IDX files (`--data_dir`, or the MNIST_TF_DATA_DIR environment variable);
  fully offline.
- `tfds`: `tensorflow-datasets` (`DATASETS`' `tfds_name`s). With a `data_dir` as well, tfds builds its own copy
  from those local files instead of downloading them (they are tfds's "manual" downloads).
- `folder`: a folder of image files, one sub-folder per class (`mnist_tf/data/folder.py`); the class names are
  the folders'.
- `sklearn`: scikit-learn's bundled 8x8 `digits` (1,797 images, pixels 0..16, scaled to 0..255); the last 200
  are the test split, as in the classic examples. Offline too.

`load_for(config)` is how training, the benchmark and evaluation load data; every check of a data set against
its source is in `load`.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Callable
from typing import Protocol

import numpy as np
import tensorflow as tf

from mnist_tf.data import folder, idx
from mnist_tf.errors import MnistTfError, first_line

DATA_DIR_ENV = "MNIST_TF_DATA_DIR"
_TFDS_DOWNLOAD_HOST = ("storage.googleapis.com", 443)
DIGITS_TEST_SIZE = 200
DIGITS = tuple("0123456789")  # the class names of every digit data set


@dataclasses.dataclass(frozen=True)
class Dataset:
    """What a `--dataset` is, and the defaults that suit it."""

    class_names: tuple[str, ...]
    validation_size: int  # training images held out for validation by default
    augmentation: str  # `augment.DISTORTIONS`: what varies in its images
    tfds_name: str
    transposed: bool = False  # tfds stores EMNIST's images transposed (as the NIST originals)

    @property
    def handwritten_digits(self) -> bool:
        """What --not_digits teaches the difference from (and the default turns on for)."""
        return self.class_names == DIGITS and self.augmentation == "handwriting"


DATASETS = {
    "mnist": Dataset(DIGITS, 5000, "handwriting", "mnist"),
    "fashion_mnist": Dataset(
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        5000,
        "objects",
        "fashion_mnist",
    ),
    # Kuzushiji-MNIST: ten cursive Japanese characters (hiragana), handwritten like digits.
    "kmnist": Dataset(("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"), 5000, "handwriting", "kmnist"),
    # EMNIST's digits: 240,000 training and 40,000 test digits from the NIST forms MNIST itself came from.
    "emnist_digits": Dataset(DIGITS, 10000, "handwriting", "emnist/digits", transposed=True),
    "digits": Dataset(DIGITS, 200, "handwriting", "digits"),  # scikit-learn's 8x8: 200 of its 1,597
}
NUM_CLASSES = len(DIGITS)  # of every --dataset; a --source=folder has as many as it has class folders
# --source: auto picks sklearn for the digits, else idx when a data folder is given, else tfds; folder reads
# images, one sub-folder per class (mnist_tf/data/folder.py).
SOURCES = ("auto", "idx", "tfds", "sklearn", "folder")


@dataclasses.dataclass(frozen=True)
class Split:
    """Images uint8 [N, rows, cols, 1] and integer labels [N] of one split."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@dataclasses.dataclass(frozen=True)
class Splits:
    train: Split
    validation: Split | None
    test: Split
    source: str  # where the data came from, for logs and results
    class_names: tuple[str, ...] = DIGITS  # label i is class_names[i]
    captured: int = 0  # training images that are captures of others (data/captures.py), after the originals

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.images.shape[1:])


class DataSettings(Protocol):
    """The settings `load_for` reads; a resolved `Config` has them all."""

    dataset: str
    data_dir: str | None
    source: str
    validation_size: int
    tfds_data_dir: str | None


def load_for(settings: DataSettings, note: Callable[[str], None] = print) -> Splits:
    """The splits that the data settings of a resolved config ask for."""
    return load(
        settings.dataset, settings.data_dir, settings.source, settings.validation_size, settings.tfds_data_dir, note
    )


def load(
    dataset: str = "mnist",
    data_dir: str | None = None,
    source: str = "auto",
    validation_size: int = 0,
    tfds_data_dir: str | None = None,
    note: Callable[[str], None] = print,
) -> Splits:
    """Loads train/test arrays and holds the last `validation_size` training images out for validation; `note`
    gets the lines a folder's skipped files and its cache write."""
    source, data_dir = _resolve_source(dataset, source, data_dir)
    class_names = DATASETS[dataset].class_names
    if source == "sklearn":
        train, test = _load_digits()
        where = "sklearn:digits"
    elif source == "folder":
        loaded = folder.load(data_dir, note)
        train, test, class_names = Split(*loaded.train), Split(*loaded.test), loaded.class_names
        where = f"folder:{data_dir}{' (cached)' if loaded.cached else ''}"
    elif source == "idx":
        train, test = (Split(*_with_channel(*idx.load_split(data_dir, s))) for s in ("train", "test"))
        where = f"idx:{data_dir}"
    else:
        train, test = _load_tfds(DATASETS[dataset], data_dir, tfds_data_dir)
        where = f"tfds:{DATASETS[dataset].tfds_name}"
    if DATASETS[dataset].transposed and source in ("idx", "tfds"):
        train, test = _upright(train), _upright(test)
    train, validation = _hold_out(train, validation_size)
    for name, split in (("train", train), ("test", test)):
        if split.labels.max(initial=0) >= len(class_names):
            raise MnistTfError(f"{where}: {name} labels must be 0..{len(class_names) - 1}, found {split.labels.max()}")
    return Splits(train=train, validation=validation, test=test, source=where, class_names=class_names)


def _resolve_source(dataset: str, source: str, data_dir: str | None) -> tuple[str, str | None]:
    """(the source to read, the data folder): `auto` decided, $MNIST_TF_DATA_DIR applied, mismatches refused."""
    digits = dataset == "digits"
    if (digits and (data_dir or source not in ("auto", "sklearn"))) or (not digits and source == "sklearn"):
        raise MnistTfError(
            f"--dataset={dataset} --source={source}{' --data_dir' if data_dir else ''}: the digits ship with "
            "scikit-learn (--source=sklearn or auto, no --data_dir); the other data sets come from idx, tfds or "
            "a folder"
        )
    data_dir = data_dir or os.environ.get(DATA_DIR_ENV) or None
    if source == "auto":
        source = "sklearn" if digits else "idx" if data_dir else "tfds"
    if source in ("idx", "folder") and not data_dir:
        what = "a folder with the four IDX files" if source == "idx" else "a folder with one sub-folder per class"
        raise MnistTfError(f"--source={source} needs --data_dir or ${DATA_DIR_ENV} ({what})")
    return source, data_dir


def _with_channel(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return images[..., np.newaxis], labels.astype(np.int64)


def _hold_out(train: Split, validation_size: int) -> tuple[Split, Split | None]:
    if validation_size == 0:
        return train, None
    if validation_size >= len(train):
        raise MnistTfError(
            f"--validation_size={validation_size:,} leaves no training data (the train split has {len(train):,})"
        )
    cut = len(train) - validation_size
    return (
        Split(train.images[:cut], train.labels[:cut]),
        Split(train.images[cut:], train.labels[cut:]),
    )


def _load_digits() -> tuple[Split, Split]:
    digits = scikit_learn_digits()
    cut = len(digits.labels) - DIGITS_TEST_SIZE
    return Split(digits.images[:cut], digits.labels[:cut]), Split(digits.images[cut:], digits.labels[cut:])


def scikit_learn_digits(wanted_by: str = "--dataset=digits") -> Split:
    """scikit-learn's 1,797 8x8 digits, uint8 [N, 8, 8, 1] light on dark; one line naming `wanted_by` without it."""
    try:
        from sklearn.datasets import load_digits  # imported here: only these digits need scikit-learn
    except ImportError:
        raise MnistTfError(f"{wanted_by} needs scikit-learn (pip install -r requirements.txt)") from None
    digits = load_digits()
    images = np.rint(digits.images * (255 / 16)).astype(np.uint8)[..., np.newaxis]  # 0..16 -> 0..255
    return Split(images, digits.target.astype(np.int64))


def _load_tfds(dataset: Dataset, manual_dir: str | None, tfds_data_dir: str | None) -> tuple[Split, Split]:
    try:
        import tensorflow_datasets as tfds  # imported here: the idx source must work without it
    except ImportError:
        raise MnistTfError(
            "the tfds source needs tensorflow-datasets (pip install tensorflow-datasets); or pass --data_dir=DIR "
            "with the four IDX files"
        ) from None

    tfds.disable_progress_bar()
    try:
        builder = tfds.builder(dataset.tfds_name, data_dir=tfds_data_dir)
        if not builder.is_prepared():
            if manual_dir is None:
                _require_network(dataset.tfds_name, builder.data_dir)
            download_config = tfds.download.DownloadConfig(manual_dir=manual_dir)
            builder.download_and_prepare(download_config=download_config)
        train, test = (_to_split(builder.as_dataset(split=s, as_supervised=True)) for s in ("train", "test"))
    except MnistTfError:
        raise
    except Exception as e:  # tfds raises many types (download, checksum, io); one line is what a user needs
        raise MnistTfError(f"tfds could not load {dataset.tfds_name!r}: {first_line(e)}") from None
    return train, test


def _to_split(dataset: tf.data.Dataset) -> Split:
    # Large batches, concatenated: `batch_size=-1` in tfds needs a known cardinality, which not every source has.
    batches = list(dataset.batch(8192).as_numpy_iterator())
    return Split(np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches]).astype(np.int64))


def _upright(split: Split) -> Split:
    """A split of a data set stored transposed (EMNIST, in its IDX files and in tfds) turned as MNIST's are."""
    return Split(np.ascontiguousarray(split.images.transpose(0, 2, 1, 3)), split.labels)


def _require_network(dataset: str, tfds_dir: str) -> None:
    """Fails fast (seconds, not minutes of retries) when tfds would have to download with no network."""
    try:
        socket.create_connection(_TFDS_DOWNLOAD_HOST, timeout=3).close()
    except OSError:
        raise MnistTfError(
            f"{dataset!r} is not in the tfds cache ({tfds_dir}) and cannot be downloaded (no network): "
            f"pass --data_dir=DIR (or set ${DATA_DIR_ENV}) to a folder with the four IDX files "
            "(train-images-idx3-ubyte.gz ...)"
        ) from None
