"""Shared fixtures: the team's real data lives beside the checkout in ../shared/data."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def ml100k_dir() -> Path:
    """The real MovieLens 100K files; tests that need them skip (with the reason) where absent."""
    path = SHARED_DATA / "ml-100k"
    if not (path / "u.data").exists():
        pytest.skip(f"real MovieLens 100K not found at {path} (the team's shared data folder)")
    return path


SLICE_USERS = 200


@pytest.fixture(scope="session")
def ml100k_slice(ml100k_dir: Path, tmp_path_factory) -> Path:
    """The real MovieLens 100K cut to its first 200 users: keeps pipeline runs and searches short."""
    folder = tmp_path_factory.mktemp("ml-100k-slice")
    lines = (ml100k_dir / "u.data").read_bytes().splitlines(keepends=True)
    (folder / "u.data").write_bytes(
        b"".join(line for line in lines if int(line.split(b"\t")[0]) <= SLICE_USERS)
    )
    for name in ("u.item", "u.user", "u.genre", "u.occupation"):
        (folder / name).write_bytes((ml100k_dir / name).read_bytes())
    return folder


@pytest.fixture(scope="session")
def fixtures_dir(tmp_path_factory) -> Path:
    """Invented datasets of every layout, written by tests/fixtures/make_fixtures.py."""
    folder = tmp_path_factory.mktemp("fixtures")
    subprocess.run([sys.executable, str(FIXTURES / "make_fixtures.py"), str(folder)], check=True)
    return folder
