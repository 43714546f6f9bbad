"""Bad data stops a real pipeline run (LocalDagRunner, ML Metadata) at AnomalyGate, naming the feature.

The data layer already rejects out-of-range ratings and malformed rows, so the case here is one that
passes it: ratings of an item that the items file does not describe are kept (with a warning), and
their Examples have no title and no genres. The run must stop before Transform and training.
"""

import shutil
from pathlib import Path

import pytest
import tensorflow_data_validation as tfdv
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx

from movierec.data import load_dataset
from movierec.pipeline.config import PipelineConfig
from movierec.pipeline.runners.local import run

pytestmark = pytest.mark.slow


def executions(config: PipelineConfig) -> dict[str, list[int]]:
    """{component: [state of each execution, oldest first]} from ML Metadata."""
    store = metadata_store.MetadataStore(
        tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_db)
    )
    types = {t.id: t.name.rsplit(".", 1)[-1] for t in store.get_execution_types()}
    found: dict[str, list[int]] = {}
    for execution in sorted(store.get_executions(), key=lambda e: e.id):
        found.setdefault(types[execution.type_id], []).append(execution.last_known_state)
    return found


def test_unknown_items_stop_the_run_at_the_gate_and_schema_overrides_it(ml100k_slice: Path, tmp_path):
    data = tmp_path / "ml-100k"
    shutil.copytree(ml100k_slice, data)
    items = (data / "u.item").read_bytes().splitlines(keepends=True)
    (data / "u.item").write_bytes(b"".join(line for line in items if not line.startswith(b"50|")))
    # the data layer lets these ratings through, so only the schema can catch them
    report = load_dataset(data).report.to_dict()
    assert report.get("total_rejected", 0) == 0 and "item not in u.item" in str(report)

    config = PipelineConfig(data_path=str(data), output_dir=str(tmp_path / "run"))
    with pytest.raises(RuntimeError, match="ExampleValidator found data anomalies") as stopped:
        run(config)
    message = str(stopped.value)
    assert "split train: title:" in message and "split train: genres:" in message, message
    assert "rating" not in message
    ran = executions(config)
    assert ran["AnomalyGate"] == [metadata_store_pb2.Execution.FAILED]
    assert not {"Transform", "SequenceGen", "Trainer"} & set(ran), ran

    # --schema: another schema replaces the reviewed one. This one accepts the unknown items but
    # allows whole-star ratings up to 4 only, so the same (cached) statistics now fail on `rating`.
    schema = tfdv.load_schema_text(config.schema_file)
    for feature in schema.feature:
        if feature.name in ("title", "genres"):
            feature.ClearField("presence")
            feature.ClearField("shape")
    tfdv.get_feature(schema, "rating").float_domain.max = 4.0
    tfdv.write_schema_text(schema, str(tmp_path / "schema.pbtxt"))
    override = PipelineConfig(
        data_path=str(data), output_dir=str(tmp_path / "run"), schema_path=str(tmp_path / "schema.pbtxt")
    )
    with pytest.raises(RuntimeError, match="ExampleValidator found data anomalies") as stopped:
        run(override)
    message = str(stopped.value)
    assert "rating: Unexpectedly high value: 5>4" in message, message
    assert "title" not in message and "genres" not in message
    ran = executions(override)
    Execution = metadata_store_pb2.Execution
    assert ran["MovieLensExampleGen"] == [Execution.COMPLETE, Execution.CACHED]  # same data: cached
