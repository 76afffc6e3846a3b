"""examples/train_lenet.py, the reading edition, is the method train.py runs: the same weights, step for step."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, checkpoint_weights, quiet_run

pytestmark = pytest.mark.slow  # trains twice, end to end


def edition():
    spec = importlib.util.spec_from_file_location("train_lenet", REPO / "examples" / "train_lenet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_reading_edition_ends_with_the_weights_of_train_py_with_its_extras_off(idx_dir: Path, tmp_path: Path):
    from mnist_tf.config import Config

    sizes = {"epochs": 2, "batch_size": 50, "validation_size": 200, "seed": 3}
    quiet_run(
        Config(
            model="lenet",
            data_dir=str(idx_dir),
            model_dir=str(tmp_path / "train_py"),
            export_dir="",
            dtype="float32",
            augment=False,
            not_digits=0.0,
            captures=0.0,
            **sizes,
        )
    )
    flags = [f"--{name}={value}" for name, value in sizes.items()]
    model_dir, export_dir = tmp_path / "edition", tmp_path / "edition_export"
    edition().main([f"--data_dir={idx_dir}", f"--model_dir={model_dir}", f"--export_dir={export_dir}", *flags])

    ours, theirs = checkpoint_weights(str(model_dir)), checkpoint_weights(str(tmp_path / "train_py"))
    assert sorted(ours) == sorted(theirs) and any(name.startswith("model/") for name in ours)
    for name, value in theirs.items():
        np.testing.assert_array_equal(ours[name], value, err_msg=name)

    import tensorflow as tf

    served = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
    probabilities = served(images=tf.zeros([2, 28, 28, 1], tf.uint8))["probabilities"].numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
