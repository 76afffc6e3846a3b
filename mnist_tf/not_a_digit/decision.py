"""What an exported model says beside its class: probabilities that mean what they say, and "not a digit".

Both are fitted on the validation split when a model is exported (never on test):
  temperature  the logits are divided by it before the softmax, chosen to minimize the validation digits'
               negative log-likelihood (temperature scaling, Guo et al. 2017): the classes stay, the confidence
               becomes honest
  threshold    of the digit score, so that `--digit_acceptance` of the validation digits reach it (at most
               MAX_THRESHOLD)

digit_score is the log-odds of the calibrated top probability p, log(p / (1 - p)), in nats: 0 is even odds, 2.2 is
p = 0.9, 4.6 is p = 0.99; it does not saturate at p = 1 in float32. What p is depends on the decision's `score`:
  digit_and_top_class  a model trained with --not_digits and --digit_odds_weight learned whether an image is a
                       digit at all: its logits are K of K+1 whose last, "not a digit", is 0 (the classifier of
                       Salimans et al.'s semi-supervised GAN, 2016), so their log-sum-exp is the log-odds of a digit
                       and softmax, blind to a shift of them all, still reads the class. Its probabilities are of
                       "a digit, and this class" (they sum to the probability of a digit), and p is that the image
                       is a digit and its top class is right: low for a drawing and for a digit it cannot read.
  top_class            the softmax of the logits, for a model that never learned the first (other data; exports
                       older than it): p is that the top class is right.
`is_digit` is digit_score >= threshold. LiteRT files return the calibrated probabilities only: the same decision is
max(probabilities) >= `threshold_probability` (`Decision.accepts`), whatever the score.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from mnist_tf.data.pipeline import normalize_images
from mnist_tf.data.sources import Splits
from mnist_tf.reporting import evaluation

# The highest threshold: logit(255/256), the top probability an int8 LiteRT file can output; above it, no file
# could ever accept an image that the SavedModel accepts.
MAX_THRESHOLD = math.log(255.0)
_NOT_THE_TOP = -1e4  # masks the top logit out of the rest's logsumexp (finite: LiteRT and int8 want no inf)
SMALLEST_PROBABILITY = 1e-30  # log(0) would be -inf: a probability this small is "never" all the same
SCORES = ("digit_and_top_class", "top_class")  # what the probabilities and digit_score are of (above)


@dataclasses.dataclass(frozen=True)
class Decision:
    """The calibration and the is_digit threshold of one exported model."""

    temperature: float = 1.0
    threshold: float = -math.inf  # of digit_score: -inf accepts everything
    acceptance: float = 1.0  # the share of the fitting digits that reach the threshold
    fitted_on: str = ""  # e.g. "validation split (5,000 images)"
    score: str = "top_class"  # of SCORES; exports older than digit_and_top_class have none: they are top_class

    @property
    def threshold_probability(self) -> float:
        """The threshold as a calibrated top probability: sigmoid(threshold)."""
        return 1.0 / (1.0 + math.exp(-self.threshold)) if math.isfinite(self.threshold) else 0.0

    @staticmethod
    def scores(probabilities: np.ndarray) -> np.ndarray:
        """digit_score from the exported probabilities alone, as LiteRT's outputs allow: the log-odds of their max
        (it saturates where that rounds to 1, far above any threshold)."""
        top = np.clip(probabilities.max(axis=-1).astype(np.float64), 1e-12, 1 - 1e-12)
        return np.log(top / (1.0 - top))

    def accepts(self, probabilities: np.ndarray) -> np.ndarray:
        """is_digit, from the exported probabilities alone."""
        return self.scores(probabilities) >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        """As JSON holds it: no threshold (accept everything) is null."""
        values = {**dataclasses.asdict(self), "threshold_probability": self.threshold_probability}
        return {**values, "threshold": self.threshold if math.isfinite(self.threshold) else None}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Decision:
        known = {field.name: values[field.name] for field in dataclasses.fields(cls) if field.name in values}
        return cls(**{**known, "threshold": -math.inf if known.get("threshold") is None else known["threshold"]})


ACCEPT_ALL = Decision()  # uncalibrated, and every image a digit: what a model answers before `fit`


def fit_model(
    model: keras.Model, splits: Splits, acceptance: float, score: str = "top_class", batch_size: int = 1000
) -> Decision:
    """`fit` on `model`'s logits for the validation split (for the training split, seen in training, when the
    run held none out: its confidence is higher there, so fewer real digits pass)."""
    split, name = (splits.validation, "validation") if splits.validation else (splits.train, "train")
    logits = tf.function(lambda images: tf.cast(model(normalize_images(images), training=False), tf.float32))
    values = evaluation.predict_in_batches(lambda images: logits(images).numpy(), split.images, batch_size)
    return fit(values, split.labels, acceptance, f"{name} split ({len(split):,} images)", score)


def fit(
    logits: np.ndarray, labels: np.ndarray, acceptance: float, fitted_on: str, score: str = "top_class"
) -> Decision:
    """The temperature that calibrates `logits` [N, classes] for `labels` (the class, given a digit), and the
    threshold of the digit `score` that `acceptance` of them reach."""
    logits = answered(logits)
    temperature = fit_temperature(logits, labels)
    scores = digit_scores(logits, temperature, score)
    threshold = min(evaluation.threshold_for(scores, acceptance), MAX_THRESHOLD)
    threshold = threshold if acceptance < 1 else -math.inf
    return Decision(temperature, threshold, float(np.mean(scores >= threshold)), fitted_on, score)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """argmin over T of the mean negative log-likelihood of softmax(logits / T): golden-section search on log T
    (the likelihood is unimodal in it), to a relative precision of 1e-4."""
    logits = logits.astype(np.float64)

    def nll(log_t: float) -> float:
        scaled = logits / math.exp(log_t)
        top = scaled.max(axis=1, keepdims=True)
        log_z = np.log(np.exp(scaled - top).sum(axis=1)) + top[:, 0]
        return float(np.mean(log_z - scaled[np.arange(len(labels)), labels]))

    low, high = math.log(0.05), math.log(20.0)
    ratio = (math.sqrt(5) - 1) / 2
    while high - low > 1e-4:
        a, b = high - ratio * (high - low), low + ratio * (high - low)
        low, high = (low, b) if nll(a) < nll(b) else (a, high)
    return round(math.exp((low + high) / 2), 4)


def digit_scores(logits: np.ndarray, temperature: float = 1.0, score: str = "top_class") -> np.ndarray:
    """log(p / (1 - p)) of each row's top probability p, calibrated by `temperature`, under `score`: the top of the
    `calibrated` logits - logsumexp(the others, and for digit_and_top_class the not-a-digit logit 0)."""
    logits = np.sort(calibrated(logits.astype(np.float64), temperature, score), axis=1)
    rest = logits[:, :-1]
    if score == "digit_and_top_class":
        rest = np.pad(rest, [(0, 0), (0, 1)])
    return logits[:, -1] - _logsumexp(rest)


def calibrated(logits: np.ndarray, temperature: float, score: str) -> np.ndarray:
    """The logits a decision reads: logits / T; for digit_and_top_class, log P(class | digit) from them plus the
    model's own log-odds of a digit, their log-sum-exp (the temperature calibrates the class, not those odds)."""
    scaled = logits / temperature
    if score != "digit_and_top_class":
        return scaled
    return scaled - _logsumexp(scaled)[:, None] + _logsumexp(logits)[:, None]


def _logsumexp(values: np.ndarray) -> np.ndarray:
    top = values.max(axis=1)
    return top + np.log(np.exp(values - top[:, None]).sum(axis=1))


def outputs(logits: tf.Tensor, decision: Decision) -> dict[str, tf.Tensor]:
    """In-graph: float32 logits [batch, classes] -> probabilities, classes, digit_score and is_digit (as
    `digit_scores` computes it)."""
    scaled = _calibrated(logits, decision)
    is_top = tf.one_hot(tf.argmax(scaled, axis=-1), tf.shape(scaled)[-1], on_value=_NOT_THE_TOP)
    rest = scaled + is_top
    if decision.score == "digit_and_top_class":
        rest = with_not_a_digit(rest)
    score = tf.reduce_max(scaled, axis=-1) - tf.reduce_logsumexp(rest, axis=-1)
    return {
        "probabilities": probabilities(logits, decision),
        "classes": tf.argmax(scaled, axis=-1),
        "digit_score": score,
        "is_digit": score >= decision.threshold,
    }


def probabilities(logits: tf.Tensor, decision: Decision) -> tf.Tensor:
    """In-graph: float32 logits [batch, classes] -> the calibrated probabilities every export returns: of the
    class, softmax(logits / T); for digit_and_top_class, of "a digit, and this class", those times P(digit)."""
    of_the_class = tf.nn.softmax(logits / decision.temperature)
    if decision.score != "digit_and_top_class":
        return of_the_class
    # P(digit) = sigmoid(logsumexp(logits)), as 1 - the softmax's not-a-digit share: int8 keeps a softmax exact.
    digit = 1.0 - tf.nn.softmax(with_not_a_digit(logits))[:, -1:]
    return of_the_class * digit


def with_not_a_digit(logits: tf.Tensor) -> tf.Tensor:
    """In-graph: logits [batch, classes] -> [batch, classes + 1], the last the not-a-digit class's, fixed at 0."""
    return tf.pad(logits, [[0, 0], [0, 1]])


def _calibrated(logits: tf.Tensor, decision: Decision) -> tf.Tensor:
    """In-graph `calibrated`."""
    scaled = logits / decision.temperature
    if decision.score != "digit_and_top_class":
        return scaled
    return tf.nn.log_softmax(scaled) + tf.reduce_logsumexp(logits, axis=-1, keepdims=True)


def confidence(logits: np.ndarray, labels: np.ndarray, decision: Decision) -> dict[str, Any]:
    """How honest and how selective `decision` is on labelled digits: expected calibration error of the class
    probabilities (given a digit) before and after the temperature, the share accepted as digits, and the accuracy
    of those."""
    logits = answered(logits)
    of_the_class = softmax(logits / decision.temperature)
    accepted = digit_scores(logits, decision.temperature, decision.score) >= decision.threshold
    right = of_the_class.argmax(axis=1) == labels
    return {
        "calibration_error_before": evaluation.calibration_error(softmax(logits), labels),
        "calibration_error": evaluation.calibration_error(of_the_class, labels),
        "accepted": float(np.mean(accepted)),
        "accepted_accuracy": float(np.mean(right[accepted])) if accepted.any() else None,
        "reliability": evaluation.reliability(of_the_class, labels),
    }


def logits_of(probabilities: np.ndarray, decision: Decision) -> np.ndarray:
    """The logits of a model from the probabilities it exports under `decision`: up to a constant per image for
    top_class, T log(p); exactly for digit_and_top_class, whose probabilities also hold the log-odds of a digit."""
    values = np.maximum(probabilities.astype(np.float64), SMALLEST_PROBABILITY)
    logits = np.log(values) * decision.temperature
    if decision.score != "digit_and_top_class":
        return logits
    not_a_digit = np.maximum(1.0 - values.sum(axis=1), SMALLEST_PROBABILITY)
    odds = np.log(values.sum(axis=1)) - np.log(not_a_digit)  # the logits' log-sum-exp
    return logits + (odds - _logsumexp(logits))[:, None]


def given_a_digit(probabilities: np.ndarray) -> np.ndarray:
    """Exported probabilities as those of the class, given that the image is a digit (digit_and_top_class's sum to
    the probability that it is one; top_class's to 1 already)."""
    return probabilities / np.maximum(probabilities.sum(axis=1, keepdims=True), SMALLEST_PROBABILITY)


def answered(logits: np.ndarray) -> np.ndarray:
    """`logits` with NaN (a diverged model's) read as 0, a flat answer: no digit, and no class."""
    return np.nan_to_num(logits.astype(np.float64), nan=0.0, posinf=1e4, neginf=-1e4)


def scalars(confidence: dict[str, Any]) -> dict[str, float]:
    """The numbers of `confidence` that TensorBoard plots."""
    return {name: value for name, value in confidence.items() if isinstance(value, float)}


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
