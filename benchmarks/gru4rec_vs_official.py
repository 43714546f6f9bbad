"""Our GRU4Rec against the authors' own implementation (hidasib/GRU4Rec_PyTorch_Official), trained on
the same training sessions with the same hyper-parameters, on this machine: seconds per epoch.

    git clone https://github.com/hidasib/GRU4Rec_PyTorch_Official /path/to/official
    python -m venv /path/to/torchenv && /path/to/torchenv/bin/pip install torch pandas
    scripts/run python benchmarks/gru4rec_vs_official.py --data ../shared/data/ml-100k \
        --official-dir /path/to/official --official-python /path/to/torchenv/bin/python \
        --output runs/gru4rec_vs_official.json

The authors' code is not part of this repository (its licence forbids reuse): it is run from its own
checkout, in its own Python with PyTorch (CPU here), in a subprocess. Both read the temporal
protocol's training sessions of `--data` — our `training_sessions` of the training stream (a user's
events split at pauses longer than the session gap, one-event sessions dropped), written as the
authors' SessionId/ItemId/Time table, Time the event's position so that both see the same order.
Per configuration (`CONFIGS`: our defaults, and the authors' BPR-max setting that
`train_throughput.py --roofline` measures) both train `--epochs` epochs; every session is run out
(ours `epoch_tail=keep`; the authors' loop does the same when it samples negatives), the step loss is
divided by the batch size in both, negatives are sampled uniformly (`sample_alpha` 0) in both. Our
seconds come from the fit's training log (the first epoch includes tracing the step and compiling
it), the authors' from its own per-epoch log lines; `speedup` compares the means over all epochs,
`speedup_after_first_epoch` the epochs after the first. `--repeats N` runs N pairs per
configuration, in alternating order, and reports the medians of both (`medians` in the JSON). The
results are speed only: the two draw different samples and the authors' iterator takes sessions in
time order where ours shuffles them. Both run with the process's environment: TensorFlow's thread
pools follow `TF_NUM_INTRAOP_THREADS` / `TF_NUM_INTEROP_THREADS`, PyTorch's `OMP_NUM_THREADS`
(each row records them; unset, each library takes a thread per core).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from typing import Any

import click
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # benchmarks/ holds scripts, not a package
from train_throughput import ROOFLINE_CONFIGS, tensorflow_threads

# our hyper-parameters per configuration (the roofline benchmark's); the authors' follow from them
CONFIGS: dict[str, dict[str, Any]] = ROOFLINE_CONFIGS

DRIVER = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
import pandas as pd
import torch
from gru4rec_pytorch import GRU4Rec
data = pd.read_csv(sys.argv[2], sep="\\t", dtype={"SessionId": "int64", "ItemId": "int64", "Time": "int64"})
model = GRU4Rec(device=torch.device("cpu"), **json.loads(sys.argv[3]))
# compatibility_mode=False: its NumPy initialisation makes float64 weights today's PyTorch refuses
model.fit(data, compatibility_mode=False)
"""
EPOCH_LINE = re.compile(r"^Epoch(\d+) --> loss: (\S+)\s+\(([\d.]+)s\)", re.M)


def official_params(config, epochs: int) -> dict[str, Any]:
    """The authors' GRU4Rec arguments for our `GRU4RecConfig`."""
    if config.n_layers != 1 or config.embedding_dim or not config.constrained_embedding:
        raise ValueError("the comparison covers one GRU layer with the tied (constrained) embedding")
    return {
        "layers": [config.hidden_size],
        "loss": config.loss,
        "batch_size": config.batch_size,
        "dropout_p_embed": config.dropout_input,
        "dropout_p_hidden": config.dropout_hidden,
        "learning_rate": config.learning_rate,
        "momentum": config.momentum,
        "sample_alpha": config.sample_alpha,
        "n_sample": config.n_sample,
        "constrained_embedding": True,
        "n_epochs": epochs,
        "bpreg": config.bpreg,
        "elu_param": config.elu_param,
        "logq": config.logq,
    }


def session_table(items: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> str:
    """The training sessions as the authors' tab-separated SessionId, ItemId, Time table."""
    rows = ["SessionId\tItemId\tTime"]
    position = 0
    for session, (start, length) in enumerate(zip(starts.tolist(), lengths.tolist(), strict=True)):
        for item in items[start : start + length].tolist():
            rows.append(f"{session}\t{item}\t{position}")
            position += 1
    return "\n".join(rows) + "\n"


def run_official(official_dir: str, python: str, table: str, params: dict[str, Any]) -> list[float]:
    """Trains the authors' GRU4Rec in a subprocess; its seconds per epoch."""
    done = subprocess.run(
        [python, "-c", DRIVER, official_dir, table, json.dumps(params)], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise click.ClickException(f"the official GRU4Rec failed:\n{done.stderr[-3000:]}")
    epochs = [float(m.group(3)) for m in EPOCH_LINE.finditer(done.stdout)]
    if len(epochs) != params["n_epochs"]:
        raise click.ClickException(f"expected {params['n_epochs']} epoch lines, got:\n{done.stdout[-3000:]}")
    return epochs


def later_epochs_speedup(ours: list[float], official: list[float]) -> dict[str, float]:
    """The speed-up over the epochs after the first (ours' first epoch also traces and compiles the
    step; the authors' PyTorch code compiles nothing): {} with fewer than two epochs."""
    if len(ours) < 2 or len(official) < 2:
        return {}
    return {"speedup_after_first_epoch": round(float(np.mean(official[1:]) / np.mean(ours[1:])), 2)}


def median_speedups(rows: list[dict[str, Any]]) -> dict[str, float]:
    """The median over repeats of each speed-up of `rows` (one configuration's repeats)."""
    keys = ("speedup", "speedup_after_first_epoch")
    return {
        f"median_{key}": round(float(np.median([row[key] for row in rows])), 2)
        for key in keys
        if all(key in row for row in rows)
    }


@click.command()
@click.option("--data", required=True, help="Dataset name or folder.")
@click.option("--official-dir", required=True, help="A checkout of hidasib/GRU4Rec_PyTorch_Official.")
@click.option("--official-python", required=True, help="A Python interpreter with torch and pandas.")
@click.option("--epochs", default=2, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--repeats",
    default=1,
    show_default=True,
    help="Pairs per configuration, the order alternating (the authors' first, then ours first): "
    "a drift of the machine's speed then weighs on both sides; the medians are reported.",
)
@click.option("--output", default=None, help="Write the rows here as JSON.")
def main(
    data: str,
    official_dir: str,
    official_python: str,
    epochs: int,
    seed: int,
    repeats: int,
    output: str | None,
) -> None:
    from movierec.data import load_dataset, resolve_dataset
    from movierec.evaluation.experiment import prepare
    from movierec.models.gru4rec import GRU4RecConfig, GRU4RecRecommender
    from movierec.models.gru4rec.batching import training_sessions

    _, stream = prepare(load_dataset(resolve_dataset(data)), "temporal", seed=seed)
    training = stream.training_data()
    rows, summaries = [], []
    with tempfile.TemporaryDirectory() as folder:
        for name, overrides in CONFIGS.items():
            hparams = {"epoch_tail": "keep", "loss_normalization": "batch", "sample_alpha": 0.0, **overrides}
            config = GRU4RecConfig(epochs=epochs, seed=seed, **hparams)
            starts, lengths = training_sessions(training.sequences, config.session_mode)
            table = os.path.join(folder, f"{config.session_mode}.tsv")
            if not os.path.exists(table):
                with open(table, "w") as handle:
                    handle.write(session_table(training.sequences.items, starts, lengths))

            def official_run(config=config, table=table):
                return run_official(official_dir, official_python, table, official_params(config, epochs))

            def our_run(hparams=hparams):
                return GRU4RecRecommender(epochs=epochs, seed=seed, **hparams).fit(training).training_log

            mine = []
            for repeat in range(repeats):
                if repeat % 2 == 0:
                    official, log = official_run(), our_run()
                else:
                    log, official = our_run(), official_run()
                ours = log["seconds"] / epochs
                row = {
                    "config": name,
                    "repeat": repeat,
                    "hparams": hparams,
                    "sessions": len(starts),
                    "targets_per_epoch": int((lengths - 1).sum()),
                    "ours_seconds_per_epoch": round(ours, 2),
                    "ours_epoch_seconds": [round(s, 2) for s in log["epoch_seconds"]],
                    "official_seconds_per_epoch": [round(s, 2) for s in official],
                    "official_mean_seconds_per_epoch": round(float(np.mean(official)), 2),
                    "speedup": round(float(np.mean(official)) / ours, 2),
                    **later_epochs_speedup(log["epoch_seconds"], official),
                    **tensorflow_threads(),  # ours; the authors' PyTorch follows OMP_NUM_THREADS
                    "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                }
                mine.append(row)
                click.echo(json.dumps(row))
            rows.extend(mine)
            summaries.append({"config": name, "repeats": repeats, **median_speedups(mine)})
            click.echo(json.dumps(summaries[-1]))
    if output:
        os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
        with open(output, "w") as handle:
            json.dump({"runs": rows, "medians": summaries}, handle, indent=2)


if __name__ == "__main__":
    main()
