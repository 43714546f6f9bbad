"""The code fingerprint sees every change to movierec's sources and dependency set, and reaches the cache
key of every component that runs movierec code (that a changed fingerprint really re-runs them, and an
unchanged one stays cached, is in test_pipeline_e2e.py)."""

import ast
import shutil
from pathlib import Path

from movierec.pipeline.config import PipelineConfig
from movierec.pipeline.fingerprint import (
    LOCK_FILE,
    STAGE_PACKAGES,
    code_fingerprint,
    package_roots,
    source_files,
)
from movierec.pipeline.pipeline import create_pipeline

REPO = Path(__file__).resolve().parents[2]


def test_stage_packages_are_the_folders_setup_py_installs():
    tree = ast.parse((REPO / "setup.py").read_text())
    (folders,) = (
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "STAGE_FOLDERS"
    )
    assert tuple(ast.literal_eval(folders)) == STAGE_PACKAGES


def test_the_installed_sources_cover_what_the_components_run():
    files = source_files(package_roots())
    for module in (
        "movierec/data/splits.py",
        "movierec/cli/main.py",
        "movierec/data/loader.py",
        "movierec/evaluation/ranking.py",
        "movierec/models/gru4rec/network.py",
        "movierec/components/example_gen.py",
        "movierec/pipeline/modules/trainer.py",
        "movierec/serving/export.py",
    ):
        assert module in files, module


def test_any_source_or_lock_edit_changes_the_fingerprint_and_nothing_else_does(source_copy, tmp_path):
    before = code_fingerprint(source_copy)
    # the same code elsewhere (another checkout, the image) has the same fingerprint
    elsewhere = {name: tmp_path / "elsewhere" / folder.name for name, folder in source_copy.items()}
    shutil.copytree(source_copy["movierec"].parent, tmp_path / "elsewhere")
    assert code_fingerprint(elsewhere) == before

    splits = source_copy["movierec.data"] / "splits.py"
    original = splits.read_bytes()
    splits.write_bytes(original + b"\n# an edit\n")
    assert code_fingerprint(source_copy) != before
    splits.write_bytes(original)
    assert code_fingerprint(source_copy) == before

    for edit in (
        source_copy["movierec.models"] / "gru4rec" / "network.py",
        source_copy["movierec.evaluation"] / "ranking.py",
        source_copy["movierec"].parent / LOCK_FILE,
    ):
        original = edit.read_bytes()
        edit.write_bytes(original.replace(b"\n", b"\n\n", 1))
        assert code_fingerprint(source_copy) != before, edit
        edit.write_bytes(original)
    new_module = source_copy["movierec.models"] / "sasrec.py"
    new_module.write_text("x = 1\n")
    assert code_fingerprint(source_copy) != before
    new_module.unlink()

    # what Python does not run is not code: bytecode caches, notes
    (source_copy["movierec.data"] / "__pycache__").mkdir(exist_ok=True)
    (source_copy["movierec.data"] / "__pycache__" / "splits.cpython-313.pyc").write_bytes(b"\0")
    (source_copy["movierec.models"] / "NOTES.md").write_text("notes")
    assert code_fingerprint(source_copy) == before


def test_an_installed_wheel_and_a_checkout_hash_the_same_files(source_copy, tmp_path):
    # a wheel nests the stage folders inside movierec/; the keys are import paths either way
    site = tmp_path / "site" / "movierec"
    shutil.copytree(source_copy["movierec"], site)
    wheel = {"movierec": site}
    for name in STAGE_PACKAGES[1:]:
        wheel[name] = site / name.split(".")[1]
        shutil.copytree(source_copy[name], wheel[name])
    checkout_files, wheel_files = source_files(source_copy), source_files(wheel)
    assert checkout_files.keys() == wheel_files.keys()
    assert all(checkout_files[k].read_bytes() == wheel_files[k].read_bytes() for k in checkout_files)


def exec_properties(pipeline) -> dict[str, dict]:
    return {node.id: dict(node.exec_properties) for node in pipeline.components}


def test_every_component_running_movierec_code_is_keyed_on_the_fingerprint(tmp_path):
    config = PipelineConfig(data_path=str(tmp_path), output_dir=str(tmp_path / "out"), code_fingerprint="v1")
    properties = exec_properties(create_pipeline(config, fingerprint="data-v1"))
    for node in ("MovieLensExampleGen", "AnomalyGate", "SequenceGen", "RankingEvaluator"):
        assert properties[node]["code_fingerprint"] == "v1", node
    for node in ("Transform", "Trainer"):
        assert '"code_fingerprint": "v1"' in properties[node]["custom_config"], node
    # by default, the installed sources
    default = exec_properties(create_pipeline(PipelineConfig(data_path=str(tmp_path), output_dir="out"), "d"))
    assert default["SequenceGen"]["code_fingerprint"] == code_fingerprint()
