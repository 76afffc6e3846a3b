"""SavedModels in the layout TF Serving watches, `<export_base>/<version>/`, written atomically.

Signatures (preprocessing is inside the graph: clients send raw pixels or image files, never normalized floats):
  serving_default  images        uint8  [batch, rows, cols] or [batch, rows, cols, 1]   raw pixels, 0 = background
                -> probabilities float32 [batch, classes] (calibrated), classes int64 [batch],
                   class_names string [batch] (the top class's name: "7", or "Sneaker"),
                   digit_score float32 [batch] (log-odds of the top probability), is_digit bool [batch]
  image_bytes      image_bytes   string [batch]   encoded PNG/JPEG/GIF/BMP up to 67 megapixels, either polarity
                -> the same five, and preprocessed uint8 [batch, rows, cols]: what the model saw
(`not_a_digit.decision` says what digit_score and is_digit mean, and how they are fitted.)

Beside the SavedModel, `assets.extra/` holds `tf_serving_warmup_requests` (TF Serving replays them at load, so the
first real request is not slow) and `mnist_tf.json` (how the model was trained, and its decision: temperature and
threshold) with the class names.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from mnist_tf.data import preprocess
from mnist_tf.data.pipeline import normalize_images
from mnist_tf.data.sources import DIGITS
from mnist_tf.errors import MnistTfError, first_line
from mnist_tf.export import warmup
from mnist_tf.not_a_digit.decision import ACCEPT_ALL, Decision, outputs

SERVING_DEFAULT = "serving_default"
IMAGE_BYTES = "image_bytes"
WARMUP_FILE = "tf_serving_warmup_requests"
METADATA_FILE = "mnist_tf.json"
_STAGING_LOCK = ".exporting"  # in a staging folder: flock'ed by the export writing it
_STAGING_GRACE = 3600  # seconds: a staging folder without a lock that is older than this is a dead export's


def next_version(export_base: str | os.PathLike) -> int:
    """1 + the highest numeric version under `export_base` (1 when there is none)."""
    return max(_versions(Path(export_base)), default=0) + 1


def complete_versions(export_base: str | os.PathLike) -> list[Path]:
    """The numbered version directories under `export_base` that hold a saved_model.pb, lowest first."""
    base = Path(export_base)
    return [base / str(v) for v in sorted(_versions(base)) if (base / str(v) / "saved_model.pb").is_file()]


def latest_version(path: str | os.PathLike) -> Path:
    """A SavedModel directory itself, or the highest numeric version under a base directory (as TF Serving picks)."""
    path = Path(path)
    if (path / "saved_model.pb").is_file():
        return path
    if not path.is_dir():
        what = "a file, not a SavedModel's folder" if path.exists() else "no such directory"
        raise MnistTfError(f"no SavedModel at {path}: {what}")
    versions = complete_versions(path)
    if not versions:
        raise MnistTfError(f"no SavedModel at {path}: neither saved_model.pb nor numbered version directories")
    return versions[-1]


def load(path: str | os.PathLike) -> tuple[Path, Any]:
    """(the version directory, the loaded SavedModel) for a SavedModel or base directory; needs only TensorFlow."""
    path = latest_version(path)
    try:
        return path, tf.saved_model.load(os.fspath(path))
    except (OSError, ValueError, IndexError, tf.errors.OpError) as e:  # a truncated variables file: IndexError
        raise MnistTfError(f"cannot load the SavedModel at {path}: {first_line(e)}") from None


def read_metadata(version_dir: str | os.PathLike) -> dict[str, Any]:
    """A version's `assets.extra/mnist_tf.json` ({} for a SavedModel without one), with its `class_names` (the
    digits, for exports from before they were written)."""
    path = Path(version_dir) / "assets.extra" / METADATA_FILE
    try:
        metadata = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError) as e:
        raise MnistTfError(f"{path} is not readable JSON: {first_line(e)}") from None
    return {"class_names": list(DIGITS), **metadata}


def export_saved_model(
    model: keras.Model,
    export_base: str | os.PathLike,
    version: int | None = None,
    metadata: dict[str, Any] | None = None,
    decision: Decision = ACCEPT_ALL,
    class_names: tuple[str, ...] = DIGITS,
) -> Path:
    """Writes `model` with its signatures to `<export_base>/<version>` (default: the next one); returns that path.

    Everything is written to a hidden temporary directory beside the target and renamed into place at the end, so
    a server watching `export_base` never sees a half-written version (it ignores non-numeric names), and a
    failure leaves earlier versions untouched. The rename claims the version: when another exporter took it
    meanwhile (renaming onto a version that exists fails), this export takes the next free one.
    """
    base = Path(export_base)
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MnistTfError(f"cannot create export directory {base}: {e.strerror}") from None
    claim_next = version is None
    version = next_version(base) if version is None else version
    if version < 1:
        raise MnistTfError(f"--version must be a positive integer, got {version}")
    target = base / str(version)
    if not claim_next and target.exists():
        raise MnistTfError(f"{target} already exists; versions are never overwritten")
    if len(class_names) != model.output_shape[-1]:
        raise MnistTfError(f"{len(class_names)} class names for a model of {model.output_shape[-1]} classes")
    _remove_dead_staging(base)
    try:
        staging = Path(tempfile.mkdtemp(dir=base, prefix=f".tmp-{version}-"))
        held = (staging / _STAGING_LOCK).open("w")  # held while this export lives: a killed one's folder is removed
        fcntl.flock(held, fcntl.LOCK_EX)
    except OSError as e:
        raise MnistTfError(f"could not export the SavedModel to {target}: {first_line(e)}") from None
    try:
        _write(staging, model, decision, class_names, metadata or {})
        (staging / _STAGING_LOCK).unlink()  # not part of the version (the lock stays held on the open file)
        target = _claim(staging, base, version, claim_next)
    except (OSError, tf.errors.OpError) as e:  # ours, or TensorFlow's own writes (variables, warmup records)
        raise MnistTfError(f"could not export the SavedModel to {target}: {first_line(e)}") from None
    finally:
        held.close()
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _remove_dead_staging(base: Path) -> None:
    """Removes the staging folders of exports that were killed: their lock is free (or they have none and are
    older than _STAGING_GRACE seconds: killed before taking it, or written by an older version)."""
    for staging in base.glob(".tmp-*"):
        try:
            with (staging / _STAGING_LOCK).open("r+") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises while its export is alive
                shutil.rmtree(staging, ignore_errors=True)
        except FileNotFoundError:  # no lock (or the folder went meanwhile)
            with contextlib.suppress(OSError):
                if time.time() - staging.stat().st_mtime > _STAGING_GRACE:
                    shutil.rmtree(staging, ignore_errors=True)
        except OSError:  # held: an export at work
            continue


def _write(
    folder: Path, model: keras.Model, decision: Decision, class_names: tuple[str, ...], metadata: dict[str, Any]
) -> None:
    """The SavedModel with its signatures, and `assets.extra/`: TF Serving's warmup requests and our metadata."""
    rows, cols = model.input_shape[1:3]  # square in every data set here, as MNIST-style preprocessing makes them
    _archive(model, rows, cols, decision, class_names).write_out(os.fspath(folder), verbose=False)
    extra = folder / "assets.extra"
    extra.mkdir()
    warmup.write_requests(extra / WARMUP_FILE, rows, cols, (SERVING_DEFAULT, IMAGE_BYTES))
    metadata = {
        **metadata,
        "image_shape": list(model.input_shape[1:]),
        "class_names": list(class_names),
        "decision": decision.to_dict(),
    }
    (extra / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")


def _claim(staging: Path, base: Path, version: int, claim_next: bool) -> Path:
    """Renames `staging` to `base/<version>`, or with `claim_next` to the first free version from there on."""
    while True:
        target = base / str(version)
        try:
            staging.rename(target)  # atomic; fails if the version exists (a version is never empty)
            return target
        except OSError as e:
            if not (claim_next and e.errno in (errno.EEXIST, errno.ENOTEMPTY)):
                raise
        version = max(version + 1, next_version(base))


def predict(
    model: keras.Model, images: tf.Tensor, decision: Decision = ACCEPT_ALL, class_names: tuple[str, ...] = DIGITS
) -> dict[str, tf.Tensor]:
    """What both signatures serve for uint8 [batch, rows, cols, 1] pixels: normalization happens here, in-graph.

    An empty batch gets empty answers without running the model: TensorFlow's convolutions fail on it.
    """

    def logits() -> tf.Tensor:
        return tf.cast(model(normalize_images(images), training=False), tf.float32)

    empty = tf.zeros([0, model.output_shape[-1]], tf.float32)
    answers = outputs(tf.cond(tf.shape(images)[0] > 0, logits, lambda: empty), decision)
    return {**answers, "class_names": tf.gather(tf.constant(class_names), answers["classes"])}


def _archive(
    model: keras.Model, rows: int, cols: int, decision: Decision, class_names: tuple[str, ...]
) -> keras.export.ExportArchive:
    def serve_images(images: tf.Tensor) -> dict[str, tf.Tensor]:
        return predict(model, _as_image_batch(images, rows, cols), decision, class_names)

    def serve_image_bytes(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        with tf.control_dependencies([preprocess.check_request_size(image_bytes)]):
            images = preprocess.preprocess_batch(image_bytes, rows)
        return {**predict(model, images[..., tf.newaxis], decision, class_names), "preprocessed": images}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SERVING_DEFAULT, serve_images, input_signature=[tf.TensorSpec(None, tf.uint8, name="images")])
    archive.add_endpoint(
        IMAGE_BYTES, serve_image_bytes, input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")]
    )
    return archive


def _as_image_batch(images: tf.Tensor, rows: int, cols: int) -> tf.Tensor:
    """uint8 [batch, rows, cols] or [batch, rows, cols, 1] -> [batch, rows, cols, 1]; any other shape fails clearly."""
    shape = tf.shape(images)
    rank = tf.rank(images)
    # [rows, cols, channels] (channels 1 for rank 3); padded to 3 numbers whatever the rank, even 0 or 1.
    padded = tf.concat([shape, [1, 1, 1, 1]], axis=0)[1:4]
    fits = tf.logical_and(
        tf.logical_or(tf.equal(rank, 3), tf.equal(rank, 4)), tf.reduce_all(tf.equal(padded, [rows, cols, 1]))
    )
    check = tf.debugging.Assert(
        fits,
        [f"images must be uint8 [batch, {rows}, {cols}] or [batch, {rows}, {cols}, 1], got shape", shape],
        summarize=8,  # every dimension of the shape, not just the first three
    )
    with tf.control_dependencies([check]):
        return tf.reshape(images, [-1, rows, cols, 1])


def _versions(base: Path) -> list[int]:
    return [int(p.name) for p in base.iterdir() if p.name.isdigit()] if base.is_dir() else []
