"""scripts/accelerator_check.py on this machine: its CPU part runs every check it can and names the ones it skips
(so it cannot rot unseen where no GPU is), and a check that fails is one line and a non-zero exit."""

import json

import pytest
import tensorflow as tf


@pytest.mark.slow
@pytest.mark.long
@pytest.mark.skipif(bool(tf.config.list_physical_devices("GPU")), reason="runs its GPU part here: see the docs")
def test_cpu_part_runs_every_check_and_reports_failures_in_one_line(accelerator_check):
    """conftest's `accelerator_check` runs it once, for this test and the benchmark's."""
    process, output = accelerator_check, accelerator_check.output
    assert process.returncode == 1, process.stderr[-3000:]
    error = process.stderr.strip().splitlines()[-1]
    assert error == (
        "error: accelerator check failed: train default, XLA off, train mirrored, XLA off "
        f"(details above and in {output})"
    )
    summary = json.loads(output.read_text())
    assert summary["passed"] is False and summary["gpus"] == [] and summary["tpu"] is None
    assert summary["precision"] == {"dtype": "float32", "reason": "--dtype=float32"}  # the fixture's --dtype
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
    assert details["benchmark --quick"].startswith("mlp: ours ") and " · " not in details["benchmark --quick"]
    assert json.loads(process.stdout[process.stdout.index('{\n  "passed"') :]) == summary  # the last thing printed
