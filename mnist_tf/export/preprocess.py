"""MNIST-style preprocessing of photos and scans of digits, in TensorFlow ops.

One implementation serves the SavedModel's `image_bytes` signature and, through it, `scripts/predict.py`, so a
server and the command line can never disagree. The steps follow how MNIST itself was made (LeCun et al.):

  decode PNG/JPEG/GIF/BMP -> grayscale (transparency composited over white) -> light ink on a dark background
  (inverted when the border is light) -> contrast stretched from the background level to the strongest ink ->
  cropped to the ink -> resized to fit a 20x20 box, keeping the aspect ratio -> placed in 28x28 with the ink's
  center of mass at the center.

Every step is shape-agnostic graph code: images of any size and channel count go through one traced function.
"""

from __future__ import annotations

import tensorflow as tf

from mnist_tf.errors import MnistTfError

IMAGE_FORMATS = "PNG, JPEG, GIF or BMP"
MAX_PIXELS = 64 * 2**20  # 67 megapixels: phone photos (12-50 MP) pass, decompression bombs do not
TOO_LARGE = f"the image declares more than {MAX_PIXELS:,} pixels"
_INK_THRESHOLD = 0.25  # of the strongest ink, after the contrast stretch: what counts as the digit when cropping
_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as `tf.image.rgb_to_grayscale`


def check_decodable(encoded: bytes) -> None:
    """Raises MnistTfError unless `encoded` decodes as an image: lets a caller drop one bad file, not a batch."""
    if not encoded:
        raise MnistTfError("empty file")
    try:
        pixels = int(declared_pixels(tf.constant(encoded)))
        if pixels <= MAX_PIXELS:
            tf.io.decode_image(encoded, expand_animations=False)
    except tf.errors.InvalidArgumentError:
        raise MnistTfError(f"not a {IMAGE_FORMATS} image (or a damaged one)") from None
    if pixels > MAX_PIXELS:
        raise MnistTfError(f"{TOO_LARGE} ({pixels:,})")


def declared_pixels(encoded: tf.Tensor) -> tf.Tensor:
    """Width x height as each image file's header declares them, without decoding (int64, shaped as `encoded`;
    0 for an unknown format).

    A few hundred kilobytes of PNG can declare 20000x20000 blank pixels: decoding them took 6 GB and 16 s here, and
    larger ones would take a server down. So sizes are checked before anything is decoded, for a whole batch at
    once: PNG, GIF and BMP headers are plain arithmetic; only JPEGs need their parser, one by one.
    """
    shape, encoded = tf.shape(encoded), tf.reshape(encoded, [-1])  # a vector, whatever came in
    head = tf.strings.join([tf.strings.substr(encoded, 0, 32), tf.constant(bytes(32))])  # 32 bytes at least

    def product(start: int, dtype: tf.DType, little_endian: bool, signed: bool = False) -> tf.Tensor:
        """The product of the two integers of `dtype` at byte `start`: unsigned, or by size when `signed`."""
        raw = tf.io.decode_raw(tf.strings.substr(head, start, 2 * dtype.size), dtype, little_endian)
        width_height = tf.cast(raw, tf.int64)
        width_height = tf.abs(width_height) if signed else width_height % 2**32  # int32 read as uint32
        return tf.reduce_prod(width_height, axis=-1)

    magic = tf.strings.substr(head, 0, 4)
    pixels = tf.where(magic == b"\x89PNG", product(16, tf.int32, little_endian=False), 0)  # IHDR, big-endian
    pixels = tf.where(magic == b"GIF8", product(6, tf.uint16, little_endian=True), pixels)  # logical screen
    # BMP: a negative height means rows stored top-down.
    bmp = product(18, tf.int32, little_endian=True, signed=True)
    pixels = tf.where(tf.strings.substr(magic, 0, 2) == b"BM", bmp, pixels)
    jpegs = tf.where(tf.strings.substr(magic, 0, 2) == b"\xff\xd8")
    jpeg_pixels = tf.map_fn(
        lambda image: tf.reduce_prod(tf.cast(tf.image.extract_jpeg_shape(image)[:2], tf.int64)),
        tf.gather_nd(encoded, jpegs),
        fn_output_signature=tf.int64,
    )
    return tf.reshape(tf.tensor_scatter_nd_update(pixels, jpegs, jpeg_pixels), shape)


def _refuse_too_large(encoded: tf.Tensor) -> tf.Operation:
    return tf.debugging.assert_less_equal(declared_pixels(encoded), tf.constant(MAX_PIXELS, tf.int64), TOO_LARGE)


def decode_grayscale(encoded: tf.Tensor) -> tf.Tensor:
    """Encoded image bytes -> float32 [height, width] in [0, 1], 0 black; transparent pixels read as white."""
    image = tf.io.decode_image(encoded, expand_animations=False, dtype=tf.float32)  # [h, w, 1|2|3|4]
    channels = tf.shape(image)[-1]
    has_alpha = tf.equal(channels % 2, 0)  # gray+alpha or RGBA
    alpha = tf.cond(has_alpha, lambda: image[..., -1], lambda: tf.ones_like(image[..., 0]))
    color = image[..., : channels - tf.cast(has_alpha, tf.int32)]
    gray = tf.cond(
        tf.equal(tf.shape(color)[-1], 3),
        lambda: tf.tensordot(color, tf.constant(_LUMA), axes=1),
        lambda: color[..., 0],
    )
    return gray * alpha + (1.0 - alpha)


def to_mnist(gray: tf.Tensor, size: int = 28) -> tf.Tensor:
    """A grayscale image [h, w] in [0, 1] (any polarity) -> uint8 [size, size] light-on-dark, MNIST-centered.

    A blank image (no ink at all) becomes all zeros rather than an error: a server must answer every request.
    """
    box = max(1, round(size * 20 / 28))  # MNIST fits digits in 20x20 of 28x28
    digit = _fit_in_box(_crop_to_ink(_light_ink_on_dark(gray)), box)
    return tf.cast(tf.round(_place_by_center_of_mass(digit, size) * 255.0), tf.uint8)


def preprocess(encoded: tf.Tensor, size: int = 28) -> tf.Tensor:
    """Encoded image bytes (a scalar string) -> uint8 [size, size], ready for the `serving_default` signature.

    An image that declares more than MAX_PIXELS pixels fails before it is decoded (see `declared_pixels`).
    """
    with tf.control_dependencies([_refuse_too_large(encoded)]):
        return to_mnist(decode_grayscale(encoded), size)


def preprocess_batch(encoded: tf.Tensor, size: int = 28) -> tf.Tensor:
    """A vector of encoded images -> uint8 [batch, size, size]; sizes are checked for the batch first."""
    with tf.control_dependencies([_refuse_too_large(encoded)]):
        return tf.map_fn(
            lambda image: to_mnist(decode_grayscale(image), size),
            encoded,
            fn_output_signature=tf.TensorSpec([size, size], tf.uint8),
        )


def _light_ink_on_dark(gray: tf.Tensor) -> tf.Tensor:
    """Inverts an image whose border (the paper) is light; stretches background..strongest ink to 0..1."""
    border = tf.concat([gray[0, :], gray[-1, :], gray[:, 0], gray[:, -1]], axis=0)
    background = _median(border)
    light_background = background > 0.5
    ink = tf.where(light_background, 1.0 - gray, gray)
    background = tf.where(light_background, 1.0 - background, background)
    contrast = tf.reduce_max(ink) - background
    stretched = tf.clip_by_value((ink - background) / tf.maximum(contrast, 1e-3), 0.0, 1.0)
    return tf.where(contrast > 1e-3, stretched, 0.0)


def _crop_to_ink(ink: tf.Tensor) -> tf.Tensor:
    """The bounding box of the pixels that count as ink; a single blank pixel when there are none."""
    rows = tf.where(tf.reduce_max(ink, axis=1) >= _INK_THRESHOLD)[:, 0]
    cols = tf.where(tf.reduce_max(ink, axis=0) >= _INK_THRESHOLD)[:, 0]
    return tf.cond(
        tf.equal(tf.size(rows), 0),
        lambda: tf.zeros([1, 1]),
        lambda: ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1],
    )


def _fit_in_box(digit: tf.Tensor, box: int) -> tf.Tensor:
    """Resizes so the longer side is `box` pixels, keeping the aspect ratio (antialiased when shrinking)."""
    shape = tf.cast(tf.shape(digit), tf.float32)
    new_size = tf.maximum(1, tf.cast(tf.round(shape * box / tf.reduce_max(shape)), tf.int32))
    resized = tf.image.resize(digit[..., tf.newaxis], new_size, method="bilinear", antialias=True)[..., 0]
    return tf.clip_by_value(resized, 0.0, 1.0)


def _place_by_center_of_mass(digit: tf.Tensor, size: int) -> tf.Tensor:
    top = _centering_offset(tf.reduce_sum(digit, axis=1), size)
    left = _centering_offset(tf.reduce_sum(digit, axis=0), size)
    height, width = tf.shape(digit)[0], tf.shape(digit)[1]
    placed = tf.pad(digit, [[top, size - height - top], [left, size - width - left]])
    return tf.ensure_shape(placed, [size, size])


def _median(values: tf.Tensor) -> tf.Tensor:
    return tf.sort(values)[tf.size(values) // 2]


def _centering_offset(mass: tf.Tensor, size: int) -> tf.Tensor:
    """Where to place a profile of `len(mass)` pixels so that its center of mass lands on pixel `size // 2`.

    Pixel 14 of 28 (counting from 0) is where MNIST's own centers of mass sit (measured on its test set).
    """
    length = tf.shape(mass)[0]
    total = tf.reduce_sum(mass)
    center = tf.reduce_sum(mass * tf.range(tf.cast(length, tf.float32))) / tf.maximum(total, 1e-6)
    offset = tf.cast(tf.round(size // 2 - center), tf.int32)
    return tf.clip_by_value(offset, 0, size - length)
