"""A trained model (or several and their ensemble), opened by `classifier.load`, measured on a test split: accuracy,
per-class precision and recall, the confusion matrix, the most confident mistakes, calibration, the share accepted
as digits, and with `ood` not-a-digit on other sets (not_a_digit/detection.py). The work of scripts/evaluate.py."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mnist_tf.data.sources import Split
from mnist_tf.errors import MnistTfError
from mnist_tf.export import classifier, litert
from mnist_tf.export.classifier import Classifier
from mnist_tf.not_a_digit import decision, detection, ood
from mnist_tf.not_a_digit.decision import Decision
from mnist_tf.reporting import evaluation, figures


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """What `evaluate` measured."""

    source: str  # the model's source, or "ensemble"
    dataset: str
    test: Split
    members: dict[str, np.ndarray]  # each model's probabilities on the test split, by source
    report: evaluation.Report  # of the mean probabilities (the ensemble's, for several)
    decision: Decision
    confidence: dict[str, Any]  # calibration before and after the temperature, the share accepted
    detection: dict[str, Any]  # per not-a-digit set (`ood`), its row

    def to_dict(self) -> dict[str, Any]:
        """The JSON report (--report)."""
        members = {name: evaluation.report(self.test.labels, p, 0).accuracy for name, p in self.members.items()}
        return {
            "model": self.source,
            "dataset": self.dataset,
            **({"members": members} if len(members) > 1 else {}),
            **self.report.to_dict(),
            "decision": self.decision.to_dict(),
            "confidence": self.confidence,
            "ood": self.detection,
        }

    def save_figures(self, folder: Path) -> list[Path]:
        """The confusion matrix, the reliability diagram and the most confident mistakes as pictures (those
        TensorBoard shows for a run), into `folder`."""
        wrong, images = self.report.mistakes, self.test.images
        pictures = {
            "confusion_matrix.png": figures.confusion_matrix(self.report.confusion),
            "reliability_diagram.png": figures.reliability_diagram(self.confidence["reliability"]),
        }
        if wrong:  # none at all: no picture of them
            pictures["mistakes.png"] = figures.mistakes(
                images[[m.index for m in wrong]][..., 0], [m.label for m in wrong], [m.predicted for m in wrong]
            )
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for name, picture in pictures.items():
                Image.fromarray(picture).save(folder / name, optimize=True)
        except OSError as e:
            raise MnistTfError(f"cannot write the figures to {folder}: {e.strerror}") from None
        return [folder / name for name in pictures]


def evaluate(
    models: Sequence[Classifier],
    test: Split,
    dataset: str,
    class_names: Sequence[str],
    *,
    batch_size: int,
    num_mistakes: int,
    ood_sets: Sequence[str] = (),
    fashion_dir: str = ood.FASHION_DIR,
    note: Callable[[str], None] = print,
) -> Evaluation:
    """`models` (their ensemble, for several) on `test`, printed as it goes through `note`."""
    unknown = [name for name in ood_sets if name not in ood.SETS]
    if unknown:  # before minutes of evaluation
        raise MnistTfError(f"--ood={unknown[0]!r} is not one of: {', '.join(ood.SETS)}")
    members = {m.source: evaluation.predict_in_batches(m.probabilities, test.images, batch_size) for m in models}
    source = _announce(members, test, dataset, note)
    probabilities = np.mean(list(members.values()), axis=0)
    report = evaluation.report(test.labels, decision.given_a_digit(probabilities), num_mistakes)
    for line in report.lines(class_names):
        note(line)
    chosen = (models[0] if len(models) == 1 else classifier.ensemble(models)).decision
    confidence = decision.confidence(decision.logits_of(probabilities, chosen), test.labels, chosen)
    note(_confidence_line(confidence, chosen))
    detected = {}
    if ood_sets:  # with the int8 LiteRT file beside the SavedModel, how often its decision agrees
        int8 = models[0].litert_int8
        int8_model = litert.LiteRtModel.from_file(int8).probabilities if int8 else None
        detected = detection.detect(
            models[0].probabilities, chosen, test, probabilities, ood_sets, int8_model, fashion_dir, batch_size, note
        )
    return Evaluation(source, dataset, test, members, report, chosen, confidence, detected)


def _announce(members: dict[str, np.ndarray], test: Split, dataset: str, note: Callable[[str], None]) -> str:
    """Says what is evaluated (with each member's accuracy, for an ensemble); returns its name."""
    if len(members) == 1:
        (source,) = members
        note(f"evaluated {source} on {dataset} test")
        return source
    note(f"evaluated {len(members)} models on {dataset} test, and their ensemble")
    for name, probabilities in members.items():
        member = evaluation.report(test.labels, decision.given_a_digit(probabilities), num_mistakes=0)
        note(f"  {member.accuracy:.4f}  loss {member.loss:.4f}  {name}")
    note("the ensemble (the mean of their probabilities):")
    return "ensemble"


def _confidence_line(confidence: dict[str, Any], chosen: Decision) -> str:
    accepted = f"{confidence['accepted']:.2%} accepted as digits"
    if confidence["accepted_accuracy"] is not None:
        accepted += f" ({confidence['accepted_accuracy']:.2%} of them right)"
    return (
        f"calibration error {confidence['calibration_error_before']:.2%} before the temperature "
        f"({chosen.temperature:.2f}), {confidence['calibration_error']:.2%} after · "
        f"not a digit below p={chosen.threshold_probability:.3f}: {accepted}"
    )
