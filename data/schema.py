"""The canonical dataset every later stage reads, whatever layout the files came in."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from movierec.constants import ROLE_NAMES
from movierec.data.report import LoadReport

INTERACTION_COLUMNS = ("user_id", "item_id", "rating", "timestamp")
ITEM_COLUMNS = ("item_id", "title", "year", "genres")
USER_COLUMNS = ("user_id", "age", "gender", "occupation", "zip_code")
GIVEN_SPLIT = "given_split"
"""Extra interactions column of layouts that come split (session-tsv): the file each row came from."""
GIVEN_SPLIT_VALUES = tuple(ROLE_NAMES.values())  # train, validation, test
SESSION_IDS = "session_ids"
"""Key of `interactions.attrs`: True when user_id holds session ids (session-tsv with SessionId)."""


def interactions_frame(rows) -> pd.DataFrame:
    """The canonical interactions table from in-memory data: (user, item, rating, timestamp) rows, or
    a mapping of those four columns to sequences."""
    frame = pd.DataFrame(rows, columns=list(INTERACTION_COLUMNS))
    return frame.astype({"user_id": str, "item_id": str, "rating": "float32", "timestamp": "int64"})


@dataclass(frozen=True, eq=False)
class Dataset:
    """One loaded dataset in the canonical schema.

    interactions: user_id (str), item_id (str), rating (float32), timestamp (int64 since 1970, in
        `time_unit`), in file order with rejected rows removed. Layouts that come with their own
        split (session-tsv) add `given_split` (categorical: train, validation or test, the file the
        row came from; the `given-split` protocol reads it) and set `interactions.attrs["session_ids"]`
        (True when user_id holds session ids: each test session is then evaluated from an empty state).
    items: item_id (str), title (str, trailing "(YYYY)" removed), year (Int64, nullable), genres
        (tuple of str); None when the layout has no item table.
    users: user_id (str), age (Int64), gender, occupation, zip_code (str or None); None when the layout
        (or this copy of it) has no user table.
    files / checksum: the files read, and the sha256 of their bytes concatenated in sorted-name order, so
        a result can record exactly which data it came from.
    time_unit: "s" (every layout), or "ms" for session-tsv files with fractional seconds in Time:
        rounding them to seconds would turn distinct clicks into timestamp ties (which the tie rule
        then hides from each other), so they are kept as integer milliseconds instead.
    """

    name: str
    layout: str
    interactions: pd.DataFrame
    items: pd.DataFrame | None
    users: pd.DataFrame | None
    report: LoadReport
    files: tuple[str | Path, ...]  # local Paths, or URI strings for data read through tf.io.gfile
    checksum: str
    time_unit: str = "s"

    def __repr__(self) -> str:  # the frames would print thousands of lines
        items = "no items" if self.items is None else f"{len(self.items)} items"
        users = "no users" if self.users is None else f"{len(self.users)} users"
        return (
            f"Dataset(name={self.name!r}, layout={self.layout!r}, {len(self.interactions)} interactions, "
            f"{items}, {users}, {self.report.total_rejected} rows rejected, checksum={self.checksum[:12]}…)"
        )
