"""Recipes resolve to the setups their sources documented, explicit values override them, and the table reports."""

import re

import pytest
from conftest import REPO

from mnist_tf import recipes
from mnist_tf.config import Config
from mnist_tf.errors import MnistTfError

# The classic setups train at a constant rate with the source's loss: none inherits one_cycle or weight decay.
CLASSIC = {"lr_schedule": "constant", "weight_decay": 0.0}
# The setups as the issue and the README document them, written out independently of mnist_tf/recipes.py.
DOCUMENTED = {
    "hat_mlp": {
        **CLASSIC,
        "dataset": "mnist",
        "model": "mlp",
        "hidden_units": (500, 500),
        "activation": "relu",
        "dropout": 0.2,
        "optimizer": "adam",
        "learning_rate": 1e-3,
        "batch_size": 500,
        "validation_size": 10_000,  # 50k train / 10k validation / 10k test
    },
    "keras_mlp": {
        **CLASSIC,
        "dataset": "mnist",
        "model": "mlp",
        "hidden_units": (800,),
        "activation": "relu",
        "dropout": 0.5,
        "kernel_initializer": "uniform",
        "optimizer": "sgd",
        "learning_rate": 0.01,
        "batch_size": 256,
        "epochs": 10,
    },
    "mxnet_mlp": {
        **CLASSIC,
        "dataset": "mnist",
        "model": "mlp",
        "hidden_units": (128, 64),
        "activation": "relu",
        "dropout": 0.0,
        "optimizer": "sgd",
        "learning_rate": 0.1,
        "batch_size": 100,
        "epochs": 10,
    },
    "mxnet_lenet": {
        **CLASSIC,
        "dataset": "mnist",
        "model": "lenet",
        "activation": "tanh",
        "filters": (20, 50),
        "hidden_units": (500,),
        "dropout": 0.0,
        "conv_dropout": 0.0,
        "optimizer": "sgd",
        "learning_rate": 0.1,
        "batch_size": 100,
        "epochs": 10,
    },
    "theanets_mlp": {
        **CLASSIC,
        "dataset": "mnist",
        "model": "mlp",
        "hidden_units": (100,),
        "dropout": 0.0,
        "optimizer": "nesterov",
        "momentum": 0.9,
        "learning_rate": 1e-3,
        "validation_size": 10_000,
        "early_stopping_patience": 5,
    },
    "digits_cnn": {
        **CLASSIC,
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
        "validation_size": 0,  # the last 200 of the 1,797 are the test split
    },
    "speedrun": {  # 99% in one epoch (docs/recipes.md)
        "dataset": "mnist",
        "model": "lenet",
        "filters": (24, 48),
        "hidden_units": (256,),
        "activation": "relu",
        "dropout": 0.0,
        "conv_dropout": 0.0,
        "optimizer": "adam",
        "lr_schedule": "one_cycle",
        "learning_rate": 1e-2,
        "momentum": 0.7,
        "beta_2": 0.9,
        "weight_decay": 0.0,
        "batch_size": 256,
        "epochs": 1,
        "validation_size": 0,
    },
    "accurate": {
        "dataset": "mnist",
        "model": "bncnn",
        "filters": (32, 64),
        "hidden_units": (128,),
        "dropout": 0.4,
        "conv_dropout": 0.4,
        "augment": True,
        "augment_strength": 1.0,
        "label_smoothing": 0.0,
        "optimizer": "adam",
        "lr_schedule": "one_cycle",
        "learning_rate": 3e-3,
        "weight_decay": 0.0,
        "batch_size": 128,
        "epochs": 25,
        "validation_size": 5000,
    },
}


def test_every_recipe_is_documented_here():
    assert set(recipes.RECIPES) == set(DOCUMENTED)


@pytest.mark.parametrize("name", DOCUMENTED)
def test_recipe_resolves_to_its_documented_setup(name):
    config = recipes.config(name).resolve()
    assert config.recipe == name and config.name == name
    for field, value in DOCUMENTED[name].items():
        assert getattr(config, field) == value, field


@pytest.mark.parametrize("name", DOCUMENTED)
def test_recipe_sets_every_value_that_shapes_training(name):
    """A recipe must not change when a project default does: it sets these itself."""
    shaping = {
        "dataset",
        "model",
        "epochs",
        "batch_size",
        "optimizer",
        "learning_rate",
        "lr_schedule",
        "weight_decay",
        "validation_size",
        "early_stopping_patience",
        "loss",
        "activation",
        "kernel_initializer",
        "dropout",
        "hidden_units",
        "augment",
        "label_smoothing",
    }
    assert shaping <= set(recipes.get(name).values)


def test_explicit_values_override_the_recipe():
    config = recipes.config("keras_mlp", batch_size=32, epochs=1, dropout=0.1, data_dir="/data").resolve()
    assert (config.batch_size, config.epochs, config.dropout, config.data_dir) == (32, 1, 0.1, "/data")
    assert (config.hidden_units, config.kernel_initializer, config.optimizer) == ((800,), "uniform", "sgd")
    # The recipe is also what the unoverridden values would otherwise be, not the project's defaults.
    assert config.learning_rate == 0.01 != Config().learning_rate


def test_unknown_recipe_is_one_clear_error():
    with pytest.raises(MnistTfError, match=r"--recipe='nope' is not one of: hat_mlp, keras_mlp"):
        recipes.config("nope")


def test_readme_lists_every_recipe_with_its_reported_figure():
    readme = (REPO / "docs" / "recipes.md").read_text()
    for recipe in recipes.RECIPES.values():
        row = re.search(rf"^\| `{recipe.name}` \|.*$", readme, re.MULTILINE)
        assert row, recipe.name
        figure = f"{recipe.reported_accuracy:.1%}" if recipe.reported_accuracy else "no figure"
        assert f"| {figure} |" in row.group(0), recipe.name


def _result(accuracy: float, **early_stopping) -> dict:
    return {
        "test_accuracy": accuracy,
        "epochs_trained": early_stopping.get("epochs_trained", 10),
        "train_seconds": 12.3,
        "early_stopping": early_stopping or None,
    }


def test_table_sets_measured_beside_reported():
    table = recipes.table(
        {
            "mxnet_mlp": _result(0.9712),
            "keras_mlp": _result(0.9001),
            "theanets_mlp": _result(0.975, stopped_early=True, epochs_trained=17, best_epoch=12),
            "digits_cnn": None,
        }
    )
    rows = {line.split("|")[1].strip(): line for line in table.splitlines()[2:]}
    assert "| 96.0% | 97.12% ✓ | 10 | 12 s |" in rows["`mxnet_mlp`"]
    assert "| 90.6% | 90.01% ✗ |" in rows["`keras_mlp`"]  # short of the source: said, not hidden
    assert "| no figure | 97.50% | 17 (best 12) |" in rows["`theanets_mlp`"]
    assert "**failed**" in rows["`digits_cnn`"]
