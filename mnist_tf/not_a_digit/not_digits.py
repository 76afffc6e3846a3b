"""Images that are not digits, made the way a photo is made ready for the model (`preprocess.to_mnist`).

Training shows the model a bank of them (outlier exposure, Hendrycks et al. 2019: `--not_digits`), and
`scripts/evaluate.py --ood` measures how many of another bank it still accepts. Kinds:

  glyphs     letters and symbols of installed fonts, thin to bold, slanted (never those that are also written as
             digits: AMBIGUOUS)
  scribbles  smooth strokes through random points, thin pen to marker
  shapes     outlined and filled polygons, stars, crosses, hatching, grids (no circles: a circle is a 0)
  objects    solid shaded blobs, as a photo of a thing shows it
  paper      blank, smudged, textured or lined paper with nothing written on it
  noise      uniform and Gaussian pixel noise, and empty images
  pairs      two digits side by side or written over each other
  doodles    line drawings as people make them: houses, fences, faces, suns, flowers, stick figures, cars, fruit,
             animals, keys, hearts, and compositions of boxes, zigzags and spirals (never a lone loop: a 0)
  operators  handwritten + - x ÷ = < > % arrows, ticks and crosses, underlines, slashes far from upright, dots
  letters    handwritten capitals and small letters, in strokes of this file's own (never the AMBIGUOUS ones)
  outlines   closed outlines with parts on them, as people draw fruit, cups, pots, bells, clouds and trees

Everything is drawn from a numpy Generator: a bank is a function of its seed (and of the fonts installed).
"""

from __future__ import annotations

import functools
import string
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image, ImageDraw, ImageFont

from mnist_tf.data import augment, preprocess
from mnist_tf.data.strokes import smooth
from mnist_tf.nn import losses

FONTS_DIR = "/usr/share/fonts"
HELD_OUT_FAMILY = "Liberation"  # evaluation's glyphs; training draws those of every other font installed
# Characters that people also write as digits (O and 0, l and 1, Z and 2, S and 5, b and 6, q and 9 ...): never
# taught as "not a digit", and counted apart when measured.
AMBIGUOUS = "OoQDIlij|!/\\()[]{}'`,.ZzSsbGgq"
CHARACTERS = "".join(c for c in string.ascii_letters + "#$%&*+<=>?@^~" if c not in AMBIGUOUS)
_CANVAS = 64  # drawing size: to_mnist crops to the ink and shrinks it into MNIST's 20x20 box
_SALT = 0x6E6F74  # "not": draws of their own, never those of augmentation or dropout
Maker = Callable[[np.random.Generator, int], np.ndarray]  # (rng, count) -> float [count, h, w], ink 1 on 0


def font_files(fonts_dir: str = FONTS_DIR, held_out: bool = False) -> list[Path]:
    """The TrueType fonts of HELD_OUT_FAMILY (`held_out`), or of every other family, sorted by path."""
    return sorted(path for path in Path(fonts_dir).rglob("*.ttf") if path.name.startswith(HELD_OUT_FAMILY) == held_out)


def glyphs(
    rng: np.random.Generator, count: int, fonts: Sequence[Path] = (), characters: str = CHARACTERS
) -> np.ndarray:
    """`count` characters of `fonts` (Pillow's own font when there are none), each at a random weight and slant."""
    images = np.zeros((count, _CANVAS, _CANVAS), np.float32)
    for i in range(count):
        size = int(rng.integers(34, 50))
        font = ImageFont.truetype(str(fonts[rng.integers(len(fonts))]), size) if fonts else ImageFont.load_default(size)
        canvas = Image.new("L", (_CANVAS, _CANVAS))
        weight = int(rng.integers(0, 4))  # a stroke around the outline: pen to marker
        ImageDraw.Draw(canvas).text(
            (_CANVAS / 2, _CANVAS / 2),
            characters[rng.integers(len(characters))],
            fill=255,
            font=font,
            anchor="mm",
            stroke_width=weight,
            stroke_fill=255,
        )
        shear = rng.uniform(-0.3, 0.3)
        canvas = canvas.transform(canvas.size, Image.AFFINE, (1, shear, -shear * _CANVAS / 2, 0, 1, 0), Image.BILINEAR)
        images[i] = np.asarray(canvas, np.float32) / 255
    return images


def scribbles(rng: np.random.Generator, count: int) -> np.ndarray:
    """One to three smooth strokes, each through 5 to 9 random points (fewer would often make a 1, 7 or L)."""
    images = []
    for _ in range(count):
        canvas = Image.new("L", (_CANVAS, _CANVAS))
        draw = ImageDraw.Draw(canvas)
        width = int(rng.integers(2, 9))
        for _ in range(int(rng.integers(1, 4))):
            points = rng.uniform(4, _CANVAS - 4, size=(int(rng.integers(5, 10)), 2))
            draw.line([tuple(p) for p in smooth(points)], fill=255, width=width, joint="curve")
        images.append(np.asarray(canvas, np.float32) / 255)
    return np.stack(images)


def shapes(rng: np.random.Generator, count: int) -> np.ndarray:
    """Polygons (outlined or filled), stars, crosses, hatching and grids."""
    images = []
    for _ in range(count):
        canvas = Image.new("L", (_CANVAS, _CANVAS))
        draw = ImageDraw.Draw(canvas)
        width = int(rng.integers(2, 8))
        kind = rng.integers(5)
        center, radius = rng.uniform(24, 40, 2), rng.uniform(14, 28)
        if kind <= 1:  # a polygon of 3 to 6 corners, or a star of 5 to 8 points
            corners = int(rng.integers(3, 7)) if kind == 0 else 2 * int(rng.integers(5, 9))
            angles = rng.uniform(0, 2 * np.pi) + np.linspace(0, 2 * np.pi, corners, endpoint=False)
            radii = np.where(np.arange(corners) % 2 * kind, radius * rng.uniform(0.35, 0.6), radius)
            outline = [tuple(c) for c in center + np.stack([np.cos(angles), np.sin(angles)], -1) * radii[..., None]]
            if rng.random() < 0.4:
                draw.polygon(outline, fill=255)
            else:
                draw.line([*outline, outline[0]], fill=255, width=width, joint="curve")
        elif kind == 2:  # a cross or a plus with arms of different lengths
            for angle in rng.uniform(0, np.pi) + np.array([0, rng.uniform(0.35, 0.65) * np.pi]):
                arm = np.array([np.cos(angle), np.sin(angle)]) * radius
                draw.line([tuple(center - arm), tuple(center + arm * rng.uniform(0.6, 1))], fill=255, width=width)
        else:  # hatching (kind 3) or a grid (kind 4)
            spacing = rng.uniform(6, 12)
            for offset in np.arange(4, _CANVAS - 4, spacing):
                draw.line([(offset, 4), (offset + rng.uniform(-8, 8), _CANVAS - 4)], fill=255, width=width // 2 + 1)
                if kind == 4:
                    draw.line([(4, offset), (_CANVAS - 4, offset)], fill=255, width=width // 2 + 1)
        images.append(np.asarray(canvas, np.float32) / 255)
    return np.stack(images)


def objects(rng: np.random.Generator, count: int) -> np.ndarray:
    """Solid things, as a photo of an object shows them: a filled blob of a few overlapping polygons and
    ellipses, shaded and textured."""
    ys, xs = np.mgrid[0:_CANVAS, 0:_CANVAS] / _CANVAS
    images = []
    for _ in range(count):
        canvas = Image.new("L", (_CANVAS, _CANVAS))
        draw = ImageDraw.Draw(canvas)
        for _ in range(int(rng.integers(1, 4))):
            x0, y0 = rng.uniform(4, 32, 2)
            x1, y1 = x0 + rng.uniform(16, 56), y0 + rng.uniform(16, 56)
            if rng.random() < 0.5:
                draw.ellipse([x0, y0, x1, y1], fill=255)
            else:
                draw.polygon([tuple(p) for p in rng.uniform(4, _CANVAS - 4, (int(rng.integers(3, 7)), 2))], fill=255)
        shade = rng.uniform(0.4, 1.0) + rng.uniform(-0.4, 0.4) * xs + rng.uniform(-0.4, 0.4) * ys
        texture = shade + rng.normal(0, rng.uniform(0, 0.2), shade.shape)
        images.append(np.clip(np.asarray(canvas, np.float32) / 255 * texture, 0, 1).astype(np.float32))
    return np.stack(images)


def paper(rng: np.random.Generator, count: int) -> np.ndarray:
    """Photos of paper with nothing on it, dark on light as a camera sees it: uneven light, grain, smudges, lines."""
    ys, xs = np.mgrid[0:_CANVAS, 0:_CANVAS] / _CANVAS
    images = []
    for _ in range(count):
        light = 0.85 + rng.uniform(-0.1, 0.1) * xs + rng.uniform(-0.1, 0.1) * ys
        image = light + rng.normal(0, rng.uniform(0.002, 0.03), light.shape)
        for _ in range(int(rng.integers(0, 3))):  # smudges: soft grey blobs
            cx, cy, size = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.3)
            image -= rng.uniform(0.05, 0.4) * np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * size**2))
        if rng.random() < 0.3:  # ruled or squared paper
            spacing = int(rng.integers(6, 14))
            image[::spacing] -= rng.uniform(0.05, 0.2)
            if rng.random() < 0.5:
                image[:, ::spacing] -= rng.uniform(0.05, 0.2)
        images.append(np.clip(image, 0, 1).astype(np.float32))
    return np.stack(images)


def noise(rng: np.random.Generator, count: int) -> np.ndarray:
    """Uniform noise, Gaussian noise of any density, and empty images, a third each."""
    kinds = rng.integers(3, size=count)
    uniform = rng.uniform(size=(count, 28, 28))
    gaussian = np.clip(rng.normal(rng.uniform(0, 0.5, (count, 1, 1)), 0.3, (count, 28, 28)), 0, 1)
    return np.select([kinds[:, None, None] == 0, kinds[:, None, None] == 1], [uniform, gaussian], 0.0).astype(
        np.float32
    )


def pairs(rng: np.random.Generator, count: int, digits: np.ndarray) -> np.ndarray:
    """Two digits of `digits` (uint8 [N, rows, cols(, 1)]) side by side, or one over the other well apart (close
    together, two digits often make a third)."""
    rows, cols = digits.shape[1:3]
    digits = digits.reshape(len(digits), rows, cols).astype(np.float32) / 255
    first, second = digits[rng.integers(len(digits), size=count)], digits[rng.integers(len(digits), size=count)]
    side_by_side = np.concatenate([first, second], axis=2)  # rows x 2 cols
    over = np.concatenate([first, np.zeros_like(first)], axis=2)
    shifts = (rng.uniform(0.3, 0.5, size=count) * cols).astype(int) + cols // 2
    for image, digit, shift in zip(over, second, shifts, strict=True):
        image[:, shift - cols // 2 : shift - cols // 2 + cols] = np.maximum(
            image[:, shift - cols // 2 : shift - cols // 2 + cols], digit
        )
    return np.where((rng.random(count) < 0.5)[:, None, None], side_by_side, over)


def _hand(rng: np.random.Generator, points: np.ndarray, wobble: float) -> list[tuple[float, float]]:
    """A stroke through `points` as a hand draws it: each point off by up to `wobble` pixels, then smoothed."""
    return [tuple(p) for p in smooth(points + rng.normal(0, wobble, points.shape))]


def _v(x: float, y: float) -> np.ndarray:
    return np.array([x, y])


def _loop(center: np.ndarray, radii: np.ndarray, corners: int = 12, start: float = 0.0) -> np.ndarray:
    angles = start + np.linspace(0, 2 * np.pi, corners + 1)
    return center + np.stack([np.cos(angles), np.sin(angles)], -1) * radii


def _doodle_parts(rng: np.random.Generator, kind: int) -> list[np.ndarray]:
    """The strokes of one doodle, in a 64-pixel canvas (kind: 0 house, 1 fence, 2 face, 3 sun, 4 flower,
    5 stick figure, 6 car, 7 a composition of boxes, zigzags and spirals, 8 fruit, 9 animal, 10 key, 11 heart)."""
    c, r = rng.uniform(26, 38, 2), rng.uniform(14, 24)
    if kind == 0:  # a box, a roof, a door
        x0, x1, y0, y1 = c[0] - r, c[0] + r, c[1] - r * 0.3, c[1] + r
        door = c[0] + rng.uniform(-0.5, 0.3) * r
        return [
            np.array([(x0, y0), (x0, y1), (x1, y1), (x1, y0), (x0, y0)]),
            np.array([(x0 - 3, y0), (c[0], y0 - r * rng.uniform(0.6, 1.0)), (x1 + 3, y0)]),
            np.array([(door, y1), (door, y1 - r * 0.6), (door + r * 0.35, y1 - r * 0.6), (door + r * 0.35, y1)]),
        ]
    if kind == 1:  # a fence or a ladder: posts and rails
        posts = np.linspace(c[0] - r, c[0] + r, int(rng.integers(3, 6)))
        rails = c[1] + np.array([-0.5, 0.4]) * r
        return [np.array([(x, c[1] - r), (x, c[1] + r)]) for x in posts] + [
            np.array([(c[0] - r - 4, y), (c[0] + r + 4, y)]) for y in rails
        ]
    if kind == 2:  # a face: head, two eyes, a mouth
        eye = r * 0.35
        return [
            _loop(c, np.array([r, r * rng.uniform(0.9, 1.2)]), 12),
            _loop(c + _v(-eye, -eye), np.array([2.0, 2.0]), 6),
            _loop(c + _v(eye, -eye), np.array([2.0, 2.0]), 6),
            np.array([(c[0] - eye, c[1] + eye * 0.8), (c[0], c[1] + eye * 1.3), (c[0] + eye, c[1] + eye * 0.8)]),
        ]
    if kind == 3:  # a sun: a disc and its rays
        inner = r * 0.45
        rays = [
            np.array([c + inner * 1.3 * d, c + r * 1.15 * d])
            for a in rng.uniform(0, 1) + np.linspace(0, 2 * np.pi, int(rng.integers(6, 11)), endpoint=False)
            for d in [np.array([np.cos(a), np.sin(a)])]
        ]
        return [_loop(c, np.array([inner, inner]), 10), *rays]
    if kind == 4:  # a flower: petals round a centre, on a stem
        head = c - _v(0, r * 0.4)
        petals = [
            _loop(head + r * 0.45 * np.array([np.cos(a), np.sin(a)]), np.array([r * 0.25, r * 0.25]), 6)
            for a in np.linspace(0, 2 * np.pi, int(rng.integers(5, 8)), endpoint=False)
        ]
        return [*petals, np.array([head + _v(0, r * 0.5), c + _v(rng.uniform(-4, 4), r)])]
    if kind == 5:  # a stick figure
        head, hip = c - _v(0, r * 0.7), c + _v(0, r * 0.3)
        return [
            _loop(head, np.array([r * 0.25, r * 0.25]), 8),
            np.array([head + _v(0, r * 0.25), hip]),
            np.array([c + _v(-r * 0.6, -r * 0.2), c + _v(0, -r * 0.3), c + _v(r * 0.6, -r * 0.2)]),
            np.array([hip + _v(-r * 0.4, r * 0.7), hip, hip + _v(r * 0.4, r * 0.7)]),
        ]
    if kind == 6:  # a car: a body, a cabin, two wheels
        x0, x1, y0, y1 = c[0] - r, c[0] + r, c[1] - r * 0.1, c[1] + r * 0.35
        wheel = np.array([r * 0.22, r * 0.22])
        return [
            np.array(
                [
                    (x0, y1),
                    (x0, y0),
                    (c[0] - r * 0.5, y0),
                    (c[0] - r * 0.3, y0 - r * 0.4),
                    (c[0] + r * 0.4, y0 - r * 0.4),
                    (c[0] + r * 0.6, y0),
                    (x1, y0),
                    (x1, y1),
                    (x0, y1),
                ]
            ),
            _loop(np.array([c[0] - r * 0.55, y1]), wheel, 8),
            _loop(np.array([c[0] + r * 0.55, y1]), wheel, 8),
        ]
    if kind == 8:  # a fruit: round or pear-shaped, a stem, a leaf
        body = _loop(c, np.array([r, r * rng.uniform(0.9, 1.3)]), 12, start=np.pi / 2)
        stem = np.array([c - _v(0, r * 0.9), c - _v(rng.uniform(-4, 4), r * 1.7)])
        leaf = _loop(c - _v(-r * 0.55, r * 1.45), np.array([r * 0.55, r * 0.25]), 8)
        return [body, stem, leaf]
    if kind == 9:  # an animal: a body, four legs, a head, a tail
        body = _loop(c, np.array([r, r * 0.5]), 12)
        legs = [np.array([c + _v(x, r * 0.4), c + _v(x, r * 1.1)]) for x in np.linspace(-0.7, 0.7, 4) * r]
        head = _loop(c + _v(r * 1.2, -r * 0.6), np.array([r * 0.4, r * 0.35]), 8)
        tail = np.array([c - _v(r, 0), c - _v(r * 1.5, r * rng.uniform(0.2, 0.8))])
        return [body, *legs, head, tail]
    if kind == 10:  # a key: a ring, a shaft, its teeth
        ring = _loop(c - _v(r * 0.6, 0), np.array([r * 0.4, r * 0.4]), 10)
        shaft = np.array([c - _v(r * 0.2, 0), c + _v(r, 0)])
        teeth = np.array([c + _v(r * 0.5, 0), c + _v(r * 0.5, r * 0.4), c + _v(r * 0.75, r * 0.4), c + _v(r * 0.75, 0)])
        return [ring, shaft, teeth]
    if kind == 11:  # a heart
        t = np.linspace(0, 2 * np.pi, 16)
        outline = np.stack([16 * np.sin(t) ** 3, -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t))], -1)
        return [c + outline * r / 16]
    parts = []  # a composition of three to five parts spread over the canvas
    for _ in range(int(rng.integers(3, 6))):
        at, size = rng.uniform(12, 52, 2), rng.uniform(6, 16)
        shape = rng.integers(1, 4)  # no loops: two of them make an 8, one a 0
        if shape == 1:
            parts.append(np.array([at, at + _v(size, 0), at + _v(size, size), at + _v(0, size), at]))
        elif shape == 2:
            parts.append(np.stack([at[0] + np.linspace(0, 2 * size, 6), at[1] + np.tile([0, size * 0.6], 3)], -1))
        else:
            turns = np.linspace(0, 4 * np.pi, 16)
            parts.append(at + np.stack([np.cos(turns), np.sin(turns)], -1) * np.linspace(1, size, 16)[:, None])
    return parts


def _drawn(
    rng: np.random.Generator, strokes: Sequence[np.ndarray], dots: Sequence[np.ndarray], width: int, wobble: float
) -> np.ndarray:
    """`strokes` and `dots` (points of the 64-pixel canvas) drawn by hand with a pen `width` pixels wide."""
    canvas = Image.new("L", (_CANVAS, _CANVAS))
    draw = ImageDraw.Draw(canvas)
    for stroke in strokes:
        draw.line(_hand(rng, stroke, wobble), fill=255, width=width, joint="curve")
    for dot in dots:
        radius = width / 2 + rng.uniform(0.5, 2)
        draw.ellipse([*(dot - radius), *(dot + radius)], fill=255)
    return np.asarray(canvas, np.float32) / 255


def _any_aspect(
    rng: np.random.Generator, strokes: Sequence[np.ndarray], dots: Sequence[np.ndarray] = ()
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """`strokes` and `dots` squeezed toward the canvas centre along one axis, to 45-100%: people draw a thing at
    any aspect ratio, and a thing drawn tall and narrow is what looks most like a 0 (docs/not_a_digit.md)."""
    squeeze = np.ones(2)
    squeeze[rng.integers(2)] = rng.uniform(0.45, 1.0)
    centre = _CANVAS / 2
    return [centre + (s - centre) * squeeze for s in strokes], [centre + (d - centre) * squeeze for d in dots]


def doodles(rng: np.random.Generator, count: int) -> np.ndarray:
    """Line drawings of things at any aspect ratio, as drawn with a mouse, a finger or a pen (`_doodle_parts`)."""
    return np.stack(
        [
            _drawn(
                rng,
                *_any_aspect(rng, _doodle_parts(rng, int(rng.integers(12)))),
                int(rng.integers(2, 7)),
                rng.uniform(0.2, 1.5),
            )
            for _ in range(count)
        ]
    )


def _operator_parts(rng: np.random.Generator, kind: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(strokes, dots) of one handwritten operator in a 64-pixel canvas (kind: 0 plus, 1 minus, 2 times,
    3 divided by, 4 equals, 5 less or greater, 6 percent, 7 arrow, 8 tick, 9 slash, 10 dot, 11 underline)."""
    c, r = rng.uniform(28, 36, 2), rng.uniform(12, 22)
    tilt = rng.uniform(-0.25, 0.25)  # radians

    def bar(at: np.ndarray, angle: float, length: float) -> np.ndarray:
        d = np.array([np.cos(angle), np.sin(angle)]) * length
        return np.array([at - d, at + d])

    if kind == 0:
        return [bar(c, tilt, r), bar(c + rng.uniform(-3, 3, 2), np.pi / 2 + tilt, r * rng.uniform(0.8, 1.1))], []
    if kind == 1:
        return [bar(c, tilt * 0.5, r)], []
    if kind == 2:
        return [bar(c, np.pi / 4 + tilt, r), bar(c, -np.pi / 4 + tilt, r)], []
    if kind == 3:
        gap = r * rng.uniform(0.5, 0.8)
        return [bar(c, tilt * 0.5, r)], [c - _v(0, gap), c + _v(0, gap)]
    if kind == 4:
        gap = r * rng.uniform(0.25, 0.45)
        return [bar(c - _v(0, gap), tilt * 0.4, r), bar(c + _v(0, gap), tilt * 0.4, r * rng.uniform(0.8, 1.1))], []
    if kind == 5:
        side = rng.choice([-1, 1])
        return [np.array([c + _v(side * r, -r * 0.8), c - _v(side * r * 0.8, 0), c + _v(side * r, r * 0.8)])], []
    if kind == 6:
        slash = bar(c, -np.pi / 3 + tilt * 0.5, r)
        return [
            slash,
            _loop(c + _v(-r * 0.55, -r * 0.6), np.array([r * 0.22, r * 0.22]), 8),
            _loop(c + _v(r * 0.55, r * 0.6), np.array([r * 0.22, r * 0.22]), 8),
        ], []
    if kind == 7:  # never upright: an upright arrow is a flagged 1
        angle = rng.choice([0, np.pi]) + rng.uniform(-np.pi / 3, np.pi / 3)
        d = np.array([np.cos(angle), np.sin(angle)])
        tip, head = c + d * r, r * 0.4
        return [
            np.array([c - d * r, tip]),
            np.array([tip - head * (d + 0.7 * d[::-1] * (1, -1)), tip, tip - head * (d - 0.7 * d[::-1] * (1, -1))]),
        ], []
    if kind == 8:
        return [np.array([c + _v(-r, 0), c + _v(-r * 0.4, r * 0.6), c + _v(r, -r * 0.9)])], []
    if kind == 9:  # far from upright: an upright stroke is a 1
        return [bar(c, rng.choice([-1, 1]) * rng.uniform(0.35, 0.75), r)], []
    if kind == 10:
        return [], [c]
    return [
        np.stack(
            [c[0] + np.linspace(-1.4 * r, 1.4 * r, 8), c[1] + rng.uniform(-1.5, 1.5, 8) * (rng.random() < 0.4) * 2], -1
        )
    ], []


def operators(rng: np.random.Generator, count: int) -> np.ndarray:
    """Handwritten operators, arrows, ticks, slashes, dots and underlines (`_operator_parts`)."""
    images = []
    for _ in range(count):
        width, wobble = int(rng.integers(2, 8)), rng.uniform(0.2, 1.2)
        images.append(_drawn(rng, *_operator_parts(rng, int(rng.integers(12))), width, wobble))
    return np.stack(images)


# Letters as a hand writes them, this file's own strokes (evaluation's are people.py's): each stroke a string of
# points on a 9x9 grid, two digits each, x then y from the top left, strokes apart by |; small letters between rows 3
# and 8. Never the letters people also write as digits (AMBIGUOUS).
LETTER_STROKES = {
    "A": "08 40 88|25 65", "B": "00 08|00 60 72 64 04|04 74 86 78 08", "C": "71 40 12 16 48 77",
    "E": "80 00 08 88|04 64", "F": "80 00 08|04 64", "H": "00 08|80 88|04 84",
    "J": "20 80|60 66 48 26", "K": "00 08|80 04 88", "L": "00 08 88", "M": "08 00 45 80 88",
    "N": "08 00 88 80", "P": "08 00 60 72 64 04", "R": "08 00 60 72 64 04 88", "T": "00 80|40 48",
    "U": "00 06 48 86 80", "V": "00 48 80", "W": "00 28 44 68 80", "X": "00 88|80 08",
    "Y": "00 44 80|44 48", "a": "74 43 15 38 76|73 78", "c": "74 43 15 28 58 77",
    "d": "75 43 15 38 77|70 78", "e": "16 76 64 43 24 17 38 78", "f": "71 50 32 38|14 54",
    "h": "00 08|06 34 64 76 78", "k": "00 08|73 16 78", "m": "08 03|05 23 43 45 48|45 63 83 85 88",
    "n": "03 08|05 33 63 75 78", "p": "03 08|04 33 64 46 06", "r": "03 08|06 43 73",
    "t": "40 47 68 78|13 73", "u": "03 06 38 66|73 78", "v": "03 48 83", "w": "03 28 44 68 83",
    "x": "03 88|83 08", "y": "03 46|83 38 18",
}  # fmt: skip


def letters(rng: np.random.Generator, count: int) -> np.ndarray:
    """Handwritten letters (`LETTER_STROKES`): stretched, slanted and turned a little, mouse to marker."""
    names = list(LETTER_STROKES)
    images = []
    for _ in range(count):
        height = rng.uniform(34, 54)
        scale = np.array([height * rng.uniform(0.55, 1.1), height]) / 8
        turn = rng.uniform(-0.2, 0.2)
        shape = np.array([[1, rng.uniform(-0.35, 0.35)], [0, 1]]) @ np.array(
            [[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]]
        )
        at = _CANVAS / 2 + rng.uniform(-4, 4, 2)
        strokes = [
            at + ((np.array([(int(x), int(y)) for x, y in stroke.split()]) - 4) * scale) @ shape.T
            for stroke in LETTER_STROKES[names[rng.integers(len(names))]].split("|")
        ]
        images.append(_drawn(rng, strokes, (), int(rng.integers(2, 8)), rng.uniform(0.2, 1.2)))
    return np.stack(images)


def _outline_parts(rng: np.random.Generator) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(strokes, dots) of a closed outline of any shape with two or three parts on it: a stem and a leaf, legs,
    a handle, rays, a trunk, a base or a lid, marks inside. Never one stroke alone off the outline (a 6 or a 9)."""
    c, radius = _CANVAS / 2 + rng.uniform(-3, 3, 2), rng.uniform(9, 15)
    angles = np.linspace(0, 2 * np.pi, 15)[:-1] + rng.uniform(0, 2 * np.pi)
    bumps = sum(rng.uniform(0, 0.18) * np.cos(k * angles + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 4))
    stretch = np.sqrt(rng.uniform(0.6, 1.6)) ** np.array([1, -1])
    outline = c + np.stack([np.cos(angles), np.sin(angles)], -1) * (radius * (1 + bumps))[:, None] * stretch
    outline = np.concatenate([outline, outline[:2]])  # closed: the curve runs on past its start
    top, bottom = outline[outline[:, 1].argmin()], outline[outline[:, 1].argmax()]
    left, right = outline[outline[:, 0].argmin()], outline[outline[:, 0].argmax()]
    strokes, dots = [outline], []
    for part in rng.choice(7, size=int(rng.integers(2, 4)), replace=False):
        if part == 0:  # a short stem and a leaf
            tip = top - _v(rng.uniform(-3, 3), radius * rng.uniform(0.3, 0.5))
            strokes += [np.array([top, tip]), _loop(tip + _v(radius * 0.35, 0), np.array([radius * 0.3, 2.5]), 8)]
        elif part == 1:  # legs
            strokes += [np.array([(x, bottom[1] - 2), (x, bottom[1] + radius * 0.6)]) for x in
                        bottom[0] + np.linspace(-0.6, 0.6, int(rng.integers(2, 5))) * radius]  # fmt: skip
        elif part == 2:  # a handle
            side = right if rng.random() < 0.5 else left
            out = np.sign(side[0] - c[0])
            strokes.append(side + np.array([(0, -0.35), (0.5 * out, -0.3), (0.55 * out, 0.2), (0, 0.3)]) * radius)
        elif part == 3:  # rays
            for a in np.linspace(0, 2 * np.pi, int(rng.integers(5, 9)), endpoint=False) + rng.uniform(0, 1):
                d = np.array([np.cos(a), np.sin(a)]) * radius * stretch
                strokes.append(np.array([c + d * 1.25, c + d * 1.6]))
        elif part == 4:  # a trunk
            half = radius * rng.uniform(0.15, 0.3)
            strokes += [np.array([bottom + _v(x, -1), bottom + _v(x, radius * 0.8)]) for x in (-half, half)]
        elif part == 5:  # a base or a lid wider than the outline
            y = bottom[1] + 2 if rng.random() < 0.5 else top[1] - 2
            strokes.append(np.array([(left[0] - radius * 0.3, y), (right[0] + radius * 0.3, y)]))
        else:  # marks inside: eyes, seeds, windows
            dots += [c + rng.uniform(-0.45, 0.45, 2) * radius for _ in range(int(rng.integers(1, 4)))]
    return strokes, dots


def outlines(rng: np.random.Generator, count: int) -> np.ndarray:
    """Closed outlines with parts on them (`_outline_parts`) at any aspect ratio, mouse to marker."""
    return np.stack(
        [
            _drawn(rng, *_any_aspect(rng, *_outline_parts(rng)), int(rng.integers(2, 7)), rng.uniform(0.2, 1.2))
            for _ in range(count)
        ]
    )


def draw(
    bank: tf.Tensor, count: int, *, seed: int, step: tf.Tensor, distortion: augment.Distortion, portable: bool
) -> tf.Tensor:
    """This replica's `count` images of a global draw from `bank` (uint8 [N, rows, cols, 1]) for training step
    `step`: float in [0, 1], distorted as digits are. A function of (seed, step)
    alone, as augmentation is: a run repeats and resumes exactly."""
    replica = tf.distribute.get_replica_context()
    replicas, index = (replica.num_replicas_in_sync, replica.replica_id_in_sync_group) if replica else (1, 0)
    key = tf.random.experimental.stateless_fold_in(tf.constant([seed, _SALT], tf.int64), tf.cast(step, tf.int64))
    picks = tf.random.stateless_uniform([count * replicas], seed=key, maxval=tf.shape(bank)[0], dtype=tf.int32)
    images = tf.cast(tf.gather(bank, picks[index * count : (index + 1) * count]), tf.float32) / 255.0
    return augment.augment(images, seed=seed ^ _SALT, step=step, distortion=distortion, portable=portable)


def outlier_exposure(weight: float, global_count: int) -> Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor]:
    """A flat answer to what is not a digit (Hendrycks et al. 2019): the not-digit images' cross-entropy to the
    uniform distribution, averaged over the `global_count` of them in a global batch, times `weight`."""

    def term(images: tf.Tensor, outputs: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        flat = losses.cross_entropy_to_uniform(outputs[tf.shape(labels)[0] :])
        return weight * tf.nn.compute_average_loss(flat, global_batch_size=global_count)

    return term


def digit_odds(weight: float, global_count: int) -> Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor]:
    """The log-sum-exp of the logits taught to be the log-odds that an image is a digit (`decision.SCORES`):
    binary cross-entropy against 1 for the digits and 0 for the not-digit images after them, averaged over the
    `global_count` images of a global batch, times `weight`. The digits' cross-entropy cannot teach it: softmax
    is blind to a shift of all the logits, and that shift is what this trains."""

    def term(images: tf.Tensor, outputs: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        is_digit = tf.cast(tf.range(tf.shape(outputs)[0]) < tf.shape(labels)[0], tf.float32)
        odds = tf.reduce_logsumexp(outputs, axis=-1)
        loss = tf.nn.sigmoid_cross_entropy_with_logits(labels=is_digit, logits=odds)
        return weight * tf.nn.compute_average_loss(loss, global_batch_size=global_count)

    return term


def training_bank(
    seed: int, digits: np.ndarray, size: int = 28, count: int = 7000, fonts_dir: str = FONTS_DIR
) -> np.ndarray:
    """`count` not-digit images, uint8 [count, size, size, 1], of every kind in the shares of `kinds` (glyphs of every
    font family but HELD_OUT_FAMILY), drawn from `seed`; `digits` are training images, for the pairs."""
    rng = np.random.default_rng([seed, _SALT])
    makers = kinds(fonts_dir, digits)
    total = sum(makers.values())
    counts = [round(count * share / total) for share in makers.values()]
    counts[0] += count - sum(counts)
    return np.concatenate(
        [preprocess.to_mnist_each(make(rng, n), size) for make, n in zip(makers, counts, strict=True)]
    )


def kinds(fonts_dir: str, digits: np.ndarray) -> dict[Maker, float]:
    """Each kind of the bank and its share: half for the kinds any model soon refuses (solid objects, blank paper,
    noise), one and a half for what people draw (doodles, operators, letters, outlines)."""
    return {
        functools.partial(glyphs, fonts=font_files(fonts_dir)): 1.0,
        scribbles: 1.0,
        shapes: 1.0,
        objects: 0.5,
        paper: 0.5,
        noise: 0.5,
        functools.partial(pairs, digits=digits): 1.0,
        doodles: 1.5,
        operators: 1.5,
        letters: 1.5,
        outlines: 1.5,
    }
