"""Training digits as people capture them: written on real paper, photographed or scanned, then preprocessed.

MNIST's digits are clean: light ink on pure black, centred by the same program that made them. A user's digit
comes through a camera or a scanner and then `preprocess.to_mnist`, which leaves its own traces: grain it did not
remove, strokes cut where the photo was cropped tight, a background that was not flat. `captured` redraws a
share of the training digits that way, with their labels, so that the model learns digits as they arrive:

  shape    half of the 1s flagged, half of the 7s crossed (continental handwriting)
  pen      as written, thinner, or a marker twice as thick
  paper    white to dark grey, grain, low-frequency texture, ruled or squared lines
  light    a gradient and sometimes a shadow's soft edge across the page
  framing  from a wide margin to a crop that cuts into the strokes
  camera   a little blur, JPEG of any quality, or PNG; a fifth of them from far away, the digit 7 to 14 pixels tall

It is the training side only. What the model is measured on is drawn by other code (mnist_tf/not_a_digit/
handwriting.py and people.py), never tuned on this one.
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from mnist_tf.data import preprocess
from mnist_tf.data.sources import Split, Splits

_SALT = 0x636170  # "cap": draws of their own


def count_for(splits: Splits, share: float) -> int:
    """How many captures `added` draws: `share` of the training images."""
    return round(share * len(splits.train))


def added(splits: Splits, share: float, seed: int) -> Splits:
    """`splits` with `share` of its training images, captured (`captured`), added to its training split."""
    train = splits.train
    images, labels = captured(train.images, train.labels, count_for(splits, share), seed)
    joined = Split(np.concatenate([train.images, images]), np.concatenate([train.labels, labels]))
    return dataclasses.replace(splits, train=joined, captured=splits.captured + len(labels))


def captured(images: np.ndarray, labels: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` of `images` (uint8 [N, rows, cols, 1], light ink on black) as captures of them, preprocessed as the
    serving path does, and their labels: a function of `seed` and the images alone."""
    rng = np.random.default_rng([seed, _SALT])
    chosen = np.sort(rng.choice(len(images), size=min(count, len(images)), replace=False))
    photos = [_capture(_continental(images[i, ..., 0], labels[i], rng), rng) for i in chosen]
    return preprocess.to_mnist_each(photos, images.shape[1]), labels[chosen]


def _continental(digit: np.ndarray, label: int, rng: np.random.Generator) -> np.ndarray:
    """Half of the 1s with a flag, half of the 7s with a bar across the stem: as much of the world writes them and
    MNIST's American writers seldom did. Other digits as they are."""
    if label not in (1, 7) or rng.random() < 0.5:
        return digit
    rows, cols = np.nonzero(digit > 128)
    if len(rows) < 5:
        return digit
    image = Image.fromarray(digit)
    draw = ImageDraw.Draw(image)
    width = max(1, round(np.count_nonzero(digit > 128) / max(1, np.ptp(rows) + 1) / 1.5))  # about the stroke's
    if label == 1:  # from the top of the stroke, down to the left
        top = rows.min()
        x = cols[rows == top].mean()
        length = rng.uniform(0.2, 0.35) * (np.ptp(rows) + 1)
        draw.line([(x, top), (x - length, top + length * rng.uniform(0.4, 0.9))], fill=255, width=width)
    else:  # across the stem, halfway down
        middle = (rows.min() + rows.max()) // 2
        stem = cols[rows == middle]
        if not len(stem):
            return digit
        half = rng.uniform(0.18, 0.3) * (np.ptp(cols) + 1)
        draw.line([(stem.mean() - half, middle), (stem.mean() + half, middle)], fill=255, width=width)
    return np.asarray(image)


def _capture(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One digit as a grayscale photo (float32 [h, w] in [0, 1], dark ink on lighter paper)."""
    scale = int(rng.integers(2, 5))
    side = digit.shape[0] * scale
    ink, pen = Image.fromarray(digit), rng.random()
    if pen < 0.25:
        ink = ink.filter(ImageFilter.MaxFilter(3))  # a marker
    ink = ink.resize((side, side), Image.BICUBIC)
    if pen > 0.85:
        ink = ink.filter(ImageFilter.MinFilter(3))  # a fine pen
    alpha = _frame(np.asarray(ink, np.float32) / 255, rng)
    h, w = alpha.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    ys, xs = ys / h - 0.5, xs / w - 0.5
    paper = np.float32(rng.uniform(0.45, 1.0)) * (1 + rng.uniform(-0.3, 0.3) * xs + rng.uniform(-0.3, 0.3) * ys)
    if rng.random() < 0.3:  # a shadow's soft edge across the page
        angle = rng.uniform(0, 2 * np.pi)
        across = np.cos(angle) * xs + np.sin(angle) * ys - rng.uniform(-0.3, 0.3)
        paper = paper * (1 - rng.uniform(0.15, 0.45) / (1 + np.exp(-across / rng.uniform(0.02, 0.15))))
    if rng.random() < 0.35:  # ruled or squared paper, its lines under the ink
        spacing = max(4, int(side * rng.uniform(0.2, 0.6)))
        offset = rng.integers(spacing, size=2)
        lines = ((np.arange(h) + offset[0]) % spacing < 1 + scale // 3)[:, None].astype(np.float32)
        if rng.random() < 0.5:
            lines = np.maximum(lines, ((np.arange(w) + offset[1]) % spacing < 1 + scale // 3)[None, :])
        paper = paper * (1 - rng.uniform(0.05, 0.3) * lines)
    darkness = rng.uniform(0.5, 1.0)  # the share of the paper's light the ink takes
    photo = paper * (1 - darkness * alpha)
    grain = rng.normal(0, rng.uniform(0, 0.06), photo.shape)
    blotches = Image.fromarray(rng.normal(0, 1, (max(2, h // 12), max(2, w // 12))).astype(np.float32)).resize(
        (w, h), Image.BILINEAR
    )
    photo = photo + grain + rng.uniform(0, 0.05) * np.asarray(blotches)
    picture = Image.fromarray((np.clip(photo, 0, 1) * 255).astype(np.uint8))
    if rng.random() < 0.5:
        picture = picture.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.4 * scale)))
    if rng.random() < 0.6:
        encoded = io.BytesIO()
        picture.save(encoded, "JPEG", quality=int(rng.integers(30, 95)))
        picture = Image.open(encoded)
    if rng.random() < 0.2:  # from far away, or a small part of a large photo: the digit a few pixels tall
        factor = rng.uniform(7, 14) / (20 * scale)
        picture = picture.resize((max(2, round(w * factor)), max(2, round(h * factor))), Image.BOX)
    return np.asarray(picture, np.float32) / 255


def _frame(alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The ink on a page framed around it: each side from a cut into the strokes (8% of the digit) to a margin of
    60% of it."""
    rows, cols = np.nonzero(alpha > 0.25)
    if not len(rows):
        return alpha
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    size = max(bottom - top, right - left)
    margins = (rng.uniform(-0.08, 0.6, 4) * size).astype(int)
    page = np.zeros(
        (bottom - top + margins[0] + margins[1] + 2 * size, right - left + margins[2] + margins[3] + 2 * size),
        np.float32,
    )
    page[size + margins[0] : size + margins[0] + bottom - top, size + margins[2] : size + margins[2] + right - left] = (
        alpha[top:bottom, left:right]
    )
    return page[size : page.shape[0] - size, size : page.shape[1] - size]
