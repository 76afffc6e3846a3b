"""The architectures, as Keras functional models built from our low-level layers (or Keras's, for comparison).

All take float32 images [batch, rows, cols, 1] in [0, 1] and return float32 logits [batch, classes]; softmax lives
in the loss and in the serving signature, where it is numerically safest.

Each builder shows its layers in order, as Keras's examples do (which layer, kernel size, activation, initializer,
dropout), made by `Layers`: ours or Keras's, the same builder either way (tests/test_models.py). Its numbers are
the defaults of its keyword arguments, which are `Config` fields of the same names (`--filters`, `--dropout` ...):
a run can change each, and how many entries a tuple takes is its annotation (`tuple[int, int]`: two;
`tuple[int, ...]`: any number). `MODELS` maps `--model`'s choices to the builders.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import typing
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any

import keras

from mnist_tf.data.sources import NUM_CLASSES
from mnist_tf.nn import layers
from mnist_tf.nn.initializers import default_initializer, keras_initializer

Shape = Sequence[int]


def lenet(
    nn: Layers,
    image_shape: Shape = (28, 28, 1),
    classes: int = NUM_CLASSES,
    *,
    filters: tuple[int, int] = (20, 50),
    kernel_sizes: tuple[int, int] = (5, 5),
    hidden_units: tuple[int] = (500,),
    dropout: float = 0.25,
    conv_dropout: float = 0.0,
    activation: str = "relu",
    kernel_initializer: str = "auto",
) -> keras.Model:
    """LeNet-5 as Caffe's MNIST example has it: two 5x5 convolutions (20 and 50 filters), each max-pooled 2x2, a
    dense layer of 500 and the logits."""
    init, linear = _initializers(kernel_initializer, activation)
    images = keras.Input(shape=tuple(image_shape), name="images")
    x = nn.Conv2D(filters[0], kernel_sizes[0], activation=activation, kernel_initializer=init, name="conv1")(images)
    x = nn.MaxPool2D(2, name="pool1")(x)
    x = nn.Conv2D(filters[1], kernel_sizes[1], activation=activation, kernel_initializer=init, name="conv2")(x)
    x = nn.MaxPool2D(2, name="pool2")(x)
    x = nn.Dropout(conv_dropout, name="conv_dropout")(x)
    x = nn.Flatten(name="flatten")(x)
    x = nn.Dense(hidden_units[0], activation=activation, kernel_initializer=init, name="dense1")(x)
    x = nn.Dropout(dropout, name="dropout1")(x)
    logits = nn.Dense(classes, kernel_initializer=linear, name="logits", dtype="float32")(x)
    return keras.Model(images, logits, name="lenet")


def mlp(
    nn: Layers,
    image_shape: Shape = (28, 28, 1),
    classes: int = NUM_CLASSES,
    *,
    hidden_units: tuple[int, ...] = (800, 800),
    dropout: float = 0.2,
    activation: str = "relu",
    kernel_initializer: str = "auto",
) -> keras.Model:
    """Flatten -> [Dense(units, activation) -> Dropout] per hidden size -> Dense(classes) logits."""
    init, linear = _initializers(kernel_initializer, activation)
    images = keras.Input(shape=tuple(image_shape), name="images")
    x = nn.Flatten(name="flatten")(images)
    for i, units in enumerate(hidden_units, start=1):
        x = nn.Dense(units, activation=activation, kernel_initializer=init, name=f"dense{i}")(x)
        x = nn.Dropout(dropout, name=f"dropout{i}")(x)
    logits = nn.Dense(classes, kernel_initializer=linear, name="logits", dtype="float32")(x)
    return keras.Model(images, logits, name="mlp")


def cnn(
    nn: Layers,
    image_shape: Shape = (28, 28, 1),
    classes: int = NUM_CLASSES,
    *,
    filters: tuple[int, int] = (32, 64),
    kernel_sizes: tuple[int, int] = (3, 3),
    hidden_units: tuple[int] = (128,),
    dropout: float = 0.5,
    conv_dropout: float = 0.25,
    activation: str = "relu",
    kernel_initializer: str = "auto",
) -> keras.Model:
    """Keras's classic `mnist_cnn` example: two 3x3 convolutions (32 and 64 filters), one max-pooling (which keeps
    it usable on images as small as 8x8), dropout, a dense layer of 128, dropout and the logits."""
    init, linear = _initializers(kernel_initializer, activation)
    images = keras.Input(shape=tuple(image_shape), name="images")
    x = nn.Conv2D(filters[0], kernel_sizes[0], activation=activation, kernel_initializer=init, name="conv1")(images)
    x = nn.Conv2D(filters[1], kernel_sizes[1], activation=activation, kernel_initializer=init, name="conv2")(x)
    x = nn.MaxPool2D(2, name="pool1")(x)
    x = nn.Dropout(conv_dropout, name="conv_dropout")(x)
    x = nn.Flatten(name="flatten")(x)
    x = nn.Dense(hidden_units[0], activation=activation, kernel_initializer=init, name="dense1")(x)
    x = nn.Dropout(dropout, name="dropout1")(x)
    logits = nn.Dense(classes, kernel_initializer=linear, name="logits", dtype="float32")(x)
    return keras.Model(images, logits, name="cnn")


def bncnn(
    nn: Layers,
    image_shape: Shape = (28, 28, 1),
    classes: int = NUM_CLASSES,
    *,
    filters: tuple[int, int] = (32, 64),
    hidden_units: tuple[int] = (128,),
    dropout: float = 0.4,
    conv_dropout: float = 0.4,
    activation: str = "relu",
    kernel_initializer: str = "auto",
) -> keras.Model:
    """A batch-normalized CNN in the spirit of the best single MNIST CNNs (docs/recipes.md has its accuracy).

    Per entry of `filters`: [Conv 3x3 -> BN -> act] x 2 -> Conv 5x5 stride 2 (learned downsampling instead of
    pooling) -> BN -> act -> Dropout(conv_dropout). Then Conv 4x4 of `hidden_units` filters -> BN -> act (a dense
    layer over the 4x4 map that remains of 28x28) -> Flatten -> Dropout -> Dense(classes) logits.
    """
    # No activation in the convolutions (so Glorot under "auto"): it follows the normalization.
    _, linear = _initializers(kernel_initializer, activation)

    def conv_bn(x: keras.KerasTensor, filters: int, size: int, name: str, strides: int = 1) -> keras.KerasTensor:
        padding = "same" if strides > 1 else "valid"
        x = nn.Conv2D(filters, size, strides=strides, padding=padding, kernel_initializer=linear, name=name)(x)
        x = nn.BatchNormalization(name=f"{name}_bn")(x)
        return nn.Activation(activation, name=f"{name}_act")(x)

    images = keras.Input(shape=tuple(image_shape), name="images")
    x = images
    for block, width in enumerate(filters, start=1):
        x = conv_bn(x, width, 3, f"block{block}_conv1")
        x = conv_bn(x, width, 3, f"block{block}_conv2")
        x = conv_bn(x, width, 5, f"block{block}_down", strides=2)
        x = nn.Dropout(conv_dropout, name=f"block{block}_dropout")(x)
    x = conv_bn(x, hidden_units[0], 4, "head")
    x = nn.Flatten(name="flatten")(x)
    x = nn.Dropout(dropout, name="dropout")(x)
    logits = nn.Dense(classes, kernel_initializer=linear, name="logits", dtype="float32")(x)
    return keras.Model(images, logits, name="bncnn")


def _initializers(kernel_initializer: str, activation: str) -> tuple[str, str]:
    """The kernel initializers of the hidden layers and of the logits: --kernel_initializer, where "auto" is He for
    ReLUs and Glorot otherwise (the logits, and convolutions whose activation follows a normalization)."""
    if kernel_initializer != "auto":
        return kernel_initializer, kernel_initializer
    return default_initializer(activation), default_initializer("linear")


Builder = Callable[..., keras.Model]  # (Layers, image_shape, classes, **settings) -> the model
MODELS: dict[str, Builder] = {"lenet": lenet, "mlp": mlp, "cnn": cnn, "bncnn": bncnn}
# Config fields that decide the weights' shapes: a checkpoint of other values is another model.
SHAPE_FIELDS = ("hidden_units", "filters", "kernel_sizes")


@functools.cache
def settings(model: str) -> dict[str, Any]:
    """The settings `MODELS[model]` takes (its keyword-only arguments, each a `Config` field), with its defaults."""
    parameters = inspect.signature(MODELS[model]).parameters.values()
    return {p.name: p.default for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}


@functools.cache
def lengths(model: str) -> dict[str, int | None]:
    """How many entries each tuple setting of `MODELS[model]` takes, by its annotation: `tuple[int, int]` two,
    `tuple[int, ...]` any number (None)."""
    hints = typing.get_type_hints(MODELS[model])
    tuples = {name: typing.get_args(hints[name]) for name in settings(model) if typing.get_origin(hints[name]) is tuple}
    return {name: None if args[-1] is Ellipsis else len(args) for name, args in tuples.items()}


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

    def Dropout(self, rate: float, *, name: str) -> Callable[[keras.KerasTensor], keras.KerasTensor]:
        """A dropout layer; for rate 0 no layer at all (and no seed drawn: the other layers keep theirs)."""
        if not rate:
            return lambda x: x
        return self._library.Dropout(rate, seed=next(self._seeds), name=name, dtype=self.dtype)
