"""LSTM+CNN's hyper-parameters: one frozen, validated dataclass (`LSTMCNNConfig`).

Table VI of Wang et al. gives epochs 5, batch 256, dropout keep probability 0.5 and learning rate
1e-4; every size is missing. The defaults marked "tutorial" follow the public TensorFlow movie
recommender with the same preprocessing that ../shared/papers/README.md names (embeddings 32, title
windows 2-5 with 8 filters each, 200-d user and movie features, Adam); the rest are ours and say so.
"""

from __future__ import annotations

import dataclasses
import math

from movierec.models.hyperparameters import (
    hyperparameter,
    is_number,
    require,
    require_integers,
    require_numbers,
)

OWNER = "lstm-cnn"


@dataclasses.dataclass(frozen=True)
class LSTMCNNConfig:
    # -- sizes ---------------------------------------------------------------------------------------
    embedding_dim: int = hyperparameter(32, "every id, genre and title-word embedding (tutorial)")
    feature_dim: int = hyperparameter(200, "U_ef, M_f and U_f sizes (tutorial)")
    title_windows: str = hyperparameter("2,3,4,5", "title convolution widths, comma-separated (tutorial)")
    title_filters: int = hyperparameter(8, "filters per title convolution width (tutorial)")
    lstm_units: int = hyperparameter(64, "units of each of the 2 LSTM layers; U_pf is the cell state (ours)")
    head_units: int = hyperparameter(64, "hidden units of the FC rating head over (U_f, M_f) (ours)")
    # -- the user's history (§IV.C "user preference feature extraction") ------------------------------
    liked_threshold: float = hyperparameter(3.0, "history keeps the user's movies rated >= this (paper: 3)")
    max_history: int = hyperparameter(
        20, "latest liked movies fed to the LSTM (ours; the paper takes all; cost grows linearly)"
    )
    # -- ablations ------------------------------------------------------------------------------------
    title_cnn: bool = hyperparameter(True, "use the title CNN in M_f (False: ablation)")
    history_lstm: bool = hyperparameter(True, "use U_pf, the LSTM over the history (False: ablation)")
    user_features: bool = hyperparameter(True, "use gender, age band, occupation in U_ef (False: ablation)")
    # -- training (Table VI) ----------------------------------------------------------------------------
    epochs: int = hyperparameter(5, "passes over the training ratings (Table VI: 5)")
    batch_size: int = hyperparameter(256, "ratings per step (Table VI: 256)")
    dropout: float = hyperparameter(0.5, "dropout rate after the title CNN (Table VI: keep probability 0.5)")
    learning_rate: float = hyperparameter(
        1e-3, "Adam's learning rate (Table VI: 1e-4 on ML-1M; ours, see README)"
    )
    validation_fraction: float = hyperparameter(
        0.1,
        "latest share of training ratings held out to pick the best epoch, then a refit on all (ours; "
        "0: train `epochs`)",
    )
    seed: int = hyperparameter(0, "seed of the initialisation, the batch order and the tie shuffles")

    def __post_init__(self) -> None:
        positive = (
            "embedding_dim",
            "feature_dim",
            "title_filters",
            "lstm_units",
            "head_units",
            "max_history",
            "epochs",
            "batch_size",
        )
        require_integers(self, OWNER, positive, 1)
        require_integers(self, OWNER, ("seed",), 0)
        require_numbers(self, OWNER, ("learning_rate",), 0, low_open=True)
        require_numbers(self, OWNER, ("dropout", "validation_fraction"), 0, 1)
        require(
            is_number(self.liked_threshold) and math.isfinite(self.liked_threshold),
            OWNER,
            "liked_threshold",
            f"must be a finite number, got {self.liked_threshold!r}",
        )
        windows = self.windows if _windows_parse(self.title_windows) else None
        require(
            windows is not None,
            OWNER,
            "title_windows",
            f"must be comma-separated integers >= 1, e.g. '2,3,4,5', got {self.title_windows!r}",
        )

    @property
    def windows(self) -> tuple[int, ...]:
        """`title_windows` as integers."""
        return _windows_parse(self.title_windows) or ()


def _windows_parse(text: object) -> tuple[int, ...] | None:
    if not isinstance(text, str):
        return None
    try:
        widths = tuple(int(part) for part in text.split(","))
    except ValueError:
        return None
    return widths if widths and all(w >= 1 for w in widths) else None
