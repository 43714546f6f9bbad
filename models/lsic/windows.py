"""The month an LSIC LSTM reads before a prediction: the last `session_steps` weekly rating vectors.

LSIC (§4.2) runs its user and movie LSTMs over "4-dimensional dynamic states where each state contains
7-days behavioural trajectories", i.e. one session = one month = 4 weekly steps. Our reading: to score
(user i, movie j) at step t, the user LSTM reads z^u_{i,t−4} … z^u_{i,t−1} and the movie LSTM
z^m_{j,t−4} … z^m_{j,t−1} (eqs. 6-7), oldest first — the steps strictly before t, so a rating never
informs its own prediction and same-second events (always in one step) are never context for each other.
A week without ratings is a zero input (the LSTM still advances: the gap is information).

The step grid ends at `now` (one second after the latest training event): steps are
[now − (n − s)·step, now − (n − s − 1)·step), so the four weeks before `now` are four whole steps and a
query at or after `now` reads exactly them (later steps hold no known events; a query's step is clamped
to `now`'s). Time steps come from `models/rrn/steps.py` (RRN's layout), never dense rating vectors: a
window is a list of (row, other-side index, weight) triplets that the network sums into embeddings.
A step's rating vector enters as Σ_j r_j W[j] / √n (RRN's `input_scaling="sqrt"`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from movierec.models.base import UserSequences, gather_ranges
from movierec.models.rrn.steps import StepSequences, group_steps


@dataclass(frozen=True)
class Window:
    """The inputs of `rows` LSTM windows of `width` steps: event k adds `weights[k]` × the embedding of
    `others[k]` to input slot `slots[k]` = row × width + position (position 0 = the oldest step)."""

    rows: int
    width: int
    slots: np.ndarray  # [E] int32
    others: np.ndarray  # [E] int32
    weights: np.ndarray  # [E] float32

    def as_inputs(self) -> dict[str, np.ndarray]:
        return {"slots": self.slots, "others": self.others, "weights": self.weights}


class StepGrid:
    """Weekly steps of one side (users or movies) and the windows before any step."""

    def __init__(self, steps: StepSequences, n_steps_total: int, width: int) -> None:
        self.steps = steps
        self.width = int(width)
        self.n_steps_total = int(n_steps_total)  # step indices run 0 … n_steps_total − 1 (= now's step)
        # one sorted key per active (entity, step) row, for vectorised lookups
        self._keys = steps.step_entity * self.n_steps_total + steps.steps
        sizes = steps.step_sizes.astype(np.float32)
        self._scale = (1.0 / np.sqrt(np.maximum(sizes, 1.0)))[steps.event_step]

    def window(self, entities: np.ndarray, query_steps: np.ndarray) -> Window:
        """Windows of `entities` [N] before `query_steps` [N]: steps q − width … q − 1."""
        entities = np.asarray(entities, dtype=np.int64)
        query_steps = np.minimum(np.asarray(query_steps, dtype=np.int64), self.n_steps_total - 1)
        n, width = len(entities), self.width
        position = np.arange(width)
        wanted = query_steps[:, None] - width + position[None, :]  # [N, width], oldest first
        valid = wanted >= 0
        keys = entities[:, None] * self.n_steps_total + np.maximum(wanted, 0)
        found = np.searchsorted(self._keys, keys.ravel())
        found = np.minimum(found, max(len(self._keys) - 1, 0))
        hit = valid.ravel() & (len(self._keys) > 0)
        if len(self._keys):
            hit &= self._keys[found] == keys.ravel()
        slots = np.flatnonzero(hit)
        step_rows = found[slots]
        sizes = self.steps.step_sizes[step_rows]
        events = gather_ranges(self.steps.step_indptr[step_rows], sizes)
        return Window(
            rows=n,
            width=width,
            slots=np.repeat(slots, sizes).astype(np.int32),
            others=self.steps.other[events].astype(np.int32),
            weights=(self.steps.ratings[events] * self._scale[events]).astype(np.float32),
        )


@dataclass(frozen=True)
class StepClock:
    """The step grid: step s covers [origin + s·step, origin + (s + 1)·step); `now` starts step n."""

    origin: int
    step_seconds: int
    now_step: int

    @classmethod
    def ending_at(cls, timestamps: np.ndarray, step_seconds: int) -> StepClock:
        """A grid whose last training step ends at the latest training event + 1 second."""
        if len(timestamps) == 0:
            return cls(origin=0, step_seconds=int(step_seconds), now_step=0)
        now = int(np.max(timestamps)) + 1
        span = now - int(np.min(timestamps))
        n = -(-span // int(step_seconds))
        return cls(origin=now - n * int(step_seconds), step_seconds=int(step_seconds), now_step=int(n))

    @property
    def now(self) -> int:
        return self.origin + self.now_step * self.step_seconds

    def step_of(self, timestamps: np.ndarray) -> np.ndarray:
        """The step of each time, clamped to `now`'s (nothing after `now` is known)."""
        steps = np.floor_divide(np.asarray(timestamps, dtype=np.int64) - self.origin, self.step_seconds)
        return np.minimum(steps, self.now_step)

    def to_dict(self) -> dict[str, int]:
        return {"origin": self.origin, "step_seconds": self.step_seconds, "now_step": self.now_step}


def build_grids(
    sequences: UserSequences, n_items: int, clock: StepClock, width: int
) -> tuple[StepGrid, StepGrid]:
    """(user grid, movie grid) of the training events on `clock`'s steps."""
    n_total = clock.now_step + 1
    users = group_steps(
        sequences.users,
        sequences.items,
        sequences.ratings,
        sequences.timestamps,
        sequences.n_users,
        clock.step_seconds,
        clock.origin,
    )
    movies = group_steps(
        sequences.items,
        sequences.users,
        sequences.ratings,
        sequences.timestamps,
        n_items,
        clock.step_seconds,
        clock.origin,
    )
    return StepGrid(users, n_total, width), StepGrid(movies, n_total, width)
