"""The architectures, as Keras functional models built from our low-level layers (or Keras's, for comparison).

Both take float32 images [batch, rows, cols, 1] in [0, 1] and return float32 logits [batch, 10]; softmax lives
in the loss and in the serving signature, where it is numerically safest.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import keras

from mnist_tf import layers
from mnist_tf.config import Config

NUM_CLASSES = 10


class LayerKit:
    """Makes the layers an architecture needs, each with its own seed drawn from one base seed.

    Every layer computes in `dtype` (a Keras dtype policy: "float32", or "mixed_bfloat16"/"mixed_float16" with
    float32 weights); the logits layer always computes in float32, so softmax and the loss see float32 logits.
    """

    def __init__(self, seed: int, dtype: str | keras.DTypePolicy = "float32") -> None:
        self._seeds: Iterator[int] = itertools.count(seed * 1000)
        self.dtype = dtype


class OurLayers(LayerKit):
    """Layers from `mnist_tf.layers`: the default."""

    def dense(self, units: int, activation: str, name: str, dtype: str | None = None) -> keras.layers.Layer:
        return layers.Dense(units, activation=activation, seed=next(self._seeds), name=name, dtype=dtype or self.dtype)

    def conv(self, filters: int, activation: str, name: str) -> keras.layers.Layer:
        return layers.Conv2D(filters, 5, activation=activation, seed=next(self._seeds), name=name, dtype=self.dtype)

    def max_pool(self, name: str) -> keras.layers.Layer:
        return layers.MaxPool2D(2, name=name, dtype=self.dtype)

    def flatten(self, name: str) -> keras.layers.Layer:
        return layers.Flatten(name=name, dtype=self.dtype)

    def dropout(self, rate: float, name: str) -> keras.layers.Layer:
        return layers.Dropout(rate, seed=next(self._seeds), name=name, dtype=self.dtype)


class KerasLayers(LayerKit):
    """Keras built-in layers (`--layers=keras`) in the same roles, initialized the same way."""

    def _initializer(self, activation: str) -> keras.initializers.Initializer:
        name = layers.default_initializer(activation)
        return {"he_uniform": keras.initializers.HeUniform, "glorot_uniform": keras.initializers.GlorotUniform}[name](
            seed=next(self._seeds)
        )

    def dense(self, units: int, activation: str, name: str, dtype: str | None = None) -> keras.layers.Layer:
        return keras.layers.Dense(
            units,
            activation=activation,
            kernel_initializer=self._initializer(activation),
            name=name,
            dtype=dtype or self.dtype,
        )

    def conv(self, filters: int, activation: str, name: str) -> keras.layers.Layer:
        return keras.layers.Conv2D(
            filters,
            5,
            activation=activation,
            kernel_initializer=self._initializer(activation),
            name=name,
            dtype=self.dtype,
        )

    def max_pool(self, name: str) -> keras.layers.Layer:
        return keras.layers.MaxPool2D(2, name=name, dtype=self.dtype)

    def flatten(self, name: str) -> keras.layers.Layer:
        return keras.layers.Flatten(name=name, dtype=self.dtype)

    def dropout(self, rate: float, name: str) -> keras.layers.Layer:
        return keras.layers.Dropout(rate, seed=next(self._seeds), name=name, dtype=self.dtype)


def mlp(
    kit: OurLayers | KerasLayers,
    image_shape: Sequence[int] = (28, 28, 1),
    hidden_units: Sequence[int] = (800, 800),
    activation: str = "relu",
    dropout: float = 0.2,
) -> keras.Model:
    """Flatten -> [Dense(units, activation) -> Dropout] per hidden size -> Dense(10) logits."""
    images = keras.Input(shape=tuple(image_shape), name="images")
    x = kit.flatten("flatten")(images)
    for i, units in enumerate(hidden_units, start=1):
        x = kit.dense(units, activation, f"dense{i}")(x)
        if dropout:
            x = kit.dropout(dropout, f"dropout{i}")(x)
    logits = kit.dense(NUM_CLASSES, "linear", "logits", dtype="float32")(x)
    return keras.Model(images, logits, name="mlp")


def lenet(
    kit: OurLayers | KerasLayers,
    image_shape: Sequence[int] = (28, 28, 1),
    filters: Sequence[int] = (20, 50),
    dense_units: int = 500,
    activation: str = "relu",
    dropout: float = 0.25,
) -> keras.Model:
    """LeNet: [Conv 5x5 (valid) -> MaxPool 2x2] x 2 -> Dense -> Dropout -> Dense(10) logits."""
    images = keras.Input(shape=tuple(image_shape), name="images")
    x = images
    for i, count in enumerate(filters, start=1):
        x = kit.conv(count, activation, f"conv{i}")(x)
        x = kit.max_pool(f"pool{i}")(x)
    x = kit.flatten("flatten")(x)
    x = kit.dense(dense_units, activation, "dense1")(x)
    if dropout:
        x = kit.dropout(dropout, "dropout1")(x)
    logits = kit.dense(NUM_CLASSES, "linear", "logits", dtype="float32")(x)
    return keras.Model(images, logits, name="lenet")


def build(config: Config, image_shape: Sequence[int], dtype: str | keras.DTypePolicy = "float32") -> keras.Model:
    """The model a resolved `config` asks for, computing in `dtype` (a policy); call under the strategy's scope."""
    kit = (OurLayers if config.layers == "ours" else KerasLayers)(config.seed, dtype)
    if config.model == "mlp":
        return mlp(kit, image_shape, config.hidden_units, config.activation, config.dropout)
    return lenet(kit, image_shape, config.filters, config.hidden_units[0], config.activation, config.dropout)
