"""Recipes: classic MNIST setups from tutorials and libraries, by name (`--recipe=NAME`).

A recipe is a set of `Config` values: model, initializer, loss, optimizer, batch, epochs, data split. It spells
out every value that shapes training, so a change to the project's defaults never changes a recipe. Explicit
flags still override it (`recipes.config(name, **overrides)`). `scripts/recipes.py` runs them and sets the
measured test accuracy beside the figure each source reported.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from mnist_tf.config import Config
from mnist_tf.errors import MnistTfError


@dataclasses.dataclass(frozen=True)
class Recipe:
    name: str
    source: str  # who published the setup
    setup: str  # the setup in the source's words, for the recipes table (docs/recipes.md)
    reported_accuracy: float | None  # test accuracy the source reports (a fraction), when it gives one
    values: dict[str, Any]  # Config fields
    benchmark_target: float | None = None  # the test accuracy `scripts/benchmark.py` races it to; None: not raced

    def config(self, **overrides: Any) -> Config:
        """The recipe's Config (unresolved), with `overrides` (explicit flags) taking precedence."""
        return Config(**{**self.values, **overrides, "recipe": self.name})


# Values every recipe sets, so that none inherits a project default that may change: plain constant-rate
# training with cross-entropy, no weight decay, default initializers, all data from MNIST.
_CLASSIC = {
    "dataset": "mnist",
    "lr_schedule": "constant",
    "weight_decay": 0.0,
    "loss": "cross_entropy",
    "kernel_initializer": "auto",
    "activation": "relu",
    "early_stopping_patience": 0,
    "augment": False,
    "label_smoothing": 0.0,
    "not_digits": 0.0,  # the tutorials teach no "not a digit"; their exports still carry a decision (max-softmax)
}
# The MXNet tutorial trains both of its networks the same way, on all 60,000 training images.
_MXNET = {**_CLASSIC, "optimizer": "sgd", "learning_rate": 0.1, "batch_size": 100, "epochs": 10, "validation_size": 0}

RECIPES = {
    recipe.name: recipe
    for recipe in (
        Recipe(
            "hat_mlp",
            "HAT MLP baseline",
            "MLP 784-500-500-10, ReLU, dropout 0.2, Adam 1e-3, batch 500, 50k/10k/10k split (20 epochs: the source "
            "gives no count)",
            None,
            {
                **_CLASSIC,
                "model": "mlp",
                "hidden_units": (500, 500),
                "dropout": 0.2,
                "optimizer": "adam",
                "learning_rate": 1e-3,
                "batch_size": 500,
                "epochs": 20,
                "validation_size": 10_000,
            },
        ),
        Recipe(
            "keras_mlp",
            "early Keras tutorial",
            "MLP 784-800-10, ReLU, dropout 0.5, 'uniform' init, plain SGD (lr 0.01, Keras's default), batch 256, "
            "10 epochs",
            0.906,
            {
                **_CLASSIC,
                "model": "mlp",
                "hidden_units": (800,),
                "dropout": 0.5,
                "kernel_initializer": "uniform",
                "optimizer": "sgd",
                "learning_rate": 0.01,
                "batch_size": 256,
                "epochs": 10,
                "validation_size": 0,
            },
        ),
        Recipe(
            "mxnet_mlp",
            "MXNet handwritten-digit tutorial",
            "MLP 784-128-64-10, ReLU, SGD 0.1, batch 100, 10 epochs",
            0.96,
            {**_MXNET, "model": "mlp", "hidden_units": (128, 64), "dropout": 0.0},
        ),
        Recipe(
            "mxnet_lenet",
            "MXNet handwritten-digit tutorial",
            "LeNet: tanh conv 20 / conv 50 (5x5, max-pool 2x2) / dense 500, SGD 0.1, batch 100, 10 epochs",
            0.98,
            {
                **_MXNET,
                "model": "lenet",
                "activation": "tanh",
                "filters": (20, 50),
                "hidden_units": (500,),
                "dropout": 0.0,
                "conv_dropout": 0.0,
            },
        ),
        Recipe(
            "theanets_mlp",
            "theanets MNIST classifier example",
            "MLP 784-100-10, Nesterov momentum 0.9, lr 1e-3, batch 32 (theanets's default), 50k/10k/10k split, "
            "stop when validation stops improving (patience 5, at most 100 epochs)",
            None,
            {
                **_CLASSIC,
                "model": "mlp",
                "hidden_units": (100,),
                "dropout": 0.0,
                "optimizer": "nesterov",
                "learning_rate": 1e-3,
                "momentum": 0.9,
                "batch_size": 32,
                "epochs": 100,
                "validation_size": 10_000,
                "early_stopping_patience": 5,
            },
        ),
        Recipe(
            "digits_cnn",
            "Keras CNN on scikit-learn's digits",
            "scikit-learn's 8x8 digits (1,797 images, last 200 held out), conv 32 - conv 64 (3x3) - max-pool - "
            "dropout .25 - dense 128 - dropout .5, RMSprop 1e-3, log-cosh loss, batch 10, 150 epochs",
            None,
            {
                **_CLASSIC,
                "dataset": "digits",
                "model": "cnn",
                "filters": (32, 64),
                "hidden_units": (128,),
                "conv_dropout": 0.25,
                "dropout": 0.5,
                "optimizer": "rmsprop",
                "learning_rate": 1e-3,
                "loss": "logcosh",
                "batch_size": 10,
                "epochs": 150,
                "validation_size": 0,
            },
        ),
        Recipe(
            "speedrun",
            "this project, after the MNIST speedruns (99% in one epoch)",
            "LeNet 24/48 filters, dense 256, no dropout, Adam (betas 0.7, 0.9) one-cycle peaking at 1e-2, batch "
            "256, one epoch on all 60,000 training images",
            0.99,
            {
                **_CLASSIC,
                "model": "lenet",
                "filters": (24, 48),
                "hidden_units": (256,),
                "dropout": 0.0,
                "conv_dropout": 0.0,
                "optimizer": "adam",
                "lr_schedule": "one_cycle",
                "learning_rate": 1e-2,
                "momentum": 0.7,  # Adam's beta_1 and beta_2: short memories suit one epoch (tuomaso/train_mnist_fast)
                "beta_2": 0.9,
                "batch_size": 256,
                "epochs": 1,
                "validation_size": 0,
            },
            benchmark_target=0.99,
        ),
        Recipe(
            "accurate",
            "this project, after the best published single MNIST CNNs (99.64% mean with augmentation)",
            "BN-CNN (bncnn: 32/64 filters, strided convolutions, batch norm, dropout 0.4), on-device augmentation "
            "(rotation, scale, shear, shift, stroke width) and not-digit images, Adam one-cycle peaking at 3e-3, batch "
            "128, 25 epochs, 5,000 images held out to choose settings by",
            0.9964,
            {
                **_CLASSIC,
                "model": "bncnn",
                "filters": (32, 64),
                "hidden_units": (128,),
                "dropout": 0.4,
                "conv_dropout": 0.4,
                "augment": True,
                "augment_strength": 1.0,
                "not_digits": 0.125,  # says "not a digit" as the default LeNet does
                "not_digit_weight": 0.5,
                "optimizer": "adam",
                "lr_schedule": "one_cycle",
                "learning_rate": 3e-3,
                "batch_size": 128,
                "epochs": 25,
                "validation_size": 5000,
            },
        ),
    )
}


def get(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise MnistTfError(f"--recipe={name!r} is not one of: {', '.join(RECIPES)}") from None


def config(name: str, **overrides: Any) -> Config:
    """The Config of recipe `name`, with `overrides` (explicit flags) taking precedence over its values."""
    return get(name).config(**overrides)


def table(results: dict[str, dict[str, Any] | None]) -> str:
    """A Markdown table of each recipe's reported and measured test accuracy, from its run's results.json
    (None: the run failed)."""
    lines = [
        "| recipe | setup | source | reported | measured | epochs | training time |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for name, result in results.items():
        recipe = get(name)
        reported = f"{recipe.reported_accuracy:.1%}" if recipe.reported_accuracy else "no figure"
        if result is None:
            measured, epochs, seconds = "**failed**", "-", "-"
        else:
            accuracy = result["test_accuracy"]
            verdict = "" if recipe.reported_accuracy is None else " ✓" if accuracy >= recipe.reported_accuracy else " ✗"
            measured = f"{accuracy:.2%}{verdict}"
            epochs = f"{result['epochs_trained']}"
            if result["early_stopping"] and result["early_stopping"]["stopped_early"]:
                epochs += f" (best {result['early_stopping']['best_epoch']})"
            seconds = f"{result['train_seconds']:.0f} s"
        lines.append(
            f"| `{name}` | {recipe.setup} | {recipe.source} | {reported} | {measured} | {epochs} | {seconds} |"
        )
    return "\n".join(lines)
