"""Files: atomic writes, which a reader (or a crash) never sees half of, and the one-line refusal of a folder."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from mnist_tf.errors import MnistTfError

_UMASK = os.umask(0o022)  # the process's umask: it can only be read by setting it, so it is set back at once,
os.umask(_UMASK)  # on import, before any thread that writes files


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Writes `data` as indented JSON to `path`, atomically (see `write_text_atomic`)."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Writes `text` to a temporary file beside `path`, fsyncs it, then renames it over `path`; with the mode any
    other file gets (0666 less the umask: mkstemp's own 0600 would hide results.json from a group that reads runs).

    A failed write (read-only or full disk) is a MnistTfError and leaves any earlier `path` as it was.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise MnistTfError(f"could not write {path}: {e.strerror}") from None
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise MnistTfError(f"could not write {path}: {e.strerror}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def make_dir(path: str | os.PathLike, flag: str = "--model_dir") -> None:
    """Creates the folder `path` (and its parents) that `flag` names, or says in one line why it cannot."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MnistTfError(f"cannot create {flag} {path}: {e.strerror}") from None


def make_file_dir(path: str | os.PathLike, flag: str) -> None:
    """The folder of the file `path` that `flag` names, made before the work whose result it takes: minutes of work
    must not end in a write that was never possible."""
    if Path(path).is_dir():
        raise MnistTfError(f"{flag}={path} is a folder; give a file's path")
    make_dir(Path(path).parent, f"{flag}'s folder")
