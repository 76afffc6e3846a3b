"""TensorBoard logs of a real (short) run: every promised tag, with sane values, read back from the event files and
served by a real TensorBoard server."""

import collections
import dataclasses
import json
import math
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from conftest import quiet_run, shared_run, tiny_config_in
from tensorboard.plugins.hparams import metadata as hparams_metadata

from mnist_tf.config import HPARAMS, Config
from mnist_tf.reporting import figures
from mnist_tf.reporting.summaries import Summaries

STEPS_PER_EPOCH = 20  # 1,000 training images in batches of 50
LOG_EVERY = 5


@dataclasses.dataclass
class Logs:
    results: dict[str, Any]
    model_dir: Path
    # run ("", "train", ...) -> tag -> [(step, value)]; values are numpy arrays as the summary ops stored them
    values: dict[str, dict[str, list[tuple[int, np.ndarray]]]]


def read_events(model_dir: Path) -> dict[str, dict[str, list[tuple[int, Any]]]]:
    runs = {}
    for run in ("", "train", "validation", "test"):
        tags = collections.defaultdict(list)
        for path in sorted((model_dir / run).glob("events.out.tfevents.*")):
            for event in tf.compat.v1.train.summary_iterator(str(path)):
                for value in event.summary.value:
                    content = value if value.metadata.plugin_data.plugin_name == "hparams" else value.tensor
                    tags[value.tag].append((event.step, content))
        runs[run] = dict(tags)
    return runs


@pytest.fixture(scope="session")
def logs(idx_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Logs:
    """A small LeNet run with every TensorBoard option on, trained once: tests must not write into it."""

    def config(root: Path) -> Config:
        return dataclasses.replace(
            tiny_config_in(idx_dir, root),
            model="lenet",
            filters=(4, 8),
            hidden_units=(32,),
            epochs=2,
            export_dir=None,
            log_every_steps=LOG_EVERY,
            histograms=("weights", "gradients"),
            profile_steps=(3, 4),
        )

    results = shared_run(tmp_path_factory, "logs", config)
    model_dir = Path(results["flags"]["model_dir"])
    values = read_events(model_dir)
    for run in ("train", "validation", "test"):
        for tag, points in values[run].items():
            if tag != "train_step":
                values[run][tag] = [(step, tf.make_ndarray(tensor)) for step, tensor in points]
    return Logs(results, model_dir, values)


def scalars(logs: Logs, run: str, tag: str) -> tuple[list[int], np.ndarray]:
    points = logs.values[run][tag]
    return [step for step, _ in points], np.array([float(value) for _, value in points])


def decoded_image(logs: Logs, run: str, tag: str, index: int = -1) -> np.ndarray:
    width, height, png = logs.values[run][tag][index][1]
    image = tf.io.decode_png(png).numpy()
    assert image.shape[:2] == (int(height), int(width))
    return image


def test_step_scalars_every_n_steps_average_to_the_epoch_scalars(logs):
    for tag in ("step_loss", "step_accuracy", "step_learning_rate", "step_images_per_second"):
        steps, _ = scalars(logs, "train", tag)
        assert steps == list(range(LOG_EVERY, 2 * STEPS_PER_EPOCH + 1, LOG_EVERY)), tag
    _, step_loss = scalars(logs, "train", "step_loss")
    _, step_accuracy = scalars(logs, "train", "step_accuracy")
    epoch_steps, epoch_loss = scalars(logs, "train", "epoch_loss")
    _, epoch_accuracy = scalars(logs, "train", "epoch_accuracy")
    assert epoch_steps == [STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH]
    # Equal windows of 5 steps: their mean is the epoch's mean.
    np.testing.assert_allclose(step_loss.reshape(2, -1).mean(axis=1), epoch_loss, rtol=1e-5)
    np.testing.assert_allclose(step_accuracy.reshape(2, -1).mean(axis=1), epoch_accuracy, rtol=1e-5)
    assert np.all((step_accuracy >= 0) & (step_accuracy <= 1)) and np.all(step_loss > 0)
    assert step_loss[-1] < step_loss[0]  # it learned
    _, learning_rates = scalars(logs, "train", "step_learning_rate")
    # One cycle: up to the peak --learning_rate, then down to 0 at the last step.
    assert learning_rates.max() == pytest.approx(3e-3, rel=0.1) and learning_rates[-1] == 0
    assert scalars(logs, "train", "epoch_learning_rate")[1][-1] == 0
    for tag in ("epoch_images_per_second", "epoch_seconds", "step_images_per_second"):
        assert np.all(scalars(logs, "train", tag)[1] > 0), tag


def test_validation_and_test_scalars_overlay_the_train_curves(logs):
    for run, steps in (("validation", [20, 40]), ("test", [40])):
        for tag in ("epoch_loss", "epoch_accuracy"):
            assert scalars(logs, run, tag)[0] == steps, (run, tag)
        accuracy = scalars(logs, run, "epoch_accuracy")[1]
        assert np.all((accuracy >= 0) & (accuracy <= 1))
        assert np.all(np.isfinite(scalars(logs, run, "epoch_loss")[1]))
    assert scalars(logs, "test", "epoch_accuracy")[1][-1] == pytest.approx(logs.results["test_accuracy"])
    assert scalars(logs, "test", "epoch_loss")[1][-1] == pytest.approx(logs.results["test_loss"])


def test_images_have_the_sizes_of_their_grids(logs):
    # 50 inputs (one batch), 8 columns of 2x tiles with captions.
    assert decoded_image(logs, "train", "inputs").shape == (7 * (56 + 2 + figures.CAPTION_HEIGHT) + 2, 8 * 58 + 2, 3)
    assert [step for step, _ in logs.values["train"]["inputs"]] == [0]
    # 4 conv1 filters of 5x5, enlarged 9x, 2 by 2.
    assert [step for step, _ in logs.values["train"]["first_layer_weights"]] == [20, 40]
    assert decoded_image(logs, "train", "first_layer_weights").shape == (2 * 47 + 2, 2 * 47 + 2, 3)
    confusion_shape = (figures.CONFUSION_TOP + 10 * figures.CELL, figures.CONFUSION_LEFT + 10 * figures.CELL, 3)
    assert [step for step, _ in logs.values["validation"]["confusion_matrix"]] == [20, 40]
    assert decoded_image(logs, "validation", "confusion_matrix").shape == confusion_shape
    assert decoded_image(logs, "test", "confusion_matrix").shape == confusion_shape


def test_mistakes_show_every_wrong_test_image_up_to_the_limit(logs):
    wrong = round(300 * (1 - logs.results["test_accuracy"]))
    assert wrong > 0  # a small 2-epoch LeNet still gets some of the 300 generated test images wrong
    shown = min(wrong, 36)
    rows, columns = math.ceil(shown / 6), min(shown, 6)
    assert decoded_image(logs, "test", "mistakes").shape == (
        rows * (56 + 2 + figures.CAPTION_HEIGHT) + 2,
        columns * 58 + 2,
        3,
    )


def test_histograms_of_every_weight_and_gradient_per_epoch(logs):
    sizes = {"conv1/kernel": 5 * 5 * 4, "conv2/kernel": 5 * 5 * 4 * 8, "dense1/kernel": 128 * 32, "logits/bias": 10}
    for kind in ("weights", "gradients"):
        tags = [tag for tag in logs.values["train"] if tag.startswith(f"{kind}/")]
        assert len(tags) == 8, tags  # a kernel and a bias for each of 4 layers
        for name, size in sizes.items():
            points = logs.values["train"][f"{kind}/{name}"]
            assert [step for step, _ in points] == [20, 40]
            buckets = points[-1][1]  # [bucket, (left edge, right edge, count)]
            assert buckets.shape[1] == 3 and buckets[:, 2].sum() == size
    gradient = logs.values["train"]["gradients/logits/kernel"][-1][1]
    assert gradient[:, 0].min() < 0 < gradient[:, 1].max()  # gradients of both signs, not all zero


def test_graph_of_the_train_step_is_traced_once(logs):
    ((step, tensor),) = logs.values["train"]["train_step"]
    assert step == 1
    run_metadata = tf.compat.v1.RunMetadata.FromString(tf.make_ndarray(tensor).item())
    ops = {
        node.op
        for graph in run_metadata.function_graphs
        for function in graph.pre_optimization_graph.library.function
        for node in function.node_def
    }
    assert {"Conv2D", "MatMul", "SparseSoftmaxCrossEntropyWithLogits"} <= ops


def test_hparams_name_the_configuration(logs):
    ((_, value),) = logs.values[""]["_hparams_/session_start_info"]
    start = hparams_metadata.parse_session_start_info_plugin_data(value.metadata.plugin_data.content)
    hparams = {name: getattr(v, v.WhichOneof("kind")) for name, v in start.hparams.items()}
    assert set(hparams) == set(HPARAMS)
    assert hparams["model"] == "lenet" and hparams["batch_size"] == 50 and hparams["filters"] == "4,8"
    assert hparams["optimizer"] == "adam" and hparams["dtype"] == "float32" and hparams["seed"] == 42


def test_profile_of_the_chosen_steps_is_captured(logs):
    traces = list((logs.model_dir / "train" / "plugins" / "profile").glob("*/*.xplane.pb"))
    assert len(traces) == 1 and traces[0].stat().st_size > 1000


@pytest.mark.slow  # trains for real
def test_logging_does_not_change_training(tiny_config):
    quiet, _ = quiet_run(dataclasses.replace(tiny_config, log_every_steps=0, export_dir=None))
    verbose_config = dataclasses.replace(
        tiny_config,
        model_dir=f"{tiny_config.model_dir}-verbose",
        export_dir=None,
        log_every_steps=1,
        histograms=("weights", "gradients"),
    )
    verbose, _ = quiet_run(verbose_config)
    assert verbose["weights_sha256"] == quiet["weights_sha256"]
    assert "step_loss" not in read_events(Path(tiny_config.model_dir))["train"]


def test_disabled_summaries_write_nothing(tmp_path, tiny_config):
    summaries = Summaries(tmp_path, enabled=False)
    summaries.hparams(tiny_config.resolve())
    summaries.scalars("train", 1, {"epoch_loss": 1.0})
    summaries.inputs(0, np.zeros((2, 28, 28, 1)), np.array([1, 2]))
    summaries.first_layer(1, np.ones((5, 5, 1, 4)), (28, 28, 1))
    summaries.histograms(1, "weights", {"w": np.ones(3)})
    summaries.confusion("test", 1, np.eye(10))
    summaries.mistakes(1, np.zeros((1, 28, 28, 1)), [1], [2])
    with summaries.graph(1):
        tf.function(lambda: tf.constant(1))()
    summaries.close()
    assert list(tmp_path.iterdir()) == []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_tensorboard_server_serves_the_run(logs):
    """`tensorboard --logdir` over the run's parent (as over runs/): scalars, images and hparams over HTTP."""
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tensorboard.main",
            f"--logdir={logs.model_dir.parent}",
            "--host=127.0.0.1",
            f"--port={port}",
            "--load_fast=false",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}/data"

    def get(path: str, body: dict | None = None) -> bytes:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(base + path, data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read()

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if "run/test" in json.loads(get("/runs")):
                    break
            except OSError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, server.stderr.read().decode()
            time.sleep(0.5)
        scalar_tags = json.loads(get("/plugin/scalars/tags"))
        assert {"epoch_loss", "epoch_accuracy", "step_loss", "step_learning_rate"} <= set(scalar_tags["run/train"])
        assert set(scalar_tags["run/validation"]) == {"epoch_loss", "epoch_accuracy"}
        calibration = {"calibration_error_before", "calibration_error", "accepted", "accepted_accuracy"}
        assert set(scalar_tags["run/test"]) == {"epoch_loss", "epoch_accuracy", *calibration}
        image_tags = json.loads(get("/plugin/images/tags"))
        assert set(image_tags["run/train"]) == {"inputs", "first_layer_weights"}
        assert set(image_tags["run/validation"]) == {"confusion_matrix"}
        assert {"confusion_matrix", "reliability_diagram"} <= set(image_tags["run/test"])

        query = urllib.parse.urlencode({"run": "run/validation", "tag": "epoch_accuracy"})
        points = json.loads(get(f"/plugin/scalars/scalars?{query}"))  # [wall time, step, value]
        assert [step for _, step, _ in points] == [20, 40] and all(0 <= value <= 1 for *_, value in points)
        query = urllib.parse.urlencode({"run": "run/test", "tag": "confusion_matrix"})
        (image,) = json.loads(get(f"/plugin/images/images?{query}"))
        png = get(f"/plugin/images/individualImage?{image['query']}")
        height, width = figures.CONFUSION_TOP + 10 * figures.CELL, figures.CONFUSION_LEFT + 10 * figures.CELL
        assert tf.io.decode_png(png).shape == (height, width, 3)

        experiment = json.loads(get("/plugin/hparams/experiment", {"experimentName": "", "includeMetrics": True}))
        assert {info["name"] for info in experiment["hparamInfos"]} == set(HPARAMS)
        metrics = {(m["name"]["group"], m["name"]["tag"]) for m in experiment["metricInfos"]}
        assert {("validation", "epoch_accuracy"), ("test", "epoch_accuracy")} <= metrics
    finally:
        server.terminate()
        server.wait(timeout=30)
