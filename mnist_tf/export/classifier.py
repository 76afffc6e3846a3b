"""One way to open a trained model: a SavedModel export, a LiteRT file, a training run or one of its checkpoints,
as a `Classifier` that answers alike whatever it was saved as.

It gives calibrated probabilities for uint8 pixels and for encoded image files (preprocessed as the SavedModel's
`image_bytes` signature does, mnist_tf/data/preprocess.py), its not-a-digit decision, its class names, the
settings it was trained with, and its weights where it has them (a LiteRT file has none to train on).
`scripts/predict.py`, `scripts/evaluate.py`, `scripts/export.py` and `--init_from` open models through `load`.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from mnist_tf.config import Config
from mnist_tf.data import preprocess, sources
from mnist_tf.errors import MnistTfError, assertion_message, first_line
from mnist_tf.export import litert, litert_files, saved_model
from mnist_tf.not_a_digit import decision
from mnist_tf.not_a_digit.decision import Decision
from mnist_tf.training import build, run_state

Pixels = Callable[[np.ndarray], np.ndarray]  # uint8 [N, rows, cols, 1] -> calibrated probabilities [N, classes]
# Encoded image files -> per file, its answer (probabilities, is_digit, preprocessed) or the line saying why not.
Files = Callable[[Sequence[bytes]], list[dict[str, np.ndarray] | str]]


@dataclasses.dataclass(frozen=True)
class Classifier:
    """A trained model, opened (`load`)."""

    kind: str  # SavedModel, LiteRT file, run, checkpoint or ensemble
    source: str  # what was opened, as lines name it: a version folder, a .tflite file, a run's checkpoint
    config: dict[str, Any]  # the settings it was trained with ({} where its files do not say)
    class_names: tuple[str, ...]
    probabilities: Pixels
    answer_files: Files
    _decision: Callable[[], Decision]  # a run's is fitted when first asked for: it reads the run's data
    model: keras.Model | None = None  # the Keras model, for runs and checkpoints
    weights: Callable[[], dict[str, np.ndarray]] | None = None  # {layer path: value}; None: a LiteRT file
    litert_int8: str | None = None  # a SavedModel's int8 LiteRT file, when it was exported with one

    @property
    def decision(self) -> Decision:
        """Its calibration (temperature) and its not-a-digit threshold (mnist_tf/not_a_digit/decision.py)."""
        return self._decision()


def load(path: str | os.PathLike) -> Classifier:
    """The model at `path`: a LiteRT `.tflite` file, a checkpoint of a run (`.../checkpoints/ckpt-N`), a run's
    folder (the checkpoint it tested and exported), or a SavedModel (a version folder, or a base folder: its highest
    version). One line (MnistTfError) when it is none of these, or damaged."""
    path = Path(path)
    if litert_files.is_litert_file(path):
        return _litert(path)
    if Path(f"{path}.index").is_file():
        return _checkpoint(path)
    if not path.exists():
        raise MnistTfError(f"{path}: no such file or folder")
    if (path / run_state.CONFIG_FILE).is_file():
        return _run(path)
    if path.is_dir() and not (path / "saved_model.pb").is_file() and not saved_model.complete_versions(path):
        raise MnistTfError(
            f"{path}: no trained model in this folder (a run's {run_state.CONFIG_FILE}, a SavedModel's "
            "saved_model.pb or its numbered versions)"
        )
    return _saved_model(path)


def ensemble(members: Sequence[Classifier]) -> Classifier:
    """Several models as one: the mean of their probabilities. It has no decision of its own (every image is a
    digit to it) until it is exported as one model (scripts/export.py fits one)."""
    if len({member.class_names for member in members}) != 1:
        raise MnistTfError("the members of an ensemble must have the same classes")

    def probabilities(images: np.ndarray) -> np.ndarray:
        return np.mean([member.probabilities(images) for member in members], axis=0)

    def answer_files(files: Sequence[bytes]) -> list[dict[str, np.ndarray] | str]:
        answers = []
        for each in zip(*(member.answer_files(files) for member in members), strict=True):
            refused = [answer for answer in each if isinstance(answer, str)]
            mean = None if refused else np.mean([answer["probabilities"] for answer in each], axis=0)
            answers.append(refused[0] if refused else {**each[0], "probabilities": mean, "is_digit": np.True_})
        return answers

    names, first = " + ".join(member.source for member in members), members[0]
    accept_all = lambda: decision.ACCEPT_ALL  # noqa: E731  a decision as the others give theirs
    return Classifier("ensemble", names, first.config, first.class_names, probabilities, answer_files, accept_all)


def _saved_model(path: Path) -> Classifier:
    """Through its own signatures: `serving_default` for pixels, `image_bytes` for files."""
    version_dir, loaded = saved_model.load(path)
    metadata = saved_model.read_metadata(version_dir)
    pixels = loaded.signatures[saved_model.SERVING_DEFAULT]

    def probabilities(images: np.ndarray) -> np.ndarray:
        try:
            return pixels(images=tf.constant(images))["probabilities"].numpy()
        except tf.errors.InvalidArgumentError as e:
            raise MnistTfError(f"{version_dir} rejects these images: {assertion_message(e)}") from None

    def answer_files(files: Sequence[bytes]) -> list[dict[str, np.ndarray] | str]:
        if saved_model.IMAGE_BYTES not in loaded.signatures:
            raise MnistTfError(
                f"{version_dir} has no {saved_model.IMAGE_BYTES} signature; re-export it with scripts/export.py"
            )
        return _answer_each(loaded.signatures[saved_model.IMAGE_BYTES], files)

    int8 = litert_files.directory_for(version_dir) / "int8.tflite"
    chosen = Decision.from_dict(metadata.get("decision", {}))
    return Classifier(
        "SavedModel",
        str(version_dir),
        metadata.get("config", {}),
        tuple(metadata["class_names"]),
        probabilities,
        answer_files,
        lambda: chosen,
        weights=lambda: _saved_model_weights(version_dir, loaded.variables, metadata),
        litert_int8=str(int8) if int8.is_file() else None,
    )


def _answer_each(signature: Any, files: Sequence[bytes]) -> list[dict[str, np.ndarray] | str]:
    """The image_bytes signature's answer for each file. It pre-checks its files with its own preprocessing, so a
    batch fails only with an export of an older version: then each file goes alone, and only the bad ones fail."""
    if not files:
        return []
    try:
        outputs = signature(image_bytes=tf.constant(list(files)))
    except tf.errors.InvalidArgumentError as e:
        if len(files) == 1:
            return [assertion_message(e)]
        return [answer for one in files for answer in _answer_each(signature, [one])]
    return [{name: value[i].numpy() for name, value in outputs.items()} for i in range(len(files))]


def _saved_model_weights(
    version_dir: Path, variables: Sequence[tf.Variable], metadata: dict[str, Any]
) -> dict[str, np.ndarray]:
    """{layer path: value} of an export's variables. Keras names them by path (`conv1/kernel:0`); older Keras
    (3.10) by name alone (`kernel:0`), and then they are paired, in order, with the model its metadata describes."""
    names = [v.name.removesuffix(":0") for v in variables]
    if all("/" in name for name in names):
        return {name: v.numpy() for name, v in zip(names, variables, strict=True)}
    try:
        config = Config.from_dict(metadata["config"])
        model = build.model(config.resolve(), metadata["image_shape"], len(metadata["class_names"]))
    except (KeyError, TypeError, MnistTfError) as e:
        raise MnistTfError(f"{version_dir}: its metadata does not say what model it is ({e})") from None
    if [tuple(v.shape) for v in model.variables] != [tuple(v.shape) for v in variables]:
        raise MnistTfError(f"{version_dir}: its variables are not those of the model it describes")
    return {target.path: source.numpy() for target, source in zip(model.variables, variables, strict=True)}


def _litert(path: Path) -> Classifier:
    """The LiteRT runtime on the pixels; files preprocessed here as the SavedModel's graph does; the training
    settings, class names and decision of the report beside it."""
    model = litert.LiteRtModel.from_file(path)
    report = litert.read_report(path.parent)
    chosen = Decision.from_dict(report.get("decision", {}))
    return Classifier(
        "LiteRT file",
        str(path),
        report.get("config", {}),
        tuple(report.get("class_names", sources.DIGITS)),
        model.probabilities,
        _preprocessing_first(model.probabilities, lambda: chosen, model.image_shape[0]),
        lambda: chosen,
    )


def _run(model_dir: Path) -> Classifier:
    """A run's model with the weights it was tested with: early stopping's best epoch, as training itself tests and
    exports it, else the newest checkpoint that reads (a damaged one is set aside, with one line saying so)."""
    config, image_shape, class_names = run_state.read_config(model_dir)
    model = build.model(config, image_shape, len(class_names))
    checkpoint = run_state.restore_model(model, model_dir, config)
    return _keras("run", model, config, class_names, checkpoint)


def _checkpoint(prefix: Path) -> Classifier:
    """One checkpoint, in the model its run's config.json describes (in a folder above it)."""
    run_dir = next((p for p in prefix.parents if (p / run_state.CONFIG_FILE).is_file()), None)
    if run_dir is None:
        raise MnistTfError(f"{prefix}: a checkpoint outside a run folder (no config.json above it)")
    config, image_shape, class_names = run_state.read_config(run_dir)
    model = build.model(config, image_shape, len(class_names))
    try:
        tf.train.Checkpoint(model=model).restore(os.fspath(prefix)).expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError, IndexError, tf.errors.OpError) as e:  # truncated data: IndexError
        raise MnistTfError(f"{prefix}: cannot read the checkpoint ({first_line(e)})") from None
    return _keras("checkpoint", model, config, class_names, str(prefix))


def _keras(kind: str, model: keras.Model, config: Config, class_names: tuple[str, ...], checkpoint: str) -> Classifier:
    """A Keras model of a run, answering as its export would: with a decision fitted on its run's validation split
    (when first asked for: that reads the data)."""
    chosen = functools.cache(
        lambda: decision.fit_model(model, sources.load_for(config), config.digit_acceptance, config.digit_score)
    )

    @functools.cache
    def serve() -> Callable[[tf.Tensor], tf.Tensor]:  # once the decision is fitted, outside any graph
        answered = chosen()
        return tf.function(lambda images: saved_model.predict(model, images, answered)["probabilities"])

    def probabilities(images: np.ndarray) -> np.ndarray:
        if images.shape[1:] != model.input_shape[1:]:
            raise MnistTfError(f"{checkpoint} takes images {model.input_shape[1:]}, not {images.shape[1:]}")
        return serve()(tf.constant(images)).numpy()

    return Classifier(
        kind,
        checkpoint,
        dataclasses.asdict(config),
        class_names,
        probabilities,
        _preprocessing_first(probabilities, chosen, model.input_shape[1]),
        chosen,
        model=model,
        weights=lambda: {v.path: v.numpy() for v in model.variables},
    )


def _preprocessing_first(probabilities: Pixels, chosen: Callable[[], Decision], size: int) -> Files:
    """Files preprocessed here as the SavedModel's `image_bytes` graph does, then answered from their pixels."""
    preprocess_batch = preprocess.compiled(size)

    def answer_files(files: Sequence[bytes]) -> list[dict[str, np.ndarray] | str]:
        if not files:
            return []
        images = preprocess_batch(tf.constant(list(files))).numpy()
        answers = probabilities(images[..., np.newaxis])
        is_digit = chosen().accepts(answers)
        return [
            {"probabilities": answers[i], "is_digit": is_digit[i], "preprocessed": images[i]} for i in range(len(files))
        ]

    return answer_files
