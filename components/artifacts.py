"""Artifact types of movierec's own components; ML Metadata records them like TFX's own."""

from tfx.types.artifact import Artifact


class DataReport(Artifact):
    """`report.json`: rows read, accepted and rejected (by file, line and reason), and the split."""

    # namespace.Name, the only form the Kubeflow v2 compiler accepts; pods import it as a class path,
    # which movierec/__init__.py resolves to this class
    TYPE_NAME = "movierec.DataReport"
