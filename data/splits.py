"""Evaluation protocols: which events train a model and which events it is judged on.

Every protocol is a pure, seeded function of the canonical interactions table (see
`movierec.data.Dataset`) and returns a `Split` that is recorded with every result. Events are first put
in one deterministic chronological order, so ties in timestamps never depend on file order.

Events of one user with the same timestamp are unordered (see `movierec.data.stream` for the context rule
every query follows); where a protocol must still pick among them (leave-last-out's last event), it
picks by a fixed hash of (user, item), not by id, so no id order decides what is held out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from movierec.constants import ROLE_NAMES, TEST, TRAIN, VALIDATION
from movierec.data.schema import GIVEN_SPLIT, SESSION_IDS


@dataclass(frozen=True)
class Split:
    """Row indices (into the interactions table) of each role, plus what the protocol removed.

    `dropped` counts evaluation events removed because the model cannot know their user or item
    (never silently: the counts travel with every result).
    """

    protocol: str
    params: dict[str, Any]
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    dropped: dict[str, int] = field(default_factory=dict)

    def roles(self, n_rows: int) -> np.ndarray:
        """Role per row of the interactions table (-1 for dropped rows)."""
        role = np.full(n_rows, -1, dtype=np.int8)
        role[self.train] = TRAIN
        role[self.validation] = VALIDATION
        role[self.test] = TEST
        return role

    def describe(self) -> dict[str, Any]:
        info = asdict(self)
        for name in ROLE_NAMES.values():
            info[name] = len(info[name])
        return info


def tie_key(users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """A fixed pseudo-random uint64 per (user, item): orders same-timestamp events deterministically
    (whatever the file order) without following the ids' order."""
    pairs = np.char.add(np.char.add(np.asarray(users, dtype=str), "\x1f"), np.asarray(items, dtype=str))
    # categorize=False: the same hashes; the pairs are unique, so pandas' default of hashing the
    # distinct values once only added a factorization (a hash table of every pair, slow at millions)
    return pd.util.hash_array(pairs.astype(object), categorize=False)


def same_second_share(interactions: pd.DataFrame) -> float:
    """Of each user's consecutive events in time order, the share whose two events have the same
    timestamp (how often the tie rule applies; NaN without consecutive pairs)."""
    users = interactions["user_id"].to_numpy(dtype=str)
    timestamps = interactions["timestamp"].to_numpy()
    order = np.lexsort((timestamps, users))
    users, timestamps = users[order], timestamps[order]
    same_user = users[1:] == users[:-1]
    if not same_user.any():
        return float("nan")
    return float((timestamps[1:] == timestamps[:-1])[same_user].mean())


def chronological_order(interactions: pd.DataFrame) -> np.ndarray:
    """Row order by (timestamp, user_id, tie_key): deterministic whatever the file order."""
    users = interactions["user_id"].to_numpy(dtype=str)
    return np.lexsort(
        (
            tie_key(users, interactions["item_id"].to_numpy(dtype=str)),
            users,
            interactions["timestamp"].to_numpy(),
        )
    )


def isin_ids(values: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """`np.isin` for ids, by hashing: numpy compares object (string) ids in Python through a sort of
    both arrays, which dominated a temporal split at millions of events."""
    return pd.Series(values).isin(pd.unique(allowed)).to_numpy()


def _drop_unseen(
    interactions: pd.DataFrame, train: np.ndarray, evaluated: np.ndarray
) -> tuple[np.ndarray, dict[str, int]]:
    """Keeps the evaluation rows whose user and item occur in training; counts the others."""
    users = interactions["user_id"].to_numpy()
    items = interactions["item_id"].to_numpy()
    known_user = isin_ids(users[evaluated], users[train])
    known_item = isin_ids(items[evaluated], items[train])
    dropped = {
        "user_not_in_train": int((~known_user).sum()),
        "item_not_in_train": int((known_user & ~known_item).sum()),
    }
    return evaluated[known_user & known_item], dropped


def check_temporal_params(test_fraction: float, cut_time: int | None, validation_share: float) -> None:
    """The argument checks of `temporal_split` (also the data-parallel split's, data/beam_split.py)."""
    if cut_time is not None and (isinstance(cut_time, bool) or not isinstance(cut_time, int | np.integer)):
        raise ValueError(f"cut_time must be an integer timestamp, got {cut_time!r}")
    if cut_time is None and not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if not 0 <= validation_share <= 1:
        raise ValueError(f"validation_share must be in [0, 1], got {validation_share}")


def temporal_split(
    interactions: pd.DataFrame,
    *,
    test_fraction: float = 0.2,
    cut_time: int | None = None,
    validation_share: float = 0.5,
    seed: int = 0,
) -> Split:
    """Global temporal split, the default protocol.

    Events before the cut t1 train the model; events at or after t1 form the evaluation period. The
    users active in that period are divided at random (seeded) into validation users and test users.
    No training event is later than any evaluation event, so nothing from the future leaks in.
    t1 is `cut_time` when given (in the timestamps' unit; `test_fraction` is then unused and recorded
    as None), else the timestamp below which `1 - test_fraction` of events fall.
    """
    check_temporal_params(test_fraction, cut_time, validation_share)
    order = chronological_order(interactions)
    timestamps = interactions["timestamp"].to_numpy()
    fraction_used = test_fraction if cut_time is None else None
    if cut_time is None:
        cut_time = int(timestamps[order[int(len(order) * (1 - test_fraction))]])
    after = timestamps[order] >= cut_time
    train, evaluated = order[~after], order[after]
    if len(train) == 0 or len(evaluated) == 0:
        raise ValueError(f"cut time {cut_time} leaves an empty training or evaluation period")

    eval_users = np.unique(interactions["user_id"].to_numpy()[evaluated])
    shuffled = np.random.default_rng(seed).permutation(eval_users)
    validation_users = shuffled[: round(len(shuffled) * validation_share)]
    kept, dropped = _drop_unseen(interactions, train, evaluated)
    is_validation = isin_ids(interactions["user_id"].to_numpy()[kept], validation_users)
    return Split(
        protocol="temporal",
        params={
            "cut_time": int(cut_time),
            "test_fraction": fraction_used,
            "validation_share": validation_share,
            "seed": seed,
        },
        train=train,
        validation=kept[is_validation],
        test=kept[~is_validation],
        dropped=dropped,
    )


def leave_last_out_split(interactions: pd.DataFrame, *, min_events: int = 3) -> Split:
    """Per user by time: the last event is the test event, the one before it validation.

    The protocol of RecBole/SASRec papers, kept for comparison with their numbers. It is not a global
    temporal split: one user's training events may be later than another user's test event. Users with
    fewer than `min_events` events keep them all for training (counted in `dropped`).
    """
    order = chronological_order(interactions)
    users = interactions["user_id"].to_numpy()[order]
    by_user = np.argsort(users, kind="stable")  # stable: chronological within each user
    grouped = users[by_user]
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])
    counts = np.diff(np.r_[starts, len(grouped)])
    from_end = np.repeat(starts + counts, counts) - 1 - np.arange(len(grouped))
    eligible = np.repeat(counts >= min_events, counts)
    rows = order[by_user]
    test = rows[eligible & (from_end == 0)]
    validation = rows[eligible & (from_end == 1)]
    is_train = np.zeros(len(interactions), dtype=bool)
    is_train[rows[~eligible | (from_end >= 2)]] = True
    train = order[is_train[order]]
    test, dropped_test = _drop_unseen(interactions, train, test)
    validation, dropped_validation = _drop_unseen(interactions, train, validation)
    dropped = {k: dropped_test[k] + dropped_validation[k] for k in dropped_test}
    dropped["users_too_short"] = int((counts < min_events).sum())
    return Split(
        protocol="leave-last-out",
        params={"min_events": min_events},
        train=train,
        validation=validation,
        test=test,
        dropped=dropped,
    )


def random_split(
    interactions: pd.DataFrame, *, test_fraction: float = 0.2, validation_share: float = 0.5, seed: int = 0
) -> Split:
    """The LSTM+CNN paper's protocol (Wang et al. 2020, §IV.E): a seeded random 80/20 split of ratings.

    A random `test_fraction` of all events is evaluated, the rest trains; evaluation users are divided
    at random (seeded) into validation and test users, as under `temporal`, so choices are never made
    on test users. Evaluation events whose user or item is not in training are dropped and counted.

    Not leak-free in time: a user's training events may be later than their evaluation events. The
    paper builds a user's history from "all movies rated", which with a random split contains the
    target itself; movierec never does that: every model's history is cut at the target's timestamp
    (strictly earlier events only, the tie rule of `movierec.data.stream`), and models that keep a
    history for rating prediction draw it from the training ratings only.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if not 0 <= validation_share <= 1:
        raise ValueError(f"validation_share must be in [0, 1], got {validation_share}")
    order = chronological_order(interactions)  # the draw does not depend on the file's row order
    rng = np.random.default_rng(seed)
    is_evaluated = np.zeros(len(order), dtype=bool)
    is_evaluated[rng.permutation(len(order))[: round(len(order) * test_fraction)]] = True
    train, evaluated = order[~is_evaluated], order[is_evaluated]  # both in chronological order
    if len(train) == 0 or len(evaluated) == 0:
        raise ValueError(f"test_fraction {test_fraction} leaves an empty training or evaluation set")
    kept, dropped = _drop_unseen(interactions, train, evaluated)
    users = interactions["user_id"].to_numpy()
    eval_users = rng.permutation(np.unique(users[kept]))
    validation_users = eval_users[: round(len(eval_users) * validation_share)]
    is_validation = isin_ids(users[kept], validation_users)
    return Split(
        protocol="random",
        params={"test_fraction": test_fraction, "validation_share": validation_share, "seed": seed},
        train=train,
        validation=kept[is_validation],
        test=kept[~is_validation],
        dropped=dropped,
    )


def session_starts(users: np.ndarray, timestamps: np.ndarray, gap_seconds: int) -> np.ndarray:
    """Marks the events that open a session, for events already grouped by user in time order.

    A user's events belong to one session until a pause longer than `gap_seconds` (an inactivity
    gap, the usual definition for logs without explicit session ids).
    """
    if gap_seconds <= 0:
        raise ValueError(f"gap_seconds must be positive, got {gap_seconds}")
    new_user = np.r_[True, users[1:] != users[:-1]]
    long_pause = np.r_[True, np.diff(timestamps) > gap_seconds]
    return new_user | long_pause


def given_split(interactions: pd.DataFrame) -> Split:
    """The split that came with the files (session-tsv): each row's role is the file it came from.

    Evaluation events whose item is not in training are dropped and counted (no model can rank it).
    Evaluation users need not occur in training: test sessions are new sessions. Parameters that
    decide the evaluation travel in `params`, so every command applies them:

    - ``min_context`` 1: a query whose context is empty is not asked (the first event of a session has
      nothing to predict from; with the tie rule, neither have the events tied with it);
    - ``session_ids``: the user ids are session ids (GRU4Rec's files), so each user is one session
      whatever its pauses, and ``exclude_seen`` is False: items already clicked in the session stay
      in the ranking, as in the papers that publish such files. For user files (`movierec data split
      --out`) seen items are removed as under every other protocol, so a written split reproduces the
      metrics of the protocol that made it.
    """
    if GIVEN_SPLIT not in interactions.columns:
        raise ValueError(
            "given-split needs a layout with its own split files (session-tsv); these interactions "
            f"have no {GIVEN_SPLIT!r} column"
        )
    # Rows in file order: no role depends on time here, and ordering 31M rows (GRU4Rec's rsc15 files)
    # by their tie keys would take minutes; every later stage orders events itself.
    given = interactions[GIVEN_SPLIT].cat.codes.to_numpy()
    categories = list(interactions[GIVEN_SPLIT].cat.categories)
    train = np.flatnonzero(given == categories.index(ROLE_NAMES[TRAIN]))
    if len(train) == 0:
        raise ValueError("given-split: the training file has no rows")
    items = interactions["item_id"].to_numpy()
    known_items = pd.unique(items[train])
    kept, dropped = {}, {"item_not_in_train": 0}
    for role in (ROLE_NAMES[VALIDATION], ROLE_NAMES[TEST]):
        rows = np.flatnonzero(given == categories.index(role))
        known = isin_ids(items[rows], known_items)
        kept[role] = rows[known]
        dropped["item_not_in_train"] += int((~known).sum())
    sessions = bool(interactions.attrs.get(SESSION_IDS, False))
    return Split(
        protocol="given-split",
        params={"session_ids": sessions, "exclude_seen": not sessions, "min_context": 1},
        train=train,
        validation=kept["validation"],
        test=kept["test"],
        dropped=dropped,
    )


PROTOCOLS = {
    "temporal": temporal_split,
    "leave-last-out": leave_last_out_split,
    "given-split": given_split,
    "random": random_split,
}


def make_split(interactions: pd.DataFrame, protocol: str, **params: Any) -> Split:
    """Applies the named protocol ("temporal", "leave-last-out", "given-split" or "random")."""
    try:
        split_fn = PROTOCOLS[protocol]
    except KeyError:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {sorted(PROTOCOLS)}") from None
    return split_fn(interactions, **params)
