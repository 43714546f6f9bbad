"""`movierec data synth`: seeded, streaming, MovieLens-shaped test data that the loader reads back whole."""

import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import movierec.data.synth_files as synth_files
from movierec.cli import main
from movierec.data import load_dataset
from movierec.data.splits import same_second_share
from movierec.data.synth import (
    AGE_GROUPS,
    GENRES,
    ML100K_SAME_SECOND_SHARE,
    SYNTH_LAYOUTS,
    SynthConfig,
    SyntheticMovieLens,
    rating_levels,
)
from movierec.data.synth_files import LAYOUT_FILES, write_synthetic

MOVIELENS_GENRES = {*GENRES, "Children"}  # ml-csv spells it as ML-20M does


def frame(generator: SyntheticMovieLens) -> pd.DataFrame:
    """All of a (small) generator's events as the loader's interactions frame would hold them."""
    chunks = list(generator.chunks())
    return pd.DataFrame(
        {
            "user_id": np.concatenate([c.user for c in chunks]).astype(str),
            "item_id": np.concatenate([c.item for c in chunks]).astype(str),
            "timestamp": np.concatenate([c.timestamp for c in chunks]),
        }
    )


def file_bytes(folder: Path, layout: str) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in LAYOUT_FILES[layout]}


@pytest.mark.parametrize("layout", SYNTH_LAYOUTS)
def test_same_seed_gives_identical_bytes_and_another_seed_different_ones(tmp_path: Path, layout: str) -> None:
    def write(name: str, seed: int) -> dict[str, bytes]:
        write_synthetic(tmp_path / name, SynthConfig(events=20_000, layout=layout, seed=seed))
        return file_bytes(tmp_path / name, layout)

    first, again, other = write("a", 3), write("b", 3), write("c", 4)
    assert first == again
    for name in LAYOUT_FILES[layout]:
        assert first[name] != other[name], name
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(LAYOUT_FILES[layout])  # no temp left


@pytest.mark.parametrize("layout", SYNTH_LAYOUTS)
def test_the_loader_reads_both_layouts_back_with_no_rejected_row(tmp_path: Path, layout: str) -> None:
    result = write_synthetic(tmp_path / layout, SynthConfig(events=50_000, layout=layout, seed=1))
    dataset = load_dataset(result.folder)
    assert dataset.layout == layout
    assert dataset.report.total_rejected == 0, dataset.report.summary()
    assert not any(f.warnings for f in dataset.report.files), dataset.report.summary()
    frame = dataset.interactions
    assert abs(len(frame) - 50_000) <= 500  # the requested size (it is in fact exact)
    assert frame["user_id"].nunique() == result.users
    assert set(frame["rating"].unique()) <= set(rating_levels(layout).astype(np.float32))
    items = dataset.items
    assert len(items) == result.items
    assert items["year"].notna().all()  # every title is "Words (YYYY)"
    assert all(1 <= len(g) <= 5 and set(g) <= MOVIELENS_GENRES for g in items["genres"])
    if layout == "ml-dat":
        users = dataset.users
        assert len(users) == result.users
        assert set(users["gender"]) == {"F", "M"}
        assert set(users["age"].astype(int)) <= set(AGE_GROUPS.tolist())
        assert users["zip_code"].str.fullmatch(r"[0-9]{5}").all()
    else:
        assert dataset.users is None  # ml-csv has no users file


def test_item_popularity_is_heavy_tailed() -> None:
    generator = SyntheticMovieLens(SynthConfig(events=100_000, seed=2))
    counts = np.zeros(generator.config.items, dtype=np.int64)
    for chunk in generator.chunks():
        counts += np.bincount(chunk.item - 1, minlength=len(counts))
    ranked = np.sort(counts)[::-1]
    top_tenth = ranked[: len(ranked) // 10].sum() / ranked.sum()
    assert top_tenth > 0.40  # ML-100K: 0.43
    assert ranked[0] > 20 * np.median(ranked)


def test_same_second_share_is_ml100k_s() -> None:
    generator = SyntheticMovieLens(SynthConfig(events=60_000, seed=5))
    assert abs(same_second_share(frame(generator)) - ML100K_SAME_SECOND_SHARE) < 0.1
    # and it follows the setting
    fewer = SyntheticMovieLens(SynthConfig(events=60_000, seed=5, same_second_share=0.1))
    assert abs(same_second_share(frame(fewer)) - 0.1) < 0.03


def test_ratings_follow_taste_and_tastes_drift() -> None:
    generator = SyntheticMovieLens(SynthConfig(events=60_000, seed=8, layout="ml-dat"))
    chunks = list(generator.chunks())
    user = np.concatenate([c.user for c in chunks])
    item = np.concatenate([c.item for c in chunks])
    rating = rating_levels("ml-dat")[np.concatenate([c.rating_code for c in chunks])]
    primary = np.array([genres[0] for genres in generator.catalogue.genres])[item - 1]
    counts = np.zeros((user.max() + 1, len(GENRES)))
    np.add.at(counts, (user, primary), 1)
    favourite = counts.argmax(axis=1)[user] == primary
    assert rating[favourite].mean() > rating[~favourite].mean() + 0.1  # taste shows in the stars
    # each user's genre mix (genre flags of the rated movies) in the first and the last quarter of the
    # history differ more than after shuffling the history (drift), for users with 100+ ratings
    flags = np.zeros((len(generator.catalogue.genres), len(GENRES)))
    for row, genres in enumerate(generator.catalogue.genres):
        flags[row, list(genres)] = 1
    rated = flags[item - 1]
    rng = np.random.default_rng(0)
    starts = np.flatnonzero(np.r_[True, user[1:] != user[:-1]])
    ends = np.r_[starts[1:], len(user)]

    def distance(history: np.ndarray) -> float:
        quarter = len(history) // 4
        early, late = history[:quarter].sum(axis=0), history[-quarter:].sum(axis=0)
        return float(np.abs(early / early.sum() - late / late.sum()).sum() / 2)

    long = [(a, b) for a, b in zip(starts, ends, strict=True) if b - a >= 100]
    drift = np.mean([distance(rated[a:b]) for a, b in long])
    shuffled = np.mean([distance(rated[rng.permutation(np.arange(a, b))]) for a, b in long])
    assert drift > shuffled + 0.03, (drift, shuffled)


def test_the_target_share_is_measured_on_the_real_ml100k(ml100k_dir: Path) -> None:
    real = load_dataset(ml100k_dir).interactions
    assert same_second_share(real) == pytest.approx(ML100K_SAME_SECOND_SHARE, abs=5e-4)


def test_each_user_has_sessions_and_a_history_inside_the_dates() -> None:
    config = SynthConfig(events=30_000, seed=6, start=946684800, end=946684800 + 30 * 86400)
    events = frame(SyntheticMovieLens(config))
    assert events["timestamp"].between(config.start, config.end).all()
    gaps = events.groupby("user_id", sort=False)["timestamp"].diff().dropna()
    assert (gaps >= 0).all()  # each user's rows are in time order
    assert 0.005 < (gaps > 3600).mean() < 0.1  # a session break now and then (ML-100K: 1.8% of gaps)


def test_generation_is_lazy_and_its_memory_does_not_grow_with_the_event_count() -> None:
    def peak(events: int) -> int:
        tracemalloc.start()
        try:
            generator = SyntheticMovieLens(SynthConfig(events=events, seed=0))
            chunks = generator.chunks()
            assert not isinstance(chunks, list | tuple)  # a lazy iterator: one chunk at a time
            assert sum(len(chunk) for chunk in chunks) == events
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(200_000), peak(2_000_000)
    # ten times the events: the tables grow a little (one row per user/movie), the chunks not at all
    assert large < 1.5 * small + (8 << 20), (small, large)


def test_a_failed_run_leaves_no_file_under_a_final_name(tmp_path: Path, monkeypatch) -> None:
    def broken(chunk, separator, texts):
        raise OSError("disk full")

    monkeypatch.setattr(synth_files, "format_rating_rows", broken)
    with pytest.raises(OSError, match="disk full"):
        write_synthetic(tmp_path / "out", SynthConfig(events=5_000, layout="ml-dat"))
    assert list((tmp_path / "out").iterdir()) == []


def test_existing_files_are_kept_unless_forced(tmp_path: Path) -> None:
    write_synthetic(tmp_path, SynthConfig(events=2_000, seed=1))
    with pytest.raises(FileExistsError, match=r"ratings\.csv"):
        write_synthetic(tmp_path, SynthConfig(events=2_000, seed=2))
    write_synthetic(tmp_path, SynthConfig(events=2_000, seed=2), overwrite=True)
    with pytest.raises(FileExistsError, match="two layouts"):
        write_synthetic(tmp_path, SynthConfig(events=2_000, layout="ml-dat"), overwrite=True)


def test_writes_to_a_uri_through_tf_io_gfile(tmp_path: Path, monkeypatch) -> None:
    tf = pytest.importorskip("tensorflow")
    monkeypatch.chdir(tmp_path)  # a URI mishandled as a local path would show up here as "ram:"
    folder = f"ram://synth-test-{tmp_path.name}/data"
    try:
        result = write_synthetic(folder, SynthConfig(events=3_000, layout="ml-dat", seed=2))
        assert sorted(tf.io.gfile.listdir(folder)) == sorted(LAYOUT_FILES["ml-dat"])  # no temporary left
        assert load_dataset(result.folder).report.total_rejected == 0
    finally:
        tf.io.gfile.rmtree(folder)
    assert not (tmp_path / "ram:").exists()


@pytest.mark.parametrize(
    ("config", "argument"),
    [
        (SynthConfig(events=0), "--events"),
        (SynthConfig(events=100, users=200), "--users"),
        (SynthConfig(events=100, users=2, items=10), "--items"),
        (SynthConfig(events=100, start=1000, end=2000), "--end"),
        (SynthConfig(events=100, seed=-1), "--seed"),
    ],
)
def test_bad_sizes_name_the_argument(config: SynthConfig, argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        config.resolved()


def test_the_command_writes_the_files_and_says_where(tmp_path: Path) -> None:
    out = tmp_path / "synthetic"
    result = CliRunner().invoke(
        main,
        ["data", "synth", "--out", str(out), "--events", "5000", "--layout", "ml-dat", "--seed", "9"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(LAYOUT_FILES["ml-dat"])
    assert f"to {out}" in result.stdout
    assert "not a benchmark of accuracy" in result.stdout
    assert len(load_dataset(out).interactions) == 5000
    bad = CliRunner().invoke(main, ["data", "synth", "--out", str(out), "--events", "0"])
    assert bad.exit_code != 0 and "--events" in bad.output
