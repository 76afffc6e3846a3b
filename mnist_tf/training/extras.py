"""What the product adds to the training step, in one place: to the batch before the model sees it, and to the loss.

The step (`trainer.Trainer.loss_and_gradients`) is the method: forward, the global batch's loss, gradients. A run
adds to it through two seams, built here from its `Config`:

  inputs       the batch as the model trains on it: the digits distorted (`--augment`, data/augment.py), then this
               replica's not-digit images after them (`--not_digits`, not_a_digit/not_digits.py)
  loss         each digit's loss: `--loss`, or cross-entropy against label-smoothed targets (`--label_smoothing`)
  loss terms   added to the global batch's loss, by name: outlier exposure (a flat answer to the not-digit images,
               `--not_digit_weight`), the digit odds (the logits' log-sum-exp taught to say whether an image is a
               digit at all, `--digit_odds_weight`), distillation (with --init_from, a pull toward the starting
               model's answers, `--distillation`) and weight decay (`--weight_decay`; with --init_from toward the
               starting weights: L2-SP)
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping

import keras
import numpy as np
import tensorflow as tf

from mnist_tf import distribute
from mnist_tf.config import Config
from mnist_tf.data import augment
from mnist_tf.data.sources import Split
from mnist_tf.nn import losses
from mnist_tf.not_a_digit import decision, not_digits
from mnist_tf.training import build

Inputs = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]  # (this replica's digits, step) -> the images it trains on
PerExampleLoss = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]  # (labels, logits) -> each example's loss
LossTerm = Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor]  # (images, their outputs, labels) -> added to loss
Distort = Callable[..., tf.Tensor]  # (images, step=) -> distorted images: `augment.augment` with the run's settings
Draw = Callable[..., tf.Tensor]  # (step=) -> this replica's not-digit images: `not_digits.draw` from the run's bank


@dataclasses.dataclass(frozen=True)
class Extras:
    """The seams of one run; `Extras()` adds nothing: the plain method."""

    inputs: Inputs | None = None
    loss: PerExampleLoss = losses.cross_entropy
    terms: dict[str, LossTerm] = dataclasses.field(default_factory=dict)  # added in this order
    augment: Distort | None = None  # the digits' distortion alone: what TensorBoard shows of a batch

    @classmethod
    def from_config(
        cls,
        config: Config,
        strategy: tf.distribute.Strategy,
        train: Split,
        model: keras.Model,
        start: Mapping[str, np.ndarray] | None = None,
    ) -> Extras:
        """What a resolved `config` adds to the training of `model` on `train` under `strategy`; `start` is the
        weights a fine-tuning run starts from ({layer path: value}), which its weight decay pulls toward."""
        distortion = augment.DISTORTIONS[config.augmentation].scaled(config.augment_strength)
        portable = distribute.use_jit(config.jit_compile) or config.strategy == "tpu"  # XLA: no image kernels there
        distort = functools.partial(augment.augment, seed=config.seed, distortion=distortion, portable=portable)
        distort = distort if config.augment else None
        draw = None
        terms: dict[str, LossTerm] = {}
        # As many on every replica: a share of its batch, at least one when --not_digits is on.
        replicas = strategy.num_replicas_in_sync
        per_replica = max(1, round(config.not_digits * config.batch_size / replicas)) if config.not_digits else 0
        global_count = config.batch_size + per_replica * replicas  # every image of a global batch
        if per_replica:
            bank = tf.constant(not_digits.training_bank(config.seed, train.images, train.images.shape[1]))
            draw = functools.partial(
                not_digits.draw, bank, per_replica, seed=config.seed, distortion=distortion, portable=portable
            )
            terms["outlier_exposure"] = not_digits.outlier_exposure(config.not_digit_weight, per_replica * replicas)
            if config.digit_score == "digit_and_top_class":  # the odds its exports will read: learned here
                terms["digit_odds"] = not_digits.digit_odds(config.digit_odds_weight, global_count)
        if config.distillation and start is not None:
            teacher = starting_model(config, strategy, model, start)
            terms["distillation"] = distillation(config.distillation, teacher, global_count)
        if config.weight_decay:
            terms["weight_decay"] = weight_decay(config.weight_decay, model, start)
        smoothed = config.label_smoothing and losses.label_smoothed_cross_entropy(config.label_smoothing)
        return cls(
            inputs=batch_inputs(distort, draw) if distort or draw else None,
            loss=smoothed or losses.LOSSES[config.loss],
            terms=terms,
            augment=distort,
        )


PLAIN = Extras()  # nothing added: the method alone


def batch_inputs(distort: Distort | None, draw: Draw | None) -> Inputs:
    """The digits distorted by `distort(images, step=)`, then the not-digit images `draw(step=)` after them."""

    def inputs(images: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
        # The name scopes say what an op was for in a profile (mnist_tf/benchmark/profile.py).
        if distort:
            with tf.name_scope("augment"):
                images = distort(images, step=step)
        if draw:
            with tf.name_scope("not_digits"):
                images = tf.concat([images, draw(step=step)], axis=0)
        return images

    return inputs


def starting_model(
    config: Config, strategy: tf.distribute.Strategy, model: keras.Model, start: Mapping[str, np.ndarray]
) -> keras.Model:
    """A copy of `model` holding the weights a fine-tuning run starts from (`start`, {layer path: value}): the
    teacher of `distillation`, never trained."""
    with strategy.scope():
        teacher = build.model(config, model.input_shape[1:], model.output_shape[-1])
    for variable in teacher.weights:
        if variable.path in start:
            variable.assign(start[variable.path])
    teacher.trainable = False
    return teacher


def distillation(weight: float, teacher: keras.Model, global_count: int) -> LossTerm:
    """A pull toward the starting model's (`teacher`'s) answers, Learning without Forgetting (Li and Hoiem 2016):
    the KL divergence from its 11-way softmax (the logits and not-a-digit's fixed 0: the class and the odds of a
    digit) to the model's, on the not-digit images and on the digits it reads right (the others are what the run
    was asked to change), averaged over the `global_count` images of a global batch, times `weight`."""

    def term(images: tf.Tensor, outputs: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        answers = tf.cast(teacher(images, training=False), tf.float32)
        kept = tf.nn.log_softmax(decision.with_not_a_digit(answers))
        divergence = tf.reduce_sum(tf.exp(kept) * (kept - tf.nn.log_softmax(decision.with_not_a_digit(outputs))), -1)
        digits = tf.shape(labels)[0]
        read_right = tf.equal(tf.argmax(answers[:digits], axis=-1), tf.cast(labels, tf.int64))
        kept_rows = tf.concat([tf.cast(read_right, tf.float32), tf.ones_like(divergence[digits:])], axis=0)
        return weight * tf.nn.compute_average_loss(divergence * kept_rows, global_batch_size=global_count)

    return term


def weight_decay(rate: float, model: keras.Model, start: Mapping[str, np.ndarray] | None = None) -> LossTerm:
    """L2 on the kernels (not the biases or normalization), counted once however many replicas add it; with `start`,
    on their distance from it (L2-SP, Li et al. 2018: fine-tuning moves the model only as far as its data needs).
    A kernel `start` lacks (a new head) decays toward zero."""
    kernels = [v for v in model.trainable_variables if len(v.shape) >= 2]
    start = start or {}
    anchors = [
        np.zeros(v.shape, np.float32) if start.get(v.path) is None or start[v.path].shape != tuple(v.shape)
        else start[v.path]
        for v in kernels
    ]  # fmt: skip

    def term(images: tf.Tensor, outputs: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        distances = [tf.nn.l2_loss(kernel - anchor) for kernel, anchor in zip(kernels, anchors, strict=True)]
        return tf.nn.scale_regularization_loss(rate * tf.add_n(distances))

    return term
