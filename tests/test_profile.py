"""scripts/profile_step.py's table: a few LeNet steps under the profiler, their op time put in categories (the script
runs in this process)."""

import pytest
import tensorflow as tf
from conftest import make_digits
from script_runs import run_script

from mnist_tf.benchmark import profile
from mnist_tf.config import Config
from mnist_tf.data import pipeline
from mnist_tf.data.sources import Split
from mnist_tf.training.trainer import Trainer


@pytest.fixture(scope="module")
def lenet_profile():
    images, labels = make_digits(64, seed=0)
    train = Split(images[..., None], labels)
    config = Config(model="lenet", batch_size=16, augment=True, not_digits=0.0, dtype="float32").resolve()
    trainer = Trainer.from_config(config, tf.distribute.get_strategy(), train, total_steps=20)
    return profile.profile(trainer, iter(pipeline.train_dataset(train, 16, seed=0)), steps=3, warmup=2)


def test_the_step_is_split_into_what_its_ops_do(lenet_profile):
    seconds = lenet_profile.seconds
    for category in (
        "convolutions, forward",
        "convolutions, filter gradients",
        "convolutions, input gradients",
        "dense layers (matrix products)",
        "max-pooling",
        "augmentation",
        "dropout",
        "optimizer update",
    ):
        assert seconds.get(category, 0) > 0, category
    assert 0 < lenet_profile.busy_seconds <= lenet_profile.wall_seconds
    assert "Conv2DBackpropFilter" in " ".join(lenet_profile.ops)


def test_the_table_lists_every_category_and_the_step(lenet_profile):
    table = lenet_profile.table()
    rows = [line for line in table.splitlines()[2:]]
    assert len(rows) == len(lenet_profile.seconds) + 2  # and the host's share, and the step
    assert rows[-1].startswith("| **step (wall)** |") and profile.HOST in table
    shares = [float(row.split("|")[3].strip(" %")) for row in rows if row.split("|")[3].strip() != "-"]
    assert sum(shares) == pytest.approx(100, abs=0.5)


@pytest.mark.slow
def test_the_script_prints_the_table(idx_dir):
    process = run_script("profile_step", "--model=mlp", f"--data_dir={idx_dir}", "--validation_size=0", "--steps=2")
    assert process.returncode == 0, process.stderr[-2000:]
    assert "| dense layers (matrix products) |" in process.stdout and "op types: " in process.stdout
