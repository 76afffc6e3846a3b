"""The roofline's arithmetic: FLOPs per image against a hand count, and the peak it measures."""

import pytest

from mnist_tf.benchmark import roofline
from mnist_tf.config import Config
from mnist_tf.training import build


def _flops(**config) -> dict[str, int]:
    return roofline.flops_per_image(build.model(Config(**config).resolve(), (28, 28, 1)))


def test_lenet_flops_by_hand():
    # Multiply-adds: conv1 24x24 positions x 20 filters x 5x5x1; conv2 8x8 x 50 x 5x5x20; dense 800x500; logits.
    conv1, conv2, dense, logits = 24 * 24 * 20 * 25, 8 * 8 * 50 * 500, 800 * 500, 500 * 10
    forward = 2 * (conv1 + conv2 + dense + logits)
    # Backward: every weight gradient (a forward's worth), every input gradient but the image's.
    assert _flops(model="lenet") == {"forward": forward, "train": 3 * forward - 2 * conv1}
    assert forward == 4_586_000


def test_mlp_flops_by_hand():
    dense1, dense2, logits = 784 * 800, 800 * 800, 800 * 10
    forward = 2 * (dense1 + dense2 + logits)
    assert _flops(model="mlp") == {"forward": forward, "train": 3 * forward - 2 * dense1}


def test_strides_and_kernel_sizes_count_output_positions():
    # A 3x3 second convolution: 10x10 positions of 32 filters x 3x3x24.
    counted = roofline.layer_flops(
        build.model(Config(model="lenet", filters=(24, 32), kernel_sizes=(5, 3)).resolve(), (28, 28, 1))
    )
    assert counted[1] == {"layer": "conv2", "forward": 2 * 10 * 10 * 32 * 3 * 3 * 24}
    strided = roofline.layer_flops(build.model(Config(model="bncnn").resolve(), (28, 28, 1)))
    down = next(layer for layer in strided if layer["layer"] == "block1_down")
    assert down["forward"] == 2 * 12 * 12 * 32 * 5 * 5 * 32  # two 3x3 valid: 28 -> 24; stride 2, "same": -> 12


def test_peaks_are_measured_per_dtype_and_speeds_put_against_them():
    peaks = roofline.measure_peaks(repeats=1)
    assert peaks["cores"] >= 1 and peaks["matmul_size"] == roofline.MATMUL_SIZE
    for dtype in roofline.PEAK_DTYPES:
        assert peaks[dtype]["matmul_gflops"] > 0 and peaks[dtype]["conv_gflops"] > 0
    assert roofline.achieved(10_000, 13_182_000, {"matmul_gflops": 263.64, "conv_gflops": 131.82}) == {
        "gflops": pytest.approx(131.8),
        "of_matmul_peak": 0.5,
        "of_conv_peak": 1.0,
    }
