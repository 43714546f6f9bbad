"""Transform module file: `preprocessing_fn` for interaction Examples (tensorflow-transform on Beam).

Every vocabulary is computed on the train split only, with one OOV bucket, so serving maps values the
model never saw to a known index (the bucket: index == vocabulary size). The exported models embed
this graph, so they take raw ids and strings. Outputs:

- `user_index`, `item_index`: the model's id spaces (vocabularies `user_id`, `item_id`).
- `rating`, `rating_scaled`, `day_of_week`, `hour_of_day`, `time_scaled`: the event.
- Side features, where the layout has them (LSTM+CNN, IARN; dense, so TF Serving can return them):
  - `title_word_index` int64 [B, TITLE_LENGTH]: the title's words — the trailing "(YYYY)" stripped,
    lower-cased, runs of letters and digits (`title_words`, the same rule as
    `movierec.data.side_features.title_words`, checked on every ML-100K title by a test) — as indices
    of vocabulary `title_word`, -1 padded, cut after TITLE_LENGTH words. The vocabulary keeps words
    found in at least MIN_WORD_COUNT distinct training movies' titles: a title's words are counted
    once, on the movie's first training rating only (ExampleGen's `item_first_training_rating`, 1 on
    exactly one training rating per movie), so a movie counts once however often it was rated and
    the counts are whole numbers: the vocabulary's order (by count, then by word) is the same in
    every run (weights of 1 / the movie's ratings, the earlier scheme, summed to floats whose last
    bits depended on how Beam batched them, and reordered words of equal count from run to run).
  - `genre_index` int64 [B, GENRE_SLOTS]: the movie's genres as indices of vocabulary `genre`, -1
    padded ("(no genres listed)" is no genre).
  - `gender_index`, `occupation_index`, `age_band_index` int64 [B]: the user's, -1 where unknown
    (vocabularies `gender`, `occupation`, `age_band`).

The exports run this graph on every request, so past the string handling (host ops by design) it uses
ops with GPU kernels: titles are split into sparse words, genres kept as sparse values, each row's
values placed with an int64 scatter (positions from an int32 segment sum) — no ragged tensors, whose
RaggedRange, RaggedTensorToTensor, row-partition DenseBincount and int64 segment sums have none. The
outputs are those of the ragged version (tests/pipeline/test_transform.py keeps it as the reference).
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

SECONDS_PER_DAY = 86_400
VOCABULARIES = {"user_id": "user_index", "item_id": "item_index"}
USER_FIELDS = {"gender": "gender_index", "occupation": "occupation_index", "age_band": "age_band_index"}
TITLE_LENGTH = 15  # the LSTM+CNN paper pads titles (Table V); 15 words covers every MovieLens title
GENRE_SLOTS = 20  # more than any MovieLens movie has (ml-latest has 20 genres in all)
MIN_WORD_COUNT = 2
NO_GENRES = "(no genres listed)"
# Python's str.lower() and `[^\W_]+` (movierec.data.side_features) in RE2: the year, then the words.
_TRAILING_YEAR = r"^\s*(.*?\S)\s*\(\d{4}\)\s*$"
_NOT_WORD = r"[^\pL\pN]+"


def _dense(tensor: tf.Tensor | tf.SparseTensor, default) -> tf.Tensor:
    """A [batch] tensor from a feature that is [batch], [batch, 1] or sparse with at most one value."""
    if isinstance(tensor, tf.SparseTensor):
        tensor = tf.sparse.to_dense(
            tf.sparse.reset_shape(tensor, [tf.shape(tensor, out_type=tf.int64)[0], 1]), default_value=default
        )
    return tf.reshape(tensor, [-1])


def _values(tensor: tf.Tensor | tf.SparseTensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(row [n] int64, value [n], number of rows) of a feature's values (sparse or dense), in row
    order: a sparse feature as parsed (its indices are ragged-right, as `RaggedTensor.from_sparse`
    requires), a dense one row by row."""
    if isinstance(tensor, tf.SparseTensor):
        return tensor.indices[:, 0], tensor.values, tensor.dense_shape[0]
    tensor = tf.reshape(tensor, [tf.shape(tensor)[0], -1])
    shape = tf.shape(tensor, out_type=tf.int64)
    rows = tf.broadcast_to(tf.expand_dims(tf.range(shape[0]), 1), shape)
    return tf.reshape(rows, [-1]), tf.reshape(tensor, [-1]), shape[0]


def _row_positions(rows: tf.Tensor, n_rows: tf.Tensor) -> tf.Tensor:
    """[n] int64: each value's position within its row, for `rows` [n] in row order."""
    # an int32 segment sum: GPU kernels exist for it, not for an int64 one (or a ragged row partition)
    lengths = tf.math.unsorted_segment_sum(tf.ones_like(rows, tf.int32), rows, n_rows)
    starts = tf.cumsum(tf.cast(lengths, tf.int64), exclusive=True)
    return tf.range(tf.size(rows, out_type=tf.int64)) - tf.gather(starts, rows)


def _padded(rows: tf.Tensor, positions: tf.Tensor, index: tf.Tensor, n_rows: tf.Tensor, width: int):
    """[n_rows, width] int64: each row's `index` values at their `positions`, cut after `width`, -1
    padded — `RaggedTensor.to_tensor(default_value=-1, shape=[None, width])` written with a scatter
    (RaggedRange and RaggedTensorToTensor have no GPU kernels)."""
    kept = positions < width
    cell = tf.stack([tf.boolean_mask(rows, kept), tf.boolean_mask(positions, kept)], axis=1)
    shape = tf.stack([tf.cast(n_rows, tf.int64), tf.constant(width, tf.int64)])
    shifted = tf.scatter_nd(cell, tf.boolean_mask(tf.cast(index, tf.int64), kept) + 1, shape)
    return tf.reshape(shifted - 1, [-1, width])  # the static width: Transform's schema reads it


def split_words(titles: tf.Tensor) -> tf.SparseTensor:
    """[B] raw titles → [B, None] words (sparse: row, position within the title): trailing "(YYYY)"
    stripped, lower-cased, letters and digits."""
    text = tf.strings.regex_replace(titles, _TRAILING_YEAR, r"\1")
    text = tf.strings.lower(text, encoding="utf-8")
    text = tf.strings.strip(tf.strings.regex_replace(text, _NOT_WORD, " "))
    # the split op itself, not tf.strings.split: its ragged result's row partition is a DenseBincount,
    # which has no GPU kernel (StringSplitV2's indices are the rows and positions already)
    indices, values, shape = tf.raw_ops.StringSplitV2(input=text, sep="", maxsplit=-1)
    return tf.SparseTensor(indices, values, shape)


def title_words(titles: tf.Tensor) -> tf.RaggedTensor:
    """[B] raw titles → [B, None] words (`split_words` as a ragged tensor: for tests and tools)."""
    return tf.RaggedTensor.from_sparse(split_words(titles))


def _first_in_row(rows: tf.Tensor, words: tf.Tensor) -> tf.Tensor:
    """[n words] True for the first occurrence of each word within its row."""
    keys, group = tf.unique(tf.strings.join([tf.strings.as_string(rows), words], separator="\x00"))
    first = tf.math.unsorted_segment_min(tf.range(tf.size(group)), group, tf.size(keys))
    return tf.scatter_nd(tf.expand_dims(first, 1), tf.ones_like(first, tf.bool), tf.shape(group))


def counted_words(
    rows: tf.Tensor, words: tf.Tensor, first_rating: tf.Tensor | None
) -> tuple[tf.Tensor, tf.Tensor | None]:
    """(words [m], weights [m] or None): what the title vocabulary counts — each title's words once,
    weighted by `first_rating` (1 on one training rating per movie, else 0) where it is given.

    Args:
        rows: [n] int64, the title (row) of each of `words` [n], in row order.
        words: [n] string, the titles' words.
        first_rating: [B] int, 1 where the rating is its movie's first training rating, or None
            (every rating counts).
    """
    first = _first_in_row(rows, words)
    if first_rating is None:
        return tf.boolean_mask(words, first), None
    weights = tf.cast(tf.gather(first_rating, rows), tf.float32)  # 0 or 1: exact sums
    return tf.boolean_mask(words, first), tf.boolean_mask(weights, first)


def _title_word_index(title: tf.Tensor, first_rating: tf.Tensor | None) -> tf.Tensor:
    words = split_words(title)
    rows, positions = words.indices[:, 0], words.indices[:, 1]
    counted, weights = counted_words(rows, words.values, first_rating)
    vocabulary = tft.vocabulary(
        counted, weights=weights, frequency_threshold=MIN_WORD_COUNT, vocab_filename="title_word"
    )
    index = tft.apply_vocabulary(words.values, vocabulary, num_oov_buckets=1)
    return _padded(rows, positions, index, words.dense_shape[0], TITLE_LENGTH)


def named_genres(genres: tf.Tensor | tf.SparseTensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """(row [n] int64, position within the row [n] int64, genre [n], number of rows) of the movies'
    genres, "(no genres listed)" and empty strings dropped (the positions close up)."""
    rows, values, n_rows = _values(genres)
    named = (values != NO_GENRES) & (values != "")
    rows = tf.boolean_mask(rows, named)
    return rows, _row_positions(rows, n_rows), tf.boolean_mask(values, named), n_rows


def _genre_index(genres: tf.Tensor | tf.SparseTensor) -> tf.Tensor:
    rows, positions, names, n_rows = named_genres(genres)
    index = tft.compute_and_apply_vocabulary(names, num_oov_buckets=1, vocab_filename="genre")
    return _padded(rows, positions, index, n_rows, GENRE_SLOTS)


def _user_field_index(values: tf.Tensor | tf.SparseTensor, name: str) -> tf.Tensor:
    """[B] index of a single-valued user field, -1 where the user's value is unknown."""
    values = _dense(values, "")
    known = values != ""
    index = tft.compute_and_apply_vocabulary(
        tf.boolean_mask(values, known), num_oov_buckets=1, vocab_filename=name
    )
    positions = tf.cast(tf.where(known), tf.int32)
    return tf.tensor_scatter_nd_update(tf.fill(tf.shape(values), tf.constant(-1, tf.int64)), positions, index)


def preprocessing_fn(inputs: dict) -> dict:
    outputs = {}
    for raw, transformed in VOCABULARIES.items():
        outputs[transformed] = tft.compute_and_apply_vocabulary(
            _dense(inputs[raw], ""), num_oov_buckets=1, vocab_filename=raw
        )
    rating = tf.cast(_dense(inputs["rating"], 0.0), tf.float32)
    outputs["rating"] = rating
    outputs["rating_scaled"] = tft.scale_to_z_score(rating)

    timestamp = tf.cast(_dense(inputs["timestamp"], 0), tf.int64)
    days = timestamp // SECONDS_PER_DAY
    outputs["day_of_week"] = (days + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    outputs["hour_of_day"] = (timestamp // 3600) % 24
    outputs["time_scaled"] = tft.scale_to_0_1(tf.cast(timestamp, tf.float32))

    if "genres" in inputs:
        outputs["genre_index"] = _genre_index(inputs["genres"])
    if "title" in inputs:
        first_rating = inputs.get("item_first_training_rating")
        outputs["title_word_index"] = _title_word_index(
            _dense(inputs["title"], ""), None if first_rating is None else _dense(first_rating, 0)
        )
    for raw, transformed in USER_FIELDS.items():
        if raw in inputs:
            outputs[transformed] = _user_field_index(inputs[raw], raw)
    return outputs
