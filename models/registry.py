"""Name → model. The CLI, the TFX Trainer and the benchmarks all build models from here, so they
train the same object the same way; adding a model is one new file and one line below."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from movierec.models.base import Recommender
from movierec.models.gru4rec import GRU4RecRecommender
from movierec.models.item_knn import ItemKNN
from movierec.models.matrix_factorization import BPRMFRecommender, RatingMFRecommender
from movierec.models.popularity import Popularity, SessionPopularity


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


def save_model(model: Recommender, directory: Path) -> None:
    """Writes the model with a small manifest so `load_model` can rebuild it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save(directory)
    manifest = {"model": model.name, "config": model.get_config()}
    (directory / "recommender.json").write_text(json.dumps(manifest, indent=2))


def load_model(directory: Path) -> Recommender:
    manifest = json.loads((Path(directory) / "recommender.json").read_text())
    return get_spec(manifest["model"]).factory.load(Path(directory), manifest["config"])
