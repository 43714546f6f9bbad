"""Each layout's fixture loads into exactly the expected canonical frames."""

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from movierec.data import (
    INTERACTION_COLUMNS,
    ITEM_COLUMNS,
    USER_COLUMNS,
    Dataset,
    detect_layout,
    load_dataset,
    split_title_year,
)


def interactions(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": pd.Series([str(r[0]) for r in rows], dtype=object),
            "item_id": pd.Series([str(r[1]) for r in rows], dtype=object),
            "rating": np.array([r[2] for r in rows], dtype=np.float32),
            "timestamp": np.array([r[3] for r in rows], dtype=np.int64),
        }
    )


def items(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": pd.Series([str(r[0]) for r in rows], dtype=object),
            "title": pd.Series([r[1] for r in rows], dtype=object),
            "year": pd.array([r[2] for r in rows], dtype="Int64"),
            "genres": pd.Series([r[3] for r in rows], dtype=object),
        }
    )


def users(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": pd.Series([str(r[0]) for r in rows], dtype=object),
            "age": pd.array([r[1] for r in rows], dtype="Int64"),
            "gender": pd.Series([r[2] for r in rows], dtype=object),
            "occupation": pd.Series([r[3] for r in rows], dtype=object),
            "zip_code": pd.Series([r[4] for r in rows], dtype=object),
        }
    )


def assert_canonical(ds: Dataset) -> None:
    assert tuple(ds.interactions.columns) == INTERACTION_COLUMNS
    assert ds.interactions["rating"].dtype == np.float32
    assert ds.interactions["timestamp"].dtype == np.int64
    assert all(isinstance(v, str) for v in ds.interactions["user_id"])
    assert all(isinstance(v, str) for v in ds.interactions["item_id"])
    assert ds.items is not None and tuple(ds.items.columns) == ITEM_COLUMNS
    assert all(isinstance(g, tuple) for g in ds.items["genres"])
    if ds.users is not None:
        assert tuple(ds.users.columns) == USER_COLUMNS
    for f in ds.report.files:
        assert f.rows_read == f.rows_accepted + f.total_rejected


def expected_checksum(files: list[Path]) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(files, key=lambda p: p.name))).hexdigest()


def test_ml100k_fixture(fixtures_dir: Path) -> None:
    folder = fixtures_dir / "ml-100k"
    assert detect_layout(folder) == "ml-100k"
    ds = load_dataset(folder)
    assert (ds.name, ds.layout) == ("ml-100k", "ml-100k")
    assert_canonical(ds)
    pd.testing.assert_frame_equal(
        ds.interactions,
        interactions(
            [
                (1, 1, 4, 880000000),
                (1, 2, 3, 880000100),
                (2, 1, 5, 880000050),
                (1, 3, 2, 880000200),
                (3, 5, 1, 880000300),
                (2, 4, 4, 880000400),
                (3, 1, 3, 880000500),
                (2, 3, 5, 880000600),
            ]
        ),
    )
    pd.testing.assert_frame_equal(
        ds.items,
        items(
            [
                (1, "Paper Lanterns", 1995, ("Animation", "Comedy")),
                (2, "Clockwork Harbor, The", 1997, ("Action", "Thriller")),
                (3, "Café Mirage", 1993, ("Drama", "Romance")),  # 0xE9 in the ISO-8859-1 file
                (4, "unknown", None, ("unknown",)),
                (5, "Night Train to Nowhere", 1989, ("Film-Noir",)),  # trailing space after the year
            ]
        ),
    )
    pd.testing.assert_frame_equal(
        ds.users,
        users(
            [
                (1, 31, "F", "engineer", "10001"),
                (2, 45, "M", "writer", "T2X4Y"),
                (3, 19, "F", "student", "94110"),
            ]
        ),
    )
    names = ["u.data", "u.genre", "u.item", "u.user"]
    assert ds.files == tuple(folder / n for n in names)
    assert ds.checksum == expected_checksum([folder / n for n in names])
    assert ds.report.total_rejected == 0 and ds.report.total_warnings == 0
    assert [(f.name, f.rows_read, f.rows_accepted) for f in ds.report.files] == [
        ("u.genre", 19, 19),
        ("u.item", 5, 5),
        ("u.user", 3, 3),
        ("u.data", 8, 8),
    ]


def test_ml_dat_fixture(fixtures_dir: Path) -> None:
    folder = fixtures_dir / "ml-dat"
    assert detect_layout(folder) == "ml-dat"
    ds = load_dataset(folder, name="tiny-1m")
    assert (ds.name, ds.layout) == ("tiny-1m", "ml-dat")
    assert_canonical(ds)
    pd.testing.assert_frame_equal(
        ds.interactions,
        interactions(
            [
                (1, 10, 4, 978300760),
                (1, 20, 3.5, 978302109),
                (2, 10, 5, 978301968),
                (2, 30, 0.5, 978300275),
                (3, 40, 2, 978824291),
                (3, 10, 4.5, 978302268),
                (1, 30, 1, 978301368),
            ]
        ),
    )
    pd.testing.assert_frame_equal(
        ds.items,
        items(
            [
                (10, "Lighthouse Keeper", 1998, ("Drama",)),
                (20, "Rocket Picnic", 2000, ("Adventure", "Children's", "Comedy")),
                (30, "Señora Luna", 1994, ("Comedy", "Romance")),
                (40, "Untitled Project", None, ()),
            ]
        ),
    )
    pd.testing.assert_frame_equal(
        ds.users,
        users(
            [
                (1, 25, "F", "college/grad student", "55455"),  # age keeps the bucket code, occupation 4
                (2, 56, "M", "writer", "02139"),  # code 20
                (3, 1, "M", "other or not specified", "K1A0B"),  # code 0
            ]
        ),
    )
    assert ds.checksum == expected_checksum(list(ds.files))
    assert [p.name for p in ds.files] == ["movies.dat", "ratings.dat", "users.dat"]


def test_ml_dat_without_users(layout_copy) -> None:
    ds = load_dataset(layout_copy("ml-dat", **{"users.dat": None}))
    assert ds.users is None
    assert len(ds.interactions) == 7


def test_ml_csv_fixture(fixtures_dir: Path) -> None:
    folder = fixtures_dir / "ml-csv"
    assert detect_layout(folder) == "ml-csv"
    ds = load_dataset(folder)
    assert_canonical(ds)
    assert ds.users is None
    pd.testing.assert_frame_equal(
        ds.interactions,
        interactions(
            [
                (1, 1, 4.0, 1112486027),
                (1, 2, 3.5, 1112484676),
                (2, 3, 5.0, 1112484819),
                (2, 1, 0.5, 1112484727),
                (3, 5, 2.5, 1112484580),
                (3, 4, 3.0, 1094785740),
            ]
        ),
    )
    pd.testing.assert_frame_equal(
        ds.items,
        items(
            [
                (1, "Lantern Bay", 2004, ("Drama",)),
                (2, 'Cat, the Dog and "Me", The', 2001, ("Comedy", "Children")),  # CSV quoting
                (3, "Ça Va Bien", 2003, ("Comedy", "Romance")),  # UTF-8
                (4, "Short Film Without a Year", None, ()),  # "(no genres listed)"
                (5, "Spaces, and Commas", 2010, ("Documentary",)),
            ]
        ),
    )
    assert [p.name for p in ds.files] == ["movies.csv", "ratings.csv"]


def test_netflix_fixture(fixtures_dir: Path) -> None:
    folder = fixtures_dir / "netflix"
    assert detect_layout(folder) == "netflix"
    ds = load_dataset(folder)
    assert_canonical(ds)
    assert ds.users is None
    pd.testing.assert_frame_equal(
        ds.interactions,
        interactions(
            [
                (1488844, 1, 3, 1125964800),  # 2005-09-06T00:00Z
                (822109, 1, 5, 1115942400),
                (885013, 2, 4, 1129680000),
                (1488844, 2, 2, 1072915200),  # 2004-01-01
                (822109, 3, 1, 1072828800),  # 2003-12-31, from combined_data_2.txt
            ]
        ),
    )
    pd.testing.assert_frame_equal(
        ds.items,
        items(
            [
                (1, "Dinosaur Garden", 2003, ()),
                (2, "Harbor Lights, Part One, Again", None, ()),  # commas in the title, NULL year
                (3, "Émile's Bakery", 1999, ()),
            ]
        ),
    )
    assert [p.name for p in ds.files] == ["combined_data_1.txt", "combined_data_2.txt", "movie_titles.csv"]
    assert [(f.name, f.rows_read) for f in ds.report.files] == [
        ("movie_titles.csv", 3),
        ("combined_data_1.txt", 4),
        ("combined_data_2.txt", 1),
    ]


def test_netflix_training_set_folder(layout_copy) -> None:
    folder = layout_copy("netflix", **{"combined_data_1.txt": None, "combined_data_2.txt": None})
    (folder / "training_set").mkdir()
    (folder / "training_set" / "mv_0000001.txt").write_bytes(b"1:\n7,4,2005-01-02\n")
    (folder / "training_set" / "mv_0000003.txt").write_bytes(b"3:\n8,5,2005-01-03\n9,1,2005-01-04\n")
    ds = load_dataset(folder)
    assert list(ds.interactions.itertuples(index=False, name=None)) == [
        ("7", "1", 4.0, 1104624000),
        ("8", "3", 5.0, 1104710400),
        ("9", "3", 1.0, 1104796800),
    ]
    assert [f.name for f in ds.report.files][1:] == [
        "training_set/mv_0000001.txt",
        "training_set/mv_0000003.txt",
    ]


def test_explicit_layout_and_default_name(fixtures_dir: Path) -> None:
    ds = load_dataset(str(fixtures_dir / "ml-csv"), layout="ml-csv")
    assert ds.name == "ml-csv" and ds.layout == "ml-csv"
    assert "6 interactions" in repr(ds)


def test_checksum_is_stable_and_tracks_content(layout_copy, fixtures_dir: Path) -> None:
    original = load_dataset(fixtures_dir / "ml-100k").checksum
    assert load_dataset(fixtures_dir / "ml-100k").checksum == original
    changed = (fixtures_dir / "ml-100k" / "u.data").read_bytes().replace(b"\t4\t880000000", b"\t5\t880000000")
    assert load_dataset(layout_copy("ml-100k", **{"u.data": changed})).checksum != original


def test_crlf_line_ends_and_bom_load_the_same(layout_copy, fixtures_dir: Path) -> None:
    base = load_dataset(fixtures_dir / "ml-csv")
    crlf = {
        name: b"\xef\xbb\xbf" + (fixtures_dir / "ml-csv" / name).read_bytes().replace(b"\n", b"\r\n")
        for name in ("ratings.csv", "movies.csv")
    }
    ds = load_dataset(layout_copy("ml-csv", **crlf))
    pd.testing.assert_frame_equal(ds.interactions, base.interactions)
    pd.testing.assert_frame_equal(ds.items, base.items)
    assert ds.report.total_rejected == 0


def test_missing_final_newline_and_blank_lines(layout_copy) -> None:
    folder = layout_copy("ml-100k", **{"u.data": b"\n1\t1\t4\t10\n\n\n2\t2\t5\t20"})
    ds = load_dataset(folder)
    assert list(ds.interactions.itertuples(index=False, name=None)) == [
        ("1", "1", 4.0, 10),
        ("2", "2", 5.0, 20),
    ]
    assert ds.report["u.data"].rows_read == 2  # blank lines are not rows


@pytest.mark.parametrize(
    ("raw", "title", "year"),
    [
        ("Toy Story (1995)", "Toy Story", 1995),
        ("Shawshank Redemption, The (1994)", "Shawshank Redemption, The", 1994),
        ("Heidi Fleiss: Hollywood Madam (1995) ", "Heidi Fleiss: Hollywood Madam", 1995),
        (
            "City of Lost Children, The (Cité des enfants perdus, La) (1995)",
            "City of Lost Children, The (Cité des enfants perdus, La)",
            1995,
        ),
        ("unknown", "unknown", None),
        ("Land Before Time III (1995) (V)", "Land Before Time III (1995) (V)", None),
        ("(1999)", "(1999)", None),
    ],
)
def test_split_title_year(raw: str, title: str, year: int | None) -> None:
    assert split_title_year(raw) == (title, year)


def test_clean_files_take_the_fast_path(layout_copy, monkeypatch: pytest.MonkeyPatch) -> None:
    """A clean rating file must never be read field-by-field as strings (that is what makes ML-25M
    take minutes and gigabytes instead of seconds): the string reader is only for files with bad rows."""
    from movierec.data import _lines

    def refuse(*args, **kwargs):
        raise AssertionError("a clean file went down the string-checking path")

    monkeypatch.setattr(_lines.Lines, "fields_frame", refuse)
    assert len(load_dataset(layout_copy("ml-100k")).interactions) == 8
    assert len(load_dataset(layout_copy("ml-dat")).interactions) == 7
    assert len(load_dataset(layout_copy("ml-csv")).interactions) == 6
    # a header after blank lines, and blank lines at the end, still take it
    content = b"\n\nuserId,movieId,rating,timestamp\n1,1,4.0,100\n2,2,3.5,200\n\n\n"
    ds = load_dataset(layout_copy("ml-csv", **{"ratings.csv": content}))
    assert list(ds.interactions.itertuples(index=False, name=None)) == [
        ("1", "1", 4.0, 100),
        ("2", "2", 3.5, 200),
    ]


def test_latin1_file_resaved_as_utf8_is_read_as_utf8(layout_copy, fixtures_dir: Path) -> None:
    utf8 = (fixtures_dir / "ml-100k" / "u.item").read_bytes().decode("iso-8859-1").encode("utf-8")
    ds = load_dataset(layout_copy("ml-100k", **{"u.item": utf8}))
    assert ds.items.loc[2, "title"] == "Café Mirage"
    assert ds.report["u.item"].notes == [
        "decoded as UTF-8: the file is valid UTF-8 although this layout's files are ISO-8859-1"
    ]


def test_lossy_copy_is_reported(layout_copy, fixtures_dir: Path) -> None:
    """A copy whose accented bytes were replaced by U+FFFD keeps its rows but says the text is damaged."""
    damaged = (fixtures_dir / "ml-100k" / "u.item").read_bytes().replace(b"\xe9", b"\xef\xbf\xbd")
    ds = load_dataset(layout_copy("ml-100k", **{"u.item": damaged}))
    assert ds.items.loc[2, "title"] == "Caf\ufffd Mirage"
    report = ds.report["u.item"]
    assert report.total_rejected == 0
    (warning,) = report.warning_examples["U+FFFD replacement characters in text"]
    assert warning.line == 3 and "re-encoded lossily" in warning.reason
