"""create_pipeline(config) -> tfx.dsl.Pipeline. Construction only: runners live in pipeline/runners.

MovieLensExampleGen → StatisticsGen → ExampleValidator (against the reviewed schema) → AnomalyGate
    → Transform (vocabularies on Beam) → SequenceGen (histories on Beam)
    → Tuner (tuner_fn: the model's search space on validation users; unless --no-tune)
    → Trainer (generic run_fn, model from the registry, the Tuner's best values) → RankingEvaluator
      (+ latest blessed model)
    → Pusher (atomic copy: components/pusher.py), only inside Cond(blessed)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from typing import Any

from tfx import v1 as tfx
from tfx.components.evaluator import constants as evaluator_constants

from movierec import storage
from movierec.components import (
    AnomalyGate,
    MovieLensExampleGen,
    RankingEvaluator,
    ReviewedSchemaGen,
    SequenceGen,
)
from movierec.components.pusher import Pusher
from movierec.constants import SPLIT_OF_ROLE, TRAIN, VALIDATION
from movierec.data.loader import checksum_files
from movierec.evaluation.tuning import check_metric, check_tunable, searched_space, space_to_json
from movierec.models import MODELS, build_model, get_spec
from movierec.pipeline.config import PipelineConfig
from movierec.pipeline.fingerprint import code_fingerprint
from movierec.pipeline.rating_evaluation import EVALUATED_SPLIT, rating_eval_config
from movierec.serving.export import HistoryScorable
from movierec.serving.rating_export import rating_servable
from movierec.serving.two_stage_export import two_stage_servable


def data_fingerprint(data_path: str) -> str:
    """A checksum of every file in the data folder (names and bytes): ExampleGen's cache key, so new
    or changed data re-runs the pipeline. Hashing is cheap next to parsing, which the workers do.
    `data_path` may be a URI (gs://…), listed and read through tf.io.gfile."""
    names = storage.files_below(data_path)
    files = [storage.join(data_path, name) for name in names]
    listing = "\n".join(names).encode()
    return f"{checksum_files(files)}-{hashlib.sha256(listing).hexdigest()[:16]}"


PIPELINE_PROTOCOLS = ("temporal", "leave-last-out")


def servable_models() -> list[str]:
    """Registry models the pipeline can push: those with a TF Serving export (from a history of items,
    from stored user and item states for rating models, or retrieve-then-re-rank tables: LSIC)."""
    return [
        name
        for name in MODELS
        if isinstance(build_model(name), HistoryScorable)
        or rating_servable(build_model(name))
        or two_stage_servable(build_model(name))
    ]


def not_tuned_because(config: PipelineConfig) -> str:
    """Why the pipeline of `config` has no Tuner ("" when it has one)."""
    if not config.tune:
        return "tuning is off (--no-tune)"
    try:
        check_tunable(config.model, config.hparams)
    except ValueError as error:
        return str(error).removeprefix("model: ")
    return ""


def tuned(config: PipelineConfig) -> bool:
    return not not_tuned_because(config)


def tuner_config(config: PipelineConfig, code: str) -> dict:
    """The Tuner's custom_config: everything the search depends on, hence its cache key (the space
    and the budget included), and where it keeps its searches."""
    # rating models are blessed on RMSE (TFMA), so they are tuned on it; the others on --metric
    metric = "rmse" if get_spec(config.model).rating else config.metric
    check_metric(config.model, metric)  # every trial must report it
    return {
        "model": config.model,
        "hparams": config.hparams,  # fixed: not searched
        "space": space_to_json(searched_space(config.model, config.hparams)),
        "budget": config.tune_budget,
        "seed": config.tune_seed,
        "metric": metric,
        "session_gap": config.session_gap,
        "search_root": config.search_root,
        "code_fingerprint": code,  # cache key only
    }


@dataclass(frozen=True)
class DataComponents:
    """The data stages every pipeline starts with (ExampleGen → StatisticsGen → schema check →
    Transform, SequenceGen), in `create_pipeline`'s order."""

    example_gen: Any
    statistics_gen: Any
    schema_gen: Any
    example_validator: Any
    anomaly_gate: Any
    transform: Any
    sequence_gen: Any

    def as_list(self) -> list:
        return [getattr(self, f.name) for f in fields(self)]


def _check_protocol(config: PipelineConfig) -> None:
    if config.protocol not in PIPELINE_PROTOCOLS:
        # given-split's evaluation rules (sessions as given, no seen-item removal, no empty-context
        # queries) live in the command line's path only so far; the pipeline would silently differ
        raise ValueError(
            f"the pipeline runs protocols {', '.join(PIPELINE_PROTOCOLS)}; {config.protocol!r} runs on "
            "the command line (movierec evaluate --protocol given-split)"
        )


def data_components(config: PipelineConfig, fingerprint: str | None, code: str) -> DataComponents:
    """The data stages of `config`'s pipeline; `code` is movierec's code fingerprint (cache key)."""
    example_gen = MovieLensExampleGen(
        data_path=config.data_path,
        data_fingerprint=fingerprint or data_fingerprint(config.data_path),
        protocol=config.protocol,
        split_params=json.dumps(config.split_params),
        strict=config.strict,
        piece_bytes=config.example_gen_piece_bytes,
        code_fingerprint=code,
    )
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    # A schema inferred from the statistics it then validates could never flag this run's data: the
    # data is checked against a schema reviewed into the repository (or --schema).
    schema_gen = ReviewedSchemaGen(schema_file=config.schema_file)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    anomaly_gate = AnomalyGate(anomalies=example_validator.outputs["anomalies"], code_fingerprint=code)
    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        # A function path, not module_file: TFX would package a module file into a wheel under the
        # pipeline root when compiling (writing to gs://), while the image already installs movierec.
        preprocessing_fn="movierec.pipeline.modules.transform.preprocessing_fn",
        custom_config={"code_fingerprint": code},  # preprocessing_fn ignores it: cache key only
        # Only the transform graph is read downstream (vocabularies; the serving export embeds it):
        # transformed copies of the examples and their statistics would cost time and nothing else.
        materialize=False,
        disable_statistics=True,
    )
    transform.add_upstream_node(anomaly_gate)
    sequence_gen = SequenceGen(
        examples=example_gen.outputs["examples"], session_gap=config.session_gap, code_fingerprint=code
    )
    sequence_gen.add_upstream_node(anomaly_gate)
    return DataComponents(
        example_gen=example_gen,
        statistics_gen=statistics_gen,
        schema_gen=schema_gen,
        example_validator=example_validator,
        anomaly_gate=anomaly_gate,
        transform=transform,
        sequence_gen=sequence_gen,
    )


def _metadata_config(config: PipelineConfig, local_metadata: bool):
    if not local_metadata:
        return None
    return tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_db)


def create_data_pipeline(
    config: PipelineConfig, fingerprint: str | None = None, local_metadata: bool = True
) -> tfx.dsl.Pipeline:
    """Only the data stages of `create_pipeline(config)` (the same components, up to Transform and
    SequenceGen): what benchmarks/scale.py measures."""
    _check_protocol(config)
    code = config.code_fingerprint or code_fingerprint()
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=data_components(config, fingerprint, code).as_list(),
        enable_cache=config.enable_cache,
        metadata_connection_config=_metadata_config(config, local_metadata),
        beam_pipeline_args=config.beam_pipeline_args,
    )


def create_pipeline(
    config: PipelineConfig, fingerprint: str | None = None, local_metadata: bool = True
) -> tfx.dsl.Pipeline:
    """The pipeline for `config`. `local_metadata=False` for orchestrators with their own ML Metadata
    (Kubeflow, Vertex AI): no SQLite store, whose folder TFX would create under `output_dir` now."""
    if config.model not in servable_models():
        raise ValueError(
            f"the pipeline pushes SavedModels for TF Serving and {config.model!r} has no serving export; "
            f"choose one of {', '.join(servable_models())}"
        )
    _check_protocol(config)
    # movierec's own code is not in TFX's cache key: every component that runs it gets its fingerprint
    code = config.code_fingerprint or code_fingerprint()
    data = data_components(config, fingerprint, code)
    example_gen, statistics_gen, schema_gen, example_validator, anomaly_gate, transform, sequence_gen = (
        data.as_list()
    )
    tuner = None
    if tuned(config):
        # The stock Tuner with our tuner_fn: train and validation splits only, never the test split.
        tuner = tfx.components.Tuner(
            tuner_fn="movierec.pipeline.modules.tuner.tuner_fn",
            examples=sequence_gen.outputs["user_histories"],
            transform_graph=transform.outputs["transform_graph"],
            schema=schema_gen.outputs["schema"],
            train_args=tfx.proto.TrainArgs(splits=[SPLIT_OF_ROLE[TRAIN]]),
            eval_args=tfx.proto.EvalArgs(splits=[SPLIT_OF_ROLE[VALIDATION]]),
            custom_config=tuner_config(config, code),
        )
    trainer = tfx.components.Trainer(
        run_fn="movierec.pipeline.modules.trainer.run_fn",
        examples=sequence_gen.outputs["user_histories"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        hyperparameters=tuner.outputs["best_hyperparameters"] if tuner else None,
        train_args=tfx.proto.TrainArgs(splits=[SPLIT_OF_ROLE[TRAIN]]),
        eval_args=tfx.proto.EvalArgs(splits=[SPLIT_OF_ROLE[VALIDATION]]),
        custom_config={
            "model": config.model,
            "hparams": config.hparams,
            "session_gap": config.session_gap,
            "distribute": config.distribute,
            "code_fingerprint": code,  # cache key only
        },
    )
    latest_blessed = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
    evaluator = RankingEvaluator(
        model=trainer.outputs["model"],
        user_histories=sequence_gen.outputs["user_histories"],
        transform_graph=transform.outputs["transform_graph"],
        baseline_model=latest_blessed.outputs["model"],
        metric=config.metric,
        margin=config.margin,
        regression_tolerance=config.regression_tolerance,
        regression_confidence=config.regression_confidence,
        baseline=config.baseline,
        session_gap=config.session_gap,
        users_per_batch=config.evaluation_users_per_batch,
        code_fingerprint=code,
    )
    gate = evaluator
    if get_spec(config.model).rating:
        # Rating models are blessed by TFX's standard Evaluator (TFMA: RMSE overall and per slice
        # against an absolute bound and the latest blessed model); RankingEvaluator still reports their
        # ranking metrics on the same users, but its blessing does not gate the push.
        gate = tfx.components.Evaluator(
            examples=example_gen.outputs["examples"],
            model=trainer.outputs["model"],
            baseline_model=latest_blessed.outputs["model"],
            eval_config=rating_eval_config(config.max_rmse, config.rmse_tolerance),
            example_splits=[EVALUATED_SPLIT],
        )
    components = [
        example_gen,
        statistics_gen,
        schema_gen,
        example_validator,
        anomaly_gate,
        transform,
        sequence_gen,
        *([tuner] if tuner else []),
        trainer,
        latest_blessed,
        evaluator,
    ]
    if gate is not evaluator:
        components.append(gate)
    blessed = (
        gate.outputs["blessing"]
        .future()[0]
        .custom_property(evaluator_constants.ARTIFACT_PROPERTY_BLESSED_KEY)
    )
    with tfx.dsl.Cond(blessed == evaluator_constants.BLESSED_VALUE):
        pusher = Pusher(  # the stock Pusher with an atomic copy (components/pusher.py)
            model=trainer.outputs["model"],
            model_blessing=gate.outputs["blessing"],
            push_destination=tfx.proto.PushDestination(
                filesystem=tfx.proto.PushDestination.Filesystem(base_directory=config.serving_model_dir)
            ),
        )
    components.append(pusher)
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=components,
        enable_cache=config.enable_cache,
        metadata_connection_config=_metadata_config(config, local_metadata),
        beam_pipeline_args=config.beam_pipeline_args,
    )
