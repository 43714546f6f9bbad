"""Helpers for the data-layer tests: writable copies of the fixture datasets."""

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def layout_copy(tmp_path: Path, fixtures_dir: Path) -> Callable[..., Path]:
    """A writable copy of tests/fixtures/<layout>, with some files replaced by the given bytes.

    layout_copy("ml-100k", **{"u.data": b"..."}) -> folder; a value of None deletes that file.
    """

    made = 0

    def make(layout: str, **files: bytes | None) -> Path:
        nonlocal made
        made += 1
        folder = tmp_path / f"copy{made}" / layout  # keeps the layout's name: Dataset.name defaults to it
        shutil.copytree(fixtures_dir / layout, folder)
        for name, content in files.items():
            if content is None:
                (folder / name).unlink()
            else:
                (folder / name).write_bytes(content)
        return folder

    return make
