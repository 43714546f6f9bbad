"""Tasks of the compiled Kubeflow Pipelines v2 spec, run the way a Kubeflow / Vertex AI pod runs them.

Each pod runs the task's container command from the spec — TFX's V2 entrypoint
(`python -m tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor`) with the spec's
arguments — where the KFP launcher has replaced the `{{$}}` placeholder with the ExecutorInput JSON:
the task's parameters (the spec's constants), its input artifacts (the URIs and metadata its upstream
tasks reported in their executor_output.json) and its output artifacts (URIs under the pipeline root).
Here the launcher is played by `launch`, with local folders as artifact URIs, and every task runs in
its own subprocess, as in its own pod: ExampleGen and ReviewedSchemaGen, then Transform and
SequenceGen (in parallel, as Kubeflow schedules them), then the Trainer, on a small synthetic dataset
in the MovieLens 100K layout. So what Kubeflow executes — executor class paths, parameter encoding,
artifact types and properties passed between pods, module imports by name — is executed here.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from movierec.models import GRU4RecRecommender, load_model
from movierec.pipeline.config import PipelineConfig
from movierec.pipeline.runners.kubeflow_v2 import compile_pipeline

# Five TFX processes, each importing TensorFlow, TFX and Beam as a pod does: 2-3 minutes on 2 cores.
pytestmark = pytest.mark.slow

ENTRYPOINT = ["python", "-m", "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"]
TASK_TIMEOUT = 600


def write_ml100k(folder: Path, n_users: int = 40, n_items: int = 30, per_user: int = 12) -> Path:
    """A small dataset in the MovieLens 100K layout: every user rates a run of consecutive items, one
    a day, so the temporal split has training, validation and test users."""
    rng = np.random.default_rng(0)
    genres = ["unknown", "Action", "Comedy", "Drama"]
    folder.mkdir(parents=True)
    (folder / "u.genre").write_text("".join(f"{g}|{k}\n" for k, g in enumerate(genres)))
    items = []
    for i in range(1, n_items + 1):
        flags = "|".join("1" if k == 1 + i % 3 else "0" for k in range(len(genres)))
        items.append(f"{i}|Movie {i} ({1950 + i})|01-Jan-{1950 + i}||http://example.invalid/{i}|{flags}")
    (folder / "u.item").write_text("\n".join(items) + "\n")
    users = [f"{u}|{20 + u % 40}|{'MF'[u % 2]}|engineer|{10000 + u}" for u in range(1, n_users + 1)]
    (folder / "u.user").write_text("\n".join(users) + "\n")
    rows = []
    for u in range(1, n_users + 1):
        first_item, first_day = rng.integers(1, n_items - per_user + 2), rng.integers(0, 30)
        for k in range(per_user):
            timestamp = 880_000_000 + (first_day + k) * 86_400 + u
            rows.append(f"{u}\t{first_item + k}\t{rng.integers(1, 6)}\t{timestamp}\n")
    (folder / "u.data").write_text("".join(rows))
    return folder


def launch(spec: dict, task: str, root: Path, produced: dict[str, dict]) -> subprocess.Popen:
    """Starts `task`'s container command as the KFP launcher does, with the ExecutorInput built from
    the spec, and returns the running process. `produced[task][key]` is what upstream tasks reported
    (uri, name, metadata) for their output artifacts."""
    pipeline = spec["pipelineSpec"]
    task_spec = pipeline["root"]["dag"]["tasks"][task]
    component = pipeline["components"][task_spec["componentRef"]["name"]]
    container = pipeline["deploymentSpec"]["executors"][component["executorLabel"]]["container"]
    inputs = task_spec.get("inputs", {})
    input_artifacts = {}
    for key, source in inputs.get("artifacts", {}).items():
        upstream = source["taskOutputArtifact"]
        artifact = produced[upstream["producerTask"]][upstream["outputArtifactKey"]]
        artifact_type = component["inputDefinitions"]["artifacts"][key]["artifactType"]
        input_artifacts[key] = {"artifacts": [{**artifact, "type": artifact_type}]}
    output_artifacts = {}
    for key, definition in component["outputDefinitions"]["artifacts"].items():
        uri = root / task / key
        uri.mkdir(parents=True)  # the launcher prepares local output folders
        output_artifacts[key] = {
            "artifacts": [{"name": f"{task}.{key}", "uri": str(uri), "type": definition["artifactType"]}]
        }
    executor_input = {
        "inputs": {
            # schema 2.0: constants travel as `parameters` Values (intValue, stringValue, doubleValue)
            "parameters": {
                k: v["runtimeValue"]["constantValue"] for k, v in inputs.get("parameters", {}).items()
            },
            "artifacts": input_artifacts,
        },
        "outputs": {"artifacts": output_artifacts, "outputFile": str(root / task / "executor_output.json")},
    }
    assert container["command"] == ENTRYPOINT
    assert [arg for arg in container["args"] if "{{" in arg] == ["{{$}}"]  # the one the launcher fills
    args = [json.dumps(executor_input) if arg == "{{$}}" else arg for arg in container["args"]]
    command = [sys.executable, *container["command"][1:], *args]  # the image's python: this environment's
    with open(root / f"{task}.log", "w") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def finish(process: subprocess.Popen, task: str, root: Path) -> dict:
    """Waits for the task's pod; returns its output artifacts as reported in executor_output.json."""
    process.wait(timeout=TASK_TIMEOUT)
    log = (root / f"{task}.log").read_text()
    assert process.returncode == 0, f"{task} failed:\n{log[-6000:]}"
    output = json.loads((root / task / "executor_output.json").read_text())
    return {key: value["artifacts"][0] for key, value in output["artifacts"].items()}


def run_tasks(spec: dict, root: Path, stages: list[list[str]]) -> dict[str, dict]:
    """Runs the stages in order, the tasks of a stage in parallel; returns every task's outputs."""
    produced: dict[str, dict] = {}
    for stage in stages:
        running = {task: launch(spec, task, root, produced) for task in stage}
        try:
            for task, process in running.items():
                produced[task] = finish(process, task, root)
        finally:  # a failed task: stop the stage's other pods rather than leave them running
            for process in running.values():
                if process.poll() is None:
                    process.kill()
                    process.wait()
    return produced


def test_compiled_spec_tasks_run_through_the_kubeflow_v2_entrypoint(tmp_path):
    data = write_ml100k(tmp_path / "ml-100k")
    config = PipelineConfig(
        data_path=str(data),
        output_dir="gs://movierec-test-bucket/run",  # as on a cluster; the tasks below get local URIs
        model="gru4rec",
        hparams={"epochs": 1, "hidden_size": 16, "batch_size": 8, "n_sample": 8},
        tune=False,  # the Tuner's run is tested by test_pipeline_e2e
    )
    spec_file = compile_pipeline(config, str(tmp_path / "spec.json"), image="example.org/movierec:1")
    spec = json.loads(Path(spec_file).read_text())
    assert spec["runtimeConfig"]["gcsOutputDirectory"] == "gs://movierec-test-bucket/run/pipeline_root"

    root = tmp_path / "pipeline_root"
    produced = run_tasks(
        spec, root, [["MovieLensExampleGen", "ReviewedSchemaGen"], ["Transform", "SequenceGen"], ["Trainer"]]
    )

    examples = produced["MovieLensExampleGen"]["examples"]
    assert json.loads(examples["metadata"]["split_names"]) == ["train", "eval", "test"]
    report = json.loads(Path(produced["MovieLensExampleGen"]["report"]["uri"], "report.json").read_text())
    assert report["dataset"]["checksum"] and report["load"]["total_rejected"] == 0
    for split in ("train", "eval", "test"):
        assert tf.io.gfile.glob(f"{examples['uri']}/Split-{split}/*.gz"), split
    assert tf.io.gfile.exists(
        f"{produced['Transform']['transform_graph']['uri']}/transform_fn/saved_model.pb"
    )

    model_uri = produced["Trainer"]["model"]["uri"]
    recommender = load_model(f"{model_uri}/recommender")
    assert isinstance(recommender, GRU4RecRecommender) and recommender.config.hidden_size == 16
    metrics = json.loads(Path(model_uri, "recommender", "validation_metrics.json").read_text())
    assert 0.0 <= metrics["recall@20"] <= 1.0
    served = tf.saved_model.load(f"{model_uri}/Format-Serving")
    assert {"serving_default", "transform_features"} <= set(served.signatures)
