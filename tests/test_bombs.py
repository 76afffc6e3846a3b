"""Decompression bombs of every format, through predict.py as users run it: a prediction or one line each, in
bounded memory. The process reports its own peak memory (docs/reliability.md has the numbers, a file per process)."""

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO
from image_files import declaring_a_huge_size
from PIL import Image

pytestmark = pytest.mark.slow  # every test here starts Python processes (fast tier: -m 'not slow')

PEAK = """
import os, resource, runpy, sys
sys.argv = sys.argv[1:]  # as if the script itself had been run
sys.path.insert(0, os.path.dirname(sys.argv[0]))
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    print("peak", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, file=sys.stderr)
"""


def predict_with_peak(saved_model_dir: str, *paths: Path) -> tuple[str, list[str], int]:
    """predict.py's stdout, its other stderr lines and its peak memory in MB."""
    script = str(REPO / "scripts" / "predict.py")
    process = subprocess.run(
        [sys.executable, "-c", PEAK, script, f"--saved_model={saved_model_dir}", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    *errors, peak = process.stderr.strip().splitlines()
    return process.stdout, errors, int(peak.split()[1])


def animated_gif_bomb() -> bytes:
    """300 full frames of 1000x1000 blank paper: 0.8 MB that decode to 300 megapixels."""
    frames = [Image.new("L", (1000, 1000), 255) for _ in range(300)]
    for i, frame in enumerate(frames):
        frame.putpixel((0, 0), i % 2 * 255)  # the corners change every frame: none is stored as a small patch
        frame.putpixel((999, 999), (i + 1) % 2 * 255)
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], optimize=False, disposal=1)
    return buffer.getvalue()


def webp_bomb() -> bytes:
    """A lossless WebP of 16000x16000 blank pixels: about 10 kB."""
    buffer = io.BytesIO()
    Image.new("L", (16000, 16000), 255).save(buffer, "WEBP", lossless=True)
    return buffer.getvalue()


BOMBS = {
    "png": lambda: declaring_a_huge_size("PNG"),
    "jpeg": lambda: declaring_a_huge_size("JPEG"),
    "bmp": lambda: declaring_a_huge_size("BMP"),
    "gif": lambda: declaring_a_huge_size("GIF"),
    "gif-animated": animated_gif_bomb,
    "webp": webp_bomb,
}


def test_decompression_bombs_of_every_format_cost_bounded_memory_and_one_line_or_a_prediction_each(
    exported_run, tmp_path
):
    """All of them in one predict.py run, as a user passes a folder of files: images are decoded one at a time, so
    the run's peak is that of its worst bomb."""
    tiny = tmp_path / "tiny.png"
    tiny.write_bytes(tf.io.encode_png(np.zeros((28, 28, 1), np.uint8)).numpy())
    bombs = [tmp_path / f"{name}.{name.split('-')[0]}" for name in BOMBS]
    for bomb, make in zip(bombs, BOMBS.values(), strict=True):
        bomb.write_bytes(make())
    _, _, baseline = predict_with_peak(exported_run["export_dir"], tiny)
    stdout, errors, peak = predict_with_peak(exported_run["export_dir"], *bombs)
    assert "Traceback" not in "".join(errors), errors
    answers = stdout.strip().splitlines()
    for bomb in bombs:  # one line each: an answer, or an error naming the file
        lines = [a for a in answers if a.startswith(f"{bomb} ")] + [
            e for e in errors if e.startswith(f"error: {bomb}: ")
        ]
        assert len(lines) == 1, (bomb.name, stdout, errors)
    assert len(answers) + len(errors) == len(bombs), (stdout, errors)
    assert peak - baseline < 150, f"{peak} MB against {baseline} MB for a 28x28 PNG"
