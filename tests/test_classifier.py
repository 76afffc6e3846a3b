"""export/classifier.py: one entry point opens every kind of trained model, and each answers as the export does."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from mnist_tf.data import idx
from mnist_tf.data.sources import DIGITS
from mnist_tf.errors import MnistTfError
from mnist_tf.export import classifier


def artifacts(trained_lenet) -> dict[str, str]:
    """Every kind of file the tiny LeNet run left, by kind."""
    run_dir, version_dir = trained_lenet["flags"]["model_dir"], Path(trained_lenet["export_dir"])
    return {
        "SavedModel": str(version_dir.parent),  # a base folder: its highest version
        "LiteRT file": trained_lenet["litert"]["float32"],
        "run": run_dir,
        "checkpoint": tf.train.latest_checkpoint(f"{run_dir}/checkpoints"),
    }


def test_every_kind_of_trained_model_opens_and_answers_as_its_export(trained_lenet):
    images, _ = idx.load_split(trained_lenet["flags"]["data_dir"], "test")
    pixels = images[:12, ..., np.newaxis]
    files = [_png(image) for image in images[:4]]
    opened = {kind: classifier.load(path) for kind, path in artifacts(trained_lenet).items()}
    export = opened["SavedModel"]
    expected = export.probabilities(pixels)
    np.testing.assert_allclose(expected.sum(axis=1), 1.0, rtol=1e-5)
    expected_files = export.answer_files(files)
    for kind, model in opened.items():
        assert model.kind == kind and model.class_names == DIGITS and model.config["model"] == "lenet"
        # The same weights (the LiteRT file's in float32), the same calibration and threshold, fitted on the run's
        # validation split for a run and a checkpoint as training fitted them for the export.
        np.testing.assert_allclose(model.probabilities(pixels), expected, atol=1e-4, err_msg=kind)
        assert model.decision.temperature == pytest.approx(export.decision.temperature, rel=1e-3), kind
        answers = model.answer_files(files)
        for answer, reference in zip(answers, expected_files, strict=True):
            np.testing.assert_allclose(answer["probabilities"], reference["probabilities"], atol=1e-4, err_msg=kind)
            np.testing.assert_array_equal(answer["preprocessed"], reference["preprocessed"], err_msg=kind)
            assert bool(answer["is_digit"]) == bool(reference["is_digit"]), kind
    trained = opened["run"].weights()
    for kind in ("SavedModel", "checkpoint"):
        weights = opened[kind].weights()
        for name in (v.path for v in opened["run"].model.trainable_variables):
            np.testing.assert_array_equal(weights[name], trained[name], err_msg=f"{kind} {name}")
    assert opened["LiteRT file"].weights is None and opened["run"].model is not None
    assert opened["SavedModel"].litert_int8 and opened["SavedModel"].litert_int8.endswith("int8.tflite")


def test_an_ensemble_answers_with_its_members_mean_and_accepts_every_image(trained_lenet, exported_run):
    images, _ = idx.load_split(trained_lenet["flags"]["data_dir"], "test")
    pixels, files = images[:6, ..., np.newaxis], [_png(image) for image in images[:2]] + [b"not an image"]
    members = [classifier.load(artifacts(trained_lenet)["SavedModel"]), classifier.load(exported_run["export_dir"])]
    both = classifier.ensemble(members)
    assert both.kind == "ensemble" and both.decision.threshold == -np.inf and both.class_names == DIGITS
    np.testing.assert_allclose(both.probabilities(pixels), np.mean([m.probabilities(pixels) for m in members], 0))
    answers = both.answer_files(files)
    assert all(bool(answer["is_digit"]) for answer in answers[:2]) and isinstance(answers[2], str)


def test_a_file_its_preprocessing_refuses_is_one_line_among_the_answers(trained_lenet):
    export = classifier.load(artifacts(trained_lenet)["SavedModel"])
    answers = export.answer_files([_png(np.zeros((28, 28), np.uint8)), b"not an image"])
    assert isinstance(answers[0], dict) and isinstance(answers[1], str) and "\n" not in answers[1]


def fake_signature(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
    """Answers each image with its length as digit 0's probability; refuses any batch holding b"bad"."""
    values = image_bytes.numpy().tolist()
    if b"bad" in values:
        raise tf.errors.InvalidArgumentError(None, None, f"assertion failed: [broken: image {values.index(b'bad')}]")
    probabilities = np.zeros((len(values), 10), np.float32)
    probabilities[:, 0] = [len(v) for v in values]
    return {"probabilities": tf.constant(probabilities), "preprocessed": tf.zeros((len(values), 28, 28), tf.uint8)}


def test_a_batch_an_older_export_refuses_is_answered_file_by_file_and_a_good_one_in_one_call():
    """An export from before its own checks caught every bad image refuses a whole batch for one of them."""
    calls = []

    def counting(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        calls.append(int(tf.size(image_bytes)))
        return fake_signature(image_bytes)

    answers = classifier._answer_each(counting, [b"a", b"bad", b"ccc"])
    assert [a if isinstance(a, str) else float(a["probabilities"][0]) for a in answers] == [1.0, "broken: image 0", 3.0]
    assert calls == [3, 1, 1, 1]
    assert len(classifier._answer_each(counting, [b"a", b"bb"])) == 2 and calls[-1] == 2
    assert classifier._answer_each(counting, []) == [] and len(calls) == 5


def test_a_path_that_is_no_trained_model_is_one_line(tmp_path):
    with pytest.raises(MnistTfError, match=r"nothing: no such file or folder$"):
        classifier.load(tmp_path / "nothing")
    with pytest.raises(MnistTfError, match=r"no trained model in this folder \(a run's config.json, a SavedModel's"):
        classifier.load(tmp_path)
    (tmp_path / "model.zip").write_bytes(b"PK")
    with pytest.raises(MnistTfError, match=r"model.zip: a file, not a SavedModel's folder$"):
        classifier.load(tmp_path / "model.zip")
    with pytest.raises(MnistTfError, match="a checkpoint outside a run folder"):
        (tmp_path / "ckpt-1.index").write_bytes(b"")
        classifier.load(tmp_path / "ckpt-1")


def test_a_truncated_checkpoint_or_saved_model_is_one_line(trained_lenet, tmp_path):
    """Files cut short (a full disk, a copy interrupted): TensorFlow's readers raise IndexError on them."""
    run_dir, version_dir = Path(trained_lenet["flags"]["model_dir"]), Path(trained_lenet["export_dir"])
    copies = {"run": tmp_path / "run", "saved_model": tmp_path / "saved_model"}
    shutil.copytree(run_dir, copies["run"])
    shutil.copytree(version_dir, copies["saved_model"])
    prefix = tf.train.latest_checkpoint(copies["run"] / "checkpoints")
    for data in [
        Path(f"{prefix}.data-00000-of-00001"),
        copies["saved_model"] / "variables" / "variables.data-00000-of-00001",
    ]:
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    with pytest.raises(MnistTfError, match="cannot read the checkpoint"):
        classifier.load(prefix)
    with pytest.raises(MnistTfError, match="cannot load the SavedModel at"):
        classifier.load(copies["saved_model"])


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()
