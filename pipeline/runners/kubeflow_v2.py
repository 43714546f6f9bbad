"""Compiles the pipeline to a Kubeflow Pipelines v2 / Vertex AI spec (JSON) for the image in Dockerfile.

On Kubeflow, `data_path` is a folder every pod can read (a gs:// URI, or a /gcs/ mount on Vertex AI),
`output_dir` may be gs://…, and `beam_pipeline_args` choose the Beam runner (DataflowRunner or
FlinkRunner, see the README). Compiling touches no storage: only the spec file is written, and it may
be local (the usual case) or a URI.
"""

from __future__ import annotations

import os
import posixpath

from tfx import v1 as tfx

from movierec import storage
from movierec.pipeline.config import PipelineConfig
from movierec.pipeline.pipeline import create_pipeline

DEFAULT_IMAGE = "movierec:latest"


def compile_pipeline(
    config: PipelineConfig, output_file: str, image: str = DEFAULT_IMAGE, fingerprint: str | None = None
) -> str:
    """Writes the Kubeflow Pipelines v2 spec of `config`'s pipeline to `output_file`; returns its path."""
    if storage.is_uri(output_file):
        directory, name = posixpath.split(output_file)
    else:
        directory, name = os.path.split(os.path.abspath(output_file))
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=image),
        output_dir=directory,
        output_filename=name,
    )
    # Kubeflow and Vertex AI keep their own ML Metadata: no SQLite file under the (gs://) output dir.
    runner.run(create_pipeline(config, fingerprint=fingerprint, local_metadata=False))
    return output_file
