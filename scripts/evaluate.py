r"""Evaluates a SavedModel, a LiteRT file or a training run's checkpoint on the test split; or several models and
their ensemble (the mean of their probabilities).

Prints accuracy, per-class precision and recall, the confusion matrix and the most confident mistakes, and how
calibrated the probabilities are and how many test digits the model accepts as digits; the data set is the one
the model was trained on unless the data flags say otherwise. `--ood` measures "not a digit" on other sets
(mnist_tf/not_a_digit/ood.py, measured by not_a_digit/detection.py): AUROC against MNIST test, the false-positive
rate at 95% acceptance of MNIST test, and the share the model's own threshold accepts; with the model's int8 LiteRT
file beside it, how often its decision agrees.

python scripts/evaluate.py --saved_model=saved_models/lenet            # its highest version
python scripts/evaluate.py --model_dir=runs/lenet/20261122-101500 --report=report.json
python scripts/evaluate.py --saved_model=saved_models/litert/lenet/1/int8.tflite
python scripts/evaluate.py --saved_model=saved_models/bncnn/1,saved_models/bncnn/2,saved_models/bncnn/3
python scripts/evaluate.py --saved_model=saved_models/lenet --ood=fashion,fonts,ambiguous,noise,handwriting
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import common
import numpy as np
from absl import flags
from PIL import Image

from mnist_tf.config import Config
from mnist_tf.data import sources
from mnist_tf.errors import MnistTfError
from mnist_tf.export import classifier, litert
from mnist_tf.files import write_json_atomic
from mnist_tf.not_a_digit import decision, ood
from mnist_tf.not_a_digit import detection as detection_lib
from mnist_tf.not_a_digit.decision import Decision
from mnist_tf.reporting import evaluation, figures

flags.DEFINE_list(
    "saved_model",
    None,
    "A SavedModel directory, a base directory (its highest version), or a LiteRT .tflite file; several, "
    "comma-separated: each, and their ensemble.",
)
flags.DEFINE_string("model_dir", None, "A training run's directory: evaluates its latest checkpoint.")
common.define_config_flags(common.DATA_FLAGS)
flags.adopt_module_key_flags(common)  # --helpshort lists them with this script's own flags
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
    unknown = [name for name in FLAGS.ood if name not in ood.SETS]
    if unknown:  # before minutes of evaluation
        raise MnistTfError(f"--ood={unknown[0]!r} is not one of: {', '.join(ood.SETS)}")
    models = [classifier.load(path) for path in ([FLAGS.model_dir] if FLAGS.model_dir else FLAGS.saved_model)]
    options = data_options(models[0].config)
    data = sources.load_for(Config(**options, validation_size=0).resolve())  # no split held out
    test = data.test
    members = {
        model.source: evaluation.predict_in_batches(model.probabilities, test.images, FLAGS.batch_size)
        for model in models
    }
    source = announce(members, test, options["dataset"])
    probabilities = np.mean(list(members.values()), axis=0)
    report = evaluation.report(test.labels, probabilities, FLAGS.num_mistakes)
    for line in report.lines(data.class_names):
        print(line)
    chosen = (models[0] if len(models) == 1 else classifier.ensemble(models)).decision
    # log(calibrated p) * T is the model's own logits, up to a constant per image: "before" needs no second model.
    confidence = decision.confidence(np.log(np.maximum(probabilities, 1e-30)) * chosen.temperature, test.labels, chosen)
    print(confidence_line(confidence, chosen))
    detection = {}
    if FLAGS.ood:  # with the int8 LiteRT file beside the SavedModel, how often its decision agrees
        model, int8 = models[0], models[0].litert_int8
        int8_model = litert.LiteRtModel.from_file(int8).probabilities if int8 else None
        detection = detection_lib.detect(
            model.probabilities, chosen, test, probabilities, FLAGS.ood, int8_model, FLAGS.fashion_dir, FLAGS.batch_size
        )
    if FLAGS.figures:
        draw_figures(Path(FLAGS.figures), report, test, confidence["reliability"])
    if FLAGS.report:
        members_json = {name: evaluation.report(test.labels, p, 0).accuracy for name, p in members.items()}
        extra = {"members": members_json} if len(members) > 1 else {}
        write_json_atomic(
            FLAGS.report,
            {
                "model": source,
                "dataset": options["dataset"],
                **extra,
                **report.to_dict(),
                "decision": chosen.to_dict(),
                "confidence": confidence,
                "ood": detection,
            },
        )
        print(f"report: {FLAGS.report}")


def data_options(trained_with: dict[str, Any]) -> dict[str, Any]:
    """The data flags given, else the data the model was trained on."""
    return {
        name: getattr(FLAGS, name) if FLAGS[name].present else trained_with.get(name, getattr(FLAGS, name))
        for name in common.DATA_FLAGS
    }


def announce(members: dict[str, np.ndarray], test: sources.Split, dataset: str) -> str:
    """Prints what is evaluated (with each member's accuracy, for an ensemble); returns its name."""
    if len(members) == 1:
        (source,) = members
        print(f"evaluated {source} on {dataset} test")
        return source
    print(f"evaluated {len(members)} models on {dataset} test, and their ensemble")
    for name, probabilities in members.items():
        member = evaluation.report(test.labels, probabilities, num_mistakes=0)
        print(f"  {member.accuracy:.4f}  loss {member.loss:.4f}  {name}")
    print("the ensemble (the mean of their probabilities):")
    return "ensemble"


def confidence_line(confidence: dict[str, Any], chosen: Decision) -> str:
    accepted = f"{confidence['accepted']:.2%} accepted as digits"
    if confidence["accepted_accuracy"] is not None:
        accepted += f" ({confidence['accepted_accuracy']:.2%} of them right)"
    return (
        f"calibration error {confidence['calibration_error_before']:.2%} before the temperature "
        f"({chosen.temperature:.2f}), {confidence['calibration_error']:.2%} after · "
        f"not a digit below p={chosen.threshold_probability:.3f}: {accepted}"
    )


def draw_figures(folder: Path, report: evaluation.Report, test: sources.Split, reliability: dict[str, list]) -> None:
    """The confusion matrix, the reliability diagram and the most confident mistakes as pictures (those
    TensorBoard shows for a run)."""
    wrong = report.mistakes
    pictures = {
        "confusion_matrix.png": figures.confusion_matrix(report.confusion),
        "reliability_diagram.png": figures.reliability_diagram(reliability),
    }
    if wrong:  # none at all: no picture of them
        pictures["mistakes.png"] = figures.mistakes(
            test.images[[m.index for m in wrong]][..., 0], [m.label for m in wrong], [m.predicted for m in wrong]
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, picture in pictures.items():
            Image.fromarray(picture).save(folder / name, optimize=True)
    except OSError as e:
        raise MnistTfError(f"cannot write the figures to {folder}: {e.strerror}") from None
    print(f"figures: {', '.join(str(folder / name) for name in pictures)}")


if __name__ == "__main__":
    common.run(main)
