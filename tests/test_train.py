"""The training loop on generated data: it learns, writes what it promises, repeats with a seed, resumes."""

import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import checkpoint_weights, quiet_run, requires_module, shared_output, write_idx_dir

from mnist_tf import recipes, run
from mnist_tf.data import idx, pipeline, sources
from mnist_tf.errors import MnistTfError
from mnist_tf.export import classifier
from mnist_tf.export.publish import weights_digest
from mnist_tf.nn.optimizers import OPTIMIZERS
from mnist_tf.reporting.console import ConsoleReporter
from mnist_tf.training import build


@pytest.mark.versions
def test_mlp_learns_and_writes_results_checkpoints_logs_and_export(exported_run):
    """conftest's shared run: tiny_config's, as it trained."""
    results, output = exported_run, shared_output(exported_run)
    epoch_lines = [line for line in output.splitlines() if line.startswith("epoch ")]
    assert len(epoch_lines) == 2
    assert all("img/s" in line and "ETA" in line and "val loss" in line for line in epoch_lines)
    losses = [float(line.split("loss ")[1].split()[0]) for line in epoch_lines]
    assert losses[-1] < losses[0] / 2
    assert results["test_accuracy"] > 0.9

    model_dir = results["flags"]["model_dir"]
    on_disk = json.loads(Path(model_dir, "results.json").read_text())
    for key in (
        "model",
        "dataset",
        "epochs",
        "train_seconds",
        "images_per_second",
        "test_accuracy",
        "test_loss",
        "export_dir",
        "flags",
    ):
        assert key in on_disk
    assert on_disk["flags"]["hidden_units"] == [64] and on_disk["flags"]["batch_size"] == 50
    assert on_disk["trainable_parameters"] == 784 * 64 + 64 + 64 * 10 + 10
    assert on_disk["test_accuracy"] == results["test_accuracy"] and on_disk["images_per_second"] > 0
    # Checkpoints are numbered by global step: 1,000 training images in batches of 50, 2 epochs.
    assert tf.train.latest_checkpoint(f"{model_dir}/checkpoints").endswith("ckpt-40")
    for split in ("train", "validation", "test"):
        assert list((Path(model_dir) / split).glob("events.out.*")), split
    assert results["export_dir"].endswith("saved_models/mlp/1")


@pytest.mark.slow  # trains for real
def test_progress_bar_on_a_terminal(tiny_config, monkeypatch):
    monkeypatch.setattr(ConsoleReporter, "REFRESH_SECONDS", 0.0)  # draw on every step
    stream = io.StringIO()
    run.run(dataclasses.replace(tiny_config, epochs=1, export_dir=None), ConsoleReporter(stream, interactive=True))
    output = stream.getvalue()
    steps = pipeline.steps_per_epoch(sources.load(data_dir=tiny_config.data_dir, validation_size=200).train, 50)
    assert f"\repoch 1/1 [{'=' * 24}] {steps}/{steps}  loss " in output
    assert "\r\033[Kepoch 1/1  loss" in output  # the bar is cleared before the epoch line


@pytest.mark.slow
def test_second_export_gets_the_next_version(tiny_config):
    first, _ = quiet_run(dataclasses.replace(tiny_config, epochs=1))
    other = {"epochs": 1, "model_dir": tiny_config.model_dir + "2", "seed": tiny_config.seed + 1}  # other weights
    second, _ = quiet_run(dataclasses.replace(tiny_config, **other))
    assert (first["export_dir"][-1], second["export_dir"][-1]) == ("1", "2")
    again, output = quiet_run(dataclasses.replace(tiny_config, epochs=1, model_dir=tiny_config.model_dir + "3"))
    assert again["export_dir"] == first["export_dir"] and "already; nothing new exported" in output  # the same


@pytest.mark.slow  # trains for real (the fast tier's resumed run equals its straight one only if runs repeat)
@pytest.mark.parametrize("model", ["mlp", "lenet"])
def test_same_seed_same_weights_and_accuracy(tiny_config, model):
    kwargs = {"model": model, "export_dir": None, "epochs": 1}
    if model == "lenet":
        kwargs.update(hidden_units=(32,), filters=(4, 8))
    a, _ = quiet_run(dataclasses.replace(tiny_config, **kwargs, model_dir=tiny_config.model_dir + "a"))
    b, _ = quiet_run(dataclasses.replace(tiny_config, **kwargs, model_dir=tiny_config.model_dir + "b"))
    assert a["test_accuracy"] == b["test_accuracy"] and a["test_loss"] == b["test_loss"]
    assert a["weights_sha256"] == b["weights_sha256"]
    weights_a, weights_b = (
        checkpoint_weights(tiny_config.model_dir + "a"),
        checkpoint_weights(tiny_config.model_dir + "b"),
    )
    assert weights_a.keys() == weights_b.keys() and len(weights_a) == (9 if model == "lenet" else 5)
    for name in weights_a:
        np.testing.assert_array_equal(weights_a[name], weights_b[name], err_msg=name)
    c, _ = quiet_run(dataclasses.replace(tiny_config, **kwargs, seed=7, model_dir=tiny_config.model_dir + "c"))
    assert c["test_loss"] != a["test_loss"] and c["weights_sha256"] != a["weights_sha256"]


@pytest.mark.parametrize(
    "settings",
    [
        {},
        # The distortions are drawn from (seed, step), the moving averages of batch normalization are weights.
        pytest.param(
            {"model": "bncnn", "filters": (4, 8), "hidden_units": (16,), "augment": True, "label_smoothing": 0.1},
            marks=pytest.mark.slow,
        ),
    ],
    ids=["mlp", "bncnn-augmented-smoothed"],
)
def test_rerun_resumes_from_the_last_epoch_and_matches_an_uninterrupted_run(tiny_config, settings, exported_run):
    straight = dataclasses.replace(tiny_config, **settings, epochs=2, export_dir=None)
    expected = quiet_run(straight)[0] if settings else exported_run  # the shared run is this one, trained already
    split_run = dataclasses.replace(straight, model_dir=tiny_config.model_dir + "r")

    class CrashAfterFirstEpoch(ConsoleReporter):
        def epoch_end(self, *args):
            raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        run.run(split_run, CrashAfterFirstEpoch(io.StringIO()))
    resumed, output = quiet_run(split_run)
    assert "resuming from" in output and "(step 20: epoch 2, step 0/20)" in output
    assert resumed["resumed_from_step"] == 20
    assert resumed["weights_sha256"] == expected["weights_sha256"]
    assert resumed["test_loss"] == expected["test_loss"]


def test_checkpoint_of_another_model_is_reported(tiny_config):
    quiet_run(dataclasses.replace(tiny_config, epochs=1, export_dir=None))
    with pytest.raises(
        MnistTfError, match=r"holds checkpoints of another model \(hidden_units \(64,\), not \(32,\)\); pass --fresh"
    ):
        quiet_run(dataclasses.replace(tiny_config, epochs=2, export_dir=None, hidden_units=(32,)))


def test_an_export_dir_that_cannot_be_made_is_said_before_the_training(tiny_config, tmp_path):
    (tmp_path / "file").write_text("")
    config = dataclasses.replace(tiny_config, export_dir=str(tmp_path / "file" / "saved_models"))
    with pytest.raises(MnistTfError, match=r"^cannot create --export_dir .*/file/saved_models: Not a directory$"):
        quiet_run(config)
    assert tf.train.latest_checkpoint(f"{tiny_config.model_dir}/checkpoints") is None


def test_nan_loss_stops_at_its_step_with_a_clear_error_and_no_new_checkpoint(tiny_config):
    with pytest.raises(MnistTfError, match=r"training loss became nan at step \d+ \(epoch 1\); no checkpoint was"):
        quiet_run(dataclasses.replace(tiny_config, optimizer="sgd", learning_rate=1e12, lr_schedule="constant"))
    assert tf.train.latest_checkpoint(f"{tiny_config.model_dir}/checkpoints") is None


@pytest.mark.slow  # trains for real
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_trains(tiny_config, optimizer):
    lr = {"sgd": 0.1, "momentum": 0.05, "nesterov": 0.05, "adagrad": 0.05}.get(optimizer, 3e-3)
    results, _ = quiet_run(
        dataclasses.replace(tiny_config, optimizer=optimizer, learning_rate=lr, epochs=2, export_dir=None)
    )
    assert results["test_accuracy"] > 0.6, optimizer


@pytest.mark.parametrize(
    "changes",
    [
        {"strategy": "one_device"},
        {"strategy": "mirrored"},
        {"layers": "keras"},
        {"jit_compile": "on"},
        {"model": "lenet", "hidden_units": (32,), "filters": (4, 8), "activation": "tanh", "lr_schedule": "cosine"},
        {"weight_decay": 1e-3, "lr_schedule": "constant", "validation_size": 0},
        {"model": "cnn", "hidden_units": (32,), "filters": (4, 8)},
        {"loss": "mse"},
        {"loss": "logcosh", "kernel_initializer": "uniform"},
    ],
    ids=lambda changes: ",".join(f"{k}={v}" for k, v in changes.items()),
)
@pytest.mark.slow  # trains for real
def test_variants_train(tiny_config, changes):
    results, output = quiet_run(dataclasses.replace(tiny_config, epochs=2, export_dir=None, **changes))
    assert results["test_accuracy"] > 0.6
    assert ("val loss" in output) == bool(changes.get("validation_size", 1))


@pytest.mark.slow  # trains for real
@requires_module("sklearn")
def test_digits_cnn_recipe_trains_on_the_bundled_digits(tmp_path):
    """The recipe as it is, for 3 of its 150 epochs: 8x8 images through the same pipeline, model and saved_model."""
    config = recipes.config(
        "digits_cnn", epochs=3, model_dir=str(tmp_path / "run"), export_dir=str(tmp_path / "sm"), litert=False
    )
    results, output = quiet_run(config)
    losses = [float(line.split("loss ")[1].split()[0]) for line in output.splitlines() if line.startswith("epoch ")]
    assert len(losses) == 3 and losses[2] < losses[1] < losses[0]
    assert "cnn (ours layers) on digits from sklearn:digits · recipe digits_cnn" in output
    assert "logcosh loss" in output
    assert results["test_accuracy"] > 0.6  # 200 test digits; about 0.85 after 3 epochs
    assert results["export_dir"].endswith("sm/digits_cnn/1")
    served = tf.saved_model.load(results["export_dir"]).signatures["serving_default"]
    test = sources.load("digits", validation_size=0).test
    classes = served(images=tf.constant(test.images))["classes"].numpy()
    assert np.mean(classes == test.labels) == pytest.approx(results["test_accuracy"])


@pytest.fixture
def noisy_validation_dir(tmp_path: Path) -> Path:
    """Learnable training digits whose last 200 (the validation split) have random labels: the better the model
    fits the rest, the worse its validation loss gets."""
    directory = write_idx_dir(tmp_path / "noisy")
    labels = idx.load_split(directory, "train")[1].copy()
    labels[-200:] = np.random.default_rng(5).integers(0, 10, 200)
    idx.write_idx(directory / f"{idx.SPLIT_FILES['train'][1]}.gz", labels)
    return directory


@pytest.mark.slow  # trains for real
def test_early_stopping_stops_when_validation_stops_improving_and_keeps_the_best(tiny_config, noisy_validation_dir):
    config = dataclasses.replace(
        tiny_config, data_dir=str(noisy_validation_dir), epochs=30, early_stopping_patience=2, export_dir=None
    )
    results, output = quiet_run(config)
    stopping = results["early_stopping"]
    assert stopping["stopped_early"] and stopping["patience"] == 2
    assert results["epochs_trained"] == stopping["epochs_trained"] == stopping["best_epoch"] + 2 < 30
    val_losses = [float(line.split("val loss ")[1].split()[0]) for line in output.splitlines() if "val loss" in line]
    assert len(val_losses) == results["epochs_trained"]
    assert min(val_losses) == pytest.approx(val_losses[stopping["best_epoch"] - 1], abs=1e-4)
    assert all(loss >= min(val_losses) for loss in val_losses[stopping["best_epoch"] :])  # no later improvement
    assert (
        f"early stopping: no better validation loss for 2 epochs; using the best, epoch {stopping['best_epoch']}"
        in (output)
    )
    # The tested (and exported) weights are the best epoch's, kept in checkpoints/best.
    best = build.model(config.resolve(), (28, 28, 1))
    tf.train.Checkpoint(model=best).restore(tf.train.latest_checkpoint(f"{config.model_dir}/checkpoints/best"))
    assert weights_digest(best) == results["weights_sha256"]

    # scripts/export.py and evaluate.py rebuild the same model from the run's checkpoints.
    opened = classifier.load(config.model_dir)
    rebuilt, path = opened.model, opened.source
    assert "/checkpoints/best/" in path and weights_digest(rebuilt) == results["weights_sha256"]

    # Run again: it resumes from the last checkpoint, sees it has stopped, and ends with the same best weights.
    again, _ = quiet_run(config)
    assert again["epochs_trained"] == results["epochs_trained"] and again["resumed_from_step"] > 0
    assert again["weights_sha256"] == results["weights_sha256"]
    assert again["test_accuracy"] == results["test_accuracy"]


@pytest.mark.slow  # trains for real
def test_early_stopping_does_not_stop_while_validation_improves(tiny_config):
    results, output = quiet_run(dataclasses.replace(tiny_config, epochs=3, early_stopping_patience=2))
    assert results["epochs_trained"] == 3 and not results["early_stopping"]["stopped_early"]
    assert "early stopping: did not trigger; using the best, epoch" in output
