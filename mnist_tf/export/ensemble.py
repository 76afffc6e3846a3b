"""Ensembles: several trained models answering as one, with the mean of their probabilities.

`ensemble_model` is a Keras model like any other of this project (images in, logits out), so it exports as a
SavedModel with the same two signatures, converts to LiteRT, and serves through TF Serving and `predict.py`
unchanged: its "logits" are the log of the members' mean probability, whose softmax is that mean (and with a
not-a-digit logit of 0, for members that learned one: `decision.SCORES`).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from mnist_tf.errors import MnistTfError
from mnist_tf.not_a_digit.decision import SMALLEST_PROBABILITY


def ensemble_model(members: Sequence[keras.Model], score: str = "top_class", name: str = "ensemble") -> keras.Model:
    """One model whose probabilities are the mean of `members`' (all take the same images). With `score`
    digit_and_top_class (`decision.SCORES`) they are those of K+1 classes, the last "not a digit" with a logit of 0,
    in the members and in the ensemble alike: its logits are those of the mean, less the mean's not-a-digit logit."""
    shapes = {tuple(member.input_shape[1:]) for member in members}
    if len(shapes) != 1:
        raise MnistTfError(f"the members of an ensemble must take the same images, got shapes {sorted(shapes)}")
    images = keras.Input(shape=shapes.pop(), name="images")
    logits = [
        keras.ops.cast(keras.Model(m.input, m.output, name=f"member{i}")(images), "float32")
        for i, m in enumerate(members, start=1)
    ]
    if score == "digit_and_top_class":
        logits = [keras.ops.pad(each, [[0, 0], [0, 1]]) for each in logits]
    mean = keras.ops.mean(keras.ops.stack([keras.ops.softmax(each) for each in logits]), axis=0)
    mean_logits = keras.ops.log(keras.ops.maximum(mean, SMALLEST_PROBABILITY))
    if score == "digit_and_top_class":
        mean_logits = mean_logits[:, :-1] - mean_logits[:, -1:]
    return keras.Model(images, mean_logits, name=name)
