"""Artifact types of movierec's own components; ML Metadata records them like TFX's own."""

from tfx.types.artifact import Artifact


class DataReport(Artifact):
    """`report.json`: rows read, accepted and rejected (by file, line and reason), and the split."""

    TYPE_NAME = "movierec.DataReport"  # namespace.Name: the form Kubeflow v2 accepts
