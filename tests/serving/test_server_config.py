"""TF Serving's model config for the pushed models (serving/server_config.py, serving/models.config)."""

import os

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from movierec.serving.server_config import main, models_config, pushed_models

pytestmark = pytest.mark.slow  # the shared GRU4Rec export (Transform on Beam, a training epoch)


def test_the_config_lists_every_pushed_model_with_its_latest_two_versions(gru4rec, tmp_path, capsys):
    push_dir = os.path.dirname(os.path.dirname(gru4rec.export_dir))  # <push>/gru4rec/1
    (tmp_path / "half").mkdir()  # a model folder without a complete version is not served
    (tmp_path / "half" / "7").mkdir()
    assert pushed_models(push_dir) == ["gru4rec"] and pushed_models(str(tmp_path)) == []
    assert main([push_dir, "--mount", "/srv"]) == 0
    config = text_format.Parse(capsys.readouterr().out, model_server_config_pb2.ModelServerConfig())
    (model,) = config.model_config_list.config
    assert (model.name, model.base_path, model.model_platform) == ("gru4rec", "/srv/gru4rec", "tensorflow")
    assert model.model_version_policy.latest.num_versions == 2
    assert main([str(tmp_path)]) == 1 and "no pushed model" in capsys.readouterr().err
    with pytest.raises(ValueError, match="at least 1 version"):
        models_config(["gru4rec"], versions=0)


def test_the_checked_in_config_parses_as_a_model_server_config():
    path = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "serving", "models.config")
    with open(path) as f:
        config = text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())
    assert [m.name for m in config.model_config_list.config] and all(
        m.base_path == f"/models/{m.name}" and m.model_version_policy.latest.num_versions == 2
        for m in config.model_config_list.config
    )
