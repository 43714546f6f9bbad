"""Rating files as sharded Beam sources: `load_dataset`'s parsing and checks, one piece at a time.

A rating file is cut into pieces of about `chunk_bytes` at line starts, so no worker ever holds more
than one piece (Netflix files are one piece each: a `MovieID:` line heads the block of lines after it).
Each piece is parsed by the loader's own functions (`lines_from_bytes`, `parse_rating_rows`,
`parse_netflix_file`), so a row is accepted or rejected for the same reason as by `load_dataset`:

1. `ScanPieces`: every piece counts its lines and notes its encoding facts (in parallel); the small
   per-file table that follows (line number where each piece starts, the file's encoding, its header
   line) is a side input of the next step. Whole-file problems (empty file, wrong header) raise here.
2. `_ParsePiece`: every piece parses its rows (in parallel). Rejected rows are counted by file and
   reason, with their first examples' lines, into the report and the Beam metrics
   (namespace `movierec.example_gen`). Accepted rows leave grouped by user.
3. `_DedupeUser` after a `GroupByKey` on the user: a later copy of a (user, item, timestamp) is
   rejected (the first copy in reading order is kept, across files, as `load_dataset` keeps it), and
   ids missing from the item/user tables are warned about.
4. `_FetchTexts`: the report's examples of step 3 carry the text of their line; only the (at most
   20 per file and reason) lines shown are read again, from their pieces.

The report (`load_report`) is then the same `LoadReport` `load_dataset` returns for the same files.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import apache_beam as beam
import numpy as np

from movierec import storage
from movierec.data._lines import LATIN1, file_encoding, line_text, lines_from_bytes
from movierec.data._ratings import parse_netflix_file, parse_rating_rows
from movierec.data.errors import DataError
from movierec.data.loader import DUPLICATE, DatasetPlan, RatingFile
from movierec.data.report import MAX_EXAMPLES, FileReport, LoadReport

CHUNK_BYTES = 64 << 20
"""Bytes per piece of a rating file: big enough that numpy and pandas' C parser do the work, small
enough that a worker's memory stays a few hundred MB whatever the file's size."""
METRICS = "movierec.example_gen"
_SCAN_BLOCK = 1 << 16


@dataclass(frozen=True)
class Piece:
    """Bytes [start, end) of rating file number `file` (a nominal range: the piece owns the lines
    that start in it)."""

    file: int
    index: int
    start: int
    end: int


class PieceStats(NamedTuple):
    """What the scan of one piece found (line starts are resolved to exact byte offsets here)."""

    file: int
    index: int
    begin: int  # byte offset of the first line the piece owns
    stop: int  # byte offset after the last line the piece owns
    lines: int
    first_nonblank: int  # 0-based index within the piece; -1 when every line is blank
    second_nonblank: int  # the next one (for the header rule); -1 when none
    first_text: bytes  # the raw bytes of the first non-blank line (the header check)
    has_bom: bool
    has_high: bool
    utf8_ok: bool


@dataclass(frozen=True)
class FileLayout:
    """Where each piece of one file starts in lines, and the file-wide facts its pieces need."""

    encoding: str
    notes: tuple[str, ...]
    data_start: int  # 0-based index of the first data line (after the header)
    pieces: tuple[tuple[int, int, int, int], ...]  # per piece: begin, stop, first line index, lines


class Issue(NamedTuple):
    """Rows of one file rejected (or warned about) for one reason: a count and the first examples."""

    order: tuple[int, int, int]  # where the category comes in the file's report (the loader's order)
    count: int
    examples: tuple[tuple[int, str, str | None], ...]  # (line, reason, text or None until fetched)


def _file_size(path: str | Path) -> int:
    if storage.is_uri(path):
        import tensorflow as tf  # only for remote files

        return int(tf.io.gfile.stat(os.fspath(path)).length)
    return os.path.getsize(path)


def plan_pieces(plan: DatasetPlan, chunk_bytes: int = CHUNK_BYTES) -> list[Piece]:
    """The pieces of every rating file of `plan` (Netflix files: one piece each).

    Args:
        plan: the dataset, from `movierec.data.loader.plan_dataset`.
        chunk_bytes: the nominal size of a piece.
    """
    if chunk_bytes <= 0:
        raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")
    pieces = []
    for f, rating_file in enumerate(plan.rating_files):
        size = _file_size(rating_file.path)
        step = size if rating_file.kind == "netflix" else chunk_bytes
        count = max(1, -(-size // max(step, 1)))
        for k in range(count):
            pieces.append(Piece(f, k, k * step, size if k == count - 1 else (k + 1) * step))
    return pieces


def _line_start(handle, position: int, size: int) -> int:
    """The first line start at or after `position` (`size` when none)."""
    if position <= 0:
        return 0
    if position >= size:
        return size
    handle.seek(position - 1)
    at = position - 1
    while True:
        block = handle.read(_SCAN_BLOCK)
        if not block:
            return size
        found = block.find(b"\n")
        if found >= 0:
            return min(at + found + 1, size)
        at += len(block)


def _read_range(path: str | Path, begin: int, stop: int) -> bytes:
    if stop <= begin:
        return b""
    with storage.open_file(path, "rb") as handle:
        handle.seek(begin)
        return handle.read(stop - begin)


class _ScanPiece(beam.DoFn):
    """Pass 1: a piece's exact byte range, its number of lines, and its encoding facts."""

    def __init__(self, files: list[RatingFile]) -> None:
        self.files = files

    def process(self, piece: Piece) -> Iterator[PieceStats]:
        rating_file = self.files[piece.file]
        size = _file_size(rating_file.path)
        with storage.open_file(rating_file.path, "rb") as handle:
            begin = _line_start(handle, piece.start, size)
            stop = _line_start(handle, piece.end, size)
        raw = _read_range(rating_file.path, begin, stop)
        # LATIN1 never looks for bad UTF-8 lines: the scan only counts; pass 2 decodes
        lines = lines_from_bytes(
            raw, rating_file.path, rating_file.name, LATIN1, offset=begin, detect_encoding=False
        )
        nonblank = np.flatnonzero(~lines.blank)
        has_high = not raw.isascii()
        try:
            raw.decode("utf-8")
            utf8_ok = True
        except UnicodeDecodeError:
            utf8_ok = False
        first = int(nonblank[0]) if len(nonblank) else -1
        yield PieceStats(
            piece.file,
            piece.index,
            begin,
            stop,
            len(lines),
            first,
            int(nonblank[1]) if len(nonblank) > 1 else -1,
            lines.data[lines.starts[first] : lines.ends[first]] if first >= 0 else b"",
            begin == 0 and raw.startswith(b"\xef\xbb\xbf"),
            has_high,
            utf8_ok,
        )


def file_layouts(stats: Iterable[PieceStats], files: list[RatingFile]) -> dict[int, FileLayout]:
    """Each file's layout from its pieces' scans; raises the loader's whole-file errors (an empty
    file, a header line that is not the layout's), in the loader's order."""
    by_file: dict[int, list[PieceStats]] = {}
    for s in stats:
        by_file.setdefault(s.file, []).append(s)
    layouts = {}
    for f, rating_file in enumerate(files):
        pieces = sorted(by_file.get(f, []), key=lambda s: s.index)
        encoding, note = file_encoding(
            rating_file.encoding,
            bool(pieces) and pieces[0].has_bom,
            any(s.has_high for s in pieces),
            all(s.utf8_ok for s in pieces),
        )
        offsets = np.concatenate(([0], np.cumsum([s.lines for s in pieces]))).astype(int)
        nonblank = [
            (int(offsets[k]) + s.first_nonblank, int(offsets[k]) + s.second_nonblank, s.first_text)
            for k, s in enumerate(pieces)
            if s.first_nonblank >= 0
        ]
        data_start = 0
        if rating_file.kind == "delimited":  # Netflix files: parse_netflix_file checks the whole file
            if not nonblank:
                raise DataError(rating_file.path, None, "empty ratings file: it has no rating rows")
            first, second, text = nonblank[0]
            data_start = first
            if rating_file.header is not None:
                found = line_text(text, encoding).strip()
                if found != rating_file.header:
                    raise DataError(
                        rating_file.path,
                        first + 1,
                        f"expected the header line {rating_file.header!r}, found {found!r} (is this the "
                        "right layout?)",
                    )
                if second < 0 and len(nonblank) < 2:
                    raise DataError(
                        rating_file.path, None, "empty ratings file: it has a header line but no rating rows"
                    )
                data_start = first + 1
        layouts[f] = FileLayout(
            encoding,
            (note,) if note else (),
            data_start,
            tuple((s.begin, s.stop, int(offsets[k]), s.lines) for k, s in enumerate(pieces)),
        )
    return layouts


def _shifted(report: FileReport, first_line: int) -> Iterator[tuple[str, Issue]]:
    """The rejections of a piece's report, with line numbers made the file's."""
    for position, (category, count) in enumerate(report.rejected.items()):
        examples = tuple((r.line + first_line, r.reason, r.text) for r in report.examples.get(category, []))
        yield category, Issue((0, 0, position), count, examples)


class _ParsePiece(beam.DoFn):
    """Pass 2: a piece's rows through the loader's parser; accepted rows grouped by user."""

    ISSUES = "issues"
    READ = "read"

    def __init__(self, files: list[RatingFile]) -> None:
        self.files = files

    def process(self, piece: Piece, layouts: dict[int, FileLayout]) -> Iterator[Any]:
        rating_file = self.files[piece.file]
        layout = layouts[piece.file]
        begin, stop, first_line, _ = layout.pieces[piece.index]
        raw = _read_range(rating_file.path, begin, stop)
        report = FileReport(rating_file.path, rating_file.name)
        if rating_file.kind == "netflix":  # one piece per file: the loader's own whole-file reading
            lines = lines_from_bytes(raw, rating_file.path, rating_file.name, rating_file.encoding)
            ratings = parse_netflix_file(lines, report, rating_file.scale)
        else:
            lines = lines_from_bytes(
                raw, rating_file.path, rating_file.name, layout.encoding, offset=begin, detect_encoding=False
            )
            nonblank = np.flatnonzero(~lines.blank)
            first = max(layout.data_start - first_line, 0)
            nonblank = nonblank[nonblank >= first]
            if not len(nonblank):
                return
            ratings = parse_rating_rows(
                lines,
                report,
                rating_file.sep,
                int(nonblank[0]),
                int(nonblank[-1]),
                rating_file.scale,
                rating_file.sep_name,
            )
        yield beam.pvalue.TaggedOutput(self.READ, (piece.file, (report.rows_read, tuple(report.notes))))
        for category, issue in _shifted(report, first_line):
            issue = issue._replace(order=(0, piece.index, issue.order[2]))
            _count(rating_file.name, category, issue)
            yield beam.pvalue.TaggedOutput(self.ISSUES, ((piece.file, "rejected", category), issue))
        if not len(ratings):
            return
        order = np.argsort(ratings.user, kind="stable")
        user = ratings.user[order]
        cuts = np.flatnonzero(np.r_[True, user[1:] != user[:-1]])
        ends = np.r_[cuts[1:], len(user)]
        line = ratings.line[order] + first_line
        for a, b in zip(cuts, ends, strict=True):
            rows = order[a:b]
            yield (
                int(user[a]),
                (
                    piece.file,
                    ratings.item[rows],
                    ratings.rating[rows],
                    ratings.timestamp[rows],
                    line[a:b],
                ),
            )


def _count(name: str, category: str, issue: Issue) -> None:
    """The Beam metrics of rejected rows: a counter per file and reason, and the lines shown in the
    report as a distribution (its min is the first such line)."""
    beam.metrics.Metrics.counter(METRICS, "rejected_rows").inc(issue.count)
    beam.metrics.Metrics.counter(METRICS, f"rejected {name}: {category}").inc(issue.count)
    lines = beam.metrics.Metrics.distribution(METRICS, f"rejected line {name}: {category}")
    for line, _, _ in issue.examples:
        lines.update(line)


class UserEvents(NamedTuple):
    """One user's accepted events (in reading order)."""

    user: int
    item: np.ndarray
    rating: np.ndarray
    timestamp: np.ndarray


class _DedupeUser(beam.DoFn):
    """After the GroupByKey on user: `_reject_duplicates` and `_warn_unknown` of the loader, per user."""

    ISSUES = "issues"

    def __init__(
        self,
        names: list[str],
        known_items: np.ndarray | None,
        items_name: str | None,
        known_users: np.ndarray | None,
        users_name: str | None,
    ) -> None:
        self.names = names
        self.known_items, self.items_name = known_items, items_name
        self.known_users, self.users_name = known_users, users_name

    def process(self, element: tuple[int, Iterable[tuple]]) -> Iterator[Any]:
        user, batches = element
        batches = list(batches)
        files = np.concatenate([np.full(len(b[1]), b[0], np.int64) for b in batches])
        item = np.concatenate([b[1] for b in batches])
        rating = np.concatenate([b[2] for b in batches])
        ts = np.concatenate([b[3] for b in batches])
        line = np.concatenate([b[4] for b in batches])
        order = np.lexsort((line, files))  # reading order: files in the loader's order, then lines
        files, item, rating, ts, line = files[order], item[order], rating[order], ts[order], line[order]
        position = np.arange(len(item))
        by_key = np.lexsort((position, ts, item))
        same = (item[by_key][1:] == item[by_key][:-1]) & (ts[by_key][1:] == ts[by_key][:-1])
        keep = np.ones(len(item), dtype=bool)
        if same.any():
            opens = np.r_[True, ~same]
            first = by_key[np.maximum.accumulate(np.where(opens, np.arange(len(by_key)), 0))]
            dup, original = by_key[1:][same], first[1:][same]
            keep[dup] = False
            at = np.argsort(dup)  # by position: per file, by line
            dup, original = dup[at], original[at]
            for f in np.unique(files[dup]):
                here = files[dup] == f
                rows, firsts = dup[here], original[here]
                examples = []
                for r, o in zip(rows[:MAX_EXAMPLES], firsts[:MAX_EXAMPLES], strict=True):
                    where = f"line {int(line[o])}"
                    if files[o] != f:
                        where = f"{self.names[int(files[o])]} {where}"
                    reason = (
                        f"duplicate of {where} (user {user}, item {item[r]}, timestamp {ts[r]}); "
                        "the first is kept"
                    )
                    examples.append((int(line[r]), reason, None))
                issue = Issue((1, 0, 0), len(rows), tuple(examples))
                _count(self.names[int(f)], DUPLICATE, issue)
                yield beam.pvalue.TaggedOutput(self.ISSUES, ((int(f), "rejected", DUPLICATE), issue))
        files, item, rating, ts, line = files[keep], item[keep], rating[keep], ts[keep], line[keep]
        for order_key, known, ids, what, table in (
            (2, self.known_items, item, "item", self.items_name),
            (3, self.known_users, np.full(len(item), user, np.int64), "user", self.users_name),
        ):
            if known is None:
                continue
            missing = ~np.isin(ids, known)
            for f in np.unique(files[missing]):
                rows = np.flatnonzero(missing & (files == f))
                examples = tuple(
                    (int(line[r]), f"{what} {ids[r]} is not in {table}; the rating is kept", None)
                    for r in rows[:MAX_EXAMPLES]
                )
                issue = Issue((order_key, 0, 0), len(rows), examples)
                yield beam.pvalue.TaggedOutput(
                    self.ISSUES, ((int(f), "warning", f"{what} not in {table} (kept)"), issue)
                )
        yield UserEvents(user, item, rating, ts)


class CombineIssues(beam.CombineFn):
    """Counts add up; the examples kept are the first MAX_EXAMPLES by line (as `FileReport` keeps)."""

    def create_accumulator(self) -> Issue:
        return Issue((9, 0, 0), 0, ())

    def add_input(self, accumulator: Issue, issue: Issue) -> Issue:
        return self.merge_accumulators([accumulator, issue])

    def merge_accumulators(self, accumulators: Iterable[Issue]) -> Issue:
        accumulators = list(accumulators)
        examples = sorted((e for a in accumulators for e in a.examples), key=lambda e: e[0])
        return Issue(
            min(a.order for a in accumulators),
            sum(a.count for a in accumulators),
            tuple(examples[:MAX_EXAMPLES]),
        )

    def extract_output(self, accumulator: Issue) -> Issue:
        return accumulator


class _FetchTexts(beam.DoFn):
    """Reads again only the pieces that hold a line the report shows without its text."""

    def __init__(self, files: list[RatingFile]) -> None:
        self.files = files

    def process(
        self, piece: Piece, layouts: dict[int, FileLayout], wanted: dict[int, list[int]]
    ) -> Iterator[tuple[tuple[int, int], str]]:
        begin, stop, first_line, count = layouts[piece.file].pieces[piece.index]
        lines_here = [n for n in wanted.get(piece.file, []) if first_line < n <= first_line + count]
        if not lines_here:
            return
        rating_file = self.files[piece.file]
        raw = _read_range(rating_file.path, begin, stop)
        if rating_file.kind == "netflix":
            lines = lines_from_bytes(raw, rating_file.path, rating_file.name, rating_file.encoding)
        else:
            encoding = layouts[piece.file].encoding
            lines = lines_from_bytes(
                raw, rating_file.path, rating_file.name, encoding, offset=begin, detect_encoding=False
            )
        for n in lines_here:
            yield (piece.file, n), lines.text(n - 1 - first_line)


def _wanted_lines(issues: list[tuple[tuple[int, str, str], Issue]]) -> dict[int, list[int]]:
    wanted: dict[int, list[int]] = {}
    for (f, _, _), issue in issues:
        wanted.setdefault(f, []).extend(line for line, _, text in issue.examples if text is None)
    return wanted


class RatingsRead(NamedTuple):
    """The outputs of `ReadRatings`."""

    events: beam.PCollection  # UserEvents, one per user
    read: beam.PCollection  # singleton: {file index: (rows read, notes)}
    issues: beam.PCollection  # singleton: [((file index, "rejected" | "warning", category), Issue)]
    texts: beam.PCollection  # singleton: {(file index, line): text} of the examples shown
    layouts: beam.PCollection  # singleton: {file index: FileLayout}


class ReadRatings(beam.PTransform):
    """The rating files of a planned dataset as per-user accepted events, with everything the load
    report needs (see the module's docstring for the steps)."""

    def __init__(self, plan: DatasetPlan, chunk_bytes: int = CHUNK_BYTES) -> None:
        super().__init__()
        self.plan, self.chunk_bytes = plan, chunk_bytes

    def expand(self, root: beam.pvalue.PBegin) -> RatingsRead:
        plan = self.plan
        files = list(plan.rating_files)
        names = [f.name for f in files]
        known_items = (
            None if plan.items is None else np.sort(plan.items["item_id"].astype(np.int64).to_numpy())
        )
        known_users = (
            None if plan.users is None else np.sort(plan.users["user_id"].astype(np.int64).to_numpy())
        )
        planned = plan_pieces(plan, self.chunk_bytes)

        def pieces(step: str) -> beam.PCollection:
            # One source per consumer: a consumer fused with another's producer could wait for a side
            # input that its own stage computes (the FnApiRunner then stops with pending bundles).
            return root | f"Plan{step}" >> beam.Create(planned) | f"Spread{step}" >> beam.Reshuffle()

        layouts = (
            pieces("Scan")
            | "ScanPieces" >> beam.ParDo(_ScanPiece(files))
            | "AllScans" >> beam.combiners.ToList()
            | "FileLayouts" >> beam.Map(file_layouts, files)
        )
        parsed = pieces("Parse") | "ParsePieces" >> beam.ParDo(
            _ParsePiece(files), beam.pvalue.AsSingleton(layouts)
        ).with_outputs(_ParsePiece.ISSUES, _ParsePiece.READ, main="rows")
        checked = (
            parsed.rows
            | "GroupByUser" >> beam.GroupByKey()
            | "DedupeUsers"
            >> beam.ParDo(
                _DedupeUser(names, known_items, plan.items_name, known_users, plan.users_name)
            ).with_outputs(_DedupeUser.ISSUES, main="events")
        )
        issues = (
            (parsed[_ParsePiece.ISSUES], checked[_DedupeUser.ISSUES])
            | "AllIssues" >> beam.Flatten()
            | "CombineIssues" >> beam.CombinePerKey(CombineIssues())
            | "IssueList" >> beam.combiners.ToList()
        )
        read = (
            parsed[_ParsePiece.READ]
            | "CombineRead" >> beam.CombinePerKey(lambda values: _sum_read(values))
            | "ReadDict" >> beam.combiners.ToDict()
        )
        texts = (
            pieces("Fetch")
            | "FetchTexts"
            >> beam.ParDo(
                _FetchTexts(files),
                beam.pvalue.AsSingleton(layouts),
                beam.pvalue.AsSingleton(issues | "WantedLines" >> beam.Map(_wanted_lines)),
            )
            | "TextDict" >> beam.combiners.ToDict()
        )
        return RatingsRead(checked.events, read, issues, texts, layouts)


def _sum_read(values: Iterable[tuple[int, tuple[str, ...]]]) -> tuple[int, tuple[str, ...]]:
    rows, notes = 0, ()
    for n, more in values:
        rows += n
        notes = notes or more  # one piece (Netflix: the only one) carries a file's notes
    return rows, notes


def load_report(
    plan: DatasetPlan,
    layouts: dict[int, FileLayout],
    read: dict[int, tuple[int, tuple[str, ...]]],
    issues: list[tuple[tuple[int, str, str], Issue]],
    texts: dict[tuple[int, int], str],
) -> LoadReport:
    """The `LoadReport` `load_dataset` would return for the planned dataset, from `ReadRatings`'
    outputs (the side tables' reports come from the plan)."""
    report = copy.deepcopy(plan.report)
    by_path = {str(f.file): f for f in report.files}
    ordered = sorted(issues, key=lambda kv: (kv[0][0], kv[1].order))
    for f, rating_file in enumerate(plan.rating_files):
        file_report = by_path[str(rating_file.path)]
        rows, notes = read.get(f, (0, ()))
        file_report.rows_read = rows
        file_report.notes.extend(layouts[f].notes if rating_file.kind == "delimited" else notes)
        for (g, kind, category), issue in ordered:
            if g != f:
                continue
            lines = [e[0] for e in issue.examples]
            reasons = [e[1] for e in issue.examples]
            shown = [e[2] if e[2] is not None else texts[(f, e[0])] for e in issue.examples]
            add = file_report.reject if kind == "rejected" else file_report.warn
            add(category, issue.count, lines, reasons, shown)
    for file_report in report.files:
        if str(file_report.file) in {str(f.path) for f in plan.rating_files}:
            file_report.rows_accepted = file_report.rows_read - file_report.total_rejected
    return report


def checksum_stream(files: Iterable[str | Path]) -> str:
    """`movierec.data.loader.checksum_files`, for a worker: one file at a time, 1 MB at a time."""
    from movierec.data.loader import checksum_files

    return checksum_files(list(files))


__all__ = [
    "CHUNK_BYTES",
    "METRICS",
    "CombineIssues",
    "FileLayout",
    "Issue",
    "Piece",
    "RatingsRead",
    "ReadRatings",
    "UserEvents",
    "checksum_stream",
    "file_layouts",
    "load_report",
    "plan_pieces",
]
