"""scripts/benchmark.py --quick on generated data: every field of its JSON is there and sane (speed is not asserted:
timed tests are flaky; docs/performance.md's table comes from a real run), and the contenders and the race's
arithmetic in process."""

import dataclasses
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from conftest import CHECK_TRAIN_IMAGES, REPO, requires_module

from mnist_tf import distribute, recipes
from mnist_tf.benchmark import contenders, roofline, table
from mnist_tf.benchmark import race as race_lib
from mnist_tf.benchmark.race import TARGET_ACCURACY
from mnist_tf.config import Config
from mnist_tf.data import sources
from mnist_tf.errors import MnistTfError
from mnist_tf.nn import models
from mnist_tf.training import build

BENCHMARK = [sys.executable, str(REPO / "scripts" / "benchmark.py")]


@pytest.fixture(scope="session")
def quick(accelerator_check):
    """`benchmark.py --quick --models=mlp --dtype=float32`'s results and output, as conftest's `accelerator_check`
    runs it (once per session: the same race serves both)."""
    results = json.loads((accelerator_check.work_dir / "benchmark.json").read_text())
    return results, accelerator_check.stdout


@pytest.mark.slow
def test_quick_run_reports_every_field_for_every_contender(quick):
    results, _ = quick
    assert results["quick"] is True and results["command"].startswith("python scripts/benchmark.py --quick")
    assert results["machine"]["cores"] >= 1 and results["machine"]["tensorflow"] and results["machine"]["cpu"]
    assert list(results["models"]) == ["mlp"]
    assert (results["machine"]["torch"] is not None) == ("pytorch" in contenders.CONTENDERS)
    assert results["precision"] == {"dtype": "float32", "reason": "--dtype=float32"}
    assert 1 <= results["peak"]["cores"] <= results["machine"]["cores"]
    assert all(results["peak"][dtype]["matmul_gflops"] > 0 for dtype in roofline.PEAK_DTYPES)
    for name, race in results["models"].items():
        config = race_lib.race_config(name, Config())
        steps = (CHECK_TRAIN_IMAGES - config.validation_size) // config.batch_size  # one epoch of full batches
        segment = math.ceil(steps / race_lib.SEGMENTS_PER_EPOCH)
        turns = math.ceil(steps / segment)
        assert race["model"] == config.model and race["recipe"] == config.recipe
        assert race["batch_size"] == config.batch_size and race["steps_trained"] == steps
        assert race["segment_steps"] == segment and race["target_accuracy"] == TARGET_ACCURACY[name]
        assert race["pipeline_images_per_second"] > 0
        assert race["pipeline_to_train"] > 0 and race["eval_to_train"] > 0
        assert sorted(race["contenders"]) == sorted(contenders.CONTENDERS)
        for name, contender in race["contenders"].items():
            assert contender["train_images_per_second"] > 0 and contender["eval_images_per_second"] > 0
            assert len(contender["train_window_images_per_second"]) == turns - 1  # less the warm-up
            windows = contender["train_window_images_per_second"]
            assert min(windows) <= contender["train_images_per_second"] <= max(windows)  # their median
            curve = contender["curve"]
            assert len(curve) == turns and all(0 <= point["accuracy"] <= 1 for point in curve)
            seconds = [point["seconds"] for point in curve]
            assert seconds[0] > 0 and seconds == sorted(set(seconds)) and seconds[-1] == contender["train_seconds"]
            assert contender["final_test_accuracy"] == curve[-1]["accuracy"]
            reached = [p["seconds"] for p in curve if p["accuracy"] >= race["target_accuracy"]]
            assert contender["seconds_to_target"] == (reached[0] if reached else None)
            assert 100 < contender["peak_rss_mb"] < 20_000  # a TensorFlow process, in MB
            startup = contender["startup_seconds"]
            assert sorted(startup) == ["data", "imports", "model"] and all(t > 0 for t in startup.values())
            assert 0 < contender["first_step_seconds"] < contender["curve"][0]["seconds"] + 0.01
            assert contender["seconds_to_first_step"] == pytest.approx(  # five numbers, each rounded to 0.01
                sum(startup.values()) + contender["first_step_seconds"], abs=0.026
            )
            roof = contender["roofline"]  # against float32's peak: the race's precision
            assert roof["gflops"] == pytest.approx(
                contender["train_images_per_second"] * race["flops_per_image"]["train"] / 1e9, rel=0.01
            )
            assert roof["of_matmul_peak"] == pytest.approx(
                roof["gflops"] / results["peak"]["float32"]["matmul_gflops"], abs=0.002
            )
            ratios = contender["vs_keras_fit"]
            assert set(ratios) == {"train_speed", "eval_speed", "time_to_target", "peak_rss"}
            assert all(value is None or value > 0 for value in ratios.values())
            if name == "keras_fit":
                assert ratios["train_speed"] == ratios["eval_speed"] == ratios["peak_rss"] == 1


@pytest.mark.slow
def test_contenders_compute_the_same_model(quick):
    """Same initial weights, data order, dropout masks and optimizer: only the speed may differ (PyTorch draws its
    own initial weights and masks: `test_pytorch_builds_the_same_architecture` checks it)."""
    results, _ = quick
    for race in results["models"].values():
        curves = [[p["accuracy"] for p in c["curve"]] for name, c in race["contenders"].items() if name != "pytorch"]
        for curve in curves[1:]:
            assert curve == pytest.approx(curves[0], abs=0.01)


@pytest.mark.slow
def test_prints_the_markdown_table(quick):
    results, stdout = quick
    for model in results["models"]:
        for name in contenders.CONTENDERS:
            assert f"| {model} | {name} |" in stdout
    assert "input pipeline alone" in stdout and "results: " in stdout


@pytest.mark.slow
def test_unknown_model_is_one_line():
    process = subprocess.run(
        [*BENCHMARK, "--models=lenet,resnet"], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert process.returncode == 2  # a usage error, as with any bad flag
    assert "--models takes a comma-separated list of: lenet, mlp, speedrun" in process.stderr
    assert "Traceback" not in process.stderr


@pytest.mark.slow  # builds and trains every contender, PyTorch's too
def test_each_contender_trains_and_evaluates_in_process(idx_dir):
    """The contenders themselves, without their processes: a few steps each, and a test-set evaluation."""
    config = Config(model="mlp", hidden_units=(32,), data_dir=str(idx_dir), batch_size=50, validation_size=0)
    splits = sources.load_for(config.resolve())
    for name, (layers, make) in contenders.CONTENDERS.items():
        contender = make(dataclasses.replace(config, layers=layers).resolve(), splits, total_steps=4)
        assert contender.train(2) > 0 and contender.train(2) > 0, name
        accuracy, seconds = contender.evaluate()
        assert 0 <= accuracy <= 1 and seconds > 0, name


def test_summary_ratios_and_table_from_recorded_segments():
    """What the race makes of its measurements: steady speed, time to target, ratios, and the Markdown table."""
    fast, slow = (race_lib.ContenderResult(name, 100) for name in ("ours", "keras_fit"))
    for result, seconds in ((fast, 1.0), (slow, 2.0)):
        result.train_steps += [10, 10, 10]
        result.train_seconds += [5.0, seconds, seconds]
        result.accuracies += [0.5, 0.9, 0.99]
        result.eval_seconds += [1.0, 0.5, 0.5]
        result.peak_rss_mb = 1000.0
        result.startup_seconds = {"imports": 2.0, "data": 0.5, "model": 0.5}
        result.first_step_seconds = 1.5
    summaries = {r.name: r.summary(target=0.95, test_images=300) for r in (fast, slow)}
    assert summaries["ours"]["seconds_to_first_step"] == 4.5  # start-up 3 s, then the first step
    assert summaries["ours"]["seconds_from_start_to_target"] == 10.0  # start-up 3 s, then 7 s of training
    assert summaries["ours"]["train_images_per_second"] == 1000.0  # the first (tracing) segment left out
    assert summaries["ours"]["seconds_to_target"] == 7.0 and summaries["keras_fit"]["seconds_to_target"] == 9.0
    peak = {"matmul_gflops": 20.0, "conv_gflops": 10.0}
    for summary in summaries.values():
        summary["vs_keras_fit"] = race_lib._ratios(summary, summaries["keras_fit"])
        summary["roofline"] = roofline.achieved(summary["train_images_per_second"], 10_000_000, peak)
    assert summaries["ours"]["vs_keras_fit"]["train_speed"] == 2.0
    assert summaries["ours"]["roofline"] == {"gflops": 10.0, "of_matmul_peak": 0.5, "of_conv_peak": 1.0}
    results = {
        "models": {
            "mlp": {
                "contenders": summaries,
                "target_accuracy": 0.95,
                "batch_size": 100,
                "steps_trained": 30,
                "flops_per_image": {"forward": 4_000_000, "train": 10_000_000},
                "pipeline_images_per_second": 50_000.0,
                "pipeline_to_train": 50.0,
                "eval_to_train": 0.6,
            }
        }
    }
    results["peak"] = {"cores": 2, "matmul_size": 2048, **{dtype: peak for dtype in roofline.PEAK_DTYPES}}
    results["precision"] = {"dtype": "float32"}
    markdown = table.table(results)
    assert "| mlp | ours | 1,000 | 2.00x | 10 | 50% |" in markdown and "7.0 s to 95.0%" in markdown
    assert "| 4.5 s | 10.0 s |" in markdown and "10.0 MFLOP to train" in markdown
    assert "float32: 2048x2048 matrix product 20, LeNet's second convolution 10" in markdown


def test_a_raced_recipe_runs_as_the_recipe_and_a_raced_model_does_only_the_loops_work():
    """What each name races (the session's race runs the MLP; a recipe, speedrun, takes the other branch)."""
    base = Config(data_dir="/data/mnist", dtype="float32", batch_size=7, epochs=9)  # only data and dtype carry over
    from_flags = {"dataset": "mnist", "data_dir": "/data/mnist", "source": "auto", "tfds_data_dir": None}
    expected = recipes.config("speedrun", **from_flags, dtype="float32").resolve()
    assert race_lib.race_config("speedrun", base) == expected
    mlp = race_lib.race_config("mlp", base)
    assert (mlp.model, mlp.epochs, mlp.batch_size, mlp.augment, mlp.not_digits) == (
        "mlp", race_lib.RACE_EPOCHS, Config().batch_size, False, 0.0,
    )  # fmt: skip
    assert (mlp.data_dir, mlp.dtype) == ("/data/mnist", "float32")


@requires_module("torch")
@pytest.mark.parametrize("name", ["mlp", "lenet", "cnn"])
def test_pytorch_builds_the_same_architecture(name):
    """Layer for layer the same weight shapes (channels first), initialized from the same distributions."""
    from mnist_tf.benchmark import pytorch

    config = Config(model=name, dtype="float32").resolve()
    ours = build.model(config, (28, 28, 1))
    theirs = pytorch.model(config, (28, 28, 1))
    our_kernels = [w.numpy() for w in ours.trainable_weights if "kernel" in w.path]
    their_kernels = [p.detach().numpy() for n, p in theirs.named_parameters() if n.endswith("weight")]
    assert len(our_kernels) == len(their_kernels)
    for ours_, theirs_ in zip(our_kernels, their_kernels, strict=True):
        assert sorted(ours_.shape) == sorted(theirs_.shape)
        # Uniform within the same bound (He's sqrt(6/fan_in) or Glorot's): the same spread.
        assert np.abs(theirs_).max() <= np.abs(ours_).max() * 1.02
        assert np.std(theirs_) == pytest.approx(np.std(ours_), rel=0.1)
    assert sum(p.numel() for p in theirs.parameters()) == sum(np.prod(w.shape) for w in ours.trainable_weights)


def test_the_race_decides_auto_precision_once_and_says_when_it_skips_pytorch(monkeypatch):
    monkeypatch.setattr(race_lib, "TORCH_INSTALLED", False)
    monkeypatch.setattr(race_lib.roofline, "measure_peaks", lambda: {"cores": 2})
    lines = []
    results = race_lib.run(Config(), models=(), log=lines.append)
    assert lines[0] == "pytorch: skipped (torch is not installed; pip install torch to race it)"
    assert results["peak"] == {"cores": 2}
    auto = distribute.choose_dtype("auto", distribute.make_strategy("default"))
    assert results["precision"] == dataclasses.asdict(auto) and results["models"] == {}


@requires_module("torch")
def test_every_raced_architecture_has_a_pytorch_twin_and_others_are_one_line():
    from mnist_tf.benchmark import pytorch

    raced = {name for name in race_lib.MODELS if name in models.MODELS}
    assert raced <= set(pytorch.MODELS)
    with pytest.raises(MnistTfError, match="the pytorch contender builds mlp, lenet, cnn, not bncnn"):
        pytorch.model(Config(model="bncnn").resolve(), (28, 28, 1))
