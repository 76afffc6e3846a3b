"""scripts/evaluate.py and mnist_tf.evaluation: the numbers, their consistency, and clear failures."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
from script_runs import Done, run_script

from mnist_tf.data import idx, sources
from mnist_tf.reporting import evaluation


def evaluate(*args: str) -> Done:
    return run_script("evaluate", *args)


def test_report_by_hand():
    labels = np.array([0, 0, 1, 2, 2])
    probabilities = np.array(
        [
            [0.9, 0.1, 0.0],  # right
            [0.3, 0.7, 0.0],  # 0 read as 1, confidence 0.7
            [0.2, 0.8, 0.0],  # right
            [0.05, 0.0, 0.95],  # right
            [0.9, 0.0, 0.1],  # 2 read as 0, confidence 0.9: the worst mistake
        ]
    )
    report = evaluation.report(labels, probabilities, num_mistakes=5)
    np.testing.assert_array_equal(report.confusion, [[1, 1, 0], [0, 1, 0], [1, 0, 1]])
    assert report.accuracy == pytest.approx(3 / 5)
    np.testing.assert_allclose(report.precision, [1 / 2, 1 / 2, 1])
    np.testing.assert_allclose(report.recall, [1 / 2, 1, 1 / 2])
    assert report.loss == pytest.approx(-np.log([0.9, 0.3, 0.8, 0.95, 0.1]).mean())
    assert [(m.index, m.label, m.predicted) for m in report.mistakes] == [(4, 2, 0), (1, 0, 1)]
    assert report.mistakes[0].confidence == pytest.approx(0.9)
    named = report.lines(["Sandal", "Shirt", "Bag"])
    assert "Sandal     0.5000  0.5000        2" in named and "    4   Bag     Sandal      0.9000" in named


def test_a_class_never_predicted_has_zero_precision_not_nan():
    report = evaluation.report(np.array([0, 1]), np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))
    np.testing.assert_array_equal(report.precision, [0.5, 0.0, 0.0])
    np.testing.assert_array_equal(report.recall, [1.0, 0.0, 0.0])


@pytest.mark.slow
@pytest.mark.parametrize("source", ["saved_model", "model_dir"])
def test_evaluates_on_the_data_the_model_was_trained_on(exported_run, tmp_path, source):
    target = exported_run["export_dir"] if source == "saved_model" else exported_run["flags"]["model_dir"]
    result = evaluate(f"--{source}={target}", f"--report={tmp_path / 'report.json'}", "--num_mistakes=4")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["accuracy"] == pytest.approx(exported_run["test_accuracy"], abs=1e-6)
    # The loss of what the export serves: its calibrated probabilities, not the trained model's own.
    served = tf.saved_model.load(exported_run["export_dir"]).signatures["serving_default"]
    test = sources.load(data_dir=exported_run["flags"]["data_dir"]).test
    probabilities = served(images=tf.constant(test.images))["probabilities"].numpy()
    expected = evaluation.report(test.labels, probabilities, 0).loss
    assert report["loss"] == pytest.approx(expected, rel=1e-4)
    confusion = np.array(report["confusion_matrix"])
    assert confusion.shape == (10, 10) and confusion.sum() == report["examples"] == 300
    assert np.trace(confusion) / 300 == pytest.approx(report["accuracy"])
    np.testing.assert_array_equal(confusion.sum(axis=1), report["support"])
    mistakes = report["mistakes"]
    assert len(mistakes) == min(4, 300 - np.trace(confusion))
    assert all(m["label"] != m["predicted"] for m in mistakes)
    assert [m["confidence"] for m in mistakes] == sorted((m["confidence"] for m in mistakes), reverse=True)
    assert f"accuracy {report['accuracy']:.4f}" in result.stdout
    assert "confusion matrix (rows: true label, columns: predicted)" in result.stdout


@pytest.mark.slow
def test_data_flags_override_the_training_data(exported_run, tmp_path):
    result = evaluate(f"--saved_model={exported_run['export_dir']}", f"--data_dir={tmp_path / 'nowhere'}")
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and str(tmp_path / "nowhere") in line


@pytest.mark.slow
@pytest.mark.parametrize("source", ["saved_model", "model_dir"])
def test_images_of_another_size_are_one_line(exported_run, tmp_path, source):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        images_name, labels_name = idx.SPLIT_FILES[split]
        idx.write_idx(tmp_path / images_name, rng.integers(0, 256, (20, 10, 10), dtype=np.uint8))
        idx.write_idx(tmp_path / labels_name, rng.integers(0, 10, 20, dtype=np.uint8))
    target = exported_run["export_dir"] if source == "saved_model" else exported_run["flags"]["model_dir"]
    result = evaluate(f"--{source}={target}", f"--data_dir={tmp_path}")
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    expected = {
        "saved_model": "rejects these images: images must be uint8 [batch, 28, 28] or [batch, 28, 28, 1], got shape"
        " [20 10 10 1]",
        "model_dir": "takes images (28, 28, 1), not (10, 10, 1)",
    }
    assert expected[source] in line


@pytest.mark.slow
def test_a_missing_model_is_one_line(tmp_path):
    result = evaluate(f"--saved_model={tmp_path}")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path}: no trained model in this folder (a run's config.json, a SavedModel's saved_model.pb or"
        " its numbered versions)"
    ]


@pytest.mark.slow
def test_saved_model_and_model_dir_are_exclusive(tmp_path):
    result = evaluate(f"--saved_model={tmp_path}", f"--model_dir={tmp_path}")
    assert result.returncode == 2 and "of (saved_model, model_dir) must have a value" in result.stderr


@pytest.mark.slow
def test_ood_reports_every_set_with_the_numbers_of_its_decision(exported_run, tmp_path):
    sets = "fonts,ambiguous,noise,handwriting"
    figures = tmp_path / "figures"
    result = evaluate(
        f"--saved_model={exported_run['export_dir']}",
        f"--ood={sets}",
        f"--report={tmp_path / 'report.json'}",
        f"--figures={figures}",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report["ood"]) == {"mnist_test", *sets.split(",")}
    assert report["decision"] == exported_run["decision"]
    for name, row in report["ood"].items():
        assert 0 <= row["accepted"] <= 1
        if name in ("mnist_test", "handwriting"):  # digits: must be accepted, and read right
            assert 0 <= row["accuracy"] <= 1 and "auroc" not in row
        else:
            assert 0 <= row["auroc"] <= 1 and 0 <= row["fpr_at_95"] <= 1
    assert report["ood"]["mnist_test"]["accepted"] == pytest.approx(exported_run["test_confidence"]["accepted"])
    assert report["confidence"]["calibration_error"] == pytest.approx(
        exported_run["test_confidence"]["calibration_error"], abs=1e-4
    )
    assert "not a digit: set" in result.stdout and "handwriting" in result.stdout
    assert (figures / "reliability_diagram.png").read_bytes().startswith(b"\x89PNG")


def test_an_unknown_ood_set_is_one_line(exported_run):
    result = evaluate(f"--saved_model={exported_run['export_dir']}", "--ood=greek")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: --ood='greek' is not one of: fashion, fonts")


@pytest.mark.slow
def test_a_figures_folder_that_cannot_be_made_is_said_before_the_evaluation(exported_run, tmp_path):
    (tmp_path / "file").write_text("")
    result = evaluate(f"--saved_model={exported_run['export_dir']}", f"--figures={tmp_path / 'file' / 'figures'}")
    assert result.returncode == 1 and result.stdout == ""
    assert (
        result.stderr.strip().splitlines()[-1]
        == f"error: cannot create --figures {tmp_path}/file/figures: Not a directory"
    )
