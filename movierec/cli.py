"""`movierec` command line: data fetch|inspect|split, train, evaluate, recommend.

Human-readable output goes to stdout (progress to stderr); `--json` prints one machine-readable JSON
document instead.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import click
import numpy as np

# First of the movierec imports: it hides TensorFlow's start-up logs unless --verbose, which only
# works before anything below imports TensorFlow (see the module).
import movierec.quiet_startup  # noqa: F401
from movierec.constants import DEFAULT_METRIC, DEFAULT_SESSION_GAP
from movierec.data import DataError, Dataset, fetch_dataset, load_dataset, resolve_dataset
from movierec.data.fetch import KNOWN_DATASETS
from movierec.evaluation import top_k
from movierec.experiment import (
    EvaluationSettings,
    aggregate_runs,
    paired_comparison,
    prepare,
    run_experiment,
    seen_items,
)
from movierec.models import MODELS, QueryBatch, UserSequences, load_model, save_model
from movierec.split_files import MANIFEST, manifest, write_split
from movierec.splits import PROTOCOLS, make_split, same_second_share
from movierec.stream import QUERY_MODES, EventStream

HEADLINE = ("recall@20", "mrr@20", "ndcg@10", "precision@5", "map", "auc", "rmse", "mae")
DETAIL_METRICS = ("recall@20", "mrr@20")


def _echo_json(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2, sort_keys=False))


def _load(data: str, data_dir: Path | None, strict: bool) -> Dataset:
    try:
        dataset = load_dataset(resolve_dataset(data, data_dir), strict=strict)
    except DataError as error:
        raise click.ClickException(str(error)) from error
    if dataset.report.total_rejected:
        click.echo(dataset.report.summary(), err=True)
    return dataset


def parse_hparams(pairs: tuple[str, ...]) -> dict[str, Any]:
    """`--set KEY=VALUE` pairs: VALUE as JSON where it parses, else as a string."""
    hparams = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--set")
        try:
            hparams[key] = json.loads(value)
        except json.JSONDecodeError:
            hparams[key] = value
    return hparams


def _known_hparams(model_name: str) -> set[str]:
    return set(MODELS[model_name].factory().get_config())


def _hparams_for(model_name: str, hparams: dict[str, Any], seed: int) -> dict[str, Any]:
    """The --set values this model takes (several models may be evaluated in one call); --seed seeds
    every model that takes a seed unless --set seed=... says otherwise."""
    known = _known_hparams(model_name)
    chosen = {k: v for k, v in hparams.items() if k in known}
    if "seed" in known:
        chosen.setdefault("seed", seed)
    return chosen


def data_options(f):
    f = click.option("--strict", is_flag=True, help="Stop at the first malformed or rejected row.")(f)
    f = click.option(
        "--data-dir",
        type=click.Path(path_type=Path),
        envvar="MOVIEREC_DATA_DIR",
        help="Where named datasets live (default: $MOVIEREC_DATA_DIR or ~/.cache/movierec/data).",
    )(f)
    f = click.option(
        "--data",
        required=True,
        help="A dataset name (ml-100k, ml-1m, ...) in --data-dir, or a folder of GroupLens/Netflix files "
        "or session-tsv split files.",
    )(f)
    return f


def protocol_options(f):
    f = click.option(
        "--session-gap",
        default=DEFAULT_SESSION_GAP,
        show_default=True,
        help="Seconds of inactivity that end a session (session-based models and Item-KNN).",
    )(f)
    f = click.option(
        "--seed",
        default=0,
        show_default=True,
        help="Seed of the validation/test user split, the models and the bootstrap.",
    )(f)
    f = click.option(
        "--test-fraction",
        default=0.2,
        show_default=True,
        help="temporal: share of the latest events that form the evaluation period.",
    )(f)
    return f


def _split_params(protocol: str, test_fraction: float, seed: int) -> dict[str, Any]:
    return {"test_fraction": test_fraction, "seed": seed} if protocol == "temporal" else {}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--verbose",
    is_flag=True,
    expose_value=False,  # acted on at start-up, before TensorFlow loads: see movierec/quiet_startup.py
    help="Show TensorFlow's native start-up and C++ log messages (CUDA/cuInit, oneDNN), hidden by default.",
)
def main() -> None:
    """Train, evaluate and query sequential movie recommenders."""


@main.group()
def data() -> None:
    """Download, inspect and split datasets."""


@data.command("fetch")
@click.argument("name", type=click.Choice(sorted(KNOWN_DATASETS)))
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    envvar="MOVIEREC_DATA_DIR",
    help="Where to keep it (default: $MOVIEREC_DATA_DIR or ~/.cache/movierec/data).",
)
def data_fetch(name: str, data_dir: Path | None) -> None:
    """Download NAME from GroupLens, check its checksum and unpack it (once; later calls reuse it)."""
    bar = None

    def progress(done: int, total: int | None) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total or 0, label=f"downloading {name}", file=sys.stderr)
            bar.__enter__()
        bar.update(done - bar.pos)

    try:
        path = fetch_dataset(name, data_dir, progress=progress)
    except DataError as error:
        raise click.ClickException(str(error)) from error
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    click.echo(str(path))


@data.command("inspect")
@data_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def data_inspect(data: str, data_dir: Path | None, strict: bool, as_json: bool) -> None:
    """Load a dataset and report its size, time span and rejected rows."""
    dataset = _load(data, data_dir, strict)
    frame = dataset.interactions
    summary = {
        "name": dataset.name,
        "layout": dataset.layout,
        "files": [str(f) for f in dataset.files],
        "checksum": dataset.checksum,
        "time_unit": dataset.time_unit,
        "interactions": len(frame),
        "users": int(frame["user_id"].nunique()),
        "items": int(frame["item_id"].nunique()),
        "first_timestamp": int(frame["timestamp"].min()),
        "last_timestamp": int(frame["timestamp"].max()),
        "same_second_share": round(same_second_share(frame), 4),
        "rating_counts": {str(k): int(v) for k, v in frame["rating"].value_counts().sort_index().items()},
        "report": dataset.report.to_dict(),
    }
    if as_json:
        _echo_json(summary)
        return
    for key in (
        "name",
        "layout",
        "checksum",
        "time_unit",
        "interactions",
        "users",
        "items",
        "first_timestamp",
        "last_timestamp",
        "same_second_share",
    ):
        click.echo(f"{key:16} {summary[key]}")
    click.echo(f"{'ratings':16} {summary['rating_counts']}")
    click.echo(dataset.report.summary())


@data.command("split")
@data_options
@click.option(
    "--protocol",
    default="temporal",
    show_default=True,
    type=click.Choice(sorted(PROTOCOLS)),
    help="Protocol whose split is written.",
)
@protocol_options
@click.option(
    "--out",
    required=True,
    help="Folder (or URI) to write train.tsv, validation.tsv, test.tsv and split.json into; "
    "`--data OUT --protocol given-split` reads it back.",
)
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print split.json's content.")
def data_split(
    data: str,
    data_dir: Path | None,
    strict: bool,
    protocol: str,
    session_gap: int,
    seed: int,
    test_fraction: float,
    out: str,
    force: bool,
    as_json: bool,
) -> None:
    """Write a protocol's split as files any command reads back.

    Only the kept rows are written (UserId, ItemId, Rating, Time; SessionId for session data); what the
    protocol dropped is counted in split.json, with its parameters and the source data's checksum.
    `movierec evaluate --data OUT --protocol given-split` then gives exactly the metrics of
    `--data DATA --protocol PROTOCOL`. --session-gap is not part of the split: it is recorded in
    split.json for the commands that read it back.
    """
    dataset = _load(data, data_dir, strict)
    try:
        split = make_split(dataset.interactions, protocol, **_split_params(protocol, test_fraction, seed))
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    extra = {"session_gap": session_gap}
    try:
        written = write_split(dataset, split, out, overwrite=force, extra=extra)
    except FileExistsError as error:
        raise click.ClickException(f"{error}") from error
    except OSError as error:
        raise click.ClickException(f"cannot write the split to {out}: {error}") from error
    record = manifest(dataset, split, extra)
    if as_json:
        _echo_json(record)
        return
    rows = ", ".join(f"{role} {n}" for role, n in record["rows"].items())
    dropped = ", ".join(f"{k} {v}" for k, v in split.dropped.items()) or "none"
    click.echo(f"{protocol} split of {dataset.name} written to {written}: {rows} rows (dropped: {dropped})")
    click.echo(f"read it back with: movierec evaluate --data {written} --protocol given-split ...")
    click.echo(f"parameters and source checksum: {MANIFEST}")


def _cell(result: dict[str, Any], metric: str) -> str:
    if metric not in result["metrics"]:
        return f"{'':>13}"
    if metric in result.get("metrics_std", {}):
        return f"{result['metrics'][metric]:.4f}±{result['metrics_std'][metric]:.3f}".rjust(13)
    return f"{result['metrics'][metric]:13.4f}"


def _format_table(results: list[dict[str, Any]]) -> str:
    columns = [m for m in HEADLINE if any(m in r["metrics"] for r in results)]
    header = f"{'protocol':15} {'model':9} " + " ".join(f"{c:>13}" for c in columns)
    lines = [header, "-" * len(header)]
    for r in results:
        cells = [_cell(r, c) for c in columns]
        lines.append(f"{r['protocol']['protocol']:15} {r['model']:9} " + " ".join(cells))
    lines += ["", "95% user-bootstrap intervals; spreads over split seeds and model seeds (std):"]
    for r in results:
        for metric in DETAIL_METRICS:
            if metric not in r["metrics"]:
                continue
            low, high = r["intervals"].get(metric, (float("nan"),) * 2)
            spread = r.get("spread", {})
            spreads = "".join(
                f"  {label} ±{spread[key][metric]:.4f}"
                for key, label in (("split_seed", "split"), ("model_seed", "seed"))
                if metric in spread.get(key, {})
            )
            line = f"{r['protocol']['protocol']:15} {r['model']:9} {metric:9} {r['metrics'][metric]:.4f}"
            lines.append(f"{line} [{low:.4f}, {high:.4f}]{spreads}")
            paired = r.get("versus", {}).get("paired_difference", {}).get(metric)
            if paired:
                lines.append(
                    f"{'':25} {'− ' + r['versus']['model']:9} {paired['difference']:+.4f} "
                    f"[{paired['low']:+.4f}, {paired['high']:+.4f}]  p(≤0) {paired['p_not_greater']:.3f}"
                )
    return "\n".join(lines)


@main.command()
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
    type=click.Choice(["test", "validation"]),
    default="test",
    show_default=True,
    help="Which held-out events to evaluate on.",
)
@click.option(
    "--query-mode",
    type=click.Choice(QUERY_MODES),
    default="next-item",
    show_default=True,
    help="next-item: every held-out event is a query; user: one top-N list per user.",
)
@click.option("--keep-seen", is_flag=True, help="Do not remove already-seen items from the rankings.")
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
    hparam_pairs,
    bootstrap,
    session_gap,
    seed,
    test_fraction,
    output,
    as_json,
    repeat,
    versus,
) -> None:
    """Fit each model on the training events and report full-catalogue metrics."""
    dataset = _load(data, data_dir, strict)
    settings = EvaluationSettings(
        role=role, query_mode=query_mode, exclude_seen=not keep_seen, bootstrap_resamples=bootstrap, seed=seed
    )
    hparams = parse_hparams(hparam_pairs)
    unknown = set(hparams) - set().union(*(_known_hparams(name) for name in models))
    if unknown:
        raise click.BadParameter(f"no selected model takes {', '.join(sorted(unknown))}", param_hint="--set")
    if versus and versus not in models:
        models = (*models, versus)
    results = []
    for protocol in protocols:
        # leave-last-out has no random part: one split whatever --repeat says
        split_seeds = [seed + r for r in range(repeat)] if protocol == "temporal" else [seed]
        runs: dict[str, list] = {name: [] for name in models}
        for split_seed in split_seeds:
            split, stream = prepare(
                dataset, protocol, session_gap, **_split_params(protocol, test_fraction, split_seed)
            )
            for name in models:
                click.echo(
                    f"{protocol} (split seed {split_seed}): fitting {name} on "
                    f"{len(stream.training_data().sequences.items)} events",
                    err=True,
                )
                seeded = "seed" in _known_hparams(name) and "seed" not in hparams
                runs[name].extend(
                    run_experiment(
                        dataset,
                        name,
                        split=split,
                        stream=stream,
                        hparams=_hparams_for(name, hparams, seed + r),
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
        _write_atomically(output, json.dumps(results, indent=2))
    if as_json:
        _echo_json(results)
    else:
        click.echo(_format_table(results))


def _write_atomically(path: Path, text: str) -> None:
    """A failed run never leaves a half-written file in place of a good one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
        handle.write(text)
    Path(handle.name).replace(path)


def _save_stream(stream: EventStream, directory: Path) -> None:
    seq = stream.sequences
    np.savez_compressed(
        directory / "stream.npz",
        user_ids=stream.user_ids,
        item_ids=stream.item_ids,
        indptr=seq.indptr,
        items=seq.items,
        ratings=seq.ratings,
        timestamps=seq.timestamps,
        session_start=seq.session_start,
        roles=stream.roles,
        session_gap=stream.session_gap,
    )


def _load_stream(directory: Path) -> EventStream:
    arrays = np.load(directory / "stream.npz")
    sequences = UserSequences(
        arrays["indptr"], arrays["items"], arrays["ratings"], arrays["timestamps"], arrays["session_start"]
    )
    return EventStream(
        arrays["user_ids"], arrays["item_ids"], sequences, arrays["roles"], int(arrays["session_gap"])
    )


@main.command()
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
    output,
    as_json,
) -> None:
    """Train a model, report its validation metrics and save it for `movierec recommend`."""
    hparams = parse_hparams(hparam_pairs)
    unknown = set(hparams) - _known_hparams(model_name)
    if unknown:
        raise click.BadParameter(
            f"{model_name} does not take {', '.join(sorted(unknown))}", param_hint="--set"
        )
    dataset = _load(data, data_dir, strict)
    split, stream = prepare(dataset, protocol, session_gap, **_split_params(protocol, test_fraction, seed))
    model, result = run_experiment(
        dataset,
        model_name,
        split=split,
        stream=stream,
        hparams=_hparams_for(model_name, hparams, seed),
        settings=EvaluationSettings(role="validation", seed=seed),
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        save_model(model, staging)
        _save_stream(stream, staging)
        (staging / "result.json").write_text(json.dumps(result.to_dict(), indent=2))
        if output.exists():
            shutil.rmtree(output)
        staging.rename(output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if as_json:
        _echo_json(result.to_dict())
    else:
        click.echo(_format_table([result.to_dict()]))
        click.echo(f"saved to {output}")


@main.command()
@click.option(
    "--model-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="A folder written by `movierec train`.",
)
@click.option("--user", "users", multiple=True, required=True, help="Raw user id (repeatable).")
@click.option("-k", "--top", "k", default=10, show_default=True, help="How many items to recommend.")
@click.option("--keep-seen", is_flag=True, help="Allow items the user has already rated.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def recommend(model_dir: Path, users: tuple[str, ...], k: int, keep_seen: bool, as_json: bool) -> None:
    """Top-K items for users, given everything the model saw of them."""
    model = load_model(model_dir)
    stream = _load_stream(model_dir)
    encoded = stream.encode_users(list(users))
    unknown = [u for u, e in zip(users, encoded, strict=True) if e < 0]
    if unknown:
        raise click.ClickException(
            f"unknown user id(s) {', '.join(unknown)}: not in the model's training data"
        )
    history_length = np.diff(stream.sequences.indptr)[encoded]
    starts = stream.sequences.indptr[encoded]
    session_starts = np.array(
        [
            int(np.flatnonzero(stream.sequences.session_start[s : s + n])[-1]) if n else 0
            for s, n in zip(starts, history_length, strict=True)
        ]
    )
    batch = QueryBatch(encoded, history_length, session_starts, stream.sequences)
    scores = model.score(batch)
    excluded = None if keep_seen else seen_items(encoded, history_length, stream)
    indices, values = top_k(scores, k, excluded)
    output = {
        raw: [{"item_id": str(stream.item_ids[i]), "score": float(v)} for i, v in zip(idx, val, strict=True)]
        for raw, idx, val in zip(users, indices, values, strict=True)
    }
    if as_json:
        _echo_json(output)
        return
    for raw, items in output.items():
        click.echo(f"user {raw}: " + ", ".join(f"{it['item_id']} ({it['score']:.3f})" for it in items))


@main.group("pipeline")
def pipeline_group() -> None:
    """Run the TFX pipeline (LocalDagRunner) or compile it for Kubeflow."""


def pipeline_options(f):
    options = [
        click.option(
            "--data", required=True, help="Dataset name in --data-dir, or a folder of GroupLens files."
        ),
        click.option(
            "--data-dir",
            type=click.Path(path_type=Path),
            envvar="MOVIEREC_DATA_DIR",
            help="Where named datasets live.",
        ),
        click.option(
            "--output-dir",
            default="runs/pipeline",
            show_default=True,
            help="Pipeline root, ML Metadata and pushed models go below it.",
        ),
        click.option(
            "--model",
            "model_name",
            default="gru4rec",
            show_default=True,
            type=click.Choice(list(MODELS)),
            help="Model the Trainer trains.",
        ),
        click.option("--set", "hparam_pairs", multiple=True, metavar="KEY=VALUE", help="Hyper-parameter."),
        click.option(
            "--metric", default=DEFAULT_METRIC, show_default=True, help="Metric the blessing compares."
        ),
        click.option(
            "--margin",
            default=0.0,
            show_default=True,
            help="Relative improvement over the baseline needed for the blessing (0.1 = 10%).",
        ),
        click.option(
            "--regression-confidence",
            default=0.95,
            show_default=True,
            type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
            help="Confidence of the paired user-bootstrap interval of candidate - latest blessed model "
            "(validation users); the candidate is refused when the whole interval is below "
            "-tolerance x the blessed model's value.",
        ),
        click.option(
            "--regression-tolerance",
            default=0.0,
            show_default=True,
            type=click.FloatRange(min=0.0),
            help="Relative loss against the latest blessed model that is accepted even when significant "
            "(0.02 = 2%).",
        ),
        click.option(
            "--baseline",
            default="pop",
            show_default=True,
            type=click.Choice(list(MODELS)),
            help="Baseline the Evaluator trains and the candidate must beat.",
        ),
        click.option(
            "--distribute",
            type=click.Choice(["mirrored"]),
            help="Train under tf.distribute.MirroredStrategy over the local GPUs (or logical CPUs).",
        ),
        click.option(
            "--beam-arg",
            "beam_args",
            multiple=True,
            help="Beam pipeline argument, e.g. --beam-arg=--direct_num_workers=2 (repeatable).",
        ),
        click.option(
            "--schema",
            "schema_path",
            help="Schema (schema.pbtxt) the data must satisfy, instead of the reviewed "
            "pipeline/schema/schema.pbtxt; violations stop the run before training.",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _pipeline_config(
    data,
    data_dir,
    output_dir,
    model_name,
    hparam_pairs,
    metric,
    margin,
    baseline,
    distribute,
    beam_args,
    regression_confidence=0.95,
    regression_tolerance=0.0,
    schema_path=None,
    local_data=True,
):
    from movierec.pipeline.config import PipelineConfig
    from movierec.pipeline.pipeline import servable_models

    if model_name not in servable_models():
        raise click.BadParameter(
            f"{model_name} has no TF Serving export yet; choose one of {', '.join(servable_models())}",
            param_hint="--model",
        )
    if local_data:
        try:
            data = str(resolve_dataset(data, data_dir))
        except DataError as error:
            raise click.ClickException(str(error)) from error
    if schema_path and "://" not in schema_path:
        if not Path(schema_path).is_file():
            raise click.BadParameter(f"no schema file at {schema_path}", param_hint="--schema")
        schema_path = str(Path(schema_path).resolve())  # components may run in another directory
    remote_output = "://" in output_dir
    config = PipelineConfig(
        data_path=data,
        output_dir=output_dir if remote_output else str(Path(output_dir).resolve()),
        model=model_name,
        hparams=parse_hparams(hparam_pairs),
        metric=metric,
        margin=margin,
        regression_confidence=regression_confidence,
        regression_tolerance=regression_tolerance,
        baseline=baseline,
        distribute=distribute,
        schema_path=schema_path,
    )
    if beam_args:
        config.beam_pipeline_args = list(beam_args)
    return config


@pipeline_group.command("run")
@pipeline_options
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON.")
def pipeline_run(as_json: bool, **options) -> None:
    """Run the whole pipeline locally; print the blessing, the metrics and where the model was pushed."""
    from movierec.pipeline.runners.local import run as run_local

    summary = run_local(_pipeline_config(**options))
    if as_json:
        _echo_json(summary)
        return
    evaluation = summary.get("evaluation", {})
    click.echo(f"blessed: {summary.get('blessed')} ({summary.get('reason', '')})")
    for name, splits in evaluation.get("results", {}).items():
        test = splits.get("test", {})
        click.echo(f"  {name:20} test " + " ".join(f"{m}={test[m]:.4f}" for m in HEADLINE if m in test))
    click.echo(f"pushed model: {summary.get('pushed_model', 'none (not blessed)')}")


@pipeline_group.command("compile")
@pipeline_options
@click.option(
    "--image", default="movierec:latest", show_default=True, help="Container image (see Dockerfile)."
)
@click.option(
    "--spec",
    default="movierec_pipeline.json",
    show_default=True,
    help="Where to write the Kubeflow Pipelines v2 spec (a file, or a gs:// URI).",
)
@click.option("--data-fingerprint", help="Cache key of the data when --data is only readable by the pods.")
def pipeline_compile(image: str, spec: str, data_fingerprint: str | None, **options) -> None:
    """Compile the pipeline to a Kubeflow Pipelines v2 (Vertex AI) JSON spec.

    --data is the folder as the pods see it (e.g. /gcs/BUCKET/ml-100k on Vertex AI); when it is not
    readable here, give --data-fingerprint (e.g. the data's version), which keys ExampleGen's cache.
    Compiling reads and writes no storage but the spec: a gs:// --output-dir needs no bucket here.
    """
    import tensorflow as tf

    from movierec.pipeline.pipeline import data_fingerprint as fingerprint_of
    from movierec.pipeline.runners.kubeflow_v2 import compile_pipeline

    local = Path(options["data"]).is_dir()
    if not local and not data_fingerprint:
        raise click.BadParameter(
            "the data folder is not readable here: give --data-fingerprint", param_hint="--data"
        )
    config = _pipeline_config(**options, local_data=local)
    try:
        fingerprint = data_fingerprint or fingerprint_of(config.data_path)
        written = compile_pipeline(config, spec, image=image, fingerprint=fingerprint)
    except (OSError, RuntimeError, ValueError, tf.errors.OpError) as error:
        # One line, not a traceback: an unwritable --spec (TFX raises RuntimeError when its folder is a
        # file), unreadable data, storage errors (an unreachable gs:// --spec; their text spans lines).
        raise click.ClickException(f"cannot compile the pipeline: {' '.join(str(error).split())}") from error
    click.echo(written)


if __name__ == "__main__":
    main()
