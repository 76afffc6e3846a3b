"""Fuzzing what reads bytes from outside: IDX data files, and images sent to predict.py or the SavedModel.

Whatever the bytes or shapes, the outcome is a result or the project's own one-line error: never another
exception, a hang, or a crashed interpreter. Under CI (`$CI` set) the 150 examples of each test are derandomized, so
a run is repeatable; elsewhere each run tries 50 new ones.
"""

import gzip
import io
import os
import struct

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from image_files import top_down_bmp
from PIL import Image

from mnist_tf.data import idx, preprocess
from mnist_tf.errors import MnistTfError
from mnist_tf.export import saved_model

# Each run here tries 50 new examples (the edit-test loop); CI tries the same 150 every time.
settings.register_profile(
    "mnist_tf", deadline=None, max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
settings.register_profile("ci", parent=settings.get_profile("mnist_tf"), max_examples=150, derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "mnist_tf")


def assert_one_line(error: MnistTfError) -> None:
    assert str(error) and "\n" not in str(error)


# IDX files: random bytes, and random headers that are nearly right.

headers = st.builds(
    lambda magic, dims, payload: struct.pack(">I", magic) + struct.pack(f">{len(dims)}I", *dims) + payload,
    magic=st.sampled_from([idx.IMAGES_MAGIC, idx.LABELS_MAGIC]) | st.integers(0, 2**32 - 1),
    dims=st.lists(st.integers(0, 40) | st.integers(0, 2**32 - 1), max_size=4),
    payload=st.binary(max_size=3000),
)


@given(
    raw=st.binary(max_size=3000) | headers,
    gzipped=st.booleans(),
    magic=st.sampled_from([idx.IMAGES_MAGIC, idx.LABELS_MAGIC]),
)
def test_idx_reader_returns_a_checked_array_or_one_clear_error(tmp_path, raw, gzipped, magic):
    path = tmp_path / "file-idx-ubyte"
    path.write_bytes(gzip.compress(raw) if gzipped else raw)
    try:
        array = idx.read_idx(path, magic)
    except MnistTfError as e:
        assert_one_line(e)
        return
    assert array.dtype == np.uint8 and array.ndim == magic & 0xFF
    assert array.size == len(raw) - 4 - 4 * array.ndim  # every byte after the header, no more, no less


@given(cut=st.integers(1, 10_000), gzipped=st.booleans())
def test_a_truncated_idx_file_is_always_reported(tmp_path, cut, gzipped):
    images = np.arange(20 * 28 * 28, dtype=np.uint8).reshape(20, 28, 28)
    whole = tmp_path / "whole"
    idx.write_idx(whole, images)
    raw = whole.read_bytes()[: -min(cut, len(whole.read_bytes()))]
    path = tmp_path / "cut"
    path.write_bytes(gzip.compress(raw) if gzipped else raw)
    with pytest.raises(MnistTfError, match="truncated"):
        idx.read_idx(path, idx.IMAGES_MAGIC)


# Images: real ones of every kind, then damaged; and random bytes.


VARIANTS = [
    "PNG",
    "PNG16",
    "JPEG",
    "JPEG_CMYK",
    "JPEG_PROGRESSIVE",
    "BMP",
    "BMP_TOP_DOWN",
    "GIF",
    "GIF_ANIMATED",
    "WEBP",
]


@st.composite
def encoded_images(draw) -> bytes:
    """A random image in a random format, variant and mode (every kind `decode_image` reads, WebP included), then
    maybe truncated or with bytes overwritten."""
    height, width = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    mode = draw(st.sampled_from(["L", "LA", "RGB", "RGBA", "P", "1"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    image = Image.fromarray(rng.integers(0, 256, (height, width, 4), np.uint8), "RGBA").convert(mode)
    raw = bytearray(encode_variant(image, draw(st.sampled_from(VARIANTS)), rng))
    damage = draw(st.sampled_from(["none", "truncate", "overwrite"]))
    if damage == "truncate":
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
    elif damage == "overwrite":
        for _ in range(draw(st.integers(1, 8))):
            raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
    return bytes(raw)


def encode_variant(image: Image.Image, variant: str, rng: np.random.Generator) -> bytes:
    buffer = io.BytesIO()
    if variant == "PNG16":
        Image.fromarray(np.asarray(image.convert("L")).astype(np.uint16) * 257).save(buffer, "PNG")
    elif variant.startswith("JPEG"):
        color = "CMYK" if variant == "JPEG_CMYK" else "RGB" if image.mode not in ("L", "RGB") else image.mode
        image.convert(color).save(buffer, "JPEG", progressive=variant == "JPEG_PROGRESSIVE")
    elif variant.startswith("BMP"):
        image.convert("RGB").save(buffer, "BMP")
        if variant == "BMP_TOP_DOWN":
            return top_down_bmp(buffer.getvalue())
    elif variant == "GIF_ANIMATED":
        frames = [Image.fromarray(rng.integers(0, 256, (image.height, image.width), np.uint8)) for _ in range(3)]
        image.convert("L").save(buffer, "GIF", save_all=True, append_images=frames)
    else:
        image.save(buffer, variant)
    return buffer.getvalue()


def preprocessed_or_one_clear_error(encoded: bytes) -> np.ndarray | None:
    """What predict.py does with a file's bytes: check they decode, then preprocess them in-graph."""
    try:
        preprocess.check_decodable(encoded)
    except MnistTfError as e:
        assert_one_line(e)
        return None
    image = preprocess.preprocess(tf.constant(encoded)).numpy()
    assert image.shape == (28, 28) and image.dtype == np.uint8
    return image


@given(encoded=encoded_images())
def test_any_image_file_preprocesses_or_is_rejected_in_one_line(encoded):
    preprocessed_or_one_clear_error(encoded)


@given(encoded=st.binary(max_size=2000))
def test_random_bytes_as_an_image_file_are_rejected_in_one_line_or_preprocessed(encoded):
    preprocessed_or_one_clear_error(encoded)


@pytest.fixture(scope="module")
def served(exported_run):
    return saved_model.load(exported_run["export_dir"])[1].signatures


@given(
    shape=st.lists(st.integers(0, 30), min_size=0, max_size=5)
    | st.tuples(st.integers(0, 3), st.just(28), st.just(28)).map(list)
    | st.tuples(st.integers(0, 3), st.just(28), st.just(28), st.integers(0, 3)).map(list)
)
def test_the_serving_signature_answers_any_uint8_shape_or_names_the_shape_it_takes(served, shape):
    images = tf.zeros(shape, tf.uint8)
    try:
        outputs = served[saved_model.SERVING_DEFAULT](images=images)
    except tf.errors.InvalidArgumentError as e:
        assert "images must be uint8 [batch, 28, 28] or [batch, 28, 28, 1], got shape" in e.message
        return
    assert outputs["probabilities"].shape == (shape[0], 10) and len(shape) in (3, 4)


@pytest.mark.slow  # 150 examples through a SavedModel's signature
@given(encoded=st.lists(encoded_images(), min_size=1, max_size=3))
def test_the_image_bytes_signature_serves_every_image_that_decodes(served, encoded):
    decodable = [raw for raw in encoded if preprocessed_or_one_clear_error(raw) is not None]
    if decodable:
        outputs = served[saved_model.IMAGE_BYTES](image_bytes=tf.constant(decodable))
        assert outputs["preprocessed"].shape == (len(decodable), 28, 28)
