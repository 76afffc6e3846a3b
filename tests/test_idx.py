"""The IDX reader: valid files round-trip, broken ones give one clear error naming the file."""

import gzip

import numpy as np
import pytest

from mnist_tf.data import idx
from mnist_tf.errors import MnistTfError


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_round_trip_plain_and_gzipped(tmp_path, name):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    idx.write_idx(tmp_path / name, images)
    np.testing.assert_array_equal(idx.read_idx(tmp_path / name, idx.IMAGES_MAGIC), images)


def test_gzip_is_detected_by_content_not_name(tmp_path):
    labels = np.array([3, 1, 4], dtype=np.uint8)
    idx.write_idx(tmp_path / "labels.gz", labels)
    (tmp_path / "labels.gz").rename(tmp_path / "labels")
    np.testing.assert_array_equal(idx.read_idx(tmp_path / "labels", idx.LABELS_MAGIC), labels)


def test_wrong_magic_names_file_and_numbers(tmp_path):
    idx.write_idx(tmp_path / "labels", np.zeros(5, np.uint8))
    with pytest.raises(MnistTfError, match=r"labels: not an IDX image file \(magic number 2049, expected 2051\)"):
        idx.read_idx(tmp_path / "labels", idx.IMAGES_MAGIC)


@pytest.mark.parametrize("cut", [2, 10, 100])
def test_truncated_file(tmp_path, cut):
    idx.write_idx(tmp_path / "images", np.zeros((4, 28, 28), np.uint8))
    raw = (tmp_path / "images").read_bytes()
    (tmp_path / "images").write_bytes(raw[:cut])
    with pytest.raises(MnistTfError, match=r"images: truncated") as error:
        idx.read_idx(tmp_path / "images", idx.IMAGES_MAGIC)
    assert "\n" not in str(error.value)


def test_trailing_bytes(tmp_path):
    idx.write_idx(tmp_path / "labels", np.zeros(5, np.uint8))
    with open(tmp_path / "labels", "ab") as f:
        f.write(b"\x00")
    with pytest.raises(MnistTfError, match="has trailing bytes"):
        idx.read_idx(tmp_path / "labels", idx.LABELS_MAGIC)


def test_corrupt_gzip(tmp_path):
    raw = gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x05" + bytes(5))
    (tmp_path / "labels.gz").write_bytes(raw[:-6] + b"\xff" * 6)  # damage the CRC trailer
    with pytest.raises(MnistTfError, match=r"labels.gz: unreadable or corrupt"):
        idx.read_idx(tmp_path / "labels.gz", idx.LABELS_MAGIC)


def test_zero_sized_dimension(tmp_path):
    (tmp_path / "images").write_bytes(b"\x00\x00\x08\x03" + (2).to_bytes(4, "big") + bytes(8))
    with pytest.raises(MnistTfError, match=r"invalid IDX dimensions \[2, 0, 0\]"):
        idx.read_idx(tmp_path / "images", idx.IMAGES_MAGIC)


def test_load_split_finds_files_and_checks_counts(idx_dir, tmp_path):
    images, labels = idx.load_split(idx_dir, "test")
    assert images.shape == (300, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (300,)

    idx.write_idx(tmp_path / "t10k-images.idx3-ubyte", np.zeros((3, 28, 28), np.uint8))  # the dotted spelling
    idx.write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(2, np.uint8))
    with pytest.raises(MnistTfError, match="test split has 3 images but 2 labels"):
        idx.load_split(tmp_path, "test")


def test_missing_file(tmp_path):
    with pytest.raises(MnistTfError, match=r"missing train-images-idx3-ubyte.gz"):
        idx.load_split(tmp_path, "train")
