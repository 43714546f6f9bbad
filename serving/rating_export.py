"""SavedModels of rating models (RRN, LSTM+CNN, IARN) for TF Serving and TFX's stock Evaluator (TFMA).

A rating model predicts r̂(user, item, time) from stored per-user and per-movie state: RRN's LSTM
states, which new events advance without retraining (Wu et al. WSDM 2017, §4.5); LSTM+CNN's liked
histories and side-feature tables (`lstm_cnn_graph.py`, which also scores movies and users the model
never saw from the title, genres and user fields in the request); IARN's two histories per (user, item,
time), rebuilt from its stored training events (`iarn_graph.py`). The export is a `tf.Module` holding the
Keras 3 model (weights and state variables), the tensorflow-transform layer that maps raw ids to the
model's indices (`user_id` → `user_index`, `item_id` → `item_index`; index == vocabulary size is the
OOV bucket, i.e. an unknown id), and the items every known user has rated. Raw ids in, raw ids out.

Signatures (`saved_model_cli show --all --dir <export>` lists them):

- `predict_rating` and `serving_default` (the same function, so TFMA can use either):
  `examples`: string [B], serialized tf.Example interactions as ExampleGen writes them. Read:
  `user_id` (bytes), `item_id` (bytes), `timestamp` (int64 seconds), and the raw side features the
  model's graph uses for ids it does not know (LSTM+CNN: `title`, `genres`, `gender`, `age_band`,
  `occupation`; through the transform graph); `rating` and everything else are ignored.
  → `predicted_rating`: float32 [B], `unknown_ids`: int32 [B]. For known ids the rating is
  the model's `predict_ratings(users, items, timestamps)` (what evaluation computes); `unknown_ids`
  counts the row's ids the vocabularies lack (0, 1 or 2: the user's, the item's; a missing or empty id
  is unknown), so a fallback rating (below) is told apart from a real one. A row never
  fails the batch for its values: a missing id is an unknown id, a missing timestamp means the model's
  current time (`now()`: the latest event any state has read), extra values of a feature are ignored.
  (Bytes that are not a tf.Example at all fail the request in `ParseExampleV2`; TFMA parses the same
  Examples itself first.)
- `recommend`: `user_id` string [B], `k` int32 [B] (one per row, as GRU4Rec's) or [] (one for every
  row) → `item_ids` string [B, K], `scores` float32 [B, K] (K = the largest clamped k of the batch),
  `unknown_ids` int32 [B] (1 where the vocabulary lacks the user id, an empty id included: the row is
  the population's ranking, see Fallbacks; else 0): the whole catalogue ranked by predicted rating at
  `now()` (= the model's `score` for a query without a later target), without the items the user has
  rated — the training events given to the export and every event `update_state` accepted since the
  servable was loaded. Each row's k is clamped to [0, catalogue size] (never an error); beyond a
  row's own k, and where fewer than k items are left, the row is padded with item id "" and score
  -inf, so row r's answer is the first k_r of its full ranking. Ties: the lower model index first
  (`tf.math.top_k`), as a stable descending sort. Send k per row: TF Serving's server-side batching
  (`batching.config`) and REST's row format (`instances`) need every input batched; a scalar k is kept
  for clients that send the columnar format (`{"inputs": {"user_id": [...], "k": 10}}`) to an
  unbatched server. Any other shape of k fails the request (INVALID_ARGUMENT, naming the field).
- `update_state` (RRN only: models whose graph can `feed` events): `user_id` string [N],
  `item_id` string [N], `rating` float32 [N], `timestamp` int64
  [N] → `accepted` bool [N], `reason` string [N] ("" where accepted). Feeds the accepted events through
  the LSTMs (§4.5) into the state variables (never a weight); rejects per event, with
  `models/rrn/state.py`'s rules and reason strings, unknown ids, ratings outside the training scale and
  timestamps earlier than the user's or the movie's state, and applies the rest. Arrays of different
  lengths fail the request with an error that names the fields.
- `explain` (IARN only: models whose graph can `explain`): `user_id` string [], `item_id` string [],
  `timestamp` int64 [] (negative: `now()`) → the histories the prediction read, oldest first:
  `user_history_item_ids` string [Lu], `user_history_ratings` float32 [Lu], `user_history_timestamps`
  int64 [Lu], `user_history_gates` float32 [Lu] (the attention gate a_t of each event, eq. 6), and
  `item_history_user_ids` string [Li], `item_history_ratings`, `item_history_timestamps`,
  `item_history_gates` (eq. 8); `predicted_rating` float32 [] (clipped, = `predict_rating`'s),
  `raw_rating` float32 [] (unclipped), `timestamp` int64 [] (the time used), `user_known` and
  `item_known` bool []. One pair per call (scalars: the histories' lengths differ per pair). An unknown
  id is not an error: its `*_known` is false, its side's history is empty and the rating is IARN's
  fallback (`iarn_graph.py`); `IARNRecommender.explain` is the offline twin.
- `transform_features`: `examples` → Transform's outputs (as `ServingModule`'s, dense: `dense_outputs`),
  e.g. for TFMA's `preprocessing_function_names`.

The version is written atomically with `assets.extra/tf_serving_warmup_requests`: one request per
signature from a real training event (`rating_warmup`; `update_state` gets an event it rejects, so
warming up never changes a state).

Fallbacks (documented, never an error), RRN: a known user and item get the full prediction; otherwise
the rating is μ + b_u (known user) + b_i (known item), clipped to the training scale — the dynamic and
the stationary interaction terms need both sides' vectors. `recommend` ranks by unclipped ratings
(as `score`), an unknown user's catalogue by μ + b_i (the population ranking: the rating an average
user is predicted to give), removing nothing (no rated item of theirs is known). LSTM+CNN: see
`lstm_cnn_graph.py`; IARN: `iarn_graph.py`. Every model reports the fallback the same way: a non-zero
`unknown_ids` (`predict_rating`, `recommend`), `user_known`/`item_known` (`explain`), the reason
"unknown user"/"unknown item" (`update_state`).

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

from movierec.models.iarn import IARNRecommender
from movierec.models.lstm_cnn import LSTMCNNRecommender
from movierec.models.rrn import RRNRecommender
from movierec.models.rrn.state import REASONS
from movierec.serving.graph_ops import csr_rows, first_values
from movierec.serving.iarn_graph import IARNGraph
from movierec.serving.lstm_cnn_graph import LSTMCNNGraph
from movierec.serving.rrn_graph import RRNGraph
from movierec.serving.side_inputs import optional_features_spec
from movierec.serving.warmup import example, interaction_example, predict_log, sample_event, save_servable

# Transform's vocabularies (pipeline/modules/transform.py): raw feature → index output
USER_FEATURE, USER_INDEX = "user_id", "user_index"
ITEM_FEATURE, ITEM_INDEX = "item_id", "item_index"


@runtime_checkable
class RatingServable(Protocol):
    """Rating models whose predictions come from stored per-user/per-movie state (RRN, LSTM+CNN;
    IARN and LSIC next). The export needs `keras_model` (the graph runs it); the methods are the
    offline twins of the signatures, which the tests compare with (`update_state`, where a model has
    it, of the signature of that name)."""

    keras_model: Any

    def predict_ratings(
        self, users: np.ndarray, items: np.ndarray, timestamps: np.ndarray | None = None
    ) -> np.ndarray: ...

    def now(self) -> int: ...


# recommender → the graph ops of its fitted Keras network (one per model; add a line for a new one)
GRAPHS: dict[type, Any] = {
    RRNRecommender: lambda model: RRNGraph(model.keras_model),
    LSTMCNNRecommender: lambda model: LSTMCNNGraph(model.keras_model, model.config.max_history),
    IARNRecommender: lambda model: IARNGraph(model.keras_model, model.config.max_history),
}


# `recommend`'s k: [B] (one per row, what server-side batching merges) or [] (one for every row)
K_SPEC = tf.TensorSpec(None, tf.int32, name="k")


def rows_k(k: tf.Tensor, n_rows: tf.Tensor, limit: int) -> tf.Tensor:
    """`recommend`'s `k` ([] for every row, or [B]) → int32 [B], each clamped to [0, `limit`] (the
    answerable list: GRU4Rec clamps too, never an error). Any other shape fails the request with
    INVALID_ARGUMENT naming the field."""
    rank = tf.rank(k)
    check = tf.debugging.assert_equal(
        tf.equal(rank, 0) | (tf.equal(rank, 1) & tf.equal(tf.size(k), n_rows)),
        True,
        message="recommend: request field 'k' must be one value ([]) or one per row of 'user_id' ([B])",
    )
    with tf.control_dependencies([check]):
        # [1] + [B] broadcasts the scalar; [B] + [B] keeps one k per row
        per_row = tf.reshape(k, [-1]) + tf.zeros(tf.reshape(n_rows, [1]), tf.int32)
    return tf.clip_by_value(per_row, 0, limit)


def top_k_rows(scores: tf.Tensor, k: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The top max(k) of each row of `scores` [B, n] (`tf.math.top_k`: ties to the lower index) →
    (values, indices) [B, max k]; beyond a row's own k (`k` [B], already clamped to [0, n]) the value
    is -inf, so row r holds the first k_r of its full ranking and the padding is told by -inf."""
    width = tf.reduce_max(tf.concat([k, tf.zeros([1], tf.int32)], axis=0))
    values, indices = tf.math.top_k(scores, k=width)
    beyond = tf.range(width)[None, :] >= k[:, None]
    return tf.where(beyond, tf.constant(-np.inf, values.dtype), values), indices


def dense_outputs(outputs: dict[str, Any]) -> dict[str, tf.Tensor]:
    """Signature outputs TF Serving's Predict can return: dense tensors. A sparse or ragged output
    (Transform passes one through when a feature is variable-length) becomes a dense tensor padded
    to the batch's longest row with -1 (integers), NaN (floats) or "" (strings)."""

    def fill(dtype: tf.DType):
        if dtype == tf.string:
            return b""
        return float("nan") if dtype.is_floating else tf.constant(-1, dtype)

    dense = {}
    for name, value in outputs.items():
        if isinstance(value, tf.SparseTensor):
            value = tf.sparse.to_dense(value, default_value=fill(value.dtype))
        elif isinstance(value, tf.RaggedTensor):
            value = value.to_tensor(default_value=fill(value.dtype))
        dense[name] = value
    return dense


def rating_servable(model: Any) -> bool:
    """Whether `model` (fitted or not) has a rating export: a `RatingServable` with a serving graph."""
    return isinstance(model, RatingServable) and type(model) in GRAPHS


def rating_graph(model: RatingServable) -> RRNGraph | LSTMCNNGraph | IARNGraph:
    """The graph ops of a fitted rating model's Keras network."""
    if not rating_servable(model):
        raise TypeError(f"no TF Serving graph for {type(model).__name__}: add one to GRAPHS")
    return GRAPHS[type(model)](model)


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


class RatingServingModule(tf.Module):
    """The servable (see the module for the signatures and the fallbacks)."""

    def __init__(
        self,
        graph: RRNGraph | LSTMCNNGraph | IARNGraph,
        transform_output,
        item_vocabulary: np.ndarray,
        rated: tuple[np.ndarray, np.ndarray],
    ):
        super().__init__()
        # tracked where it is a tf.Module (LSTM+CNN: its int64 id tables); else its variables are the model's
        self.graph = graph
        self.model = graph.model  # tracked: weights and state variables go into variables/
        self.tft_layer = transform_output.transform_features_layer()
        self._raw_feature_spec = transform_output.raw_feature_spec()
        self._request_spec = optional_features_spec(self._raw_feature_spec, graph.request_features)
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

    def ratings(
        self, users: tf.Tensor, items: tf.Tensor, timestamps: tf.Tensor, side: dict[str, tf.Tensor]
    ) -> tf.Tensor:
        """Predicted ratings [n]; the graph handles unknown users or items (see the module)."""
        user_known, safe_users = self._known(users, self.n_users)
        item_known, safe_items = self._known(items, self.n_items)
        return self.graph.ratings(safe_users, safe_items, timestamps, user_known, item_known, side)

    def rated_mask(self, users: tf.Tensor, known: tf.Tensor) -> tf.Tensor:
        """[B, n_items] True where the (known) user has rated the item: training events and accepted
        updates, from two CSR lists (no host-side mask)."""
        rows = tf.where(known, users, tf.zeros_like(users))
        coordinates = []
        for indptr, items in ((self.rated_indptr, self.rated_items), (self.fed_indptr, self.fed_items)):
            position, item = csr_rows(indptr, items, rows)
            keep = tf.gather(known, position)
            coordinates.append(tf.stack([tf.boolean_mask(position, keep), tf.boolean_mask(item, keep)], 1))
        coordinates = tf.concat(coordinates, axis=0)
        shape = tf.stack([tf.size(users, out_type=tf.int64), self.n_items])
        return tf.scatter_nd(coordinates, tf.ones_like(coordinates[:, 0], tf.float32), shape) > 0

    # -- signatures -----------------------------------------------------------------------------------

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def predict_rating(self, examples: tf.Tensor) -> dict[str, tf.Tensor]:
        spec = {
            USER_FEATURE: tf.io.RaggedFeature(tf.string, row_splits_dtype=tf.int64),
            ITEM_FEATURE: tf.io.RaggedFeature(tf.string, row_splits_dtype=tf.int64),
            "timestamp": tf.io.RaggedFeature(tf.int64, row_splits_dtype=tf.int64),
        }
        parsed = tf.io.parse_example(examples, {**spec, **self._request_spec})
        side = (
            self.tft_layer({name: parsed[name] for name in self._request_spec}) if self._request_spec else {}
        )
        index = self.indices({name: first_values(parsed[name], b"") for name in (USER_FEATURE, ITEM_FEATURE)})
        times = parsed["timestamp"]
        timestamps = tf.where(times.row_lengths() > 0, first_values(times, 0), self.graph.now())
        users, items = index[USER_FEATURE], index[ITEM_FEATURE]
        ratings = self.ratings(users, items, timestamps, side)
        unknown = [~self._known(users, self.n_users)[0], ~self._known(items, self.n_items)[0]]
        return {"predicted_rating": ratings, "unknown_ids": tf.add_n([tf.cast(u, tf.int32) for u in unknown])}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id"), K_SPEC])
    def recommend(self, user_id: tf.Tensor, k: tf.Tensor) -> dict[str, tf.Tensor]:
        k = rows_k(k, tf.size(user_id), self.n_items)
        known, users = self._known(self.indices({USER_FEATURE: user_id})[USER_FEATURE], self.n_users)
        personal = self.graph.score_all(users, self.graph.now())
        population = tf.broadcast_to(self.graph.population_scores()[None, :], tf.shape(personal))
        scores = tf.where(known[:, None], personal, population)
        scores = tf.where(self.rated_mask(users, known), tf.constant(-np.inf, tf.float32), scores)
        values, indices = top_k_rows(scores, k)
        item_ids = tf.where(tf.equal(values, -np.inf), b"", tf.gather(self.item_vocabulary, indices))
        return {"item_ids": item_ids, "scores": values, "unknown_ids": tf.cast(~known, tf.int32)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform_features(self, examples: tf.Tensor) -> dict[str, tf.Tensor]:
        parsed = tf.io.parse_example(examples, self._raw_feature_spec)
        return dense_outputs(self.tft_layer(parsed))


class StatefulRatingServingModule(RatingServingModule):
    """The servable of a model whose graph advances its states with new events (RRN): adds
    `update_state` (see the module) and `state_snapshot`."""

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

    @tf.function(input_signature=[])
    def state_snapshot(self) -> dict[str, tf.Tensor]:
        """Every state variable (not a serving signature: for tests and offline inspection)."""
        return self.graph.snapshot()


class ExplainingRatingServingModule(RatingServingModule):
    """The servable of a model whose graph can `explain` a prediction (IARN): adds `explain` (see the
    module), which needs the user vocabulary to return raw user ids."""

    def __init__(
        self,
        graph: IARNGraph,
        transform_output,
        item_vocabulary: np.ndarray,
        rated: tuple[np.ndarray, np.ndarray],
        user_vocabulary: np.ndarray,
    ):
        super().__init__(graph, transform_output, item_vocabulary, rated)
        self.user_vocabulary = tf.constant(np.asarray(user_vocabulary).astype(object).astype(bytes))

    @tf.function(
        input_signature=[
            tf.TensorSpec([], tf.string, name="user_id"),
            tf.TensorSpec([], tf.string, name="item_id"),
            tf.TensorSpec([], tf.int64, name="timestamp"),
        ]
    )
    def explain(self, user_id: tf.Tensor, item_id: tf.Tensor, timestamp: tf.Tensor) -> dict[str, tf.Tensor]:
        index = self.indices({USER_FEATURE: tf.reshape(user_id, [1]), ITEM_FEATURE: tf.reshape(item_id, [1])})
        user_known, user = self._known(index[USER_FEATURE][0], self.n_users)
        item_known, item = self._known(index[ITEM_FEATURE][0], self.n_items)
        time = tf.where(timestamp < 0, self.graph.now(), timestamp)
        found = self.graph.explain(user, item, time, user_known, item_known)
        return {
            "user_history_item_ids": tf.gather(self.item_vocabulary, found["user_items"]),
            "user_history_ratings": found["user_ratings"],
            "user_history_timestamps": found["user_timestamps"],
            "user_history_gates": found["user_gates"],
            "item_history_user_ids": tf.gather(self.user_vocabulary, found["item_users"]),
            "item_history_ratings": found["item_ratings"],
            "item_history_timestamps": found["item_timestamps"],
            "item_history_gates": found["item_gates"],
            "predicted_rating": found["predicted_rating"],
            "raw_rating": found["raw_rating"],
            "timestamp": time,
            "user_known": user_known,
            "item_known": item_known,
        }


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
    if not rating_servable(model):
        return False
    graph = rating_graph(model)
    for name, vocabulary, size in (
        ("item_vocabulary", item_vocabulary, graph.n_items),
        ("user_vocabulary", user_vocabulary, graph.n_users),
    ):
        if vocabulary is None or len(vocabulary) != size:
            got = "None" if vocabulary is None else len(vocabulary)
            raise ValueError(f"{name}: the model has {size} indices, the vocabulary {got} ids")
    stateful, explaining = hasattr(graph, "feed"), hasattr(graph, "explain")
    pairs = rated_pairs(rated, graph.n_users, graph.n_items)
    if explaining:
        module = ExplainingRatingServingModule(
            graph, transform_output, item_vocabulary, pairs, user_vocabulary
        )
    else:
        module = (StatefulRatingServingModule if stateful else RatingServingModule)(
            graph, transform_output, item_vocabulary, pairs
        )
    signatures = {
        "serving_default": module.predict_rating,
        "predict_rating": module.predict_rating,
        "recommend": module.recommend,
        "transform_features": module.transform_features,
    }
    if stateful:
        signatures["update_state"] = module.update_state
    if explaining:
        signatures["explain"] = module.explain
    warmup = rating_warmup(
        getattr(model, "name", type(model).__name__.lower()),
        module,
        item_vocabulary,
        user_vocabulary,
        rated,
        signatures,
    )
    save_servable(module, export_dir, signatures, warmup)
    return True


def rating_warmup(
    model_name: str,
    module: RatingServingModule,
    item_vocabulary: np.ndarray,
    user_vocabulary: np.ndarray,
    rated: Any,
    signatures: dict,
) -> list:
    """One warmup request per signature, from a real training event (`rated`'s first user's latest):
    its (user, item, time) for `predict_rating`/`serving_default`/`explain`/`transform_features`,
    its user for `recommend`; `update_state` gets an event of an unknown user, which it rejects, so
    warming up never changes the states."""
    event = sample_event(rated)
    if event is None:
        user, item, time, rating = "", "", None, 0.0
    else:
        user, item = str(user_vocabulary[event["user"]]), str(item_vocabulary[event["items"][-1]])
        time = event["timestamps"][-1] if event["timestamps"] else None
        rating = event["rating"] if event["rating"] is not None else 0.0
    pair = {USER_FEATURE: user, ITEM_FEATURE: item, **({"timestamp": time} if time is not None else {})}
    requests = {
        "serving_default": {"examples": [example(pair)]},
        "predict_rating": {"examples": [example(pair)]},
        "recommend": {"user_id": [user], "k": np.array([10], np.int32)},  # per row: batchable
        "update_state": {
            "user_id": [""],
            "item_id": [item],
            "rating": np.array([rating], np.float32),
            "timestamp": np.array([time or 0], np.int64),
        },
        "explain": {"user_id": user, "item_id": item, "timestamp": np.int64(-1 if time is None else time)},
        "transform_features": {
            "examples": [
                interaction_example(
                    module._raw_feature_spec, {**pair, "rating": float(rating), "timestamp": int(time or 0)}
                )
            ]
        },
    }
    return [predict_log(model_name, name, requests[name]) for name in signatures]
