"""The scripts' flags are generated from Config's fields: each has the field's help, choices and bounds, and the
parsed flags give back the Config they describe (in process; tests/test_cli.py runs the scripts themselves)."""

import dataclasses
import sys

import pytest
from absl import flags
from conftest import REPO

from mnist_tf.config import SETTINGS, Config

sys.path.insert(0, str(REPO / "scripts"))
import config_flags  # scripts/ is not a package: the scripts import it by this name


def parsed(*args: str, names=None) -> flags.FlagValues:
    flag_values = flags.FlagValues()
    config_flags.define_config_flags(names, flag_values=flag_values)
    flag_values(["train.py", *args])
    return flag_values


def test_every_setting_has_a_flag_with_its_help_choices_and_default():
    flag_values = parsed()
    for setting in SETTINGS.values():
        if not setting.flag:
            assert setting.name not in flag_values, setting.name
            continue
        flag = flag_values[setting.name]
        assert flag.help.endswith(setting.help), setting.name  # enums start with their choices
        if setting.choices and not setting.sequence:
            assert flag.parser.enum_values == list(setting.choices), setting.name


def test_default_flags_give_the_default_config():
    values = config_flags.config_values(flag_values=parsed())
    assert values["model_dir"] is None  # named at start: runs/<name>/<time>
    assert Config(**{**values, "model_dir": "m"}) == Config(model_dir="m")


def test_flags_become_config_values():
    flag_values = parsed("--model=mlp", "--hidden_units=64,32", "--export_dir=", "--histograms=weights", "--seed=7")
    config = Config(**config_flags.config_values(flag_values=flag_values))
    expected = {"model": "mlp", "hidden_units": (64, 32), "export_dir": None, "histograms": ("weights",), "seed": 7}
    assert {name: getattr(config, name) for name in expected} == expected


def test_the_training_config_names_the_flags_given_even_at_their_defaults():
    flag_values = flags.FlagValues()
    config_flags.define_training_flags(flag_values)
    flag_values(["train.py", "--epochs=6", "--batch_size=32"])
    assert SETTINGS["epochs"].default == 6
    assert config_flags.training_config(flag_values).given == ("epochs", "batch_size")  # in the order of the fields
    flag_values.unparse_flags()
    flag_values(["train.py", "--recipe=accurate", "--epochs=6"])
    config = config_flags.training_config(flag_values)
    assert (config.recipe, config.epochs, config.given) == ("accurate", 6, ("epochs",))


def test_a_subset_of_the_settings():
    flag_values = parsed("--dataset=digits", names=config_flags.DATA_FLAGS)
    key_flags = flag_values.get_key_flags_for_module(config_flags)
    assert sorted(flag.name for flag in key_flags) == sorted(config_flags.DATA_FLAGS)
    assert config_flags.config_values(config_flags.DATA_FLAGS, flag_values)["dataset"] == "digits"


@pytest.mark.parametrize(
    "arg, message",
    [
        ("--batch_size=0", "0 is not a positive integer"),
        ("--learning_rate=-1", "-1.0 is not a non-negative number"),
        ("--model=resnet", "value should be one of <lenet|mlp|cnn|bncnn>"),
        ("--hidden_units=a,3", "--hidden_units takes comma-separated positive integers"),
    ],
)
def test_bad_values_are_refused_when_parsed(arg, message):
    with pytest.raises(flags.Error, match=message.replace("|", r"\|")):
        parsed(arg)


def test_a_new_field_would_get_its_flag():
    """What 'adding a setting is one edit' rests on: flags come from the fields, not from a list."""
    names = {field.name for field in dataclasses.fields(Config)}
    assert names == set(SETTINGS) and {name for name, s in SETTINGS.items() if s.flag} <= set(parsed())
