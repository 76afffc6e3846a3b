"""The not-digit images of outlier exposure: drawn from the seed alone, of every kind, and drawn per step exactly as
augmentation is (a run with them repeats and resumes exactly)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
from conftest import REAL_MNIST, make_digits, mnist_mlp_config, quiet_run, requires_real_mnist

from mnist_tf.data import idx, preprocess
from mnist_tf.data.augment import Distortion
from mnist_tf.data.sources import Split
from mnist_tf.nn import losses
from mnist_tf.not_a_digit import not_digits, ood

DIGITS = make_digits(50, seed=3)[0][..., np.newaxis]


def test_the_bank_is_a_function_of_its_seed_with_every_kind_in_its_share():
    bank = not_digits.training_bank(7, DIGITS, count=230)
    assert bank.shape == (230, 28, 28, 1) and bank.dtype == np.uint8
    np.testing.assert_array_equal(bank, not_digits.training_bank(7, DIGITS, count=230))
    assert not np.array_equal(bank, not_digits.training_bank(8, DIGITS, count=230))
    shares = list(not_digits.kinds(not_digits.FONTS_DIR, DIGITS).values())
    assert len(shares) == 11 and sum(shares) == 11.5  # 20 images per share of 1
    kinds = np.split(bank.reshape(230, -1), np.cumsum([round(20 * share) for share in shares])[:-1])
    assert all(kind.max() > 0 for kind in kinds)  # each kind draws something (noise's empty images aside)
    assert 0 < np.mean(kinds[5].max(axis=1) == 0) < 1  # noise: some empty images, not all
    assert [len(kind) for kind in kinds[-4:]] == [30, 30, 30, 30]  # doodles, operators, letters, outlines


def test_things_are_drawn_at_any_aspect_ratio_inside_the_canvas():
    square = np.array([(8.0, 8.0), (56.0, 8.0), (56.0, 56.0), (8.0, 56.0), (8.0, 8.0)])
    rng = np.random.default_rng(0)
    drawn = [not_digits._any_aspect(rng, [square], [square[0]]) for _ in range(200)]
    sizes = np.array([np.ptp(strokes[0], axis=0) for strokes, _ in drawn])
    assert np.all(sizes.max(axis=1) == 48) and sizes.min() >= 0.45 * 48  # one axis squeezed, to 45% at most
    ratios = sizes[:, 1] / sizes[:, 0]
    assert ratios.max() > 1.8 and ratios.min() < 1 / 1.8  # tall and narrow, and wide
    assert all(np.array_equal(dots[0], strokes[0][0]) for strokes, dots in drawn)  # dots squeezed with the strokes
    assert all(strokes[0].min() >= 0 and strokes[0].max() <= 64 for strokes, _ in drawn)


def test_handwritten_letters_are_never_those_people_also_write_as_digits():
    assert not set(not_digits.LETTER_STROKES) & set(not_digits.AMBIGUOUS)
    letters = preprocess.to_mnist_each(not_digits.letters(np.random.default_rng(0), 8))
    assert letters.shape == (8, 28, 28, 1) and all(letter.max() > 128 for letter in letters)  # each drawn


def test_characters_people_write_as_digits_are_never_taught_as_not_digits():
    assert not set(not_digits.AMBIGUOUS) & set(not_digits.CHARACTERS)
    assert {"O", "l", "I", "Z", "S", "b", "g", "q"} <= set(not_digits.AMBIGUOUS)


def test_glyphs_without_fonts_use_pillows_own(tmp_path):
    assert not_digits.font_files(str(tmp_path)) == []
    glyphs = preprocess.to_mnist_each(not_digits.glyphs(np.random.default_rng(0), 4, []))
    assert glyphs.shape == (4, 28, 28, 1) and all(glyph.max() >= 250 for glyph in glyphs)  # drawn, full contrast


def test_training_fonts_never_include_the_held_out_family():
    training, held_out = not_digits.font_files(), not_digits.font_files(held_out=True)
    assert not set(training) & set(held_out)
    assert all(path.name.startswith(not_digits.HELD_OUT_FAMILY) for path in held_out)


def test_the_bank_fits_images_of_other_sizes():
    eight = make_digits(20, seed=1)[0][:, ::4, ::4, np.newaxis][:, :7, :7]
    bank = not_digits.training_bank(0, np.pad(eight, ((0, 0), (0, 1), (0, 1), (0, 0))), size=8, count=14)
    assert bank.shape == (14, 8, 8, 1)


def test_the_draw_of_a_step_depends_on_seed_and_step_only_and_splits_over_replicas(two_replicas):
    bank = tf.constant(not_digits.training_bank(1, DIGITS, count=70))
    settings = {"seed": 1, "distortion": Distortion(), "portable": True}

    def draw(count: int, step: int) -> np.ndarray:
        return not_digits.draw(bank, count, step=tf.constant(step), **settings).numpy()

    np.testing.assert_array_equal(draw(8, 3), draw(8, 3))
    assert not np.array_equal(draw(8, 3), draw(8, 4))
    strategy = two_replicas

    @tf.function
    def on_two() -> tf.Tensor:
        per_replica = strategy.run(lambda: not_digits.draw(bank, 4, step=tf.constant(3), **settings))
        return strategy.gather(per_replica, axis=0)

    np.testing.assert_allclose(on_two().numpy(), draw(8, 3), atol=1e-5)


def test_the_flat_answer_costs_least_and_a_confident_one_more():
    flat = losses.cross_entropy_to_uniform(tf.zeros([1, 10])).numpy()
    confident = losses.cross_entropy_to_uniform(tf.constant([[9.0] + [0.0] * 9])).numpy()
    assert flat[0] == np.float32(np.log(10))
    assert abs(confident[0] - (np.log(np.exp(9.0) + 9) - 0.9)) < 1e-5  # logsumexp - mean


def test_the_digit_odds_are_the_binary_cross_entropy_of_the_logits_logsumexp():
    outputs = np.array([[3.0, 0.0], [0.0, -2.0], [-1.0, -3.0], [-4.0, -4.0], [1.0, 1.0]], np.float32)  # 3 digits
    odds = np.log(np.exp(outputs).sum(axis=1))
    digit = np.array([1.0, 1.0, 1.0, 0.0, 0.0])
    by_hand = np.mean(-digit * np.log(1 / (1 + np.exp(-odds))) - (1 - digit) * np.log(1 / (1 + np.exp(odds))))
    term = not_digits.digit_odds(2.0, global_count=5)(None, tf.constant(outputs), tf.zeros([3], tf.int64))
    assert float(term) == pytest.approx(2.0 * by_hand, rel=1e-5)


@pytest.mark.slow  # trains for real
def test_a_run_with_not_digits_resumes_to_the_same_weights(tiny_config, tmp_path):
    config = dataclasses.replace(tiny_config, not_digits=0.2, lr_schedule="constant", export_dir=None)
    straight = dataclasses.replace(config, model_dir=str(tmp_path / "straight"))
    results, _ = quiet_run(straight)
    quiet_run(dataclasses.replace(config, epochs=1))
    resumed, _ = quiet_run(config)
    assert resumed["resumed_from_step"] == 20  # 1,000 images in batches of 50: one epoch
    assert resumed["weights_sha256"] == results["weights_sha256"]
    assert results["decision"]["score"] == "digit_and_top_class"  # it learned the odds of a digit
    no_odds, _ = quiet_run(dataclasses.replace(straight, digit_odds_weight=0.0), fresh=True)
    assert no_odds["weights_sha256"] != results["weights_sha256"] and no_odds["decision"]["score"] == "top_class"
    without, _ = quiet_run(dataclasses.replace(straight, not_digits=0.0), fresh=True)
    assert without["weights_sha256"] != results["weights_sha256"]  # they were trained on


@pytest.mark.slow
@requires_real_mnist
def test_on_real_mnist_they_teach_the_model_to_refuse_what_it_never_saw(mnist_saved_model, tmp_path):
    """The one-epoch MLP of `mnist_saved_model` (no augmentation, no validation split) against the same run
    without them: held-out-font letters and noise are refused far more often, and as many test digits accepted."""
    without = dataclasses.replace(mnist_mlp_config(tmp_path), not_digits=0.0, litert=False)
    baseline, _ = quiet_run(without)
    images, labels = idx.load_split(REAL_MNIST, "test")
    test = Split(images[..., np.newaxis], labels)
    accepted = {}
    for name, export in (("with", mnist_saved_model), ("without", baseline["export_dir"])):
        serve = tf.saved_model.load(export).signatures["serving_default"]
        accepted[name] = {
            kind: float(np.mean(serve(images=tf.constant(ood.load(kind, test).images))["is_digit"].numpy()))
            for kind in ("fonts", "noise")
        }
        accepted[name]["mnist"] = float(np.mean(serve(images=tf.constant(test.images))["is_digit"].numpy()))
    # Measured: letters 62% against 98%, noise 12.4% against 27%. With the top class's odds alone (before
    # --digit_odds_weight), 74% and 10%; before the bank shared itself with doodles and operators and the digits
    # with their captures (issue 41), 53% and 5%: one epoch of an MLP teaches less of each kind now, and of the odds
    # of a digit (the default LeNet: docs/not_a_digit.md).
    assert accepted["with"]["fonts"] <= 0.85 * accepted["without"]["fonts"], accepted
    assert accepted["with"]["noise"] <= 0.15 and accepted["with"]["noise"] <= accepted["without"]["noise"] / 2, accepted
    assert accepted["with"]["mnist"] >= 0.97, accepted
