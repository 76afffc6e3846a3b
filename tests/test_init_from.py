"""--init_from (mnist_tf/training/init_from.py): weights from a SavedModel, a run folder or a checkpoint, each opened
by export/classifier.py; a new head for another number of classes; another architecture refused in one line; a
resumed run ignores it."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import quiet_run, tiny_lenet_in

from mnist_tf import run
from mnist_tf.errors import MnistTfError
from mnist_tf.export import classifier
from mnist_tf.reporting.console import ConsoleReporter
from mnist_tf.training import build


def trained(exported_run) -> dict[str, np.ndarray]:
    model = classifier.load(exported_run["flags"]["model_dir"]).model
    return {v.path: v.numpy() for v in model.trainable_variables}


def _start_from(model, path: str) -> str:
    return run._start_from(model, run._starting_model(path), path)


def sources_of(exported_run) -> dict[str, str]:
    run_dir = exported_run["flags"]["model_dir"]
    return {
        "saved_model": str(Path(exported_run["export_dir"]).parent),  # a base folder: its highest version
        "run": run_dir,
        "checkpoint": tf.train.latest_checkpoint(f"{run_dir}/checkpoints"),
    }


@pytest.mark.versions  # the variables a SavedModel of this Keras names
@pytest.mark.parametrize("kind", ["saved_model", "run", "checkpoint"])
def test_the_same_architecture_loads_every_weight(exported_run, tiny_config, kind):
    model = build.model(tiny_config.resolve(), (28, 28, 1))
    line = _start_from(model, sources_of(exported_run)[kind])
    expected = trained(exported_run)
    count = sum(w.size for w in expected.values())
    assert line.startswith("initialized from ") and f": {count:,} trained weights" in line
    for variable in model.trainable_variables:
        np.testing.assert_array_equal(variable.numpy(), expected[variable.path])


def test_another_number_of_classes_keeps_the_body_and_gets_a_new_head(exported_run, tiny_config):
    model = build.model(tiny_config.resolve(), (28, 28, 1), classes=3)
    fresh_head = model.get_layer("logits").get_weights()
    line = _start_from(model, sources_of(exported_run)["saved_model"])
    assert line.endswith("; a new logits layer for 3 classes")
    expected = trained(exported_run)
    np.testing.assert_array_equal(model.get_layer("dense1").kernel.numpy(), expected["dense1/kernel"])
    for new, initial in zip(model.get_layer("logits").get_weights(), fresh_head, strict=True):
        np.testing.assert_array_equal(new, initial)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"hidden_units": (32,)}, r"another architecture \(dense1/kernel is 784x32 here, 784x64 there\)"),
        ({"model": "lenet", "hidden_units": None}, r"another architecture \(conv1/kernel is 5x5x1x20 here, absent"),
    ],
)
def test_another_architecture_is_refused_in_one_line(exported_run, tiny_config, change, message):
    model = build.model(dataclasses.replace(tiny_config, **change).resolve(), (28, 28, 1))
    with pytest.raises(MnistTfError, match=message):
        _start_from(model, sources_of(exported_run)["run"])


def test_a_run_refuses_another_architecture_before_it_draws_its_bank_or_writes(exported_run, tiny_config):
    config = dataclasses.replace(
        tiny_config, hidden_units=(32,), not_digits=0.125, init_from=exported_run["flags"]["model_dir"]
    )
    output = io.StringIO()
    with pytest.raises(MnistTfError, match=r"another architecture \(dense1/kernel is 784x32 here, 784x64 there\)"):
        run.run(config, ConsoleReporter(output, interactive=False))
    assert "initialized from" not in output.getvalue() and not Path(config.model_dir).exists()


def test_a_litert_file_has_no_weights_to_start_from(trained_lenet):
    model = build.model(tiny_lenet_in(Path(trained_lenet["flags"]["data_dir"]), Path("unused")).resolve(), (28, 28, 1))
    with pytest.raises(MnistTfError, match="a LiteRT file holds no weights to train; give its SavedModel"):
        _start_from(model, trained_lenet["litert"]["int8"])


def test_a_path_that_is_none_of_them_is_one_line(tiny_config, tmp_path):
    model = build.model(tiny_config.resolve(), (28, 28, 1))
    with pytest.raises(MnistTfError, match=r"^--init_from: .*nothing: no such file or folder$"):
        _start_from(model, str(tmp_path / "nothing"))
    with pytest.raises(MnistTfError, match=r"^--init_from: .*: no trained model in this folder"):
        _start_from(model, str(tmp_path))


@pytest.mark.slow
def test_a_run_starts_from_it_and_its_resumption_ignores_it(exported_run, tiny_config):
    config = dataclasses.replace(tiny_config, epochs=1, init_from=exported_run["flags"]["model_dir"], export_dir="")
    first, output = quiet_run(config)
    assert "initialized from run " in output
    # From trained weights, one epoch ends where the source's two did, or better.
    assert first["test_accuracy"] >= exported_run["test_accuracy"] - 0.02
    second, output = quiet_run(dataclasses.replace(config, epochs=2))
    assert "note: --init_from ignored: resuming from " in output and "initialized from" not in output
    assert second["resumed_from_step"] > 0 and second["epochs_trained"] == 2


def test_an_export_whose_variables_are_named_without_their_layer_is_read_by_its_metadata(exported_run, tiny_config):
    """Keras 3.10 (requirements-oldest.txt) names a SavedModel's variables `kernel:0`, not `dense1/kernel:0`."""
    version_dir = Path(exported_run["export_dir"])
    variables = tf.saved_model.load(str(version_dir)).variables
    bare = [tf.Variable(v.numpy(), name=v.name.split("/")[-1].removesuffix(":0")) for v in variables]
    metadata = json.loads((version_dir / "assets.extra" / "mnist_tf.json").read_text())
    weights = classifier._saved_model_weights(version_dir, bare, metadata)
    for name, value in trained(exported_run).items():
        np.testing.assert_array_equal(weights[name], value)
