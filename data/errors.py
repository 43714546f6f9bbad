"""The one exception the data layer raises, so callers (the CLI, the pipeline) can catch a single type."""

from __future__ import annotations

from pathlib import Path


class DataError(Exception):
    """A data file or folder cannot be used as it is.

    It carries where the problem is (`path`, and `line` when one line is to blame) and `reason`, and
    prints as ``FILE:LINE: reason`` (or ``FILE: reason``) so a person can jump straight to it, the way
    compilers report errors.
    """

    def __init__(self, path: str | Path | None, line: int | None, reason: str) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.path is None:
            return self.reason
        where = f"{self.path}:{self.line}" if self.line is not None else f"{self.path}"
        return f"{where}: {self.reason}"

    def __reduce__(self):  # keeps the three fields when pickled (multiprocessing, Beam workers)
        return (type(self), (self.path, self.line, self.reason))
