"""The whole TFX pipeline on LocalDagRunner over a slice of MovieLens 100K.

Like TFX's own e2e tests: a full run, a run where only the Evaluator and Pusher re-execute (the
resolver now finds a blessed model), a fully cached run, a run after an edit of movierec's code (all
re-run), all asserted on ML Metadata; then a deliberately weak candidate that must not be pushed. The
pushed SavedModel is checked the way TF Serving sees it: saved_model_cli, and loading in a fresh process.
"""

import collections
import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import pytest
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx

from movierec.pipeline.config import PipelineConfig
from movierec.pipeline.fingerprint import code_fingerprint
from movierec.pipeline.runners.local import run

pytestmark = pytest.mark.slow

COMPONENTS = {
    "MovieLensExampleGen",
    "StatisticsGen",
    "ReviewedSchemaGen",
    "ExampleValidator",
    "AnomalyGate",
    "Transform",
    "SequenceGen",
    "Trainer",
    "RankingEvaluator",
    "Pusher",
}


def completed(config: PipelineConfig) -> collections.Counter:
    """How many times each component really ran (cached executions are not counted; the resolver
    node resolves anew on every run and is not a component)."""
    store = metadata_store.MetadataStore(
        tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_db)
    )
    types = {t.id: t.name.rsplit(".", 1)[-1] for t in store.get_execution_types()}
    return collections.Counter(
        types[e.type_id]
        for e in store.get_executions()
        if e.last_known_state == metadata_store_pb2.Execution.COMPLETE and types[e.type_id] in COMPONENTS
    )


def latest_uri(config: PipelineConfig, type_name: str) -> str:
    store = metadata_store.MetadataStore(
        tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_db)
    )
    return max(store.get_artifacts_by_type(type_name), key=lambda a: a.id).uri


def expected_top_k(config: PipelineConfig, history: list[str], k: int) -> list[str]:
    """What serving must return, computed without the SavedModel: the trained recommender on the
    Transform vocabulary's indices, seen items removed."""
    import numpy as np
    import tensorflow_transform as tft

    from movierec.components.histories import vocabulary
    from movierec.models import load_model
    from movierec.stream import lookup_ids

    items = vocabulary(tft.TFTransformOutput(latest_uri(config, "TransformGraph")), "item_id")
    recommender = load_model(os.path.join(latest_uri(config, "Model"), "recommender"))
    indices = lookup_ids(items, history)
    scores = np.array(recommender.history_scorer()(indices[None, :].astype(np.int32)))[0]
    scores[indices] = -np.inf
    return [str(items[i]) for i in np.argsort(-scores, kind="stable")[:k]]


def pushed_versions(config: PipelineConfig) -> list[str]:
    base = config.serving_model_dir
    return sorted(os.listdir(base)) if os.path.isdir(base) else []


SERVE = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    model = tf.saved_model.load(sys.argv[1])
    history = json.loads(sys.argv[2])
    example = tf.train.Example(features=tf.train.Features(feature={
        "item_ids": tf.train.Feature(bytes_list=tf.train.BytesList(value=[i.encode() for i in history]))}))
    out = model.signatures["serving_default"](examples=tf.constant([example.SerializeToString()] * 2))
    print(json.dumps({"item_ids": [[i.decode() for i in row] for row in out["item_ids"].numpy()],
                      "scores": out["scores"].numpy().tolist()}))
""")


def test_pipeline_runs_blesses_pushes_caches_and_refuses_a_weak_model(ml100k_slice, source_copy, tmp_path):
    config = PipelineConfig(
        data_path=str(ml100k_slice), output_dir=str(tmp_path / "run"), model="gru4rec", hparams={"epochs": 2}
    )
    summary = run(config)
    assert summary["blessed"], summary.get("reason")
    first = completed(config)
    assert set(first) >= COMPONENTS and all(first[c] == 1 for c in COMPONENTS), first
    (version,) = pushed_versions(config)
    assert summary["pushed_model"].rstrip("/").endswith(version)
    results = summary["evaluation"]["results"]
    assert results["candidate"]["eval"]["recall@20"] > results["baseline:pop"]["eval"]["recall@20"]

    # What TF Serving loads: the signature, and a call in a process that never imported movierec.
    model_dir = os.path.join(config.serving_model_dir, version)
    shown = subprocess.run(
        ["saved_model_cli", "show", "--dir", model_dir, "--all"], capture_output=True, text=True, check=True
    ).stdout
    assert "signature_def['serving_default']" in shown and "inputs['examples']" in shown
    assert "signature_def['transform_features']" in shown
    history = ["50", "181", "258"]  # popular movies of ML-100K, by raw id
    served = json.loads(
        subprocess.run(
            [sys.executable, "-c", SERVE, model_dir, json.dumps(history)],
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
    # the transform graph inside the SavedModel maps raw ids exactly as training did
    assert items[:20] == expected_top_k(config, history, 20)

    # Second run: the resolver now returns the blessed model, so only Evaluator and Pusher run again.
    run(config)
    second = completed(config) - first
    assert second == collections.Counter({"RankingEvaluator": 1, "Pusher": 1}), second
    # Third run: nothing changed, everything comes from the cache.
    run(config)
    assert completed(config) - first == second

    # Fourth run: movierec's code changed (an edited copy of the sources gives the fingerprint), data
    # and parameters did not: every component running movierec code re-runs, and so does everything
    # downstream; only the reviewed schema's import stays cached.
    splits = source_copy["movierec"] / "splits.py"
    splits.write_text(splits.read_text() + "\n# an edit\n")
    edited = dataclasses.replace(config, code_fingerprint=code_fingerprint(source_copy))
    assert edited.code_fingerprint != code_fingerprint()
    summary = run(edited)
    rerun = completed(config) - first - second
    expected = COMPONENTS - {"ReviewedSchemaGen"} - (set() if summary["blessed"] else {"Pusher"})
    assert rerun == collections.Counter(expected), rerun

    # A deliberately weak candidate (untrained GRU4Rec) is evaluated and not pushed.
    weak = dataclasses.replace(config, hparams={"epochs": 0})
    before = pushed_versions(config)
    summary = run(weak)
    assert not summary["blessed"] and "does not beat the baseline" in summary["reason"]
    assert pushed_versions(config) == before
