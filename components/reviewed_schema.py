"""ReviewedSchemaGen: TFX's ImportSchemaGen, with the schema file's content in the cache key.

The pipeline validates every run against a schema reviewed into the repository (or given with
`--schema`), never against one inferred from the data being checked. Stock ImportSchemaGen keys its
cache on the file's *path* only, so after editing the schema in place a cached run would keep
validating against the old copy. This subclass adds the file's sha256 as a parameter; the executor
is ImportSchemaGen's own (it ignores the extra parameter and copies the file).
"""

from __future__ import annotations

import hashlib
from typing import ClassVar

from tfx import types
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.dsl.components.base import base_component
from tfx.types import standard_artifacts
from tfx.types.component_spec import ExecutionParameter
from tfx.types.standard_component_specs import ImportSchemaGenSpec


def schema_fingerprint(schema_file: str) -> str:
    """sha256 of a local schema file. A URI (gs://…) is keyed by itself: reading it where the pipeline
    is compiled would need the bucket's credentials, and such files are versioned by name."""
    if "://" in schema_file:
        return schema_file
    with open(schema_file, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


class ReviewedSchemaGenSpec(ImportSchemaGenSpec):
    PARAMETERS: ClassVar[dict[str, ExecutionParameter]] = {
        **ImportSchemaGenSpec.PARAMETERS,
        "schema_fingerprint": ExecutionParameter(type=str),
    }


class ReviewedSchemaGen(ImportSchemaGen):
    SPEC_CLASS = ReviewedSchemaGenSpec

    def __init__(self, schema_file: str):
        spec = ReviewedSchemaGenSpec(
            schema_file=schema_file,
            schema_fingerprint=schema_fingerprint(schema_file),
            schema=types.Channel(type=standard_artifacts.Schema),
        )
        # ImportSchemaGen.__init__ would build the stock spec without the fingerprint
        base_component.BaseComponent.__init__(self, spec=spec)
