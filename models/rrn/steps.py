"""Per-entity time-step sequences: the input layout of the recurrent rating models (RRN; LSIC and
IARN reuse it).

A *time step* of an entity (a user, or a movie) is one interval of `granularity` seconds,
``step = floor((timestamp - origin) / granularity)``, in which the entity has at least one event.
Wu et al. (WSDM 2017, §3.1) feed an entity's LSTM one input per step: the step's rating vector x_t
(one entry per entity of the other side), a newbie flag and the wall-clock τ_t, τ_{t−1} (eq. 5).
Steps without events are skipped ("not included in the RNNs to save computations"); the wall-clock of
the steps that remain still tells the gap.

`StepSequences` keeps that layout in two CSR levels and never a dense rating vector:

    entity e  owns step rows   entity_indptr[e] : entity_indptr[e + 1]   (increasing step index)
    step row s owns event rows step_indptr[s]   : step_indptr[s + 1]     (the sparse x_t)

and every event row is an (other-side index, rating) pair with its timestamp and its row in the arrays
it was built from (`source`), so model code can map per-event values back and forth. Nothing here is
specific to one model: the builders take plain arrays, and `user_steps`/`item_steps` read
`UserSequences`. Same-timestamp events always share a step (a step is at least one second long), so a
step never orders a tie group.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from movierec.models.base import UserSequences, gather_ranges

DAY = 86_400
WEEK = 7 * DAY


def step_index(timestamps: np.ndarray, granularity: int, origin: int = 0) -> np.ndarray:
    """The time step of each timestamp: floor((t − origin) / granularity), int64."""
    if granularity <= 0:
        raise ValueError(f"granularity must be a positive number of time units, got {granularity}")
    return np.floor_divide(np.asarray(timestamps, dtype=np.int64) - int(origin), int(granularity))


def step_start(steps: np.ndarray, granularity: int, origin: int = 0) -> np.ndarray:
    """The wall-clock (in the timestamps' unit) at which each step begins, int64."""
    return np.asarray(steps, dtype=np.int64) * int(granularity) + int(origin)


@dataclass(frozen=True)
class StepSequences:
    """Every entity's active time steps in order, each with its sparse rating vector (see module)."""

    n_entities: int
    granularity: int
    origin: int
    entity_indptr: np.ndarray  # [n_entities + 1] int64
    steps: np.ndarray  # [n_steps] int64 step index, strictly increasing within an entity
    step_indptr: np.ndarray  # [n_steps + 1] int64
    other: np.ndarray  # [n_events] int32: the other side's index (a user's movie, a movie's user)
    ratings: np.ndarray  # [n_events] float32
    timestamps: np.ndarray  # [n_events] int64
    source: np.ndarray  # [n_events] int64: row of the event in the arrays the steps were built from

    @property
    def n_steps(self) -> int:
        return len(self.steps)

    @property
    def n_events(self) -> int:
        return len(self.other)

    @property
    def lengths(self) -> np.ndarray:
        """Active steps per entity, [n_entities]."""
        return np.diff(self.entity_indptr)

    @property
    def step_sizes(self) -> np.ndarray:
        """Events per step, [n_steps]."""
        return np.diff(self.step_indptr)

    @functools.cached_property
    def step_entity(self) -> np.ndarray:
        """The entity of every step row, [n_steps] int64."""
        return np.repeat(np.arange(self.n_entities, dtype=np.int64), self.lengths)

    @functools.cached_property
    def event_step(self) -> np.ndarray:
        """The step row of every event row, [n_events] int64."""
        return np.repeat(np.arange(self.n_steps, dtype=np.int64), self.step_sizes)

    @functools.cached_property
    def newbie(self) -> np.ndarray:
        """True at each entity's first active step (1_newbie of eq. 5), [n_steps] bool."""
        flags = np.zeros(self.n_steps, dtype=bool)
        flags[self.entity_indptr[:-1][self.lengths > 0]] = True
        return flags

    @functools.cached_property
    def previous_steps(self) -> np.ndarray:
        """The step index of the entity's previous active step; at its first step, the step itself
        (τ_{t−1} := τ_t there), [n_steps] int64."""
        previous = np.r_[self.steps[:1], self.steps[:-1]]
        return np.where(self.newbie, self.steps, previous)

    @property
    def step_times(self) -> np.ndarray:
        """τ_t before rescaling: the wall-clock at which each step begins, [n_steps] int64."""
        return step_start(self.steps, self.granularity, self.origin)

    def last_steps(self) -> np.ndarray:
        """Each entity's last active step index, or −1 for an entity without events, [n_entities]."""
        last = np.full(self.n_entities, -1, dtype=np.int64)
        has = self.lengths > 0
        last[has] = self.steps[self.entity_indptr[1:][has] - 1]
        return last

    def padded(self, entities: np.ndarray, multiple: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Step rows of `entities` as a right-padded [B, T] matrix (−1 = padding) and their lengths.

        T is the longest sequence rounded up to `multiple` (fewer distinct shapes to compile)."""
        entities = np.asarray(entities, dtype=np.int64)
        lengths = self.lengths[entities]
        width = max(int(lengths.max(initial=0)), 1)
        width = -(-width // multiple) * multiple
        rows = np.full((len(entities), width), -1, dtype=np.int64)
        owner = np.repeat(np.arange(len(entities)), lengths)
        column = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        rows[owner, column] = gather_ranges(self.entity_indptr[entities], lengths)
        return rows, lengths

    def events_of_steps(self, step_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(index into `step_rows`, event row) of every event of the given step rows, in order."""
        step_rows = np.asarray(step_rows, dtype=np.int64)
        sizes = self.step_sizes[step_rows]
        return np.repeat(np.arange(len(step_rows)), sizes), gather_ranges(self.step_indptr[step_rows], sizes)


def group_steps(
    entity: np.ndarray,
    other: np.ndarray,
    ratings: np.ndarray,
    timestamps: np.ndarray,
    n_entities: int,
    granularity: int,
    origin: int = 0,
) -> StepSequences:
    """Step sequences of events given as parallel arrays (entity, other side, rating, timestamp).

    Within a step, events are ordered by timestamp, then by the other side's index: a fixed layout
    that carries no meaning (a step's rating vector is a set)."""
    entity = np.asarray(entity, dtype=np.int64)
    other = np.asarray(other, dtype=np.int64)
    timestamps = np.asarray(timestamps, dtype=np.int64)
    ratings = np.asarray(ratings, dtype=np.float32)
    if not (len(entity) == len(other) == len(ratings) == len(timestamps)):
        raise ValueError("entity, other, ratings and timestamps must have the same length")
    if len(entity) and (entity.min() < 0 or entity.max() >= n_entities):
        raise ValueError(f"entity indices must lie in [0, {n_entities})")
    steps = step_index(timestamps, granularity, origin)
    order = np.lexsort((other, timestamps, steps, entity))
    entity, other, ratings, timestamps, steps = (
        entity[order],
        other[order],
        ratings[order],
        timestamps[order],
        steps[order],
    )
    n = len(order)
    opens = np.ones(n, dtype=bool)
    if n:
        opens[1:] = (entity[1:] != entity[:-1]) | (steps[1:] != steps[:-1])
    firsts = np.flatnonzero(opens)
    step_entity = entity[firsts]
    return StepSequences(
        n_entities=int(n_entities),
        granularity=int(granularity),
        origin=int(origin),
        entity_indptr=np.r_[0, np.cumsum(np.bincount(step_entity, minlength=n_entities))].astype(np.int64),
        steps=steps[firsts].astype(np.int64),
        step_indptr=np.r_[firsts, n].astype(np.int64),
        other=other.astype(np.int32),
        ratings=ratings,
        timestamps=timestamps,
        source=order.astype(np.int64),
    )


def user_steps(sequences: UserSequences, granularity: int, origin: int = 0) -> StepSequences:
    """Every user's steps; each step's events are (movie, rating). `source` indexes `sequences`."""
    return group_steps(
        sequences.users,
        sequences.items,
        sequences.ratings,
        sequences.timestamps,
        sequences.n_users,
        granularity,
        origin,
    )


def item_steps(sequences: UserSequences, n_items: int, granularity: int, origin: int = 0) -> StepSequences:
    """Every item's steps; each step's events are (user, rating). `source` indexes `sequences`."""
    return group_steps(
        sequences.items,
        sequences.users,
        sequences.ratings,
        sequences.timestamps,
        n_items,
        granularity,
        origin,
    )
