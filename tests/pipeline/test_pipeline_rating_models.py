"""LSTM+CNN and IARN through TFX (RRN: test_pipeline_rrn.py). LSTM+CNN: side features through
Transform and SequenceGen's side tables into the Trainer (equal, decoded, to the command line's),
blessed by TFMA, pushed, and served from raw strings in a process that never imported movierec — a
movie the catalogue lacks included. IARN: pushed with its `explain` signature, serving the evaluated
ratings."""

import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from pipeline_runs import evaluated_stream, latest_uri, pushed_versions

from movierec.pipeline.config import PipelineConfig
from movierec.pipeline.fingerprint import code_fingerprint
from movierec.pipeline.runners.local import run

pytestmark = pytest.mark.slow

TINY_LSTM_CNN = {
    "embedding_dim": 8,
    "feature_dim": 16,
    "lstm_units": 8,
    "head_units": 8,
    "max_history": 5,
    "epochs": 1,
    "validation_fraction": 0.0,
}

TINY_IARN = {
    "embedding_dim": 8,
    "hidden_size": 8,
    "latent_dim": 4,
    "attention_units": 8,
    "max_history": 5,
    "epochs": 1,
    "validation_fraction": 0.0,
}

SERVE = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    model = tf.saved_model.load(sys.argv[1])
    events, new_movie = json.loads(sys.argv[2]), json.loads(sys.argv[3])
    def feature(value):
        if isinstance(value, int):
            return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
        values = value if isinstance(value, list) else [value]
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode() for v in values]))
    def example(**features):
        features = {k: feature(v) for k, v in features.items()}
        return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()
    examples = [example(user_id=u, item_id=i, timestamp=t) for u, i, _, t in events]
    user, time = events[0][0], events[0][3]
    examples.append(example(user_id=user, item_id="no-such-movie", timestamp=time, **new_movie))
    predicted = model.signatures["predict_rating"](examples=tf.constant(examples))["predicted_rating"]
    top = model.signatures["recommend"](user_id=tf.constant([user]), k=tf.constant(10))["item_ids"]
    print(json.dumps({"predicted": predicted.numpy().tolist(), "top": [i.decode() for i in top.numpy()[0]]}))
""")


def test_lstm_cnn_reads_side_features_through_transform_and_serves_raw_strings(ml100k_slice, tmp_path):
    from movierec.data import load_dataset
    from movierec.data.side_features import build_side_features
    from movierec.models import load_model

    config = PipelineConfig(
        data_path=str(ml100k_slice),
        output_dir=str(tmp_path / "run"),
        model="lstm-cnn",
        hparams=TINY_LSTM_CNN,
        max_rmse=1.5,
        code_fingerprint=code_fingerprint(),
    )
    summary = run(config)
    assert summary["blessed"], summary
    every_input = {"item_genres", "item_title_words", "user_gender", "user_age_band", "user_occupation"}
    assert set(summary["side_features"]["on"]) == every_input and not summary["side_features"]["off"]
    (version,) = pushed_versions(config)
    recommender = load_model(os.path.join(latest_uri(config, "Model"), "recommender"))
    model = recommender.keras_model
    assert model.use_title and model.n_genres > 0  # every input on: ML-100K has them all
    assert sorted(model.user_field_sizes) == ["user_age_band", "user_gender", "user_occupation"]

    # the pipeline's side features, decoded, are the command line's for the same training data
    train, items = evaluated_stream(config, "train")
    cli = build_side_features(load_dataset(ml100k_slice), train)
    words = model.vocabularies["item_title_words"]
    titles = np.asarray(model.item_title_words)
    genres = model.vocabularies["item_genres"]
    assert sorted(words) == sorted(cli.vocabularies["item_title_words"])
    assert genres == cli.vocabularies["item_genres"] or sorted(genres) == sorted(
        cli.vocabularies["item_genres"]
    )
    cli_words = cli.vocabularies["item_title_words"]
    for k in range(len(items)):
        assert [words[w] for w in titles[k] if w] == [cli_words[w] for w in cli.item_title_words[k] if w]
        served_genres = {g for g, on in zip(genres, np.asarray(model.item_genres)[k], strict=True) if on}
        assert served_genres == {
            g for g, on in zip(cli.vocabularies["item_genres"], cli.item_genres[k], strict=True) if on
        }

    model_dir = os.path.join(config.serving_model_dir, version)
    assert signatures(model_dir) >= {"serving_default", "predict_rating", "recommend", "transform_features"}
    assert "update_state" not in signatures(model_dir)
    new_movie = {"title": "Unseen Star Wars Romance (2031)", "genres": ["Romance", "War"]}
    served, expected = served_test_ratings(config, recommender, model_dir, new_movie)
    np.testing.assert_allclose(served["predicted"][:-1], expected, rtol=1e-4, atol=1e-4)
    assert np.isfinite(served["predicted"][-1]) and 1.0 <= served["predicted"][-1] <= 5.0
    assert len(served["top"]) == 10 and all(served["top"])


def test_iarn_is_pushed_with_its_explain_signature_and_serves_the_evaluated_ratings(ml100k_slice, tmp_path):
    from movierec.models import load_model

    config = PipelineConfig(
        data_path=str(ml100k_slice),
        output_dir=str(tmp_path / "run"),
        model="iarn",
        hparams=TINY_IARN,
        max_rmse=2.0,
        # a baseline the RankingEvaluator trains in its own process (pop is counted on Beam)
        baseline="itemknn",
        code_fingerprint=code_fingerprint(),
    )
    summary = run(config)
    assert summary["blessed"], summary
    results = summary["evaluation"]["results"]
    assert set(results) == {"candidate", "baseline:itemknn"}
    for split in ("eval", "test"):
        assert results["baseline:itemknn"][split]["queries"] == results["candidate"][split]["queries"] > 0
        assert results["baseline:itemknn"][split]["recall@20"] > 0.02  # a trained model, not random
        # the candidate rates too: RMSE from rating-error sums joined over the Beam batches
        assert results["candidate"][split]["count"] > 0 and 0 < results["candidate"][split]["rmse"] < 2
    (version,) = pushed_versions(config)
    model_dir = os.path.join(config.serving_model_dir, version)
    assert signatures(model_dir) >= {"serving_default", "predict_rating", "recommend", "explain"}
    recommender = load_model(os.path.join(latest_uri(config, "Model"), "recommender"))
    served, expected = served_test_ratings(config, recommender, model_dir, {})
    np.testing.assert_allclose(served["predicted"][:-1], expected, rtol=1e-4, atol=1e-4)
    assert len(served["top"]) == 10 and all(served["top"])


def signatures(model_dir: str) -> set[str]:
    """The signature names `saved_model_cli show --all` lists, as TF Serving would see them."""
    shown = subprocess.run(
        ["saved_model_cli", "show", "--dir", model_dir, "--all"], capture_output=True, text=True, check=True
    ).stdout
    return set(re.findall(r"signature_def\['([^']+)'\]", shown))


def served_test_ratings(config: PipelineConfig, recommender, model_dir: str, new_movie: dict):
    """(the SavedModel's answers in a fresh process, the evaluated ratings) for 8 test events: served
    `predicted` ends with the rating of a movie the catalogue lacks, described by `new_movie`."""
    from movierec.data.splits import TEST

    stream, _ = evaluated_stream(config, "test")
    seq = stream.sequences
    rows = np.flatnonzero(stream.roles == TEST)[:8]
    expected = recommender.predict_ratings(seq.users[rows], seq.items[rows], seq.timestamps[rows])
    events = [
        (str(stream.user_ids[u]), str(stream.item_ids[i]), float(r), int(t))
        for u, i, r, t in zip(
            seq.users[rows], seq.items[rows], seq.ratings[rows], seq.timestamps[rows], strict=True
        )
    ]
    served = json.loads(
        subprocess.run(
            [sys.executable, "-c", SERVE, model_dir, json.dumps(events), json.dumps(new_movie)],
            capture_output=True,
            text=True,
            check=True,
            cwd="/",
        ).stdout
    )
    return served, expected
