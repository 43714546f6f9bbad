"""Feeding events into RRN's stored user and movie states, without changing a weight.

`feed_events` groups events into each side's time steps (`steps.group_steps`) and runs them through
the LSTMs (`RRN.advance`); training uses it to read the final states off the training events, and
`update_state` uses it for §4.5 ("incorporate new data without re-training"), after checking every
event: unknown ids, ratings outside the training scale and timestamps earlier than the user's or the
movie's state are rejected one by one, counted by reason; the rest are applied.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from keras import ops

from movierec.models.rrn.network import RRN
from movierec.models.rrn.steps import StepSequences, group_steps

ENTITIES_PER_CALL = 4096  # entities advanced per call (bounds the padded [E, K, D] inputs)

# Rejection reasons, in the order they are checked (an event is counted under the first that applies).
UNKNOWN_USER = "unknown user"
UNKNOWN_ITEM = "unknown item"
BAD_RATING = "rating outside the scale"
BAD_TIMESTAMP = "timestamp missing or not an integer"
EARLIER_THAN_USER = "timestamp earlier than the user's state"
EARLIER_THAN_MOVIE = "timestamp earlier than the movie's state"
IN_THE_FUTURE = "timestamp later than the wall clock"
REASONS = (
    UNKNOWN_USER,
    UNKNOWN_ITEM,
    BAD_RATING,
    BAD_TIMESTAMP,
    EARLIER_THAN_USER,
    EARLIER_THAN_MOVIE,
    IN_THE_FUTURE,
)
# A timestamp from the future (say milliseconds sent to a model of seconds) would move the states' time
# there: every later real event would then be "earlier than the state" and rejected. Events may be up
# to a day ahead of this machine's clock (clock skew between the event source and the server).
FUTURE_SLACK_SECONDS = 86_400


@dataclass(frozen=True)
class StateUpdateReport:
    """What `update_state` did: events received and applied, rejections counted by reason (every
    reason listed, 0 where none), and the rejected events' positions in the input with their reason."""

    received: int
    applied: int
    rejected: dict[str, int]
    rejected_rows: np.ndarray = field(repr=False)
    rejected_reasons: np.ndarray = field(repr=False)

    @property
    def n_rejected(self) -> int:
        return self.received - self.applied

    def to_dict(self) -> dict[str, Any]:
        return {"received": self.received, "applied": self.applied, "rejected": dict(self.rejected)}


def feed_side(model: RRN, side: str, steps: StepSequences, last_times: np.ndarray | None = None) -> None:
    """Advances the states of every entity that has steps in `steps` (built at the side's granularity,
    origin 0) by those steps, in chunks of entities."""
    touched = np.flatnonzero(steps.lengths > 0)
    if last_times is None:
        last_times = _entity_last_times(steps)
    for start in range(0, len(touched), ENTITIES_PER_CALL):
        chunk = touched[start : start + ENTITIES_PER_CALL]
        rows, lengths = steps.padded(chunk)
        valid = rows >= 0
        filled = np.where(valid, rows, rows[np.arange(len(chunk)), lengths - 1][:, None])
        step_matrix = steps.steps[filled]  # padding repeats the entity's last step
        owner, events = steps.events_of_steps(rows[valid])
        slots = np.flatnonzero(valid.ravel())[owner]
        model.advance(
            side,
            chunk,
            step_matrix,
            lengths,
            slots.astype(np.int32),
            steps.other[events],
            steps.ratings[events],
            last_times[chunk],
        )


def _entity_last_times(steps: StepSequences) -> np.ndarray:
    """The latest timestamp of every entity's events (NO_STEP-like minimum where it has none)."""
    last = np.full(steps.n_entities, np.iinfo(np.int64).min, dtype=np.int64)
    if steps.n_events:
        owners = steps.step_entity[steps.event_step]
        np.maximum.at(last, owners, steps.timestamps)
    return last


def feed_events(
    model: RRN, users: np.ndarray, items: np.ndarray, ratings: np.ndarray, timestamps: np.ndarray
) -> None:
    """Feeds valid events (known ids, not earlier than the states) into both sides' states."""
    for side, entity, other, n in (
        ("user", users, items, model.n_users),
        ("movie", items, users, model.n_items),
    ):
        steps = group_steps(entity, other, ratings, timestamps, n, model.granularity(side))
        feed_side(model, side, steps)


def check_events(
    model: RRN, users: np.ndarray, items: np.ndarray, ratings: np.ndarray, timestamps: np.ndarray
) -> np.ndarray:
    """The rejection reason of every event as an index into REASONS, −1 where it is acceptable."""
    users = np.asarray(users)
    items = np.asarray(items)
    ratings = np.asarray(ratings, dtype=np.float64)
    timestamps = np.asarray(timestamps)
    n = len(users)
    if not (len(items) == len(ratings) == len(timestamps) == n):
        raise ValueError("users, items, ratings and timestamps must have the same length")
    reason = np.full(n, -1, dtype=np.int64)

    def mark(bad: np.ndarray, which: str) -> None:
        reason[(reason < 0) & bad] = REASONS.index(which)

    user_known = _integral(users) & (users >= 0) & (users < model.n_users)
    item_known = _integral(items) & (items >= 0) & (items < model.n_items)
    mark(~user_known, UNKNOWN_USER)
    mark(~item_known, UNKNOWN_ITEM)
    low, high = model.rating_range if model.rating_range else (-np.inf, np.inf)
    mark(~(np.isfinite(ratings) & (ratings >= low) & (ratings <= high)), BAD_RATING)
    mark(~_integral(timestamps), BAD_TIMESTAMP)
    safe_users = np.where(user_known, users, 0).astype(np.int64)
    safe_items = np.where(item_known, items, 0).astype(np.int64)
    times = np.where(_integral(timestamps), timestamps, 0).astype(np.int64)
    user_time = ops.convert_to_numpy(model.user_states.last_time)[safe_users]
    movie_time = ops.convert_to_numpy(model.movie_states.last_time)[safe_items]
    mark(times < user_time, EARLIER_THAN_USER)
    mark(times < movie_time, EARLIER_THAN_MOVIE)
    mark(times > time.time() + FUTURE_SLACK_SECONDS, IN_THE_FUTURE)
    return reason


def _integral(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype.kind in "iu":
        return np.ones(values.shape, dtype=bool)
    if values.dtype.kind == "f":
        return np.isfinite(values) & (values == np.round(values))
    return np.zeros(values.shape, dtype=bool)


def update_state(
    model: RRN, users: np.ndarray, items: np.ndarray, ratings: np.ndarray, timestamps: np.ndarray
) -> StateUpdateReport:
    """§4.5: feeds the acceptable events into the states (weights unchanged); rejects the rest per
    event with a reason. Events may come in any order; each entity's are read in time order."""
    reason = check_events(model, users, items, ratings, timestamps)
    ok = reason < 0
    if ok.any():
        feed_events(
            model,
            np.asarray(users)[ok].astype(np.int64),
            np.asarray(items)[ok].astype(np.int64),
            np.asarray(ratings, dtype=np.float32)[ok],
            np.asarray(timestamps)[ok].astype(np.int64),
        )
    counts = np.bincount(reason[~ok], minlength=len(REASONS))
    rejected_rows = np.flatnonzero(~ok)
    return StateUpdateReport(
        received=len(reason),
        applied=int(ok.sum()),
        rejected={name: int(counts[k]) for k, name in enumerate(REASONS)},
        rejected_rows=rejected_rows,
        rejected_reasons=np.array([REASONS[k] for k in reason[rejected_rows]], dtype=object),
    )
