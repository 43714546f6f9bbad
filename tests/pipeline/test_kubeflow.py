"""The Kubeflow Pipelines v2 spec compiles, offline, and names the project's image and components."""

import json

import pytest
import yaml
from click.testing import CliRunner

from movierec.cli import main
from movierec.pipeline.config import PipelineConfig
from movierec.pipeline.runners.kubeflow_v2 import compile_pipeline


def test_kubeflow_v2_spec_compiles(tmp_path):
    config = PipelineConfig(
        data_path="gs://some-bucket/ml-100k",
        output_dir="gs://some-bucket/movierec",  # no bucket here: compiling must not touch it
        model="gru4rec",
        beam_pipeline_args=["--runner=DataflowRunner"],
        example_gen_piece_bytes=8 << 20,
        evaluation_users_per_batch=64,
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
    # Beam workers (Dataflow here) run the same image: movierec's DoFns are on them, and no TFX
    # executor builds its TFX-only sdist for them
    assert "--sdk_container_image=example.org/movierec:1" in json.dumps(spec)
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
    # the Beam components' sizes reach the pods as component parameters
    for task, parameter, value in (
        ("MovieLensExampleGen", "piece_bytes", 8 << 20),
        ("RankingEvaluator", "users_per_batch", 64),
    ):
        given = tasks[task]["inputs"]["parameters"][parameter]["runtimeValue"]
        assert int(given["constantValue"]["intValue"]) == value, given


def test_every_artifact_type_in_the_spec_is_importable_by_its_title(tmp_path):
    # A pod's TFX entrypoint rebuilds each artifact class by importing the type's schema title (first
    # party types through TFX's table), so a custom type whose title is no class path fails on Kubeflow.
    from tfx.orchestration.kubeflow.v2 import compiler_utils
    from tfx.utils import import_utils

    config = PipelineConfig(data_path="gs://b/ml-100k", output_dir="gs://b/movierec", model="gru4rec")
    with open(compile_pipeline(config, str(tmp_path / "spec.json"), fingerprint="v1")) as handle:
        components = json.load(handle)["pipelineSpec"]["components"].values()
    titles = {
        yaml.safe_load(artifact["artifactType"]["instanceSchema"])["title"]
        for component in components
        for side in ("inputDefinitions", "outputDefinitions")
        for artifact in component.get(side, {}).get("artifacts", {}).values()
    }
    assert "movierec.DataReport" in titles
    for title in titles:
        import_utils.import_class_by_path(compiler_utils.TITLE_TO_CLASS_PATH.get(title, title))


def test_a_model_without_serving_export_is_refused_at_construction(tmp_path):
    config = PipelineConfig(data_path=str(tmp_path), output_dir=str(tmp_path / "out"), model="pop")
    with pytest.raises(ValueError, match="has no serving export; choose one of gru4rec"):
        compile_pipeline(config, str(tmp_path / "spec.json"), fingerprint="x")


def test_cli_compiles_for_data_only_the_pods_can_read(tmp_path):
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


def test_cli_compiles_a_gs_output_dir_offline(tmp_path, monkeypatch):
    # This machine has no bucket and no credentials (nor, in CI, a network): every storage access to
    # gs:// would fail. pathlib would write gs:// paths as local "gs:" folders: none may appear.
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        main,
        [
            "pipeline",
            "compile",
            "--data",
            "gs://some-bucket/ml-100k",
            "--data-fingerprint",
            "ml-100k-v1",
            "--output-dir",
            "gs://some-bucket/movierec",
            "--spec",
            "spec.json",
        ],
    )
    assert result.exit_code == 0, result.output
    text = (tmp_path / "spec.json").read_text()
    spec = json.loads(text)
    assert spec["runtimeConfig"]["gcsOutputDirectory"] == "gs://some-bucket/movierec/pipeline_root"
    tasks = spec["pipelineSpec"]["root"]["dag"]["tasks"]
    assert tasks["MovieLensExampleGen"]["inputs"]["parameters"]["data_path"]["runtimeValue"] == {
        "constantValue": {"stringValue": "gs://some-bucket/ml-100k"}
    }
    assert "gs://some-bucket/movierec/serving/gru4rec" in text  # the Pusher's destination, kept a URL
    # Transform and Trainer import movierec's functions by name from the image; TFX would otherwise
    # package module files as wheels into the pipeline root (a write to the bucket) when compiling.
    assert "_wheels" not in text and "module_file" not in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.json"]


def test_cli_compile_errors_are_one_line(tmp_path):
    (tmp_path / "taken").write_text("a file where the spec's folder should be")
    result = CliRunner().invoke(
        main,
        [
            "pipeline",
            "compile",
            "--data",
            "/gcs/some-bucket/ml-100k",
            "--data-fingerprint",
            "v1",
            "--output-dir",
            "gs://some-bucket/movierec",
            "--spec",
            str(tmp_path / "taken" / "spec.json"),
        ],
    )
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot compile the pipeline: ")
    assert result.output.count("\n") == 1 and str(tmp_path / "taken") in result.output


def test_given_split_is_refused_by_the_pipeline_not_silently_evaluated_differently(tmp_path):
    config = PipelineConfig(
        data_path=str(tmp_path), output_dir=str(tmp_path / "out"), model="gru4rec", protocol="given-split"
    )
    with pytest.raises(ValueError, match="runs on the command line"):
        compile_pipeline(config, str(tmp_path / "spec.json"), fingerprint="x")


def _container_resources(spec_file: str) -> dict[str, dict]:
    """{task name: its executor container's `resources`} of a compiled spec."""
    with open(spec_file) as handle:
        pipeline_spec = json.load(handle)["pipelineSpec"]
    executor_of = {
        task: pipeline_spec["components"][body["componentRef"]["name"]]["executorLabel"]
        for task, body in pipeline_spec["root"]["dag"]["tasks"].items()
    }
    executors = pipeline_spec["deploymentSpec"]["executors"]
    return {
        task: executors[label].get("container", {}).get("resources", {})
        for task, label in executor_of.items()
    }


def _gpu_config(distribute: str | None = None) -> PipelineConfig:
    return PipelineConfig(
        data_path="gs://b/ml-100k", output_dir="gs://b/movierec", model="gru4rec", distribute=distribute
    )


def test_trainer_gpus_are_requested_for_the_trainer_only(tmp_path):
    from movierec.pipeline.runners.kubeflow_v2 import DEFAULT_ACCELERATOR

    spec_file = compile_pipeline(
        _gpu_config("mirrored"), str(tmp_path / "spec.json"), fingerprint="v1", trainer_gpus=2
    )
    resources = _container_resources(spec_file)
    assert resources["Trainer"] == {
        "accelerator": {
            "type": DEFAULT_ACCELERATOR,
            "count": "2",  # int64 is a string in proto JSON
            "resourceType": DEFAULT_ACCELERATOR,
            "resourceCount": "2",
        }
    }
    assert "Tuner" in resources  # trains models too, but is not given GPUs (the issue asks the Trainer)
    assert {task: r for task, r in resources.items() if r and task != "Trainer"} == {}


def test_no_trainer_gpus_requests_no_resources(tmp_path):
    spec_file = compile_pipeline(_gpu_config(), str(tmp_path / "spec.json"), fingerprint="v1")
    resources = _container_resources(spec_file)
    assert "Trainer" in resources and all(r == {} for r in resources.values()), resources
    assert "accelerator" not in (tmp_path / "spec.json").read_text()


def test_bad_trainer_gpus_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="trainer_gpus must be an int >= 0, got -1"):
        compile_pipeline(_gpu_config(), str(tmp_path / "spec.json"), fingerprint="v1", trainer_gpus=-1)
    with pytest.raises(ValueError, match="trainer_gpus=2 needs distribute='mirrored'"):
        compile_pipeline(_gpu_config(), str(tmp_path / "spec.json"), fingerprint="v1", trainer_gpus=2)
    with pytest.raises(ValueError, match="trainer_accelerator must be a non-empty type name"):
        compile_pipeline(
            _gpu_config(),
            str(tmp_path / "spec.json"),
            fingerprint="v1",
            trainer_gpus=1,
            trainer_accelerator="",
        )
    assert list(tmp_path.iterdir()) == []


def _compile_args(tmp_path, *extra: str) -> list[str]:
    return [
        "pipeline",
        "compile",
        "--data",
        "/gcs/bucket/ml-100k",
        "--data-fingerprint",
        "v1",
        "--output-dir",
        "gs://bucket/movierec",
        "--spec",
        str(tmp_path / "spec.json"),
        *extra,
    ]


def test_cli_trainer_gpus(tmp_path):
    result = CliRunner().invoke(
        main,
        _compile_args(
            tmp_path, "--trainer-gpus", "1", "--trainer-accelerator", "nvidia.com/gpu", "--image", "m:gpu"
        ),
    )
    assert result.exit_code == 0, result.output
    resources = _container_resources(str(tmp_path / "spec.json"))
    assert resources["Trainer"]["accelerator"]["resourceType"] == "nvidia.com/gpu"
    assert resources["Trainer"]["accelerator"]["resourceCount"] == "1"
    assert [task for task, r in resources.items() if r] == ["Trainer"]


def test_cli_default_accelerator_is_the_runners(tmp_path):
    from movierec.pipeline.runners.kubeflow_v2 import DEFAULT_ACCELERATOR

    result = CliRunner().invoke(main, _compile_args(tmp_path, "--trainer-gpus", "1"))
    assert result.exit_code == 0, result.output
    assert _container_resources(str(tmp_path / "spec.json"))["Trainer"]["accelerator"]["type"] == (
        DEFAULT_ACCELERATOR
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--trainer-gpus", "-1"], "Invalid value for '--trainer-gpus': -1 is not in the range x>=0"),
        (["--trainer-gpus", "two"], "Invalid value for '--trainer-gpus': 'two' is not a valid integer"),
        (["--trainer-gpus", "2"], "Invalid value for --trainer-gpus: 2 GPUs need --distribute mirrored"),
        (["--trainer-gpus", "1", "--trainer-accelerator", " "], "--trainer-accelerator: give an accelerator"),
    ],
)
def test_cli_refuses_bad_trainer_gpus(tmp_path, extra, message):
    result = CliRunner().invoke(main, _compile_args(tmp_path, *extra))
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()), result.output
    assert not (tmp_path / "spec.json").exists()


def test_cli_trainer_gpus_with_mirrored(tmp_path):
    result = CliRunner().invoke(
        main, _compile_args(tmp_path, "--trainer-gpus", "4", "--distribute", "mirrored")
    )
    assert result.exit_code == 0, result.output
    assert _container_resources(str(tmp_path / "spec.json"))["Trainer"]["accelerator"]["count"] == "4"


def test_worker_packages_named_by_the_user_are_kept():
    from movierec.pipeline.runners.kubeflow_v2 import with_worker_image

    mine = ["--runner=DataflowRunner", "--setup_file=./setup.py"]
    assert with_worker_image(mine, "example.org/movierec:1") == mine
    assert with_worker_image(["--runner=DataflowRunner"], "img:1") == [
        "--runner=DataflowRunner",
        "--sdk_container_image=img:1",
    ]
