"""Random distortion of training images (rotation, scale, shear, shift, stroke width, mirroring), on the device
that trains.

It runs inside the compiled train step, after the batch has reached its replica: plain tensor ops (a gather and a
bilinear blend, no image kernels), so it costs little on GPUs and TPUs, compiles with XLA, and does not starve a
2-core CPU's input pipeline. Each image's distortion is drawn from (seed, global step) alone, for the whole global
batch, and each replica takes its own slice: a run repeats exactly, resumes bit-identically after an interruption,
and distorts the same images the same way with 1 replica or 8 (the same rule as `nn.layers.Dropout`).
"""

from __future__ import annotations

import dataclasses
import math

import tensorflow as tf

_SALT = 0x617567  # "aug": draws of its own, never those of a dropout layer seeded alike
_MIRROR_SALT = 0x6D6972  # "mir": mirroring's draws apart, so that runs without it draw exactly as before


@dataclasses.dataclass(frozen=True)
class Distortion:
    """The largest distortion at strength 1 (each drawn uniformly in +-these); MNIST's own digits vary this much."""

    rotation_degrees: float = 12.0
    scale: float = 0.12  # +-12% of the size
    shear_degrees: float = 8.0
    shift_pixels: float = 2.0
    stroke_change: float = 0.4  # the share of images drawn a pixel thicker or thinner (half each): pens differ
    mirror: float = 0.0  # the share of images flipped left to right: a shoe faces either way, a digit never does

    def scaled(self, strength: float) -> Distortion:
        scaled = Distortion(*(strength * getattr(self, field.name) for field in dataclasses.fields(self)))
        return dataclasses.replace(scaled, stroke_change=min(1.0, scaled.stroke_change), mirror=min(0.5, scaled.mirror))


# --augmentation: what varies in a data set's images. Handwriting: the pen and the hand (the defaults above).
# Objects (clothes, ...): which way they face. Fashion-MNIST centres and scales every item, so shifts and scaling
# only cost accuracy in a default run (docs/datasets.md has the validation numbers); never turned or sheared.
DISTORTIONS = {
    "handwriting": Distortion(),
    "objects": Distortion(0.0, 0.0, 0.0, 0.0, stroke_change=0.0, mirror=0.5),
}


def augment(images: tf.Tensor, seed: int, step: tf.Tensor, distortion: Distortion, portable: bool = True) -> tf.Tensor:
    """Distorted float images [batch, rows, cols, channels] (0 is background: what moves in from outside).

    `portable` resamples with plain ops that XLA compiles (TPUs, `--jit_compile`); otherwise with TensorFlow's
    image kernel, several times faster on CPUs and GPUs. Both give the same images.
    """
    replica = tf.distribute.get_replica_context()
    replicas, index = (replica.num_replicas_in_sync, replica.replica_id_in_sync_group) if replica else (1, 0)
    batch = tf.shape(images)[0]
    key = tf.random.experimental.stateless_fold_in(tf.constant([seed, _SALT], tf.int64), tf.cast(step, tf.int64))
    draws = tf.random.stateless_uniform([batch * replicas, 6], seed=key, minval=-1.0, maxval=1.0)
    draws = draws[index * batch : (index + 1) * batch]
    transforms = _inverse_transforms(draws, distortion)
    if distortion.mirror:
        transforms = _mirrored(transforms, key, batch, replicas, index, distortion.mirror)
    sample = _sample if portable else _sample_with_kernel
    return _change_strokes(sample(images, transforms), draws[:, 5], distortion)


def _mirrored(
    transforms: tf.Tensor, key: tf.Tensor, batch: tf.Tensor, replicas: int, index: int, share: float
) -> tf.Tensor:
    """`transforms` that first flip the output left to right, for `share` of the images: x -> -x about the center
    is the first column of the 2x2 map negated."""
    key = tf.random.experimental.stateless_fold_in(key, _MIRROR_SALT)
    draws = tf.random.stateless_uniform([batch * replicas], seed=key)[index * batch : (index + 1) * batch]
    sign = tf.where(draws < share, -1.0, 1.0)
    return tf.concat([transforms[..., :1] * sign[:, None, None], transforms[..., 1:]], axis=-1)


def _change_strokes(images: tf.Tensor, draws: tf.Tensor, distortion: Distortion) -> tf.Tensor:
    """A pixel of dilation (a thicker pen) where `draws` (in [-1, 1]) is near 1, of erosion (a finer one) near -1."""
    if not distortion.stroke_change:
        return images
    edge = 1.0 - distortion.stroke_change
    thicker = _window_max(images)
    thinner = -_window_max(-images)
    changed = tf.where((draws < -edge)[:, None, None, None], thinner, images)
    return tf.where((draws > edge)[:, None, None, None], thicker, changed)


def _window_max(images: tf.Tensor) -> tf.Tensor:
    """`tf.nn.max_pool2d(images, 2, 1, "SAME")` (each pixel, its right, lower and lower-right neighbours), as
    shifted maxima: the same numbers, twice as fast on a CPU, where oneDNN's pooling pads one channel to a block."""
    padded = tf.pad(images, [[0, 0], [0, 1], [0, 1], [0, 0]], constant_values=-math.inf)
    return tf.maximum(
        tf.maximum(padded[:, :-1, :-1], padded[:, :-1, 1:]), tf.maximum(padded[:, 1:, :-1], padded[:, 1:, 1:])
    )


def _inverse_transforms(draws: tf.Tensor, distortion: Distortion) -> tf.Tensor:
    """[batch, 2, 3] affine maps from output to input pixel coordinates (x, y, 1), about the image center."""
    angle = draws[:, 0] * math.radians(distortion.rotation_degrees)
    shear = draws[:, 1] * math.radians(distortion.shear_degrees)
    scale = 1.0 + draws[:, 2] * distortion.scale
    shift = draws[:, 3:5] * distortion.shift_pixels
    # Forward: scale, then shear along x, then rotate; the inverse of that 2x2 matrix maps output to input.
    cos, sin, tan = tf.cos(angle), tf.sin(angle), tf.tan(shear)
    a, b = cos * scale, (cos * tan - sin) * scale
    c, d = sin * scale, (sin * tan + cos) * scale
    determinant = a * d - b * c
    inverse = tf.stack([tf.stack([d, -b], -1), tf.stack([-c, a], -1)], -2) / determinant[:, None, None]
    return tf.concat([inverse, -tf.linalg.matvec(inverse, shift)[..., None]], axis=-1)


def _sample_with_kernel(images: tf.Tensor, transforms: tf.Tensor) -> tf.Tensor:
    """`_sample` by ImageProjectiveTransformV3 (which has no XLA kernel), which maps output pixel (x, y) to
    input (a0 x + a1 y + a2, b0 x + b1 y + b2) in uncentered coordinates."""
    rows, cols = tf.shape(images)[1], tf.shape(images)[2]
    center = (tf.cast(tf.stack([cols, rows]), tf.float32) - 1.0) / 2.0
    linear = transforms[..., :2]
    offset = transforms[..., 2] + center - tf.linalg.matvec(linear, center)
    flat = tf.concat([linear[:, 0], offset[:, :1], linear[:, 1], offset[:, 1:], tf.zeros_like(offset)], axis=-1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=flat,
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )


def _sample(images: tf.Tensor, transforms: tf.Tensor) -> tf.Tensor:
    """Bilinear sampling of `images` at the transformed coordinates; outside the image reads as 0."""
    batch, rows, cols, channels = tf.unstack(tf.shape(images))
    center = (tf.cast(tf.stack([cols, rows]), tf.float32) - 1.0) / 2.0
    ys, xs = tf.meshgrid(tf.range(rows, dtype=tf.float32), tf.range(cols, dtype=tf.float32), indexing="ij")
    output = tf.reshape(tf.stack([xs, ys], -1), [-1, 2]) - center  # [pixels, 2], centered
    source = tf.einsum("bij,pj->bpi", transforms[..., :2], output) + transforms[:, None, :, 2] + center
    x, y = source[..., 0], source[..., 1]
    x0, y0 = tf.floor(x), tf.floor(y)
    flat = tf.reshape(images, [batch, rows * cols, channels])
    result = tf.zeros([batch, rows * cols, channels], images.dtype)
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        xi, yi = x0 + dx, y0 + dy
        weight = (1.0 - tf.abs(x - xi)) * (1.0 - tf.abs(y - yi))
        inside = (xi >= 0) & (xi <= tf.cast(cols - 1, tf.float32)) & (yi >= 0) & (yi <= tf.cast(rows - 1, tf.float32))
        at = tf.cast(tf.clip_by_value(yi, 0.0, tf.cast(rows - 1, tf.float32)), tf.int32) * cols + tf.cast(
            tf.clip_by_value(xi, 0.0, tf.cast(cols - 1, tf.float32)), tf.int32
        )
        pixels = tf.gather(flat, at, batch_dims=1)
        result += pixels * tf.cast(tf.where(inside, weight, 0.0), images.dtype)[..., None]
    return tf.reshape(result, tf.shape(images))
