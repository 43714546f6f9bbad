"""Writes synthetic MovieLens-like data (movierec.data.synth) as the ml-csv or ml-dat layout.

Test data for scale and plumbing, not a benchmark of accuracy (see movierec.data.synth).

- ml-csv (as ML-20M/25M/32M): `movies.csv` (`movieId,title,genres`, CSV-quoted where a title has a
  comma, UTF-8) and `ratings.csv` (`userId,movieId,rating,timestamp`, half stars written "3.5", "4.0");
  the layout has no users file.
- ml-dat (as ML-1M): `movies.dat`, `users.dat` (`UserID::Gender::Age::Occupation::Zip-code`, ML-1M's
  age group and occupation codes) and `ratings.dat`, `::`-separated, ISO-8859-1, whole stars.

Rows are grouped by user and in time order within a user (MovieLens' files are grouped by user too).
Every file streams chunk by chunk into a temporary name in the output folder; only when all are complete
do they take their final names, the rating file (which marks the layout) last, so a failed run never
leaves a partial file, nor a dataset without its ratings, under the final names. Local paths and URIs
(gs://…, through movierec.storage) alike.
"""

from __future__ import annotations

import csv
import io
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from movierec import storage
from movierec.data._lines import LATIN1, UTF8
from movierec.data.layouts import LAYOUTS, NETFLIX_RATINGS
from movierec.data.synth import (
    CSV_GENRE_NAMES,
    GENRES,
    EventChunk,
    SynthConfig,
    SyntheticMovieLens,
    rating_levels,
)

LAYOUT_FILES: dict[str, tuple[str, ...]] = {
    "ml-csv": ("movies.csv", "ratings.csv"),  # the rating file last: it is renamed into place last
    "ml-dat": ("movies.dat", "users.dat", "ratings.dat"),
}
CSV_RATINGS_HEADER = "userId,movieId,rating,timestamp"
CSV_MOVIES_HEADER = "movieId,title,genres"
USERS_PER_WRITE = 100_000


@dataclass(frozen=True)
class SynthResult:
    """What `write_synthetic` wrote: the folder, its files (final paths, in writing order) and sizes."""

    folder: str | Path
    files: tuple[str | Path, ...]
    config: SynthConfig  # resolved: users and items filled in
    events: int
    users: int
    items: int


def _digits(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative integers as right-aligned ASCII digits (rows × width) and the mask of the digits
    that are written (no leading zeros)."""
    values = np.asarray(values, dtype=np.int64)
    width = len(str(int(values.max()))) if len(values) else 1
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    digits = ((values[:, None] // powers) % 10 + 48).astype(np.uint8)
    length = 1 + (values[:, None] >= powers[None, :-1]).sum(axis=1)
    return digits, np.arange(width)[None, :] >= (width - length)[:, None]


def _lookup(codes: np.ndarray, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """codes → right-aligned ASCII bytes of texts[code], and the mask of the bytes that are written."""
    width = max(len(t) for t in texts)
    table = np.zeros((len(texts), width), dtype=np.uint8)
    mask = np.zeros((len(texts), width), dtype=bool)
    for k, text in enumerate(texts):
        raw = text.encode("ascii")
        table[k, width - len(raw) :] = np.frombuffer(raw, dtype=np.uint8)
        mask[k, width - len(raw) :] = True
    return table[codes], mask[codes]


def format_rating_rows(chunk: EventChunk, separator: str, rating_texts: list[str]) -> bytes:
    """`user SEP item SEP rating SEP timestamp` lines of a chunk, built with numpy (no Python loop per
    row): every field as a byte matrix with a mask of its written bytes, joined and compressed."""
    n = len(chunk)
    if n == 0:
        return b""
    sep = np.frombuffer(separator.encode("ascii"), dtype=np.uint8)
    sep_bytes = np.broadcast_to(sep, (n, len(sep)))
    sep_mask = np.ones((n, len(sep)), dtype=bool)
    newline = np.full((n, 1), 10, dtype=np.uint8)
    fields = [
        _digits(chunk.user),
        (sep_bytes, sep_mask),
        _digits(chunk.item),
        (sep_bytes, sep_mask),
        _lookup(chunk.rating_code, rating_texts),
        (sep_bytes, sep_mask),
        _digits(chunk.timestamp),
        (newline, np.ones((n, 1), dtype=bool)),
    ]
    matrix = np.concatenate([f[0] for f in fields], axis=1)
    mask = np.concatenate([f[1] for f in fields], axis=1)
    return matrix[mask].tobytes()


def _rating_texts(layout: str) -> list[str]:
    levels = rating_levels(layout)
    return [f"{v:.0f}" for v in levels] if layout == "ml-dat" else [f"{v:.1f}" for v in levels]


def _movies_csv(generator: SyntheticMovieLens) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    buffer.write(CSV_MOVIES_HEADER + "\n")
    catalogue = generator.catalogue
    for item_id, title, genres in zip(
        catalogue.ids.tolist(), catalogue.titles, catalogue.genres, strict=True
    ):
        names = "|".join(CSV_GENRE_NAMES.get(GENRES[g], GENRES[g]) for g in genres)
        writer.writerow([item_id, title, names])
    return buffer.getvalue().encode(UTF8)


def _movies_dat(generator: SyntheticMovieLens) -> bytes:
    catalogue = generator.catalogue
    lines = (
        f"{item_id}::{title}::{'|'.join(GENRES[g] for g in genres)}\n"
        for item_id, title, genres in zip(
            catalogue.ids.tolist(), catalogue.titles, catalogue.genres, strict=True
        )
    )
    return "".join(lines).encode(LATIN1)


def _users_dat(generator: SyntheticMovieLens) -> Iterator[bytes]:
    users = generator.users
    for start in range(0, len(users.events), USERS_PER_WRITE):
        part = slice(start, start + USERS_PER_WRITE)
        rows = zip(
            users.ids[part].tolist(),
            users.gender[part].tolist(),
            users.age_group[part].tolist(),
            users.occupation[part].tolist(),
            users.zip_code[part].tolist(),
            strict=True,
        )
        text = "".join(
            f"{uid}::{gender}::{age}::{occ}::{zip_code:05d}\n" for uid, gender, age, occ, zip_code in rows
        )
        yield text.encode(LATIN1)


def _write_ratings(handle, generator: SyntheticMovieLens, progress: Callable[[int], None] | None) -> None:
    layout = generator.config.layout
    if layout == "ml-csv":
        handle.write((CSV_RATINGS_HEADER + "\n").encode(UTF8))
    separator = "," if layout == "ml-csv" else "::"
    texts = _rating_texts(layout)
    written = 0
    for chunk in generator.chunks():
        handle.write(format_rating_rows(chunk, separator, texts))
        written += len(chunk)
        if progress is not None:
            progress(written)


def _rename(source: str | Path, destination: str | Path) -> None:
    """Replaces `destination` by `source` (an atomic rename on a local filesystem)."""
    if storage.is_uri(source):
        import tensorflow as tf  # only for URIs, as in movierec.storage

        tf.io.gfile.rename(os.fspath(source), os.fspath(destination), overwrite=True)
    else:
        os.replace(source, destination)


def _remove(path: str | Path) -> None:
    try:
        if storage.is_uri(path):
            import tensorflow as tf

            if tf.io.gfile.exists(os.fspath(path)):
                tf.io.gfile.remove(os.fspath(path))
        elif os.path.lexists(path):
            os.remove(path)
    except Exception:  # best effort: the original error matters more than a leftover temporary file
        pass


def _check_folder(folder: str | Path, layout: str, overwrite: bool) -> None:
    """Refuses to replace existing files (unless `overwrite`) or to mix two layouts in one folder
    (the loader could then not tell which one is meant)."""
    if not storage.exists(folder):
        return
    if not storage.isdir(folder):
        raise FileExistsError(f"out: {folder} is a file, not a folder")
    existing = [name for name in LAYOUT_FILES[layout] if storage.exists(storage.join(folder, name))]
    if existing and not overwrite:
        raise FileExistsError(
            f"out: {folder} already holds {', '.join(existing)} (pass overwrite=True / --force to replace)"
        )
    for other, spec in LAYOUTS.items():
        marker = spec.marker
        if other == layout or marker == NETFLIX_RATINGS or "*" in marker:
            continue
        if storage.isfile(storage.join(folder, marker)):
            raise FileExistsError(
                f"out: {folder} already holds {marker} of the {other} layout; a folder with two layouts "
                "cannot be read back: choose another folder"
            )


def write_synthetic(
    out: str | os.PathLike[str],
    config: SynthConfig,
    *,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> SynthResult:
    """Generates `config`'s synthetic dataset and writes it into the folder `out` as `config.layout`.

    Test data for scale and plumbing, not a benchmark of accuracy. Memory stays bounded whatever
    `config.events` (one chunk of users at a time); the same config gives byte-identical files.

    Args:
        out: the output folder (local path or URI); created if missing.
        config: what to generate (movierec.data.synth.SynthConfig); checked first (ValueError naming
            the argument).
        overwrite: replace the layout's files if `out` already holds them (else FileExistsError).
        progress: called with the number of ratings written so far after every chunk.

    Returns:
        SynthResult with the final file paths and the sizes.

    Example:
        >>> result = write_synthetic("/tmp/synth-1m", SynthConfig(events=1_000_000, layout="ml-dat"))
        >>> load_dataset(result.folder).report.total_rejected
        0
    """
    config = config.resolved()
    folder = storage.as_path(out)
    _check_folder(folder, config.layout, overwrite)
    storage.makedirs(folder)
    generator = SyntheticMovieLens(config)
    token = uuid.uuid4().hex[:12]
    names = LAYOUT_FILES[config.layout]
    temporary = {name: storage.join(folder, f".{name}.tmp-{token}") for name in names}
    try:
        for name in names:
            with storage.open_file(temporary[name], "wb") as handle:
                if name == "movies.csv":
                    handle.write(_movies_csv(generator))
                elif name == "movies.dat":
                    handle.write(_movies_dat(generator))
                elif name == "users.dat":
                    for part in _users_dat(generator):
                        handle.write(part)
                else:
                    _write_ratings(handle, generator, progress)
        for name in names:  # in order: the rating file, the layout's marker, comes last
            _rename(temporary[name], storage.join(folder, name))
    finally:
        for path in temporary.values():
            _remove(path)
    return SynthResult(
        folder=folder,
        files=tuple(storage.join(folder, name) for name in names),
        config=config,
        events=config.events,
        users=config.users,
        items=config.items,
    )
