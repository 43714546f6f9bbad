# TFX parses these signatures at import time: no `from __future__ import annotations` here.
"""RankingEvaluator: full-catalogue metrics of `movierec.evaluation`, and the blessing decision.

The candidate is evaluated on the validation users (split `eval`) and the test users (split `test`)
with the same queries, seen-item filtering and tie-breaking as the command line. It is blessed when,
on the validation users,
- it beats a baseline trained here from the same training histories (default Pop) by the relative
  `margin` on `metric`, and
- it is not worse than the latest blessed model (from a resolver, when there is one) by more than
  `regression_tolerance`.
"""

import json
import os

import tensorflow as tf
import tensorflow_transform as tft
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts

from movierec.components.histories import read_user_histories, stream_from_histories, vocabulary
from movierec.experiment import EvaluationSettings, evaluate_ranking
from movierec.models import build_model, load_model
from movierec.splits import TEST, VALIDATION
from movierec.stream import build_queries

RECOMMENDER_DIR = "recommender"  # where the Trainer module writes movierec's own format


def _split_files(examples, split: str) -> str:
    return os.path.join(examples.uri, f"Split-{split}", "*")


def decide(
    metric: str,
    candidate: float,
    baseline: float,
    margin: float,
    blessed_previous: float | None = None,
    regression_tolerance: float = 0.0,
) -> tuple[bool, str]:
    """The blessing rule, with the reason in words (recorded in the evaluation artifact)."""
    if not candidate > baseline * (1.0 + margin):
        return False, f"{metric} {candidate:.4f} does not beat the baseline's {baseline:.4f} by {margin:.1%}"
    if blessed_previous is not None and candidate < blessed_previous * (1.0 - regression_tolerance):
        return False, (
            f"{metric} {candidate:.4f} is worse than the latest blessed model's {blessed_previous:.4f} "
            f"by more than {regression_tolerance:.1%}"
        )
    return True, f"{metric} {candidate:.4f} vs baseline {baseline:.4f}" + (
        f" and latest blessed {blessed_previous:.4f}" if blessed_previous is not None else ""
    )


@component
def RankingEvaluator(
    model: InputArtifact[standard_artifacts.Model],
    user_histories: InputArtifact[standard_artifacts.Examples],
    transform_graph: InputArtifact[standard_artifacts.TransformGraph],
    evaluation: OutputArtifact[standard_artifacts.ModelEvaluation],
    blessing: OutputArtifact[standard_artifacts.ModelBlessing],
    baseline_model: InputArtifact[standard_artifacts.Model] = None,
    metric: Parameter[str] = "recall@20",
    margin: Parameter[float] = 0.0,
    regression_tolerance: Parameter[float] = 0.0,
    baseline: Parameter[str] = "pop",
    query_mode: Parameter[str] = "next-item",
    session_gap: Parameter[int] = 3600,
    code_fingerprint: Parameter[str] = "",
) -> None:
    del code_fingerprint  # only keys the cache (movierec.pipeline.fingerprint): changed code re-runs it
    transform_output = tft.TFTransformOutput(transform_graph.uri)
    items, users = vocabulary(transform_output, "item_id"), vocabulary(transform_output, "user_id")

    def stream(split: str):
        return stream_from_histories(
            read_user_histories(_split_files(user_histories, split)), items, users, session_gap
        )

    candidate = load_model(os.path.join(model.uri, RECOMMENDER_DIR))
    trained_baseline = build_model(baseline).fit(stream("train").training_data())
    contenders = {"candidate": candidate, f"baseline:{baseline}": trained_baseline}
    if baseline_model is not None:
        contenders["latest_blessed"] = load_model(os.path.join(baseline_model.uri, RECOMMENDER_DIR))

    results: dict[str, dict[str, dict[str, float]]] = {}
    for split, role in (("eval", VALIDATION), ("test", TEST)):
        events = stream(split)
        settings = EvaluationSettings(
            role="validation" if role == VALIDATION else "test", query_mode=query_mode
        )
        queries = build_queries(events, role, query_mode)
        for name, recommender in contenders.items():
            accumulator = evaluate_ranking(recommender, events, queries, settings)
            results.setdefault(name, {})[split] = accumulator.result()

    validation = {name: r["eval"][metric] for name, r in results.items()}
    blessed, reason = decide(
        metric,
        validation["candidate"],
        validation[f"baseline:{baseline}"],
        margin,
        validation.get("latest_blessed"),
        regression_tolerance,
    )
    report = {"metric": metric, "margin": margin, "blessed": blessed, "reason": reason, "results": results}
    with tf.io.gfile.GFile(os.path.join(evaluation.uri, "metrics.json"), "w") as handle:
        handle.write(json.dumps(report, indent=2))
    with tf.io.gfile.GFile(
        os.path.join(blessing.uri, "BLESSED" if blessed else "NOT_BLESSED"), "w"
    ) as handle:
        handle.write(reason)
    # The custom properties TFX's Pusher and LatestBlessedModelStrategy read.
    blessing.set_int_custom_property("blessed", int(blessed))
    blessing.set_int_custom_property("current_model_id", model.id)
    blessing.set_string_custom_property("current_model", model.uri)
    blessing.set_string_custom_property("reason", reason)
    evaluation.set_string_custom_property("summary", json.dumps({k: v["test"] for k, v in results.items()}))
