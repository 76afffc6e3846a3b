r"""Evaluates a SavedModel, a LiteRT file or a training run's checkpoint on the test split; or several models and
their ensemble (the mean of their probabilities).

Prints accuracy, per-class precision and recall, the confusion matrix, the most confident mistakes, calibration and
the share of test digits accepted as digits, on the data the model was trained on unless the data flags say
otherwise; `--ood` measures "not a digit" on other sets (mnist_tf/not_a_digit/ood.py): AUROC against MNIST test, the
false-positive rate where 95 in 100 test digits are accepted, the share its threshold accepts (by kind, for the
drawn sets), and with the model's int8 LiteRT file beside it how often its decision agrees. The work is
mnist_tf/evaluate.py.

python scripts/evaluate.py --saved_model=saved_models/lenet            # its highest version
python scripts/evaluate.py --model_dir=runs/lenet/20261122-101500 --report=report.json
python scripts/evaluate.py --saved_model=saved_models/litert/lenet/1/int8.tflite
python scripts/evaluate.py --saved_model=saved_models/bncnn/1,saved_models/bncnn/2,saved_models/bncnn/3
python scripts/evaluate.py --saved_model=saved_models/lenet --ood=fashion,fonts,ambiguous,noise,handwriting
"""

from __future__ import annotations

from pathlib import Path

import common
import config_flags
from absl import flags

from mnist_tf import evaluate
from mnist_tf.config import Config
from mnist_tf.data import sources
from mnist_tf.export import classifier
from mnist_tf.files import make_dir, make_file_dir, write_json_atomic
from mnist_tf.not_a_digit import ood

flags.DEFINE_list(
    "saved_model",
    None,
    "A SavedModel directory, a base directory (its highest version), or a LiteRT .tflite file; several, "
    "comma-separated: each, and their ensemble.",
)
flags.DEFINE_string("model_dir", None, "A training run's directory: evaluates its latest checkpoint.")
config_flags.define_config_flags(config_flags.DATA_FLAGS)
flags.adopt_module_key_flags(config_flags)  # --helpshort lists them with this script's own flags
flags.DEFINE_integer("batch_size", 1000, "Images per prediction call.", lower_bound=1)
flags.DEFINE_integer("num_mistakes", 10, "How many of the most confident mistakes to list.", lower_bound=0)
flags.DEFINE_string("report", None, "Also write the report as JSON to this file.")
flags.DEFINE_string(
    "figures",
    None,
    "Also draw confusion_matrix.png, reliability_diagram.png and mistakes.png (the --num_mistakes listed, if any) "
    "into this folder.",
)
flags.DEFINE_list("ood", [], f"Also measure not-a-digit on these sets: {', '.join(ood.SETS)}.")
flags.DEFINE_string("fashion_dir", ood.FASHION_DIR, "Fashion-MNIST's IDX files, for --ood=fashion.")
flags.mark_flags_as_mutual_exclusive(["saved_model", "model_dir"], required=True)
FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    if FLAGS.figures:  # before the evaluation: a folder that cannot be made is the first thing to say
        make_dir(FLAGS.figures, "--figures")
    if FLAGS.report:
        make_file_dir(FLAGS.report, "--report")
    models = [classifier.load(path) for path in ([FLAGS.model_dir] if FLAGS.model_dir else FLAGS.saved_model)]
    trained_with = models[0].config  # the data flags given, else the data the model was trained on
    options = {
        name: getattr(FLAGS, name) if FLAGS[name].present else trained_with.get(name, getattr(FLAGS, name))
        for name in config_flags.DATA_FLAGS
    }
    settings = Config(**options, validation_size=0).resolve()  # no split held out
    data = sources.load_for(settings)
    evaluated = evaluate.evaluate(
        models, data.test, settings.data_name, data.class_names, batch_size=FLAGS.batch_size,
        num_mistakes=FLAGS.num_mistakes, ood_sets=FLAGS.ood, fashion_dir=FLAGS.fashion_dir,
    )  # fmt: skip
    if FLAGS.figures:
        print(f"figures: {', '.join(map(str, evaluated.save_figures(Path(FLAGS.figures))))}")
    if FLAGS.report:
        write_json_atomic(FLAGS.report, evaluated.to_dict())
        print(f"report: {FLAGS.report}")


if __name__ == "__main__":
    common.run(main)
