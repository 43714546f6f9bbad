"""SavedModels of rating models (RRN first) for TF Serving and TFX's stock Evaluator (TFMA).

A rating model predicts r̂(user, item, time) from stored per-user and per-movie state that new events
advance without retraining (RRN, Wu et al. WSDM 2017, §4.5). The export is a `tf.Module` holding the
Keras 3 model (weights and state variables), the tensorflow-transform layer that maps raw ids to the
model's indices (`user_id` → `user_index`, `item_id` → `item_index`; index == vocabulary size is the
OOV bucket, i.e. an unknown id), and the items every known user has rated. Raw ids in, raw ids out.

Signatures (`saved_model_cli show --all --dir <export>` lists them):

- `predict_rating` and `serving_default` (the same function, so TFMA can use either):
  `examples`: string [B], serialized tf.Example interactions as ExampleGen writes them. Read:
  `user_id` (bytes), `item_id` (bytes), `timestamp` (int64 seconds); `rating` and every side feature
  are ignored. → `predicted_rating`: float32 [B]. For known ids it is
  `RRNRecommender.predict_ratings(users, items, timestamps)` (what evaluation computes). A row never
  fails the batch for its values: a missing id is an unknown id, a missing timestamp means the model's
  current time (`now()`: the latest event any state has read), extra values of a feature are ignored.
  (Bytes that are not a tf.Example at all fail the request in `ParseExampleV2`; TFMA parses the same
  Examples itself first.)
- `recommend`: `user_id` string [B], `k` int32 [] → `item_ids` string [B, k], `scores` float32 [B, k]:
  the whole catalogue ranked by predicted rating at `now()` (= `RRNRecommender.score` for a query
  without a later target), without the items the user has rated — the training events given to the
  export and every event `update_state` accepted since the servable was loaded. `k` is clamped to
  [0, catalogue size]; where fewer than k items are left, the row is padded with item id "" and score
  -inf. Ties: the lower model index first (`tf.math.top_k`), as a stable descending sort. `k` is a
  scalar, so REST clients send the columnar format (`{"inputs": {"user_id": [...], "k": 10}}`): the
  row format (`instances`) needs every input batched, and so does TF Serving's server-side batching.
- `update_state`: `user_id` string [N], `item_id` string [N], `rating` float32 [N], `timestamp` int64
  [N] → `accepted` bool [N], `reason` string [N] ("" where accepted). Feeds the accepted events through
  the LSTMs (§4.5) into the state variables (never a weight); rejects per event, with
  `models/rrn/state.py`'s rules and reason strings, unknown ids, ratings outside the training scale and
  timestamps earlier than the user's or the movie's state, and applies the rest. Arrays of different
  lengths fail the request with an error that names the fields.
- `transform_features`: `examples` → Transform's outputs (as `ServingModule`'s), e.g. for TFMA's
  `preprocessing_function_names`.

Fallbacks (documented, never an error): a known user and item get the full prediction; otherwise the
rating is μ + b_u (known user) + b_i (known item), clipped to the training scale — the dynamic and
the stationary interaction terms need both sides' vectors. `recommend` ranks the catalogue for an
unknown user by μ + b_i (the population ranking: the rating an average user is predicted to give),
removing nothing (no rated item of theirs is known).

What TF Serving cannot do here, honestly: `update_state` changes the variables of the *loaded*
servable only. TF Serving never writes variables back: a reload (a new version, a restart, another
replica) starts again from the exported states, and replicas behind a load balancer diverge. Lasting
updates mean feeding the events offline (`RRNRecommender.update_state`) and exporting a new version
(or retraining). Requests run concurrently and an update is not atomic with respect to them: a
prediction that runs during an `update_state` may see some of its steps. The rated-item lists grow by
every accepted event until the next export.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
import tensorflow as tf

from movierec.models.rrn.network import RRN
from movierec.models.rrn.state import REASONS
from movierec.serving.rrn_graph import RRNGraph

# Transform's vocabularies (pipeline/modules/transform.py): raw feature → index output
USER_FEATURE, USER_INDEX = "user_id", "user_index"
ITEM_FEATURE, ITEM_INDEX = "item_id", "item_index"


@runtime_checkable
class RatingServable(Protocol):
    """Rating models whose predictions come from stored per-user/per-movie state that new events
    advance without retraining (RRN; IARN and LSIC next). The export needs `keras_model` (the graph
    runs it); the methods are the offline twins of the signatures, which the tests compare with."""

    keras_model: Any

    def predict_ratings(
        self, users: np.ndarray, items: np.ndarray, timestamps: np.ndarray | None = None
    ) -> np.ndarray: ...

    def update_state(
        self, users: np.ndarray, items: np.ndarray, ratings: np.ndarray, timestamps: np.ndarray
    ) -> Any: ...

    def now(self) -> int: ...


def rating_graph(model: RatingServable) -> RRNGraph:
    """The graph ops of a rating model's Keras network (one per network class)."""
    if isinstance(model.keras_model, RRN):
        return RRNGraph(model.keras_model)
    name = type(model.keras_model).__name__
    raise TypeError(f"no TF Serving graph for {name}: add one to movierec.serving.rating_export")


def rated_pairs(rated: Any, n_users: int, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """(indptr [n_users + 1], items) int64: each user's distinct rated items, sorted, as CSR.
    `rated` is a `UserSequences` (its `users`, `items`) or a (users, items) pair of index arrays."""
    if rated is None:
        raise ValueError(
            "rated: the (user, item) indices of the events the model's states have read (the training "
            "events) are required: `recommend` must not return items a user has already rated"
        )
    users, items = (
        (rated.users, rated.items) if hasattr(rated, "items") and hasattr(rated, "users") else rated
    )
    users, items = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
    if users.shape != items.shape or users.ndim != 1:
        raise ValueError(
            f"rated: users and items must be 1-d and of one length, got {users.shape}, {items.shape}"
        )
    if len(users) and (
        users.min() < 0 or users.max() >= n_users or items.min() < 0 or items.max() >= n_items
    ):
        raise ValueError(
            f"rated: indices must lie in [0, {n_users}) × [0, {n_items}) (the model's id spaces)"
        )
    keys = np.unique(users * n_items + items)
    indptr = np.r_[0, np.cumsum(np.bincount(keys // n_items, minlength=n_users))].astype(np.int64)
    return indptr, (keys % n_items).astype(np.int64)


def _first(values: tf.RaggedTensor, default) -> tf.Tensor:
    """Each row's first value, `default` where the row is empty: [B] (plain gathers, no ragged op)."""
    starts, ends = values.row_splits[:-1], values.row_splits[1:]
    flat = values.flat_values
    padded = tf.concat([flat, tf.fill([1], tf.cast(default, flat.dtype))], axis=0)
    return tf.gather(padded, tf.where(ends > starts, starts, tf.size(flat, out_type=tf.int64)))


def _csr_rows(indptr: tf.Tensor, values: tf.Tensor, rows: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(query position, value) of every value of CSR rows `rows` [B] (int64): ragged gathers written
    with plain ops (no RaggedRange, which has no GPU kernel)."""
    starts = tf.gather(indptr, rows)
    lengths = tf.gather(indptr, rows + 1) - starts
    position = tf.repeat(tf.range(tf.size(rows, out_type=tf.int64)), lengths)
    offset = tf.range(tf.reduce_sum(lengths)) - tf.gather(tf.cumsum(lengths, exclusive=True), position)
    return position, tf.gather(values, tf.gather(starts, position) + offset)


class RatingServingModule(tf.Module):
    """The servable (see the module for the signatures and the fallbacks)."""

    def __init__(
        self,
        graph: RRNGraph,
        transform_output,
        item_vocabulary: np.ndarray,
        rated: tuple[np.ndarray, np.ndarray],
    ):
        super().__init__()
        self.graph = graph  # plain object: not tracked; its variables are the model's
        self.model = graph.model  # tracked: weights and state variables go into variables/
        self.tft_layer = transform_output.transform_features_layer()
        self._raw_feature_spec = transform_output.raw_feature_spec()
        self.n_users, self.n_items = graph.n_users, graph.n_items
        self.item_vocabulary = tf.constant(np.asarray(item_vocabulary).astype(object).astype(bytes))
        self.reasons = tf.constant(["", *REASONS])
        indptr, items = rated
        # the training events' rated items (fixed) and those of accepted updates (grow per request)
        self.rated_indptr = tf.Variable(indptr, trainable=False, name="rated_indptr")
        self.rated_items = tf.Variable(items, trainable=False, name="rated_items")
        self.fed_indptr = tf.Variable(
            np.zeros(self.n_users + 1, np.int64), trainable=False, name="fed_indptr"
        )
        self.fed_users = tf.Variable(
            np.zeros(0, np.int64), trainable=False, shape=tf.TensorShape([None]), name="fed_users"
        )
        self.fed_items = tf.Variable(
            np.zeros(0, np.int64), trainable=False, shape=tf.TensorShape([None]), name="fed_items"
        )

    # -- pieces ---------------------------------------------------------------------------------------

    def indices(self, features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Raw ids [n] → Transform's int64 indices [n] (n_users / n_items: unknown)."""
        out = self.tft_layer({name: tf.reshape(ids, [-1, 1]) for name, ids in features.items()})
        names = {USER_FEATURE: USER_INDEX, ITEM_FEATURE: ITEM_INDEX}
        return {name: tf.reshape(tf.cast(out[names[name]], tf.int64), [-1]) for name in features}

    def _known(self, index: tf.Tensor, n: int) -> tuple[tf.Tensor, tf.Tensor]:
        """(known mask, the index where known and 0 elsewhere: always safe to gather with)."""
        known = (index >= 0) & (index < n)
        return known, tf.where(known, index, tf.zeros_like(index))

    def ratings(self, users: tf.Tensor, items: tf.Tensor, timestamps: tf.Tensor) -> tf.Tensor:
        """Predicted ratings [n] with the fallbacks of the module for unknown users or items."""
        user_known, safe_users = self._known(users, self.n_users)
        item_known, safe_items = self._known(items, self.n_items)
        full = self.graph.predict(safe_users, safe_items, timestamps)
        fallback = self.graph.fallback(safe_users, safe_items, user_known, item_known)
        return tf.where(user_known & item_known, full, fallback)

    def rated_mask(self, users: tf.Tensor, known: tf.Tensor) -> tf.Tensor:
        """[B, n_items] True where the (known) user has rated the item: training events and accepted
        updates, from two CSR lists (no host-side mask)."""
        rows = tf.where(known, users, tf.zeros_like(users))
        coordinates = []
        for indptr, items in ((self.rated_indptr, self.rated_items), (self.fed_indptr, self.fed_items)):
            position, item = _csr_rows(indptr, items, rows)
            keep = tf.gather(known, position)
            coordinates.append(tf.stack([tf.boolean_mask(position, keep), tf.boolean_mask(item, keep)], 1))
        coordinates = tf.concat(coordinates, axis=0)
        shape = tf.stack([tf.size(users, out_type=tf.int64), self.n_items])
        return tf.scatter_nd(coordinates, tf.ones_like(coordinates[:, 0], tf.float32), shape) > 0

    def remember(self, users: tf.Tensor, items: tf.Tensor) -> None:
        """Adds accepted events' (user, item) to the rated lists, kept sorted by user with an indptr."""
        users = tf.concat([self.fed_users, users], axis=0)
        items = tf.concat([self.fed_items, items], axis=0)
        order = tf.argsort(users, stable=True)
        users, items = tf.gather(users, order), tf.gather(items, order)
        counts = tf.math.unsorted_segment_sum(tf.ones_like(users, tf.float32), users, self.n_users)
        indptr = tf.cumsum(tf.cast(counts, tf.int64))
        self.fed_indptr.assign(tf.concat([tf.zeros([1], tf.int64), indptr], axis=0))
        self.fed_users.assign(users)
        self.fed_items.assign(items)

    # -- signatures -----------------------------------------------------------------------------------

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def predict_rating(self, examples: tf.Tensor) -> dict[str, tf.Tensor]:
        spec = {
            USER_FEATURE: tf.io.RaggedFeature(tf.string, row_splits_dtype=tf.int64),
            ITEM_FEATURE: tf.io.RaggedFeature(tf.string, row_splits_dtype=tf.int64),
            "timestamp": tf.io.RaggedFeature(tf.int64, row_splits_dtype=tf.int64),
        }
        parsed = tf.io.parse_example(examples, spec)
        index = self.indices({name: _first(parsed[name], b"") for name in (USER_FEATURE, ITEM_FEATURE)})
        times = parsed["timestamp"]
        timestamps = tf.where(times.row_lengths() > 0, _first(times, 0), self.graph.now())
        return {"predicted_rating": self.ratings(index[USER_FEATURE], index[ITEM_FEATURE], timestamps)}

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="user_id"),
            tf.TensorSpec([], tf.int32, name="k"),
        ]
    )
    def recommend(self, user_id: tf.Tensor, k: tf.Tensor) -> dict[str, tf.Tensor]:
        known, users = self._known(self.indices({USER_FEATURE: user_id})[USER_FEATURE], self.n_users)
        personal = self.graph.score_all(users, self.graph.now())
        population = tf.broadcast_to(self.graph.population_scores()[None, :], tf.shape(personal))
        scores = tf.where(known[:, None], personal, population)
        scores = tf.where(self.rated_mask(users, known), tf.constant(-np.inf, tf.float32), scores)
        values, indices = tf.math.top_k(scores, k=tf.clip_by_value(k, 0, self.n_items))
        item_ids = tf.where(tf.math.is_inf(values), b"", tf.gather(self.item_vocabulary, indices))
        return {"item_ids": item_ids, "scores": values}

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="user_id"),
            tf.TensorSpec([None], tf.string, name="item_id"),
            tf.TensorSpec([None], tf.float32, name="rating"),
            tf.TensorSpec([None], tf.int64, name="timestamp"),
        ]
    )
    def update_state(
        self, user_id: tf.Tensor, item_id: tf.Tensor, rating: tf.Tensor, timestamp: tf.Tensor
    ) -> dict[str, tf.Tensor]:
        n = tf.size(user_id)
        checks = [
            tf.debugging.assert_equal(
                tf.size(other),
                n,
                message=f"update_state: request field {name} needs one entry per user_id",
            )
            for name, other in (("item_id", item_id), ("rating", rating), ("timestamp", timestamp))
        ]
        with tf.control_dependencies(checks):
            index = self.indices({USER_FEATURE: user_id, ITEM_FEATURE: item_id})
        user_known, users = self._known(index[USER_FEATURE], self.n_users)
        item_known, items = self._known(index[ITEM_FEATURE], self.n_items)
        reason = self.graph.check(users, items, rating, timestamp, user_known, item_known)
        accepted = reason < 0
        new = [tf.boolean_mask(t, accepted) for t in (users, items, rating, timestamp)]
        self.graph.feed(*new)
        self.remember(new[0], new[1])
        return {"accepted": accepted, "reason": tf.gather(self.reasons, reason + 1)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform_features(self, examples: tf.Tensor) -> dict[str, tf.Tensor]:
        parsed = tf.io.parse_example(examples, self._raw_feature_spec)
        return self.tft_layer(parsed)

    @tf.function(input_signature=[])
    def state_snapshot(self) -> dict[str, tf.Tensor]:
        """Every state variable (not a serving signature: for tests and offline inspection)."""
        return self.graph.snapshot()


def export_rating_model(
    model: Any,
    transform_output,
    item_vocabulary: np.ndarray,
    user_vocabulary: np.ndarray,
    export_dir: str,
    *,
    rated: Any = None,
) -> bool:
    """Writes the SavedModel of a `RatingServable` model; returns False (writing nothing) for other
    models. `item_vocabulary`/`user_vocabulary` are the raw ids of the model's indices (Transform's
    vocabularies, whose sizes must equal the model's); `rated` (required for rating models) the
    (user, item) indices of the events the model's states have read — a `UserSequences` such as the
    Trainer's training data, or a pair of arrays — so that `recommend` never returns a rated item.
    The model's states are read, never changed."""
    if not isinstance(model, RatingServable):
        return False
    graph = rating_graph(model)
    for name, vocabulary, size in (
        ("item_vocabulary", item_vocabulary, graph.n_items),
        ("user_vocabulary", user_vocabulary, graph.n_users),
    ):
        if vocabulary is None or len(vocabulary) != size:
            got = "None" if vocabulary is None else len(vocabulary)
            raise ValueError(f"{name}: the model has {size} indices, the vocabulary {got} ids")
    module = RatingServingModule(
        graph, transform_output, item_vocabulary, rated_pairs(rated, graph.n_users, graph.n_items)
    )
    tf.saved_model.save(
        module,
        export_dir,
        signatures={
            "serving_default": module.predict_rating,
            "predict_rating": module.predict_rating,
            "recommend": module.recommend,
            "update_state": module.update_state,
            "transform_features": module.transform_features,
        },
    )
    return True
