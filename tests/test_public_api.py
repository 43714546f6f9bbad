"""The public API is what the README and the packages' `__all__` document: every such name imports,
every stage folder is an installed `movierec.<folder>` package, and the README's layout is the tree."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from movierec.pipeline.fingerprint import STAGE_PACKAGES

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def stage_folders() -> dict[str, str]:
    """setup.py's STAGE_FOLDERS: {import name: folder}."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    node = next(
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", None) == "STAGE_FOLDERS"
    )
    return ast.literal_eval(node)


@pytest.mark.parametrize("package", STAGE_PACKAGES)
def test_every_name_a_package_exports_imports(package):
    module = importlib.import_module(package)
    for name in getattr(module, "__all__", ()):
        assert getattr(module, name) is not None, f"{package}.{name}"


def readme_imports() -> list[tuple[str, str]]:
    """(module, name) of every `from movierec... import a, b` line of the README."""
    pairs = []
    for module, names in re.findall(r"from (movierec[\w.]*) import ([\w, ]+)", README):
        pairs += [(module, name.strip()) for name in names.split(",") if name.strip()]
    return pairs


def test_the_readme_examples_import():
    pairs = readme_imports()
    assert ("movierec.models", "GRU4Rec") in pairs  # the README shows the models' imports
    for module, name in pairs:
        assert hasattr(importlib.import_module(module), name), f"from {module} import {name}"


def test_every_stage_is_one_top_level_folder_installed_under_movierec():
    folders = stage_folders()
    assert tuple(folders) == STAGE_PACKAGES
    for package, folder in folders.items():
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.submodule_search_locations, package
        # the installed package is the folder of that name (in this checkout, or its mount in the
        # environment: compare names and contents, not absolute paths)
        installed = Path(next(iter(spec.submodule_search_locations)))
        assert (
            installed.name == folder
            and (installed / "__init__.py").read_bytes() == (ROOT / folder / "__init__.py").read_bytes()
        ), (package, installed)
        assert package == "movierec" or package == f"movierec.{folder}", (package, folder)
    # every top-level Python package of the checkout is a stage setup.py installs
    packages_on_disk = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert packages_on_disk == set(folders.values()), "a top-level package folder setup.py does not install"
    # the root package holds only what every stage shares
    assert {p.name for p in (ROOT / "movierec").iterdir() if p.name != "__pycache__"} == {
        "__init__.py",
        "constants.py",
        "storage.py",
    }


def test_the_readme_layout_is_the_tree():
    section = README.split("## Layout", 1)[1].split("\n## ", 1)[0]
    listed = dict(re.findall(r"^    (\w+)/\s+(movierec[\w.]*)", section, flags=re.MULTILINE))
    assert listed == {folder: package for package, folder in stage_folders().items()}
