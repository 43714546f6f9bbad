"""The Kubeflow Pipelines v2 spec compiles and names the project's image and components."""

import json

import pytest

from movierec.pipeline.config import PipelineConfig
from movierec.pipeline.runners.kubeflow_v2 import compile_pipeline


def test_kubeflow_v2_spec_compiles(tmp_path):
    # On a cluster these would be gs:// paths; compiling checks the pipeline root, so a local one here.
    config = PipelineConfig(
        data_path=str(tmp_path / "ml-100k"),
        output_dir=str(tmp_path / "out"),
        model="gru4rec",
        beam_pipeline_args=["--runner=DataflowRunner"],
    )
    spec_file = compile_pipeline(
        config,
        str(tmp_path / "spec.json"),
        image="example.org/movierec:1",
        fingerprint="checksum-known-in-advance",
    )
    with open(spec_file) as handle:
        spec = json.load(handle)
    pipeline_spec = spec.get("pipelineSpec", spec)
    executors = pipeline_spec["deploymentSpec"]["executors"]
    images = {e["container"]["image"] for e in executors.values() if "container" in e}
    assert images == {"example.org/movierec:1"}
    tasks = pipeline_spec["root"]["dag"]["tasks"]
    for name in (
        "MovieLensExampleGen",
        "SequenceGen",
        "Transform",
        "Trainer",
        "RankingEvaluator",
        "AnomalyGate",
    ):
        assert name in tasks, sorted(tasks)


def test_a_model_without_serving_export_is_refused_at_construction(tmp_path):
    config = PipelineConfig(data_path=str(tmp_path), output_dir=str(tmp_path / "out"), model="pop")
    with pytest.raises(ValueError, match="has no serving export; choose one of gru4rec"):
        compile_pipeline(config, str(tmp_path / "spec.json"), fingerprint="x")


def test_cli_compiles_for_data_only_the_pods_can_read(tmp_path):
    from click.testing import CliRunner

    from movierec.cli import main

    args = [
        "pipeline",
        "compile",
        "--data",
        "/gcs/bucket/ml-100k",
        "--output-dir",
        str(tmp_path / "out"),
        "--spec",
        str(tmp_path / "spec.json"),
    ]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code != 0 and "--data-fingerprint" in refused.output
    result = CliRunner().invoke(main, [*args, "--data-fingerprint", "ml-100k-v1"])
    assert result.exit_code == 0, result.output
    spec = (tmp_path / "spec.json").read_text()
    assert "/gcs/bucket/ml-100k" in spec and "ml-100k-v1" in spec
