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


@pytest.mark.parametrize(
    ("name", "argument", "value", "message"),
    [
        ("gru4rec", "hidden_size", 0, "gru4rec: hidden_size must be an integer >= 1, got 0"),
        ("gru4rec", "n_sample", True, "gru4rec: n_sample must be an integer >= 0, got True"),
        ("gru4rec", "learning_rate", 0.0, "gru4rec: learning_rate must be > 0, got 0.0"),
        ("gru4rec", "learning_rate", float("inf"), "gru4rec: learning_rate must be > 0, got inf"),
        ("gru4rec", "bpreg", float("nan"), "gru4rec: bpreg must be >= 0, got nan"),
        ("gru4rec", "momentum", 1.0, "gru4rec: momentum must be in \\[0, 1\\), got 1.0"),
        ("rrn", "seed", -1, "rrn: seed must be an integer >= 0, got -1"),
        ("iarn", "clip_value", -0.5, "iarn: clip_value must be >= 0, got -0.5"),
        ("lstm-cnn", "validation_fraction", 1, "lstm-cnn: validation_fraction must be in \\[0, 1\\), got 1"),
        ("lsic", "gumbel_temperature", 0.0, "lsic: gumbel_temperature must be > 0, got 0.0"),
        ("bpr-mf", "negatives", 0, "bpr-mf: negatives must be an integer >= 1, got 0"),
        ("mf", "batch_size", 0.5, "mf: batch_size must be an integer >= 1, got 0.5"),
        ("itemknn", "regularization", float("inf"), "itemknn: regularization must be >= 0, got inf"),
        ("itemknn", "alpha", True, "itemknn: alpha must be in \\[0, 1\\], got True"),
    ],
)
def test_a_config_constructed_directly_rejects_values_out_of_range_naming_model_and_argument(
    name, argument, value, message
):
    # the dataclass is built without make_config's type check: __post_init__ alone must refuse a bool
    # for an int, a float for an int, infinity and NaN
    config_class = MODELS[name].factory.config_class
    with pytest.raises(ValueError, match=message):
        config_class(**{argument: value})


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
