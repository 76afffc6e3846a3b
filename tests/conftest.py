"""Shared fixtures: a small generated IDX data set that every training test can learn in seconds."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import importlib.util
import io
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

# mnist_tf (and so TensorFlow) is imported where it is used: pytest-xdist's controller runs no test, and would spend
# seconds of every run importing TensorFlow before its workers start.
if TYPE_CHECKING:
    from mnist_tf.config import Config
    from mnist_tf.data.sources import Split

# Where the tests find the scripts and files they run: the checkout, or under Bazel the test's runfiles, which hold
# only what BUILD declares (so a missing `data` entry fails there).
REPO = (
    Path(os.environ["TEST_SRCDIR"], os.environ["TEST_WORKSPACE"])
    if "TEST_SRCDIR" in os.environ
    else Path(__file__).resolve().parents[1]
)
# The real MNIST files (see ../shared/datasets/README.md), beside the checkout; real-data tests skip when they are
# absent.
REAL_MNIST = Path(
    os.environ.get("MNIST_TF_REAL_DATA", Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mnist")
)
requires_real_mnist = pytest.mark.skipif(
    not (REAL_MNIST / "train-images-idx3-ubyte.gz").exists(), reason=f"real MNIST files not found at {REAL_MNIST}"
)


def requires_module(name: str) -> pytest.MarkDecorator:
    """Skips a test of an optional feature where its package is not installed (CI's oldest-versions run)."""
    return pytest.mark.skipif(importlib.util.find_spec(name) is None, reason=f"{name} is not installed (optional)")


MAX_WORKERS = 4  # each pytest-xdist worker is a TensorFlow process of its own, with its own memory


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto` (pyproject.toml): one worker per core this process may use, at most MAX_WORKERS."""
    return max(1, min(MAX_WORKERS, len(os.sched_getaffinity(0))))


def pytest_configure(config: pytest.Config) -> None:
    """Splits the CPU into two logical devices, so MirroredStrategy runs two replicas here (before TF starts).
    Not in pytest-xdist's controller, which runs no test."""
    if config.option.dist != "no" and not hasattr(config, "workerinput"):
        return
    import mnist_tf  # noqa: F401, I001  first: it quiets TensorFlow before TensorFlow is imported
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    if hasattr(config, "workerinput"):  # one pytest-xdist worker per core: TensorFlow's own threads would contend
        tf.config.threading.set_intra_op_parallelism_threads(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `long` first (pytest-xdist hands tests out in this order): started last, one of them would keep
    a worker busy minutes after the other has finished everything else."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


@pytest.fixture(scope="session")
def two_replicas():
    """One MirroredStrategy over the two logical CPUs, shared: a second one in the same process would run its
    collective ops alongside the first's and fail."""
    import tensorflow as tf

    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


def quiet_run(config: Config, fresh: bool = False) -> tuple[dict[str, Any], str]:
    """mnist_tf.run.run with its console output captured: (results, output)."""
    from mnist_tf import run
    from mnist_tf.reporting.console import ConsoleReporter

    stream = io.StringIO()
    results = run.run(config, ConsoleReporter(stream, interactive=False), fresh=fresh)
    return results, stream.getvalue()


def checkpoint_weights(model_dir: str) -> dict[str, np.ndarray]:
    """The model's variables in the latest checkpoint of a run (trainable ones are stored under the optimizer)."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(f"{model_dir}/checkpoints"))
    names = reader.get_variable_to_shape_map()
    return {
        name: reader.get_tensor(name)
        for name in sorted(names)
        if name.startswith(("model/", "optimizer/_trainable_variables/"))
    }


def blank_split(count: int = 8) -> Split:
    """A split of blank 28x28 images: for a Trainer that never sees its training data."""
    from mnist_tf.data.sources import Split

    return Split(np.zeros((count, 28, 28, 1), np.uint8), np.zeros(count, np.int64))


def make_digits(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Learnable fake digits: each class is a fixed random blob pattern, drawn with noise and a random shift."""
    templates = np.random.default_rng(0).random((10, 28, 28)) > 0.8
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, count).astype(np.uint8)
    images = templates[labels] * rng.uniform(150, 255, (count, 1, 1)) + rng.normal(0, 30, (count, 28, 28))
    shifts = rng.integers(-1, 2, (count, 2))
    images = np.stack([np.roll(image, shift, axis=(0, 1)) for image, shift in zip(images, shifts, strict=True)])
    return np.clip(images, 0, 255).astype(np.uint8), labels


def write_idx_dir(directory: Path, train_count: int = 1200, test_count: int = 300) -> Path:
    from mnist_tf.data import idx

    directory.mkdir(parents=True, exist_ok=True)
    for split, count, seed in (("train", train_count, 1), ("test", test_count, 2)):
        images, labels = make_digits(count, seed)
        images_name, labels_name = idx.SPLIT_FILES[split]
        idx.write_idx(directory / f"{images_name}.gz", images)
        idx.write_idx(directory / f"{labels_name}.gz", labels)
    return directory


def session_root(factory: pytest.TempPathFactory) -> Path:
    """The test session's temporary folder, which every pytest-xdist worker shares (each has its own below it)."""
    root = factory.getbasetemp()
    return root.parent if "PYTEST_XDIST_WORKER" in os.environ else root


@contextlib.contextmanager
def once(path: Path) -> Iterator[None]:
    """Holds a lock beside `path` that serializes the session's workers: the first makes `path`, the rest find it."""
    with open(f"{path}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="session")
def idx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated IDX folder, one per session."""
    directory = session_root(tmp_path_factory) / "idx"
    with once(directory):
        return directory if directory.exists() else write_idx_dir(directory)


def tiny_config_in(idx_dir: Path, root: Path) -> Config:
    """A run of a few seconds on the generated data, writing under `root`."""
    from mnist_tf.config import Config

    return Config(
        model="mlp",
        data_dir=str(idx_dir),
        model_dir=str(root / "run"),
        export_dir=str(root / "saved_models"),
        epochs=2,
        batch_size=50,
        eval_batch_size=128,
        validation_size=200,
        hidden_units=(64,),
        learning_rate=3e-3,
        dtype="float32",  # the same on every CPU (auto is bfloat16 on some)
        litert=False,  # seconds per export; tests/test_litert.py turns it on
        augment=False,  # the generated digits are random patterns, not shapes a distortion preserves
        not_digits=0.0,  # seconds per run to draw the bank; tests/test_not_digits.py turns it on
        captures=0.0,  # the generated digits are patterns, not shapes to write; tests/test_captures.py turns it on
    )


@pytest.fixture
def tiny_config(idx_dir: Path, tmp_path: Path) -> Config:
    return tiny_config_in(idx_dir, tmp_path)


def shared_run(factory: pytest.TempPathFactory, name: str, config: Callable[[Path], Config]) -> dict[str, Any]:
    """The results of `config(root)`'s run, trained once per test session and shared by every pytest-xdist worker
    (the first to ask trains it under a lock; the others read its results.json). Tests must not write into it."""
    directory = session_root(factory) / f"shared-{name}"
    with once(directory):
        results_file = directory / "run" / "results.json"
        if not results_file.exists():
            _, output = quiet_run(config(directory))
            (directory / "output.txt").write_text(output)
        return json.loads(results_file.read_text())


def shared_output(results: dict[str, Any]) -> str:
    """What a `shared_run` printed."""
    return (Path(results["flags"]["model_dir"]).parent / "output.txt").read_text()


@pytest.fixture(scope="session")
def exported_run(idx_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The tiny MLP run, trained and exported once: for tests that need *a* trained model or export."""
    return shared_run(tmp_path_factory, "mlp", lambda root: tiny_config_in(idx_dir, root))


def tiny_lenet_in(idx_dir: Path, root: Path) -> Config:
    """A LeNet small enough to train in seconds and confident enough that its int8 LiteRT file passes
    verification."""
    return dataclasses.replace(
        tiny_config_in(idx_dir, root), model="lenet", filters=(8, 16), hidden_units=(32,), epochs=3, litert=True
    )


@pytest.fixture(scope="session")
def trained_lenet(idx_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The tiny LeNet run, trained once, with its SavedModel and LiteRT files."""
    return shared_run(tmp_path_factory, "lenet", lambda root: tiny_lenet_in(idx_dir, root))


def mnist_mlp_config(root: Path) -> Config:
    """A small MLP trained one epoch on the real MNIST files (about 97% test accuracy), exported under `root`."""
    from mnist_tf.config import Config

    return Config(
        model="mlp",
        data_dir=str(REAL_MNIST),
        model_dir=str(root / "run"),
        export_dir=str(root / "saved_models"),
        epochs=1,
        hidden_units=(256,),
        validation_size=0,
    )


def people_lenet_config(root: Path) -> Config:
    """The default LeNet for two epochs on the real MNIST files, with its not-digit images and captured digits (in
    float32: alike on every CPU): a model that tells a drawn house from a digit."""
    from mnist_tf.config import Config

    return Config(
        model="lenet",
        data_dir=str(REAL_MNIST),
        model_dir=str(root / "run"),
        export_dir=str(root / "saved_models"),
        epochs=2,
        dtype="float32",
    )


@pytest.fixture(scope="session")
def people_lenet(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`people_lenet_config`'s results, trained once."""
    return shared_run(tmp_path_factory, "people_lenet", people_lenet_config)


@pytest.fixture(scope="session")
def mnist_saved_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """`mnist_mlp_config`'s export, trained once."""
    return shared_run(tmp_path_factory, "mnist", mnist_mlp_config)["export_dir"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


TRAIN = [sys.executable, str(REPO / "scripts" / "train.py")]
CHECK_TRAIN_IMAGES = 5000 + 3 * 256  # the default validation split, then three default batches
# The two-worker run of tests/test_distribute.py and tests/test_train_ray.py: small, but a real LeNet.
TWO_WORKER_FLAGS = [
    "--model=lenet",
    "--filters=4,8",
    "--hidden_units=32",
    "--epochs=4",
    "--batch_size=20",  # 10 per worker; 50 steps per epoch, 200 in all
    "--eval_batch_size=100",
    "--validation_size=200",
    "--nolitert",  # the chief's LiteRT export is tested on its own (tests/test_litert.py)
    # Each worker would draw the not-digit bank (seconds); their draw's split over replicas is tested in process
    # (tests/test_not_digits.py).
    "--not_digits=0",
    "--captures=0",
]


def start_workers(idx_dir: Path, model_dir: Path, export_dir: Path, scratch: Path) -> list[subprocess.Popen]:
    """Two worker processes of one multi-worker run (ports of their own), as a cluster scheduler would start them."""
    workers = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    args = ["--strategy=multi_worker", *TWO_WORKER_FLAGS]
    args += [f"--data_dir={idx_dir}", f"--model_dir={model_dir}", f"--export_dir={export_dir}"]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "TMPDIR": str(scratch)}
        processes.append(
            subprocess.Popen(
                [*TRAIN, *args], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    return processes


def finish_workers(processes: list[subprocess.Popen], expected_returncode: int = 0) -> list[tuple[str, str]]:
    """(stdout, stderr) of each worker once both have exited with `expected_returncode`."""
    try:
        outputs = [process.communicate(timeout=240) for process in processes]
    finally:
        for process in processes:
            process.kill()
    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == expected_returncode, stderr
    return outputs


@pytest.fixture(scope="session")
def two_worker_run(idx_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """One uninterrupted two-worker run, made once: (its folder, the two workers' stdout). Tests must not write
    into it."""
    root = session_root(tmp_path_factory) / "shared-two_workers"
    with once(root):
        if not (root / "run" / "results.json").exists():
            (root / "tmp").mkdir(parents=True)
            outputs = finish_workers(start_workers(idx_dir, root / "run", root / "saved_models", root / "tmp"))
            for index, (stdout, _) in enumerate(outputs):
                (root / f"worker{index}.txt").write_text(stdout)
    return root, [(root / f"worker{index}.txt").read_text() for index in range(2)]


@dataclasses.dataclass(frozen=True)
class CheckRun:
    """scripts/accelerator_check.py as run once per session (see `accelerator_check`)."""

    returncode: int
    stdout: str
    stderr: str
    work_dir: Path  # the runs, and the benchmark's benchmark.json
    output: Path  # the JSON summary


@pytest.fixture(scope="session")
def accelerator_check(tmp_path_factory: pytest.TempPathFactory) -> CheckRun:
    """scripts/accelerator_check.py's CPU part on generated data, run once: its tests, and the benchmark's (its
    `benchmark.py --quick` race of the MLP prints into its output; the race runs every model alike, and
    tests/test_benchmark.py builds the others). float32: in 16 bits Keras's layers round differently from ours, and
    near chance that shows in the race's accuracy curves."""
    root = session_root(tmp_path_factory) / "shared-accelerator_check"
    with once(root):
        if not (root / "returncode").exists():
            data_dir = write_idx_dir(root / "idx", train_count=CHECK_TRAIN_IMAGES, test_count=300)
            process = subprocess.run(
                [
                    sys.executable, str(REPO / "scripts" / "accelerator_check.py"), f"--data_dir={data_dir}",
                    "--epochs=1", "--expected_accuracy=0.999",  # more than a tiny run reaches: those checks fail
                    "--benchmark_models=mlp", "--dtype=float32", f"--work_dir={root / 'work'}",
                    f"--output={root / 'check.json'}",
                ],
                capture_output=True, text=True, timeout=900, cwd=REPO,
            )  # fmt: skip
            (root / "stdout.txt").write_text(process.stdout)
            (root / "stderr.txt").write_text(process.stderr)
            (root / "returncode").write_text(str(process.returncode))
    return CheckRun(
        int((root / "returncode").read_text()),
        (root / "stdout.txt").read_text(),
        (root / "stderr.txt").read_text(),
        root / "work",
        root / "check.json",
    )
