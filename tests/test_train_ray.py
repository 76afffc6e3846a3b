"""scripts/train_ray.py on a local Ray cluster of 2 CPU workers (127.0.0.1, stopped by the script): the same model as
the two-process TF_CONFIG run of the same flags (conftest's `two_worker_run`), one export, and a worker killed
mid-run restarted by Ray."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf
from conftest import REPO, TWO_WORKER_FLAGS, requires_module

TRAIN_RAY = [sys.executable, str(REPO / "scripts" / "train_ray.py")]
pytestmark = [pytest.mark.slow, pytest.mark.long, requires_module("ray")]


def ray_command(idx_dir, root, *extra):
    return [
        *TRAIN_RAY,
        "--num_workers=2",
        *TWO_WORKER_FLAGS,
        f"--data_dir={idx_dir}",
        f"--model_dir={root / 'run'}",
        f"--export_dir={root / 'saved_models'}",
        *extra,
    ]


def stop(driver: subprocess.Popen) -> None:
    """Ctrl-C, so that the driver shuts its local Ray cluster down (killed, it would leave Ray's agents behind)."""
    if driver.poll() is None:
        driver.send_signal(signal.SIGINT)
        try:
            driver.wait(timeout=60)
        except subprocess.TimeoutExpired:
            driver.kill()


def ray_workers() -> list[int]:
    listing = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in listing.splitlines() if "ray::RayTrainWorker" in line]


def test_ray_workers_train_the_tf_config_runs_model_and_a_killed_one_is_restarted_to_the_same_end(
    idx_dir, tmp_path, two_worker_run
):
    """One Ray run (a local cluster costs a minute) shows both: it ends where the two processes with TF_CONFIG set by
    hand ended, even though a worker is killed on the way, and the model is exported once."""
    checkpoints = tmp_path / "run" / "checkpoints"
    process = subprocess.Popen(
        ray_command(idx_dir, tmp_path, "--checkpoint_every_steps=20"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 300
        while not tf.train.latest_checkpoint(str(checkpoints)) and time.monotonic() < deadline:
            assert process.poll() is None, process.stdout.read()[-3000:]
            time.sleep(0.1)
        killed = ray_workers()[-1]
        os.kill(killed, signal.SIGKILL)
        output, _ = process.communicate(timeout=600)
    finally:
        stop(process)
    assert process.returncode == 0, output[-3000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["resumed_from_step"] > 0  # the restarted workers continued from a checkpoint
    assert results["replicas"] == 2 and results["flags"]["strategy"] == "multi_worker"
    expected = json.loads((two_worker_run[0] / "run" / "results.json").read_text())
    assert results["weights_sha256"] == expected["weights_sha256"]
    assert sorted(p.name for p in (tmp_path / "saved_models" / "lenet").iterdir()) == ["1"]
    assert (
        f"ray: 2 workers (2 replicas) · test accuracy {results['test_accuracy']:.4f} · weights sha256 "
        f"{results['weights_sha256'][:12]} · SavedModel: {tmp_path / 'saved_models' / 'lenet' / '1'}"
    ) in output.splitlines()
