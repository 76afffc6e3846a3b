"""A folder of labelled images as a data set (`--source=folder --data_dir=DIR`): one sub-folder per class.

Two layouts:
  DIR/train/<class>/* and DIR/test/<class>/*   the splits as given (the same classes in both)
  DIR/<class>/*                                 TEST_SHARE of each class held out as the test split, drawn with
                                                SPLIT_SEED (not --seed: every run of a folder tests on the same images)
DIR may also be a zip file of either layout (the draw-a-digit page's download), or of one folder that holds it (a
zipped folder): it is unpacked once, under the cache folder, by its contents' digest, and lines name paths inside it
as DIR/...; an archive of more than MAX_ZIP_BYTES unpacked is refused.

Class names are the sub-folders' names: the digits 0-9 in their order, other names sorted. Every file goes through
`preprocess.preprocess_file`, the image_bytes signature's own code, so the model trains on what it will be sent.
A file that does not preprocess is skipped with one line naming it, and counted. Folders inside a class folder are
read too (their images are the class's); what starts with "." (hidden: `.DS_Store`, `._x.png`, `.git/`) is left out,
counted and said, as is __MACOSX (the resource forks macOS adds to a zip); a link is followed, and said when it
leads out of the folder. The decoded arrays are cached (CACHE_DIR_ENV, default ~/.cache/mnist_tf/folders), keyed by
the folder's path and checked against every file's name, size and modification time: a changed, added or removed
file decodes the folder again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mnist_tf.data import preprocess
from mnist_tf.errors import MnistTfError

CACHE_DIR_ENV = "MNIST_TF_CACHE_DIR"
TEST_SHARE = 0.2
SPLIT_SEED = 0
SPLITS = ("train", "test")
MAX_ZIP_BYTES = 1 << 30
_CACHE_VERSION = 2  # bumped when preprocessing changes what a file decodes to (2: the paper found across the image)


@dataclasses.dataclass(frozen=True)
class Loaded:
    """The images of a folder: uint8 [N, 28, 28, 1] and labels per split, and what it skipped."""

    class_names: tuple[str, ...]
    train: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    skipped: int
    cached: bool  # read from the cache, not decoded


def class_names(directory: str | os.PathLike) -> tuple[str, ...]:
    """The classes of a folder data set, from its sub-folders' names (of train/ when it is split)."""
    root, named = _root(Path(directory))
    with named:
        return _classes_of(root)


def load(directory: str | os.PathLike, note: Callable[[str], None] = print) -> Loaded:
    """Reads, preprocesses (or takes from the cache) and splits the images of `directory`."""
    root, named = _root(Path(directory))
    with named:
        return _load(root, lambda line: note(named.said(line)))


def _classes_of(root: Path) -> tuple[str, ...]:
    return _classes(root / "train" if _is_split(root) else root)


def _load(root: Path, note: Callable[[str], None]) -> Loaded:
    split = _is_split(root)
    names = _classes_of(root)
    if len(names) < 2:  # nothing to tell apart: refused before any image is read
        raise MnistTfError(f"{root}: one class folder ({names[0]}); a classifier needs two or more, one per class")
    if split and _classes(root / "test") != names:
        raise MnistTfError(
            f"{root}: train/ and test/ must have the same class folders, got {', '.join(names)} and "
            f"{', '.join(_classes(root / 'test'))}"
        )
    found = {s: _Found.of(root / s, names) for s in SPLITS} if split else {"all": _Found.of(root, names)}
    for line in _Found.lines(root, list(found.values())):
        note(line)
    files = {part: one.files for part, one in found.items()}
    fingerprint = _fingerprint(root, files)
    cache = _cache_path(root)
    decoded = _read_cache(cache, fingerprint)
    cached = decoded is not None
    if decoded is None:
        decoded = {part: _decode(_part_dir(root, part), part_files) for part, part_files in files.items()}
        _write_cache(cache, fingerprint, decoded, note)
    skipped = [line for arrays in decoded.values() for line in arrays["skipped"]]
    for line in skipped:
        note(line)
    if skipped:
        total = sum(len(part_files) for part_files in files.values())
        note(f"note: skipped {len(skipped):,} of {total:,} files in {root}: not images that preprocess")
    for part, arrays in decoded.items():
        _check_every_class(_part_dir(root, part), names, arrays["labels"])
    if split:
        train, test = ((decoded[s]["images"], decoded[s]["labels"]) for s in SPLITS)
    else:
        train, test = _split(decoded["all"]["images"], decoded["all"]["labels"])
        if not len(test[1]):
            raise MnistTfError(
                f"{root}: too few images to hold out a test split (a class gives one of two or more); add images, "
                "or give train/ and test/ folders"
            )
    return Loaded(names, train, test, len(skipped), cached)


class _Named(contextlib.AbstractContextManager):
    """Lines (notes, and errors raised inside the `with`) that name the folder a zip file was unpacked to name the
    zip file instead: `my_digits.zip/7/a.png`, not a path in the cache."""

    def __init__(self, unpacked: Path | None = None, archive: Path | None = None) -> None:
        self.unpacked, self.archive = unpacked, archive

    def said(self, line: str) -> str:
        return line.replace(str(self.unpacked), str(self.archive)) if self.unpacked else line

    def __exit__(self, kind: type | None, error: BaseException | None, traceback: Any) -> None:
        if isinstance(error, MnistTfError):
            raise MnistTfError(self.said(str(error))) from None


def _root(directory: Path) -> tuple[Path, _Named]:
    """The folder to read, and how lines name it."""
    if directory.is_file() and zipfile.is_zipfile(directory):
        unpacked = _unpacked(directory)
        return _inside_the_one_folder(unpacked), _Named(unpacked, directory)
    if not directory.is_dir():
        raise MnistTfError(f"--source=folder: {directory} is neither a folder nor a zip file")
    return directory, _Named()


def _inside_the_one_folder(unpacked: Path) -> Path:
    """A zipped folder (my_digits/0/..., my_digits/1/...) is read from inside its one folder."""
    entries = [p for p in unpacked.iterdir() if not _left_out(p.name)]
    if len(entries) == 1 and entries[0].is_dir() and any(p.is_dir() for p in entries[0].iterdir()):
        return entries[0]
    return unpacked


def _left_out(name: str) -> bool:
    """Hidden entries (.DS_Store, ._x.png, .git) and macOS's __MACOSX folder of resource forks: never data."""
    return name.startswith(".") or name == "__MACOSX"


def _unpacked(archive: Path) -> Path:
    """The folder a zip file unpacks to, under the cache folder: once per content (zipfile leaves out absolute
    paths and "..", so nothing lands outside it)."""
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()[:16]
    target = _cache_base() / "zips" / digest
    if target.is_dir():
        return target
    try:
        with zipfile.ZipFile(archive) as zipped:
            if sum(member.file_size for member in zipped.infolist()) > MAX_ZIP_BYTES:
                raise MnistTfError(f"{archive}: unpacks to more than {MAX_ZIP_BYTES >> 30} GiB; unpack it yourself")
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=target.parent))
            try:
                zipped.extractall(staging)
                staging.rename(target)
            except FileExistsError:  # another run unpacked it first: the same contents
                pass
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except (zipfile.BadZipFile, OSError) as e:
        raise MnistTfError(f"{archive}: cannot unpack the zip file ({e})") from None
    return target


def _part_dir(root: Path, part: str) -> Path:
    return root if part == "all" else root / part


def _is_split(root: Path) -> bool:
    return all((root / s).is_dir() for s in SPLITS)


def _classes(directory: Path) -> tuple[str, ...]:
    if not directory.is_dir():
        raise MnistTfError(f"{directory}: no such folder")
    names = [p.name for p in directory.iterdir() if p.is_dir() and not _left_out(p.name)]
    if not names:
        raise MnistTfError(f"{directory}: no class folders (expected one sub-folder of images per class)")
    if all(name.isdigit() for name in names):
        return tuple(sorted(names, key=int))
    return tuple(sorted(names))


@dataclasses.dataclass(frozen=True)
class _Found:
    """The files of one folder's class folders, and what was left out or reached outside it."""

    files: list[tuple[str, int]]  # (path relative to the folder, label), in a fixed order
    hidden: list[str]  # what starts with "." inside the class folders (relative paths)
    outside: list[str]  # links that lead out of the folder (relative paths)

    @classmethod
    def of(cls, directory: Path, names: tuple[str, ...]) -> _Found:
        files, outside = [], []
        hidden = sorted(p.name for p in directory.iterdir() if p.is_dir() and _left_out(p.name))  # classes too
        inside = directory.resolve()
        for label, name in enumerate(names):
            for folder, subfolders, file_names in os.walk(directory / name, followlinks=True):
                relative = Path(folder).relative_to(directory)
                hidden += [str(relative / d) for d in subfolders if _left_out(d)]
                subfolders[:] = sorted(d for d in subfolders if not _left_out(d))  # walked in this order
                for file_name in sorted(file_names):
                    path = Path(folder) / file_name
                    if file_name.startswith("."):
                        hidden.append(str(relative / file_name))
                        continue
                    files.append((str(relative / file_name), label))
                    if path.is_symlink() and path.exists() and inside not in path.resolve().parents:
                        outside.append(str(relative / file_name))
        return cls(files, hidden, outside)

    @staticmethod
    def lines(root: Path, found: list[_Found]) -> list[str]:
        """One line for what was left out as hidden, one for the links that lead outside `root`."""
        hidden = [path for one in found for path in one.hidden]
        outside = [path for one in found for path in one.outside]
        lines = []
        if hidden:
            lines.append(
                f"note: left out {len(hidden):,} hidden entries in {_shown(root)} (names starting with '.', and "
                f"__MACOSX): {', '.join(hidden[:3])}{' ...' if len(hidden) > 3 else ''}"
            )
        if outside:
            lines.append(
                f"note: {len(outside):,} files are links to outside {_shown(root)}, read all the same: "
                f"{', '.join(outside[:3])}{' ...' if len(outside) > 3 else ''}"
            )
        return lines


def _fingerprint(root: Path, files: dict[str, list[tuple[str, int]]]) -> str:
    digest = hashlib.sha256(f"{_CACHE_VERSION}".encode())
    for part, part_files in files.items():
        directory = _part_dir(root, part)
        for relative, label in part_files:
            path = directory / relative
            stat = path.stat() if path.exists() else path.lstat()  # a broken link: skipped, and counted, later
            line = f"{part}/{relative}\0{label}\0{stat.st_size}\0{stat.st_mtime_ns}\n"
            digest.update(line.encode(errors="surrogateescape"))  # a file name's bytes, UTF-8 or not
    return digest.hexdigest()


def _shown(path: Path) -> str:
    """`path` as a line can print it: bytes that are not UTF-8 (a file name can hold any) as U+FFFD."""
    return os.fsencode(path).decode(errors="replace")


def _decode(directory: Path, files: list[tuple[str, int]]) -> dict[str, np.ndarray]:
    """The images and labels of `files` that preprocess, and one line per file that does not."""
    images, labels, skipped = [], [], []
    for relative, label in files:
        path = directory / relative
        try:
            images.append(preprocess.preprocess_file(path.read_bytes()))
            labels.append(label)
        except (MnistTfError, OSError) as e:
            skipped.append(f"skipped {_shown(path)}: {e.strerror if isinstance(e, OSError) else e}")
    return {
        "images": np.array(images, np.uint8).reshape(-1, 28, 28, 1),
        "labels": np.array(labels, np.int64),
        "skipped": np.array(skipped, dtype=str),
    }


def _check_every_class(directory: Path, names: tuple[str, ...], labels: np.ndarray) -> None:
    if not len(labels):
        raise MnistTfError(f"{directory}: no usable image (PNG, JPEG, GIF or BMP) in any class folder")
    counts = np.bincount(labels, minlength=len(names))
    empty = [name for name, count in zip(names, counts, strict=True) if not count]
    if empty:
        raise MnistTfError(f"{directory}: no usable image in class folder {', '.join(empty)}")


def _split(images: np.ndarray, labels: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """TEST_SHARE of each class (at least one image, when it has two) to the test split."""
    rng = np.random.default_rng(SPLIT_SEED)
    test = np.zeros(len(labels), bool)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        count = round(TEST_SHARE * len(members)) or (1 if len(members) > 1 else 0)
        test[members[:count]] = True
    return (images[~test], labels[~test]), (images[test], labels[test])


def _cache_base() -> Path:
    return Path(os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "mnist_tf" / "folders")


def _cache_path(root: Path) -> Path:
    return _cache_base() / f"{hashlib.sha256(os.fsencode(root.resolve())).hexdigest()[:16]}.npz"


def _read_cache(path: Path, fingerprint: str) -> dict[str, dict[str, np.ndarray]] | None:
    try:
        with np.load(path) as cache:
            if str(cache["fingerprint"]) != fingerprint:
                return None
            parts = {key.partition("/")[0] for key in cache.files if "/" in key}
            return {part: {k: cache[f"{part}/{k}"] for k in ("images", "labels", "skipped")} for part in parts}
    except (OSError, KeyError, ValueError):  # none yet, or unreadable: decode again
        return None


def _write_cache(
    path: Path, fingerprint: str, decoded: dict[str, dict[str, np.ndarray]], note: Callable[[str], None]
) -> None:
    """Writes the cache atomically; a cache that cannot be written costs a note, never the run."""
    arrays = {f"{part}/{key}": value for part, values in decoded.items() for key, value in values.items()}
    buffer = io.BytesIO()
    np.savez(buffer, fingerprint=np.array(fingerprint), **arrays)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_suffix(f".tmp{os.getpid()}")
        staging.write_bytes(buffer.getvalue())
        staging.replace(path)
    except OSError as e:
        note(f"note: could not cache the decoded images in {path} ({e.strerror}); the next run decodes them again")
