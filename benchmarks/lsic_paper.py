"""LSIC on its paper's ML-100K protocol: the variants against BPR-MF and RRN in one table, G's and D's
learning curves (the paper's figure 3) and the candidate-count sweep (figure 4).

Protocol (Zhao et al. §4.1, Table 2): train before 1998-03-01, evaluate from it on; the evaluation
period's users split at random (seeded) into validation and test users; users and movies unknown in
training removed; one ranked list per user over the full catalogue minus the user's training movies;
relevant = the period's ratings >= 4 (lower ones stay candidates); P@3/5/10, NDCG@3/5/10, MRR, MAP with
95% user-bootstrap intervals. Defaults are never tuned on test users; the N sweep reads validation
users only.

No real posters can be downloaded here: the poster-fed variants read generated vectors (seeded random,
2,048-d, one per movie) — they test the plumbing and carry no information, so "w/o poster" against
them measures the cost of a useless input, not the value of posters.

    scripts/run python benchmarks/lsic_paper.py --data ../shared/data/ml-100k --output runs/lsic-paper \
        --set pretrain_epochs=3 --set epochs=3 --set holdout_fraction=0

(the README's table: 3 + 3 epochs and no held-out selection for every row but the last, which picks its
adversarial epoch on the held-out training tail; about 35 minutes on 2 cores).

Writes `<output>/<variant>.json` (a finished variant is skipped when the command runs again),
`table.md`, `results.json`, `curves.png` and `candidates.md`/`candidates.png`.
"""

from __future__ import annotations

import calendar
import dataclasses
import json
import os
import time

import click

from movierec import storage
from movierec.constants import VALIDATION
from movierec.data import load_dataset, resolve_dataset
from movierec.data.stream import build_queries
from movierec.evaluation.experiment import EvaluationSettings, evaluate_ranking, prepare, run_experiment
from movierec.models.lsic.curves import plot_curves
from movierec.models.lsic.posters import generated_vectors, save_vectors

CUT = calendar.timegm((1998, 3, 1, 0, 0, 0))
KS = (3, 5, 10)
COLUMNS = ("precision@3", "precision@5", "precision@10", "ndcg@3", "ndcg@5", "ndcg@10", "mrr", "map")
CURVES = "lsic-v4 selected"
PAPER = {
    "lsic-v4": 0.3173,
    "bpr-mf": 0.2664,
    "rrn": 0.2740,
    "lsic-v3": 0.3023,
    "lsic-v2": 0.2843,
    "lsic-v1": 0.2713,
}


def variants(posters: str) -> dict[str, tuple[str, dict]]:
    return {
        "bpr-mf": ("bpr-mf", {"min_rating": 4.0}),
        "rrn": ("rrn", {}),
        "lsic-v1": ("lsic", {"mixture": "v1", "poster_file": posters}),
        "lsic-v2": ("lsic", {"mixture": "v2", "poster_file": posters}),
        "lsic-v3": ("lsic", {"mixture": "v3", "poster_file": posters}),
        "lsic-v4": ("lsic", {"mixture": "v4", "poster_file": posters}),
        "lsic-v4 w/o RL": ("lsic", {"mixture": "v4", "poster_file": posters, "generator_training": "gumbel"}),
        "lsic-v4 w/o poster": ("lsic", {"mixture": "v4", "poster": False}),
        # the same V4 with its best adversarial epoch picked on the held-out latest 10% of the training
        # events (then a refit): the learning curves (figure 3) and the N sweep (figure 4) come from it
        CURVES: ("lsic", {"mixture": "v4", "poster_file": posters}),
    }


def settings(role: str) -> EvaluationSettings:
    return EvaluationSettings(role=role, query_mode="user", ks=KS, min_relevant_rating=4.0)


def sweep(model, stream, path_md: str, path_png: str) -> list[dict]:
    """Validation users' metrics of one trained LSIC for N candidates re-ranked by G."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    queries = build_queries(stream, VALIDATION, "user", min_relevant_rating=4.0)
    rows, original = [], model.config
    for n in (5, 10, 20, 50, 100, 200, 500, 0):
        model.config = dataclasses.replace(original, candidates=n)
        result = evaluate_ranking(model, stream, queries, settings("validation")).result()
        rows.append({"candidates": n or "all", **{k: result[k] for k in ("precision@5", "ndcg@5", "map")}})
    model.config = original
    lines = ["| N | P@5 | NDCG@5 | MAP |", "| --- | --- | --- | --- |"]
    lines += [
        f"| {r['candidates']} | {r['precision@5']:.4f} | {r['ndcg@5']:.4f} | {r['map']:.4f} |" for r in rows
    ]
    storage.write_text(path_md, "\n".join(lines) + "\n")
    figure, axis = plt.subplots(figsize=(5, 3.5))
    labels = [str(r["candidates"]) for r in rows]
    for metric in ("precision@5", "ndcg@5"):
        axis.plot(labels, [r[metric] for r in rows], marker="o", label=metric)
    axis.set_xlabel("N (MF candidates re-ranked by G; all = G ranks the catalogue)")
    axis.set_title("validation users")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path_png, dpi=100)
    return rows


def table(results: dict[str, dict]) -> str:
    head = "| model | " + " | ".join(COLUMNS) + " | P@5 95% interval | fit s | paper P@5 |"
    lines = [head, "|" + " --- |" * (len(COLUMNS) + 4)]
    for name, r in results.items():
        cells = " | ".join(f"{r['metrics'][c]:.4f}" for c in COLUMNS)
        low, high = r["intervals"]["precision@5"]
        paper = PAPER.get(name)
        lines.append(
            f"| {name} | {cells} | [{low:.4f}, {high:.4f}] | {r['timing']['fit_seconds']:.0f} | "
            f"{'' if paper is None else f'{paper:.4f}'} |"
        )
    return "\n".join(lines) + "\n"


@click.command()
@click.option("--data", required=True, help="ML-100K folder (or dataset name).")
@click.option("--output", default="runs/lsic-paper", show_default=True)
@click.option("--seed", default=0, show_default=True, help="Split and model seed.")
@click.option("--only", multiple=True, help="Run only these variants (repeatable).")
@click.option("--set", "overrides", multiple=True, help="KEY=VALUE for every LSIC variant (e.g. epochs=3).")
def main(data: str, output: str, seed: int, only: tuple[str, ...], overrides: tuple[str, ...]) -> None:
    from movierec.cli.common import parse_hparams

    storage.makedirs(output)
    dataset = load_dataset(resolve_dataset(data))
    split, stream = prepare(dataset, "temporal", cut_time=CUT, seed=seed)
    posters = os.path.join(output, "generated_posters.npz")
    if not storage.exists(posters):
        save_vectors(posters, stream.item_ids, generated_vectors(stream.item_ids, seed=seed))
    extra = parse_hparams(overrides)
    results = {}
    for name, (model_name, hparams) in variants(posters).items():
        if only and name not in only:
            continue
        path = os.path.join(output, name.replace(" ", "_").replace("/", "") + ".json")
        if storage.exists(path):
            results[name] = json.loads(storage.read_text(path))
            continue
        hparams = {**hparams, **(extra if model_name == "lsic" else {}), "seed": seed}
        if name == CURVES:
            hparams["holdout_fraction"] = 0.1
        started = time.perf_counter()
        click.echo(f"{name}: fitting", err=True)
        model, result = run_experiment(
            dataset, model_name, split=split, stream=stream, hparams=hparams, settings=settings("test")
        )
        record = {**result.to_dict(), "wall_seconds": time.perf_counter() - started}
        if model_name == "lsic":
            record["training_log"] = model.training_log
            if name == CURVES:
                plot_curves(model.training_log, os.path.join(output, "curves.png"))
                record["candidates_sweep"] = sweep(
                    model,
                    stream,
                    os.path.join(output, "candidates.md"),
                    os.path.join(output, "candidates.png"),
                )
        storage.write_text(path, json.dumps(record, indent=1, default=str))
        results[name] = record
        click.echo(table({name: record}), err=True)
    storage.write_text(os.path.join(output, "table.md"), table(results))
    storage.write_text(os.path.join(output, "results.json"), json.dumps(results, indent=1, default=str))
    click.echo(table(results))


if __name__ == "__main__":
    main()
