"""Trainer module file: one generic `run_fn` for every model of the registry.

`custom_config` picks the model and its hyper-parameters (with a Tuner upstream, its best values,
`fn_args.hyperparameters`, override them; `recommender/hyperparameters.json` records both); the
model trains through the same `fit(TrainingData)` as on the command line, over Transform's id spaces
(its side features from SequenceGen's side tables through the transform graph), and is written twice
into the
Model artifact: `recommender/` (movierec's own format, read by the RankingEvaluator, with
`vocabulary.json`: the raw ids of its item and user indices) and `Format-Serving/` (the SavedModel
that TF Serving loads, with the transform graph inside).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer.fn_args_utils import FnArgs

from movierec.components.histories import read_user_histories, stream_from_histories, vocabulary
from movierec.components.id_space import ModelVocabulary
from movierec.components.ranking_evaluator import RECOMMENDER_DIR
from movierec.components.side_tables import SIDE_FEATURES_FILE, side_features
from movierec.constants import DEFAULT_SESSION_GAP
from movierec.data.splits import VALIDATION
from movierec.data.stream import build_queries
from movierec.evaluation.experiment import EvaluationSettings, evaluate_ranking
from movierec.models import build_model, save_model
from movierec.pipeline.modules.tuner import best_hyperparameters
from movierec.serving.export import DEFAULT_TOP_K, export_for_serving
from movierec.serving.two_stage_export import export_two_stage_model, two_stage_servable

HPARAMS_FILE = "hyperparameters.json"


def _config(fn_args: FnArgs) -> dict[str, Any]:
    config = dict(fn_args.custom_config or {})
    if "model" not in config:
        raise ValueError("Trainer custom_config needs 'model' (a name from movierec.models.MODELS)")
    return config


def distribution_strategy(distribute: str | None) -> tf.distribute.Strategy:
    """MirroredStrategy over the local GPUs (production) or, without GPUs, the logical CPUs; else the
    default strategy."""
    if distribute is None:
        return tf.distribute.get_strategy()
    if distribute != "mirrored":
        raise ValueError(f"unknown distribute {distribute!r}; use 'mirrored' or leave it unset")
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([d.name for d in devices])


def epoch_summaries(log: dict[str, Any], part: str = "epochs") -> list[dict[str, float]]:
    """Per-epoch scalars of a model's training log: GRU4Rec's `epoch_losses`, or the `epochs` entries
    (loss, held-out RMSE, seconds) of the rating models' and LSIC's logs; `part="selection"`: the
    held-out run's entries (RRN/LSTM+CNN/IARN's validation RMSE, LSIC's G and D Precision@5/NDCG@5)."""
    if part == "epochs" and log.get("epoch_losses"):
        return [{"loss": float(loss)} for loss in log["epoch_losses"]]
    return [
        {k: float(v) for k, v in entry.items() if k != "epoch" and isinstance(v, int | float)}
        for entry in log.get(part) or []
    ]


def run_fn(fn_args: FnArgs) -> None:
    config = _config(fn_args)
    session_gap = int(config.get("session_gap", DEFAULT_SESSION_GAP))
    transform_output = tft.TFTransformOutput(fn_args.transform_output)
    items, users = vocabulary(transform_output, "item_id"), vocabulary(transform_output, "user_id")

    train = stream_from_histories(read_user_histories(fn_args.train_files), items, users, session_gap)
    # side features (titles, genres, user fields) through the transform graph, as the exports map them
    training_data = dataclasses.replace(
        train.training_data(),
        side_features=side_features(transform_output, fn_args.train_files, items, users),
    )
    # the Tuner's best values (when the pipeline tunes) over the command line's --set values
    tuned = best_hyperparameters(config["model"], fn_args.hyperparameters)
    hparams = {**config.get("hparams", {}), **tuned}
    with distribution_strategy(config.get("distribute")).scope():
        model = build_model(config["model"], **hparams)
        model.fit(training_data)

    validation = stream_from_histories(read_user_histories(fn_args.eval_files), items, users, session_gap)
    settings = EvaluationSettings(role="validation", query_mode=config.get("query_mode", "next-item"))
    metrics = evaluate_ranking(
        model, validation, build_queries(validation, VALIDATION, settings.query_mode), settings
    ).result()
    writer = tf.summary.create_file_writer(fn_args.model_run_dir)  # TensorBoard: the Model Run artifact
    with writer.as_default():
        log = getattr(model, "training_log", {})
        for part, prefix in (("epochs", "train"), ("selection", "selection")):
            for epoch, values in enumerate(epoch_summaries(log, part), start=1):
                for name, value in values.items():
                    tf.summary.scalar(f"{prefix}/{name}", value, step=epoch)
        for name, value in metrics.items():
            tf.summary.scalar(f"validation/{name}", value, step=0)
    writer.flush()

    model_root = os.path.dirname(fn_args.serving_model_dir)
    save_model(model, os.path.join(model_root, RECOMMENDER_DIR))
    # The raw ids of the model's indices: a later run, over refreshed data and vocabularies, compares
    # this model with its candidate through raw ids (movierec.components.id_space).
    ModelVocabulary(items, users).save(os.path.join(model_root, RECOMMENDER_DIR))
    with tf.io.gfile.GFile(os.path.join(model_root, RECOMMENDER_DIR, "validation_metrics.json"), "w") as f:
        f.write(json.dumps(metrics, indent=2))
    # which hyper-parameters came from where: --set, the Tuner, and everything the model trained with
    trained = {"set": config.get("hparams", {}), "tuned": tuned, "trained": model.get_config()}
    with tf.io.gfile.GFile(os.path.join(model_root, RECOMMENDER_DIR, HPARAMS_FILE), "w") as f:
        f.write(json.dumps(trained, indent=2))
    # which side inputs the data had (a layout without users or titles switches them off, with why)
    with tf.io.gfile.GFile(os.path.join(model_root, RECOMMENDER_DIR, SIDE_FEATURES_FILE), "w") as f:
        f.write(json.dumps(training_data.side_features.describe(), indent=2))
    # rating models serve from stored states: they also need the user ids and what each user rated;
    # two-stage models (LSIC) retrieve and re-rank from stored tables
    if two_stage_servable(model):
        export_two_stage_model(
            model, transform_output, items, users, fn_args.serving_model_dir, DEFAULT_TOP_K
        )
    elif not export_for_serving(
        model,
        transform_output,
        items,
        fn_args.serving_model_dir,
        session_gap=session_gap,
        user_vocabulary=users,
        rated=training_data.sequences,
    ):
        raise ValueError(f"{config['model']} has no TF Serving export (see movierec.serving.export)")
