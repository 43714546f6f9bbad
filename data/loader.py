"""load_dataset: any supported layout in, the canonical `Dataset` out, every bad row accounted for."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from movierec import storage
from movierec.data._lines import LATIN1, UTF8, Lines, read_lines
from movierec.data._ratings import Ratings, RatingScale, parse_netflix_file, parse_rating_file
from movierec.data._sessions import SESSION_ID, integer_times, parse_session_file, time_unit
from movierec.data._tables import (
    Item,
    User,
    parse_csv_movies,
    parse_dat_movies,
    parse_dat_users,
    parse_ml100k_items,
    parse_ml100k_users,
    parse_netflix_titles,
    read_genres,
)
from movierec.data.errors import DataError
from movierec.data.layouts import (
    LAYOUTS,
    detect_layout,
    given_split_candidates,
    given_split_files,
    layout_spec,
    missing_files,
    netflix_rating_files,
)
from movierec.data.report import MAX_EXAMPLES, FileReport, LoadReport
from movierec.data.schema import (
    GIVEN_SPLIT,
    GIVEN_SPLIT_VALUES,
    INTERACTION_COLUMNS,
    ITEM_COLUMNS,
    SESSION_IDS,
    USER_COLUMNS,
    Dataset,
)

log = logging.getLogger(__name__)

DUPLICATE = "duplicate (user_id, item_id, timestamp)"


@dataclass
class _RatingPart:
    report: FileReport
    lines: Lines
    ratings: Ratings
    role: str | None = None  # session-tsv: the given split this file holds (train/validation/test)


@dataclass(frozen=True)
class RatingFile:
    """How `load_dataset` parses one rating file, for readers that parse it in pieces elsewhere
    (movierec.data.beam_io): `kind` "delimited" (`parse_rating_file` with `sep`, `header`, `sep_name`)
    or "netflix" (`parse_netflix_file`, whose `MovieID:` blocks span lines: read whole)."""

    path: str | Path
    name: str
    encoding: str
    kind: str
    scale: RatingScale
    sep: bytes = b""
    header: str | None = None
    sep_name: str = ""


@dataclass
class _Raw:
    """What a layout reader found, before the checks that span files.

    With `plan_only`, the rating files are not read: each is listed in `rating_files` (with its empty
    report in `report`, in reading order) for a reader that parses them in parallel.
    """

    folder: str | Path  # a local Path or a URI string (see movierec.storage)
    report: LoadReport
    parts: list[_RatingPart] = field(default_factory=list)
    items: list[Item] | None = None
    items_name: str | None = None
    users: list[User] | None = None
    users_name: str | None = None
    files: list[str | Path] = field(default_factory=list)
    time_unit: str = "s"
    session_ids: bool = False  # the user ids are session ids (session-tsv files with SessionId)
    plan_only: bool = False
    rating_files: list[RatingFile] = field(default_factory=list)

    def open(self, name: str, encoding: str) -> tuple[Lines, FileReport]:
        path = storage.join(self.folder, name)
        self.files.append(path)
        return read_lines(path, name, encoding), self.report.add_file(path, name)

    def ratings(
        self, name: str, encoding: str, sep: bytes, header: str | None, layout: str, sep_name: str
    ) -> None:
        scale = RatingScale(*LAYOUTS[layout].rating_range)
        if self.plan_only:
            path = storage.join(self.folder, name)
            self.files.append(path)
            self.report.add_file(path, name)
            self.rating_files.append(
                RatingFile(path, name, encoding, "delimited", scale, sep, header, sep_name)
            )
            return
        lines, report = self.open(name, encoding)
        ratings = parse_rating_file(lines, report, sep, header, scale, sep_name)
        self.parts.append(_RatingPart(report, lines, ratings))

    def netflix_ratings(self, name: str, scale: RatingScale) -> None:
        if self.plan_only:
            path = storage.join(self.folder, name)
            self.files.append(path)
            self.report.add_file(path, name)
            self.rating_files.append(RatingFile(path, name, LATIN1, "netflix", scale))
            return
        lines, report = self.open(name, LATIN1)
        self.parts.append(_RatingPart(report, lines, parse_netflix_file(lines, report, scale)))


def _read_ml100k(raw: _Raw) -> None:
    lines, report = raw.open("u.genre", LATIN1)
    genres = read_genres(lines)
    report.rows_read = report.rows_accepted = len(genres)
    lines, report = raw.open("u.item", LATIN1)
    raw.items, raw.items_name = parse_ml100k_items(lines, report, genres), "u.item"
    if storage.isfile(storage.join(raw.folder, "u.user")):
        lines, report = raw.open("u.user", LATIN1)
        raw.users, raw.users_name = parse_ml100k_users(lines, report), "u.user"
    raw.ratings("u.data", LATIN1, b"\t", None, "ml-100k", "tab")


def _read_ml_dat(raw: _Raw) -> None:
    lines, report = raw.open("movies.dat", LATIN1)
    raw.items, raw.items_name = parse_dat_movies(lines, report), "movies.dat"
    if storage.isfile(storage.join(raw.folder, "users.dat")):
        lines, report = raw.open("users.dat", LATIN1)
        raw.users, raw.users_name = parse_dat_users(lines, report), "users.dat"
    raw.ratings("ratings.dat", LATIN1, b"::", None, "ml-dat", "'::'")


def _read_ml_csv(raw: _Raw) -> None:
    lines, report = raw.open("movies.csv", UTF8)
    raw.items, raw.items_name = parse_csv_movies(lines, report), "movies.csv"
    raw.ratings("ratings.csv", UTF8, b",", "userId,movieId,rating,timestamp", "ml-csv", "comma")


def _read_netflix(raw: _Raw) -> None:
    lines, report = raw.open("movie_titles.csv", LATIN1)
    raw.items, raw.items_name = parse_netflix_titles(lines, report), "movie_titles.csv"
    scale = RatingScale(*LAYOUTS["netflix"].rating_range)
    for path in netflix_rating_files(raw.folder):
        raw.netflix_ratings(_relative(path, raw.folder), scale)


def _read_session_tsv(raw: _Raw) -> None:
    """The train, optional validation and test files, in that order (a duplicate is kept where it
    first appears, so training keeps an event that a test file repeats)."""
    files = given_split_files(raw.folder)
    scale = RatingScale(*LAYOUTS["session-tsv"].rating_range)
    opened, parsed = [], []
    for role in GIVEN_SPLIT_VALUES:
        if role in files:
            lines, report = raw.open(files[role], UTF8)
            opened.append((role, lines, report))
            parsed.append(parse_session_file(lines, report, scale))
    kinds = {rows.kind: report.name for (_, _, report), rows in zip(opened, parsed, strict=True)}
    if len(kinds) > 1:  # one id space: a session id and a user id with the same number are different
        raise DataError(
            raw.folder,
            None,
            "the split files mix session ids and user ids: "
            + ", ".join(f"{name} has {kind}" for kind, name in kinds.items())
            + "; every file of a session-tsv folder needs the same header",
        )
    # The tie rule needs exact timestamps: fractional seconds are kept as integer milliseconds (for
    # every file, so train and test times stay comparable), whole seconds stay seconds.
    raw.time_unit, first_fraction = time_unit(parsed)
    if first_fraction is not None:
        k, row = first_fraction
        opened[k][2].notes.append(
            f"line {int(parsed[k].line[row])} has the fractional Time {float(parsed[k].time[row])!r}: every "
            "timestamp of this dataset is in integer milliseconds (Dataset.time_unit 'ms')"
        )
    raw.session_ids = parsed[0].kind == SESSION_ID
    for (role, lines, report), rows in zip(opened, parsed, strict=True):
        times = integer_times(rows.time, raw.time_unit)
        ratings = Ratings(rows.user, rows.item, rows.rating, times, rows.line)
        raw.parts.append(_RatingPart(report, lines, ratings, role))


_READERS = {
    "ml-100k": _read_ml100k,
    "ml-dat": _read_ml_dat,
    "ml-csv": _read_ml_csv,
    "netflix": _read_netflix,
    "session-tsv": _read_session_tsv,
}


def _duplicated(user: np.ndarray, item: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """True for every row whose (user, item, timestamp) appeared on an earlier row.

    Hashing three columns of 25M rows takes ~30 s, and a repeated triple needs a repeated (user, item)
    pair, which real data rarely has; so the pairs are screened first, packed into one int64 and
    sorted (under a second), and only rows of repeated pairs are compared in full, in their original
    order, so "earlier" keeps its meaning.
    """
    n = len(user)
    if n == 0:
        return np.zeros(0, dtype=bool)
    item_bits = int(item.max()).bit_length()
    if int(user.max()).bit_length() + item_bits <= 62:
        pair = (user << item_bits) | item
        ordered = np.sort(pair)
        repeated = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
        if len(repeated):
            at = np.minimum(np.searchsorted(repeated, pair), len(repeated) - 1)
            candidates = np.flatnonzero(repeated[at] == pair)
        else:
            candidates = np.zeros(0, dtype=np.int64)
    else:
        candidates = np.arange(n)
    dup = np.zeros(n, dtype=bool)
    if len(candidates):
        frame = pd.DataFrame({"u": user[candidates], "i": item[candidates], "t": ts[candidates]}, copy=False)
        dup[candidates] = frame.duplicated(keep="first").to_numpy()
    return dup


def _reject_duplicates(parts: list[_RatingPart]) -> list[np.ndarray]:
    """Keep-masks per part that drop every later copy of a (user, item, timestamp) seen before,
    across all the rating files of the dataset (the first copy, in reading order, is kept)."""
    if not parts:
        return []
    user = np.concatenate([p.ratings.user for p in parts])
    item = np.concatenate([p.ratings.item for p in parts])
    ts = np.concatenate([p.ratings.timestamp for p in parts])
    dup = _duplicated(user, item, ts)
    ends = np.cumsum([len(p.ratings) for p in parts])
    keeps: list[np.ndarray] = []
    for k, part in enumerate(parts):
        start = int(ends[k]) - len(part.ratings)
        here = dup[start : int(ends[k])]
        keeps.append(~here)
        if not here.any():
            continue
        rows = np.flatnonzero(here)
        shown = rows[:MAX_EXAMPLES]
        reasons = []
        for r in shown:
            g = start + int(r)
            first = int(np.flatnonzero((user == user[g]) & (item == item[g]) & (ts == ts[g]))[0])
            owner = int(np.searchsorted(ends, first, side="right"))
            owner_start = int(ends[owner]) - len(parts[owner].ratings)
            where = f"line {int(parts[owner].ratings.line[first - owner_start])}"
            if owner != k:
                where = f"{parts[owner].report.name} {where}"
            reasons.append(
                f"duplicate of {where} (user {user[g]}, item {item[g]}, timestamp {ts[g]}); the first is kept"
            )
        part.report.reject(
            DUPLICATE,
            len(rows),
            [int(part.ratings.line[r]) for r in shown],
            reasons,
            [part.lines.text(int(part.ratings.line[r]) - 1) for r in shown],
        )
    return keeps


def _warn_unknown(part: _RatingPart, ids: np.ndarray, known: np.ndarray, what: str, table: str) -> None:
    missing = ~np.isin(ids, known)
    count = int(np.count_nonzero(missing))
    if not count:
        return
    rows = np.flatnonzero(missing)[:MAX_EXAMPLES]
    part.report.warn(
        f"{what} not in {table} (kept)",
        count,
        [int(part.ratings.line[r]) for r in rows],
        [f"{what} {ids[r]} is not in {table}; the rating is kept" for r in rows],
        [part.lines.text(int(part.ratings.line[r]) - 1) for r in rows],
    )


def _id_strings(values: np.ndarray) -> np.ndarray:
    """Integer ids as their decimal strings, each distinct string built once (25M rows, ~200K ids)."""
    codes, uniques = pd.factorize(values)
    return np.asarray(uniques).astype(str).astype(object)[codes]


def _items_frame(items: list[Item]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": pd.Series([str(i.item_id) for i in items], dtype=object),
            "title": pd.Series([i.title for i in items], dtype=object),
            "year": pd.array([i.year for i in items], dtype="Int64"),
            "genres": pd.Series([i.genres for i in items], dtype=object),
        },
        columns=list(ITEM_COLUMNS),
    )


def _users_frame(users: list[User]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": pd.Series([str(u.user_id) for u in users], dtype=object),
            "age": pd.array([u.age for u in users], dtype="Int64"),
            "gender": pd.Series([u.gender for u in users], dtype=object),
            "occupation": pd.Series([u.occupation for u in users], dtype=object),
            "zip_code": pd.Series([u.zip_code for u in users], dtype=object),
        },
        columns=list(USER_COLUMNS),
    )


def _relative(path: str | Path, folder: str | Path) -> str:
    """`path` relative to `folder`, with "/" separators (local paths and URIs alike)."""
    if storage.is_uri(folder):
        return str(path)[len(str(folder).rstrip("/")) + 1 :]
    return Path(path).relative_to(folder).as_posix()


def checksum_files(files: list[str | Path]) -> str:
    """sha256 over the bytes of `files`, concatenated in the order given (callers sort by name)."""
    digest = hashlib.sha256()
    for path in files:
        with storage.open_file(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def _checked_folder(path: str | Path, layout: str | None) -> tuple[str | Path, str]:
    """The dataset folder and its layout (detected unless given), with every required file present."""
    folder = storage.as_path(path)
    if layout is None:
        layout = detect_layout(folder)
    else:
        layout_spec(layout)
        if not storage.isdir(folder):
            raise DataError(
                folder,
                None,
                "dataset folder does not exist" if not storage.exists(folder) else "not a folder",
            )
    missing = missing_files(folder, layout)
    if missing and layout == "session-tsv":
        found = given_split_candidates(folder)
        shown = "; ".join(f"{role}: {', '.join(names)}" for role, names in sorted(found.items()))
        raise DataError(
            folder,
            None,
            f"session-tsv needs one file per role, {' and '.join(missing)} missing; the folder holds "
            f"{shown or 'no split file'}; layout session-tsv needs {LAYOUTS[layout].files_text}",
        )
    if missing:
        raise DataError(
            storage.join(folder, missing[0].split(" ")[0]),
            None,
            f"missing required file {missing[0]} in the folder {folder}"
            + (f" (also missing: {', '.join(missing[1:])})" if missing[1:] else "")
            + f"; layout {layout} ({LAYOUTS[layout].title}) needs {LAYOUTS[layout].files_text}",
        )
    return folder, layout


@dataclass
class DatasetPlan:
    """A dataset folder read except for its rating files: what a data-parallel reader needs.

    `report` holds the side tables' reports and the rating files' (still empty) reports, in the order
    `load_dataset` reads them; `files` are all the files, in the checksum's (sorted-name) order.
    """

    folder: str | Path
    name: str
    layout: str
    report: LoadReport
    rating_files: list[RatingFile]
    items: pd.DataFrame | None
    items_name: str | None
    users: pd.DataFrame | None
    users_name: str | None
    files: tuple[str | Path, ...]


def plan_dataset(path: str | Path, *, layout: str | None = None, name: str | None = None) -> DatasetPlan:
    """Check the folder `path` as `load_dataset` does, read its side tables, list its rating files.

    Args:
        path: the dataset folder (a local path or a URI).
        layout: the layout; detected from the files present when None.
        name: the dataset's name; the folder's name when None.

    Raises:
        DataError: as `load_dataset` for a folder or side table it cannot read; and for session-tsv,
            whose files are read together (their time unit is decided across files).
    """
    folder, layout = _checked_folder(path, layout)
    if layout == "session-tsv":
        raise DataError(
            folder, None, "session-tsv files are read whole (load_dataset), not planned in pieces"
        )
    raw = _Raw(folder, LoadReport(), plan_only=True)
    _READERS[layout](raw)
    return DatasetPlan(
        folder=folder,
        name=name or storage.name(folder if storage.is_uri(folder) else Path(folder).resolve()),
        layout=layout,
        report=raw.report,
        rating_files=raw.rating_files,
        items=None if raw.items is None else _items_frame(raw.items),
        items_name=raw.items_name,
        users=None if raw.users is None else _users_frame(raw.users),
        users_name=raw.users_name,
        files=tuple(sorted(raw.files, key=lambda p: _relative(p, folder))),
    )


def load_dataset(
    path: str | Path, *, layout: str | None = None, strict: bool = False, name: str | None = None
) -> Dataset:
    """Read the dataset folder `path` into the canonical `Dataset`.

    The layout is detected from the files present unless `layout` is given. Bad rows are rejected and
    counted in `Dataset.report` (never dropped silently); `strict=True` turns the first one into a
    DataError instead. Whole-file problems (missing or empty file, unknown layout) always raise.
    """
    folder, layout = _checked_folder(path, layout)
    raw = _Raw(folder, LoadReport())
    _READERS[layout](raw)

    keeps = _reject_duplicates(raw.parts)
    for part, keep in zip(raw.parts, keeps, strict=True):
        if not keep.all():
            part.ratings = part.ratings.take(keep)
        if raw.items is not None:
            known = np.fromiter((i.item_id for i in raw.items), dtype=np.int64, count=len(raw.items))
            _warn_unknown(part, part.ratings.item, known, "item", raw.items_name)
        if raw.users is not None:
            known = np.fromiter((u.user_id for u in raw.users), dtype=np.int64, count=len(raw.users))
            _warn_unknown(part, part.ratings.user, known, "user", raw.users_name)
    for report in raw.report.files:
        report.rows_accepted = report.rows_read - report.total_rejected

    if strict:
        raw.report.raise_first()
    total = sum(len(p.ratings) for p in raw.parts)
    if total == 0:
        raise DataError(
            raw.parts[0].report.file if raw.parts else folder,
            None,
            f"no rating rows left: every one was rejected\n{raw.report.summary()}",
        )
    if raw.report.total_rejected:
        log.warning(
            "%s: %d rows rejected while loading %s; see the load report:\n%s",
            folder,
            raw.report.total_rejected,
            layout,
            raw.report.summary(),
        )

    user = np.concatenate([p.ratings.user for p in raw.parts])
    item = np.concatenate([p.ratings.item for p in raw.parts])
    interactions = pd.DataFrame(
        {
            "user_id": _id_strings(user),
            "item_id": _id_strings(item),
            "rating": np.concatenate([p.ratings.rating for p in raw.parts]).astype(np.float32),
            "timestamp": np.concatenate([p.ratings.timestamp for p in raw.parts]).astype(np.int64),
        },
        columns=list(INTERACTION_COLUMNS),
        copy=False,  # four separate blocks: consolidating would copy 25M-row columns for nothing
    )
    if any(p.role is not None for p in raw.parts):
        codes = np.concatenate(
            [np.full(len(p.ratings), GIVEN_SPLIT_VALUES.index(p.role), np.int8) for p in raw.parts]
        )
        interactions[GIVEN_SPLIT] = pd.Categorical.from_codes(codes, categories=list(GIVEN_SPLIT_VALUES))
        interactions.attrs[SESSION_IDS] = raw.session_ids
    files = sorted(raw.files, key=lambda p: _relative(p, folder))
    return Dataset(
        name=name or storage.name(folder if storage.is_uri(folder) else Path(folder).resolve()),
        layout=layout,
        interactions=interactions,
        items=None if raw.items is None else _items_frame(raw.items),
        users=None if raw.users is None else _users_frame(raw.users),
        report=raw.report,
        files=tuple(files),
        checksum=checksum_files(files),
        time_unit=raw.time_unit,
    )
