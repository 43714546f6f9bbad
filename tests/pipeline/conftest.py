"""A slice of the real MovieLens 100K (the first 200 users) keeps pipeline runs short."""

from pathlib import Path

import pytest

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
