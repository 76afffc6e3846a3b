"""TF Serving's warmup records (`assets.extra/tf_serving_warmup_requests`), written with TensorFlow alone.

TF Serving replays them when it loads a model, so the first real request is not slow. Each record is a
`PredictionLog` holding a `PredictRequest`: TensorFlow ships the `TensorProto` inside, but not TF Serving's
messages, and their package (`tensorflow-serving-api`) requires the TensorFlow of its own version, which would
replace Colab's. The few fields around the tensor are encoded here by hand, in the protobuf wire format;
`tests/test_export.py` checks them byte for byte against that package where it is installed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

# Field numbers, from tensorflow_serving/apis/{prediction_log,predict,model}.proto.
_PREDICTION_LOG_PREDICT_LOG = 6
_PREDICT_LOG_REQUEST = 1
_REQUEST_MODEL_SPEC, _REQUEST_INPUTS = 1, 2
_MODEL_SPEC_SIGNATURE_NAME = 3
_MAP_KEY, _MAP_VALUE = 1, 2


def write_requests(path: str | os.PathLike, rows: int, cols: int, signatures: Sequence[str]) -> None:
    """One request per signature and input form, so TF Serving traces every path before real traffic:
    `signatures` are (the raw-pixels one, the image-bytes one)."""
    pixels, image_bytes = signatures
    digit = np.zeros((rows, cols), np.uint8)
    digit[rows // 4 : rows - rows // 4, cols // 2 - 1 : cols // 2 + 1] = 255  # a "1"
    on_paper = tf.constant(255 - digit[..., np.newaxis])
    requests = [
        (pixels, "images", digit[np.newaxis]),
        (pixels, "images", digit[np.newaxis, ..., np.newaxis]),
        (image_bytes, "image_bytes", np.array([tf.io.encode_png(on_paper).numpy()], dtype=object)),
        (image_bytes, "image_bytes", np.array([tf.io.encode_jpeg(on_paper).numpy()], dtype=object)),
    ]
    with tf.io.TFRecordWriter(os.fspath(path)) as writer:
        for signature, input_name, value in requests:
            writer.write(prediction_log(signature, input_name, value))


def prediction_log(signature: str, input_name: str, value: np.ndarray) -> bytes:
    """A serialized `PredictionLog{predict_log{request{model_spec{signature_name}, inputs{input_name: value}}}}`."""
    model_spec = _field(_MODEL_SPEC_SIGNATURE_NAME, signature.encode())
    tensor = tf.make_tensor_proto(value).SerializeToString()
    inputs_entry = _field(_MAP_KEY, input_name.encode()) + _field(_MAP_VALUE, tensor)
    request = _field(_REQUEST_MODEL_SPEC, model_spec) + _field(_REQUEST_INPUTS, inputs_entry)
    return _field(_PREDICTION_LOG_PREDICT_LOG, _field(_PREDICT_LOG_REQUEST, request))


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2: strings, bytes and messages)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)
