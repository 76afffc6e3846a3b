"""SavedModels as TF Serving and plain TensorFlow users get them: signatures, warmup, versions, atomic writes."""

from __future__ import annotations

import base64
import errno
import json
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO, make_digits, requires_real_mnist
from script_runs import run_script

from mnist_tf.config import Config
from mnist_tf.data import preprocess
from mnist_tf.errors import MnistTfError
from mnist_tf.export import classifier, publish, saved_model, warmup
from mnist_tf.not_a_digit.decision import Decision
from mnist_tf.training import build, run_state

SAVED_MODEL_CLI = str(Path(sys.executable).parent / "saved_model_cli")


def digits_as_png(images: np.ndarray, light_background: bool = True) -> list[bytes]:
    """MNIST-style images as PNG files of a person's digit: dark ink on paper, three times the size."""
    pngs = []
    for image in images:
        big = np.kron(image, np.ones((3, 3), np.uint8))
        big = 255 - big if light_background else big
        pngs.append(tf.io.encode_png(big[..., np.newaxis]).numpy())
    return pngs


@pytest.fixture(scope="module")
def served(exported_run):
    return tf.saved_model.load(exported_run["export_dir"])


@pytest.mark.slow
@pytest.mark.versions
def test_a_fresh_tensorflow_process_serves_both_signatures_like_the_trained_model(exported_run, tmp_path):
    images, _ = make_digits(16, seed=9)
    pngs = digits_as_png(images[:5])
    np.save(tmp_path / "images.npy", images)
    np.save(tmp_path / "pngs.npy", np.array(pngs, dtype=object), allow_pickle=True)
    # What TF Serving or a user's script does: import TensorFlow (nothing of ours) and load the directory.
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        import tensorflow as tf
        before = set(sys.modules)
        model = tf.saved_model.load({exported_run["export_dir"]!r})
        images = np.load({str(tmp_path / "images.npy")!r})
        rank3 = model.signatures["serving_default"](images=tf.constant(images))
        rank4 = model.signatures["serving_default"](images=tf.constant(images[..., np.newaxis]))
        pngs = np.load({str(tmp_path / "pngs.npy")!r}, allow_pickle=True).tolist()
        from_bytes = model.signatures["image_bytes"](image_bytes=tf.constant(pngs))
        assert "mnist_tf" not in sys.modules
        assert not [m for m in set(sys.modules) - before if m.startswith("keras")], "loading needed Keras"
        np.savez({str(tmp_path / "out.npz")!r},
                 rank3_probabilities=rank3["probabilities"].numpy(), rank3_classes=rank3["classes"].numpy(),
                 rank4_probabilities=rank4["probabilities"].numpy(),
                 bytes_probabilities=from_bytes["probabilities"].numpy(),
                 preprocessed=from_bytes["preprocessed"].numpy())
    """)
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    out = np.load(tmp_path / "out.npz")

    model = classifier.load(exported_run["flags"]["model_dir"]).model
    chosen = Decision.from_dict(exported_run["decision"])  # the export's calibration
    expected = saved_model.predict(model, images[..., np.newaxis], chosen)["probabilities"].numpy()
    np.testing.assert_allclose(out["rank3_probabilities"], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out["rank4_probabilities"], out["rank3_probabilities"])
    assert out["rank3_probabilities"].dtype == np.float32 and out["rank3_probabilities"].shape == (16, 10)
    np.testing.assert_array_equal(out["rank3_classes"], expected.argmax(axis=1))
    preprocessed = preprocess.preprocess_batch(tf.constant(pngs)).numpy()
    np.testing.assert_array_equal(out["preprocessed"], preprocessed)
    expected_bytes = saved_model.predict(model, preprocessed[..., np.newaxis], chosen)["probabilities"].numpy()
    np.testing.assert_allclose(out["bytes_probabilities"], expected_bytes, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(2, 27, 28), (2, 28, 28, 3), (28, 28), (1, 28, 28, 1, 1)])
def test_serving_default_names_the_shapes_it_takes(served, shape):
    with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape("images must be uint8 [batch, 28, 28] or")):
        served.signatures["serving_default"](images=tf.zeros(shape, tf.uint8))


@pytest.mark.slow  # writes a SavedModel
def test_an_empty_request_gets_empty_answers_from_a_convolutional_model(tmp_path):
    """TensorFlow's convolutions fail on a batch of 0 images; the signatures answer it without the model."""
    model = build.model(Config(model="lenet", filters=(4, 8), hidden_units=(16,)).resolve(), (28, 28, 1))
    signatures = tf.saved_model.load(str(saved_model.export_saved_model(model, tmp_path / "lenet"))).signatures
    empty = signatures["serving_default"](images=tf.zeros([0, 28, 28], tf.uint8))
    assert empty["probabilities"].shape == (0, 10) and empty["classes"].shape == (0,)
    from_bytes = signatures["image_bytes"](image_bytes=tf.constant([], tf.string))
    assert from_bytes["probabilities"].shape == (0, 10) and from_bytes["preprocessed"].shape == (0, 28, 28)
    assert signatures["serving_default"](images=tf.zeros([2, 28, 28], tf.uint8))["classes"].shape == (2,)


def test_serving_default_takes_only_uint8(served):
    with pytest.raises(tf.errors.InvalidArgumentError, match="expected to be a uint8 tensor but is a float"):
        served.signatures["serving_default"](images=tf.zeros([1, 28, 28], tf.float32))


@pytest.mark.slow
def test_saved_model_cli_shows_the_signatures_and_runs_them(exported_run, served):
    shown = subprocess.run(
        [SAVED_MODEL_CLI, "show", "--all", "--dir", exported_run["export_dir"]],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for signature, input_line, dtype in (
        ("serving_default", "inputs['images'] tensor_info:", "DT_UINT8"),
        ("image_bytes", "inputs['image_bytes'] tensor_info:", "DT_STRING"),
    ):
        block = shown.split(f"signature_def['{signature}']:")[1].split("signature_def[")[0]
        assert input_line in block and dtype in block
        assert "outputs['probabilities']" in block and "outputs['classes']" in block
        assert "Method name is: tensorflow/serving/predict" in block

    images, _ = make_digits(3, seed=4)
    literal = str(images.tolist()).replace(" ", "")  # --input_exprs takes Python literals only (no numpy calls)
    ran = subprocess.run(
        [
            *(SAVED_MODEL_CLI, "run", "--dir", exported_run["export_dir"], "--tag_set", "serve"),
            *("--signature_def", "serving_default", "--input_exprs", f"images={literal}"),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    classes = re.search(r"Result for output key classes:\n\[([\d ]+)\]", ran).group(1).split()
    expected = served.signatures["serving_default"](images=tf.constant(images))["classes"].numpy()
    assert [int(c) for c in classes] == expected.tolist()


def test_warmup_requests_are_prediction_logs_the_model_answers(exported_run, served):
    prediction_log_pb2 = pytest.importorskip("tensorflow_serving.apis.prediction_log_pb2")

    path = Path(exported_run["export_dir"]) / "assets.extra" / saved_model.WARMUP_FILE
    signatures_seen = []
    for record in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
        request = prediction_log_pb2.PredictionLog.FromString(record).predict_log.request
        inputs = {name: tf.constant(tf.make_ndarray(proto)) for name, proto in request.inputs.items()}
        outputs = served.signatures[request.model_spec.signature_name](**inputs)
        assert outputs["probabilities"].shape == (1, 10)
        signatures_seen.append(request.model_spec.signature_name)
    assert sorted(signatures_seen) == ["image_bytes", "image_bytes", "serving_default", "serving_default"]


@pytest.mark.parametrize(
    "signature, input_name, value",
    [
        ("serving_default", "images", np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)),
        ("image_bytes", "image_bytes", np.array([b"\x89PNG" + bytes(300)], dtype=object)),
        ("a" * 200, "x" * 130, np.zeros((1, 100, 100, 1), np.uint8)),  # lengths past one varint byte
    ],
)
def test_hand_encoded_prediction_logs_are_byte_for_byte_what_tf_serving_writes(signature, input_name, value):
    """Written without tensorflow-serving-api, compared with it where it is installed."""
    predict_pb2 = pytest.importorskip("tensorflow_serving.apis.predict_pb2")
    from tensorflow_serving.apis import prediction_log_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.signature_name = signature
    request.inputs[input_name].CopyFrom(tf.make_tensor_proto(value))
    expected = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
    assert warmup.prediction_log(signature, input_name, value) == expected.SerializeToString()


@pytest.mark.slow  # writes a SavedModel
def test_exports_without_tensorflow_serving_api(exported_run, tmp_path, monkeypatch):
    """As on Colab, where installing the package would replace the TPU build of TensorFlow."""
    monkeypatch.setitem(sys.modules, "tensorflow_serving", None)  # any import of it now fails
    model = classifier.load(exported_run["flags"]["model_dir"]).model
    path = saved_model.export_saved_model(model, tmp_path / "mlp")
    records = list(tf.data.TFRecordDataset(str(path / "assets.extra" / saved_model.WARMUP_FILE)))
    assert len(records) == 4


def test_metadata_says_how_the_model_was_trained(exported_run):
    metadata = json.loads((Path(exported_run["export_dir"]) / "assets.extra" / saved_model.METADATA_FILE).read_text())
    assert metadata["config"]["model"] == "mlp" and metadata["image_shape"] == [28, 28, 1]
    assert metadata["test_accuracy"] == exported_run["test_accuracy"]


@pytest.mark.parametrize("model", ["tiny", pytest.param("mnist", marks=[pytest.mark.slow, requires_real_mnist])])
def test_the_readme_rest_request_bodies_get_the_digit_they_show(exported_run, model, request):
    """The TF Serving REST bodies in docs/serving.md (a PNG of a 7, and that 7 as pixels) name real signatures and
    inputs, and a model trained on MNIST reads the 7 in both (the tiny model, trained on blobs, only has to answer)."""
    path = exported_run["export_dir"] if model == "tiny" else request.getfixturevalue("mnist_saved_model")
    served = tf.saved_model.load(path)
    blocks = re.findall(r"```json\n(.*?)```", (REPO / "docs" / "serving.md").read_text(), re.S)
    assert len(blocks) == 2
    for body in map(json.loads, blocks):
        signature = served.signatures[body.get("signature_name", "serving_default")]
        (input_name,) = signature.structured_input_signature[1]
        if input_name == "image_bytes":  # TF Serving's REST API turns each {"b64": ...} into a string's bytes
            inputs = tf.constant([base64.b64decode(instance["b64"]) for instance in body["instances"]])
        else:
            inputs = tf.constant(body["instances"], tf.uint8)
        outputs = signature(**{input_name: inputs})
        assert outputs["probabilities"].shape == (1, 10)
        if model == "mnist":
            assert outputs["classes"].numpy().tolist() == [7]


def test_a_failed_export_leaves_earlier_versions_and_no_debris(exported_run, tmp_path, monkeypatch):
    model = classifier.load(exported_run["flags"]["model_dir"]).model
    base = tmp_path / "mlp"
    first = saved_model.export_saved_model(model, base)

    def disk_full(*_):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(warmup, "write_requests", disk_full)
    with pytest.raises(MnistTfError, match=r"could not export the SavedModel to .*/mlp/2: No space left on device"):
        saved_model.export_saved_model(model, base)
    assert [p.name for p in base.iterdir()] == ["1"]
    assert tf.saved_model.load(str(first)).signatures["serving_default"] is not None


@pytest.mark.slow
def test_a_crash_mid_export_leaves_no_new_version(exported_run, tmp_path):
    """SIGKILL while the SavedModel is being written: TF Serving must never see a version directory."""
    base = tmp_path / "mlp"
    script = textwrap.dedent(f"""
        import os, signal
        from mnist_tf.export import classifier, publish, saved_model, warmup
        model = classifier.load({exported_run["flags"]["model_dir"]!r}).model
        saved_model.export_saved_model(model, {str(base)!r})
        warmup.write_requests = lambda *_: os.kill(os.getpid(), signal.SIGKILL)
        saved_model.export_saved_model(model, {str(base)!r})
    """)
    crashed = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert crashed.returncode == -signal.SIGKILL
    assert sorted(p.name for p in base.iterdir() if not p.name.startswith(".")) == ["1"]
    assert saved_model.latest_version(base) == base / "1" and saved_model.next_version(base) == 2
    (left,) = base.glob(".tmp-*")  # the killed export's staging folder, its lock free: the next export removes it
    saved_model.export_saved_model(classifier.load(exported_run["flags"]["model_dir"]).model, base)
    assert not left.exists() and sorted(p.name for p in base.iterdir()) == ["1", "2"]


@pytest.mark.slow
def test_export_script_writes_the_next_or_the_given_version(exported_run, tmp_path):
    model_dir = exported_run["flags"]["model_dir"]
    flags = [f"--model_dir={model_dir}", f"--export_dir={tmp_path}", "--nolitert"]
    first = run_script("export", *flags)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[-1] == f"SavedModel: {tmp_path}/mlp/1"
    checkpoint = run_state.latest(model_dir)  # a run's checkpoint exports as its run does
    given = [f"--model_dir={checkpoint}", f"--export_dir={tmp_path}", "--nolitert", "--version=7", "--name=digits"]
    assert run_script("export", *given).returncode == 0
    assert saved_model.latest_version(tmp_path / "digits") == tmp_path / "digits" / "7"
    metadata = json.loads((tmp_path / "digits" / "7" / "assets.extra" / saved_model.METADATA_FILE).read_text())
    assert metadata["checkpoint"] == checkpoint

    again = run_script("export", *flags, "--version=7", "--name=digits")
    assert again.returncode == 1
    assert again.stderr.strip().splitlines() == [
        f"error: {tmp_path}/digits/7 already exists; versions are never overwritten"
    ]


@pytest.mark.parametrize(
    "model_dir, message",
    [
        ("missing", "missing: no such file or folder"),
        ("empty", "no checkpoint in"),
        ("export", "not a training run or one of its checkpoints: only those are exported"),
    ],
)
@pytest.mark.slow
def test_export_script_reports_a_run_it_cannot_export(exported_run, tmp_path, model_dir, message):
    if model_dir == "empty":
        (tmp_path / "empty").mkdir()
        (tmp_path / "empty" / run_state.CONFIG_FILE).write_text(
            (Path(exported_run["flags"]["model_dir"]) / run_state.CONFIG_FILE).read_text()
        )
    path = exported_run["export_dir"] if model_dir == "export" else tmp_path / model_dir  # a SavedModel is no run
    result = run_script("export", f"--model_dir={path}")
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and message in line


@pytest.mark.parametrize(
    "name, twice, message",
    [
        (
            "../elsewhere",
            False,
            "--name is the folder TF Serving serves the model from: letters, digits, _ . -, got '../elsewhere'",
        ),
        ("a/b", False, "got 'a/b'"),
        (None, True, "is named twice: an ensemble's members are different models"),
    ],
)
def test_export_refuses_a_name_outside_its_folder_and_a_member_twice(exported_run, tmp_path, name, twice, message):
    run = classifier.load(exported_run["flags"]["model_dir"])
    with pytest.raises(MnistTfError, match=re.escape(message)):
        publish.publish_runs(
            [run, run] if twice else [run], tmp_path, name=name, version=None, with_litert=False, note=print
        )
    assert not any(tmp_path.iterdir())


def test_latest_version_picks_the_highest_complete_version(tmp_path):
    for version in ("1", "3", "12"):
        (tmp_path / version).mkdir()
        (tmp_path / version / "saved_model.pb").write_bytes(b"")
    (tmp_path / "20").mkdir()  # no saved_model.pb: not a version (yet)
    assert saved_model.latest_version(tmp_path) == tmp_path / "12"
    with pytest.raises(MnistTfError, match=r"no SavedModel at .*: no such directory"):
        saved_model.latest_version(tmp_path / "nowhere")
    (tmp_path / "model.zip").write_bytes(b"PK")
    with pytest.raises(MnistTfError, match=r"no SavedModel at .*model.zip: a file, not a SavedModel's folder"):
        saved_model.latest_version(tmp_path / "model.zip")


def test_an_export_at_work_keeps_its_staging_folder_while_another_exports(exported_run, tmp_path):
    import fcntl

    base = tmp_path / "mlp"
    alive = base / ".tmp-5-alive"
    alive.mkdir(parents=True)
    with (alive / ".exporting").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as the export writing it holds it
        saved_model.export_saved_model(classifier.load(exported_run["flags"]["model_dir"]).model, base)
    assert alive.is_dir() and (base / "1" / "saved_model.pb").is_file()
