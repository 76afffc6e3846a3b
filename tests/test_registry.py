"""Every registered model is whole: its defaults resolve, it builds in both layer kits, trains, checkpoints and
is recognised on resume; and every choice a setting offers is a key of the registry that implements it."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
from conftest import blank_split

from mnist_tf import distribute
from mnist_tf.benchmark import race
from mnist_tf.config import HPARAMS, SETTINGS, Config
from mnist_tf.errors import MnistTfError
from mnist_tf.nn import models
from mnist_tf.nn.models import MODELS, SHAPE_FIELDS
from mnist_tf.training import run_state
from mnist_tf.training.trainer import Trainer


def fixed_batch(size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random((size, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, size).astype(np.int32)


# The fast tier trains ours of the plain models; Keras's layers build the same ones (tests/test_layers.py proves
# each layer equal), and batch normalization's are proven in tests/test_layers.py too.
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "bncnn" else n for n in MODELS])
@pytest.mark.parametrize("kit", ["ours", pytest.param("keras", marks=pytest.mark.slow)])
def test_each_model_trains_a_few_steps(name, kit, tmp_path):
    config = Config(
        model=name,
        layers=kit,
        batch_size=32,
        learning_rate=1e-3,
        lr_schedule="constant",
        dtype="float32",
        augment=False,
        not_digits=0.0,  # the model's own steps: tests/test_not_digits.py trains with them
    )
    config = config.resolve()
    strategy = distribute.make_strategy("default")
    trainer = Trainer.from_config(config, strategy, blank_split(), total_steps=5)
    assert trainer.model.name == name and trainer.model.output_shape == (None, 10)
    images, labels = fixed_batch()
    batches = iter(tf.data.Dataset.from_tensors((images, labels)).repeat())
    losses = []
    for _ in range(5):
        trainer.reset_train_metrics()
        trainer.train(batches)
        losses.append(trainer.train_metrics()[0])
    assert all(np.isfinite(losses)) and losses[-1] < losses[0], losses
    assert int(trainer.step.numpy()) == 5
    assert tf.train.latest_checkpoint(tmp_path) is None
    trainer.checkpoint().save(tmp_path / "ckpt")
    assert tf.train.latest_checkpoint(tmp_path).endswith("ckpt-1")


@pytest.mark.parametrize("name", MODELS)
def test_each_models_shape_settings_make_another_model_on_resume(name, tmp_path):
    config = Config(model=name, model_dir=str(tmp_path)).resolve()
    run_state.write_config(tmp_path, config, (28, 28, 1))
    assert run_state.changes(tmp_path, dataclasses.replace(config, epochs=9), (28, 28, 1)) == ["epochs 6 -> 9"]
    for field in SHAPE_FIELDS:
        value = getattr(config, field)
        if not value:  # a model without convolutions has no filters to change
            continue
        changed = dataclasses.replace(config, **{field: tuple(v + 1 for v in value)})
        with pytest.raises(MnistTfError, match=f"holds checkpoints of another model .*{field}"):
            run_state.changes(tmp_path, changed, (28, 28, 1))


@pytest.mark.parametrize("name", MODELS)
def test_each_builders_settings_are_config_fields_and_its_defaults_fit_its_annotations(name):
    settings, lengths = models.settings(name), models.lengths(name)
    assert set(settings) <= set(SETTINGS) and {"hidden_units", "dropout"} <= set(settings)
    for field, length in lengths.items():
        assert length in (None, len(settings[field])), field
    assert set(SHAPE_FIELDS) <= set(SETTINGS)
    assert 0 < race.TARGET_ACCURACY.get(name, 0.5) < 1


def test_every_choice_of_every_setting_resolves():
    """Each choice a flag offers is accepted by Config (the registries and the flag choices cannot drift apart)."""
    for setting in SETTINGS.values():
        for choice in setting.choices:
            if setting.name in ("strategy", "dataset", "source"):
                continue  # need hardware, data or another data set's source: covered by their own tests
            value = (choice,) if setting.sequence else choice
            Config(**{setting.name: value}).resolve()


def test_hparams_and_settings_carry_help():
    assert {"model", "learning_rate", "batch_size", "dtype"} <= set(HPARAMS)
    assert all(setting.help for setting in SETTINGS.values())
