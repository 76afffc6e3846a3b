"""Runs that are killed, stopped, restarted or pointed at the wrong directory lose nothing and end where an
uninterrupted run ends: the same weights, bit for bit (CPU, seeded)."""

import contextlib
import dataclasses
import io
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO, TRAIN, blank_split, once, quiet_run, session_root, tiny_config_in
from script_runs import run_script

from mnist_tf import distribute, run
from mnist_tf.config import Config
from mnist_tf.errors import Interrupted, MnistTfError
from mnist_tf.export import classifier, saved_model
from mnist_tf.export.publish import weights_digest
from mnist_tf.reporting.console import ConsoleReporter
from mnist_tf.training.trainer import Trainer

# 1,320 steps of a small MLP: seconds of training, so a signal lands somewhere in the middle of it. No not-digit
# images: drawing their bank costs seconds per process (tests/test_not_digits.py resumes a run that has them).
RUN_FLAGS = [
    "--model=mlp",
    "--hidden_units=32",
    "--epochs=12",
    "--not_digits=0",
    "--captures=0",
    "--batch_size=10",
    "--validation_size=100",
    "--export_dir=",
    "--log_every_steps=0",
]
STEPS_PER_EPOCH = 110  # (1,200 - 100) / 10


def train_command(idx_dir, model_dir):
    return [*TRAIN, *RUN_FLAGS, f"--data_dir={idx_dir}", f"--model_dir={model_dir}"]


def start(idx_dir, model_dir, **kwargs):
    return subprocess.Popen(
        train_command(idx_dir, model_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, **kwargs
    )


def wait_for_training(process):
    """Returns once the run has finished its first epoch (its output shows it)."""
    for line in process.stdout:
        if line.startswith("epoch "):
            return
    raise AssertionError(f"the run ended before its first epoch: {process.stderr.read()}")


def finish(idx_dir, model_dir):
    """Runs the same command again to the end; returns (results, stdout)."""
    process = subprocess.run(train_command(idx_dir, model_dir), capture_output=True, text=True, timeout=300, cwd=REPO)
    assert process.returncode == 0, process.stderr
    return json.loads((model_dir / "results.json").read_text()), process.stdout


def latest_step(model_dir):
    path = tf.train.latest_checkpoint(str(model_dir / "checkpoints"))
    return int(path.rsplit("-", 1)[1]) if path else 0


@pytest.fixture(scope="session")
def uninterrupted(idx_dir, tmp_path_factory):
    """The results of the run as it ends when nothing stops it, run once per session."""
    directory = session_root(tmp_path_factory) / "shared-uninterrupted"
    with once(directory):
        if directory.exists():
            return json.loads((directory / "run" / "results.json").read_text())
        return finish(idx_dir, directory / "run")[0]


@pytest.mark.slow
def test_sigkill_at_a_random_point_then_the_same_command_ends_with_the_same_weights(idx_dir, tmp_path, uninterrupted):
    model_dir = tmp_path / "run"
    delay = random.uniform(0, 3)
    process = start(idx_dir, model_dir)
    try:
        wait_for_training(process)
        time.sleep(delay)
        process.kill()
        process.wait(timeout=60)
    finally:
        process.kill()
    killed_at = latest_step(model_dir)
    resumed, output = finish(idx_dir, model_dir)
    assert resumed["resumed_from_step"] == killed_at, f"killed {delay:.2f}s after epoch 1"
    assert killed_at == 0 or f"resuming from {model_dir}/checkpoints/ckpt-{killed_at}" in output
    assert resumed["weights_sha256"] == uninterrupted["weights_sha256"], f"killed {delay:.2f}s after epoch 1"
    assert resumed["test_loss"] == uninterrupted["test_loss"]


@pytest.mark.slow
def test_sigkill_mid_epoch_resumes_from_the_clock_checkpoint_with_the_same_weights(idx_dir, tmp_path, uninterrupted):
    """--checkpoint_every_steps: a kill loses at most that many steps, and the resumed run ends bit-identical."""
    model_dir = tmp_path / "run"
    command = [*train_command(idx_dir, model_dir), "--checkpoint_every_steps=7"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            step = latest_step(model_dir)
            if step > STEPS_PER_EPOCH and step % STEPS_PER_EPOCH:
                process.send_signal(signal.SIGSTOP)  # frozen: the newest checkpoint can no longer change
                if latest_step(model_dir) % STEPS_PER_EPOCH:
                    break
                process.send_signal(signal.SIGCONT)
            time.sleep(0.02)
        process.kill()
        process.wait(timeout=60)
    finally:
        process.kill()
    killed_at = latest_step(model_dir)
    assert killed_at > STEPS_PER_EPOCH and killed_at % 7 == 0 and killed_at % STEPS_PER_EPOCH, killed_at  # mid-epoch
    resumed, output = finish(idx_dir, model_dir)
    assert resumed["resumed_from_step"] == killed_at
    assert f"resuming from {model_dir}/checkpoints/ckpt-{killed_at}" in output
    assert resumed["weights_sha256"] == uninterrupted["weights_sha256"]
    assert resumed["test_loss"] == uninterrupted["test_loss"]


@pytest.mark.slow
def test_sigterm_saves_at_the_next_step_then_the_same_command_ends_with_the_same_weights(
    idx_dir, tmp_path, uninterrupted
):
    """SIGINT takes the same path: in process below, and from a terminal in the Ctrl-C test after this one."""
    model_dir = tmp_path / "run"
    process = start(idx_dir, model_dir)
    try:
        wait_for_training(process)
        time.sleep(random.uniform(0, 1))
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 128 + signal.SIGTERM, stderr
    step = latest_step(model_dir)
    assert (
        stderr
        == f"stopped by SIGTERM at step {step}, saved; to resume, run the same command with --model_dir={model_dir}\n"
    )
    # Mid-epoch, or an epoch's end if it came during validation (test_a_stop_signal_in_process... pins the step).
    assert step >= STEPS_PER_EPOCH
    resumed, output = finish(idx_dir, model_dir)
    epoch, in_epoch = divmod(step, STEPS_PER_EPOCH)
    assert f"(step {step}: epoch {epoch + 1}, step {in_epoch}/{STEPS_PER_EPOCH})" in output
    assert resumed["weights_sha256"] == uninterrupted["weights_sha256"]


@pytest.mark.slow
def test_a_second_ctrl_c_stops_at_once_and_keeps_the_last_checkpoint(idx_dir, tmp_path):
    model_dir = tmp_path / "run"
    process = start(idx_dir, model_dir, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        wait_for_training(process)
        process.send_signal(signal.SIGINT)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] in (
        f"interrupted; run the same command with --model_dir={model_dir} to resume from its last checkpoint",
        f"stopped by SIGINT at step {latest_step(model_dir)}, saved; to resume, run the same command with "
        f"--model_dir={model_dir}",
    )  # both signals may arrive before the step ends: then the first one's checkpoint is saved
    assert "Traceback" not in stderr
    assert latest_step(model_dir) >= STEPS_PER_EPOCH


# In-process: the same machinery, driven directly.


class SignalAtStep(ConsoleReporter):
    """Sends this process `signal_number` when the progress bar shows global step `step` of the run."""

    def __init__(self, signal_number, step, steps_per_epoch):
        super().__init__(io.StringIO(), interactive=True)
        self.signal_number, self.step, self.steps_per_epoch = signal_number, step, steps_per_epoch

    def wants_progress(self):
        return True

    def progress(self, epoch, epochs, step, steps, loss, accuracy):
        if (epoch - 1) * self.steps_per_epoch + step == self.step:
            os.kill(os.getpid(), self.signal_number)


@pytest.mark.parametrize(
    "signal_number, signal_at, saved_at",
    [
        (signal.SIGTERM, 27, 28),
        pytest.param(signal.SIGINT, 27, 28, marks=pytest.mark.slow),
        pytest.param(signal.SIGTERM, 20, 20, marks=pytest.mark.slow),
    ],
    ids=[
        "SIGTERM mid-epoch: the next step",
        "SIGINT mid-epoch: the next step",
        "SIGTERM at an epoch's last step: after validation, before the next epoch",
    ],
)
def test_a_stop_signal_in_process_saves_the_next_step_and_restores_the_signal_handlers(
    tiny_config, signal_number, signal_at, saved_at
):
    config = dataclasses.replace(tiny_config, epochs=2, export_dir=None)  # 20 steps per epoch
    name = signal.Signals(signal_number).name
    before = signal.getsignal(signal_number)
    with pytest.raises(Interrupted, match=rf"^stopped by {name} at step {saved_at}, saved; to resume") as stop:
        run.run(config, SignalAtStep(signal_number, signal_at, 20))
    assert stop.value.exit_code == 128 + signal_number
    assert signal.getsignal(signal_number) is before
    assert latest_step(Path(config.model_dir)) == saved_at


@pytest.mark.slow  # trains for real
def test_fresh_starts_over_and_clears_the_old_run(tiny_config):
    config = dataclasses.replace(tiny_config, export_dir=None)
    quiet_run(dataclasses.replace(config, epochs=1, learning_rate=1e-2))
    results, output = quiet_run(config, fresh=True)
    assert "resuming" not in output and results["resumed_from_step"] == 0
    expected, _ = quiet_run(dataclasses.replace(config, model_dir=config.model_dir + "-new"))
    assert results["weights_sha256"] == expected["weights_sha256"]
    assert len(list(Path(config.model_dir, "train").glob("events.out.*"))) == 1  # the old run's logs are gone


@pytest.mark.slow  # trains for real
def test_resuming_with_other_flags_says_what_changed(tiny_config):
    config = dataclasses.replace(tiny_config, export_dir=None, epochs=1)
    quiet_run(config)
    _, output = quiet_run(dataclasses.replace(config, epochs=2, learning_rate=1e-3, log_every_steps=5))
    assert "changed since the checkpoint: epochs 1 -> 2; learning_rate 0.003 -> 0.001\n" in output


def test_skip_policy_leaves_weights_and_optimizer_alone_on_a_nan_batch_under_every_replica_count():
    for strategy_name in ("default", "mirrored"):
        strategy = distribute.make_strategy(strategy_name)
        config = Config(model="mlp", hidden_units=(16,), batch_size=8, nan_policy="skip", not_digits=0.0).resolve()
        trainer = Trainer.from_config(config, strategy, blank_split(), total_steps=10)
        rng = np.random.default_rng(0)
        images = rng.random((3, 8, 28, 28, 1), dtype=np.float32)
        images[1, 5, 3, 3, 0] = np.nan  # the second batch has one bad pixel
        labels = rng.integers(0, 10, (3, 8)).astype(np.int32)
        batches = iter(distribute.distribute_dataset(strategy, tf.data.Dataset.from_tensor_slices((images, labels))))
        trainer.train(batches)
        before = [w.numpy().copy() for w in trainer.model.trainable_weights + trainer.optimizer.variables]
        trainer.train(batches)
        after = [w.numpy() for w in trainer.model.trainable_weights + trainer.optimizer.variables]
        assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True)), strategy_name
        assert (int(trainer.step.numpy()), int(trainer.skipped_steps.numpy())) == (2, 1)
        trainer.train(batches)
        assert int(trainer.optimizer.iterations.numpy()) == 2 and np.isfinite(trainer.train_metrics()[0])


@pytest.mark.slow  # trains for real
def test_skip_policy_keeps_a_diverging_run_going_with_finite_weights_and_counts_what_it_skipped(tiny_config):
    # The first updates (learning rate 1e12) are finite but huge; the losses after them are not.
    config = dataclasses.replace(tiny_config, optimizer="sgd", learning_rate=1e12, lr_schedule="constant", epochs=1)
    results, output = quiet_run(dataclasses.replace(config, nan_policy="skip"))
    skipped = results["skipped_steps"]
    assert 10 < skipped < 20  # of the epoch's 20 steps
    assert f"| skipped {skipped} steps (NaN/Inf)" in output
    model = classifier.load(config.model_dir).model
    assert all(np.isfinite(w.numpy()).all() for w in model.weights)


@pytest.mark.slow  # trains for real
def test_skip_policy_trains_exactly_like_stop_when_nothing_is_skipped(tiny_config):
    stop, _ = quiet_run(dataclasses.replace(tiny_config, export_dir=None))
    skip, _ = quiet_run(
        dataclasses.replace(tiny_config, export_dir=None, nan_policy="skip", model_dir=tiny_config.model_dir + "s")
    )
    assert skip["weights_sha256"] == stop["weights_sha256"] and skip["skipped_steps"] == 0


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(("ckpt-20.data-00000-of-00001", lambda raw: raw[:100]), marks=pytest.mark.slow),
        ("ckpt-20.index", lambda raw: raw[: len(raw) // 2]),
        pytest.param(("ckpt-20.index", lambda raw: bytes(len(raw))), marks=pytest.mark.slow),
    ],
    ids=["truncated data", "truncated index", "zeroed index"],
)
def test_a_damaged_checkpoint_is_one_line(tiny_config, damage):
    config = dataclasses.replace(tiny_config, export_dir=None, epochs=1)
    quiet_run(config)
    name, change = damage
    path = Path(config.model_dir, "checkpoints", name)
    path.write_bytes(change(path.read_bytes()))
    with pytest.raises(MnistTfError, match=r"ckpt-20 cannot be read \(.*\); pass --fresh to start over"):
        quiet_run(dataclasses.replace(config, epochs=2))


def run_with_a_damaged_newest_checkpoint(config: Config, suffix: str) -> tuple[Path, dict]:
    """Two epochs of 20 steps with a checkpoint every 10 (ckpt-20, ckpt-30 and ckpt-40 are kept), then ckpt-40's
    `suffix` file damaged: truncated data, or an index overwritten with zeros. Returns the checkpoints folder and
    the run's results."""
    results, _ = quiet_run(config)
    checkpoints = Path(config.model_dir, "checkpoints")
    newest = checkpoints / f"ckpt-40.{suffix}"
    raw = newest.read_bytes()
    newest.write_bytes(raw[:100] if suffix.startswith("data") else bytes(len(raw)))
    return checkpoints, results


DAMAGED_FILES = ["ckpt-40.data-00000-of-00001", "ckpt-40.index"]


@pytest.mark.slow  # trains for real
@pytest.mark.parametrize("suffix", ["data-00000-of-00001", "index"])
def test_a_damaged_newest_checkpoint_is_set_aside_and_the_run_resumes_from_the_one_before(tiny_config, suffix):
    config = dataclasses.replace(tiny_config, export_dir=None, epochs=2, checkpoint_every_steps=10)
    checkpoints, uninterrupted = run_with_a_damaged_newest_checkpoint(config, suffix)
    resumed, output = quiet_run(config)  # the same command again: steps 31-40 once more
    assert f"note: {checkpoints}/ckpt-40 cannot be read (" in output
    assert f"set aside in {checkpoints}/damaged; using {checkpoints}/ckpt-30\n" in output
    assert resumed["resumed_from_step"] == 30
    assert sorted(p.name for p in (checkpoints / "damaged").iterdir()) == DAMAGED_FILES
    assert resumed["weights_sha256"] == uninterrupted["weights_sha256"]


@pytest.mark.slow  # trains for real
def test_export_and_evaluation_of_a_run_fall_back_past_a_damaged_checkpoint_alike(tiny_config):
    config = dataclasses.replace(tiny_config, export_dir=None, epochs=2, checkpoint_every_steps=10)
    checkpoints, _ = run_with_a_damaged_newest_checkpoint(config, "index")
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        used = classifier.load(config.model_dir).source  # what scripts/export.py and evaluate.py load
    assert used == f"{checkpoints}/ckpt-30"
    (line,) = stderr.getvalue().splitlines()  # one line
    assert line.startswith(f"note: {checkpoints}/ckpt-40 cannot be read (")
    assert line.endswith(f"); set aside in {checkpoints}/damaged; using {used}")
    assert sorted(p.name for p in (checkpoints / "damaged").iterdir()) == DAMAGED_FILES
    assert tf.train.latest_checkpoint(str(checkpoints)) == used  # the next reader goes straight to it


@pytest.mark.slow  # trains for real
def test_a_run_whose_checkpoints_all_fail_to_read_is_refused_and_nothing_is_moved(tiny_config):
    config = dataclasses.replace(tiny_config, export_dir=None, epochs=1, checkpoint_every_steps=10)
    quiet_run(config)
    checkpoints = Path(config.model_dir, "checkpoints")
    for step in (10, 20):
        (checkpoints / f"ckpt-{step}.index").write_bytes(b"")
    with pytest.raises(MnistTfError, match=r"ckpt-20 cannot be read \(.*\); pass --fresh to start over"):
        quiet_run(dataclasses.replace(config, epochs=2))
    assert not (checkpoints / "damaged").exists()
    for script in ("export", "evaluate"):  # a run read, not resumed: no --fresh to pass there
        read = run_script(script, f"--model_dir={config.model_dir}")
        assert read.returncode == 1 and "--fresh" not in read.stderr, read.stderr
        assert read.stderr.startswith("error: ") and "ckpt-20 cannot be read" in read.stderr
    assert not (checkpoints / "damaged").exists()
    assert tf.train.latest_checkpoint(str(checkpoints)).endswith("ckpt-20")


@pytest.mark.slow  # trains for real
def test_a_damaged_run_config_is_one_line(tiny_config):
    config = dataclasses.replace(tiny_config, export_dir=None, epochs=1)
    quiet_run(config)
    Path(config.model_dir, "config.json").write_text("{not json")
    with pytest.raises(MnistTfError, match=r"config.json is not a readable mnist_tf run configuration"):
        quiet_run(dataclasses.replace(config, epochs=2))


# A full disk and a read-only model dir: the write fails in one line, and what was written before stays readable.


def mount(*args):
    """Runs `mount`; False where this process may not (not root, or a container without the capability)."""
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@pytest.fixture
def tiny_disk(tmp_path):
    """A 16 MiB filesystem of its own (tmpfs), so the test can fill it up: a run takes 2 MB (the rest is headroom
    for what TensorFlow stages while it writes, which once filled 4 MiB in CI)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if not mount("-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)):
        pytest.skip("mounting a tmpfs needs root (the injected-failure test covers the same code)")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


@contextlib.contextmanager
def read_only(path):
    """`path` cannot be written while the block runs: a read-only bind mount as root (who ignores file modes)."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [path, *path.rglob("*")]}
        for p in modes:
            p.chmod(modes[p] & ~0o222)
        try:
            yield
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    if not (mount("--bind", str(path), str(path)) and mount("-o", "remount,bind,ro", str(path))):
        pytest.skip("this root cannot mount (a container without CAP_SYS_ADMIN)")
    try:
        yield
    finally:
        subprocess.run(["umount", str(path)], check=True)


def fill(disk, leave_bytes):
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    (disk / "filler").write_bytes(bytes(max(0, free - leave_bytes)))


def assert_intact(config, digest, export_dir):
    """The run's checkpoint and its export still load, and the checkpoint holds the weights that were saved."""
    opened = classifier.load(config.model_dir)
    model, path = opened.model, opened.source
    assert path.endswith("ckpt-20") and weights_digest(model) == digest
    version, loaded = saved_model.load(export_dir)
    assert version == Path(export_dir) and "serving_default" in loaded.signatures
    assert sorted(p.name for p in version.parent.iterdir()) == ["1"]  # no half-written version, no staging


@pytest.mark.slow  # trains for real
def test_a_full_disk_fails_the_save_in_one_line_and_keeps_the_checkpoint_and_export(tiny_disk, idx_dir):
    config = dataclasses.replace(tiny_config_in(idx_dir, tiny_disk), epochs=1)
    first, _ = quiet_run(config)
    fill(tiny_disk, 100_000)  # room for config.json and logs, not for a 600 kB checkpoint
    with pytest.raises(MnistTfError, match=r"^could not save a checkpoint in .*No space left on device\); the ear"):
        quiet_run(dataclasses.replace(config, epochs=2))
    assert not list(Path(config.model_dir, "checkpoints").glob("*_temp*"))
    model = classifier.load(config.model_dir).model
    with pytest.raises(MnistTfError, match=r"^could not export the SavedModel to .*/2: .*No space left on device"):
        saved_model.export_saved_model(model, Path(config.export_dir) / "mlp")
    (tiny_disk / "filler").unlink()
    assert_intact(config, first["weights_sha256"], first["export_dir"])


@pytest.mark.slow  # trains for real
def test_a_read_only_model_dir_fails_before_training_and_keeps_everything(tiny_config):
    config = dataclasses.replace(tiny_config, epochs=1)
    first, _ = quiet_run(config)
    with read_only(Path(config.model_dir)), read_only(Path(config.export_dir)):
        with pytest.raises(MnistTfError, match=r"^could not write .*/run/run.lock: (Read-only file system|Perm)"):
            quiet_run(dataclasses.replace(config, epochs=2))
        model = classifier.load(config.model_dir).model
        with pytest.raises(MnistTfError, match=r"^could not export the SavedModel to .*/2: (Read-only|Permission)"):
            saved_model.export_saved_model(model, Path(config.export_dir) / "mlp")
    assert_intact(config, first["weights_sha256"], first["export_dir"])


@pytest.mark.slow  # trains for real
def test_an_injected_write_failure_in_the_middle_of_training_keeps_the_last_checkpoint(tiny_config, monkeypatch):
    """Where no filesystem can be mounted, the same path, by a save that fails as a full disk makes it fail."""
    config = dataclasses.replace(tiny_config, epochs=1)
    first, _ = quiet_run(config)
    manager_save = tf.train.CheckpointManager.save

    def save(self, checkpoint_number=None, **kwargs):
        if checkpoint_number > 20:
            raise tf.errors.ResourceExhaustedError(None, None, "ckpt_temp/part-0; No space left on device")
        return manager_save(self, checkpoint_number=checkpoint_number, **kwargs)

    monkeypatch.setattr(tf.train.CheckpointManager, "save", save)
    with pytest.raises(MnistTfError, match=r"\(ckpt_temp/part-0; No space left on device\); the earlier checkpoints"):
        quiet_run(dataclasses.replace(config, epochs=2))
    assert_intact(config, first["weights_sha256"], first["export_dir"])
