"""Optimizers and learning-rate schedules by name."""

from __future__ import annotations

import keras

from mnist_tf.config import Config

# one_cycle: warm up linearly from lr / 25 to lr over this fraction of training, then anneal (cosine) to zero.
ONE_CYCLE_WARMUP_FRACTION = 0.2
ONE_CYCLE_START_DIVISOR = 25.0


def learning_rate(config: Config, total_steps: int) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The schedule `config.lr_schedule` names, over `total_steps` optimizer steps."""
    peak = config.learning_rate
    if config.lr_schedule == "constant":
        return peak
    if config.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(peak, decay_steps=total_steps)
    warmup_steps = max(1, int(total_steps * ONE_CYCLE_WARMUP_FRACTION))
    return keras.optimizers.schedules.CosineDecay(
        peak / ONE_CYCLE_START_DIVISOR,
        decay_steps=max(1, total_steps - warmup_steps),
        warmup_target=peak,
        warmup_steps=warmup_steps,
    )


def make(config: Config, total_steps: int) -> keras.optimizers.Optimizer:
    """The optimizer `config.optimizer` names, driven by its learning-rate schedule.

    With `--dtype=float16` it is wrapped in dynamic loss scaling: float16 gradients underflow to zero without it
    (bfloat16 has float32's range and needs none).
    """
    optimizer = _optimizer(config.optimizer, learning_rate(config, total_steps), config.momentum)
    return keras.optimizers.LossScaleOptimizer(optimizer) if config.dtype == "float16" else optimizer


def _optimizer(name: str, lr: float | keras.optimizers.schedules.LearningRateSchedule, momentum: float):
    if name == "sgd":
        return keras.optimizers.SGD(lr)
    if name in ("momentum", "nesterov"):
        return keras.optimizers.SGD(lr, momentum=momentum, nesterov=name == "nesterov")
    if name == "adam":
        return keras.optimizers.Adam(lr)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(lr)
    return keras.optimizers.Adagrad(lr)
