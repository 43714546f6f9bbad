"""What every recommender receives and returns. Models see integer-encoded arrays only: they know
nothing about files, TFX or how the data was split.

Item and user ids are contiguous integers (0..n_items-1, 0..n_users-1) assigned from the training
events; `UserSequences` holds each user's events in time order, CSR-style.

Timestamp ties. Events of one user with the same timestamp (a *tie group*; half of ML-100K's
consecutive ratings share a second) are unordered: none of them is context for, or a competitor of,
another. Sequences store a tie group contiguously in a fixed canonical order (ascending item index,
`canonical_order`), but that order means nothing: a query's context ends where the target's tie group
starts, and models that learn from the order shuffle each tie group (`tie_shuffled_order`).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from movierec import storage
from movierec.models.hyperparameters import make_config

if TYPE_CHECKING:  # Keras loads lazily: the data layer imports this module for its containers
    import keras


@dataclass(frozen=True)
class UserSequences:
    """Every user's events in chronological order: user u owns rows indptr[u]:indptr[u+1]."""

    indptr: np.ndarray  # [n_users + 1] int64
    items: np.ndarray  # [n_events] int32
    ratings: np.ndarray  # [n_events] float32
    timestamps: np.ndarray  # [n_events] int64
    session_start: np.ndarray  # [n_events] bool: the event opens a session

    @classmethod
    def from_lists(cls, per_user, session_breaks=(), rating: float = 4.0) -> UserSequences:
        """Hand-made sequences (examples, tests): one item list per user, in time order; each user's
        first event opens a session and so does every (user, position) in `session_breaks`.
        Timestamps are the event numbers; every rating is `rating`."""
        lengths = np.array([len(items) for items in per_user], dtype=np.int64)
        items = np.array([i for seq in per_user for i in seq], dtype=np.int32)
        indptr = np.r_[0, np.cumsum(lengths)].astype(np.int64)
        starts = np.zeros(len(items), dtype=bool)
        starts[indptr[:-1][lengths > 0]] = True
        for user, position in session_breaks:
            starts[indptr[user] + position] = True
        return cls(
            indptr,
            items,
            np.full(len(items), rating, np.float32),
            np.arange(len(items), dtype=np.int64),
            starts,
        )

    @property
    def n_users(self) -> int:
        return len(self.indptr) - 1

    @functools.cached_property
    def tie_groups(self) -> tuple[np.ndarray, np.ndarray]:
        """(start, stop) per event: rows [start, stop) are the user's events with the same timestamp
        (contiguous, since each user's events are in time order). Computed once per sequences."""
        n = len(self.items)
        new_group = np.zeros(n, dtype=bool)
        new_group[self.indptr[:-1][np.diff(self.indptr) > 0]] = True  # a user's first event
        new_group[1:] |= self.timestamps[1:] != self.timestamps[:-1]
        firsts = np.flatnonzero(new_group)
        group = np.cumsum(new_group) - 1
        return firsts[group].astype(np.int64), np.r_[firsts[1:], n].astype(np.int64)[group]

    @property
    def users(self) -> np.ndarray:
        """The user of every event."""
        return np.repeat(np.arange(self.n_users, dtype=np.int32), np.diff(self.indptr))

    def select(self, keep: np.ndarray) -> UserSequences:
        """The events where `keep` [n_events] is true, each user's in the same order."""
        keep = np.asarray(keep, dtype=bool)
        counts = np.bincount(self.users[keep], minlength=self.n_users)
        indptr = np.r_[0, np.cumsum(counts)].astype(np.int64)
        session_start = self.session_start[keep].copy()
        session_start[indptr[:-1][counts > 0]] = True  # a user's first event always opens a session
        return UserSequences(
            indptr, self.items[keep], self.ratings[keep], self.timestamps[keep], session_start
        )


def canonical_order(users: np.ndarray, timestamps: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Row order by (user, timestamp, item index): how every builder lays out `UserSequences`, so the
    command line, the pipeline and serving read a history's tie groups in the same order."""
    return np.lexsort((items, timestamps, users))


def tie_shuffled_order(sequences: UserSequences, rng: np.random.Generator) -> np.ndarray:
    """A permutation of the events that shuffles every tie group in place (seeded by `rng`).

    Training on `sequences.items[order]` keeps real time order but never teaches a model the
    artificial order of same-timestamp events (e.g. "a lower id comes first")."""
    start, _ = sequences.tie_groups
    return np.lexsort((rng.random(len(start)), start))


def gather_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + n) for every (s, n), without a Python loop."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(np.asarray(starts, dtype=np.int64) - np.r_[0, np.cumsum(lengths)[:-1]], lengths)
    return offsets + np.arange(total, dtype=np.int64)


@dataclass(frozen=True)
class SideFeatures:
    """Integer-encoded side features aligned with the model's item and user indices (built by
    `movierec.data.side_features` from the training data only). An input the layout lacks is None.

    Id 0 always means "unknown/absent" (and padding for title words; 1 is the out-of-vocabulary word),
    so a model embeds every column directly. `vocabularies` maps each column to its values by id (for
    saving with a model and for serving raw strings later); `disabled` says why an input is off.
    """

    item_genres: np.ndarray | None = None  # [n_items, n_genres] int8 multi-hot
    item_title_words: np.ndarray | None = None  # [n_items, title_length] int32; 0 pad, 1 OOV
    user_gender: np.ndarray | None = None  # [n_users] int32; 0 unknown
    user_age_band: np.ndarray | None = None  # [n_users] int32; 0 unknown
    user_occupation: np.ndarray | None = None  # [n_users] int32; 0 unknown
    item_ids: np.ndarray | None = None  # [n_items] str: the raw id of each item index (external joins)
    vocabularies: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    disabled: dict[str, str] = dataclasses.field(default_factory=dict)  # input -> reason it is off

    def describe(self) -> dict[str, Any]:
        """What a result records: which inputs are on, their vocabulary sizes, why others are off."""
        inputs = ("item_genres", "item_title_words", "user_gender", "user_age_band", "user_occupation")
        return {
            "on": [name for name in inputs if getattr(self, name) is not None],
            "vocabulary_sizes": {name: len(values) for name, values in self.vocabularies.items()},
            "off": dict(self.disabled),
        }


def holdout(sequences: UserSequences, fraction: float) -> tuple[UserSequences, np.ndarray]:
    """(the earlier events, mask of the held-out later ones): the latest `fraction` of events by
    time, cut between timestamps (a timestamp's events are all on one side). Models that pick their
    best epoch inside `fit` validate on these, never on evaluation users."""
    times = sequences.timestamps
    cut = np.quantile(times, 1.0 - fraction, method="higher")
    later = times >= cut
    if later.all():  # one timestamp only: nothing can be held out
        later[:] = False
    return sequences.select(~later), later


@dataclass(frozen=True)
class TrainingData:
    """The training events, and the catalogue size every score row must cover. `side_features`
    (optional) are per-item and per-user features for models that read them (LSTM+CNN, IARN)."""

    n_users: int
    n_items: int
    sequences: UserSequences
    side_features: SideFeatures | None = None


@dataclass(frozen=True)
class QueryBatch:
    """A block of predictions to make: for each, the user and how much of their stream is visible.

    Query q may read the first `positions[q]` events of user `users[q]`'s stream in `sequences`
    (which holds training and evaluation events alike) and nothing after: its context. Builders of
    queries place `positions[q]` at the start of the target's tie group, so the context holds only
    events strictly earlier than the predicted one. `session_starts[q]` (<= positions[q]) is where the
    current session begins, for session-based models.
    """

    users: np.ndarray  # [b] int
    positions: np.ndarray  # [b] int
    session_starts: np.ndarray  # [b] int, <= positions
    sequences: UserSequences

    def __len__(self) -> int:
        return len(self.users)

    def last_items(self, within_session: bool = True) -> np.ndarray:
        """The item of the latest visible event, or -1 where there is none (in the session)."""
        first = self.session_starts if within_session else np.zeros_like(self.positions)
        has = self.positions > first
        index = self.sequences.indptr[self.users] + np.maximum(self.positions - 1, 0)
        return np.where(has, self.sequences.items[index], -1)

    def last_group(self, within_session: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(query index, item) of the context's latest tie group: the events at the latest visible
        timestamp (in the session). "The last item" is ambiguous when several share that second, so
        order-free models read all of them."""
        first = self.session_starts if within_session else np.zeros_like(self.positions)
        has = np.flatnonzero(self.positions > first)
        base = self.sequences.indptr[self.users[has]]
        last = base + self.positions[has] - 1
        start = np.maximum(self.sequences.tie_groups[0][last], base + first[has])
        lengths = last + 1 - start
        return np.repeat(has, lengths), self.sequences.items[gather_ranges(start, lengths)]

    def visible(self, within_session: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(query index, item) of every visible event, in time order per query."""
        first = self.session_starts if within_session else np.zeros_like(self.positions)
        lengths = self.positions - first
        rows = gather_ranges(self.sequences.indptr[self.users] + first, lengths)
        return np.repeat(np.arange(len(self)), lengths), self.sequences.items[rows]


@runtime_checkable
class Recommender(Protocol):
    """The interface the CLI, the TFX Trainer and the benchmarks train and evaluate through."""

    def fit(self, data: TrainingData) -> Recommender: ...

    def score(self, batch: QueryBatch) -> np.ndarray:
        """Scores of the whole catalogue for each query: float32 [len(batch), n_items]."""
        ...

    def save(self, directory: str) -> None:
        """Writes the model's files into `directory` (a local path or a URI such as gs://…)."""
        ...

    def get_config(self) -> dict[str, Any]: ...


@runtime_checkable
class RatingPredictor(Protocol):
    """Models that also predict explicit ratings (evaluated with RMSE and MAE).

    `timestamps` [n] (optional) are the events' times: a model whose prediction depends on time (RRN
    predicts from the user's and the movie's states before the event's step) declares the parameter;
    time-independent models may leave it out of their signature. Callers go through
    `predict_ratings_at`, which passes the timestamps only to models that take them."""

    def predict_ratings(
        self, users: np.ndarray, items: np.ndarray, timestamps: np.ndarray | None = None
    ) -> np.ndarray: ...


def query_times(batch: QueryBatch, now: int) -> np.ndarray:
    """Each query's time, for models that predict at a time (RRN, IARN): its target's timestamp (the
    event at `positions`, the start of the target's tie group), or `now` where the user's stream has
    no event there."""
    seq = batch.sequences
    users = np.asarray(batch.users, dtype=np.int64)
    positions = np.asarray(batch.positions, dtype=np.int64)
    has = positions < np.diff(seq.indptr)[users]
    rows = np.where(has, seq.indptr[users] + positions, 0)
    return np.where(has, seq.timestamps[rows] if len(seq.timestamps) else 0, now).astype(np.int64)


def predict_ratings_at(
    model: RatingPredictor, users: np.ndarray, items: np.ndarray, timestamps: np.ndarray
) -> np.ndarray:
    """`model.predict_ratings` for events at `timestamps`, passed where the model takes them."""
    if "timestamps" in inspect.signature(model.predict_ratings).parameters:
        return model.predict_ratings(users, items, timestamps=timestamps)
    return model.predict_ratings(users, items)


class KerasRecommender:
    """Base of the Keras-backed recommenders: typed hyper-parameters, a fitted `keras_model`, scoring
    from `keras_model.score_all(users)` (override `score` for sequence models), saving as `.keras`.

    A subclass sets `name` (its registry name) and `config_class` (a frozen dataclass of its
    hyper-parameters, see models/hyperparameters.py) and implements `fit`. `Model(**hparams)` checks
    the hyper-parameters against `config_class` (unknown keys and wrong types name the argument);
    `self.config` holds them; `get_config()` is their dict, which `load` accepts back.
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type]

    def __init__(self, **hparams: Any) -> None:
        self.config = make_config(self.config_class, hparams, self.name)
        self.keras_model: keras.Model | None = None

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return dataclasses.asdict(cls.config_class())

    def _model(self) -> keras.Model:
        if self.keras_model is None:
            raise RuntimeError(f"{self.name} must be fitted before use")
        return self.keras_model

    def score(self, batch: QueryBatch) -> np.ndarray:
        from keras import ops

        users = batch.users.astype(np.int32)
        return ops.convert_to_numpy(self._model().score_all(users)).astype(np.float32)

    def get_config(self) -> dict[str, Any]:
        return dataclasses.asdict(self.config)

    def save(self, directory: str) -> None:
        # Keras writes and reads .keras archives at URIs (gs://…) through tf.io.gfile itself.
        self._model().save(storage.join(directory, "model.keras"))
        storage.write_text(storage.join(directory, "hparams.json"), json.dumps(self.get_config(), indent=2))

    @classmethod
    def load(cls, directory: str, config: dict[str, Any]) -> KerasRecommender:
        import keras

        recommender = cls(**config)
        recommender.keras_model = keras.models.load_model(storage.join(directory, "model.keras"))
        return recommender
