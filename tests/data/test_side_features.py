"""Side features (data/side_features.py): vocabularies from training data only, OOV, missing tables."""

from __future__ import annotations

import dataclasses

import pandas as pd

from movierec.data import interactions_frame
from movierec.data.side_features import (
    OOV,
    PAD,
    age_band,
    build_side_features,
    encode_title,
    title_vocabulary,
    title_words,
)
from movierec.data.splits import temporal_split
from movierec.data.stream import build_stream


def test_title_words_strip_the_year_and_lower_case():
    assert title_words("American President, The (1995)") == ["american", "president", "the"]
    vocabulary = {w: i for i, w in enumerate(title_vocabulary(["Toy Story", "Toy Soldiers", "Heat"], 2))}
    assert list(vocabulary)[:3] == ["<pad>", "<oov>", "toy"] and len(vocabulary) == 3  # once-only words: OOV
    assert encode_title("Toy Story 2 (1999)", vocabulary, 5).tolist() == [2, OOV, OOV, PAD, PAD]
    assert encode_title("a b c d e f g", vocabulary, 3).tolist() == [OOV, OOV, OOV]  # cut to the length


def test_age_bands_follow_movielens_1m_groups():
    assert [age_band(a) for a in (None, 7, 18, 24, 25, 50, 56, 80)] == [0, 1, 2, 2, 3, 6, 7, 7]


def dataset(with_users: bool = True, with_titles: bool = True):
    # items 1 and 2 are rated before the cut (training), item 3 only after it
    interactions = interactions_frame(
        [("u1", "1", 4, 10), ("u2", "2", 5, 20), ("u1", "2", 3, 30), ("u2", "1", 4, 40), ("u1", "3", 5, 90)]
    )
    items = pd.DataFrame(
        {
            "item_id": ["1", "2", "3"],
            "title": ["Space Dogs", "Space Cats", "Secret Dogs Word"] if with_titles else [None] * 3,
            "year": pd.array([1990, 1991, 1992], dtype="Int64"),
            "genres": [("Comedy",), ("Drama", "Comedy"), ("Horror",)],
        }
    )
    users = pd.DataFrame(
        {
            "user_id": ["u1", "u2"],
            "age": pd.array([33, None], dtype="Int64"),
            "gender": ["F", "M"],
            "occupation": ["writer", None],
            "zip_code": ["1", "2"],
        }
    )
    split = temporal_split(interactions, cut_time=50)
    stream = build_stream(interactions, split)

    @dataclasses.dataclass
    class Fake:  # the fields build_side_features reads
        items: pd.DataFrame | None
        users: pd.DataFrame | None
        layout: str = "test"

    return Fake(items, users if with_users else None), stream


def test_vocabularies_come_from_training_items_only():
    data, stream = dataset()
    features = build_side_features(data, stream, title_length=4, min_word_count=1)
    assert stream.item_ids.tolist() == ["1", "2"]  # item 3 is not a model item
    assert features.vocabularies["item_genres"] == ["Comedy", "Drama"]  # no Horror
    words = features.vocabularies["item_title_words"]
    assert "secret" not in words and "word" not in words and {"space", "dogs", "cats"} <= set(words)
    assert features.item_title_words.shape == (2, 4) and features.item_genres.tolist() == [[1, 0], [1, 1]]
    assert features.user_gender.tolist() == [1, 2] and features.user_occupation.tolist() == [1, 0]
    assert features.user_age_band.tolist() == [3, 0]
    assert features.describe()["off"] == {}


def test_missing_users_or_titles_switch_those_inputs_off_and_say_why():
    data, stream = dataset(with_users=False, with_titles=False)
    features = build_side_features(data, stream)
    described = features.describe()
    assert described["on"] == ["item_genres"]
    assert set(described["off"]) == {"item_title_words", "user_gender", "user_age_band", "user_occupation"}
    none = build_side_features(dataclasses.replace(data, items=None), stream).describe()
    assert none["on"] == [] and "no item table" in none["off"]["item_genres"]
