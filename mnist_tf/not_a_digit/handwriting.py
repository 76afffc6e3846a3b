"""Digits as people bring them: MNIST digits written again with other pens and photographed or scanned.

Each digit keeps its label and is redrawn as a photo would show it: thin pen to thick marker, slanted, off
centre, dark ink on white, grey or unevenly lit paper with grain and sometimes grid lines, saved as JPEG or PNG.
Then it goes through the serving path's own preprocessing (`preprocess.preprocess_batch`), as a user's file
would. `scripts/evaluate.py --ood=handwriting` measures how many of them the model still accepts as digits.
"""

from __future__ import annotations

import io

import numpy as np
import tensorflow as tf
from PIL import Image, ImageFilter

from mnist_tf.data import preprocess


def photographed(images: np.ndarray, rng: np.random.Generator) -> list[bytes]:
    """uint8 [N, 28, 28(, 1)] light-on-dark digits -> N encoded photos of them (JPEG or PNG), one style each."""
    return [_photo(image.reshape(28, 28), rng) for image in images]


def _photo(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    size = int(rng.integers(48, 160))  # the digit's height in the photo, in pixels
    ink = Image.fromarray(digit).resize((size, size), Image.BICUBIC)
    pen = rng.integers(3)  # 0: as written, 1: a thinner pen, 2: a thicker one
    if pen:
        width = 2 * max(1, size // 40) + 1
        ink = ink.filter(ImageFilter.MinFilter(width) if pen == 1 else ImageFilter.MaxFilter(width))
    shear = rng.uniform(-0.35, 0.35)
    ink = ink.transform(ink.size, Image.AFFINE, (1, shear, -shear * size / 2, 0, 1, 0), Image.BILINEAR)
    side = int(size * rng.uniform(1.3, 2.0))
    canvas = np.zeros((side, side), np.float32)
    top, left = rng.integers(0, side - size + 1, 2)
    canvas[top : top + size, left : left + size] = np.asarray(ink, np.float32) / 255
    ys, xs = np.mgrid[0:side, 0:side] / side
    paper = rng.uniform(0.55, 0.97) + rng.uniform(-0.04, 0.04) * xs + rng.uniform(-0.04, 0.04) * ys
    if rng.random() < 0.3:  # squared or ruled paper, lighter than the ink
        spacing = int(rng.integers(side // 10, side // 4))
        lines = (np.arange(side) % spacing == 0).astype(np.float32)
        grid = np.maximum(lines[:, None], lines[None, :] if rng.random() < 0.5 else 0)
        paper = paper - rng.uniform(0.02, 0.06) * grid
    darkness = rng.uniform(0.55, 0.95)  # how much of the paper's light the ink takes
    photo = paper * (1 - darkness * canvas) + rng.normal(0, rng.uniform(0.0, 0.02), canvas.shape)
    picture = Image.fromarray((np.clip(photo, 0, 1) * 255).astype(np.uint8))
    encoded = io.BytesIO()
    if rng.random() < 0.7:
        picture.save(encoded, "JPEG", quality=int(rng.integers(40, 92)))
    else:
        picture.save(encoded, "PNG")
    return encoded.getvalue()


def as_served(encoded: list[bytes], size: int = 28) -> np.ndarray:
    """Encoded photos -> uint8 [N, size, size, 1], preprocessed as the image_bytes signature does it."""
    batches = [
        preprocess.compiled(size)(tf.constant(encoded[i : i + preprocess.MAX_BATCH])).numpy()
        for i in range(0, len(encoded), preprocess.MAX_BATCH)
    ]
    return np.concatenate(batches)[..., np.newaxis]
