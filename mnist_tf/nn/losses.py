"""Per-example losses by name, from float32 logits and integer labels.

Cross-entropy is the default and the right choice for classification. `mse` and `logcosh` are here because
classic tutorials train with them (`digits_cnn` uses log-cosh): as in Keras, they compare the softmax
probabilities with one-hot targets and average over the classes. `tests/test_losses.py` proves each equal to
its Keras counterpart.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import tensorflow as tf


def cross_entropy(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)


def mse(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(tf.square(_errors(labels, logits)), axis=-1)


def logcosh(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """mean(log(cosh(error))), as x + softplus(-2x) - log 2: cosh overflows float32 for |x| > 89, this never does."""
    errors = _errors(labels, logits)
    return tf.reduce_mean(errors + tf.math.softplus(-2.0 * errors) - math.log(2.0), axis=-1)


def _errors(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Softmax probabilities minus one-hot targets, [batch, classes]."""
    return tf.nn.softmax(logits) - tf.one_hot(labels, tf.shape(logits)[-1], dtype=logits.dtype)


def cross_entropy_to_uniform(logits: tf.Tensor) -> tf.Tensor:
    """Cross-entropy against the uniform distribution, logsumexp(z) - mean(z): at its least, log(classes), for a
    flat answer (outlier exposure's loss on what is of no class, Hendrycks et al. 2019)."""
    return tf.reduce_logsumexp(logits, axis=-1) - tf.reduce_mean(logits, axis=-1)


def label_smoothed_cross_entropy(smoothing: float) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """Cross-entropy against targets of 1 - smoothing + smoothing / classes for the label and smoothing / classes
    for the others (Szegedy et al., 2016): the model is not pushed to infinitely confident logits."""

    def loss(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
        classes = tf.shape(logits)[-1]
        targets = tf.one_hot(labels, classes, dtype=logits.dtype) * (1.0 - smoothing)
        targets += smoothing / tf.cast(classes, logits.dtype)
        return tf.nn.softmax_cross_entropy_with_logits(targets, logits)

    return loss


LOSSES: dict[str, Callable[[tf.Tensor, tf.Tensor], tf.Tensor]] = {
    "cross_entropy": cross_entropy,
    "logcosh": logcosh,
    "mse": mse,
}
