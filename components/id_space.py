"""Scoring a model in another id space: the latest blessed model against a refreshed vocabulary.

Every model works on integer indices of the vocabularies it was trained with (Transform's, by
frequency). When the data is refreshed, the next run's vocabularies differ: new items and users
appear, and the indices of the old ones move. Comparing the candidate with the latest blessed model
must therefore go through **raw ids**, never through indices. The Trainer writes the model's
vocabularies next to its weights (`ModelVocabulary`, `recommender/vocabulary.json`), and
`InVocabulary` lets that model score the queries of a stream over any other vocabulary:

- contexts are re-encoded into the model's item indices; events whose item the model does not know
  are dropped from the context (as TF Serving drops unknown ids), each user's remaining events are
  laid out in the model's canonical tie order (`canonical_order` by *its* item index, as serving
  would), and positions and session starts are recomputed over the remaining events. Sessions stay
  the stream's: a dropped event neither opens nor closes one (the stream knows the user was active;
  serving, which sees only the known ids, would cut at a gap the dropped event bridged);
- score rows come back onto the stream's catalogue by raw id: catalogue items the model does not
  know score -inf (it can never recommend them; the evaluation counts a relevant -inf item as a miss),
  and items the model knows that left the catalogue are not ranked;
- users: models that score from the visible history alone (every model with a TF Serving export —
  all the pipeline pushes — and Pop, S-Pop, Item-KNN) never read a user's index except to find the
  history in the query's sequences, so a query's user keeps the stream's index there, whether the
  model knew the user or not. Models that read users (user embeddings: BPR-MF, MF, and any model not
  listed as history-only, to be safe) get the user's index in *their* vocabulary; a user they never
  saw cannot be scored and the query's whole row is -inf (every target a miss).

Nothing here is approximate: a vocabulary that does not fit the model's scores is an error, never a
silent shift of every score onto the wrong item.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from movierec.data.stream import lookup_ids
from movierec.models.base import QueryBatch, Recommender, UserSequences, canonical_order
from movierec.serving.export import HistoryScorable

VOCABULARY_FILE = "vocabulary.json"  # inside the Model artifact's recommender/ folder
_FORMAT = 1

#: Registry models without a serving export that still ignore who the user is (they read only the
#: query's visible events). Models not named here and without a serving export are assumed to read
#: users: mapping an unknown user onto another user's embedding would be a silent misalignment.
HISTORY_ONLY_MODELS = frozenset({"pop", "spop", "itemknn"})


def reads_users(model: Recommender) -> bool:
    """Whether the model's scores depend on the query's user index beyond finding its history."""
    return not (isinstance(model, HistoryScorable) or getattr(model, "name", None) in HISTORY_ONLY_MODELS)


def _as_ids(values: Any, what: str) -> np.ndarray:
    ids = np.asarray([v.decode() if isinstance(v, bytes) else str(v) for v in values], dtype=str)
    if len(np.unique(ids)) != len(ids):
        raise ValueError(f"the {what} vocabulary repeats ids: two indices would share one raw id")
    return ids


@dataclass(frozen=True)
class ModelVocabulary:
    """The raw ids of a model's item and user indices: `items[i]` is the raw id of item index i."""

    items: np.ndarray
    users: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", _as_ids(self.items, "item"))
        object.__setattr__(self, "users", _as_ids(self.users, "user"))

    def save(self, directory: str) -> None:
        """Writes `directory/vocabulary.json` (a local path or a URI such as gs://…)."""
        tf.io.gfile.makedirs(directory)
        payload = {"format": _FORMAT, "item_ids": self.items.tolist(), "user_ids": self.users.tolist()}
        with tf.io.gfile.GFile(os.path.join(directory, VOCABULARY_FILE), "w") as handle:
            handle.write(json.dumps(payload))

    @classmethod
    def load(cls, directory: str) -> ModelVocabulary | None:
        """The vocabulary saved in `directory`, or None when there is none (models trained before the
        Trainer wrote it: they cannot be compared safely on other data)."""
        path = os.path.join(directory, VOCABULARY_FILE)
        if not tf.io.gfile.exists(path):
            return None
        with tf.io.gfile.GFile(path) as handle:
            payload = json.loads(handle.read())
        if payload.get("format") != _FORMAT:
            raise ValueError(f"{path}: unknown vocabulary format {payload.get('format')!r}")
        try:
            return cls(payload["item_ids"], payload["user_ids"])
        except (KeyError, ValueError) as error:
            raise ValueError(f"{path}: {error}") from error


@dataclass(frozen=True)
class _Reencoded:
    """A stream's sequences in the model's id space, and how to move its queries there."""

    source: UserSequences  # kept so the cache is keyed on the object itself, not a reusable id()
    sequences: UserSequences  # over the model's item indices; users as `user_index` says
    kept_before: np.ndarray  # [n_source_events + 1]: source events kept before each source row
    user_index: np.ndarray  # source user -> user index in `sequences` (-1: the model cannot score)


class InVocabulary:
    """A recommender trained on `vocabulary` that scores queries of a stream whose item and user
    indices are `item_ids`/`user_ids` (raw ids in the stream's index order). See the module doc."""

    def __init__(
        self,
        model: Recommender,
        vocabulary: ModelVocabulary,
        item_ids: np.ndarray,
        user_ids: np.ndarray,
    ) -> None:
        self.model = model
        self.vocabulary = vocabulary
        self.name = f"{getattr(model, 'name', type(model).__name__)} (own vocabulary)"
        target_items, target_users = _as_ids(item_ids, "stream item"), _as_ids(user_ids, "stream user")
        self.n_items = len(target_items)
        # stream item index -> model item index (-1: unknown to the model), and back for the scores
        self.item_to_model = lookup_ids(vocabulary.items, target_items)
        self.known_items = np.flatnonzero(self.item_to_model >= 0)
        self.reads_users = reads_users(model)
        if self.reads_users:
            self.user_to_model = lookup_ids(vocabulary.users, target_users)
        else:  # the stream's own index: it only locates the history in the re-encoded sequences
            self.user_to_model = np.arange(len(target_users), dtype=np.int64)
        self.n_model_users = len(vocabulary.users) if self.reads_users else len(target_users)
        self._cache: _Reencoded | None = None

    def coverage(self) -> dict[str, int]:
        """How much of the stream's catalogue and users the model knows (recorded with the results)."""
        return {
            "catalogue_items": self.n_items,
            "items_unknown_to_model": int(self.n_items - len(self.known_items)),
            "model_items_not_in_catalogue": int(len(self.vocabulary.items) - len(self.known_items)),
            "users_unknown_to_model": int((self.user_to_model < 0).sum()),
            "model_reads_users": int(self.reads_users),
        }

    def _reencode(self, source: UserSequences) -> _Reencoded:
        if self._cache is not None and self._cache.source is source:
            return self._cache  # evaluation scores one stream block by block: re-encode it once
        if source.n_users != len(self.user_to_model):
            raise ValueError(
                f"the sequences hold {source.n_users} users but the stream vocabulary given to "
                f"{self.name} has {len(self.user_to_model)}"
            )
        if len(source.items) and int(source.items.max()) >= self.n_items:
            raise ValueError(f"the sequences name item indices beyond the {self.n_items}-item catalogue")
        users = source.users
        model_items = self.item_to_model[source.items]
        model_users = self.user_to_model[users]
        keep = (model_items >= 0) & (model_users >= 0)
        kept_before = np.r_[0, np.cumsum(keep)].astype(np.int64)
        # Sessions are the source's (a dropped event does not end one): number them, keep the numbers.
        session = np.cumsum(source.session_start | _user_firsts(source))
        rows = np.flatnonzero(keep)
        rows = rows[canonical_order(model_users[rows], source.timestamps[rows], model_items[rows])]
        new_users = model_users[rows]
        opens = np.r_[True, (session[rows][1:] != session[rows][:-1]) | (new_users[1:] != new_users[:-1])]
        counts = np.bincount(new_users, minlength=self.n_model_users)
        sequences = UserSequences(
            indptr=np.r_[0, np.cumsum(counts)].astype(np.int64),
            items=model_items[rows].astype(np.int32),
            ratings=source.ratings[rows],
            timestamps=source.timestamps[rows],
            session_start=opens[: len(rows)],
        )
        self._cache = _Reencoded(source, sequences, kept_before, self.user_to_model)
        return self._cache

    def score(self, batch: QueryBatch) -> np.ndarray:
        """Scores [len(batch), n_items] over the stream's catalogue (-inf where the model cannot
        recommend)."""
        encoded = self._reencode(batch.sequences)
        source = batch.sequences
        users = np.asarray(batch.users, dtype=np.int64)
        base = source.indptr[users]
        positions = np.asarray(batch.positions, dtype=np.int64)
        starts = np.asarray(batch.session_starts, dtype=np.int64)
        _check_at_tie_starts(source, users, positions, "position")
        _check_at_tie_starts(source, users, starts, "session start")
        out = np.full((len(batch), self.n_items), -np.inf, dtype=np.float32)
        scorable = np.flatnonzero(encoded.user_index[users] >= 0)
        if len(scorable) == 0 or len(self.known_items) == 0:
            return out
        base = base[scorable]
        # The re-encoded sequence holds, in front, exactly the kept events before the position: a
        # position is the start of a tie group, and re-ordering happens only within tie groups.
        moved = QueryBatch(
            encoded.user_index[users[scorable]],
            encoded.kept_before[base + positions[scorable]] - encoded.kept_before[base],
            encoded.kept_before[base + starts[scorable]] - encoded.kept_before[base],
            encoded.sequences,
        )
        scores = np.asarray(self.model.score(moved))
        if scores.shape != (len(scorable), len(self.vocabulary.items)):
            raise ValueError(
                f"{self.name} returned scores of shape {scores.shape} but its vocabulary has "
                f"{len(self.vocabulary.items)} items: the saved vocabulary is not the model's"
            )
        out[np.ix_(scorable, self.known_items)] = scores[:, self.item_to_model[self.known_items]]
        return out


def _user_firsts(sequences: UserSequences) -> np.ndarray:
    firsts = np.zeros(len(sequences.items), dtype=bool)
    firsts[sequences.indptr[:-1][np.diff(sequences.indptr) > 0]] = True
    return firsts


def _check_at_tie_starts(sequences: UserSequences, users: np.ndarray, cut: np.ndarray, what: str) -> None:
    """Every query builder cuts a context at the start of a tie group (movierec.data.stream); re-encoding
    relies on it, so a cut inside a group is refused rather than moved."""
    base = sequences.indptr[users]
    lengths = sequences.indptr[users + 1] - base
    if ((cut < 0) | (cut > lengths)).any():
        raise ValueError(f"a query {what} lies outside its user's events")
    inside = np.flatnonzero(cut < lengths)
    rows = base[inside] + cut[inside]
    if (sequences.tie_groups[0][rows] != rows).any():
        raise ValueError(f"a query {what} falls inside a same-timestamp tie group")
