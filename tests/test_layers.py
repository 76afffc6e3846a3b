"""Each low-level layer equals its Keras built-in counterpart given the same weights: forward and gradients."""

import functools
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from mnist_tf.nn import initializers, layers

pytestmark = pytest.mark.versions  # equal to the layers of the Keras installed, whichever it is

RNG = np.random.default_rng(0)


def _outputs_and_gradients(layer: keras.layers.Layer, inputs: np.ndarray):
    """Forward output, and gradients of a fixed random projection of it w.r.t. the input and each weight."""
    x = tf.constant(inputs)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = layer(x)
        projection = tf.constant(np.random.default_rng(1).normal(size=y.shape).astype(np.float32))
        objective = tf.reduce_sum(y * projection)
    gradients = [tape.gradient(objective, x)] + [tape.gradient(objective, w) for w in layer.trainable_variables]
    return y.numpy(), [g.numpy() for g in gradients]


def assert_same_as_keras(ours: keras.layers.Layer, theirs: keras.layers.Layer, input_shape: tuple[int, ...]):
    inputs = RNG.normal(size=input_shape).astype(np.float32)
    ours(inputs), theirs(inputs)  # build
    theirs.set_weights([w.numpy() for w in ours.trainable_variables])
    assert [w.shape for w in ours.trainable_variables] == [w.shape for w in theirs.trainable_variables]
    our_y, our_grads = _outputs_and_gradients(ours, inputs)
    their_y, their_grads = _outputs_and_gradients(theirs, inputs)
    np.testing.assert_allclose(our_y, their_y, rtol=1e-5, atol=1e-5)
    for ours_g, theirs_g in zip(our_grads, their_grads, strict=True):
        np.testing.assert_allclose(ours_g, theirs_g, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("activation", ["linear", "relu", "tanh", "sigmoid", "elu", "gelu"])
def test_dense(activation):
    assert_same_as_keras(
        layers.Dense(7, activation=activation, seed=1), keras.layers.Dense(7, activation=activation), (5, 12)
    )


def test_dense_on_rank_3_inputs():
    assert_same_as_keras(layers.Dense(4, seed=1), keras.layers.Dense(4), (2, 3, 6))


@pytest.mark.parametrize(
    "kernel_size, strides, padding", [(5, 1, "valid"), (3, 1, "same"), (3, 2, "same"), ((2, 3), (2, 1), "valid")]
)
def test_conv2d(kernel_size, strides, padding):
    ours = layers.Conv2D(6, kernel_size, strides=strides, padding=padding, activation="relu", seed=2)
    theirs = keras.layers.Conv2D(6, kernel_size, strides=strides, padding=padding, activation="relu")
    assert_same_as_keras(ours, theirs, (2, 11, 11, 3))


@pytest.mark.parametrize("pool_size, strides, padding", [(2, None, "valid"), (3, 2, "same"), (2, 1, "valid")])
def test_max_pooling(pool_size, strides, padding):
    ours, theirs = layers.MaxPool2D(pool_size, strides, padding), keras.layers.MaxPool2D(pool_size, strides, padding)
    assert_same_as_keras(ours, theirs, (2, 9, 9, 4))


def test_flatten():
    assert_same_as_keras(layers.Flatten(), keras.layers.Flatten(), (3, 4, 5, 2))


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "elu", "gelu"])
def test_activation(activation):
    assert_same_as_keras(layers.Activation(activation), keras.layers.Activation(activation), (4, 9))


def test_dropout_is_identity_at_inference_like_keras():
    x = RNG.normal(size=(8, 10)).astype(np.float32)
    np.testing.assert_array_equal(layers.Dropout(0.5, seed=1)(x, training=False), x)
    np.testing.assert_array_equal(keras.layers.Dropout(0.5)(x, training=False), x)


def test_dropout_training_drops_at_rate_and_rescales_like_keras():
    x = tf.ones((200, 500))
    ours = layers.Dropout(0.3, seed=1)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = ours(x, training=True)
    theirs = keras.layers.Dropout(0.3, seed=1)(x, training=True)
    for out in (y, theirs):
        kept = out.numpy() != 0
        assert abs(kept.mean() - 0.7) < 0.01
        np.testing.assert_allclose(out.numpy()[kept], 1 / 0.7, rtol=1e-6)
    # The gradient passes exactly where the mask kept a unit, scaled the same way.
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), y.numpy())


def test_dropout_masks_are_seeded_and_change_every_call():
    x = tf.ones((4, 100))
    a, b = layers.Dropout(0.5, seed=7), layers.Dropout(0.5, seed=7)
    first_a, first_b = a(x, training=True), b(x, training=True)
    np.testing.assert_array_equal(first_a, first_b)
    assert not np.array_equal(first_a, a(x, training=True))
    assert int(a.calls.numpy()) == 2  # the counter is a checkpointed variable


@pytest.mark.parametrize(
    "initializer, keras_initializer, limit",
    [
        (initializers.GlorotUniform, keras.initializers.GlorotUniform, math.sqrt(6 / (3 * 3 * 16 + 3 * 3 * 32))),
        (initializers.HeUniform, keras.initializers.HeUniform, math.sqrt(6 / (3 * 3 * 16))),
        (initializers.Uniform, functools.partial(keras.initializers.RandomUniform, -0.05, 0.05), 0.05),
    ],
)
def test_initializers_match_keras_distribution(initializer, keras_initializer, limit):
    shape = (3, 3, 16, 32)
    ours = initializer(seed=3)(shape).numpy()
    theirs = keras_initializer(seed=3)(shape).numpy()
    for values in (ours, theirs):
        assert np.abs(values).max() <= limit
        assert np.abs(values).max() > 0.95 * limit
        np.testing.assert_allclose(values.std(), limit / math.sqrt(3), rtol=0.05)  # std of U(-l, l)
    np.testing.assert_array_equal(ours, initializer(seed=3)(shape).numpy())  # seeded: repeatable
    assert not np.array_equal(ours, initializer(seed=4)(shape).numpy())


def test_layers_serialize_through_get_config():
    inputs = keras.Input((12, 12, 1))
    x = layers.Conv2D(4, 3, padding="same", activation="tanh", seed=1)(inputs)
    x = layers.MaxPool2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.1, seed=2)(x)
    outputs = layers.Dense(3, seed=3)(x)
    model = keras.Model(inputs, outputs)
    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    batch = RNG.normal(size=(2, 12, 12, 1)).astype(np.float32)
    np.testing.assert_allclose(clone(batch), model(batch), rtol=1e-6)
    assert clone.layers[1].get_config()["seed"] == 1


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="unknown activation"):
        layers.Dense(3, activation="swishy")
    with pytest.raises(ValueError, match="padding"):
        layers.Conv2D(3, 3, padding="full")
    with pytest.raises(ValueError, match="dropout rate"):
        layers.Dropout(1.0)


@pytest.mark.parametrize("shape", [(6, 5, 5, 4), (7, 4)], ids=["images", "features"])
def test_batch_normalization_trains_like_keras_forward_backward_and_moving_averages(shape):
    ours, theirs = layers.BatchNormalization(momentum=0.9), keras.layers.BatchNormalization(momentum=0.9)
    inputs = RNG.normal(2.0, 3.0, size=shape).astype(np.float32)
    ours(inputs), theirs(inputs)  # build
    gamma, beta = RNG.normal(size=(2, 4)).astype(np.float32)
    for layer in (ours, theirs):
        layer.gamma.assign(gamma)
        layer.beta.assign(beta)
    results = []
    for layer in (ours, theirs):
        x = tf.constant(inputs)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            objective = tf.reduce_sum(y * np.random.default_rng(1).normal(size=y.shape).astype(np.float32))
        results.append((y, tape.gradient(objective, [x, layer.gamma, layer.beta]), layer))
    (our_y, our_grads, _), (their_y, their_grads, _) = results
    np.testing.assert_allclose(our_y, their_y, rtol=1e-5, atol=1e-5)
    for ours_g, theirs_g in zip(our_grads, their_grads, strict=True):
        np.testing.assert_allclose(ours_g, theirs_g, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ours.moving_mean, theirs.moving_mean, rtol=1e-5)
    np.testing.assert_allclose(ours.moving_variance, theirs.moving_variance, rtol=1e-5)
    assert not np.allclose(ours.moving_mean, 0)  # the step moved them
    # Inference uses the moving averages: the same answers, and no update.
    np.testing.assert_allclose(ours(inputs, training=False), theirs(inputs, training=False), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours(inputs[:1], training=False), ours(inputs, training=False)[:1], rtol=1e-6)


def test_batch_normalization_computes_its_statistics_in_float32_under_mixed_precision():
    inputs = RNG.normal(size=(8, 3, 3, 2)).astype(np.float32)
    ours = layers.BatchNormalization(dtype="mixed_bfloat16")
    theirs = keras.layers.BatchNormalization(dtype="mixed_bfloat16")
    our_y, their_y = (
        ours(tf.cast(inputs, tf.bfloat16), training=True),
        theirs(tf.cast(inputs, tf.bfloat16), training=True),
    )
    assert our_y.dtype == their_y.dtype == tf.bfloat16 and ours.moving_mean.dtype == tf.float32
    np.testing.assert_allclose(tf.cast(our_y, tf.float32), tf.cast(their_y, tf.float32), atol=1e-2)
    np.testing.assert_allclose(ours.moving_mean, theirs.moving_mean, atol=1e-4)


def test_batch_normalization_over_two_replicas_uses_the_global_batch(two_replicas):
    """Two replicas of a MirroredStrategy (conftest splits the CPU) normalize with the whole batch's statistics:
    outputs, gradients and moving averages equal one replica's on the same global batch."""
    inputs = RNG.normal(1.0, 2.0, size=(8, 4, 4, 3)).astype(np.float32)
    projection = np.random.default_rng(1).normal(size=inputs.shape).astype(np.float32)

    def train_step(layer, x, weights):
        with tf.GradientTape() as tape:
            y = layer(x, training=True)
            objective = tf.reduce_sum(y * weights)
        return y, tape.gradient(objective, layer.trainable_variables)

    single = layers.BatchNormalization(momentum=0.5)
    y1, g1 = train_step(single, tf.constant(inputs), projection)

    strategy = two_replicas
    assert strategy.num_replicas_in_sync == 2
    with strategy.scope():
        mirrored = layers.BatchNormalization(momentum=0.5)
        mirrored.build(inputs.shape)
    data = tf.data.Dataset.from_tensor_slices((inputs, projection)).batch(8)
    x, weights = next(iter(strategy.experimental_distribute_dataset(data)))

    @tf.function
    def distributed_step(x, weights):
        y, gradients = strategy.run(train_step, args=(mirrored, x, weights))
        summed = [strategy.reduce(tf.distribute.ReduceOp.SUM, g, axis=None) for g in gradients]
        return strategy.gather(y, axis=0), summed

    y2, g2 = distributed_step(x, weights)
    np.testing.assert_allclose(y2, y1, rtol=1e-5, atol=1e-5)
    for ours_g, single_g in zip(g2, g1, strict=True):
        np.testing.assert_allclose(ours_g, single_g, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(mirrored.moving_mean.numpy(), single.moving_mean.numpy(), rtol=1e-5)
    np.testing.assert_allclose(mirrored.moving_variance.numpy(), single.moving_variance.numpy(), rtol=1e-5)
