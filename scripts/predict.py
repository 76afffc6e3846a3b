r"""Classifies image files of handwritten digits (or of the classes a model was trained on) with a SavedModel, or
a LiteRT file of one, by class name.

Takes PNG, JPEG, GIF (its first frame) or BMP files of any size up to 67 megapixels: grayscale, RGB or RGBA, dark
ink on light paper or light on dark. A file that is none of these, or damaged, is one line on stderr; the others
are still answered, and the exit status is 1. An image the model does not take for a digit (its is_digit output:
mnist_tf/not_a_digit/decision.py) is answered "not a digit?" ("none of the classes?" for other data), with its likeliest
classes after it.
The SavedModel's `image_bytes` signature turns each into an MNIST-style 28x28 image inside its own graph
(mnist_tf/data/preprocess.py), exactly as it does for a TF Serving client; for a `.tflite` file the same
preprocessing code runs here, and the LiteRT runtime (ai-edge-litert) classifies its output.

python scripts/predict.py digit.png photo.jpg
python scripts/predict.py --saved_model=saved_models/mlp/3 --top_k=3 scans/*.png
python scripts/predict.py --saved_model=saved_models/litert/lenet/1/int8.tflite digit.png
curl -s https://example.com/digit.png | python scripts/predict.py -    # "-": one image read from stdin
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import common
import numpy as np
import tensorflow as tf
from absl import app, flags

from mnist_tf.data import preprocess
from mnist_tf.data.sources import DIGITS
from mnist_tf.errors import MnistTfError
from mnist_tf.export import classifier
from mnist_tf.files import make_dir

flags.DEFINE_string(
    "saved_model",
    "saved_models/lenet",
    "A SavedModel directory, a base directory (its highest version), a LiteRT .tflite file, or a training run's "
    "folder (mnist_tf/export/classifier.py).",
)
flags.DEFINE_integer("top_k", 1, "How many of the likeliest classes to print per image.", lower_bound=1)
flags.DEFINE_integer(
    "batch_size", 64, "Images per prediction call (and read at once).", lower_bound=1, upper_bound=preprocess.MAX_BATCH
)
flags.DEFINE_string("preprocessed_dir", None, "Also save what the model saw: each preprocessed image as a PNG.")
FLAGS = flags.FLAGS


def read_image(path: str) -> bytes:
    """The file's bytes (standard input's for "-"), if they decode as an image; MnistTfError naming the file
    otherwise."""
    try:
        encoded = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
        preprocess.check_decodable(encoded)
    except OSError as e:
        raise MnistTfError(f"{path}: {e.strerror}") from None
    except MnistTfError as e:
        raise MnistTfError(f"{path}: {e}") from None
    return encoded


def describe(
    path: str, probabilities: np.ndarray, is_digit: bool, top_k: int, width: int, class_names: Sequence[str]
) -> str:
    """`path  class  confidence`, then the next likeliest classes when top_k > 1; `path  not a digit?  (class
    confidence ...)` when the model says it is none of its classes."""
    ranked = np.argsort(-probabilities, kind="stable")[:top_k]
    guesses = "   ".join(f"{class_names[i]} {probabilities[i]:.3f}" for i in ranked)
    none = "not a digit?" if tuple(class_names) == DIGITS else "none of the classes?"
    return f"{path:<{width}}  " + (guesses if is_digit else f"{none}  ({guesses})")


def main(argv: list[str]) -> None:
    paths = argv[1:]
    if not paths:
        raise app.UsageError("give one or more image files")
    if paths.count("-") > 1:  # standard input holds one image, and is read once
        raise MnistTfError("'-' (one image read from standard input) can be given only once")
    model = classifier.load(FLAGS.saved_model)
    if FLAGS.preprocessed_dir:  # before any image is read: a folder that cannot be made is the first thing to say
        make_dir(FLAGS.preprocessed_dir, "--preprocessed_dir")
    width = max(len(path) for path in paths)
    answered = 0
    for start in range(0, len(paths), FLAGS.batch_size):  # one batch of files in memory at a time
        batch = []
        for path in paths[start : start + FLAGS.batch_size]:
            try:
                batch.append((path, read_image(path)))
            except MnistTfError as e:
                print(f"error: {e}", file=sys.stderr)
        for (path, _), answer in zip(batch, model.answer_files([encoded for _, encoded in batch]), strict=True):
            if isinstance(answer, str):  # what the model's own preprocessing refused
                print(f"error: {path}: {answer}", file=sys.stderr)
                continue
            is_digit = bool(answer.get("is_digit", True))  # exported before the decision: every image a digit
            print(describe(path, answer["probabilities"], is_digit, FLAGS.top_k, width, model.class_names))
            if FLAGS.preprocessed_dir:
                save_preprocessed(answer["preprocessed"], answered, path)
            answered += 1
    if answered < len(paths):
        sys.exit(1)


def save_preprocessed(image: np.ndarray, index: int, path: str) -> None:
    file = Path(FLAGS.preprocessed_dir) / f"{index:04d}-{Path(path).stem}.png"
    try:
        file.write_bytes(tf.io.encode_png(image[..., tf.newaxis]).numpy())
    except OSError as e:
        raise MnistTfError(f"cannot write {file}: {e.strerror}") from None


if __name__ == "__main__":
    common.run(main, positional_arguments=True)
