"""Where a LiteRT export's files lie and how they are named, without TensorFlow: the page's server reads these
and starts in a fraction of a second (mnist_tf/export/litert.py writes them)."""

from __future__ import annotations

import os
from pathlib import Path

REPORT_FILE = "report.json"
SUBDIRECTORY = "litert"


def is_litert_file(path: str | os.PathLike) -> bool:
    """Whether `path` names a LiteRT flatbuffer (by its extension), rather than a SavedModel."""
    return os.fspath(path).endswith(".tflite")


def directory_for(saved_model_dir: str | os.PathLike) -> Path:
    """`<export_dir>/litert/<name>/<version>` for the SavedModel `<export_dir>/<name>/<version>`."""
    version = Path(saved_model_dir)
    return version.parent.parent / SUBDIRECTORY / version.parent.name / version.name
