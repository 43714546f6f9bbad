"""`movierec pipeline run|compile`: the TFX pipeline on LocalDagRunner, or its Kubeflow v2 spec.

TFX is imported inside the commands, so the other commands start without it."""

from __future__ import annotations

import json
from pathlib import Path

import click

from movierec.cli.common import HEADLINE, check_hparams, echo_json, parse_hparams
from movierec.constants import DEFAULT_METRIC
from movierec.data import DataError, resolve_dataset
from movierec.models import MODELS
from movierec.pipeline.config import DEFAULT_TUNE_MINUTES, DEFAULT_TUNE_PATIENCE, DEFAULT_TUNE_TRIALS


@click.group("pipeline")
def pipeline_group() -> None:
    """Run the TFX pipeline (LocalDagRunner) or compile it for Kubeflow."""


def parse_tune_budget(ctx, param, value: str) -> tuple[int, float | None]:
    """`--tune-budget 8:5` → (8 trials, 5 minutes); `8` → (8, no time limit)."""
    trials, _, minutes = value.partition(":")
    try:
        parsed = (int(trials), float(minutes) if minutes else None)
    except ValueError:
        parsed = (0, None)
    if parsed[0] < 1 or (parsed[1] is not None and not parsed[1] > 0):
        raise click.BadParameter(
            f"expected TRIALS[:MINUTES], e.g. 8:5 (trials >= 1, minutes > 0), got {value!r}",
            ctx=ctx,
            param=param,
        )
    return parsed


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
            "--max-rmse",
            default=1.1,
            show_default=True,
            type=click.FloatRange(min=0.0, min_open=True),
            help="Rating models (blessed by TFMA): the validation users' RMSE must be at most this.",
        ),
        click.option(
            "--rmse-tolerance",
            default=0.01,
            show_default=True,
            type=click.FloatRange(min=0.0),
            help="Rating models: how much higher than the latest blessed model's RMSE a candidate's may be.",
        ),
        click.option(
            "--distribute",
            type=click.Choice(["mirrored"]),
            help="Train under tf.distribute.MirroredStrategy over the local GPUs (or logical CPUs).",
        ),
        click.option(
            "--piece-mb",
            default=64,
            show_default=True,
            type=click.IntRange(min=1),
            help="ExampleGen reads rating files in pieces of about this size (one piece per worker "
            "task: the bound on a worker's parse memory).",
        ),
        click.option(
            "--evaluation-users-per-batch",
            default=256,
            show_default=True,
            type=click.IntRange(min=1),
            help="Users a Beam worker of the RankingEvaluator scores at once.",
        ),
        click.option(
            "--beam-arg",
            "beam_args",
            multiple=True,
            help="Beam pipeline argument, e.g. --beam-arg=--direct_num_workers=2 (repeatable).",
        ),
        click.option(
            "--tune/--no-tune",
            default=True,
            show_default=True,
            help="Run the Tuner before the Trainer: search the model's declared space on the validation "
            "users; the Trainer trains the best values (over --set). Models without a space are not tuned.",
        ),
        click.option(
            "--tune-budget",
            default=f"{DEFAULT_TUNE_TRIALS}:{DEFAULT_TUNE_MINUTES:g}",
            show_default=True,
            callback=parse_tune_budget,
            metavar="TRIALS[:MINUTES]",
            help="The Tuner's budget: trials at most (trial 0 = the defaults) and minutes of trial time.",
        ),
        click.option(
            "--tune-patience",
            default=DEFAULT_TUNE_PATIENCE,
            show_default=True,
            type=click.IntRange(min=0),
            help="Stop the search after this many trials in a row without improvement (0: never).",
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
    max_rmse=1.1,
    rmse_tolerance=0.01,
    schema_path=None,
    tune=True,
    tune_budget=(DEFAULT_TUNE_TRIALS, DEFAULT_TUNE_MINUTES),
    tune_patience=DEFAULT_TUNE_PATIENCE,
    piece_mb=64,
    evaluation_users_per_batch=256,
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
    hparams = parse_hparams(hparam_pairs)
    check_hparams((model_name,), hparams)
    remote_output = "://" in output_dir
    config = PipelineConfig(
        data_path=data,
        output_dir=output_dir if remote_output else str(Path(output_dir).resolve()),
        model=model_name,
        hparams=hparams,
        metric=metric,
        margin=margin,
        regression_confidence=regression_confidence,
        regression_tolerance=regression_tolerance,
        baseline=baseline,
        max_rmse=max_rmse,
        rmse_tolerance=rmse_tolerance,
        distribute=distribute,
        schema_path=schema_path,
        tune=tune,
        tune_trials=tune_budget[0],
        tune_minutes=tune_budget[1],
        tune_patience=tune_patience or None,
        example_gen_piece_bytes=piece_mb << 20,
        evaluation_users_per_batch=evaluation_users_per_batch,
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
        echo_json(summary)
        return
    tuning = summary.get("tuning", {})
    if "trials" in tuning:
        click.echo(f"tuned: {len(tuning['trials'])} trials; trained {json.dumps(tuning['best'])}")
        if tuning.get("report"):
            click.echo(f"  trials table and plot: {tuning['report']}")
    elif tuning.get("not_tuned"):
        click.echo(f"not tuned: {tuning['not_tuned']}")
    evaluation = summary.get("evaluation", {})
    click.echo(f"blessed: {summary.get('blessed')} ({summary.get('reason', '')})")
    for name, splits in evaluation.get("results", {}).items():
        test = splits.get("test", {})
        click.echo(f"  {name:20} test " + " ".join(f"{m}={test[m]:.4f}" for m in HEADLINE if m in test))
    sliced = summary.get("rating_evaluation", {})
    for name in sorted(sliced, key=lambda n: (n != "overall", n)):  # overall first, then by slice
        metrics = sliced[name]
        shown = " ".join(f"{m}={metrics[m]:.4f}" for m in sorted(metrics) if m != "example_count")
        click.echo(f"  TFMA validation {name} ({int(metrics.get('example_count', 0))} ratings): {shown}")
    side = summary.get("side_features")
    if side is not None:
        off = "; ".join(f"{name} ({why})" for name, why in side.get("off", {}).items()) or "none"
        click.echo(f"side features on: {', '.join(side.get('on', [])) or 'none'}; off: {off}")
    click.echo(f"pushed model: {summary.get('pushed_model', 'none (not blessed)')}")


@pipeline_group.command("compile")
@pipeline_options
@click.option(
    "--image",
    default="movierec:latest",
    show_default=True,
    help="Container image (see Dockerfile). With --trainer-gpus, the GPU variant "
    "(docker build --build-arg VARIANT=gpu): the CPU image has no CUDA libraries and trains on the CPU.",
)
@click.option(
    "--trainer-gpus",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="GPUs the Trainer's container requests (no other component gets any). More than 1 needs "
    "--distribute mirrored.",
)
@click.option(
    "--trainer-accelerator",
    default="NVIDIA_TESLA_T4",  # runners.kubeflow_v2.DEFAULT_ACCELERATOR (TFX is imported late)
    show_default=True,
    help="Accelerator type of --trainer-gpus as the backend names it: Vertex AI's enum "
    "(NVIDIA_TESLA_T4, NVIDIA_L4, NVIDIA_TESLA_A100, ...) or, on Kubeflow Pipelines, nvidia.com/gpu.",
)
@click.option(
    "--spec",
    default="movierec_pipeline.json",
    show_default=True,
    help="Where to write the Kubeflow Pipelines v2 spec (a file, or a gs:// URI).",
)
@click.option("--data-fingerprint", help="Cache key of the data when --data is only readable by the pods.")
def pipeline_compile(
    image: str,
    trainer_gpus: int,
    trainer_accelerator: str,
    spec: str,
    data_fingerprint: str | None,
    **options,
) -> None:
    """Compile the pipeline to a Kubeflow Pipelines v2 (Vertex AI) JSON spec.

    --data is the folder as the pods see it (e.g. /gcs/BUCKET/ml-100k on Vertex AI); when it is not
    readable here, give --data-fingerprint (e.g. the data's version), which keys ExampleGen's cache.
    Compiling reads and writes no storage but the spec: a gs:// --output-dir needs no bucket here.
    --trainer-gpus N puts the Trainer on a node with N GPUs; give the GPU image as --image.
    """
    import tensorflow as tf

    from movierec.pipeline.pipeline import data_fingerprint as fingerprint_of
    from movierec.pipeline.runners.kubeflow_v2 import compile_pipeline

    if trainer_gpus > 1 and options["distribute"] != "mirrored":
        raise click.BadParameter(
            f"{trainer_gpus} GPUs need --distribute mirrored: without it the Trainer uses one",
            param_hint="--trainer-gpus",
        )
    if trainer_gpus and not trainer_accelerator.strip():
        raise click.BadParameter("give an accelerator type", param_hint="--trainer-accelerator")
    local = Path(options["data"]).is_dir()
    if not local and not data_fingerprint:
        raise click.BadParameter(
            "the data folder is not readable here: give --data-fingerprint", param_hint="--data"
        )
    config = _pipeline_config(**options, local_data=local)
    try:
        fingerprint = data_fingerprint or fingerprint_of(config.data_path)
        written = compile_pipeline(
            config,
            spec,
            image=image,
            fingerprint=fingerprint,
            trainer_gpus=trainer_gpus,
            trainer_accelerator=trainer_accelerator.strip(),
        )
    except (OSError, RuntimeError, ValueError, tf.errors.OpError) as error:
        # One line, not a traceback: an unwritable --spec (TFX raises RuntimeError when its folder is a
        # file), unreadable data, storage errors (an unreachable gs:// --spec; their text spans lines).
        raise click.ClickException(f"cannot compile the pipeline: {' '.join(str(error).split())}") from error
    click.echo(written)
