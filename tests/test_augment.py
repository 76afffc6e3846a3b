"""--augment (mnist_tf/data/augment.py): seeded by (seed, step), shape- and label-preserving distortions, the same
under any number of replicas, and what TensorBoard's `inputs` image shows."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from conftest import blank_split

from mnist_tf.data.augment import DISTORTIONS, Distortion, _window_max, augment
from mnist_tf.nn import losses

RNG = np.random.default_rng(0)
IMAGES = tf.constant(RNG.random((16, 28, 28, 1), dtype=np.float32))


def dot(row: float, col: float) -> tf.Tensor:
    """A 3x3 bright square centered at (row, col) on black: [1, 28, 28, 1]."""
    image = np.zeros((1, 28, 28, 1), np.float32)
    image[0, int(row) - 1 : int(row) + 2, int(col) - 1 : int(col) + 2] = 1.0
    return tf.constant(image)


def center_of_mass(images: tf.Tensor) -> np.ndarray:
    images = images.numpy()[..., 0]
    rows, cols = np.mgrid[: images.shape[1], : images.shape[2]]
    mass = images.sum(axis=(1, 2))
    return np.stack([(images * rows).sum(axis=(1, 2)) / mass, (images * cols).sum(axis=(1, 2)) / mass], -1)


@pytest.mark.parametrize("portable", [True, False])
def test_objects_are_mirrored_left_to_right_half_the_time_and_otherwise_left_alone(portable):
    images = tf.constant(RNG.random((400, 28, 28, 1), dtype=np.float32))
    out = augment(images, 3, tf.constant(5), DISTORTIONS["objects"], portable=portable).numpy()
    mirrored = np.array([np.allclose(o, i[:, ::-1], atol=1e-6) for o, i in zip(out, images.numpy(), strict=True)])
    kept = np.array([np.allclose(o, i, atol=1e-6) for o, i in zip(out, images.numpy(), strict=True)])
    assert (mirrored | kept).all() and 0.4 < mirrored.mean() < 0.6


def test_strength_zero_is_the_identity():
    np.testing.assert_array_equal(augment(IMAGES, 1, tf.constant(3), Distortion().scaled(0.0)), IMAGES)


def test_the_image_kernel_and_the_portable_ops_distort_alike():
    step = tf.constant(7)
    portable = tf.function(lambda images: augment(images, 1, step, Distortion(), portable=True))
    kernel = tf.function(lambda images: augment(images, 1, step, Distortion(), portable=False))
    np.testing.assert_allclose(kernel(IMAGES), portable(IMAGES), atol=1e-5)
    jit = tf.function(lambda images: augment(images, 1, step, Distortion(), portable=True), jit_compile=True)
    assert jit(IMAGES).shape == IMAGES.shape  # XLA compiles it (its random numbers may differ from the CPU kernel's)


def test_the_seed_and_the_step_decide_every_distortion():
    first = augment(IMAGES, 1, tf.constant(3), Distortion())
    np.testing.assert_array_equal(first, augment(IMAGES, 1, tf.constant(3), Distortion()))
    assert not np.allclose(first, augment(IMAGES, 1, tf.constant(4), Distortion()))
    assert not np.allclose(first, augment(IMAGES, 2, tf.constant(3), Distortion()))
    assert not np.allclose(first[0], first[1])  # each image its own draw


def test_shape_dtype_and_range_are_kept():
    distorted = augment(IMAGES, 1, tf.constant(0), Distortion().scaled(2.0))
    assert distorted.shape == IMAGES.shape and distorted.dtype == tf.float32
    assert float(tf.reduce_min(distorted)) >= 0 and float(tf.reduce_max(distorted)) <= 1 + 1e-6


@pytest.mark.parametrize("step", range(8))
def test_a_digit_stays_whole_and_near_where_it_was(step):
    """Label-preserving geometry: the center stays within the shift, and an off-center dot moves no further than
    its distance from the center allows at the largest rotation, shear and scale."""
    distortion = Distortion(stroke_change=0.0)  # geometry only: a thinner pen may erase a dot
    center = dot(13.5, 13.5)
    moved = augment(center, 5, tf.constant(step), distortion)
    assert np.abs(center_of_mass(moved) - 13.5).max() <= distortion.shift_pixels + 0.5
    off_center = dot(7, 20)
    moved = augment(off_center, 5, tf.constant(step), distortion)
    radius = np.hypot(7 - 13.5, 20 - 13.5)
    worst = radius * (np.radians(distortion.rotation_degrees + distortion.shear_degrees) + distortion.scale)
    assert np.hypot(*(center_of_mass(moved) - center_of_mass(off_center))[0]) <= worst + 2 * distortion.shift_pixels
    assert float(tf.reduce_sum(moved)) == pytest.approx(9.0, rel=0.25)  # the ink stays in the image


def test_a_share_of_strokes_gets_a_pixel_thicker_and_as_many_a_pixel_thinner():
    bar = np.zeros((1, 28, 28, 1), np.float32)
    bar[0, 4:24, 12:15] = 1.0  # a stroke 3 pixels wide
    still = Distortion(rotation_degrees=0.0, scale=0.0, shear_degrees=0.0, shift_pixels=0.0, stroke_change=0.4)
    ink = tf.reduce_sum(augment(np.repeat(bar, 2000, axis=0), 3, tf.constant(0), still), axis=[1, 2, 3]).numpy()
    thicker, thinner, same = np.mean(ink > 60.5), np.mean(ink < 59.5), np.mean(np.abs(ink - 60) < 0.5)
    assert thicker == pytest.approx(0.2, abs=0.03) and thinner == pytest.approx(0.2, abs=0.03)
    assert same == pytest.approx(0.6, abs=0.03)
    assert set(np.round(ink).astype(int)) == {38, 60, 84}  # 2 wide and 19 tall, or 4 wide and 21 tall


def test_stroke_widths_come_from_the_same_maxima_as_max_pooling():
    images = tf.random.stateless_uniform([3, 9, 7, 1], seed=[1, 2], minval=-1.0)
    for sign in (1.0, -1.0):  # dilation, and erosion as the maximum of the negated image
        expected = tf.nn.max_pool2d(sign * images, 2, 1, "SAME")
        np.testing.assert_array_equal(_window_max(sign * images).numpy(), expected.numpy())


def test_two_replicas_distort_the_global_batch_as_one_replica_does(two_replicas):
    strategy = two_replicas
    batches = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensors(IMAGES))

    @tf.function
    def distort(images):
        return strategy.gather(strategy.run(augment, args=(images, 1, tf.constant(9), Distortion())), axis=0)

    one_replica = tf.function(lambda images: augment(images, 1, tf.constant(9), Distortion()))
    # The same distortion; its transforms' matrix products may round differently for half a batch on some CPUs.
    np.testing.assert_allclose(distort(next(iter(batches))), one_replica(IMAGES), rtol=0, atol=1e-5)


def test_label_smoothing_equals_keras():
    logits = tf.constant(RNG.normal(size=(6, 10)).astype(np.float32))
    labels = tf.constant(RNG.integers(0, 10, 6))
    ours = losses.label_smoothed_cross_entropy(0.1)(labels, logits)
    theirs = tf.keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1, reduction=None)(
        tf.one_hot(labels, 10), logits
    )
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_tensorboard_inputs_show_the_first_batch_as_distorted_for_the_step():
    from mnist_tf import distribute
    from mnist_tf.config import Config
    from mnist_tf.training.trainer import Trainer

    strategy = distribute.make_strategy("default")
    for augmented in (False, True):
        config = Config(
            model="mlp", hidden_units=(8,), augment=augmented, augment_strength=0.5, dtype="float32", not_digits=0.0
        )
        trainer = Trainer.from_config(config.resolve(), strategy, blank_split(), total_steps=10)
        shown = trainer.inputs_as_trained(IMAGES, 4)
        distortion = Distortion().scaled(0.5)
        trained_on = augment(IMAGES, config.seed, tf.constant(4), distortion, portable=False) if augmented else IMAGES
        np.testing.assert_array_equal(shown, trained_on)
