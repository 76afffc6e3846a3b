"""LiteRT export (mnist_tf/export/litert.py): the variants, their verification and refusal, and the scripts that
take a .tflite file (predict.py, evaluate.py, export.py)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import make_digits, quiet_run, requires_module, shared_output, tiny_lenet_in
from script_runs import run_script

from mnist_tf.config import Config
from mnist_tf.data.sources import Split
from mnist_tf.errors import MnistTfError
from mnist_tf.export import litert, litert_files, publish
from mnist_tf.not_a_digit import decision
from mnist_tf.not_a_digit.decision import Decision
from mnist_tf.training import build

pytestmark = requires_module("ai_edge_litert")
# A calibrated model that learned whether an image is a digit at all (trained_lenet's exports are top_class).
DIGIT_ODDS = Decision(temperature=1.5, score="digit_and_top_class")


@pytest.fixture(scope="module")
def converted() -> tuple[Config, tf.keras.Model, dict[str, bytes]]:
    """Every variant of an untrained tiny LeNet: conversion needs no training."""
    config = dataclasses.replace(Config(model="lenet", filters=(4, 8), hidden_units=(32,)), dtype="float32").resolve()
    model = build.model(config, (28, 28, 1))
    images, _ = make_digits(64, seed=3)
    return config, model, litert.convert_all(model, images[..., np.newaxis], DIGIT_ODDS)


@pytest.fixture
def trained(trained_lenet):
    """conftest's tiny LeNet run, which exported a SavedModel and its LiteRT files, and what it printed."""
    return trained_lenet, shared_output(trained_lenet)


def test_every_variant_takes_raw_pixels_and_uses_only_builtin_ops(converted):
    _, _, flatbuffers = converted
    assert list(flatbuffers) == list(litert.VARIANTS)
    for name, flatbuffer in flatbuffers.items():
        ops = litert.builtin_ops(flatbuffer)
        assert "CONV_2D" in ops and not any(op.startswith("FLEX") for op in ops), name
        model = litert.LiteRtModel(flatbuffer, name)
        assert model.tensor_type("input") == {
            "dtype": "uint8",
            "shape": [1, 28, 28, 1],
            "scale": pytest.approx(1 / 255) if name == "int8" else 0.0,
            "zero_point": 0,
        }
        output = model.tensor_type("output")
        assert output["shape"] == [1, 10] and output["zero_point"] == 0
        # int8: the scale its calibration gave the product of a digit's probability and its class's (1/256 where the
        # file ends in a softmax, as a top_class model's does).
        quantized = name == "int8"
        assert output["dtype"] == ("uint8" if quantized else "float32") and (output["scale"] > 0) == quantized


def test_the_float32_variant_computes_what_the_keras_model_does(converted):
    _, model, flatbuffers = converted
    images, _ = make_digits(16, seed=4)
    expected = decision.probabilities(model(images[..., np.newaxis].astype(np.float32) / 255), DIGIT_ODDS).numpy()
    got = litert.LiteRtModel(flatbuffers["float32"], "float32").probabilities(images)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_a_file_that_needs_a_flex_op_is_refused():
    matrix_inverse = tf.function(tf.linalg.inv, input_signature=[tf.TensorSpec([2, 2], tf.float32)])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([matrix_inverse.get_concrete_function()])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    with pytest.raises(MnistTfError, match="needs a non-built-in op: FlexMatrixInverse"):
        litert.builtin_ops(converter.convert())


def test_models_that_are_not_ours_get_one_line(converted):
    with pytest.raises(MnistTfError, match="junk is not a loadable LiteRT model: "):
        litert.LiteRtModel(b"not a flatbuffer", "junk")
    with pytest.raises(MnistTfError, match=r"empty is not a loadable LiteRT model: an empty file$"):
        litert.LiteRtModel(b"", "empty")
    floats_in = tf.function(lambda x: tf.nn.softmax(x), input_signature=[tf.TensorSpec([1, 10], tf.float32)])
    flatbuffer = tf.lite.TFLiteConverter.from_concrete_functions([floats_in.get_concrete_function()]).convert()
    with pytest.raises(MnistTfError, match=r"^other is not an mnist_tf LiteRT model: .* takes float32 \[1, 10\]$"):
        litert.LiteRtModel(flatbuffer, "other")
    model = litert.LiteRtModel(converted[2]["int8"], "int8")
    with pytest.raises(MnistTfError, match=r"takes images \[28, 28, 1\], not \[8, 8\]"):
        model.probabilities(np.zeros((2, 8, 8), np.uint8))


def test_the_representative_sample_is_seeded():
    images = np.arange(2000)[:, np.newaxis]
    first = litert.representative_images(images, seed=1)
    assert len(first) == litert.REPRESENTATIVE_IMAGES and len(np.unique(first)) == len(first)
    np.testing.assert_array_equal(first, litert.representative_images(images, seed=1))
    assert not np.array_equal(first, litert.representative_images(images, seed=2))
    assert len(litert.representative_images(images[:10], seed=1)) == 10


def test_refusal_names_the_numbers():
    assert litert._refusal("int8", 0.990, 0.999, 0.992) is None
    assert litert._refusal("int8", 0.985, 0.999, 0.992) == (
        "int8 refused: it loses 0.70 points of test accuracy (98.50% against the SavedModel's 99.20%; at most 0.3 "
        "allowed)"
    )
    assert litert._refusal("int8", 0.980, 0.99, 0.992) == (
        "int8 refused: it loses 1.20 points of test accuracy (98.00% against the SavedModel's 99.20%; at most 0.3 "
        "allowed) and agrees with the SavedModel on 99.00% of test images (at least 99.5% required, of classes and "
        "of is_digit)"
    )
    assert litert._refusal("int8", 0.995, 0.99, 0.992) == (
        "int8 refused: it agrees with the SavedModel on 99.00% of test images (at least 99.5% required, of classes "
        "and of is_digit)"
    )


def test_the_litert_files_sit_beside_tf_servings_folder():
    assert litert_files.directory_for("saved_models/lenet/3") == Path("saved_models/litert/lenet/3")


@pytest.mark.slow
def test_training_exports_verified_variants_and_keeps_serving_layout_pure(trained):
    results, output = trained
    directory = litert_files.directory_for(results["export_dir"])
    assert results["litert"] == {name: str(directory / f"{name}.tflite") for name in litert.VARIANTS}
    assert results["litert_report"] == str(directory / litert_files.REPORT_FILE) and results["litert_refused"] is None
    assert f"LiteRT: {directory} (float32, dynamic_range, int8)" in output
    report = json.loads(Path(results["litert_report"]).read_text())
    assert report["saved_model"] == results["export_dir"]
    assert report["saved_model_test_accuracy"] == results["test_accuracy"]
    assert report["test_images"] == 300 and report["config"]["model"] == "lenet"
    assert report["class_names"] == list("0123456789")
    for name, variant in report["variants"].items():
        assert variant["bytes"] == Path(results["litert"][name]).stat().st_size
        assert variant["agreement"] >= litert.MIN_AGREEMENT and variant["refused"] is None
        assert variant["test_accuracy"] >= results["test_accuracy"] - litert.MAX_ACCURACY_DROP
        assert variant["latency_us"] > 0
    # TF Serving's base folder holds numbered SavedModels only.
    serving_base = Path(results["export_dir"]).parent
    assert [p.name for p in serving_base.iterdir()] == ["1"]
    assert not list(serving_base.rglob("*.tflite"))


@pytest.mark.slow
def test_a_variant_that_loses_accuracy_is_left_out_with_a_note_and_the_rest_is_kept(idx_dir, tmp_path, monkeypatch):
    # Calibrating on blank images leaves int8 no range for real ink: its accuracy collapses.
    monkeypatch.setattr(litert, "representative_images", lambda images, seed: np.zeros_like(images[:50]))
    config = tiny_lenet_in(idx_dir, tmp_path)
    _, output = quiet_run(config)  # a refused variant is left out with a note: the run itself succeeded
    assert "note: LiteRT int8 refused: it loses " in output and "; left out, the SavedModel and the other " in output
    results = json.loads((Path(config.model_dir) / "results.json").read_text())
    assert set(results["litert"]) == {"float32", "dynamic_range"}
    assert results["litert_refused"].startswith("int8 refused: ")
    directory = Path(results["litert_report"]).parent
    assert sorted(p.name for p in directory.iterdir()) == ["dynamic_range.tflite", "float32.tflite", "report.json"]
    assert json.loads(Path(results["litert_report"]).read_text())["variants"]["int8"]["refused"]
    assert (Path(results["export_dir"]) / "saved_model.pb").is_file()


@pytest.mark.slow
def test_nolitert_and_a_missing_runtime_export_the_saved_model_only(idx_dir, tmp_path, monkeypatch):
    results, _ = quiet_run(dataclasses.replace(tiny_lenet_in(idx_dir, tmp_path / "off"), litert=False, epochs=1))
    assert results["litert"] is None and not (tmp_path / "off" / "saved_models" / "litert").exists()

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        publish.importlib.util, "find_spec", lambda name: None if name == "ai_edge_litert" else real_find_spec(name)
    )
    results, output = quiet_run(dataclasses.replace(tiny_lenet_in(idx_dir, tmp_path / "missing"), epochs=1))
    assert "note: no LiteRT export: ai-edge-litert is not installed (pip install ai-edge-litert)" in output
    assert results["litert"] is None and results["export_dir"]


@pytest.mark.slow
def test_evaluate_on_a_tflite_file_reproduces_the_report(trained, tmp_path):
    results, _ = trained
    report = json.loads(Path(results["litert_report"]).read_text())
    for name in ("int8", "float32"):
        done = run_script("evaluate", f"--saved_model={results['litert'][name]}", f"--report={tmp_path / name}.json")
        assert done.returncode == 0, done.stderr
        assert f"evaluated {results['litert'][name]} on mnist test" in done.stdout
        evaluated = json.loads((tmp_path / f"{name}.json").read_text())
        assert evaluated["accuracy"] == report["variants"][name]["test_accuracy"]


@pytest.mark.slow
def test_predict_with_a_tflite_file_answers_as_the_saved_model_does(trained, tmp_path):
    results, _ = trained
    images, _ = make_digits(6, seed=9)
    paths = []
    for i, image in enumerate(images):
        paths.append(tmp_path / f"d{i}.png")
        paths[-1].write_bytes(tf.io.encode_png(255 - np.kron(image, np.ones((3, 3), np.uint8))[..., None]).numpy())

    def predict(model: str, seen: str) -> list[str]:
        done = run_script("predict", f"--saved_model={model}", f"--preprocessed_dir={tmp_path / seen}", *paths)
        assert done.returncode == 0, done.stderr
        return [line.split()[1] for line in done.stdout.splitlines()]

    assert predict(results["litert"]["float32"], "litert") == predict(results["export_dir"], "saved_model")
    for name in sorted(p.name for p in (tmp_path / "saved_model").iterdir()):  # the same preprocessing code
        assert (tmp_path / "litert" / name).read_bytes() == (tmp_path / "saved_model" / name).read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("script", ["predict", "evaluate"])
def test_a_bad_tflite_file_is_one_line(tmp_path, script):
    (tmp_path / "junk.tflite").write_bytes(b"\0" * 100)
    images = ["x.png"] if script == "predict" else []
    done = run_script(script, f"--saved_model={tmp_path / 'junk.tflite'}", *images)
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {tmp_path / 'junk.tflite'} is not a loadable LiteRT model: ")


@pytest.mark.slow
def test_export_script_writes_litert_files_for_the_version_it_exports(trained, tmp_path):
    results, _ = trained
    model_dir = results["flags"]["model_dir"]
    done = run_script("export", f"--model_dir={model_dir}", f"--export_dir={tmp_path}", "--version=4")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == f"LiteRT: {tmp_path}/litert/lenet/4 (float32, dynamic_range, int8)"
    exported = json.loads((tmp_path / "litert" / "lenet" / "4" / litert_files.REPORT_FILE).read_text())
    original = json.loads(Path(results["litert_report"]).read_text())
    for name, variant in exported["variants"].items():  # the same weights, converted again: the same numbers
        assert variant["test_accuracy"] == original["variants"][name]["test_accuracy"]
        assert variant["bytes"] == original["variants"][name]["bytes"]


@pytest.mark.slow  # two export.py processes
def test_exporting_the_same_weights_again_completes_their_version_instead_of_adding_one(trained, tmp_path):
    """A rerun after a kill between the SavedModel and its LiteRT files: the version gets its LiteRT files, and
    no second version of the same weights is written."""
    model_dir = trained[0]["flags"]["model_dir"]
    first = run_script("export", f"--model_dir={model_dir}", f"--export_dir={tmp_path}", "--nolitert")
    assert first.returncode == 0 and not (tmp_path / "litert").exists(), first.stderr
    again = run_script("export", f"--model_dir={model_dir}", f"--export_dir={tmp_path}", "--litert")
    assert again.returncode == 0, again.stderr
    assert f"note: these weights are {tmp_path}/lenet/1 already; nothing new exported" in again.stdout
    assert sorted(p.name for p in (tmp_path / "lenet").iterdir()) == ["1"]
    assert (tmp_path / "litert" / "lenet" / "1" / litert_files.REPORT_FILE).is_file()


def test_verification_compares_against_the_saved_model_classes(converted, tmp_path):
    _, _, flatbuffers = converted
    images, labels = make_digits(40, seed=11)
    test = Split(images[..., np.newaxis], labels)
    model = litert.LiteRtModel(flatbuffers["float32"], "float32")
    classes = model.probabilities(test.images).argmax(-1)
    probabilities = model.probabilities(test.images)
    chosen = Decision(threshold=float(np.median(Decision().scores(probabilities))))
    is_digit = chosen.accepts(probabilities)
    result = litert.verify(flatbuffers["float32"], test, classes, is_digit, chosen)
    assert result["agreement"] == 1.0 and result["decision_agreement"] == 1.0
    assert result["test_accuracy"] == float(np.mean(classes == labels))
    flipped = litert.verify(flatbuffers["float32"], test, (classes + 1) % 10, ~is_digit, chosen)
    assert flipped["agreement"] == 0.0 and flipped["decision_agreement"] == 0.0
