r"""Evaluates a SavedModel, a LiteRT file or a training run's checkpoint on the test split; or several models and
their ensemble (the mean of their probabilities).

Prints accuracy, per-class precision and recall, the confusion matrix and the most confident mistakes; the data
set is the one the model was trained on unless the data flags say otherwise.

python scripts/evaluate.py --saved_model=saved_models/lenet            # its highest version
python scripts/evaluate.py --model_dir=runs/lenet/20261122-101500 --report=report.json
python scripts/evaluate.py --saved_model=saved_models/litert/lenet/1/int8.tflite
python scripts/evaluate.py --saved_model=saved_models/bncnn/1,saved_models/bncnn/2,saved_models/bncnn/3
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import common
import numpy as np
import tensorflow as tf
from absl import flags
from PIL import Image

from mnist_tf.config import Config
from mnist_tf.data import sources
from mnist_tf.errors import MnistTfError, assertion_message
from mnist_tf.export import from_run, litert, saved_model
from mnist_tf.files import write_json_atomic
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
    "Also draw confusion_matrix.png and mistakes.png (the --num_mistakes listed, if any) into this folder.",
)
flags.mark_flags_as_mutual_exclusive(["saved_model", "model_dir"], required=True)
FLAGS = flags.FLAGS

Predict = Callable[[np.ndarray], np.ndarray]


def from_saved_model(path: str) -> tuple[str, dict[str, Any], Predict]:
    """(what is evaluated, its training config, uint8 images -> probabilities) through `serving_default`."""
    version_dir, loaded = saved_model.load(path)
    metadata_file = version_dir / "assets.extra" / saved_model.METADATA_FILE
    metadata = json.loads(metadata_file.read_text()) if metadata_file.is_file() else {}
    signature = loaded.signatures[saved_model.SERVING_DEFAULT]

    def predict(images: np.ndarray) -> np.ndarray:
        try:
            return signature(images=tf.constant(images))["probabilities"].numpy()
        except tf.errors.InvalidArgumentError as e:
            raise MnistTfError(f"{version_dir} rejects these images: {assertion_message(e)}") from None

    return str(version_dir), metadata.get("config", {}), predict


def from_litert(path: str) -> tuple[str, dict[str, Any], Predict]:
    """(what is evaluated, its training config from the report beside it, uint8 images -> probabilities)."""
    model = litert.LiteRtModel.from_file(path)
    return path, litert.read_report(Path(path).parent).get("config", {}), model.probabilities


def from_checkpoint(model_dir: str) -> tuple[str, dict[str, Any], Predict]:
    """(what is evaluated, its training config, uint8 images -> probabilities) from the latest checkpoint."""
    model, config, checkpoint = from_run.load_model(model_dir)
    serve = tf.function(lambda images: saved_model.predict(model, images)["probabilities"])

    def predict(images: np.ndarray) -> np.ndarray:
        if images.shape[1:] != model.input_shape[1:]:
            raise MnistTfError(f"{checkpoint} takes images {model.input_shape[1:]}, not {images.shape[1:]}")
        return serve(tf.constant(images)).numpy()

    return checkpoint, dataclasses.asdict(config), predict


def main(argv: list[str]) -> None:
    if FLAGS.model_dir:
        models = [from_checkpoint(FLAGS.model_dir)]
    else:
        models = [
            from_litert(path) if litert.is_litert_file(path) else from_saved_model(path) for path in FLAGS.saved_model
        ]
    _, trained_with, _ = models[0]
    options = {
        name: getattr(FLAGS, name) if FLAGS[name].present else trained_with.get(name, getattr(FLAGS, name))
        for name in common.DATA_FLAGS
    }
    test = sources.load_for(Config(**options, validation_size=0).resolve()).test  # no split held out
    members = {}
    for source, _, predict in models:
        members[source] = evaluation.predict_in_batches(predict, test.images, FLAGS.batch_size)
    if len(members) == 1:
        (source,) = members
        print(f"evaluated {source} on {options['dataset']} test")
    else:
        source = "ensemble"
        print(f"evaluated {len(members)} models on {options['dataset']} test, and their ensemble")
        for name, probabilities in members.items():
            member = evaluation.report(test.labels, probabilities, num_mistakes=0)
            print(f"  {member.accuracy:.4f}  loss {member.loss:.4f}  {name}")
        print("the ensemble (the mean of their probabilities):")
    report = evaluation.report(test.labels, np.mean(list(members.values()), axis=0), FLAGS.num_mistakes)
    for line in report.lines():
        print(line)
    if FLAGS.figures:
        draw_figures(Path(FLAGS.figures), report, test)
    if FLAGS.report:
        members_json = {name: evaluation.report(test.labels, p, 0).accuracy for name, p in members.items()}
        extra = {"members": members_json} if len(members) > 1 else {}
        write_json_atomic(FLAGS.report, {"model": source, "dataset": options["dataset"], **extra, **report.to_dict()})
        print(f"report: {FLAGS.report}")


def draw_figures(folder: Path, report: evaluation.Report, test: sources.Split) -> None:
    """The confusion matrix and the most confident mistakes as pictures (those TensorBoard shows for a run)."""
    wrong = report.mistakes
    pictures = {"confusion_matrix.png": figures.confusion_matrix(report.confusion)}
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
