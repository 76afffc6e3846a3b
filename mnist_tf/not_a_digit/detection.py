"""How well a model says "not a digit", measured per set of `ood.SETS` beside MNIST test: AUROC of its digit score
against MNIST test's, the false-positive rate at 95% acceptance of MNIST test, the share its own threshold accepts
(and reads right, for digits; by kind, for the drawn sets), and with its int8 LiteRT file how often that file's
decision agrees (`scripts/evaluate.py --ood`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mnist_tf.data.sources import Split
from mnist_tf.not_a_digit import ood
from mnist_tf.not_a_digit.decision import Decision
from mnist_tf.reporting import evaluation

Pixels = Callable[[np.ndarray], np.ndarray]  # uint8 [N, rows, cols, 1] -> calibrated probabilities


def detect(
    probabilities: Pixels,
    chosen: Decision,
    test: Split,
    test_probabilities: np.ndarray,
    names: Sequence[str],
    int8: Pixels | None = None,
    fashion_dir: str = ood.FASHION_DIR,
    batch_size: int = 1000,
    print_line: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Each set of `names`, measured and printed as a table row; `test_probabilities` are the model's on `test`."""
    reference = chosen.scores(test_probabilities)
    sets = {"mnist_test": ood.OodSet("mnist_test", test.images, test.labels)}
    sets.update({name: ood.load(name, test, fashion_dir) for name in names})
    print_line(f"not a digit: {'set':<12} {'AUROC':>7} {'FPR@95':>7} {'accepted':>9} {'accuracy':>9}  int8 agrees")
    results = {}
    for name, one in sets.items():
        predicted = (
            test_probabilities
            if name == "mnist_test"
            else evaluation.predict_in_batches(probabilities, one.images, batch_size)
        )
        row = _row(one, predicted, reference, chosen, int8)
        results[name] = row
        print_line(
            f"             {name:<12} {_number(row.get('auroc'), '.3f'):>7} {_number(row.get('fpr_at_95')):>7} "
            f"{_number(row['accepted']):>9} {_number(row.get('accepted_accuracy')):>9}  "
            f"{_number(row.get('int8_agreement')):>11}"
        )
        if row.get("accepted_by_kind"):
            print_line(f"               {_by_kind(row['accepted_by_kind'])}")
    return results


def _by_kind(accepted: dict[str, float]) -> str:
    """The kinds of a drawn set its decision accepts, most first: where the set's share comes from."""
    some = sorted(((share, kind) for kind, share in accepted.items() if share), reverse=True)
    said = ", ".join(f"{kind} {share:.0%}" for share, kind in some) or "none"
    return f"accepted by kind: {said}; of {len(accepted)} kinds"


def _row(
    one: ood.OodSet, predicted: np.ndarray, reference: np.ndarray, chosen: Decision, int8: Pixels | None
) -> dict[str, Any]:
    scores = chosen.scores(predicted)
    accepted = scores >= chosen.threshold
    row: dict[str, Any] = {"images": len(one.images), "accepted": float(np.mean(accepted))}
    if one.digits:
        right = predicted.argmax(axis=1) == one.labels
        row["accuracy"] = float(np.mean(right))
        row["accepted_accuracy"] = float(np.mean(right[accepted])) if accepted.any() else None
    else:
        row["auroc"] = evaluation.auroc(reference, scores)
        row["fpr_at_95"] = evaluation.false_positive_rate(reference, scores, 0.95)
    if one.kinds is not None:
        row["accepted_by_kind"] = {str(k): float(np.mean(accepted[one.kinds == k])) for k in dict.fromkeys(one.kinds)}
    if int8:
        int8_accepted = chosen.accepts(int8(one.images))
        row["int8_agreement"] = float(np.mean(int8_accepted == accepted))
    return row


def _number(value: float | None, style: str = ".2%") -> str:
    return "-" if value is None else format(value, style)
