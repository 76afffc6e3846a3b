"""The architectures, as Keras functional models built from our low-level layers (or Keras's, for comparison).

All take float32 images [batch, rows, cols, 1] in [0, 1] and return float32 logits [batch, classes]; softmax lives
in the loss and in the serving signature, where it is numerically safest.

Each builder shows its layers as Keras's examples do (which layer, kernel size, activation, initializer,
dropout), made by `Layers`: ours or Keras's, the same builder either way (tests/test_models.py). `MODELS` is the
one place an architecture is registered: its builder, its per-model defaults and the settings that shape its
weights (what a checkpoint must match). Its keys are `--model`'s choices.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import ModuleType
from typing import Any

import keras

from mnist_tf.data.sources import NUM_CLASSES
from mnist_tf.nn import layers
from mnist_tf.nn.initializers import default_initializer, keras_initializer


def lenet(nn: Layers, image_shape: Sequence[int], hp: Hyperparameters) -> keras.Model:
    """LeNet: [Conv (valid, 5x5 by default) -> MaxPool 2x2] per entry of `filters`, then `dense_head`."""
    init = hp.initializer(hp.activation)  # the hidden layers' kernels
    images = keras.Input(shape=tuple(image_shape), name="images")
    x = images
    for i, (filters, size) in enumerate(zip(hp.filters, hp.kernel_sizes, strict=True), start=1):
        x = nn.Conv2D(filters, size, activation=hp.activation, kernel_initializer=init, name=f"conv{i}")(x)
        x = nn.MaxPool2D(2, name=f"pool{i}")(x)
    return keras.Model(images, dense_head(nn, x, hp), name="lenet")


def mlp(nn: Layers, image_shape: Sequence[int], hp: Hyperparameters) -> keras.Model:
    """Flatten -> [Dense(units, activation) -> Dropout] per hidden size -> Dense(classes) logits."""
    init = hp.initializer(hp.activation)  # the hidden layers' kernels
    images = keras.Input(shape=tuple(image_shape), name="images")
    x = nn.Flatten(name="flatten")(images)
    for i, units in enumerate(hp.hidden_units, start=1):
        x = nn.Dense(units, activation=hp.activation, kernel_initializer=init, name=f"dense{i}")(x)
        if hp.dropout:
            x = nn.Dropout(hp.dropout, name=f"dropout{i}")(x)
    logits = nn.Dense(hp.classes, kernel_initializer=hp.initializer("linear"), name="logits", dtype="float32")(x)
    return keras.Model(images, logits, name="mlp")


def cnn(nn: Layers, image_shape: Sequence[int], hp: Hyperparameters) -> keras.Model:
    """Keras's classic `mnist_cnn` example: Conv (3x3 by default) per entry of `filters` -> MaxPool 2x2, then
    `dense_head`.
    Two convolutions before one pooling keep it usable on images as small as 8x8."""
    init = hp.initializer(hp.activation)  # the hidden layers' kernels
    images = keras.Input(shape=tuple(image_shape), name="images")
    x = images
    for i, (filters, size) in enumerate(zip(hp.filters, hp.kernel_sizes, strict=True), start=1):
        x = nn.Conv2D(filters, size, activation=hp.activation, kernel_initializer=init, name=f"conv{i}")(x)
    x = nn.MaxPool2D(2, name="pool1")(x)
    return keras.Model(images, dense_head(nn, x, hp), name="cnn")


def dense_head(nn: Layers, features: keras.KerasTensor, hp: Hyperparameters) -> keras.KerasTensor:
    """What follows LeNet's and the CNN's convolutions: [Dropout(conv_dropout)] -> Flatten -> Dense(hidden_units[0],
    activation) -> [Dropout(dropout)] -> Dense(classes) logits."""
    init = hp.initializer(hp.activation)  # the hidden layers' kernels
    x = nn.Dropout(hp.conv_dropout, name="conv_dropout")(features) if hp.conv_dropout else features
    x = nn.Flatten(name="flatten")(x)
    x = nn.Dense(hp.hidden_units[0], activation=hp.activation, kernel_initializer=init, name="dense1")(x)
    if hp.dropout:
        x = nn.Dropout(hp.dropout, name="dropout1")(x)
    return nn.Dense(hp.classes, kernel_initializer=hp.initializer("linear"), name="logits", dtype="float32")(x)


def bncnn(nn: Layers, image_shape: Sequence[int], hp: Hyperparameters) -> keras.Model:
    """A batch-normalized CNN in the spirit of the best single MNIST CNNs (docs/recipes.md has its accuracy).

    Per entry of `filters`: [Conv 3x3 -> BN -> act] x 2 -> Conv 5x5 stride 2 (learned downsampling instead of
    pooling) -> BN -> act -> Dropout(conv_dropout). Then Conv 4x4 of `hidden_units` filters -> BN -> act (a dense
    layer over the 4x4 map that remains of 28x28) -> Flatten -> Dropout -> Dense(classes) logits.
    """
    images = keras.Input(shape=tuple(image_shape), name="images")

    def conv_bn(x: keras.KerasTensor, filters: int, size: int, name: str, strides: int = 1) -> keras.KerasTensor:
        # No activation in the convolution (so Glorot under "auto"): it follows the normalization.
        padding = "same" if strides > 1 else "valid"
        x = nn.Conv2D(
            filters, size, strides=strides, padding=padding, kernel_initializer=hp.initializer("linear"), name=name
        )(x)
        x = nn.BatchNormalization(name=f"{name}_bn")(x)
        return nn.Activation(hp.activation, name=f"{name}_act")(x)

    x = images
    for block, filters in enumerate(hp.filters, start=1):
        x = conv_bn(x, filters, 3, f"block{block}_conv1")
        x = conv_bn(x, filters, 3, f"block{block}_conv2")
        x = conv_bn(x, filters, 5, f"block{block}_down", strides=2)
        if hp.conv_dropout:
            x = nn.Dropout(hp.conv_dropout, name=f"block{block}_dropout")(x)
    x = conv_bn(x, hp.hidden_units[0], 4, "head")
    x = nn.Flatten(name="flatten")(x)
    if hp.dropout:
        x = nn.Dropout(hp.dropout, name="dropout")(x)
    logits = nn.Dense(hp.classes, kernel_initializer=hp.initializer("linear"), name="logits", dtype="float32")(x)
    return keras.Model(images, logits, name="bncnn")


@dataclasses.dataclass(frozen=True)
class Architecture:
    """Everything the project needs to know about one model."""

    build: Callable[[Layers, Sequence[int], Hyperparameters], keras.Model]
    defaults: Mapping[str, Any]  # Config values that depend on the architecture: hidden_units, dropout, filters...
    dense_layers: int | None  # how many hidden sizes --hidden_units takes; None: any number
    # Config fields that decide the weights' shapes: a checkpoint of other values is another model.
    shape_fields: tuple[str, ...] = ("hidden_units", "filters", "kernel_sizes")

    @property
    def conv_layers(self) -> int:
        return len(self.defaults["filters"])


MODELS: dict[str, Architecture] = {
    "lenet": Architecture(
        lenet,
        {"hidden_units": (500,), "dropout": 0.25, "conv_dropout": 0.0, "filters": (20, 50), "kernel_sizes": (5, 5)},
        dense_layers=1,
    ),
    "mlp": Architecture(
        mlp,
        {"hidden_units": (800, 800), "dropout": 0.2, "conv_dropout": 0.0, "filters": (), "kernel_sizes": ()},
        dense_layers=None,
    ),
    "cnn": Architecture(
        cnn,
        {"hidden_units": (128,), "dropout": 0.5, "conv_dropout": 0.25, "filters": (32, 64), "kernel_sizes": (3, 3)},
        dense_layers=1,
    ),
    "bncnn": Architecture(
        bncnn,
        {"hidden_units": (128,), "dropout": 0.4, "conv_dropout": 0.4, "filters": (32, 64), "kernel_sizes": ()},
        dense_layers=1,
    ),
}


# How the layers are made: ours or Keras's, seeded, in the run's precision.

# --layers: where the layer classes come from; both modules name them alike (Dense, Conv2D, ...).
LAYER_LIBRARIES: dict[str, ModuleType] = {"ours": layers, "keras": keras.layers}


class Layers:
    """The layers a model is built from: ours or Keras's (`--layers`), made with the same arguments.

    Each layer with random numbers (a kernel's initializer, dropout's masks) gets its own seed, the next one drawn
    from `seed`, and every layer computes in `dtype` (a Keras dtype policy: "float32", or "mixed_bfloat16" /
    "mixed_float16" with float32 weights) unless it is given its own. Kernel initializers are named
    (`initializers.INITIALIZERS`); Keras's layers get the Keras initializer of the same distribution.
    """

    def __init__(self, library: str = "ours", seed: int = 0, dtype: str | keras.DTypePolicy = "float32") -> None:
        self.ours = library == "ours"
        self._library = LAYER_LIBRARIES[library]
        self._seeds: Iterator[int] = itertools.count(seed * 1000)
        self.dtype = dtype

    def _initializer(self, name: str) -> dict[str, Any]:
        seed = next(self._seeds)
        return (
            {"kernel_initializer": name, "seed": seed}
            if self.ours
            else {"kernel_initializer": keras_initializer(name, seed)}
        )

    def Dense(  # named as the layer it makes
        self, units: int, *, activation: str = "linear", kernel_initializer: str, name: str, dtype: str | None = None
    ) -> keras.layers.Layer:
        kernel = self._initializer(kernel_initializer)
        return self._library.Dense(units, activation=activation, name=name, dtype=dtype or self.dtype, **kernel)

    def Conv2D(
        self,
        filters: int,
        kernel_size: int,
        *,
        strides: int = 1,
        padding: str = "valid",
        activation: str = "linear",
        kernel_initializer: str,
        name: str,
    ) -> keras.layers.Layer:
        kernel = self._initializer(kernel_initializer)
        return self._library.Conv2D(
            filters, kernel_size, strides, padding, activation=activation, name=name, dtype=self.dtype, **kernel
        )

    def BatchNormalization(self, *, name: str) -> keras.layers.Layer:
        # Keras's own normalizes each replica's batch alone unless synchronized; ours always uses the global batch.
        options = {} if self.ours else {"synchronized": True}
        return self._library.BatchNormalization(name=name, dtype=self.dtype, **options)

    def Activation(self, activation: str, *, name: str) -> keras.layers.Layer:
        return self._library.Activation(activation, name=name, dtype=self.dtype)

    def MaxPool2D(self, pool_size: int, *, name: str) -> keras.layers.Layer:
        return self._library.MaxPool2D(pool_size, name=name, dtype=self.dtype)

    def Flatten(self, *, name: str) -> keras.layers.Layer:
        return self._library.Flatten(name=name, dtype=self.dtype)

    def Dropout(self, rate: float, *, name: str) -> keras.layers.Layer:
        return self._library.Dropout(rate, seed=next(self._seeds), name=name, dtype=self.dtype)


@dataclasses.dataclass(frozen=True)
class Hyperparameters:
    """What a builder takes besides its layers: the resolved `Config` fields of the same names."""

    hidden_units: Sequence[int]
    filters: Sequence[int]
    kernel_sizes: Sequence[int] = ()
    activation: str = "relu"
    dropout: float = 0.0
    conv_dropout: float = 0.0
    kernel_initializer: str = "auto"
    classes: int = NUM_CLASSES  # the logits: one per class of the data

    def initializer(self, activation: str) -> str:
        """The kernel initializer of a layer with `activation`: --kernel_initializer, where "auto" is He for ReLUs
        and Glorot otherwise (the logits, and convolutions whose activation follows a normalization)."""
        return default_initializer(activation) if self.kernel_initializer == "auto" else self.kernel_initializer
