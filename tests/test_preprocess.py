"""MNIST-style preprocessing of image files (mnist_tf/preprocess.py), on images the tests draw themselves."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import tensorflow as tf
from conftest import REAL_MNIST, requires_real_mnist
from image_files import animated_gif, declaring_a_huge_size, saved, top_down_bmp
from PIL import Image, ImageDraw

from mnist_tf.data import idx, preprocess
from mnist_tf.errors import MnistTfError
from mnist_tf.export import saved_model


def stroke_image(height: int, width: int, light_background: bool) -> np.ndarray:
    """A thick off-center "L" on a canvas of the given size: ink 255 on 0 (or 0 on 255), uint8 [h, w]."""
    image = np.zeros((height, width), np.uint8)
    top, left = height // 5, width // 6
    image[top : top + height // 2, left : left + max(2, width // 12)] = 255
    image[top + height // 2 - max(2, height // 12) : top + height // 2, left : left + width // 3] = 255
    return 255 - image if light_background else image


def encode(image: np.ndarray, fmt: str) -> bytes:
    """uint8 [h, w] grayscale -> PNG/JPEG bytes in the requested channel layout."""
    gray = image[..., np.newaxis]
    layouts = {
        "png_gray": lambda: tf.io.encode_png(gray),
        "png_rgb": lambda: tf.io.encode_png(np.repeat(gray, 3, axis=-1)),
        "png_gray_alpha": lambda: tf.io.encode_png(np.concatenate([gray, np.full_like(gray, 255)], axis=-1)),
        "png_rgba": lambda: tf.io.encode_png(np.concatenate([np.repeat(gray, 3, -1), np.full_like(gray, 255)], -1)),
        "jpeg_rgb": lambda: tf.io.encode_jpeg(np.repeat(gray, 3, axis=-1), quality=95),
        "jpeg_gray": lambda: tf.io.encode_jpeg(gray, quality=95),
    }
    return layouts[fmt]().numpy()


def center_of_mass(image: np.ndarray) -> np.ndarray:
    rows, cols = np.indices(image.shape)
    mass = image.astype(np.float64)
    return np.array([(rows * mass).sum(), (cols * mass).sum()]) / mass.sum()


@pytest.mark.parametrize("fmt", ["png_gray", "png_rgb", "png_gray_alpha", "png_rgba", "jpeg_rgb", "jpeg_gray"])
@pytest.mark.parametrize("size", [(28, 28), (120, 90), (400, 700)])
@pytest.mark.parametrize("light_background", [False, True])
def test_any_image_becomes_a_centered_light_on_dark_28x28_digit(fmt, size, light_background):
    out = preprocess.preprocess(encode(stroke_image(*size, light_background), fmt)).numpy()
    assert out.shape == (28, 28) and out.dtype == np.uint8
    ink_rows, ink_cols = np.nonzero(out > 64)
    assert max(np.ptp(ink_rows), np.ptp(ink_cols)) + 1 <= 21  # fitted to the 20x20 box (one pixel of antialiasing)
    assert max(np.ptp(ink_rows), np.ptp(ink_cols)) + 1 >= 18  # ... and filling it
    np.testing.assert_allclose(center_of_mass(out), [14, 14], atol=1.0)
    assert out.max() >= 250 and np.median(out) == 0  # strongest ink 255, background 0, whatever the polarity


def test_both_polarities_give_the_same_image():
    dark_on_light = preprocess.preprocess(encode(stroke_image(150, 100, True), "png_gray")).numpy()
    light_on_dark = preprocess.preprocess(encode(stroke_image(150, 100, False), "png_gray")).numpy()
    np.testing.assert_array_equal(dark_on_light, light_on_dark)


def test_transparent_background_reads_as_paper():
    """A black stroke on a fully transparent canvas (what drawing apps export) is ink on white paper."""
    rgba = np.zeros((60, 60, 4), np.uint8)
    rgba[10:50, 28:33, 3] = 255  # black, opaque stroke; everything else transparent black
    out = preprocess.preprocess(tf.io.encode_png(rgba).numpy()).numpy()
    assert out.max() == 255 and np.median(out) == 0
    np.testing.assert_allclose(center_of_mass(out), [14, 14], atol=1.0)


def test_blank_and_tiny_images_give_an_answer_not_an_error():
    assert preprocess.preprocess(encode(np.full((40, 40), 255, np.uint8), "png_gray")).numpy().max() == 0
    dot = preprocess.preprocess(encode(np.array([[0, 0], [0, 255]], np.uint8), "png_gray")).numpy()
    assert dot.max() == 255 and (dot > 0).sum() == 400  # one ink pixel, scaled to fill the box


def test_batch_of_mixed_sizes_equals_one_by_one():
    images = [encode(stroke_image(h, w, h % 2 == 0), "png_rgb") for h, w in [(28, 28), (64, 200), (301, 77)]]
    batch = preprocess.preprocess_batch(tf.constant(images)).numpy()
    for image, row in zip(images, batch, strict=True):
        np.testing.assert_array_equal(preprocess.preprocess(image).numpy(), row)


@pytest.mark.parametrize(
    "data, message",
    [(b"", "empty file"), (b"hello, world", "not a PNG, JPEG, GIF or BMP image"), (b"\x89PNG\r\n\x1a\n", "damaged")],
)
def test_undecodable_bytes_are_a_clear_error(data, message):
    with pytest.raises(MnistTfError, match=message):
        preprocess.check_decodable(data)


def test_a_good_image_passes_the_check():
    preprocess.check_decodable(encode(stroke_image(30, 30, True), "jpeg_rgb"))


@pytest.mark.parametrize("image_format", ["PNG", "GIF", "BMP", "JPEG"])
def test_an_image_declaring_too_many_pixels_is_refused_before_it_is_decoded(image_format):
    """A decompression bomb: a 400-megapixel PNG of blank paper is 438 kB, and decoding it took 6 GB here."""
    encoded = declaring_a_huge_size(image_format)
    with pytest.raises(MnistTfError, match=r"^the image declares more than 67,108,864 pixels \(\d[\d,]+\)$"):
        preprocess.check_decodable(encoded)
    with pytest.raises(tf.errors.InvalidArgumentError, match="the image declares more than 67,108,864 pixels"):
        preprocess.preprocess(tf.constant(encoded))  # in the graph, as the SavedModel's image_bytes signature runs it


def test_a_served_model_refuses_an_image_declaring_too_many_pixels(exported_run):
    signature = saved_model.load(exported_run["export_dir"])[1].signatures[saved_model.IMAGE_BYTES]
    with pytest.raises(tf.errors.InvalidArgumentError, match="the image declares more than 67,108,864 pixels"):
        signature(image_bytes=tf.constant([declaring_a_huge_size("PNG")]))


@pytest.mark.slow  # reads the real MNIST files
@requires_real_mnist
def test_mnist_test_digits_come_back_almost_unchanged():
    """MNIST digits are already MNIST-style: preprocessing them again must be (nearly) the identity."""
    images, _ = idx.load_split(REAL_MNIST, "test")
    images = images[:300]
    encoded = tf.constant([tf.io.encode_png(image[..., np.newaxis]).numpy() for image in images])
    out = preprocess.preprocess_batch(encoded).numpy().astype(np.int64)
    mean_abs_difference = np.abs(out - images).mean()
    # Of 255: the noise floor takes the faintest fringe of antialiasing (below 20% of the strongest ink) away and
    # stretches the rest; measured 5.2 (0.28 before the floor). MNIST validation reads as before (docs/not_a_digit.md).
    assert mean_abs_difference < 6.5


# Hostile inputs: formats that are not accepted, animations, batches too large, and the position of the bad image.


def stroke_file(image_format: str = "PNG") -> bytes:
    return saved(Image.fromarray(stroke_image(60, 50, light_background=True)), image_format)


def test_webp_is_refused_in_one_line_naming_the_accepted_formats():
    webp = saved(Image.fromarray(stroke_image(60, 50, True)), "WEBP", lossless=True)
    with pytest.raises(MnistTfError, match=r"^not a PNG, JPEG, GIF or BMP image \(or a damaged one\)$"):
        preprocess.check_decodable(webp)
    assert preprocess.FORMATS and "WebP" not in preprocess.IMAGE_FORMATS


def test_an_error_in_the_graph_names_the_image_at_fault():
    good, webp = stroke_file(), saved(Image.new("L", (30, 30)), "WEBP")
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"image 2 of the batch, from 0"):
        preprocess.preprocess_batch(tf.constant([good, good, webp, good]))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"pixels \(400000000\): image 1 of the batch, from 0"):
        preprocess.preprocess_batch(tf.constant([good, declaring_a_huge_size("PNG")]))


def test_an_animated_gif_is_read_by_its_first_frame_only():
    first = stroke_image(60, 50, light_background=True)
    frames = [first, np.full_like(first, 255), 255 - first]  # then blank paper, then the negative
    encoded = animated_gif(frames)
    expected = preprocess.preprocess(tf.constant(saved(Image.fromarray(first), "GIF"))).numpy()
    np.testing.assert_array_equal(preprocess.preprocess(tf.constant(encoded)).numpy(), expected)
    cut, pixels = preprocess.first_gif_frame(tf.constant(encoded))
    assert int(pixels) == 60 * 50 and len(cut.numpy()) < len(encoded) / 2
    assert tf.io.decode_gif(cut).shape[0] == 1  # what is decoded is one frame


@pytest.mark.parametrize("extensions", [0, 3])
def test_the_first_frame_is_found_after_any_extensions(extensions):
    """Comments and application blocks (NETSCAPE looping) may precede the first image."""
    frames = [stroke_image(40, 30, True), np.full((40, 30), 255, np.uint8)]
    raw = bytearray(animated_gif(frames))
    table = 3 * 2 ** ((raw[10] & 7) + 1) if raw[10] & 0x80 else 0
    comment = b"\x21\xfe" + b"\x05hello" + b"\x00"
    raw[13 + table : 13 + table] = comment * extensions
    cut, pixels = preprocess.first_gif_frame(tf.constant(bytes(raw)))
    assert int(pixels) == 40 * 30 and tf.io.decode_gif(cut).shape == (1, 40, 30, 3)


def test_a_gif_whose_first_frame_declares_too_many_pixels_is_refused_before_it_is_decoded():
    """A 1x1 logical screen does not hide a 60000x60000 frame."""
    raw = bytearray(saved(Image.new("L", (40, 30), 255), "GIF"))
    raw[6:10] = struct.pack("<HH", 1, 1)
    table = 3 * 2 ** ((raw[10] & 7) + 1) if raw[10] & 0x80 else 0
    descriptor = raw.index(b"\x2c", 13 + table)
    raw[descriptor + 5 : descriptor + 9] = struct.pack("<HH", 60000, 60000)
    with pytest.raises(MnistTfError, match=r"^the image declares more than 67,108,864 pixels \(3,600,000,000\)$"):
        preprocess.check_decodable(bytes(raw))


@pytest.mark.parametrize("name", ["png16", "cmyk_jpeg", "progressive_jpeg", "bmp_rgb", "bmp_top_down"])
def test_every_accepted_variant_preprocesses(name):
    image = Image.fromarray(stroke_image(60, 50, light_background=True))
    encoded = {
        "png16": lambda: saved(Image.fromarray(np.asarray(image).astype(np.uint16) * 257), "PNG"),
        "cmyk_jpeg": lambda: saved(image.convert("CMYK"), "JPEG"),
        "progressive_jpeg": lambda: saved(image.convert("RGB"), "JPEG", progressive=True),
        "bmp_rgb": lambda: saved(image.convert("RGB"), "BMP"),
        "bmp_top_down": lambda: top_down_bmp(saved(image.convert("RGB"), "BMP")),
    }[name]()
    preprocess.check_decodable(encoded)
    expected = preprocess.preprocess(tf.constant(stroke_file())).numpy()
    out = preprocess.preprocess(tf.constant(encoded)).numpy()
    assert np.abs(out.astype(int) - expected).mean() < 8  # the same digit (JPEG's blur aside)


def test_a_bmp_tensorflow_cannot_decode_is_one_line():
    """TensorFlow decodes 24- and 32-bit BMPs; a 1-bit one is refused like a damaged file, not a crash."""
    one_bit = saved(Image.fromarray(stroke_image(60, 50, True)).convert("1"), "BMP")
    with pytest.raises(MnistTfError, match=r"^not a PNG, JPEG, GIF or BMP image \(or a damaged one\)$"):
        preprocess.check_decodable(one_bit)


def test_a_served_model_refuses_more_images_than_a_call_may_take(exported_run):
    signature = saved_model.load(exported_run["export_dir"])[1].signatures[saved_model.IMAGE_BYTES]
    good = stroke_file()
    assert signature(image_bytes=tf.constant([good] * preprocess.MAX_BATCH))["classes"].shape == (preprocess.MAX_BATCH,)
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=f"at most 256 images per call, got {preprocess.MAX_BATCH + 1}"
    ):
        signature(image_bytes=tf.constant([good] * (preprocess.MAX_BATCH + 1)))


def test_an_empty_batch_is_an_empty_answer():
    assert preprocess.preprocess_batch(tf.constant([], tf.string)).shape == (0, 28, 28)


def photographed_seven(shadow: bool) -> np.ndarray | bytes:
    """A 7 in thick pen: its ink map (float [200, 160], 1 on 0), or a JPEG photo of it on grey paper with grain,
    a light gradient and a shadow's soft edge across the middle of the page."""
    image = Image.new("L", (160, 200), 255)
    ImageDraw.Draw(image).line([(30, 40), (125, 40), (70, 170)], fill=0, width=12, joint="curve")
    ink = 1 - np.asarray(image, np.float32) / 255
    if not shadow:
        return ink
    ys, xs = np.mgrid[0:200, 0:160] / 200
    light = 0.8 * (1 + 0.2 * xs - 0.15 * ys) * (1 - 0.45 / (1 + np.exp(-(xs - 0.45) / 0.03)))
    photo = light * (1 - 0.8 * ink) + np.random.default_rng(0).normal(0, 0.03, ink.shape)
    return saved(Image.fromarray((np.clip(photo, 0, 1) * 255).astype(np.uint8)), "JPEG", quality=60)


def test_a_photo_with_a_shadow_comes_out_as_the_clean_drawing():
    """The paper's level is estimated across the page: the shadow, the gradient and the grain fall away and the 7
    is cropped and centred as drawn (the border's level alone took the shadow for ink: 23 of 255 apart)."""
    clean = preprocess.to_mnist(tf.constant(photographed_seven(shadow=False))).numpy().astype(np.int64)
    photo = preprocess.preprocess_file(photographed_seven(shadow=True)).astype(np.int64)
    assert np.abs(clean - photo).mean() < 8  # of 255; measured 4.2
