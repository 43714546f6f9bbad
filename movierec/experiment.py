"""One experiment = data × protocol × model: fit on the training events, evaluate on one role.

This is the single path the CLI and the benchmarks use (the TFX Trainer/Evaluator reuse its pieces),
so every model meets the same split, the same seen-item filtering and the same tie-breaking.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import numpy as np

from movierec.data import Dataset
from movierec.evaluation import Ragged, RankingAccumulator, bootstrap_intervals, rating_metrics
from movierec.models import RatingPredictor, Recommender, build_model, get_spec
from movierec.models.base import gather_ranges
from movierec.splits import ROLE_NAMES, TEST, VALIDATION, Split, make_split
from movierec.stream import DEFAULT_SESSION_GAP, EventStream, Queries, build_queries, build_stream

DEFAULT_KS = (5, 10, 20)
ROLES = {"validation": VALIDATION, "test": TEST}


@dataclass
class EvaluationSettings:
    """Everything that decides what a metric means; recorded with every result."""

    role: str = "test"
    query_mode: str = "next-item"
    exclude_seen: bool = True
    ks: tuple[int, ...] = DEFAULT_KS
    block_size: int = 1024
    bootstrap_resamples: int = 1000
    seed: int = 0


def seen_items(batch_users: np.ndarray, batch_positions: np.ndarray, stream: EventStream) -> Ragged:
    """The items each query's user had interacted with before the query (excluded from ranking)."""
    seq = stream.sequences
    starts = seq.indptr[batch_users]
    lengths = batch_positions.astype(np.int64)
    return Ragged(np.r_[0, np.cumsum(lengths)].astype(np.int64), seq.items[gather_ranges(starts, lengths)])


def evaluate_ranking(
    model: Recommender,
    stream: EventStream,
    queries: Queries,
    settings: EvaluationSettings,
    progress: Callable[[int], None] | None = None,
) -> RankingAccumulator:
    """Scores the full catalogue for every query, block by block, and accumulates the metrics."""
    accumulator = RankingAccumulator(ks=settings.ks)
    for start in range(0, len(queries), settings.block_size):
        stop = min(start + settings.block_size, len(queries))
        batch, relevant = queries.batch(start, stop, stream.sequences)
        scores = model.score(batch)
        if scores.shape != (stop - start, stream.n_items):
            raise ValueError(
                f"{model.name} returned scores of shape {scores.shape}, "
                f"expected {(stop - start, stream.n_items)}"
            )
        excluded = seen_items(batch.users, batch.positions, stream) if settings.exclude_seen else None
        accumulator.update(scores, relevant, excluded)
        if progress:
            progress(stop - start)
    return accumulator


def evaluate_ratings(model: RatingPredictor, stream: EventStream, role: int) -> dict[str, float]:
    """RMSE/MAE over the role's events (each predicted from the model trained before the period)."""
    events = np.flatnonzero(stream.roles == role)
    users = stream.sequences.users[events]
    predicted = model.predict_ratings(users, stream.sequences.items[events])
    return rating_metrics(stream.sequences.ratings[events], predicted)


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("movierec", "numpy", "keras", "tensorflow", "keras-rs", "tfx"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


@dataclass
class ExperimentResult:
    model: str
    hparams: dict[str, Any]
    dataset: dict[str, Any]
    protocol: dict[str, Any]
    evaluation: dict[str, Any]
    metrics: dict[str, float]
    intervals: dict[str, list[float]]
    timing: dict[str, float]
    versions: dict[str, str] = field(default_factory=_versions)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def prepare(
    dataset: Dataset, protocol: str = "temporal", session_gap: int = DEFAULT_SESSION_GAP, **split_params: Any
) -> tuple[Split, EventStream]:
    split = make_split(dataset.interactions, protocol, **split_params)
    return split, build_stream(dataset.interactions, split, session_gap)


def run_experiment(
    dataset: Dataset,
    model_name: str,
    *,
    split: Split,
    stream: EventStream,
    hparams: dict[str, Any] | None = None,
    settings: EvaluationSettings | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[Recommender, ExperimentResult]:
    """Fits `model_name` on the stream's training events and evaluates it on `settings.role`."""
    settings = settings or EvaluationSettings()
    role = ROLES[settings.role]
    model = build_model(model_name, **(hparams or {}))
    started = time.perf_counter()
    model.fit(stream.training_data())
    fitted = time.perf_counter()

    queries = build_queries(stream, role, settings.query_mode)
    step = (lambda n: progress("evaluate", n, len(queries))) if progress else None
    accumulator = evaluate_ranking(model, stream, queries, settings, step)
    metrics = accumulator.result()
    intervals = bootstrap_intervals(
        accumulator.per_query(), n_resamples=settings.bootstrap_resamples, seed=settings.seed
    )
    if get_spec(model_name).rating and isinstance(model, RatingPredictor):
        metrics.update(evaluate_ratings(model, stream, role))
    finished = time.perf_counter()

    result = ExperimentResult(
        model=model_name,
        hparams=model.get_config(),
        dataset={
            "name": dataset.name,
            "layout": dataset.layout,
            "checksum": dataset.checksum,
            "interactions": len(dataset.interactions),
            "rejected_rows": dataset.report.total_rejected,
            "users": stream.n_users,
            "items": stream.n_items,
        },
        protocol={**split.describe(), "session_gap": stream.session_gap},
        evaluation={
            "role": ROLE_NAMES[role],
            "query_mode": settings.query_mode,
            "exclude_seen": settings.exclude_seen,
            "ties": "pessimistic (a tie with a non-relevant item counts against the target)",
            "catalogue": "full (no sampled negatives)",
            "queries": len(queries),
            "bootstrap_resamples": settings.bootstrap_resamples,
            "seed": settings.seed,
        },
        metrics={k: float(v) for k, v in metrics.items()},
        intervals={k: [float(lo), float(hi)] for k, (lo, hi) in intervals.items()},
        timing={
            "fit_seconds": round(fitted - started, 3),
            "evaluate_seconds": round(finished - fitted, 3),
            "training_events": len(stream.training_data().sequences.items),
        },
    )
    return model, result


def aggregate_runs(results: list[ExperimentResult]) -> dict[str, Any]:
    """One result from runs that differ only in the model's seed: metrics are the means, with their
    standard deviations and every run's metrics kept (a single number hides seed variance)."""
    if not results:
        raise ValueError("no runs to aggregate")
    merged = results[0].to_dict()
    if len(results) == 1:
        return merged
    names = [k for k in merged["metrics"] if all(k in r.metrics for r in results)]
    values = {k: np.array([r.metrics[k] for r in results], dtype=np.float64) for k in names}
    merged["metrics"] = {k: float(v.mean()) for k, v in values.items()}
    merged["metrics_std"] = {k: float(v.std(ddof=1)) for k, v in values.items()}
    merged["runs"] = [
        {"seed": r.hparams.get("seed"), "metrics": r.metrics, "timing": r.timing} for r in results
    ]
    merged["hparams"] = {k: v for k, v in merged["hparams"].items() if k != "seed"}
    return merged
