"""GRU4Rec: session-based recommendations with a recurrent network, in Keras 3.

Written from the papers:
- Hidasi, Karatzoglou, Baltrunas & Tikk, "Session-based Recommendations with Recurrent Neural
  Networks", ICLR 2016 (GRU of §3 eq. 1–4, session-parallel mini-batches of §3.1.1, mini-batch
  negative sampling of §3.1.2, the TOP1/BPR losses of §3.1.2);
- Hidasi & Karatzoglou, "Recurrent Neural Networks with Top-k Gains for Session-based
  Recommendations", CIKM 2018 (extra negatives sampled from popularity^α shared by the mini-batch,
  §3.1; BPR-max, §3.2).

One file per concern: `network` (the Keras model), `batching` (session-parallel mini-batches and
negatives, numpy), `training` (the epoch loop and the compiled step), `config` (typed
hyper-parameters), `recommender` (the fit/score adapter of models/base.py), `scorer` (the serving
view over raw histories).
"""

from movierec.models.gru4rec.batching import (
    InverseCdfSampler,
    narrowing_segments,
    negative_mask,
    popularity_sampler,
    session_parallel_batches,
    session_parallel_schedule,
    training_sessions,
)
from movierec.models.gru4rec.config import INFERENCE_MODES, OPTIMIZERS, SESSION_MODES, GRU4RecConfig
from movierec.models.gru4rec.network import GRU4Rec, SessionGRUCell
from movierec.models.gru4rec.recommender import GRU4RecRecommender
from movierec.models.gru4rec.scorer import GRU4RecHistoryScorer

__all__ = [
    "INFERENCE_MODES",
    "OPTIMIZERS",
    "SESSION_MODES",
    "GRU4Rec",
    "GRU4RecConfig",
    "GRU4RecHistoryScorer",
    "GRU4RecRecommender",
    "InverseCdfSampler",
    "SessionGRUCell",
    "narrowing_segments",
    "negative_mask",
    "popularity_sampler",
    "session_parallel_batches",
    "session_parallel_schedule",
    "training_sessions",
]
