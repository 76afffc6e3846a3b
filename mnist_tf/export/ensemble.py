"""Ensembles: several trained models answering as one, with the mean of their probabilities.

`ensemble_model` is a Keras model like any other of this project (images in, logits out), so it exports as a
SavedModel with the same two signatures, converts to LiteRT, and serves through TF Serving and `predict.py`
unchanged: its "logits" are the log of the members' mean probability, whose softmax is that mean.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from mnist_tf.errors import MnistTfError

_SMALLEST_PROBABILITY = 1e-30  # log(0) would be -inf: a probability this small is "never" all the same


def ensemble_model(members: Sequence[keras.Model], name: str = "ensemble") -> keras.Model:
    """One model whose softmax is the mean of `members`' softmax (all take the same images)."""
    shapes = {tuple(member.input_shape[1:]) for member in members}
    if len(shapes) != 1:
        raise MnistTfError(f"the members of an ensemble must take the same images, got shapes {sorted(shapes)}")
    images = keras.Input(shape=shapes.pop(), name="images")
    probabilities = [
        keras.ops.softmax(keras.ops.cast(keras.Model(m.input, m.output, name=f"member{i}")(images), "float32"))
        for i, m in enumerate(members, start=1)
    ]
    mean = keras.ops.mean(keras.ops.stack(probabilities), axis=0)
    return keras.Model(images, keras.ops.log(keras.ops.maximum(mean, _SMALLEST_PROBABILITY)), name=name)
