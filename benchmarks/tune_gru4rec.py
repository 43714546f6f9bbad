"""Seeded random search over GRU4Rec hyper-parameters, scored on validation users only.

    scripts/run python benchmarks/tune_gru4rec.py --data ../shared/data/ml-100k --trials 20
    scripts/run python benchmarks/tune_gru4rec.py --data ml-100k --trials 1 --set epochs=1   # smoke test

Every trial trains GRU4Rec on the temporal protocol's training events and is evaluated, through the
same `movierec.evaluation.experiment` path as the CLI, on the validation users (`EvaluationSettings(role=
"validation")`). The test users are never evaluated, so choosing defaults here leaves the test numbers
of the README unbiased. Trial 0 is `GRU4RecRecommender.defaults()` itself, so the table shows where the
defaults rank; the others draw each searched hyper-parameter uniformly from `SPACE` (seeded by
`--seed`, duplicates redrawn). `--set KEY=VALUE` fixes a hyper-parameter for every trial (e.g.
`epochs=1`; a fixed key is no longer searched).

Prints one line per finished trial, then the trials ranked by `--metric` with its 95% user-bootstrap
interval, and writes everything (space, fixed values, split, per-trial hyper-parameters, metrics,
intervals, timings, versions) to `--output` as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import numpy as np

from movierec.cli.common import parse_hparams
from movierec.constants import DEFAULT_METRIC
from movierec.data import load_dataset, resolve_dataset
from movierec.evaluation.experiment import EvaluationSettings, prepare, run_experiment
from movierec.models.gru4rec import GRU4RecRecommender

# The searched values: the losses of both papers, how many extra negatives and from which
# distribution (2018, §3.1), tied input/output item vectors, and the two settings that most change
# how fast and how far Adagrad fits.
SPACE: dict[str, list[Any]] = {
    "loss": ["cross-entropy", "bpr-max", "top1", "bpr"],
    "n_sample": [0, 128, 512, 2048],
    "sample_alpha": [0.0, 0.5, 1.0],
    "constrained_embedding": [True, False],
    "dropout_hidden": [0.0, 0.1, 0.3, 0.5],
    "learning_rate": [0.02, 0.05, 0.1],
}
SHOWN_METRICS = ("recall@20", "mrr@20", "ndcg@10")


def parse_fixed(pairs: tuple[str, ...]) -> dict[str, Any]:
    """`--set KEY=VALUE` pairs (VALUE as JSON where it parses, else a string), checked against
    GRU4Rec's hyper-parameters so a typo fails before hours of training."""
    fixed = parse_hparams(pairs)
    unknown = sorted(set(fixed) - set(GRU4RecRecommender.defaults()))
    if unknown:
        raise click.BadParameter(f"gru4rec has no hyper-parameter {unknown[0]!r}", param_hint="--set")
    return fixed


def draw_trials(n_trials: int, fixed: dict[str, Any], seed: int) -> list[dict[str, Any]]:
    """The searched hyper-parameters of each trial: trial 0 the defaults, then distinct random draws
    (fewer than `n_trials` only when the space has fewer distinct points)."""
    defaults = GRU4RecRecommender.defaults()
    searched = [name for name in SPACE if name not in fixed]
    trials = [{name: defaults[name] for name in searched}]
    rng = np.random.default_rng(seed)
    size = int(np.prod([len(SPACE[name]) for name in searched]))
    attempts = 0
    while len(trials) < min(n_trials, size) and attempts < 100 * n_trials:
        attempts += 1
        # indices, not rng.choice over the values: the trial keeps SPACE's own (JSON-able) Python values
        trial = {name: SPACE[name][int(rng.integers(len(SPACE[name])))] for name in searched}
        if trial not in trials:
            trials.append(trial)
    return trials[:n_trials]


def format_table(rows: list[dict[str, Any]], metric: str) -> str:
    searched = list(rows[0]["searched"]) if rows else []
    metrics = list(dict.fromkeys([metric, *SHOWN_METRICS]))  # the ranking metric first, once
    table = [["rank", "trial", *searched, *metrics, f"{metric} 95%", "fit s"]]
    ranked = sorted(rows, key=lambda r: r["metrics"][metric], reverse=True)
    for rank, row in enumerate(ranked, 1):
        low, high = row["intervals"][metric]
        cells = [str(rank), str(row["trial"]), *(str(row["searched"][name]) for name in searched)]
        cells += [f"{row['metrics'][m]:.4f}" for m in metrics]
        cells += [f"[{low:.4f}, {high:.4f}]", f"{row['fit_seconds']:.0f}"]
        table.append(cells)
    widths = [max(len(line[column]) for line in table) for column in range(len(table[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in table
    )


@click.command()
@click.option("--data", required=True, help="Dataset name or folder.")
@click.option("--trials", default=20, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=0, show_default=True, help="Seeds the draws and every model.")
@click.option("--split-seed", default=0, show_default=True, help="Which users are validation users.")
@click.option("--metric", default=DEFAULT_METRIC, show_default=True, help="Validation metric that ranks.")
@click.option("--bootstrap", default=200, show_default=True, help="User-bootstrap resamples per trial.")
@click.option("--set", "pairs", multiple=True, metavar="KEY=VALUE", help="Fix a hyper-parameter.")
@click.option(
    "--output",
    default=Path("runs/tune_gru4rec.json"),
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
)
def main(
    data: str,
    trials: int,
    seed: int,
    split_seed: int,
    metric: str,
    bootstrap: int,
    pairs: tuple[str, ...],
    output: Path,
) -> None:
    fixed = parse_fixed(pairs)
    dataset = load_dataset(resolve_dataset(data))
    split, stream = prepare(dataset, "temporal", seed=split_seed)
    settings = EvaluationSettings(role="validation", bootstrap_resamples=bootstrap, seed=seed)
    rows: list[dict[str, Any]] = []
    for number, searched in enumerate(draw_trials(trials, fixed, seed)):
        hparams = {"seed": seed, **searched, **fixed}
        _, result = run_experiment(
            dataset, "gru4rec", split=split, stream=stream, hparams=hparams, settings=settings
        )
        if result.evaluation["role"] != "validation":  # the whole point: never select on test users
            raise RuntimeError(f"trial {number} was evaluated on {result.evaluation['role']} users")
        if metric not in result.metrics:
            raise click.BadParameter(f"no metric {metric!r}; choose one of {sorted(result.metrics)}")
        row = {
            "trial": number,
            "searched": searched,
            "hparams": result.hparams,
            "metrics": result.metrics,
            "intervals": result.intervals,
            "fit_seconds": result.timing["fit_seconds"],
            "queries": result.evaluation["queries"],
        }
        rows.append(row)
        click.echo(
            f"trial {number}: {metric} {result.metrics[metric]:.4f} "
            f"({row['fit_seconds']:.0f} s) {json.dumps(searched)}",
            err=True,
        )
    click.echo(format_table(rows, metric))
    best = max(rows, key=lambda r: r["metrics"][metric])
    report = {
        "data": data,
        "dataset": result.dataset,
        "protocol": result.protocol,
        "evaluation": result.evaluation,
        "metric": metric,
        "seed": seed,
        "space": SPACE,
        "fixed": fixed,
        "best_trial": best["trial"],
        "trials": rows,
        "versions": result.versions,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2))
    click.echo(f"best: trial {best['trial']} {json.dumps(best['searched'])}; wrote {output}")


if __name__ == "__main__":
    main()
