"""Our losses equal Keras's: cross-entropy on logits; mse and log-cosh on softmax probabilities and one-hot labels."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mnist_tf.nn import losses

LABELS = np.array([0, 3, 9, 3, 5])


def _logits(scale: float) -> tf.Tensor:
    return tf.constant(np.random.default_rng(0).normal(0, scale, (len(LABELS), 10)), tf.float32)


@pytest.mark.parametrize("scale", [1.0, 50.0])  # 50: softmax saturates, errors near +-1
@pytest.mark.parametrize(
    "name, keras_loss, on_probabilities",
    [
        ("cross_entropy", keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None), False),
        ("mse", keras.losses.MeanSquaredError(reduction=None), True),
        ("logcosh", keras.losses.LogCosh(reduction=None), True),
    ],
)
def test_loss_equals_keras(name, keras_loss, on_probabilities, scale):
    logits = _logits(scale)
    ours = losses.LOSSES[name](tf.constant(LABELS), logits)
    if on_probabilities:
        theirs = keras_loss(tf.one_hot(LABELS, 10), tf.nn.softmax(logits))
    else:
        theirs = keras_loss(LABELS, logits)
    assert ours.shape == (len(LABELS),)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", list(losses.LOSSES))
def test_loss_is_smallest_for_confident_right_answers(name):
    right = tf.one_hot(LABELS, 10) * 20.0
    wrong = tf.one_hot((LABELS + 1) % 10, 10) * 20.0
    loss = losses.LOSSES[name]
    assert float(tf.reduce_max(loss(LABELS, right))) < 1e-6
    assert float(tf.reduce_min(loss(LABELS, wrong))) > float(tf.reduce_max(loss(LABELS, _logits(1.0))))


@pytest.mark.parametrize("name", list(losses.LOSSES))
def test_loss_gradients_are_finite_for_extreme_logits(name):
    logits = tf.constant([[1e4, -1e4] + [0.0] * 8, [-1e4, 1e4] + [0.0] * 8])
    with tf.GradientTape() as tape:
        tape.watch(logits)
        loss = tf.reduce_sum(losses.LOSSES[name](tf.constant([0, 0]), logits))
    assert np.isfinite(loss.numpy()) and np.isfinite(tape.gradient(loss, logits).numpy()).all()
