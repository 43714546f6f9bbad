"""IARN's hyper-parameters: one frozen, validated dataclass (`IARNConfig`).

Pei et al. (CIKM 2017) §4.1 give: 64 hidden units for every recurrent network, latent factors d = 25 on
MovieLens, RMSprop, mini-batches of 50 pairs, gradients clipped to [−10, 10], dropout chosen from
{0, 0.25, 0.5}, learning rate from {1e-5, ..., 1e-1}. Everything else (input embedding size, fusion
layer size, history cap, epochs) is missing and ours, and says so in its help text.

Cost, measured on MovieLens 100K (temporal protocol, 79,999 training ratings, 2 shared CPU cores): with
max_history 50 an epoch took 228 s at the paper's batch of 50 pairs and 110 s at 256, and scoring the
full catalogue for the 1,653 test queries was extrapolated to about 550 s; max_history 20 with batches
of 256 took 45 s per epoch and 188 s for the exact full-catalogue scoring of all test queries, which is
why those are the defaults (no tuning beyond that: the paper's average sequence lengths on MovieLens
are 31 per user and 59 per item, so 20 cuts many item histories).
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Literal

from movierec.models.hyperparameters import hyperparameter, require, require_integers, require_numbers

OWNER = "iarn"
# "iarn": interacting attention gates (eqs. 3-9); "tagm": attention gates from the own side's
# bi-RNN only (eq. 6 without the paired summaries); "rnn": eq. (4) alone (no gate, a_t = 1);
# "lstm": an LSTM per side (§3.5 and §4.1's backbones).
Backbone = Literal["iarn", "tagm", "rnn", "lstm"]
BACKBONES: tuple[str, ...] = typing.get_args(Backbone)
# The item-side feature encoder E_v: "none" (IARN-Plain), "flat" (eq. 11), "hierarchical" (eq. 12,
# over the two-level genre hierarchy of features.py).
Features = Literal["none", "flat", "hierarchical"]
FEATURES: tuple[str, ...] = typing.get_args(Features)


@dataclasses.dataclass(frozen=True)
class IARNConfig:
    # -- the network (§3, §4.1) --------------------------------------------------------------------------
    backbone: Literal["iarn", "tagm", "rnn", "lstm"] = hyperparameter(
        "iarn", "iarn (interacting gates), tagm (own-side gates), rnn (no gate) or lstm (§4.1 variants)"
    )
    features: Literal["none", "flat", "hierarchical"] = hyperparameter(
        "flat", "item-side feature encoder: none (IARN-Plain), flat (eq. 11) or hierarchical (eq. 12)"
    )
    embedding_dim: int = hyperparameter(32, "user and item input embeddings x_t (ours: size not given)")
    hidden_size: int = hyperparameter(64, "units of every recurrent layer, eqs. (3)-(9) (§4.1: 64)")
    latent_dim: int = hyperparameter(25, "ũ_i, ṽ_j of eqs. (1)-(2) (§4.1: d = 25 on MovieLens)")
    attention_units: int = hyperparameter(64, "fusion layer L of eqs. (6), (8) (ours: size not given)")
    rating_input: bool = hyperparameter(
        False, "append the centred rating to each step's input x_t (ours; the paper feeds embeddings only)"
    )
    max_history: int = hyperparameter(
        20, "latest events of each side's history (ours; the paper takes all; cost grows linearly)"
    )
    # -- training (§3.4, §4.1) ---------------------------------------------------------------------------
    epochs: int = hyperparameter(10, "passes over the training ratings (ours: not given)")
    batch_size: int = hyperparameter(
        256, "pairs per mini-batch (§4.1: 50; ours: 256, about 2x faster per epoch on CPU)"
    )
    learning_rate: float = hyperparameter(1e-3, "RMSprop's learning rate (from §4.1's grid)")
    dropout: float = hyperparameter(0.25, "dropout on the last hidden states before eq. (2) (§4.1 grid)")
    clip_value: float = hyperparameter(10.0, "gradients clipped to [-v, v] (§4.1: 10); 0 for none")
    validation_fraction: float = hyperparameter(
        0.1,
        "latest share of training ratings held out to pick the best epoch, then a refit on all (ours; "
        "0: train `epochs`)",
    )
    seed: int = hyperparameter(0, "seed of the initialisation, the batch order and the tie shuffles")

    def __post_init__(self) -> None:
        positive = (
            "embedding_dim",
            "hidden_size",
            "latent_dim",
            "attention_units",
            "max_history",
            "epochs",
            "batch_size",
        )
        require_integers(self, OWNER, positive, 1)
        require_integers(self, OWNER, ("seed",), 0)
        require_numbers(self, OWNER, ("learning_rate",), 0, low_open=True)
        require_numbers(self, OWNER, ("clip_value",), 0)
        require_numbers(self, OWNER, ("dropout", "validation_fraction"), 0, 1)
        require(
            self.backbone in BACKBONES,
            OWNER,
            "backbone",
            f"must be one of {BACKBONES}, got {self.backbone!r}",
        )
        require(
            self.features in FEATURES,
            OWNER,
            "features",
            f"must be one of {FEATURES}, got {self.features!r}",
        )
        require(
            isinstance(self.rating_input, bool),
            OWNER,
            "rating_input",
            f"must be a bool, got {self.rating_input!r}",
        )
