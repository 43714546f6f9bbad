"""Training throughput (training events per second of fit) and evaluation speed per model, and
GRU4Rec's training speed against a matmul roofline measured in the same run.

    scripts/run python benchmarks/train_throughput.py --data ../shared/data/ml-100k --model gru4rec
    scripts/run python benchmarks/train_throughput.py --data ../shared/data/ml-100k --roofline \
        --output runs/roofline.json

`--roofline` trains GRU4Rec on the temporal protocol's training events in two configurations — the
defaults and the authors' BPR-max setting (224 units, batch 80, 2,048 extra samples) — with
`epoch_tail=keep` (every training target used), and reports per configuration: seconds per epoch,
training targets per second, the step's arithmetic (forward + backward ≈ 3 × the forward FLOPs of the
GRU matmuls and of scoring the B + S candidates) in GFLOP/s, and that as a fraction of the GFLOP/s a
dense [B × H]·[H × (B + S)] forward + backward loop reaches on this machine in the same run (the
roofline: the best this step's shapes can do with TensorFlow's matmul here).

`--profile` fits each `--roofline` configuration once more, for one epoch, under TensorFlow's
profiler and adds to its row where a step's time goes: per op type, the calls and the summed kernel
time per step and its share of all ops' time (ops of the two cores summed, so the shares are of busy
time, not of wall time). Profiling slows the run; that epoch is not timed.

Speed targets live here, not in unit tests: numbers depend on the machine and on what else runs.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import click
import numpy as np

from movierec.constants import DEFAULT_METRIC
from movierec.data import load_dataset, resolve_dataset
from movierec.evaluation.experiment import EvaluationSettings, prepare, run_experiment
from movierec.models import MODELS
from movierec.models.gru4rec import GRU4RecConfig, GRU4RecRecommender

ROOFLINE_CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    "bpr-max-224": {
        "loss": "bpr-max",
        "hidden_size": 224,
        "batch_size": 80,
        "n_sample": 2048,
        "elu_param": 0.5,
    },
}


def tensorflow_threads() -> dict[str, str | None]:
    """This run's thread settings of TensorFlow, from its own environment variables (None: its
    choice, a thread per core for both pools). `TF_NUM_INTRAOP_THREADS=1` runs each op on one
    thread while the inter-op pool still runs independent ops side by side."""
    return {
        name.lower(): os.environ.get(name) for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
    }


def step_flops(config: GRU4RecConfig) -> float:
    """Forward + backward FLOPs of one training step (3 × forward): per GRU layer an input projection
    (a matmul unless the input is a 1-of-N lookup) and the recurrent matmuls, 2·B·H·3H each; scoring
    the B + S candidates, 2·B·H·(B + S)."""
    b, h = config.batch_size, config.hidden_size
    dense_input = config.embedding_dim > 0 or config.constrained_embedding
    gru = sum(2 * b * h * 3 * h * (2 if layer or dense_input else 1) for layer in range(config.n_layers))
    scoring = 2 * b * h * (b + config.n_sample)
    return 3.0 * (gru + scoring)


def dense_forward_backward(x, w, upstream):
    """y = x · wᵀ and the gradients of Σ upstream ⊙ y: (y, ∂/∂x = upstream · w, ∂/∂w = upstreamᵀ · x)
    — the three products of a scoring layer's training step."""
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.matmul(x, w, transpose_b=True)
        loss = tf.reduce_sum(y * upstream)
    gx, gw = tape.gradient(loss, [x, w])
    return y, gx, gw


def matmul_roofline(batch: int, hidden: int, candidates: int, seconds: float = 3.0) -> float:
    """GFLOP/s of a compiled loop of [batch × hidden]·[hidden × candidates] forward + backward
    (`dense_forward_backward`). Each iteration's result takes an element of all three products, so
    the graph optimiser can prune none (until 2026-12-01 the loop fed only the two gradients on:
    the forward product was pruned while still counted, which overstated the bound)."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(batch, hidden)).astype(np.float32))
    w = tf.Variable(rng.normal(size=(candidates, hidden)).astype(np.float32))
    upstream = tf.constant(rng.normal(size=(batch, candidates)).astype(np.float32))

    @tf.function
    def loop(n):
        def body(i, total):
            y, gx, gw = dense_forward_backward(x, w, upstream)
            return i + 1, total + y[0, 0] + gx[0, 0] + gw[0, 0]

        return tf.while_loop(lambda i, t: i < n, body, (tf.constant(0), tf.constant(0.0)))[1]

    loop(tf.constant(10))  # trace and warm up
    n = 50
    while True:  # double the loop until one call lasts `seconds`
        started = time.perf_counter()
        float(loop(tf.constant(n)))
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return 3.0 * 2 * batch * hidden * candidates * n / elapsed / 1e9
        n *= 2


# trace events that are not kernels: the executor's, the thread pool's, the eager runtime's
_NOT_KERNELS = ("Process", "ThreadpoolListener", "ExecutorState", "KernelAndDevice", "EagerLocal")
# oneDNN (on by default where the CPU has AVX-512 VNNI/BF16 or AMX) runs ops as "_Mkl<Op>" or
# "_MklNative<Op>": counted under the op they implement, so profiles of different CPUs compare
_ONEDNN_PREFIXES = ("_MklNative", "_Mkl")


def op_type(name: str) -> str:
    """The op type of a trace event "node:OpType", oneDNN's kernel names mapped to their op."""
    op = name.rsplit(":", 1)[1]
    for prefix in _ONEDNN_PREFIXES:
        if op.startswith(prefix):
            return op[len(prefix) :]
    return op


def op_time_breakdown(run, steps: int, top: int = 15) -> list[dict[str, Any]]:
    """Runs `run()` under TensorFlow's profiler; per op type (the `top` costliest): calls and
    microseconds of kernel time per step (`steps` steps in the run) and the share of all kernels'
    time, from the profile's XPlane trace (events named "node:OpType"; see `op_type`)."""
    import glob
    import tempfile

    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    with tempfile.TemporaryDirectory() as folder:
        tf.profiler.experimental.start(folder)
        try:
            run()
        finally:
            tf.profiler.experimental.stop()
        (trace,) = glob.glob(f"{folder}/**/*.xplane.pb", recursive=True)
        space = xplane_pb2.XSpace()
        with open(trace, "rb") as f:
            space.ParseFromString(f.read())
    calls: dict[str, int] = {}
    picoseconds: dict[str, int] = {}
    for plane in space.planes:
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if ":" not in name or name.startswith(_NOT_KERNELS):
                    continue
                op = op_type(name)
                calls[op] = calls.get(op, 0) + 1
                picoseconds[op] = picoseconds.get(op, 0) + event.duration_ps
    total = sum(picoseconds.values()) or 1
    ranked = sorted(picoseconds, key=picoseconds.get, reverse=True)[:top]
    return [
        {
            "op": op,
            "calls_per_step": round(calls[op] / steps, 1),
            "us_per_step": round(picoseconds[op] / 1e6 / steps, 1),
            "share": round(picoseconds[op] / total, 3),
        }
        for op in ranked
    ]


def roofline_rows(data: str, seed: int, epochs: int, profile: bool = False) -> list[dict[str, Any]]:
    dataset = load_dataset(resolve_dataset(data))
    _, stream = prepare(dataset, "temporal", seed=seed)
    training = stream.training_data()
    rows = []
    for name, overrides in ROOFLINE_CONFIGS.items():
        hparams = {"epoch_tail": "keep", "epochs": epochs, "seed": seed, **overrides}
        model = GRU4RecRecommender(**hparams).fit(training)
        config, log = model.config, model.training_log
        flops = step_flops(config)
        achieved = flops * log["steps"] / log["seconds"] / 1e9
        roofline = matmul_roofline(config.batch_size, config.hidden_size, config.batch_size + config.n_sample)
        rows.append(
            {
                "config": name,
                "hparams": hparams,
                "seconds_per_epoch": round(log["seconds"] / epochs, 2),
                "targets_per_second": round(log["events_per_second"], 1),
                "steps_per_second": round(log["steps"] / log["seconds"], 1),
                "step_mflop": round(flops / 1e6, 1),
                "achieved_gflops": round(achieved, 2),
                "matmul_roofline_gflops": round(roofline, 2),
                "fraction_of_roofline": round(achieved / roofline, 3),
                **tensorflow_threads(),
            }
        )
        if profile:
            one_epoch = {**hparams, "epochs": 1}
            rows[-1]["op_time_per_step"] = op_time_breakdown(
                lambda one_epoch=one_epoch: GRU4RecRecommender(**one_epoch).fit(training),
                steps=max(log["steps"] // epochs, 1),
            )
        click.echo(json.dumps(rows[-1]))
    return rows


@click.command()
@click.option("--data", required=True, help="Dataset name or folder.")
@click.option("--model", "models", multiple=True, type=click.Choice(list(MODELS)))
@click.option("--roofline", is_flag=True, help="GRU4Rec's configurations against the matmul roofline.")
@click.option("--epochs", default=2, show_default=True, help="Epochs per --roofline configuration.")
@click.option("--output", default=None, help="Write the --roofline rows here as JSON.")
@click.option("--profile", is_flag=True, help="Add each --roofline configuration's op-time breakdown.")
@click.option("--seed", default=0, show_default=True)
def main(
    data: str,
    models: tuple[str, ...],
    roofline: bool,
    epochs: int,
    output: str | None,
    profile: bool,
    seed: int,
) -> None:
    if profile and not roofline:
        raise click.UsageError("--profile profiles the --roofline configurations: give --roofline")
    if roofline:
        rows = roofline_rows(data, seed, epochs, profile)
        if output:
            import tensorflow as tf

            with tf.io.gfile.GFile(output, "w") as f:
                f.write(json.dumps(rows, indent=2))
    if not models and not roofline:
        raise click.UsageError("give --model (one or more) and/or --roofline")
    dataset = load_dataset(resolve_dataset(data))
    split, stream = prepare(dataset, "temporal", seed=seed) if models else (None, None)
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
