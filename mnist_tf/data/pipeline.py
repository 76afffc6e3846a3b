"""The tf.data pipeline: in-memory uint8 splits -> float32 batches for training and (padded) evaluation.

Training: shuffle indices (seeded, a new order each epoch) -> batch (dropping the remainder, so shapes are static)
-> gather and normalize to float32 in [0, 1] -> prefetch. Evaluation: batch (padded) -> normalize -> cache ->
prefetch.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from mnist_tf.data.sources import Split
from mnist_tf.errors import MnistTfError


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
    shuffle buffer to fill), holds uint8 instead of float32, and leaves the CPU to the train step (docs/performance.md).
    """
    steps = steps_per_epoch(split, batch_size)  # fails on an empty epoch, which would make this dataset spin forever
    images, labels = tf.constant(split.images), tf.constant(split.labels)

    def gather(indices: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return normalize(tf.gather(images, indices), tf.gather(labels, indices))

    first_epoch, skipped = divmod(first_step, steps)
    epochs = tf.data.Dataset.range(first_epoch, np.iinfo(np.int64).max)
    indices = epochs.map(lambda epoch: _epoch_batches(len(split), batch_size, seed, epoch)).unbatch()
    return indices.skip(skipped).map(gather).prefetch(tf.data.AUTOTUNE)  # skipping indices costs nothing


def _epoch_batches(size: int, batch_size: int, seed: int, epoch: tf.Tensor | int) -> tf.Tensor:
    """[steps, batch_size] example indices: the epoch's permutation, less the remainder."""
    order = tf.random.experimental.stateless_shuffle(tf.range(size, dtype=tf.int64), seed=[seed, epoch])
    steps = size // batch_size
    return tf.reshape(order[: steps * batch_size], [steps, batch_size])


def epoch_order(size: int, batch_size: int, seed: int, epoch: int) -> np.ndarray:
    """The example indices of each batch of epoch `epoch` (0-based) of `train_dataset`: for loops outside TF."""
    return _epoch_batches(size, batch_size, seed, tf.constant(epoch, tf.int64)).numpy()


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
