"""Evaluation metrics for movierec: numpy + stdlib only, so every model, the CLI and the TFX Evaluator
share one implementation.

- ``RankingAccumulator``: full-catalogue ranking metrics (no sampled negatives) streamed over blocks.
- ``Ragged``: CSR-style per-query item sets (relevant, excluded).
- ``bootstrap_intervals``: percentile-bootstrap intervals of per-query means, resampling users;
  ``paired_difference``: the same for the difference of two models on the same queries.
- ``rating_metrics``: RMSE / MAE.
- ``top_k``: deterministic top-k recommendation with exclusions.
"""

from movierec.evaluation.bootstrap import bootstrap_intervals, paired_difference
from movierec.evaluation.ragged import Ragged
from movierec.evaluation.ranking import DEFAULT_PAIR_BUDGET, RankingAccumulator, top_k
from movierec.evaluation.rating import rating_metrics

__all__ = [
    "DEFAULT_PAIR_BUDGET",
    "Ragged",
    "RankingAccumulator",
    "bootstrap_intervals",
    "paired_difference",
    "rating_metrics",
    "top_k",
]
