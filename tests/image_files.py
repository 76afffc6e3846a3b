"""Image files the tests write themselves: damaged, hostile or unusual variants of the accepted formats."""

from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image


def saved(image: Image.Image, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def animated_gif(frames: list[np.ndarray]) -> bytes:
    images = [Image.fromarray(frame) for frame in frames]
    return saved(images[0], "GIF", save_all=True, append_images=images[1:], optimize=False, disposal=1)


def declaring_a_huge_size(image_format: str) -> bytes:
    """A small image whose header is changed to declare 20000x20000 pixels (60000x60000 for GIF's 16-bit fields)."""
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), "white").save(buffer, image_format)
    raw = bytearray(buffer.getvalue())
    if image_format == "PNG":  # IHDR: big-endian width, height
        raw[16:24] = struct.pack(">II", 20000, 20000)
    elif image_format == "GIF":  # logical screen: little-endian 16-bit width, height
        raw[6:10] = struct.pack("<HH", 60000, 60000)
    elif image_format == "BMP":  # little-endian 32-bit width, height (negative: rows top-down)
        raw[18:26] = struct.pack("<ii", 20000, -20000)
    else:  # JPEG: the frame header after the SOF0 marker holds big-endian 16-bit height, width
        frame = raw.index(b"\xff\xc0")
        raw[frame + 5 : frame + 9] = struct.pack(">HH", 20000, 20000)
    return bytes(raw)


def top_down_bmp(bottom_up: bytes) -> bytes:
    """The same BMP with its rows stored top-down: a negative height, rows reversed."""
    raw = bytearray(bottom_up)
    offset, width, height = struct.unpack_from("<I", raw, 10)[0], *struct.unpack_from("<ii", raw, 18)
    row = (width * 3 + 3) // 4 * 4
    rows = [raw[offset + r * row : offset + (r + 1) * row] for r in range(height)]
    raw[offset:] = b"".join(reversed(rows))
    struct.pack_into("<i", raw, 22, -height)
    return bytes(raw)
