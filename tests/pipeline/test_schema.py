"""The reviewed schema (pipeline/schema/schema.pbtxt) against the Examples MovieLensExampleGen writes.

ExampleValidator runs `tfdv.validate_statistics` on StatisticsGen's statistics; here the same TFDV
functions run in memory over the Examples of `to_example(interaction_table(dataset))`, so every layout
and every curated constraint is checked in seconds instead of a pipeline run each. That the gate
really stops a run on a violation is test_pipeline_gate.py.
"""

import hashlib
from pathlib import Path

import pytest
import tensorflow_data_validation as tfdv
from tensorflow_data_validation.statistics.stats_impl import generate_statistics_in_memory
from tfx.components.schema_gen.import_schema_gen import executor as import_schema_gen_executor
from tfx.types import standard_artifacts
from tfx_bsl.coders import example_coder

from movierec.components.example_gen import interaction_table, to_example
from movierec.data import load_dataset
from movierec.pipeline.config import PipelineConfig
from movierec.pipeline.pipeline import create_pipeline

SCHEMA = tfdv.load_schema_text(PipelineConfig(data_path="", output_dir="").schema_file)


def anomalies(serialized: list[bytes]) -> dict[str, str]:
    """{feature: description} of what ExampleValidator would report for these Examples."""
    batch = example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(serialized)
    found = tfdv.validate_statistics(generate_statistics_in_memory(batch), SCHEMA)
    return {name: info.description for name, info in found.anomaly_info.items()}


def schema_node(config: PipelineConfig):
    (node,) = (n for n in create_pipeline(config, fingerprint="d").components if n.id == "ReviewedSchemaGen")
    return node


def rows_of(folder: Path) -> list[dict]:
    return interaction_table(load_dataset(folder)).to_dict("records")


@pytest.mark.parametrize("layout", ["ml-100k", "ml-dat", "ml-csv", "netflix"])
def test_every_supported_layout_satisfies_the_reviewed_schema(fixtures_dir, layout):
    # the fixtures hold each layout's quirks: no users file (ml-csv, netflix), ML-1M's coded users,
    # half-star ratings, "(no genres listed)", items without a year, Netflix without genres
    assert anomalies([to_example(r) for r in rows_of(fixtures_dir / layout)]) == {}


def test_the_schema_holds_no_dataset_vocabulary(fixtures_dir):
    (row, *rest) = rows_of(fixtures_dir / "ml-100k")
    # values ML-100K never has: ml-latest's IMAX genre, an ML-1M occupation, a whole-star rating of 0.5
    other = {**row, "genres": ("IMAX",), "occupation": "K-12 student", "rating": 0.5}
    assert anomalies([to_example(r) for r in (other, *rest)]) == {}


def test_the_schema_names_out_of_range_ratings_missing_side_features_and_bad_ids(fixtures_dir):
    rows = rows_of(fixtures_dir / "ml-100k")
    good = [to_example(r) for r in rows]

    def anomalies_with(**changes) -> dict[str, str]:
        return anomalies([*good, to_example({**rows[0], **changes})])

    # ratings outside every layout's scale (the data layer rejects them today; this is the backstop)
    assert set(anomalies_with(rating=7.0)) == {"rating"}
    assert set(anomalies_with(rating=0.0)) == {"rating"}
    # a rated item its items file does not describe (movierec.data keeps the rating with a warning)
    missing = anomalies_with(title=None, genres=None, year=None)
    assert set(missing) == {"title", "genres"}, missing
    # ids are whole numbers in every layout; anything else is a reader bug
    assert set(anomalies_with(item_id="tt0114709")) == {"item_id"}
    assert set(anomalies_with(timestamp=-1)) == {"timestamp"}


def test_the_reviewed_schema_is_keyed_on_its_content_not_its_path(tmp_path):
    schema = tmp_path / "schema.pbtxt"
    schema.write_text('feature { name: "rating" type: FLOAT }\n')
    config = PipelineConfig(
        data_path=str(tmp_path), output_dir=str(tmp_path / "out"), schema_path=str(schema)
    )
    first = schema_node(config).exec_properties
    assert first["schema_file"] == str(schema)
    assert first["schema_fingerprint"] == hashlib.sha256(schema.read_bytes()).hexdigest()
    schema.write_text('feature { name: "rating" type: INT }\n')  # edited in place
    second = schema_node(config).exec_properties
    assert second["schema_fingerprint"] != first["schema_fingerprint"]
    # ImportSchemaGen's executor and output: a drop-in for the stock component
    node = schema_node(config)
    assert node.executor_spec.executor_class is import_schema_gen_executor.Executor
    assert node.outputs["schema"].type == standard_artifacts.Schema


def test_schema_option_replaces_the_reviewed_schema(tmp_path):
    from click.testing import CliRunner

    from movierec.cli import main

    args = ["pipeline", "compile", "--data", "/gcs/bucket/ml-100k", "--data-fingerprint", "v1"]
    args += ["--output-dir", str(tmp_path / "out"), "--spec", str(tmp_path / "spec.json")]
    missing = CliRunner().invoke(main, [*args, "--schema", str(tmp_path / "nowhere.pbtxt")])
    assert missing.exit_code != 0 and "no schema file at" in missing.output, missing.output
    schema = tmp_path / "mine.pbtxt"
    schema.write_text('feature { name: "rating" type: FLOAT }\n')
    result = CliRunner().invoke(main, [*args, "--schema", str(schema)])
    assert result.exit_code == 0, result.output
    spec = (tmp_path / "spec.json").read_text()
    assert str(schema) in spec and hashlib.sha256(schema.read_bytes()).hexdigest() in spec
    assert "schema/schema.pbtxt" not in spec
