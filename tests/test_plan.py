"""A run prepared once: `plan.prepare` decides the settings, strategy, precision, data and steps, and nothing else
decides them again."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import make_digits
from script_runs import run_script

from mnist_tf.config import Config
from mnist_tf.data import sources
from mnist_tf.errors import MnistTfError
from mnist_tf.plan import prepare


def test_the_plan_holds_what_the_run_decided(idx_dir):
    plan = prepare(Config(model="mlp", data_dir=str(idx_dir), validation_size=200), note=print)
    assert plan.config.dtype in ("float32", "bfloat16") and plan.precision.dtype == plan.config.dtype  # not auto
    assert plan.config.not_digits == 0.125 and plan.config.hidden_units == (800, 800)  # MNIST's and the MLP's
    assert (len(plan.splits.train), len(plan.splits.validation)) == (1000 + 75, 200)  # and 7.5% captured
    assert (plan.steps_per_epoch, plan.total_steps, plan.per_replica_batch) == (4, 24, 256)
    assert plan.chief
    with pytest.raises(MnistTfError, match="--profile_steps=25 is past the run's last step, 24"):
        prepare(dataclasses.replace(plan.config, profile_steps=(1, 25)))


def test_a_folders_share_of_not_digit_images_is_decided_once_its_classes_are_read(tmp_path):
    from PIL import Image

    images, labels = make_digits(40, seed=3)
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        (tmp_path / str(label)).mkdir(exist_ok=True)
        Image.fromarray(image).save(tmp_path / str(label) / f"{index}.png")
    config = Config(model="mlp", source="folder", data_dir=str(tmp_path), batch_size=8)
    assert config.resolve().not_digits is None  # resolving reads no folder
    plan = prepare(config, note=lambda line: None)
    assert plan.splits.class_names == tuple(sorted({str(label) for label in labels}))
    expected = 0.125 if plan.splits.class_names == sources.DIGITS else 0.0
    assert plan.config.not_digits == expected


def test_runs_started_in_the_same_second_get_folders_of_their_own(idx_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("time.strftime", lambda form: "20261205-041900")  # the same second for both
    config = Config(model="mlp", data_dir=str(idx_dir), validation_size=200)
    first, second = (prepare(config, note=print).config.model_dir for _ in range(2))
    assert (first, second) == ("runs/mlp/20261205-041900", "runs/mlp/20261205-041900-2")
    assert (tmp_path / first).is_dir() and (tmp_path / second).is_dir()
    assert prepare(config, note=print, new_run=False).config.model_dir == first  # named, but not made again
    given = prepare(dataclasses.replace(config, model_dir="mine"), note=print).config.model_dir
    assert given == "mine" and not (tmp_path / "mine").exists()  # a folder the user names is made by the run


def test_train_py_resolves_its_config_once(idx_dir, tmp_path, monkeypatch):
    resolved = []
    resolve = Config.resolve
    monkeypatch.setattr(Config, "resolve", lambda self: resolved.append(self) or resolve(self))
    flags = ["--model=mlp", "--hidden_units=16", "--epochs=1", "--batch_size=50", "--validation_size=100"]
    flags += [
        f"--data_dir={idx_dir}",
        f"--model_dir={tmp_path / 'run'}",
        "--export_dir=",
        "--not_digits=0",
        "--captures=0",
    ]
    done = run_script("train", *flags)
    assert done.returncode == 0, done.stderr
    assert len(resolved) == 1


def test_the_default_batch_fits_a_small_training_set_and_a_chosen_one_is_kept(idx_dir):
    """The obvious command on a hundred images trains (four steps an epoch, said in one line); a --batch_size the
    user gives is theirs: kept, or refused when it is larger than the data."""
    lines = []
    small = Config(model="mlp", data_dir=str(idx_dir), validation_size=1100, captures=0)  # 100 training images
    plan = prepare(small, note=lines.append, new_run=False)
    assert (plan.config.batch_size, plan.steps_per_epoch, plan.per_replica_batch) == (16, 6, 16)
    assert "note: batch size 16: the default, 256, is more than the 100 training images" in lines
    assert prepare(dataclasses.replace(small, batch_size=50), new_run=False).config.batch_size == 50
    with pytest.raises(MnistTfError, match=r"--batch_size=512 is larger than the training set \(100 images\)"):
        prepare(dataclasses.replace(small, batch_size=512), new_run=False)
