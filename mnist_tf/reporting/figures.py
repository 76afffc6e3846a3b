"""Pictures for TensorBoard, drawn with numpy and Pillow: image grids with captions, the confusion matrix, and
first-layer weights as tiles. Pure functions from arrays to uint8 [height, width, 3] images; no TensorFlow."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

CAPTION_HEIGHT = 14  # pixels under each captioned tile
CELL = 34  # side of one confusion-matrix cell, in pixels
CONFUSION_LEFT = 48  # left of the cells: the "true" title and the row labels
CONFUSION_TOP = 36  # above the cells: the "predicted" title and the column labels
_BACKGROUND = 255
_TEXT = (40, 40, 40)
_DIAGONAL = np.array([33, 102, 172])  # blue: right answers
_ERROR = np.array([203, 24, 29])  # red: mistakes


@functools.cache
def _font(size: int = 11) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def grid(
    images: np.ndarray,
    captions: Sequence[str] | None = None,
    columns: int | None = None,
    scale: int = 1,
    pad: int = 2,
) -> np.ndarray:
    """Tiles float [N, H, W] or [N, H, W, 1] images with values in [0, 1] (0 black) into one RGB picture.

    Each tile is enlarged `scale` times (nearest neighbour: pixels stay visible) and gets its caption underneath.
    `columns` defaults to a near-square grid.
    """
    images = np.asarray(images, np.float32)
    if images.ndim == 4:
        images = images[..., 0]
    count, height, width = images.shape
    if count == 0:
        raise ValueError("grid needs at least one image")
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    tiles = np.clip(images, 0, 1).repeat(scale, axis=1).repeat(scale, axis=2)
    tile_h, tile_w = height * scale, width * scale
    cell_h = tile_h + pad + (CAPTION_HEIGHT if captions is not None else 0)
    cell_w = tile_w + pad
    canvas = np.full((rows * cell_h + pad, columns * cell_w + pad), float(_BACKGROUND))
    for i, tile in enumerate(tiles):
        top, left = pad + (i // columns) * cell_h, pad + (i % columns) * cell_w
        canvas[top : top + tile_h, left : left + tile_w] = tile * 255
    picture = Image.fromarray(canvas.astype(np.uint8)).convert("RGB")
    if captions is not None:
        draw = ImageDraw.Draw(picture)
        for i, caption in enumerate(captions[:count]):
            top, left = pad + (i // columns) * cell_h + tile_h, pad + (i % columns) * cell_w
            draw.text((left + tile_w / 2, top + CAPTION_HEIGHT / 2), caption, fill=_TEXT, font=_font(), anchor="mm")
    return np.asarray(picture)


def weight_tiles(kernel: np.ndarray, image_shape: tuple[int, int, int], limit: int = 100) -> np.ndarray:
    """A first layer's weights as float [units, h, w] pictures in [0, 1]: 0.5 is zero, white positive, black negative.

    A dense kernel [H*W*C, units] gives each unit's weights over the image (channels averaged); a conv kernel
    [kh, kw, C, filters] gives each filter. Each tile is scaled by its own largest |weight|, so the pattern shows
    whatever the unit's norm. At most `limit` units (the first ones): wide layers would make huge pictures.
    """
    kernel = np.asarray(kernel, np.float32)
    if kernel.ndim == 4:
        tiles = kernel.mean(axis=2).transpose(2, 0, 1)
    elif kernel.ndim == 2 and kernel.shape[0] == math.prod(image_shape):
        tiles = kernel.T.reshape(-1, *image_shape).mean(axis=-1)
    else:
        raise ValueError(f"kernel of shape {list(kernel.shape)} is not a first layer over {list(image_shape)} images")
    tiles = tiles[:limit]
    peak = np.abs(tiles).max(axis=(1, 2), keepdims=True)
    return 0.5 + 0.5 * np.divide(tiles, peak, out=np.zeros_like(tiles), where=peak > 0)


def mistakes(images: np.ndarray, labels: Sequence[int], predicted: Sequence[int]) -> np.ndarray:
    """Misclassified digits (uint8 pixels) in a grid, each captioned `true as predicted`."""
    captions = [f"{y} as {p}" for y, p in zip(labels, predicted, strict=True)]
    return grid(np.asarray(images) / 255.0, captions, columns=6, scale=2)


def confusion_matrix(confusion: np.ndarray) -> np.ndarray:
    """The confusion matrix (rows true labels, columns predictions) as a picture with each cell's count.

    Right answers are blue, darker for a larger share of their row; mistakes are red, darker for larger counts
    relative to the worst mistake, so that a 0.5% confusion still stands out next to 99% diagonals.
    Size: CONFUSION_TOP + classes * CELL high, CONFUSION_LEFT + classes * CELL wide.
    """
    confusion = np.asarray(confusion, np.int64)
    classes = len(confusion)
    share = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    off_diagonal = np.where(np.eye(classes, dtype=bool), 0, share)
    worst = max(off_diagonal.max(), 1e-12)
    height, width = CONFUSION_TOP + classes * CELL, CONFUSION_LEFT + classes * CELL
    picture = Image.new("RGB", (width, height), (_BACKGROUND,) * 3)
    draw = ImageDraw.Draw(picture)
    for true in range(classes):
        for predicted in range(classes):
            if true == predicted:
                color, strength = _DIAGONAL, share[true, true]
            else:
                color, strength = _ERROR, math.sqrt(off_diagonal[true, predicted] / worst)
            fill = np.round(_BACKGROUND + (color - _BACKGROUND) * strength).astype(int)
            left, top = CONFUSION_LEFT + predicted * CELL, CONFUSION_TOP + true * CELL
            draw.rectangle((left, top, left + CELL - 1, top + CELL - 1), fill=tuple(fill), outline=(225,) * 3)
            count = confusion[true, predicted]
            if count:
                text = (255,) * 3 if strength > 0.6 else _TEXT
                draw.text((left + CELL / 2, top + CELL / 2), f"{count:,}", fill=text, font=_font(10), anchor="mm")
    for c in range(classes):
        middle = c * CELL + CELL / 2
        draw.text((CONFUSION_LEFT + middle, CONFUSION_TOP - 8), str(c), fill=_TEXT, font=_font(), anchor="mm")
        draw.text((CONFUSION_LEFT - 8, CONFUSION_TOP + middle), str(c), fill=_TEXT, font=_font(), anchor="mm")
    draw.text((CONFUSION_LEFT + classes * CELL / 2, 10), "predicted", fill=_TEXT, font=_font(), anchor="mm")
    draw.text((CONFUSION_LEFT - 26, CONFUSION_TOP + classes * CELL / 2), "true", fill=_TEXT, font=_font(), anchor="mm")
    return np.asarray(picture)


def reliability_diagram(table: dict[str, list], side: int = 240, margin: int = 30) -> np.ndarray:
    """The reliability diagram of `evaluation.reliability`'s table: per bin, a blue bar of its accuracy over the
    dashed diagonal of perfect calibration, a red gap to its mean confidence, and a grey bar of how many images it
    holds (log scale: most sit in the last bin)."""
    picture = Image.new("RGB", (side + 2 * margin, side + 2 * margin), (_BACKGROUND,) * 3)
    draw = ImageDraw.Draw(picture)
    bins = len(table["counts"])
    width, most = side / bins, math.log1p(max(table["counts"]))

    def y(value: float) -> float:
        return margin + side * (1.0 - value)

    for i, (count, confidence, accuracy) in enumerate(
        zip(table["counts"], table["confidence"], table["accuracy"], strict=True)
    ):
        left = margin + i * width
        draw.rectangle([left + 1, y(math.log1p(count) / max(most, 1e-9)), left + width - 1, y(0)], fill=(215, 215, 215))
        if count:
            draw.rectangle([left + 1, y(accuracy), left + width - 1, y(0)], outline=tuple(_DIAGONAL), width=2)
            draw.line([left + width / 2, y(accuracy), left + width / 2, y(confidence)], fill=tuple(_ERROR), width=3)
    for step in range(0, side, 8):  # the diagonal, dashed
        draw.line([margin + step, y(step / side), margin + step + 4, y((step + 4) / side)], fill=_TEXT)
    draw.rectangle([margin, margin, margin + side, margin + side], outline=_TEXT)
    draw.text((margin + side / 2, margin + side + 15), "confidence", fill=_TEXT, font=_font(), anchor="mm")
    for value in (0.0, 0.5, 1.0):
        draw.text((margin + side * value, margin + side + 4), f"{value:g}", fill=_TEXT, font=_font(9), anchor="mt")
        draw.text((margin - 4, y(value)), f"{value:g}", fill=_TEXT, font=_font(9), anchor="rm")
    draw.text((margin / 2, margin - 12), "accuracy", fill=_TEXT, font=_font(), anchor="lm")
    return np.asarray(picture)
