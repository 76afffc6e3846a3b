"""The model and the optimizer a resolved `Config` asks for: the one place `nn` meets the configuration."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from mnist_tf import distribute
from mnist_tf.config import Config
from mnist_tf.data.sources import NUM_CLASSES
from mnist_tf.nn import models, optimizers


def model(config: Config, image_shape: Sequence[int], classes: int = NUM_CLASSES) -> keras.Model:
    """The registered architecture `config.model` with `classes` logits, computing in `config.dtype`; call under
    the strategy's scope (whose devices decide `--dtype=auto`)."""
    policy = distribute.dtype_policy(compute_dtype(config))
    layers = models.Layers(config.layers, seed=config.seed, dtype=policy)
    settings = {name: getattr(config, name) for name in models.settings(config.model)}
    return models.MODELS[config.model](layers, tuple(image_shape), classes, **settings)


def optimizer(config: Config, total_steps: int) -> keras.optimizers.Optimizer:
    """`config.optimizer`, driven by `config.lr_schedule` over `total_steps`; loss-scaled under float16."""
    learning_rate = optimizers.learning_rate(config.lr_schedule, config.learning_rate, total_steps)
    return optimizers.make(
        config.optimizer,
        learning_rate,
        config.momentum,
        config.beta_2,
        loss_scaling=compute_dtype(config) == "float16",
    )


def compute_dtype(config: Config) -> str:
    """`config.dtype`, with "auto" decided for the strategy in scope."""
    return distribute.choose_dtype(config.dtype, tf.distribute.get_strategy()).dtype


def model_and_optimizer(
    config: Config,
    strategy: tf.distribute.Strategy,
    image_shape: Sequence[int],
    total_steps: int,
    classes: int = NUM_CLASSES,
) -> tuple[keras.Model, keras.optimizers.Optimizer]:
    """Both, made under `strategy`'s scope so that their variables are distributed."""
    with strategy.scope():
        return model(config, image_shape, classes), optimizer(config, total_steps)
