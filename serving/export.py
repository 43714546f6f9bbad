"""SavedModels that TF Serving loads: raw ids in, top-K item ids and scores out.

The export is a plain `tf.Module` that holds the Keras 3 scoring model and, next to it, the
tensorflow-transform layer (a tf_keras object: it is attached to the module, never mixed into Keras 3
layers). Signatures:
- `serving_default(examples)`: serialized tf.Example strings, each with `item_ids` — the user's or
  session's items so far, raw ids — and optionally `timestamps` (int64 seconds, one per item). With
  timestamps the history is read exactly as evaluation reads a user's stream: in time order, same-second
  events in the canonical order (by item index, `movierec.models.base.canonical_order`), sessions split
  at pauses longer than the model's session gap; without them the items are taken oldest first as sent,
  as one session. The model then applies its own context rule and history cap (`max_history`), so the
  served top-K equals the evaluated top-K for the same history. Returns `item_ids` [B, K] (raw ids),
  `scores` [B, K], `unknown_ids` [B] (how many sent ids the vocabulary lacks: they are dropped; an
  empty id counts as unknown) and `history_length` [B] (the known items read).
- `recommend(item_ids, timestamps, k, exclude)`: the same ranking from tensors: `item_ids` string
  [B, T] padded with "" (padding, never an id), `timestamps` int64 [B, T] (a row's sent items all
  timed, or none: negative) or [B, 0], `k` int32 [B] clamped to [0, n_items], `exclude` string [B, E]
  ("" padded; [B, 0]: none) → `item_ids` [B, max k], `scores`, `unknown_ids`, `history_length`; beyond
  a row's k, or where no candidate is left, item "" with score -inf.
- `update_state(state, session_length, last_timestamp, item_ids, timestamps, k, exclude)`: a session
  served from its state, so a new event costs one GRU step, not a re-read of the history: `state`
  float32 [B, n_layers × hidden] (a previous answer's; [B, 0]: a new session), `session_length` int32
  [B] and `last_timestamp` int64 [B] (-1: none) as that answer returned them, the NEW events as in
  `recommend` → `state`, `session_length`, `last_timestamp`, `item_ids`, `scores`, `unknown_ids`,
  `history_length` (new known items read). The first new event continues the state's session unless a
  pause longer than the session gap separates it from `last_timestamp` (then, as later pauses, it opens
  a new one, zeroing the state where the model reads only the current session). Events at or before
  `last_timestamp` are refused (INVALID_ARGUMENT): one second's events are unordered and must come in
  one request. Only the new events are excluded from the answer: send the earlier ones in `exclude`.
  The answer equals `recommend`'s on the whole history while the context holds at most `max_history`
  events (`session_length` tells; beyond it the state remembers more than the capped evaluation reads).
- `transform_features(examples)`: interaction Examples → the Transform outputs, dense (for the
  Evaluator and for checking training/serving skew).

Every item of the history is excluded from the answer, however long the history (the scorer's cap
limits what the GRU reads, not what is excluded). The GRU runs over the batch's longest known history
(capped), never a fixed padding. A row without a known item (all unknown, a misnamed feature, nothing
sent) gets the zero-state ranking (the output bias), told apart by `unknown_ids` and `history_length`.
Requests that cannot be answered fail with INVALID_ARGUMENT naming the field (and, for `timestamps`,
the rows); bytes that are not a tf.Example fail the request in `ParseExampleV2`, which quotes them.
The history is built with ops that have GPU kernels (int64 scatters, int32 segment sums; no ragged
kernels), and every export carries warmup requests and is written atomically (`warmup.py`).

Rating models with stored state (RRN, LSTM+CNN, IARN) have their own export,
`rating_export.export_rating_model` (`predict_rating`/`serving_default`, `recommend`; RRN's
`update_state`, IARN's `explain`); `export_for_serving` dispatches.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import keras
import numpy as np
import tensorflow as tf

from movierec.constants import DEFAULT_SESSION_GAP
from movierec.serving.rating_export import (
    ITEM_FEATURE,
    ITEM_INDEX,
    USER_FEATURE,
    dense_outputs,
    export_rating_model,
    rating_servable,
)
from movierec.serving.warmup import example, interaction_example, predict_log, sample_event, save_servable

DEFAULT_TOP_K = 100


@runtime_checkable
class HistoryScorable(Protocol):
    """Models that score the catalogue from a history of item indices (GRU4Rec and later models)."""

    def history_scorer(self) -> keras.Model:
        """Keras 3 model: {"items": int32 [B, T] item indices, oldest first, left-padded with -1;
        "session_start": bool [B, T], true where an event opens a session} → scores [B, n]. It applies
        the model's own context rule and history cap, as `score()` does in evaluation."""
        ...


def _row_ids(row_splits: tf.Tensor) -> tf.Tensor:
    """int64 row splits [B + 1] → the row of each value [n] (a scatter and a cumsum: no RaggedRange
    or bincount, which have no GPU kernels)."""
    n = row_splits[-1]
    inner = tf.reshape(row_splits[1:-1], [-1, 1])
    marks = tf.scatter_nd(inner, tf.ones_like(inner[:, 0]), tf.reshape(n + 1, [1]))
    return tf.cumsum(marks[:-1])


def _counts(rows: tf.Tensor, n_rows: tf.Tensor) -> tf.Tensor:
    """How many of `rows` [m] (int64) fall in each of `n_rows` rows: int64 [B] (summed as int32,
    which has a GPU kernel; int64 has none)."""
    return tf.cast(tf.math.unsorted_segment_sum(tf.ones_like(rows, tf.int32), rows, n_rows), tf.int64)


def _rows_to_grid(
    rows: tf.Tensor, values: tf.Tensor, lengths: tf.Tensor, width: tf.Tensor, fill: int
) -> tf.Tensor:
    """Int64 values grouped by row (`rows` [m] int64, non-decreasing; `values` [m]; `lengths` [B] the
    count per row, at most `width`) → [B, width] int64, a row's values at columns 0, 1, … in order, the
    other columns `fill`. One scatter; int64 throughout: the fill and the scatter have GPU kernels for
    it (not for int32 or bool)."""
    column = tf.range(tf.size(rows, out_type=tf.int64)) - tf.gather(tf.cumsum(lengths, exclusive=True), rows)
    grid = tf.fill(tf.stack([tf.size(lengths, out_type=tf.int64), width]), tf.constant(fill, tf.int64))
    return tf.tensor_scatter_nd_update(grid, tf.stack([rows, column], axis=1), values)


class ServingModule(tf.Module):
    """The GRU4Rec servable (see the module for the signatures, their inputs and answers)."""

    def __init__(
        self,
        scorer: keras.Model,
        transform_output,
        item_vocabulary: np.ndarray,
        top_k: int,
        session_gap: int = DEFAULT_SESSION_GAP,
    ):
        super().__init__()
        self.scorer = scorer
        self.tft_layer = transform_output.transform_features_layer()
        self.item_vocabulary = tf.constant(item_vocabulary.astype(object).astype(bytes))
        self.n_items = len(item_vocabulary)
        self.top_k = min(top_k, self.n_items)
        self.session_gap = int(session_gap)
        self._raw_feature_spec = transform_output.raw_feature_spec()

    def lookup(self, ids: tf.Tensor) -> tf.Tensor:
        """Raw item ids [n] → the model's int64 indices [n]; `n_items` (the OOV bucket) where unknown."""
        out = self.tft_layer({ITEM_FEATURE: tf.reshape(ids, [-1, 1])})[ITEM_INDEX]
        return tf.cast(tf.reshape(out, [-1]), tf.int64)

    def without_seen(
        self, scores: tf.Tensor, history: tf.Tensor, exclude: tf.Tensor | None = None
    ) -> tf.Tensor:
        """scores [B, n_items] with -inf where the item is in the row's history or `exclude` ([B, E]
        indices, -1 or `n_items` where none): one scatter of the listed pairs into the scores, no
        [B, n_items] mask and no B × T × n one-hot."""
        listed = history if exclude is None else tf.concat([history, tf.cast(exclude, history.dtype)], 1)
        pairs = tf.where((listed >= 0) & (listed < self.n_items))
        items = tf.gather_nd(listed, pairs)
        coordinates = tf.stack([pairs[:, 0], tf.cast(items, tf.int64)], axis=1)
        return tf.tensor_scatter_nd_update(scores, coordinates, tf.fill(tf.shape(items), -np.inf))

    def ranked(
        self, history: tf.Tensor, session_start: tf.Tensor, k: tf.Tensor, exclude: tf.Tensor | None = None
    ) -> dict[str, tf.Tensor]:
        """The scorer's catalogue scores without the seen and excluded items → the top max(k) per
        row: `item_ids` [B, K] (raw), `scores` [B, K]; beyond a row's own k, or where no candidate is
        left, item id "" and score -inf. `k` [B] int32, clamped to [0, n_items]."""
        scores = self.scorer({"items": history, "session_start": session_start})
        return self.top(scores, history, k, exclude)

    def top(
        self, scores: tf.Tensor, history: tf.Tensor, k: tf.Tensor, exclude: tf.Tensor | None = None
    ) -> dict[str, tf.Tensor]:
        """`ranked`'s answer from catalogue scores [B, n_items]: the history's and the excluded items
        removed, the top max(k) per row."""
        scores = tf.cast(scores, tf.float32)
        scores = self.without_seen(scores, history, exclude)
        k = tf.clip_by_value(k, 0, self.n_items)
        width = tf.reduce_max(tf.concat([k, [0]], axis=0))  # 0 for an empty batch
        values, indices = tf.math.top_k(scores, k=width)
        beyond = tf.range(width)[None, :] >= k[:, None]
        values = tf.where(beyond, tf.constant(-np.inf, tf.float32), values)
        item_ids = tf.where(tf.math.is_inf(values), b"", tf.gather(self.item_vocabulary, indices))
        return {"item_ids": item_ids, "scores": values}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(self, examples):
        parsed = tf.io.parse_example(
            examples,
            # int64 row partitions: `history` does its position arithmetic in int64 (default: int32)
            {
                "item_ids": tf.io.RaggedFeature(tf.string, row_splits_dtype=tf.int64),
                "timestamps": tf.io.RaggedFeature(tf.int64, row_splits_dtype=tf.int64),
            },
        )
        ids, times = parsed["item_ids"], parsed["timestamps"]
        n_rows = tf.size(examples, out_type=tf.int64)
        id_rows, time_rows = _row_ids(ids.row_splits), _row_ids(times.row_splits)
        n_sent, n_times = _counts(id_rows, n_rows), _counts(time_rows, n_rows)
        with tf.control_dependencies([_timestamps_check(n_sent, n_times)]):  # before any scatter
            index, flat_times = self.lookup(ids.flat_values), tf.identity(times.flat_values)
        # the Examples as `recommend`'s [B, T] request: every listed id is sent (an empty one too: it
        # is unknown), a timed row's k-th timestamp beside its k-th id (the check: one per id)
        width = tf.reduce_max(tf.concat([n_sent, tf.zeros([1], tf.int64)], axis=0))
        grid_index = _rows_to_grid(id_rows, index, n_sent, width, fill=self.n_items)
        grid_times = _rows_to_grid(time_rows, flat_times, n_times, width, fill=-1)
        sent = tf.range(width)[None, :] < n_sent[:, None]
        history, session_start, unknown_ids, _ = self.read_history(
            grid_index, sent, grid_times, tf.cast(n_sent, tf.int32), tf.cast(n_times, tf.int32)
        )
        k = tf.fill(tf.shape(examples), tf.constant(self.top_k, tf.int32))
        out = self.ranked(history, session_start, k)
        return {**out, "unknown_ids": unknown_ids, "history_length": _lengths(history)}

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None], tf.string, name="item_ids"),
            tf.TensorSpec([None, None], tf.int64, name="timestamps"),
            tf.TensorSpec([None], tf.int32, name="k"),
            tf.TensorSpec([None, None], tf.string, name="exclude"),
        ]
    )
    def recommend(self, item_ids, timestamps, k, exclude):
        history, session_start, unknown_ids, _, excluded = self.request_history(
            "recommend", item_ids, timestamps, k, exclude
        )
        out = self.ranked(history, session_start, k, excluded)
        return {**out, "unknown_ids": unknown_ids, "history_length": _lengths(history)}

    def request_history(self, signature: str, item_ids, timestamps, k, exclude) -> tuple:
        """`recommend`'s (and `update_state`'s) tensor inputs checked and read by `read_history` (as
        `serve` reads the parsed Examples) — (indices, session_start) [B, T] left-padded (-1 / False)
        to the longest known history, `unknown_ids` [B] int32, the known items' timestamps [B, T] (-1:
        padding or untimed) — plus the excluded indices [B, E] (-1 where none). "" entries are
        padding; a row whose sent entries all have a negative timestamp has none."""
        n_rows = tf.shape(item_ids)[0]
        checks = [
            _check(
                tf.shape(k)[0] == n_rows,
                [f"{signature}: request field 'k' needs one entry per row of 'item_ids'"],
            ),
            _check(
                ((tf.shape(timestamps)[1] == 0) | (tf.shape(timestamps)[1] == tf.shape(item_ids)[1]))
                & (tf.shape(timestamps)[0] == n_rows),
                [f"{signature}: request field 'timestamps' must be [B, 0] (none) or the shape of 'item_ids'"],
            ),
            _check(
                tf.shape(exclude)[0] == n_rows,
                [f"{signature}: request field 'exclude' needs a row per row of 'item_ids' ([B, 0]: none)"],
            ),
        ]
        with tf.control_dependencies(checks):
            sent = item_ids != b""
        width = tf.shape(item_ids)[1]
        # timestamps [B, 0]: none (-1 columns appended, no branch); else one per entry, the padding's
        # ("" entries) ignored; a row whose sent entries all have a negative timestamp has none
        untimed = tf.fill(tf.stack([n_rows, width - tf.shape(timestamps)[1]]), tf.constant(-1, tf.int64))
        times = tf.concat([timestamps, untimed], axis=1)
        n_sent = tf.reduce_sum(tf.cast(sent, tf.int32), axis=1)
        n_times = tf.reduce_sum(tf.cast(sent & (times >= 0), tf.int32), axis=1)
        check = _timestamps_check(n_sent, n_times)
        with tf.control_dependencies([check]):
            index = self.lookup_2d(item_ids)
        history, session_start, unknown_ids, times = self.read_history(index, sent, times, n_sent, n_times)
        excluded = tf.where(exclude != b"", self.lookup_2d(exclude), tf.constant(-1, tf.int64))
        return history, session_start, unknown_ids, times, excluded

    def read_history(self, index, sent, times, n_sent, n_times) -> tuple:
        """The history every signature reads from its request, as evaluation reads a user's stream:
        item indices `index` [B, T] int64 (`n_items`: unknown), `sent` [B, T] (the entries the request
        holds), `times` [B, T] int64 (a timed row's timestamps; ignored in untimed rows), `n_sent` and
        `n_times` [B] int32 (a row's sent entries and timestamps: none or one per entry, checked
        before) → (indices, session_start) [B, T'] left-padded (-1 / False) to the batch's longest
        known history, `unknown_ids` [B] int32, the known items' timestamps [B, T'] (-1: padding or
        untimed). Known items in time order, same-second ones by item index (the canonical order);
        sessions split at pauses longer than the session gap in timed rows. Computed on the dense
        [B, T] request itself: a stable per-row sort that puts the dropped entries first (and, only
        when some row is timed, the canonical order before it), one batched gather; a short
        history's cost is its number of small ops."""
        width = tf.shape(index)[1]
        known = sent & (index < self.n_items)  # the OOV bucket is n_items: unknown ids are dropped
        unknown_ids = n_sent - tf.reduce_sum(tf.cast(known, tf.int32), axis=1)
        with_times = n_times > 0
        # without timestamps the request order is the time order (the column stands in)
        time = tf.where(with_times[:, None], times, tf.range(width, dtype=tf.int64)[None, :])
        columns = tf.stack([index, time, tf.cast(known, tf.int64)], axis=2)  # [B, T, 3], int64 for GPUs

        def canonical():
            # same-second events by item index, then by time (two stable sorts, last key first)
            order = tf.argsort(index, stable=True)
            by_time = tf.argsort(tf.gather(time, order, batch_dims=1), stable=True)
            order = tf.gather(order, by_time, batch_dims=1)
            return tf.gather(columns, order, batch_dims=1)

        # Untimed rows are already in that order: the usual request skips the sorts.
        columns = tf.cond(tf.reduce_any(with_times), canonical, lambda: columns)
        # the dropped entries first, the known ones after in order (top_k keeps equal keys in place),
        # then only the batch's longest known history: the columns before it hold dropped entries
        longest = tf.reduce_max(tf.concat([n_sent - unknown_ids, [0]], axis=0))
        order = tf.math.top_k(1 - tf.cast(columns[:, :, 2], tf.int32), k=width).indices[:, width - longest :]
        index, time, known = tf.unstack(tf.gather(columns, order, batch_dims=1), axis=2)
        valid = known > 0
        # a session opens at a row's first known item, and (timed rows) after a pause > session gap
        # (padded as bool: Pad has GPU kernels for bool, none for int64)
        after_valid = tf.pad(valid[:, :-1], [[0, 0], [1, 0]])
        pause = tf.pad(time[:, 1:] - time[:, :-1] > self.session_gap, [[0, 0], [1, 0]])
        session_start = valid & (~after_valid | (with_times[:, None] & pause))
        history = tf.where(valid, tf.cast(index, tf.int32), -1)
        times = tf.where(valid & with_times[:, None], time, tf.constant(-1, tf.int64))
        return history, session_start, unknown_ids, times

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None], tf.float32, name="state"),
            tf.TensorSpec([None], tf.int32, name="session_length"),
            tf.TensorSpec([None], tf.int64, name="last_timestamp"),
            tf.TensorSpec([None, None], tf.string, name="item_ids"),
            tf.TensorSpec([None, None], tf.int64, name="timestamps"),
            tf.TensorSpec([None], tf.int32, name="k"),
            tf.TensorSpec([None, None], tf.string, name="exclude"),
        ]
    )
    def update_state(self, state, session_length, last_timestamp, item_ids, timestamps, k, exclude):
        n_rows = tf.shape(item_ids)[0]
        width = self.scorer.state_size
        checks = [
            _check(
                (tf.shape(state)[0] == n_rows) & ((tf.shape(state)[1] == 0) | (tf.shape(state)[1] == width)),
                [
                    f"update_state: request field 'state' must be [B, {width}] (the 'state' a previous "
                    "answer returned) or [B, 0] (a new session), one row per row of 'item_ids'"
                ],
            ),
            _check(
                (tf.shape(session_length)[0] == n_rows) & (tf.shape(last_timestamp)[0] == n_rows),
                [
                    "update_state: request fields 'session_length' and 'last_timestamp' need one entry "
                    "per row of 'item_ids'"
                ],
            ),
        ]
        with tf.control_dependencies(checks):  # [B, 0]: zeros appended (no branch)
            state = tf.concat([state, tf.zeros(tf.stack([n_rows, width - tf.shape(state)[1]]))], axis=1)
        history, session_start, unknown_ids, times, excluded = self.request_history(
            "update_state", item_ids, timestamps, k, exclude
        )
        valid = history >= 0
        n_new = _lengths(history)
        t = tf.shape(history)[1]
        first_column = t - n_new  # left-padded: a row's first new event
        column = tf.range(t)[None, :]
        first = tf.equal(column, first_column[:, None]) & valid
        first_time = tf.reduce_max(tf.where(first, times, tf.constant(-1, tf.int64)), axis=1)
        last_time = tf.reduce_max(times, axis=1)  # the events are in time order; -1: untimed
        timed = (first_time >= 0) & (last_timestamp >= 0)
        # Same-second events are unordered (no event is context for another of its second), so one
        # second's events must come in one request, where the canonical order applies.
        in_order = ~timed | (first_time > last_timestamp) | (n_new == 0)
        check = _check(
            tf.reduce_all(in_order),
            [
                "update_state: request field 'timestamps': events at or before the row's "
                "'last_timestamp' (send one second's events in one request, in time order); rows",
                tf.where(~in_order)[:, 0],
            ],
        )
        # The first new event continues the state's session unless the state is new (nothing read)
        # or a pause longer than the session gap separates it from the last event read.
        continues = (session_length > 0) & ~(timed & (first_time - last_timestamp > self.session_gap))
        with tf.control_dependencies([check]):
            session_start = session_start & ~(first & continues[:, None])
        new_state, scores = self.scorer.advance(state, tf.maximum(history, 0), session_start, valid)
        # events of the current session: those from its last start in this request, else all before
        opened = session_start & valid if self.scorer.resets_at_sessions else tf.zeros_like(valid)
        last_open = tf.reduce_max(tf.where(opened, column, -1), axis=1)
        since_open = tf.reduce_sum(tf.cast(valid & (column >= last_open[:, None]), tf.int32), axis=1)
        length = tf.where(last_open >= 0, since_open, session_length + n_new)
        out = self.top(scores, history, k, excluded)
        return {
            **out,
            "state": tf.cast(new_state, tf.float32),
            "session_length": length,
            "last_timestamp": tf.where(last_time >= 0, last_time, last_timestamp),
            "unknown_ids": unknown_ids,
            "history_length": n_new,
        }

    def lookup_2d(self, ids: tf.Tensor) -> tf.Tensor:
        return tf.reshape(self.lookup(tf.reshape(ids, [-1])), tf.shape(ids, out_type=tf.int64))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform_features(self, examples):
        parsed = tf.io.parse_example(examples, self._raw_feature_spec)
        return dense_outputs(self.tft_layer(parsed))


def _check(condition: tf.Tensor, message: list) -> tf.Operation:
    """An Assert whose message holds only strings and int32 (int64 values are cast): TF then emits
    one Assert op instead of a conditional (`If`) around it, which costs a function call per
    request; the request fails with INVALID_ARGUMENT quoting `message`."""
    data = [
        m if isinstance(m, str) or m.dtype in (tf.string, tf.int32) else tf.cast(m, tf.int32) for m in message
    ]
    return tf.debugging.Assert(condition, data, summarize=20)


def _timestamps_check(n_sent: tf.Tensor, n_times: tf.Tensor) -> tf.Operation:
    """Each row has no timestamps or one per sent item (`n_sent`, `n_times` [B]), else the request
    fails naming the rows and both counts."""
    consistent = tf.equal(n_times, 0) | tf.equal(n_times, n_sent)
    return _check(
        tf.reduce_all(consistent),
        [
            "request field 'timestamps': give none, or one per entry of 'item_ids'; rows",
            tf.where(~consistent)[:, 0],
            "fail; timestamps per row:",
            n_times,
            "items per row:",
            n_sent,
        ],
    )


def _lengths(history: tf.Tensor) -> tf.Tensor:
    """[B] int32: the known items per row of a left-padded history."""
    return tf.reduce_sum(tf.cast(history >= 0, tf.int32), axis=1)


def export_for_serving(
    model,
    transform_output,
    item_vocabulary: np.ndarray,
    export_dir: str,
    top_k: int = DEFAULT_TOP_K,
    session_gap: int = DEFAULT_SESSION_GAP,
    user_vocabulary: np.ndarray | None = None,
    rated=None,
) -> bool:
    """Writes the SavedModel; returns False (and writes nothing) for models without a serving export
    (e.g. user-id baselines), so the pipeline never pushes a half export.

    - `HistoryScorable` models (GRU4Rec): `ServingModule`; `session_gap` must be the one the model was
      evaluated with.
    - rating models with a serving graph (RRN, LSTM+CNN, IARN; `rating_export.rating_servable`):
      `rating_export.export_rating_model`, which needs
      `user_vocabulary` (the raw ids of the model's user indices) and `rated` (the (user, item)
      indices of the training events, e.g. the Trainer's `TrainingData.sequences`: `recommend` never
      returns a rated item); a missing one is an error that names it."""
    if not isinstance(model, HistoryScorable):
        if rating_servable(model):
            return export_rating_model(
                model, transform_output, item_vocabulary, user_vocabulary, export_dir, rated=rated
            )
        return False
    module = ServingModule(model.history_scorer(), transform_output, item_vocabulary, top_k, session_gap)
    signatures = {
        "serving_default": module.serve,
        "recommend": module.recommend,
        "update_state": module.update_state,
        "transform_features": module.transform_features,
    }
    warmup = history_warmup(
        getattr(model, "name", "gru4rec"), module, item_vocabulary, user_vocabulary, rated
    )
    save_servable(module, export_dir, signatures, warmup)
    return True


WARMUP_HISTORY = 10


def history_warmup(model_name: str, module: ServingModule, item_vocabulary, user_vocabulary, rated) -> list:
    """One warmup request per signature, from the training data: the latest WARMUP_HISTORY events of
    a real user (`rated`, a `UserSequences`, when given; else the vocabulary's first ids, Transform's
    most frequent, without timestamps)."""
    event = sample_event(rated, WARMUP_HISTORY)
    if event is None:
        items = [str(i) for i in item_vocabulary[:WARMUP_HISTORY]]
        times, user, rating = [], "", 0.0
    else:
        items = [str(item_vocabulary[i]) for i in event["items"]]
        times = event["timestamps"] or []
        user = str(user_vocabulary[event["user"]]) if user_vocabulary is not None else ""
        rating = event["rating"] or 0.0
    history = {"item_ids": items, **({"timestamps": times} if times else {})}
    interaction = {
        USER_FEATURE: user,
        ITEM_FEATURE: items[-1],
        "rating": float(rating),
        "timestamp": int(times[-1]) if times else 0,
    }
    return [
        predict_log(model_name, "serving_default", {"examples": [example(history)]}),
        predict_log(
            model_name,
            "recommend",
            {
                "item_ids": np.array([items], dtype=object),
                "timestamps": np.array([times] if times else np.zeros((1, 0)), dtype=np.int64),
                "k": np.array([10], np.int32),
                "exclude": np.zeros((1, 0), dtype=object),
            },
        ),
        predict_log(
            model_name,
            "update_state",
            {
                "state": np.zeros((1, 0), np.float32),
                "session_length": np.zeros([1], np.int32),
                "last_timestamp": np.full([1], -1, np.int64),
                "item_ids": np.array([items], dtype=object),
                "timestamps": np.array([times] if times else np.zeros((1, 0)), dtype=np.int64),
                "k": np.array([10], np.int32),
                "exclude": np.zeros((1, 0), dtype=object),
            },
        ),
        predict_log(
            model_name,
            "transform_features",
            {"examples": [interaction_example(module._raw_feature_spec, interaction)]},
        ),
    ]
