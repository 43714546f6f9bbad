"""The session-tsv layout: GRU4Rec's published files (and `data split --out`'s) read with their split,
their time resolution and every bad row accounted for by file, line and reason."""

from pathlib import Path

import numpy as np
import pytest

from movierec.data import DataError, detect_layout, load_dataset

HEADER = "SessionId\tItemId\tTime\n"


def folder_with(tmp_path: Path, **files: str) -> Path:
    """A dataset folder holding the given files (name -> text)."""
    folder = tmp_path / "sessions"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def rows(ds) -> list[tuple]:
    return list(
        ds.interactions[["user_id", "item_id", "rating", "timestamp"]].itertuples(index=False, name=None)
    )


def test_gru4rec_files_map_sessions_to_users_and_keep_their_split(tmp_path: Path) -> None:
    folder = folder_with(
        tmp_path,
        # whole seconds written as floats, as GRU4Rec's preprocessing writes them
        **{
            "rsc15_train_full.txt": HEADER
            + "1\t214\t1396839069.0\n1\t215\t1396839100.0\n2\t214\t1396839200.0\n",
            "rsc15_test.txt": HEADER + "9\t215\t1396900000.0\n9\t214\t1396900010.0\n",
            "README.md": "not a split file\n",
        },
    )
    assert detect_layout(folder) == "session-tsv"
    ds = load_dataset(folder)
    assert ds.layout == "session-tsv"
    assert rows(ds) == [
        ("1", "214", 1.0, 1396839069),
        ("1", "215", 1.0, 1396839100),
        ("2", "214", 1.0, 1396839200),
        ("9", "215", 1.0, 1396900000),
        ("9", "214", 1.0, 1396900010),
    ]
    assert ds.interactions["given_split"].tolist() == ["train"] * 3 + ["test"] * 2
    assert ds.interactions.attrs["session_ids"] is True
    assert ds.time_unit == "s"  # ".0" everywhere: nothing finer than a second to keep
    assert [Path(f).name for f in ds.files] == ["rsc15_test.txt", "rsc15_train_full.txt"]
    assert ds.report["rsc15_test.txt"].rows_accepted == 2


def test_fractional_times_make_every_timestamp_milliseconds(tmp_path: Path) -> None:
    folder = folder_with(
        tmp_path,
        **{
            "train.tsv": HEADER + "1\t5\t1396839069\n1\t6\t1396839069.277\n",
            "test.tsv": HEADER + "2\t5\t1396839070.5\n2\t6\t1396839071\n",
        },
    )
    ds = load_dataset(folder)
    assert ds.time_unit == "ms"
    # exact milliseconds (1396839069.277 is 1396839069.2769999… as a float), in every file
    assert ds.interactions["timestamp"].tolist() == [
        1396839069000,
        1396839069277,
        1396839070500,
        1396839071000,
    ]
    (note,) = ds.report["train.tsv"].notes
    assert "line 3" in note and "1396839069.277" in note and "milliseconds" in note


def test_user_files_with_ratings_and_a_validation_file(tmp_path: Path) -> None:
    header = "UserId\tItemId\tRating\tTime\n"
    folder = folder_with(
        tmp_path,
        **{
            "train.tsv": header + "7\t1\t4.0\t100\n8\t2\t3.5\t101\n",
            "validation.tsv": header + "7\t2\t5.0\t200\n",
            "test.tsv": header,  # a role may be empty
        },
    )
    ds = load_dataset(folder)
    assert rows(ds) == [("7", "1", 4.0, 100), ("8", "2", 3.5, 101), ("7", "2", 5.0, 200)]
    assert ds.interactions["given_split"].tolist() == ["train", "train", "validation"]
    assert ds.interactions.attrs["session_ids"] is False


def test_columns_are_found_by_name_and_others_are_ignored_with_a_note(tmp_path: Path) -> None:
    header = "Time\tSessionId\tTimeStr\tItemId\n"
    folder = folder_with(
        tmp_path,
        **{
            "x_train.txt": header + "100\t3\t2014-04-07T10:51:09Z\t42\n",
            "x_test.txt": header + "200\t4\t2014-04-07T10:52:49Z\t42\n",
        },
    )
    ds = load_dataset(folder)
    assert rows(ds) == [("3", "42", 1.0, 100), ("4", "42", 1.0, 200)]
    assert ds.report["x_train.txt"].notes == ["columns ignored: TimeStr (reads SessionId, ItemId, Time)"]


def test_gru4rec_validation_files_are_told_apart_from_training(tmp_path: Path) -> None:
    # GRU4Rec's preprocessing writes rsc15_train_tr.txt and rsc15_train_valid.txt for tuning
    folder = folder_with(
        tmp_path,
        **{
            "rsc15_train_tr.txt": HEADER + "1\t5\t100\n",
            "rsc15_train_valid.txt": HEADER + "2\t5\t200\n",
            "rsc15_test.txt": HEADER + "3\t5\t300\n",
        },
    )
    ds = load_dataset(folder)
    assert ds.interactions["given_split"].tolist() == ["train", "validation", "test"]


@pytest.mark.parametrize(
    ("bad_line", "category", "reason"),
    [
        (
            "4\t5",
            "malformed line (expected 3 fields)",
            "expected 3 tab-separated fields (SessionId, ItemId, Time), found 2",
        ),
        ("s4\t5\t300", "invalid session id", "non-numeric session id 's4'"),
        ("4\t\t300", "invalid item id", "missing item id"),
        ("4\t5.5\t300", "invalid item id", "item id '5.5' is not a whole number"),
        ("4\t5\t-3", "invalid time", "negative time '-3'"),
        ("4\t5\tnoon", "invalid time", "non-numeric time 'noon'"),
        ("4\t5\t1e20", "invalid time", "time '1e20' is too large (seconds since 1970 expected)"),
    ],
)
def test_bad_session_rows_are_rejected_with_file_line_and_reason(
    tmp_path: Path, bad_line: str, category: str, reason: str
) -> None:
    test = HEADER + "3\t5\t200\n\n" + bad_line + "\n3\t6\t201\n"
    folder = folder_with(tmp_path, **{"train.tsv": HEADER + "1\t5\t100\n1\t6\t101\n", "test.tsv": test})
    ds = load_dataset(folder)
    assert rows(ds)[2:] == [("3", "5", 1.0, 200), ("3", "6", 1.0, 201)]
    report = ds.report["test.tsv"]
    assert (report.rows_read, report.rows_accepted, report.total_rejected) == (3, 2, 1)
    ((got, (example,)),) = report.examples.items()
    assert got == category
    assert (example.reason, example.line, example.text) == (reason, 4, bad_line)  # blank line 3 counts
    assert Path(example.file).name == "test.tsv"
    with pytest.raises(DataError) as info:
        load_dataset(folder, strict=True)
    assert (Path(info.value.path).name, info.value.line) == ("test.tsv", 4)


def test_ratings_out_of_range_are_rejected_in_user_files(tmp_path: Path) -> None:
    header = "UserId\tItemId\tRating\tTime\n"
    folder = folder_with(
        tmp_path,
        **{"train.tsv": header + "1\t5\t4\t100\n1\t6\t9\t101\n", "test.tsv": header + "1\t7\t2\t300\n"},
    )
    ds = load_dataset(folder)
    (example,) = ds.report["train.tsv"].examples["rating out of range 0.5–5"]
    assert (example.line, example.reason) == (3, "rating 9 out of range 0.5–5")
    assert len(ds.interactions) == 2


def test_a_test_row_repeating_a_training_row_is_a_rejected_duplicate(tmp_path: Path) -> None:
    folder = folder_with(
        tmp_path,
        **{"train.tsv": HEADER + "1\t5\t100\n1\t6\t101\n", "test.tsv": HEADER + "2\t5\t200\n1\t6\t101\n"},
    )
    ds = load_dataset(folder)
    # the first copy (training, read first) is kept
    assert ds.interactions["given_split"].tolist() == ["train", "train", "test"]
    (example,) = ds.report["test.tsv"].examples["duplicate (user_id, item_id, timestamp)"]
    assert example.line == 3
    assert example.reason.startswith("duplicate of train.tsv line 3 (user 1, item 6, timestamp 101)")


def test_a_file_without_the_header_names_its_first_line(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, **{"train.tsv": "\n1\t5\t100\n", "test.tsv": HEADER + "2\t5\t200\n"})
    with pytest.raises(DataError) as info:
        load_dataset(folder)
    assert (Path(info.value.path).name, info.value.line) == ("train.tsv", 2)
    assert "exactly one of SessionId and UserId" in info.value.reason and "'1\\t5\\t100'" in info.value.reason


def test_session_and_user_files_cannot_be_mixed(tmp_path: Path) -> None:
    folder = folder_with(
        tmp_path,
        **{"train.tsv": HEADER + "1\t5\t100\n", "test.tsv": "UserId\tItemId\tRating\tTime\n1\t5\t4\t200\n"},
    )
    with pytest.raises(
        DataError, match=r"mix session ids and user ids: train\.tsv has SessionId, test\.tsv has UserId"
    ):
        load_dataset(folder)


def test_two_candidate_training_files_are_an_error_naming_the_folder_and_the_files(tmp_path: Path) -> None:
    folder = folder_with(
        tmp_path,
        **{
            "rsc15_train_full.txt": HEADER + "1\t5\t100\n",
            "rsc15_train_tr.txt": HEADER + "1\t5\t100\n",
            "rsc15_test.txt": HEADER + "2\t5\t200\n",
        },
    )
    with pytest.raises(DataError) as info:
        load_dataset(folder)
    assert info.value.path == folder
    message = str(info.value)
    assert (
        "exactly one train file (*train*.tsv|txt), found 2: rsc15_train_full.txt, rsc15_train_tr.txt"
        in message
    )
    assert "test: rsc15_test.txt" in message


def test_a_missing_test_file_names_the_folder_and_what_it_holds(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, **{"rsc15_train_full.txt": HEADER + "1\t5\t100\n", "notes.txt": "x\n"})
    with pytest.raises(DataError) as info:
        load_dataset(folder)
    assert info.value.path == folder
    assert "*test*.tsv|txt missing; the folder holds train: rsc15_train_full.txt" in str(info.value)


def test_ids_read_back_as_the_canonical_strings(tmp_path: Path) -> None:
    # ids are whole numbers: their decimal strings are what every other layout produces
    folder = folder_with(
        tmp_path, **{"train.tsv": HEADER + "0001\t007\t100\n", "test.tsv": HEADER + "2\t7\t200\n"}
    )
    ds = load_dataset(folder)
    assert ds.interactions["user_id"].tolist() == ["1", "2"]
    assert ds.interactions["item_id"].tolist() == ["7", "7"]
    assert np.array_equal(ds.interactions["timestamp"].to_numpy(), [100, 200])
