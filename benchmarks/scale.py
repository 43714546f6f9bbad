"""Scale benchmark: the pipeline's data stages and one GRU4Rec epoch at growing event counts.

    nice -n 19 scripts/run python benchmarks/scale.py --sizes 1000000,4000000 --work runs/scale \
        --output runs/scale/scale.json --png runs/scale/scale.png

Per size in `--sizes`:
1. Synthetic MovieLens-like data (`movierec data synth`'s `write_synthetic`, ml-csv, `--seed`) in
   `--work`/data-<size>-seed<seed>-<layout>; kept and reused (a `<folder>.json` beside it, written
   last, records what the folder holds).
2. The pipeline's data stages only — MovieLensExampleGen → StatisticsGen → (ReviewedSchemaGen,
   ExampleValidator, AnomalyGate: "schema check") → Transform, SequenceGen — built by
   `movierec.pipeline.pipeline.create_data_pipeline` (the same components as the full pipeline), run on
   TFX's LocalDagRunner with Beam's DirectRunner in multi-processing mode (`--workers` worker
   processes), cache off. Each stage's wall time is its execution's span in ML Metadata (registered →
   published).
3. One GRU4Rec training epoch (`epochs=1`, defaults otherwise) on the temporal protocol's training
   events, loaded in memory as `movierec train` does; the load is reported as its own row.

Each of 2 and 3 runs in a fresh Python process; this process samples the resident memory (RSS) of
that process and all its descendants (the Beam worker processes) every `--sample-seconds` and reports,
per stage, the peak of the sum over the stage's span, and how it splits between the launcher process
and the workers at that moment. A stage shorter than the sampling period gets the samples around it.

`--memory-budget-mb` is the budget the peaks are checked against. What it sets: Beam's
`--max_cache_memory_usage_mb` (the SDK workers' state cache) to an eighth of the budget per worker,
capped at Beam's default of 100. DirectRunner has no flag that bounds the PCollections its runner
process buffers between stages, and ExampleGen's piece size (`PipelineConfig.example_gen_piece_bytes`,
`movierec pipeline run --piece-mb`) stays at its default 64 MB here, so the budget is a check, not a
limit: the JSON says per stage whether the measured peak stayed under it.

Goal (issue 15): events/s within ±30% from the smallest to the largest size ("linear") and peaks under
the budget, not growing with the data ("bounded"). The verdicts printed are computed from the numbers
measured; numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import click

DATA_STAGES = ("ExampleGen", "StatisticsGen", "schema check", "Transform", "SequenceGen")
TRAIN_STAGES = ("GRU4Rec load", "GRU4Rec epoch")
STAGES = DATA_STAGES + TRAIN_STAGES
# pipeline node id -> reported stage
NODE_STAGE = {
    "MovieLensExampleGen": "ExampleGen",
    "StatisticsGen": "StatisticsGen",
    "ReviewedSchemaGen": "schema check",
    "ExampleValidator": "schema check",
    "AnomalyGate": "schema check",
    "Transform": "Transform",
    "SequenceGen": "SequenceGen",
}
LINEAR_TOLERANCE = 0.30  # events/s within ±30% of the smallest size's
PIPELINE_NAME = "movierec-scale"


# ---------------------------------------------------------------------------------------------------
# memory of a process tree


class TreeSampler:
    """Samples the RSS of a process and its descendants every `period` seconds in a thread:
    `samples` is a list of (unix time, launcher bytes, workers bytes, CPU seconds of the tree so far:
    user + system of every live process and of the children each has reaped)."""

    def __init__(self, pid: int, period: float) -> None:
        self.pid, self.period = pid, period
        self.samples: list[tuple[float, int, int, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> tuple[float, int, int, float] | None:
        import psutil

        try:
            root = psutil.Process(self.pid)
            launcher = root.memory_info().rss
            cpu = sum(root.cpu_times()[:4])  # user, system, children_user, children_system
            children = root.children(recursive=True)
        except psutil.Error:
            return None
        workers = 0
        for child in children:
            with contextlib.suppress(psutil.Error):  # ended between the listing and the read
                workers += child.memory_info().rss
                cpu += sum(child.cpu_times()[:4])
        return time.time(), launcher, workers, cpu

    def _run(self) -> None:
        while not self._stop.is_set():
            sample = self.sample()
            if sample is not None:
                self.samples.append(sample)
            self._stop.wait(self.period)

    def peak(self, spans: list[tuple[float, float]]) -> dict[str, float]:
        """The peak of launcher + workers over the spans [start, end] (for a span no sample fell in,
        the samples just around it), in MB, with the launcher's and the workers' share at that sample."""
        inside = []
        for start, end in spans:
            within = [s for s in self.samples if start <= s[0] <= end]
            if not within:
                before = [s for s in self.samples if s[0] < start][-1:]
                after = [s for s in self.samples if s[0] > end][:1]
                within = before + after
            inside += within
        if not inside:
            return {"peak_mb": float("nan"), "launcher_mb": float("nan"), "workers_mb": float("nan")}
        best = max(inside, key=lambda s: s[1] + s[2])
        mb = lambda b: round(b / 2**20, 1)  # noqa: E731
        return {
            "peak_mb": mb(best[1] + best[2]),
            "launcher_mb": mb(best[1]),
            "workers_mb": mb(best[2]),
            "cpu_seconds": round(sum(self._cpu_at(end) - self._cpu_at(start) for start, end in spans), 1),
            "samples": len(inside),
        }

    def _cpu_at(self, moment: float) -> float:
        """The tree's CPU seconds at the last sample before `moment` (the first sample if none)."""
        before = [s for s in self.samples if s[0] <= moment]
        return (before[-1] if before else self.samples[0])[3]


def run_measured(
    args: list[str], period: float, log: Path, deadline: float | None = None
) -> tuple[TreeSampler, bool]:
    """Runs `python benchmarks/scale.py <args>` in a fresh process, sampling its tree's memory; at
    `deadline` (unix time) stops its whole process group. Returns the sampler and whether it finished."""
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), *args], stdout=out, stderr=out, start_new_session=True
        )
        with TreeSampler(process.pid, period) as sampler:
            while True:
                try:
                    code = process.wait(timeout=1.0)
                    break
                except subprocess.TimeoutExpired:
                    if deadline is not None and time.time() >= deadline:
                        os.killpg(process.pid, signal.SIGTERM)
                        try:
                            process.wait(timeout=30)
                        except subprocess.TimeoutExpired:
                            os.killpg(process.pid, signal.SIGKILL)
                            process.wait()
                        return sampler, False
    if code != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise click.ClickException(f"{' '.join(args[:2])} failed (exit {code}); log {log}:\n{tail}")
    return sampler, True


# ---------------------------------------------------------------------------------------------------
# the measured work (child processes)


def beam_args(workers: int, budget_mb: int, mode: str = "multi_processing") -> list[str]:
    cache = max(1, min(100, budget_mb // (8 * workers)))
    return [
        f"--direct_running_mode={mode}",
        f"--direct_num_workers={workers}",
        f"--max_cache_memory_usage_mb={cache}",
    ]


def stage_spans(metadata_db: str) -> dict[str, list[tuple[float, float]]]:
    """Each node's finished execution spans (unix seconds, registered → last update) from ML
    Metadata."""
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = metadata_db
    connection.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    store = metadata_store.MetadataStore(connection)
    node_type = store.get_context_type("node").id
    finished = (metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED)
    spans: dict[str, list[tuple[float, float]]] = {}
    for execution in store.get_executions():
        if execution.last_known_state not in finished:
            continue
        nodes = [c.name for c in store.get_contexts_by_execution(execution.id) if c.type_id == node_type]
        node = nodes[0].removeprefix(PIPELINE_NAME + ".") if nodes else "?"
        span = (execution.create_time_since_epoch / 1000, execution.last_update_time_since_epoch / 1000)
        spans.setdefault(node, []).append(span)
    return spans


def run_data_stages(data: str, out: str, workers: int, budget_mb: int, mode: str) -> dict[str, Any]:
    from tfx import v1 as tfx

    from movierec.pipeline.config import PipelineConfig
    from movierec.pipeline.pipeline import create_data_pipeline
    from movierec.pipeline.runners.local import run_temporary_folder

    config = PipelineConfig(
        data_path=data,
        output_dir=out,
        pipeline_name=PIPELINE_NAME,
        beam_pipeline_args=beam_args(workers, budget_mb, mode),
        enable_cache=False,
    )
    started = time.time()
    pipeline = create_data_pipeline(config)  # hashes the data files (ExampleGen's cache key)
    built = time.time()
    with run_temporary_folder():  # the TFX sdists each Beam executor leaves go with it
        tfx.orchestration.LocalDagRunner().run(pipeline)
    ended = time.time()
    return {
        "construct": [started, built],
        "run": [built, ended],
        "spans": stage_spans(config.metadata_db),
        "beam_pipeline_args": config.beam_pipeline_args,
    }


def run_training(data: str, seed: int) -> dict[str, Any]:
    from movierec.constants import TRAIN
    from movierec.data import load_dataset
    from movierec.evaluation.experiment import prepare
    from movierec.models.gru4rec import GRU4RecRecommender

    started = time.time()
    dataset = load_dataset(data)
    _, stream = prepare(dataset, "temporal", seed=seed)
    training = stream.training_data()
    events = int((stream.roles == TRAIN).sum())
    loaded = time.time()
    model = GRU4RecRecommender(epochs=1, seed=seed).fit(training)
    ended = time.time()
    log = {k: v for k, v in model.training_log.items() if isinstance(v, int | float | str)}
    return {"load": [started, loaded], "fit": [loaded, ended], "training_events": events, "log": log}


# ---------------------------------------------------------------------------------------------------
# one size


def synth_data(work: Path, size: int, seed: int, layout: str) -> tuple[Path, float | None]:
    """The synthetic dataset of `size` events (made unless `synth.json` says it is there)."""
    from movierec.data.synth import SynthConfig
    from movierec.data.synth_files import write_synthetic

    folder = work / f"data-{size}-seed{seed}-{layout}"
    marker = work / f"{folder.name}.json"  # beside the folder: the data folder holds the layout only
    wanted = {"events": size, "seed": seed, "layout": layout}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return folder, None
    started = time.perf_counter()
    write_synthetic(folder, SynthConfig(events=size, seed=seed, layout=layout), overwrite=True)
    seconds = time.perf_counter() - started
    marker.write_text(json.dumps(wanted))
    return folder, seconds


def measure_size(
    size: int,
    work: Path,
    seed: int,
    layout: str,
    workers: int,
    budget_mb: int,
    period: float,
    training: bool,
    mode: str = "multi_processing",
    deadline: float | None = None,
    data_stages: bool = True,
) -> dict[str, Any]:
    folder, synth_seconds = synth_data(work, size, seed, layout)
    load_before = os.getloadavg()  # what else ran: wall times stretch with it, CPU seconds less
    run_dir = work / f"run-{size}"
    run_dir.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict[str, Any]] = {}

    interrupted, finished, pipeline = None, True, None
    if data_stages:
        with tempfile.TemporaryDirectory(dir=run_dir) as out:
            result = Path(out) / "result.json"
            args = ["--child", "data", "--child-data", str(folder), "--child-out", out]
            args += ["--child-result", str(result), "--workers", str(workers)]
            args += ["--memory-budget-mb", str(budget_mb), "--running-mode", mode]
            sampler, finished = run_measured(args, period, run_dir / "data_stages.log", deadline)
            if finished:
                child = json.loads(result.read_text())
            else:  # stopped at the deadline: the stages ML Metadata records as finished
                metadata_db = Path(out) / "metadata.sqlite"
                spans = stage_spans(str(metadata_db)) if metadata_db.exists() else {}
                sampled = [sampler.samples[0][0], sampler.samples[-1][0]] if sampler.samples else [0.0, 0.0]
                child = {
                    "spans": spans,
                    "construct": sampled[:1] * 2,
                    "run": sampled,
                    "beam_pipeline_args": [],
                }
        interrupted = None if finished else "data stages"
        for stage in DATA_STAGES:
            spans = [
                s
                for node, node_spans in child["spans"].items()
                if NODE_STAGE.get(node) == stage
                for s in node_spans
            ]
            nodes = {node for node, name in NODE_STAGE.items() if name == stage}
            if not finished and not nodes <= set(child["spans"]):
                continue  # not (wholly) run by the deadline
            if not spans:
                raise click.ClickException(f"no ML Metadata execution for {stage} at {size} events")
            seconds = sum(s[1] - s[0] for s in spans)
            rows[stage] = {"seconds": round(seconds, 2), "events": size, **sampler.peak(spans)}
        run_start, run_end = child["run"]
        pipeline = {
            "construct_seconds": round(child["construct"][1] - child["construct"][0], 2),
            "run_seconds": round(run_end - run_start, 2),
            "beam_pipeline_args": child["beam_pipeline_args"],
            **sampler.peak([(run_start, run_end)]),
        }

    if training and finished:
        with tempfile.TemporaryDirectory(dir=run_dir) as out:
            result = Path(out) / "result.json"
            args = ["--child", "train", "--child-data", str(folder), "--child-result", str(result)]
            args += ["--seed", str(seed)]
            sampler, finished = run_measured(args, period, run_dir / "training.log", deadline)
            child = json.loads(result.read_text()) if finished else {}
        interrupted = None if finished else "GRU4Rec"
    if training and interrupted is None:
        for stage, key, events in (
            ("GRU4Rec load", "load", size),
            ("GRU4Rec epoch", "fit", child["training_events"]),
        ):
            start, end = child[key]
            rows[stage] = {"seconds": round(end - start, 2), "events": events, **sampler.peak([(start, end)])}
        rows["GRU4Rec epoch"]["training_log"] = child["log"]
    for row in rows.values():
        row["events_per_second"] = round(row["events"] / row["seconds"]) if row["seconds"] > 0 else None
        row["under_budget"] = bool(row["peak_mb"] <= budget_mb)
    return {
        "events": size,
        "synth_seconds": synth_seconds,
        "data": str(folder),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "complete": interrupted is None,
        "stopped_at_deadline_in": interrupted,
        "pipeline": pipeline,
        "stages": rows,
    }


# ---------------------------------------------------------------------------------------------------
# verdicts, table, figure


def verdicts(results: list[dict[str, Any]], budget_mb: int) -> dict[str, dict[str, Any]]:
    """Per stage measured at two sizes or more: events/s of the largest size over the smallest's
    (linear when within ±30%), the same for CPU seconds per event when both have them (less sensitive
    to what else runs), the peak memory's growth over the same range and whether every peak stayed
    under the budget."""
    out = {}
    for stage in STAGES:
        have = [r for r in results if stage in r["stages"]]
        if len(have) < 2:
            continue
        first, last = have[0], have[-1]
        a, b = first["stages"][stage], last["stages"][stage]
        ratio = b["events_per_second"] / a["events_per_second"] if a["events_per_second"] else float("nan")
        growth = b["peak_mb"] / a["peak_mb"] if a["peak_mb"] else float("nan")
        cpu_ratio = None
        if a.get("cpu_seconds") and b.get("cpu_seconds"):
            cpu_ratio = round((b["cpu_seconds"] / b["events"]) / (a["cpu_seconds"] / a["events"]), 3)
        out[stage] = {
            "throughput_ratio": round(ratio, 3),
            "linear": bool(abs(ratio - 1) <= LINEAR_TOLERANCE),
            "cpu_per_event_ratio": cpu_ratio,
            "peak_growth": round(growth, 3),
            "events_growth": last["events"] / first["events"],
            "under_budget": all(r["stages"][stage]["under_budget"] for r in have),
        }
    return out


def table(results: list[dict[str, Any]], budget_mb: int) -> str:
    lines = [
        "| stage | events | wall s | events/s | CPU s | peak MB (launcher + workers) | ≤ budget |",
        "|---|---:|---:|---:|---:|---:|:---:|",
    ]
    for stage in STAGES:
        for result in results:
            row = result["stages"].get(stage)
            if row is None:
                continue
            lines.append(
                f"| {stage} | {row['events']:,} | {row['seconds']:.1f} | {row['events_per_second']:,} | "
                f"{row.get('cpu_seconds', float('nan')):.1f} | "
                f"{row['peak_mb']:,.0f} ({row['launcher_mb']:,.0f} + {row['workers_mb']:,.0f}) | "
                f"{'yes' if row['under_budget'] else 'no'} |"
            )
    lines.append(f"\nbudget: {budget_mb:,} MB")
    return "\n".join(lines)


def figure(results: list[dict[str, Any]], budget_mb: int, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    sizes = [r["events"] for r in results]
    for stage in STAGES:
        points = [(r["stages"][stage]["events"], r["stages"][stage]) for r in results if stage in r["stages"]]
        if not points:
            continue
        xs = [p[0] for p in points]
        left.plot(xs, [p[1]["seconds"] for p in points], "o-", label=stage)
        right.plot(xs, [p[1]["peak_mb"] for p in points], "o-", label=stage)
    # a linear reference through the smallest size's slowest stage
    slowest = max(results[0]["stages"].values(), key=lambda row: row["seconds"])
    ref = [slowest["seconds"] * s / sizes[0] for s in sizes]
    left.plot(sizes, ref, "k:", label="linear (slope 1)")
    right.axhline(budget_mb, color="k", linestyle="--", label=f"budget {budget_mb:,} MB")
    for axis, label in ((left, "wall seconds"), (right, "peak RSS of the process tree (MB)")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("events")
        axis.set_ylabel(label)
        axis.grid(True, which="both", alpha=0.3)
    left.set_title("time per stage")
    right.set_title("peak memory per stage")
    left.legend(fontsize=8)
    right.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_sizes(ctx, param, value: str) -> list[int]:
    try:
        sizes = [int(v.replace("_", "")) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"comma-separated whole numbers, got {value!r}") from None
    if not sizes or any(s < 1 for s in sizes):
        raise click.BadParameter(f"positive event counts, got {value!r}")
    return sorted(set(sizes))


@click.command()
@click.option("--sizes", default="1000000,4000000,16000000", show_default=True, callback=parse_sizes)
@click.option("--work", default="runs/scale", show_default=True, help="Data and run folders (kept).")
@click.option("--output", default=None, help="Write the results here as JSON.")
@click.option("--png", default=None, help="Write the log-log figure here.")
@click.option("--seed", default=0, show_default=True)
@click.option("--layout", default="ml-csv", show_default=True, type=click.Choice(["ml-csv", "ml-dat"]))
@click.option("--workers", default=2, show_default=True, help="DirectRunner worker processes.")
@click.option("--memory-budget-mb", default=4096, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--running-mode",
    default="multi_processing",
    show_default=True,
    type=click.Choice(["multi_processing", "in_memory"]),
    help="DirectRunner mode (in_memory: one process, for quick checks; the benchmark is multi_processing).",
)
@click.option("--sample-seconds", default=0.2, show_default=True, help="Memory sampling period.")
@click.option("--no-training", is_flag=True, help="Skip the GRU4Rec epoch.")
@click.option("--no-data", is_flag=True, help="Skip the data stages (measure GRU4Rec's load and epoch only).")
@click.option(
    "--deadline-minutes",
    type=float,
    default=None,
    help="Stop what runs after this many minutes and report the stages finished by then.",
)
@click.option(
    "--combine",
    default=None,
    help="Comma-separated JSON files of earlier runs: write one report of them (runs nothing).",
)
@click.option("--child", type=click.Choice(["data", "train"]), hidden=True)
@click.option("--child-data", hidden=True)
@click.option("--child-out", hidden=True)
@click.option("--child-result", hidden=True)
def main(
    sizes: list[int],
    work: str,
    output: str | None,
    png: str | None,
    seed: int,
    layout: str,
    workers: int,
    memory_budget_mb: int,
    running_mode: str,
    sample_seconds: float,
    no_training: bool,
    no_data: bool,
    deadline_minutes: float | None,
    combine: str | None,
    child: str | None,
    child_data: str | None,
    child_out: str | None,
    child_result: str | None,
) -> None:
    if child == "data":
        result = run_data_stages(child_data, child_out, workers, memory_budget_mb, running_mode)
        Path(child_result).write_text(json.dumps(result))
        return
    if child == "train":
        Path(child_result).write_text(json.dumps(run_training(child_data, seed)))
        return
    settings = {
        "seed": seed,
        "layout": layout,
        "workers": workers,
        "running_mode": running_mode,
        "memory_budget_mb": memory_budget_mb,
        "sample_seconds": sample_seconds,
        "cpus": os.cpu_count(),
    }
    results: list[dict[str, Any]] = []
    if combine:  # no runs: one report from the results of earlier runs (a stage's last run wins)
        by_size: dict[int, dict[str, Any]] = {}
        for path in combine.split(","):
            earlier = json.loads(Path(path).read_text())
            settings = {k: earlier.get(k, v) for k, v in settings.items()}
            for result in earlier["results"]:
                size = result["events"]
                if size in by_size:  # the later run's stages replace the earlier's, the others stay
                    merged = {**by_size[size], **{k: v for k, v in result.items() if k != "stages"}}
                    merged["stages"] = {**by_size[size]["stages"], **result["stages"]}
                    merged["pipeline"] = result.get("pipeline") or by_size[size].get("pipeline")
                    result = merged
                by_size[size] = result
        results = [by_size[size] for size in sorted(by_size)]
        report(results, settings, output, png)
        return
    work_dir = Path(work).absolute()
    work_dir.mkdir(parents=True, exist_ok=True)
    deadline = None if deadline_minutes is None else time.time() + 60 * deadline_minutes
    for size in sizes:
        if deadline is not None and time.time() >= deadline:
            click.echo(f"[scale] deadline reached: {size:,} events not run", err=True)
            break
        click.echo(f"[scale] {size:,} events …", err=True)
        results.append(
            measure_size(
                size,
                work_dir,
                seed,
                layout,
                workers,
                memory_budget_mb,
                sample_seconds,
                not no_training,
                running_mode,
                deadline,
                data_stages=not no_data,
            )
        )
        for stage, row in results[-1]["stages"].items():
            click.echo(f"[scale]   {stage}: {row['seconds']} s, {row['peak_mb']} MB", err=True)
        # after every size: a long run keeps what it measured
        report(results, settings, output, png, quiet=size != sizes[-1])


def report(
    results: list[dict[str, Any]], settings: dict[str, Any], output: str | None, png: str | None, quiet=False
) -> None:
    """Writes the JSON and the figure of `results` and (unless quiet) prints the table and verdicts."""
    if not results:
        return
    budget = settings["memory_budget_mb"]
    found = verdicts(results, budget)
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        body = {"sizes": [r["events"] for r in results], **settings, "results": results, "verdicts": found}
        Path(output).write_text(json.dumps(body, indent=2))
    if png:
        figure(results, budget, png)
    if quiet:
        return
    click.echo(table(results, budget))
    for stage, verdict in found.items():
        click.echo(
            f"{stage}: events/s ×{verdict['throughput_ratio']} over ×{verdict['events_growth']:g} events "
            f"({'linear' if verdict['linear'] else 'NOT linear'}; CPU s per event "
            f"×{verdict['cpu_per_event_ratio']}), peak ×{verdict['peak_growth']} "
            f"({'under' if verdict['under_budget'] else 'OVER'} the budget)"
        )


if __name__ == "__main__":
    main()
