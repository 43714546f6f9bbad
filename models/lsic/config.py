"""LSIC's hyper-parameters: one frozen, validated dataclass (`LSICConfig`).

Defaults follow the paper (§4.2, MovieLens) where it gives a value: MF with d = 5 factors, a
single-layer LSTM of 10 units over 15-d input embeddings, 7-day steps and one-month sessions (4 steps),
initialisation U(−0.05, 0.05), gradients clipped to ±0.2, L2 0.05 (here per example, see `l2`), batch
128, K = 64 sampled movies, N = 100 MF candidates, positives = ratings ≥ 4 on MovieLens. Values the paper
omits are ours and say so in their help text. The paper pre-trains with SGD at 1e-4; with ~340 batches
per epoch on ML-100K that moves the weights by almost nothing in the epochs we can afford, so Adam is
the default (`optimizer="sgd"` is the paper's).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from movierec.models.hyperparameters import hyperparameter, require_integers, require_numbers
from movierec.models.rrn.steps import WEEK

OWNER = "lsic"
# mixture (§3.3): v1 hard sum (eqs. 10-11); v2 LSTM states initialised from the MF factors; v3 v2 + the
# factors as static context at every step; v4 v2 + attention over MF factors as dynamic context (eqs.
# 12-18). generator_training: REINFORCE with rewards log D (eq. 23) or Gumbel-softmax ("w/o RL").
# policy: G samples from the user's N MF candidates or the whole catalogue.


@dataclasses.dataclass(frozen=True)
class LSICConfig:
    # -- model (§3, §4.2) ----------------------------------------------------------------------------
    mixture: Literal["v1", "v2", "v3", "v4"] = hyperparameter(
        "v4", "MF/LSTM mixture: v1 sum, v2 init, v3 static ctx, v4 attention"
    )
    mf_dim: int = hyperparameter(5, "MF factors e_u, e_m (eq. 1; §4.2: 5 on MovieLens)")
    embedding_dim: int = hyperparameter(15, "LSTM input embedding of a step's rating vector (§4.2)")
    hidden_size: int = hyperparameter(10, "LSTM units (§4.2)")
    step_seconds: int = hyperparameter(WEEK, "one time step (§4.2: 7 days)")
    session_steps: int = hyperparameter(4, "steps an LSTM reads before a prediction (§4.2: a month)")
    attention_units: int = hyperparameter(10, "hidden units of the attention scorer σ (eqs. 17-18; ours)")
    attention_neighbours: int = hyperparameter(
        0, "v4: attend over each entity's top-k MF neighbours (0 = all, exact; for large catalogues)"
    )
    poster: bool = hyperparameter(True, "feed each movie's poster vector at t = 0 (eq. 8) when given")
    poster_file: str = hyperparameter("", ".npz of poster vectors keyed by raw movie id (see posters.py)")
    # -- candidates and positives (§4.1-4.2) ------------------------------------------------------------
    positive_rating: float = hyperparameter(4.0, "a rating >= this is a positive (4 MovieLens, 5 Netflix)")
    candidates: int = hyperparameter(
        100, "N: MF candidates G re-ranks (§4.2); 0 = G ranks (and its policy samples) the catalogue"
    )
    mf_epochs: int = hyperparameter(30, "epochs of the BPR-trained candidate MF (ours)")
    # -- adversarial training (Algorithm 1) ---------------------------------------------------------------
    generator_training: Literal["reinforce", "gumbel"] = hyperparameter(
        "reinforce", "G's update: reinforce (eq. 23) or gumbel (the 'w/o RL' ablation)"
    )
    policy: Literal["candidates", "catalogue"] = hyperparameter(
        "candidates", "G samples from the catalogue or MF's candidates"
    )
    samples: int = hyperparameter(64, "K: movies G samples per (user, time), without replacement (§4.2)")
    margin: float = hyperparameter(1.0, "ε of D's hinge loss (eq. 21; not given: ours)")
    gumbel_temperature: float = hyperparameter(0.5, "τ of the Gumbel-softmax ablation (ours)")
    pretrain_epochs: int = hyperparameter(5, "pre-training epochs of G and D (Algorithm 1, line 2; ours)")
    epochs: int = hyperparameter(5, "adversarial epochs (paper ~50; ours: the best of 5 is kept)")
    g_steps: int = hyperparameter(1, "generator passes per adversarial epoch")
    d_steps: int = hyperparameter(1, "discriminator passes per adversarial epoch")
    batch_size: int = hyperparameter(128, "positives per step (§4.2)")
    optimizer: Literal["adam", "sgd"] = hyperparameter("adam", "adam (ours) or sgd (the paper's, lr 1e-4)")
    learning_rate: float = hyperparameter(1e-3, "learning rate of G and D (paper: SGD 1e-4)")
    clip_value: float = hyperparameter(0.2, "gradients clipped to ±this (§4.2)")
    l2: float = hyperparameter(1e-4, "L2 on the embeddings a batch reads (§4.2: 0.05 on a full sum)")
    init_scale: float = hyperparameter(0.05, "weights initialised U(−s, s) (§4.2)")
    holdout_fraction: float = hyperparameter(
        0.1, "latest training events that pick the best adversarial epoch (0: keep the last)"
    )
    checkpoint_dir: str = hyperparameter("", "a folder (or URI) for per-epoch checkpoints; resumes from it")
    seed: int = hyperparameter(0, "seed of the initialisation and of every sample")

    def __post_init__(self) -> None:
        positive = (
            "mf_dim",
            "embedding_dim",
            "hidden_size",
            "step_seconds",
            "session_steps",
            "attention_units",
            "samples",
            "batch_size",
            "g_steps",
            "d_steps",
        )
        require_integers(self, OWNER, positive, 1)
        require_integers(
            self,
            OWNER,
            ("attention_neighbours", "candidates", "mf_epochs", "pretrain_epochs", "epochs", "seed"),
            0,
        )
        require_numbers(
            self, OWNER, ("learning_rate", "clip_value", "init_scale", "gumbel_temperature"), 0, low_open=True
        )
        require_numbers(self, OWNER, ("margin", "l2"), 0)
        require_numbers(self, OWNER, ("holdout_fraction",), 0, 1)
