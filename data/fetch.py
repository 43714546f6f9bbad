"""Finding datasets on disk and downloading the public MovieLens ones.

A download is verified against the publisher's MD5 file and installed with a rename, so a failed or
interrupted download never leaves a half dataset where a good one is expected, and never damages a
copy that was already there.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from movierec import storage
from movierec.data.errors import DataError
from movierec.data.layouts import LAYOUTS, detect_layout, missing_files

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens"
_CHUNK = 1 << 20
_TIMEOUT = 60


@dataclass(frozen=True)
class KnownDataset:
    """A dataset movierec can download: its zip as GroupLens publishes it, and the folder inside."""

    name: str
    zip_name: str
    folder: str
    layout: str
    title: str

    @property
    def files_text(self) -> str:
        spec = LAYOUTS[self.layout]
        text = ", ".join(spec.required)
        return text + (f" (optionally {', '.join(spec.optional)})" if spec.optional else "")


KNOWN_DATASETS: dict[str, KnownDataset] = {
    d.name: d
    for d in (
        KnownDataset("ml-100k", "ml-100k.zip", "ml-100k", "ml-100k", "MovieLens 100K"),
        KnownDataset("ml-1m", "ml-1m.zip", "ml-1m", "ml-dat", "MovieLens 1M"),
        KnownDataset("ml-10m", "ml-10m.zip", "ml-10M100K", "ml-dat", "MovieLens 10M"),
        KnownDataset("ml-20m", "ml-20m.zip", "ml-20m", "ml-csv", "MovieLens 20M"),
        KnownDataset("ml-25m", "ml-25m.zip", "ml-25m", "ml-csv", "MovieLens 25M"),
        KnownDataset("ml-32m", "ml-32m.zip", "ml-32m", "ml-csv", "MovieLens 32M"),
        KnownDataset(
            "ml-latest-small", "ml-latest-small.zip", "ml-latest-small", "ml-csv", "MovieLens latest small"
        ),
        KnownDataset("ml-latest", "ml-latest.zip", "ml-latest", "ml-csv", "MovieLens latest (full)"),
    )
}


def default_data_dir() -> Path:
    """Where datasets live: $MOVIEREC_DATA_DIR, else ~/.cache/movierec/data."""
    env = os.environ.get("MOVIEREC_DATA_DIR")
    return Path(env).expanduser() if env else Path("~/.cache/movierec/data").expanduser()


def _holds(folder: Path, layout: str | None = None) -> bool:
    """Whether `folder` holds a complete dataset (of `layout`, if given): the cheap check, no parsing."""
    if not folder.is_dir():
        return False
    try:
        found = detect_layout(folder)
    except DataError:
        return False
    return (layout is None or found == layout) and not missing_files(folder, found)


def _known(name: str) -> KnownDataset:
    try:
        return KNOWN_DATASETS[name]
    except KeyError:
        raise DataError(
            None,
            None,
            f"unknown dataset {name!r}; movierec can fetch: {', '.join(KNOWN_DATASETS)} "
            "(other data, e.g. the Netflix Prize files, must be put in a folder by hand)",
        ) from None


def _by_hand(known: KnownDataset, dest: Path, url: str) -> str:
    return (
        f"To install it by hand: on a machine with internet access download {url} "
        f"(and {url}.md5 to check it), "
        f"unzip it, and put the files of its {known.folder}/ folder ({known.files_text}) in {dest}"
    )


def resolve_dataset(name_or_path: str | Path, data_dir: str | Path | None = None) -> Path | str:
    """The folder to load for a dataset name ("ml-1m") or a folder path.

    A URI (gs://…) or an existing folder is used as it is. Otherwise `<data_dir>/<name>` (or the
    folder name the publisher's zip unpacks to, e.g. ml-10M100K) if it holds the dataset's files.
    Otherwise DataError saying exactly where to put which files, and the command that downloads them.
    """
    if storage.is_uri(name_or_path):  # gs://… (a pod's data): read through tf.io.gfile, never a Path
        return os.fspath(name_or_path)
    as_path = Path(name_or_path).expanduser()
    if as_path.is_dir():
        return as_path
    name = str(name_or_path)
    base = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    known = KNOWN_DATASETS.get(name)
    candidates = [base / name]
    if known and known.folder != name:
        candidates.append(base / known.folder)
    for folder in candidates:
        if _holds(folder, known.layout if known else None):
            return folder
    dest = base / name
    if known is None:
        if isinstance(name_or_path, Path) or os.sep in name or name.startswith((".", "~")):
            raise DataError(as_path, None, "dataset folder does not exist")
        raise DataError(
            dest,
            None,
            f"{name!r} is neither an existing folder nor a dataset movierec knows "
            f"({', '.join(KNOWN_DATASETS)}); to use your own data put its files in {dest}",
        )
    if dest.is_dir():
        missing = missing_files(dest, known.layout)
        state = f"{dest} exists but lacks {', '.join(missing)}" if missing else f"{dest} is incomplete"
    else:
        state = f"{dest} does not exist"
    raise DataError(
        dest,
        None,
        f"dataset {name} ({known.title}) is not installed: {state}. "
        f"Run `movierec data fetch {name}` to download it, or put its files ({known.files_text}) in {dest} "
        f"(they come in {GROUPLENS_URL}/{known.zip_name}).",
    )


class _HTTPStatusError(DataError):
    """The server was reached but refused the file (404, 500, ...)."""


def _open(url: str, known: KnownDataset, dest: Path, what: str):
    try:
        return urllib.request.urlopen(url, timeout=_TIMEOUT)
    except urllib.error.HTTPError as exc:
        raise _HTTPStatusError(
            url, None, f"the server answered HTTP {exc.code} {exc.reason} for {what}"
        ) from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise DataError(
            url,
            None,
            f"could not reach {url} ({reason}): this machine may be offline or cut off from it. "
            f"{_by_hand(known, dest, f'{GROUPLENS_URL}/{known.zip_name}')}",
        ) from exc


def _publisher_md5(url: str, known: KnownDataset, dest: Path) -> str:
    try:
        with _open(url, known, dest, "the publisher's checksum file") as response:
            try:
                text = response.read(4096).decode("ascii", errors="replace")
            except (OSError, http.client.HTTPException) as exc:
                raise _HTTPStatusError(url, None, f"reading it failed ({exc})") from exc
    except _HTTPStatusError as exc:  # reachable but no checksum; an unreachable server is reported as such
        raise DataError(
            url,
            None,
            f"cannot check the download: {exc.reason}. Refusing to install an unverified download; "
            "pass verify=False to skip the check",
        ) from exc
    match = re.search(r"\b[0-9a-fA-F]{32}\b", text)
    if not match:
        raise DataError(url, None, f"no MD5 checksum found in the publisher's checksum file: {text[:200]!r}")
    return match.group(0).lower()


def _download(url: str, target: Path, known: KnownDataset, dest: Path, progress) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with _open(url, known, dest, known.zip_name) as response, target.open("wb") as out:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        done = 0
        if progress:
            progress(0, total)
        try:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
        except (OSError, http.client.HTTPException) as exc:
            raise DataError(
                url, None, f"the download broke off after {done} bytes ({exc}); nothing was installed"
            ) from exc
        if total is not None and done != total:
            raise DataError(
                url, None, f"the download stopped at {done} of {total} bytes; nothing was installed"
            )
    return digest.hexdigest()


def _extract(zip_path: Path, into: Path, url: str) -> Path:
    """Unzip (refusing members that would land outside `into`); the dataset folder inside."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            root = into.resolve()
            for member in archive.namelist():
                if not (root / member).resolve().is_relative_to(root):
                    raise DataError(url, None, f"the zip holds a path outside its folder: {member!r}")
            archive.extractall(into)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise DataError(
            url, None, f"the downloaded file is not a readable zip ({exc}); nothing was installed"
        ) from exc
    tops = [p for p in into.iterdir() if p.name != "__MACOSX"]
    return tops[0] if len(tops) == 1 and tops[0].is_dir() else into


def fetch_dataset(
    name: str,
    data_dir: str | Path | None = None,
    *,
    base_url: str | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    verify: bool = True,
    force: bool = False,
) -> Path:
    """Download the public dataset `name` into `<data_dir>/<name>` and return that folder.

    Already present and complete: returned at once, nothing downloaded (unless `force`). Otherwise
    `<base_url>/<zip>` is downloaded (base_url: argument, else $MOVIEREC_DATA_URL, else GroupLens),
    `progress(bytes_done, total_or_None)` is called as bytes arrive, the zip is checked against the
    publisher's `<zip>.md5` (unless verify=False), unpacked in a temporary folder inside data_dir and
    renamed into place. Any failure raises DataError and leaves data_dir as it was.
    """
    known = _known(name)
    base_dir = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    dest = base_dir / name
    if not force and _holds(dest, known.layout):
        return dest
    base = (base_url or os.environ.get("MOVIEREC_DATA_URL") or GROUPLENS_URL).rstrip("/")
    url = f"{base}/{known.zip_name}"
    try:
        base_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(base_dir, None, f"cannot create the data folder: {exc}") from exc
    work = Path(tempfile.mkdtemp(prefix=f".{name}.partial-", dir=base_dir))
    try:
        expected = _publisher_md5(f"{url}.md5", known, dest) if verify else None
        zip_path = work / known.zip_name
        actual = _download(url, zip_path, known, dest, progress)
        if expected is not None and actual != expected:
            raise DataError(
                url,
                None,
                f"checksum mismatch: the download has MD5 {actual} but {known.zip_name}.md5 says {expected} "
                "(corrupted or truncated download); nothing was installed, try again",
            )
        unpacked = _extract(zip_path, work / "unpacked", url)
        zip_path.unlink()
        missing = missing_files(unpacked, known.layout)
        if missing:
            raise DataError(url, None, f"the zip lacks {', '.join(missing)}; nothing was installed")
        if dest.exists():  # an incomplete or forced copy: swap, and put it back if the swap fails
            old = work / "previous"
            dest.rename(old)
            try:
                unpacked.rename(dest)
            except OSError:
                old.rename(dest)
                raise
        else:
            unpacked.rename(dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dest
