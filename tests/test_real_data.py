"""On the real MNIST files (skipped with a reason when ../shared/datasets/mnist is absent)."""

import pytest
from conftest import REAL_MNIST, requires_real_mnist

pytestmark = [pytest.mark.slow, requires_real_mnist]


def test_the_default_lenet_reaches_99_percent_in_two_epochs(people_lenet):
    assert people_lenet["test_accuracy"] >= 0.99
    assert people_lenet["flags"]["data_dir"] == str(REAL_MNIST) and people_lenet["flags"]["captures"] == 0.075
