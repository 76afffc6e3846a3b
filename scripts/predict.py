r"""Classifies image files of handwritten digits with a SavedModel.

Takes PNG, JPEG, GIF or BMP files of any size up to 67 megapixels: grayscale, RGB or RGBA, dark ink on light paper
or light on dark.
The SavedModel's `image_bytes` signature turns each into an MNIST-style 28x28 image inside its own graph
(mnist_tf/export/preprocess.py), exactly as it does for a TF Serving client.

python scripts/predict.py digit.png photo.jpg
python scripts/predict.py --saved_model=saved_models/mlp/3 --top_k=3 scans/*.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import common
import numpy as np
import tensorflow as tf
from absl import app, flags

from mnist_tf.errors import MnistTfError
from mnist_tf.export import preprocess, saved_model

flags.DEFINE_string(
    "saved_model", "saved_models/lenet", "A SavedModel directory, or a base directory (its highest version)."
)
flags.DEFINE_integer("top_k", 1, "How many of the likeliest digits to print per image.", lower_bound=1, upper_bound=10)
flags.DEFINE_integer("batch_size", 64, "Images per prediction call.", lower_bound=1)
flags.DEFINE_string("preprocessed_dir", None, "Also save what the model saw: each preprocessed image as a PNG.")
FLAGS = flags.FLAGS


def read_image(path: str) -> bytes:
    """The file's bytes, if they decode as an image; MnistTfError naming the file otherwise."""
    try:
        encoded = Path(path).read_bytes()
        preprocess.check_decodable(encoded)
    except OSError as e:
        raise MnistTfError(f"{path}: {e.strerror}") from None
    except MnistTfError as e:
        raise MnistTfError(f"{path}: {e}") from None
    return encoded


def describe(path: str, probabilities: np.ndarray, top_k: int, width: int) -> str:
    """`path  digit  confidence`, then the next likeliest digits when top_k > 1."""
    ranked = np.argsort(-probabilities, kind="stable")[:top_k]
    return f"{path:<{width}}  " + "   ".join(f"{digit} {probabilities[digit]:.3f}" for digit in ranked)


def main(argv: list[str]) -> None:
    paths = argv[1:]
    if not paths:
        raise app.UsageError("give one or more image files")
    version_dir, loaded = saved_model.load(FLAGS.saved_model)
    if saved_model.IMAGE_BYTES not in loaded.signatures:
        raise MnistTfError(
            f"{version_dir} has no {saved_model.IMAGE_BYTES} signature; re-export it with scripts/export.py"
        )
    signature = loaded.signatures[saved_model.IMAGE_BYTES]
    good: list[tuple[str, bytes]] = []
    for path in paths:
        try:
            good.append((path, read_image(path)))
        except MnistTfError as e:
            print(f"error: {e}", file=sys.stderr)
    width = max(len(path) for path in paths)
    for start in range(0, len(good), FLAGS.batch_size):
        batch = good[start : start + FLAGS.batch_size]
        outputs = signature(image_bytes=tf.constant([encoded for _, encoded in batch]))
        for i, (path, _) in enumerate(batch):
            print(describe(path, outputs["probabilities"][i].numpy(), FLAGS.top_k, width))
            if FLAGS.preprocessed_dir:
                save_preprocessed(outputs["preprocessed"][i], start + i, path)
    if len(good) < len(paths):
        sys.exit(1)


def save_preprocessed(image: tf.Tensor, index: int, path: str) -> None:
    folder = Path(FLAGS.preprocessed_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{index:04d}-{Path(path).stem}.png").write_bytes(tf.io.encode_png(image[..., tf.newaxis]).numpy())


if __name__ == "__main__":
    common.run(main)
