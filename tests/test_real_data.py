"""On the real MNIST files (skipped with a reason when ../shared/datasets/mnist is absent)."""

import dataclasses
import io

import pytest
from conftest import REAL_MNIST, requires_real_mnist

from mnist_tf import run
from mnist_tf.config import Config
from mnist_tf.reporting.console import ConsoleReporter

pytestmark = [pytest.mark.slow, requires_real_mnist]


@pytest.mark.long
def test_lenet_reaches_97_percent_in_a_few_hundred_steps(tmp_path):
    config = Config(
        model="lenet",
        data_dir=str(REAL_MNIST),
        model_dir=str(tmp_path / "run"),
        export_dir=None,
        epochs=1,
        batch_size=200,  # 250 steps over the 50,000 training images
        validation_size=10_000,
    )
    results = run.run(config, ConsoleReporter(io.StringIO(), interactive=False))
    assert results["test_accuracy"] >= 0.97
    assert dataclasses.asdict(config)["data_dir"] == results["flags"]["data_dir"]
