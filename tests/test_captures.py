"""Training digits as people capture them (mnist_tf/data/captures.py), and the sets of people's images that
`evaluate.py --ood` measures with other code (mnist_tf/not_a_digit/people.py)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from conftest import make_digits
from PIL import Image, ImageDraw

from mnist_tf.config import Config
from mnist_tf.data import captures, preprocess, rendered
from mnist_tf.data.sources import Split, Splits
from mnist_tf.data.strokes import smooth
from mnist_tf.not_a_digit import ood
from mnist_tf.plan import prepare

DIGITS, LABELS = make_digits(40, seed=5)
DIGITS = DIGITS[..., np.newaxis]


def test_captures_are_a_function_of_the_seed_and_keep_their_labels():
    images, labels = captures.captured(DIGITS, LABELS, 12, seed=3)
    again, _ = captures.captured(DIGITS, LABELS, 12, seed=3)
    other, _ = captures.captured(DIGITS, LABELS, 12, seed=4)
    assert images.shape == (12, 28, 28, 1) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, again)
    assert not np.array_equal(images, other)
    assert np.all(np.bincount(labels, minlength=10) <= np.bincount(LABELS, minlength=10))  # 12 of the 40, no repeat


def stroke_digits() -> np.ndarray:
    """The ten digits drawn as pen strokes (data/rendered.py's paths), MNIST-style: uint8 [10, 28, 28, 1]."""
    images = []
    for paths in rendered.STROKES.values():
        image = Image.new("L", (28, 28))
        for path in paths:
            points = [(4 + 12 * x + 4, 4 + 20 * y) for x, y in smooth(np.array(path))]
            ImageDraw.Draw(image).line(points, fill=255, width=2, joint="curve")
        images.append(np.asarray(image))
    return np.stack(images)[..., np.newaxis]


def test_a_capture_reads_as_its_digit_once_preprocessed():
    """Paper, light, framing and camera change the pixels, not the digit: each capture, preprocessed, is closer to
    its own digit than to the nine others, most of the time even by pixels alone (a marker, a slant, a tight crop
    move pixels a model reads through)."""
    digits = stroke_digits()
    images, labels = captures.captured(np.repeat(digits, 4, axis=0), np.repeat(np.arange(10), 4), 40, seed=1)
    clean = np.stack([preprocess.to_mnist(tf.constant(d[..., 0] / np.float32(255))).numpy() for d in digits])
    distances = np.abs(clean[np.newaxis].astype(float) - images[:, np.newaxis, ..., 0]).mean(axis=(2, 3))  # [40, 10]
    assert np.mean(np.argmin(distances, axis=1) == labels) >= 0.6  # by pixels alone; measured 0.675, chance 0.1


def test_a_run_adds_its_share_of_captures_to_the_training_split_alone(idx_dir):
    plan = prepare(Config(model="mlp", data_dir=str(idx_dir), validation_size=200), note=print, new_run=False)
    assert plan.config.captures == 0.075  # MNIST's default
    assert (len(plan.splits.train), len(plan.splits.validation)) == (1000 + 75, 200)
    off = prepare(Config(model="mlp", data_dir=str(idx_dir), validation_size=200, captures=0), new_run=False)
    assert len(off.splits.train) == 1000
    np.testing.assert_array_equal(plan.splits.train.images[:1000], off.splits.train.images)
    assert Config(dataset="fashion_mnist").resolve().captures == 0  # not digits: nothing to capture


def test_added_keeps_validation_and_test_as_they_are():
    split = Split(DIGITS, LABELS)
    splits = captures.added(Splits(split, split, split, "test"), 0.25, seed=0)
    assert len(splits.train) == 50 and splits.validation is split and splits.test is split


def test_the_sets_of_peoples_images_are_fixed_and_labelled_where_they_are_digits(monkeypatch):
    monkeypatch.setattr(ood, "SIZE", 20)
    test = Split(DIGITS, LABELS)
    for name in ("scans", "photos", "drawn", "doodles", "symbols", "letters", "lookalikes"):
        one, two = ood.load(name, test), ood.load(name, test)
        assert one.images.shape[1:] == (28, 28, 1) and len(one.images) in (10, 20)
        np.testing.assert_array_equal(one.images, two.images)
        assert one.digits == (name in ("scans", "photos", "drawn"))
    drawn = ood.load("drawn", test)
    assert set(drawn.labels) == set(range(10))


def test_the_8x8_digits_are_stretched_into_mnists_box_with_their_labels():
    small = ood.load("digits8x8", Split(DIGITS, LABELS))
    assert small.images.shape == (1797, 28, 28, 1) and small.digits and set(small.labels) == set(range(10))
    assert small.images[:, :4].max() == 0 and small.images[:, 24:].max() == 0  # in rows and columns 4 to 23
    assert small.images[:, :, 4:24].max() == 255
