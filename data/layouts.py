"""Which files make up each supported dataset layout, and how to tell them apart.

Kept apart from the readers so error messages (missing file, unknown layout) and the downloader can
describe exactly which files a layout needs without importing pandas.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path

from movierec import storage
from movierec.data.errors import DataError


@dataclass(frozen=True)
class LayoutSpec:
    """The files of one layout; `marker` is the file whose presence identifies it."""

    name: str
    title: str
    marker: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    rating_range: tuple[float, float, float]  # lowest, highest, step

    @property
    def files_text(self) -> str:
        files = ", ".join(self.required)
        if self.optional:
            files += ", optional " + ", ".join(self.optional)
        return files

    def describe(self) -> str:
        return f"{self.name} ({self.title}): {self.files_text}"


NETFLIX_RATINGS = "combined_data_1.txt … combined_data_4.txt (any of them) or training_set/mv_*.txt"
GIVEN_TRAIN = "*train*.tsv|txt"
GIVEN_VALIDATION = "*valid*.tsv|txt"
GIVEN_TEST = "*test*.tsv|txt"
GIVEN_PATTERNS = {"train": GIVEN_TRAIN, "validation": GIVEN_VALIDATION, "test": GIVEN_TEST}

LAYOUTS: dict[str, LayoutSpec] = {
    spec.name: spec
    for spec in (
        LayoutSpec(
            "ml-100k", "MovieLens 100K", "u.data", ("u.data", "u.item", "u.genre"), ("u.user",), (1, 5, 1)
        ),
        LayoutSpec(
            "ml-dat",
            "MovieLens 1M / 10M",
            "ratings.dat",
            ("ratings.dat", "movies.dat"),
            ("users.dat",),
            (0.5, 5, 0.5),
        ),
        LayoutSpec(
            "ml-csv",
            "MovieLens 20M / 25M / 32M / latest / latest-small",
            "ratings.csv",
            ("ratings.csv", "movies.csv"),
            (),
            (0.5, 5, 0.5),
        ),
        LayoutSpec(
            "netflix",
            "Netflix Prize",
            "combined_data_1.txt",
            (NETFLIX_RATINGS, "movie_titles.csv"),
            (),
            (1, 5, 1),
        ),
        # GRU4Rec's published format (and `movierec data split --out`): the split comes with the files.
        # Ratings, where a file has them, on the union of the MovieLens/Netflix scales.
        LayoutSpec(
            "session-tsv",
            "tab-separated SessionId/UserId, ItemId, Time files with a given train/test split",
            GIVEN_TRAIN,
            (GIVEN_TRAIN, GIVEN_TEST),
            (GIVEN_VALIDATION,),
            (0.5, 5, 0.5),
        ),
    )
}

_COMBINED = re.compile(r"combined_data_(\d+)\.txt")


def netflix_rating_files(folder: str | Path) -> list[str | Path]:
    """The Netflix rating files, in reading order.

    combined_data_N.txt (the Kaggle repackaging) win over training_set/ (the original per-movie files)
    when both are present: they hold the same ratings, and reading both would duplicate every one.
    """
    names = storage.listdir(folder)
    combined = sorted(
        (n for n in names if _COMBINED.fullmatch(n) and storage.isfile(storage.join(folder, n))),
        key=lambda n: int(_COMBINED.fullmatch(n).group(1)),
    )
    if combined:
        return [storage.join(folder, n) for n in combined]
    training = storage.join(folder, "training_set")
    if not storage.isdir(training):
        return []
    return [storage.join(training, n) for n in storage.listdir(training) if fnmatch.fnmatch(n, "mv_*.txt")]


def given_split_role(name: str) -> str | None:
    """The role of a session-tsv file from its name: "validation" if it contains "valid", else
    "test" if it contains "test", else "train" if it contains "train" (case-insensitive; .tsv or .txt
    only), else None. "valid" comes first so GRU4Rec's rsc15_train_valid.txt is a validation file."""
    lower = name.lower()
    if not lower.endswith((".tsv", ".txt")):
        return None
    for word, role in (("valid", "validation"), ("test", "test"), ("train", "train")):
        if word in lower:
            return role
    return None


def given_split_candidates(folder: str | Path) -> dict[str, list[str]]:
    """The file names of `folder` per session-tsv role (a role without a file is absent)."""
    found: dict[str, list[str]] = {}
    for name in storage.listdir(folder):
        role = given_split_role(name)
        if role is not None and storage.isfile(storage.join(folder, name)):
            found.setdefault(role, []).append(name)
    return found


def given_split_files(folder: str | Path) -> dict[str, str]:
    """The one train, optional validation and one test file name of a session-tsv folder.

    Raises DataError naming the folder and the files found when a role has several candidates
    (e.g. GRU4Rec's rsc15_train_full.txt and rsc15_train_tr.txt side by side): which one is meant
    cannot be guessed, and reading both would train on the same events twice.
    """
    found = given_split_candidates(folder)
    for role, names in found.items():
        if len(names) > 1:
            everything = "; ".join(f"{r}: {', '.join(n)}" for r, n in sorted(found.items()))
            raise DataError(
                folder,
                None,
                f"session-tsv needs exactly one {role} file ({GIVEN_PATTERNS[role]}), found {len(names)}: "
                f"{', '.join(names)} (all split files found: {everything}); move the others out of "
                f"the folder {folder}",
            )
    return {role: names[0] for role, names in found.items()}


def missing_files(folder: str | Path, layout: str) -> list[str]:
    """The required files of `layout` that `folder` lacks (empty when it has them all)."""
    spec = layout_spec(layout)
    missing = []
    given = given_split_candidates(folder) if layout == "session-tsv" else {}
    for name in spec.required:
        if layout == "session-tsv":
            present = name in {GIVEN_PATTERNS[role] for role in given}
        else:
            present = (
                bool(netflix_rating_files(folder))
                if name == NETFLIX_RATINGS
                else storage.isfile(storage.join(folder, name))
            )
        if not present:
            missing.append(name)
    return missing


def layout_spec(layout: str) -> LayoutSpec:
    try:
        return LAYOUTS[layout]
    except KeyError:
        raise DataError(
            None, None, f"unknown layout {layout!r}; known layouts: {', '.join(LAYOUTS)}"
        ) from None


def _markers_present(folder: str | Path) -> list[str]:
    found = []
    for name, spec in LAYOUTS.items():
        if name == "netflix":
            present = bool(netflix_rating_files(folder))
        elif name == "session-tsv":
            present = "train" in given_split_candidates(folder)
        else:
            present = storage.isfile(storage.join(folder, spec.marker))
        if present:
            found.append(name)
    return found


def known_layouts_text() -> str:
    return "; ".join(spec.describe() for spec in LAYOUTS.values())


def detect_layout(path: str | Path) -> str:
    """The layout of the dataset folder `path`, from the rating file it holds.

    Raises DataError when the folder does not exist, holds no known layout (the message lists the
    layouts and their files, and points at a subfolder that does hold one, the usual mistake after
    unzipping), or holds the rating files of more than one layout.
    """
    folder = storage.as_path(path)
    if not storage.exists(folder):
        raise DataError(folder, None, "dataset folder does not exist")
    if not storage.isdir(folder):
        raise DataError(
            folder, None, "expected a dataset folder, found a file (pass the folder that holds it)"
        )
    found = _markers_present(folder)
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise DataError(
            folder,
            None,
            f"holds the files of several layouts ({', '.join(found)}); pass layout= to choose one",
        )
    entries = storage.listdir(folder)
    subfolders = [n for n in entries if storage.isdir(storage.join(folder, n))]
    present = sorted(n + "/" if n in subfolders else n for n in entries)
    shown = ", ".join(present[:15]) + (", …" if len(present) > 15 else "") if present else "nothing"
    hint = ""
    for sub in subfolders:
        if _markers_present(storage.join(folder, sub)):
            hint = f" (the subfolder {sub}/ does hold a dataset: did you mean {storage.join(folder, sub)}?)"
            break
    raise DataError(
        folder,
        None,
        f"unknown dataset layout: the folder {folder} holds {shown}{hint}. "
        f"Known layouts and the files each expects: {known_layouts_text()}",
    )
