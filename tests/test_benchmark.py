"""scripts/benchmark.py --quick on generated data: every field of its JSON is there and sane (speed is not asserted:
timed tests are flaky; the README's table comes from a real run)."""

import json
import subprocess
import sys

import pytest
from conftest import REPO, write_idx_dir

from mnist_tf import benchmark

BENCHMARK = [sys.executable, str(REPO / "scripts" / "benchmark.py")]
TRAIN_IMAGES = 5000 + 3 * 256  # the default validation split, then three default batches


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    root = tmp_path_factory.mktemp("benchmark")
    data_dir = write_idx_dir(root / "idx", train_count=TRAIN_IMAGES, test_count=300)
    output = root / "benchmark.json"
    process = subprocess.run(
        [*BENCHMARK, "--quick", f"--data_dir={data_dir}", f"--output={output}"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    return json.loads(output.read_text()), process.stdout


def test_quick_run_reports_every_field_for_every_contender(quick):
    results, _ = quick
    assert results["quick"] is True and results["command"].startswith("python scripts/benchmark.py --quick")
    assert results["machine"]["cores"] >= 1 and results["machine"]["tensorflow"] and results["machine"]["cpu"]
    assert sorted(results["models"]) == ["lenet", "mlp"]
    for model, race in results["models"].items():
        assert race["batch_size"] == 256 and race["steps_trained"] == 3  # one epoch of three full batches
        assert race["segment_steps"] == 1 and race["target_accuracy"] == benchmark.TARGET_ACCURACY[model]
        assert race["pipeline_images_per_second"] > 0
        assert race["pipeline_to_train"] > 0 and race["eval_to_train"] > 0
        assert sorted(race["contenders"]) == sorted(benchmark.CONTENDERS)
        for name, contender in race["contenders"].items():
            assert contender["train_images_per_second"] > 0 and contender["eval_images_per_second"] > 0
            assert len(contender["train_window_images_per_second"]) == 2  # three turns, less the warm-up
            windows = contender["train_window_images_per_second"]
            assert min(windows) <= contender["train_images_per_second"] <= max(windows)  # their median
            curve = contender["curve"]
            assert len(curve) == 3 and all(0 <= point["accuracy"] <= 1 for point in curve)
            assert 0 < curve[0]["seconds"] < curve[1]["seconds"] < curve[2]["seconds"] == contender["train_seconds"]
            assert contender["final_test_accuracy"] == curve[-1]["accuracy"]
            reached = [p["seconds"] for p in curve if p["accuracy"] >= race["target_accuracy"]]
            assert contender["seconds_to_target"] == (reached[0] if reached else None)
            assert 100 < contender["peak_rss_mb"] < 20_000  # a TensorFlow process, in MB
            ratios = contender["vs_keras_fit"]
            assert set(ratios) == {"train_speed", "eval_speed", "time_to_target", "peak_rss"}
            assert all(value is None or value > 0 for value in ratios.values())
            if name == "keras_fit":
                assert ratios["train_speed"] == ratios["eval_speed"] == ratios["peak_rss"] == 1


def test_contenders_compute_the_same_model(quick):
    """Same initial weights, data order, dropout masks and optimizer: only the speed may differ."""
    results, _ = quick
    for race in results["models"].values():
        curves = [[p["accuracy"] for p in c["curve"]] for c in race["contenders"].values()]
        for curve in curves[1:]:
            assert curve == pytest.approx(curves[0], abs=0.01)


def test_prints_the_markdown_table(quick):
    _, stdout = quick
    for model in ("lenet", "mlp"):
        for name in benchmark.CONTENDERS:
            assert f"| {model} | {name} |" in stdout
    assert "input pipeline alone" in stdout and "results: " in stdout


def test_unknown_model_is_one_line():
    process = subprocess.run(
        [*BENCHMARK, "--models=lenet,resnet"], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert process.returncode == 2  # a usage error, as with any bad flag
    assert "--models takes a comma-separated list of: lenet, mlp" in process.stderr
    assert "Traceback" not in process.stderr
