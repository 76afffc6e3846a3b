"""--source=folder (mnist_tf/data/folder.py): the two layouts, class names, bad files, empty classes, the cache."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import make_digits, quiet_run
from script_runs import run_script

from mnist_tf.config import Config
from mnist_tf.data import folder, preprocess, sources
from mnist_tf.errors import MnistTfError
from mnist_tf.export import litert_files, saved_model


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(folder.CACHE_DIR_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def write_class(directory: Path, count: int, seed: int) -> list[Path]:
    """`count` PNGs of dark ink on white paper (as people photograph digits), 40x40."""
    directory.mkdir(parents=True, exist_ok=True)
    images, _ = make_digits(count, seed)
    paths = []
    for i, image in enumerate(images):
        page = np.full((40, 40, 1), 255, np.uint8)
        page[6:34, 6:34, 0] = 255 - image
        paths.append(directory / f"{i:03d}.png")
        paths[-1].write_bytes(tf.io.encode_png(page).numpy())
    return paths


def test_train_and_test_folders_with_digit_names_keep_the_digits_order(tmp_path):
    for split, count in (("train", 4), ("test", 2)):
        for name in ("2", "10", "1"):
            write_class(tmp_path / "data" / split / name, count, seed=int(name))
    splits = sources.load(source="folder", data_dir=str(tmp_path / "data"))
    assert splits.class_names == ("1", "2", "10")
    assert (len(splits.train), len(splits.test)) == (12, 6)
    assert splits.train.images.shape[1:] == (28, 28, 1) and splits.train.images.dtype == np.uint8
    assert np.bincount(splits.test.labels).tolist() == [2, 2, 2]


def test_every_image_is_what_the_image_bytes_signature_makes_of_it(tmp_path):
    paths = write_class(tmp_path / "data" / "cat", 3, seed=1)
    write_class(tmp_path / "data" / "ant", 3, seed=2)
    loaded = folder.load(tmp_path / "data")
    assert loaded.class_names == ("ant", "cat")  # names sort
    cats = np.concatenate([loaded.train[0][loaded.train[1] == 1], loaded.test[0][loaded.test[1] == 1]])
    expected = np.stack([preprocess.preprocess_file(p.read_bytes()) for p in paths])
    assert sorted(map(bytes, cats[..., 0])) == sorted(map(bytes, expected))


def test_one_level_is_split_by_class_with_a_fixed_seed(tmp_path):
    for name, count in (("a", 10), ("b", 20), ("c", 5)):
        write_class(tmp_path / "data" / name, count, seed=count)
    first = folder.load(tmp_path / "data")
    assert np.bincount(first.test[1]).tolist() == [2, 4, 1]  # a fifth of each class
    assert np.bincount(first.train[1]).tolist() == [8, 16, 4]
    again = sources.load(source="folder", data_dir=str(tmp_path / "data"))  # from the cache: the same split
    assert again.class_names == ("a", "b", "c")
    np.testing.assert_array_equal(again.test.labels, first.test[1])


def test_a_bad_file_is_one_line_and_skipped_a_class_with_none_is_an_error(tmp_path):
    write_class(tmp_path / "data" / "0", 3, seed=1)
    write_class(tmp_path / "data" / "1", 3, seed=2)
    (tmp_path / "data" / "1" / "notes.txt").write_text("not an image")
    (tmp_path / "data" / ".DS_Store").write_bytes(b"\0")  # hidden files are not data
    lines = []
    loaded = folder.load(tmp_path / "data", note=lines.append)
    assert loaded.skipped == 1 and len(loaded.train[0]) + len(loaded.test[0]) == 6
    assert lines == [
        f"skipped {tmp_path / 'data' / '1' / 'notes.txt'}: {preprocess.NOT_AN_IMAGE}",
        f"note: skipped 1 of 7 files in {tmp_path / 'data'}: not images that preprocess",
    ]
    (tmp_path / "data" / "2").mkdir()
    (tmp_path / "data" / "2" / "empty.png").write_bytes(b"")
    with pytest.raises(MnistTfError, match=r"data: no usable image in class folder 2$"):
        folder.load(tmp_path / "data", note=lambda line: None)


def test_one_class_or_no_test_split_is_one_line_before_training(tmp_path):
    write_class(tmp_path / "one" / "7", 5, seed=1)
    with pytest.raises(MnistTfError, match=r"one: one class folder \(7\); a classifier needs two or more"):
        folder.load(tmp_path / "one", note=lambda line: None)
    for name in "01":
        write_class(tmp_path / "tiny" / name, 1, seed=int(name))
    with pytest.raises(MnistTfError, match="tiny: too few images to hold out a test split"):
        folder.load(tmp_path / "tiny", note=lambda line: None)


def test_file_names_that_are_not_utf8_load_and_print(tmp_path, capsys):
    """Linux file names are bytes: an image named b"\xff\xfe.png" trains, a bad one is a printable line."""
    write_class(tmp_path / "data" / "0", 3, seed=1)
    paths = write_class(tmp_path / "data" / "1", 3, seed=2)
    os.rename(paths[0], os.fsdecode(os.fsencode(tmp_path / "data" / "1") + b"/\xff\xfe.png"))
    (tmp_path / "data" / os.fsdecode(b"1/\xfd.png")).write_bytes(b"not an image")
    loaded = folder.load(tmp_path / "data", note=print)
    assert loaded.skipped == 1 and len(loaded.train[0]) + len(loaded.test[0]) == 6
    assert f"skipped {tmp_path / 'data' / '1' / chr(0xFFFD)}.png: {preprocess.NOT_AN_IMAGE}" in capsys.readouterr().out


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda root: root.mkdir(), "no class folders"),
        (lambda root: [(root / name).mkdir(parents=True) for name in "ab"], "no usable image .* in any class folder"),
        (lambda root: None, "is neither a folder nor a zip file"),
    ],
)
def test_a_folder_without_images_is_one_error(tmp_path, make, message):
    make(tmp_path / "data")
    with pytest.raises(MnistTfError, match=message):
        folder.load(tmp_path / "data")


def test_train_and_test_must_have_the_same_classes(tmp_path):
    for part, names in (("train", "ac"), ("test", "bc")):
        for name in names:
            write_class(tmp_path / "data" / part / name, 2, seed=1)
    with pytest.raises(MnistTfError, match="train/ and test/ must have the same class folders"):
        folder.load(tmp_path / "data")


def test_the_cache_serves_a_second_load_and_a_changed_file_invalidates_it(tmp_path, cache_dir):
    paths = write_class(tmp_path / "data" / "x", 5, seed=1) + write_class(tmp_path / "data" / "y", 5, seed=2)
    first = folder.load(tmp_path / "data")
    assert not first.cached and len(list(cache_dir.iterdir())) == 1
    second = folder.load(tmp_path / "data")
    assert second.cached
    np.testing.assert_array_equal(second.train[0], first.train[0])
    # Another image under the same name: the size or the modification time tells.
    blank = np.full((40, 40, 1), 255, np.uint8)
    blank[10:30, 18:22] = 0
    paths[0].write_bytes(tf.io.encode_png(blank).numpy())
    os.utime(paths[0], ns=(1, 1))
    third = folder.load(tmp_path / "data")
    assert not third.cached
    everything = np.concatenate([third.train[0], third.test[0]])[..., 0]
    assert any(np.array_equal(image, preprocess.preprocess_file(paths[0].read_bytes())) for image in everything)
    paths[1].unlink()  # a removed file too
    assert not folder.load(tmp_path / "data").cached


def test_an_unwritable_cache_is_a_note_not_a_failure(tmp_path, monkeypatch):
    write_class(tmp_path / "data" / "x", 2, seed=1)
    write_class(tmp_path / "data" / "y", 2, seed=2)
    (tmp_path / "file").write_text("")
    monkeypatch.setenv(folder.CACHE_DIR_ENV, str(tmp_path / "file" / "cache"))  # under a file: cannot exist
    lines = []
    loaded = folder.load(tmp_path / "data", note=lines.append)
    assert len(loaded.train[0]) + len(loaded.test[0]) == 4
    assert lines and lines[0].startswith("note: could not cache the decoded images")


def test_folder_settings_need_a_data_dir_and_pick_defaults_by_the_class_names(tmp_path, monkeypatch):
    monkeypatch.delenv(sources.DATA_DIR_ENV, raising=False)
    with pytest.raises(MnistTfError, match=r"--source=folder needs --data_dir"):
        sources.load(source="folder")
    for name in "0123456789":
        (tmp_path / "digits" / name).mkdir(parents=True)
    (tmp_path / "shoes" / "boot").mkdir(parents=True)
    config = Config(source="folder", data_dir=str(tmp_path / "missing")).resolve()  # resolving reads no folder
    assert config.not_digits is None and config.validation_size == 0
    # Once the folder is read (plan.prepare): not-a-digit training only for digits.
    assert config.not_digits_for(folder.class_names(tmp_path / "digits")) > 0
    assert config.not_digits_for(folder.class_names(tmp_path / "shoes")) == 0


@pytest.mark.slow
def test_a_folder_trains_and_its_class_names_travel_with_the_export(tmp_path, tiny_config, exported_run):
    """...under a name of its own: the MNIST model already exported as mlp stays what mlp serves."""
    for seed, name in enumerate(("boot", "hat", "sock")):
        write_class(tmp_path / "data" / name, 20, seed=seed + 1)
    config = dataclasses.replace(
        tiny_config, source="folder", data_dir=str(tmp_path / "data"), validation_size=None, batch_size=16, litert=True
    )
    shutil.copytree(exported_run["export_dir"], Path(config.export_dir) / "mlp" / "1")  # a model of MNIST
    results, output = quiet_run(config)
    assert results["class_names"] == ["boot", "hat", "sock"] and results["data_source"].startswith("folder:")
    assert output.startswith("mnist_tf: mlp (ours layers) on data from folder:")
    own = Path(config.export_dir) / "mlp_data"
    assert f"note: {Path(config.export_dir) / 'mlp'} holds a model of mnist; this one, of data, goes to {own}" in output
    version = Path(results["export_dir"])
    assert version == own / "1" and saved_model.complete_versions(Path(config.export_dir) / "mlp") == [
        Path(config.export_dir) / "mlp" / "1"
    ]
    assert saved_model.read_metadata(version)["class_names"] == ["boot", "hat", "sock"]
    report = json.loads((litert_files.directory_for(version) / litert_files.REPORT_FILE).read_text())
    assert report["class_names"] == ["boot", "hat", "sock"]
    served = tf.saved_model.load(str(version)).signatures[saved_model.IMAGE_BYTES]
    hat = (tmp_path / "data" / "hat" / "000.png").read_bytes()
    answer = served(image_bytes=tf.constant([hat]))
    names = ["boot", "hat", "sock"]
    assert answer["class_names"].numpy()[0].decode() == names[int(answer["classes"].numpy()[0])]
    (tmp_path / "x.png").write_bytes(hat)
    printed = run_script("predict", f"--saved_model={version}", "--top_k=3", "x.png", cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    assert sorted(printed.stdout.split()[1::2]) == names  # every class by its name, none by its index


def test_hidden_entries_nested_folders_and_links_are_each_counted_and_said(tmp_path, cache_dir, capsys):
    """Nothing in the folder disappears without a word: a hidden class folder and hidden files are left out and
    said, images in a folder inside a class are the class's, a broken link is skipped and counted, a link to an
    image outside the folder is read and said."""
    root = tmp_path / "digits"
    for name in ("0", "1", "..x", "1/more", "0/.git"):
        (root / name).mkdir(parents=True)
    images = make_digits(8, seed=1)[0]
    for index, where in enumerate(("0", "0", "1", "1/more", "..x", "0/.git", "0", "1")):
        (root / where / f"{index}.png").write_bytes(tf.io.encode_png(images[index][..., np.newaxis]).numpy())
    (root / "0" / ".DS_Store").write_bytes(b"\0")
    outside = tmp_path / "elsewhere.png"
    outside.write_bytes(tf.io.encode_png(images[0][..., np.newaxis]).numpy())
    (root / "1" / "linked.png").symlink_to(outside)
    (root / "1" / "broken.png").symlink_to(tmp_path / "gone.png")

    loaded = folder.load(root, note=print)
    lines = capsys.readouterr().out.splitlines()
    assert loaded.class_names == ("0", "1")
    assert len(loaded.train[1]) + len(loaded.test[1]) == 3 + 4  # 0: three; 1: two, the nested one, the link
    assert loaded.skipped == 1 and any(line.startswith("skipped ") and "broken.png" in line for line in lines)
    hidden = next(line for line in lines if "hidden entries" in line)
    assert hidden.startswith("note: left out 3 hidden entries") and "..x" in hidden and "0/.git" in hidden
    assert any(line.startswith("note: 1 files are links to outside") and "1/linked.png" in line for line in lines)
    assert any(line.startswith("note: skipped 1 of 8 files") for line in lines)


def test_a_zip_of_the_folder_reads_as_the_folder_and_unpacks_once(tmp_path, cache_dir):
    for name in ("1", "7"):
        write_class(tmp_path / "data" / name, 5, seed=int(name))
    archive = tmp_path / "drawings.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted((tmp_path / "data").rglob("*.png")):
            zipped.write(path, path.relative_to(tmp_path / "data"))
        zipped.writestr("../outside.png", b"not kept outside")  # zipfile drops the "..": it lands inside
    expected = folder.load(tmp_path / "data", note=lambda _: None)
    loaded = folder.load(archive, note=lambda _: None)
    assert loaded.class_names == expected.class_names == ("1", "7")
    for split in ("train", "test"):
        for got, want in zip(getattr(loaded, split), getattr(expected, split), strict=True):
            np.testing.assert_array_equal(got, want)
    (unpacked,) = (cache_dir / "zips").iterdir()
    assert not (tmp_path / "outside.png").exists() and (unpacked / "outside.png").is_file()
    assert folder.load(archive, note=lambda _: None).cached  # the same contents: unpacked and decoded once
    assert Config(source="folder", data_dir=str(archive)).data_name == "drawings"


def test_a_zipped_folder_from_a_mac_reads_from_inside_its_folder_and_lines_name_the_zip(tmp_path):
    """What "Compress" makes of a folder: my_digits/<class>/..., and on macOS __MACOSX/ beside it (resource forks)."""
    for name in ("1", "7"):
        write_class(tmp_path / "my_digits" / name, 5, seed=int(name))
    (tmp_path / "my_digits" / "7" / "notes.txt").write_text("not an image")
    archive = tmp_path / "my_digits.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted((tmp_path / "my_digits").rglob("*")):
            zipped.write(path, path.relative_to(tmp_path))
        zipped.writestr("__MACOSX/my_digits/7/._000.png", b"\x00\x05\x16\x07 a resource fork")
    lines = []
    loaded = folder.load(archive, note=lines.append)
    assert loaded.class_names == ("1", "7") and len(loaded.train[1]) + len(loaded.test[1]) == 10
    assert f"{archive}/my_digits/7/notes.txt: not a PNG" in "\n".join(lines)  # named by its path in the zip
    flat = tmp_path / "flat.zip"  # the page's layout, with the resource forks beside the classes
    with zipfile.ZipFile(flat, "w") as zipped:
        for path in sorted((tmp_path / "my_digits").rglob("*.png")):
            zipped.write(path, path.relative_to(tmp_path / "my_digits"))
        zipped.writestr("__MACOSX/7/._000.png", b"\x00\x05\x16\x07 a resource fork")
    assert folder.class_names(flat) == ("1", "7")
    with zipfile.ZipFile(tmp_path / "one_class.zip", "w") as zipped:
        zipped.write(tmp_path / "my_digits" / "7" / "000.png", "digits/7/000.png")
    with pytest.raises(MnistTfError, match=rf"^{tmp_path / 'one_class.zip'}/digits: one class folder \(7\)"):
        folder.load(tmp_path / "one_class.zip")


def test_a_file_that_is_no_zip_is_one_line(tmp_path):
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 and then nothing")
    with pytest.raises(MnistTfError, match=r"broken.zip is neither a folder nor a zip file$"):
        folder.load(tmp_path / "broken.zip")
