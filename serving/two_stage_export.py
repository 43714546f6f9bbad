"""SavedModels of two-stage recommenders (LSIC): retrieve N candidates with one factor model, re-rank
them with another, in one `recommend` call.

A model that can be served this way has `serving_tables()` (`models/lsic/recommender.py`): retrieval
user/item factors and item biases (LSIC's BPR-trained MF), re-ranking user/item vectors whose dot
product is the re-ranker's score (LSIC's G at the end of training), N, and the training events. The
export holds them as constants next to the tensorflow-transform layer (raw ids in, raw ids out).

Signatures:
- `recommend`: `user_id` string [B], `k` int32 [B] (one per row, as GRU4Rec's and the rating models')
  or [] (one for every row) → `item_ids` string [B, K], `scores` float32 [B, K] (the re-ranker's
  scores; K = the batch's largest clamped k), `unknown_ids` int32 [B] (1 where the vocabulary lacks
  the user id, an empty id included; else 0). The movies the user rated in training are never
  candidates; the top-N of the rest by MF are re-ranked; each row's k is clamped to [0, N] (the
  re-ranked list is the answer: `movierec evaluate` ranks the rest below it, by MF; never an error)
  and beyond a row's own k, or where fewer candidates are left, the row is padded with "" and -inf:
  row r is the first k_r of its re-ranked list. An id the model does not know (`unknown_ids` 1) gets
  the population's answer: zero user factors and state, i.e. the N movies with the highest MF item
  bias ordered by the re-ranker's movie bias (the last column of the re-ranking vectors carries it).
  Send k per row: TF Serving's server-side batching and REST's row format need every input batched; a
  scalar k is kept for columnar requests to an unbatched server. Another shape of k fails the request
  (INVALID_ARGUMENT naming the field).
- `serving_default`: serialized tf.Example with `user_id` (bytes) → the same for k = `top_k`.
The exclusion mask is built in the graph from the stored training events (no host-side [B, n_items]).
`keras_rs.layers.BruteForceRetrieval` is not used: it cannot exclude a user's rated movies before its
top-k, and over-fetching by the longest history costs more than this masked product.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from movierec.serving.graph_ops import csr_rows
from movierec.serving.rating_export import K_SPEC, rows_k, top_k_rows
from movierec.serving.warmup import predict_log, save_servable


def two_stage_servable(model: Any) -> bool:
    return callable(getattr(model, "serving_tables", None))


class TwoStageServingModule(tf.Module):
    def __init__(self, tables: dict[str, Any], transform_output, item_vocabulary: np.ndarray, top_k: int):
        super().__init__()
        self.tft_layer = transform_output.transform_features_layer()
        self.item_vocabulary = tf.constant(np.asarray(item_vocabulary).astype(object).astype(bytes))
        self.n_items = len(item_vocabulary)
        self.n_users = int(tables["retrieval_users"].shape[0])

        def constant(name: str, dtype) -> tf.Variable:
            return tf.Variable(np.asarray(tables[name]), dtype=dtype, trainable=False, name=name)

        self.retrieval_users = constant("retrieval_users", tf.float32)
        self.retrieval_items = constant("retrieval_items", tf.float32)
        self.retrieval_item_bias = constant("retrieval_item_bias", tf.float32)
        self.rerank_users = constant("rerank_users", tf.float32)
        self.rerank_items = constant("rerank_items", tf.float32)
        rated = tables["rated"]
        self.rated_indptr = tf.Variable(rated.indptr.astype(np.int64), trainable=False, name="rated_indptr")
        self.rated_items = tf.Variable(rated.items.astype(np.int64), trainable=False, name="rated_items")
        n = int(tables["candidates"]) or self.n_items
        self.n_candidates = min(n, self.n_items)
        self.top_k = min(int(top_k), self.n_candidates)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id"), K_SPEC])
    def recommend(self, user_id, k):
        k = rows_k(k, tf.size(user_id), self.n_candidates)
        index = tf.reshape(self.tft_layer({"user_id": tf.reshape(user_id, [-1, 1])})["user_index"], [-1])
        index = tf.cast(index, tf.int64)
        known = index < self.n_users  # the OOV bucket is n_users
        safe = tf.where(known, index, 0)
        mask = tf.cast(known, tf.float32)[:, None]
        query = tf.gather(self.retrieval_users, safe) * mask
        retrieval = tf.matmul(query, self.retrieval_items, transpose_b=True) + self.retrieval_item_bias
        # the user's training movies are never candidates (scattered in the graph from stored events)
        position, items = csr_rows(self.rated_indptr, self.rated_items, tf.boolean_mask(safe, known))
        rows = tf.gather(tf.cast(tf.where(known)[:, 0], tf.int64), position)
        seen = tf.scatter_nd(
            tf.stack([rows, items], axis=1),
            tf.ones_like(items, tf.float32),
            tf.stack([tf.size(index, out_type=tf.int64), tf.cast(self.n_items, tf.int64)]),
        )
        retrieval = tf.where(seen > 0, tf.constant(-np.inf, tf.float32), retrieval)
        candidates = tf.math.top_k(retrieval, self.n_candidates).indices  # [B, N]; ties: lower index
        # an unknown user: zero factors and state, bias 0, and the constant 1 that carries b_m
        width = tf.shape(self.rerank_users)[1]
        population = tf.one_hot(width - 1, width)[None, :]
        user_vectors = tf.where(known[:, None], tf.gather(self.rerank_users, safe), population)
        scores = tf.einsum("bv,bnv->bn", user_vectors, tf.gather(self.rerank_items, candidates))
        valid = tf.gather(retrieval, candidates, batch_dims=1) > -np.inf
        scores = tf.where(valid, scores, tf.constant(-np.inf, tf.float32))
        values, order = top_k_rows(scores, k)
        chosen = tf.gather(candidates, order, batch_dims=1)
        ids = tf.where(values > -np.inf, tf.gather(self.item_vocabulary, chosen), tf.constant(b""))
        return {"item_ids": ids, "scores": values, "unknown_ids": tf.cast(~known, tf.int32)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(self, examples):
        parsed = tf.io.parse_example(
            examples, {"user_id": tf.io.FixedLenFeature([], tf.string, default_value="")}
        )
        return self.recommend(
            parsed["user_id"], tf.fill(tf.shape(examples), tf.constant(self.top_k, tf.int32))
        )


def export_two_stage_model(
    model: Any,
    transform_output,
    item_vocabulary: np.ndarray,
    user_vocabulary: np.ndarray,
    export_dir: str,
    top_k: int,
) -> bool:
    """Writes the SavedModel of a model with `serving_tables()` (`recommend`, `serving_default`) with
    its warmup requests (a training user's), published whole (`warmup.save_servable`)."""
    module = TwoStageServingModule(model.serving_tables(), transform_output, item_vocabulary, top_k)
    user = str(user_vocabulary[0]) if len(user_vocabulary) else ""
    feature = tf.train.Feature(bytes_list=tf.train.BytesList(value=[user.encode()]))
    example = tf.train.Example(features=tf.train.Features(feature={"user_id": feature})).SerializeToString()
    name = getattr(model, "name", "model")
    warmup = [
        predict_log(  # k per row: what server-side batching merges
            name, "recommend", {"user_id": np.array([user], object), "k": np.array([module.top_k], np.int32)}
        ),
        predict_log(name, "serving_default", {"examples": np.array([example], object)}),
    ]
    save_servable(
        module, export_dir, {"serving_default": module.serve, "recommend": module.recommend}, warmup
    )
    return True
