"""Shared fixtures: a small generated IDX data set that every training test can learn in seconds."""

from __future__ import annotations

import importlib.util
import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mnist_tf import run
from mnist_tf.config import Config
from mnist_tf.data import idx  # first: importing mnist_tf quiets TensorFlow before TensorFlow is imported
from mnist_tf.data.sources import Split
from mnist_tf.reporting.console import ConsoleReporter

# Where the tests find the scripts and files they run: the checkout, or under Bazel the test's runfiles, which hold
# only what BUILD declares (so a missing `data` entry fails there).
REPO = (
    Path(os.environ["TEST_SRCDIR"], os.environ["TEST_WORKSPACE"])
    if "TEST_SRCDIR" in os.environ
    else Path(__file__).resolve().parents[1]
)
# The real MNIST files (see ../shared/datasets/README.md), beside the checkout; real-data tests skip when they are
# absent.
REAL_MNIST = Path(
    os.environ.get("MNIST_TF_REAL_DATA", Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mnist")
)
requires_real_mnist = pytest.mark.skipif(
    not (REAL_MNIST / "train-images-idx3-ubyte.gz").exists(), reason=f"real MNIST files not found at {REAL_MNIST}"
)


def requires_module(name: str) -> pytest.MarkDecorator:
    """Skips a test of an optional feature where its package is not installed (CI's oldest-versions run)."""
    return pytest.mark.skipif(importlib.util.find_spec(name) is None, reason=f"{name} is not installed (optional)")


MAX_WORKERS = 4  # each pytest-xdist worker is a TensorFlow process of its own, with its own memory


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto` (pyproject.toml): one worker per core this process may use, at most MAX_WORKERS."""
    return max(1, min(MAX_WORKERS, len(os.sched_getaffinity(0))))


def pytest_configure(config: pytest.Config) -> None:
    """Splits the CPU into two logical devices, so MirroredStrategy runs two replicas here (before TF starts)."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)


@pytest.fixture(scope="session")
def two_replicas():
    """One MirroredStrategy over the two logical CPUs, shared: a second one in the same process would run its
    collective ops alongside the first's and fail."""
    import tensorflow as tf

    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


def quiet_run(config: Config, fresh: bool = False) -> tuple[dict[str, Any], str]:
    """mnist_tf.run.run with its console output captured: (results, output)."""
    stream = io.StringIO()
    results = run.run(config, ConsoleReporter(stream, interactive=False), fresh=fresh)
    return results, stream.getvalue()


def checkpoint_weights(model_dir: str) -> dict[str, np.ndarray]:
    """The model's variables in the latest checkpoint of a run (trainable ones are stored under the optimizer)."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(f"{model_dir}/checkpoints"))
    names = reader.get_variable_to_shape_map()
    return {
        name: reader.get_tensor(name)
        for name in sorted(names)
        if name.startswith(("model/", "optimizer/_trainable_variables/"))
    }


def blank_split(count: int = 8) -> Split:
    """A split of blank 28x28 images: for a Trainer that never sees its training data."""
    return Split(np.zeros((count, 28, 28, 1), np.uint8), np.zeros(count, np.int64))


def make_digits(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Learnable fake digits: each class is a fixed random blob pattern, drawn with noise and a random shift."""
    templates = np.random.default_rng(0).random((10, 28, 28)) > 0.8
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, count).astype(np.uint8)
    images = templates[labels] * rng.uniform(150, 255, (count, 1, 1)) + rng.normal(0, 30, (count, 28, 28))
    shifts = rng.integers(-1, 2, (count, 2))
    images = np.stack([np.roll(image, shift, axis=(0, 1)) for image, shift in zip(images, shifts, strict=True)])
    return np.clip(images, 0, 255).astype(np.uint8), labels


def write_idx_dir(directory: Path, train_count: int = 1200, test_count: int = 300) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for split, count, seed in (("train", train_count, 1), ("test", test_count, 2)):
        images, labels = make_digits(count, seed)
        images_name, labels_name = idx.SPLIT_FILES[split]
        idx.write_idx(directory / f"{images_name}.gz", images)
        idx.write_idx(directory / f"{labels_name}.gz", labels)
    return directory


@pytest.fixture(scope="session")
def idx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_idx_dir(tmp_path_factory.mktemp("idx"))


def tiny_config_in(idx_dir: Path, root: Path) -> Config:
    """A run of a few seconds on the generated data, writing under `root`."""
    return Config(
        model="mlp",
        data_dir=str(idx_dir),
        model_dir=str(root / "run"),
        export_dir=str(root / "saved_models"),
        epochs=2,
        batch_size=50,
        eval_batch_size=128,
        validation_size=200,
        hidden_units=(64,),
        learning_rate=3e-3,
        dtype="float32",  # the same on every CPU (auto is bfloat16 on some)
        litert=False,  # seconds per export; tests/test_litert.py turns it on
        augment=False,  # the generated digits are random patterns, not shapes a distortion preserves
        not_digits=0.0,  # seconds per run to draw the bank; tests/test_not_digits.py turns it on
    )


@pytest.fixture
def tiny_config(idx_dir: Path, tmp_path: Path) -> Config:
    return tiny_config_in(idx_dir, tmp_path)


@pytest.fixture(scope="session")
def exported_run(idx_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The results of one tiny run, trained and exported once and shared: tests must not write into it."""
    results, _ = quiet_run(tiny_config_in(idx_dir, tmp_path_factory.mktemp("exported")))
    return results


def mnist_mlp_config(root: Path) -> Config:
    """A small MLP trained one epoch on the real MNIST files (about 97% test accuracy), exported under `root`."""
    return Config(
        model="mlp",
        data_dir=str(REAL_MNIST),
        model_dir=str(root / "run"),
        export_dir=str(root / "saved_models"),
        epochs=1,
        hidden_units=(256,),
        validation_size=0,
    )


@pytest.fixture(scope="session")
def mnist_saved_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """`mnist_mlp_config`'s export."""
    results, _ = quiet_run(mnist_mlp_config(tmp_path_factory.mktemp("mnist")))
    return results["export_dir"]
