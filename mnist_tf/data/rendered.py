"""Digits that are not MNIST's, drawn, to see how a model copes with other handwriting (scripts/render_digits.py
writes them as files). Kept apart from what training draws (not_a_digit/not_digits.py): no model trains on these.

Two kinds, off-center and at several sizes, dark ink on white paper:
  strokes  pen strokes along hand-drawn paths of each digit: thin mouse lines to thick marker, slanted both ways
  fonts    the digits of every TrueType font under a folder (DejaVu and Liberation on Debian: sans, serif, mono,
           bold, italic), as typed rather than written
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mnist_tf.data.strokes import smooth

CANVAS = 200
# Each digit as pen strokes in a unit box (x right, y down), as one might draw it with a mouse.
STROKES: dict[int, list[list[tuple[float, float]]]] = {
    0: [
        [(0.5, 0.0), (0.15, 0.2), (0.1, 0.5), (0.15, 0.8), (0.5, 1.0), (0.85, 0.8), (0.9, 0.5), (0.85, 0.2), (0.5, 0.0)]
    ],
    1: [[(0.3, 0.2), (0.55, 0.0), (0.55, 1.0)]],
    2: [[(0.1, 0.25), (0.3, 0.02), (0.7, 0.02), (0.88, 0.25), (0.8, 0.5), (0.1, 1.0), (0.92, 1.0)]],
    3: [[(0.1, 0.1), (0.5, 0.0), (0.85, 0.2), (0.5, 0.48), (0.9, 0.72), (0.55, 1.0), (0.1, 0.9)]],
    4: [[(0.7, 1.0), (0.7, 0.0), (0.05, 0.7), (0.95, 0.7)]],
    5: [[(0.85, 0.0), (0.2, 0.0), (0.15, 0.45), (0.6, 0.4), (0.9, 0.65), (0.7, 0.95), (0.1, 0.95)]],
    6: [
        [
            (0.8, 0.05),
            (0.4, 0.1),
            (0.12, 0.55),
            (0.2, 0.9),
            (0.55, 1.0),
            (0.85, 0.8),
            (0.75, 0.55),
            (0.4, 0.5),
            (0.13, 0.65),
        ]
    ],
    7: [[(0.05, 0.0), (0.95, 0.0), (0.4, 1.0)], [(0.3, 0.5), (0.75, 0.5)]],
    8: [
        [
            (0.5, 0.48),
            (0.15, 0.25),
            (0.5, 0.0),
            (0.85, 0.25),
            (0.5, 0.48),
            (0.1, 0.75),
            (0.5, 1.0),
            (0.9, 0.75),
            (0.5, 0.48),
        ]
    ],
    9: [[(0.85, 0.35), (0.5, 0.52), (0.15, 0.35), (0.5, 0.0), (0.85, 0.3), (0.8, 0.7), (0.6, 1.0)]],
}
# One person's shapes, unlike MNIST's American schoolbook ones: a 0 with a slash, a 1 with a flag and a foot, a 2
# with a loop, a flat-topped 3, an open 4 in two strokes, a 5 with its bar apart, a 7 with a bar, an 8 of two
# circles, a 9 with a hooked tail.
WRITER_STROKES: dict[int, list[list[tuple[float, float]]]] = {
    **STROKES,
    0: [*STROKES[0], [(0.9, 0.05), (0.1, 0.95)]],
    1: [[(0.1, 0.3), (0.55, 0.0), (0.55, 1.0)], [(0.25, 1.0), (0.85, 1.0)]],
    2: [
        [
            (0.15, 0.25),
            (0.4, 0.0),
            (0.8, 0.1),
            (0.75, 0.45),
            (0.2, 0.95),
            (0.1, 0.8),
            (0.35, 0.75),
            (0.5, 1.0),
            (0.95, 0.95),
        ]
    ],
    3: [[(0.1, 0.0), (0.9, 0.0), (0.4, 0.4), (0.85, 0.6), (0.75, 0.95), (0.4, 1.0), (0.1, 0.85)]],
    4: [[(0.35, 0.0), (0.1, 0.6), (0.95, 0.6)], [(0.75, 0.25), (0.75, 1.0)]],
    5: [[(0.25, 0.0), (0.15, 0.45), (0.6, 0.4), (0.9, 0.65), (0.7, 0.95), (0.1, 0.95)], [(0.25, 0.0), (0.9, 0.02)]],
    7: [[(0.05, 0.1), (0.2, 0.0), (0.95, 0.05), (0.4, 1.0)], [(0.3, 0.5), (0.85, 0.5)]],
    8: [
        [(0.5, 0.0), (0.2, 0.2), (0.5, 0.42), (0.8, 0.2), (0.5, 0.0)],
        [(0.5, 0.45), (0.15, 0.72), (0.5, 1.0), (0.85, 0.72), (0.5, 0.45)],
    ],
    9: [[(0.85, 0.3), (0.5, 0.5), (0.15, 0.3), (0.5, 0.0), (0.85, 0.2), (0.8, 0.9), (0.5, 1.0), (0.25, 0.85)]],
}
STROKE_WIDTHS = {"mouse": 3, "pen": 8, "marker": 18}
SLANTS = {"upright": 0.0, "right": 15.0, "left": -12.0}


def digits(rng: np.random.Generator, fonts_dir: str | Path) -> Iterator[tuple[str, Image.Image]]:
    """(name, image) of every stroke style of every digit, then every digit of every font: a name is
    <digit>_<kind>_<style>, so the true digit is its first character."""
    for digit, paths in STROKES.items():
        for width_name, width in STROKE_WIDTHS.items():
            for slant_name, slant in SLANTS.items():
                height = rng.uniform(0.45, 0.8) * CANVAS
                image = _blank()
                draw = ImageDraw.Draw(image)
                left, top = rng.uniform(0.05, 0.45) * CANVAS, rng.uniform(0.05, 1.0) * (CANVAS - height)
                for path in paths:
                    points = [_place(x, y, height, slant, left, top) for x, y in smooth(np.array(path))]
                    draw.line(points, fill=0, width=width, joint="curve")
                yield f"{digit}_strokes_{width_name}-{slant_name}", image
    for font_path in font_files(fonts_dir):
        for digit in range(10):
            size = int(rng.uniform(0.35, 0.7) * CANVAS)
            image = _blank()
            position = (rng.uniform(0.05, 0.5) * CANVAS, rng.uniform(0.0, 0.4) * CANVAS)
            ImageDraw.Draw(image).text(position, str(digit), fill=0, font=ImageFont.truetype(str(font_path), size))
            yield f"{digit}_fonts_{font_path.stem}", image


def writer(rng: np.random.Generator, per_digit: int) -> Iterator[tuple[int, Image.Image]]:
    """(digit, image) of one person's handwriting, `per_digit` of each digit: their own shapes (WRITER_STROKES), a
    steady pen leaning left, each written a little differently (points, size and place varied)."""
    for digit, paths in WRITER_STROKES.items():
        for _ in range(per_digit):
            height = rng.uniform(0.55, 0.8) * CANVAS
            image = _blank()
            draw = ImageDraw.Draw(image)
            left, top = rng.uniform(0.1, 0.4) * CANVAS, rng.uniform(0.1, 0.9) * (CANVAS - height)
            slant, width = rng.normal(-16, 3), int(rng.integers(6, 11))
            for path in paths:
                wobbly = np.array(path) + rng.normal(0, 0.035, (len(path), 2))
                points = [_place(x, y, height, slant, left, top) for x, y in smooth(wobbly)]
                draw.line(points, fill=0, width=width, joint="curve")
            yield digit, image


def font_files(fonts_dir: str | Path) -> list[Path]:
    return sorted(Path(fonts_dir).rglob("*.ttf"))


def _blank() -> Image.Image:
    return Image.new("L", (CANVAS, CANVAS), 255)


def _place(x: float, y: float, height: float, slant: float, left: float, top: float) -> tuple[float, float]:
    """A unit-box point drawn `height` pixels tall (60% as wide), sheared by `slant` degrees, at (left, top)."""
    return left + 0.6 * height * x + (1 - y) * height * math.tan(math.radians(slant)), top + height * y
