"""Flags generated from `Config`: one absl flag per field, with its help, choices and bounds, and the Config the
parsed flags ask for. The training scripts, evaluate.py, benchmark.py and accelerator_check.py define them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from absl import flags

from mnist_tf import config as config_lib
from mnist_tf import recipes

DATA_FLAGS = ("dataset", "data_dir", "source", "tfds_data_dir")


def define_config_flags(names: Iterable[str] | None = None, flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """One absl flag per Config field (or per field in `names`), with the field's help, choices and bounds."""
    for setting in _settings(names):
        _define(setting, flag_values)


def _settings(names: Iterable[str] | None) -> list[config_lib.Setting]:
    wanted = set(names) if names is not None else None
    return [s for s in config_lib.settings() if s.flag and (wanted is None or s.name in wanted)]


def _define(setting: config_lib.Setting, flag_values: flags.FlagValues) -> None:
    name, help_text = setting.name, setting.help
    default = setting.default
    if setting.sequence:
        flags.DEFINE_list(name, list(default) if default is not None else None, help_text, flag_values=flag_values)
        if setting.type is int:
            flags.register_validator(
                name,
                lambda values: values is None or all(v.strip().isdigit() for v in values),
                message=f"--{name} takes comma-separated positive integers",
                flag_values=flag_values,
            )
    elif setting.choices:
        flags.DEFINE_enum(name, default, setting.choices, help_text, flag_values=flag_values)
    elif setting.type in (int, float):
        define = flags.DEFINE_integer if setting.type is int else flags.DEFINE_float
        define(name, default, help_text, lower_bound=setting.lower_bound, flag_values=flag_values)
    elif setting.type is bool:
        flags.DEFINE_bool(name, default, help_text, flag_values=flag_values)
    else:
        flags.DEFINE_string(name, default, help_text, flag_values=flag_values)


def define_training_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """What scripts/train.py (and train_ray.py) take: --recipe, one flag per Config field, and --fresh."""
    flags.DEFINE_enum(
        "recipe",
        None,
        list(recipes.RECIPES),
        "A classic setup by name (docs/recipes.md): its values replace the defaults of the flags not given.",
        flag_values=flag_values,
    )
    define_config_flags(flag_values=flag_values)  # one flag per Config field, with the field's help
    flags.DEFINE_bool(
        "fresh",
        False,
        "Start over: delete the checkpoints, logs and results already in --model_dir instead of resuming from them.",
        flag_values=flag_values,
    )


def training_config(flag_values: flags.FlagValues = flags.FLAGS) -> config_lib.Config:
    """The run the training flags ask for: every Config field from the flag of the same name, and the names of those
    given on the command line (`Config.given`: what the run chooses never replaces them).

    With --recipe, the flags given on the command line override the recipe, and the recipe the other flags'
    defaults. Not resolved: the run resolves it, once (`mnist_tf.plan.prepare`).
    """
    values = config_values(flag_values=flag_values)
    given = tuple(name for name in values if flag_values[name].present)
    if flag_values.recipe:
        return recipes.config(flag_values.recipe, **{name: values[name] for name in given}, given=given)
    return config_lib.Config(**values, given=given)


def config_values(names: Iterable[str] | None = None, flag_values: flags.FlagValues = flags.FLAGS) -> dict[str, Any]:
    """The Config values of the defined flags (or of those in `names`): lists as tuples, an empty path as None."""
    values = {}
    for setting in _settings(names):
        value = flag_values[setting.name].value
        if setting.sequence:
            value = None if value is None else tuple(setting.type(v) for v in value)
            value = () if value is None and not setting.optional else value
        elif setting.optional and value == "":
            value = None
        values[setting.name] = value
    return values
