"""`<model_dir>/results.json` (`run_state.RESULTS_FILE`): what a finished run reports, and the digest that says two
models are the same."""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

from mnist_tf.export.litert_files import REPORT_FILE
from mnist_tf.export.publish import Published, weights_digest
from mnist_tf.not_a_digit.decision import Decision
from mnist_tf.plan import Plan
from mnist_tf.reporting.evaluation import Report
from mnist_tf.training.run_state import EarlyStopping
from mnist_tf.training.trainer import Trainer


def record(
    plan: Plan,
    trainer: Trainer,
    *,
    first_step: int,
    train_seconds: float,
    test: Report,
    confidence: dict[str, Any],
    decision: Decision,
    stopper: EarlyStopping | None,
    published: Published,
) -> dict[str, Any]:
    """The results of a finished run (docs/training.md: What a run leaves behind). Only the chief's export is
    recorded: the other workers' is a temporary copy."""
    config, splits, model, seconds, litert = plan.config, plan.splits, trainer.model, train_seconds, published.litert
    last_step = int(trainer.step.numpy())
    export_path = published.saved_model if plan.chief else None
    trained_images = (last_step - first_step) * config.batch_size
    return {
        "model": config.model,
        "recipe": config.recipe,
        "dataset": config.dataset,
        "data_source": splits.source,
        "class_names": list(splits.class_names),
        "epochs": config.epochs,
        "epochs_trained": last_step // plan.steps_per_epoch,
        "early_stopping": stopper.summary() if stopper else None,
        "resumed_from_step": first_step,
        "skipped_steps": int(trainer.skipped_steps.numpy()),
        "train_seconds": round(seconds, 3),
        "images_per_second": round(trained_images / seconds, 1) if seconds else 0.0,
        "test_accuracy": test.accuracy,
        "test_loss": test.loss,
        "test_confidence": confidence,  # calibration error before and after, and the not-a-digit decision's share
        "decision": decision.to_dict(),  # the temperature and the is_digit threshold the export answers with
        "export_dir": os.fspath(export_path) if export_path else None,
        "export_error": published.error,  # why the export failed (the model is in the run's checkpoint)
        "litert": litert.files if litert else None,  # variant -> .tflite path: those that passed verification
        "litert_report": os.fspath(litert.directory / REPORT_FILE) if litert else None,
        "litert_refused": litert.refused if litert else None,
        "trainable_parameters": sum(math.prod(v.shape) for v in model.trainable_variables),
        "weights_sha256": weights_digest(model),
        "replicas": plan.strategy.num_replicas_in_sync,
        "precision": dataclasses.asdict(plan.precision),  # the dtype computed in, and why (--dtype=auto's choice)
        "flags": dataclasses.asdict(config),
    }
