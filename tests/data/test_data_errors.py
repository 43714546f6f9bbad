"""Whole-file problems always raise DataError, with messages that say what to do."""

import pickle
import re
from pathlib import Path

import pytest

from movierec.data import LAYOUTS, DataError, detect_layout, load_dataset


def test_data_error_format() -> None:
    assert str(DataError(Path("a/u.data"), 12, "bad")) == "a/u.data:12: bad"
    assert str(DataError(Path("a/u.data"), None, "bad")) == "a/u.data: bad"
    assert str(DataError(None, None, "bad")) == "bad"
    err = pickle.loads(pickle.dumps(DataError(Path("x"), 3, "why")))
    assert (err.path, err.line, err.reason) == (Path("x"), 3, "why")


@pytest.mark.parametrize(
    ("layout", "missing", "needed"),
    [
        ("ml-100k", "u.item", ["u.data", "u.item", "u.genre", "optional u.user"]),
        ("ml-100k", "u.genre", ["u.genre"]),
        ("ml-dat", "movies.dat", ["ratings.dat", "movies.dat", "optional users.dat"]),
        ("ml-csv", "movies.csv", ["ratings.csv", "movies.csv"]),
        ("netflix", "movie_titles.csv", ["combined_data_1.txt", "training_set/mv_*.txt", "movie_titles.csv"]),
    ],
)
def test_missing_required_file(layout_copy, layout: str, missing: str, needed: list[str]) -> None:
    folder = layout_copy(layout, **{missing: None})
    with pytest.raises(DataError) as info:
        load_dataset(folder)
    message = str(info.value)
    assert info.value.path == folder / missing
    assert f"missing required file {missing} in the folder {folder}" in message
    for name in needed:
        assert name in message


def test_netflix_without_rating_files(layout_copy) -> None:
    folder = layout_copy("netflix", **{"combined_data_1.txt": None, "combined_data_2.txt": None})
    with pytest.raises(DataError, match="unknown dataset layout"):
        load_dataset(folder)
    with pytest.raises(DataError, match=r"missing required file combined_data_1\.txt … combined_data_4\.txt"):
        load_dataset(folder, layout="netflix")


def test_unknown_layout_names_the_folder_and_lists_layouts(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError) as info:
        detect_layout(tmp_path)
    message = str(info.value)
    assert info.value.path == tmp_path
    assert f"the folder {tmp_path} holds notes.txt" in message
    for spec in LAYOUTS.values():
        assert spec.describe() in message
    assert "u.data, u.item, u.genre" in message and "ratings.csv, movies.csv" in message


def test_unknown_layout_points_at_a_dataset_subfolder(tmp_path: Path, fixtures_dir: Path) -> None:
    import shutil

    shutil.copytree(fixtures_dir / "ml-100k", tmp_path / "ml-100k")
    with pytest.raises(DataError, match=r"the subfolder ml-100k/ does hold a dataset"):
        load_dataset(tmp_path)


def test_unknown_layout_name_given(fixtures_dir: Path) -> None:
    with pytest.raises(
        DataError, match="unknown layout 'ml-50m'; known layouts: ml-100k, ml-dat, ml-csv, netflix"
    ):
        load_dataset(fixtures_dir / "ml-100k", layout="ml-50m")


def test_missing_folder_and_file_instead_of_folder(tmp_path: Path, fixtures_dir: Path) -> None:
    with pytest.raises(DataError, match="dataset folder does not exist"):
        load_dataset(tmp_path / "nowhere")
    with pytest.raises(DataError, match="expected a dataset folder, found a file"):
        load_dataset(fixtures_dir / "ml-100k" / "u.data")


def test_several_layouts_in_one_folder(layout_copy, fixtures_dir: Path) -> None:
    folder = layout_copy("ml-100k")
    (folder / "ratings.csv").write_bytes((fixtures_dir / "ml-csv" / "ratings.csv").read_bytes())
    with pytest.raises(DataError, match=r"several layouts \(ml-100k, ml-csv\); pass layout="):
        load_dataset(folder)
    (folder / "movies.csv").write_bytes((fixtures_dir / "ml-csv" / "movies.csv").read_bytes())
    assert load_dataset(folder, layout="ml-csv").layout == "ml-csv"


@pytest.mark.parametrize(
    ("layout", "file", "content", "message"),
    [
        ("ml-100k", "u.data", b"", "empty ratings file: it has no rating rows"),
        ("ml-100k", "u.data", b"\n\n", "empty ratings file: it has no rating rows"),
        ("ml-dat", "ratings.dat", b"", "empty ratings file"),
        (
            "ml-csv",
            "ratings.csv",
            b"userId,movieId,rating,timestamp\n",
            "it has a header line but no rating rows",
        ),
        ("netflix", "combined_data_1.txt", b"", "empty ratings file"),
    ],
)
def test_empty_ratings_file(layout_copy, layout: str, file: str, content: bytes, message: str) -> None:
    folder = layout_copy(layout, **{file: content})
    with pytest.raises(DataError, match=message) as info:
        load_dataset(folder)
    assert info.value.path == folder / file
    assert str(info.value).startswith(f"{folder / file}: ")


def test_wrong_csv_header(layout_copy) -> None:
    folder = layout_copy("ml-csv", **{"ratings.csv": b"movieId,userId,rating,timestamp\n1,2,3,4\n"})
    with pytest.raises(DataError) as info:
        load_dataset(folder)
    assert info.value.line == 1
    assert "expected the header line 'userId,movieId,rating,timestamp'" in str(info.value)


def test_broken_genre_file(layout_copy) -> None:
    folder = layout_copy("ml-100k", **{"u.genre": b"unknown|0\nAction|one\n"})
    with pytest.raises(DataError, match=re.escape("expected 'name|index'")) as info:
        load_dataset(folder)
    assert info.value.line == 2
