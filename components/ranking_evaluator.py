# TFX parses these signatures at import time: no `from __future__ import annotations` here.
"""RankingEvaluator: full-catalogue metrics of `movierec.evaluation`, and the blessing decision.

The candidate, a baseline trained here from the same training histories (default Pop) and the latest
blessed model (from a resolver, when there is one) are evaluated on the validation users (split
`eval`) and the test users (split `test`) with the same queries, seen-item filtering and tie-breaking
as the command line. The latest blessed model may come from older data: it is loaded with its own
vocabulary and scores the same queries through raw ids (`movierec.components.id_space`), so a
refreshed vocabulary never crashes the comparison or shifts its scores onto other items.

The rule (`decide`), on the validation users and `metric`:
- the candidate beats the baseline by the relative `margin` (point estimates: the baseline is the
  floor every model must clear);
- it is not significantly worse than the latest blessed model: with the paired user-bootstrap
  interval of (candidate − latest blessed) at level `regression_confidence` (users resampled with
  all their queries, both models on the same draws), it is refused when the interval's upper end lies
  below −`regression_tolerance` × the blessed model's value. With the default tolerance 0 that is "the
  data show it is worse": a one-sided test at level (1 + confidence) / 2. A difference that could be
  noise does not block a candidate, and the same model again (difference 0) passes;
- a candidate that *is* the latest blessed model (the same Model artifact: a re-run whose Trainer
  came from the cache) is not blessed again, so the Pusher never pushes the same model twice.

`metrics.json` in the ModelEvaluation artifact holds every model's metrics per split, the paired
differences (candidate − each other model, every metric, per split) and the decision with its reason.

The users are scored on Beam in batches (`movierec.components.user_scoring`); only per-user sums are
joined (`per_user/<split>.npz` in the ModelEvaluation artifact), and they give the means and the
bootstrap of one pass over all queries.
"""

import json
import os
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.evaluator import constants as evaluator_constants
from tfx.dsl.component.experimental.annotations import (
    BeamComponentParameter,
    InputArtifact,
    OutputArtifact,
    Parameter,
)
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts

from movierec.components.histories import read_user_histories, stream_from_histories, vocabulary
from movierec.components.id_space import VOCABULARY_FILE, InVocabulary, ModelVocabulary
from movierec.components.user_scoring import (
    LATEST_BLESSED,
    Contenders,
    ScoredUsers,
    ScoreUserBatch,
    counts_baseline,
    score_split,
    training_item_counts,
)
from movierec.constants import (
    DEFAULT_METRIC,
    DEFAULT_SESSION_GAP,
    ROLE_NAMES,
    SPLIT_OF_ROLE,
    TEST,
    TRAIN,
    VALIDATION,
)
from movierec.evaluation.experiment import EvaluationSettings
from movierec.models import build_model, load_model, save_model

RECOMMENDER_DIR = "recommender"  # where the Trainer module writes movierec's own format
PER_USER_DIR = "per_user"  # the evaluation artifact's per-user metric sums, one .npz per split
BOOTSTRAP_RESAMPLES = 1000  # paired user-bootstrap draws (seed 0: the same decision on a re-run)


def _split_files(examples, split: str) -> str:
    return os.path.join(examples.uri, f"Split-{split}", "*")


@dataclass(frozen=True)
class Regression:
    """The candidate against the latest blessed model on the blessing metric (validation users):
    the blessed model's value and the paired bootstrap of candidate − blessed at `confidence`."""

    previous: float
    difference: float
    low: float
    high: float
    confidence: float


def decide(
    metric: str,
    candidate: float,
    baseline: float,
    margin: float,
    regression: Regression | None = None,
    regression_tolerance: float = 0.0,
    already_blessed: bool = False,
) -> tuple[bool, str]:
    """The blessing rule (see the module doc), with the reason in words (recorded in the artifacts)."""
    if already_blessed:
        return False, (
            "the candidate is the latest blessed model itself (same Model artifact): not blessed again, "
            "so it is not pushed twice"
        )
    if not candidate > baseline * (1.0 + margin):
        return False, f"{metric} {candidate:.4f} does not beat the baseline's {baseline:.4f} by {margin:.1%}"
    if regression is None:
        return True, f"{metric} {candidate:.4f} vs baseline {baseline:.4f}"
    r = regression
    floor = -regression_tolerance * r.previous
    interval = (
        f"{r.difference:+.4f}, {r.confidence:.0%} paired user-bootstrap interval "
        f"[{r.low:+.4f}, {r.high:+.4f}]"
    )
    if r.high < floor:  # False for a NaN bound: no evidence of a regression
        allowed = f" by more than {regression_tolerance:.1%}" if regression_tolerance else ""
        return False, (
            f"{metric} {candidate:.4f} is significantly worse than the latest blessed model's "
            f"{r.previous:.4f}{allowed}: difference {interval} lies below {floor:+.4f}"
        )
    return True, (
        f"{metric} {candidate:.4f} vs baseline {baseline:.4f}; vs latest blessed {r.previous:.4f}: "
        f"difference {interval}, not significantly worse"
    )


def same_artifact(a: Any, b: Any) -> bool:
    """Whether two Model artifacts are the same one (ML Metadata id, else the same URI)."""
    if a.id and b.id:
        return a.id == b.id
    return a.uri.rstrip("/") == b.uri.rstrip("/")


def _latest_blessed(
    candidate_artifact: Any, blessed_artifact: Any, items: np.ndarray, users: np.ndarray
) -> tuple[dict[str, Any], str | None]:
    """What the report says about the latest blessed model, and its folder to score it from (None when
    it is the candidate itself, or cannot be compared)."""
    about: dict[str, Any] = {"model_id": blessed_artifact.id, "uri": blessed_artifact.uri}
    if same_artifact(candidate_artifact, blessed_artifact):
        return {**about, "same_as_candidate": True}, None
    directory = os.path.join(blessed_artifact.uri, RECOMMENDER_DIR)
    saved = ModelVocabulary.load(directory)
    if saved is None:  # trained before the Trainer saved vocabularies: its indices mean nothing here
        return {**about, "comparable": False, "why": f"no {VOCABULARY_FILE} in {directory}"}, None
    coverage = InVocabulary(load_model(directory), saved, items, users).coverage()
    return {**about, "comparable": True, "coverage": coverage}, directory


@component(use_beam=True)
def RankingEvaluator(
    model: InputArtifact[standard_artifacts.Model],
    user_histories: InputArtifact[standard_artifacts.Examples],
    transform_graph: InputArtifact[standard_artifacts.TransformGraph],
    evaluation: OutputArtifact[standard_artifacts.ModelEvaluation],
    blessing: OutputArtifact[standard_artifacts.ModelBlessing],
    baseline_model: InputArtifact[standard_artifacts.Model] = None,
    metric: Parameter[str] = DEFAULT_METRIC,
    margin: Parameter[float] = 0.0,
    regression_tolerance: Parameter[float] = 0.0,
    regression_confidence: Parameter[float] = 0.95,
    baseline: Parameter[str] = "pop",
    query_mode: Parameter[str] = "next-item",
    session_gap: Parameter[int] = DEFAULT_SESSION_GAP,
    users_per_batch: Parameter[int] = 256,
    code_fingerprint: Parameter[str] = "",
    beam_pipeline: BeamComponentParameter[beam.Pipeline] = None,
) -> None:
    """See the module doc. `users_per_batch` users are scored at once on a Beam worker."""
    del code_fingerprint  # only keys the cache (movierec.pipeline.fingerprint): changed code re-runs it
    if not 0.0 < regression_confidence < 1.0:
        raise ValueError(f"regression_confidence must be in (0, 1), got {regression_confidence}")
    if regression_tolerance < 0.0:
        raise ValueError(f"regression_tolerance must be >= 0, got {regression_tolerance}")
    if users_per_batch < 1:
        raise ValueError(f"users_per_batch must be >= 1, got {users_per_batch}")
    transform_output = tft.TFTransformOutput(transform_graph.uri)
    items, users = vocabulary(transform_output, "item_id"), vocabulary(transform_output, "user_id")
    baseline_dir = None
    if not counts_baseline(baseline):  # trained here, in one place, as the Trainer trains the candidate
        training = stream_from_histories(
            read_user_histories(_split_files(user_histories, SPLIT_OF_ROLE[TRAIN])), items, users, session_gap
        )
        baseline_dir = os.path.join(evaluation.uri, "baseline")
        save_model(build_model(baseline).fit(training.training_data()), baseline_dir)
    previous: dict[str, Any] | None = None
    previous_dir = None
    if baseline_model is not None:
        previous, previous_dir = _latest_blessed(model, baseline_model, items, users)
    contenders = Contenders(os.path.join(model.uri, RECOMMENDER_DIR), baseline, baseline_dir, previous_dir)

    summaries = {}
    with beam_pipeline as p:
        item_counts = training_item_counts(
            p | "ReadTraining" >> beam.io.ReadFromTFRecord(_split_files(user_histories, SPLIT_OF_ROLE[TRAIN]))
        )
        for role in (VALIDATION, TEST):
            split = SPLIT_OF_ROLE[role]
            summaries[split] = os.path.join(evaluation.uri, PER_USER_DIR, f"{split}.npz")
            settings = EvaluationSettings(role=ROLE_NAMES[role], query_mode=query_mode)
            scorer = ScoreUserBatch(contenders, items, users, role, settings, session_gap)
            records = p | f"Read{split}" >> beam.io.ReadFromTFRecord(_split_files(user_histories, split))
            score_split(records, item_counts, scorer, users_per_batch, summaries[split], split)

    results: dict[str, dict[str, dict[str, float]]] = {}
    differences: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for split, path in summaries.items():
        scored = ScoredUsers.load(path)
        for name, values in scored.results().items():
            results.setdefault(name, {})[split] = values
        for name, values in scored.differences(regression_confidence, BOOTSTRAP_RESAMPLES).items():
            differences.setdefault(name, {})[split] = values

    validation = {name: r[SPLIT_OF_ROLE[VALIDATION]][metric] for name, r in results.items()}
    regression = None
    if previous_dir is not None:
        versus = differences[f"candidate - {LATEST_BLESSED}"][SPLIT_OF_ROLE[VALIDATION]][metric]
        regression = Regression(
            previous=validation[LATEST_BLESSED],
            difference=versus["difference"],
            low=versus["low"],
            high=versus["high"],
            confidence=regression_confidence,
        )
    already_blessed = bool(previous and previous.get("same_as_candidate"))
    blessed, reason = decide(
        metric,
        validation["candidate"],
        validation[contenders.baseline_name],
        margin,
        regression,
        regression_tolerance,
        already_blessed=already_blessed,
    )
    if previous is not None and previous.get("comparable") is False:
        reason += f" (latest blessed model not compared: {previous['why']})"
    report = {
        "metric": metric,
        "margin": margin,
        "regression_confidence": regression_confidence,
        "regression_tolerance": regression_tolerance,
        "blessed": blessed,
        "already_blessed": already_blessed,
        "reason": reason,
        "results": results,
        "paired_differences": differences,
        LATEST_BLESSED: previous,
    }
    with tf.io.gfile.GFile(os.path.join(evaluation.uri, "metrics.json"), "w") as handle:
        handle.write(json.dumps(report, indent=2))
    with tf.io.gfile.GFile(
        os.path.join(
            blessing.uri,
            evaluator_constants.BLESSED_FILE_NAME if blessed else evaluator_constants.NOT_BLESSED_FILE_NAME,
        ),
        "w",
    ) as handle:
        handle.write(reason)
    # The custom properties TFX's Pusher and LatestBlessedModelStrategy read: a NOT_BLESSED re-run of
    # the latest blessed model leaves its earlier blessing (the resolver's) in force.
    blessing.set_int_custom_property(
        evaluator_constants.ARTIFACT_PROPERTY_BLESSED_KEY,
        evaluator_constants.BLESSED_VALUE if blessed else evaluator_constants.NOT_BLESSED_VALUE,
    )
    blessing.set_int_custom_property("already_blessed", int(already_blessed))
    blessing.set_int_custom_property(evaluator_constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY, model.id)
    blessing.set_string_custom_property(
        evaluator_constants.ARTIFACT_PROPERTY_CURRENT_MODEL_URI_KEY, model.uri
    )
    blessing.set_string_custom_property("reason", reason)
    evaluation.set_string_custom_property(
        "summary", json.dumps({k: v[SPLIT_OF_ROLE[TEST]] for k, v in results.items()})
    )
