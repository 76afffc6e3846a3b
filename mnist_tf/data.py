"""Data sources, splits and the tf.data pipeline.

Every source ends as the same in-memory uint8 arrays (MNIST is 55 MB), so one pipeline serves them:
- `idx`: a folder with the four LeCun IDX files (`--data_dir`, or the MNIST_TF_DATA_DIR environment variable);
  fully offline.
- `tfds`: `tensorflow-datasets` (`mnist`, `fashion_mnist`). With a `data_dir` as well, tfds builds its own copy
  from those local files instead of downloading them (they are tfds's "manual" downloads).
- `sklearn`: scikit-learn's bundled 8x8 `digits` (1,797 images, pixels 0..16, scaled to 0..255); the last 200
  are the test split, as in the classic examples. Offline too.

Training: shuffle (seeded, a new order each epoch) -> batch (dropping the remainder, so shapes are static) ->
normalize to float32 in [0, 1] -> prefetch. Evaluation: batch (padded) -> normalize -> cache -> prefetch.
"""

from __future__ import annotations

import dataclasses
import os
import socket

import numpy as np
import tensorflow as tf

from mnist_tf import idx
from mnist_tf.errors import MnistTfError, first_line

DATA_DIR_ENV = "MNIST_TF_DATA_DIR"
NUM_CLASSES = 10
_TFDS_DOWNLOAD_HOST = ("storage.googleapis.com", 443)
DIGITS_TEST_SIZE = 200


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


def load(
    dataset: str = "mnist",
    data_dir: str | None = None,
    source: str = "auto",
    validation_size: int = 0,
    tfds_data_dir: str | None = None,
) -> Splits:
    """Loads train/test arrays and holds the last `validation_size` training images out for validation."""
    digits = dataset == "digits"
    if (digits and (data_dir or source not in ("auto", "sklearn"))) or (not digits and source == "sklearn"):
        raise MnistTfError(
            f"--dataset={dataset} --source={source}{' --data_dir' if data_dir else ''}: the digits ship with "
            "scikit-learn (--source=sklearn or auto, no --data_dir); the other data sets come from idx or tfds"
        )
    data_dir = data_dir or os.environ.get(DATA_DIR_ENV) or None
    if source == "auto":
        source = "sklearn" if dataset == "digits" else "idx" if data_dir else "tfds"
    if source == "sklearn":
        train, test = _load_digits()
        where = "sklearn:digits"
    elif source == "idx":
        if not data_dir:
            raise MnistTfError(f"the idx source needs --data_dir or ${DATA_DIR_ENV}")
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


def normalize_images(images: tf.Tensor) -> tf.Tensor:
    """uint8 pixels -> float32 in [0, 1]: what the models take. Shared by the pipeline and the SavedModel."""
    return tf.cast(images, tf.float32) / 255.0


def normalize(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    return normalize_images(images), tf.cast(labels, tf.int32)


def train_dataset(split: Split, batch_size: int, seed: int, first_step: int = 0) -> tf.data.Dataset:
    """The batches of global steps `first_step`, `first_step + 1`, ... (0-based) of every epoch, end to end.

    Epoch e is shuffled with seed (seed, e): seeding by the epoch's number (not by how many epochs this iterator
    has seen) makes a run resumed at any step see exactly the batches an uninterrupted run sees. Each epoch drops
    its last partial batch, so every batch has a static shape and an epoch is exactly `len(split) // batch_size`
    steps.

    The split already lives in memory, so the pipeline shuffles and batches example *indices* and gathers each
    batch of uint8 images in one op, then normalizes it. Compared with shuffling and batching examples one by one
    from a float32 cache, that is one tf.data element per batch instead of one per image: it starts at once (no
    shuffle buffer to fill), holds 4x less memory, and leaves the CPU to the train step (README, Performance).
    """
    steps = steps_per_epoch(split, batch_size)  # fails on an empty epoch, which would make this dataset spin forever
    images, labels = tf.constant(split.images), tf.constant(split.labels)

    def epoch_batches(epoch: tf.Tensor) -> tf.Tensor:
        """[steps, batch_size] example indices: the epoch's permutation, less the remainder."""
        order = tf.random.experimental.stateless_shuffle(tf.range(len(split), dtype=tf.int64), seed=[seed, epoch])
        return tf.reshape(order[: steps * batch_size], [steps, batch_size])

    def gather(indices: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return normalize(tf.gather(images, indices), tf.gather(labels, indices))

    first_epoch, skipped = divmod(first_step, steps)
    epochs = tf.data.Dataset.range(first_epoch, np.iinfo(np.int64).max)
    batches = epochs.map(epoch_batches).unbatch().skip(skipped)  # skipping indices costs nothing
    return batches.map(gather).prefetch(tf.data.AUTOTUNE)


def steps_per_epoch(split: Split, batch_size: int) -> int:
    """Full batches per epoch (the remainder is dropped); at least one, or a clear error."""
    if len(split) < batch_size:
        raise MnistTfError(f"--batch_size={batch_size} is larger than the training set ({len(split):,} images)")
    return len(split) // batch_size


def eval_dataset(split: Split, batch_size: int) -> tf.data.Dataset:
    """Every example once, in order, as (images, labels, weights) batches of exactly `batch_size`.

    The last batch is padded with blank images of weight 0: shapes stay static (TPUs need that), every replica
    gets an equal share of every batch, and metrics weighted by `weights` count each real example exactly once.
    """
    padding = -len(split) % batch_size
    images = np.concatenate([split.images, np.zeros((padding, *split.images.shape[1:]), split.images.dtype)])
    labels = np.concatenate([split.labels, np.zeros(padding, split.labels.dtype)])
    weights = np.concatenate([np.ones(len(split), np.float32), np.zeros(padding, np.float32)])
    examples = tf.data.Dataset.from_tensor_slices((images, labels, weights)).batch(batch_size, drop_remainder=True)
    return examples.map(lambda x, y, w: (*normalize(x, y), w)).cache().prefetch(tf.data.AUTOTUNE)


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
    import tensorflow_datasets as tfds  # imported here: the idx source must work without touching tfds

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
