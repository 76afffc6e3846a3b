"""A trained model out to its users: a new SavedModel version, then that version's verified LiteRT files.

The one export path of both the end of training (`mnist_tf.run`) and `scripts/export.py` (`publish_runs`: runs or
checkpoints opened by `classifier.load`, one or their ensemble). A failure is returned as one line, never raised,
so that a run that trained for hours still records its results before it says so.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from mnist_tf.config import Config
from mnist_tf.data import sources
from mnist_tf.data.sources import Splits
from mnist_tf.errors import MnistTfError, first_line
from mnist_tf.export import ensemble, litert, litert_files, saved_model
from mnist_tf.export.classifier import Classifier
from mnist_tf.not_a_digit import decision as decision_lib
from mnist_tf.not_a_digit.decision import Decision


@dataclasses.dataclass(frozen=True)
class Published:
    """What an export wrote, and why part of it was not (one line, or None)."""

    saved_model: Path | None  # the new version's directory
    litert: litert.Export | None  # the LiteRT files that passed verification, and the refused ones
    error: str | None  # why the SavedModel, or its LiteRT files, could not be written

    def problem(self, kept: str) -> str | None:
        """The one line to end with when the export failed; `kept` says where the model still is."""
        return f"the export failed ({self.error}); {kept}" if self.error else None

    def left_out(self) -> str | None:
        """The note on a LiteRT variant that verification refused, or None. Not an error: it is the check doing
        its job, and the SavedModel and the variants that passed serve as they are."""
        if self.litert and self.litert.refused:
            return (
                f"note: LiteRT {self.litert.refused}; left out, the SavedModel and the other LiteRT files are kept "
                f"({self.litert.directory}/{litert_files.REPORT_FILE} has every number)"
            )
        return None


def publish(
    model: keras.Model,
    config: Config,
    base: Path,
    *,
    metadata: dict[str, Any],
    decision: Decision,
    class_names: tuple[str, ...],
    version: int | None = None,
    with_litert: bool,
    float_model: Callable[[], keras.Model],
    splits: Callable[[], Splits],
    note: Callable[[str], None],
) -> Published:
    """`model` as SavedModel `<base>/<version>` (default: the next version) answering with `decision` and
    `class_names`, and with `with_litert` the LiteRT files of `float_model()` verified on `splits()` (called only
    then; `config` is the run's: data set and seed).

    Without a `version`, weights already exported under `base` (the same digest: the rerun of a run or an export
    killed between its SavedModel and its LiteRT files) are not exported again: that version is completed."""
    metadata = {**metadata, "weights_sha256": weights_digest(model)}
    try:
        base = _own_base(base, config.data_name, class_names, note)
        path = None if version else _exported(base, metadata["weights_sha256"], class_names)
        if path:
            note(f"note: these weights are {path} already; nothing new exported")
        else:
            path = saved_model.export_saved_model(model, base, version, metadata, decision, class_names)
    except Exception as e:  # a bug in an export path must not cost the training: it is reported, not raised
        return Published(None, None, _why(e))
    note(f"SavedModel: {path}")
    if not (with_litert and _litert_installed(note)) or litert_files.directory_for(path).is_dir():
        return Published(path, None, None)
    try:
        loaded = splits()
        exported = litert.export(float_model(), config, path, loaded, decision)
        note(f"LiteRT: {exported.directory} ({', '.join(exported.files)})")
        return Published(path, exported, None)
    except Exception as e:  # as for the SavedModel: the SavedModel stays, and the line says how to retry
        return Published(path, None, f"LiteRT: {_why(e)}")


def weights_digest(model: keras.Model) -> str:
    """SHA-256 of every weight's bytes, in order: equal digests mean bit-identical models."""
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(weight.value).tobytes())
    return digest.hexdigest()


def _own_base(base: Path, data_name: str, class_names: tuple[str, ...], note: Callable[[str], None]) -> Path:
    """`base`, unless its newest version is a model of other data (another data set, folder or class list): then
    `<base>_<data_name>`, said in one line (a model never replaces one of other data under the same name)."""
    versions = saved_model.complete_versions(base)
    if not versions:
        return base
    newest = saved_model.read_metadata(versions[-1])
    try:
        theirs = Config.from_dict(newest.get("config", {})).data_name
    except TypeError:  # an export of an older version, with settings since renamed
        theirs = newest["config"].get("dataset", "mnist")
    if (theirs, tuple(newest["class_names"])) == (data_name, class_names):
        return base
    own = base.with_name(f"{base.name}_{data_name}")
    note(f"note: {base} holds a model of {theirs}; this one, of {data_name}, goes to {own}")
    return own


def _exported(base: Path, digest: str, class_names: tuple[str, ...]) -> Path | None:
    """The version under `base` that holds these weights and classes, if one does."""
    versions = (
        [p for p in base.iterdir() if p.name.isdigit() and (p / "saved_model.pb").is_file()] if base.is_dir() else []
    )
    for version in sorted(versions, key=lambda p: int(p.name)):
        metadata = saved_model.read_metadata(version)
        if metadata.get("weights_sha256") == digest and tuple(metadata["class_names"]) == class_names:
            return version
    return None


def publish_runs(
    runs: Sequence[Classifier],
    export_dir: Path,
    *,
    name: str | None,
    version: int | None,
    with_litert: bool | None,
    note: Callable[[str], None],
) -> Published:
    """Trained runs or checkpoints (`classifier.load`) published as a run publishes itself: one as itself under its
    name, several as their ensemble under `<name>_ensemble` (`name` overrides either). With `with_litert` None, as
    the (first) run's --litert. Says what it exports, and each part as it is written."""
    if name is not None and not re.fullmatch(r"\w[\w.-]*", name, re.ASCII):  # a folder of export_dir's, no path
        raise MnistTfError(
            f"--name is the folder TF Serving serves the model from: letters, digits, _ . -, got {name!r}"
        )
    named = [run.source for run in runs]
    twice = [source for i, source in enumerate(named) if source in named[:i]]
    if twice:
        raise MnistTfError(f"{twice[0]} is named twice: an ensemble's members are different models")
    not_runs = [run.source for run in runs if run.model is None]
    if not_runs:
        raise MnistTfError(f"{not_runs[0]}: not a training run or one of its checkpoints: only those are exported")
    configs = [Config.from_dict(run.config) for run in runs]
    if len({(c.dataset, run.class_names) for c, run in zip(configs, runs, strict=True)}) != 1:
        raise MnistTfError("the runs of an ensemble must be trained on one data set, with the same classes")
    config, models = configs[0], [run.model for run in runs]  # evaluation and LiteRT read the data from here
    # An ensemble knows whether an image is a digit at all only if every member learned it.
    score = "digit_and_top_class" if all(c.digit_score == "digit_and_top_class" for c in configs) else "top_class"
    if len(runs) == 1:
        model, default_name, source = models[0], config.name, runs[0].source
        metadata = {"config": runs[0].config, "checkpoint": source}
    else:
        model, default_name = ensemble.ensemble_model(models, score), f"{config.name}_ensemble"
        source = "the ensemble of " + ", ".join(run.source for run in runs)
        metadata = {"config": runs[0].config, "ensemble": [{"config": r.config, "checkpoint": r.source} for r in runs]}

    def float_model() -> keras.Model:
        float_models = [litert.float32_copy(m, c) for m, c in zip(models, configs, strict=True)]
        return float_models[0] if len(runs) == 1 else ensemble.ensemble_model(float_models, score)

    note(f"exporting {source}")
    splits = sources.load_for(config)
    published = publish(
        model,
        config,
        export_dir / (name or default_name),
        metadata=metadata,
        decision=decision_lib.fit_model(model, splits, config.digit_acceptance, score),
        class_names=splits.class_names,
        version=version,
        with_litert=config.litert if with_litert is None else with_litert,
        float_model=float_model,
        splits=lambda: splits,
        note=note,
    )
    return published


def _litert_installed(note: Callable[[str], None]) -> bool:
    """Whether ai-edge-litert, which verifies the LiteRT files, is installed; says so when it is not."""
    if importlib.util.find_spec("ai_edge_litert") is None:
        note("note: no LiteRT export: ai-edge-litert is not installed (pip install ai-edge-litert)")
        return False
    return True


def _why(error: Exception) -> str:
    return first_line(error) if isinstance(error, MnistTfError) else f"{type(error).__name__}: {first_line(error)}"
