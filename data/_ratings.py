"""Vectorised parsing and validation of rating files (the big ones: up to 25M+ rows).

Two paths give the same result. The fast path asks pandas' C parser for numbers directly and checks
the values with numpy masks; it only succeeds on a file without a single bad row. Any doubt sends the
file down the checking path, which reads every field as a string, finds each bad row's reason with
vectorised masks, and only loops in Python over the (at most 20 per reason) examples it reports.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from movierec.data._lines import UNIT_SEP, Lines
from movierec.data.errors import DataError
from movierec.data.report import MAX_EXAMPLES, FileReport

MAX_ID = 2**53
"""Ids and timestamps must stay below this so they survive a float64 round trip exactly."""


@dataclass
class Ratings:
    """The accepted rows of one rating file, as numbers, with the file line each came from."""

    user: np.ndarray  # int64
    item: np.ndarray  # int64
    rating: np.ndarray  # float64
    timestamp: np.ndarray  # int64
    line: np.ndarray  # int64, 1-based

    def __len__(self) -> int:
        return len(self.line)

    def take(self, keep: np.ndarray) -> Ratings:
        return Ratings(
            self.user[keep], self.item[keep], self.rating[keep], self.timestamp[keep], self.line[keep]
        )


def fmt_number(x: float) -> str:
    """5.0 -> "5", 0.5 -> "0.5": how ratings read in messages."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


@dataclass(frozen=True)
class RatingScale:
    low: float
    high: float
    step: float

    @property
    def range_text(self) -> str:
        return f"{fmt_number(self.low)}–{fmt_number(self.high)}"

    def in_range(self, r: np.ndarray) -> np.ndarray:
        return (r >= self.low - 1e-9) & (r <= self.high + 1e-9)

    def on_step(self, r: np.ndarray) -> np.ndarray:
        k = (r - self.low) / self.step
        return np.abs(k - np.round(k)) < 1e-6


class RowChecker:
    """Marks rows bad, one reason per row (the first check it fails), and reports them."""

    def __init__(self, lines: Lines, report: FileReport, line_index: np.ndarray, pending: np.ndarray) -> None:
        self.lines, self.report, self.line_index, self.pending = lines, report, line_index, pending

    def reject(self, bad: np.ndarray, category: str, detail: Callable[[int], str]) -> None:
        bad = bad & self.pending
        count = int(np.count_nonzero(bad))
        if not count:
            return
        rows = np.flatnonzero(bad)[:MAX_EXAMPLES]
        self.report.reject(
            category,
            count,
            [int(self.line_index[r]) + 1 for r in rows],
            [detail(int(r)) for r in rows],
            [self.lines.text(int(self.line_index[r])) for r in rows],
        )
        self.pending &= ~bad


def to_numbers(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _whole_ok(values: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.isfinite(values) & (values >= 0) & (values < MAX_ID) & (np.floor(values) == values)


def _whole_problem(what: str, text: str, value: float) -> str:
    if text.strip() == "":
        return f"missing {what}"
    if not np.isfinite(value):
        return f"non-numeric {what} {text!r}"
    if value < 0:
        return f"negative {what} {text!r}"
    if value != np.floor(value):
        return f"{what} {text!r} is not a whole number"
    return f"{what} {text!r} is too large"


def check_whole(check: RowChecker, column: pd.Series, what: str) -> np.ndarray:
    values = to_numbers(column)
    check.reject(
        ~_whole_ok(values), f"invalid {what}", lambda r: _whole_problem(what, column.iat[r], values[r])
    )
    return values


def check_rating(check: RowChecker, column: pd.Series, scale: RatingScale) -> np.ndarray:
    values = to_numbers(column)
    finite = np.isfinite(values)
    check.reject(~finite, "invalid rating", lambda r: _whole_problem("rating", column.iat[r], values[r]))
    with np.errstate(invalid="ignore"):
        check.reject(
            ~scale.in_range(values),
            f"rating out of range {scale.range_text}",
            lambda r: f"rating {column.iat[r].strip()} out of range {scale.range_text}",
        )
        check.reject(
            ~scale.on_step(values),
            f"rating not a multiple of {fmt_number(scale.step)}",
            lambda r: (
                f"rating {column.iat[r].strip()} is not on the {fmt_number(scale.step)} step "
                f"of this layout ({scale.range_text})"
            ),
        )
    return values


def _data_range(lines: Lines, header: str | None) -> tuple[int, int]:
    """0-based first and last line index of the data rows; checks the header line."""
    nonblank = np.flatnonzero(~lines.blank)
    if not len(nonblank):
        raise DataError(lines.path, None, "empty ratings file: it has no rating rows")
    first = int(nonblank[0])
    if header is not None:
        found = lines.text(first).strip()
        if found != header:
            raise DataError(
                lines.path,
                first + 1,
                f"expected the header line {header!r}, found {found!r} (is this the right layout?)",
            )
        first += 1
        if len(nonblank) < 2:
            raise DataError(lines.path, None, "empty ratings file: it has a header line but no rating rows")
    return first, int(nonblank[-1])


def parse_numeric_rows(
    lines: Lines, sep: bytes, first: int, last: int, width: int, dtypes: dict[int, type]
) -> pd.DataFrame | None:
    """Lines first..last as `width` separated fields, the `dtypes` columns parsed as numbers in one
    C-parser pass; None at the first sign of any bad row (the caller then checks row by row, so every
    bad row gets its line and reason)."""
    if lines.bad_encoding or lines.blank[first : last + 1].any():
        return None
    whole_file = last == len(lines) - 1 and lines.starts[0] == 0  # no trailing blank lines, no BOM
    # slicing would copy the whole file; skipping the header line in the parser does not
    segment = lines.data if whole_file else lines.data[lines.starts[first] : lines.ends[last] + 1]
    skip = first if whole_file else 0
    sep_char = sep.decode()
    if len(sep) > 1:
        segment = segment.replace(sep, UNIT_SEP.encode())
        sep_char = UNIT_SEP
    n = last - first + 1
    seps = segment.count(sep_char.encode())
    if skip:
        seps -= segment[: lines.ends[first - 1]].count(sep_char.encode())
    if seps != (width - 1) * n:  # some line has the wrong number of fields
        return None
    try:
        frame = pd.read_csv(
            io.BytesIO(segment),
            sep=sep_char,
            header=None,
            names=range(width),
            usecols=sorted(dtypes),
            dtype=dtypes,
            skiprows=skip,
            low_memory=False,
            quoting=3,
            lineterminator="\n",
            skip_blank_lines=False,
            encoding=lines.encoding,
            engine="c",
        )
    except (ValueError, OverflowError):  # ParserError is a ValueError
        return None
    if len(frame) != n or not isinstance(frame.index, pd.RangeIndex):
        return None
    return frame


def all_rows_valid(
    user: np.ndarray, item: np.ndarray, time_ok: np.ndarray, rating: np.ndarray, scale: RatingScale
) -> bool:
    """True when every parsed row passes the checks the row-by-row path makes (ids in range, a valid
    time, a finite rating on the scale), so the fast path may keep the whole file."""
    with np.errstate(invalid="ignore"):
        return bool(
            ((user >= 0) & (user < MAX_ID)).all()
            and ((item >= 0) & (item < MAX_ID)).all()
            and time_ok.all()
            and np.isfinite(rating).all()
            and scale.in_range(rating).all()
            and scale.on_step(rating).all()
        )


def _fast(lines: Lines, sep: bytes, first: int, last: int, scale: RatingScale) -> Ratings | None:
    """The whole file as numbers in one C-parser pass, or None at the first sign of any bad row."""
    dtypes = {0: np.int64, 1: np.int64, 2: np.float64, 3: np.int64}
    frame = parse_numeric_rows(lines, sep, first, last, 4, dtypes)
    if frame is None:
        return None
    user, item, rating, ts = (frame[c].to_numpy() for c in range(4))
    if not all_rows_valid(user, item, (ts >= 0) & (ts < MAX_ID), rating, scale):
        return None
    line = np.arange(first + 1, last + 2, dtype=np.int64)
    return Ratings(user, item, rating, ts, line)


def parse_rating_file(
    lines: Lines, report: FileReport, sep: bytes, header: str | None, scale: RatingScale, sep_name: str
) -> Ratings:
    """The valid rows of a `user SEP item SEP rating SEP timestamp` file; bad rows go to `report`."""
    first, last = _data_range(lines, header)
    return parse_rating_rows(lines, report, sep, first, last, scale, sep_name)


def parse_rating_rows(
    lines: Lines, report: FileReport, sep: bytes, first: int, last: int, scale: RatingScale, sep_name: str
) -> Ratings:
    """The valid rows among lines first..last (0-based, inclusive, first <= last, no header among them)
    of a `user SEP item SEP rating SEP timestamp` file; bad rows go to `report`.

    `parse_rating_file` calls it on a whole file; a data-parallel reader calls it on each piece of one
    (line numbers are then relative to the piece: the caller shifts them).

    Args:
        lines: the file, or a piece of it.
        report: counts the rows read and the rejected ones.
        sep: the field separator.
        first: index of the first data line in `lines`.
        last: index of the last data line in `lines` (blank lines at either end are not rows).
        scale: the layout's rating scale.
        sep_name: the separator's name in messages ("tab", "comma", "'::'").
    """
    line_index = np.arange(first, last + 1, dtype=np.int64)
    blank = lines.blank[first : last + 1]
    report.rows_read += int(np.count_nonzero(~blank))
    report.notes.extend(lines.notes)
    fast = _fast(lines, sep, first, last, scale)
    if fast is not None:
        return fast
    counts = lines.field_counts(sep)[first : last + 1]
    frame = lines.fields_frame(sep, max(4, int(counts.max())), first, last)
    check = RowChecker(lines, report, line_index, ~blank)
    reject_bad_encoding(check, lines, line_index)
    check.reject(
        counts != 4,
        "malformed line (expected 4 fields)",
        lambda r: (
            f"expected 4 {sep_name}-separated fields (user, item, rating, timestamp), found {counts[r]}"
        ),
    )
    user = check_whole(check, frame[0], "user id")
    item = check_whole(check, frame[1], "item id")
    rating = check_rating(check, frame[2], scale)
    ts = check_whole(check, frame[3], "timestamp")
    keep = check.pending
    return Ratings(
        user[keep].astype(np.int64),
        item[keep].astype(np.int64),
        rating[keep],
        ts[keep].astype(np.int64),
        line_index[keep] + 1,
    )


def reject_bad_encoding(check: RowChecker, lines: Lines, line_index: np.ndarray) -> None:
    if not lines.bad_encoding:
        return
    bad = np.isin(line_index, np.fromiter(lines.bad_encoding, dtype=np.int64))
    check.reject(bad, "invalid UTF-8 bytes", lambda r: lines.bad_encoding[int(line_index[r])])


def parse_netflix_file(lines: Lines, report: FileReport, scale: RatingScale) -> Ratings:
    """The valid rows of a Netflix Prize file: `MovieID:` lines, each followed by its
    `CustomerID,Rating,YYYY-MM-DD` lines. The timestamp is that date at 00:00 UTC."""
    first, last = _data_range(lines, None)
    line_index = np.arange(first, last + 1, dtype=np.int64)
    blank = lines.blank[first : last + 1]
    counts = lines.field_counts(b",")[first : last + 1]
    frame = lines.fields_frame(b",", max(3, int(counts.max())), first, last)
    head = frame[0]
    is_header = (counts == 1) & ~blank & head.str.endswith(":").to_numpy(dtype=bool)
    header_rows = np.flatnonzero(is_header)
    header_ids = to_numbers(head.iloc[header_rows].str[:-1])
    header_ok = _whole_ok(header_ids)
    block = np.cumsum(is_header) - 1  # index into header_rows of the block each line belongs to; -1: none
    rows = ~blank & ~is_header
    report.rows_read += int(np.count_nonzero(rows))
    report.notes.extend(lines.notes)
    check = RowChecker(lines, report, line_index, rows.copy())
    reject_bad_encoding(check, lines, line_index)
    check.reject(
        counts != 3,
        "malformed line (expected 3 fields)",
        lambda r: (
            "expected 3 comma-separated fields (CustomerID,Rating,Date) or a 'MovieID:' line, "
            f"found {counts[r]}"
        ),
    )
    check.reject(
        block < 0, "rating before any 'MovieID:' line", lambda r: "rating line before any 'MovieID:' line"
    )
    safe_block = np.maximum(block, 0)
    if len(header_rows):
        bad_block = ~header_ok[safe_block]
        movie = header_ids[safe_block]
    else:
        bad_block = np.zeros(len(block), dtype=bool)
        movie = np.zeros(len(block))
    check.reject(
        bad_block,
        "in the block of an invalid 'MovieID:' line",
        lambda r: (
            f"belongs to the invalid movie header at line {int(line_index[header_rows[block[r]]]) + 1}: "
            f"{lines.text(int(line_index[header_rows[block[r]]]))!r}"
        ),
    )
    user = check_whole(check, frame[0], "customer id")
    rating = check_rating(check, frame[1], scale)
    dates = pd.to_datetime(frame[2], format="%Y-%m-%d", errors="coerce")
    check.reject(
        dates.isna().to_numpy(),
        "invalid date",
        lambda r: f"invalid date {frame[2].iat[r]!r} (expected YYYY-MM-DD)",
    )
    keep = check.pending
    seconds = (dates[keep] - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1)
    return Ratings(
        user[keep].astype(np.int64),
        movie[keep].astype(np.int64),
        rating[keep],
        seconds.to_numpy(dtype=np.int64),
        line_index[keep] + 1,
    )
