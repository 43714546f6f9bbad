"""Compiles the pipeline to a Kubeflow Pipelines v2 / Vertex AI spec (JSON) for the image in Dockerfile.

On Kubeflow, `data_path` is a folder every pod can read as files (Vertex AI mounts buckets under
/gcs/), `output_dir` may be gs://…, and `beam_pipeline_args` choose the Beam runner (DataflowRunner or
FlinkRunner, see the README).
"""

from __future__ import annotations

import os

from tfx import v1 as tfx

from movierec.pipeline.config import PipelineConfig
from movierec.pipeline.pipeline import create_pipeline

DEFAULT_IMAGE = "movierec:latest"


def compile_pipeline(
    config: PipelineConfig, output_file: str, image: str = DEFAULT_IMAGE, fingerprint: str | None = None
) -> str:
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=image),
        output_dir=os.path.dirname(os.path.abspath(output_file)),
        output_filename=os.path.basename(output_file),
    )
    runner.run(create_pipeline(config, fingerprint=fingerprint))
    return output_file
