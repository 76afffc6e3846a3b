"""Low-level layers written on variables and raw `tf` / `tf.nn` ops, seeded by our own `initializers`.

They are Keras `Layer` subclasses only so that they compose in the functional API, count parameters, checkpoint
and serialize; the math is ours. `tests/test_layers.py` proves each equal to its Keras built-in counterpart
(forward and gradients) given the same weights. Weights are made with `add_weight`, which under the TensorFlow
backend is a `tf.Variable` that Keras also tracks.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence

import keras
import tensorflow as tf

from mnist_tf.nn.initializers import INITIALIZERS, Zeros, default_initializer

_PACKAGE = "mnist_tf"

ACTIVATIONS: dict[str, Callable[[tf.Tensor], tf.Tensor]] = {
    "linear": tf.identity,
    "relu": tf.nn.relu,
    "tanh": tf.math.tanh,
    "sigmoid": tf.math.sigmoid,
    "elu": tf.nn.elu,
    "gelu": tf.nn.gelu,
}
HIDDEN_ACTIVATIONS = tuple(name for name in ACTIVATIONS if name != "linear")  # --activation's choices


class _Layer(keras.layers.Layer):
    """Shared plumbing: an activation by name, seeded initializers and `get_config` from constructor args."""

    def __init__(self, activation: str = "linear", seed: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; one of {sorted(ACTIVATIONS)}")
        self.activation = activation
        self.seed = random.randrange(2**31) if seed is None else seed

    def _add_kernel_and_bias(self, kernel_shape: tuple[int, ...], initializer: str) -> None:
        self.kernel = self.add_weight(
            shape=kernel_shape, initializer=INITIALIZERS[initializer](self.seed), name="kernel"
        )
        self.bias = self.add_weight(shape=kernel_shape[-1:], initializer=Zeros(), name="bias")

    def get_config(self) -> dict:
        return {**super().get_config(), "activation": self.activation, "seed": self.seed}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Dense(_Layer):
    """y = activation(x @ kernel + bias), on the last axis."""

    def __init__(self, units: int, kernel_initializer: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.kernel_initializer = kernel_initializer or default_initializer(self.activation)

    def build(self, input_shape: Sequence[int | None]) -> None:
        self._add_kernel_and_bias((input_shape[-1], self.units), self.kernel_initializer)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        outputs = tf.tensordot(inputs, self.kernel, axes=1) if inputs.shape.rank > 2 else inputs @ self.kernel
        return ACTIVATIONS[self.activation](tf.nn.bias_add(outputs, self.bias))

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units, "kernel_initializer": self.kernel_initializer}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Conv2D(_Layer):
    """2-D convolution over NHWC images, `tf.nn.conv2d` + bias + activation."""

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, int],
        strides: int | tuple[int, int] = 1,
        padding: str = "valid",
        kernel_initializer: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = _pair(kernel_size)
        self.strides = _pair(strides)
        self.padding = _check_padding(padding)
        self.kernel_initializer = kernel_initializer or default_initializer(self.activation)

    def build(self, input_shape: Sequence[int | None]) -> None:
        self._add_kernel_and_bias((*self.kernel_size, input_shape[-1], self.filters), self.kernel_initializer)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        outputs = tf.nn.conv2d(inputs, self.kernel, strides=self.strides, padding=self.padding.upper())
        return ACTIVATIONS[self.activation](tf.nn.bias_add(outputs, self.bias))

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "kernel_initializer": self.kernel_initializer,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MaxPool2D(keras.layers.Layer):
    """Max over each window (`tf.nn.max_pool2d`)."""

    def __init__(
        self,
        pool_size: int | tuple[int, int] = 2,
        strides: int | tuple[int, int] | None = None,
        padding: str = "valid",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.pool_size = _pair(pool_size)
        self.strides = _pair(strides) if strides is not None else self.pool_size
        self.padding = _check_padding(padding)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return tf.nn.max_pool2d(inputs, self.pool_size, self.strides, self.padding.upper())

    def get_config(self) -> dict:
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides, "padding": self.padding}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Flatten(keras.layers.Layer):
    """[batch, d1, d2, ...] -> [batch, d1 * d2 * ...]."""

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return tf.reshape(inputs, [-1, math.prod(inputs.shape[1:])])


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Activation(_Layer):
    """An activation function by name, as a layer."""

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return ACTIVATIONS[self.activation](inputs)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Dropout(_Layer):
    """Inverted dropout with reproducible masks that do not depend on how the batch is split across replicas.

    The mask is drawn with `tf.random.stateless_uniform`, seeded by (seed, number of training calls so far). The
    call counter is a variable, so it is checkpointed: a resumed run draws the same masks as an uninterrupted one.
    Under a strategy with R replicas, each replica draws the mask of the whole global batch and keeps its own
    slice, so a step drops the same units of the same examples with 1 replica or 8, and training gives the same
    result under every strategy (`tests/test_distribute.py`).
    """

    def __init__(self, rate: float, **kwargs) -> None:
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ValueError(f"dropout rate must be in [0, 1), got {rate}")
        self.rate = rate

    def build(self, input_shape: Sequence[int | None]) -> None:
        self.calls = self.add_weight(
            shape=(),
            dtype="int64",
            initializer="zeros",
            trainable=False,
            aggregation="only_first_replica",
            name="calls",
        )

    def call(self, inputs: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        if not training or self.rate == 0:
            return inputs
        replica = tf.distribute.get_replica_context()
        replicas, index = (replica.num_replicas_in_sync, replica.replica_id_in_sync_group) if replica else (1, 0)
        seed = tf.stack([tf.constant(self.seed, tf.int64), self.calls.value])
        self.calls.assign_add(1)
        batch = tf.shape(inputs)[0]
        global_shape = tf.concat([[batch * replicas], tf.shape(inputs)[1:]], axis=0)
        noise = tf.random.stateless_uniform(global_shape, seed=seed)[index * batch : (index + 1) * batch]
        keep = tf.cast(noise >= self.rate, inputs.dtype)
        return inputs * keep * tf.cast(1 / (1 - self.rate), inputs.dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "rate": self.rate}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BatchNormalization(keras.layers.Layer):
    """Normalizes each channel (the last axis): by its batch's mean and variance while training, by their moving
    averages at inference; then scales by `gamma` and shifts by `beta` (Ioffe and Szegedy, 2015).

    Under a strategy with R replicas the batch is the *global* batch: each replica all-reduces its sums, so every
    replica normalizes with the same statistics and updates the moving averages with the same values, and training
    gives the same model with 1 replica or 8 (as Dropout's masks do). That is Keras's `synchronized=True`; with one
    replica it equals Keras's default. Statistics are computed in float32 under mixed precision, as Keras does.
    The moving averages are model weights: checkpointed, and what a SavedModel serves with (`training=False`).
    """

    def __init__(self, momentum: float = 0.99, epsilon: float = 1e-3, **kwargs) -> None:
        super().__init__(**kwargs)
        if not 0 <= momentum < 1:
            raise ValueError(f"batch normalization momentum must be in [0, 1), got {momentum}")
        self.momentum = momentum
        self.epsilon = epsilon

    def build(self, input_shape: Sequence[int | None]) -> None:
        # float32 inside call() too, under mixed precision (autocast=False): the statistics need its range.
        weight = {"shape": (input_shape[-1],), "autocast": False}
        self.gamma = self.add_weight(initializer="ones", name="gamma", **weight)
        self.beta = self.add_weight(initializer="zeros", name="beta", **weight)
        moving = {**weight, "trainable": False, "aggregation": "mean"}  # equal on every replica
        self.moving_mean = self.add_weight(initializer="zeros", name="moving_mean", **moving)
        self.moving_variance = self.add_weight(initializer="ones", name="moving_variance", **moving)

    def call(self, inputs: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        x = tf.cast(inputs, tf.float32)
        if training:
            mean, variance = _global_moments(x)
            for moving, value in ((self.moving_mean, mean), (self.moving_variance, variance)):
                moving.assign(moving * self.momentum + tf.stop_gradient(value) * (1 - self.momentum))
        else:
            mean, variance = self.moving_mean, self.moving_variance
        outputs = tf.nn.batch_normalization(x, mean, variance, self.beta, self.gamma, self.epsilon)
        return tf.cast(outputs, inputs.dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon}


def _global_moments(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Mean and (biased) variance per channel over every axis but the last, across all replicas' batches."""
    replica = tf.distribute.get_replica_context()
    axes = list(range(x.shape.rank - 1))
    count = tf.cast(tf.size(x) // tf.shape(x)[-1], tf.float32)

    def all_sum(value: tf.Tensor) -> tf.Tensor:
        return replica.all_reduce(tf.distribute.ReduceOp.SUM, value) if replica else value

    total = all_sum(count)
    mean = all_sum(tf.reduce_sum(x, axis=axes)) / total
    variance = all_sum(tf.reduce_sum(tf.math.squared_difference(x, mean), axis=axes)) / total
    return mean, variance


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _check_padding(padding: str) -> str:
    if padding not in ("valid", "same"):
        raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
    return padding
