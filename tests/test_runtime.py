"""Importing mnist_tf sets TensorFlow up before it loads: oneDNN kernels on x86-64, unless the user chose; Keras
without the scikit-learn and pandas it never uses here."""

import importlib
import os
import platform
import subprocess
import sys

import pytest
from conftest import REPO

from mnist_tf import runtime
from mnist_tf.errors import MnistTfError

SHOW = "import mnist_tf, os; print(os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset'))"


def _onednn_after_import(value: str | None) -> str:
    env = {key: v for key, v in os.environ.items() if key != "TF_ENABLE_ONEDNN_OPTS"}
    if value is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = value
    process = subprocess.run([sys.executable, "-c", SHOW], capture_output=True, text=True, timeout=120, env=env)
    assert process.returncode == 0, process.stderr[-2000:]
    return process.stdout.strip()


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="oneDNN is turned on on x86-64")
@pytest.mark.slow  # starts a Python process
def test_onednn_is_turned_on_by_default_on_x86_64():
    assert _onednn_after_import(None) == "1"


@pytest.mark.slow  # starts a Python process
def test_a_users_choice_wins():
    assert _onednn_after_import("0") == "0"


@pytest.mark.parametrize("module, version", [("tensorflow", "2.18.1"), ("keras", "3.9.2")])
def test_a_tensorflow_or_keras_older_than_supported_is_one_line(monkeypatch, module, version):
    monkeypatch.setattr(importlib.import_module(module), "__version__", version)
    with pytest.raises(MnistTfError, match=f"^{module} {version} is older than .*, the oldest mnist_tf supports: "):
        runtime.check_versions()


@pytest.mark.versions
def test_the_versions_here_are_supported():
    runtime.check_versions()


def test_a_process_that_uses_no_tensorflow_never_loads_it():
    """Importing mnist_tf defers TensorFlow's quiet import to its first use: the page's server starts at once."""
    env = {**os.environ, "PYTHONPATH": os.fspath(REPO)}
    code = "import sys, common, mnist_tf.export.web_page; print(sorted({'tensorflow', 'keras'} & set(sys.modules)))"
    process = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO / "scripts", env=env
    )
    assert (process.returncode, process.stdout.strip(), process.stderr) == (0, "[]", "")


@pytest.mark.slow  # starts a Python process
def test_keras_loads_without_scikit_learn_and_pandas_and_both_still_import():
    code = (
        "import sys, mnist_tf, keras; print(sorted({'sklearn', 'pandas'} & set(sys.modules)));"
        "import sklearn.datasets, pandas; print(sklearn.datasets.load_digits().images.shape, pandas.DataFrame().shape)"
    )
    process = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert process.returncode == 0, process.stderr[-2000:]
    assert process.stdout.splitlines() == ["[]", "(1797, 8, 8) (0, 0)"]
