"""not_a_digit/detection.py: the --ood table, one row per set, with the int8 file's agreement when there is one."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_digits

from mnist_tf.data.sources import Split
from mnist_tf.not_a_digit import decision, detection, people


def test_each_set_is_a_row_and_a_model_that_refuses_noise_ranks_it_apart():
    images, labels = make_digits(300, seed=5)
    test = Split(images[..., np.newaxis], labels.astype(np.int64))

    def probabilities(batch: np.ndarray) -> np.ndarray:
        """Sure of the label of an image with few bright pixels (the digits), flat on busy ones (the noise)."""
        busy = (batch > 127).mean(axis=(1, 2, 3)) > 0.35
        answer = np.full((len(batch), 10), 0.1, np.float32)
        answer[~busy] = np.eye(10, dtype=np.float32)[0] * 0.9 + 0.01
        return answer

    chosen = decision.Decision(threshold=0.0)  # the top probability above 1/2 is a digit
    lines = []
    rows = detection.detect(
        probabilities, chosen, test, probabilities(test.images), ["noise"], int8=probabilities, print_line=lines.append
    )
    assert set(rows) == {"mnist_test", "noise"} and len(lines) == 3
    assert rows["mnist_test"]["images"] == 300 and rows["mnist_test"]["int8_agreement"] == 1.0
    assert rows["noise"]["images"] == 2000 and 0 <= rows["noise"]["auroc"] <= 1 and "accuracy" not in rows["noise"]


def test_a_drawn_set_says_which_kinds_its_decision_accepts():
    images, labels = make_digits(50, seed=5)
    test = Split(images[..., np.newaxis], labels.astype(np.int64))

    def probabilities(batch: np.ndarray) -> np.ndarray:
        """Sure of a 0 for a drawing of much ink (every dot, blown up to MNIST's box, and a few others), flat on the
        others."""
        inky = (batch > 127).mean(axis=(1, 2, 3)) > 0.125
        answer = np.full((len(batch), 10), 0.1, np.float32)
        answer[inky] = np.eye(10, dtype=np.float32)[0] * 0.9 + 0.01
        return answer

    lines = []
    rows = detection.detect(
        probabilities, decision.Decision(threshold=0.0), test, probabilities(test.images), ["symbols"],
        print_line=lines.append,
    )  # fmt: skip
    by_kind = rows["symbols"]["accepted_by_kind"]
    assert set(by_kind) == set(people.SYMBOLS) and by_kind["dot"] == 1.0 and by_kind["slash"] < 0.1
    share = np.mean(list(by_kind.values()))  # the kinds are drawn in turn: as many of each
    assert rows["symbols"]["accepted"] == pytest.approx(share, abs=0.01)
    assert lines[-1].strip().startswith("accepted by kind: ") and lines[-1].endswith(
        f"; of {len(people.SYMBOLS)} kinds"
    )
    assert "accepted_by_kind" not in rows["mnist_test"]
