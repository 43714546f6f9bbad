"""Any protocol's split written as session-tsv files, which every command reads back with given-split.

    split = make_split(dataset.interactions, "temporal", seed=3)
    write_split(dataset, split, "runs/ml-100k-temporal")  # train/validation/test.tsv, split.json
    load_dataset("runs/ml-100k-temporal")  # layout session-tsv, read with the given-split protocol

Only kept rows are written (the split's `dropped` counts go to split.json with its parameters and the
source data's checksum), so `evaluate --data OUT --protocol given-split` sees exactly the events of the
original protocol: same training events, same user and item sets, same evaluation events with the
same roles, same timestamps, hence the same metrics.
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from movierec import storage
from movierec.constants import ROLE_NAMES
from movierec.data import Dataset
from movierec.data.schema import SESSION_IDS
from movierec.data.splits import Split

SPLIT_FILES = {name: f"{name}.tsv" for name in ROLE_NAMES.values()}
MANIFEST = "split.json"


def _time_text(timestamps: np.ndarray, unit: str) -> pd.Series:
    """Time as the session-tsv reader expects it: seconds, with exactly three decimals when the data
    is in milliseconds (so it reads back to the same integer milliseconds, never through a float)."""
    if unit == "s":
        return pd.Series(timestamps.astype(np.int64)).astype(str)
    seconds, millis = np.divmod(timestamps.astype(np.int64), 1000)
    return pd.Series(seconds).astype(str) + "." + pd.Series(millis).astype(str).str.zfill(3)


def split_table(dataset: Dataset, rows: np.ndarray) -> str:
    """The rows (indices into the interactions) as one session-tsv file, header included.

    Session data keeps the `SessionId` header (so given-split evaluates it as sessions again), all
    other data `UserId`. Ratings are written as float64 text of the float32 values: they read back
    to the same float32.
    """
    frame = dataset.interactions
    sessions = bool(frame.attrs.get(SESSION_IDS, False))
    rows = np.sort(rows)  # the source's file order: any order reads back the same split
    table = pd.DataFrame(
        {
            "SessionId" if sessions else "UserId": frame["user_id"].to_numpy()[rows],
            "ItemId": frame["item_id"].to_numpy()[rows],
            "Rating": frame["rating"].to_numpy(dtype=np.float64)[rows],
            "Time": _time_text(frame["timestamp"].to_numpy()[rows], dataset.time_unit).to_numpy(),
        }
    )
    buffer = io.StringIO()
    table.to_csv(buffer, sep="\t", index=False, lineterminator="\n", float_format=None)
    return buffer.getvalue()


def manifest(dataset: Dataset, split: Split, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """What split.json records: the protocol with its parameters and dropped counts, the files, and
    where the data came from (so a result on the written split can be traced to its source)."""
    return {
        "protocol": split.protocol,
        "params": split.params,
        "dropped": split.dropped,
        "rows": {role: len(getattr(split, role)) for role in SPLIT_FILES},
        "files": dict(SPLIT_FILES),
        "time_unit": dataset.time_unit,
        "source": {
            "name": dataset.name,
            "layout": dataset.layout,
            "checksum": dataset.checksum,
            "files": [str(f) for f in dataset.files],
            "interactions": len(dataset.interactions),
            "rejected_rows": dataset.report.total_rejected,
        },
        **(extra or {}),
    }


def write_split(
    dataset: Dataset,
    split: Split,
    out: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    extra: dict[str, Any] | None = None,
) -> str | Path:
    """Writes train.tsv, validation.tsv, test.tsv and split.json into the folder `out` (a local path
    or a URI) and returns it.

    The files are written into a temporary sibling folder that takes the final name only once all
    are complete (`storage.publish_folder`), so a failed run never leaves a partial split that
    would read back as a smaller one. An existing `out` is replaced only with `overwrite`.
    """
    out = storage.as_path(out)
    if storage.exists(out) and not overwrite:
        raise FileExistsError(f"{out} already exists (pass overwrite=True / --force to replace it)")
    # the staging folder is a sibling: the final rename then stays within one filesystem
    parent = posixpath.dirname(str(out).rstrip("/")) if storage.is_uri(out) else Path(out).resolve().parent
    storage.makedirs(parent)
    staging = storage.join(parent, f".{storage.name(out)}.tmp-{uuid.uuid4().hex[:12]}")
    storage.makedirs(staging)
    try:
        for role, name in SPLIT_FILES.items():
            storage.write_text(storage.join(staging, name), split_table(dataset, getattr(split, role)))
        text = json.dumps(manifest(dataset, split, extra), indent=2, default=_json_default)
        storage.write_text(storage.join(staging, MANIFEST), text + "\n")
        storage.publish_folder(staging, out, last=MANIFEST)
    finally:
        storage.remove_tree(staging)
    return out


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to split.json")
