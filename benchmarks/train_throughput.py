"""Training throughput (training events per second of fit) and evaluation speed per model.

    scripts/run python benchmarks/train_throughput.py --data ../shared/data/ml-100k --model gru4rec

Speed targets live here, not in unit tests: numbers depend on the machine and on what else runs.
"""

from __future__ import annotations

import json

import click

from movierec.constants import DEFAULT_METRIC
from movierec.data import load_dataset, resolve_dataset
from movierec.evaluation.experiment import EvaluationSettings, prepare, run_experiment
from movierec.models import MODELS


@click.command()
@click.option("--data", required=True, help="Dataset name or folder.")
@click.option("--model", "models", multiple=True, required=True, type=click.Choice(list(MODELS)))
@click.option("--seed", default=0, show_default=True)
def main(data: str, models: tuple[str, ...], seed: int) -> None:
    dataset = load_dataset(resolve_dataset(data))
    split, stream = prepare(dataset, "temporal", seed=seed)
    for name in models:
        model, result = run_experiment(
            dataset,
            name,
            split=split,
            stream=stream,
            hparams={"seed": seed} if "seed" in MODELS[name].factory().get_config() else {},
            settings=EvaluationSettings(bootstrap_resamples=10, seed=seed),
        )
        timing = result.timing
        log = getattr(model, "training_log", {})
        row = {
            "model": name,
            "training_events": timing["training_events"],
            "fit_seconds": timing["fit_seconds"],
            "training_events_per_second": round(timing["training_events"] / timing["fit_seconds"], 1),
            "epochs": result.hparams.get("epochs"),
            "targets_per_second_per_epoch": round(log["events_per_second"], 1) if log else None,
            "evaluate_seconds": timing["evaluate_seconds"],
            "queries": result.evaluation["queries"],
            DEFAULT_METRIC: round(result.metrics[DEFAULT_METRIC], 4),
        }
        click.echo(json.dumps(row))


if __name__ == "__main__":
    main()
