"""How good a trained classifier is on a labeled split: accuracy, per-class precision and recall, the confusion
matrix, and its most confident mistakes. Works from predicted probabilities, whatever model produced them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

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

    def lines(self) -> list[str]:
        """The report as a terminal reads it."""
        classes = len(self.confusion)
        lines = [f"accuracy {self.accuracy:.4f}  loss {self.loss:.4f}  ({self.examples:,} images)", ""]
        lines.append("class  precision  recall  support")
        for c in range(classes):
            lines.append(f"{c:>5}  {self.precision[c]:>9.4f}  {self.recall[c]:>6.4f}  {self.support[c]:>7,}")
        width = max(4, len(f"{self.confusion.max():,}") + 1)
        lines += ["", "confusion matrix (rows: true label, columns: predicted)"]
        lines.append("     " + "".join(f"{c:>{width}}" for c in range(classes)))
        for c, row in enumerate(self.confusion):
            lines.append(f"{c:>5}" + "".join(f"{n:>{width},}" for n in row))
        if self.mistakes:
            lines += ["", "most confident mistakes", "index  true  predicted  confidence"]
            for m in self.mistakes:
                lines.append(f"{m.index:>5}  {m.label:>4}  {m.predicted:>9}  {m.confidence:>10.4f}")
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
