"""`movierec benchmark`: every model (or `--model` ones) on one dataset under one protocol, written as
results.json and a self-contained report.html (movierec.evaluation.benchmark and .report); an
interrupted run, started again, reads the finished models back."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import click

from movierec import storage
from movierec.cli.common import (
    check_cut_time,
    check_hparams,
    cut_time_option,
    data_options,
    headline_metrics,
    known_hparams,
    load,
    parse_hparams,
    protocol_options,
    ranking_options,
)
from movierec.constants import DEFAULT_METRIC
from movierec.data.splits import PROTOCOLS
from movierec.evaluation.benchmark import (
    MODELS_DIR,
    REPORT_FILE,
    RESULTS_FILE,
    BenchmarkConfig,
    Progress,
    SplitError,
    resolved_hparams,
    run_benchmark,
)
from movierec.evaluation.experiment import EvaluationSettings
from movierec.evaluation.report import markdown_table, metric_name, model_name, render_report
from movierec.models import MODELS


class ClickProgress(Progress):
    """A line when a model starts and one when it ends (or is read back), and a bar over each run's
    evaluation queries, all on stderr."""

    def __init__(self, metric: str) -> None:
        self.metric = metric
        self.bar = None

    def model_started(self, name: str, index: int, total: int, training_events: int, runs: int) -> None:
        click.echo(
            f"[{index}/{total}] {name}: fitting on {training_events:,} training events"
            + (f" ({runs} runs)" if runs > 1 else ""),
            err=True,
        )

    def evaluating(self, name: str, step: int, total: int) -> None:
        if self.bar is None:
            self.bar = click.progressbar(length=total, label=f"        {name}: evaluating", file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(step)
        if self.bar.pos >= self.bar.length:
            self.bar.__exit__(None, None, None)
            self.bar = None

    def model_finished(self, name: str, record: dict[str, Any]) -> None:
        result, wall = record["result"], record["wall"]
        value = result["metrics"].get(self.metric)
        low, high = result["intervals"].get(self.metric, (None, None))
        shown = (
            f"{metric_name(self.metric)} {value:.4f} [{low:.4f}, {high:.4f}]"
            if value is not None and low is not None and not math.isnan(value)
            else f"{metric_name(self.metric)}: no query"
        )
        peak = record["memory"].get("peak_rss_mb")
        click.echo(
            f"        {name}: {shown}; fit {wall['fit_seconds']:.1f} s, "
            f"evaluate {wall['evaluate_seconds']:.1f} s"
            + (f", peak RSS {peak:.0f} MB" if peak is not None else "")
            + f" → {MODELS_DIR}/{name}.json",
            err=True,
        )

    def model_reused(self, name: str, index: int, total: int, record: dict[str, Any]) -> None:
        click.echo(
            f"[{index}/{total}] {name}: finished earlier with this configuration ({MODELS_DIR}/{name}.json, "
            f"{record.get('finished', '')}): skipped",
            err=True,
        )

    def model_stale(self, name: str, index: int, total: int, changed: list[str]) -> None:
        click.echo(
            f"[{index}/{total}] {name}: the stored result is of another configuration "
            f"({', '.join(changed) or 'format'} changed): training again",
            err=True,
        )


def split_hparams(pairs: tuple[str, ...], models: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """`--set KEY=VALUE` (every selected model that declares KEY) and `--set MODEL.KEY=VALUE` (that model
    only) → per model its hyper-parameters, each checked against the model's declaration."""
    parsed = parse_hparams(pairs)
    shared = {k: v for k, v in parsed.items() if k.partition(".")[0] not in MODELS}
    check_hparams(models, shared)
    per_model: dict[str, dict[str, Any]] = {name: {} for name in models}
    for key, value in parsed.items():
        prefix, dot, rest = key.partition(".")
        if dot and prefix in MODELS:
            if prefix not in models:
                raise click.BadParameter(
                    f"{key}: {prefix} is not among the models of this run ({', '.join(models)})",
                    param_hint="--set",
                )
            per_model[prefix][rest] = value
    for name in models:
        known = known_hparams(name)
        scoped = per_model[name]
        unknown = sorted(set(scoped) - known)
        if unknown:
            raise click.BadParameter(
                f"{name} takes no {', '.join(unknown)} (it takes {', '.join(sorted(known)) or 'none'}; "
                f"`movierec models {name}` lists them)",
                param_hint="--set",
            )
        per_model[name] = {**{k: v for k, v in shared.items() if k in known}, **scoped}
        try:
            resolved_hparams(name, per_model[name], None)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--set") from error
    return per_model


def read_latency(path: str | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        latency = json.loads(storage.read_text(path))
    except (OSError, ValueError) as error:
        raise click.BadParameter(f"cannot read {path} as JSON: {error}", param_hint="--latency") from error
    if not isinstance(latency, dict) or not isinstance(latency.get("results"), list):
        raise click.BadParameter(
            f"{path} is not benchmarks/serving_latency.py's JSON (no 'results' list)", param_hint="--latency"
        )
    return latency


@click.command()
@data_options
@click.option(
    "--model",
    "models",
    multiple=True,
    type=click.Choice(list(MODELS)),
    help="Model to run (repeat for several; default: every registered model and baseline, in the "
    "registry's order).",
)
@click.option(
    "--protocol",
    default="temporal",
    show_default=True,
    type=click.Choice(sorted(PROTOCOLS)),
    help="Evaluation protocol.",
)
@ranking_options
@click.option(
    "--metric",
    metavar="NAME",
    help=f"Primary ranking metric: picks the best baseline on the validation users and heads the table "
    f"(default {DEFAULT_METRIC}, or map when 20 is not a cutoff).",
)
@click.option(
    "--set",
    "hparam_pairs",
    multiple=True,
    metavar="[MODEL.]KEY=VALUE",
    help="Hyper-parameter: KEY=VALUE for every model that takes it, MODEL.KEY=VALUE for one "
    "(e.g. --set gru4rec.epochs=3); repeatable.",
)
@protocol_options
@cut_time_option
@click.option(
    "--model-seed",
    type=int,
    help="First seed of the seeded models (default: --seed, which also seeds the split and the bootstrap).",
)
@click.option(
    "--repeat",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="N split seeds (--seed …) × N model seeds (--model-seed …, seeded models); the mean and both "
    "spreads.",
)
@click.option(
    "--bootstrap",
    default=1000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Bootstrap resamples for the 95% intervals.",
)
@click.option(
    "--latency",
    metavar="FILE",
    help="A serving-latency JSON (benchmarks/serving_latency.py --output) to show in the report.",
)
@click.option(
    "--output",
    required=True,
    metavar="DIR",
    help=f"Folder (or URI) for {RESULTS_FILE}, {REPORT_FILE} and {MODELS_DIR}/<model>.json|npz (a "
    "finished model there with the same configuration is not trained again).",
)
def benchmark(
    data,
    data_dir,
    strict,
    models,
    protocol,
    query_mode,
    keep_seen,
    positive_rating,
    ks,
    metric,
    hparam_pairs,
    session_gap,
    seed,
    test_fraction,
    cut_time,
    model_seed,
    repeat,
    bootstrap,
    latency,
    output,
) -> None:
    """Train and evaluate every model (or the --model ones) on one dataset under one protocol; write
    results.json (metrics with intervals, paired differences to the best baseline, times, memory,
    throughput) and report.html, and print the results table."""
    check_cut_time(click.get_current_context(), cut_time, (protocol,))
    if positive_rating is not None and not math.isfinite(positive_rating):
        raise click.BadParameter(
            f"must be a finite number, got {positive_rating}", param_hint="--positive-rating"
        )
    models = tuple(dict.fromkeys(models)) or tuple(MODELS)
    hparams = split_hparams(hparam_pairs, models)
    settings = EvaluationSettings(
        role="test",
        query_mode=query_mode,
        exclude_seen=not keep_seen,
        ks=ks,
        min_relevant_rating=positive_rating,
        bootstrap_resamples=bootstrap,
        seed=seed,
    )
    if metric is None:
        metric = DEFAULT_METRIC if 20 in ks else "map"
    try:
        config = BenchmarkConfig(
            protocol=protocol,
            test_fraction=test_fraction,
            cut_time=cut_time,
            session_gap=session_gap,
            seed=seed,
            model_seed=model_seed,
            repeat=repeat,
            settings=settings,
            metric=metric,
        )
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--metric") from error
    latency_payload = read_latency(latency)
    dataset = load(data, data_dir, strict)
    click.echo(
        f"benchmark: {len(models)} models on {dataset.name} ({len(dataset.interactions):,} ratings), "
        f"{protocol} protocol → {output}",
        err=True,
    )
    try:
        results = run_benchmark(
            dataset,
            models,
            output,
            config,
            hparams=hparams,
            latency=latency_payload,
            columns=headline_metrics(ks)[0],
            command=["movierec", "benchmark", *sys.argv[2:]] if sys.argv[1:2] == ["benchmark"] else [],
            progress=ClickProgress(metric),
            render=render_report,
        )
    except SplitError as error:
        raise click.ClickException(str(error)) from error
    click.echo(markdown_table(results))
    reference = results["benchmark"]["best_baseline"]
    best = model_name(reference["model"]) if reference["model"] else "none"
    click.echo(f"best baseline: {best} ({reference['chosen_by']})", err=True)
    click.echo(
        f"wrote {storage.join(output, RESULTS_FILE)} and {storage.join(output, REPORT_FILE)}", err=True
    )
