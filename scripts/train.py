r"""Trains a digit classifier on MNIST, evaluates it on the test split and exports a SavedModel.

python scripts/train.py --model=lenet
python scripts/train.py --model=mlp --data_dir=/path/to/idx/files   # fully offline
python scripts/train.py --recipe=mxnet_lenet --epochs=5              # a classic setup; flags override it
"""

from __future__ import annotations

import dataclasses
import sys
import time

import common
from absl import app, flags

from mnist_tf import config as config_lib
from mnist_tf import recipes
from mnist_tf.training import run

flags.DEFINE_enum(
    "recipe",
    None,
    list(recipes.RECIPES),
    "A classic setup by name (docs/recipes.md): its values replace the defaults of the flags not given.",
)
common.define_config_flags()  # one flag per Config field, with the field's help
flags.adopt_module_key_flags(common)  # --helpshort lists them with this script's own flags
flags.DEFINE_bool(
    "fresh",
    False,
    "Start over: delete the checkpoints, logs and results already in --model_dir instead of resuming from them.",
)
FLAGS = flags.FLAGS


def config_from_flags() -> config_lib.Config:
    """Every Config field comes from the flag of the same name.

    With --recipe, the flags given on the command line override the recipe, and the recipe the other flags'
    defaults.
    """
    values = common.config_values()
    if FLAGS.recipe:
        config = recipes.config(FLAGS.recipe, **{name: v for name, v in values.items() if FLAGS[name].present})
    else:
        config = config_lib.Config(**values)
    model_dir = FLAGS.model_dir or f"runs/{config.name}/{time.strftime('%Y%m%d-%H%M%S')}"
    return dataclasses.replace(config, model_dir=model_dir)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    config = config_from_flags()
    try:
        run.run(config, fresh=FLAGS.fresh)
    except KeyboardInterrupt:  # a second Ctrl-C: the first one asks for a checkpoint at the next step
        print(
            f"\ninterrupted; run the same command with --model_dir={config.model_dir} to resume from its last "
            "checkpoint",
            file=sys.stderr,
        )
        sys.exit(130)


if __name__ == "__main__":
    common.run(main)
