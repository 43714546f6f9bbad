"""Name → model. The CLI, the TFX Trainer and the benchmarks all build models from here, so they
train the same object the same way; adding a model is one new file and one line below."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from movierec import storage
from movierec.models.base import Recommender
from movierec.models.gru4rec import GRU4RecRecommender
from movierec.models.iarn import IARNRecommender
from movierec.models.item_knn import ItemKNN
from movierec.models.lsic import LSICRecommender
from movierec.models.lstm_cnn import LSTMCNNRecommender
from movierec.models.matrix_factorization import BPRMFRecommender, RatingMFRecommender
from movierec.models.popularity import Popularity, SessionPopularity
from movierec.models.rrn import RRNRecommender


@dataclass(frozen=True)
class ModelSpec:
    name: str
    factory: type
    summary: str
    rating: bool = False  # also predicts explicit ratings (RMSE/MAE)


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("pop", Popularity, "most popular items in training"),
        ModelSpec("spop", SessionPopularity, "most frequent items of the current session, then popularity"),
        ModelSpec("itemknn", ItemKNN, "items that share sessions with the latest item"),
        ModelSpec("bpr-mf", BPRMFRecommender, "BPR matrix factorisation (Keras 3)"),
        ModelSpec("mf", RatingMFRecommender, "biased rating matrix factorisation (Keras 3)", rating=True),
        ModelSpec("gru4rec", GRU4RecRecommender, "session-parallel GRU with sampled negatives (Keras 3)"),
        ModelSpec(
            "rrn",
            RRNRecommender,
            "user and movie LSTMs over time steps + stationary MF (Keras 3)",
            rating=True,
        ),
        ModelSpec("lstm-cnn", LSTMCNNRecommender, "features, title CNN, LSTM history (Keras 3)", rating=True),
        ModelSpec("iarn", IARNRecommender, "interacting attention-gated user/item RNNs", rating=True),
        ModelSpec("lsic", LSICRecommender, "MF + user/movie LSTMs, adversarial G/D, MF re-ranking"),
    )
}


def get_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}") from None


def build_model(name: str, **hparams: Any) -> Recommender:
    """A fresh, untrained model with the given hyper-parameters (defaults for the rest)."""
    return get_spec(name).factory(**hparams)


def save_model(model: Recommender, directory: str | os.PathLike[str]) -> None:
    """Writes the model with a small manifest so `load_model` can rebuild it. `directory` may be a URI
    (gs://… inside a Kubeflow pod): every file goes through `movierec.storage`."""
    directory = os.fspath(directory)
    storage.makedirs(directory)
    model.save(directory)
    manifest = {"model": model.name, "config": model.get_config()}
    storage.write_text(storage.join(directory, "recommender.json"), json.dumps(manifest, indent=2))


def load_model(directory: str | os.PathLike[str]) -> Recommender:
    directory = os.fspath(directory)
    manifest = json.loads(storage.read_text(storage.join(directory, "recommender.json")))
    return get_spec(manifest["model"]).factory.load(directory, manifest["config"])
