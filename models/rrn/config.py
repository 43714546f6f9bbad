"""RRN's hyper-parameters: one frozen, validated dataclass (`RRNConfig`).

Defaults follow Wu et al. (WSDM 2017) where the paper gives a value (§4.1: 40 hidden units, 40-d
input embeddings, 20-d dynamic states, 20-d stationary factors on Netflix, Adam, 10 epochs with the
best epoch on validation RMSE; §4.6 Table 3: 1-day user steps and 7-day movie steps). Values the paper
omits are ours and say so in their help text.

How they were checked (MovieLens 100K, temporal protocol, split seed 0; validation users only — 1,211
ratings of 56 users — and the held-out latest 10% of the training events, never the test users):
with 3 model seeds each, no alternative beat these defaults beyond the seed spread (about ±0.02 RMSE
on the validation users): mean validation RMSE 1.030 (defaults), 1.037 (l2=1e-4), 1.032 (7-day user
steps), 1.042 (rating_input="centered"), against 1.038 for the stationary part alone. 7-day user steps
fitted the held-out training tail best (0.921 vs 0.928) but not the validation users. Single seeds:
input_scaling="sum" (the paper as written) 1.053 and twice the time per epoch, l2=1e-3 1.073,
learning_rate=3e-4 1.043, stationary_learning_rate=0.05 no change (1.037).
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Literal

from movierec.models.hyperparameters import hyperparameter, require, require_integers, require_numbers
from movierec.models.rrn.steps import DAY, WEEK

OWNER = "rrn"
# How a step's rating vector enters eq. (5): W_embed x_t = Σ_j r_j W_embed[:, j] over the step's n
# ratings, times 1 ("sum", the paper as written), 1/√n ("sqrt") or 1/n ("mean").
InputScaling = Literal["sum", "sqrt", "mean"]
INPUT_SCALINGS: tuple[str, ...] = typing.get_args(InputScaling)
# What x_tj holds for a rated entity: the rating r ("raw", the paper) or r − μ, μ the training mean
# ("centered": the sum then separates liked from disliked instead of growing with every rating).
RatingInput = Literal["raw", "centered"]
RATING_INPUTS: tuple[str, ...] = typing.get_args(RatingInput)


@dataclasses.dataclass(frozen=True)
class RRNConfig:
    # -- sizes (§4.1, Netflix) ---------------------------------------------------------------------
    stationary_dim: int = hyperparameter(20, "stationary factors u_i, m_j of eq. (7) (§4.1)")
    embedding_dim: int = hyperparameter(40, "LSTM input embedding y_t of eq. (5) (§4.1)")
    hidden_size: int = hyperparameter(40, "LSTM units, eqs. (1)-(4) (§4.1)")
    dynamic_dim: int = hyperparameter(20, "dynamic states ũ_it, m̃_jt of eq. (7) (§4.1)")
    # -- time steps, in the timestamps' unit (seconds) -----------------------------------------------
    user_step: int = hyperparameter(DAY, "user time step (§4.6, Table 3's best: 1 day)")
    movie_step: int = hyperparameter(WEEK, "movie time step (§4.6, Table 3's best: 7 days)")
    input_scaling: Literal["sum", "sqrt", "mean"] = hyperparameter(
        "sqrt", "a step's rating sum in eq. (5) times 1 (sum, the paper), 1/sqrt(n) or 1/n (ours)"
    )
    rating_input: Literal["raw", "centered"] = hyperparameter(
        "raw", "x_tj of eq. (5): the rating (raw, the paper) or the rating minus the training mean (ours)"
    )
    # -- stationary factors first, as a small PMF with biases (§4.1) ---------------------------------
    pmf_epochs: int = hyperparameter(30, "epochs of the PMF pre-training (ours: the project's MF recipe)")
    pmf_learning_rate: float = hyperparameter(3e-3, "Adam's learning rate for PMF (ours)")
    pmf_batch_size: int = hyperparameter(1024, "ratings per PMF step (ours)")
    stationary_l2: float = hyperparameter(1e-4, "L2 penalty of the stationary factors (ours)")
    # -- the networks (§3.4, §4.1) -------------------------------------------------------------------
    epochs: int = hyperparameter(10, "network epochs, one user pass + one movie pass each (§4.2: 10)")
    batch_size: int = hyperparameter(32, "users (or movies) per mini-batch (ours)")
    learning_rate: float = hyperparameter(1e-3, "Adam's learning rate for the networks (ours)")
    l2: float = hyperparameter(1e-5, "R(θ) of eq. (8): L2 on the network weights (ours)")
    stationary_learning_rate: float = hyperparameter(
        0.0, "SGD rate on the stationary factors in the joint phase; 0 keeps PMF's (ours)"
    )
    clipnorm: float = hyperparameter(5.0, "gradient norm clip per mini-batch, 0 for none (ours)")
    validation_fraction: float = hyperparameter(
        0.1,
        "latest share of training events held out to pick the best epoch, then a refit on all (ours; "
        "0: train `epochs`)",
    )
    seed: int = hyperparameter(0, "seed of the initialisation and the batch order")

    def __post_init__(self) -> None:
        positive = (
            "stationary_dim",
            "embedding_dim",
            "hidden_size",
            "dynamic_dim",
            "user_step",
            "movie_step",
            "pmf_batch_size",
            "epochs",
            "batch_size",
        )
        require_integers(self, OWNER, positive, 1)
        require_integers(self, OWNER, ("pmf_epochs", "seed"), 0)
        require_numbers(self, OWNER, ("pmf_learning_rate", "learning_rate"), 0, low_open=True)
        require_numbers(self, OWNER, ("stationary_l2", "l2", "stationary_learning_rate", "clipnorm"), 0)
        require_numbers(self, OWNER, ("validation_fraction",), 0, 1)
        require(
            self.rating_input in RATING_INPUTS,
            OWNER,
            "rating_input",
            f"must be one of {RATING_INPUTS}, got {self.rating_input!r}",
        )
        require(
            self.input_scaling in INPUT_SCALINGS,
            OWNER,
            "input_scaling",
            f"must be one of {INPUT_SCALINGS}, got {self.input_scaling!r}",
        )
