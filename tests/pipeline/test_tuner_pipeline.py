"""The Tuner in the pipeline's graph (construction only: the e2e test runs it): the stock TFX Tuner
with our tuner_fn, fed the train and validation splits only, keyed on the search space and budget,
feeding the Trainer; off with --no-tune and for models without a search space."""

import json

import click
import pytest

from movierec.cli.pipeline import parse_tune_budget
from movierec.pipeline.config import PipelineConfig
from movierec.pipeline.pipeline import create_pipeline, not_tuned_because, tuner_config


def nodes(config: PipelineConfig) -> dict:
    return {node.id: node for node in create_pipeline(config, fingerprint="data-v1").components}


def test_the_tuner_reads_train_and_validation_splits_only_and_feeds_the_trainer(tmp_path):
    config = PipelineConfig(data_path=str(tmp_path), output_dir=str(tmp_path / "out"), code_fingerprint="v1")
    graph = nodes(config)
    tuner = graph["Tuner"]
    properties = tuner.exec_properties
    assert properties["tuner_fn"] == "movierec.pipeline.modules.tuner.tuner_fn"
    assert json.loads(properties["train_args"])["splits"] == ["train"]
    assert json.loads(properties["eval_args"])["splits"] == ["eval"]  # never "test"
    custom = json.loads(properties["custom_config"])
    assert custom["code_fingerprint"] == "v1" and custom["model"] == "gru4rec"
    assert custom["budget"] == {"max_trials": 8, "max_seconds": 300.0, "patience": 4}
    assert {"hidden_size", "learning_rate", "loss"} <= set(custom["space"])
    trainer_inputs = graph["Trainer"].inputs
    assert trainer_inputs["hyperparameters"].producer_component_id == "Tuner"

    # the search space and the budget are part of the Tuner's cache key (its custom_config)
    other = nodes(PipelineConfig(**{**vars(config), "pipeline_name": "", "tune_trials": 3}))
    assert json.loads(other["Tuner"].exec_properties["custom_config"])["budget"]["max_trials"] == 3
    fixed = nodes(PipelineConfig(**{**vars(config), "pipeline_name": "", "hparams": {"hidden_size": 64}}))
    assert "hidden_size" not in json.loads(fixed["Tuner"].exec_properties["custom_config"])["space"]


def test_a_rating_model_is_tuned_on_rmse_the_metric_it_is_blessed_on(tmp_path):
    # (MF has a space but no serving export yet; RRN, LSTM+CNN, IARN and LSIC have no space yet)
    config = PipelineConfig(data_path=str(tmp_path), output_dir=str(tmp_path / "out"), model="mf")
    assert tuner_config(config, "v1")["metric"] == "rmse"
    assert tuner_config(PipelineConfig(data_path="d", output_dir="o"), "v1")["metric"] == "recall@20"


def test_no_tuner_with_no_tune_or_for_a_model_without_a_search_space(tmp_path):
    off = PipelineConfig(data_path=str(tmp_path), output_dir=str(tmp_path / "out"), tune=False)
    assert "Tuner" not in nodes(off) and "hyperparameters" not in nodes(off)["Trainer"].inputs
    assert not_tuned_because(off) == "tuning is off (--no-tune)"
    rrn = PipelineConfig(data_path=str(tmp_path), output_dir=str(tmp_path / "out"), model="rrn")
    assert "Tuner" not in nodes(rrn)
    assert not_tuned_because(rrn) == "rrn declares no search space: nothing to tune"


def test_tune_budget_option():
    assert parse_tune_budget(None, None, "8:5") == (8, 5.0)
    assert parse_tune_budget(None, None, "3") == (3, None)
    for bad in ("0:5", "x", "4:0", "4:-1"):
        with pytest.raises(click.BadParameter, match="expected TRIALS\\[:MINUTES\\]"):
            parse_tune_budget(None, None, bad)
