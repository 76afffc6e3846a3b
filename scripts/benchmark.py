r"""Times our training loop against Keras `model.fit` (and PyTorch, when installed) on the same models, data and
machine.

python scripts/benchmark.py --data_dir=/path/to/idx/files            # LeNet, MLP and speedrun, full runs
python scripts/benchmark.py --quick --models=lenet                    # one epoch each: about a minute
python scripts/benchmark.py --dtype=float32                           # instead of this hardware's fastest

Writes every measurement to --output (JSON) and prints a Markdown table (docs/performance.md).
"""

from __future__ import annotations

import os
import sys

import common
import config_flags
from absl import flags

from mnist_tf import config as config_lib
from mnist_tf.benchmark import race, table
from mnist_tf.files import make_file_dir, write_json_atomic

BENCHMARK_FLAGS = (*config_flags.DATA_FLAGS, "dtype")
config_flags.define_config_flags(BENCHMARK_FLAGS)
flags.adopt_module_key_flags(config_flags)
flags.DEFINE_list("models", list(race.MODELS), f"Models and speed recipes to race: {', '.join(race.MODELS)}.")
flags.DEFINE_bool("quick", False, "Train one epoch per contender instead of the default run (no time to target).")
flags.DEFINE_string("output", "runs/benchmark.json", "Where the JSON results go.")
flags.register_validator(
    "models",
    lambda models: bool(models) and set(models) <= set(race.MODELS),
    message=f"--models takes a comma-separated list of: {', '.join(race.MODELS)}",
)

FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    make_file_dir(FLAGS.output, "--output")  # before the race: its results must have somewhere to go
    base = config_lib.Config(**config_flags.config_values(BENCHMARK_FLAGS))
    results = race.run(base, tuple(dict.fromkeys(FLAGS.models)), FLAGS.quick)
    results["command"] = " ".join(["python", os.path.relpath(sys.argv[0]), *sys.argv[1:]])
    write_json_atomic(FLAGS.output, results)
    print(table.table(results))
    print(f"\nresults: {FLAGS.output}")


if __name__ == "__main__":
    common.run(main)
