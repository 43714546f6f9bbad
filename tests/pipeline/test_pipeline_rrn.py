"""The rating path through TFX: RRN trained by the Trainer, blessed by the stock Evaluator (TFMA,
RMSE overall and sliced), pushed, and served by a SavedModel whose three signatures work in a process
that never imported movierec; a stricter RMSE bound then refuses the same candidate."""

import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from pipeline_runs import completed, evaluated_stream, latest_uri, pushed_versions

from movierec.pipeline.config import PipelineConfig
from movierec.pipeline.fingerprint import code_fingerprint
from movierec.pipeline.rating_evaluation import SLICE_FEATURES
from movierec.pipeline.runners.local import run

pytestmark = pytest.mark.slow

TINY_RRN = {"epochs": 2, "pmf_epochs": 5}

SERVE = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    model = tf.saved_model.load(sys.argv[1])
    events = json.loads(sys.argv[2])  # [(user, item, rating, timestamp)]
    def example(user, item, timestamp):
        feature = {
            "user_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[user.encode()])),
            "item_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[item.encode()])),
            "timestamp": tf.train.Feature(int64_list=tf.train.Int64List(value=[timestamp])),
        }
        return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
    examples = tf.constant([example(u, i, t) for u, i, _, t in events])
    before = model.signatures["predict_rating"](examples=examples)["predicted_rating"].numpy()
    top = model.signatures["recommend"](user_id=tf.constant([events[0][0]]), k=tf.constant(10))
    update = model.signatures["update_state"](
        user_id=tf.constant([e[0] for e in events]),
        item_id=tf.constant([e[1] for e in events]),
        rating=tf.constant([float(e[2]) for e in events]),
        timestamp=tf.constant([e[3] for e in events], tf.int64),
    )
    after = model.signatures["predict_rating"](examples=examples)["predicted_rating"].numpy()
    print(json.dumps({
        "before": before.tolist(), "after": after.tolist(),
        "top": [i.decode() for i in top["item_ids"].numpy()[0]],
        "accepted": update["accepted"].numpy().tolist(),
    }))
""")


def evaluated_ratings(config: PipelineConfig, n: int) -> tuple[list[tuple[str, str, float, int]], np.ndarray]:
    """`n` test events of known users and items, as raw ids, and the ratings evaluation predicts."""
    from movierec.data.splits import TEST
    from movierec.models import load_model

    stream, _ = evaluated_stream(config, "test")
    model_uri = latest_uri(config, "Model")
    seq = stream.sequences
    rows = np.flatnonzero(stream.roles == TEST)[:n]
    user_index = seq.users[rows]
    recommender = load_model(os.path.join(model_uri, "recommender"))
    expected = recommender.predict_ratings(user_index, seq.items[rows], seq.timestamps[rows])
    events = [
        (str(stream.user_ids[u]), str(stream.item_ids[i]), float(r), int(t))
        for u, i, r, t in zip(
            user_index, seq.items[rows], seq.ratings[rows], seq.timestamps[rows], strict=True
        )
    ]
    return events, expected


def test_rrn_is_blessed_by_tfma_pushed_and_served_with_three_signatures(ml100k_slice, tmp_path):
    config = PipelineConfig(
        data_path=str(ml100k_slice),
        output_dir=str(tmp_path / "run"),
        model="rrn",
        hparams=TINY_RRN,
        max_rmse=1.5,
        code_fingerprint=code_fingerprint(),
    )
    summary = run(config)
    assert summary["blessed"], summary
    assert completed(config)["Evaluator"] == 1
    sliced = summary["rating_evaluation"]
    overall = sliced["overall"]
    assert 0.5 < overall["root_mean_squared_error"] < 1.5
    assert overall["root_mean_squared_error"] == pytest.approx(np.sqrt(overall["mean_squared_error"]))
    for feature in SLICE_FEATURES:
        assert any(name.startswith(f"{feature}=") for name in sliced), feature
    # the ranking metrics of the same candidate still come from RankingEvaluator
    assert "recall@20" in summary["evaluation"]["results"]["candidate"]["test"]
    (version,) = pushed_versions(config)

    model_dir = os.path.join(config.serving_model_dir, version)
    shown = subprocess.run(
        ["saved_model_cli", "show", "--dir", model_dir, "--all"], capture_output=True, text=True, check=True
    ).stdout
    for signature in ("serving_default", "predict_rating", "recommend", "update_state"):
        assert f"signature_def['{signature}']" in shown, signature
    events, expected = evaluated_ratings(config, 8)
    served = json.loads(
        subprocess.run(
            [sys.executable, "-c", SERVE, model_dir, json.dumps(events)],
            capture_output=True,
            text=True,
            check=True,
            cwd="/",
        ).stdout
    )
    # serve what was evaluated: the served rating of a test event is the evaluated one
    np.testing.assert_allclose(served["before"], expected, rtol=1e-4, atol=1e-4)
    assert len(served["top"]) == 10 and all(served["accepted"])
    assert served["after"] != served["before"]  # the fed events moved the states

    # A stricter bound refuses the same candidate: only the Evaluator re-runs, nothing is pushed.
    strict = dataclasses.replace(config, max_rmse=0.2)
    summary = run(strict)
    assert not summary["blessed"]
    assert pushed_versions(config) == [version]
