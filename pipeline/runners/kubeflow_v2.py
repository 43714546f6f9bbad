"""Compiles the pipeline to a Kubeflow Pipelines v2 / Vertex AI spec (JSON) for the image in Dockerfile.

On Kubeflow, `data_path` is a folder every pod can read (a gs:// URI, or a /gcs/ mount on Vertex AI),
`output_dir` may be gs://…, and `beam_pipeline_args` choose the Beam runner (DataflowRunner or
FlinkRunner, see the README). Compiling touches no storage: only the spec file is written, and it may
be local (the usual case) or a URI.

GPUs are requested for the Trainer only (`trainer_gpus`): it is the one component whose work is dense
math; the others parse, count and evaluate on CPUs, so a GPU there would only wait for a node.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath

from kfp.pipeline_spec import pipeline_spec_pb2
from tfx import v1 as tfx

from movierec import storage
from movierec.pipeline.config import PipelineConfig
from movierec.pipeline.pipeline import create_pipeline

DEFAULT_IMAGE = "movierec:latest"
# Vertex AI Pipelines names accelerators by its enum (NVIDIA_TESLA_T4, NVIDIA_L4, NVIDIA_TESLA_A100, …);
# Kubeflow Pipelines on a Kubernetes cluster takes the node's resource name (nvidia.com/gpu).
DEFAULT_ACCELERATOR = "NVIDIA_TESLA_T4"
TRAINER_ID = "Trainer"

ResourceSpec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec


def trainer_resources(gpus: int, accelerator: str = DEFAULT_ACCELERATOR) -> ResourceSpec:
    """The Trainer container's ResourceSpec: `gpus` accelerators of type `accelerator`.

    Both the `resource_*` fields (KFP >= 2.x backends, which also accept pipeline-parameter
    placeholders there) and the older `type`/`count` ones are set, as the KFP SDK's own compiler does,
    so old and new backends read the same request.

    Args:
        gpus: accelerators for the Trainer, >= 1.
        accelerator: the accelerator type as the backend names it (see `DEFAULT_ACCELERATOR`).
    """
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1:
        raise ValueError(f"trainer_gpus must be an int >= 1 to request accelerators, got {gpus!r}")
    if not accelerator or accelerator != accelerator.strip():
        raise ValueError(f"trainer_accelerator must be a non-empty type name, got {accelerator!r}")
    return ResourceSpec(
        accelerator=ResourceSpec.AcceleratorConfig(
            type=accelerator, count=gpus, resource_type=accelerator, resource_count=str(gpus)
        )
    )


# The Beam flags that say where workers get their Python packages (TFX's dependency_utils checks these).
WORKER_DEPENDENCY_FLAGS = (
    "--extra_package",
    "--extra_packages",
    "--setup_file",
    "--requirements_file",
    "--worker_harness_container_image",
    "--sdk_container_image",
)


def with_worker_image(beam_args: list[str], image: str) -> list[str]:
    """`beam_args` plus `--sdk_container_image=image` unless they already name the workers' packages.

    Why: a remote Beam runner (Dataflow, Flink) started from a pod needs movierec on its workers (the
    components' DoFns are movierec code), and the pods' image has it. Without such a flag every TFX
    Beam executor instead builds an sdist of TFX alone (no movierec) for the workers; a DirectRunner
    inside the pod ignores the flag."""
    if any(arg.split("=", 1)[0] in WORKER_DEPENDENCY_FLAGS for arg in beam_args):
        return list(beam_args)
    return [*beam_args, f"--sdk_container_image={image}"]


def compile_pipeline(
    config: PipelineConfig,
    output_file: str,
    image: str = DEFAULT_IMAGE,
    fingerprint: str | None = None,
    trainer_gpus: int = 0,
    trainer_accelerator: str = DEFAULT_ACCELERATOR,
) -> str:
    """Writes the Kubeflow Pipelines v2 spec of `config`'s pipeline to `output_file`; returns its path.

    Args:
        config: the pipeline.
        output_file: the spec's path (local, or a URI).
        image: the image every component runs (the GPU variant of Dockerfile when `trainer_gpus` > 0:
            the CPU image's TensorFlow has no CUDA libraries and would train on the CPU).
        fingerprint: ExampleGen's data cache key (default: computed from `config.data_path`).
        trainer_gpus: GPUs the Trainer's container requests (0: none). More than one is used only by
            `config.distribute="mirrored"`, so more than one without it is refused.
        trainer_accelerator: their type, as the backend names it (`DEFAULT_ACCELERATOR`).
    """
    if isinstance(trainer_gpus, bool) or not isinstance(trainer_gpus, int) or trainer_gpus < 0:
        raise ValueError(f"trainer_gpus must be an int >= 0, got {trainer_gpus!r}")
    if trainer_gpus > 1 and config.distribute != "mirrored":
        raise ValueError(
            f"trainer_gpus={trainer_gpus} needs distribute='mirrored': without a distribution strategy "
            "the Trainer uses one GPU and the others would be paid for idle"
        )
    resources = trainer_resources(trainer_gpus, trainer_accelerator) if trainer_gpus else None
    if storage.is_uri(output_file):
        directory, name = posixpath.split(output_file)
    else:
        directory, name = os.path.split(os.path.abspath(output_file))
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=image),
        output_dir=directory,
        output_filename=name,
    )
    config = dataclasses.replace(
        config, beam_pipeline_args=with_worker_image(config.beam_pipeline_args, image)
    )
    # Kubeflow and Vertex AI keep their own ML Metadata: no SQLite file under the (gs://) output dir.
    pipeline = create_pipeline(config, fingerprint=fingerprint, local_metadata=False)
    if resources is not None:
        # TFX's Kubeflow v2 step builder copies a component's platform config, when it is a
        # ResourceSpec, into its executor's container spec (deploymentSpec.executors.*.container.resources).
        # Set here, not in create_pipeline: the local runner has no use for it.
        trainers = [c for c in pipeline.components if c.id == TRAINER_ID]
        if len(trainers) != 1:
            raise RuntimeError(f"expected one {TRAINER_ID} component, found {len(trainers)}")
        trainers[0].with_platform_config(resources)
    runner.run(pipeline)
    return output_file
