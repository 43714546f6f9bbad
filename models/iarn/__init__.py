"""IARN: Interacting Attention-gated Recurrent Networks (Pei, Yang, Sun, Zhang, Bozzon & Tax, CIKM
2017), in Keras 3.

- `config`: the hyper-parameters (`IARNConfig`; §4.1's values and documented defaults for the rest);
- `history`: each side's events, cut strictly before each pair's time (`EventHistory`);
- `features`: the two-level genre hierarchy of the hierarchical feature encoder (eq. 12);
- `network`: feature encoder, bi-RNN interacting attention, attention-gated recurrences, heads (`IARN`);
- `training`: MSE, RMSprop, clipping, tie groups shuffled per epoch, best epoch on held-out ratings;
- `inference`: pairs, the whole catalogue (one gated pass per (query, item)), explanations;
- `recommender`: the fit/score/predict_ratings/explain adapter (`IARNRecommender`, registry "iarn").
"""

from movierec.models.iarn.config import IARNConfig
from movierec.models.iarn.features import GENRE_GROUPS, genre_parents
from movierec.models.iarn.history import EventHistory
from movierec.models.iarn.network import IARN, AttentionGatedCell
from movierec.models.iarn.recommender import IARNRecommender

__all__ = [
    "GENRE_GROUPS",
    "IARN",
    "AttentionGatedCell",
    "EventHistory",
    "IARNConfig",
    "IARNRecommender",
    "genre_parents",
]
