"""Hyper-parameter search: a seeded KerasTuner random search over a model's declared search space,
every trial trained on the training events and scored on the validation users only.

Our recommenders are not Keras `model.fit` models, so the tuner is KerasTuner's `BaseTuner` with its
own `run_trial`: `build_model(name, **hparams).fit(training)`, then the full-catalogue metrics of
`evaluate_ranking` on the validation users, the same path as the TFX Trainer's validation metrics.
The search never holds a test user's held-out event: `TuningData` refuses a validation stream with
test events, and `tuning_data` drops them before anything is fitted or scored.

- Trial 0 is the model's declared defaults (with the fixed values), so the table shows where they rank;
  later trials draw every searched hyper-parameter from its space (KerasTuner's seeded random search,
  duplicates redrawn). Every trial trains with the same model seed, so trials differ only in their
  hyper-parameters.
- Budget (`Budget`): at most `max_trials` trials; no trial starts once the trials' time reaches
  `max_seconds`, nor when the mean trial so far would end past it; with `patience`, the search stops
  after that many finished trials in a row without a better validation metric.
- Resumable: KerasTuner keeps the oracle and every trial in `<directory>/search` (tf.io.gfile paths:
  local or gs://); a second call with the same directory continues where an interrupted search
  stopped (finished trials are not redone, an interrupted one runs again) and the budget counts the
  time of the trials already finished.
- Progress: one line per trial (number, metric, best so far, seconds, values); `trials.json`,
  `trials.csv` and `trials.png` in the directory, rewritten after every trial.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
import re
import time
import typing
from collections.abc import Callable
from typing import Any

import numpy as np

from movierec import storage
from movierec.constants import DEFAULT_METRIC, TEST, VALIDATION
from movierec.data import Dataset
from movierec.data.side_features import build_side_features
from movierec.data.stream import EventStream, build_queries
from movierec.evaluation import bootstrap_intervals
from movierec.evaluation.experiment import EvaluationSettings, evaluate_ranking, evaluate_ratings, prepare
from movierec.models import RatingPredictor, TrainingData, build_model, get_spec
from movierec.models.hyperparameters import Choice, SearchSpace, search_space

SEARCH_DIR = "search"  # KerasTuner's project below the tuning directory
CONFIG_FILE = "search_config.json"
TRIALS_JSON, TRIALS_CSV, TRIALS_PNG = "trials.json", "trials.csv", "trials.png"
BEST_FILE = "best_hyperparameters.json"
LOWER_IS_BETTER = ("rmse", "mae")  # every other metric (recall@K, mrr@K, ndcg@K, ...) is maximised
SHOWN_METRICS = ("recall@20", "mrr@20", "ndcg@10")


@dataclasses.dataclass(frozen=True)
class Budget:
    """What a search may spend.

    Args:
        max_trials: trials at most (trial 0, the defaults, included).
        max_seconds: trial time (fit + validation scoring, summed over the finished trials, also across
            resumptions); None: no limit. A trial starts only while the time left is at least the
            mean time of the finished trials, so the search may overrun by less than one trial.
        patience: stop after this many finished trials in a row without improvement; None: never.
    """

    max_trials: int
    max_seconds: float | None = None
    patience: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.max_trials, int) or self.max_trials < 1:
            raise ValueError(f"max_trials must be a whole number >= 1, got {self.max_trials!r}")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ValueError(f"max_seconds must be > 0 (or None: no limit), got {self.max_seconds!r}")
        if self.patience is not None and (not isinstance(self.patience, int) or self.patience < 1):
            raise ValueError(f"patience must be a whole number >= 1 (or None: never), got {self.patience!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class TuningData:
    """What a search reads: the training events (with side features) and a stream whose validation
    events are the queries. The stream may hold the validation users' histories and anyone's training
    events, never a test event.

    Args:
        training: what every trial's model is fitted on.
        validation: the stream the validation queries come from (roles TRAIN and VALIDATION only).
        description: what the data is (dataset, protocol), recorded with the trials.
    """

    training: TrainingData
    validation: EventStream
    description: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if (np.asarray(self.validation.roles) == TEST).any():
            raise ValueError("validation: the stream holds test events; a search must never read them")


def without_test_events(stream: EventStream) -> EventStream:
    """The stream without its test-role events (test users keep their training events)."""
    keep = stream.roles != TEST
    return EventStream(
        stream.user_ids,
        stream.item_ids,
        stream.sequences.select(keep),
        stream.roles[keep],
        stream.session_gap,
    )


def tuning_data(dataset: Dataset, protocol: str = "temporal", session_gap: int | None = None, **split: Any):
    """`TuningData` of a dataset under a protocol: the split `movierec evaluate` makes for the same
    arguments, with the test events removed before anything sees them.

    Args:
        dataset: the loaded dataset.
        protocol: a protocol of `movierec.data.splits` (temporal, leave-last-out, random, given-split).
        session_gap: seconds that end a session (None: the default).
        **split: the protocol's parameters (seed, test_fraction, cut_time).
    """
    gap = {} if session_gap is None else {"session_gap": session_gap}
    split_made, stream = prepare(dataset, protocol, **gap, **split)
    training = dataclasses.replace(stream.training_data(), side_features=build_side_features(dataset, stream))
    description = {
        "dataset": dataset.name,
        "checksum": dataset.checksum,
        "protocol": split_made.describe(),
        "session_gap": stream.session_gap,
    }
    return TuningData(training, without_test_events(stream), description)


def metric_direction(metric: str) -> str:
    """`min` for error metrics (RMSE, MAE), else `max`."""
    return "min" if metric in LOWER_IS_BETTER else "max"


def searched_space(model_name: str, fixed: dict[str, Any] | None = None) -> dict[str, SearchSpace]:
    """The model's declared search space without the `fixed` hyper-parameters (and its seed)."""
    space = search_space(get_spec(model_name).factory.config_class)
    return {name: s for name, s in space.items() if name not in (fixed or {}) and name != "seed"}


def check_metric(model_name: str, metric: str) -> None:
    """Raises ValueError (naming `metric`) unless every trial will report it: a ranking metric at the
    default cutoffs (recall@20, mrr@10, ndcg@5, ...; map, mrr, auc), or RMSE/MAE for rating models."""
    ranking = re.fullmatch(r"(recall|mrr|ndcg|precision|hit_rate|map)@(5|10|20)|map|mrr|auc", metric)
    if not ranking and not (metric in LOWER_IS_BETTER and get_spec(model_name).rating):
        raise ValueError(
            f"metric: {metric!r} is not a validation metric of {model_name}; use e.g. recall@20, mrr@20, "
            "ndcg@10, map, auc" + (", rmse or mae" if get_spec(model_name).rating else "")
        )


def check_tunable(model_name: str, fixed: dict[str, Any] | None = None) -> dict[str, SearchSpace]:
    """The space a search of `model_name` explores with `fixed` held; raises ValueError (naming the
    argument) for a model without a space, or fixed values it does not take.

    Args:
        model_name: a registry model.
        fixed: hyper-parameters every trial uses.
    """
    config_class = get_spec(model_name).factory.config_class
    fields = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(fixed or {}) - fields)
    if unknown:
        raise ValueError(f"fixed: {model_name} has no hyper-parameters {unknown}; it takes {sorted(fields)}")
    space = searched_space(model_name, fixed)
    if not space:
        declared = search_space(config_class)
        why = (
            "declares no search space"
            if not declared
            else f"has every searched hyper-parameter fixed ({', '.join(declared)})"
        )
        raise ValueError(f"model: {model_name} {why}: nothing to tune")
    return space


def space_to_json(space: dict[str, SearchSpace]) -> dict[str, Any]:
    """The space as JSON (for reports and the pipeline's cache key)."""
    return {
        name: {"choice": list(s.values)} if isinstance(s, Choice) else dataclasses.asdict(s)
        for name, s in space.items()
    }


def _keras_tuner():
    import keras_tuner

    return keras_tuner


def keras_hyperparameters(model_name: str, space: dict[str, SearchSpace]):
    """A `keras_tuner.HyperParameters` declaring `space` (defaults: the model's own)."""
    kt = _keras_tuner()
    config_class = get_spec(model_name).factory.config_class
    defaults = {f.name: f.default for f in dataclasses.fields(config_class)}
    types = typing.get_type_hints(config_class)
    hp = kt.HyperParameters()
    for name, s in space.items():
        if isinstance(s, Choice):
            hp.Choice(name, list(s.values), default=defaults[name])
        elif types[name] is int:
            sampling = "log" if s.log else "linear"
            step = int(s.step) if s.step is not None else (None if s.log else 1)
            hp.Int(name, int(s.low), int(s.high), step=step, sampling=sampling, default=defaults[name])
        else:
            sampling = "log" if s.log else "linear"
            hp.Float(
                name, float(s.low), float(s.high), step=s.step, sampling=sampling, default=defaults[name]
            )
    return hp


def typed_values(model_name: str, values: dict[str, Any]) -> dict[str, Any]:
    """KerasTuner's values as the model's declared types: its Choice stores True/False as 1/0, and an
    int field must not arrive as 64.0.

    Args:
        model_name: the registry model the values are for.
        values: {hyper-parameter: value} as a search (or a `best_hyperparameters` artifact) holds them.
    """
    types = typing.get_type_hints(get_spec(model_name).factory.config_class)
    typed = {}
    for name, value in values.items():
        kind = types.get(name)
        if kind is bool and isinstance(value, int | float):
            value = bool(value)
        elif kind is int and isinstance(value, float) and value.is_integer():
            value = int(value)
        elif kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        typed[name] = _tidy(value)
    return typed


def _tidy(value: Any) -> Any:
    """Floats to 4 significant digits (0.15, not 0.15000000000000002; 1.35 for a log draw), numpy
    scalars as Python values: what a trial trains with is what its table and the Trainer show."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isfinite(value) and value != 0:
        return float(f"{value:.4g}")
    return value


def _oracle_class():
    kt = _keras_tuner()
    from keras_tuner.engine import trial as trial_module

    class BudgetOracle(kt.oracles.RandomSearchOracle):
        """Random search whose first trial is the defaults, stopped by time and patience too."""

        def __init__(self, *, defaults: dict[str, Any], budget: Budget, **kwargs: Any) -> None:
            super().__init__(max_trials=budget.max_trials, **kwargs)
            self.defaults, self.budget = defaults, budget
            self.trial_seconds: dict[str, float] = {}
            self.stopped_because = ""

        def finished(self) -> list:
            """Completed trials in the order they ended."""
            return [
                self.trials[t]
                for t in self.end_order
                if self.trials[t].status == trial_module.TrialStatus.COMPLETED
            ]

        def exhausted(self) -> str:
            """Why no further trial may start ("" while the budget allows one)."""
            if len(self.trials) >= self.budget.max_trials:
                return f"trial budget ({self.budget.max_trials} trials)"
            spent = sum(self.trial_seconds.values())
            if self.budget.max_seconds is not None and self.trial_seconds:
                mean = spent / len(self.trial_seconds)
                if spent + mean > self.budget.max_seconds:
                    return (
                        f"time budget ({self.budget.max_seconds:.0f} s: {spent:.0f} s spent, a trial "
                        f"takes {mean:.0f} s)"
                    )
            done = self.finished()
            if self.budget.patience is not None and done:
                sign = 1 if self.objective.direction == "max" else -1
                scores = [sign * t.score for t in done]
                since_best = len(scores) - 1 - int(np.argmax(scores))
                if since_best >= self.budget.patience:
                    return f"patience ({since_best} trials without improvement)"
            return ""

        def populate_space(self, trial_id: str) -> dict[str, Any]:
            reason = self.exhausted()
            if reason:
                self.stopped_because = reason
                return {"status": trial_module.TrialStatus.STOPPED, "values": None}
            if not self.trials:
                return {"status": trial_module.TrialStatus.RUNNING, "values": dict(self.defaults)}
            response = super().populate_space(trial_id)
            if response["values"] is None:
                self.stopped_because = "every point of the space was tried"
            else:
                response["values"] = {k: _tidy(v) for k, v in response["values"].items()}
            return response

        def get_state(self) -> dict[str, Any]:
            return {**super().get_state(), "trial_seconds": self.trial_seconds}

        def set_state(self, state: dict[str, Any]) -> None:
            super().set_state(state)
            self.trial_seconds = dict(state.get("trial_seconds", {}))

    return BudgetOracle


def _tuner_class():
    from keras_tuner.engine import base_tuner
    from keras_tuner.engine import trial as trial_module

    class RecommenderTuner(base_tuner.BaseTuner):
        """KerasTuner over a registry model: `run_trial` fits and scores on the validation users."""

        def __init__(
            self,
            model_name: str,
            *,
            oracle: Any,
            directory: str,
            fixed: dict[str, Any],
            metric: str,
            settings: EvaluationSettings,
            log: Callable[[str], None],
            overwrite: bool,
        ) -> None:
            self.model_name, self.fixed, self.metric = model_name, fixed, metric
            self.settings, self.log, self.tuning_dir = settings, log, directory
            self.description: dict[str, Any] = {}
            super().__init__(oracle=oracle, directory=directory, project_name=SEARCH_DIR, overwrite=overwrite)

        def run_trial(self, trial, data: TuningData) -> dict[str, float]:
            searched = typed_values(self.model_name, trial.hyperparameters.values)
            hparams = {**self.fixed, **searched}
            started = time.perf_counter()
            try:
                model = build_model(self.model_name, **hparams).fit(data.training)
            finally:  # a failed trial's time counts against the budget too
                self.oracle.trial_seconds[trial.trial_id] = round(time.perf_counter() - started, 3)
            fitted = time.perf_counter()
            validation = data.validation
            queries = build_queries(validation, VALIDATION, self.settings.query_mode)
            accumulator = evaluate_ranking(model, validation, queries, self.settings)
            metrics = {k: float(v) for k, v in accumulator.result().items()}
            if get_spec(self.model_name).rating and isinstance(model, RatingPredictor):
                metrics.update(evaluate_ratings(model, validation, VALIDATION))
            if self.metric not in metrics:
                raise ValueError(
                    f"metric: no validation metric {self.metric!r}; choose one of {sorted(metrics)}"
                )
            intervals = {}
            if self.metric in accumulator.per_query():
                users = queries.users[accumulator.query_rows()]
                found = bootstrap_intervals(
                    {self.metric: accumulator.per_query()[self.metric]},
                    groups=users,
                    n_resamples=self.settings.bootstrap_resamples,
                    seed=self.settings.seed,
                )
                intervals = {k: [float(lo), float(hi)] for k, (lo, hi) in found.items()}
            record = {
                "trial": trial.trial_id,
                "searched": searched,
                "hparams": model.get_config(),
                "metrics": metrics,
                "intervals": intervals,
                "queries": len(queries),
                "fit_seconds": round(fitted - started, 3),
                "seconds": round(time.perf_counter() - started, 3),
            }
            storage.write_text(
                storage.join(self.get_trial_dir(trial.trial_id), "result.json"), json.dumps(record, indent=2)
            )
            self.oracle.trial_seconds[trial.trial_id] = record["seconds"]
            return {self.metric: metrics[self.metric]}

        def on_trial_end(self, trial) -> None:
            super().on_trial_end(trial)
            ended = self.oracle.trials[trial.trial_id]
            if ended.status == trial_module.TrialStatus.COMPLETED:
                record = self.records().get(trial.trial_id, {})
                best = self.oracle.get_best_trials(1)[0]
                values = json.dumps(record.get("searched", {}))
                self.log(
                    f"trial {trial.trial_id}: {self.metric} {ended.score:.4f} (best {best.score:.4f}, "
                    f"trial {best.trial_id}) {record.get('seconds', 0):.1f} s, "
                    f"{sum(self.oracle.trial_seconds.values()):.0f} s in all; {values}"
                )
            else:
                last = (ended.message or "").strip().splitlines()
                self.log(f"trial {trial.trial_id} {ended.status.lower()}: {last[-1] if last else ''}")
            self.write_report()

        def on_search_end(self) -> None:
            super().on_search_end()
            report = self.write_report()
            reason = self.oracle.stopped_because or self.oracle.exhausted() or "done"
            if report["best"] is not None:
                best = report["best"]
                self.log(
                    f"search stopped: {reason}; best trial {best['trial']} {self.metric} "
                    f"{best['metrics'][self.metric]:.4f} {json.dumps(best['searched'])}; "
                    f"report in {self.tuning_dir}"
                )
            else:
                self.log(f"search stopped: {reason}; no trial finished")

        def records(self) -> dict[str, dict[str, Any]]:
            found = {}
            for trial_id in self.oracle.trials:
                path = storage.join(self.get_trial_dir(trial_id), "result.json")
                if storage.exists(path):
                    found[trial_id] = json.loads(storage.read_text(path))
            return found

        def best_hparams(self) -> dict[str, Any] | None:
            """The best trial's searched values merged over the fixed ones (what the Trainer trains)."""
            done = self.oracle.get_best_trials(1)
            if not done or done[0].status != trial_module.TrialStatus.COMPLETED:
                return None
            return {**self.fixed, **typed_values(self.model_name, done[0].hyperparameters.values)}

        def write_report(self) -> dict[str, Any]:
            report = build_report(self)
            write_report(report, self.tuning_dir)
            return report

    return RecommenderTuner


def build_report(tuner: Any) -> dict[str, Any]:
    """Every trial (in the order they started) with its values, metrics, interval and time; the best."""
    records = tuner.records()
    rows = []
    for trial_id in tuner.oracle.start_order:
        trial = tuner.oracle.trials[trial_id]
        record = records.get(trial_id, {})
        rows.append(
            {
                "trial": trial_id,
                "status": trial.status,
                "defaults": trial_id == tuner.oracle.start_order[0],
                "searched": record.get(
                    "searched", typed_values(tuner.model_name, trial.hyperparameters.values)
                ),
                "metrics": record.get("metrics", {}),
                "intervals": record.get("intervals", {}),
                "fit_seconds": record.get("fit_seconds"),
                "seconds": record.get("seconds"),
            }
        )
    finished = [row for row in rows if tuner.metric in row["metrics"]]
    sign = 1 if metric_direction(tuner.metric) == "max" else -1
    best = max(finished, key=lambda row: sign * row["metrics"][tuner.metric]) if finished else None
    return {
        "model": tuner.model_name,
        "metric": tuner.metric,
        "direction": metric_direction(tuner.metric),
        "evaluated_on": "validation users",
        "space": space_to_json(searched_space(tuner.model_name, tuner.fixed)),
        "fixed": tuner.fixed,
        "budget": tuner.oracle.budget.to_dict(),
        "seed": tuner.oracle.seed,
        "data": tuner.description,
        "seconds": round(sum(tuner.oracle.trial_seconds.values()), 3),
        "stopped_because": tuner.oracle.stopped_because,
        "best": best,
        "best_hparams": tuner.best_hparams(),
        "trials": rows,
    }


def write_report(report: dict[str, Any], directory: str) -> None:
    """`trials.json`, `trials.csv`, `trials.png` and (once a trial finished) `best_hyperparameters.json`."""
    storage.makedirs(directory)
    storage.write_text(storage.join(directory, TRIALS_JSON), json.dumps(report, indent=2))
    storage.write_text(storage.join(directory, TRIALS_CSV), trials_csv(report))
    if report["best_hparams"] is not None:
        storage.write_text(storage.join(directory, BEST_FILE), json.dumps(report["best_hparams"], indent=2))
    storage.write_bytes(storage.join(directory, TRIALS_PNG), trials_png(report))


def trials_csv(report: dict[str, Any]) -> str:
    """One row per trial: status, the searched values, the metrics, the metric's interval, seconds."""
    metric = report["metric"]
    names = list(report["space"])
    metrics = list(dict.fromkeys([metric, *SHOWN_METRICS]))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["trial", "status", *names, *metrics, f"{metric} low", f"{metric} high", "seconds"])
    for row in report["trials"]:
        low, high = row["intervals"].get(metric, ("", ""))
        writer.writerow(
            [
                row["trial"] + (" (defaults)" if row["defaults"] else ""),
                row["status"],
                *(row["searched"].get(name, "") for name in names),
                *(row["metrics"].get(m, "") for m in metrics),
                low,
                high,
                row["seconds"] if row["seconds"] is not None else "",
            ]
        )
    return buffer.getvalue()


def trials_png(report: dict[str, Any]) -> bytes:
    """The validation metric of every finished trial (95% user-bootstrap interval), the best so far."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    metric = report["metric"]
    rows = [row for row in report["trials"] if metric in row["metrics"]]
    figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
    if rows:
        x = np.arange(len(rows))
        y = np.array([row["metrics"][metric] for row in rows])
        low = np.array([row["intervals"].get(metric, [v, v])[0] for row, v in zip(rows, y, strict=True)])
        high = np.array([row["intervals"].get(metric, [v, v])[1] for row, v in zip(rows, y, strict=True)])
        axes.errorbar(x, y, yerr=[y - low, high - y], fmt="o", color="tab:blue", capsize=3, label="trial")
        best = np.maximum.accumulate(y) if report["direction"] == "max" else np.minimum.accumulate(y)
        axes.step(x, best, where="post", color="tab:orange", label="best so far")
        defaults = [i for i, row in enumerate(rows) if row["defaults"]]
        if defaults:
            axes.plot(x[defaults], y[defaults], "s", color="tab:red", label="defaults (trial 0)")
        axes.set_xticks(x, [row["trial"] for row in rows])
    axes.set_xlabel("trial")
    axes.set_ylabel(f"validation {metric}")
    axes.set_title(f"{report['model']}: {len(rows)} trials, {report['seconds']:.0f} s")
    axes.legend(loc="lower right")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def search_config(
    model_name: str, space: dict[str, SearchSpace], fixed: dict[str, Any], seed: int, metric: str, data: dict
) -> dict[str, Any]:
    """What must not change for a search to resume (the budget may: a longer one continues it)."""
    return {
        "model": model_name,
        "space": space_to_json(space),
        "fixed": fixed,
        "seed": seed,
        "metric": metric,
        "data": data,
    }


def config_key(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def make_tuner(
    model_name: str,
    directory: str,
    *,
    budget: Budget,
    fixed: dict[str, Any] | None = None,
    seed: int = 0,
    metric: str = DEFAULT_METRIC,
    data_description: dict[str, Any] | None = None,
    query_mode: str = "next-item",
    bootstrap: int = 200,
    overwrite: bool = False,
    log: Callable[[str], None] = print,
):
    """A KerasTuner search of `model_name`'s declared space, kept in `directory` (resumed if present).

    Args:
        model_name: a registry model that declares a search space.
        directory: where the search and its report live (a local path or a gs:// URI).
        budget: trials, seconds and patience (`Budget`).
        fixed: hyper-parameters every trial uses (not searched); `seed` is added unless given.
        seed: seeds the random draws and, unless fixed, every trial's model.
        metric: the validation metric that ranks trials (e.g. recall@20, mrr@20; rmse is minimised).
        data_description: what the data is; a directory holding a search of other data (or another
            model, space, seed or metric) is refused instead of resumed.
        query_mode: next-item or user queries, as `movierec evaluate --query-mode`.
        bootstrap: user-bootstrap resamples of each trial's interval.
        overwrite: start afresh even where a search exists.
        log: where the progress lines go.

    Returns the tuner; `tuner.search(data=TuningData)` runs it.
    """
    space = check_tunable(model_name, fixed)
    check_metric(model_name, metric)
    fixed = dict(fixed or {})
    if "seed" in {f.name for f in dataclasses.fields(get_spec(model_name).factory.config_class)}:
        fixed.setdefault("seed", seed)
    config = search_config(model_name, space, fixed, seed, metric, data_description or {})
    config_path = storage.join(directory, CONFIG_FILE)
    if storage.exists(config_path) and not overwrite:
        previous = json.loads(storage.read_text(config_path))
        if json.loads(json.dumps(config, default=str)) != previous:
            changed = sorted(
                k for k in config if json.dumps(config[k], default=str) != json.dumps(previous.get(k))
            )
            raise ValueError(
                f"directory: {directory} holds a search with other {', '.join(changed)}; give another "
                "directory or overwrite it"
            )
    hp = keras_hyperparameters(model_name, space)
    kt = _keras_tuner()
    defaults = {name: _tidy(hp.get(name)) for name in space}
    oracle = _oracle_class()(
        objective=kt.Objective(metric, direction=metric_direction(metric)),
        seed=seed,
        hyperparameters=hp,
        defaults=defaults,
        budget=budget,
        max_consecutive_failed_trials=3,
    )
    oracle.verbose = 0  # our own line per trial instead of KerasTuner's tables
    resumed = storage.exists(storage.join(directory, SEARCH_DIR, "oracle.json")) and not overwrite
    tuner = _tuner_class()(
        model_name,
        oracle=oracle,
        directory=directory,
        fixed=fixed,
        metric=metric,
        settings=EvaluationSettings(
            role="validation", query_mode=query_mode, bootstrap_resamples=bootstrap, seed=seed
        ),
        log=log,
        overwrite=overwrite,
    )
    tuner.description = data_description or {}
    storage.write_text(config_path, json.dumps(config, indent=2, default=str))
    done = len(oracle.finished())
    log(
        f"{'resuming' if resumed else 'starting'} the search of {model_name} in {directory}: "
        f"{len(space)} hyper-parameters ({', '.join(space)}), {done} trials done, budget "
        f"{budget.max_trials} trials"
        + (f", {budget.max_seconds:.0f} s" if budget.max_seconds else "")
        + (f", patience {budget.patience}" if budget.patience else "")
    )
    return tuner


def tune(model_name: str, data: TuningData, directory: str, **options: Any) -> dict[str, Any]:
    """Runs (or resumes) the search of `model_name` on `data` in `directory`; returns the report
    (`trials.json`). Options as `make_tuner`'s."""
    tuner = make_tuner(model_name, directory, data_description=data.description, **options)
    tuner.search(data=data)
    return tuner.write_report()


def report_lines(report: dict[str, Any]) -> list[str]:
    """The trials as a text table, best first."""
    metric = report["metric"]
    names = list(report["space"])
    sign = 1 if report["direction"] == "max" else -1
    rows = sorted(
        report["trials"],
        key=lambda r: -sign * r["metrics"][metric] if metric in r["metrics"] else math.inf,
    )
    table = [["trial", *names, metric, "95% interval", "s"]]
    for row in rows:
        value = row["metrics"].get(metric)
        low, high = row["intervals"].get(metric, (None, None))
        table.append(
            [
                row["trial"] + ("*" if row["defaults"] else ""),
                *(str(row["searched"].get(name, "")) for name in names),
                f"{value:.4f}" if value is not None else row["status"].lower(),
                f"[{low:.4f}, {high:.4f}]" if low is not None else "",
                f"{row['seconds']:.0f}" if row["seconds"] is not None else "",
            ]
        )
    widths = [max(len(line[c]) for line in table) for c in range(len(table[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in table
    ]
    return [*lines, "(* = the declared defaults, trial 0)"]
