"""How good a trained classifier is on a labeled split: accuracy, per-class precision and recall, the confusion
matrix, and its most confident mistakes. Works from predicted probabilities, whatever model produced them."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class Mistake:
    index: int  # position in the split
    label: int
    predicted: int
    confidence: float  # the probability the model gave its (wrong) prediction


@dataclasses.dataclass(frozen=True)
class Report:
    confusion: np.ndarray  # int [classes, classes]: rows are true labels, columns predictions
    loss: float  # mean cross-entropy
    mistakes: tuple[Mistake, ...]  # the most confident wrong predictions, most confident first

    @property
    def examples(self) -> int:
        return int(self.confusion.sum())

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.confusion) / max(self.examples, 1))

    @property
    def support(self) -> np.ndarray:
        return self.confusion.sum(axis=1)

    @property
    def precision(self) -> np.ndarray:
        """Per class: of the images predicted as the class, the share that are (0 when none was predicted)."""
        return _ratio(np.diag(self.confusion), self.confusion.sum(axis=0))

    @property
    def recall(self) -> np.ndarray:
        """Per class: of the images of the class, the share predicted as it (0 when the split has none)."""
        return _ratio(np.diag(self.confusion), self.support)

    def to_dict(self) -> dict:
        return {
            "examples": self.examples,
            "accuracy": self.accuracy,
            "loss": self.loss,
            "precision": self.precision.tolist(),
            "recall": self.recall.tolist(),
            "support": self.support.tolist(),
            "confusion_matrix": self.confusion.tolist(),
            "mistakes": [dataclasses.asdict(m) for m in self.mistakes],
        }

    def lines(self, class_names: Sequence[str] = ()) -> list[str]:
        """The report as a terminal reads it; classes by name where `class_names` gives them (the confusion
        matrix keeps their indices, in the order of the per-class lines)."""
        classes = len(self.confusion)
        names = list(class_names) or [str(c) for c in range(classes)]
        name_width = max(5, *(len(name) for name in names))
        lines = [f"accuracy {self.accuracy:.4f}  loss {self.loss:.4f}  ({self.examples:,} images)", ""]
        lines.append(f"{'class':>{name_width}}  precision  recall  support")
        for c in range(classes):
            lines.append(
                f"{names[c]:>{name_width}}  {self.precision[c]:>9.4f}  {self.recall[c]:>6.4f}  {self.support[c]:>7,}"
            )
        width = max(4, len(f"{self.confusion.max():,}") + 1)
        lines += ["", "confusion matrix (rows: true label, columns: predicted)"]
        lines.append("     " + "".join(f"{c:>{width}}" for c in range(classes)))
        for c, row in enumerate(self.confusion):
            lines.append(f"{c:>5}" + "".join(f"{n:>{width},}" for n in row))
        if self.mistakes:
            lines += ["", "most confident mistakes", "index  true  predicted  confidence"]
            for m in self.mistakes:
                lines.append(f"{m.index:>5}  {names[m.label]:>4}  {names[m.predicted]:>9}  {m.confidence:>10.4f}")
        return lines


def report(labels: np.ndarray, probabilities: np.ndarray, num_mistakes: int = 10) -> Report:
    """Evaluates float [N, classes] `probabilities` against integer [N] `labels`."""
    labels = np.asarray(labels, np.int64)
    classes = probabilities.shape[-1]
    predicted = probabilities.argmax(axis=-1)
    confusion = np.zeros((classes, classes), np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    true_probability = probabilities[np.arange(len(labels)), labels]
    loss = float(-np.log(np.maximum(true_probability, np.finfo(np.float32).tiny)).mean()) if len(labels) else 0.0
    wrong = np.flatnonzero(predicted != labels)
    confidence = probabilities[wrong, predicted[wrong]]
    worst = wrong[np.argsort(-confidence, kind="stable")[:num_mistakes]]
    mistakes = tuple(
        Mistake(int(i), int(labels[i]), int(predicted[i]), float(probabilities[i, predicted[i]])) for i in worst
    )
    return Report(confusion, loss, mistakes)


def predict_in_batches(predict: Callable[[np.ndarray], np.ndarray], images: np.ndarray, batch_size: int) -> np.ndarray:
    """Concatenated `predict` outputs over consecutive batches of `images`."""
    return np.concatenate([predict(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.divide(numerator, denominator, out=np.zeros(len(numerator)), where=denominator > 0)


CALIBRATION_BINS = 15  # of the top probability, equal width, as Guo et al. (2017) bin it


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = CALIBRATION_BINS) -> dict[str, list]:
    """Per bin of the top probability: how many images, their mean confidence and their accuracy (None if empty)."""
    confidence = probabilities.max(axis=1)
    right = probabilities.argmax(axis=1) == labels
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    counts = np.bincount(which, minlength=bins)
    mean = np.bincount(which, confidence, minlength=bins)
    hits = np.bincount(which, right.astype(float), minlength=bins)
    return {
        "counts": counts.tolist(),
        "confidence": [float(m / c) if c else None for m, c in zip(mean, counts, strict=True)],
        "accuracy": [float(h / c) if c else None for h, c in zip(hits, counts, strict=True)],
    }


def calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """Expected calibration error: the count-weighted mean gap between confidence and accuracy over the bins."""
    table = reliability(probabilities, labels, bins)
    gaps = [
        count * abs(confidence - accuracy)
        for count, confidence, accuracy in zip(table["counts"], table["confidence"], table["accuracy"], strict=True)
        if count
    ]
    return float(sum(gaps) / len(labels))


def auroc(accepted: np.ndarray, refused: np.ndarray) -> float:
    """The chance that a random image of `accepted` scores above one of `refused` (ties count a half): the area
    under the ROC curve of telling them apart by score."""
    scores = np.concatenate([accepted, refused])
    ranks = _average_ranks(scores)
    n_in, n_out = len(accepted), len(refused)
    return float((ranks[:n_in].sum() - n_in * (n_in + 1) / 2) / (n_in * n_out))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing their mean rank."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), np.float64)
    ranks[order] = np.arange(1, len(values) + 1)
    inverse = np.unique(values, return_inverse=True)[1]
    return (np.bincount(inverse, ranks) / np.bincount(inverse))[inverse]


def threshold_for(scores: np.ndarray, acceptance: float) -> float:
    """The highest threshold that `acceptance` of `scores` reach (score >= threshold accepts)."""
    ordered = np.sort(scores)
    return float(ordered[min(len(ordered) - 1, math.floor((1.0 - acceptance) * len(ordered) + 1e-9))])


def false_positive_rate(accepted: np.ndarray, refused: np.ndarray, acceptance: float = 0.95) -> float:
    """The share of `refused` that the threshold accepting `acceptance` of `accepted` lets through."""
    return float(np.mean(refused >= threshold_for(accepted, acceptance)))
