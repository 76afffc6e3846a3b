r"""LeNet on MNIST, the whole method in one file: the place to start reading.

    python examples/train_lenet.py --data_dir=../shared/datasets/mnist

In order: the data as a tf.data pipeline, the model (mnist_tf/nn/models.py, built from the project's own layers),
a tf.distribute strategy, the training step, the loop with its checkpoints and TensorBoard scalars, and a
SavedModel. This is `scripts/train.py --model=lenet` without the product around the method (augmentation,
not-digit images, calibration, LiteRT files, mid-epoch resume, run locks, one-line errors): with the same seed on
the same CPU both end with the very same weights (tests/test_reading_edition.py). docs/development.md's tour says
where each part lives in the library.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from mnist_tf.data import idx
from mnist_tf.nn import models, optimizers


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", required=True, help="the four MNIST IDX files (train-images-idx3-ubyte.gz ...)")
    parser.add_argument("--model_dir", default="runs/train_lenet", help="checkpoints and TensorBoard logs")
    parser.add_argument("--export_dir", default="saved_models/train_lenet/1", help="the SavedModel")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch_size", type=int, default=256, help="the global batch, over every replica")
    parser.add_argument("--learning_rate", type=float, default=4e-3, help="the one-cycle schedule's peak")
    parser.add_argument("--validation_size", type=int, default=5000, help="training images held out")
    parser.add_argument("--seed", type=int, default=42)
    return parser.parse_args(argv)


# 1. The data: uint8 arrays in memory, normalized to [0, 1] one batch at a time.


def load(data_dir: str, validation_size: int) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """(train, validation, test) as (images uint8 [N, 28, 28, 1], labels); validation is the last training images."""
    (images, labels), (test_images, test_labels) = (idx.load_split(data_dir, split) for split in ("train", "test"))
    cut = len(images) - validation_size
    images, test_images = images[..., np.newaxis], test_images[..., np.newaxis]
    return (images[:cut], labels[:cut]), (images[cut:], labels[cut:]), (test_images, test_labels)


def normalize(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    return tf.cast(images, tf.float32) / 255.0, tf.cast(labels, tf.int32)


def train_batches(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int, epoch: int) -> tf.data.Dataset:
    """Epoch `epoch`'s batches: a permutation of the indices seeded by (seed, epoch), so that a resumed run sees the
    batches an uninterrupted one sees, cut into full batches (the remainder is dropped), each gathered in one op."""
    order = tf.random.experimental.stateless_shuffle(tf.range(len(images), dtype=tf.int64), seed=[seed, epoch])
    steps = len(images) // batch_size
    batches = tf.data.Dataset.from_tensor_slices(tf.reshape(order[: steps * batch_size], [steps, batch_size]))
    images, labels = tf.constant(images), tf.constant(labels)
    return batches.map(lambda i: normalize(tf.gather(images, i), tf.gather(labels, i))).prefetch(tf.data.AUTOTUNE)


def accuracy(model: keras.Model, images: np.ndarray, labels: np.ndarray) -> float:
    metric = keras.metrics.SparseCategoricalAccuracy()
    for x, y in tf.data.Dataset.from_tensor_slices((images, labels)).batch(1000).map(normalize):
        metric.update_state(y, model(x, training=False))
    return float(metric.result())


# 2. The model, the optimizer and the strategy that places them.


def main(argv: Sequence[str] | None = None) -> keras.Model:
    args = parse(argv)
    keras.utils.set_random_seed(args.seed)
    train, validation, test = load(args.data_dir, args.validation_size)
    steps_per_epoch = len(train[0]) // args.batch_size
    # Every GPU of this machine, each with a copy of the model; else the default: no distribution.
    gpus = tf.config.list_logical_devices("GPU")
    strategy = tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    with strategy.scope():  # variables made here are mirrored on every replica
        # LeNet-5, layer by layer in mnist_tf/nn/models.py; Layers seeds each initializer and dropout from --seed.
        model = models.lenet(models.Layers(seed=args.seed))
        # One cycle: warm up to the peak rate over the first fifth of the steps, then anneal it to zero (cosine).
        schedule = optimizers.learning_rate("one_cycle", args.learning_rate, args.epochs * steps_per_epoch)
        optimizer = keras.optimizers.Adam(schedule)
        optimizer.build(model.trainable_variables)  # its slots, before the first step runs on the replicas
        train_loss, train_accuracy = keras.metrics.Mean(), keras.metrics.SparseCategoricalAccuracy()

    # 3. The training step, on each replica for its share of a global batch.

    def train_step(images: tf.Tensor, labels: tf.Tensor) -> None:
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            per_example_loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
            # Divided by the *global* batch size: the gradients the strategy sums over replicas are the global mean's.
            loss = tf.nn.compute_average_loss(per_example_loss, global_batch_size=args.batch_size)
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
        train_loss.update_state(per_example_loss)
        train_accuracy.update_state(labels, logits)

    @tf.function  # the epoch's steps as one graph: Python runs once per epoch, not once per step
    def train_epoch(iterator: tf.distribute.DistributedIterator, steps: tf.Tensor) -> None:
        for _ in tf.range(steps):
            strategy.run(train_step, args=next(iterator))

    # 4. The loop: resume from the last epoch's checkpoint, train, log, checkpoint; then test and export.

    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
    manager = tf.train.CheckpointManager(checkpoint, f"{args.model_dir}/checkpoints", max_to_keep=3)
    checkpoint.restore(manager.latest_checkpoint)  # None on a new run: nothing to restore
    writer = tf.summary.create_file_writer(f"{args.model_dir}/logs")
    for epoch in range(int(optimizer.iterations) // steps_per_epoch, args.epochs):
        batches = strategy.experimental_distribute_dataset(train_batches(*train, args.batch_size, args.seed, epoch))
        train_epoch(iter(batches), tf.constant(steps_per_epoch))
        scalars = {"loss": train_loss.result(), "accuracy": train_accuracy.result()}
        if args.validation_size:
            scalars["validation_accuracy"] = accuracy(model, *validation)
        with writer.as_default(step=int(optimizer.iterations)):
            for name, value in scalars.items():
                tf.summary.scalar(name, value)
        print(f"epoch {epoch + 1}/{args.epochs}: " + ", ".join(f"{k} {float(v):.4f}" for k, v in scalars.items()))
        train_loss.reset_state()
        train_accuracy.reset_state()
        manager.save(checkpoint_number=epoch + 1)
    print(f"test accuracy {accuracy(model, *test):.4f}")
    export(model, args.export_dir)
    return model


# 5. The SavedModel: raw pixels in, probabilities out; TF Serving loads it as it is.


def export(model: keras.Model, path: str) -> None:
    def serve(images: tf.Tensor) -> dict[str, tf.Tensor]:
        logits = model(tf.cast(images, tf.float32) / 255.0, training=False)
        return {"probabilities": tf.nn.softmax(logits), "classes": tf.argmax(logits, axis=-1)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serve, [tf.TensorSpec([None, 28, 28, 1], tf.uint8, name="images")])
    archive.write_out(path, verbose=False)
    print(f"exported {path}")


if __name__ == "__main__":
    main()
