"""Early stopping on the validation loss (`--early_stopping_patience`), resumable like the rest of a run."""

from __future__ import annotations

import math
import os
from pathlib import Path

import keras
import tensorflow as tf

from mnist_tf.training import checkpoints


class EarlyStopping:
    """Says when the validation loss has not improved for `patience` epochs, and keeps the best epoch's weights.

    Its state (best loss, best epoch, last epoch) is variables that go into the run's checkpoint, and the best
    weights are a checkpoint of their own in `<model_dir>/checkpoints/best/`: a run resumed after an interruption
    stops at the epoch an uninterrupted one would, and ends with the same weights. The loss is the one training
    minimizes (`--loss`), measured on the validation split, so improving means going down at all.
    """

    def __init__(self, patience: int, model: keras.Model, model_dir: Path) -> None:
        self.patience = patience
        self.best_loss = tf.Variable(math.inf, dtype=tf.float64, trainable=False, name="best_loss")
        self.best_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="best_epoch")  # 1-based; 0: none
        self.last_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="last_epoch")
        directory = os.fspath(checkpoints.best_directory(model_dir))
        self._best = tf.train.CheckpointManager(tf.train.Checkpoint(model=model), directory, max_to_keep=1)

    def state(self) -> dict[str, tf.Variable]:
        """What the run's checkpoint must hold for a resumed run to decide as this one would."""
        return {"best_loss": self.best_loss, "best_epoch": self.best_epoch, "last_epoch": self.last_epoch}

    def update(self, epoch: int, validation_loss: float) -> None:
        """Records epoch `epoch` (1-based); saves the model's weights when its loss is the best so far."""
        self.last_epoch.assign(epoch)
        if validation_loss < float(self.best_loss.numpy()):
            self.best_loss.assign(validation_loss)
            self.best_epoch.assign(epoch)
            checkpoints.save(self._best, epoch)

    def should_stop(self) -> bool:
        return int(self.last_epoch.numpy()) - int(self.best_epoch.numpy()) >= self.patience

    def restore_best(self) -> None:
        """Puts the best epoch's weights back into the model (nothing to do when the last epoch was the best)."""
        if int(self.best_epoch.numpy()) != int(self.last_epoch.numpy()):
            checkpoints.restore(self._best.checkpoint, self._best.latest_checkpoint)

    def summary(self) -> dict[str, int | float | bool]:
        return {
            "patience": self.patience,
            "stopped_early": self.should_stop(),
            "epochs_trained": int(self.last_epoch.numpy()),
            "best_epoch": int(self.best_epoch.numpy()),
            "best_validation_loss": float(self.best_loss.numpy()),
        }
