"""How this process runs TensorFlow: settled before TensorFlow is first imported (importing `mnist_tf` does it),
and whether its TensorFlow and Keras are versions this project supports.

The settings are environment variables TensorFlow reads once, at import; a value you set yourself always wins.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.abc
import importlib.machinery
import importlib.util
import os
import platform
import sys
import types
import warnings
from collections.abc import Callable, Iterator

from mnist_tf.errors import MnistTfError

# The oldest versions supported (requirements-oldest.txt): CI tests them and the pinned ones (requirements.txt).
OLDEST = {"tensorflow": (2, 19), "keras": (3, 10)}


def configure() -> None:
    use_onednn()
    silence_tensorflow()
    lean_keras()


def use_onednn() -> None:
    """TensorFlow's oneDNN CPU kernels on every x86-64 CPU (TF_ENABLE_ONEDNN_OPTS=1).

    TensorFlow turns them on by itself only on CPUs with AVX-512 or AMX; on AVX2 CPUs they train LeNet faster than
    the default Eigen kernels (docs/performance.md), and repeat bit for bit. `TF_ENABLE_ONEDNN_OPTS=0` turns them off.
    """
    if platform.machine().lower() in ("x86_64", "amd64"):
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def silence_tensorflow() -> None:
    """Hides TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notices, absl pre-init warnings).

    TF_CPP_MIN_LOG_LEVEL defaults to 3 (errors surface as Python exceptions anyway); set it to 0-2 yourself to see
    the logs, e.g. `TF_CPP_MIN_LOG_LEVEL=0 python scripts/...`. Some lines are written by absl before that level
    applies, so at level 3 stderr is pointed at /dev/null while TensorFlow imports: whenever that first happens,
    so that importing mnist_tf costs nothing to a process that never loads TensorFlow (serve_web.py). A Python
    error in that window still shows, since it is printed after stderr returns.
    """
    # TensorFlow warns about its own tf.data internals whenever a distribution strategy iterates a dataset
    # inside a tf.function; nothing a user of this project could act on.
    warnings.filterwarnings("ignore", message="To make it possible to preserve tf.data options", category=UserWarning)
    if "tensorflow" in sys.modules or os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3") != "3":
        return

    def quiet_load(load: Callable[[types.ModuleType], None], module: types.ModuleType) -> None:
        with quiet_native_stderr():
            load(module)
        module.get_logger().setLevel("ERROR")

    _load_first_import_with("tensorflow", quiet_load)


def lean_keras() -> None:
    """Keras loads without scikit-learn and pandas in sight. When they are installed (this project's digits8x8 set
    needs scikit-learn; Ray brings pandas), Keras imports both as it starts, for its scikit-learn wrappers and its
    DataFrame inputs, which this project never uses: more than a second of every process's start. Both stay
    importable after Keras has loaded; only Keras's own wrappers and DataFrame inputs go without them."""

    def lean_load(load: Callable[[types.ModuleType], None], module: types.ModuleType) -> None:
        hidden = [name for name in ("sklearn", "pandas") if name not in sys.modules]
        sys.modules.update(dict.fromkeys(hidden))  # None in sys.modules: importing it raises ImportError
        try:
            load(module)
        finally:
            for name in hidden:
                if sys.modules.get(name, ...) is None:
                    del sys.modules[name]

    if "keras" not in sys.modules:
        _load_first_import_with("keras", lean_load)


def _load_first_import_with(name: str, load_with: Callable[[Callable, types.ModuleType], None]) -> None:
    """The first import of module `name` anywhere in this process runs `load_with(load, module)` around its load."""
    if not any(isinstance(finder, _FirstImport) and finder.name == name for finder in sys.meta_path):
        sys.meta_path.insert(0, _FirstImport(name, load_with))


class _FirstImport(importlib.abc.MetaPathFinder):
    """Finds module `name` once, as the other finders do, and loads it through `load_with`."""

    def __init__(self, name: str, load_with: Callable[[Callable, types.ModuleType], None]) -> None:
        self.name, self.load_with = name, load_with

    def find_spec(self, name: str, path: object, target: object = None) -> importlib.machinery.ModuleSpec | None:
        if name != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module
        spec.loader.exec_module = functools.partial(self.load_with, load)  # this one load's loader only
        return spec


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Points stderr (file descriptor 2, where C++ libraries write) at /dev/null inside the block, unless
    TF_CPP_MIN_LOG_LEVEL asks for logs. For libraries that print whatever the level (TensorFlow's absl pre-init
    warnings, the LiteRT converter and runtime); their errors still reach Python as exceptions."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3") != "3":
        yield
        return
    sys.stderr.flush()
    saved_stderr = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
        os.close(devnull)


def check_versions() -> None:
    """MnistTfError, in one line that says what to do, when the TensorFlow or Keras this process loaded is older
    than OLDEST (a script that loads neither, as serve_web.py, needs neither)."""
    loaded = {name: sys.modules[name].__version__ for name in ("tensorflow", "keras") if name in sys.modules}
    for name, version in loaded.items():
        major, minor = (int(part) for part in version.split(".")[:2])
        if (major, minor) < OLDEST[name]:
            oldest = ".".join(map(str, OLDEST[name]))
            raise MnistTfError(
                f"{name} {version} is older than {oldest}, the oldest mnist_tf supports: install the versions of "
                "requirements.txt, or on Colab choose a newer runtime version (upgrading TensorFlow there would "
                "replace its TPU build)"
            )
