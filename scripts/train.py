r"""Trains a digit classifier on MNIST, evaluates it on the test split and exports a SavedModel.

python scripts/train.py --model=lenet
python scripts/train.py --model=mlp --data_dir=/path/to/idx/files   # fully offline
python scripts/train.py --recipe=mxnet_lenet --epochs=5              # a classic setup; flags override it
"""

from __future__ import annotations

import common
import config_flags
from absl import flags

from mnist_tf import run

config_flags.define_training_flags()
flags.adopt_module_key_flags(config_flags)  # --helpshort lists them with this script's own flags
FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    run.run(config_flags.training_config(), fresh=FLAGS.fresh)


if __name__ == "__main__":
    common.run(main)
