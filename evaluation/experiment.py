"""One experiment = data × protocol × model: fit on the training events, evaluate on one role.

This is the single path the CLI and the benchmarks use (the TFX Trainer/Evaluator reuse its pieces),
so every model meets the same split, the same seen-item filtering and the same tie-breaking.
"""

from __future__ import annotations

import copy
import dataclasses
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import numpy as np

from movierec.constants import DEFAULT_SESSION_GAP, ROLE_NAMES, TEST, VALIDATION
from movierec.data import Dataset
from movierec.data.side_features import build_side_features
from movierec.data.splits import Split, make_split
from movierec.data.stream import EventStream, Queries, build_queries, build_stream
from movierec.evaluation import Ragged, RankingAccumulator, bootstrap_intervals, rating_metrics
from movierec.evaluation.bootstrap import difference_summary, percentile_interval, resampled_means
from movierec.evaluation.rating import rating_error_sums
from movierec.models import RatingPredictor, Recommender, build_model, get_spec
from movierec.models.base import gather_ranges, predict_ratings_at

DEFAULT_KS = (5, 10, 20)
ROLES = {ROLE_NAMES[role]: role for role in (VALIDATION, TEST)}  # what evaluation may be asked for


@dataclass
class EvaluationSettings:
    """Everything that decides what a metric means; recorded with every result."""

    role: str = "test"
    query_mode: str = "next-item"
    exclude_seen: bool = True
    ks: tuple[int, ...] = DEFAULT_KS
    # None: every held-out event is relevant; X: only held-out events rated >= X are (the others stay
    # candidates, see `movierec.data.stream.build_queries`)
    min_relevant_rating: float | None = None
    block_size: int = 1024
    bootstrap_resamples: int = 1000
    seed: int = 0


def seen_items(batch_users: np.ndarray, batch_positions: np.ndarray, stream: EventStream) -> Ragged:
    """The items of each query's context: the user's events before `positions` (strictly earlier in
    time than the target, see `movierec.data.stream`), excluded from the ranking."""
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
        batch, relevant, ignored = queries.batch(start, stop, stream.sequences)
        scores = model.score(batch)
        if scores.shape != (stop - start, stream.n_items):
            raise ValueError(
                f"{model.name} returned scores of shape {scores.shape}, "
                f"expected {(stop - start, stream.n_items)}"
            )
        # Same-second items of the target are never competitors; seen items (the context) optionally.
        excluded = ignored
        if settings.exclude_seen:
            excluded = seen_items(batch.users, batch.positions, stream).union(ignored)
        accumulator.update(scores, relevant, excluded)
        if progress:
            progress(stop - start)
    return accumulator


def evaluate_ratings(model: RatingPredictor, stream: EventStream, role: int) -> dict[str, float]:
    """RMSE/MAE over the role's events (each predicted from the model trained before the period; a
    time-dependent model also gets each event's timestamp)."""
    return rating_metrics(*_rated_and_predicted(model, stream, role)[:2])


def evaluate_rating_sums(model: RatingPredictor, stream: EventStream, role: int) -> dict[str, float]:
    """`evaluate_ratings` as sums (`rating_error_sums`), to be added over parts of the users."""
    return rating_error_sums(*_rated_and_predicted(model, stream, role)[:2])


def _rated_and_predicted(
    model: RatingPredictor, stream: EventStream, role: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(true ratings, predictions, users) of the role's events."""
    events = np.flatnonzero(stream.roles == role)
    seq = stream.sequences
    predicted = predict_ratings_at(model, seq.users[events], seq.items[events], seq.timestamps[events])
    return seq.ratings[events], predicted, seq.users[events]


def _rating_errors(truth: np.ndarray, predicted: np.ndarray) -> dict[str, np.ndarray]:
    """Per-event errors whose user-bootstrap means give MSE (hence RMSE) and MAE."""
    error = np.asarray(predicted, np.float64) - np.asarray(truth, np.float64)
    return {"squared_error": error * error, "absolute_error": np.abs(error)}


def _rating_columns(resampled: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Bootstrap columns of RMSE and MAE from resampled mean errors (RMSE = √MSE of each resample)."""
    return {"rmse": np.sqrt(resampled["squared_error"]), "mae": resampled["absolute_error"]}


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
    # per counted query: metric values and the query's user, for paired comparisons (not serialised)
    per_query: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    query_users: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)
    # rating models: per rated event the squared and absolute error, and the event's user
    per_rating: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    rating_users: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in _NOT_SERIALISED}


_NOT_SERIALISED = ("per_query", "query_users", "per_rating", "rating_users")


def prepare(
    dataset: Dataset, protocol: str = "temporal", session_gap: int = DEFAULT_SESSION_GAP, **split_params: Any
) -> tuple[Split, EventStream]:
    """The split and the event stream of one experiment. `session_gap` and a temporal `cut_time` are in
    seconds; on data whose timestamps are milliseconds (session-tsv with fractional Times) they are
    scaled to match them."""
    scale = 1000 if dataset.time_unit == "ms" else 1
    if split_params.get("cut_time") is not None:
        split_params = {**split_params, "cut_time": int(split_params["cut_time"]) * scale}
    split = make_split(dataset.interactions, protocol, **split_params)
    gap = session_gap * scale
    return split, build_stream(dataset.interactions, split, gap)


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
    """Fits `model_name` on the stream's training events and evaluates it on `settings.role`.

    The split may decide part of the evaluation (given-split on session files): seen items stay in the
    ranking when `split.params["exclude_seen"]` is False, and queries with fewer than
    `split.params["min_context"]` context events are not asked. The result records what was applied.
    """
    settings = settings or EvaluationSettings()
    if not split.params.get("exclude_seen", True):
        settings = dataclasses.replace(settings, exclude_seen=False)
    min_context = int(split.params.get("min_context", 0))
    role = ROLES[settings.role]
    model = build_model(model_name, **(hparams or {}))
    side_features = build_side_features(dataset, stream)  # vocabularies from training data only
    started = time.perf_counter()
    model.fit(dataclasses.replace(stream.training_data(), side_features=side_features))
    fitted = time.perf_counter()

    queries = build_queries(stream, role, settings.query_mode, min_context, settings.min_relevant_rating)
    step = (lambda n: progress("evaluate", n, len(queries))) if progress else None
    accumulator = evaluate_ranking(model, stream, queries, settings, step)
    metrics = accumulator.result()
    per_query = accumulator.per_query()
    query_users = queries.users[accumulator.query_rows()]
    intervals = bootstrap_intervals(
        per_query, groups=query_users, n_resamples=settings.bootstrap_resamples, seed=settings.seed
    )
    per_rating, rating_users = {}, np.zeros(0, np.int64)
    if get_spec(model_name).rating and isinstance(model, RatingPredictor):
        truth, predicted, rating_users = _rated_and_predicted(model, stream, role)
        metrics.update(rating_metrics(truth, predicted))
        per_rating = _rating_errors(truth, predicted)
        columns = _rating_columns(
            _resampled_split_means([(per_rating, rating_users)], settings.bootstrap_resamples, settings.seed)
        )
        intervals.update({name: percentile_interval(column, 0.95) for name, column in columns.items()})
    finished = time.perf_counter()

    result = ExperimentResult(
        model=model_name,
        hparams=model.get_config(),
        dataset={
            "name": dataset.name,
            "layout": dataset.layout,
            "checksum": dataset.checksum,
            "time_unit": dataset.time_unit,
            "interactions": len(dataset.interactions),
            "rejected_rows": dataset.report.total_rejected,
            "users": stream.n_users,
            "items": stream.n_items,
            "side_features": side_features.describe(),  # inputs a layout lacks are off, with the reason
        },
        protocol={**split.describe(), "session_gap": stream.session_gap},
        evaluation={
            "role": ROLE_NAMES[role],
            "query_mode": settings.query_mode,
            "exclude_seen": settings.exclude_seen,
            "min_context": min_context,
            "ks": list(accumulator.ks),
            "min_relevant_rating": settings.min_relevant_rating,
            "relevant": "every held-out event"
            if settings.min_relevant_rating is None
            else f"held-out events rated >= {settings.min_relevant_rating:g} (lower-rated ones stay "
            "candidates)",
            # next-item: held-out events; user: users — not asked because nothing in them is relevant
            "skipped_without_relevant": queries.skipped_without_relevant,
            "score_ties": "pessimistic (a tie with a non-relevant item counts against the target)",
            "catalogue": "full (no sampled negatives)",
            "queries": len(queries),
            "bootstrap_resamples": settings.bootstrap_resamples,
            "bootstrap_unit": "user (all of a user's queries together)",
            "timestamp_ties": "a user's same-second events are never context for, nor competitors of, "
            "each other",
            "seed": settings.seed,
        },
        metrics={k: float(v) for k, v in metrics.items()},
        intervals={k: [float(lo), float(hi)] for k, (lo, hi) in intervals.items()},
        timing={
            "fit_seconds": round(fitted - started, 3),
            "evaluate_seconds": round(finished - fitted, 3),
            "training_events": len(stream.training_data().sequences.items),
            # what the model reports about its own training (e.g. seconds per epoch, best epoch)
            **{
                f"training_{key}": value
                for key, value in getattr(model, "training_log", {}).items()
                if isinstance(value, int | float) and not isinstance(value, bool)
            },
        },
        per_query=per_query,
        query_users=query_users,
        per_rating=per_rating,
        rating_users=rating_users,
    )
    return model, result


def aggregate_runs(
    results: list[ExperimentResult], *, n_resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> dict[str, Any]:
    """One result from runs of one model that differ in the split seed (which users are validation or
    test users) and/or the model seed.

    - ``metrics``: the mean over all runs; ``metrics_std``: their standard deviation;
    - ``spread``: the two sources of variation apart — ``split_seed``: the standard deviation across
      splits of each split's mean, ``model_seed``: the mean over splits of the standard deviation across
      model seeds (a single split hides the first, a single seed the second);
    - ``intervals``: user-bootstrap intervals of the mean over splits (users resampled within each
      split, runs of one split averaged per query first);
    - ``runs``: every run's seeds and metrics.
    """
    if not results:
        raise ValueError("no runs to aggregate")
    merged = copy.deepcopy(results[0].to_dict())  # the runs stay intact for paired comparisons
    if len(results) == 1:
        return merged
    names = [k for k in merged["metrics"] if all(k in r.metrics for r in results)]
    values = {k: np.array([r.metrics[k] for r in results], dtype=np.float64) for k in names}
    merged["metrics"] = {k: float(v.mean()) for k, v in values.items()}
    merged["metrics_std"] = {k: float(v.std(ddof=1)) for k, v in values.items()}
    by_split = _by_split_seed(results)
    split_means = {k: [np.mean([r.metrics[k] for r in runs]) for runs in by_split.values()] for k in names}
    seed_stds = {
        k: [np.std([r.metrics[k] for r in runs], ddof=1) for runs in by_split.values() if len(runs) > 1]
        for k in names
    }
    merged["spread"] = {
        "split_seed": {k: float(np.std(v, ddof=1)) for k, v in split_means.items() if len(v) > 1},
        "model_seed": {k: float(np.mean(v)) for k, v in seed_stds.items() if v},
        "splits": len(by_split),
        "runs": len(results),
    }
    merged["intervals"] = _intervals_over_splits(
        [_seed_averaged(runs) for runs in by_split.values()], n_resamples, level, seed
    )
    if all(r.per_rating for r in results):
        columns = _rating_columns(
            _resampled_split_means(
                [_seed_averaged_ratings(runs) for runs in by_split.values()], n_resamples, seed
            )
        )
        merged["intervals"].update({k: list(percentile_interval(v, level)) for k, v in columns.items()})
    merged["protocol"]["params"] = {
        **merged["protocol"]["params"],
        "seed": sorted(by_split) if len(by_split) > 1 else merged["protocol"]["params"].get("seed"),
    }
    merged["runs"] = [
        {
            "split_seed": r.protocol["params"].get("seed"),
            "seed": r.hparams.get("seed"),
            # each split has its own test users, hence its own queries and skipped ones
            "queries": r.evaluation.get("queries"),
            "skipped_without_relevant": r.evaluation.get("skipped_without_relevant"),
            "metrics": r.metrics,
            "timing": r.timing,
        }
        for r in results
    ]
    merged["hparams"] = {k: v for k, v in merged["hparams"].items() if k != "seed"}
    return merged


def paired_comparison(
    results_a: list[ExperimentResult],
    results_b: list[ExperimentResult],
    *,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """mean(a) − mean(b) over the same splits, with a paired user-bootstrap interval.

    Per split both models are averaged over their model seeds per query, the per-query differences are
    resampled by user within the split, and the splits' resampled means are averaged.
    ``p_not_greater`` is the share of resamples with a difference <= 0.
    """
    a_splits, b_splits = _by_split_seed(results_a), _by_split_seed(results_b)
    if set(a_splits) != set(b_splits):
        raise ValueError(f"the two models ran on different splits: {sorted(a_splits)} vs {sorted(b_splits)}")
    differences = []
    for split_seed, runs in a_splits.items():
        (a, users_a), (b, users_b) = _seed_averaged(runs), _seed_averaged(b_splits[split_seed])
        if not np.array_equal(users_a, users_b):
            raise ValueError(f"split seed {split_seed}: the two models were scored on different queries")
        differences.append(({k: a[k] - b[k] for k in a if k in b}, users_a))
    summary = {
        name: difference_summary(
            float(np.mean([np.nanmean(values[name]) for values, _ in differences])), column, level
        )
        for name, column in _resampled_split_means(differences, n_resamples, seed).items()
    }
    if all(r.per_rating for r in [*results_a, *results_b]):
        # RMSE is not a mean of per-event values: both models' RMSE on the same user draws (the same
        # users and seeds give the same draws), then their difference per draw
        rated = [
            (_seed_averaged_ratings(runs), _seed_averaged_ratings(b_splits[split_seed]))
            for split_seed, runs in a_splits.items()
        ]
        if any(not np.array_equal(a[1], b[1]) for a, b in rated):
            raise ValueError("the two models' ratings were predicted for different events")
        a_columns = _rating_columns(_resampled_split_means([a for a, _ in rated], n_resamples, seed))
        b_columns = _rating_columns(_resampled_split_means([b for _, b in rated], n_resamples, seed))
        for name in a_columns:
            point = np.mean([r.metrics[name] for r in results_a]) - np.mean(
                [r.metrics[name] for r in results_b]
            )
            summary[name] = difference_summary(float(point), a_columns[name] - b_columns[name], level)
    return summary


def _by_split_seed(results: list[ExperimentResult]) -> dict[Any, list[ExperimentResult]]:
    groups: dict[Any, list[ExperimentResult]] = {}
    for result in results:
        groups.setdefault(result.protocol["params"].get("seed"), []).append(result)
    return groups


def _seed_averaged(runs: list[ExperimentResult]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-query values averaged over runs of one split (they share the queries), and the users."""
    users = runs[0].query_users
    if any(not np.array_equal(r.query_users, users) for r in runs):
        raise ValueError("runs of one split were scored on different queries")
    names = [k for k in runs[0].per_query if all(k in r.per_query for r in runs)]
    return {k: np.mean([r.per_query[k] for r in runs], axis=0) for k in names}, users


def _seed_averaged_ratings(runs: list[ExperimentResult]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-event errors averaged over runs of one split (they rate the same events), and the users."""
    users = runs[0].rating_users
    if any(not np.array_equal(r.rating_users, users) for r in runs):
        raise ValueError("runs of one split predicted ratings for different events")
    return {k: np.mean([r.per_rating[k] for r in runs], axis=0) for k in runs[0].per_rating}, users


def _resampled_split_means(
    splits: list[tuple[dict[str, np.ndarray], np.ndarray]], n_resamples: int, seed: int
) -> dict[str, np.ndarray]:
    """Bootstrap means of the mean over splits: users resampled independently within each split."""
    totals: dict[str, np.ndarray] = {}
    for index, (values, users) in enumerate(splits):
        names, means = resampled_means(values, groups=users, n_resamples=n_resamples, seed=seed + index)
        for j, name in enumerate(names):
            totals[name] = totals.get(name, 0.0) + means[:, j] / len(splits)
    return totals


def _intervals_over_splits(
    splits: list[tuple[dict[str, np.ndarray], np.ndarray]], n_resamples: int, level: float, seed: int
) -> dict[str, list[float]]:
    return {
        name: list(percentile_interval(column, level))
        for name, column in _resampled_split_means(splits, n_resamples, seed).items()
    }
