"""The TFX pipeline: `create_pipeline(PipelineConfig(...))` builds it; runners (`runners/local.py`,
`runners/kubeflow_v2.py`) decide where it runs; `modules/` holds the Transform and Trainer module
functions; `schema/schema.pbtxt` is the reviewed schema.

Names resolve lazily: importing `movierec.pipeline.fingerprint` or a module file must not pay for
importing TFX's orchestration here."""

from typing import Any

_EXPORTS = {
    "PipelineConfig": "movierec.pipeline.config",
    "create_pipeline": "movierec.pipeline.pipeline",
    "servable_models": "movierec.pipeline.pipeline",
    "data_fingerprint": "movierec.pipeline.pipeline",
    "code_fingerprint": "movierec.pipeline.fingerprint",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
