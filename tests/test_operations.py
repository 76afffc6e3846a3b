"""Safe operation when things collide: a run owns its model_dir (a second live run is refused, a dead run's lock is
taken over), concurrent exports get distinct versions, a failed export keeps the model and says how to retry, and
clock checkpoints come when due."""

import dataclasses
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow as tf
from conftest import REPO, TRAIN, quiet_run
from script_runs import run_script

from mnist_tf import files
from mnist_tf.errors import MnistTfError
from mnist_tf.export import classifier, saved_model
from mnist_tf.training import run_lock, run_state
from mnist_tf.training.run_state import AGREE_EVERY_STEPS, CheckpointClock

EXPORT = [sys.executable, str(REPO / "scripts" / "export.py")]
HOST = socket.gethostname()


def test_a_second_live_run_on_the_same_model_dir_is_refused_in_one_line(tiny_config):
    model_dir = Path(tiny_config.model_dir)
    with run_lock.hold(model_dir, note=print), pytest.raises(MnistTfError) as refused:
        quiet_run(tiny_config)
    assert str(refused.value).startswith(
        f"--model_dir={model_dir} is in use by a live run: process {os.getpid()} on {HOST} (started "
    )
    assert str(refused.value).endswith("or pass another --model_dir") and "\n" not in str(refused.value)
    assert not (model_dir / run_state.DIRECTORY).exists()  # the refused run wrote nothing
    assert not (model_dir / run_lock.LOCK_FILE).exists()  # the owner's lock went with it: free again


@pytest.mark.slow  # trains for real
def test_a_lock_left_by_a_killed_run_is_taken_over_with_a_note(tiny_config):
    model_dir = Path(tiny_config.model_dir)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from mnist_tf.training import run_lock\n"
            "with run_lock.hold(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(120)",
            str(model_dir),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "held\n"
        holder.send_signal(signal.SIGKILL)  # no clean-up: the lock file stays, naming it
        holder.wait(timeout=30)
    finally:
        holder.kill()
    assert json.loads((model_dir / run_lock.LOCK_FILE).read_text())["pid"] == holder.pid
    results, output = quiet_run(tiny_config)
    note = f"note: process {holder.pid} on {HOST} (started "
    assert note in output and "left this run's lock behind and is no longer running; taking it over" in output
    assert results["test_accuracy"] > 0.3 and not (model_dir / run_lock.LOCK_FILE).exists()


@pytest.mark.slow  # writes a SavedModel
def test_an_exporter_whose_version_was_taken_meanwhile_takes_the_next(exported_run, tmp_path, monkeypatch):
    """What two concurrent exporters do: both read the same next version; the second rename finds it taken."""
    model = classifier.load(Path(exported_run["export_dir"]).parent.parent.parent / "run").model
    base = tmp_path / "models"
    first = saved_model.export_saved_model(model, base)
    monkeypatch.setattr(saved_model, "next_version", lambda base: 1)  # the stale view of a racing exporter
    second = saved_model.export_saved_model(model, base)
    assert (first.name, second.name) == ("1", "2")
    assert sorted(p.name for p in base.iterdir()) == ["1", "2"]  # no staging folder left behind
    with pytest.raises(MnistTfError, match=r"/2 already exists; versions are never overwritten"):
        saved_model.export_saved_model(model, base, version=2)  # an explicit version is never moved


@pytest.mark.slow  # trains for real
def test_a_failed_export_keeps_the_trained_model_and_names_the_retry_command(tiny_config):
    blocker = Path(tiny_config.export_dir) / tiny_config.name
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the export's folder must go")
    with pytest.raises(MnistTfError) as failed:
        quiet_run(tiny_config)
    message = str(failed.value)
    assert message.startswith(f"the export failed (cannot create export directory {blocker}: ")
    assert message.endswith(
        f"the trained model is in {tiny_config.model_dir}/checkpoints, export it with: python scripts/export.py "
        f"--model_dir={tiny_config.model_dir} --export_dir={tiny_config.export_dir} --nolitert"  # as the run had it
    )
    results = json.loads((Path(tiny_config.model_dir) / "results.json").read_text())
    assert results["export_dir"] is None and results["export_error"].startswith("cannot create export directory")
    assert run_state.latest(tiny_config.model_dir).endswith(f"ckpt-{2 * 20}")  # two epochs of 20 steps


@pytest.mark.slow
def test_two_real_runs_on_one_model_dir_the_second_is_refused_the_first_exports(tiny_config, idx_dir):
    model_dir = Path(tiny_config.model_dir)
    flags = [f"--data_dir={idx_dir}", f"--model_dir={model_dir}", f"--export_dir={tiny_config.export_dir}"]
    flags += ["--model=mlp", "--hidden_units=32", "--batch_size=10", "--epochs=3", "--validation_size=100"]
    flags += ["--not_digits=0", "--captures=0", "--nolitert"]  # seconds per run that this test does not need
    first = subprocess.Popen([*TRAIN, *flags], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        for line in first.stdout:  # training has begun: the lock is held
            if line.startswith("epoch "):
                break
        first.send_signal(signal.SIGSTOP)  # still live, however fast this machine trains
        second = subprocess.run([*TRAIN, *flags], capture_output=True, text=True, timeout=300, cwd=REPO)
        first.send_signal(signal.SIGCONT)
        _, err = first.communicate(timeout=300)
    finally:
        first.kill()
    assert second.returncode == 1 and second.stderr.count("\n") == 1, second.stderr
    assert second.stderr.startswith(
        f"error: --model_dir={model_dir} is in use by a live run: process {first.pid} on {HOST} (started "
    )
    assert first.returncode == 0, err
    results = json.loads((model_dir / "results.json").read_text())
    assert results["epochs_trained"] == 3 and tf.saved_model.load(results["export_dir"])


@pytest.mark.slow
def test_concurrent_exports_get_versions_n_and_n_plus_1_both_loadable(exported_run, tmp_path):
    model_dir = Path(exported_run["export_dir"]).parent.parent.parent / "run"
    command = [*EXPORT, f"--model_dir={model_dir}", f"--export_dir={tmp_path}", "--nolitert"]
    exporters = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)]
    exporters.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO))
    outputs = [exporter.communicate(timeout=300) for exporter in exporters]
    assert [exporter.returncode for exporter in exporters] == [0, 0], outputs
    versions = sorted((tmp_path / "mlp").iterdir())
    assert [v.name for v in versions] == ["1", "2"]
    for version in versions:
        assert tf.saved_model.load(str(version)).signatures["serving_default"]


@pytest.mark.slow  # trains for real
def test_the_retry_command_of_a_failed_export_exports_the_trained_model(tiny_config, idx_dir):
    blocker = Path(tiny_config.export_dir) / tiny_config.name
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not a folder")
    flags = [f"--data_dir={idx_dir}", f"--model_dir={tiny_config.model_dir}", f"--export_dir={tiny_config.export_dir}"]
    flags += [
        "--model=mlp",
        "--hidden_units=16",
        "--epochs=1",
        "--validation_size=100",
        "--not_digits=0",
        "--captures=0",
    ]
    trained = run_script("train", *flags, "--nolitert")
    assert trained.returncode == 1 and trained.stderr.count("\n") == 1, trained.stderr
    retry = shlex.split(trained.stderr.split("export it with: ")[1])
    assert retry[:2] == ["python", "scripts/export.py"] and retry[-1] == "--nolitert"  # as the run was asked to export
    blocker.unlink()
    exported = run_script("export", *retry[2:])
    assert exported.returncode == 0, exported.stderr
    assert tf.saved_model.load(str(blocker / "1")).signatures["serving_default"]
    assert not (Path(tiny_config.export_dir) / "litert").exists()


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_clock_checkpoints_come_every_n_steps_and_every_n_seconds():
    by_steps = CheckpointClock(every_steps=10, every_seconds=0)
    assert [last for last in range(1, 41) if by_steps.due(last, last)] == [10, 20, 30, 40]
    assert by_steps.due(8, 12) and not by_steps.due(11, 19)  # calls of several steps
    clock = FakeClock()
    by_time = CheckpointClock(every_steps=0, every_seconds=300, clock=clock)
    clock.now = 299.0
    assert not by_time.due(5, 5)
    clock.now = 300.0
    assert by_time.due(6, 6)
    by_time.saved()  # at an epoch's end, say
    clock.now = 599.0
    assert not by_time.due(7, 7)
    assert not CheckpointClock(every_steps=0, every_seconds=0).due(1, 1000)


def test_under_multi_worker_the_workers_agree_on_time_every_few_steps():
    asked = []
    clock = FakeClock()
    agreed = CheckpointClock(0, 60, agree=lambda due: asked.append(due) or True, clock=clock)
    clock.now = 61.0
    due = [last for last in range(1, 3 * AGREE_EVERY_STEPS + 1) if agreed.due(last, last)]
    assert due == [AGREE_EVERY_STEPS, 2 * AGREE_EVERY_STEPS, 3 * AGREE_EVERY_STEPS]
    assert asked == [True, True, True]  # a collective only at those steps, where every worker calls it


@pytest.mark.slow  # trains for real
def test_clock_checkpoints_are_saved_mid_epoch_and_kept_few(tiny_config):
    config = dataclasses.replace(tiny_config, checkpoint_every_steps=7, epochs=2)  # 20 steps per epoch
    quiet_run(config)
    kept = sorted(int(p.stem.split("-")[1]) for p in (Path(config.model_dir) / "checkpoints").glob("ckpt-*.index"))
    assert kept == [28, 35, 40]  # 7, 14, 20 (epoch end), 21, 28, 35, 40: the last three


def test_files_written_atomically_get_the_mode_every_other_file_gets(exported_run, tmp_path):
    """results.json, config.json and report.json are readable as the checkpoints beside them are (not mkstemp's
    0600)."""
    plain = tmp_path / "plain.txt"
    plain.write_text("")
    expected = plain.stat().st_mode & 0o777
    written = tmp_path / "written.json"
    files.write_json_atomic(written, {})
    assert written.stat().st_mode & 0o777 == expected
    run = Path(exported_run["flags"]["model_dir"])
    assert {(run / name).stat().st_mode & 0o777 for name in ("results.json", "config.json")} == {expected}


def test_an_output_file_whose_folder_cannot_be_made_or_that_is_a_folder_is_said_first(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(MnistTfError, match=r"^cannot create --output's folder .*/file: (File exists|Not a directory)$"):
        files.make_file_dir(tmp_path / "file" / "results.json", "--output")
    with pytest.raises(MnistTfError, match=r"^--report=.* is a folder; give a file's path$"):
        files.make_file_dir(tmp_path, "--report")
    files.make_file_dir(tmp_path / "new" / "results.json", "--output")
    assert (tmp_path / "new").is_dir() and not (tmp_path / "new" / "results.json").exists()


@pytest.mark.slow
def test_a_benchmark_whose_output_cannot_be_written_stops_before_it_races(tmp_path):
    (tmp_path / "file").write_text("")
    result = run_script("benchmark", "--models=mlp", "--quick", f"--output={tmp_path / 'file' / 'b.json'}")
    assert result.returncode == 1 and "step" not in result.stdout + result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: cannot create --output's folder {tmp_path}/file")
