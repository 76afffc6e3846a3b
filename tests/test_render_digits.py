"""scripts/render_digits.py: digits that are not MNIST's, named by their digit, that predict.py can read."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO

from mnist_tf.data import preprocess


@pytest.mark.slow  # starts a Python process
def test_writes_stroke_digits_of_every_style_in_both_polarities(tmp_path):
    done = subprocess.run(
        [sys.executable, REPO / "scripts" / "render_digits.py", f"--output_dir={tmp_path / 'out'}",
         f"--fonts_dir={tmp_path / 'no_fonts'}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout.strip() == f"wrote 180 images (0 fonts) to {tmp_path / 'out'}"
    files = sorted((tmp_path / "out").iterdir())
    assert len(files) == 180 and {f.name[0] for f in files} == set("0123456789")
    assert sum(f.name.endswith("-dark.png") for f in files) == 90
    for file in files[::17]:
        preprocess.check_decodable(file.read_bytes())


def test_the_digits_are_named_by_their_digit_and_drawn_dark_on_white():
    from mnist_tf.data import rendered

    fonts = "/usr/share/fonts/truetype/dejavu"
    drawn = list(rendered.digits(np.random.default_rng(0), fonts))
    expected = 10 * len(rendered.STROKE_WIDTHS) * len(rendered.SLANTS) + 10 * len(rendered.font_files(fonts))
    assert len(drawn) == expected and len({name for name, _ in drawn}) == len(drawn)
    for name, image in drawn[::7]:
        pixels = np.asarray(image)
        assert name[0] in "0123456789" and name.split("_")[1] in ("strokes", "fonts")
        assert image.size == (rendered.CANVAS, rendered.CANVAS) and pixels.max() == 255 and pixels.min() < 64


def test_one_writers_digits_are_consistent_and_differ_from_one_another():
    from mnist_tf.data import rendered

    written = list(rendered.writer(np.random.default_rng(0), per_digit=3))
    assert [digit for digit, _ in written] == [d for d in range(10) for _ in range(3)]
    sevens = [np.asarray(image) for digit, image in written if digit == 7]
    assert not np.array_equal(sevens[0], sevens[1])  # each written a little differently
    for _, image in written:
        assert image.size == (rendered.CANVAS, rendered.CANVAS) and np.asarray(image).min() < 64


@pytest.mark.slow  # starts a Python process
def test_a_writers_digits_go_to_a_folder_per_digit_that_trains(tmp_path):
    done = subprocess.run(
        [sys.executable, REPO / "scripts" / "render_digits.py", f"--output_dir={tmp_path}", "--writer_per_digit=2"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout.strip() == f"wrote 20 images of one writer to {tmp_path}/<digit>/"
    assert sorted(p.name for p in tmp_path.iterdir()) == list("0123456789")
    assert all(len(list((tmp_path / d).glob("*.png"))) == 2 for d in "0123456789")
