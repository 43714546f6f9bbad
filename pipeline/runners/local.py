"""Runs the pipeline on TFX's LocalDagRunner and summarises the run from ML Metadata."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

from ml_metadata import errors
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx
from tfx.components.evaluator import constants as evaluator_constants

from movierec import storage
from movierec.components.ranking_evaluator import RECOMMENDER_DIR
from movierec.components.side_tables import SIDE_FEATURES_FILE
from movierec.models import get_spec
from movierec.pipeline.config import PipelineConfig
from movierec.pipeline.modules.tuner import best_hyperparameters, search_directory
from movierec.pipeline.pipeline import create_pipeline, not_tuned_because


def run(config: PipelineConfig) -> dict[str, Any]:
    with run_temporary_folder():
        tfx.orchestration.LocalDagRunner().run(create_pipeline(config))
    return summarize(config)


@contextlib.contextmanager
def run_temporary_folder() -> Iterator[str]:
    """The run's temporary files (Python's `tempfile`) in one folder, removed when the run ends.

    Why: each TFX Beam executor builds an sdist of TFX (~50 MB) under `tempfile.mkdtemp()` for remote
    workers when the Beam arguments name no worker packages, and never removes it; LocalDagRunner runs
    the executors in this process, so they land here and go with the folder."""
    previous = tempfile.tempdir
    folder = tempfile.mkdtemp(prefix="movierec-run-")
    tempfile.tempdir = folder
    try:
        yield folder
    finally:
        tempfile.tempdir = previous
        shutil.rmtree(folder, ignore_errors=True)


def _latest(store, pipeline_name: str, type_name: str, producer: str | None = None):
    """The newest artifact of `type_name` in this pipeline's context (several models' pipelines may
    share one metadata store); with `producer`, the newest one an execution of that component type
    (e.g. "RankingEvaluator", "Evaluator") wrote."""
    context = store.get_context_by_type_and_name("pipeline", pipeline_name)
    try:
        type_id = store.get_artifact_type(type_name).id
    except errors.NotFoundError:
        return None
    if context is None:
        return None
    artifacts = sorted(
        (a for a in store.get_artifacts_by_context(context.id) if a.type_id == type_id),
        key=lambda a: a.id,
        reverse=True,
    )
    if producer is None or not artifacts:
        return artifacts[0] if artifacts else None
    for artifact in artifacts:
        # the execution that wrote it (the Pusher, say, only read it)
        events = store.get_events_by_artifact_ids([artifact.id])
        writers = [e.execution_id for e in events if e.type == metadata_store_pb2.Event.OUTPUT]
        executions = store.get_executions_by_id(writers)
        types = store.get_execution_types_by_id([e.type_id for e in executions])
        if any(t.name.rsplit(".", 1)[-1] == producer for t in types):
            return artifact
    return None


def rating_metrics(evaluation_uri: str) -> dict[str, Any]:
    """The TFMA Evaluator's candidate metrics per slice: {"overall" | "feature=value": {metric: value}}."""
    import tensorflow_model_analysis as tfma

    # the candidate's name once a baseline ran beside it; the first run evaluates one unnamed model
    result = tfma.load_eval_result(evaluation_uri, model_name="candidate")
    if not result.slicing_metrics:
        result = tfma.load_eval_result(evaluation_uri)
    sliced = {}
    for slice_key, metrics in result.slicing_metrics:
        name = ", ".join(f"{feature}={value}" for feature, value in slice_key) or "overall"
        values = next(iter(next(iter(metrics.values())).values()))  # the one output, no sub-key
        sliced[name] = {
            metric: value.get("doubleValue", value.get("boundedValue", {}).get("value"))
            for metric, value in values.items()
            if not metric.startswith("_")
        }
    return sliced


def tuning_summary(store, config: PipelineConfig) -> dict[str, Any]:
    """What the Tuner of the last run found: every finished trial (TFX's `tuner_results`: trial id,
    validation score, values), the best values the Trainer trained, and the folder of the trials'
    table and plot; or why the run was not tuned."""
    why = not_tuned_because(config)
    if why:
        return {"not_tuned": why}
    best = _latest(store, config.pipeline_name, "HyperParameters", "Tuner")
    results = _latest(store, config.pipeline_name, "TunerResults", "Tuner")
    if best is None or results is None:
        return {}
    (best_file,) = storage.files_below(best.uri)
    summary: dict[str, Any] = {
        "best": best_hyperparameters(
            config.model, json.loads(storage.read_text(storage.join(best.uri, best_file)))
        ),
        "trials": json.loads(storage.read_text(f"{results.uri}/tuner_results.json")),
        "metric": "rmse" if get_spec(config.model).rating else config.metric,
    }
    # the search folder: keyed by the Tuner execution's custom_config and its input histories
    events = store.get_events_by_artifact_ids([results.id])
    execution_id = max(e.execution_id for e in events if e.type == metadata_store_pb2.Event.OUTPUT)
    (execution,) = store.get_executions_by_id([execution_id])
    inputs = [
        e.artifact_id
        for e in store.get_events_by_execution_ids([execution_id])
        if e.type == metadata_store_pb2.Event.INPUT
    ]
    histories = [a.uri for a in store.get_artifacts_by_id(inputs) if "user_histories" in a.uri]
    custom = execution.custom_properties.get("custom_config")
    if custom is not None and len(histories) == 1:
        summary["report"] = search_directory(json.loads(custom.string_value), histories[0])
    return summary


def summarize(config: PipelineConfig) -> dict[str, Any]:
    """What the last run produced: blessing, metrics, pushed model (read back from ML Metadata). For
    rating models the TFMA Evaluator's blessing gates the push; its sliced metrics are added."""
    connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_db)
    store = metadata_store.MetadataStore(connection)
    rating = get_spec(config.model).rating
    name = config.pipeline_name
    blessing = _latest(store, name, "ModelBlessing", "Evaluator" if rating else "RankingEvaluator")
    evaluation = _latest(store, name, "ModelEvaluation", "RankingEvaluator")
    pushed = _latest(store, name, "PushedModel")
    summary: dict[str, Any] = {"metadata": config.metadata_db, "executions": len(store.get_executions())}
    if blessing is not None:
        summary["blessed"] = bool(
            blessing.custom_properties[evaluator_constants.ARTIFACT_PROPERTY_BLESSED_KEY].int_value
        )
        if "reason" in blessing.custom_properties:
            summary["reason"] = blessing.custom_properties["reason"].string_value
    if evaluation is not None:
        summary["evaluation"] = json.loads(storage.read_text(f"{evaluation.uri}/metrics.json"))
    if rating:
        tfma_evaluation = _latest(store, name, "ModelEvaluation", "Evaluator")
        if tfma_evaluation is not None:
            summary["rating_evaluation"] = rating_metrics(tfma_evaluation.uri)
            if blessing is not None and "reason" not in summary:
                overall = summary["rating_evaluation"].get("overall", {})
                summary["reason"] = (
                    f"TFMA: validation RMSE {overall.get('root_mean_squared_error', float('nan')):.4f}, "
                    f"bound {config.max_rmse}, tolerance vs latest blessed {config.rmse_tolerance}"
                )
    summary["tuning"] = tuning_summary(store, config)
    model = _latest(store, name, "Model")
    side_features = f"{model.uri}/{RECOMMENDER_DIR}/{SIDE_FEATURES_FILE}" if model is not None else None
    if side_features is not None and storage.exists(side_features):
        summary["side_features"] = json.loads(storage.read_text(side_features))
    if pushed is not None and pushed.custom_properties["pushed"].int_value:
        summary["pushed_model"] = pushed.custom_properties["pushed_destination"].string_value
    return summary
