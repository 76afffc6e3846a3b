"""Config: per-model defaults, and one clear message for each bad value."""

import pytest

from mnist_tf.config import Config
from mnist_tf.errors import MnistTfError
from mnist_tf.nn import models


def test_resolve_fills_model_defaults_and_keeps_explicit_values():
    lenet = Config(model="lenet").resolve()
    assert (
        (lenet.hidden_units, lenet.filters)
        == ((500,), (20, 50))
        == (
            models.settings("lenet")["hidden_units"],
            models.settings("lenet")["filters"],
        )
    )
    mlp = Config(model="mlp", hidden_units=(500, 500), dropout=0.0).resolve()
    assert (mlp.hidden_units, mlp.dropout, mlp.filters) == ((500, 500), 0.0, ())
    cnn = Config(model="cnn").resolve()
    assert (cnn.filters, cnn.hidden_units, cnn.conv_dropout, cnn.dropout) == ((32, 64), (128,), 0.25, 0.5)
    assert (lenet.kernel_sizes, cnn.kernel_sizes, mlp.kernel_sizes) == ((5, 5), (3, 3), ())
    # Augmentation: on for the convolutional models, off for the MLP, unless set.
    assert (lenet.augment, cnn.augment, mlp.augment) == (True, True, False)
    assert Config(model="lenet", augment=False).resolve().augment is False


@pytest.mark.parametrize("dataset, held_out", [("mnist", 5000), ("fashion_mnist", 5000), ("digits", 200)])
def test_validation_size_defaults_per_data_set(dataset, held_out):
    assert Config(dataset=dataset).resolve().validation_size == held_out
    assert Config(dataset=dataset, validation_size=0).resolve().validation_size == 0


def test_the_digit_odds_are_in_the_score_only_of_a_model_that_learned_them():
    assert Config().resolve().digit_score == "digit_and_top_class"  # handwritten digits: --not_digits by default
    assert Config(digit_odds_weight=0.0).resolve().digit_score == "top_class"
    assert Config(dataset="fashion_mnist").resolve().digit_score == "top_class"  # no not-digit images


def test_name_is_the_recipe_else_the_model():
    assert Config(model="mlp").name == "mlp"
    assert Config(model="mlp", recipe="keras_mlp").name == "keras_mlp"


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"model": "resnet"}, "--model='resnet' is not one of: lenet, mlp, cnn"),
        ({"dataset": "cifar10"}, "--dataset='cifar10' is not one of: mnist, fashion_mnist, kmnist, emnist_"),
        ({"loss": "hinge"}, "--loss='hinge' is not one of: cross_entropy, logcosh, mse"),
        ({"kernel_initializer": "orthogonal"}, "--kernel_initializer='orthogonal' is not one of"),
        ({"optimizer": "lion"}, "--optimizer='lion' is not one of"),
        ({"batch_size": 0}, "--batch_size must be at least 1, got 0"),
        ({"epochs": -1}, "--epochs must be at least 1"),
        ({"learning_rate": 0.0}, "--learning_rate must be a positive number"),
        ({"learning_rate": float("nan")}, "--learning_rate must be a positive number"),
        ({"validation_size": -5}, "--validation_size must be 0 or more"),
        ({"seed": -3}, "--seed must be 0 or more, got -3"),
        ({"seed": 2**32}, r"--seed must be below 2\*\*32 \(4,294,967,296\), got 4,294,967,296"),
        ({"dropout": 1.0}, r"--dropout must be in \[0, 1\)"),
        ({"conv_dropout": -0.1}, r"--conv_dropout must be in \[0, 1\)"),
        ({"model": "mlp", "conv_dropout": 0.25}, "--conv_dropout applies to lenet, cnn and bncnn only"),
        ({"early_stopping_patience": -1}, "--early_stopping_patience must be 0 .off. or more"),
        ({"early_stopping_patience": 3, "validation_size": 0}, "--early_stopping_patience needs a validation split"),
        ({"momentum": 1.5}, r"--momentum must be in \[0, 1\)"),
        ({"beta_2": 1.0}, r"--beta_2 must be in \[0, 1\)"),
        ({"kernel_sizes": (5,)}, "--kernel_sizes for lenet is two positive sizes"),
        ({"kernel_sizes": (5, 0)}, "--kernel_sizes for lenet is two positive sizes"),
        ({"model": "bncnn", "kernel_sizes": (3, 3)}, "--kernel_sizes applies to lenet and cnn only"),
        ({"weight_decay": -1.0}, "--weight_decay must be 0 or more"),
        ({"digit_odds_weight": float("inf")}, "--digit_odds_weight must be 0 or more, got inf"),
        ({"label_smoothing": 1.0}, r"--label_smoothing must be in \[0, 1\)"),
        ({"label_smoothing": 0.1, "loss": "mse"}, "--label_smoothing applies to --loss=cross_entropy, not mse"),
        ({"augment_strength": -1.0}, "--augment_strength must be 0 or more"),
        ({"hidden_units": (10, 0)}, "--hidden_units must be positive integers"),
        ({"hidden_units": (10, 20)}, "--hidden_units for lenet is one dense layer size"),
        ({"filters": (8,)}, "--filters for lenet is two positive conv sizes"),
        ({"model": "cnn", "hidden_units": (10, 20)}, "--hidden_units for cnn is one dense layer size"),
        ({"model": "mlp", "filters": (8, 8)}, "--filters applies to lenet, cnn and bncnn only"),
        (
            {"strategy": "horovod"},
            "--strategy='horovod' is not one of: default, one_device, mirrored, multi_worker, tpu",
        ),
        ({"dtype": "float64"}, "--dtype='float64' is not one of: auto, float32, bfloat16, float16"),
        ({"steps_per_loop": 0}, "--steps_per_loop must be at least 1, got 0"),
        ({"strategy": "mirrored", "num_gpus": -1}, "--num_gpus must be 0 or more"),
        ({"num_gpus": 2}, "--num_gpus applies to --strategy=one_device or mirrored"),
        ({"tpu": "grpc://10.0.0.2:8470"}, "--tpu applies to --strategy=tpu"),
    ],
)
def test_bad_values_raise_one_line(changes, message):
    with pytest.raises(MnistTfError, match=message) as error:
        Config(**changes).resolve()
    assert "\n" not in str(error.value)
