r"""Runs recipes (classic setups, docs/recipes.md) and tabulates reported against measured test accuracy.

python scripts/recipes.py --all --data_dir=/path/to/idx/files --output=runs/recipes.md
python scripts/recipes.py --recipes=mxnet_mlp,digits_cnn --epochs=1    # a quick look

Each recipe trains as `scripts/train.py --recipe=NAME` would, in its own process, into <runs_dir>/NAME; the table
(Markdown) is printed and written to --output.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import time
from pathlib import Path

import common
from absl import app, flags

from mnist_tf import recipes
from mnist_tf.errors import MnistTfError
from mnist_tf.files import make_file_dir, write_text_atomic
from mnist_tf.reporting.machine import machine
from mnist_tf.training.run_state import RESULTS_FILE

flags.DEFINE_bool("all", False, "Run every recipe.")
flags.DEFINE_list("recipes", None, f"Recipes to run: {', '.join(recipes.RECIPES)}.")
flags.DEFINE_string(
    "data_dir", None, "Folder with MNIST's four IDX files, for the recipes that train on MNIST (default: tfds)."
)
flags.DEFINE_integer("epochs", None, "Train each recipe this many epochs instead of its own (the table says so).")
flags.DEFINE_string(
    "runs_dir", None, "Where each recipe's run goes, as <runs_dir>/<recipe> (default: runs/recipes/<time>)."
)
flags.DEFINE_string("export_dir", "", "Export each recipe to <export_dir>/<recipe>/<version> (default: no export).")
flags.DEFINE_string("output", "runs/recipes.md", "Where the Markdown table goes.")
flags.register_validator(
    "recipes",
    lambda names: names is None or (bool(names) and set(names) <= set(recipes.RECIPES)),
    message=f"--recipes takes a comma-separated list of: {', '.join(recipes.RECIPES)}",
)
FLAGS = flags.FLAGS
TRAIN_SCRIPT = Path(__file__).resolve().parent / "train.py"


def train_command(name: str, model_dir: Path) -> list[str]:
    """`scripts/train.py --recipe=NAME` with this script's flags; the digits need no --data_dir (scikit-learn)."""
    command = [sys.executable, str(TRAIN_SCRIPT), f"--recipe={name}", f"--model_dir={model_dir}", "--fresh"]
    command.append(f"--export_dir={FLAGS.export_dir}")
    if FLAGS.data_dir and recipes.get(name).values["dataset"] != "digits":
        command.append(f"--data_dir={FLAGS.data_dir}")
    if FLAGS.epochs:
        command.append(f"--epochs={FLAGS.epochs}")
    return command


def main(argv: list[str]) -> None:
    if FLAGS.all == bool(FLAGS.recipes):
        raise app.UsageError("pass --all or --recipes=NAMES (one of them)")
    names = list(recipes.RECIPES) if FLAGS.all else list(dict.fromkeys(FLAGS.recipes))
    make_file_dir(FLAGS.output, "--output")  # before hours of training: the table must have somewhere to go
    runs_dir = Path(FLAGS.runs_dir or f"runs/recipes/{time.strftime('%Y%m%d-%H%M%S')}")
    results: dict[str, dict | None] = {}
    for name in names:
        model_dir = runs_dir / name
        print(f"\n=== recipe {name}: {recipes.get(name).setup}", flush=True)
        finished = subprocess.run(train_command(name, model_dir), check=False)
        results[name] = json.loads((model_dir / RESULTS_FILE).read_text()) if finished.returncode == 0 else None
    measured_on = machine()
    report = "\n".join(
        [
            recipes.table(results),
            "",
            f"Measured {datetime.date.today()} on {measured_on['cpu']} ({measured_on['cores']} cores), TensorFlow "
            f"{measured_on['tensorflow']}, Keras {measured_on['keras']}: `python scripts/recipes.py "
            f"{' '.join(sys.argv[1:])}`.",
        ]
    )
    write_text_atomic(FLAGS.output, report + "\n")
    print(f"\n{report}\n\ntable: {FLAGS.output}")
    failed = [name for name, result in results.items() if result is None]
    if failed:
        raise MnistTfError(f"recipes failed: {', '.join(failed)} (their output is above)")


if __name__ == "__main__":
    common.run(main)
