"""notebooks/colab_tpu.ipynb: valid nbformat, and it runs end to end here, falling back to the CPU.

The test executes the notebook's code cells in order in a fresh interpreter, with overrides injected after the
cell tagged "parameters" (as papermill does): one short epoch on the generated data. IPython's magics (the inline
TensorBoard) need a notebook front end: they are checked for, then left out. CI runs these tests on the pinned
versions and again on the oldest supported ones (requirements-oldest.txt), like Colab's.
"""

import json
import os
import re
import subprocess
import sys

import nbformat
import pytest
from conftest import REPO

NOTEBOOK = REPO / "notebooks" / "colab_tpu.ipynb"


def test_notebook_is_valid_and_asks_colab_for_a_tpu():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata["accelerator"] == "TPU"
    assert [cell.metadata.get("tags") for cell in notebook.cells].count(["parameters"]) == 1
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")  # saved clean


@pytest.mark.slow
@pytest.mark.versions  # Colab's stack
def test_notebook_trains_and_serves_on_the_cpu_when_no_tpu_is_attached(idx_dir, tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    overrides = "\n".join(
        [
            "EPOCHS = 1",
            f"MODEL_DIR = {str(tmp_path / 'run')!r}",
            f"EXPORT_DIR = {str(tmp_path / 'saved_models')!r}",
            'EXTRA_FLAGS = ["--filters=4,8", "--hidden_units=32", "--batch_size=50", "--validation_size=200", '
            '"--nolitert", "--not_digits=0", "--captures=0"]',
        ]
    )
    sources = []
    for cell in notebook.cells:
        if cell.cell_type == "code":
            sources.append(without_magics(cell.source))
            if "parameters" in cell.metadata.get("tags", []):
                sources.append(overrides)
    process = subprocess.run(
        [sys.executable, "-c", "\n\n".join(sources)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MNIST_TF_DATA_DIR": str(idx_dir)},
    )
    assert process.returncode == 0, process.stdout + process.stderr
    assert "strategy default, dtype float32" in process.stdout
    assert "strategy: default (1 replica)" in process.stdout  # the training script's own output, streamed
    assert f"SavedModel {tmp_path / 'saved_models' / 'lenet' / '1'}: served test accuracy" in process.stdout
    served, trained = re.search(r"served test accuracy (\S+)\ntraining reported (\S+)", process.stdout).groups()
    assert served == trained, process.stdout  # the same model, served by plain TensorFlow


def without_magics(source: str) -> str:
    """The cell as plain Python: IPython magic lines (`%...`) become `pass`."""
    return "\n".join("pass" if line.startswith("%") else line for line in source.splitlines())


def test_notebook_shows_the_runs_tensorboard_inline():
    sources = [cell.source for cell in nbformat.read(NOTEBOOK, as_version=4).cells if cell.cell_type == "code"]
    assert any("%load_ext tensorboard" in s and "%tensorboard --logdir {MODEL_DIR}" in s for s in sources)


@pytest.mark.slow
@pytest.mark.versions
@pytest.mark.skipif("TEST_SRCDIR" in os.environ, reason="pip installs from a source checkout, not Bazel's runfiles")
def test_the_install_step_installs_nothing_but_the_project(tmp_path):
    """The notebook installs the project with `pip install -e .`: on Colab that must keep Colab's TensorFlow (and
    everything else) as it is. pip's dry run says what it would install, without installing it."""
    report = tmp_path / "report.json"
    pip = [sys.executable, "-m", "pip", "install", "--dry-run", "--no-build-isolation", "--quiet"]
    process = subprocess.run(
        [*pip, "--report", str(report), "-e", str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stderr
    installs = [item["metadata"]["name"] for item in json.loads(report.read_text())["install"]]
    assert [re.sub(r"[-_.]+", "-", name).lower() for name in installs] == ["mnist-tf"]  # setuptools 75+: mnist_tf
