"""A run owns its `--model_dir`: `<model_dir>/run.lock` names the live run that trains there.

The lock is an advisory `flock` on that file, which the operating system releases when its process ends in any
way (exit, crash, SIGKILL, reboot). So a second live run is refused, and a lock left behind by a dead one is simply
taken over: the file still names the dead owner, which the note reports. Readers (evaluate.py, export.py,
TensorBoard) take no lock. Under multi-worker only the chief locks: the other workers write to temporary
directories of their own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from mnist_tf.errors import MnistTfError
from mnist_tf.files import make_dir

LOCK_FILE = "run.lock"


@dataclasses.dataclass(frozen=True)
class Owner:
    host: str
    pid: int
    started: str  # local time, e.g. 2026-12-01 17:10:00

    @classmethod
    def me(cls) -> Owner:
        return cls(socket.gethostname(), os.getpid(), time.strftime("%Y-%m-%d %H:%M:%S"))

    def describe(self) -> str:
        return f"process {self.pid} on {self.host} (started {self.started})"


@contextlib.contextmanager
def hold(model_dir: Path, note: Callable[[str], None] = print) -> Iterator[None]:
    """Holds `model_dir`'s lock while the block runs; MnistTfError if another live run holds it."""
    path = model_dir / LOCK_FILE
    make_dir(model_dir)
    descriptor, previous = _acquire(path, model_dir)
    if previous:
        note(f"note: {previous.describe()} left this run's lock behind and is no longer running; taking it over")
    try:
        _write(descriptor, Owner.me())
        yield
    finally:
        path.unlink(missing_ok=True)  # before unlocking: a run waiting for this file must find a new one
        os.close(descriptor)  # releases the lock


def _acquire(path: Path, model_dir: Path) -> tuple[int, Owner | None]:
    """An open, locked descriptor of `path`, and the owner a dead run left in it (None: the file was new)."""
    while True:
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise MnistTfError(f"could not write {path}: {e.strerror}") from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            owner = _read(descriptor)
            os.close(descriptor)
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise MnistTfError(
                    f"cannot lock {path} ({e.strerror}): --model_dir needs a local or NFS disk"
                ) from None
            who = owner.describe() if owner else "another process"
            raise MnistTfError(
                f"--model_dir={model_dir} is in use by a live run: {who}; wait for it to finish, stop it "
                "(Ctrl-C saves a checkpoint; rerun to resume), or pass another --model_dir"
            ) from None
        # The owner may have removed the file between our open and our lock: then it locked a file no one else
        # will see. Lock the path's current file instead.
        if _same_file(descriptor, path):
            return descriptor, _read(descriptor)
        os.close(descriptor)


def _same_file(descriptor: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(descriptor), path.stat())
    except FileNotFoundError:
        return False


def _read(descriptor: int) -> Owner | None:
    try:
        raw = os.pread(descriptor, 4096, 0)
        return Owner(**json.loads(raw)) if raw else None
    except (OSError, ValueError, TypeError):
        return None  # a lock file cut short by a crash: its owner is unknown, and gone


def _write(descriptor: int, owner: Owner) -> None:
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, json.dumps(dataclasses.asdict(owner)).encode(), 0)
    os.fsync(descriptor)
