"""Latency and throughput of GRU4Rec's served `recommend` (k = 10), in process, next to NumPy.

For each catalogue — 1,682 items (a GRU4Rec trained on MovieLens 100K with the default
hyper-parameters, 1 epoch) and 20,000 / 200,000 items (the same network with untrained, synthetic
weights) — the export (`serving/export.py`, the SavedModel TF Serving loads) is loaded with
`tf.saved_model.load` and its `recommend` signature is called at batch 1 and 256 with histories of 10
and 200 items (no timestamps: one session). Next to it, a NumPy brute force of the same math: the
GRU over the history (eq. 1-4 of Hidasi et al. 2016, the model's weights), the full-catalogue scores,
the history masked, the top 10 (argpartition); its top 10 is checked equal to the served one.
Reports p50/p95/p99 per call (ms), calls/s and rows/s; prints a table and writes it as JSON. The
served and the NumPy calls alternate, so the ratio compares the two at the same moments (this
machine's speed drifts by up to 2× between runs).

The synthetic catalogues map raw ids with a `tf.lookup.StaticHashTable` where the pipeline's export
holds Transform's vocabulary table (the same lookup kernels): Transform on Beam over 200,000 ids would
only add minutes. The 1,682-item model's export uses the same table over its ML-100K ids.

    scripts/run python benchmarks/serving_latency.py --data ../shared/data/ml-100k \
        --output runs/serving_latency.json

`--intra-op-threads` / `--inter-op-threads` size TensorFlow's thread pools as TF Serving's flags of the
same names do (0: TensorFlow's choice, one thread per core each). NumPy's baseline runs on one thread
except inside BLAS.

Timings are of one run on whatever else the machine is doing: say so when quoting them.
"""

from __future__ import annotations

import json
import os
import tempfile
import time

import click
import numpy as np
import tensorflow as tf

from movierec.constants import DEFAULT_SESSION_GAP
from movierec.models import TrainingData, UserSequences, build_model
from movierec.models.base import canonical_order
from movierec.serving.export import export_for_serving

K = 10


class VocabularyLookup(tf.Module):
    """Raw item id → index (n_items: unknown), the part of Transform's layer the export reads."""

    def __init__(self, items: np.ndarray):
        super().__init__()
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(items.astype(bytes)), tf.range(len(items), dtype=tf.int64)
            ),
            default_value=len(items),
        )

    def __call__(self, features):
        return {"item_index": self.table.lookup(features["item_id"])}


class LookupOnly:
    """The two things `ServingModule` asks of a TFTransformOutput, for the benchmark's exports."""

    def __init__(self, items: np.ndarray):
        self.layer = VocabularyLookup(items)

    def transform_features_layer(self):
        return self.layer

    def raw_feature_spec(self):
        return {"item_id": tf.io.FixedLenFeature([1], tf.string)}


def trained_ml100k(data_dir: str):
    """GRU4Rec (defaults, 1 epoch) on every ML-100K event, ids in sorted order; its raw ids."""
    with tf.io.gfile.GFile(os.path.join(data_dir, "u.data")) as f:
        events = np.loadtxt(f, dtype=np.int64, delimiter="\t", ndmin=2)
    users_raw, users = np.unique(events[:, 0], return_inverse=True)
    items_raw, items = np.unique(events[:, 1], return_inverse=True)
    order = canonical_order(users, events[:, 3], items)
    users, items, times = users[order], items[order], events[order, 3]
    from movierec.data.splits import session_starts

    sequences = UserSequences(
        np.r_[0, np.cumsum(np.bincount(users, minlength=len(users_raw)))].astype(np.int64),
        items.astype(np.int32),
        events[order, 2].astype(np.float32),
        times,
        session_starts(users, times, DEFAULT_SESSION_GAP),
    )
    model = build_model("gru4rec", epochs=1).fit(TrainingData(len(users_raw), len(items_raw), sequences))
    return model, items_raw.astype(str)


def synthetic(n_items: int, seed: int = 0):
    """The default GRU4Rec over `n_items` items, untrained (Glorot/orthogonal weights, seeded)."""
    sequences = UserSequences.from_lists([[0, 1]])
    model = build_model("gru4rec", epochs=0, seed=seed).fit(TrainingData(1, n_items, sequences))
    return model, np.array([f"m{i}" for i in range(n_items)])


class NumPyGRU4Rec:
    """The served math in NumPy: the GRU over the history, full scores, history masked, top k."""

    def __init__(self, model):
        network = model.keras_model
        if network.n_layers != 1 or not network.constrained_embedding or network.final_activation != "linear":
            raise ValueError("the NumPy baseline covers one GRU layer, constrained embedding, linear scores")
        cell = network.cells[0]
        self.W = np.asarray(cell.input_kernel.numpy(), np.float32)
        U = np.asarray(cell.recurrent_kernel.numpy(), np.float32)
        self.U_zr, self.U_c = (
            np.ascontiguousarray(U[:, : 2 * cell.units]),
            np.ascontiguousarray(U[:, 2 * cell.units :]),
        )
        self.b = np.asarray(cell.bias.numpy(), np.float32)
        self.out = np.asarray(network.output_weights.numpy(), np.float32)
        self.out_b = np.asarray(network.output_bias.numpy(), np.float32)
        self.h = cell.units

    def recommend(self, history: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """history [B, T] item indices (one session, oldest first) → (indices, scores) [B, k]."""
        h_size = self.h
        state = np.zeros((history.shape[0], h_size), np.float32)
        projected = self.out[history.T] @ self.W + self.b  # [T, B, 3H]: the tied input embedding
        for x in projected:
            gates = 1 / (1 + np.exp(-(x[:, : 2 * h_size] + state @ self.U_zr)))
            z, r = gates[:, :h_size], gates[:, h_size:]
            candidate = np.tanh(x[:, 2 * h_size :] + (r * state) @ self.U_c)
            state = (1 - z) * state + z * candidate
        scores = state @ self.out.T + self.out_b
        np.put_along_axis(scores, history, -np.inf, axis=1)
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        top_scores = np.take_along_axis(scores, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        return np.take_along_axis(top, order, axis=1), np.take_along_axis(top_scores, order, axis=1)


def percentiles(seconds: list[float], rows: int) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    mean = float(np.mean(seconds))
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)),
        "calls_per_s": 1 / mean,
        "rows_per_s": rows / mean,
    }


def timed_side_by_side(calls: list, n: int, warmup: int) -> list[list[float]]:
    """Seconds per call of each of `calls`, called in turn n times (after `warmup` rounds): both sides
    of a comparison see the same moments of a machine whose speed drifts between runs."""
    for _ in range(warmup):
        for call in calls:
            call()
    seconds = [[] for _ in calls]
    for _ in range(n):
        for call, times in zip(calls, seconds, strict=True):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
    return seconds


def measure(name: str, model, items: np.ndarray, folder: str, calls: int, seed: int) -> list[dict]:
    export_dir = os.path.join(folder, name, "1")
    assert export_for_serving(model, LookupOnly(items), items, export_dir, top_k=K)
    recommend = tf.saved_model.load(export_dir).signatures["recommend"]
    baseline = NumPyGRU4Rec(model)
    rng = np.random.default_rng(seed)
    results = []
    for batch in (1, 256):
        for length in (10, 200):
            history = np.stack([rng.choice(len(items), length, replace=False) for _ in range(batch)])
            inputs = {
                "item_ids": tf.constant(items[history].astype(bytes)),
                "timestamps": tf.zeros([batch, 0], tf.int64),
                "k": tf.fill([batch], K),
                "exclude": tf.zeros([batch, 0], tf.string),
            }
            served = recommend(**inputs)
            expected, _ = baseline.recommend(history, K)
            same = [i.decode() for i in served["item_ids"].numpy()[0]] == list(items[expected[0]])
            n = calls if batch == 1 else max(calls // 20, 5)
            served_call = lambda inputs=inputs: recommend(**inputs)  # noqa: E731
            numpy_call = lambda history=history: baseline.recommend(history, K)  # noqa: E731
            tf_seconds, np_seconds = timed_side_by_side([served_call, numpy_call], n, warmup=5)
            row = {
                "catalogue": name,
                "n_items": len(items),
                "batch": batch,
                "history": length,
                "calls": n,
                "same_top10_as_numpy": same,
                "served": percentiles(tf_seconds, batch),
                "numpy": percentiles(np_seconds, batch),
            }
            row["served_p50_over_numpy"] = row["served"]["p50_ms"] / row["numpy"]["p50_ms"]
            results.append(row)
            click.echo(table_row(row), err=True)
    return results


HEADER = (
    f"{'catalogue':<12}{'items':>8}{'batch':>6}{'hist':>5}  {'served p50/p95/p99 ms':>24}  {'rows/s':>9}"
    f"  {'numpy p50/p95/p99 ms':>24}  {'rows/s':>9}  {'p50 ×':>6}  top10="
)


def table_row(row: dict) -> str:
    s, n = row["served"], row["numpy"]
    return (
        f"{row['catalogue']:<12}{row['n_items']:>8}{row['batch']:>6}{row['history']:>5}  "
        f"{s['p50_ms']:>7.2f} /{s['p95_ms']:>7.2f} /{s['p99_ms']:>7.2f}  {s['rows_per_s']:>9.0f}  "
        f"{n['p50_ms']:>7.2f} /{n['p95_ms']:>7.2f} /{n['p99_ms']:>7.2f}  {n['rows_per_s']:>9.0f}  "
        f"{row['served_p50_over_numpy']:>6.1f}  {row['same_top10_as_numpy']}"
    )


@click.command()
@click.option("--data", "data_dir", required=True, help="The MovieLens 100K folder (u.data).")
@click.option("--sizes", default="20000,200000", show_default=True, help="Synthetic catalogue sizes.")
@click.option(
    "--calls", default=300, show_default=True, help="Timed calls at batch 1 (batch 256: 1/20th, ≥ 5)."
)
@click.option("--output", default=None, help="Write the results as JSON here too.")
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--intra-op-threads",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="TensorFlow's threads within an op (0: its choice), as tensorflow_model_server's "
    "--tensorflow_intra_op_parallelism.",
)
@click.option(
    "--inter-op-threads",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="TensorFlow's threads running independent ops (0: its choice), as tensorflow_model_server's "
    "--tensorflow_inter_op_parallelism.",
)
def main(
    data_dir: str,
    sizes: str,
    calls: int,
    output: str | None,
    seed: int,
    intra_op_threads: int,
    inter_op_threads: int,
) -> None:
    # before TensorFlow's runtime starts (the first op): its thread pools are made once
    tf.config.threading.set_intra_op_parallelism_threads(intra_op_threads)
    tf.config.threading.set_inter_op_parallelism_threads(inter_op_threads)
    results = []
    click.echo(HEADER, err=True)
    with tempfile.TemporaryDirectory() as folder:
        model, items = trained_ml100k(data_dir)
        results += measure("ml-100k", model, items, folder, calls, seed)
        for size in (int(s) for s in sizes.split(",") if s):
            model, items = synthetic(size, seed)
            results += measure(f"synthetic-{size // 1000}k", model, items, folder, calls, seed)
    payload = {
        "k": K,
        "threads": os.cpu_count(),
        "intra_op_threads": intra_op_threads,
        "inter_op_threads": inter_op_threads,
        "tensorflow": tf.__version__,
        "results": results,
    }
    if output:
        with tf.io.gfile.GFile(output, "w") as f:
            f.write(json.dumps(payload, indent=2))
    click.echo(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
