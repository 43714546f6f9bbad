"""Fixtures shared by the serving tests: one small GRU4Rec on MovieLens 100K and its export, built
once per session (Transform on Beam and one training epoch: the expensive part)."""

import pytest
from gru4rec_setup import GRU4RecSetup


@pytest.fixture(scope="session")
def gru4rec(tmp_path_factory, ml100k_dir) -> GRU4RecSetup:
    return GRU4RecSetup(tmp_path_factory.mktemp("gru4rec-export"), ml100k_dir)
