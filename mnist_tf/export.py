"""SavedModels in the layout TF Serving watches: `<export_base>/<version>/`, written atomically.

Signature `serving_default`:
  inputs:  images  uint8 [batch, rows, cols]   raw pixels; normalization happens inside the graph
  outputs: probabilities float32 [batch, 10], classes int64 [batch]
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import keras
import tensorflow as tf

from mnist_tf.data import normalize_images
from mnist_tf.errors import MnistTfError


def next_version(export_base: str | os.PathLike) -> int:
    """1 + the highest numeric version under `export_base` (1 when there is none)."""
    base = Path(export_base)
    versions = [int(p.name) for p in base.iterdir() if p.name.isdigit()] if base.is_dir() else []
    return max(versions, default=0) + 1


def export_saved_model(model: keras.Model, export_base: str | os.PathLike, version: int | None = None) -> Path:
    """Writes `model` with its serving signature to `<export_base>/<version>` and returns that path.

    The SavedModel is written to a hidden temporary directory beside the target and renamed into place, so a
    server watching `export_base` never sees a half-written version, and a failure leaves earlier ones untouched.
    """
    base = Path(export_base)
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MnistTfError(f"cannot create export directory {base}: {e.strerror}") from None
    version = next_version(base) if version is None else version
    target = base / str(version)
    if target.exists():
        raise MnistTfError(f"{target} already exists; versions are never overwritten")
    rows, cols = model.input_shape[1:3]

    @tf.function
    def serve(images: tf.Tensor) -> dict[str, tf.Tensor]:
        logits = model(normalize_images(images[..., tf.newaxis]), training=False)
        probabilities = tf.nn.softmax(tf.cast(logits, tf.float32))
        return {"probabilities": probabilities, "classes": tf.argmax(probabilities, axis=-1)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serving_default", serve, input_signature=[tf.TensorSpec([None, rows, cols], tf.uint8, name="images")]
    )
    staging = Path(tempfile.mkdtemp(dir=base, prefix=f".tmp-{version}-"))
    try:
        archive.write_out(os.fspath(staging), verbose=False)
        staging.rename(target)
    except OSError as e:
        raise MnistTfError(f"could not export the SavedModel to {target}: {e.strerror or e}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
