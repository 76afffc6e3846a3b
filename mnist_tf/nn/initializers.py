"""Seeded, stateless kernel initializers (ours), by name, and the Keras built-in that matches each.

The same seed and shape always give the same values, so a model built twice from one seed is the same model.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import keras
import tensorflow as tf


def _fans(shape: Sequence[int]) -> tuple[int, int]:
    """(fan_in, fan_out) of a Dense kernel [in, out] or a conv kernel [h, w, in, out]."""
    receptive_field = math.prod(shape[:-2]) if len(shape) > 2 else 1
    return shape[-2] * receptive_field, shape[-1] * receptive_field


class Initializer:
    """A seeded, stateless initializer: the same seed and shape always give the same values."""

    def __init__(self, seed: int | None = None) -> None:
        self.seed = random.randrange(2**31) if seed is None else seed

    def __call__(self, shape: Sequence[int], dtype: tf.DType | str | None = None) -> tf.Tensor:
        return tf.cast(self.sample(tuple(shape)), dtype or tf.float32)

    def sample(self, shape: tuple[int, ...]) -> tf.Tensor:
        raise NotImplementedError

    def _uniform(self, shape: tuple[int, ...], limit: float) -> tf.Tensor:
        return tf.random.stateless_uniform(shape, seed=[self.seed, 0], minval=-limit, maxval=limit)


class GlorotUniform(Initializer):
    """U(-l, l) with l = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010): keeps variance for tanh/sigmoid."""

    def sample(self, shape: tuple[int, ...]) -> tf.Tensor:
        fan_in, fan_out = _fans(shape)
        return self._uniform(shape, math.sqrt(6.0 / (fan_in + fan_out)))


class HeUniform(Initializer):
    """U(-l, l) with l = sqrt(6 / fan_in) (He et al. 2015): keeps variance through ReLUs."""

    def sample(self, shape: tuple[int, ...]) -> tf.Tensor:
        fan_in, _ = _fans(shape)
        return self._uniform(shape, math.sqrt(6.0 / fan_in))


class Uniform(Initializer):
    """U(-0.05, 0.05) whatever the shape: Keras 1's 'uniform', which older tutorials (and `keras_mlp`) use."""

    LIMIT = 0.05

    def sample(self, shape: tuple[int, ...]) -> tf.Tensor:
        return self._uniform(shape, self.LIMIT)


class Zeros(Initializer):
    def sample(self, shape: tuple[int, ...]) -> tf.Tensor:
        return tf.zeros(shape)


INITIALIZERS: dict[str, type[Initializer]] = {
    "glorot_uniform": GlorotUniform,
    "he_uniform": HeUniform,
    "uniform": Uniform,
    "zeros": Zeros,
}
KERNEL_INITIALIZERS = tuple(name for name in INITIALIZERS if name != "zeros")  # --kernel_initializer's choices


def default_initializer(activation: str) -> str:
    """He for the ReLU family, Glorot otherwise."""
    return "he_uniform" if activation in ("relu", "elu", "gelu") else "glorot_uniform"


def keras_initializer(name: str, seed: int) -> keras.initializers.Initializer:
    """The Keras built-in that draws from the same distribution as our initializer `name` (`--layers=keras`)."""
    if name == "uniform":
        return keras.initializers.RandomUniform(-Uniform.LIMIT, Uniform.LIMIT, seed)
    return {"he_uniform": keras.initializers.HeUniform, "glorot_uniform": keras.initializers.GlorotUniform}[name](seed)
