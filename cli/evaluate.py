"""`movierec evaluate` and `movierec train`: fit models on a protocol's training events, report
full-catalogue metrics, save a trained model."""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import click

from movierec.cli.common import (
    SEEDED_PROTOCOLS,
    check_cut_time,
    check_hparams,
    cut_time_option,
    data_options,
    echo_json,
    headline_metrics,
    hparams_for,
    known_hparams,
    load,
    parse_hparams,
    protocol_options,
    ranking_options,
    save_catalogue,
    save_stream,
    split_params,
    write_atomically,
)
from movierec.data.splits import PROTOCOLS
from movierec.evaluation.experiment import (
    DEFAULT_KS,
    ROLES,
    EvaluationSettings,
    aggregate_runs,
    paired_comparison,
    prepare,
    run_experiment,
)
from movierec.models import MODELS, save_model


def _cell(result: dict[str, Any], metric: str) -> str:
    if metric not in result["metrics"]:
        return f"{'':>13}"
    if metric in result.get("metrics_std", {}):
        return f"{result['metrics'][metric]:.4f}±{result['metrics_std'][metric]:.3f}".rjust(13)
    return f"{result['metrics'][metric]:13.4f}"


def _format_table(results: list[dict[str, Any]], ks: tuple[int, ...] = DEFAULT_KS) -> str:
    """The results' table: the columns (and the metrics with intervals below it) follow the cutoffs."""
    headline, detail = headline_metrics(ks)
    columns = [m for m in headline if any(m in r["metrics"] for r in results)]
    header = f"{'protocol':15} {'model':9} " + " ".join(f"{c:>13}" for c in columns)
    lines = [header, "-" * len(header)]
    for r in results:
        cells = [_cell(r, c) for c in columns]
        lines.append(f"{r['protocol']['protocol']:15} {r['model']:9} " + " ".join(cells))
    lines += ["", "95% user-bootstrap intervals; spreads over split seeds and model seeds (std):"]
    for r in results:
        for metric in detail:
            if metric not in r["metrics"]:
                continue
            low, high = r["intervals"].get(metric, (float("nan"),) * 2)
            spread = r.get("spread", {})
            spreads = "".join(
                f"  {label} ±{spread[key][metric]:.4f}"
                for key, label in (("split_seed", "split"), ("model_seed", "seed"))
                if metric in spread.get(key, {})
            )
            line = f"{r['protocol']['protocol']:15} {r['model']:9} {metric:12} {r['metrics'][metric]:.4f}"
            lines.append(f"{line} [{low:.4f}, {high:.4f}]{spreads}")
            paired = r.get("versus", {}).get("paired_difference", {}).get(metric)
            if paired:
                lines.append(
                    f"{'':25} {'− ' + r['versus']['model']:9} {paired['difference']:+.4f} "
                    f"[{paired['low']:+.4f}, {paired['high']:+.4f}]  p(≤0) {paired['p_not_greater']:.3f}"
                )
    return "\n".join(lines)


@click.command()
@data_options
@click.option(
    "--model",
    "models",
    multiple=True,
    required=True,
    type=click.Choice(list(MODELS)),
    help="Model to evaluate (repeat for several).",
)
@click.option(
    "--protocol",
    "protocols",
    multiple=True,
    default=("temporal", "leave-last-out"),
    show_default=True,
    type=click.Choice(sorted(PROTOCOLS)),
    help="Evaluation protocol (repeat for several; default both).",
)
@click.option(
    "--role",
    type=click.Choice(list(ROLES)),
    default="test",
    show_default=True,
    help="Which held-out events to evaluate on.",
)
@ranking_options
@click.option(
    "--set",
    "hparam_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Hyper-parameter for the model(s), e.g. --set epochs=5 (repeatable).",
)
@click.option(
    "--repeat",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Repeat over N split seeds (--seed … --seed+N-1: which users are validation/test users) × N "
    "model seeds (seeded models); report the mean, the split and the seed spreads apart.",
)
@click.option(
    "--versus",
    type=click.Choice(list(MODELS)),
    help="Reference model (also evaluated): report every other model's paired difference to it, with a "
    "paired user-bootstrap interval.",
)
@click.option(
    "--bootstrap", default=1000, show_default=True, help="Bootstrap resamples for the 95% intervals."
)
@protocol_options
@cut_time_option
@click.option(
    "--output", type=click.Path(path_type=Path), help="Also write the results as JSON to this file."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def evaluate(
    data,
    data_dir,
    strict,
    models,
    protocols,
    role,
    query_mode,
    keep_seen,
    positive_rating,
    ks,
    hparam_pairs,
    bootstrap,
    session_gap,
    seed,
    test_fraction,
    cut_time,
    output,
    as_json,
    repeat,
    versus,
) -> None:
    """Fit each model on the training events and report full-catalogue metrics."""
    check_cut_time(click.get_current_context(), cut_time, protocols)
    if positive_rating is not None and not math.isfinite(positive_rating):
        raise click.BadParameter(
            f"must be a finite number, got {positive_rating}", param_hint="--positive-rating"
        )
    hparams = parse_hparams(hparam_pairs)
    check_hparams((*models, versus) if versus else models, hparams)
    dataset = load(data, data_dir, strict)
    settings = EvaluationSettings(
        role=role,
        query_mode=query_mode,
        exclude_seen=not keep_seen,
        ks=ks,
        min_relevant_rating=positive_rating,
        bootstrap_resamples=bootstrap,
        seed=seed,
    )
    if versus and versus not in models:
        models = (*models, versus)
    results = []
    for protocol in protocols:
        # leave-last-out and given-split have no random part: one split whatever --repeat says
        split_seeds = [seed + r for r in range(repeat)] if protocol in SEEDED_PROTOCOLS else [seed]
        runs: dict[str, list] = {name: [] for name in models}
        for split_seed in split_seeds:
            split, stream = _prepare(
                dataset, protocol, session_gap, split_params(protocol, test_fraction, split_seed, cut_time)
            )
            for name in models:
                click.echo(
                    f"{protocol} (split seed {split_seed}): fitting {name} on "
                    f"{len(stream.training_data().sequences.items)} events",
                    err=True,
                )
                seeded = "seed" in known_hparams(name) and "seed" not in hparams
                runs[name].extend(
                    run_experiment(
                        dataset,
                        name,
                        split=split,
                        stream=stream,
                        hparams=hparams_for(name, hparams, seed + r),
                        settings=settings,
                    )[1]
                    for r in range(repeat if seeded else 1)
                )
        for name in models:
            result = aggregate_runs(runs[name], n_resamples=bootstrap, seed=seed)
            if versus and name != versus:
                result["versus"] = {
                    "model": versus,
                    "paired_difference": paired_comparison(
                        runs[name], runs[versus], n_resamples=bootstrap, seed=seed
                    ),
                }
            results.append(result)
    if output:
        write_atomically(output, json.dumps(results, indent=2))
    if as_json:
        echo_json(results)
    else:
        click.echo(_format_table(results, ks))


def _prepare(dataset, protocol: str, session_gap: int, params: dict[str, Any]):
    """`prepare`, with a split the data cannot give (e.g. a cut time outside the data) as a clear error."""
    try:
        return prepare(dataset, protocol, session_gap, **params)
    except ValueError as error:
        raise click.ClickException(f"{protocol}: {error}") from error


@click.command()
@data_options
@click.option("--model", "model_name", required=True, type=click.Choice(list(MODELS)), help="Model to train.")
@click.option(
    "--protocol",
    default="temporal",
    show_default=True,
    type=click.Choice(sorted(PROTOCOLS)),
    help="Evaluation protocol; the model trains on its training events.",
)
@click.option(
    "--set", "hparam_pairs", multiple=True, metavar="KEY=VALUE", help="Hyper-parameter (repeatable)."
)
@protocol_options
@cut_time_option
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="Folder for the trained model (replaced only once training and validation succeed).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the validation result as JSON.")
def train(
    data,
    data_dir,
    strict,
    model_name,
    protocol,
    hparam_pairs,
    session_gap,
    seed,
    test_fraction,
    cut_time,
    output,
    as_json,
) -> None:
    """Train a model, report its validation metrics and save it for `movierec recommend`."""
    check_cut_time(click.get_current_context(), cut_time, (protocol,))
    hparams = parse_hparams(hparam_pairs)
    check_hparams((model_name,), hparams)
    dataset = load(data, data_dir, strict)
    split, stream = _prepare(
        dataset, protocol, session_gap, split_params(protocol, test_fraction, seed, cut_time)
    )
    model, result = run_experiment(
        dataset,
        model_name,
        split=split,
        stream=stream,
        hparams=hparams_for(model_name, hparams, seed),
        settings=EvaluationSettings(role="validation", seed=seed),
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        save_model(model, staging)
        save_stream(stream, staging)
        save_catalogue(dataset, stream, staging)
        (staging / "result.json").write_text(json.dumps(result.to_dict(), indent=2))
        if output.exists():
            shutil.rmtree(output)
        staging.rename(output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if as_json:
        echo_json(result.to_dict())
    else:
        click.echo(_format_table([result.to_dict()]))
        click.echo(f"saved to {output}")
