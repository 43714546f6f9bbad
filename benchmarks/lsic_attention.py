"""What LSIC-V4's attention costs as the catalogue grows: exact attention over every movie's MF
factors against each movie's top-k MF neighbours (`attention_neighbours`).

One training step's scorer work (forward + backward) for 128 users against C movies (their candidates,
positives and negatives; 300 by default, about what an ML-100K batch needs), each LSTM reading a full
4-week window, at catalogue sizes M with synthetic weights and random windows; V3 (no attention) for
reference. Prints a table and writes JSON.

    scripts/run python benchmarks/lsic_attention.py --output runs/lsic_attention.json
"""

from __future__ import annotations

import json
import time

import click
import numpy as np
import tensorflow as tf

from movierec import storage
from movierec.models.lsic.network import LSICScorer


def window(rows: int, width: int, others: int, per_slot: int, rng: np.random.Generator) -> dict:
    slots = np.repeat(np.arange(rows * width), per_slot).astype(np.int32)
    return {
        "slots": slots,
        "others": rng.integers(0, others, len(slots)).astype(np.int32),
        "weights": rng.uniform(1, 5, len(slots)).astype(np.float32),
    }


def step_seconds(mixture: str, n_items: int, neighbours: int, movies: int, repeats: int) -> float:
    rng = np.random.default_rng(0)
    n_users = 1000
    scorer = LSICScorer(n_users, n_items, mixture, attention_neighbours=neighbours)
    scorer.set_mf(rng.normal(size=(n_users, 5)), rng.normal(size=(n_items, 5)), np.zeros(n_items))
    inputs = {
        "users": rng.integers(0, n_users, 128).astype(np.int32),
        "movies": np.sort(rng.choice(n_items, min(movies, n_items), replace=False)).astype(np.int32),
        "user_window": window(128, 4, n_items, 3, rng),
        "movie_window": window(min(movies, n_items), 4, n_users, 3, rng),
    }

    @tf.function(reduce_retracing=True)
    def step(inputs):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(scorer(inputs))
        return tape.gradient(loss, scorer.trainable_variables)

    step(inputs)
    started = time.perf_counter()
    for _ in range(repeats):
        step(inputs)
    return (time.perf_counter() - started) / repeats


@click.command()
@click.option("--sizes", default="1682,20000", show_default=True, help="Catalogue sizes M.")
@click.option("--neighbours", default=100, show_default=True, help="k of the top-k variant.")
@click.option("--movies", default=300, show_default=True, help="Movies a step scores (C).")
@click.option("--repeats", default=10, show_default=True)
@click.option("--output", default="runs/lsic_attention.json", show_default=True)
def main(sizes: str, neighbours: int, movies: int, repeats: int, output: str) -> None:
    rows = []
    for n_items in (int(s) for s in sizes.split(",")):
        row = {"catalogue": n_items}
        row["v3_ms"] = 1e3 * step_seconds("v3", n_items, 0, movies, repeats)
        row["v4_exact_ms"] = 1e3 * step_seconds("v4", n_items, 0, movies, repeats)
        row[f"v4_top{neighbours}_ms"] = 1e3 * step_seconds("v4", n_items, neighbours, movies, repeats)
        rows.append(row)
        click.echo(json.dumps(row))
    keys = list(rows[0])
    click.echo("| " + " | ".join(keys) + " |\n|" + " --- |" * len(keys))
    for row in rows:
        click.echo(
            "| "
            + " | ".join(f"{row[k]:.1f}" if isinstance(row[k], float) else str(row[k]) for k in keys)
            + " |"
        )
    storage.write_text(output, json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
