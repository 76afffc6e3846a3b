"""Sources and the tf.data pipeline: shapes, dtypes, seeded per-epoch shuffling, splits, tfds, clear errors."""

import socket
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from conftest import REAL_MNIST, make_digits, requires_module, requires_real_mnist, write_idx_dir

from mnist_tf.config import Config
from mnist_tf.data import idx, pipeline, sources
from mnist_tf.errors import MnistTfError


def test_idx_source_shapes_dtypes_and_validation_split(idx_dir):
    splits = sources.load(data_dir=str(idx_dir), validation_size=200)
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (1000, 200, 300)
    assert splits.train.images.shape == (1000, 28, 28, 1) and splits.train.images.dtype == np.uint8
    assert splits.image_shape == (28, 28, 1)
    assert splits.source == f"idx:{idx_dir}"
    # The validation split is the last images of the training file, as in the classic 50k/10k setups.
    train_images, _ = idx.load_split(idx_dir, "train")
    np.testing.assert_array_equal(splits.validation.images[..., 0], train_images[-200:])


def test_data_dir_from_environment(idx_dir, monkeypatch):
    monkeypatch.setenv(sources.DATA_DIR_ENV, str(idx_dir))
    assert sources.load().source == f"idx:{idx_dir}"
    assert sources.load(source="idx").source == f"idx:{idx_dir}"  # the variable is enough for --source=idx too


@pytest.mark.parametrize(
    "module, options, message",
    [
        ("sklearn", {"dataset": "digits"}, "--dataset=digits needs scikit-learn"),
        ("tensorflow_datasets", {"source": "tfds"}, "the tfds source needs tensorflow-datasets"),
    ],
)
def test_a_missing_optional_package_is_one_line_naming_it(monkeypatch, module, options, message):
    for name in [module, *(name for name in sys.modules if name.startswith(f"{module}."))]:
        monkeypatch.setitem(sys.modules, name, None)  # any import of it or of its parts now fails
    with pytest.raises(MnistTfError, match=message) as error:
        sources.load(**options)
    assert "\n" not in str(error.value)


def test_idx_source_needs_a_data_dir(monkeypatch):
    monkeypatch.delenv(sources.DATA_DIR_ENV, raising=False)
    with pytest.raises(MnistTfError, match=r"--source=idx needs --data_dir or \$MNIST_TF_DATA_DIR"):
        sources.load(source="idx")


def test_load_for_reads_the_data_settings_of_a_config(idx_dir):
    splits = sources.load_for(Config(data_dir=str(idx_dir), validation_size=100).resolve())
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (1100, 100, 300)


@requires_module("sklearn")
def test_digits_from_scikit_learn_offline_last_200_are_the_test_split(idx_dir, monkeypatch):
    from sklearn.datasets import load_digits

    monkeypatch.setenv(sources.DATA_DIR_ENV, str(idx_dir))  # an MNIST folder in the environment is not the digits
    splits = sources.load("digits", validation_size=100)
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (1497, 100, 200)
    assert splits.image_shape == (8, 8, 1) and splits.train.images.dtype == np.uint8
    assert splits.source == "sklearn:digits"
    digits = load_digits()
    np.testing.assert_array_equal(splits.test.labels, digits.target[-200:])
    # 0..16 ink levels scaled to 0..255, so the pipeline's /255 gives the sources' /16.
    np.testing.assert_allclose(splits.test.images[..., 0] / 255, digits.images[-200:] / 16, atol=0.5 / 255)
    assert splits.train.images.max() == 255


@pytest.mark.parametrize(
    "options",
    [
        {"dataset": "digits", "data_dir": "/data/mnist"},
        {"dataset": "digits", "source": "tfds"},
        {"dataset": "mnist", "source": "sklearn"},
    ],
)
def test_digits_and_sklearn_go_together(options):
    with pytest.raises(MnistTfError, match="the digits ship with scikit-learn"):
        sources.load(**options)


def test_bad_splits_are_clear_errors(idx_dir, tmp_path):
    with pytest.raises(MnistTfError, match="--validation_size=1,200 leaves no training data"):
        sources.load(data_dir=str(idx_dir), validation_size=1200)
    bad = write_idx_dir(tmp_path / "bad", 20, 20)
    idx.write_idx(bad / "t10k-labels-idx1-ubyte.gz", np.full(20, 12, np.uint8))
    with pytest.raises(MnistTfError, match=r"test labels must be 0..9, found 12"):
        sources.load(data_dir=str(bad))


def _epoch_labels(dataset: tf.data.Dataset, steps: int) -> list[np.ndarray]:
    return [labels.numpy() for _, labels in dataset.take(steps)]


def test_train_pipeline_batches_normalizes_and_reshuffles_each_epoch(idx_dir):
    split = sources.load(data_dir=str(idx_dir)).train
    steps = pipeline.steps_per_epoch(split, 64)
    assert steps == 1200 // 64
    dataset = pipeline.train_dataset(split, batch_size=64, seed=3)
    images_spec, labels_spec = dataset.element_spec
    assert images_spec.shape == (64, 28, 28, 1) and images_spec.dtype == tf.float32  # static: drop_remainder
    assert labels_spec.dtype == tf.int32
    images, _ = next(iter(dataset))
    assert float(tf.reduce_min(images)) >= 0.0 and float(tf.reduce_max(images)) <= 1.0

    batches = _epoch_labels(dataset, 2 * steps)
    epoch0, epoch1 = np.concatenate(batches[:steps]), np.concatenate(batches[steps:])
    assert not np.array_equal(epoch0, epoch1)  # a new order each epoch
    # Each epoch is a permutation of the data, less the dropped remainder: no image twice.
    seen = {image.tobytes() for image, _ in dataset.take(steps).unbatch().as_numpy_iterator()}
    assert len(seen) == len(epoch0) == steps * 64
    again = _epoch_labels(pipeline.train_dataset(split, batch_size=64, seed=3), 2 * steps)
    np.testing.assert_array_equal(np.concatenate(again), np.concatenate(batches))  # seeded
    other_seed = _epoch_labels(pipeline.train_dataset(split, batch_size=64, seed=4), steps)
    assert not np.array_equal(np.concatenate(other_seed), epoch0)


def test_resumed_pipeline_sees_the_same_later_batches(idx_dir):
    split = sources.load(data_dir=str(idx_dir)).train
    steps = pipeline.steps_per_epoch(split, 100)
    full = _epoch_labels(pipeline.train_dataset(split, 100, seed=5), 3 * steps)
    resumed = _epoch_labels(pipeline.train_dataset(split, 100, seed=5, first_step=2 * steps), steps)
    np.testing.assert_array_equal(np.concatenate(resumed), np.concatenate(full[2 * steps :]))
    mid_epoch = _epoch_labels(pipeline.train_dataset(split, 100, seed=5, first_step=steps + 3), steps)
    np.testing.assert_array_equal(np.concatenate(mid_epoch), np.concatenate(full[steps + 3 : 2 * steps + 3]))


def test_eval_pipeline_covers_every_example_once_in_full_batches(idx_dir):
    split = sources.load(data_dir=str(idx_dir)).test  # 300 images: 3 batches of 128, the last with 84 blanks
    batches = list(pipeline.eval_dataset(split, 128).as_numpy_iterator())
    assert [len(labels) for _, labels, _ in batches] == [128, 128, 128]
    labels, weights = (np.concatenate([batch[i] for batch in batches]) for i in (1, 2))
    np.testing.assert_array_equal(labels[weights == 1], split.labels)
    assert weights.sum() == len(split) and not weights[len(split) :].any()
    np.testing.assert_array_equal(batches[-1][0][weights[256:] == 0], 0)


def test_batch_larger_than_training_set(idx_dir):
    split = sources.load(data_dir=str(idx_dir)).train
    with pytest.raises(MnistTfError, match="--batch_size=5000 is larger than the training set"):
        pipeline.train_dataset(split, batch_size=5000, seed=0)


class _Connection:
    def close(self) -> None:
        pass


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist", "kmnist", "emnist_digits"])
def test_tfds_source_through_mock_data(monkeypatch, dataset):
    # mock_data serves fake examples but leaves `is_prepared()` false, so the loader probes the network before
    # "downloading": let the probe succeed (the no-network case has its own test below).
    monkeypatch.setattr(socket, "create_connection", lambda *args, **kwargs: _Connection())
    with tfds.testing.mock_data(num_examples=40):
        splits = sources.load(dataset, source="tfds", validation_size=10)
    assert splits.source == f"tfds:{sources.DATASETS[dataset].tfds_name}"
    assert splits.class_names == sources.DATASETS[dataset].class_names and len(splits.class_names) == 10
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (30, 10, 40)
    assert splits.train.images.shape[1:] == (28, 28, 1) and splits.train.images.dtype == np.uint8
    assert splits.train.labels.max() < 10


def test_tfds_without_network_or_cache_fails_fast_with_the_fix(tmp_path, monkeypatch):
    def unreachable(*args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    start = time.monotonic()
    with pytest.raises(
        MnistTfError,
        match=r"not in the tfds cache .* cannot be downloaded \(no network\): pass "
        r"--data_dir=DIR \(or set \$MNIST_TF_DATA_DIR\)",
    ):
        sources.load("fashion_mnist", source="tfds", tfds_data_dir=str(tmp_path))
    assert time.monotonic() - start < 10


@pytest.mark.slow
@requires_real_mnist
def test_tfds_builds_its_dataset_from_local_idx_files(tmp_path):
    """The real files handed to tfds as manual downloads: tfds verifies their checksums and serves them offline."""
    splits = sources.load("mnist", data_dir=str(REAL_MNIST), source="tfds", tfds_data_dir=str(tmp_path))
    assert (len(splits.train), len(splits.test)) == (60_000, 10_000)
    direct = sources.load("mnist", data_dir=str(REAL_MNIST), source="idx")
    # tfds stores examples in its own order; the multiset of test images must still be MNIST's.
    assert np.bincount(splits.test.labels, minlength=10).tolist() == np.bincount(direct.test.labels).tolist()
    assert int(splits.test.images.astype(np.int64).sum()) == int(direct.test.images.astype(np.int64).sum())


def test_emnist_idx_files_by_their_own_names_are_turned_upright(tmp_path):
    """EMNIST ships transposed IDX files named emnist-digits-*; loaded as emnist_digits they come out as MNIST's."""
    images, labels = make_digits(40, seed=3)
    images[:, :5, :] = 255  # a bar along the top: transposed, it runs down the left side
    for images_name, labels_name in idx.SPLIT_FILES.values():
        idx.write_idx(tmp_path / f"emnist-digits-{images_name}.gz", images.transpose(0, 2, 1))
        idx.write_idx(tmp_path / f"emnist-digits-{labels_name}.gz", labels)
    splits = sources.load("emnist_digits", data_dir=str(tmp_path))
    np.testing.assert_array_equal(splits.train.images[..., 0], images)
    np.testing.assert_array_equal(splits.test.labels, labels)
    as_mnist = sources.load("mnist", data_dir=str(tmp_path))  # the same files, read as they are
    np.testing.assert_array_equal(as_mnist.train.images[..., 0], images.transpose(0, 2, 1))
