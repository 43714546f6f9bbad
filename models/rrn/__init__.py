"""RRN: Recurrent Recommender Networks (Wu, Ahmed, Beutel, Smola & Jing, WSDM 2017), in Keras 3.

- `steps`: per-user and per-movie time-step sequences (generic: LSIC and IARN reuse them);
- `network`: the LSTMs, eq. (5)'s sparse input, eq. (7)'s rating, the stored states (`RRN`);
- `training`: PMF first, then alternating subspace descent, best epoch on held-out later events;
- `state`: feeding events into the states; `update_state` with per-event rejections (§4.5);
- `recommender`: the fit/score adapter (`RRNRecommender`, registry name "rrn");
- `config`: the hyper-parameters (`RRNConfig`).
"""

from movierec.models.rrn.config import RRNConfig
from movierec.models.rrn.network import RRN, RecurrentSide, StepLSTMCell
from movierec.models.rrn.recommender import RRNRecommender
from movierec.models.rrn.state import StateUpdateReport
from movierec.models.rrn.steps import StepSequences, group_steps, item_steps, user_steps

__all__ = [
    "RRN",
    "RRNConfig",
    "RRNRecommender",
    "RecurrentSide",
    "StateUpdateReport",
    "StepLSTMCell",
    "StepSequences",
    "group_steps",
    "item_steps",
    "user_steps",
]
