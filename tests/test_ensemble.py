"""Ensembles (mnist_tf/export/ensemble.py): one model answering with its members' mean probability, exported
with both signatures by scripts/export.py, and evaluated member by member by scripts/evaluate.py."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf
from conftest import make_digits, quiet_run, tiny_lenet_in
from script_runs import run_script

from mnist_tf.config import Config
from mnist_tf.data import sources
from mnist_tf.errors import MnistTfError
from mnist_tf.export import classifier, ensemble, litert, saved_model
from mnist_tf.not_a_digit import decision
from mnist_tf.training import build


def small_model(seed: int, model: str = "lenet") -> tf.keras.Model:
    filters = {"filters": (4, 8)} if model == "lenet" else {}
    config = Config(model=model, **filters, hidden_units=(16,), seed=seed, dtype="float32").resolve()
    return build.model(config, (28, 28, 1))


def test_the_ensembles_softmax_is_the_mean_of_its_members():
    members = [small_model(1), small_model(2), small_model(3, "mlp")]
    images = make_digits(8, seed=1)[0][..., np.newaxis].astype(np.float32) / 255
    expected = np.mean([tf.nn.softmax(member(images)).numpy() for member in members], axis=0)
    together = ensemble.ensemble_model(members)
    np.testing.assert_allclose(tf.nn.softmax(together(images)), expected, rtol=1e-5, atol=1e-7)
    assert together.output_shape == (None, 10) and together.name == "ensemble"


def test_an_ensemble_of_members_that_learned_the_digit_odds_averages_them_too():
    members = [small_model(1), small_model(2)]
    images = make_digits(8, seed=1)[0][..., np.newaxis].astype(np.float32) / 255

    def with_not_a_digit(logits: tf.Tensor) -> np.ndarray:  # K+1 probabilities, the last "not a digit"
        return tf.nn.softmax(tf.pad(logits, [[0, 0], [0, 1]])).numpy()

    expected = np.mean([with_not_a_digit(member(images)) for member in members], axis=0)
    together = ensemble.ensemble_model(members, "digit_and_top_class")
    np.testing.assert_allclose(with_not_a_digit(together(images)), expected, rtol=1e-5, atol=1e-7)


def test_members_must_take_the_same_images():
    eight = build.model(Config(model="mlp", hidden_units=(4,), dtype="float32").resolve(), (8, 8, 1))
    with pytest.raises(MnistTfError, match=r"must take the same images, got shapes \[\(8, 8, 1\), \(28, 28, 1\)\]"):
        ensemble.ensemble_model([small_model(1), eight])


@pytest.fixture(scope="module")
def runs(idx_dir, tmp_path_factory, trained_lenet) -> list[dict]:
    """Two confident tiny LeNets of different seeds (confident: their int8 LiteRT files pass verification): conftest's
    and one of seed 1."""
    root = tmp_path_factory.mktemp("members")
    config = dataclasses.replace(tiny_lenet_in(idx_dir, root), export_dir=None)
    return [trained_lenet, quiet_run(dataclasses.replace(config, seed=1, model_dir=str(root / "run1")))[0]]


@pytest.mark.slow
def test_export_script_exports_an_ensemble_that_serves_both_signatures_and_converts(runs, tmp_path):
    model_dirs = ",".join(run["flags"]["model_dir"] for run in runs)
    done = run_script("export", f"--model_dir={model_dirs}", f"--export_dir={tmp_path}", "--litert")
    assert done.returncode == 0, done.stderr
    version = tmp_path / "lenet_ensemble" / "1"
    assert done.stdout.splitlines() == [
        f"exporting the ensemble of {', '.join(r['flags']['model_dir'] + '/checkpoints/ckpt-60' for r in runs)}",
        f"SavedModel: {version}",
        f"LiteRT: {tmp_path}/litert/lenet_ensemble/1 (float32, dynamic_range, int8)",
    ]
    metadata = json.loads((version / "assets.extra" / saved_model.METADATA_FILE).read_text())
    assert [member["config"]["seed"] for member in metadata["ensemble"]] == [run["flags"]["seed"] for run in runs]

    test = sources.load(data_dir=runs[0]["flags"]["data_dir"]).test
    served = tf.saved_model.load(str(version)).signatures
    probabilities = served[saved_model.SERVING_DEFAULT](images=tf.constant(test.images))["probabilities"].numpy()
    # The mean of the members' probabilities, calibrated by the ensemble's own temperature.
    mean = member_probabilities(runs, test.images).mean(axis=0)
    calibrated = decision.softmax(np.log(mean) / metadata["decision"]["temperature"])
    np.testing.assert_allclose(probabilities, calibrated, atol=1e-5)
    png = tf.io.encode_png(test.images[0]).numpy()
    answer = served[saved_model.IMAGE_BYTES](image_bytes=tf.constant([png]))
    again = served[saved_model.SERVING_DEFAULT](images=answer["preprocessed"])["probabilities"]
    np.testing.assert_allclose(answer["probabilities"], again, atol=1e-6)
    report = litert.read_report(tmp_path / "litert" / "lenet_ensemble" / "1")
    assert all(variant["refused"] is None for variant in report["variants"].values())


@pytest.mark.slow
def test_evaluate_reports_each_member_and_the_ensemble(runs, tmp_path):
    exported = []
    for i, run in enumerate(runs):
        model = classifier.load(run["flags"]["model_dir"]).model
        metadata = {"config": run["flags"]}  # where evaluate.py finds the data set
        exported.append(str(saved_model.export_saved_model(model, tmp_path / f"member{i}", metadata=metadata)))
    done = run_script(
        "evaluate",
        f"--saved_model={','.join(exported)}",
        f"--report={tmp_path}/r.json",
        f"--figures={tmp_path / 'figures'}",
        "--num_mistakes=5",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "evaluated 2 models on mnist test, and their ensemble"
    assert [line.split()[-1] for line in lines[1:3]] == exported
    assert lines[3] == "the ensemble (the mean of their probabilities):"
    report = json.loads((tmp_path / "r.json").read_text())
    test = sources.load(data_dir=runs[0]["flags"]["data_dir"]).test
    probabilities = member_probabilities(runs, test.images)
    assert report["accuracy"] == float(np.mean(probabilities.mean(axis=0).argmax(-1) == test.labels))
    assert list(report["members"].values()) == [float(np.mean(p.argmax(-1) == test.labels)) for p in probabilities]
    assert (tmp_path / "figures" / "confusion_matrix.png").read_bytes().startswith(b"\x89PNG")
    # The mistakes, when there are any (the tiny ensemble may make none).
    assert (tmp_path / "figures" / "mistakes.png").exists() == (report["accuracy"] < 1)


def member_probabilities(runs: list[dict], images: np.ndarray) -> np.ndarray:
    """[members, images, 10]: each run's checkpoint, as its SavedModel would answer."""
    models = [classifier.load(run["flags"]["model_dir"]).model for run in runs]
    return np.stack([saved_model.predict(model, tf.constant(images))["probabilities"].numpy() for model in models])
