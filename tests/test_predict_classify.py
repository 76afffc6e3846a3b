"""predict.py's batches, in process: when the signature refuses a batch (a SavedModel exported before its own
checks caught every bad image), each image goes alone and only the bad ones are reported."""

import sys

import numpy as np
import tensorflow as tf
from conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
import predict  # scripts/ is not a package: the scripts import each other by name


def fake_signature(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
    """Answers each image with its length as digit 0's probability; refuses any batch holding b"bad"."""
    values = image_bytes.numpy().tolist()
    if b"bad" in values:
        raise tf.errors.InvalidArgumentError(None, None, f"assertion failed: [broken: image {values.index(b'bad')}]")
    probabilities = np.zeros((len(values), 10), np.float32)
    probabilities[:, 0] = [len(v) for v in values]
    return {"probabilities": tf.constant(probabilities), "preprocessed": tf.zeros((len(values), 28, 28), tf.uint8)}


def test_a_refused_batch_is_answered_image_by_image(capsys):
    batch = [("a.png", b"a"), ("b.png", b"bad"), ("c.png", b"ccc")]
    answered = list(predict.classify(fake_signature, batch))
    assert [path for path, _ in answered] == ["a.png", "c.png"]
    assert [float(outputs["probabilities"][0]) for _, outputs in answered] == [1.0, 3.0]  # each its own outputs
    assert capsys.readouterr().err.splitlines() == ["error: b.png: broken: image 0"]


def test_a_good_batch_is_one_call_and_an_empty_one_none():
    calls = []

    def counting(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        calls.append(int(tf.size(image_bytes)))
        return fake_signature(image_bytes)

    assert len(list(predict.classify(counting, [("a", b"a"), ("b", b"bb")]))) == 2 and calls == [2]
    assert list(predict.classify(counting, [])) == [] and calls == [2]
