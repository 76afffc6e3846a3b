"""LiteRT (TFLite) flatbuffers of a trained model, each verified on the whole test split before it is kept.

TF Serving's `<export_dir>/<name>/<version>/` holds only the SavedModel; beside it, `<export_dir>/litert/<name>/
<version>/` holds the LiteRT files converted from that same version:

  float32.tflite        the model as trained, float32 weights and arithmetic
  dynamic_range.tflite  int8 weights, float activations
  int8.tflite           integers only, calibrated on REPRESENTATIVE_IMAGES training images; uint8 in and out
  report.json           per variant: test accuracy, agreement with the SavedModel, size, latency, ops

Every variant takes raw pixels, uint8 [1, rows, cols, 1] with 0 as background (int8's input scale is 1/255 with
zero point 0, so its quantized input *is* the pixels), and returns the SavedModel's calibrated probabilities
[1, classes]: float32, or for int8 uint8 (scale 1/256 after a softmax, about 1/255 after the product of a digit
and its class; every file says its own). Its "not a digit" decision is max(probabilities) < report.json's
`decision.threshold_probability` (`Decision.accepts`). Only LiteRT's built-in ops are allowed (no Flex/Select TF
ops): what phones and browsers run. A variant that loses more than MAX_ACCURACY_DROP of the SavedModel's accuracy,
or agrees with its predicted class or its is_digit on fewer than MIN_AGREEMENT of the test images, is refused: it
is not written, the others are, and the run says so in a note (not an error: a trained model with its SavedModel
and float32 file is a good export).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from mnist_tf import runtime
from mnist_tf.config import Config
from mnist_tf.data.pipeline import normalize_images
from mnist_tf.data.sources import Split, Splits
from mnist_tf.errors import MnistTfError, first_line
from mnist_tf.export import saved_model
from mnist_tf.export.litert_files import REPORT_FILE, directory_for
from mnist_tf.files import write_json_atomic
from mnist_tf.not_a_digit import decision as decision_lib
from mnist_tf.not_a_digit.decision import Decision
from mnist_tf.reporting import evaluation
from mnist_tf.training import build

VARIANTS = ("float32", "dynamic_range", "int8")
MAX_ACCURACY_DROP = 0.003  # 0.3 points of test accuracy
MIN_AGREEMENT = 0.995  # of test images given the SavedModel's class, and its is_digit
REPRESENTATIVE_IMAGES = 500  # int8 calibration: activation ranges settle well before this
_ENDPOINT = "serve"


@dataclasses.dataclass(frozen=True)
class Export:
    """Where one SavedModel version's LiteRT files went, and what was refused (one line, or None)."""

    directory: Path
    files: dict[str, str]  # variant -> path, for the variants kept
    refused: str | None


def export(
    float_model: keras.Model, config: Config, saved_model_dir: str | os.PathLike, splits: Splits, decision: Decision
) -> Export:
    """Converts `float_model` (a float32 copy of the model exported as `saved_model_dir`: `float32_copy`) to every
    variant, calibrates int8 on `splits.train`, verifies each on `splits.test`, and writes the accepted ones and
    the report (with the class names) into `directory_for(saved_model_dir)` at once (a staging folder renamed).
    `config` is the training run's."""
    train, test = splits.train, splits.test
    started = time.perf_counter()
    target = directory_for(saved_model_dir)
    if target.exists():
        raise MnistTfError(f"{target} already exists; LiteRT exports are never overwritten")
    _, loaded = saved_model.load(saved_model_dir)
    served = loaded.signatures[saved_model.SERVING_DEFAULT]
    answers = evaluation.predict_in_batches(
        lambda images: _answers(served(images=tf.constant(images))), test.images, batch_size=1000
    )
    reference, reference_is_digit = answers[:, 0], answers[:, 1].astype(bool)
    reference_accuracy = float(np.mean(reference == test.labels))
    flatbuffers = convert_all(float_model, representative_images(train.images, config.seed), decision)
    verified = {
        name: verify(flatbuffer, test, reference, reference_is_digit, decision)
        for name, flatbuffer in flatbuffers.items()
    }
    for name, result in verified.items():
        agreement = min(result["agreement"], result["decision_agreement"])
        result["refused"] = _refusal(name, result["test_accuracy"], agreement, reference_accuracy)
    refusals = [result["refused"] for result in verified.values() if result["refused"]]
    report = {
        "saved_model": os.fspath(saved_model_dir),
        "saved_model_test_accuracy": reference_accuracy,
        "class_names": list(splits.class_names),
        "test_images": len(test),
        "thresholds": {"max_accuracy_drop": MAX_ACCURACY_DROP, "min_agreement": MIN_AGREEMENT},
        "representative_images": REPRESENTATIVE_IMAGES,
        "converter": f"tf.lite.TFLiteConverter, TensorFlow {tf.__version__}",
        "runtime": f"ai-edge-litert {importlib.metadata.version('ai-edge-litert')}, 1 thread",
        "config": dataclasses.asdict(config),
        "decision": decision.to_dict(),
        "variants": verified,
        "seconds": 0.0,
    }
    return Export(target, _write(target, flatbuffers, report, started), "; ".join(refusals) or None)


def _write(target: Path, flatbuffers: dict[str, bytes], report: dict[str, Any], started: float) -> dict[str, str]:
    """The variants the report accepts, and the report, into `target` at once (a staging folder renamed): a
    reader never sees half an export. Returns {variant: path}."""
    files = {name: f"{name}.tflite" for name, result in report["variants"].items() if not result["refused"]}
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".tmp-{target.name}-"))
    try:
        staging.chmod(0o755)  # mkdtemp's 0700 would hide the files from a web server running as another user
        for name, file in files.items():
            (staging / file).write_bytes(flatbuffers[name])
        report["seconds"] = round(time.perf_counter() - started, 2)
        write_json_atomic(staging / REPORT_FILE, report)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {name: os.fspath(target / file) for name, file in files.items()}


def _answers(served: dict[str, tf.Tensor]) -> np.ndarray:
    """[N, 2]: each image's class and is_digit (0 or 1), as the SavedModel answers."""
    return np.stack([served["classes"].numpy(), served["is_digit"].numpy().astype(np.int64)], axis=1)


def representative_images(images: np.ndarray, seed: int) -> np.ndarray:
    """REPRESENTATIVE_IMAGES training images (all when there are fewer), drawn with `seed`."""
    count = min(REPRESENTATIVE_IMAGES, len(images))
    return images[np.random.default_rng(seed).choice(len(images), count, replace=False)]


def float32_copy(model: keras.Model, config: Config) -> keras.Model:
    """The trained `model` rebuilt in float32 with its weights: a mixed-precision model's casts to bfloat16 or
    float16 are not LiteRT ops, and quantization wants float32 to start from."""
    float32 = dataclasses.replace(config, dtype="float32")
    float_model = build.model(float32, model.input_shape[1:], model.output_shape[-1])
    float_model.set_weights(model.get_weights())
    return float_model


def convert_all(
    float_model: keras.Model, representative: np.ndarray, decision: Decision = decision_lib.ACCEPT_ALL
) -> dict[str, bytes]:
    """Every variant's flatbuffer, of a float32 model answering the SavedModel's probabilities under `decision`
    (its temperature, and its score); int8 calibrated on `representative` uint8 images."""
    image_spec = tf.TensorSpec([1, *float_model.input_shape[1:]], tf.uint8, name="images")

    def probabilities_of_pixels(images: tf.Tensor) -> dict[str, tf.Tensor]:
        return probabilities_of_floats(normalize_images(images))

    def probabilities_of_floats(images: tf.Tensor) -> dict[str, tf.Tensor]:
        # int8 starts from [0, 1] floats, whose quantization with scale 1/255 and zero point 0 is the raw pixels.
        return {"probabilities": decision_lib.probabilities(float_model(images, training=False), decision)}

    with tempfile.TemporaryDirectory() as scratch:
        pixels_in = _write_saved_model(float_model, probabilities_of_pixels, image_spec, f"{scratch}/pixels")
        float32 = _convert(_converter(pixels_in), "float32")
        quantized_weights = _converter(pixels_in)
        quantized_weights.optimizations = [tf.lite.Optimize.DEFAULT]
        dynamic_range = _convert(quantized_weights, "dynamic_range")
        float_spec = tf.TensorSpec(image_spec.shape, tf.float32, name="images")
        floats_in = _converter(
            _write_saved_model(float_model, probabilities_of_floats, float_spec, f"{scratch}/floats")
        )
        floats_in.optimizations = [tf.lite.Optimize.DEFAULT]
        floats_in.representative_dataset = lambda: ([image[np.newaxis] / np.float32(255)] for image in representative)
        floats_in.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        floats_in.inference_input_type = floats_in.inference_output_type = tf.uint8
        int8 = _convert(floats_in, "int8")
    return {"float32": float32, "dynamic_range": dynamic_range, "int8": int8}


def _write_saved_model(
    model: keras.Model, function: Callable[[tf.Tensor], dict[str, tf.Tensor]], spec: tf.TensorSpec, path: str
) -> str:
    """`function` as a SavedModel endpoint: converting from a SavedModel freezes the variables into constants."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(_ENDPOINT, function, input_signature=[spec])
    archive.write_out(path, verbose=False)
    return path


def _converter(path: str) -> tf.lite.TFLiteConverter:
    converter = tf.lite.TFLiteConverter.from_saved_model(path, signature_keys=[_ENDPOINT])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no Flex ops: fails if one is needed
    return converter


def _convert(converter: tf.lite.TFLiteConverter, variant: str) -> bytes:
    try:
        with runtime.quiet_native_stderr():  # the converter prints its settings, whatever the log level
            flatbuffer = converter.convert()
    except Exception as e:  # the converter raises many kinds (ConverterError, RuntimeError, ValueError)
        raise MnistTfError(f"could not convert the model to LiteRT ({variant}): {first_line(e)}") from None
    builtin_ops(flatbuffer)  # belt and braces: the file itself says which ops it needs
    return flatbuffer


def builtin_ops(flatbuffer: bytes) -> list[str]:
    """The names of the ops a LiteRT flatbuffer uses; MnistTfError if any is not built in (a Flex or custom op)."""
    from ai_edge_litert import schema_py_generated as schema

    names = {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    model = schema.Model.GetRootAs(flatbuffer, 0)
    ops = set()
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())  # small codes live in the deprecated field
        if builtin == schema.BuiltinOperator.CUSTOM:
            raise MnistTfError(f"the LiteRT model needs a non-built-in op: {code.CustomCode().decode()}")
        ops.add(names[builtin])
    return sorted(ops)


class LiteRtModel:
    """A LiteRT flatbuffer run by `ai-edge-litert`, one image at a time: uint8 pixels -> float32 probabilities."""

    def __init__(self, flatbuffer: bytes, name: str) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise MnistTfError("running LiteRT models needs ai-edge-litert: pip install ai-edge-litert") from None
        if not flatbuffer:  # the interpreter would say "`model_path` or `model_content` must be specified"
            raise MnistTfError(f"{name} is not a loadable LiteRT model: an empty file")
        try:
            with runtime.quiet_native_stderr():  # "Created TensorFlow Lite XNNPACK delegate for CPU."
                self._interpreter = Interpreter(model_content=flatbuffer, num_threads=1)
                self._interpreter.allocate_tensors()
        except (RuntimeError, ValueError) as e:
            raise MnistTfError(f"{name} is not a loadable LiteRT model: {first_line(e)}") from None
        (self._input,), (self._output,) = self._interpreter.get_input_details(), self._interpreter.get_output_details()
        shape, dtype = self._input["shape"], self._input["dtype"]
        if dtype != np.uint8 or len(shape) != 4 or shape[0] != 1 or shape[3] != 1 or self._output["shape"][-1] < 2:
            raise MnistTfError(
                f"{name} is not an mnist_tf LiteRT model: it must take uint8 [1, rows, cols, 1] and return a "
                f"probability per class, it takes {np.dtype(dtype).name} {[int(n) for n in shape]}"
            )
        self.image_shape = tuple(int(n) for n in shape[1:])
        self.seconds_per_image: list[float] = []

    def tensor_type(self, which: str) -> dict[str, Any]:
        """The "input" or "output" tensor's dtype, shape and quantization (scale 0: not quantized)."""
        details = self._input if which == "input" else self._output
        scale, zero_point = details["quantization"]
        return {
            "dtype": np.dtype(details["dtype"]).name,
            "shape": [int(n) for n in details["shape"]],
            "scale": float(scale),
            "zero_point": int(zero_point),
        }

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> LiteRtModel:
        try:
            return cls(Path(path).read_bytes(), os.fspath(path))
        except OSError as e:
            raise MnistTfError(f"cannot read {path}: {e.strerror}") from None

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """uint8 [N, rows, cols] or [N, rows, cols, 1] -> float32 [N, classes]."""
        if images.shape[1:] not in (self.image_shape, self.image_shape[:2]):
            raise MnistTfError(f"the LiteRT model takes images {list(self.image_shape)}, not {list(images.shape[1:])}")
        scale, zero_point = self._output["quantization"]
        results = np.empty((len(images), self._output["shape"][-1]), np.float32)
        for i, image in enumerate(images.reshape(-1, 1, *self.image_shape)):
            start = time.perf_counter()
            self._interpreter.set_tensor(self._input["index"], image)
            self._interpreter.invoke()
            output = self._interpreter.get_tensor(self._output["index"])[0]
            self.seconds_per_image.append(time.perf_counter() - start)
            results[i] = (output.astype(np.float32) - zero_point) * scale if scale else output
        return results


def verify(
    flatbuffer: bytes, test: Split, reference: np.ndarray, reference_is_digit: np.ndarray, decision: Decision
) -> dict[str, Any]:
    """One variant's line of the report: its test accuracy, its agreement with `reference` (the SavedModel's
    classes) and with `reference_is_digit` (its decision), its size, its median latency per image and its ops."""
    model = LiteRtModel(flatbuffer, "the converted model")
    probabilities = model.probabilities(test.images)
    classes = probabilities.argmax(axis=-1)
    is_digit = decision.accepts(probabilities)
    return {
        "input": model.tensor_type("input"),
        "output": model.tensor_type("output"),
        "bytes": len(flatbuffer),
        "test_accuracy": float(np.mean(classes == test.labels)),
        "agreement": float(np.mean(classes == reference)),
        "decision_agreement": float(np.mean(is_digit == reference_is_digit)),
        "latency_us": round(statistics.median(model.seconds_per_image) * 1e6, 1),
        "ops": builtin_ops(flatbuffer),
    }


def _refusal(variant: str, accuracy: float, agreement: float, reference_accuracy: float) -> str | None:
    """One line saying why `variant` is refused, or None when it passes."""
    drop = reference_accuracy - accuracy
    problems = []
    if drop > MAX_ACCURACY_DROP:
        problems.append(
            f"loses {drop * 100:.2f} points of test accuracy ({accuracy:.2%} against the SavedModel's "
            f"{reference_accuracy:.2%}; at most {MAX_ACCURACY_DROP * 100:.1f} allowed)"
        )
    if agreement < MIN_AGREEMENT:
        problems.append(
            f"agrees with the SavedModel on {agreement:.2%} of test images (at least {MIN_AGREEMENT:.1%} required, "
            "of classes and of is_digit)"
        )
    return f"{variant} refused: it " + " and ".join(problems) if problems else None


def read_report(directory: str | os.PathLike) -> dict[str, Any]:
    """A LiteRT export's report.json ({} when there is none or it is not JSON)."""
    try:
        return json.loads((Path(directory) / REPORT_FILE).read_text())
    except (OSError, ValueError):
        return {}
