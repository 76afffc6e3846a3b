"""What the command-line scripts share: the data flags, and user errors as one line and a non-zero exit."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable

from absl import flags, logging

from mnist_tf import config as config_lib
from mnist_tf.errors import MnistTfError

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


def user_errors_exit(main: Callable[[list[str]], None]) -> Callable[[list[str]], None]:
    """Wraps an absl `main`: quiet absl/tfds warnings, and a MnistTfError becomes `error: ...` and exit status 1."""

    @functools.wraps(main)
    def wrapped(argv: list[str]) -> None:
        logging.set_verbosity(logging.ERROR)
        try:
            main(argv)
        except MnistTfError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(1)
        except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as Unix tools do
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)

    return wrapped
