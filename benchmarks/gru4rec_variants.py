"""GRU4Rec training variants side by side: each fitted once per model seed on the temporal protocol's
training events, then scored on the validation users (where variants are chosen) and on the test
users (reported only), with seconds per epoch and training targets per second.

    scripts/run python benchmarks/gru4rec_variants.py --data ../shared/data/ml-100k \
        --variant before='{"loss_normalization": "active", "epoch_tail": "drop"}' \
        --variant after='{}' --seeds 0,1,2 --output runs/gru4rec_variants.json

A variant is NAME=JSON: hyper-parameters over GRU4Rec's defaults (`--base JSON` is applied to every
variant first, e.g. the BPR-max configuration). Prints one JSON line per (variant, seed), then per
variant the mean and spread over seeds, and writes all rows to `--output`.
"""

from __future__ import annotations

import json
from typing import Any

import click
import numpy as np

from movierec.data import load_dataset, resolve_dataset
from movierec.data.splits import TEST, VALIDATION
from movierec.data.stream import build_queries
from movierec.evaluation.experiment import EvaluationSettings, evaluate_ranking, prepare
from movierec.models.gru4rec import GRU4RecRecommender

METRICS = ("recall@20", "mrr@20")


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    name, _, hparams = text.partition("=")
    if not name or not hparams:
        raise click.BadParameter(f"expected NAME=JSON, got {text!r}", param_hint="--variant")
    return name, json.loads(hparams)


@click.command()
@click.option("--data", required=True, help="Dataset name or folder.")
@click.option("--variant", "variants", multiple=True, required=True, help="NAME=JSON hyper-parameters.")
@click.option("--base", default="{}", show_default=True, help="JSON hyper-parameters of every variant.")
@click.option("--seeds", default="0,1,2", show_default=True, help="Model seeds (the split stays seed 0).")
@click.option("--output", default=None, help="Write every row here as JSON.")
def main(data: str, variants: tuple[str, ...], base: str, seeds: str, output: str | None) -> None:
    dataset = load_dataset(resolve_dataset(data))
    _, stream = prepare(dataset, "temporal", seed=0)
    training = stream.training_data()
    roles = {"validation": VALIDATION, "test": TEST}
    queries = {name: build_queries(stream, role, "next-item") for name, role in roles.items()}
    rows = []
    for name, hparams in map(parse_variant, variants):
        for seed in (int(s) for s in seeds.split(",")):
            model = GRU4RecRecommender(**{**json.loads(base), **hparams, "seed": seed}).fit(training)
            log = model.training_log
            row: dict[str, Any] = {
                "variant": name,
                "seed": seed,
                "seconds_per_epoch": round(log["seconds"] / max(model.config.epochs, 1), 2),
                "targets_per_second": round(log["events_per_second"], 1),
            }
            for role, role_queries in queries.items():
                settings = EvaluationSettings(role=role)
                metrics = evaluate_ranking(model, stream, role_queries, settings).result()
                row.update({f"{role} {m}": round(float(metrics[m]), 4) for m in METRICS})
            rows.append(row)
            click.echo(json.dumps(row))
    for name in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == name]
        summary = {
            key: f"{np.mean([r[key] for r in mine]):.4f} ± {np.std([r[key] for r in mine]):.4f}"
            for key in mine[0]
            if key not in ("variant", "seed")
        }
        click.echo(json.dumps({"variant": name, "seeds": len(mine), **summary}))
    if output:
        import tensorflow as tf

        with tf.io.gfile.GFile(output, "w") as f:
            f.write(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
