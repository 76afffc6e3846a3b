"""Data sets and where they come from: every source ends as the same in-memory uint8 splits.

- `idx`: a folder with the four LeCun IDX files (`--data_dir`, or the MNIST_TF_DATA_DIR environment variable);
  fully offline.
- `tfds`: `tensorflow-datasets` (`mnist`, `fashion_mnist`). With a `data_dir` as well, tfds builds its own copy
  from those local files instead of downloading them (they are tfds's "manual" downloads).
- `sklearn`: scikit-learn's bundled 8x8 `digits` (1,797 images, pixels 0..16, scaled to 0..255); the last 200
  are the test split, as in the classic examples. Offline too.

`load_for(config)` is how training, the benchmark and evaluation load data; every check of a data set against
its source is in `load`.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from typing import Protocol

import numpy as np
import tensorflow as tf

from mnist_tf.data import idx
from mnist_tf.errors import MnistTfError, first_line

DATA_DIR_ENV = "MNIST_TF_DATA_DIR"
NUM_CLASSES = 10
_TFDS_DOWNLOAD_HOST = ("storage.googleapis.com", 443)
DIGITS_TEST_SIZE = 200

# --dataset -> training images held out for validation by default: MNIST's customary 5,000; 200 of the digits' 1,597.
DATASETS = {"mnist": 5000, "fashion_mnist": 5000, "digits": 200}
DIGIT_DATASETS = ("mnist", "digits")  # handwritten digits: what --not_digits teaches the difference from
# --source: auto picks sklearn for the digits, else idx when a data folder is given, else tfds.
SOURCES = ("auto", "idx", "tfds", "sklearn")


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


def load_for(settings: DataSettings) -> Splits:
    """The splits that the data settings of a resolved config ask for."""
    return load(settings.dataset, settings.data_dir, settings.source, settings.validation_size, settings.tfds_data_dir)


def load(
    dataset: str = "mnist",
    data_dir: str | None = None,
    source: str = "auto",
    validation_size: int = 0,
    tfds_data_dir: str | None = None,
) -> Splits:
    """Loads train/test arrays and holds the last `validation_size` training images out for validation."""
    source, data_dir = _resolve_source(dataset, source, data_dir)
    if source == "sklearn":
        train, test = _load_digits()
        where = "sklearn:digits"
    elif source == "idx":
        train, test = (Split(*_with_channel(*idx.load_split(data_dir, s))) for s in ("train", "test"))
        where = f"idx:{data_dir}"
    else:
        train, test = _load_tfds(dataset, data_dir, tfds_data_dir)
        where = f"tfds:{dataset}"
    train, validation = _hold_out(train, validation_size)
    for name, split in (("train", train), ("test", test)):
        if split.labels.max(initial=0) >= NUM_CLASSES:
            raise MnistTfError(f"{where}: {name} labels must be 0..{NUM_CLASSES - 1}, found {split.labels.max()}")
    return Splits(train=train, validation=validation, test=test, source=where)


def _resolve_source(dataset: str, source: str, data_dir: str | None) -> tuple[str, str | None]:
    """(the source to read, the data folder): `auto` decided, $MNIST_TF_DATA_DIR applied, mismatches refused."""
    digits = dataset == "digits"
    if (digits and (data_dir or source not in ("auto", "sklearn"))) or (not digits and source == "sklearn"):
        raise MnistTfError(
            f"--dataset={dataset} --source={source}{' --data_dir' if data_dir else ''}: the digits ship with "
            "scikit-learn (--source=sklearn or auto, no --data_dir); the other data sets come from idx or tfds"
        )
    data_dir = data_dir or os.environ.get(DATA_DIR_ENV) or None
    if source == "auto":
        source = "sklearn" if digits else "idx" if data_dir else "tfds"
    if source == "idx" and not data_dir:
        raise MnistTfError(f"--source=idx needs --data_dir or ${DATA_DIR_ENV} (a folder with the four IDX files)")
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
    try:
        from sklearn.datasets import load_digits  # imported here: only this data set needs scikit-learn
    except ImportError:
        raise MnistTfError("--dataset=digits needs scikit-learn (pip install -r requirements.txt)") from None
    digits = load_digits()
    images = np.rint(digits.images * (255 / 16)).astype(np.uint8)[..., np.newaxis]  # 0..16 -> 0..255
    labels = digits.target.astype(np.int64)
    cut = len(labels) - DIGITS_TEST_SIZE
    return Split(images[:cut], labels[:cut]), Split(images[cut:], labels[cut:])


def _load_tfds(dataset: str, manual_dir: str | None, tfds_data_dir: str | None) -> tuple[Split, Split]:
    try:
        import tensorflow_datasets as tfds  # imported here: the idx source must work without it
    except ImportError:
        raise MnistTfError(
            "the tfds source needs tensorflow-datasets (pip install tensorflow-datasets); or pass --data_dir=DIR "
            "with the four IDX files"
        ) from None

    tfds.disable_progress_bar()
    try:
        builder = tfds.builder(dataset, data_dir=tfds_data_dir)
        if not builder.is_prepared():
            if manual_dir is None:
                _require_network(dataset, builder.data_dir)
            download_config = tfds.download.DownloadConfig(manual_dir=manual_dir)
            builder.download_and_prepare(download_config=download_config)
        train, test = (_to_split(builder.as_dataset(split=s, as_supervised=True)) for s in ("train", "test"))
    except MnistTfError:
        raise
    except Exception as e:  # tfds raises many types (download, checksum, io); one line is what a user needs
        raise MnistTfError(f"tfds could not load {dataset!r}: {first_line(e)}") from None
    return train, test


def _to_split(dataset: tf.data.Dataset) -> Split:
    # Large batches, concatenated: `batch_size=-1` in tfds needs a known cardinality, which not every source has.
    batches = list(dataset.batch(8192).as_numpy_iterator())
    return Split(np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches]))


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
