"""TensorBoard logs: one run directory per split (train, validation, test) so their curves overlay."""

from __future__ import annotations

import os

import tensorflow as tf


class Summaries:
    def __init__(self, model_dir: str | os.PathLike) -> None:
        self._model_dir = os.fspath(model_dir)
        self._writers: dict[str, tf.summary.SummaryWriter] = {}

    def scalars(self, split: str, step: int, values: dict[str, float]) -> None:
        """Writes each value as a scalar under `<model_dir>/<split>` at `step`."""
        if split not in self._writers:
            self._writers[split] = tf.summary.create_file_writer(os.path.join(self._model_dir, split))
        with self._writers[split].as_default(step=step):
            for tag, value in values.items():
                tf.summary.scalar(tag, value)

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
