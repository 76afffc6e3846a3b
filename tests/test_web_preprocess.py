"""web/preprocess.js, the page's MNIST-style preprocessing, equals mnist_tf/data/preprocess.py: run by node on
images that stress each step (tests/test_web.py checks it again in the browser, on drawings and image files)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO

from mnist_tf.data import preprocess

NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_the_javascript_preprocessing_equals_preprocess_py(tmp_path):
    """Sizes that shrink and grow, both polarities, noise, blank images, flat shapes, ink touching the border,
    enlarged pixel art, photos of paper with light gradients, shadows and ruled lines."""
    rng = np.random.default_rng(0)
    images = [np.zeros((30, 30), np.float32), np.ones((5, 9), np.float32)]
    for i in range(120):
        height, width = rng.integers(3, 300, 2)
        image = np.zeros((height, width), np.float32)
        top, left = rng.integers(0, height), rng.integers(0, width)
        image[top : top + rng.integers(1, height + 1), left : left + rng.integers(1, width + 1)] = rng.uniform(0.3, 1)
        image = np.clip(image + rng.normal(0, rng.uniform(0, 0.2), image.shape), 0, 1).astype(np.float32)
        images.append(1 - image if i % 2 else image)
    for scale in range(2, 8):  # 20 rows of 8-bit pixel art enlarged: shrunk back by exactly 1/scale, with ties
        pixels = rng.integers(0, 256, (20, 14)) * (rng.random((20, 14)) > 0.5)
        pixels[[0, -1], 3] = 255  # the ink spans all 20 rows
        art = np.kron(pixels, np.ones((scale, scale))).astype(np.float32) * np.float32(1 / 255)
        images.append(np.pad(art, ((7, 3), (20, 5))))
        images.append(1 - images[-1])
    for _ in range(8):  # paper under uneven light and a shadow, ruled lines, a dark stroke, grain
        height, width = rng.integers(20, 400, 2)
        ys, xs = np.mgrid[0:height, 0:width] / max(height, width)
        paper = rng.uniform(0.4, 1) * (1 + rng.uniform(-0.3, 0.3) * xs) * np.where(xs > rng.uniform(), 0.6, 1)
        paper[:: rng.integers(5, 20)] *= 0.8
        stroke = (np.abs(ys - rng.uniform(0.2, 0.8) - 0.5 * xs) < 0.05) & (xs < rng.uniform(0.3, 1))
        photo = paper * np.where(stroke, rng.uniform(0, 0.5), 1) + rng.normal(0, 0.03, paper.shape)
        images.append(np.clip(photo, 0, 1).astype(np.float32))
    with open(tmp_path / "images.bin", "wb") as file:
        for image in images:
            file.write(np.array(image.shape, np.int32).tobytes() + image.tobytes())
    script = tmp_path / "run.mjs"
    script.write_text(
        f"import {{ readFileSync }} from 'node:fs';\n"
        f"import {{ Gray, toMnist }} from '{(REPO / 'web' / 'preprocess.js').as_uri()}';\n"
        f"const bytes = readFileSync('{tmp_path / 'images.bin'}');\n"
        "const read = (Type, at, count) => new Type(bytes.buffer.slice(at, at + count * Type.BYTES_PER_ELEMENT));\n"
        "const out = [];\n"
        "for (let at = bytes.byteOffset; at < bytes.byteOffset + bytes.length; ) {\n"
        "  const [height, width] = read(Int32Array, at, 2);\n"
        "  out.push(toMnist(new Gray(read(Float32Array, at + 8, height * width), width, height)));\n"
        "  at += 8 + 4 * height * width;\n"
        "}\n"
        "process.stdout.write(Buffer.concat(out.map((pixels) => Buffer.from(pixels))));\n"
    )
    output = subprocess.run([NODE, script], capture_output=True, check=True).stdout
    got = np.frombuffer(output, np.uint8).reshape(-1, 28, 28)
    to_mnist = tf.function(preprocess.to_mnist, reduce_retracing=True)
    for image, pixels in zip(images, got, strict=True):
        np.testing.assert_array_equal(pixels, to_mnist(tf.constant(image)).numpy())
