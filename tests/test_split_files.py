"""`movierec data split --out`: any protocol's split written as files that read back, with given-split,
to exactly the same experiment (same events, ids, roles, queries and metrics)."""

import dataclasses
import json
import uuid
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from movierec.cli import main
from movierec.data import load_dataset
from movierec.data.split_files import write_split
from movierec.data.splits import make_split
from movierec.evaluation.experiment import EvaluationSettings, prepare, run_experiment

SETTINGS = {"bootstrap_resamples": 50, "seed": 3}


def ml_csv_folder(root: Path) -> Path:
    """An invented ml-csv dataset big enough for real rankings: half-star ratings, many same-second
    events (the tie rule matters), users and items that appear only late (the protocols drop them)."""
    rng = np.random.default_rng(11)
    n = 3000
    users = np.r_[rng.integers(1, 80, n - 40), rng.integers(500, 510, 40)]
    items = np.r_[rng.zipf(1.6, n - 40) % 70 + 1, rng.integers(900, 905, 40)]
    times = np.r_[1_000_000 + rng.integers(0, 5000, n - 40) * 7, 1_035_000 + rng.integers(0, 10, 40)]
    ratings = rng.integers(1, 11, n) / 2
    folder = root / "synthetic"
    folder.mkdir()
    pairs = {}
    for u, i, r, t in zip(users, items, ratings, times, strict=True):
        pairs.setdefault((u, i, t), r)  # no duplicate (user, item, timestamp): they would be rejected
    lines = [f"{u},{i},{r},{t}" for (u, i, t), r in pairs.items()]
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + "\n".join(lines) + "\n")
    titles = [f"{i},Film {i} (2001),Drama" for i in sorted(set(items))]
    (folder / "movies.csv").write_text("movieId,title,genres\n" + "\n".join(titles) + "\n")
    return folder


def experiment(dataset, protocol: str, model: str, role: str, **split_params):
    split, stream = prepare(dataset, protocol, **split_params)
    _, result = run_experiment(
        dataset, model, split=split, stream=stream, settings=EvaluationSettings(role=role, **SETTINGS)
    )
    return stream, result


@pytest.mark.parametrize(("protocol", "params"), [("temporal", {"seed": 2}), ("leave-last-out", {})])
def test_a_written_split_reproduces_the_protocols_experiment_exactly(tmp_path: Path, protocol, params):
    source = load_dataset(ml_csv_folder(tmp_path))
    split = make_split(source.interactions, protocol, **params)
    assert sum(split.dropped.values()) > 0  # the dropped rows are not written, only counted
    written = load_dataset(write_split(source, split, tmp_path / "out"))
    assert written.layout == "session-tsv" and written.interactions.attrs["session_ids"] is False

    for model in ("pop", "itemknn"):
        for role in ("test", "validation"):
            stream_a, a = experiment(source, protocol, model, role, **params)
            stream_b, b = experiment(written, "given-split", model, role)
            assert np.array_equal(stream_a.user_ids, stream_b.user_ids)
            assert np.array_equal(stream_a.item_ids, stream_b.item_ids)
            assert np.array_equal(stream_a.roles, stream_b.roles)
            for field in dataclasses.fields(stream_a.sequences):
                name = field.name
                assert np.array_equal(getattr(stream_a.sequences, name), getattr(stream_b.sequences, name)), (
                    name
                )
            assert b.evaluation["exclude_seen"] is True  # user files: seen-item removal stays on
            assert a.evaluation["queries"] == b.evaluation["queries"] > 0
            assert a.metrics == b.metrics, (model, role)
            assert a.intervals == b.intervals


def test_session_data_round_trips_with_its_sessions_and_milliseconds(tmp_path: Path):
    folder = tmp_path / "sessions"
    folder.mkdir()
    header = "SessionId\tItemId\tTime\n"
    (folder / "rsc15_train_full.txt").write_text(
        header + "1\t5\t1396839069.277\n1\t6\t1396839070\n2\t5\t1396839080.5\n2\t7\t1396839090\n"
    )
    (folder / "rsc15_test.txt").write_text(
        header + "3\t5\t1396839100.001\n3\t6\t1396839101\n3\t8\t1396839102\n"
    )
    source = load_dataset(folder)
    split = make_split(source.interactions, "given-split")
    out = write_split(source, split, tmp_path / "out")
    text = (out / "train.tsv").read_text().splitlines()
    assert text[:2] == ["SessionId\tItemId\tRating\tTime", "1\t5\t1.0\t1396839069.277"]
    assert (out / "test.tsv").read_text().splitlines()[1] == "3\t5\t1.0\t1396839100.001"
    back = load_dataset(out)
    assert back.time_unit == "ms" and back.interactions.attrs["session_ids"] is True
    kept = np.sort(np.r_[split.train, split.test])  # item 8 is unknown to training: dropped, not written
    original = source.interactions.iloc[kept].reset_index(drop=True)
    assert back.interactions.equals(original)
    manifest = json.loads((out / "split.json").read_text())
    assert manifest["dropped"] == {"item_not_in_train": 1}
    assert manifest["params"] == {"session_ids": True, "exclude_seen": False, "min_context": 1}
    assert manifest["source"]["checksum"] == source.checksum and manifest["time_unit"] == "ms"


def test_writing_is_all_or_nothing(tmp_path: Path, fixtures_dir: Path):
    source = load_dataset(fixtures_dir / "ml-100k")
    split = make_split(source.interactions, "leave-last-out")
    out = tmp_path / "out"
    # a split that does not fit the data fails after train.tsv is written: nothing may remain
    broken = dataclasses.replace(split, test=np.array([len(source.interactions) + 5]))
    with pytest.raises(IndexError):
        write_split(source, broken, out)
    assert list(tmp_path.iterdir()) == []

    write_split(source, split, out)
    with pytest.raises(FileExistsError, match="already exists"):
        write_split(source, split, out)
    temporal = make_split(source.interactions, "temporal")
    write_split(source, temporal, out, overwrite=True)
    assert json.loads((out / "split.json").read_text())["protocol"] == "temporal"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging or old folder left


def test_a_split_written_to_a_uri_reads_back(tmp_path: Path, fixtures_dir: Path, monkeypatch):
    import tensorflow as tf

    monkeypatch.chdir(tmp_path)  # a URI mishandled as a local path would show up here as "ram:"
    root = f"ram://movierec-split-{uuid.uuid4().hex}"
    source = load_dataset(fixtures_dir / "ml-100k")
    split = make_split(source.interactions, "leave-last-out")
    try:
        write_split(source, split, f"{root}/out")
        assert sorted(tf.io.gfile.listdir(root)) == ["out"]
        back = load_dataset(f"{root}/out")
        local = load_dataset(write_split(source, split, tmp_path / "local"))
        assert back.interactions.equals(local.interactions)
    finally:
        tf.io.gfile.rmtree(root)
    assert not (tmp_path / "ram:").exists()


def run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_cli_data_split_then_evaluate_given_split_gives_the_same_metrics(tmp_path: Path, fixtures_dir: Path):
    data = str(fixtures_dir / "ml-100k")
    out = tmp_path / "split"
    printed = run("data", "split", "--data", data, "--out", str(out))  # temporal, seed 0
    assert f"temporal split of ml-100k written to {out}: train 6, validation 1, test 1 rows" in printed
    assert sorted(p.name for p in out.iterdir()) == ["split.json", "test.tsv", "train.tsv", "validation.tsv"]
    assert (out / "test.tsv").read_text().splitlines()[0] == "UserId\tItemId\tRating\tTime"
    manifest = json.loads((out / "split.json").read_text())
    assert manifest["protocol"] == "temporal" and manifest["params"]["cut_time"] == 880000500
    assert manifest["source"]["checksum"] == load_dataset(fixtures_dir / "ml-100k").checksum
    assert manifest["dropped"] == {"user_not_in_train": 0, "item_not_in_train": 0}
    assert manifest["session_gap"] == 3600
    inspected = json.loads(run("data", "inspect", "--data", str(out), "--json"))
    assert (inspected["layout"], inspected["time_unit"], inspected["interactions"]) == ("session-tsv", "s", 8)

    again = CliRunner().invoke(main, ["data", "split", "--data", data, "--out", str(out)])
    assert again.exit_code != 0 and "already exists (pass overwrite=True / --force" in again.output
    run("data", "split", "--data", data, "--out", str(out), "--force")

    common = ("--model", "pop", "--model", "itemknn", "--bootstrap", "20", "--json")
    original = json.loads(run("evaluate", "--data", data, "--protocol", "temporal", *common))
    read_back = json.loads(run("evaluate", "--data", str(out), "--protocol", "given-split", *common))
    for a, b in zip(original, read_back, strict=True):
        assert b["protocol"]["protocol"] == "given-split" and b["dataset"]["layout"] == "session-tsv"
        assert (a["model"], a["evaluation"]["queries"], a["metrics"]) == (
            b["model"],
            b["evaluation"]["queries"],
            b["metrics"],
        )


def test_cli_given_split_on_data_without_split_files_is_one_clear_error(fixtures_dir: Path, tmp_path: Path):
    result = CliRunner().invoke(
        main,
        [
            "data",
            "split",
            "--data",
            str(fixtures_dir / "ml-100k"),
            "--protocol",
            "given-split",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code != 0
    assert "given-split needs a layout with its own split files (session-tsv)" in result.output
    assert not (tmp_path / "o").exists()
