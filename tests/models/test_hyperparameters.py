"""Typed hyper-parameters: checked against the model's config class without building a model."""

import json

import pytest
from click.testing import CliRunner

from movierec.cli import main
from movierec.models import MODELS, GRU4RecConfig, build_model, describe, make_config


def test_values_are_checked_by_type_and_choice_and_errors_name_the_argument():
    assert make_config(GRU4RecConfig, {"learning_rate": 1}, "gru4rec").learning_rate == 1.0  # int → float
    with pytest.raises(ValueError, match="gru4rec: hidden_size must be int, got '64'"):
        make_config(GRU4RecConfig, {"hidden_size": "64"}, "gru4rec")
    with pytest.raises(ValueError, match="gru4rec: shuffle_sessions must be bool"):
        make_config(GRU4RecConfig, {"shuffle_sessions": 1}, "gru4rec")
    with pytest.raises(ValueError, match="loss must be 'cross-entropy' \\| 'bpr-max'"):
        make_config(GRU4RecConfig, {"loss": "hinge"}, "gru4rec")
    with pytest.raises(ValueError, match="dropout_hidden must be in \\[0, 1\\)"):
        build_model("gru4rec", dropout_hidden=1.5)
    with pytest.raises(ValueError, match="itemknn: alpha must be in \\[0, 1\\]"):
        build_model("itemknn", alpha=2.0)
    with pytest.raises(ValueError, match="pop: unknown hyper-parameters \\['k'\\]"):
        build_model("pop", k=3)


def test_every_model_declares_its_hyper_parameters_and_echoes_them_in_get_config():
    for name, spec in MODELS.items():
        declared = {field["name"]: field["default"] for field in describe(spec.factory.config_class)}
        assert build_model(name).get_config() == declared, name
        assert all(field["help"] for field in describe(spec.factory.config_class)), name


def test_the_cli_lists_and_checks_hyper_parameters_before_reading_any_data():
    runner = CliRunner()
    listed = runner.invoke(main, ["models", "gru4rec", "--json"])
    assert listed.exit_code == 0, listed.output
    fields = {f["name"]: f for f in json.loads(listed.output)["gru4rec"]["hyperparameters"]}
    assert fields["hidden_size"]["type"] == "int" and fields["hidden_size"]["default"] == 100
    # --data does not exist: the bad value is reported first, so it was checked before loading
    bad = runner.invoke(
        main, ["evaluate", "--data", "/nonexistent", "--model", "gru4rec", "--set", "epochs=x"]
    )
    assert bad.exit_code == 2 and "gru4rec: epochs must be int, got 'x'" in bad.output
