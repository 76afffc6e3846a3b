"""scripts/train.py as users run it: a subprocess, its output, its exit code, its files."""

import json
import os
import signal
import subprocess
import sys

import pytest
from conftest import REPO

TRAIN = [sys.executable, str(REPO / "scripts" / "train.py")]


def run_train(*args, env=None):
    return subprocess.run(
        [*TRAIN, *args], capture_output=True, text=True, timeout=300, cwd=REPO, env={**os.environ, **(env or {})}
    )


def test_trains_with_quiet_logs_and_writes_results(idx_dir, tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}  # a fresh shell
    process = subprocess.run(
        [
            *TRAIN,
            "--model=lenet",
            f"--data_dir={idx_dir}",
            f"--model_dir={tmp_path / 'run'}",
            f"--export_dir={tmp_path / 'export'}",
            "--epochs=2",
            "--batch_size=50",
            "--filters=4,8",
            "--hidden_units=32",
            "--validation_size=100",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env=env,
    )
    assert process.returncode == 0, process.stderr
    assert process.stderr == ""  # no TensorFlow C++ chatter, no warnings
    # conv1 4*25+4, conv2 8*4*25+8, dense1 (4*4*8)*32+32, logits 32*10+10
    lines = process.stdout.splitlines()
    assert lines[0] == f"mnist_tf: lenet (ours layers) on mnist from idx:{idx_dir}"
    assert 'Model: "lenet"' in process.stdout and "Trainable params: 5,370" in process.stdout
    assert sum(line.startswith("epoch ") for line in lines) == 2
    assert any(line.startswith("test  loss") for line in lines)
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["epochs"] == 2 and results["export_dir"] == str(tmp_path / "export" / "lenet" / "1")
    assert (tmp_path / "export" / "lenet" / "1" / "saved_model.pb").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--batch_size=0"], "FATAL Flags parsing error: flag --batch_size=0: 0 is not a positive integer"),
        (["--model=resnet"], "flag --model=resnet: value should be one of <lenet|mlp>"),
        (["--hidden_units=a,3"], "--hidden_units takes comma-separated positive integers"),
        (["--data_dir=/nonexistent"], "error: /nonexistent: missing train-images-idx3-ubyte.gz"),
        (["--validation_size=2000", "IDX"], "error: --validation_size=2,000 leaves no training data"),
        (["--model=mlp", "--filters=3,3", "IDX"], "error: --filters applies to lenet only"),
        (["--log_every_steps=-1"], "flag --log_every_steps=-1: -1 is not"),
        (["--histograms=weights,activations", "IDX"], "error: --histograms='activations' is not one of: weights"),
        (["--profile_steps=a,3"], "--profile_steps takes comma-separated positive integers"),
        (["--profile_steps=5", "IDX"], "error: --profile_steps is FIRST,LAST global steps with 1 <= FIRST <= LAST"),
        (["--profile_steps=9,3", "IDX"], "error: --profile_steps is FIRST,LAST global steps"),
        # 1,000 training images in batches of 128: 7 steps per epoch, 56 in 8 epochs.
        (
            ["--profile_steps=50,57", "--validation_size=200", "--epochs=8", "--batch_size=128", "IDX"],
            "error: --profile_steps=57 is past the run's last step, 56",
        ),
    ],
)
def test_bad_input_is_one_clear_line(idx_dir, tmp_path, args, message):
    args = [f"--data_dir={idx_dir}" if arg == "IDX" else arg for arg in args]
    process = run_train(*args, f"--model_dir={tmp_path}")
    assert process.returncode != 0
    assert message in process.stderr
    assert "Traceback" not in process.stderr
    assert len([line for line in process.stderr.splitlines() if line.strip()]) <= 2  # absl adds a --help hint


def test_no_network_and_no_data_fails_fast_with_the_fix(tmp_path):
    """With tfds's cache empty: either tfds can download (a networked machine) or we fail fast and say why."""
    process = run_train(
        f"--tfds_data_dir={tmp_path}", "--epochs=1", f"--model_dir={tmp_path / 'run'}", env={"MNIST_TF_DATA_DIR": ""}
    )
    if process.returncode == 0:
        pytest.skip("this machine has network: tfds downloaded MNIST")
    assert "cannot be downloaded (no network): pass --data_dir=DIR" in process.stderr
    assert "Traceback" not in process.stderr


def test_ctrl_c_says_how_to_resume_and_keeps_the_checkpoint(idx_dir, tmp_path):
    model_dir = tmp_path / "run"
    process = subprocess.Popen(
        [
            *TRAIN,
            "--model=mlp",
            f"--data_dir={idx_dir}",
            f"--model_dir={model_dir}",
            "--export_dir=",
            "--epochs=1000",
            "--batch_size=50",
            "--hidden_units=32",
            "--validation_size=100",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        # As at a terminal: a shell's background job would inherit SIGINT ignored, and Python keeps it so.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        for line in process.stdout:
            if line.startswith("epoch "):
                break
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert f"run the same command with --model_dir={model_dir} to resume" in stderr
    assert "Traceback" not in stderr
    assert (model_dir / "checkpoints" / "checkpoint").exists()


def test_helpshort_lists_the_flags():
    process = subprocess.run([*TRAIN, "--helpshort"], capture_output=True, text=True, timeout=120, cwd=REPO)
    for flag in (
        "--model",
        "--dataset",
        "--data_dir",
        "--model_dir",
        "--export_dir",
        "--epochs",
        "--batch_size",
        "--optimizer",
        "--learning_rate",
        "--seed",
        "--validation_size",
        "--layers",
        "--log_every_steps",
        "--histograms",
        "--profile_steps",
    ):
        assert f"  {flag}:" in process.stdout, flag


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
