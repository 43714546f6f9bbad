"""movierec."""

from typing import Any


def __getattr__(name: str) -> Any:
    # Kubeflow v2 pods rebuild a custom artifact class by importing its type name as a class path,
    # while the v2 compiler only accepts type names of the form "namespace.Name": so the type
    # "movierec.DataReport" must be importable as movierec.DataReport. Resolved lazily, because the
    # artifact module imports TFX and `import movierec` must stay light.
    if name == "DataReport":
        from movierec.components.artifacts import DataReport

        return DataReport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
