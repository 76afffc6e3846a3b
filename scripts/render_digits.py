r"""Writes image files of digits that are not MNIST's, to see how a model copes with other handwriting.

Two kinds, each in both polarities (dark ink on light paper, light on dark), off-center and at several sizes:
  strokes  pen strokes along hand-drawn paths of each digit: thin mouse lines to thick marker, slanted both ways
  fonts    the digits of every TrueType font installed (DejaVu and Liberation on Debian: sans, serif, mono, bold,
           italic), as typed rather than written
A file is named <digit>_<kind>_<style>.png (or .jpg), so the true digit is the name's first character:

python scripts/render_digits.py --output_dir=/tmp/digits
python scripts/predict.py --saved_model=saved_models/lenet /tmp/digits/*     # then compare with the names
"""

from __future__ import annotations

import math
from pathlib import Path

import common
import numpy as np
from absl import flags
from PIL import Image, ImageDraw, ImageFont

flags.DEFINE_string("output_dir", None, "Where to write the image files (created if missing).")
flags.DEFINE_string("fonts_dir", "/usr/share/fonts/truetype", "Where to look for TrueType fonts (*.ttf).")
flags.DEFINE_integer("seed", 0, "Seed of the placements.")
flags.mark_flag_as_required("output_dir")
FLAGS = flags.FLAGS

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
STROKE_WIDTHS = {"mouse": 3, "pen": 8, "marker": 18}
SLANTS = {"upright": 0.0, "right": 15.0, "left": -12.0}


def main(argv: list[str]) -> None:
    output = Path(FLAGS.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(FLAGS.seed)
    written = 0
    for digit, paths in STROKES.items():
        for (width_name, width), (slant_name, slant) in _product(STROKE_WIDTHS, SLANTS):
            height = rng.uniform(0.45, 0.8) * CANVAS
            image = _blank()
            draw = ImageDraw.Draw(image)
            left, top = rng.uniform(0.05, 0.45) * CANVAS, rng.uniform(0.05, 1.0) * (CANVAS - height)
            for path in paths:
                points = [_place(x, y, height, slant, left, top) for x, y in _smooth(path)]
                draw.line(points, fill=0, width=width, joint="curve")
            written += _save(image, output / f"{digit}_strokes_{width_name}-{slant_name}", rng)
    fonts = sorted(Path(FLAGS.fonts_dir).rglob("*.ttf"))
    for font_path in fonts:
        for digit in range(10):
            size = int(rng.uniform(0.35, 0.7) * CANVAS)
            image = _blank()
            position = (rng.uniform(0.05, 0.5) * CANVAS, rng.uniform(0.0, 0.4) * CANVAS)
            ImageDraw.Draw(image).text(position, str(digit), fill=0, font=ImageFont.truetype(str(font_path), size))
            written += _save(image, output / f"{digit}_fonts_{font_path.stem}", rng)
    print(f"wrote {written} images ({len(fonts)} fonts) to {output}")


def _product(first: dict, second: dict) -> list[tuple]:
    return [(a, b) for a in first.items() for b in second.items()]


def _blank() -> Image.Image:
    return Image.new("L", (CANVAS, CANVAS), 255)


def _smooth(path: list[tuple[float, float]], steps: int = 8) -> list[tuple[float, float]]:
    """The path through the same points as a Catmull-Rom curve: round, as a hand draws it."""
    padded = [path[0], *path, path[-1]]
    curve = []
    for i in range(1, len(padded) - 2):
        p0, p1, p2, p3 = (np.array(p) for p in padded[i - 1 : i + 3])
        for t in np.linspace(0, 1, steps, endpoint=False):
            curve.append(
                tuple(
                    0.5
                    * (
                        2 * p1
                        + (p2 - p0) * t
                        + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                        + (3 * p1 - p0 - 3 * p2 + p3) * t**3
                    )
                )
            )
    return [*curve, path[-1]]


def _place(x: float, y: float, height: float, slant: float, left: float, top: float) -> tuple[float, float]:
    """A unit-box point drawn `height` pixels tall (60% as wide), sheared by `slant` degrees, at (left, top)."""
    return left + 0.6 * height * x + (1 - y) * height * math.tan(math.radians(slant)), top + height * y


def _save(image: Image.Image, stem: Path, rng: np.random.Generator) -> int:
    """Dark ink on light paper as PNG, and light ink on dark as JPEG (half the time) or PNG: 2 files."""
    image.save(stem.with_name(stem.name + "-dark.png"))
    inverted = Image.eval(image, lambda v: 255 - v)
    if rng.random() < 0.5:
        inverted.convert("RGB").save(stem.with_name(stem.name + "-light.jpg"), quality=90)
    else:
        inverted.save(stem.with_name(stem.name + "-light.png"))
    return 2


if __name__ == "__main__":
    common.run(main)
