"""A file's bytes as numbered lines, found with numpy so that 25M-line files need no Python loop.

Everything the readers report is by 1-based line number, so this module owns the one definition of a
line: bytes up to a "\\n" ("\\r\\n" counts as one break), blank lines are not rows, and the line numbers
never shift, whatever gets removed later.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from movierec import storage
from movierec.data.errors import DataError

LATIN1 = "iso-8859-1"
UTF8 = "utf-8"
_BOM = b"\xef\xbb\xbf"
_TEXT_LIMIT = 300  # characters of a bad line kept in a report example
UNIT_SEP = "\x1f"  # stands in for the two-byte "::" separator so pandas' fast C parser can split it


@dataclass
class Lines:
    """The normalised bytes of one file and where each of its lines starts and ends.

    `data` always ends with "\\n"; line i (0-based) is data[starts[i]:ends[i]] and is line i + 1 of the
    file. `bad_encoding` maps a 0-based line index to why its bytes are not valid in `encoding`.
    """

    path: str | Path  # a local Path, or a URI string (gs://…) read through tf.io.gfile
    name: str
    data: bytes
    starts: np.ndarray
    ends: np.ndarray
    encoding: str
    bad_encoding: dict[int, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def blank(self) -> np.ndarray:
        return self.starts == self.ends

    def text(self, index: int) -> str:
        """Line `index` (0-based) as text for a report, bad bytes shown as escapes, long lines cut."""
        return line_text(self.data[self.starts[index] : self.ends[index]], self.encoding)

    def decoded(self) -> list[str]:
        """All lines as text (for the small item and user tables, which are parsed line by line)."""
        text = self.data.decode(self.encoding, errors="replace")
        return text.removeprefix("\ufeff").split("\n")[:-1]

    def field_counts(self, sep: bytes) -> np.ndarray:
        """How many `sep`-separated fields each line has, counted exactly as `fields_frame` splits them.

        A blank line counts as one (empty) field. A two-byte separator is first replaced the same way
        `fields_frame` replaces it, which keeps the number of lines (and so the line numbers) unchanged.
        """
        data = self.data
        if len(sep) > 1:
            data = data.replace(sep, UNIT_SEP.encode())
            sep = UNIT_SEP.encode()
        arr = np.frombuffer(data, dtype=np.uint8)
        positions = np.flatnonzero(arr == sep[0])
        ends = np.flatnonzero(arr == 10)
        starts = np.concatenate(([0], ends[:-1] + 1)) if len(ends) else ends
        return np.searchsorted(positions, ends) - np.searchsorted(positions, starts) + 1

    def fields_frame(self, sep: bytes, ncols: int, first: int = 0, last: int | None = None) -> pd.DataFrame:
        """Lines first..last (0-based, inclusive) split into `ncols` string columns, one row per line.

        Blank lines become rows of empty strings and short lines are padded with "", so row k is always
        line first + k; callers mark such rows bad using `field_counts`.
        """
        last = len(self) - 1 if last is None else last
        segment = self.data[self.starts[first] : self.ends[last] + 1]
        sep_char = sep.decode()
        if len(sep) > 1:
            segment = segment.replace(sep, UNIT_SEP.encode())
            sep_char = UNIT_SEP
        frame = pd.read_csv(
            io.BytesIO(segment),
            sep=sep_char,
            header=None,
            names=range(ncols),
            dtype=str,
            na_filter=False,
            quoting=3,  # csv.QUOTE_NONE: rating files are unquoted; a stray quote must not swallow lines
            lineterminator="\n",
            skip_blank_lines=False,
            encoding=self.encoding,
            encoding_errors="replace",
            engine="c",
        )
        expected = last - first + 1
        if len(frame) != expected:  # would misnumber every later line: refuse rather than mislead
            raise DataError(self.path, None, f"internal: parsed {len(frame)} rows from {expected} lines")
        return frame


def line_text(raw: bytes, encoding: str) -> str:
    """A line's bytes as text for a report: bad bytes shown as escapes, long lines cut."""
    text = raw.decode(encoding, errors="backslashreplace")
    return text if len(text) <= _TEXT_LIMIT else text[:_TEXT_LIMIT] + "…"


def read_lines(path: str | Path, name: str, encoding: str) -> Lines:
    """Read `path` and find its lines; check its bytes against `encoding`.

    A file declared ISO-8859-1 that is valid UTF-8 and has non-ASCII bytes is read as UTF-8 (with a
    note): copies of the MovieLens files re-saved as UTF-8 circulate, and Latin-1 text is practically
    never valid UTF-8 by accident. Lines of a UTF-8 file with invalid bytes are recorded in
    `bad_encoding` (with the byte offset) so the reader can reject just those lines.
    """
    try:
        raw = storage.read_bytes(path)
    except OSError as exc:
        raise DataError(path, None, f"cannot read the file: {exc.strerror or exc}") from exc
    return lines_from_bytes(raw, path, name, encoding)


def lines_from_bytes(
    raw: bytes,
    path: str | Path,
    name: str,
    encoding: str,
    *,
    offset: int = 0,
    detect_encoding: bool = True,
) -> Lines:
    """The lines of `raw`, the bytes of `path` from byte `offset` on (a whole file, or a piece of it
    that starts at a line start, as a data-parallel reader reads it); see `read_lines`.

    Args:
        raw: the bytes; a piece must start at a line start and end after a "\\n" (or at the file's end).
        path: the file, for messages.
        name: the file's display name.
        encoding: the declared encoding, or the file's encoding already decided from all its bytes.
        offset: where `raw` starts in the file: byte offsets in messages count from the file's start,
            and only a piece at offset 0 can start with the byte order mark.
        detect_encoding: False when `encoding` was decided from the whole file (`file_encoding`), so a
            piece never switches encodings on its own bytes.
    """
    if raw and not raw.endswith(b"\n"):
        raw += b"\n"
    arr = np.frombuffer(raw, dtype=np.uint8)
    newlines = np.flatnonzero(arr == 10)
    starts = (
        np.concatenate(([0], newlines[:-1] + 1)).astype(np.int64) if len(newlines) else np.zeros(0, np.int64)
    )
    notes: list[str] = []
    bad: dict[int, str] = {}
    high = np.zeros(0, np.int64) if raw.isascii() else np.flatnonzero(arr >= 0x80)
    has_bom = offset == 0 and raw.startswith(_BOM)
    if high.size:
        try:
            raw.decode(UTF8)
            utf8_ok = True
        except UnicodeDecodeError:
            utf8_ok = False
    else:
        utf8_ok = True
    if detect_encoding:
        encoding, note = file_encoding(encoding, has_bom, bool(high.size), utf8_ok)
        notes.extend([note] if note else [])
    if high.size and encoding == UTF8 and not utf8_ok:
        for index in np.unique(np.searchsorted(newlines, high)):
            start, end = int(starts[index]), int(newlines[index])
            try:
                raw[start:end].decode(UTF8)
            except UnicodeDecodeError as exc:
                byte = raw[start + exc.start]
                bad[int(index)] = (
                    f"invalid UTF-8 byte 0x{byte:02X} at byte offset {offset + start + exc.start} of the "
                    f"file (column {exc.start + 1} of the line)"
                )
    if b"\r" in raw:  # CRLF line ends: drop the CR so it never ends up inside the last field
        raw = raw.replace(b"\r\n", b"\n")
        arr = np.frombuffer(raw, dtype=np.uint8)
        newlines = np.flatnonzero(arr == 10)
        starts = np.concatenate(([0], newlines[:-1] + 1)).astype(np.int64) if len(newlines) else starts
    if has_bom:  # line 1 then starts after the BOM; it is not part of any field
        starts = starts.copy()
        starts[0] = len(_BOM)
    return Lines(path, name, raw, starts, newlines.astype(np.int64), encoding, bad, notes)


def file_encoding(declared: str, has_bom: bool, has_high: bool, utf8_ok: bool) -> tuple[str, str | None]:
    """The encoding a file is read in, and the note that says why where it is not `declared`.

    Args:
        declared: the layout's encoding for the file.
        has_bom: the file starts with the UTF-8 byte order mark (then it is UTF-8).
        has_high: the file has a byte >= 0x80 anywhere.
        utf8_ok: all of the file's bytes are valid UTF-8.
    """
    encoding = UTF8 if has_bom else declared
    if has_high and encoding == LATIN1 and utf8_ok:
        return UTF8, "decoded as UTF-8: the file is valid UTF-8 although this layout's files are ISO-8859-1"
    return encoding, None
