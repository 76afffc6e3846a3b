"""The architectures, as Keras functional models built from our low-level layers (or Keras's, for comparison).

All take float32 images [batch, rows, cols, 1] in [0, 1] and return float32 logits [batch, 10]; softmax lives
in the loss and in the serving signature, where it is numerically safest.

`MODELS` is the one place an architecture is registered: its builder, its per-model defaults, the settings that
shape its weights (what a checkpoint must match) and its benchmark target. Its keys are `--model`'s choices.
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

# --layers: where the layer classes come from; both modules name them alike (Dense, Conv2D, ...).
LAYER_LIBRARIES: dict[str, ModuleType] = {"ours": layers, "keras": keras.layers}


class LayerKit:
    """Makes the layers an architecture needs, from one layer library, each with its own seed drawn from one base.

    Every layer computes in `dtype` (a Keras dtype policy: "float32", or "mixed_bfloat16"/"mixed_float16" with
    float32 weights); the logits layer always computes in float32, so softmax and the loss see float32 logits.
    Kernels start from `initializer` (an `initializers.INITIALIZERS` name), or "auto": He for ReLUs, Glorot
    otherwise. Keras layers get the Keras initializer of the same distribution.
    """

    def __init__(
        self,
        library: str = "ours",
        seed: int = 0,
        dtype: str | keras.DTypePolicy = "float32",
        initializer: str = "auto",
    ) -> None:
        self.ours = library == "ours"
        self._library = LAYER_LIBRARIES[library]
        self._seeds: Iterator[int] = itertools.count(seed * 1000)
        self.dtype = dtype
        self.initializer = initializer

    def _kernel_initializer(self, activation: str) -> dict[str, Any]:
        name = default_initializer(activation) if self.initializer == "auto" else self.initializer
        seed = next(self._seeds)
        return (
            {"kernel_initializer": name, "seed": seed}
            if self.ours
            else {"kernel_initializer": keras_initializer(name, seed)}
        )

    def dense(self, units: int, activation: str, name: str, dtype: str | None = None) -> keras.layers.Layer:
        kernel = self._kernel_initializer(activation)
        return self._library.Dense(units, activation=activation, name=name, dtype=dtype or self.dtype, **kernel)

    def conv(
        self, filters: int, size: int, activation: str, name: str, strides: int = 1, padding: str = "valid"
    ) -> keras.layers.Layer:
        kernel = self._kernel_initializer(activation)
        return self._library.Conv2D(
            filters, size, strides, padding, activation=activation, name=name, dtype=self.dtype, **kernel
        )

    def batch_norm(self, name: str) -> keras.layers.Layer:
        # Keras's own normalizes each replica's batch alone unless synchronized; ours always uses the global batch.
        options = {} if self.ours else {"synchronized": True}
        return self._library.BatchNormalization(name=name, dtype=self.dtype, **options)

    def activation(self, activation: str, name: str) -> keras.layers.Layer:
        return self._library.Activation(activation, name=name, dtype=self.dtype)

    def max_pool(self, name: str) -> keras.layers.Layer:
        return self._library.MaxPool2D(2, name=name, dtype=self.dtype)

    def flatten(self, name: str) -> keras.layers.Layer:
        return self._library.Flatten(name=name, dtype=self.dtype)

    def dropout(self, rate: float, name: str) -> keras.layers.Layer:
        return self._library.Dropout(rate, seed=next(self._seeds), name=name, dtype=self.dtype)


@dataclasses.dataclass(frozen=True)
class Shape:
    """The settings every builder takes (`Config` fields of the same names)."""

    hidden_units: Sequence[int]
    filters: Sequence[int]
    activation: str = "relu"
    dropout: float = 0.0
    conv_dropout: float = 0.0


def mlp(kit: LayerKit, image_shape: Sequence[int], shape: Shape) -> keras.Model:
    """Flatten -> [Dense(units, activation) -> Dropout] per hidden size -> Dense(10) logits."""
    images = keras.Input(shape=tuple(image_shape), name="images")
    x = kit.flatten("flatten")(images)
    for i, units in enumerate(shape.hidden_units, start=1):
        x = kit.dense(units, shape.activation, f"dense{i}")(x)
        if shape.dropout:
            x = kit.dropout(shape.dropout, f"dropout{i}")(x)
    logits = kit.dense(NUM_CLASSES, "linear", "logits", dtype="float32")(x)
    return keras.Model(images, logits, name="mlp")


def lenet(kit: LayerKit, image_shape: Sequence[int], shape: Shape) -> keras.Model:
    """LeNet: [Conv 5x5 (valid) -> MaxPool 2x2] x 2 -> [Dropout] -> Dense -> Dropout -> Dense(10) logits."""
    images = keras.Input(shape=tuple(image_shape), name="images")
    x = images
    for i, count in enumerate(shape.filters, start=1):
        x = kit.conv(count, 5, shape.activation, f"conv{i}")(x)
        x = kit.max_pool(f"pool{i}")(x)
    return _classifier_head(kit, images, x, shape, "lenet")


def cnn(kit: LayerKit, image_shape: Sequence[int], shape: Shape) -> keras.Model:
    """Keras's classic `mnist_cnn` example: Conv 3x3 -> Conv 3x3 -> MaxPool 2x2 -> Dropout -> Dense -> Dropout ->
    Dense(10) logits. Two convolutions before one pooling keep it usable on images as small as 8x8."""
    images = keras.Input(shape=tuple(image_shape), name="images")
    x = images
    for i, count in enumerate(shape.filters, start=1):
        x = kit.conv(count, 3, shape.activation, f"conv{i}")(x)
    x = kit.max_pool("pool1")(x)
    return _classifier_head(kit, images, x, shape, "cnn")


def bncnn(kit: LayerKit, image_shape: Sequence[int], shape: Shape) -> keras.Model:
    """A batch-normalized CNN in the spirit of the best single MNIST CNNs (99.6-99.7% with augmentation).

    Per entry of `filters`: [Conv 3x3 -> BN -> act] x 2 -> Conv 5x5 stride 2 (learned downsampling instead of
    pooling) -> BN -> act -> Dropout(conv_dropout). Then Conv 4x4 of `hidden_units` filters -> BN -> act (a dense
    layer over the 4x4 map that remains of 28x28) -> Flatten -> Dropout -> Dense(10) logits.
    """
    images = keras.Input(shape=tuple(image_shape), name="images")

    def conv_bn(x: keras.KerasTensor, filters: int, size: int, name: str, strides: int = 1) -> keras.KerasTensor:
        padding = "same" if strides > 1 else "valid"
        x = kit.conv(filters, size, "linear", name, strides, padding)(x)  # the activation follows the normalization
        return kit.activation(shape.activation, f"{name}_act")(kit.batch_norm(f"{name}_bn")(x))

    x = images
    for block, count in enumerate(shape.filters, start=1):
        x = conv_bn(x, count, 3, f"block{block}_conv1")
        x = conv_bn(x, count, 3, f"block{block}_conv2")
        x = conv_bn(x, count, 5, f"block{block}_down", strides=2)
        if shape.conv_dropout:
            x = kit.dropout(shape.conv_dropout, f"block{block}_dropout")(x)
    x = conv_bn(x, shape.hidden_units[0], 4, "head")
    x = kit.flatten("flatten")(x)
    if shape.dropout:
        x = kit.dropout(shape.dropout, "dropout")(x)
    logits = kit.dense(NUM_CLASSES, "linear", "logits", dtype="float32")(x)
    return keras.Model(images, logits, name="bncnn")


def _classifier_head(
    kit: LayerKit, images: keras.KerasTensor, features: keras.KerasTensor, shape: Shape, name: str
) -> keras.Model:
    """What follows the convolutions: [Dropout] -> Flatten -> Dense -> [Dropout] -> Dense(10) logits."""
    x = kit.dropout(shape.conv_dropout, "conv_dropout")(features) if shape.conv_dropout else features
    x = kit.flatten("flatten")(x)
    x = kit.dense(shape.hidden_units[0], shape.activation, "dense1")(x)
    if shape.dropout:
        x = kit.dropout(shape.dropout, "dropout1")(x)
    logits = kit.dense(NUM_CLASSES, "linear", "logits", dtype="float32")(x)
    return keras.Model(images, logits, name=name)


@dataclasses.dataclass(frozen=True)
class Architecture:
    """Everything the project needs to know about one model."""

    build: Callable[[LayerKit, Sequence[int], Shape], keras.Model]
    defaults: Mapping[str, Any]  # Config values that depend on the architecture: hidden_units, dropout, augment...
    dense_layers: int | None  # how many hidden sizes --hidden_units takes; None: any number
    # Accuracy the benchmark times each contender to (None: not raced by default).
    benchmark_target: float | None = None
    # Config fields that decide the weights' shapes: a checkpoint of other values is another model.
    shape_fields: tuple[str, ...] = ("hidden_units", "filters")

    @property
    def conv_layers(self) -> int:
        return len(self.defaults["filters"])


MODELS: dict[str, Architecture] = {
    "lenet": Architecture(
        lenet,
        {"hidden_units": (500,), "dropout": 0.25, "conv_dropout": 0.0, "filters": (20, 50), "augment": True},
        dense_layers=1,
        benchmark_target=0.99,
    ),
    "mlp": Architecture(
        mlp,
        {"hidden_units": (800, 800), "dropout": 0.2, "conv_dropout": 0.0, "filters": (), "augment": False},
        dense_layers=None,
        benchmark_target=0.98,
    ),
    "cnn": Architecture(
        cnn,
        {"hidden_units": (128,), "dropout": 0.5, "conv_dropout": 0.25, "filters": (32, 64), "augment": True},
        dense_layers=1,
    ),
    "bncnn": Architecture(
        bncnn,
        {"hidden_units": (128,), "dropout": 0.4, "conv_dropout": 0.4, "filters": (32, 64), "augment": True},
        dense_layers=1,
    ),
}


def build(name: str, kit: LayerKit, image_shape: Sequence[int], shape: Shape) -> keras.Model:
    """The registered architecture `name`, made of `kit`'s layers; call under the strategy's scope."""
    return MODELS[name].build(kit, image_shape, shape)
