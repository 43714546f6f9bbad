"""One benchmark: every model (or a chosen few) trained and evaluated on one dataset under one protocol,
with the same splits, queries and user draws, written as `results.json` and a self-contained
`report.html` (movierec.evaluation.report). `movierec benchmark` and `make bench` run it.

Each model runs through `run_experiment` (the path of `movierec evaluate`), over `repeat` split seeds ×
`repeat` model seeds where the model takes a seed, and its runs are combined by `aggregate_runs`. As
soon as a model finishes, its result is written atomically to `<output>/models/<name>.json` with its
per-query values in `<name>.npz` (the paired differences need them): an interrupted benchmark, run
again, reads the finished models back instead of retraining them. A stored result is reused only when
its key — a hash of the data checksum, the protocol and its parameters, the evaluation settings, the
seeds and the model's full hyper-parameters (defaults included) — equals the new run's; anything else
is retrained and overwritten.

The reference for the paired differences is the best baseline (Pop, S-Pop, Item-KNN, BPR-MF, MF,
whichever ran) by the primary metric on the **validation** users: the comparison's reference is a
choice, and no choice reads test users.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import os
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from movierec import storage
from movierec.constants import DEFAULT_METRIC, DEFAULT_SESSION_GAP, TRAIN, VALIDATION
from movierec.data import Dataset
from movierec.data.splits import Split
from movierec.data.stream import EventStream, build_queries
from movierec.evaluation.experiment import (
    EvaluationSettings,
    ExperimentResult,
    _versions,
    aggregate_runs,
    evaluate_ranking,
    paired_comparison,
    prepare,
    run_experiment,
)
from movierec.evaluation.ranking import RankingAccumulator
from movierec.models import MODELS, get_spec, make_config

#: The baselines every paper model must beat; the best of those that ran is the paired reference.
BASELINES = ("pop", "spop", "itemknn", "bpr-mf", "mf")
RESULTS_FILE = "results.json"
REPORT_FILE = "report.html"
MODELS_DIR = "models"
#: Bump when the stored per-model record changes shape: older records are then retrained, not misread.
RECORD_VERSION = 1
PEAK_MEMORY_METHOD = (
    "peak resident set size (VmHWM of /proc/self/status) while the model trained and was evaluated, "
    "after resetting the high-water mark (/proc/self/clear_refs 5) before it; it includes what the "
    "process already held (the dataset, TensorFlow): peak_rss_mb − start_rss_mb is what the model added"
)
PEAK_MEMORY_FALLBACK = (
    "resource.getrusage(RUSAGE_SELF).ru_maxrss after the model: the process's peak so far, never reset "
    "(this system cannot reset the high-water mark), so a model's figure includes earlier models' peaks"
)


@dataclass(frozen=True)
class BenchmarkConfig:
    """What decides a benchmark's numbers (every field is recorded in results.json).

    Args:
        protocol: a protocol of movierec.data.splits (temporal, random, leave-last-out, given-split).
        test_fraction: temporal/random: the evaluated share (ignored when `cut_time` is set).
        cut_time: temporal: a fixed cut in unix seconds instead of `test_fraction`.
        session_gap: seconds of inactivity that end a session.
        seed: the first split seed (which users are validation and which test users); also the bootstrap's.
        model_seed: the first model seed of the models that take one (default: `seed`).
        repeat: split seeds seed..seed+repeat-1 × model seeds model_seed..model_seed+repeat-1 (seeded
            models only; protocols without a random part have one split).
        settings: the evaluation settings (the role is always the test users; the validation users
            only choose the reference baseline).
        metric: the primary metric (ranking, higher is better): picks the best baseline, heads the table.
    """

    protocol: str = "temporal"
    test_fraction: float = 0.2
    cut_time: int | None = None
    session_gap: int = DEFAULT_SESSION_GAP
    seed: int = 0
    model_seed: int | None = None
    repeat: int = 1
    settings: EvaluationSettings = field(default_factory=EvaluationSettings)
    metric: str = DEFAULT_METRIC

    def __post_init__(self) -> None:
        if self.repeat < 1:
            raise ValueError(f"repeat must be at least 1, got {self.repeat!r}")
        if self.settings.role != "test":
            raise ValueError(
                f"settings.role must be 'test' (the benchmark reports test users), got {self.settings.role!r}"
            )
        names = RankingAccumulator(ks=self.settings.ks).metric_names
        if self.metric not in names:
            raise ValueError(
                f"metric must be a ranking metric of the cutoffs {list(self.settings.ks)} "
                f"(e.g. {', '.join(names[:4])}, map), got {self.metric!r}"
            )

    @property
    def seeded_protocol(self) -> bool:
        return self.protocol in ("temporal", "random")

    def split_seeds(self) -> list[int]:
        return [self.seed + r for r in range(self.repeat)] if self.seeded_protocol else [self.seed]

    def model_seeds(self, model: str, hparams: dict[str, Any]) -> list[int | None]:
        """The seeds this model runs with (None: the model takes no seed, or --set fixes it)."""
        if "seed" not in _declared(model) or "seed" in hparams:
            return [None]
        first = self.seed if self.model_seed is None else self.model_seed
        return [first + r for r in range(self.repeat)]

    def split_params(self, split_seed: int) -> dict[str, Any]:
        if self.cut_time is not None:
            return {"cut_time": self.cut_time, "seed": split_seed}
        return {"test_fraction": self.test_fraction, "seed": split_seed} if self.seeded_protocol else {}

    def describe(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "split_params": {k: v for k, v in self.split_params(self.seed).items() if k != "seed"},
            "session_gap": self.session_gap,
            "split_seeds": self.split_seeds(),
            "model_seed": self.seed if self.model_seed is None else self.model_seed,
            "repeat": self.repeat,
            "evaluation": _jsonable(dataclasses.asdict(self.settings)),
            "metric": self.metric,
        }


class SplitError(ValueError):
    """The data cannot be split as asked (e.g. a cut time outside the data)."""


class RecordChanged(RuntimeError):
    """A model's stored arrays were replaced by another process after its record was read."""


class Progress:
    """What a benchmark tells its user as it goes; the CLI draws it (a line per model, a bar for the
    evaluation). This base class says nothing: library callers that want no output use it as is."""

    def model_started(self, name: str, index: int, total: int, training_events: int, runs: int) -> None:
        """A model starts (index from 1): its training events and how many runs it makes."""

    def evaluating(self, name: str, step: int, total: int) -> None:
        """`step` more of the current run's `total` queries are scored."""

    def model_finished(self, name: str, record: dict[str, Any]) -> None:
        """The model's stored record (metrics, intervals, timing, memory)."""

    def model_reused(self, name: str, index: int, total: int, record: dict[str, Any]) -> None:
        """A stored result of the same configuration is read back instead of retraining."""

    def model_stale(self, name: str, index: int, total: int, changed: list[str]) -> None:
        """A stored result of another configuration (which fields differ) is retrained."""


def _declared(model: str) -> set[str]:
    return {f.name for f in dataclasses.fields(get_spec(model).factory.config_class)}


def resolved_hparams(model: str, hparams: dict[str, Any], seed: int | None) -> dict[str, Any]:
    """Every hyper-parameter the model will train with (declared defaults filled in), checked against
    its declaration (ValueError naming the key otherwise).

    Args:
        model: a registry name.
        hparams: the values given for it (--set).
        seed: the model seed of the run (None: the model's own or the given one).
    """
    chosen = dict(hparams)
    if seed is not None:
        chosen["seed"] = seed
    config = make_config(get_spec(model).factory.config_class, chosen, model)
    return _jsonable(dataclasses.asdict(config))


def model_key(
    model: str, hparams: dict[str, Any], dataset: Dataset, config: BenchmarkConfig
) -> tuple[str, dict[str, Any]]:
    """(key, what it hashes): a stored result is reused only for an identical key.

    Args:
        model: a registry name.
        hparams: the values given for it; the defaults of the others are part of the key too.
        dataset: the data (its checksum is part of the key).
        config: the protocol, seeds and evaluation settings.
    """
    seeds = config.model_seeds(model, hparams)
    described = {
        "record_version": RECORD_VERSION,
        "model": model,
        "data_checksum": dataset.checksum,
        "protocol": config.protocol,
        "split_params": config.describe()["split_params"],
        "session_gap": config.session_gap,
        "evaluation": config.describe()["evaluation"],
        "split_seeds": config.split_seeds(),
        "model_seeds": seeds,
        "hparams": resolved_hparams(model, hparams, seeds[0]),
    }
    text = json.dumps(described, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20], described


# -- files ------------------------------------------------------------------------------------------


write_atomically = storage.write_atomically


def _jsonable(value: Any) -> Any:
    """JSON-safe copy: NumPy scalars/arrays as Python values, NaN and ±inf as null (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def dumps(payload: Any) -> bytes:
    return json.dumps(_jsonable(payload), indent=1, ensure_ascii=False, allow_nan=False).encode()


def _record_paths(output: storage.StrPath, model: str) -> tuple[str, str]:
    base = os.fspath(storage.join(output, MODELS_DIR, model))
    return f"{base}.json", f"{base}.npz"


def load_record(output: storage.StrPath, model: str) -> dict[str, Any] | None:
    """A model's stored record, or None when there is none or it is unreadable (then it is rerun)."""
    json_path, npz_path = _record_paths(output, model)
    if not (storage.exists(json_path) and storage.exists(npz_path)):
        return None
    try:
        return json.loads(storage.read_text(json_path))
    except (OSError, ValueError):
        return None


def _save_record(
    output: storage.StrPath, model: str, record: dict[str, Any], runs: list[ExperimentResult]
) -> None:
    """The arrays first, the JSON (which carries the key) last: a record counts once its JSON exists."""
    json_path, npz_path = _record_paths(output, model)
    storage.makedirs(storage.join(output, MODELS_DIR))
    arrays: dict[str, np.ndarray] = {"record_id": np.array(record["record_id"])}
    for i, run in enumerate(runs):
        arrays[f"{i}|query_users"] = run.query_users
        arrays[f"{i}|rating_users"] = run.rating_users
        arrays.update({f"{i}|per_query|{k}": v for k, v in run.per_query.items()})
        arrays.update({f"{i}|per_rating|{k}": v for k, v in run.per_rating.items()})
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    write_atomically(npz_path, buffer.getvalue())
    write_atomically(json_path, dumps(record))


def stored_runs(output: storage.StrPath, model: str, record: dict[str, Any]) -> list[ExperimentResult]:
    """The model's runs with their per-query values, as `paired_comparison` takes them."""
    path = _record_paths(output, model)[1]
    arrays = storage.load_npz(path)
    expected = record.get("record_id")  # records written before it was kept have none
    if expected is not None and str(arrays.get("record_id", "")) != expected:
        raise RecordChanged(
            f"{path} no longer belongs to the {model} record this run holds (another benchmark wrote "
            "this folder meanwhile): run the benchmark again to read back a consistent set"
        )
    runs = []
    for i, run in enumerate(record["runs"]):
        per_query = {k.split("|", 2)[2]: v for k, v in arrays.items() if k.startswith(f"{i}|per_query|")}
        per_rating = {k.split("|", 2)[2]: v for k, v in arrays.items() if k.startswith(f"{i}|per_rating|")}
        metrics = {k: math.nan if v is None else float(v) for k, v in run["metrics"].items()}
        fields = {
            k: run[k]
            for k in ("model", "hparams", "dataset", "protocol", "evaluation", "intervals", "timing")
        }
        runs.append(
            ExperimentResult(
                **fields,
                metrics=metrics,
                versions=run.get("versions", {}),
                per_query=per_query,
                query_users=arrays[f"{i}|query_users"],
                per_rating=per_rating,
                rating_users=arrays[f"{i}|rating_users"],
            )
        )
    return runs


# -- measurements ------------------------------------------------------------------------------------


def _status_kb(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class PeakMemory:
    """Peak RSS over a block of work: VmHWM after resetting it where Linux allows, else ru_maxrss."""

    def __enter__(self) -> PeakMemory:
        self.method = PEAK_MEMORY_FALLBACK
        try:
            with open("/proc/self/clear_refs", "w") as refs:
                refs.write("5")
            if _status_kb("VmHWM") is not None:
                self.method = PEAK_MEMORY_METHOD
        except OSError:
            pass
        self.start_kb = _status_kb("VmRSS")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.method == PEAK_MEMORY_METHOD:
            # The kernel folds threads' cached RSS counts into VmHWM lazily, so it can read a few
            # hundred KiB below the VmRSS read at the start: the peak is at least that start.
            peak, start = _status_kb("VmHWM"), self.start_kb
            self.peak_kb = max(peak, start) if peak is not None and start is not None else peak
        else:
            import resource

            self.peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux

    def describe(self) -> dict[str, Any]:
        mb = lambda kb: None if kb is None else round(kb / 1024, 1)  # noqa: E731
        return {"peak_rss_mb": mb(self.peak_kb), "start_rss_mb": mb(self.start_kb), "method": self.method}


def validation_metric(
    model: Any, stream: EventStream, split: Split, settings: EvaluationSettings, metric: str
) -> float:
    """The model's `metric` on the validation users (what chooses the reference baseline); NaN when
    the split has no validation query. Seen items and short contexts follow the split, as in
    `run_experiment`.

    Args:
        model: a fitted recommender.
        stream: the split's event stream.
        split: the split (its params may keep seen items or ask for a minimum context).
        settings: query mode, cutoffs, relevance threshold.
        metric: a metric name of the settings' cutoffs.
    """
    if not split.params.get("exclude_seen", True):
        settings = dataclasses.replace(settings, exclude_seen=False)
    queries = build_queries(
        stream,
        VALIDATION,
        settings.query_mode,
        int(split.params.get("min_context", 0)),
        settings.min_relevant_rating,
    )
    if len(queries) == 0:
        return math.nan
    return float(evaluate_ranking(model, stream, queries, settings).result().get(metric, math.nan))


def iarn_explanation(model: Any, dataset: Dataset, stream: EventStream) -> dict[str, Any] | None:
    """IARN's attention gates for one validation user's first held-out rating (the user with the most
    training events; never a test user): both histories, raw ids, titles where the data has them,
    sorted by gate, highest first. None when there is no validation event.

    Args:
        model: a fitted model with `explain(user, item, timestamp)` (IARN).
        dataset: the data (titles of the items where its layout has them).
        stream: the split's event stream the model was fitted on.
    """
    seq = stream.sequences
    users = seq.users
    candidates = np.flatnonzero(stream.roles == VALIDATION)
    if not candidates.size:
        return None
    history = np.bincount(users[stream.roles == TRAIN], minlength=stream.n_users)
    event = candidates[np.argmax(history[users[candidates]])]  # the first event of that user
    found = model.explain(int(users[event]), int(seq.items[event]), int(seq.timestamps[event]))
    titles: dict[str, str] = {}
    if dataset.items is not None and "title" in dataset.items:
        titles = dict(zip(dataset.items["item_id"].astype(str), dataset.items["title"], strict=True))

    def ordered(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        by_time = sorted(events, key=lambda e: -e["timestamp"])
        return sorted(by_time, key=lambda e: -(e["gate"] if e["gate"] is not None else 0.0))

    item_id = str(stream.item_ids[seq.items[event]])
    user_history = []
    for e in found["user_history"]:
        raw = str(stream.item_ids[e["item"]])
        title = titles.get(raw)
        user_history.append(
            {
                "item_id": raw,
                "title": title if isinstance(title, str) else "",
                **{k: e[k] for k in ("rating", "timestamp", "gate")},
            }
        )
    item_history = [
        {"user_id": str(stream.user_ids[e["user"]]), **{k: e[k] for k in ("rating", "timestamp", "gate")}}
        for e in found["item_history"]
    ]
    item_title = titles.get(item_id)
    return {
        "user_id": str(stream.user_ids[users[event]]),
        "item_id": item_id,
        "item_title": item_title if isinstance(item_title, str) else "",
        "timestamp": int(found["timestamp"]),
        "actual_rating": float(seq.ratings[event]),
        "predicted_rating": float(found["predicted_rating"]),
        "backbone": found["backbone"],
        "chosen": "the first held-out rating of the validation user with the most training events",
        "user_history": ordered(user_history),
        "item_history": ordered(item_history),
    }


def code_fingerprint() -> str | None:
    """The installed movierec sources' and locked dependencies' hash (movierec.pipeline.fingerprint,
    the TFX cache's code key), or None where the sources cannot be read. Recorded, not keyed: a code
    change does not retrain finished models, but the results name the models trained by other code."""
    try:
        from movierec.pipeline.fingerprint import code_fingerprint as fingerprint

        return fingerprint()
    except (OSError, ImportError, ValueError):
        return None


def _throughput(runs: list[ExperimentResult], log: dict[str, Any]) -> dict[str, Any]:
    events = sum(r.timing["training_events"] for r in runs)
    fit = sum(r.timing["fit_seconds"] for r in runs)
    per_epoch = log.get("seconds_per_epoch")
    training_events = runs[0].timing["training_events"]
    return {
        "training_events": training_events,
        "fit_events_per_second": events / fit if fit > 0 else None,
        # models that log seconds per epoch (the rating models, ...): events through one epoch per second
        "epoch_events_per_second": training_events / per_epoch
        if isinstance(per_epoch, int | float) and per_epoch > 0
        else None,
    }


# -- the benchmark ------------------------------------------------------------------------------------


def run_benchmark(
    dataset: Dataset,
    models: Sequence[str],
    output: storage.StrPath,
    config: BenchmarkConfig,
    *,
    hparams: dict[str, dict[str, Any]] | None = None,
    latency: dict[str, Any] | None = None,
    columns: Sequence[str] = (),
    command: Sequence[str] = (),
    progress: Progress | None = None,
    render: Callable[[dict[str, Any]], str] | None = None,
) -> dict[str, Any]:
    """Trains and evaluates `models` (finished ones are read back), writes `results.json` and, with
    `render`, `report.html` into `output`; returns the results.

    Args:
        dataset: the loaded data (any layout).
        models: registry names, in the order of the report.
        output: folder (local path or URI) for results.json, report.html and models/<name>.json|npz.
        config: protocol, seeds, evaluation settings, primary metric (BenchmarkConfig).
        hparams: per model, its hyper-parameters (absent: the defaults).
        latency: a serving-latency JSON (benchmarks/serving_latency.py) to carry into the results.
        columns: the metrics of the results table (recorded for the report and the README table).
        command: the command line, recorded.
        progress: told about each model (default: silent).
        render: results → the report's HTML (movierec.evaluation.report.render_report).
    """
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        raise ValueError(f"models must be registry names ({', '.join(MODELS)}), got {list(models)!r}")
    hparams = hparams or {}
    progress = progress or Progress()
    started = time.perf_counter()
    storage.makedirs(output)
    splits: dict[int, tuple[Split, EventStream]] = {}

    def split_for(split_seed: int) -> tuple[Split, EventStream]:
        if split_seed not in splits:
            try:
                splits[split_seed] = prepare(
                    dataset, config.protocol, config.session_gap, **config.split_params(split_seed)
                )
            except ValueError as error:
                raise SplitError(f"{config.protocol} (split seed {split_seed}): {error}") from error
        return splits[split_seed]

    records: dict[str, dict[str, Any]] = {}
    for index, name in enumerate(models, start=1):
        own = hparams.get(name, {})
        key, described = model_key(name, own, dataset, config)
        stored = load_record(output, name)
        if stored is not None and stored.get("key") == key:
            records[name] = stored
            progress.model_reused(name, index, len(models), stored)
            continue
        if stored is not None:
            old = stored.get("configuration", {})
            progress.model_stale(
                name, index, len(models), sorted(k for k in described if old.get(k) != described[k])
            )
        records[name] = _run_model(
            name, index, len(models), own, key, described, dataset, config, split_for, progress
        )
        runs = records[name].pop("_runs")
        _save_record(output, name, records[name], runs)
        progress.model_finished(name, records[name])

    results = assemble(
        output, models, records, dataset, config, latency=latency, columns=columns, command=command
    )
    results["benchmark"]["wall_seconds"] = round(time.perf_counter() - started, 3)
    write_atomically(storage.join(output, RESULTS_FILE), dumps(results))
    if render is not None:
        write_atomically(storage.join(output, REPORT_FILE), render(results).encode())
    return results


def _run_model(
    name: str,
    index: int,
    total: int,
    hparams: dict[str, Any],
    key: str,
    described: dict[str, Any],
    dataset: Dataset,
    config: BenchmarkConfig,
    split_for: Callable[[int], tuple[Split, EventStream]],
    progress: Progress,
) -> dict[str, Any]:
    seeds = config.model_seeds(name, hparams)
    split_seeds = config.split_seeds()
    runs: list[ExperimentResult] = []
    validation: list[dict[str, Any]] = []
    logs: list[dict[str, Any]] = []
    explanation = None
    began = time.perf_counter()
    with PeakMemory() as memory:
        for split_seed in split_seeds:
            split, stream = split_for(split_seed)
            if not runs:
                events = int((stream.roles == TRAIN).sum())
                progress.model_started(name, index, total, events, len(split_seeds) * len(seeds))
            for seed in seeds:
                chosen = {**hparams, **({"seed": seed} if seed is not None else {})}
                model, result = run_experiment(
                    dataset,
                    name,
                    split=split,
                    stream=stream,
                    hparams=chosen,
                    settings=config.settings,
                    progress=lambda _stage, step, n: progress.evaluating(name, step, n),
                )
                runs.append(result)
                logs.append(_jsonable(getattr(model, "training_log", {}) or {}))
                if name in BASELINES:
                    value = validation_metric(model, stream, split, config.settings, config.metric)
                    validation.append({"split_seed": split_seed, "seed": seed, config.metric: value})
                if explanation is None and callable(getattr(model, "explain", None)):
                    try:  # an explanation is a figure of the report: never worth the model's result
                        explanation = iarn_explanation(model, dataset, stream)
                    except (ValueError, IndexError, RuntimeError) as error:
                        explanation = {"error": f"{type(error).__name__}: {error}"}
                del model
    aggregated = aggregate_runs(runs, n_resamples=config.settings.bootstrap_resamples, seed=config.seed)
    fit = sum(r.timing["fit_seconds"] for r in runs)
    evaluate = sum(r.timing["evaluate_seconds"] for r in runs)
    values = [v[config.metric] for v in validation if math.isfinite(v[config.metric])]
    return {
        "key": key,
        "record_id": uuid.uuid4().hex,  # ties the JSON to its .npz (another run may replace both)
        "configuration": described,
        "model": name,
        "result": aggregated,
        "runs": [r.to_dict() for r in runs],
        "validation": {
            "metric": config.metric,
            "value": float(np.mean(values)) if values else None,
            "runs": validation,
        }
        if name in BASELINES
        else None,
        "wall": {
            "fit_seconds": round(fit, 3),
            "evaluate_seconds": round(evaluate, 3),
            "total_seconds": round(time.perf_counter() - began, 3),
        },
        "memory": memory.describe(),
        "throughput": _throughput(runs, logs[0] if logs else {}),
        "training_log": logs[0] if logs else {},
        "explanation": explanation,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "code_fingerprint": code_fingerprint(),
        "_runs": runs,
    }


def best_baseline(records: dict[str, dict[str, Any]]) -> tuple[str | None, str]:
    """The baseline with the highest validation value of the primary metric (ties: the earlier one in
    BASELINES), and why (or why none)."""
    scored = [
        (records[b]["validation"]["value"], -i, b)
        for i, b in enumerate(BASELINES)
        if b in records and records[b].get("validation") and records[b]["validation"]["value"] is not None
    ]
    if not scored:
        ran = [b for b in BASELINES if b in records]
        why = "no baseline ran" if not ran else f"no validation query for {', '.join(ran)}"
        return None, why
    value, _, name = max(scored)
    metric = records[name]["validation"]["metric"]
    ranked = ", ".join(b for *_, b in sorted(scored, reverse=True))
    return name, f"the highest {metric} on the validation users ({value:.4f}) among {ranked}"


def assemble(
    output: storage.StrPath,
    models: Sequence[str],
    records: dict[str, dict[str, Any]],
    dataset: Dataset,
    config: BenchmarkConfig,
    *,
    latency: dict[str, Any] | None = None,
    columns: Sequence[str] = (),
    command: Sequence[str] = (),
) -> dict[str, Any]:
    """results.json's content from the models' records: the paired differences to the best baseline
    are computed here, from the stored per-query values, so resumed and fresh models mix freely.

    Args:
        output: the benchmark folder (the models' per-query arrays are read from it).
        models: the models of the run, in the report's order.
        records: per model its record (written by this run or read back).
        dataset: the data.
        config: the run's configuration.
        latency, columns, command: carried into the results (see `run_benchmark`).
    """
    reference, why = best_baseline(records)
    reference_runs = stored_runs(output, reference, records[reference]) if reference else None
    entries = []
    for name in models:
        record = records[name]
        entry = {
            "model": name,
            "baseline": name in BASELINES,
            **{
                k: record["result"].get(k)
                for k in ("metrics", "intervals", "metrics_std", "spread", "hparams")
                if k in record["result"]
            },
            "queries": record["result"]["evaluation"].get("queries"),
            "validation": record.get("validation"),
            "wall": record["wall"],
            "memory": record["memory"],
            "throughput": record["throughput"],
            "training_log": record.get("training_log") or {},
            "explanation": record.get("explanation"),
            "seeds": {
                "split": record["configuration"]["split_seeds"],
                "model": record["configuration"]["model_seeds"],
            },
            "key": record["key"],
            "finished": record.get("finished"),
        }
        if reference and name != reference and entry["queries"]:
            entry["versus"] = {
                "model": reference,
                "paired_difference": paired_comparison(
                    stored_runs(output, name, record),
                    reference_runs,
                    n_resamples=config.settings.bootstrap_resamples,
                    seed=config.seed,
                ),
            }
        entries.append(entry)
    first = records[models[0]]["result"]
    current = code_fingerprint()
    code = {
        "fingerprint": current,
        # read back from records of other code (they are reused: a code change does not invalidate)
        "other_code": [m for m in models if records[m].get("code_fingerprint") not in (None, current)],
        "unrecorded": [m for m in models if records[m].get("code_fingerprint") is None],
    }
    return {
        "benchmark": {
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": list(command),
            "dataset": {
                k: first["dataset"].get(k)
                for k in (
                    "name",
                    "layout",
                    "checksum",
                    "time_unit",
                    "interactions",
                    "rejected_rows",
                    "users",
                    "items",
                )
            },
            "protocol": first["protocol"],
            "evaluation": first["evaluation"],
            "configuration": config.describe(),
            "seeds": {
                "split": config.split_seeds(),
                "model": config.seed if config.model_seed is None else config.model_seed,
                "bootstrap": config.seed,
                "repeat": config.repeat,
            },
            "primary_metric": config.metric,
            "columns": list(columns),
            "best_baseline": {"model": reference, "chosen_by": why},
            "versions": _versions(),
            "code": code,
            "python_executable": sys.executable,
            "peak_memory": "per model: " + (records[models[0]]["memory"].get("method") or ""),
            "throughput": "fit_events_per_second: training events / fit seconds (the whole fit, every "
            "epoch and any held-out selection run); epoch_events_per_second: training events / the "
            "model's logged seconds per epoch",
        },
        "models": entries,
        "serving_latency": latency,
    }
