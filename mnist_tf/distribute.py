"""Distribution strategies and device-dependent choices (XLA)."""

from __future__ import annotations

import tensorflow as tf


def make_strategy(name: str) -> tf.distribute.Strategy:
    """default: no distribution; one_device: pin to the first GPU (else the CPU); mirrored: all local GPUs."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if tf.config.list_logical_devices("GPU") else "/cpu:0")
    return tf.distribute.MirroredStrategy()


def use_jit(setting: str) -> bool:
    """XLA for the forward/backward step: on for GPUs/TPUs; off on CPU, where XLA convolutions were measured
    about 10x slower than TensorFlow's own (oneDNN) kernels for LeNet."""
    if setting != "auto":
        return setting == "on"
    return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


def describe(strategy: tf.distribute.Strategy) -> str:
    names = {
        tf.distribute.OneDeviceStrategy: "one_device",
        tf.distribute.MirroredStrategy: "mirrored",
    }
    name = next((n for cls, n in names.items() if isinstance(strategy, cls)), "default")
    return f"{name} ({strategy.num_replicas_in_sync} replica{'s' if strategy.num_replicas_in_sync > 1 else ''})"
