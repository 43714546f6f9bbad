"""movierec.data: every supported dataset layout read into one canonical schema.

    from movierec.data import load_dataset, resolve_dataset
    ds = load_dataset(resolve_dataset("ml-100k"))
    ds.interactions  # user_id, item_id (str), rating (float32), timestamp (int64)
    print(ds.report.summary())

numpy + pandas + stdlib only, so the CLI and tests can use it without TensorFlow.
"""

from movierec.data._tables import ML1M_OCCUPATIONS, split_title_year
from movierec.data.errors import DataError
from movierec.data.fetch import KNOWN_DATASETS, KnownDataset, default_data_dir, fetch_dataset, resolve_dataset
from movierec.data.layouts import LAYOUTS, LayoutSpec, detect_layout
from movierec.data.loader import load_dataset
from movierec.data.report import FileReport, LoadReport, RejectedRow
from movierec.data.schema import INTERACTION_COLUMNS, ITEM_COLUMNS, USER_COLUMNS, Dataset, interactions_frame

__all__ = [
    "INTERACTION_COLUMNS",
    "ITEM_COLUMNS",
    "KNOWN_DATASETS",
    "LAYOUTS",
    "ML1M_OCCUPATIONS",
    "USER_COLUMNS",
    "DataError",
    "Dataset",
    "FileReport",
    "KnownDataset",
    "LayoutSpec",
    "LoadReport",
    "RejectedRow",
    "default_data_dir",
    "detect_layout",
    "fetch_dataset",
    "interactions_frame",
    "load_dataset",
    "resolve_dataset",
    "split_title_year",
]
