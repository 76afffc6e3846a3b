"""Pen strokes: the curve a hand draws through a few points (the not-digit scribbles, the rendered digits)."""

from __future__ import annotations

import numpy as np


def smooth(points: np.ndarray, per_segment: int = 8) -> np.ndarray:
    """A Catmull-Rom curve through `points`: how a hand moves between them."""
    padded = np.concatenate([points[:1], points, points[-1:]])
    t = np.linspace(0, 1, per_segment, endpoint=False)[:, None]
    curve = []
    for p0, p1, p2, p3 in zip(padded, padded[1:], padded[2:], padded[3:], strict=False):
        curve.append(
            0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2 + (3 * p1 - p0 - 3 * p2 + p3) * t**3)
        )
    return np.concatenate([*curve, points[-1:]])
