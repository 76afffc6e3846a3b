"""Calibration and "not a digit": the temperature, the threshold, the scores, the metrics, and what the exports say."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import make_digits

from mnist_tf.export import saved_model
from mnist_tf.not_a_digit import decision
from mnist_tf.not_a_digit.decision import Decision
from mnist_tf.reporting import evaluation


def overconfident(count: int = 4000, temperature: float = 3.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose labels are drawn from softmax(logits / temperature): calibrated only at that temperature."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2.0, (count, 10)) * temperature
    honest = decision.softmax(logits / temperature)
    labels = np.array([rng.choice(10, p=p) for p in honest])
    return logits, labels


def test_temperature_scaling_finds_the_temperature_and_lowers_the_calibration_error():
    logits, labels = overconfident()
    fitted = decision.fit_temperature(logits, labels)
    assert fitted == pytest.approx(3.0, rel=0.08)
    before = evaluation.calibration_error(decision.softmax(logits), labels)
    after = evaluation.calibration_error(decision.softmax(logits / fitted), labels)
    assert before > 0.1 and after < 0.03


def test_the_threshold_accepts_the_share_asked_of_the_fitting_digits():
    logits, labels = overconfident(seed=1)
    chosen = decision.fit(logits, labels, 0.9, "generated")
    scores = decision.digit_scores(logits, chosen.temperature)
    assert np.mean(scores >= chosen.threshold) == pytest.approx(0.9, abs=0.002) == chosen.acceptance
    assert decision.fit(logits, labels, 1.0, "generated").threshold == -math.inf
    saturated = decision.fit(np.eye(10)[labels] * 200, labels, 0.99, "generated")
    assert saturated.threshold == decision.MAX_THRESHOLD  # what an int8 file can still reach


def test_the_digit_score_is_the_log_odds_of_the_top_probability_without_saturating():
    logits = np.array([[2.0, 1.0, 0.0], [50.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    top = decision.softmax(logits).max(axis=1)[[0, 2]]
    np.testing.assert_allclose(decision.digit_scores(logits)[[0, 2]], np.log(top / (1 - top)))
    assert decision.digit_scores(logits)[1] == pytest.approx(50.0 - np.log(2.0))  # p rounds to 1 in float64 too
    from_probabilities = Decision().scores(decision.softmax(logits))  # as LiteRT's outputs allow
    np.testing.assert_allclose(from_probabilities[[0, 2]], decision.digit_scores(logits)[[0, 2]])
    graph = decision.outputs(tf.constant(logits, tf.float32), Decision(temperature=2.0, threshold=0.5))
    np.testing.assert_allclose(graph["digit_score"].numpy(), decision.digit_scores(logits, 2.0), rtol=1e-5)
    np.testing.assert_array_equal(graph["is_digit"].numpy(), decision.digit_scores(logits, 2.0) >= 0.5)
    np.testing.assert_allclose(graph["probabilities"].numpy(), decision.softmax(logits / 2.0), rtol=1e-5)


def test_a_model_that_learned_the_digit_odds_has_a_not_a_digit_logit_of_0():
    logits = np.array([[6.0, 1.0, 0.0], [-3.0, -4.0, -5.0], [30.0, 0.0, 1.0], [8.0, 8.0, -9.0]])
    chosen = Decision(temperature=2.0, threshold=0.5, score="digit_and_top_class")
    graph = decision.outputs(tf.constant(logits, tf.float32), chosen)
    # P(digit) from the logits' log-sum-exp as trained; the temperature calibrates the class given a digit alone.
    digit = 1 / (1 + np.exp(-np.log(np.exp(logits).sum(axis=1))))
    expected = decision.softmax(logits / 2.0) * digit[:, None]
    np.testing.assert_allclose(graph["probabilities"].numpy(), expected, rtol=1e-5)
    top = expected.max(axis=1)  # a digit, and the top class
    scores = decision.digit_scores(logits, 2.0, chosen.score)
    np.testing.assert_allclose(scores[:2], np.log(top / (1 - top))[:2])
    np.testing.assert_allclose(graph["digit_score"].numpy(), scores, rtol=1e-5, atol=1e-6)
    # A digit it cannot read (the last: surely a digit, but which of two?) is refused as a drawing is.
    np.testing.assert_array_equal(graph["is_digit"].numpy(), [True, False, True, False])
    np.testing.assert_array_equal(graph["classes"].numpy(), [0, 0, 0, 0])  # the class, given a digit, as before
    np.testing.assert_array_equal(chosen.accepts(graph["probabilities"].numpy()), graph["is_digit"].numpy())
    logits_again = decision.logits_of(graph["probabilities"].numpy(), chosen)  # as evaluate.py reads an export
    np.testing.assert_allclose(logits_again[:2], logits[:2], atol=1e-4)
    labels = np.arange(3000) % 3
    shifted = np.eye(3)[labels] * 4 + np.linspace(-8, -2, 3000)[:, None]  # the odds of a digit, from low to high
    fitted = decision.fit(shifted, labels, 0.9, "made", chosen.score)
    assert fitted.score == chosen.score and fitted.acceptance == pytest.approx(0.9, abs=0.001)


def test_a_decision_survives_json_accept_all_included():
    fitted = Decision(1.3, 2.0, 0.99, "validation split (5,000 images)", "digit_and_top_class")
    for chosen in (fitted, decision.ACCEPT_ALL):
        assert Decision.from_dict(json.loads(json.dumps(chosen.to_dict()))) == chosen
    assert decision.ACCEPT_ALL.to_dict()["threshold"] is None
    assert Decision(threshold=0.0).threshold_probability == 0.5


def test_auroc_and_false_positives_by_hand():
    accepted, refused = np.array([3.0, 4.0, 5.0, 6.0]), np.array([1.0, 2.0, 3.0, 7.0])
    # 16 pairs: accepted above refused in 11, one tie (3 and 3) counts a half.
    assert evaluation.auroc(accepted, refused) == pytest.approx(11.5 / 16)
    assert evaluation.false_positive_rate(accepted, refused, acceptance=0.75) == 0.25  # threshold 4: only 7 passes
    assert evaluation.false_positive_rate(accepted, refused, acceptance=1.0) == 0.5  # threshold 3: 3 and 7


def test_the_reliability_table_and_its_diagram():
    probabilities = np.array([[0.95, 0.05], [0.95, 0.05], [0.55, 0.45], [0.55, 0.45]])
    labels = np.array([0, 1, 0, 0])
    table = evaluation.reliability(probabilities, labels, bins=10)
    assert table["counts"][9] == 2 and table["accuracy"][9] == 0.5 and table["counts"][5] == 2
    assert table["confidence"][0] is None
    assert evaluation.calibration_error(probabilities, labels, bins=10) == pytest.approx((2 * 0.45 + 2 * 0.45) / 4)
    from mnist_tf.reporting import figures

    picture = figures.reliability_diagram(table)
    assert picture.ndim == 3 and picture.shape[2] == 3 and picture.min() < 100  # drawn, not blank


def test_both_signatures_answer_with_the_decision_of_the_metadata(exported_run):
    version = Path(exported_run["export_dir"])
    metadata = json.loads((version / "assets.extra" / saved_model.METADATA_FILE).read_text())
    chosen = Decision.from_dict(metadata["decision"])
    assert chosen == Decision.from_dict(exported_run["decision"]) and chosen.fitted_on.startswith("validation")
    signatures = tf.saved_model.load(str(version)).signatures
    images, _ = make_digits(20, seed=9)
    served = signatures[saved_model.SERVING_DEFAULT](images=tf.constant(images))
    assert set(served) == {"probabilities", "classes", "class_names", "digit_score", "is_digit"}
    np.testing.assert_array_equal(served["is_digit"].numpy(), served["digit_score"].numpy() >= chosen.threshold)
    scores = chosen.scores(served["probabilities"].numpy())
    unsaturated = served["probabilities"].numpy().max(axis=1) < 0.999
    np.testing.assert_allclose(scores[unsaturated], served["digit_score"].numpy()[unsaturated], atol=2e-3)
    encoded = tf.constant([tf.io.encode_png(image[..., np.newaxis]).numpy() for image in images[:3]])
    from_bytes = signatures[saved_model.IMAGE_BYTES](image_bytes=encoded)
    assert {"digit_score", "is_digit", "preprocessed"} <= set(from_bytes)
    confidence = exported_run["test_confidence"]
    assert 0 <= confidence["calibration_error"] <= 1 and 0 <= confidence["accepted"] <= 1
