"""A run's directory: the chief's `--model_dir`, or a temporary one for other workers; and `--fresh`'s clean-up."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mnist_tf.reporting.summaries import Summaries
from mnist_tf.training import checkpoints
from mnist_tf.training.results import RESULTS_FILE


@contextlib.contextmanager
def output_dir(model_dir: Path, chief: bool) -> Iterator[Path]:
    """`model_dir` for the chief; for other workers a temporary directory, removed when the run ends (they must
    write too: saving takes part in collective ops)."""
    if chief:
        yield model_dir
        return
    temporary = Path(tempfile.mkdtemp(prefix="mnist_tf-worker-"))
    try:
        yield temporary
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def clear(model_dir: Path) -> None:
    """--fresh: removes what a run writes in `model_dir` (checkpoints, TensorBoard logs, config and results)."""
    for name in (checkpoints.DIRECTORY, *Summaries.RUNS):
        shutil.rmtree(model_dir / name, ignore_errors=True)
    for path in [model_dir / checkpoints.CONFIG_FILE, model_dir / RESULTS_FILE, *model_dir.glob("events.out.*")]:
        path.unlink(missing_ok=True)
