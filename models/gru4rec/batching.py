"""Session-parallel mini-batches (Hidasi et al. 2016, §3.1.1, Fig. 2) and the negatives of a step
(mini-batch negatives, 2016 §3.1.2; extra samples ∝ support^α shared by the batch, Hidasi &
Karatzoglou, CIKM 2018, §3.1). Plain numpy schedules, so they can be tested on their own."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from keras import ops

from movierec.models.base import UserSequences, tie_shuffled_order
from movierec.models.gru4rec.config import SESSION_MODES, GRU4RecConfig


def training_sessions(
    sequences: UserSequences, session_mode: str = "session"
) -> tuple[np.ndarray, np.ndarray]:
    """(first event index, length) of every training sequence with at least two events.

    "session": the sessions marked by `session_start` (a user's first event always opens one);
    "user": a user's whole history is one sequence. One-event sequences have no target: dropped.
    """
    if session_mode not in SESSION_MODES:
        raise ValueError(f"unknown session_mode {session_mode!r}; choose one of {SESSION_MODES}")
    n_events = len(sequences.items)
    boundary = np.zeros(n_events, dtype=bool)
    user_first = sequences.indptr[:-1][np.diff(sequences.indptr) > 0]
    boundary[user_first] = True
    if session_mode == "session":
        boundary |= sequences.session_start.astype(bool)
    starts = np.flatnonzero(boundary)
    lengths = np.diff(np.r_[starts, n_events])
    keep = lengths >= 2
    return starts[keep].astype(np.int64), lengths[keep].astype(np.int64)


def session_parallel_schedule(lengths: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Which session (index into `lengths`, in that order) each lane holds at each step, and the offset
    of the event it reads there (Hidasi et al. 2016, §3.1.1, Fig. 2).

    Lane b starts with session b; at every step each lane reads the event at its offset and targets
    the next one; a lane whose session has no further target takes the next unseen session (lanes
    that free up at the same step take them in lane order). Once sessions run out, freed lanes stay
    idle (session −1) until every lane is done. Returns (session, offset), both [n_steps, batch_size];
    a lane's state must be reset where offset == 0 and session >= 0.

    The loop runs over steps; each step is a vectorised update of all lanes.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if (lengths < 2).any():
        raise ValueError("every session needs at least two events (one input, one target)")
    n_sessions = len(lengths)
    lane_session = np.full(batch_size, -1, dtype=np.int64)
    first = min(batch_size, n_sessions)
    lane_session[:first] = np.arange(first)
    lane_offset = np.zeros(batch_size, dtype=np.int64)
    next_session = first
    sessions, offsets = [], []
    while (lane_session >= 0).any():
        sessions.append(lane_session.copy())
        offsets.append(lane_offset.copy())
        active = lane_session >= 0
        lane_offset = lane_offset + active
        # the input at offset o has its target at o + 1: a session of n events gives n − 1 steps
        done = np.flatnonzero(active & (lane_offset >= lengths[np.maximum(lane_session, 0)] - 1))
        incoming = np.arange(next_session, next_session + len(done))
        next_session = min(next_session + len(done), n_sessions)
        lane_session[done] = np.where(incoming < n_sessions, incoming, -1)
        lane_offset[done] = 0
    if not sessions:
        return np.zeros((0, batch_size), np.int64), np.zeros((0, batch_size), np.int64)
    return np.stack(sessions), np.stack(offsets)


def session_parallel_batches(
    items: np.ndarray, starts: np.ndarray, lengths: np.ndarray, batch_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The mini-batches of one epoch, [n_steps, batch_size] each: (input item, target item, reset,
    active), for the sequences `items[starts[s] : starts[s] + lengths[s]]` taken in that order.

    Idle lanes (no session left) read and target item 0 and are inactive: no loss, no negatives.
    """
    session, offset = session_parallel_schedule(lengths, batch_size)
    active = session >= 0
    event = np.asarray(starts, dtype=np.int64)[np.maximum(session, 0)] + offset
    inputs = np.where(active, items[event], 0).astype(np.int32)
    targets = np.where(active, items[np.minimum(event + 1, len(items) - 1)], 0).astype(np.int32)
    return inputs, targets, active & (offset == 0), active


def narrowing_segments(
    active: np.ndarray, shrink: int = 8, multiple: int = 1, narrowest: int = 4
) -> list[tuple[int, int, np.ndarray]]:
    """The epoch's steps cut into segments that run on fewer lanes as the sessions run out:
    [(first step, end step, lanes)], `lanes` the sorted lane indices (into the [n_steps, B] arrays of
    `session_parallel_batches`) that the segment's steps keep.

    A lane goes idle only once no session is left to start, and then stays idle: from the first step
    where the busy lanes fit in 1/`shrink` of the current width, the later steps need only those lanes
    (padded with idle ones to that width; each width a multiple of `multiple`, the distribution
    strategy's replicas, and none under `narrowest`: an epoch has a few distinct widths, hence few
    compiled shapes). The authors' implementation likewise drops finished lanes from its batch. Idle
    lanes carry no loss and are no candidates, so each step's loss and gradients are those of the
    full width.
    """
    n_steps, width = active.shape
    if shrink < 2 or multiple < 1:
        raise ValueError(f"narrowing_segments: need shrink >= 2 and multiple >= 1, got {shrink}, {multiple}")
    busy = active.sum(axis=1)
    lanes = np.arange(width)
    segments, start = [], 0
    while True:
        narrower = math.ceil(math.ceil(len(lanes) / shrink) / multiple) * multiple
        fits = np.flatnonzero(busy[start:] <= narrower)
        if narrower >= len(lanes) or narrower < narrowest or not len(fits):
            break
        cut = start + int(fits[0])
        here = active[cut, lanes]
        kept = np.sort(np.concatenate([lanes[here], lanes[~here][: narrower - int(here.sum())]]))
        dropped = np.setdiff1d(lanes, kept)
        if active[cut:, dropped].any():  # the schedule broke its contract: a freed lane restarted
            raise RuntimeError("narrowing_segments: a lane went busy again after going idle")
        if cut > start:
            segments.append((start, cut, lanes))
        lanes, start = kept, cut
    segments.append((start, n_steps, lanes))
    return segments


def popularity_sampler(items: np.ndarray, n_items: int, alpha: float) -> np.ndarray:
    """Sampling probabilities ∝ support^α (Hidasi & Karatzoglou 2018, §3.1: α = 0 uniform, 1 popularity)."""
    counts = np.bincount(items, minlength=n_items).astype(np.float64)
    weights = np.where(counts > 0, counts**alpha, 0.0)
    if weights.sum() == 0:
        weights = np.ones(n_items)
    return weights / weights.sum()


class InverseCdfSampler:
    """Draws item ids with the given probabilities: `draw(rng, shape)` returns exactly what
    `rng.choice(len(probabilities), shape, p=probabilities)` returns, and leaves `rng` in the same
    state (the same uniform draws, the same inverse-CDF rule), at a fraction of its cost.

    `rng.choice` binary-searches the CDF for every draw (GRU4Rec's BPR-max setting draws 2,048
    samples per step, millions per epoch). Here a guide table splits [0, 1) into ≥ 64
    buckets per item: a draw whose bucket holds no CDF boundary takes the bucket's precomputed answer
    (one lookup), and only the few draws in a bucket with a boundary are searched.

    Args:
        probabilities: [n_items], non-negative, summing to 1 (`popularity_sampler`).

    Example:
        >>> sampler = InverseCdfSampler(np.array([0.5, 0.0, 0.5]))
        >>> sampler.draw(np.random.default_rng(0), (2, 3)).shape
        (2, 3)
    """

    BLOCK = 1 << 20  # draws per block of `draw`

    def __init__(self, probabilities: np.ndarray):
        cdf = np.asarray(probabilities, dtype=np.float64).cumsum()
        cdf /= cdf[-1]  # as numpy's Generator.choice normalises it
        self.cdf = cdf
        # a power of two: a draw's bucket floor(u · m) and the buckets' edges b / m are exact
        self.buckets = 1 << int(np.ceil(np.log2(max(64 * len(cdf), 2))))
        edges = np.arange(self.buckets + 1, dtype=np.float64) / self.buckets
        # the answer for u is the number of CDF values <= u; in bucket [e_b, e_b+1) it is at least
        # `first[b]`, and exactly that where no CDF value lies inside the bucket
        self.first = cdf.searchsorted(edges[:-1], side="right")
        self.settled = self.first == cdf.searchsorted(edges[1:], side="left")

    def draw(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        """Item ids [*shape] drawn with the sampler's probabilities (int32 for catalogues below 2³¹
        items). Drawn in blocks of `BLOCK` (the generator's uniform draws are one stream, so blocks
        give the same draws as one call): the temporaries stay small whatever the size (a 16M-event
        epoch draws 200M samples)."""
        total = int(np.prod(shape))
        dtype = np.int32 if len(self.cdf) < 2**31 else np.int64
        items = np.empty(total, dtype)
        for start in range(0, total, self.BLOCK):
            uniform = rng.random(min(self.BLOCK, total - start))
            bucket = (uniform * self.buckets).astype(np.int64)
            drawn = self.first[bucket]
            unsettled = ~self.settled[bucket]
            drawn[unsettled] = self.cdf.searchsorted(uniform[unsettled], side="right")
            items[start : start + len(uniform)] = drawn
        return items.reshape(shape)


def epoch_batches(
    sequences: UserSequences,
    starts: np.ndarray,
    lengths: np.ndarray,
    config: GRU4RecConfig,
    sampler: InverseCdfSampler | None,
    rng: np.random.Generator,
) -> tuple[np.ndarray, ...]:
    """One epoch's session-parallel batches of the training sessions (`training_sessions`): items,
    targets, reset, active [steps, batch_size] and the shared samples [steps, n_sample] (int32).

    Sessions in a new random order (`shuffle_sessions`), and same-second events in a new random
    order every epoch: the network must not learn the stored (item-index) order of tie groups,
    which carries no information about time. `epoch_tail="drop"` stops once fewer than half the
    usable lanes still have a session. Draws from `rng` in a fixed order: the session order, the
    tie shuffle, the samples.
    """
    c = config
    order = rng.permutation(len(starts)) if c.shuffle_sessions else np.arange(len(starts))
    epoch_items = sequences.items[tie_shuffled_order(sequences, rng)]
    items, targets, reset, active = session_parallel_batches(
        epoch_items, starts[order], lengths[order], c.batch_size
    )
    if c.epoch_tail == "drop":
        busy = active.sum(axis=1) >= max(1, min(c.batch_size, len(starts)) // 2)
        cut = len(busy) if busy.all() else int(np.argmin(busy))
        items, targets, reset, active = items[:cut], targets[:cut], reset[:cut], active[:cut]
    if c.n_sample:  # shared by the mini-batch, one draw per step (2018, §3.1)
        samples = sampler.draw(rng, (len(items), c.n_sample)).astype(np.int32, copy=False)
    else:
        samples = np.zeros((len(items), 0), np.int32)
    return items, targets, reset, active, samples


def _usable_candidates(targets, samples, active) -> tuple[Any, Any]:
    """The candidates [B + S] (the lanes' targets, then the samples) and whether each is usable (1.0;
    an idle lane's target is no candidate)."""
    candidates = ops.concatenate([ops.cast(targets, "int32"), ops.cast(samples, "int32")], axis=0)
    usable = ops.concatenate([ops.cast(active, "float32"), ops.ones((ops.shape(samples)[0],))], axis=0)
    return candidates, usable


def negative_mask(targets, samples, active) -> Any:
    """[B, B + S] mask of the candidates that act as negatives for each lane's target.

    Candidates are the lanes' targets (mini-batch negatives, 2016 §3.1.2) followed by the shared
    samples (2018 §3.1). Idle lanes' targets are no candidates, and a candidate equal to the row's
    own target (an accidental hit: another lane's identical target, or a sample of it) is masked.
    """
    candidates, usable = _usable_candidates(targets, samples, active)
    hit = ops.equal(ops.expand_dims(candidates, 0), ops.expand_dims(ops.cast(targets, "int32"), 1))
    return (1.0 - ops.cast(hit, "float32")) * ops.expand_dims(usable, 0)


def catalogue_negatives(targets, samples, active, n_items: int) -> Any:
    """[B, n_items]: `negative_mask` over the catalogue's columns instead of the candidates' — how
    many usable candidates (active lanes' targets, then samples) each item is, 0 at the row's own
    target. A loss over the catalogue's scores with these weights equals the loss over the B + S
    candidate columns with `negative_mask`, without picking those columns out of the scores (nor
    scattering their gradients back): the cheaper form when the catalogue is no larger than the
    candidate list (`models.losses` weighs a column of multiplicity k as k columns)."""
    candidates, usable = _usable_candidates(targets, samples, active)
    counts = ops.segment_sum(usable, candidates, num_segments=n_items)
    return ops.expand_dims(counts, 0) * (1.0 - ops.one_hot(ops.cast(targets, "int32"), n_items))
