"""What the command-line scripts share: flags generated from `Config`, and `run`: user errors as one line and a
non-zero exit."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

from absl import app, flags, logging

from mnist_tf import config as config_lib
from mnist_tf import recipes, runtime
from mnist_tf.errors import MnistTfError
from mnist_tf.training.interruption import Interrupted

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


def define_training_flags() -> None:
    """What scripts/train.py (and train_ray.py) take: --recipe, one flag per Config field, and --fresh."""
    flags.DEFINE_enum(
        "recipe",
        None,
        list(recipes.RECIPES),
        "A classic setup by name (docs/recipes.md): its values replace the defaults of the flags not given.",
    )
    define_config_flags()  # one flag per Config field, with the field's help
    flags.DEFINE_bool(
        "fresh",
        False,
        "Start over: delete the checkpoints, logs and results already in --model_dir instead of resuming from them.",
    )


def training_config() -> config_lib.Config:
    """The run the training flags ask for: every Config field from the flag of the same name.

    With --recipe, the flags given on the command line override the recipe, and the recipe the other flags'
    defaults. Not resolved: the run resolves it, once (`mnist_tf.plan.prepare`).
    """
    values = config_values()
    if flags.FLAGS.recipe:
        present = {name: v for name, v in values.items() if flags.FLAGS[name].present}
        config = recipes.config(flags.FLAGS.recipe, **present)
    else:
        config = config_lib.Config(**values)
    return config


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


def run(main: Callable[[list[str]], None], positional_arguments: bool = False) -> None:
    """`app.run(main)` where every mistake a user can make ends in one line `error: ...` and a non-zero exit.

    Arguments other than flags are refused unless `positional_arguments`. Bad flags exit 2, like other Unix tools'
    usage errors; a MnistTfError exits 1; a training run stopped by a
    signal prints how to resume and exits 128 + the signal's number. Anything else is a bug and keeps its traceback.
    """
    # `bazel run` starts a script in its runfiles: relative paths (--data_dir, runs/, saved_models/) mean the
    # directory it was run from, as with `python scripts/...`.
    if "BUILD_WORKING_DIRECTORY" in os.environ:
        os.chdir(os.environ["BUILD_WORKING_DIRECTORY"])
    app.run(_one_line_errors(main, positional_arguments), flags_parser=_parse_flags)


_HELP_FLAGS = ("-h", "-?", "--help", "--helpshort", "--helpfull", "--helpxml")


def _parse_flags(argv: list[str]) -> list[str]:
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        _exit(f"{e} (see --helpshort)", 2)
    except SystemExit:  # absl's help flags print the help, then exit 1: asking for help is no failure
        if not any(argument.split("=", 1)[0] in _HELP_FLAGS for argument in argv[1:]):
            raise
        _stop(0)
    except BrokenPipeError:  # the help's reader went away (`--helpshort | head`)
        _stop(0)


def _one_line_errors(main: Callable[[list[str]], None], positional_arguments: bool) -> Callable[[list[str]], None]:
    @functools.wraps(main)
    def wrapped(argv: list[str]) -> None:
        logging.set_verbosity(logging.ERROR)  # absl's and tfds's warnings are not for users
        try:
            if len(argv) > 1 and not positional_arguments:
                raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
            runtime.check_versions()
            main(argv)
        except app.UsageError as e:
            _exit(f"{e} (see --helpshort)", 2)
        except MnistTfError as e:
            _exit(str(e), 1)
        except Interrupted as e:  # not an error: the run stopped where it was told to and says how to go on
            print(e, file=sys.stderr)
            sys.exit(e.exit_code)
        except KeyboardInterrupt:  # Ctrl-C outside a training run's epochs (which save first): nothing to keep
            _exit("interrupted", 130)
        except BrokenPipeError:  # the reader went away (`| head`)
            _stop(1)

    return wrapped


def _stop(status: int) -> NoReturn:
    """Exits with `status` once stdout is flushed; quietly, as Unix tools do, if its reader went away (`| head`):
    Python's own flush at exit would fail on the closed pipe, with a traceback."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(status)


def _exit(message: str, status: int) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(status)
