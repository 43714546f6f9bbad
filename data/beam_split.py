"""The temporal protocol (`movierec.data.splits.temporal_split`) as Beam transforms over per-user events.

Same split, computed without one worker ever holding the events:

- the cut t1 (unless given) is the k-th smallest timestamp, k = int(n * (1 - test_fraction)) as in
  `temporal_split`. It is found exactly by a radix select in three passes (the high 21 bits, then two
  16-bit digits): each pass is a histogram of at most 65,536 (first pass: 2^21) keys, combined across
  workers, so the result is the exact order statistic (not an approximate quantile) whatever the data.
  The tie rule (`chronological_order`) decides nothing here: every event at t1 or later is evaluated,
  whatever its place among same-second events, and t1 itself is a timestamp value, not a row.
- each user's roles come from their own events (after the `GroupByKey` on user in `ReadRatings`);
- the validation users are the seeded permutation of the sorted evaluation users, exactly as
  `temporal_split` draws them: this needs the list of evaluation users (not their events) in one place;
- `_drop_unseen`: an evaluation event of a user without training events, or of an item no training
  event has, is dropped and counted; the training items (and their training counts, which ExampleGen
  writes as a feature) are a per-item combine, read as a side input of size O(items).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import apache_beam as beam
import numpy as np

from movierec.constants import TEST, TRAIN, VALIDATION
from movierec.data.beam_io import UserEvents
from movierec.data.errors import DataError
from movierec.data.splits import check_temporal_params, tie_key

DROPPED = -1
# (shift of the digit, its width in bits): the last two passes look at 16 bits each, the first at the
# rest of a timestamp below 2^53 (every parser keeps ids and timestamps below MAX_ID = 2^53).
_DIGITS = ((32, 21), (16, 16), (0, 16))


class SplitUser(NamedTuple):
    """One user's events with their role (TRAIN, VALIDATION, TEST or DROPPED) and training count."""

    user: int
    item: np.ndarray
    rating: np.ndarray
    timestamp: np.ndarray
    role: np.ndarray
    training_ratings: int


class _MergeCounts(beam.CombineFn):
    def create_accumulator(self) -> Counter:
        return Counter()

    def add_input(self, accumulator: Counter, counts: dict) -> Counter:
        accumulator.update(counts)
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[Counter]) -> Counter:
        merged = Counter()
        for a in accumulators:
            merged.update(a)
        return merged

    def extract_output(self, accumulator: Counter) -> dict:
        return dict(accumulator)


def _digit_counts(events: UserEvents, level: int, state: tuple[int, int]) -> Iterator[dict]:
    """How many of the user's timestamps have each value of digit `level`, among those whose higher
    digits are `state`'s prefix."""
    shift, width = _DIGITS[level]
    ts = events.timestamp
    if level:
        ts = ts[(ts >> (shift + width)) == state[0]]
    if not len(ts):
        return
    keys, counts = np.unique((ts >> shift) & ((1 << width) - 1), return_counts=True)
    yield dict(zip(keys.tolist(), counts.tolist(), strict=True))


def _select(histogram: dict, state: tuple[int, int], level: int) -> tuple[int, int]:
    """The digit value holding the rank-th smallest timestamp, and its rank among those with it."""
    prefix, rank = state
    below = 0
    for key in sorted(histogram):
        if rank < below + histogram[key]:
            return (prefix << _DIGITS[level][1]) | key if level else key, rank - below
        below += histogram[key]
    raise DataError(None, None, "no rating rows left: every one was rejected")


def _start(total: int, test_fraction: float) -> tuple[int, int]:
    if total == 0:
        raise DataError(None, None, "no rating rows left: every one was rejected")
    return 0, int(total * (1 - test_fraction))  # temporal_split's index into the chronological order


class ExactCut(beam.PTransform):
    """The timestamp below which `1 - test_fraction` of the events fall (`temporal_split`'s t1)."""

    def __init__(self, test_fraction: float) -> None:
        super().__init__()
        self.test_fraction = test_fraction

    def expand(self, events: beam.PCollection) -> beam.PCollection:
        total = (
            events | "Count" >> beam.Map(lambda e: len(e.timestamp)) | "Total" >> beam.CombineGlobally(sum)
        )
        state = total | "Rank" >> beam.Map(_start, self.test_fraction)
        for level in range(len(_DIGITS)):
            histogram = (
                events
                | f"Digit{level}" >> beam.FlatMap(_digit_counts, level, beam.pvalue.AsSingleton(state))
                | f"Histogram{level}" >> beam.CombineGlobally(_MergeCounts())
            )
            state = histogram | f"Select{level}" >> beam.Map(_select, beam.pvalue.AsSingleton(state), level)
        return state | "Cut" >> beam.Map(lambda s: int(s[0]))


def _user_counts(events: UserEvents, cut: int) -> tuple[int, int, int]:
    evaluated = int(np.count_nonzero(events.timestamp >= cut))
    return events.user, len(events.timestamp) - evaluated, evaluated


def _train_items(events: UserEvents, cut: int) -> Iterator[tuple[int, int]]:
    items, counts = np.unique(events.item[events.timestamp < cut], return_counts=True)
    yield from zip(items.tolist(), counts.tolist(), strict=True)


def validation_users(eval_users: list[str], validation_share: float, seed: int) -> frozenset[str]:
    """`temporal_split`'s draw: the seeded permutation of the sorted evaluation users, its first
    round(len * validation_share) are validation users."""
    unique = np.unique(np.asarray(eval_users, dtype=object))
    shuffled = np.random.default_rng(seed).permutation(unique)
    return frozenset(shuffled[: round(len(shuffled) * validation_share)].tolist())


class _Roles(beam.DoFn):
    DROPPED_COUNTS = "dropped"

    def process(
        self, events: UserEvents, cut: int, validation: frozenset[str], item_counts: dict[int, int]
    ) -> Iterator[Any]:
        after = events.timestamp >= cut
        n_train = int(np.count_nonzero(~after))
        role = np.full(len(after), TRAIN, np.int8)
        if after.any():
            evaluated = np.flatnonzero(after)
            if n_train == 0:
                role[evaluated] = DROPPED
                yield beam.pvalue.TaggedOutput(self.DROPPED_COUNTS, ("user_not_in_train", len(evaluated)))
            else:
                known = np.fromiter(
                    (int(i) in item_counts for i in events.item[evaluated]), bool, len(evaluated)
                )
                kept = VALIDATION if str(events.user) in validation else TEST
                role[evaluated] = np.where(known, kept, DROPPED)
                yield beam.pvalue.TaggedOutput(
                    self.DROPPED_COUNTS, ("item_not_in_train", int(np.count_nonzero(~known)))
                )
        yield SplitUser(events.user, events.item, events.rating, events.timestamp, role, n_train)


class SplitOutput(NamedTuple):
    users: beam.PCollection  # SplitUser, one per user
    item_counts: beam.PCollection  # singleton {item: training events}
    summary: beam.PCollection  # singleton: `Split.describe()` of the split temporal_split makes


class TemporalSplit(beam.PTransform):
    """`temporal_split(interactions, test_fraction=, cut_time=, validation_share=, seed=)` on the
    per-user events of `ReadRatings`."""

    def __init__(
        self,
        *,
        test_fraction: float = 0.2,
        cut_time: int | None = None,
        validation_share: float = 0.5,
        seed: int = 0,
    ) -> None:
        super().__init__()
        check_temporal_params(test_fraction, cut_time, validation_share)
        self.test_fraction, self.cut_time = test_fraction, cut_time
        self.validation_share, self.seed = validation_share, seed

    def expand(self, events: beam.PCollection) -> SplitOutput:
        if self.cut_time is None:
            cut = events | "ExactCut" >> ExactCut(self.test_fraction)
        else:
            cut = events.pipeline | "GivenCut" >> beam.Create([int(self.cut_time)])
        cut_side = beam.pvalue.AsSingleton(cut)
        counts = events | "UserCounts" >> beam.Map(_user_counts, cut_side)
        validation = (
            counts
            | "EvaluationUsers" >> beam.FlatMap(lambda c: [str(c[0])] if c[2] else [])
            | "AllEvaluationUsers" >> beam.combiners.ToList()
            | "ValidationUsers" >> beam.Map(validation_users, self.validation_share, self.seed)
        )
        item_counts = (
            events
            | "TrainItems" >> beam.FlatMap(_train_items, cut_side)
            | "ItemCounts" >> beam.CombinePerKey(sum)
            | "ItemDict" >> beam.combiners.ToDict()
        )
        roles = events | "Roles" >> beam.ParDo(
            _Roles(), cut_side, beam.pvalue.AsSingleton(validation), beam.pvalue.AsSingleton(item_counts)
        ).with_outputs(_Roles.DROPPED_COUNTS, main="users")
        dropped = (
            roles[_Roles.DROPPED_COUNTS]
            | "DroppedCounts" >> beam.CombinePerKey(sum)
            | "DroppedDict" >> beam.combiners.ToDict()
        )
        role_counts = _role_counts(roles.users)
        evaluated = (
            counts
            | "PeriodCounts" >> beam.Map(lambda c: np.array([c[1], c[2]], np.int64))
            | "AllPeriodCounts" >> beam.CombineGlobally(lambda arrays: sum(arrays, np.zeros(2, np.int64)))
        )
        summary = cut | "Summary" >> beam.Map(
            self._describe,
            beam.pvalue.AsSingleton(role_counts),
            beam.pvalue.AsSingleton(evaluated),
            beam.pvalue.AsSingleton(dropped),
        )
        return SplitOutput(roles.users, item_counts, summary)

    def _describe(self, cut: int, roles: np.ndarray, periods: np.ndarray, dropped: dict) -> dict:
        if periods[0] == 0 or periods[1] == 0:
            raise ValueError(f"cut time {cut} leaves an empty training or evaluation period")
        return {
            "protocol": "temporal",
            "params": {
                "cut_time": int(cut),
                "test_fraction": self.test_fraction if self.cut_time is None else None,
                "validation_share": self.validation_share,
                "seed": self.seed,
            },
            **_described_counts(roles, dropped),
        }


def _described_counts(roles: np.ndarray, dropped: dict, **more_dropped: int) -> dict:
    """The events per role and the dropped counts, as `Split.describe` reports them."""
    return {
        "train": int(roles[TRAIN]),
        "validation": int(roles[VALIDATION]),
        "test": int(roles[TEST]),
        "dropped": {
            "user_not_in_train": int(dropped.get("user_not_in_train", 0)),
            "item_not_in_train": int(dropped.get("item_not_in_train", 0)),
            **more_dropped,
        },
    }


def _last_roles(events: UserEvents, min_events: int) -> SplitUser:
    """`leave_last_out_split`'s roles of one user before the unseen events are dropped: in the order
    of `chronological_order` (timestamp, then `tie_key`: one user's events), the last is the test
    event and the one before it the validation event, for users with at least `min_events` events."""
    n = len(events.timestamp)
    role = np.full(n, TRAIN, np.int8)
    if n >= min_events:
        ties = tie_key(np.full(n, str(events.user)), events.item.astype(str))
        order = np.lexsort((ties, events.timestamp))
        role[order[-1]] = TEST
        if n >= 2:
            role[order[-2]] = VALIDATION
    n_train = int(np.count_nonzero(role == TRAIN))
    return SplitUser(events.user, events.item, events.rating, events.timestamp, role, n_train)


class _DropUnseen(beam.DoFn):
    """`_drop_unseen` per user: evaluation events of a user without training events, or of an item
    without any, become DROPPED and are counted."""

    DROPPED_COUNTS = "dropped"

    def process(self, user: SplitUser, item_counts: dict[int, int]) -> Iterator[Any]:
        evaluated = np.flatnonzero(user.role != TRAIN)
        if len(evaluated):
            role = user.role.copy()
            if user.training_ratings == 0:
                role[evaluated] = DROPPED
                yield beam.pvalue.TaggedOutput(self.DROPPED_COUNTS, ("user_not_in_train", len(evaluated)))
            else:
                known = np.fromiter(
                    (int(i) in item_counts for i in user.item[evaluated]), bool, len(evaluated)
                )
                role[evaluated[~known]] = DROPPED
                yield beam.pvalue.TaggedOutput(
                    self.DROPPED_COUNTS, ("item_not_in_train", int(np.count_nonzero(~known)))
                )
            user = user._replace(role=role)
        yield user


def _train_item_counts(user: SplitUser) -> Iterator[tuple[int, int]]:
    items, counts = np.unique(user.item[user.role == TRAIN], return_counts=True)
    yield from zip(items.tolist(), counts.tolist(), strict=True)


def _role_counts(users: beam.PCollection) -> beam.PCollection:
    return (
        users
        | "RoleCounts" >> beam.Map(lambda u: np.bincount(u.role[u.role >= 0].astype(np.int64), minlength=3))
        | "AllRoleCounts" >> beam.CombineGlobally(lambda arrays: sum(arrays, np.zeros(3, np.int64)))
    )


class LeaveLastOutSplit(beam.PTransform):
    """`leave_last_out_split(interactions, min_events=)` on the per-user events of `ReadRatings`:
    every user's roles from their own events, the training items from a per-item combine."""

    def __init__(self, *, min_events: int = 3) -> None:
        super().__init__()
        self.min_events = min_events

    def expand(self, events: beam.PCollection) -> SplitOutput:
        provisional = events | "LastRoles" >> beam.Map(_last_roles, self.min_events)
        item_counts = (
            provisional
            | "TrainItems" >> beam.FlatMap(_train_item_counts)
            | "ItemCounts" >> beam.CombinePerKey(sum)
            | "ItemDict" >> beam.combiners.ToDict()
        )
        roles = provisional | "DropUnseen" >> beam.ParDo(
            _DropUnseen(), beam.pvalue.AsSingleton(item_counts)
        ).with_outputs(_DropUnseen.DROPPED_COUNTS, main="users")
        dropped = (
            roles[_DropUnseen.DROPPED_COUNTS]
            | "DroppedCounts" >> beam.CombinePerKey(sum)
            | "DroppedDict" >> beam.combiners.ToDict()
        )
        too_short = (
            events
            | "TooShort" >> beam.Map(lambda e: int(len(e.timestamp) < self.min_events))
            | "AllTooShort" >> beam.CombineGlobally(sum)
        )
        summary = too_short | "Summary" >> beam.Map(
            self._describe,
            beam.pvalue.AsSingleton(_role_counts(roles.users)),
            beam.pvalue.AsSingleton(dropped),
        )
        return SplitOutput(roles.users, item_counts, summary)

    def _describe(self, too_short: int, roles: np.ndarray, dropped: dict) -> dict:
        return {
            "protocol": "leave-last-out",
            "params": {"min_events": self.min_events},
            **_described_counts(roles, dropped, users_too_short=int(too_short)),
        }


KEYED_PROTOCOLS = {"temporal": TemporalSplit, "leave-last-out": LeaveLastOutSplit}
"""The protocols with a data-parallel (keyed) version; the others run `make_split` in one worker."""
