"""What the command-line scripts share: the data flags, and `run`: user errors as one line and a non-zero exit."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import NoReturn

from absl import app, flags, logging

from mnist_tf import config as config_lib
from mnist_tf.errors import MnistTfError
from mnist_tf.interruption import Interrupted

DATA_FLAGS = ("dataset", "data_dir", "source", "tfds_data_dir")


def define_data_flags() -> None:
    defaults = config_lib.Config()
    flags.DEFINE_enum("dataset", defaults.dataset, config_lib.DATASETS, "Data set (tfds name).")
    flags.DEFINE_string(
        "data_dir",
        None,
        "Folder with the four LeCun IDX files (train-images-idx3-ubyte.gz ...), gzipped or not: works offline. "
        "Defaults to $MNIST_TF_DATA_DIR.",
    )
    flags.DEFINE_enum(
        "source",
        defaults.source,
        config_lib.SOURCES,
        "Where data comes from: idx (--data_dir), tfds (tensorflow-datasets; with --data_dir, tfds builds its copy "
        "from those files instead of downloading), auto (idx when a data dir is given, else tfds).",
    )
    flags.DEFINE_string("tfds_data_dir", None, "tensorflow-datasets cache folder (default: tfds's own).")


def run(main: Callable[[list[str]], None]) -> None:
    """`app.run(main)` where every mistake a user can make ends in one line `error: ...` and a non-zero exit.

    Bad flags exit 2, like other Unix tools' usage errors; a MnistTfError exits 1; a training run stopped by a
    signal prints how to resume and exits 128 + the signal's number. Anything else is a bug and keeps its traceback.
    """
    # `bazel run` starts a script in its runfiles: relative paths (--data_dir, runs/, saved_models/) mean the
    # directory it was run from, as with `python scripts/...`.
    if "BUILD_WORKING_DIRECTORY" in os.environ:
        os.chdir(os.environ["BUILD_WORKING_DIRECTORY"])
    app.run(_one_line_errors(main), flags_parser=_parse_flags)


def _parse_flags(argv: list[str]) -> list[str]:
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        _exit(f"{e} (see --helpshort)", 2)


def _one_line_errors(main: Callable[[list[str]], None]) -> Callable[[list[str]], None]:
    @functools.wraps(main)
    def wrapped(argv: list[str]) -> None:
        logging.set_verbosity(logging.ERROR)  # absl's and tfds's warnings are not for users
        try:
            main(argv)
        except app.UsageError as e:
            _exit(f"{e} (see --helpshort)", 2)
        except MnistTfError as e:
            _exit(str(e), 1)
        except Interrupted as e:  # not an error: the run stopped where it was told to and says how to go on
            print(e, file=sys.stderr)
            sys.exit(e.exit_code)
        except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as Unix tools do
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)

    return wrapped


def _exit(message: str, status: int) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(status)
