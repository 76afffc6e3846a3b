"""Reading, writing and validating LeCun IDX files (the format MNIST and Fashion-MNIST ship in).

An IDX file is a big-endian header - two zero bytes, a type code, the number of dimensions, then one uint32 per
dimension - followed by the raw array. MNIST uses unsigned bytes: magic 2051 (0x0803) for images [N, rows, cols]
and 2049 (0x0801) for labels [N]. Files may be gzipped; we tell by content, not by name.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from mnist_tf.errors import MnistTfError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
_UBYTE = 0x08
_GZIP_MAGIC = b"\x1f\x8b"

# The four files of a LeCun-style data set, by split; `.gz` or not, the common `train-images.idx3-ubyte`
# spelling, and a data set's prefix (`emnist-digits-train-images-idx3-ubyte.gz`) are all accepted.
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path: str | os.PathLike, expected_magic: int) -> np.ndarray:
    """Returns the uint8 array stored in an IDX file, after checking magic number, dimensions and size."""
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise MnistTfError(f"{path}: truncated IDX file ({len(raw)} bytes, no header)")
    (magic,) = struct.unpack(">I", raw[:4])
    if magic != expected_magic:
        kind = "image" if expected_magic == IMAGES_MAGIC else "label"
        raise MnistTfError(f"{path}: not an IDX {kind} file (magic number {magic}, expected {expected_magic})")
    ndim = magic & 0xFF
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise MnistTfError(f"{path}: truncated IDX header ({len(raw)} of {header_size} bytes)")
    shape = struct.unpack(f">{ndim}I", raw[4:header_size])
    if any(size == 0 for size in shape[1:]):
        raise MnistTfError(f"{path}: invalid IDX dimensions {list(shape)}")
    expected_size = header_size + math.prod(shape)  # Python ints: numpy's int64 would wrap on huge dimensions
    if len(raw) != expected_size:
        problem = "truncated" if len(raw) < expected_size else "has trailing bytes"
        raise MnistTfError(
            f"{path}: {problem}: IDX header says {list(shape)} ({expected_size:,} bytes), file has {len(raw):,}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(shape)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Writes a uint8 array as an IDX file (gzipped when the name ends in `.gz`); used by tests and tools."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise MnistTfError(f"{path}: IDX writer takes uint8 arrays, got {array.dtype}")
    header = struct.pack(">BBBB", 0, 0, _UBYTE, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(data)


def find_split_files(directory: str | os.PathLike, split: str) -> tuple[Path, Path]:
    """Finds the (images, labels) files of `split` in `directory`, raising one clear error if either is missing."""
    directory = Path(directory)
    found = []
    for stem in SPLIT_FILES[split]:
        candidates = [stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"]
        named = sorted(p for p in directory.glob("*") if p.is_file()) if directory.is_dir() else []
        # As named, or after a data set's prefix: EMNIST's files are emnist-digits-train-images-idx3-ubyte.gz.
        path = next((directory / name for name in candidates if (directory / name).is_file()), None) or next(
            (p for name in candidates for p in named if p.name.endswith("-" + name)), None
        )
        if path is None:
            raise MnistTfError(f"{directory}: missing {stem}.gz (or {stem}); expected the four LeCun IDX files")
        found.append(path)
    return found[0], found[1]


def load_split(directory: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Returns (images uint8 [N, rows, cols], labels uint8 [N]) for `split` ("train" or "test") of an IDX folder."""
    images_path, labels_path = find_split_files(directory, split)
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if len(images) != len(labels):
        raise MnistTfError(f"{directory}: {split} split has {len(images):,} images but {len(labels):,} labels")
    return images, labels


def _read_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if raw[:2] == _GZIP_MAGIC:
            raw = gzip.decompress(raw)
    except FileNotFoundError:
        raise MnistTfError(f"{path}: no such file") from None
    except (OSError, EOFError, zlib.error) as e:
        raise MnistTfError(f"{path}: unreadable or corrupt ({e})") from None
    return raw
