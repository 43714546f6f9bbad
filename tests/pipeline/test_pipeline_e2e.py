"""The whole TFX pipeline on LocalDagRunner over a slice of MovieLens 100K.

Like TFX's own e2e tests: a full run, a run where only the Evaluator re-executes (the resolver now
finds a blessed model: the cached candidate itself, which is not blessed or pushed again), a fully
cached run, all asserted on ML Metadata; then a deliberately weak candidate, built from edited movierec
code (every step re-runs), that must not be pushed, and a run on refreshed data (new events, movies
and users) where the latest blessed model is scored through its own vocabulary. The pushed SavedModel
is checked the way TF Serving sees it: saved_model_cli, and loading in a fresh process.
"""

import collections
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest
from pipeline_runs import COMPONENTS, TUNER, completed, evaluated_stream, latest_uri, pushed_versions

from movierec.components.id_space import ModelVocabulary
from movierec.data.stream import lookup_ids
from movierec.pipeline.config import PipelineConfig
from movierec.pipeline.fingerprint import code_fingerprint
from movierec.pipeline.runners.local import run

pytestmark = pytest.mark.slow


def evaluated_query(config: PipelineConfig, k: int) -> tuple[list[str], list[int], list[str]]:
    """A real test-user query and what evaluation ranks for it: (the context's raw item ids, their
    timestamps, the evaluated top-k raw ids). The query is the one with the longest context among
    those whose context spans several sessions and ends in a same-second tie group, so the served path
    must reproduce the ordering of ties, the session cut and the history cap to match."""
    from movierec.data.splits import TEST
    from movierec.data.stream import build_queries
    from movierec.evaluation import top_k
    from movierec.evaluation.experiment import seen_items
    from movierec.models import load_model

    stream, items = evaluated_stream(config, "test")
    queries = build_queries(stream, TEST)
    seq = stream.sequences
    tie_start, _ = seq.tie_groups
    context_end = seq.indptr[queries.users] + queries.positions
    last = np.maximum(context_end - 1, 0)
    eligible = (queries.positions > 1) & (tie_start[last] < last) & (queries.session_starts > 0)
    q = int(np.flatnonzero(eligible)[np.argmax(queries.positions[eligible])])
    recommender = load_model(os.path.join(latest_uri(config, "Model"), "recommender"))
    batch, _, _ = queries.batch(q, q + 1, seq)
    indices, _ = top_k(recommender.score(batch), k, seen_items(batch.users, batch.positions, stream))
    rows = slice(seq.indptr[batch.users[0]], context_end[q])
    return (
        [str(items[i]) for i in seq.items[rows]],
        [int(t) for t in seq.timestamps[rows]],
        [str(items[i]) for i in indices[0]],
    )


NEW_ITEMS = range(1683, 1693)  # ML-100K's ids end at 1682
NEW_USERS = range(201, 206)  # the slice's users end at 200


def refreshed_copy(folder: Path, target: Path) -> Path:
    """The data of `folder` plus new events, written into `target`: users 1-100 rate new movies
    (NEW_ITEMS) after their last rating, and new users (NEW_USERS) rate old and new movies across the
    period, so the next run's vocabularies hold new ids and the old ids at other indices."""
    target.mkdir()
    for name in ("u.genre", "u.occupation"):
        (target / name).write_bytes((folder / name).read_bytes())
    ratings = [[int(v) for v in line.split("\t")] for line in (folder / "u.data").read_text().splitlines()]
    last = {}
    for user, _, _, stamp in ratings:
        last[user] = max(last.get(user, 0), stamp)
    extra = [
        (u, NEW_ITEMS[(u + k) % len(NEW_ITEMS)], 4, last[u] + 600 * (k + 1))
        for u in range(1, 101)
        for k in range(5)
    ]
    start, stop = min(r[3] for r in ratings), max(r[3] for r in ratings)
    for j, user in enumerate(NEW_USERS):
        stamp = start + (stop - start) * j // len(NEW_USERS)
        movies = [50, 181, 258, 100, 1, NEW_ITEMS[j], NEW_ITEMS[j + 1]]
        extra += [(user, item, 3 + k % 3, stamp + 300 * k) for k, item in enumerate(movies)]
    lines = [f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in [*ratings, *extra]]
    (target / "u.data").write_text("".join(lines))
    genres = "|".join(["0"] * 8 + ["1"] + ["0"] * 10)  # Drama
    movies = [
        f"{i}|Refreshed Picture {i} (1998)|01-Jan-1998||http://example.invalid/{i}|{genres}\n"
        for i in NEW_ITEMS
    ]
    (target / "u.item").write_bytes((folder / "u.item").read_bytes() + "".join(movies).encode("latin-1"))
    users = "".join(f"{u}|30|F|writer|10001\n" for u in NEW_USERS)
    (target / "u.user").write_bytes((folder / "u.user").read_bytes() + users.encode("latin-1"))
    return target


def tfx_sdists_in(root: Path) -> set[str]:
    """The folders under `root` that hold TFX's ephemeral sdist build."""
    return {str(setup.parents[2]) for setup in root.glob("**/build/tfx/setup.py")}


def assert_evaluated_as_in_one_process(config: PipelineConfig, evaluation: dict, model_dir: str) -> None:
    """The Evaluator's Beam transforms (batches of `evaluation_users_per_batch` users, joined per user)
    give the metrics and paired intervals of one in-process pass over all of a split's queries."""
    from movierec.constants import ROLE_NAMES, SPLIT_OF_ROLE, TEST, VALIDATION
    from movierec.data.stream import build_queries
    from movierec.evaluation import paired_difference
    from movierec.evaluation.experiment import EvaluationSettings, evaluate_ranking
    from movierec.models import build_model, load_model

    training, _ = evaluated_stream(config, "train")
    contenders = {
        "candidate": load_model(model_dir),
        "baseline:pop": build_model("pop").fit(training.training_data()),
    }
    for role in (VALIDATION, TEST):
        split = SPLIT_OF_ROLE[role]
        stream, _ = evaluated_stream(config, split)
        queries = build_queries(stream, role)
        assert len(np.unique(queries.users)) > 2 * config.evaluation_users_per_batch  # several batches
        settings = EvaluationSettings(role=ROLE_NAMES[role])
        accumulators = {
            name: evaluate_ranking(m, stream, queries, settings) for name, m in contenders.items()
        }
        for name, accumulator in accumulators.items():
            expected = accumulator.result()
            got = evaluation["results"][name][split]
            assert set(got) == set(expected)
            for metric, value in expected.items():
                assert got[metric] == pytest.approx(value, rel=1e-12, abs=1e-15, nan_ok=True), (name, metric)
        candidate, pop = (accumulators[n].per_query() for n in contenders)
        groups = queries.users[accumulators["candidate"].query_rows()]
        expected = paired_difference(candidate, pop, groups=groups, level=config.regression_confidence)
        got = evaluation["paired_differences"]["candidate - baseline:pop"][split]
        for metric, summary in expected.items():
            assert got[metric] == pytest.approx(summary, rel=1e-12, abs=1e-15, nan_ok=True), metric


SERVE = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    model = tf.saved_model.load(sys.argv[1])
    requests = json.loads(sys.argv[2])  # [(item ids, timestamps or [])]
    def example(items, times):
        ids = tf.train.BytesList(value=[i.encode() for i in items])
        feature = {"item_ids": tf.train.Feature(bytes_list=ids)}
        if times:
            feature["timestamps"] = tf.train.Feature(int64_list=tf.train.Int64List(value=times))
        return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
    out = model.signatures["serving_default"](examples=tf.constant([example(*r) for r in requests]))
    print(json.dumps({"item_ids": [[i.decode() for i in row] for row in out["item_ids"].numpy()],
                      "scores": out["scores"].numpy().tolist()}))
""")


def test_pipeline_runs_blesses_pushes_caches_and_refuses_a_weak_model(
    ml100k_slice, source_copy, tmp_path, monkeypatch
):
    config = PipelineConfig(
        data_path=str(ml100k_slice),
        output_dir=str(tmp_path / "run"),
        model="gru4rec",
        # the network's size fixed at its defaults: the Tuner's random trial stays as fast as trial 0
        hparams={"epochs": 2, "hidden_size": 100, "batch_size": 32, "n_sample": 512},
        # fixed once: an edit to the checkout while this test runs must not count as a code change
        code_fingerprint=code_fingerprint(),
        # the one pipeline test with the Tuner: two trials (the defaults and one draw of the rest)
        tune_trials=2,
        tune_minutes=None,
        tune_patience=None,
        evaluation_users_per_batch=4,  # the slice has ~12 validation users: several batches, joined
    )
    # Python's temporary folder for this test alone (other processes on the machine may run TFX too)
    system_temp = tmp_path / "system-temp"
    system_temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_temp))
    summary = run(config)
    assert summary["blessed"], summary.get("reason")
    # TFX's Beam executors build an sdist of TFX in a temporary folder each: the run removed them
    assert not tfx_sdists_in(system_temp)
    first = completed(config)
    assert set(first) >= COMPONENTS | {TUNER} and all(first[c] == 1 for c in COMPONENTS | {TUNER}), first
    # The Tuner's trials are in the summary; the Trainer trained the best values over --set's epochs.
    tuning = summary["tuning"]
    assert len(tuning["trials"]) == 2 and "epochs" not in tuning["best"]
    best_trial = max(tuning["trials"], key=lambda t: t["score"])
    assert {k: v for k, v in best_trial.items() if k not in ("trial_id", "score")} == tuning["best"]
    model_dir = os.path.join(latest_uri(config, "Model"), "recommender")
    with open(os.path.join(model_dir, "hyperparameters.json")) as f:
        trained = json.load(f)
    assert trained["tuned"] == tuning["best"] and trained["set"] == config.hparams
    assert {k: trained["trained"][k] for k in tuning["best"]} == tuning["best"]
    assert trained["trained"]["epochs"] == 2
    report = json.loads(Path(tuning["report"], "trials.json").read_text())
    assert [t["status"] for t in report["trials"]] == ["COMPLETED", "COMPLETED"]
    assert report["evaluated_on"] == "validation users" and Path(tuning["report"], "trials.png").is_file()
    (version,) = pushed_versions(config)
    assert summary["pushed_model"].rstrip("/").endswith(version)
    results = summary["evaluation"]["results"]
    assert results["candidate"]["eval"]["recall@20"] > results["baseline:pop"]["eval"]["recall@20"]
    assert_evaluated_as_in_one_process(config, summary["evaluation"], model_dir)

    # What TF Serving loads: the signature, and a call in a process that never imported movierec.
    model_dir = os.path.join(config.serving_model_dir, version)
    shown = subprocess.run(
        ["saved_model_cli", "show", "--dir", model_dir, "--all"], capture_output=True, text=True, check=True
    ).stdout
    assert "signature_def['serving_default']" in shown and "inputs['examples']" in shown
    assert "signature_def['transform_features']" in shown
    history = ["50", "181", "258"]  # popular movies of ML-100K, by raw id
    context, times, evaluated = evaluated_query(config, 20)
    shuffled = list(reversed(range(len(context))))  # any order: timestamps say which came first
    requests = [
        (history, []),
        (history, []),
        ([context[i] for i in shuffled], [times[i] for i in shuffled]),
    ]
    served = json.loads(
        subprocess.run(
            [sys.executable, "-c", SERVE, model_dir, json.dumps(requests)],
            capture_output=True,
            text=True,
            check=True,
            cwd="/",
        ).stdout
    )
    items, scores = served["item_ids"][0], served["scores"][0]
    assert len(items) == 100 == len(set(items)) and not set(items) & set(history)
    assert scores == sorted(scores, reverse=True)
    assert served["item_ids"][1] == items
    # Serve what was evaluated: a real test user's context (several sessions, a same-second tie at its
    # end), sent in scrambled order with its timestamps, gets the evaluated top-20 of `score()`.
    assert served["item_ids"][2][:20] == evaluated
    assert not set(served["item_ids"][2]) & set(context)

    # Second run: the resolver now returns the blessed model, so the Evaluator runs again; the cached
    # Trainer's candidate *is* that model: it is not blessed again, and no duplicate version is pushed.
    summary = run(config)
    second = completed(config) - first
    assert second == collections.Counter({"RankingEvaluator": 1}), second
    assert not summary["blessed"] and "not blessed again" in summary["reason"]
    assert summary["evaluation"]["already_blessed"] and pushed_versions(config) == [version]
    # Third run: nothing changed, everything comes from the cache.
    run(config)
    assert completed(config) - first == second

    # A deliberately weak candidate (untrained GRU4Rec) is evaluated and not pushed. It also comes
    # from edited movierec code (the fingerprint of an edited copy of the sources) on unchanged data:
    # the steps before the Trainer, whose parameters and inputs did not change, re-run for that alone
    # (one run checks both, to keep the test short); only the reviewed schema's import stays cached.
    splits = source_copy["movierec.data"] / "splits.py"
    splits.write_text(splits.read_text() + "\n# an edit\n")
    weak = dataclasses.replace(
        config, hparams={"epochs": 0}, code_fingerprint=code_fingerprint(source_copy), tune=False
    )
    assert weak.code_fingerprint != config.code_fingerprint
    before = pushed_versions(config)
    summary = run(weak)
    assert not summary["blessed"] and "does not beat the baseline" in summary["reason"]
    assert pushed_versions(config) == before
    rerun = completed(config) - first - second
    assert rerun == collections.Counter(COMPONENTS - {"ReviewedSchemaGen", "Pusher"}), rerun

    # Refreshed data: Transform's vocabularies change (new ids; old ids move, they are by frequency).
    # The latest blessed model is scored on the same queries through its own vocabulary: no exception,
    # both in the report, with the paired differences the blessing used.
    # (without the Tuner: its run on new data is the first run's again, and would only cost time)
    refreshed = dataclasses.replace(
        config, data_path=str(refreshed_copy(ml100k_slice, tmp_path / "new")), tune=False
    )
    summary = run(refreshed)
    evaluation = summary["evaluation"]
    previous = evaluation["latest_blessed"]
    assert previous["comparable"], previous
    results = evaluation["results"]
    assert set(results) == {"candidate", "baseline:pop", "latest_blessed"}
    for split in ("eval", "test"):
        assert results["latest_blessed"][split]["queries"] == results["candidate"][split]["queries"] > 0
        versus = evaluation["paired_differences"]["candidate - latest_blessed"][split]["recall@20"]
        assert np.isfinite([versus["low"], versus["difference"], versus["high"]]).all()
        assert versus["low"] <= versus["high"]
        # aligned scores: far above a random ranking's 20 / ~1,700 items (shifted ones would be random)
        assert results["latest_blessed"][split]["recall@20"] > 0.05
    old = ModelVocabulary.load(os.path.join(previous["uri"], "recommender"))
    new = ModelVocabulary.load(os.path.join(latest_uri(config, "Model"), "recommender"))
    added = [i for i in new.items if int(i) in NEW_ITEMS]
    assert added and previous["coverage"]["items_unknown_to_model"] == len(added)
    shared = np.intersect1d(old.items, new.items)
    assert (lookup_ids(old.items, shared) != lookup_ids(new.items, shared)).any()  # indices did move
