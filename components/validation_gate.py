"""AnomalyGate: stops the run when ExampleValidator found anomalies, saying which and where.

TFX's ExampleValidator only records anomalies; a pipeline that must not train on drifted or malformed
data needs a step that fails on them.
"""

import os

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts
from tfx.types.standard_artifact_utils import decode_split_names


def anomalies_by_split(anomalies_artifact) -> dict[str, list[str]]:
    """{split: ["feature: description", ...]} from an ExampleAnomalies artifact."""
    found = {}
    for split in decode_split_names(anomalies_artifact.split_names):
        path = os.path.join(anomalies_artifact.uri, f"Split-{split}", "SchemaDiff.pb")
        if not tf.io.gfile.exists(path):
            continue
        proto = anomalies_pb2.Anomalies()
        with tf.io.gfile.GFile(path, "rb") as handle:
            proto.ParseFromString(handle.read())
        messages = [
            f"{feature}: {info.description or info.short_description}"
            for feature, info in sorted(proto.anomaly_info.items())
        ]
        if proto.HasField("dataset_anomaly_info"):
            messages.append(f"(dataset): {proto.dataset_anomaly_info.description}")
        if messages:
            found[split] = messages
    return found


@component
def AnomalyGate(
    anomalies: InputArtifact[standard_artifacts.ExampleAnomalies], code_fingerprint: Parameter[str] = ""
) -> None:
    del code_fingerprint  # only keys the cache (movierec.pipeline.fingerprint): changed code re-runs it
    found = anomalies_by_split(anomalies)
    if found:
        lines = [f"  split {split}: {message}" for split, messages in found.items() for message in messages]
        raise RuntimeError("ExampleValidator found data anomalies; the run stops here:\n" + "\n".join(lines))
