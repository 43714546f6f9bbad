"""What a pipeline run left in ML Metadata and the serving folder, for the e2e tests."""

import collections
import os

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx

from movierec.pipeline.config import PipelineConfig

COMPONENTS = {
    "MovieLensExampleGen",
    "StatisticsGen",
    "ReviewedSchemaGen",
    "ExampleValidator",
    "AnomalyGate",
    "Transform",
    "SequenceGen",
    "Trainer",
    "RankingEvaluator",
    "Pusher",
}
RATING_GATE = "Evaluator"  # TFX's standard Evaluator (TFMA) runs for rating models only
TUNER = "Tuner"  # runs where the model declares a search space and tuning is on


def completed(config: PipelineConfig) -> collections.Counter:
    """How many times each component really ran (cached executions are not counted; the resolver
    node resolves anew on every run and is not a component)."""
    store = metadata_store.MetadataStore(
        tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_db)
    )
    types = {t.id: t.name.rsplit(".", 1)[-1] for t in store.get_execution_types()}
    return collections.Counter(
        types[e.type_id]
        for e in store.get_executions()
        if e.last_known_state == metadata_store_pb2.Execution.COMPLETE
        and types[e.type_id] in COMPONENTS | {RATING_GATE, TUNER}
    )


def latest_uri(config: PipelineConfig, type_name: str) -> str:
    store = metadata_store.MetadataStore(
        tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_db)
    )
    return max(store.get_artifacts_by_type(type_name), key=lambda a: a.id).uri


def pushed_versions(config: PipelineConfig) -> list[str]:
    base = config.serving_model_dir
    return sorted(os.listdir(base)) if os.path.isdir(base) else []


def evaluated_stream(config: PipelineConfig, split: str):
    """The latest run's SequenceGen histories of `split` as an EventStream over its Transform's ids."""
    import tensorflow_transform as tft

    from movierec.components.histories import read_user_histories, stream_from_histories, vocabulary

    transform = tft.TFTransformOutput(latest_uri(config, "TransformGraph"))
    items, users = vocabulary(transform, "item_id"), vocabulary(transform, "user_id")
    store = metadata_store.MetadataStore(
        tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_db)
    )
    histories = max(
        (a for a in store.get_artifacts_by_type("Examples") if "user_histories" in a.uri), key=lambda a: a.id
    )
    files = os.path.join(histories.uri, f"Split-{split}", "*")
    return stream_from_histories(read_user_histories(files), items, users, config.session_gap), items
