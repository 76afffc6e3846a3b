"""What people send, as files, for `scripts/evaluate.py --ood`: digits scanned and photographed, digits drawn with
other shapes than MNIST's, and the doodles and symbols they draw. Each is saved as a PNG or JPEG file and goes
through the `image_bytes` path's own preprocessing, as a user's file does.

  scans     MNIST test digits scanned from paper: grey grainy paper with fibres, cropped tight (strokes touch or
            leave the frame), a soft scanner blur
  photos    MNIST test digits in pen on squared paper, photographed: vignetting, a lamp's fall-off, a shadow's blob,
            grid lines, JPEG
  drawn     digits drawn as strokes in shapes MNIST rarely has (crossed 7s, flagged 1s, open 4s), mouse to marker
  doodles   line drawings of things: cats, fish, cups, apples, umbrellas, clouds, hearts, boats, trees, houses
  symbols   handwritten + - x ÷ = / · < > % and arrows
  letters   handwritten letters, capitals and small (A B C E ... a e h k ...)
  lookalikes  handwritten letters people also write as digits: O l I Z S b g q (counted apart)

This is the measuring side: its code and its shapes are its own, apart from what training draws
(mnist_tf/data/captures.py, not_a_digit/not_digits.py), and nothing is tuned on it.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from mnist_tf.data.rendered import STROKES
from mnist_tf.data.strokes import smooth

Path = list[tuple[float, float]]  # a stroke through points of a unit box (x right, y down)

# Digits as many people write them and MNIST's writers seldom did.
SHAPES: dict[int, list[Path]] = {
    **STROKES,
    1: [[(0.2, 0.3), (0.6, 0.0), (0.6, 1.0)], [(0.35, 1.0), (0.85, 1.0)]],  # a flag and a foot
    4: [[(0.35, 0.0), (0.1, 0.6), (0.9, 0.6)], [(0.7, 0.3), (0.7, 1.0)]],  # open at the top
    7: [[(0.05, 0.05), (0.95, 0.0), (0.45, 1.0)], [(0.35, 0.5), (0.85, 0.5)]],  # crossed
}

DOODLES: dict[str, list[Path]] = {
    "cat": [
        [
            (0.2, 0.45),
            (0.25, 0.1),
            (0.4, 0.3),
            (0.6, 0.3),
            (0.75, 0.1),
            (0.8, 0.45),
            (0.7, 0.65),
            (0.3, 0.65),
            (0.2, 0.45),
        ],
        [(0.35, 0.45), (0.37, 0.47)],
        [(0.63, 0.45), (0.65, 0.47)],
        [(0.3, 0.65), (0.2, 1.0), (0.8, 1.0), (0.7, 0.65)],
        [(0.8, 0.95), (1.0, 0.7), (0.95, 0.5)],
    ],
    "fish": [
        [(0.7, 0.5), (0.45, 0.25), (0.15, 0.35), (0.05, 0.5), (0.15, 0.65), (0.45, 0.75), (0.7, 0.5)],
        [(0.7, 0.5), (0.95, 0.3), (0.95, 0.7), (0.7, 0.5)],
        [(0.2, 0.45), (0.22, 0.47)],
    ],
    "cup": [
        [(0.15, 0.15), (0.25, 0.9), (0.65, 0.9), (0.75, 0.15), (0.15, 0.15)],
        [(0.72, 0.3), (0.95, 0.35), (0.95, 0.6), (0.68, 0.65)],
        [(0.35, 0.05), (0.4, -0.1)],
        [(0.5, 0.05), (0.55, -0.1)],
    ],
    "apple": [
        [
            (0.5, 0.25),
            (0.2, 0.15),
            (0.05, 0.5),
            (0.25, 0.95),
            (0.5, 0.85),
            (0.75, 0.95),
            (0.95, 0.5),
            (0.8, 0.15),
            (0.5, 0.25),
        ],
        [(0.5, 0.25), (0.55, 0.0)],
        [(0.55, 0.1), (0.8, 0.0), (0.6, 0.15)],
    ],
    "umbrella": [
        [
            (0.0, 0.5),
            (0.2, 0.15),
            (0.5, 0.05),
            (0.8, 0.15),
            (1.0, 0.5),
            (0.75, 0.45),
            (0.5, 0.5),
            (0.25, 0.45),
            (0.0, 0.5),
        ],
        [(0.5, 0.5), (0.5, 0.95), (0.4, 1.0), (0.33, 0.9)],
    ],
    "cloud": [
        [
            (0.1, 0.7),
            (0.05, 0.5),
            (0.2, 0.35),
            (0.35, 0.15),
            (0.55, 0.2),
            (0.7, 0.1),
            (0.9, 0.3),
            (0.95, 0.55),
            (0.8, 0.75),
            (0.5, 0.8),
            (0.1, 0.7),
        ],
        [(0.2, 0.9), (0.15, 1.0)],
        [(0.5, 0.9), (0.45, 1.0)],
        [(0.8, 0.9), (0.75, 1.0)],
    ],
    "heart": [
        [
            (0.5, 0.3),
            (0.3, 0.05),
            (0.05, 0.25),
            (0.15, 0.6),
            (0.5, 0.95),
            (0.85, 0.6),
            (0.95, 0.25),
            (0.7, 0.05),
            (0.5, 0.3),
        ]
    ],
    "boat": [
        [(0.0, 0.6), (1.0, 0.6), (0.8, 0.85), (0.2, 0.85), (0.0, 0.6)],
        [(0.5, 0.6), (0.5, 0.0), (0.85, 0.5), (0.5, 0.5)],
        [(0.0, 1.0), (0.15, 0.95), (0.3, 1.0), (0.45, 0.95), (0.6, 1.0), (0.75, 0.95), (0.9, 1.0)],
    ],
    "tree": [
        [(0.4, 1.0), (0.42, 0.6), (0.58, 0.6), (0.6, 1.0)],
        [
            (0.42, 0.6),
            (0.15, 0.55),
            (0.1, 0.3),
            (0.3, 0.1),
            (0.5, 0.0),
            (0.7, 0.1),
            (0.9, 0.3),
            (0.85, 0.55),
            (0.58, 0.6),
        ],
    ],
    "house": [
        [(0.1, 0.45), (0.1, 1.0), (0.9, 1.0), (0.9, 0.45)],
        [(0.0, 0.5), (0.5, 0.0), (1.0, 0.5)],
        [(0.4, 1.0), (0.4, 0.7), (0.6, 0.7), (0.6, 1.0)],
        [(0.2, 0.55), (0.32, 0.55), (0.32, 0.67), (0.2, 0.67), (0.2, 0.55)],
    ],
}

SYMBOLS: dict[str, list[Path]] = {
    "plus": [[(0.5, 0.05), (0.5, 0.95)], [(0.05, 0.5), (0.95, 0.5)]],
    "minus": [[(0.05, 0.5), (0.95, 0.52)]],
    "times": [[(0.1, 0.1), (0.9, 0.9)], [(0.9, 0.1), (0.1, 0.9)]],
    "divide": [[(0.05, 0.5), (0.95, 0.5)], [(0.5, 0.15), (0.52, 0.17)], [(0.5, 0.83), (0.52, 0.85)]],
    "equals": [[(0.05, 0.35), (0.95, 0.35)], [(0.05, 0.65), (0.95, 0.67)]],
    "slash": [[(0.85, 0.05), (0.15, 0.95)]],
    "dot": [[(0.5, 0.5), (0.52, 0.52)]],
    "less": [[(0.9, 0.1), (0.1, 0.5), (0.9, 0.9)]],
    "greater": [[(0.1, 0.1), (0.9, 0.5), (0.1, 0.9)]],
    "percent": [
        [(0.85, 0.05), (0.15, 0.95)],
        [(0.2, 0.1), (0.05, 0.2), (0.2, 0.32), (0.35, 0.2), (0.2, 0.1)],
        [(0.8, 0.68), (0.65, 0.8), (0.8, 0.92), (0.95, 0.8), (0.8, 0.68)],
    ],
    "arrow": [[(0.05, 0.5), (0.95, 0.5)], [(0.7, 0.25), (0.95, 0.5), (0.7, 0.75)]],
}


# Letters as people write them by hand, in strokes; not those that look like digits (LOOKALIKES, counted apart).
LETTERS: dict[str, list[Path]] = {
    "A": [[(0.05, 1.0), (0.5, 0.0), (0.95, 1.0)], [(0.25, 0.6), (0.75, 0.6)]],
    "B": [[(0.15, 1.0), (0.15, 0.0)], [(0.15, 0.0), (0.7, 0.05), (0.8, 0.25), (0.15, 0.48)],
          [(0.15, 0.48), (0.85, 0.6), (0.85, 0.88), (0.15, 1.0)]],
    "C": [[(0.85, 0.15), (0.5, 0.0), (0.15, 0.3), (0.15, 0.7), (0.5, 1.0), (0.85, 0.85)]],
    "E": [[(0.85, 0.0), (0.15, 0.0), (0.15, 1.0), (0.85, 1.0)], [(0.15, 0.5), (0.7, 0.5)]],
    "F": [[(0.85, 0.0), (0.15, 0.0), (0.15, 1.0)], [(0.15, 0.5), (0.7, 0.5)]],
    "H": [[(0.15, 0.0), (0.15, 1.0)], [(0.85, 0.0), (0.85, 1.0)], [(0.15, 0.5), (0.85, 0.5)]],
    "K": [[(0.15, 0.0), (0.15, 1.0)], [(0.85, 0.0), (0.15, 0.55), (0.85, 1.0)]],
    "L": [[(0.15, 0.0), (0.15, 1.0), (0.85, 1.0)]],
    "M": [[(0.05, 1.0), (0.15, 0.0), (0.5, 0.6), (0.85, 0.0), (0.95, 1.0)]],
    "N": [[(0.15, 1.0), (0.15, 0.0), (0.85, 1.0), (0.85, 0.0)]],
    "P": [[(0.15, 1.0), (0.15, 0.0), (0.75, 0.05), (0.85, 0.25), (0.15, 0.5)]],
    "R": [[(0.15, 1.0), (0.15, 0.0), (0.75, 0.05), (0.85, 0.25), (0.15, 0.5), (0.85, 1.0)]],
    "T": [[(0.05, 0.0), (0.95, 0.0)], [(0.5, 0.0), (0.5, 1.0)]],
    "U": [[(0.15, 0.0), (0.15, 0.7), (0.5, 1.0), (0.85, 0.7), (0.85, 0.0)]],
    "V": [[(0.05, 0.0), (0.5, 1.0), (0.95, 0.0)]],
    "W": [[(0.0, 0.0), (0.25, 1.0), (0.5, 0.35), (0.75, 1.0), (1.0, 0.0)]],
    "X": [[(0.1, 0.0), (0.9, 1.0)], [(0.9, 0.0), (0.1, 1.0)]],
    "Y": [[(0.1, 0.0), (0.5, 0.5), (0.9, 0.0)], [(0.5, 0.5), (0.5, 1.0)]],
    "a": [[(0.8, 0.45), (0.5, 0.35), (0.2, 0.6), (0.4, 1.0), (0.8, 0.75)], [(0.8, 0.4), (0.8, 1.0)]],
    "d": [[(0.8, 0.55), (0.5, 0.4), (0.2, 0.6), (0.35, 1.0), (0.8, 0.85)], [(0.8, 0.0), (0.8, 1.0)]],
    "e": [[(0.15, 0.65), (0.85, 0.6), (0.6, 0.35), (0.2, 0.5), (0.25, 0.9), (0.85, 0.95)]],
    "f": [[(0.8, 0.05), (0.55, 0.0), (0.45, 0.2), (0.45, 1.0)], [(0.2, 0.45), (0.75, 0.45)]],
    "h": [[(0.15, 0.0), (0.15, 1.0)], [(0.15, 0.6), (0.5, 0.4), (0.85, 0.6), (0.85, 1.0)]],
    "k": [[(0.15, 0.0), (0.15, 1.0)], [(0.8, 0.4), (0.15, 0.7), (0.85, 1.0)]],
    "m": [[(0.05, 1.0), (0.05, 0.4), (0.3, 0.35), (0.5, 0.55), (0.5, 1.0)],
          [(0.5, 0.55), (0.75, 0.35), (0.95, 0.5), (0.95, 1.0)]],
    "n": [[(0.15, 1.0), (0.15, 0.4), (0.5, 0.35), (0.85, 0.5), (0.85, 1.0)]],
    "r": [[(0.2, 1.0), (0.2, 0.4)], [(0.2, 0.6), (0.5, 0.38), (0.85, 0.42)]],
    "t": [[(0.45, 0.0), (0.45, 0.9), (0.7, 1.0)], [(0.15, 0.35), (0.8, 0.35)]],
    "u": [[(0.15, 0.35), (0.15, 0.8), (0.5, 1.0), (0.85, 0.8)], [(0.85, 0.35), (0.85, 1.0)]],
    "v": [[(0.1, 0.35), (0.5, 1.0), (0.9, 0.35)]],
    "w": [[(0.0, 0.35), (0.25, 1.0), (0.5, 0.5), (0.75, 1.0), (1.0, 0.35)]],
    "x": [[(0.15, 0.35), (0.85, 1.0)], [(0.85, 0.35), (0.15, 1.0)]],
    "y": [[(0.15, 0.3), (0.5, 0.7)], [(0.85, 0.3), (0.3, 1.0)]],
}  # fmt: skip
LOOKALIKES: dict[str, list[Path]] = {
    "O": [[(0.5, 0.0), (0.1, 0.25), (0.05, 0.6), (0.3, 0.95), (0.7, 0.95), (0.95, 0.6), (0.9, 0.25), (0.5, 0.0)]],
    "l": [[(0.5, 0.0), (0.5, 1.0)]],
    "I": [[(0.5, 0.0), (0.5, 1.0)], [(0.2, 0.0), (0.8, 0.0)], [(0.2, 1.0), (0.8, 1.0)]],
    "Z": [[(0.1, 0.0), (0.9, 0.0), (0.1, 1.0), (0.9, 1.0)]],
    "S": [[(0.85, 0.1), (0.5, 0.0), (0.15, 0.2), (0.5, 0.5), (0.85, 0.75), (0.5, 1.0), (0.15, 0.9)]],
    "b": [[(0.2, 0.0), (0.2, 1.0)], [(0.2, 0.6), (0.5, 0.4), (0.85, 0.65), (0.6, 1.0), (0.2, 0.9)]],
    "g": [[(0.8, 0.1), (0.5, 0.0), (0.2, 0.2), (0.5, 0.45), (0.8, 0.2)],
          [(0.8, 0.1), (0.8, 0.85), (0.5, 1.0), (0.2, 0.85)]],
    "q": [[(0.8, 0.1), (0.5, 0.0), (0.2, 0.2), (0.5, 0.45), (0.8, 0.2)], [(0.8, 0.1), (0.8, 1.0), (0.95, 0.9)]],
}  # fmt: skip


def drawn(rng: np.random.Generator, paths: list[Path], side: int = 120) -> Image.Image:
    """Strokes as a hand draws them on a screen or on white paper: jittered, slanted a little, mouse to marker,
    somewhere on a canvas of `side` pixels (dark on white)."""
    height = rng.uniform(0.35, 0.8) * side
    width = height * rng.uniform(0.55, 1.0)
    slant = math.tan(math.radians(rng.uniform(-15, 15)))
    left, top = rng.uniform(0.05, 1) * (side - width), rng.uniform(0.05, 1) * (side - height)
    image = Image.new("L", (side, side), 255)
    draw = ImageDraw.Draw(image)
    pen = int(rng.choice([2, 3, 5, 8, 12]))
    for path in paths:
        unit = np.array(path, np.float64) + rng.normal(0, 0.025, (len(path), 2))
        points = smooth(unit, per_segment=6) if len(path) > 2 else unit
        xy = [(left + width * x + (1 - y) * height * slant, top + height * y) for x, y in points]
        if len(path) == 2 and np.hypot(*(unit[1] - unit[0])) < 0.05:  # a dot
            (x, y), radius = xy[0], pen / 2 + 1.5
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=0)
        else:
            draw.line(xy, fill=0, width=pen, joint="curve")
    return image


def scanned(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """An MNIST digit (uint8 [28, 28], light on dark) scanned from grey paper, cropped tight."""
    size = int(rng.integers(40, 120))
    ink = np.asarray(Image.fromarray(digit).resize((size, size), Image.LANCZOS), np.float32) / 255
    rows, cols = np.nonzero(ink > 0.3)
    crop = rng.uniform(-0.06, 0.08, 4) * size  # into the strokes, or a little paper
    top, bottom = int(rows.min() - crop[0]), int(rows.max() + 1 + crop[1])
    left, right = int(cols.min() - crop[2]), int(cols.max() + 1 + crop[3])
    padded = np.pad(ink, size)[top + size : bottom + size, left + size : right + size]
    grain = rng.normal(0, 1, padded.shape)
    fibres = sum(np.roll(grain, shift, axis=1) for shift in range(-2, 3)) / 5  # streaks along the paper
    paper = rng.uniform(0.55, 0.88) + rng.uniform(0.01, 0.04) * fibres
    scan = paper * (1 - rng.uniform(0.6, 0.95) * padded) + rng.normal(0, rng.uniform(0.01, 0.04), padded.shape)
    picture = Image.fromarray((np.clip(scan, 0, 1) * 255).astype(np.uint8)).filter(ImageFilter.SMOOTH)
    return _encoded(picture, rng, jpeg_share=0.4)


def photographed(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """An MNIST digit (uint8 [28, 28], light on dark) in pen on squared paper, photographed with a phone."""
    size = int(rng.integers(50, 140))
    ink = np.asarray(Image.fromarray(digit).resize((size, size), Image.BICUBIC), np.float32) / 255
    side = int(size * rng.uniform(1.4, 2.6))
    page = np.zeros((side, side), np.float32)
    top, left = rng.integers(0, side - size + 1, 2)
    page[top : top + size, left : left + size] = ink
    ys, xs = (np.mgrid[0:side, 0:side] + 0.5) / side
    cx, cy = rng.uniform(0.2, 0.8, 2)
    vignette = 1 - rng.uniform(0.1, 0.35) * ((xs - cx) ** 2 + (ys - cy) ** 2)
    sx, sy, spread = *rng.uniform(0, 1, 2), rng.uniform(0.15, 0.4)
    shadow = 1 - rng.uniform(0.1, 0.4) * np.exp(-((xs - sx) ** 2 + (ys - sy) ** 2) / (2 * spread**2))
    spacing = rng.uniform(0.25, 0.5) * size
    grid = ((np.arange(side) % spacing) < 1.5).astype(np.float32)
    lines = np.maximum(grid[:, None], grid[None, :]) * rng.uniform(0.08, 0.3)
    light = rng.uniform(0.7, 1.0) * vignette * shadow
    photo = light * (1 - lines) * (1 - rng.uniform(0.65, 0.95) * page) + rng.normal(0, 0.015, page.shape)
    picture = Image.fromarray((np.clip(photo, 0, 1) * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.7))
    return _encoded(picture, rng, jpeg_share=1.0)


def drawings(rng: np.random.Generator, shapes: dict, count: int) -> tuple[list[bytes], list]:
    """`count` drawings of `shapes` ({name: strokes}) in turn, as PNG files; and the name of each."""
    names = [list(shapes)[i % len(shapes)] for i in range(count)]
    return [_encoded(drawn(rng, shapes[name]), rng, jpeg_share=0.0) for name in names], names


def _encoded(picture: Image.Image, rng: np.random.Generator, jpeg_share: float) -> bytes:
    out = io.BytesIO()
    if rng.random() < jpeg_share:
        picture.save(out, "JPEG", quality=int(rng.integers(50, 90)))
    else:
        picture.save(out, "PNG")
    return out.getvalue()


Capture = Callable[[np.ndarray, np.random.Generator], bytes]
CAPTURES: dict[str, Capture] = {"scans": scanned, "photos": photographed}
