"""A slice of the real MovieLens 100K (the first 200 users) keeps pipeline runs short; copies of the
installed movierec sources stand in for edited code."""

import shutil
from pathlib import Path

import pytest

from movierec.pipeline.fingerprint import LOCK_FILE, package_roots

SLICE_USERS = 200


@pytest.fixture(scope="session")
def ml100k_slice(ml100k_dir: Path, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ml-100k-slice")
    lines = (ml100k_dir / "u.data").read_bytes().splitlines(keepends=True)
    (folder / "u.data").write_bytes(
        b"".join(line for line in lines if int(line.split(b"\t")[0]) <= SLICE_USERS)
    )
    for name in ("u.item", "u.user", "u.genre", "u.occupation"):
        (folder / name).write_bytes((ml100k_dir / name).read_bytes())
    return folder


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
