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

from pathlib import Path

import common
from absl import flags

from mnist_tf.errors import MnistTfError
from mnist_tf.export import classifier, publish

flags.DEFINE_list(
    "model_dir",
    None,
    "The training run (or one of its checkpoints) to export; several, comma-separated: their ensemble.",
)
flags.DEFINE_string("export_dir", "saved_models", "Writes <export_dir>/<name>/<version>/.")
flags.DEFINE_string(
    "name",
    None,
    "Model name: the directory TF Serving serves it under (default: the recipe, else the model; +_ensemble).",
)
flags.DEFINE_integer(
    "version", None, "Version number (default: one more than the highest there).", lower_bound=1, upper_bound=2**63 - 1
)  # TF Serving reads versions as int64
flags.DEFINE_boolean(
    "litert",
    None,
    "Also write verified LiteRT files to <export_dir>/litert/<name>/<version>/ (default: as the run's --litert).",
)
flags.mark_flag_as_required("model_dir")
FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    runs = [classifier.load(path) for path in FLAGS.model_dir]
    published = publish.publish_runs(
        runs, Path(FLAGS.export_dir), name=FLAGS.name, version=FLAGS.version, with_litert=FLAGS.litert, note=print
    )
    if published.saved_model is None:
        raise MnistTfError(published.error)
    if published.left_out():
        print(published.left_out())
    problem = published.problem(kept=f"the SavedModel {published.saved_model} is kept")
    if problem:
        raise MnistTfError(problem)


if __name__ == "__main__":
    common.run(main)
