r"""Exports a training run's latest checkpoint (or an ensemble of runs) as a SavedModel that TF Serving loads as it
is, and as LiteRT files.

python scripts/export.py --model_dir=runs/lenet/20261122-101500              # -> saved_models/lenet/<next>
python scripts/export.py --model_dir=runs/lenet/20261122-101500 --version=7 --export_dir=/srv/models --nolitert
python scripts/export.py --model_dir=runs/bncnn/a,runs/bncnn/b,runs/bncnn/c  # -> saved_models/bncnn_ensemble/<next>

The LiteRT files (float32, dynamic-range, int8) of version N go to <export_dir>/litert/<name>/N/, each verified on
the test split of the data the run was trained on (mnist_tf/export/litert.py). An ensemble answers with the mean
of its members' probabilities, through the same two signatures (mnist_tf/export/ensemble.py).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import common
import keras
from absl import flags

from mnist_tf.data import sources
from mnist_tf.errors import MnistTfError
from mnist_tf.export import ensemble, litert, publish
from mnist_tf.not_a_digit import decision

flags.DEFINE_list(
    "model_dir",
    None,
    "The training run to export (its config.json and checkpoints/); several, comma-separated: their ensemble.",
)
flags.DEFINE_string("export_dir", "saved_models", "Writes <export_dir>/<name>/<version>/.")
flags.DEFINE_string(
    "name",
    None,
    "Model name: the directory TF Serving serves it under (default: the recipe, else the model; +_ensemble).",
)
flags.DEFINE_integer("version", None, "Version number (default: one more than the highest there).", lower_bound=1)
flags.DEFINE_boolean(
    "litert",
    None,
    "Also write verified LiteRT files to <export_dir>/litert/<name>/<version>/ (default: as the run's --litert).",
)
flags.mark_flag_as_required("model_dir")
FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    models, configs, checkpoints = ensemble.load_runs(FLAGS.model_dir)
    config = configs[0]  # an ensemble's members share the data set: evaluation and LiteRT read it from here
    if len(models) == 1:
        model, name, source = models[0], config.name, checkpoints[0]
        metadata = {"config": dataclasses.asdict(config), "checkpoint": checkpoints[0]}
    else:
        model, name = ensemble.ensemble_model(models), f"{config.name}_ensemble"
        source = "the ensemble of " + ", ".join(checkpoints)
        members = [
            {"config": dataclasses.asdict(c), "checkpoint": p} for c, p in zip(configs, checkpoints, strict=True)
        ]
        metadata = {"config": dataclasses.asdict(config), "ensemble": members}

    def float_model() -> keras.Model:
        float_models = [litert.float32_copy(m, c) for m, c in zip(models, configs, strict=True)]
        return float_models[0] if len(models) == 1 else ensemble.ensemble_model(float_models)

    splits = sources.load_for(config)
    published = publish.publish(
        model,
        config,
        Path(FLAGS.export_dir) / (FLAGS.name or name),
        metadata=metadata,
        decision=decision.fit_model(model, splits, config.digit_acceptance),
        class_names=splits.class_names,
        version=FLAGS.version,
        with_litert=config.litert if FLAGS.litert is None else FLAGS.litert,
        float_model=float_model,
        splits=lambda: splits,
        note=print,
    )
    if published.saved_model is None:
        raise MnistTfError(published.error)
    print(f"exported {source} to {published.saved_model}")
    if published.litert:
        print(f"LiteRT: {published.litert.directory} ({', '.join(published.litert.files)})")
    if published.left_out():
        print(published.left_out())
    problem = published.problem(kept=f"the SavedModel {published.saved_model} is kept")
    if problem:
        raise MnistTfError(problem)


if __name__ == "__main__":
    common.run(main)
