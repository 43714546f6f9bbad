"""Runs the pipeline on TFX's LocalDagRunner and summarises the run from ML Metadata."""

from __future__ import annotations

import json
from typing import Any

from ml_metadata.metadata_store import metadata_store
from tfx import v1 as tfx
from tfx.components.evaluator import constants as evaluator_constants

from movierec import storage
from movierec.pipeline.config import PipelineConfig
from movierec.pipeline.pipeline import create_pipeline


def run(config: PipelineConfig) -> dict[str, Any]:
    tfx.orchestration.LocalDagRunner().run(create_pipeline(config))
    return summarize(config)


def _latest(store, type_name: str):
    artifacts = store.get_artifacts_by_type(type_name)
    return max(artifacts, key=lambda a: a.id) if artifacts else None


def summarize(config: PipelineConfig) -> dict[str, Any]:
    """What the last run produced: blessing, metrics, pushed model (read back from ML Metadata)."""
    connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_db)
    store = metadata_store.MetadataStore(connection)
    blessing = _latest(store, "ModelBlessing")
    evaluation = _latest(store, "ModelEvaluation")
    pushed = _latest(store, "PushedModel")
    summary: dict[str, Any] = {"metadata": config.metadata_db, "executions": len(store.get_executions())}
    if blessing is not None:
        summary["blessed"] = bool(
            blessing.custom_properties[evaluator_constants.ARTIFACT_PROPERTY_BLESSED_KEY].int_value
        )
        summary["reason"] = blessing.custom_properties["reason"].string_value
    if evaluation is not None:
        summary["evaluation"] = json.loads(storage.read_text(f"{evaluation.uri}/metrics.json"))
    if pushed is not None and pushed.custom_properties["pushed"].int_value:
        summary["pushed_model"] = pushed.custom_properties["pushed_destination"].string_value
    return summary
