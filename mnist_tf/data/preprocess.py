"""MNIST-style preprocessing of photos and scans of digits, in TensorFlow ops.

One implementation serves the SavedModel's `image_bytes` signature and, through it, `scripts/predict.py`, so a
server and the command line can never disagree. The steps follow how MNIST itself was made (LeCun et al.):

  check the batch (accepted formats, declared sizes) -> decode PNG/JPEG/BMP, or a GIF's first frame -> grayscale
  (transparency composited over white) -> the ink above its paper, light on dark, stretched (of two estimates of
  the paper, the border's median or its level across the image, where uneven light, shadows and grain fall away,
  the one that leaves the least ink) -> cropped to the ink -> resized to fit a 20x20 box, keeping the aspect ratio
  -> placed in 28x28 with the ink's center of mass at the center.

Every step is shape-agnostic graph code: images of any size and channel count go through one traced function.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from mnist_tf.errors import MnistTfError, assertion_message

# The accepted formats, by the bytes their files start with: the one list for the graph, predict.py and evaluate.py.
# TensorFlow also decodes WebP, but only as uint8 and without a size guard: refused like any other format.
FORMATS = {b"\x89PNG": "PNG", b"\xff\xd8": "JPEG", b"GIF8": "GIF", b"BM": "BMP"}
IMAGE_FORMATS = ", ".join(list(FORMATS.values())[:-1]) + " or " + list(FORMATS.values())[-1]
NOT_AN_IMAGE = f"not a {IMAGE_FORMATS} image (or a damaged one)"
MAX_PIXELS = 64 * 2**20  # 67 megapixels: phone photos (12-50 MP) pass, decompression bombs do not
TOO_LARGE = f"the image declares more than {MAX_PIXELS:,} pixels"
MAX_BATCH = 256  # images per call of the image_bytes signature
TOO_MANY = f"at most {MAX_BATCH} images per call"
_INK_THRESHOLD = 0.25  # of the strongest ink, after the contrast stretch: what counts as the digit when cropping
# The paper's level is estimated on the image shrunk to _PAPER_GRID cells on its longer side, where a stroke is
# thinner than _PAPER_WINDOW cells: wide enough that a marker's strokes in a tight crop are never taken for paper.
_PAPER_GRID = 4
_PAPER_WINDOW = 3
_NOISE_FLOOR = 0.2  # of the strongest ink: grain, JPEG ringing and faint ruled lines below it are paper
_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as `tf.image.rgb_to_grayscale`
_POSITION = ": image {} of the batch, from 0"  # how an in-graph error names the image at fault


def check_decodable(encoded: bytes) -> None:
    """Raises MnistTfError unless `encoded` preprocesses: lets a caller drop one bad file, not a batch."""
    preprocess_file(encoded)


def preprocess_file(encoded: bytes) -> np.ndarray:
    """One image file's bytes -> uint8 [28, 28], as the image_bytes signature sees it; MnistTfError (one line)
    for a file it refuses.

    It runs the very graph code of that signature on a batch of one, so a file that passes can never fail there,
    and a folder of images trains on what a server will be sent (`data.folder`).
    """
    if not encoded:
        raise MnistTfError("empty file")
    try:
        return compiled(28)(tf.constant([encoded]))[0].numpy()
    except tf.errors.InvalidArgumentError as e:
        message = assertion_message(e)
        if not message.endswith(_POSITION.format(0)):  # not one of our checks: the decoder's own error
            raise MnistTfError(NOT_AN_IMAGE) from None
        problem = message.removesuffix(_POSITION.format(0))
        raise MnistTfError(re.sub(r"\((\d+)\)$", lambda m: f"({int(m[1]):,})", problem)) from None  # (1,234)


def check_request_size(encoded: tf.Tensor) -> tf.Operation:
    """Refuses more than MAX_BATCH images in one call: what a server's request may cost is bounded."""
    count = tf.size(encoded)
    return tf.debugging.Assert(count <= MAX_BATCH, [tf.strings.format(TOO_MANY + ", got {}", count)])


def check_batch(encoded: tf.Tensor) -> tf.Operation:
    """Refuses a batch before anything is decoded: a format that is not accepted, or a header that declares more
    than MAX_PIXELS pixels; the message names the first image at fault."""
    encoded = tf.reshape(encoded, [-1])
    pixels = declared_pixels(encoded)
    not_an_image = _assert_each(accepted_format(encoded), lambda _: NOT_AN_IMAGE)
    with tf.control_dependencies([not_an_image]):
        return _assert_each(pixels <= MAX_PIXELS, lambda i: tf.strings.format(TOO_LARGE + " ({})", pixels[i]))


def _assert_each(ok: tf.Tensor, problem: Callable[[tf.Tensor], tf.Tensor | str]) -> tf.Operation:
    """Asserts that `ok` holds for every image; the message is `problem(i)` for the first image i where it does not
    (worked out only then: an empty batch has no first image)."""

    def message() -> tf.Tensor:
        first = tf.argmin(tf.cast(ok, tf.int32), output_type=tf.int32)
        return tf.strings.join([problem(first), tf.strings.format(_POSITION, first)])

    all_ok = tf.reduce_all(ok)
    return tf.debugging.Assert(all_ok, [tf.cond(all_ok, lambda: tf.constant(""), message)])


def accepted_format(encoded: tf.Tensor) -> tf.Tensor:
    """Whether each file starts as one of FORMATS does (bool, shaped as `encoded`)."""
    starts = [tf.strings.substr(encoded, 0, len(magic)) == magic for magic in FORMATS]
    return tf.reduce_any(tf.stack(starts), axis=0)


def declared_pixels(encoded: tf.Tensor) -> tf.Tensor:
    """Width x height as each image file's header declares them, without decoding (int64, shaped as `encoded`;
    0 for a format that is not accepted).

    A few hundred kilobytes of PNG can declare 20000x20000 blank pixels, which take gigabytes to decode. So sizes
    are checked before anything is decoded, for a whole batch at once: PNG, GIF and BMP headers are plain
    arithmetic; only JPEGs need their parser, one by one. A GIF's first frame is checked again when it is cut out.
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


def first_gif_frame(encoded: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(the file cut after its first image and closed, that image's declared pixels): a GIF decodes all its frames
    into memory before TensorFlow keeps the first, so an animation of hundreds of frames is cut to one first.

    Walks the GIF's blocks (extensions and image data are chains of sub-blocks of at most 255 bytes) up to the end
    of the first image. Other formats come back as they are, with 0 pixels.
    """
    length = tf.strings.length(encoded)
    padded = tf.strings.join([encoded, tf.constant(bytes(16))])  # reads a few bytes past a block's start

    def byte(at: tf.Tensor) -> tf.Tensor:
        return tf.cast(tf.io.decode_raw(tf.strings.substr(padded, at, 1), tf.uint8)[0], tf.int32)

    def color_table(flags: tf.Tensor) -> tf.Tensor:  # bytes of the color table a descriptor's flags announce
        return tf.where(flags >= 128, 3 * tf.bitwise.left_shift(2, flags % 8), 0)

    def step(at, in_blocks, pixels, done):
        value = byte(at)
        end_of_chain = in_blocks & tf.equal(value, 0)
        image = ~in_blocks & tf.equal(value, 0x2C)
        extension = ~in_blocks & tf.equal(value, 0x21)
        image_pixels = tf.cast(byte(at + 5) + 256 * byte(at + 6), tf.int64) * tf.cast(
            byte(at + 7) + 256 * byte(at + 8), tf.int64
        )
        next_at = tf.where(
            in_blocks,
            at + value + 1,
            tf.where(image, at + 11 + color_table(byte(at + 9)), tf.where(extension, at + 2, at)),
        )
        pixels = tf.where(image, image_pixels, pixels)
        done = (end_of_chain & (pixels >= 0)) | ~(in_blocks | image | extension)  # image done, or no more blocks
        return next_at, (in_blocks & ~end_of_chain) | image | extension, pixels, done

    def cut() -> tuple[tf.Tensor, tf.Tensor]:
        start = 13 + color_table(byte(10))  # after the header, the logical screen and its color table
        state = (start, tf.constant(False), tf.constant(-1, tf.int64), tf.constant(False))
        at, _, pixels, _ = tf.while_loop(lambda at, *rest: ~rest[-1] & (at < length), step, state)
        return tf.strings.join([tf.strings.substr(encoded, 0, tf.minimum(at, length)), b";"]), tf.maximum(pixels, 0)

    is_gif = tf.strings.substr(encoded, 0, 4) == b"GIF8"
    return tf.cond(is_gif, cut, lambda: (encoded, tf.constant(0, tf.int64)))


def decode_grayscale(encoded: tf.Tensor, position: tf.Tensor | int = 0) -> tf.Tensor:
    """Encoded image bytes -> float32 [height, width] in [0, 1], 0 black; transparent pixels read as white.

    Only a GIF's first frame is decoded (see `first_gif_frame`); `position` names the image in an error.
    """
    encoded, frame_pixels = first_gif_frame(encoded)
    frame_fits = tf.debugging.Assert(
        frame_pixels <= MAX_PIXELS,
        [
            tf.strings.join(
                [
                    tf.strings.format(TOO_LARGE + " ({})", frame_pixels),
                    tf.strings.format(_POSITION, tf.convert_to_tensor(position)),  # the default 0 too
                ]
            )
        ],
    )
    with tf.control_dependencies([frame_fits]):
        # uint8, then float: decoding straight to float32 crashes TensorFlow on BMPs stored top-down (docs/serving.md).
        pixels = tf.cond(  # [h, w, 1|2|3|4]
            tf.strings.substr(encoded, 0, 2) == b"\xff\xd8",
            # The exact inverse DCT, as browsers decode: TensorFlow's default fast one is off by up to 17 levels
            # at JPEG quality 95 (the page in web/ must see what predict.py sees).
            lambda: tf.io.decode_jpeg(encoded, dct_method="INTEGER_ACCURATE"),
            lambda: tf.io.decode_image(encoded, expand_animations=False),
        )
    image = tf.image.convert_image_dtype(pixels, tf.float32)
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


def to_mnist_each(grays: Sequence[np.ndarray], size: int = 28) -> np.ndarray:
    """Float images [h, w] in [0, 1] of any sizes and either polarity -> uint8 [N, size, size, 1], each as `to_mnist`
    makes it: MAX_BATCH at a time, padded to one shape for one call and each cut back to its own inside it."""
    batches = [_to_mnist_padded(grays[i : i + MAX_BATCH], size) for i in range(0, len(grays), MAX_BATCH)]
    return np.concatenate(batches or [np.zeros((0, size, size), np.uint8)])[..., np.newaxis]


def _to_mnist_padded(grays: Sequence[np.ndarray], size: int) -> np.ndarray:
    padded = np.zeros((len(grays), *np.max([g.shape for g in grays], axis=0)), np.float32)
    for i, gray in enumerate(grays):
        padded[i, : gray.shape[0], : gray.shape[1]] = gray
    return _to_mnist_in_graph(size)(padded, np.array([g.shape for g in grays], np.int32)).numpy()


@functools.cache
def _to_mnist_in_graph(size: int) -> Callable[[np.ndarray, np.ndarray], tf.Tensor]:
    def each(padded: tf.Tensor, shapes: tf.Tensor) -> tf.Tensor:
        return tf.map_fn(
            lambda pair: to_mnist(pair[0][: pair[1][0], : pair[1][1]], size),
            (padded, shapes),
            fn_output_signature=tf.TensorSpec([size, size], tf.uint8),
        )

    signature = [tf.TensorSpec([None, None, None], tf.float32), tf.TensorSpec([None, 2], tf.int32)]
    return tf.function(each, input_signature=signature)


def preprocess(encoded: tf.Tensor, size: int = 28) -> tf.Tensor:
    """Encoded image bytes (a scalar string) -> uint8 [size, size], ready for the `serving_default` signature.

    Checked first as `preprocess_batch` checks a batch (see `check_batch`).
    """
    return preprocess_batch(tf.reshape(encoded, [1]), size)[0]


def preprocess_batch(encoded: tf.Tensor, size: int = 28) -> tf.Tensor:
    """A vector of encoded images -> uint8 [batch, size, size], after `check_batch`.

    One image at a time: a batch costs the memory of its largest image, not of all of them at once.
    """
    with tf.control_dependencies([check_batch(encoded)]):
        positions = tf.range(tf.size(encoded))
    return tf.map_fn(
        lambda image_at: to_mnist(decode_grayscale(image_at[0], image_at[1]), size),
        (encoded, positions),
        fn_output_signature=tf.TensorSpec([size, size], tf.uint8),
        parallel_iterations=1,
    )


@functools.cache
def compiled(size: int) -> Callable[[tf.Tensor], tf.Tensor]:
    """`preprocess_batch` to `size` as one tf.function per process, for every caller outside a SavedModel: traced
    once (seconds: the graph is large), for a batch of any length."""
    return tf.function(
        functools.partial(preprocess_batch, size=size), input_signature=[tf.TensorSpec([None], tf.string)]
    )


def _light_ink_on_dark(gray: tf.Tensor) -> tf.Tensor:
    """The ink above its paper, light on dark, stretched from a noise floor (0) to the strongest ink (1): of two
    estimates of the paper, the one that leaves the least ink (a digit is a few strokes; paper taken for ink is a
    lot of it).

    The border's level (`_above_the_border`) is right for clean drawings and tight crops; the level estimated
    across the image (`_above_the_paper`) for uneven light, shadows and grainy paper.
    """
    border, paper = _above_the_border(gray), _above_the_paper(gray)
    return tf.where(_ink_pixels(paper) < _ink_pixels(border), paper, border)


def _ink_pixels(ink: tf.Tensor) -> tf.Tensor:
    return tf.math.count_nonzero(ink >= _INK_THRESHOLD)


def _above_the_border(gray: tf.Tensor) -> tf.Tensor:
    """The ink above the border's median (the paper; inverted when it is light)."""
    border = tf.concat([gray[0, :], gray[-1, :], gray[:, 0], gray[:, -1]], axis=0)
    background = tf.sort(border)[tf.size(border) // 2]
    light_background = background > 0.5
    ink = tf.where(light_background, 1.0 - gray, gray)
    return _stretched(ink - tf.where(light_background, 1.0 - background, background))


def _above_the_paper(gray: tf.Tensor) -> tf.Tensor:
    """The ink above the paper's level across the image.

    The paper's level is the image's morphological closing (for dark ink) or opening (for light ink) on a coarse
    grid, brought back to full size: it follows uneven light and shadows, and no stroke fits in its window. The
    ink's polarity is the one whose strokes stand out more above that level.
    """
    height, width = tf.shape(gray)[0], tf.shape(gray)[1]
    small = _fit_in_box(gray, _PAPER_GRID)
    closing = _window(_window(small, tf.nn.max_pool2d), _min_pool2d)  # the paper under dark ink
    opening = _window(_window(small, _min_pool2d), tf.nn.max_pool2d)  # the paper under light ink
    levels = _resize(tf.stack([closing, opening], axis=-1), height, width)
    dark, light = tf.nn.relu(levels[..., 0] - gray), tf.nn.relu(gray - levels[..., 1])
    return _stretched(tf.where(tf.reduce_max(dark) >= tf.reduce_max(light), dark, light))


def _stretched(above: tf.Tensor) -> tf.Tensor:
    """How far each pixel's ink rises above the paper, from the noise floor (0) to the strongest ink (1)."""
    contrast = tf.reduce_max(above)
    floor = _NOISE_FLOOR * contrast
    stretched = tf.clip_by_value((above - floor) / tf.maximum(contrast - floor, 1e-3), 0.0, 1.0)
    return tf.where(contrast > 1e-3, stretched, 0.0)


def _window(image: tf.Tensor, pool: Callable[..., tf.Tensor]) -> tf.Tensor:
    """`pool` (max or min) over the _PAPER_WINDOW x _PAPER_WINDOW cells around each cell, inside the image."""
    return pool(image[tf.newaxis, ..., tf.newaxis], _PAPER_WINDOW, 1, "SAME")[0, ..., 0]


def _min_pool2d(images: tf.Tensor, *args: object) -> tf.Tensor:
    return -tf.nn.max_pool2d(-images, *args)


def _resize(image: tf.Tensor, height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """[h, w, channels] -> [height, width, channels], antialiased bilinear (as `_fit_in_box`; the page's too)."""
    return tf.image.resize(image, tf.stack([height, width]), method="bilinear", antialias=True)


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
    return tf.clip_by_value(_resize(digit[..., tf.newaxis], new_size[0], new_size[1])[..., 0], 0.0, 1.0)


def _place_by_center_of_mass(digit: tf.Tensor, size: int) -> tf.Tensor:
    top = _centering_offset(tf.reduce_sum(digit, axis=1), size)
    left = _centering_offset(tf.reduce_sum(digit, axis=0), size)
    height, width = tf.shape(digit)[0], tf.shape(digit)[1]
    placed = tf.pad(digit, [[top, size - height - top], [left, size - width - left]])
    return tf.ensure_shape(placed, [size, size])


def _centering_offset(mass: tf.Tensor, size: int) -> tf.Tensor:
    """Where to place a profile of `len(mass)` pixels so that its center of mass lands on pixel `size // 2`.

    Pixel 14 of 28 (counting from 0) is where MNIST's own centers of mass sit (measured on its test set).
    """
    length = tf.shape(mass)[0]
    total = tf.reduce_sum(mass)
    center = tf.reduce_sum(mass * tf.range(tf.cast(length, tf.float32))) / tf.maximum(total, 1e-6)
    offset = tf.cast(tf.round(size // 2 - center), tf.int32)
    return tf.clip_by_value(offset, 0, size - length)
