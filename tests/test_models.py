"""Models: output shapes, parameter counts, and our layers vs Keras layers giving the same function."""

import dataclasses

import numpy as np
import pytest

from mnist_tf.config import Config
from mnist_tf.training import build


@pytest.mark.parametrize(
    "config, trainable",
    [
        # conv1 20*25+20, conv2 50*20*25+50, dense 800*500+500, logits 500*10+10: the classic tanh LeNet.
        (Config(model="lenet", activation="tanh"), 520 + 25_050 + 400_500 + 5_010),
        (Config(model="mlp", hidden_units=(800,)), 784 * 800 + 800 + 800 * 10 + 10),
        (Config(model="mlp", hidden_units=(500, 500)), 784 * 500 + 500 + 500 * 500 + 500 + 500 * 10 + 10),
        # conv1 32*9+32, conv2 64*32*9+64, dense 12*12*64*128+128, logits 128*10+10: Keras's mnist_cnn example.
        (Config(model="cnn"), 320 + 18_496 + 1_179_776 + 1_290),
        # per block: two 3x3 convs and a 5x5 one, each + BN (gamma, beta); head conv 4x4 to 128 + BN; logits.
        (
            Config(model="bncnn"),
            (320 + 9_248 + 25_632 + 3 * 64) + (18_496 + 36_928 + 102_464 + 3 * 128) + (131_200 + 256) + 1_290,
        ),
    ],
)
@pytest.mark.parametrize("kit", ["ours", "keras"])
def test_parameter_counts_and_output_shape(config, trainable, kit):
    model = build.model(Config(**{**config.__dict__, "layers": kit}).resolve(), (28, 28, 1))
    assert sum(int(np.prod(v.shape)) for v in model.trainable_variables) == trainable
    assert model(np.zeros((3, 28, 28, 1), np.float32)).shape == (3, 10)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("kit", ["ours", "keras"])
def test_mixed_precision_computes_in_16_bits_with_float32_weights_and_logits(dtype, kit):
    config = Config(model="lenet", layers=kit, hidden_units=(32,), filters=(4, 8)).resolve()
    model = build.model(dataclasses.replace(config, dtype=dtype), (28, 28, 1))
    assert {v.dtype for v in model.trainable_variables} == {"float32"}
    assert [layer.compute_dtype for layer in model.layers[1:]] == [dtype] * 7 + ["float32"]
    assert model.get_layer("dense1")(np.zeros((2, 128), np.float32)).dtype == dtype
    assert model(np.zeros((2, 28, 28, 1), np.float32)).dtype == "float32"


@pytest.mark.parametrize(
    "model_name, initializer",
    [("lenet", "auto"), ("mlp", "auto"), ("cnn", "auto"), ("bncnn", "auto"), ("mlp", "uniform")],
)
def test_our_layers_and_keras_layers_compute_the_same_function(model_name, initializer):
    config = Config(model=model_name, kernel_initializer=initializer).resolve()
    ours = build.model(config, (28, 28, 1))
    theirs = build.model(Config(**{**config.__dict__, "layers": "keras"}), (28, 28, 1))
    for our_layer, their_layer in zip(ours.layers, theirs.layers, strict=True):  # BN's moving averages too
        their_layer.set_weights([v.numpy() for v in our_layer.weights if v.name != "calls"])  # not Dropout's count
    images = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(ours(images), theirs(images), rtol=1e-4, atol=1e-5)


def test_seed_decides_initial_weights():
    def weights(seed):
        return build.model(Config(model="lenet", seed=seed).resolve(), (28, 28, 1)).get_weights()

    same, other = weights(1), weights(2)
    for a, b in zip(weights(1), same, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(same[0], other[0])


def test_architecture_flags_shape_the_model():
    model = build.model(Config(model="lenet", filters=(6, 16), hidden_units=(84,)).resolve(), (28, 28, 1))
    assert [layer.name for layer in model.layers] == [
        "images",
        "conv1",
        "pool1",
        "conv2",
        "pool2",
        "flatten",
        "dense1",
        "dropout1",
        "logits",
    ]
    assert model.get_layer("conv2").kernel.shape == (5, 5, 6, 16)
    assert model.get_layer("dense1").kernel.shape == (4 * 4 * 16, 84)
    smaller = build.model(Config(model="lenet", filters=(24, 32), kernel_sizes=(5, 3)).resolve(), (28, 28, 1))
    assert smaller.get_layer("conv2").kernel.shape == (3, 3, 24, 32)
    assert smaller.get_layer("dense1").kernel.shape == (5 * 5 * 32, 500)  # 28 -5+1 -> 24 /2 -> 12 -3+1 -> 10 /2
    no_dropout = build.model(Config(model="mlp", dropout=0.0).resolve(), (8, 8, 1))
    assert not any("dropout" in layer.name for layer in no_dropout.layers)
    assert no_dropout.get_layer("dense1").kernel.shape == (64, 800)


def test_cnn_on_8x8_digits_and_its_conv_dropout():
    model = build.model(Config(model="cnn").resolve(), (8, 8, 1))
    assert [layer.name for layer in model.layers] == [
        "images",
        "conv1",
        "conv2",
        "pool1",
        "conv_dropout",
        "flatten",
        "dense1",
        "dropout1",
        "logits",
    ]
    assert model.get_layer("conv1").kernel.shape == (3, 3, 1, 32)
    assert model.get_layer("dense1").kernel.shape == (2 * 2 * 64, 128)  # 8 -> 6 -> 4 -> pooled 2
    assert model.get_layer("conv_dropout").rate == 0.25 and model.get_layer("dropout1").rate == 0.5
    lenet = build.model(Config(model="lenet", conv_dropout=0.1).resolve(), (28, 28, 1))
    assert lenet.get_layer("conv_dropout").rate == 0.1


@pytest.mark.parametrize("kit", ["ours", "keras"])
def test_kernel_initializer_choice_reaches_every_kernel(kit):
    uniform = build.model(Config(model="mlp", kernel_initializer="uniform", layers=kit).resolve(), (28, 28, 1))
    he = build.model(Config(model="mlp", layers=kit).resolve(), (28, 28, 1))
    for layer in ("dense1", "dense2", "logits"):
        kernel = uniform.get_layer(layer).kernel.numpy()
        assert 0.049 < np.abs(kernel).max() <= 0.05, layer  # U(-0.05, 0.05) whatever the fan-in
    assert np.abs(he.get_layer("dense1").kernel.numpy()).max() > 0.08  # He: sqrt(6 / 784) = 0.087
