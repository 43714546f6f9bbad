"""Every kind of bad row is rejected (never silently dropped) and reported with its file, line and reason."""

import json
import logging
import pickle
from pathlib import Path

import pandas as pd
import pytest

from movierec.data import DataError, LoadReport, load_dataset
from movierec.data.report import MAX_EXAMPLES

GOOD = b"1\t1\t4\t880000000\n"


def rows(ds) -> list[tuple]:
    return list(ds.interactions.itertuples(index=False, name=None))


def only_rejection(ds, file: str):
    """The single rejected example of the single reason in `file`, and that reason's category."""
    report = ds.report[file]
    assert report.total_rejected == 1, report.rejected
    ((category, examples),) = report.examples.items()
    (example,) = examples
    return category, example


@pytest.mark.parametrize(
    ("bad_line", "category", "reason"),
    [
        (
            b"2\t3\t4",
            "malformed line (expected 4 fields)",
            "expected 4 tab-separated fields (user, item, rating, timestamp), found 3",
        ),
        (
            b"2\t3\t4\t5\t6",
            "malformed line (expected 4 fields)",
            "expected 4 tab-separated fields (user, item, rating, timestamp), found 5",
        ),
        (b"abc\t3\t4\t880000001", "invalid user id", "non-numeric user id 'abc'"),
        (b"-2\t3\t4\t880000001", "invalid user id", "negative user id '-2'"),
        (b"2.5\t3\t4\t880000001", "invalid user id", "user id '2.5' is not a whole number"),
        (b"2\tx3\t4\t880000001", "invalid item id", "non-numeric item id 'x3'"),
        (b"2\t\t4\t880000001", "invalid item id", "missing item id"),
        (b"2\t3\tfour\t880000001", "invalid rating", "non-numeric rating 'four'"),
        (b"2\t3\t7\t880000001", "rating out of range 1–5", "rating 7 out of range 1–5"),
        (b"2\t3\t0\t880000001", "rating out of range 1–5", "rating 0 out of range 1–5"),
        (
            b"2\t3\t3.5\t880000001",
            "rating not a multiple of 1",
            "rating 3.5 is not on the 1 step of this layout (1–5)",
        ),
        (b"2\t3\t4\tyesterday", "invalid timestamp", "non-numeric timestamp 'yesterday'"),
        (
            b"2\t3\t4\t99999999999999999999",
            "invalid timestamp",
            "timestamp '99999999999999999999' is too large",
        ),
    ],
)
def test_ml100k_rating_row_reasons(layout_copy, bad_line: bytes, category: str, reason: str) -> None:
    content = GOOD + b"2\t2\t5\t880000002\n\n" + bad_line + b"\n3\t3\t3\t880000003\n"
    ds = load_dataset(layout_copy("ml-100k", **{"u.data": content}))
    assert rows(ds) == [("1", "1", 4.0, 880000000), ("2", "2", 5.0, 880000002), ("3", "3", 3.0, 880000003)]
    got_category, example = only_rejection(ds, "u.data")
    assert got_category == category
    assert example.reason == reason
    assert example.line == 4  # the blank line 3 still counts for numbering
    assert example.file.name == "u.data"
    assert example.text == bad_line.decode()
    report = ds.report["u.data"]
    assert (report.rows_read, report.rows_accepted) == (4, 3)
    assert ds.report.total_rejected == 1


def test_duplicate_user_item_timestamp_keeps_the_first(layout_copy) -> None:
    content = GOOD + b"2\t2\t5\t880000002\n1\t1\t2\t880000000\n1\t1\t4\t880000009\n"
    ds = load_dataset(layout_copy("ml-100k", **{"u.data": content}))
    assert rows(ds) == [("1", "1", 4.0, 880000000), ("2", "2", 5.0, 880000002), ("1", "1", 4.0, 880000009)]
    category, example = only_rejection(ds, "u.data")
    assert category == "duplicate (user_id, item_id, timestamp)"
    assert example.line == 3
    assert example.reason == "duplicate of line 1 (user 1, item 1, timestamp 880000000); the first is kept"


def test_duplicates_across_netflix_files_name_the_other_file(layout_copy) -> None:
    folder = layout_copy("netflix", **{"combined_data_2.txt": b"3:\n1\n1:\n822109,4,2005-05-13\n"})
    ds = load_dataset(folder)
    report = ds.report["combined_data_2.txt"]
    assert report.rejected == {
        "malformed line (expected 3 fields)": 1,
        "duplicate (user_id, item_id, timestamp)": 1,
    }
    dup = report.examples["duplicate (user_id, item_id, timestamp)"][0]
    assert dup.line == 4
    assert dup.reason.startswith("duplicate of combined_data_1.txt line 3 (user 822109, item 1,")


def test_invalid_utf8_rejects_only_that_line(layout_copy) -> None:
    content = b"userId,movieId,rating,timestamp\n1,1,4.0,100\n2,\xe92,3.0,200\n3,3,5.0,300\n"
    ds = load_dataset(layout_copy("ml-csv", **{"ratings.csv": content}))
    assert rows(ds) == [("1", "1", 4.0, 100), ("3", "3", 5.0, 300)]
    category, example = only_rejection(ds, "ratings.csv")
    assert category == "invalid UTF-8 bytes"
    assert example.line == 3
    offset = content.index(b"\xe9")
    assert (
        example.reason
        == f"invalid UTF-8 byte 0xE9 at byte offset {offset} of the file (column 3 of the line)"
    )
    assert example.text == "2,\\xe92,3.0,200"


def test_invalid_utf8_in_movies_csv(layout_copy, fixtures_dir: Path) -> None:
    movies = (fixtures_dir / "ml-csv" / "movies.csv").read_bytes() + b"6,Caf\xe9 Noir (1999),Drama\n"
    ds = load_dataset(layout_copy("ml-csv", **{"movies.csv": movies}))
    category, example = only_rejection(ds, "movies.csv")
    assert category == "invalid UTF-8 bytes"
    assert example.line == 7
    assert "invalid UTF-8 byte 0xE9" in example.reason
    assert len(ds.items) == 5


@pytest.mark.parametrize(
    ("bad_line", "category", "reason_part"),
    [
        (b'6,"Unclosed, Quote (1999),Drama', "malformed line (bad CSV quoting)", "bad CSV quoting"),
        (b"6,Two Fields Only (1999)", "malformed line (expected 3 fields)", "found 2"),
        (b"six,Word Id (1999),Drama", "invalid item id", "non-numeric item id 'six'"),
        (b"1,Same Id Again (1999),Drama", "duplicate item id", "duplicate item id 1 (already at line 2)"),
    ],
)
def test_movies_csv_reasons(
    layout_copy, fixtures_dir: Path, bad_line: bytes, category: str, reason_part: str
) -> None:
    movies = (fixtures_dir / "ml-csv" / "movies.csv").read_bytes() + bad_line + b"\n"
    ds = load_dataset(layout_copy("ml-csv", **{"movies.csv": movies}))
    got, example = only_rejection(ds, "movies.csv")
    assert got == category
    assert reason_part in example.reason
    assert example.line == 7
    assert list(ds.items.item_id) == ["1", "2", "3", "4", "5"]


@pytest.mark.parametrize(
    ("bad_line", "category", "reason"),
    [
        (b"4,0.0,100", "rating out of range 0.5–5", "rating 0.0 out of range 0.5–5"),
        (b"4,5.5,100", "rating out of range 0.5–5", "rating 5.5 out of range 0.5–5"),
        (
            b"4,3.25,100",
            "rating not a multiple of 0.5",
            "rating 3.25 is not on the 0.5 step of this layout (0.5–5)",
        ),
        (b"4,nan,100", "invalid rating", "non-numeric rating 'nan'"),
    ],
)
def test_ml_csv_half_star_scale(layout_copy, bad_line: bytes, category: str, reason: str) -> None:
    content = b"userId,movieId,rating,timestamp\n1,1,4.5,100\n" + b"9," + bad_line + b"\n"
    ds = load_dataset(layout_copy("ml-csv", **{"ratings.csv": content}))
    got, example = only_rejection(ds, "ratings.csv")
    assert (got, example.reason, example.line) == (category, reason, 3)
    assert rows(ds) == [("1", "1", 4.5, 100)]


def test_ml_dat_rows(layout_copy, fixtures_dir: Path) -> None:
    ratings = b"1::10::4::100\n1::20::3\n1:::20::3::5\n2::30::4.5::200\n"
    users = (fixtures_dir / "ml-dat" / "users.dat").read_bytes() + b"4::F::18::25::12345\n5::M::35\n"
    movies = (fixtures_dir / "ml-dat" / "movies.dat").read_bytes() + b"50::No Genres Field (2001)\n"
    ds = load_dataset(
        layout_copy("ml-dat", **{"ratings.dat": ratings, "users.dat": users, "movies.dat": movies})
    )
    assert rows(ds) == [("1", "10", 4.0, 100), ("2", "30", 4.5, 200)]
    r = ds.report["ratings.dat"]
    assert r.rejected == {"malformed line (expected 4 fields)": 1, "invalid item id": 1}
    assert [(e.line, e.reason) for e in r.examples["malformed line (expected 4 fields)"]] == [
        (2, "expected 4 '::'-separated fields (user, item, rating, timestamp), found 3")
    ]
    assert [(e.line, e.reason) for e in r.examples["invalid item id"]] == [(3, "non-numeric item id ':20'")]
    u = ds.report["users.dat"]
    assert u.rejected == {"invalid occupation code": 1, "malformed line (expected 5 fields)": 1}
    assert u.examples["invalid occupation code"][0].line == 4
    assert (
        u.examples["invalid occupation code"][0].reason
        == "occupation code 25 is not one of the ML-1M codes 0–20"
    )
    assert ds.report["movies.dat"].examples["malformed line (expected 3 fields)"][0].line == 5


def test_ml100k_item_and_user_rows(layout_copy, fixtures_dir: Path) -> None:
    item_lines = (fixtures_dir / "ml-100k" / "u.item").read_bytes().splitlines()
    bad_flag = b"6|Odd Flags (1990)||||" + b"|".join([b"0"] * 18 + [b"2"])
    short = b"7|Too Short (1990)|01-Jan-1990"
    dup = item_lines[0].replace(b"Paper Lanterns", b"Paper Lanterns Again")
    content = b"\n".join([*item_lines, bad_flag, short, dup]) + b"\n"
    users = (fixtures_dir / "ml-100k" / "u.user").read_bytes() + b"4|old|M|writer|00000\n"
    ds = load_dataset(layout_copy("ml-100k", **{"u.item": content, "u.user": users}))
    report = ds.report["u.item"]
    assert report.rejected == {
        "invalid genre flag": 1,
        "malformed line (expected 24 fields)": 1,
        "duplicate item id": 1,
    }
    assert report.examples["invalid genre flag"][0].line == 6
    assert (
        report.examples["invalid genre flag"][0].reason == "genre flag for 'Western' is '2', expected 0 or 1"
    )
    assert report.examples["malformed line (expected 24 fields)"][0].line == 7
    assert report.examples["duplicate item id"][0].reason == "duplicate item id 1 (already at line 1)"
    assert ds.items.loc[0, "title"] == "Paper Lanterns"
    assert ds.report["u.user"].examples["invalid age"][0].reason == "non-numeric age 'old'"
    assert (report.rows_read, report.rows_accepted) == (8, 5)


@pytest.mark.parametrize(
    ("content", "category", "line", "reason_part"),
    [
        (
            b"5,3,2005-01-01\n1:\n",
            "rating before any 'MovieID:' line",
            1,
            "rating line before any 'MovieID:' line",
        ),
        (b"1:\n5,3,2005-02-30\n", "invalid date", 2, "invalid date '2005-02-30' (expected YYYY-MM-DD)"),
        (b"1:\n5,3,01/02/2005\n", "invalid date", 2, "invalid date '01/02/2005'"),
        (
            b"x:\n5,3,2005-01-01\n",
            "in the block of an invalid 'MovieID:' line",
            2,
            "invalid movie header at line 1: 'x:'",
        ),
        (b"1:\n5,3\n", "malformed line (expected 3 fields)", 2, "found 2"),
        (b"1:\n5,6,2005-01-01\n", "rating out of range 1–5", 2, "rating 6 out of range 1–5"),
        (b"1:\nabc,3,2005-01-01\n", "invalid customer id", 2, "non-numeric customer id 'abc'"),
    ],
)
def test_netflix_row_reasons(layout_copy, content: bytes, category: str, line: int, reason_part: str) -> None:
    ds = load_dataset(layout_copy("netflix", **{"combined_data_2.txt": content}))
    got, example = only_rejection(ds, "combined_data_2.txt")
    assert got == category
    assert example.line == line
    assert reason_part in example.reason
    assert len(ds.interactions) == 4  # combined_data_1.txt is untouched


def test_netflix_titles_reasons(layout_copy, fixtures_dir: Path) -> None:
    titles = (fixtures_dir / "netflix" / "movie_titles.csv").read_bytes() + b"4,circa 1990,Vague Year\n5\n"
    ds = load_dataset(layout_copy("netflix", **{"movie_titles.csv": titles}))
    report = ds.report["movie_titles.csv"]
    assert report.rejected == {"invalid year": 1, "malformed line (expected 3 fields)": 1}
    assert (
        report.examples["invalid year"][0].reason == "YearOfRelease 'circa 1990' is neither a year nor NULL"
    )
    assert report.examples["invalid year"][0].line == 4


def test_ratings_of_unknown_items_and_users_are_kept_with_a_warning(layout_copy) -> None:
    content = GOOD + b"1\t99\t3\t880000001\n77\t2\t3\t880000002\n"
    ds = load_dataset(layout_copy("ml-100k", **{"u.data": content}))
    assert len(ds.interactions) == 3
    assert ds.report.total_rejected == 0
    report = ds.report["u.data"]
    assert report.warnings == {"item not in u.item (kept)": 1, "user not in u.user (kept)": 1}
    item_warning = report.warning_examples["item not in u.item (kept)"][0]
    assert (item_warning.line, item_warning.reason) == (2, "item 99 is not in u.item; the rating is kept")
    assert report.rows_accepted == 3
    assert (
        "u.data: 1 warning — item 99 is not in u.item; the rating is kept (first at line 2)"
        in ds.report.summary()
    )


def test_examples_are_capped_but_every_row_is_counted(layout_copy) -> None:
    content = GOOD + b"".join(b"2\t%d\t9\t%d\n" % (i, i) for i in range(25))
    ds = load_dataset(layout_copy("ml-100k", **{"u.data": content}))
    report = ds.report["u.data"]
    assert report.rejected == {"rating out of range 1–5": 25}
    examples = report.examples["rating out of range 1–5"]
    assert len(examples) == MAX_EXAMPLES
    assert [e.line for e in examples] == list(range(2, 2 + MAX_EXAMPLES))
    assert "u.data: 25 rejected — rating 9 out of range 1–5 (first at line 2)" in ds.report.summary()


def test_summary_names_the_category_when_examples_differ(layout_copy) -> None:
    content = GOOD + b"2\t2\t7\t1\n2\t3\t9\t2\n"
    ds = load_dataset(layout_copy("ml-100k", **{"u.data": content}))
    assert (
        "u.data: 2 rejected — rating out of range 1–5 (first at line 2: rating 7 out of range 1–5)"
        in ds.report.summary().splitlines()
    )


def test_report_to_dict_is_json_ready(layout_copy) -> None:
    ds = load_dataset(layout_copy("ml-100k", **{"u.data": GOOD + b"x\t1\t1\t1\n"}))
    data = json.loads(json.dumps(ds.report.to_dict()))
    assert data["total_rejected"] == 1
    u_data = next(f for f in data["files"] if f["name"] == "u.data")
    assert u_data["rows_read"] == 2 and u_data["rows_accepted"] == 1 and u_data["rows_rejected"] == 1
    (example,) = u_data["examples"]["invalid user id"]
    assert example["line"] == 2 and example["text"] == "x\t1\t1\t1" and example["file"].endswith("u.data")
    assert isinstance(ds.report, LoadReport)


def test_rejections_are_logged(layout_copy, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="movierec.data"):
        load_dataset(layout_copy("ml-100k", **{"u.data": GOOD + b"x\t1\t1\t1\n"}))
    assert "1 rows rejected" in caplog.text and "u.data: 1 rejected" in caplog.text


def test_strict_raises_on_the_first_bad_row(layout_copy) -> None:
    folder = layout_copy("ml-100k", **{"u.data": GOOD + b"2\t2\t5\t2\n2\t3\t8\t3\nx\t1\t1\t1\n"})
    with pytest.raises(DataError) as info:
        load_dataset(folder, strict=True)
    err = info.value
    assert err.path == folder / "u.data"
    assert err.line == 3
    assert str(err).startswith(f"{folder / 'u.data'}:3: rating 8 out of range 1–5")
    assert pickle.loads(pickle.dumps(err)).line == 3
    # warnings are not rejections: strict accepts a rating of an unknown item
    ok = load_dataset(layout_copy("ml-100k", **{"u.data": GOOD + b"1\t99\t3\t5\n"}), strict=True)
    assert len(ok.interactions) == 2


def test_all_rows_rejected_is_an_error(layout_copy) -> None:
    with pytest.raises(DataError, match="every one was rejected"):
        load_dataset(layout_copy("ml-100k", **{"u.data": b"x\t1\t1\t1\n"}))


def test_fast_and_checking_paths_agree(layout_copy) -> None:
    """Unusual but valid spellings load the same whether or not another row sends the file down
    the checking path, so a result never depends on an unrelated bad row."""
    odd = b" 1\t1.0\t4\t880000000\n+2\t2\t5.0\t880000002\n3\t3\t3\t880000003.0\n"
    clean = load_dataset(layout_copy("ml-100k", **{"u.data": odd}))
    assert clean.report.total_rejected == 0
    dirty = load_dataset(layout_copy("ml-100k", **{"u.data": odd + b"bad\n"}))
    assert dirty.report.total_rejected == 1
    pd.testing.assert_frame_equal(clean.interactions, dirty.interactions)
    assert rows(clean) == [("1", "1", 4.0, 880000000), ("2", "2", 5.0, 880000002), ("3", "3", 3.0, 880000003)]
