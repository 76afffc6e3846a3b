"""Learning-rate schedules have the shape their names promise; every optimizer name builds its optimizer."""

from itertools import pairwise

import keras
import pytest

from mnist_tf.config import Config
from mnist_tf.nn import optimizers
from mnist_tf.nn.optimizers import OPTIMIZERS
from mnist_tf.training import build


def rates(schedule: str, total_steps: int = 1000) -> list[float]:
    lr = optimizers.learning_rate(schedule, 0.1, total_steps)
    return [float(lr(step)) if callable(lr) else lr for step in range(0, total_steps + 1, 50)]


def test_constant():
    assert set(rates("constant")) == {0.1}


def test_cosine_decays_from_peak_to_zero():
    values = rates("cosine")
    assert values[0] == pytest.approx(0.1)
    assert values[-1] == pytest.approx(0.0, abs=1e-7)
    assert all(a >= b for a, b in pairwise(values))


def test_one_cycle_warms_up_to_the_peak_then_anneals_to_zero():
    values = rates("one_cycle")
    peak_index = values.index(max(values))
    assert values[0] == pytest.approx(0.1 / optimizers.ONE_CYCLE_START_DIVISOR)
    assert max(values) == pytest.approx(0.1)
    assert peak_index * 50 == 1000 * optimizers.ONE_CYCLE_WARMUP_FRACTION
    assert all(a < b for a, b in pairwise(values[: peak_index + 1]))
    assert values[-1] == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_each_name_builds_its_optimizer(name):
    config = Config(optimizer=name, lr_schedule="constant", momentum=0.8, beta_2=0.9)
    optimizer = build.optimizer(config, total_steps=10)
    expected = {
        "sgd": keras.optimizers.SGD,
        "momentum": keras.optimizers.SGD,
        "nesterov": keras.optimizers.SGD,
        "adam": keras.optimizers.Adam,
        "rmsprop": keras.optimizers.RMSprop,
        "adagrad": keras.optimizers.Adagrad,
    }[name]
    assert type(optimizer) is expected
    if expected is keras.optimizers.SGD:
        assert optimizer.momentum == (0.0 if name == "sgd" else 0.8)
        assert optimizer.nesterov == (name == "nesterov")
    if expected is keras.optimizers.Adam:  # its momentum is beta_1
        assert (optimizer.beta_1, optimizer.beta_2) == (0.8, 0.9)


def test_float16_gets_dynamic_loss_scaling_and_bfloat16_does_not():
    scaled = build.optimizer(Config(optimizer="sgd", dtype="float16"), total_steps=10)
    assert isinstance(scaled, keras.optimizers.LossScaleOptimizer)
    assert isinstance(scaled.inner_optimizer, keras.optimizers.SGD)
    assert not isinstance(build.optimizer(Config(dtype="bfloat16"), 10), keras.optimizers.LossScaleOptimizer)
