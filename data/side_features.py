"""Per-item and per-user side features as integer arrays aligned with an event stream's indices.

Built from `Dataset.items` / `Dataset.users` and the stream's id mapping, with every vocabulary taken
from the training data only: title words and genres from the items that occur in training events
(exactly the stream's items: item indices are assigned from training events), occupations and genders
from the users that have training events. Id 0 means unknown (or padding); title words add 1 for
out-of-vocabulary words, so a title never seen in training still encodes.

- genres: multi-hot over the training items' genres ("(no genres listed)" is no genre);
- title words: the title without its trailing "(YYYY)", lower-cased, split into runs of letters and
  digits; words seen in fewer than `min_word_count` training titles map to OOV; padded or cut to
  `title_length` words (the LSTM+CNN paper pads titles, Table V; 15 words covers every MovieLens title);
- age band: MovieLens 1M's age groups (ML-1M's `age` is already a group's lower bound; ML-100K's exact
  ages map onto them; the same bands as the pipeline's `age_band` slicing feature), 1..7;
- gender, occupation: the raw strings' vocabulary, sorted, 1-based.

A layout without a users table, titles or genres switches those inputs off (None, with the reason in
`SideFeatures.disabled`); the experiment records this with its result. The TFX path builds the same
vocabularies in Transform instead (roadmap, phase 2 of issue 10).
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pandas as pd

from movierec.data._tables import NO_GENRES, split_title_year
from movierec.data.schema import Dataset
from movierec.data.stream import EventStream
from movierec.models.base import SideFeatures

TITLE_LENGTH = 15
MIN_WORD_COUNT = 2
PAD, OOV = 0, 1
TITLE_SPECIAL = ("<pad>", "<oov>")
UNKNOWN = "<unknown>"
# Lower bounds of MovieLens 1M's age groups and their names (also the pipeline's age_band slices).
AGE_BAND_LOWER_BOUNDS = (1, 18, 25, 35, 45, 50, 56)
AGE_BAND_NAMES = ("under 18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+")
_WORD = re.compile(r"[^\W_]+")


def title_words(title: str) -> list[str]:
    """The title's words: trailing "(YYYY)" stripped, lower-cased, runs of letters and digits."""
    text, _ = split_title_year(title)
    return _WORD.findall(text.lower())


def title_vocabulary(titles: list[str], min_word_count: int = MIN_WORD_COUNT) -> list[str]:
    """Words of `titles` (training items only) occurring in at least `min_word_count` of them,
    by decreasing count then alphabetically, after the padding and OOV entries (ids 0 and 1)."""
    counts = Counter(word for title in titles for word in set(title_words(title)))
    kept = sorted((w for w, n in counts.items() if n >= min_word_count), key=lambda w: (-counts[w], w))
    return [*TITLE_SPECIAL, *kept]


def encode_title(title: str, vocabulary: dict[str, int], length: int = TITLE_LENGTH) -> np.ndarray:
    """Word ids of `title`, OOV for unknown words, padded with 0 (or cut) to `length`."""
    ids = [vocabulary.get(word, OOV) for word in title_words(title)][:length]
    return np.array(ids + [PAD] * (length - len(ids)), dtype=np.int32)


def age_band(age: float | None) -> int:
    """1..7 for MovieLens 1M's age groups (the last lower bound <= age; below all: the first); 0 unknown."""
    if age is None or pd.isna(age):
        return 0
    return max(1, int(np.searchsorted(AGE_BAND_LOWER_BOUNDS, age, side="right")))


def _category_ids(values: pd.Series, known: pd.Series) -> tuple[np.ndarray, list[str]]:
    """1-based ids of `values` in the sorted vocabulary of `known` (training users); 0 unknown."""
    vocabulary = sorted({str(v) for v in known.dropna() if str(v).strip()})
    index = {v: i + 1 for i, v in enumerate(vocabulary)}
    ids = np.array([index.get(str(v), 0) if pd.notna(v) else 0 for v in values], dtype=np.int32)
    return ids, [UNKNOWN, *vocabulary]


def build_side_features(
    dataset: Dataset,
    stream: EventStream,
    *,
    title_length: int = TITLE_LENGTH,
    min_word_count: int = MIN_WORD_COUNT,
) -> SideFeatures:
    """The side features of `stream`'s items and users (see the module for every rule)."""
    vocabularies: dict[str, list[str]] = {}
    disabled: dict[str, str] = {}
    genres = titles = None
    items = dataset.items
    if items is None:
        disabled["item_genres"] = disabled["item_title_words"] = (
            f"the {dataset.layout} layout has no item table"
        )
    else:
        by_id = (
            items.assign(item_id=items["item_id"].astype(str)).drop_duplicates("item_id").set_index("item_id")
        )
        rows = by_id.reindex(stream.item_ids.astype(str))  # one row per model item; NaN where undescribed
        genre_lists = [tuple(g) if isinstance(g, tuple | list) else () for g in rows["genres"]]
        genre_names = sorted({g for gs in genre_lists for g in gs if g and g != NO_GENRES})
        if genre_names:
            column = {g: j for j, g in enumerate(genre_names)}
            genres = np.zeros((stream.n_items, len(genre_names)), dtype=np.int8)
            for i, gs in enumerate(genre_lists):
                genres[i, [column[g] for g in gs if g in column]] = 1
            vocabularies["item_genres"] = genre_names
        else:
            disabled["item_genres"] = "no training item has genres"
        title_list = [t if isinstance(t, str) else "" for t in rows["title"]]
        if any(title_words(t) for t in title_list):
            words = title_vocabulary(title_list, min_word_count)
            index = {w: i for i, w in enumerate(words)}
            titles = np.stack([encode_title(t, index, title_length) for t in title_list]).astype(np.int32)
            vocabularies["item_title_words"] = words
        else:
            disabled["item_title_words"] = "no training item has a title"
    gender = age = occupation = None
    users = dataset.users
    if users is None:
        for name in ("user_gender", "user_age_band", "user_occupation"):
            disabled[name] = f"the {dataset.layout} layout (or this copy of it) has no user table"
    else:
        by_id = (
            users.assign(user_id=users["user_id"].astype(str)).drop_duplicates("user_id").set_index("user_id")
        )
        rows = by_id.reindex(stream.user_ids.astype(str))
        training = stream.training_data().sequences
        trained = np.bincount(training.users, minlength=stream.n_users) > 0
        gender, vocabularies["user_gender"] = _category_ids(rows["gender"], rows["gender"][trained])
        occupation, vocabularies["user_occupation"] = _category_ids(
            rows["occupation"], rows["occupation"][trained]
        )
        age = np.array([age_band(a) for a in rows["age"]], dtype=np.int32)
        vocabularies["user_age_band"] = [UNKNOWN, *AGE_BAND_NAMES]
    return SideFeatures(
        item_genres=genres,
        item_title_words=titles,
        user_gender=gender,
        user_age_band=age,
        user_occupation=occupation,
        item_ids=stream.item_ids.astype(str),
        vocabularies=vocabularies,
        disabled=disabled,
    )
