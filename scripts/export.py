r"""Exports a training run's latest checkpoint as a SavedModel that TF Serving loads as it is.

python scripts/export.py --model_dir=runs/lenet/20261122-101500              # -> saved_models/lenet/<next>
python scripts/export.py --model_dir=runs/lenet/20261122-101500 --version=7 --export_dir=/srv/models
"""

from __future__ import annotations

import dataclasses

import common
from absl import app, flags

from mnist_tf.export import from_run, saved_model

flags.DEFINE_string("model_dir", None, "The training run to export (its config.json and checkpoints/).")
flags.DEFINE_string("export_dir", "saved_models", "Writes <export_dir>/<name>/<version>/.")
flags.DEFINE_string(
    "name", None, "Model name: the directory TF Serving serves it under (default: the recipe, else the model)."
)
flags.DEFINE_integer("version", None, "Version number (default: one more than the highest there).", lower_bound=1)
flags.mark_flag_as_required("model_dir")
FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    model, config, checkpoint = from_run.load_model(FLAGS.model_dir)
    metadata = {"config": dataclasses.asdict(config), "checkpoint": checkpoint}
    base = f"{FLAGS.export_dir}/{FLAGS.name or config.name}"
    path = saved_model.export_saved_model(model, base, FLAGS.version, metadata)
    print(f"exported {checkpoint} to {path}")


if __name__ == "__main__":
    common.run(main)
