"""Fine-tuning (mnist_tf/fine_tuning.py): --init_from on a small data set picks its own defaults and says them,
replays the starting model's data unless --replay=0, and calibrates only on images it does not train on."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import make_digits, quiet_run
from PIL import Image
from script_runs import run_script

from mnist_tf import fine_tuning, run
from mnist_tf.config import SETTINGS, Config
from mnist_tf.data.sources import Split, Splits
from mnist_tf.errors import MnistTfError
from mnist_tf.reporting.console import ConsoleReporter
from mnist_tf.training import build, extras


def yours(count: int, held_out: int = 0) -> Splits:
    images, labels = make_digits(count + held_out + 20, seed=7)
    images = images[..., np.newaxis]
    own = Split(images[:count], labels[:count].astype(np.int64))
    validation = Split(images[count : count + held_out], labels[count : count + held_out].astype(np.int64))
    test = Split(images[-20:], labels[-20:].astype(np.int64))
    return Splits(own, validation if held_out else None, test, "folder:yours")


@pytest.fixture
def base(exported_run):
    return run._starting_model(exported_run["flags"]["model_dir"])


def prepared(config: Config, splits: Splits, base) -> tuple[Config, Splits, str]:
    lines = []
    config, splits = fine_tuning.prepare(config, splits, base, lines.append)
    (line,) = lines
    return config, splits, line


def rows(split: Split) -> set[bytes]:
    return {image.tobytes() for image in split.images}


def test_a_small_data_set_gets_fine_tunings_defaults_in_one_line(base, exported_run):
    config, splits, line = prepared(Config(init_from="base"), yours(100), base)
    chosen = (config.learning_rate, config.batch_size, config.epochs, config.weight_decay, config.distillation)
    expected = (fine_tuning.LEARNING_RATE, fine_tuning.BATCH, fine_tuning.EPOCHS, fine_tuning.WEIGHT_DECAY)
    assert chosen == (*expected, fine_tuning.DISTILLATION) and config.replay == fine_tuning.REPLAY
    assert line == (
        "fine-tuning: learning_rate 0.0005, batch_size 64, epochs 5, weight_decay 0.01, distillation 1 (for 100 "
        "images; a flag you give wins) · an epoch: "
        "your 100 images 19 times + 1,000 of mnist's replayed (--replay=0.5) · calibrated on 200 validation images "
        "of mnist, none of them trained on"
    )  # half of the epoch's, 1,900, or as many as the generated data has
    assert len(splits.train) == 2_900 and len(rows(splits.train) & rows(yours(100).train)) == 100
    assert fine_tuning.applies(config, yours(fine_tuning.SMALL)) and not fine_tuning.applies(
        config, yours(fine_tuning.SMALL + 1)
    )


def test_the_flags_a_user_gives_win(base):
    given = Config(init_from="base", learning_rate=1e-3, epochs=2, weight_decay=0.1, replay=0.25, distillation=0.0)
    config, _, line = prepared(given, yours(100), base)
    assert (config.learning_rate, config.batch_size, config.epochs, config.weight_decay) == (1e-3, 64, 2, 0.1)
    assert config.replay == 0.25 and config.distillation == 0
    assert line.startswith("fine-tuning: batch_size 64 (for 100 images; a flag you give wins) · an epoch: your 100")
    assert "your 100 images 29 times + 967 of mnist's replayed (--replay=0.25)" in line  # a quarter of the epoch


def test_a_flag_given_at_its_default_value_wins_too(base):
    epochs = SETTINGS["epochs"].default
    config, _, line = prepared(Config(init_from="base", epochs=epochs, given=("epochs",)), yours(100), base)
    assert config.epochs == epochs and config.learning_rate == fine_tuning.LEARNING_RATE
    assert line.startswith("fine-tuning: learning_rate 0.0005, batch_size 64, weight_decay 0.01, distillation 1 (for")


def test_replay_is_off_with_replay_0_and_calibration_still_uses_the_base_validation(base):
    config, splits, line = prepared(Config(init_from="base", replay=0.0), yours(100), base)
    assert config.replay == 0 and rows(splits.train) == rows(yours(100).train)
    assert "your 100 images 38 times + no replay · calibrated on 200 validation images of mnist" in line
    assert len(splits.validation) == 200


def test_calibration_never_sees_a_trained_on_image(base):
    own = yours(100, held_out=30)
    _, splits, line = prepared(Config(init_from="base"), own, base)
    assert len(splits.validation) == 230 and rows(own.validation) <= rows(splits.validation)
    assert not rows(splits.validation) & rows(splits.train)
    assert line.endswith(
        "calibrated on 200 validation images of mnist and 30 of yours held out, none of them trained on"
    )


def test_a_folder_of_some_of_the_models_classes_learns_them_among_all_of_them(base):
    own = yours(100)
    ones_and_sevens = dataclasses.replace(
        own, train=Split(own.train.images, own.train.labels % 2), test=Split(own.test.images, own.test.labels % 2)
    )
    ones_and_sevens = dataclasses.replace(ones_and_sevens, class_names=("1", "7"))
    config, splits, line = prepared(Config(init_from="base"), ones_and_sevens, base)
    assert splits.class_names == base.class_names and config.replay == fine_tuning.REPLAY
    assert sorted(set(splits.train.labels[:100])) == [1, 7] and "an epoch: your 100 images (of 1, 7) 19 times" in line


def test_a_starting_model_of_other_classes_replays_nothing_and_keeps_none_of_its_answers(base):
    other = dataclasses.replace(base, class_names=tuple("abcdefghij"))
    config, splits, line = prepared(Config(init_from="base"), yours(100), other)
    assert config.replay == 0 and config.distillation == 0 and splits.validation is None
    assert "no replay: the starting model's classes are not these · calibrated on the training images: give " in line
    with pytest.raises(
        MnistTfError, match=r"^--distillation keeps the starting model's answers, and its classes \(a, "
    ):
        prepared(Config(init_from="base", distillation=1.0), yours(100), other)


def test_a_starting_model_of_a_later_mnist_tf_replays_nothing(base):
    later = dataclasses.replace(base, config={**base.config, "a_later_setting": 1})
    config, splits, line = prepared(Config(init_from="base"), yours(100), later)
    assert config.replay == 0 and splits.validation is None
    assert "no replay: " in line and " was trained with settings this mnist_tf lacks · calibrated on the train" in line


def test_base_data_that_cannot_be_read_is_one_line_and_replay_dir_reads_it(base, idx_dir):
    moved = dataclasses.replace(base, config={**base.config, "data_dir": "/nowhere"})
    with pytest.raises(MnistTfError, match=r"^fine-tuning reads what the starting model learned from \(mnist\), "):
        prepared(Config(init_from="base"), yours(100), moved)
    _, splits, _ = prepared(Config(init_from="base", replay_dir=str(idx_dir)), yours(100), moved)
    assert len(splits.train) == 2_900


def test_weight_decay_pulls_toward_the_starting_weights_and_a_new_kernel_toward_zero():
    model = build.model(Config(model="mlp", hidden_units=(8,)).resolve(), (28, 28, 1))
    start = {v.path: v.numpy() + 1.0 for v in model.trainable_variables}  # every weight 1 away
    del start["logits/kernel"]  # a new head: nothing to pull toward
    term = extras.weight_decay(0.5, model, start)
    kernel = model.get_layer("logits").kernel.numpy()
    expected = 0.5 * (28 * 28 * 8 + (kernel**2).sum()) / 2  # rate * l2_loss, l2_loss = sum of squares / 2
    np.testing.assert_allclose(float(term(None, None, None)), expected, rtol=1e-5)
    at_start = extras.weight_decay(0.5, model, {v.path: v.numpy() for v in model.trainable_variables})
    assert float(at_start(None, None, None)) == 0


@pytest.mark.parametrize("setting", [{"replay": 0.5}, {"distillation": 1.0}])
def test_replay_and_distillation_are_refused_without_init_from(setting):
    with pytest.raises(MnistTfError, match=r"^--replay, --replay_dir and --distillation apply to fine-tuning: a run "):
        Config(**setting).resolve()
    with pytest.raises(MnistTfError, match=r"^--distillation must be 0 or more, got -1"):
        Config(init_from="base", distillation=-1.0).resolve()


def test_distillation_is_the_divergence_from_the_starting_models_answers_where_it_reads_right():
    config = Config(model="mlp", hidden_units=(8,)).resolve()
    strategy = tf.distribute.get_strategy()
    model = build.model(config, (28, 28, 1))
    start = {v.path: v.numpy() * 2.0 for v in model.weights}  # another model: its answers differ
    teacher = extras.starting_model(config, strategy, model, start)
    images = tf.random.stateless_uniform([5, 28, 28, 1], seed=[1, 2])  # 3 digits, then 2 not-digit images
    answers, outputs = teacher(images).numpy().astype(np.float64), model(images).numpy().astype(np.float64)
    labels = answers[:3].argmax(axis=1)
    labels[0] = (labels[0] + 1) % 10  # one digit the starting model misreads: what the run is asked to change

    def log_softmax_11(logits):
        eleven = np.pad(logits, [(0, 0), (0, 1)])
        return eleven - np.log(np.exp(eleven).sum(axis=1, keepdims=True))

    kept, log_q = log_softmax_11(answers), log_softmax_11(outputs)
    divergence = (np.exp(kept) * (kept - log_q)).sum(axis=1)
    by_hand = 0.5 * divergence[1:].sum() / 5
    term = extras.distillation(0.5, teacher, global_count=5)
    assert float(term(images, tf.constant(outputs, tf.float32), tf.constant(labels))) == pytest.approx(
        by_hand, rel=1e-4
    )
    assert float(term(images, tf.constant(answers, tf.float32), tf.constant(labels))) == pytest.approx(0, abs=1e-6)
    assert not teacher.trainable_weights


@pytest.mark.slow  # trains
def test_a_resumed_fine_tuning_run_ends_with_the_weights_of_an_uninterrupted_one(exported_run, tiny_config):
    base = exported_run["flags"]["model_dir"]
    straight = dataclasses.replace(tiny_config, init_from=base, export_dir=None, model_dir=tiny_config.model_dir + "s")
    expected, output = quiet_run(straight)
    assert "fine-tuning: " in output and "of mnist's replayed (--replay=0.5)" in output

    class CrashAfterFirstEpoch(ConsoleReporter):
        def epoch_end(self, *args):
            raise RuntimeError("crash")

    split_run = dataclasses.replace(straight, model_dir=tiny_config.model_dir + "r")
    with pytest.raises(RuntimeError):
        run.run(split_run, CrashAfterFirstEpoch(io.StringIO()))
    resumed, _ = quiet_run(split_run)
    assert resumed["resumed_from_step"] > 0 and resumed["weights_sha256"] == expected["weights_sha256"]


@pytest.mark.slow  # trains
def test_the_plain_command_on_a_folder_of_a_few_digits_fine_tunes(exported_run, tmp_path):
    images, labels = make_digits(60, seed=9)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        (tmp_path / "digits" / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(tmp_path / "digits" / str(label) / f"{i}.png")
    architecture = [f"--{name}={value}" for name, value in (("model", "mlp"), ("hidden_units", 64))]
    done = run_script(
        "train",
        *architecture,
        "--source=folder",
        f"--data_dir={tmp_path / 'digits'}",
        f"--init_from={Path(exported_run['export_dir']).parent}",
        f"--model_dir={tmp_path / 'run'}",
        f"--export_dir={tmp_path / 'saved_models'}",
        "--nolitert",
    )
    assert done.returncode == 0, done.stderr
    assert "fine-tuning: learning_rate 0.0005, batch_size 64, epochs 5, weight_decay 0.01, distillation 1 (for " in (
        done.stdout
    )
    assert (
        "weight decay 0.01 (toward --init_from's weights: L2-SP) · distillation 1 (toward its answers)" in done.stdout
    )
    assert (tmp_path / "saved_models" / "mlp" / "1" / "saved_model.pb").is_file(), done.stdout
