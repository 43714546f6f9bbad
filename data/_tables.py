"""Readers for the small tables (items, users, genres): at most ~100K lines, so plain Python per line.

They share the rating files' rules: one reason per rejected row, never a silent drop, ids parsed to the
same canonical integers as in the rating files so the two always join.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TypeVar

from movierec.data._lines import Lines
from movierec.data._ratings import MAX_ID
from movierec.data.errors import DataError
from movierec.data.report import FileReport

T = TypeVar("T")

ML1M_OCCUPATIONS: tuple[str, ...] = (
    "other or not specified",
    "academic/educator",
    "artist",
    "clerical/admin",
    "college/grad student",
    "customer service",
    "doctor/health care",
    "executive/managerial",
    "farmer",
    "homemaker",
    "K-12 student",
    "lawyer",
    "programmer",
    "retired",
    "sales/marketing",
    "scientist",
    "self-employed",
    "technician/engineer",
    "tradesman/craftsman",
    "unemployed",
    "writer",
)
"""ML-1M users.dat occupation codes 0–20, as the ML-1M README lists them."""

NO_GENRES = "(no genres listed)"
_TITLE_YEAR = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})\)\s*$")
REPLACEMENT_WARNING = "U+FFFD replacement characters in text"


class RowError(Exception):
    """A row is bad: `category` counts it in the report, `reason` says what exactly is wrong."""

    def __init__(self, category: str, reason: str) -> None:
        super().__init__(reason)
        self.category, self.reason = category, reason


@dataclass(frozen=True)
class Item:
    item_id: int
    title: str
    year: int | None
    genres: tuple[str, ...]


@dataclass(frozen=True)
class User:
    user_id: int
    age: int | None
    gender: str | None
    occupation: str | None
    zip_code: str | None


def split_title_year(title: str) -> tuple[str, int | None]:
    """ "Toy Story (1995)" -> ("Toy Story", 1995); a title without a trailing "(YYYY)" keeps its text."""
    match = _TITLE_YEAR.match(title)
    if match and match.group("title").strip():
        return match.group("title").strip(), int(match.group("year"))
    return title.strip(), None


def whole(text: str, what: str) -> int:
    """A non-negative whole number, accepting exactly what the rating readers accept ("7", " 7", "7.0")."""
    stripped = text.strip()
    if not stripped:
        raise RowError(f"invalid {what}", f"missing {what}")
    try:
        value = float(stripped) if "_" not in stripped else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise RowError(f"invalid {what}", f"non-numeric {what} {text!r}")
    if value < 0:
        raise RowError(f"invalid {what}", f"negative {what} {text!r}")
    if value != math.floor(value):
        raise RowError(f"invalid {what}", f"{what} {text!r} is not a whole number")
    if value >= MAX_ID:
        raise RowError(f"invalid {what}", f"{what} {text!r} is too large")
    return int(value)


def _fields(text: str, sep: str, count: int, names: str) -> list[str]:
    fields = text.split(sep)
    if len(fields) != count:
        raise RowError(
            f"malformed line (expected {count} fields)",
            f"expected {count} {sep!r}-separated fields ({names}), found {len(fields)}",
        )
    return fields


def _optional(text: str) -> str | None:
    text = text.strip()
    return text or None


def parse_rows(
    lines: Lines,
    report: FileReport,
    parse: Callable[[str], T],
    *,
    key: Callable[[T], Hashable],
    key_name: str,
    header: str | None = None,
) -> list[T]:
    """Every row of a small table that `parse` accepts, once per `key` (later copies are rejected)."""
    report.notes.extend(lines.notes)
    texts = lines.decoded()
    start = 0
    if header is not None:
        nonblank = [i for i, t in enumerate(texts) if t]
        found = texts[nonblank[0]].strip() if nonblank else ""
        if found != header:
            line = nonblank[0] + 1 if nonblank else None
            raise DataError(lines.path, line, f"expected the header line {header!r}, found {found!r}")
        start = nonblank[0] + 1
    rows: list[T] = []
    seen: dict[Hashable, int] = {}
    for index in range(start, len(texts)):
        text = texts[index]
        if not text:
            continue
        line = index + 1
        report.rows_read += 1
        try:
            if index in lines.bad_encoding:
                raise RowError("invalid UTF-8 bytes", lines.bad_encoding[index])
            value = parse(text)
            k = key(value)
            if k in seen:
                raise RowError(
                    f"duplicate {key_name}", f"duplicate {key_name} {k} (already at line {seen[k]})"
                )
        except RowError as bad:
            report.reject(bad.category, 1, [line], [bad.reason], [lines.text(index)])
            continue
        seen[k] = line
        if "\ufffd" in text:
            report.warn(
                REPLACEMENT_WARNING,
                1,
                [line],
                [
                    "text contains U+FFFD (�): this copy of the file was re-encoded lossily and the original "
                    "characters are lost; re-download the dataset to get them back"
                ],
                [lines.text(index)],
            )
        rows.append(value)
    report.rows_accepted = report.rows_read - report.total_rejected
    return rows


def read_genres(lines: Lines) -> list[str]:
    """u.genre (`name|index`): the genre names in index order, which u.item's flag columns follow.

    Any problem here is a whole-file error: without a trustworthy genre order no item can be read.
    """
    genres: dict[int, str] = {}
    for index, text in enumerate(lines.decoded()):
        if not text:
            continue
        parts = text.split("|")
        if len(parts) != 2 or not parts[1].strip().isdigit() or not parts[0].strip():
            raise DataError(lines.path, index + 1, f"expected 'name|index', found {text!r}")
        position = int(parts[1])
        if position in genres:
            raise DataError(lines.path, index + 1, f"genre index {position} appears twice")
        genres[position] = parts[0].strip()
    if not genres:
        raise DataError(lines.path, None, "empty genre file: u.item's genre columns cannot be named")
    if sorted(genres) != list(range(len(genres))):
        raise DataError(lines.path, None, f"genre indices are not 0..{len(genres) - 1}: {sorted(genres)}")
    return [genres[i] for i in range(len(genres))]


def parse_ml100k_items(lines: Lines, report: FileReport, genres: list[str]) -> list[Item]:
    count = 5 + len(genres)

    def parse(text: str) -> Item:
        fields = _fields(
            text, "|", count, f"id, title, release date, video date, URL and {len(genres)} genre flags"
        )
        flags = fields[5:]
        for genre, flag in zip(genres, flags, strict=True):
            if flag.strip() not in ("0", "1"):
                raise RowError("invalid genre flag", f"genre flag for {genre!r} is {flag!r}, expected 0 or 1")
        title, year = split_title_year(fields[1])
        chosen = tuple(g for g, f in zip(genres, flags, strict=True) if f.strip() == "1")
        return Item(whole(fields[0], "item id"), title, year, chosen)

    return parse_rows(lines, report, parse, key=lambda i: i.item_id, key_name="item id")


def parse_ml100k_users(lines: Lines, report: FileReport) -> list[User]:
    def parse(text: str) -> User:
        uid, age, gender, occupation, zip_code = _fields(text, "|", 5, "id, age, gender, occupation, zip")
        return User(
            whole(uid, "user id"),
            whole(age, "age") if age.strip() else None,
            _optional(gender),
            _optional(occupation),
            _optional(zip_code),
        )

    return parse_rows(lines, report, parse, key=lambda u: u.user_id, key_name="user id")


def _genre_list(text: str) -> tuple[str, ...]:
    text = text.strip()
    if text == NO_GENRES:
        return ()
    return tuple(g.strip() for g in text.split("|") if g.strip())


def parse_dat_movies(lines: Lines, report: FileReport) -> list[Item]:
    def parse(text: str) -> Item:
        mid, title, genres = _fields(text, "::", 3, "MovieID, Title, Genres")
        title, year = split_title_year(title)
        return Item(whole(mid, "item id"), title, year, _genre_list(genres))

    return parse_rows(lines, report, parse, key=lambda i: i.item_id, key_name="item id")


def parse_dat_users(lines: Lines, report: FileReport) -> list[User]:
    def parse(text: str) -> User:
        uid, gender, age, occupation, zip_code = _fields(
            text, "::", 5, "UserID, Gender, Age, Occupation, Zip-code"
        )
        code = whole(occupation, "occupation code")
        if code >= len(ML1M_OCCUPATIONS):
            raise RowError(
                "invalid occupation code",
                f"occupation code {code} is not one of the ML-1M codes 0–{len(ML1M_OCCUPATIONS) - 1}",
            )
        return User(
            whole(uid, "user id"),
            whole(age, "age") if age.strip() else None,
            _optional(gender),
            ML1M_OCCUPATIONS[code],
            _optional(zip_code),
        )

    return parse_rows(lines, report, parse, key=lambda u: u.user_id, key_name="user id")


def parse_csv_movies(lines: Lines, report: FileReport) -> list[Item]:
    def parse(text: str) -> Item:
        try:
            fields = next(csv.reader([text], strict=True))
        except csv.Error as exc:
            raise RowError("malformed line (bad CSV quoting)", f"bad CSV quoting: {exc}") from None
        if len(fields) != 3:
            raise RowError(
                "malformed line (expected 3 fields)",
                f"expected 3 comma-separated fields (movieId, title, genres), found {len(fields)}",
            )
        title, year = split_title_year(fields[1])
        return Item(whole(fields[0], "item id"), title, year, _genre_list(fields[2]))

    return parse_rows(
        lines, report, parse, key=lambda i: i.item_id, key_name="item id", header="movieId,title,genres"
    )


def parse_netflix_titles(lines: Lines, report: FileReport) -> list[Item]:
    def parse(text: str) -> Item:
        parts = text.split(",", 2)  # the title itself may hold commas
        if len(parts) != 3:
            raise RowError(
                "malformed line (expected 3 fields)",
                f"expected MovieID,YearOfRelease,Title, found {len(parts)} comma-separated fields",
            )
        year_text = parts[1].strip()
        if year_text == "NULL":
            year = None
        else:
            try:
                year = whole(year_text, "year")
            except RowError:
                raise RowError(
                    "invalid year", f"YearOfRelease {parts[1]!r} is neither a year nor NULL"
                ) from None
        return Item(whole(parts[0], "item id"), parts[2].strip(), year, ())

    return parse_rows(lines, report, parse, key=lambda i: i.item_id, key_name="item id")
