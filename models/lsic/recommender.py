"""LSIC behind the project's fit/score contract (models/base.py).

- `fit(TrainingData)`: training.py (candidate MF, pre-training, adversarial epochs, the best epoch on
  the held-out latest training events, a refit). Poster vectors come from `poster_file` (keyed by raw
  movie id: `TrainingData.side_features.item_ids` maps the model's indices to them).
- `score(QueryBatch)`: at the query's week (clamped to the end of training: no state is known after
  it), MF's top-N candidates among the movies the query has not seen, in G's order, above every other
  movie in MF's order (`candidates.rerank`). States read training ratings only, as served.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import keras
import numpy as np

from movierec import storage
from movierec.models.base import QueryBatch, TrainingData, UserSequences, query_times
from movierec.models.hyperparameters import make_config
from movierec.models.lsic.candidates import built_mf, rerank
from movierec.models.lsic.config import LSICConfig
from movierec.models.lsic.curves import plot_curves
from movierec.models.lsic.network import LSICScorer
from movierec.models.lsic.posters import load_vectors
from movierec.models.lsic.training import Trained, train
from movierec.models.lsic.windows import StepClock, build_grids
from movierec.models.matrix_factorization import BPRMF


class LSICRecommender:
    """LSIC (long- and short-term information in content-aware recommendation, adversarially
    trained); hyper-parameters: `LSICConfig`."""

    name = "lsic"
    config_class = LSICConfig

    def __init__(self, **hparams: Any) -> None:
        self.config: LSICConfig = make_config(LSICConfig, hparams, self.name)
        self.trained: Trained | None = None
        self.training_log: dict[str, Any] = {}
        self._sequences: UserSequences | None = None

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return dataclasses.asdict(LSICConfig())

    def get_config(self) -> dict[str, Any]:
        return dataclasses.asdict(self.config)

    # -- training ----------------------------------------------------------------------------------------
    def _posters(self, data: TrainingData) -> tuple[np.ndarray | None, dict[str, Any]]:
        c = self.config
        if not c.poster:
            return None, {"poster": "off (poster=False)"}
        if not c.poster_file:
            return None, {"poster": "off (no poster_file)"}
        item_ids = getattr(data.side_features, "item_ids", None) if data.side_features else None
        if item_ids is None:
            raise ValueError(
                "lsic: poster_file needs the raw movie ids (TrainingData.side_features.item_ids)"
            )
        vectors, covered = load_vectors(c.poster_file, item_ids)
        return vectors, {"poster": c.poster_file, "poster_coverage": covered / max(len(item_ids), 1)}

    def fit(self, data: TrainingData, on_epoch_end=None) -> LSICRecommender:
        posters, inputs = self._posters(data)
        self.trained, summary = train(data, self.config, posters, on_epoch_end)
        self._sequences = data.sequences
        self.training_log = {**summary, "inputs": inputs, "clock": self.trained.clock.to_dict()}
        return self

    def _ready(self) -> Trained:
        if self.trained is None:
            raise RuntimeError("lsic must be fitted before use")
        return self.trained

    # -- scoring -------------------------------------------------------------------------------------
    def scores_at(self, scorer: LSICScorer, users: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """The scorer's s(u, ·, t) [B, M] for users at their steps (one movie window per step)."""
        t = self._ready()
        users, steps = np.asarray(users, np.int32), np.asarray(steps, np.int64)
        out = np.zeros((len(users), scorer.n_items), np.float32)
        everyone = np.arange(scorer.n_items)
        for step in np.unique(steps):
            rows = np.flatnonzero(steps == step)
            inputs = {
                "users": users[rows],
                "user_window": t.user_grid.window(users[rows], np.full(len(rows), step)).as_inputs(),
                "movie_window": t.movie_grid.window(everyone, np.full(len(everyone), step)).as_inputs(),
            }
            out[rows] = keras.ops.convert_to_numpy(scorer(inputs))
        return out

    def score(self, batch: QueryBatch) -> np.ndarray:
        t = self._ready()
        users = np.asarray(batch.users, np.int32)
        steps = t.clock.step_of(query_times(batch, t.clock.now))
        generator = self.scores_at(t.generator, users, steps)
        mf = keras.ops.convert_to_numpy(t.mf.score_all(users))
        seen = np.zeros(generator.shape, bool)
        query, items = batch.visible()
        seen[query, items] = True
        return rerank(mf, generator, self.config.candidates, seen)

    def serving_tables(self) -> dict[str, Any]:
        """What a retrieve-then-re-rank SavedModel needs (serving/two_stage_export.py): the candidate
        MF's user/item factors and item biases, G's user and movie vectors at the end of training
        (`LSICScorer.vectors`: their product is G's score at `now`, what `score` ranks by for every
        later query), the number of candidates, and the training events (rated movies are never
        recommended)."""
        t = self._ready()
        everyone = np.arange(t.generator.n_users)
        movies = np.arange(t.generator.n_items)
        now = t.clock.now_step
        inputs = {
            "users": everyone.astype(np.int32),
            "user_window": t.user_grid.window(everyone, np.full(len(everyone), now)).as_inputs(),
            "movie_window": t.movie_grid.window(movies, np.full(len(movies), now)).as_inputs(),
        }
        users, items = (keras.ops.convert_to_numpy(v) for v in t.generator.vectors(inputs))
        return {
            "retrieval_users": keras.ops.convert_to_numpy(t.mf.user_embedding.embeddings),
            "retrieval_items": keras.ops.convert_to_numpy(t.mf.item_embedding.embeddings),
            "retrieval_item_bias": keras.ops.convert_to_numpy(t.mf.item_bias.embeddings)[:, 0],
            "rerank_users": users,
            "rerank_items": items,
            "candidates": int(self.config.candidates),
            "rated": self._sequences,
        }

    # -- saving ----------------------------------------------------------------------------------------
    def save(self, directory: str) -> None:
        t = self._ready()
        for name, model in (("generator", t.generator), ("discriminator", t.discriminator), ("mf", t.mf)):
            storage.write_text(storage.join(directory, f"{name}.json"), json.dumps(model.get_config()))
            weights = {f"w{k:04d}": keras.ops.convert_to_numpy(w) for k, w in enumerate(model.weights)}
            storage.save_npz(storage.join(directory, f"{name}.npz"), **weights)
        seq = self._sequences
        storage.save_npz(
            storage.join(directory, "training_events.npz"),
            indptr=seq.indptr,
            items=seq.items,
            ratings=seq.ratings,
            timestamps=seq.timestamps,
        )
        storage.write_text(
            storage.join(directory, "training_log.json"), json.dumps(self.training_log, indent=1)
        )
        plot_curves(self.training_log, storage.join(directory, "learning_curves.png"))  # figure 3

    @classmethod
    def load(cls, directory: str, config: dict[str, Any]) -> LSICRecommender:
        recommender = cls(**config)
        models = {}
        for name, kind in (("generator", LSICScorer), ("discriminator", LSICScorer), ("mf", BPRMF)):
            model_config = json.loads(storage.read_text(storage.join(directory, f"{name}.json")))
            if kind is LSICScorer:
                model = kind.from_config(model_config)
                model._built_once()
            else:
                model = built_mf(
                    model_config["n_users"], model_config["n_items"], model_config["embedding_dim"]
                )
            weights = storage.load_npz(storage.join(directory, f"{name}.npz"))
            for k, variable in enumerate(model.weights):
                variable.assign(weights[f"w{k:04d}"])
            models[name] = model
        events = storage.load_npz(storage.join(directory, "training_events.npz"))
        seq = UserSequences(
            events["indptr"], events["items"], events["ratings"], events["timestamps"],
            np.zeros(len(events["items"]), bool),
        )  # fmt: skip
        clock = StepClock.ending_at(seq.timestamps, recommender.config.step_seconds)
        n_items = models["generator"].n_items
        user_grid, movie_grid = build_grids(seq, n_items, clock, recommender.config.session_steps)
        recommender.trained = Trained(
            models["generator"], models["discriminator"], models["mf"], clock, user_grid, movie_grid
        )
        recommender._sequences = seq
        path = storage.join(directory, "training_log.json")
        recommender.training_log = json.loads(storage.read_text(path)) if storage.exists(path) else {}
        return recommender
