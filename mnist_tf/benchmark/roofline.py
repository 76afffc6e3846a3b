"""How far from the machine's limit: its measured peak, and each model's floating-point work per trained image.

The peak is what TensorFlow's own kernels reach on this machine, on the cores this process may use: a large
matrix product and a convolution shaped like LeNet's second, in float32 and bfloat16. A model's work is counted
from its layer shapes (the multiply-adds of its convolutions and dense layers; bias, activation and pooling are
well under 1% of them). Training an image costs its forward pass, the weight gradients (as much again) and the
input gradients of every layer but the first (whose input, the image, needs none).
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import keras
import tensorflow as tf

MATMUL_SIZE = 2048
# LeNet's second convolution on a batch of 256: 12x12x20 in, 5x5 kernels, 50 filters, 8x8 out.
CONV_INPUT = (256, 12, 12, 20)
CONV_KERNEL = (5, 5, 20, 50)
PEAK_DTYPES = ("float32", "bfloat16")


def layer_flops(model: keras.Model) -> list[dict[str, Any]]:
    """Forward FLOPs per image of each layer with a kernel: 2 per multiply-add (a kernel of rank 4 is a
    convolution, applied at each position of its output; of rank 2, a dense layer)."""
    counted = []
    for layer in model.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            continue
        multiply_adds = math.prod(kernel.shape)
        if len(kernel.shape) == 4:
            rows, cols = layer.output.shape[1:3]
            multiply_adds *= rows * cols
        counted.append({"layer": layer.name, "forward": 2 * multiply_adds})
    return counted


def flops_per_image(model: keras.Model) -> dict[str, int]:
    """Forward and training (forward and backward) FLOPs of one image through `model`."""
    layers = layer_flops(model)
    forward = sum(layer["forward"] for layer in layers)
    input_gradients = forward - (layers[0]["forward"] if layers else 0)
    return {"forward": forward, "train": 2 * forward + input_gradients}


def measure_peaks(repeats: int = 10) -> dict[str, Any]:
    """GFLOP/s of the best of `repeats` calls of each kernel, after a warm-up, per dtype."""
    peaks: dict[str, Any] = {"cores": len(os.sched_getaffinity(0)), "matmul_size": MATMUL_SIZE}
    peaks["conv_shape"] = {"input": list(CONV_INPUT), "kernel": list(CONV_KERNEL)}
    for dtype in PEAK_DTYPES:
        generator = tf.random.Generator.from_seed(0)
        a, b = (tf.cast(generator.normal((MATMUL_SIZE, MATMUL_SIZE)), dtype) for _ in range(2))
        images, kernel = (tf.cast(generator.normal(shape), dtype) for shape in (CONV_INPUT, CONV_KERNEL))
        matmul_flops = 2 * MATMUL_SIZE**3
        out_rows = CONV_INPUT[1] - CONV_KERNEL[0] + 1
        conv_flops = 2 * CONV_INPUT[0] * out_rows**2 * math.prod(CONV_KERNEL)
        peaks[dtype] = {
            "matmul_gflops": _gflops(tf.function(lambda a=a, b=b: a @ b), matmul_flops, repeats),
            "conv_gflops": _gflops(
                tf.function(lambda x=images, k=kernel: tf.nn.conv2d(x, k, 1, "VALID")), conv_flops, repeats
            ),
        }
    return peaks


def _gflops(kernel: Any, flops: int, repeats: int) -> float:
    kernel()  # traces, and warms oneDNN's caches
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        kernel().numpy()  # waits for the result
        best = min(best, time.perf_counter() - start)
    return round(flops / best / 1e9, 1)


def achieved(images_per_second: float, train_flops: int, peaks: dict[str, float]) -> dict[str, float]:
    """A training speed as GFLOP/s and as fractions of the peaks of its precision."""
    gflops = images_per_second * train_flops / 1e9
    return {
        "gflops": round(gflops, 1),
        "of_matmul_peak": round(gflops / peaks["matmul_gflops"], 3),
        "of_conv_peak": round(gflops / peaks["conv_gflops"], 3),
    }
