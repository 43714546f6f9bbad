"""What happened to every row of every file a load read.

Bad rows are never dropped silently: each one is counted under a reason, and the first examples of
each reason are kept with their file, line and text, so a person can find and fix them and a run's
results can say exactly how much of the data they used.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from movierec import storage
from movierec.data.errors import DataError

MAX_EXAMPLES = 20
"""Examples kept per file and reason: enough to see a pattern, bounded for a file of 25M bad rows."""


@dataclass(frozen=True)
class RejectedRow:
    """One row that was rejected (or, in `FileReport.warning_examples`, kept with a warning)."""

    file: str | Path  # a URI string for data read through tf.io.gfile
    line: int
    reason: str
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"file": str(self.file), "line": self.line, "reason": self.reason, "text": self.text}


@dataclass
class FileReport:
    """Counts for one file. Invariant: rows_read == rows_accepted + sum(rejected.values()).

    `rejected` and `warnings` count rows by reason category (e.g. "rating out of range 1–5"); the
    examples carry the row-specific reason (e.g. "rating 7 out of range 1–5").
    """

    file: str | Path
    name: str
    rows_read: int = 0
    rows_accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[RejectedRow]] = field(default_factory=dict)
    warnings: dict[str, int] = field(default_factory=dict)
    warning_examples: dict[str, list[RejectedRow]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def total_rejected(self) -> int:
        return sum(self.rejected.values())

    def reject(
        self, category: str, count: int, lines: Sequence[int], reasons: Sequence[str], texts: Sequence[str]
    ) -> None:
        """Count `count` rejected rows under `category`; the sequences describe the first of them."""
        _add(self.rejected, self.examples, self.file, category, count, lines, reasons, texts)

    def warn(
        self, category: str, count: int, lines: Sequence[int], reasons: Sequence[str], texts: Sequence[str]
    ) -> None:
        """Count `count` rows that were kept but deserve a person's attention."""
        _add(self.warnings, self.warning_examples, self.file, category, count, lines, reasons, texts)

    def first_rejected(self) -> RejectedRow | None:
        rows = [rows[0] for rows in self.examples.values() if rows]
        return min(rows, key=lambda r: r.line) if rows else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": str(self.file),
            "name": self.name,
            "rows_read": self.rows_read,
            "rows_accepted": self.rows_accepted,
            "rows_rejected": self.total_rejected,
            "rejected": dict(self.rejected),
            "examples": {k: [r.to_dict() for r in v] for k, v in self.examples.items()},
            "warnings": dict(self.warnings),
            "warning_examples": {k: [r.to_dict() for r in v] for k, v in self.warning_examples.items()},
            "notes": list(self.notes),
        }

    def summary_lines(self) -> list[str]:
        out = [f"{self.name}: {self.rows_read} rows read, {self.rows_accepted} accepted"]
        for category, count in self.rejected.items():
            out.append(f"{self.name}: {count} rejected — {_describe(category, self.examples[category])}")
        for category, count in self.warnings.items():
            word = "warning" if count == 1 else "warnings"
            out.append(
                f"{self.name}: {count} {word} — {_describe(category, self.warning_examples[category])}"
            )
        out.extend(f"{self.name}: note — {note}" for note in self.notes)
        return out


def _add(counts, examples, file, category, count, lines, reasons, texts) -> None:
    if count <= 0:
        return
    counts[category] = counts.get(category, 0) + count
    kept = examples.setdefault(category, [])
    for line, reason, text in zip(lines, reasons, texts, strict=True):
        if len(kept) >= MAX_EXAMPLES:
            break
        kept.append(RejectedRow(file, int(line), reason, text))
    kept.sort(key=lambda r: r.line)
    del kept[MAX_EXAMPLES:]


def _describe(category: str, examples: list[RejectedRow]) -> str:
    if not examples:
        return category
    first = examples[0]
    if all(r.reason == first.reason for r in examples):
        return f"{first.reason} (first at line {first.line})"
    return f"{category} (first at line {first.line}: {first.reason})"


@dataclass
class LoadReport:
    """The per-file reports of one load, in the order the files were read."""

    files: list[FileReport] = field(default_factory=list)

    def add_file(self, path: str | Path, name: str) -> FileReport:
        report = FileReport(file=path, name=name)
        self.files.append(report)
        return report

    def __getitem__(self, name: str) -> FileReport:
        """The report of the file with this display name (e.g. "u.data")."""
        for report in self.files:
            if report.name == name or storage.name(report.file) == name:
                return report
        raise KeyError(name)

    @property
    def total_rejected(self) -> int:
        return sum(f.total_rejected for f in self.files)

    @property
    def total_warnings(self) -> int:
        return sum(sum(f.warnings.values()) for f in self.files)

    def rejected_examples(self) -> Iterator[RejectedRow]:
        for report in self.files:
            for rows in report.examples.values():
                yield from rows

    def first_rejected(self) -> RejectedRow | None:
        """The first rejected row of the first file (in reading order) that has any."""
        for report in self.files:
            row = report.first_rejected()
            if row is not None:
                return row
        return None

    def raise_first(self) -> None:
        """Raise the first rejected row as a DataError (what `strict=True` loads do)."""
        row = self.first_rejected()
        if row is not None:
            raise DataError(
                row.file, row.line, f"{row.reason} (strict mode rejects any bad row): {row.text!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, for run records and the CLI's --json output."""
        return {
            "total_rejected": self.total_rejected,
            "total_warnings": self.total_warnings,
            "files": [f.to_dict() for f in self.files],
        }

    def summary(self) -> str:
        """Human text: one line per file, then one per file and reason."""
        return "\n".join(line for f in self.files for line in f.summary_lines())
