"""What every command-line script shares: `run`, where user errors end in one line and a non-zero exit. It imports
no TensorFlow, so a script that needs none (serve_web.py) starts at once."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import NoReturn

from absl import app, flags, logging

from mnist_tf import runtime
from mnist_tf.errors import Interrupted, MnistTfError


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
