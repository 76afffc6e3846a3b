"""The architectures, as Keras functional models built from our low-level layers (or Keras's, for comparison).

All take float32 images [batch, rows, cols, 1] in [0, 1] and return float32 logits [batch, 10]; softmax lives
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
    Kernels start from `initializer` (a `layers.INITIALIZERS` name), or "auto": He for ReLUs, Glorot otherwise.
    """

    def __init__(self, seed: int, dtype: str | keras.DTypePolicy = "float32", initializer: str = "auto") -> None:
        self._seeds: Iterator[int] = itertools.count(seed * 1000)
        self.dtype = dtype
        self.initializer = initializer

    def _initializer_name(self, activation: str) -> str:
        return layers.default_initializer(activation) if self.initializer == "auto" else self.initializer


class OurLayers(LayerKit):
    """Layers from `mnist_tf.layers`: the default."""

    def dense(self, units: int, activation: str, name: str, dtype: str | None = None) -> keras.layers.Layer:
        return layers.Dense(
            units,
            activation=activation,
            kernel_initializer=self._initializer_name(activation),
            seed=next(self._seeds),
            name=name,
            dtype=dtype or self.dtype,
        )

    def conv(self, filters: int, size: int, activation: str, name: str) -> keras.layers.Layer:
        return layers.Conv2D(
            filters,
            size,
            activation=activation,
            kernel_initializer=self._initializer_name(activation),
            seed=next(self._seeds),
            name=name,
            dtype=self.dtype,
        )

    def max_pool(self, name: str) -> keras.layers.Layer:
        return layers.MaxPool2D(2, name=name, dtype=self.dtype)

    def flatten(self, name: str) -> keras.layers.Layer:
        return layers.Flatten(name=name, dtype=self.dtype)

    def dropout(self, rate: float, name: str) -> keras.layers.Layer:
        return layers.Dropout(rate, seed=next(self._seeds), name=name, dtype=self.dtype)


class KerasLayers(LayerKit):
    """Keras built-in layers (`--layers=keras`) in the same roles, initialized the same way."""

    def _initializer(self, activation: str) -> keras.initializers.Initializer:
        seed = next(self._seeds)
        return {
            "he_uniform": lambda: keras.initializers.HeUniform(seed),
            "glorot_uniform": lambda: keras.initializers.GlorotUniform(seed),
            "uniform": lambda: keras.initializers.RandomUniform(-layers.Uniform.LIMIT, layers.Uniform.LIMIT, seed),
        }[self._initializer_name(activation)]()

    def dense(self, units: int, activation: str, name: str, dtype: str | None = None) -> keras.layers.Layer:
        return keras.layers.Dense(
            units,
            activation=activation,
            kernel_initializer=self._initializer(activation),
            name=name,
            dtype=dtype or self.dtype,
        )

    def conv(self, filters: int, size: int, activation: str, name: str) -> keras.layers.Layer:
        return keras.layers.Conv2D(
            filters,
            size,
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
    conv_dropout: float = 0.0,
) -> keras.Model:
    """LeNet: [Conv 5x5 (valid) -> MaxPool 2x2] x 2 -> [Dropout] -> Dense -> Dropout -> Dense(10) logits."""
    images = keras.Input(shape=tuple(image_shape), name="images")
    x = images
    for i, count in enumerate(filters, start=1):
        x = kit.conv(count, 5, activation, f"conv{i}")(x)
        x = kit.max_pool(f"pool{i}")(x)
    return _classifier_head(kit, images, x, dense_units, activation, dropout, conv_dropout, "lenet")


def cnn(
    kit: OurLayers | KerasLayers,
    image_shape: Sequence[int] = (28, 28, 1),
    filters: Sequence[int] = (32, 64),
    dense_units: int = 128,
    activation: str = "relu",
    dropout: float = 0.5,
    conv_dropout: float = 0.25,
) -> keras.Model:
    """Keras's classic `mnist_cnn` example: Conv 3x3 -> Conv 3x3 -> MaxPool 2x2 -> Dropout -> Dense -> Dropout ->
    Dense(10) logits. Two convolutions before one pooling keep it usable on images as small as 8x8."""
    images = keras.Input(shape=tuple(image_shape), name="images")
    x = images
    for i, count in enumerate(filters, start=1):
        x = kit.conv(count, 3, activation, f"conv{i}")(x)
    x = kit.max_pool("pool1")(x)
    return _classifier_head(kit, images, x, dense_units, activation, dropout, conv_dropout, "cnn")


def _classifier_head(
    kit: OurLayers | KerasLayers,
    images: keras.KerasTensor,
    features: keras.KerasTensor,
    dense_units: int,
    activation: str,
    dropout: float,
    conv_dropout: float,
    name: str,
) -> keras.Model:
    """What follows the convolutions: [Dropout] -> Flatten -> Dense -> [Dropout] -> Dense(10) logits."""
    x = kit.dropout(conv_dropout, "conv_dropout")(features) if conv_dropout else features
    x = kit.flatten("flatten")(x)
    x = kit.dense(dense_units, activation, "dense1")(x)
    if dropout:
        x = kit.dropout(dropout, "dropout1")(x)
    logits = kit.dense(NUM_CLASSES, "linear", "logits", dtype="float32")(x)
    return keras.Model(images, logits, name=name)


def build(config: Config, image_shape: Sequence[int], dtype: str | keras.DTypePolicy = "float32") -> keras.Model:
    """The model a resolved `config` asks for, computing in `dtype` (a policy); call under the strategy's scope."""
    kit = (OurLayers if config.layers == "ours" else KerasLayers)(config.seed, dtype, config.kernel_initializer)
    if config.model == "mlp":
        return mlp(kit, image_shape, config.hidden_units, config.activation, config.dropout)
    architecture = lenet if config.model == "lenet" else cnn
    return architecture(
        kit,
        image_shape,
        config.filters,
        config.hidden_units[0],
        config.activation,
        config.dropout,
        config.conv_dropout,
    )
