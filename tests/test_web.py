"""The draw-a-digit page (web/) in a real browser: Debian's chromium, driven by Playwright, on a page that
scripts/serve_web.py serves on 127.0.0.1 with the LiteRT export of a model trained on the real MNIST files.

Set MNIST_TF_WEB_LITERT to serve another LiteRT export (e.g. saved_models/litert/lenet), and MNIST_TF_WEB_OUTPUT to
a folder to keep the README's screenshot and the browser's latencies (docs/serving.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import tensorflow as tf
from conftest import REAL_MNIST, REPO, quiet_run, requires_module, requires_real_mnist
from script_runs import run_script

from mnist_tf.data import folder, idx, preprocess, sources
from mnist_tf.export import litert, litert_files
from mnist_tf.not_a_digit import not_digits, people
from mnist_tf.not_a_digit.decision import Decision

CHROMIUM = shutil.which("chromium")
LITERT_JS = REPO / "web" / "node_modules" / "@litertjs" / "core"
OUTPUT = os.environ.get("MNIST_TF_WEB_OUTPUT")

pytestmark = [
    pytest.mark.slow,
    requires_module("playwright"),
    requires_module("ai_edge_litert"),
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"),
    pytest.mark.skipif(not LITERT_JS.is_dir(), reason="LiteRT.js is not installed (npm ci --prefix web)"),
    requires_real_mnist,  # the page is shown real digits, and classifies them with a model trained on real ones
]

RESULT_IS_CURRENT = (
    "(variant) => { const p = window.mnistPage; return !p.busy && p.result !== null"
    " && p.result.revision === p.revision && p.result.variant === variant; }"
)


@pytest.fixture(scope="module")
def litert_dir(request: pytest.FixtureRequest) -> Path:
    if "MNIST_TF_WEB_LITERT" in os.environ:
        from mnist_tf.export import web_page

        return web_page.litert_export(os.environ["MNIST_TF_WEB_LITERT"])
    return litert_files.directory_for(request.getfixturevalue("mnist_saved_model"))


@contextlib.contextmanager
def serving(litert_dir: Path) -> Iterator[str]:
    """scripts/serve_web.py on a free port of 127.0.0.1, stopped at the end: yields its URL."""
    server = subprocess.Popen(
        [sys.executable, REPO / "scripts" / "serve_web.py", f"--litert_dir={litert_dir}", "--port=0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stdout.readline()  # "serving DIR at URL (Ctrl-C stops)"
        assert " at http://127.0.0.1:" in line, line
        yield line.split(" at ")[1].split()[0]
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="module")
def url(litert_dir: Path) -> Iterator[str]:
    with serving(litert_dir) as url:
        yield url


@pytest.fixture(scope="module")
def lenet_litert_dir(request: pytest.FixtureRequest) -> Path:
    """The default LeNet's LiteRT files (`people_lenet`), or MNIST_TF_WEB_LITERT's: for what a one-epoch MLP cannot
    tell apart."""
    if "MNIST_TF_WEB_LITERT" in os.environ:
        return request.getfixturevalue("litert_dir")
    return litert_files.directory_for(request.getfixturevalue("people_lenet")["export_dir"])


@pytest.fixture(scope="module")
def lenet_url(lenet_litert_dir: Path) -> Iterator[str]:
    with serving(lenet_litert_dir) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        yield browser
        browser.close()


@pytest.fixture
def requests() -> list[str]:
    """Every URL the test's pages request (filled in by `open_page`)."""
    return []


@pytest.fixture
def open_page(browser, requests):
    pages = []

    def open_page(url: str, ready: bool = True):
        page = browser.new_page(viewport={"width": 1000, "height": 620})
        page.on("request", lambda request: requests.append(request.url))
        page.goto(url)
        page.wait_for_function("!document.getElementById('status').textContent.startsWith('Loading')")
        if ready:
            assert "ready" in page.inner_text("#status"), page.inner_text("#status")
        pages.append(page)
        return page

    yield open_page
    for page in pages:
        page.close()


@pytest.fixture(scope="module")
def real_digits() -> tuple[np.ndarray, np.ndarray]:
    """The first test image of each class, 0 to 9, from the real MNIST test split: uint8 [10, 28, 28]."""
    images, labels = idx.load_split(REAL_MNIST, "test")
    firsts = [int(np.flatnonzero(labels == digit)[0]) for digit in range(10)]
    return images[firsts].reshape(10, 28, 28), labels[firsts]


def choose(page, variant: str) -> None:
    page.check(f"input[value={variant}]")
    page.wait_for_function(RESULT_IS_CURRENT, arg=variant)


def trace(page, image: np.ndarray) -> None:
    """Draws the ink of a 28x28 image with the mouse: one stroke along each run of ink of each row."""
    page.click("#clear")
    box = page.locator("#pad").bounding_box()
    cell = box["width"] / image.shape[1]
    for y, row in enumerate(image >= 128):
        columns = np.flatnonzero(row)
        for run in np.split(columns, np.flatnonzero(np.diff(columns) > 1) + 1) if len(columns) else []:
            at_y = box["y"] + (y + 0.5) * cell
            page.mouse.move(box["x"] + (run[0] + 0.5) * cell, at_y)
            page.mouse.down()
            page.mouse.move(box["x"] + (run[-1] + 0.5) * cell, at_y, steps=max(1, len(run) // 3))
            page.mouse.up()


def draw(page, paths: list[list[tuple[float, float]]]) -> None:
    """Draws strokes with the mouse as a person would: each path (points of a unit box) in one stroke, over the
    middle 60% of the pad."""
    page.click("#clear")
    box = page.locator("#pad").bounding_box()
    for points in paths:
        xy = [
            (box["x"] + box["width"] * (0.2 + 0.6 * x), box["y"] + box["height"] * (0.2 + 0.6 * y)) for x, y in points
        ]
        page.mouse.move(*xy[0])
        page.mouse.down()
        for at in xy[1:]:
            page.mouse.move(*at, steps=4)
        page.mouse.up()


def page_result(page, variant: str) -> dict:
    page.wait_for_function(RESULT_IS_CURRENT, arg=variant)
    result = page.evaluate("window.mnistPage.result")
    return {**result, "pixels": np.array(result["pixels"], np.uint8).reshape(28, 28)}


def python_probabilities(litert_dir: Path, variant: str, pixels: np.ndarray) -> np.ndarray:
    return litert.LiteRtModel.from_file(litert_dir / f"{variant}.tflite").probabilities(pixels[np.newaxis])[0]


def kept_variants(litert_dir: Path) -> list[str]:
    report = litert.read_report(litert_dir)
    return [name for name in litert.VARIANTS if name in report["variants"] and not report["variants"][name]["refused"]]


def test_drawn_digits_get_what_the_python_runtime_gives_for_the_same_pixels(url, open_page, litert_dir, real_digits):
    page = open_page(url)
    images, labels = real_digits
    matched, right = 0, 0
    for image, label in zip(images, labels, strict=True):
        trace(page, image)
        for variant in ("float32", "int8"):
            choose(page, variant)
            result = page_result(page, variant)
            expected = python_probabilities(litert_dir, variant, result["pixels"])
            np.testing.assert_allclose(result["probabilities"], expected, atol=1e-4)
            assert int(page.inner_text("#prediction")) == int(np.argmax(expected))
            matched += 1
            right += int(np.argmax(expected)) == label
        choose(page, "float32")
    assert matched == 2 * len(images)
    print(f"{len(images)} digits drawn, {matched} page results equal to ai-edge-litert's; {right} read as drawn")
    assert right >= 0.7 * matched  # traced strokes are thicker than MNIST's, yet mostly readable


def test_a_drawn_letter_is_not_a_digit_and_a_drawn_digit_is_its_class(
    lenet_url, open_page, lenet_litert_dir, real_digits
):
    page, litert_dir = open_page(lenet_url), lenet_litert_dir
    chosen = Decision.from_dict(litert.read_report(litert_dir)["decision"])
    fonts = not_digits.font_files(held_out=True) or not_digits.font_files()
    rng = np.random.default_rng(0)
    refused = 0
    for character in "#WM":
        letter = preprocess.to_mnist_each(not_digits.glyphs(rng, 1, fonts[:1], characters=character))[0, ..., 0]
        trace(page, letter)
        result = page_result(page, "float32")
        expected = python_probabilities(litert_dir, "float32", result["pixels"])
        assert result["isDigit"] == bool(chosen.accepts(expected[np.newaxis])[0])
        assert (page.inner_text("#verdict") == "not a digit?") != result["isDigit"]
        assert ("not-a-digit" in page.get_attribute("#prediction", "class")) != result["isDigit"]  # greyed
        refused += not result["isDigit"]
    assert refused >= 2
    images, labels = real_digits
    trace(page, images[7])
    page_result(page, "float32")
    assert page.inner_text("#verdict") == "" and int(page.inner_text("#prediction")) == labels[7]
    assert "not-a-digit" not in page.get_attribute("#prediction", "class")


@pytest.mark.parametrize(
    "name, drawing, expected",
    [
        ("house", people.DOODLES["house"], None),
        ("plus", people.SYMBOLS["plus"], None),
        ("crossed_7", people.SHAPES[7], 7),  # with a bar across its stem
        ("flagged_1", people.SHAPES[1], 1),  # with a flag and a foot
    ],
)
def test_drawn_things_and_continental_digits(lenet_url, open_page, name, drawing, expected, tmp_path):
    """What people draw on the page: a house and a plus sign are not digits; a 7 with a bar and a 1 with a flag
    are their digits (data/captures.py teaches these shapes; not_a_digit/not_digits.py the others)."""
    page = open_page(lenet_url)
    draw(page, drawing)
    result = page_result(page, "float32")
    if expected is None:
        assert page.inner_text("#verdict") == "not a digit?" and not result["isDigit"]
    else:
        assert page.inner_text("#verdict") == "" and int(page.inner_text("#prediction")) == expected
    folder = Path(OUTPUT) if OUTPUT else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=folder / f"web_page_{name}.png", full_page=True)


def image_file(path: Path, digit: np.ndarray, light_background: bool, color: bool) -> Path:
    """The digit 4x larger, off-center on a bigger canvas, as PNG or JPEG by `path`'s suffix; gray, or tinted."""
    canvas = np.zeros((160, 200), np.uint8)
    canvas[20:132, 70:182] = np.kron(digit, np.ones((4, 4), np.uint8))
    if light_background:
        canvas = 255 - canvas
    image = np.stack([canvas, canvas // 4 * 3, canvas], axis=-1) if color else canvas[..., np.newaxis]
    encode = tf.io.encode_jpeg if path.suffix == ".jpg" else tf.io.encode_png
    path.write_bytes(encode(image).numpy())
    return path


# Both sides decode exactly: PNG is lossless, and preprocess.py decodes JPEG with the exact inverse DCT that
# Chromium's libjpeg-turbo uses. From there the page's float32 arithmetic follows TensorFlow's step by step; only
# the luma of colored pixels is a dot product whose rounding may differ (TensorFlow's matmul may fuse or reorder
# its three multiply-adds), by one level at most.
@pytest.mark.parametrize("suffix", [".png", ".jpg"])
@pytest.mark.parametrize("light_background", [True, False], ids=["dark_ink", "light_ink"])
@pytest.mark.parametrize("color", [False, True], ids=["gray", "color"])
def test_image_files_are_preprocessed_as_preprocess_py_does(
    url, open_page, litert_dir, real_digits, tmp_path, suffix, light_background, color
):
    page = open_page(url)
    for i, digit in enumerate(real_digits[0][:4]):
        path = image_file(tmp_path / f"digit{i}{suffix}", digit, light_background, color)
        page.set_input_files("#file", path)
        page.wait_for_function(
            "(name) => document.getElementById('status').textContent.startsWith(name)", arg=path.name
        )
        result = page_result(page, "float32")
        expected = preprocess.preprocess(tf.constant(path.read_bytes())).numpy()
        difference = np.abs(result["pixels"].astype(int) - expected.astype(int))
        assert difference.max() <= (1 if color else 0), difference.max()
        expected_probabilities = python_probabilities(litert_dir, "float32", expected)
        assert np.argmax(result["probabilities"]) == np.argmax(expected_probabilities)
        np.testing.assert_allclose(
            result["probabilities"], python_probabilities(litert_dir, "float32", result["pixels"]), atol=1e-4
        )


def test_the_page_asks_nothing_of_any_host_but_its_own(url, open_page, real_digits, requests):
    page = open_page(url)
    trace(page, real_digits[0][3])
    choose(page, "int8")
    hosts = {urlparse(request).hostname for request in requests if urlparse(request).scheme not in ("data", "blob")}
    assert hosts == {"127.0.0.1"}
    assert any(request.endswith("/models/int8.tflite") for request in requests)
    assert any(request.endswith(".wasm") for request in requests)


def test_missing_or_broken_files_are_reported_in_the_page(open_page, litert_dir, tmp_path):
    broken = tmp_path / "export"
    shutil.copytree(litert_dir, broken)
    with serving(broken) as url:
        (broken / "int8.tflite").unlink()
        page = open_page(url)
        page.check("input[value=int8]")
        page.wait_for_selector("#status.error")
        assert page.inner_text("#status") == (
            "could not load the int8 model: could not load models/int8.tflite: HTTP 404"
        )

        (broken / "float32.tflite").write_bytes(b"this is not a model")
        page = open_page(url, ready=False)
        assert page.inner_text("#status").startswith("could not load the float32 model: ")
        assert "error" in page.get_attribute("#status", "class")

        (broken / litert_files.REPORT_FILE).unlink()
        page = open_page(url, ready=False)
        assert page.inner_text("#status") == "could not load models/report.json: HTTP 404"


def test_a_screenshot_and_the_latency_in_the_browser(url, open_page, litert_dir, real_digits, tmp_path):
    page = open_page(url)
    trace(page, real_digits[0][7])
    choose(page, "int8")
    latencies = {
        variant: page.evaluate(f"window.mnistPage.benchmark('{variant}')") for variant in kept_variants(litert_dir)
    }
    assert all(0 < milliseconds < 100 for milliseconds in latencies.values()), latencies
    print("milliseconds per image in the browser:", latencies)
    folder = Path(OUTPUT) if OUTPUT else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=folder / "web_page.png", full_page=True)
    assert (folder / "web_page.png").read_bytes().startswith(b"\x89PNG")
    fonts = not_digits.font_files(held_out=True) or not_digits.font_files()
    letter = not_digits.glyphs(np.random.default_rng(3), 1, fonts[:1], characters="W")  # seed 3: a thin pen
    trace(page, preprocess.to_mnist_each(letter)[0, ..., 0])
    page_result(page, "int8")
    page.screenshot(path=folder / "web_page_not_a_digit.png", full_page=True)
    (folder / "browser_latency.json").write_text(json.dumps(latencies, indent=2) + "\n")


def test_labelled_drawings_download_as_a_zip_that_trains_with_source_folder(
    url, open_page, real_digits, tmp_path, monkeypatch, tiny_config
):
    page = open_page(url)
    images, labels = real_digits
    for image, label in [*zip(images[:3], labels[:3], strict=True)] * 2:  # two drawings of 0, 1 and 2
        trace(page, image)
        page_result(page, "float32")
        assert page.input_value("#label") == page.inner_text("#prediction")  # the answer, until corrected
        page.select_option("#label", str(label))
        page.click("#keep")
        page.wait_for_function("window.mnistPage.result === null")  # kept, and the pad cleared
    page.reload()  # kept in the browser, not in the page
    page.wait_for_function("window.mnistPage?.kept === 6")
    assert page.inner_text("#kept") == "6 kept in this browser: 0 ×2, 1 ×2, 2 ×2"
    with page.expect_download() as download:
        page.click("#download")
    with zipfile.ZipFile(download.value.path()) as archive:
        names = sorted(archive.namelist())
        archive.extractall(tmp_path / "drawings")
    assert [name.split("/")[0] for name in names] == ["0", "0", "1", "1", "2", "2"]

    monkeypatch.setenv(folder.CACHE_DIR_ENV, str(tmp_path / "cache"))
    splits = sources.load(source="folder", data_dir=str(tmp_path / "drawings"))
    assert splits.class_names == ("0", "1", "2") and (len(splits.train), len(splits.test)) == (3, 3)
    config = dataclasses.replace(
        tiny_config,
        source="folder",
        data_dir=str(tmp_path / "drawings"),
        validation_size=None,
        batch_size=3,
        export_dir="",
        epochs=1,
    )
    results, _ = quiet_run(config)
    assert results["class_names"] == ["0", "1", "2"] and results["data_source"].startswith("folder:")
    page.click("#forget")
    assert page.evaluate("window.mnistPage.kept") == 0 and page.is_disabled("#download")


def jittered(paths: list[list[tuple[float, float]]], rng: np.random.Generator) -> list[list[tuple[float, float]]]:
    """A drawing as a hand repeats it: each point a little elsewhere."""
    return [[(x + rng.normal(0, 0.03), y + rng.normal(0, 0.03)) for x, y in path] for path in paths]


@pytest.mark.slow  # fine-tunes the default LeNet
def test_a_style_the_model_misreads_is_read_after_fine_tuning_on_the_pages_download(
    people_lenet, lenet_url, open_page, tmp_path, monkeypatch
):
    """Draw, label, download, fine-tune with the plain command, serve, reload: the page reads the style it did not
    (ones with a long flag, which the starting model takes for 7s, beside the 7s with a bar across that tell the
    two apart where people write 1s so)."""
    long_flag_one = [[(0.05, 0.35), (0.6, 0.0), (0.6, 1.0)]]
    styles = {"1": long_flag_one, "7": people.SHAPES[7]}
    rng = np.random.default_rng(5)
    tests = [(label, jittered(paths, rng)) for label, paths in styles.items() for _ in range(3)]

    def read(url: str) -> list[str]:
        page = open_page(url)
        assert page.inner_text("#status") == "lenet/1, float32 model ready: draw a digit."  # the export it serves
        answers = []
        for _, drawing in tests:
            draw(page, drawing)
            page_result(page, "float32")
            answers.append(page.inner_text("#prediction"))
        return answers

    before = read(lenet_url)
    assert sum(answer != label for answer, (label, _) in zip(before, tests, strict=True)) >= 2, before

    page = open_page(lenet_url)
    for label, paths in [*styles.items()] * 8:  # eight of each, labelled and kept
        draw(page, jittered(paths, rng))
        page_result(page, "float32")
        page.select_option("#label", label)
        page.click("#keep")
        page.wait_for_function("window.mnistPage.result === null")
    with page.expect_download() as download:
        page.click("#download")
    drawings = tmp_path / "drawings.zip"
    download.value.save_as(drawings)

    monkeypatch.setenv(folder.CACHE_DIR_ENV, str(tmp_path / "cache"))
    done = run_script(
        "train",
        "--model=lenet",
        "--source=folder",
        f"--data_dir={drawings}",
        f"--init_from={people_lenet['export_dir']}",
        f"--model_dir={tmp_path / 'run'}",
        f"--export_dir={tmp_path / 'saved_models'}",
    )
    assert done.returncode == 0, done.stderr
    assert "fine-tuning: learning_rate 0.0005, batch_size 64, epochs 5, weight_decay 0.01, distillation 1 (for " in (
        done.stdout
    )
    assert "of mnist's replayed (--replay=0.5)" in done.stdout
    with serving(tmp_path / "saved_models" / "litert" / "lenet") as url:
        after = read(url)
    assert after == [label for label, _ in tests], (before, after)
