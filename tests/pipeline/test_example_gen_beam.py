"""The data-parallel ExampleGen (rating files in pieces, the temporal split in Beam) against the
single-worker path it replaces for the temporal protocol: the same Examples and the same report."""

import glob
import json
import os
from pathlib import Path

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from movierec.components.example_gen import (
    SPLITS,
    _write_single_worker,
    data_parallel,
    write_keyed_examples,
)
from movierec.data.beam_io import METRICS, UserEvents
from movierec.data.beam_split import ExactCut
from movierec.data.loader import load_dataset

IN_MEMORY = ["--direct_running_mode=in_memory"]
TWO_PROCESSES = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]


def read_examples(uri: str) -> dict[str, list[bytes]]:
    """Every split's Examples, sorted (a multiset: file order is not part of the output), each
    re-serialized deterministically: a feature map's byte order may differ between processes."""
    out = {}
    for name in SPLITS:
        files = sorted(glob.glob(os.path.join(uri, f"Split-{name}", "*")))
        out[name] = sorted(
            tf.train.Example.FromString(r.numpy()).SerializeToString(deterministic=True)
            for r in tf.data.TFRecordDataset(files, compression_type="GZIP")
        )
    return out


def run_both(
    folder: Path, out: Path, chunk_bytes: int, options=IN_MEMORY, split_params=None, protocol="temporal"
):
    """(old Examples, old report, new Examples, new report, the new run's metrics by name)."""
    params = split_params or {}
    _write_single_worker(
        beam.Pipeline(options=PipelineOptions(IN_MEMORY)),
        str(folder),
        protocol,
        json.dumps(params),
        False,
        str(out / "old"),
        str(out / "old-report" / "report.json"),
    )
    plan = data_parallel(str(folder), protocol)
    assert plan is not None
    pipeline = beam.Pipeline(options=PipelineOptions(options))
    report_path = str(out / "new-report" / "report.json")
    write_keyed_examples(pipeline, plan, str(out / "new"), report_path, params, False, chunk_bytes, protocol)
    result = pipeline.run()
    result.wait_until_finish()
    metrics = {}  # by name: counters summed over the steps that count (parsing, deduplication)
    queried = result.metrics().query(MetricsFilter().with_namespace(METRICS))
    for m in queried["counters"]:
        value = m.committed if m.committed is not None else m.attempted
        metrics[m.key.metric.name] = metrics.get(m.key.metric.name, 0) + value
    for m in queried["distributions"]:
        metrics[m.key.metric.name] = m.committed if m.committed is not None else m.attempted
    old_report = json.loads((out / "old-report" / "report.json").read_text())
    new_report = json.loads((out / "new-report" / "report.json").read_text())
    return read_examples(str(out / "old")), old_report, read_examples(str(out / "new")), new_report, metrics


def assert_same(old, old_report, new, new_report):
    for name in SPLITS:
        assert len(new[name]) == len(old[name]), name
        assert new[name] == old[name], name
    assert new_report == old_report


def test_ml100k_examples_and_report_equal_the_single_worker_path(ml100k_dir, tmp_path):
    # 256 KB pieces: u.data (2 MB) is read in 8 pieces whose cuts fall inside lines
    old, old_report, new, new_report, metrics = run_both(ml100k_dir, tmp_path, chunk_bytes=256 << 10)
    assert_same(old, old_report, new, new_report)
    split = new_report["split"]
    assert split["protocol"] == "temporal" and split["params"]["test_fraction"] == 0.2
    assert 0 < split["train"] == len(new["train"]) <= 80_000  # events tied with the cut are evaluated
    assert (split["validation"], split["test"]) == (len(new["eval"]), len(new["test"]))
    assert sum(split["dropped"].values()) > 0  # evaluation events of unseen users/items, counted
    assert new_report["load"]["total_rejected"] == 0 and "rejected_rows" not in metrics
    # one flagged rating per training movie (Transform counts its title once), the earliest
    flagged, earliest = {}, {}
    for record in new["train"]:
        feature = tf.train.Example.FromString(record).features.feature
        item, time = feature["item_id"].bytes_list.value[0], feature["timestamp"].int64_list.value[0]
        user = int(feature["user_id"].bytes_list.value[0])
        earliest[item] = min(earliest.get(item, (time, user)), (time, user))
        if feature["item_first_training_rating"].int64_list.value[0]:
            assert item not in flagged
            flagged[item] = (time, user)
    assert flagged == earliest
    for name in ("eval", "test"):
        assert not any(
            tf.train.Example.FromString(r).features.feature["item_first_training_rating"].int64_list.value[0]
            for r in new[name]
        )


def ml100k_rows(ml100k_dir: Path, count: int) -> list[bytes]:
    return (ml100k_dir / "u.data").read_bytes().splitlines()[:count]


def write_ml100k(folder: Path, ml100k_dir: Path) -> dict[str, tuple[int, str, str]]:
    """u.data from the real file's first 3000 rows with bad rows, blank lines and a CRLF line put in;
    returns {what: (line, category, reason)} of the rows that must be reported."""
    folder.mkdir(parents=True)
    for name in ("u.item", "u.user", "u.genre"):
        (folder / name).write_bytes((ml100k_dir / name).read_bytes())
    rows = ml100k_rows(ml100k_dir, 3000)
    lines: list[bytes] = []
    at: dict[str, int] = {}

    def add(*more: bytes, name: str | None = None) -> None:
        lines.extend(more)
        if name:
            at[name] = len(lines)  # the 1-based number of the last line added

    add(*rows[:100])
    add(b"2\t3\t7\t880000001", name="range")
    add(b"", b"2\t3\t4", name="fields")
    add(rows[100] + b"\r", *rows[101:2000], b"", b"")  # a CRLF line and blank lines
    add(rows[0], name="duplicate")  # a copy of line 1, in another piece
    add(b"1\t99999\t4\t880000002", name="item")
    add(b"9999\t1\t3\t880000003", name="user")
    add(*rows[2000:], b"2\tx3\t4\t880000001", name="last")  # the last line has no final newline
    (folder / "u.data").write_bytes(b"\n".join(lines))
    user, item, _, ts = rows[0].split(b"\t")
    return {
        "range": (at["range"], "rating out of range 1–5", "rating 7 out of range 1–5"),
        "fields": (
            at["fields"],
            "malformed line (expected 4 fields)",
            "expected 4 tab-separated fields (user, item, rating, timestamp), found 3",
        ),
        "duplicate": (
            at["duplicate"],
            "duplicate (user_id, item_id, timestamp)",
            f"duplicate of line 1 (user {int(user)}, item {int(item)}, timestamp {int(ts)}); "
            "the first is kept",
        ),
        "item": (at["item"], "item not in u.item (kept)", "item 99999 is not in u.item; the rating is kept"),
        "user": (at["user"], "user not in u.user (kept)", "user 9999 is not in u.user; the rating is kept"),
        "last": (at["last"], "invalid item id", "non-numeric item id 'x3'"),
    }


def write_ml_csv(folder: Path, ml100k_dir: Path) -> dict[str, tuple[int, str, str]]:
    """ratings.csv (UTF-8 with a byte order mark and a header) with an invalid UTF-8 row; movies.csv
    lists only the first 300 movies, so later ones are warned about."""
    folder.mkdir(parents=True)
    rows = [r.split(b"\t") for r in ml100k_rows(ml100k_dir, 2000)]
    body = [b"%s,%s,%s.0,%s" % tuple(r) for r in rows]
    lines = [b"\xef\xbb\xbfuserId,movieId,rating,timestamp", *body[:500], b"1,\xff2,4.0,880000000"]
    lines += [*body[500:], b"3,4,4.5.1,880000000"]
    (folder / "ratings.csv").write_bytes(b"\n".join(lines) + b"\n\n")
    movies = [b"movieId,title,genres"] + [b"%d,Movie %d (1995),Drama" % (i, i) for i in range(1, 301)]
    (folder / "movies.csv").write_bytes(b"\n".join(movies) + b"\n")
    offset = len(b"\n".join(lines[:502])) - len(lines[501]) + 2  # the byte after "1," on line 502
    return {
        "utf8": (502, "invalid UTF-8 bytes", f"invalid UTF-8 byte 0xFF at byte offset {offset} of the file"),
        "rating": (len(lines), "invalid rating", "non-numeric rating '4.5.1'"),
    }


def write_netflix(folder: Path, ml100k_dir: Path) -> dict[str, tuple[int, str, str]]:
    """Two combined_data files (per-movie blocks of dated ratings, so many same-day ties); the second
    repeats a rating of the first and starts with a rating before any MovieID line."""
    folder.mkdir(parents=True)
    rows = np.array([r.split(b"\t") for r in ml100k_rows(ml100k_dir, 3000)], dtype=np.int64)
    dates = np.datetime_as_string(rows[:, 3].astype("datetime64[s]"), unit="D")
    blocks: dict[int, list[bytes]] = {}
    for (user, item, rating, _), date in zip(rows, dates, strict=True):
        blocks.setdefault(int(item), []).append(b"%d,%d,%s" % (user, rating, date.encode()))
    movies = sorted(blocks)
    half = len(movies) // 2

    def write(name: str, chosen: list[int], head: list[bytes]) -> list[bytes]:
        lines = list(head)
        for movie in chosen:
            lines += [b"%d:" % movie] + blocks[movie]
        (folder / name).write_bytes(b"\n".join(lines) + b"\n")
        return lines

    first = write("combined_data_1.txt", movies[:half], [])
    copy = first[1]
    second = write("combined_data_2.txt", movies[half:], [b"7,3,2005-01-01"])
    second += [b"%d:" % movies[0], copy, b"8,3,2005-13-01"]
    (folder / "combined_data_2.txt").write_bytes(b"\n".join(second) + b"\n")
    titles = [b"%d,1995,Movie %d" % (m, m) for m in movies]
    (folder / "movie_titles.csv").write_bytes(b"\n".join(titles) + b"\n")
    user, rating, date = copy.decode().split(",")
    ts = int(np.datetime64(date, "s").astype(np.int64))
    return {
        "before": (1, "rating before any 'MovieID:' line", "rating line before any 'MovieID:' line"),
        "duplicate": (
            len(second) - 1,
            "duplicate (user_id, item_id, timestamp)",
            f"duplicate of combined_data_1.txt line 2 (user {user}, item {movies[0]}, timestamp {ts}); "
            "the first is kept",
        ),
        "date": (len(second), "invalid date", "invalid date '2005-13-01' (expected YYYY-MM-DD)"),
    }


LAYOUTS = {
    "ml-100k": (write_ml100k, "u.data", 4096),
    "ml-csv": (write_ml_csv, "ratings.csv", 2048),
    "netflix": (write_netflix, None, 4096),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_rejected_rows_are_counted_with_file_line_and_reason(layout, ml100k_dir, tmp_path):
    write, rating_name, chunk_bytes = LAYOUTS[layout]
    folder = tmp_path / layout
    expected = write(folder, ml100k_dir)
    # ml-100k on two worker processes: the pieces, their metrics and the report cross process borders
    options = TWO_PROCESSES if layout == "ml-100k" else IN_MEMORY
    old, old_report, new, new_report, metrics = run_both(folder, tmp_path / "out", chunk_bytes, options)
    assert_same(old, old_report, new, new_report)
    assert new_report["load"] == load_dataset(folder).report.to_dict()
    files = {f["name"]: f for f in new_report["load"]["files"]}
    for what, (line, category, reason) in expected.items():
        name = rating_name or "combined_data_2.txt"
        report = files[name]
        shown = report["examples"].get(category) or report["warning_examples"][category]
        (example,) = [e for e in shown if e["line"] == line]
        assert example["reason"].startswith(reason), what
        assert example["file"] == str(folder / name)
        if category in report["rejected"]:
            assert metrics[f"rejected {name}: {category}"] == report["rejected"][category]
            assert metrics[f"rejected line {name}: {category}"].min == min(e["line"] for e in shown)
    assert metrics["rejected_rows"] == new_report["load"]["total_rejected"] > 0
    for report in files.values():
        assert report["rows_read"] == report["rows_accepted"] + report["rows_rejected"]


def test_the_exact_cut_is_the_order_statistic_whatever_the_timestamps():
    rng = np.random.default_rng(3)
    # far apart (across the 2^32 and 2^16 digits), clustered, and tied timestamps
    ts = np.concatenate(
        [rng.integers(0, 2**53, 300), rng.integers(2**40, 2**40 + 50, 400), np.full(300, 2**33 + 7)]
    )
    rng.shuffle(ts)
    users = [
        UserEvents(u, np.zeros(100, np.int64), np.ones(100), ts[u * 100 : (u + 1) * 100]) for u in range(10)
    ]
    for fraction in (0.2, 0.5, 0.77, 0.999):
        with beam.Pipeline(options=PipelineOptions(IN_MEMORY)) as p:
            cut = p | beam.Create(users) | ExactCut(fraction)
            expected = int(np.sort(ts)[int(len(ts) * (1 - fraction))])
            assert_that(cut, equal_to([expected]))


def test_a_given_cut_time_and_other_parameters_match_too(ml100k_slice, tmp_path):
    params = {"cut_time": 880_000_000, "validation_share": 0.3, "seed": 5}
    old, old_report, new, new_report, _ = run_both(ml100k_slice, tmp_path, 100_000, split_params=params)
    assert_same(old, old_report, new, new_report)
    assert new_report["split"]["params"] == {**params, "test_fraction": None}


def test_leave_last_out_matches_too(ml100k_slice, tmp_path):
    # the slice has users with 20+ events; min_events 2 drops both kinds of user, counted: too short
    # (one event), and left without training events (two)
    min_events = 2
    folder = tmp_path / "data"
    folder.mkdir()
    for name in ("u.item", "u.user", "u.genre"):
        (folder / name).write_bytes((ml100k_slice / name).read_bytes())
    rows = (ml100k_slice / "u.data").read_bytes().splitlines()
    extra = [b"5000\t1\t4\t880000000", b"5000\t2\t4\t880000000", b"5001\t3\t4\t880000000"]
    (folder / "u.data").write_bytes(b"\n".join(rows + extra) + b"\n")  # two short users
    params = {"min_events": min_events}
    old, old_report, new, new_report, _ = run_both(
        folder, tmp_path / "out", 50_000, split_params=params, protocol="leave-last-out"
    )
    assert_same(old, old_report, new, new_report)
    dropped = new_report["split"]["dropped"]
    assert dropped["users_too_short"] == 1
    assert dropped["user_not_in_train"] > 0


def test_random_and_given_split_keep_the_single_worker_path(ml100k_slice):
    assert data_parallel(str(ml100k_slice), "random") is None
    assert data_parallel(str(ml100k_slice), "given-split") is None
    assert data_parallel(str(ml100k_slice), "temporal") is not None
    assert data_parallel(str(ml100k_slice), "leave-last-out") is not None


def test_the_component_runs_the_data_parallel_path_with_its_outputs_and_properties(ml100k_slice, tmp_path):
    from tfx.types import standard_artifacts

    from movierec.components.artifacts import DataReport
    from movierec.components.example_gen import MovieLensExampleGen

    examples, report = standard_artifacts.Examples(), DataReport()
    examples.uri, report.uri = str(tmp_path / "examples"), str(tmp_path / "report")
    properties = {
        "data_path": str(ml100k_slice),
        "data_fingerprint": "",
        "protocol": "temporal",
        "split_params": json.dumps({"seed": 1}),
        "strict": False,
        "code_fingerprint": "",
    }
    MovieLensExampleGen.EXECUTOR_SPEC.executor_class().Do(
        {}, {"examples": [examples], "report": [report]}, properties
    )
    written = json.loads((tmp_path / "report" / "report.json").read_text())
    split = json.loads(examples.get_string_custom_property("split"))
    assert split == written["split"] and split["params"]["seed"] == 1
    assert report.get_int_custom_property("rejected_rows") == written["load"]["total_rejected"] == 0
    assert json.loads(examples.split_names) == list(SPLITS)
    counts = {name: len(rows) for name, rows in read_examples(examples.uri).items()}
    assert counts == {"train": split["train"], "eval": split["validation"], "test": split["test"]}
