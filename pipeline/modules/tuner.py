"""Tuner module: `tuner_fn` for TFX's stock Tuner component, the search of `movierec tune` inside the
pipeline.

The Tuner reads SequenceGen's user histories, split `train` (every user's training events) and split
`eval` (the validation users' histories) only: the test split is not among its inputs' splits, so no
test user's event can reach the search. Every trial trains the registry model through the same
`fit(TrainingData)` as the Trainer, over Transform's id spaces with the same side features, and is scored
by the Trainer's validation path (`movierec.evaluation.tuning`). `custom_config` carries the model, the
fixed hyper-parameters (the CLI's `--set`), the declared search space, the budget, the seed, the
metric and the code fingerprint, so each of them is part of the Tuner's cache key.

The search lives in `<search_root>/<model>-<key>`, keyed by that configuration and the input histories'
URI: when a Tuner execution dies mid-search, the next run (upstream cached, same inputs) resumes it
instead of starting again. `trials.json`, `trials.csv` and `trials.png` are written there; TFX's own
outputs are `best_hyperparameters` (read by the Trainer, `fn_args.hyperparameters`) and
`tuner_results` (every finished trial's score and values).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any

import tensorflow_transform as tft
from tfx.components.trainer.fn_args_utils import FnArgs
from tfx.components.tuner.component import TunerFnResult

from movierec.components.histories import read_user_histories, stream_from_histories, vocabulary
from movierec.components.side_tables import side_features
from movierec.constants import DEFAULT_METRIC, DEFAULT_SESSION_GAP
from movierec.evaluation.tuning import Budget, TuningData, make_tuner, typed_values


def examples_uri(file_pattern: str) -> str:
    """The Examples artifact's URI of a split's file pattern (`<uri>/Split-<split>/*`)."""
    return os.path.dirname(os.path.dirname(file_pattern))


def search_directory(custom_config: dict[str, Any], histories_uri: str) -> str:
    """Where the search of this configuration on these histories lives (stable across re-runs)."""
    key = dict(custom_config)
    root = key.pop("search_root")
    digest = hashlib.sha256(
        json.dumps({"config": key, "histories": histories_uri}, sort_keys=True).encode()
    ).hexdigest()[:16]
    return os.path.join(root, f"{key['model']}-{digest}")


def tuning_inputs(fn_args: FnArgs) -> TuningData:
    """The search's data: the train split's events to fit, the eval split's histories to score."""
    config = dict(fn_args.custom_config or {})
    session_gap = int(config.get("session_gap", DEFAULT_SESSION_GAP))
    transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    items, users = vocabulary(transform_output, "item_id"), vocabulary(transform_output, "user_id")
    train = stream_from_histories(read_user_histories(fn_args.train_files), items, users, session_gap)
    training = dataclasses.replace(
        train.training_data(),
        side_features=side_features(transform_output, fn_args.train_files, items, users),
    )
    validation = stream_from_histories(read_user_histories(fn_args.eval_files), items, users, session_gap)
    description = {"histories": examples_uri(fn_args.train_files[0]), "session_gap": session_gap}
    return TuningData(training, validation, description)


def _progress(line: str) -> None:
    print(f"Tuner: {line}", flush=True)


def tuner_fn(fn_args: FnArgs) -> TunerFnResult:
    """The TFX Tuner's entry point: a resumable `RecommenderTuner` and the data its search reads.

    Args:
        fn_args: TFX's arguments; `custom_config` needs `model`, `budget` ({max_trials, max_seconds,
            patience}) and `search_root`, and may give `hparams` (fixed), `seed`, `metric`,
            `session_gap`.
    """
    config = dict(fn_args.custom_config or {})
    for key in ("model", "budget", "search_root"):
        if key not in config:
            raise ValueError(f"Tuner custom_config needs {key!r}")
    data = tuning_inputs(fn_args)
    tuner = make_tuner(
        config["model"],
        search_directory(config, data.description["histories"]),
        budget=Budget(**config["budget"]),
        fixed=config.get("hparams") or {},
        seed=int(config.get("seed", 0)),
        metric=config.get("metric", DEFAULT_METRIC),
        data_description=data.description,
        log=_progress,
    )
    return TunerFnResult(tuner=tuner, fit_kwargs={"data": data})


def best_hyperparameters(model_name: str, config: dict[str, Any] | None) -> dict[str, Any]:
    """The values of a `best_hyperparameters` artifact (a keras_tuner.HyperParameters config, as the
    Trainer's `fn_args.hyperparameters` holds it) in the model's declared types; {} without one.

    Args:
        model_name: the registry model the Trainer trains.
        config: `fn_args.hyperparameters`.
    """
    if not config:
        return {}
    return typed_values(model_name, dict(config.get("values", {})))
