"""Copies of the installed movierec sources stand in for edited code (the ML-100K slice the pipeline
tests run on is in tests/conftest.py)."""

import shutil
from pathlib import Path

import pytest

from movierec.pipeline.fingerprint import LOCK_FILE, package_roots


@pytest.fixture
def source_copy(tmp_path) -> dict[str, Path]:
    """A copy of the installed package's folders laid out like the checkout (models/ beside
    movierec/, requirements/lock.txt beside both), as {import name: folder} for code_fingerprint."""
    roots = package_roots()
    checkout = tmp_path / "checkout"
    copies = {}
    for name, root in roots.items():
        copies[name] = checkout / root.name
        shutil.copytree(root, copies[name], ignore=shutil.ignore_patterns("__pycache__"))
    (checkout / LOCK_FILE).parent.mkdir()
    shutil.copyfile(roots["movierec"].parent / LOCK_FILE, checkout / LOCK_FILE)
    return copies
