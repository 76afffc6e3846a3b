"""scripts/accelerator_check.py on this machine: its CPU part runs every check it can and names the ones it skips
(so it cannot rot unseen where no GPU is), and a check that fails is one line and a non-zero exit."""

import json
import subprocess
import sys

import pytest
import tensorflow as tf
from conftest import REPO, write_idx_dir

from mnist_tf import distribute

CHECK = [sys.executable, str(REPO / "scripts" / "accelerator_check.py")]


@pytest.mark.slow
@pytest.mark.skipif(bool(tf.config.list_physical_devices("GPU")), reason="runs its GPU part here: see the docs")
def test_cpu_part_runs_every_check_and_reports_failures_in_one_line(tmp_path):
    idx_dir = write_idx_dir(tmp_path / "idx", train_count=5000 + 3 * 256, test_count=300)  # the default split
    output = tmp_path / "check.json"
    process = subprocess.run(
        [
            *CHECK,
            f"--data_dir={idx_dir}",
            "--epochs=1",
            "--expected_accuracy=0.999",  # more than a tiny run reaches: the training checks must fail
            "--benchmark_models=mlp",
            f"--work_dir={tmp_path / 'work'}",
            f"--output={output}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert process.returncode == 1, process.stderr[-3000:]
    error = process.stderr.strip().splitlines()[-1]
    assert error == (
        "error: accelerator check failed: train default, XLA off, train mirrored, XLA off "
        f"(details above and in {output})"
    )
    summary = json.loads(output.read_text())
    assert summary["passed"] is False and summary["gpus"] == [] and summary["tpu"] is None
    expected = distribute.choose_dtype("auto", distribute.make_strategy("default"))
    assert summary["precision"] == {"dtype": expected.dtype, "reason": expected.reason}
    status = {check["name"]: check["status"] for check in summary["checks"]}
    assert status == {
        "train default, XLA off": "failed",
        "train mirrored, XLA off": "failed",
        "mirrored matches default, XLA off": "passed",
        "SavedModel re-evaluated": "passed",
        "benchmark --quick": "passed",
        "mirrored over GPUs": "skipped",
        "XLA on": "skipped",
        "float16 on tensor cores (--dtype=auto)": "skipped",
    }
    details = {check["name"]: check["detail"] for check in summary["checks"]}
    assert "(expected 99.90%)" in details["train default, XLA off"]
    assert details["benchmark --quick"].startswith("mlp: ours ")
    assert json.loads(process.stdout[process.stdout.index('{\n  "passed"') :]) == summary  # the last thing printed
