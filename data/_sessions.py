"""Parsing of session-tsv files: the tab-separated format of GRU4Rec and many session-based papers.

A header line names the columns: `SessionId`, `ItemId`, `Time` (GRU4Rec's format), or `UserId`,
`ItemId`, `Rating`, `Time` (what `movierec data split --out` writes). Columns are found by name, in
any order; other columns are ignored (with a note). Ids must be whole numbers (the canonical ids of
every layout are decimal strings of integers); `Time` is seconds, possibly with a fractional part
(kept here as float64: the loader decides the dataset's time unit once it has seen every file).

Like `_ratings.parse_rating_file`, a fast path asks pandas' C parser for numbers and only succeeds on
a file without a bad row; anything else goes down the checking path, which names every bad row's
file line and reason (GRU4Rec's rsc15_train_full.txt has 31M rows: the strings path is the exception).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from movierec.data._lines import Lines
from movierec.data._ratings import (
    MAX_ID,
    RatingScale,
    RowChecker,
    all_rows_valid,
    check_rating,
    check_whole,
    parse_numeric_rows,
    reject_bad_encoding,
    to_numbers,
)
from movierec.data.errors import DataError
from movierec.data.report import FileReport

SESSION_ID, USER_ID, ITEM_ID, RATING, TIME = "SessionId", "UserId", "ItemId", "Rating", "Time"
HEADERS_TEXT = "'SessionId<TAB>ItemId<TAB>Time' (GRU4Rec's format) or 'UserId<TAB>ItemId<TAB>Rating<TAB>Time'"
MAX_TIME = MAX_ID / 1000
"""Times must stay below this so that, in milliseconds, they still survive a float64 round trip."""
DEFAULT_RATING = 1.0  # a click/view: session files have no rating column


@dataclass
class SessionRows:
    """The accepted rows of one session-tsv file; `time` in (possibly fractional) seconds."""

    kind: str  # SESSION_ID or USER_ID: what the first column's ids are
    user: np.ndarray  # int64 (session or user id)
    item: np.ndarray  # int64
    rating: np.ndarray  # float64
    time: np.ndarray  # float64 seconds
    line: np.ndarray  # int64, 1-based


@dataclass(frozen=True)
class _Header:
    line: int  # 0-based line index of the header
    names: tuple[str, ...]
    kind: str
    columns: dict[str, int]  # canonical column name -> field index

    @property
    def described(self) -> str:
        return ", ".join(n for n in (self.kind, ITEM_ID, RATING, TIME) if n in self.columns)


def _header(lines: Lines) -> _Header:
    """The header line: the first non-blank one. Raises DataError (file, line) when it is not one."""
    nonblank = np.flatnonzero(~lines.blank)
    if not len(nonblank):
        raise DataError(lines.path, None, f"empty file: expected the header line {HEADERS_TEXT}")
    first = int(nonblank[0])
    text = lines.text(first)
    names = tuple(name.strip() for name in text.split("\t"))

    def refuse(why: str) -> DataError:
        return DataError(
            lines.path, first + 1, f"{why}; expected a header line {HEADERS_TEXT}, found {text.strip()!r}"
        )

    repeated = sorted({n for n in names if names.count(n) > 1 and n})
    if repeated:
        raise refuse(f"the header names {', '.join(repeated)} twice")
    ids = [n for n in (SESSION_ID, USER_ID) if n in names]
    if len(ids) != 1:
        raise refuse("the header must name exactly one of SessionId and UserId")
    missing = [n for n in (ITEM_ID, TIME) if n not in names]
    if missing:
        raise refuse(f"the header lacks {', '.join(missing)}")
    wanted = (ids[0], ITEM_ID, RATING, TIME)
    columns = {n: names.index(n) for n in wanted if n in names}
    return _Header(first, names, ids[0], columns)


def _time_problem(text: str, value: float) -> str:
    if text.strip() == "":
        return "missing time"
    if not np.isfinite(value):
        return f"non-numeric time {text!r}"
    if value < 0:
        return f"negative time {text!r}"
    return f"time {text!r} is too large (seconds since 1970 expected)"


def _time_ok(values: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.isfinite(values) & (values >= 0) & (values < MAX_TIME)


def _fast(lines: Lines, header: _Header, first: int, last: int, scale: RatingScale) -> SessionRows | None:
    """Every row as numbers in one C-parser pass, or None at the first sign of a bad row."""
    n = last - first + 1
    index = header.columns
    dtypes = {index[header.kind]: np.int64, index[ITEM_ID]: np.int64, index[TIME]: np.float64}
    if RATING in index:
        dtypes[index[RATING]] = np.float64
    frame = parse_numeric_rows(lines, b"\t", first, last, len(header.names), dtypes)
    if frame is None:
        return None
    user = frame[index[header.kind]].to_numpy()
    item = frame[index[ITEM_ID]].to_numpy()
    time = frame[index[TIME]].to_numpy()
    rating = frame[index[RATING]].to_numpy() if RATING in index else np.full(n, DEFAULT_RATING)
    if not all_rows_valid(user, item, _time_ok(time), rating, scale):
        return None
    line = np.arange(first + 1, last + 2, dtype=np.int64)
    return SessionRows(header.kind, user, item, rating, time, line)


def parse_session_file(lines: Lines, report: FileReport, scale: RatingScale) -> SessionRows:
    """The valid rows of one session-tsv file; bad rows go to `report` with their line and reason.

    A file with a header and no rows is valid (a split may leave a role empty); a file without a
    header line is not.
    """
    header = _header(lines)
    nonblank = np.flatnonzero(~lines.blank)
    report.notes.extend(lines.notes)
    ignored = [n for i, n in enumerate(header.names) if i not in header.columns.values()]
    if ignored:
        report.notes.append(f"columns ignored: {', '.join(ignored)} (reads {header.described})")
    if len(nonblank) < 2:
        no_ids = np.zeros(0, np.int64)
        return SessionRows(header.kind, no_ids, no_ids, np.zeros(0), np.zeros(0), no_ids)
    first, last = header.line + 1, int(nonblank[-1])
    line_index = np.arange(first, last + 1, dtype=np.int64)
    blank = lines.blank[first : last + 1]
    report.rows_read += int(np.count_nonzero(~blank))
    fast = _fast(lines, header, first, last, scale)
    if fast is not None:
        return fast

    width = len(header.names)
    counts = lines.field_counts(b"\t")[first : last + 1]
    frame = lines.fields_frame(b"\t", max(width, int(counts.max())), first, last)
    check = RowChecker(lines, report, line_index, ~blank)
    reject_bad_encoding(check, lines, line_index)
    check.reject(
        counts != width,
        f"malformed line (expected {width} fields)",
        lambda r: f"expected {width} tab-separated fields ({', '.join(header.names)}), found {counts[r]}",
    )
    index = header.columns
    what = "session id" if header.kind == SESSION_ID else "user id"
    user = check_whole(check, frame[index[header.kind]], what)
    item = check_whole(check, frame[index[ITEM_ID]], "item id")
    rating = (
        check_rating(check, frame[index[RATING]], scale)
        if RATING in index
        else np.full(len(line_index), DEFAULT_RATING)
    )
    time_text = frame[index[TIME]]
    time = to_numbers(time_text)
    check.reject(~_time_ok(time), "invalid time", lambda r: _time_problem(time_text.iat[r], time[r]))
    keep = check.pending
    return SessionRows(
        header.kind,
        user[keep].astype(np.int64),
        item[keep].astype(np.int64),
        rating[keep],
        time[keep],
        line_index[keep] + 1,
    )


def time_unit(parts: list[SessionRows]) -> tuple[str, tuple[int, int] | None]:
    """The dataset's time unit: seconds ("s") when every Time is a whole second, else milliseconds
    ("ms"); with the (part, row) of the first fractional Time, for the report."""
    for k, part in enumerate(parts):
        fractional = np.flatnonzero(part.time != np.floor(part.time))
        if len(fractional):
            return "ms", (k, int(fractional[0]))
    return "s", None


def integer_times(time: np.ndarray, unit: str) -> np.ndarray:
    """Seconds as int64 in `unit`: exact for whole seconds; milliseconds rounded to the nearest (a
    float64 like 1396839069.277 is 1396839069.2769999…, which must not become …276)."""
    if unit == "ms":
        return np.round(time * 1000).astype(np.int64)
    return time.astype(np.int64)
