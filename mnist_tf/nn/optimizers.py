"""Optimizers and learning-rate schedules by name: the registries' keys are `--optimizer`'s and `--lr_schedule`'s
choices."""

from __future__ import annotations

from collections.abc import Callable

import keras

LearningRate = float | keras.optimizers.schedules.LearningRateSchedule

# one_cycle: warm up linearly from lr / 25 to lr over this fraction of training, then anneal (cosine) to zero.
ONE_CYCLE_WARMUP_FRACTION = 0.2
ONE_CYCLE_START_DIVISOR = 25.0


def _one_cycle(peak: float, total_steps: int) -> LearningRate:
    warmup_steps = max(1, int(total_steps * ONE_CYCLE_WARMUP_FRACTION))
    return keras.optimizers.schedules.CosineDecay(
        peak / ONE_CYCLE_START_DIVISOR,
        decay_steps=max(1, total_steps - warmup_steps),
        warmup_target=peak,
        warmup_steps=warmup_steps,
    )


# name -> (peak learning rate, total optimizer steps) -> the rate or schedule
LR_SCHEDULES: dict[str, Callable[[float, int], LearningRate]] = {
    "constant": lambda peak, total_steps: peak,
    "cosine": lambda peak, total_steps: keras.optimizers.schedules.CosineDecay(peak, decay_steps=total_steps),
    "one_cycle": _one_cycle,
}

# name -> (learning rate, momentum, beta_2) -> the optimizer; momentum is used by the three that have it (Adam's is
# its beta_1), beta_2 by Adam
OPTIMIZERS: dict[str, Callable[[LearningRate, float, float], keras.optimizers.Optimizer]] = {
    "sgd": lambda lr, momentum, beta_2: keras.optimizers.SGD(lr),
    "momentum": lambda lr, momentum, beta_2: keras.optimizers.SGD(lr, momentum=momentum),
    "nesterov": lambda lr, momentum, beta_2: keras.optimizers.SGD(lr, momentum=momentum, nesterov=True),
    "adam": lambda lr, momentum, beta_2: keras.optimizers.Adam(lr, beta_1=momentum, beta_2=beta_2),
    "rmsprop": lambda lr, momentum, beta_2: keras.optimizers.RMSprop(lr),
    "adagrad": lambda lr, momentum, beta_2: keras.optimizers.Adagrad(lr),
}


def learning_rate(schedule: str, peak: float, total_steps: int) -> LearningRate:
    """The schedule `schedule` names, peaking at `peak`, over `total_steps` optimizer steps."""
    return LR_SCHEDULES[schedule](peak, total_steps)


def make(
    name: str, lr: LearningRate, momentum: float = 0.9, beta_2: float = 0.999, loss_scaling: bool = False
) -> keras.optimizers.Optimizer:
    """The optimizer `name`, driven by `lr`.

    `loss_scaling` wraps it in dynamic loss scaling, which float16 needs: its gradients underflow to zero without
    it (bfloat16 has float32's range and needs none).
    """
    optimizer = OPTIMIZERS[name](lr, momentum, beta_2)
    return keras.optimizers.LossScaleOptimizer(optimizer) if loss_scaling else optimizer
