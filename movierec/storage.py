"""File I/O that works on local paths and on URIs alike (gs://, s3://, hdfs://, ram://, …).

Inside a Kubeflow or Vertex AI pod every artifact is a `gs://` URI, and `pathlib` silently turns
"gs://bucket/x" into the local path "gs:/bucket/x". So every artifact and data file goes through
these functions: a URI through `tf.io.gfile` (TensorFlow's filesystems: GCS, S3 and HDFS plugins,
the in-memory `ram://` used by the tests), a local path through the standard library.

TensorFlow is imported only when a URI is used: `movierec.data` reads local files without it.
Failures of either kind raise OSError (FileNotFoundError when the file is missing), so callers
handle one exception type whatever the filesystem.
"""

from __future__ import annotations

import errno
import io
import os
import posixpath
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Union

import numpy as np

StrPath = Union[str, "os.PathLike[str]"]


def is_uri(path: StrPath) -> bool:
    """True for "scheme://…" paths, which only tf.io.gfile can open."""
    return "://" in os.fspath(path)


def as_path(path: StrPath) -> str | Path:
    """A local path as a Path (what the data layer has always returned), a URI kept as a string."""
    return os.fspath(path) if is_uri(path) else Path(path)


def join(base: StrPath, *parts: str) -> str | Path:
    """`base / part / …`, keeping a URI a string (posix separators) and a local path a Path."""
    if is_uri(base):
        return posixpath.join(os.fspath(base), *parts)
    return Path(base).joinpath(*parts)


def name(path: StrPath) -> str:
    """The last component ("u.data" of gs://b/ml-100k/u.data; "ml-100k" of gs://b/ml-100k/)."""
    return posixpath.basename(os.fspath(path).rstrip("/")) if is_uri(path) else Path(path).name


def _gfile():
    import tensorflow as tf  # only here: local paths never load TensorFlow

    return tf.io.gfile


@contextmanager
def _os_errors(path: StrPath) -> Iterator[None]:
    """tf.io.gfile raises tf.errors.OpError, which is not an OSError: translate it."""
    import tensorflow as tf

    try:
        yield
    except tf.errors.NotFoundError as exc:
        raise FileNotFoundError(errno.ENOENT, exc.message, os.fspath(path)) from exc
    except tf.errors.OpError as exc:
        raise OSError(errno.EIO, exc.message, os.fspath(path)) from exc


def exists(path: StrPath) -> bool:
    if is_uri(path):
        with _os_errors(path):
            return _gfile().exists(os.fspath(path))
    return os.path.exists(path)


def isdir(path: StrPath) -> bool:
    if is_uri(path):
        with _os_errors(path):
            return _gfile().isdir(os.fspath(path))
    return os.path.isdir(path)


def isfile(path: StrPath) -> bool:
    if is_uri(path):
        with _os_errors(path):
            gfile = _gfile()
            return gfile.exists(os.fspath(path)) and not gfile.isdir(os.fspath(path))
    return os.path.isfile(path)


def listdir(path: StrPath) -> list[str]:
    """Names of the entries of a folder, sorted (gfile marks sub-folders with a trailing "/": removed)."""
    if is_uri(path):
        with _os_errors(path):
            return sorted(entry.rstrip("/") for entry in _gfile().listdir(os.fspath(path)))
    return sorted(os.listdir(path))


def makedirs(path: StrPath) -> None:
    if is_uri(path):
        with _os_errors(path):
            _gfile().makedirs(os.fspath(path))
    else:
        os.makedirs(path, exist_ok=True)


@contextmanager
def open_file(path: StrPath, mode: str = "rb") -> Iterator[IO]:
    """`open(path, mode)` on any filesystem (for streaming reads and writes)."""
    if is_uri(path):
        with _os_errors(path), _gfile().GFile(os.fspath(path), mode) as handle:
            yield handle
    else:
        with open(path, mode) as handle:
            yield handle


def read_bytes(path: StrPath) -> bytes:
    with open_file(path, "rb") as handle:
        return handle.read()


def write_bytes(path: StrPath, data: bytes) -> None:
    with open_file(path, "wb") as handle:
        handle.write(data)


def read_text(path: StrPath, encoding: str = "utf-8") -> str:
    return read_bytes(path).decode(encoding)


def write_text(path: StrPath, text: str, encoding: str = "utf-8") -> None:
    write_bytes(path, text.encode(encoding))


def save_npz(path: StrPath, **arrays: np.ndarray) -> None:
    """`np.savez` to any filesystem (numpy itself only writes local files)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_bytes(path, buffer.getvalue())


def load_npz(path: StrPath) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(read_bytes(path))) as arrays:
        return dict(arrays)


def copy(source: StrPath, destination: StrPath) -> None:
    """Copies one file, replacing `destination`; either side may be local or a URI."""
    if is_uri(source) or is_uri(destination):
        with _os_errors(source):
            _gfile().copy(os.fspath(source), os.fspath(destination), overwrite=True)
    else:
        shutil.copyfile(source, destination)


def files_below(folder: StrPath) -> list[str]:
    """Every file under `folder`, recursively, as sorted posix paths relative to it."""
    if is_uri(folder):
        root = os.fspath(folder).rstrip("/")
        found = []
        with _os_errors(folder):
            for directory, _, names in _gfile().walk(root):
                relative = directory.rstrip("/")[len(root) :].lstrip("/")
                found.extend(posixpath.join(relative, n) if relative else n for n in names)
        return sorted(found)
    base = Path(folder)
    return sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())


def remove_tree(path: StrPath) -> None:
    """Deletes a folder and everything below it (nothing happens when it does not exist)."""
    if is_uri(path):
        with _os_errors(path):
            if _gfile().exists(os.fspath(path)):
                _gfile().rmtree(os.fspath(path))
    else:
        shutil.rmtree(path, ignore_errors=True)


def publish_folder(staging: StrPath, destination: StrPath, *, last: str | None = None) -> None:
    """Puts the finished folder `staging` at `destination`, replacing any folder there.

    Local: renames (the old folder is first renamed aside, then deleted), so a reader sees the old
    folder or the new one, never a mix, and a crash never leaves half a folder under the final name.
    URIs: object stores have no folder rename (GCS renames object by object; TensorFlow's ram://
    renames a folder's entry and loses its files), so the files are renamed one by one into
    `destination`, the file named `last` at the end: a reader that waits for it sees complete data.
    """
    if not is_uri(staging) and not is_uri(destination):
        aside = None
        if os.path.lexists(destination):
            aside = f"{os.fspath(destination)}.old-{os.getpid()}"
            os.rename(destination, aside)
        os.rename(staging, destination)
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
        return
    remove_tree(destination)
    makedirs(destination)
    names = files_below(staging)
    names.sort(key=lambda n: n == last)  # stable: `last` moves after every other file
    with _os_errors(staging):
        for relative in names:
            target = join(destination, *relative.split("/"))
            if "/" in relative:
                _gfile().makedirs(posixpath.dirname(os.fspath(target)))
            _gfile().rename(os.fspath(join(staging, *relative.split("/"))), os.fspath(target), overwrite=True)
    remove_tree(staging)


def write_atomically(path: StrPath, data: bytes) -> None:
    """Writes `data` under a temporary name next to `path`, then renames it into place, so a crash
    leaves the old file or the new one, never half of one (local paths and URIs alike).

    Args:
        path: the final file (its folder must exist).
        data: the bytes.
    """
    temporary = f"{os.fspath(path)}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    write_bytes(temporary, data)
    if is_uri(path):
        _gfile().rename(temporary, os.fspath(path), overwrite=True)
    else:
        os.replace(temporary, path)
