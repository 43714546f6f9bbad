"""Matrix factorisation in Keras 3: BPR-MF for ranking and biased MF for ratings.

- `BPRMF` (Rendle et al., UAI 2009): x_ui = p_u · q_i + b_i, trained on (user, seen item, unseen
  item) triples with the BPR criterion −ln σ(x_ui − x_uj) (their eq. 4).
- `MatrixFactorization`: r̂_ui = μ + b_u + b_i + p_u · q_i with L2 penalties (Koren, Bell & Volinsky,
  IEEE Computer 2009, eq. 3–5; the PMF of Salakhutdinov & Mnih with biases). It is the stationary
  long-term part that RRN and LSIC build on.

The Keras models are plain layers users can reuse; the `*Recommender` classes adapt them to the
project's fit/score contract (models/base.py).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import keras
import numpy as np
from keras import ops

from movierec.models.base import KerasRecommender, TrainingData
from movierec.models.hyperparameters import (
    Choice,
    Range,
    hyperparameter,
    require,
    require_integers,
    require_numbers,
)
from movierec.models.losses import RankingLoss


@keras.saving.register_keras_serializable(package="movierec")
class BPRMF(keras.Model):
    """Scores `items` [B, C] for `user` [B]: returns [B, C] (column order kept)."""

    def __init__(self, n_users: int, n_items: int, embedding_dim: int = 64, l2: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        self.n_users, self.n_items, self.embedding_dim, self.l2 = n_users, n_items, embedding_dim, l2
        regularizer = keras.regularizers.L2(l2) if l2 else None
        init = keras.initializers.RandomNormal(stddev=0.05)
        self.user_embedding = keras.layers.Embedding(
            n_users, embedding_dim, embeddings_initializer=init, embeddings_regularizer=regularizer
        )
        self.item_embedding = keras.layers.Embedding(
            n_items, embedding_dim, embeddings_initializer=init, embeddings_regularizer=regularizer
        )
        self.item_bias = keras.layers.Embedding(n_items, 1, embeddings_initializer="zeros")

    def call(self, inputs: dict) -> Any:
        user = self.user_embedding(inputs["user"])  # [B, d]
        items = self.item_embedding(inputs["items"])  # [B, C, d]
        return ops.einsum("bd,bcd->bc", user, items) + ops.squeeze(self.item_bias(inputs["items"]), -1)

    def score_all(self, users) -> Any:
        """Scores of the whole catalogue, [B, n_items]."""
        user = self.user_embedding(users)
        return ops.matmul(user, ops.transpose(self.item_embedding.embeddings)) + ops.reshape(
            self.item_bias.embeddings, (1, -1)
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "n_users": self.n_users,
            "n_items": self.n_items,
            "embedding_dim": self.embedding_dim,
            "l2": self.l2,
        }


@keras.saving.register_keras_serializable(package="movierec")
class MatrixFactorization(keras.Model):
    """Predicts the rating of `item` [B] by `user` [B]: returns [B]."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        embedding_dim: int = 32,
        l2: float = 1e-4,
        global_mean: float = 0.0,
        rating_range: tuple[float, float] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.n_users, self.n_items, self.embedding_dim, self.l2 = n_users, n_items, embedding_dim, l2
        self.global_mean = float(global_mean)
        # predictions are clipped to the scale seen in training (a 5.7 on a 1–5 scale is never right)
        self.rating_range = tuple(rating_range) if rating_range is not None else None
        regularizer = keras.regularizers.L2(l2) if l2 else None
        init = keras.initializers.RandomNormal(stddev=0.05)
        self.user_factors = keras.layers.Embedding(
            n_users, embedding_dim, embeddings_initializer=init, embeddings_regularizer=regularizer
        )
        self.item_factors = keras.layers.Embedding(
            n_items, embedding_dim, embeddings_initializer=init, embeddings_regularizer=regularizer
        )
        self.user_bias = keras.layers.Embedding(
            n_users, 1, embeddings_initializer="zeros", embeddings_regularizer=regularizer
        )
        self.item_bias = keras.layers.Embedding(
            n_items, 1, embeddings_initializer="zeros", embeddings_regularizer=regularizer
        )

    def call(self, inputs: dict) -> Any:
        user, item = inputs["user"], inputs["item"]
        interaction = ops.sum(self.user_factors(user) * self.item_factors(item), axis=-1)
        biases = ops.squeeze(self.user_bias(user), -1) + ops.squeeze(self.item_bias(item), -1)
        return self.global_mean + biases + interaction

    def score_all(self, users) -> Any:
        """Predicted ratings of the whole catalogue, [B, n_items]."""
        interaction = ops.matmul(self.user_factors(users), ops.transpose(self.item_factors.embeddings))
        return (
            self.global_mean
            + self.user_bias(users)
            + ops.reshape(self.item_bias.embeddings, (1, -1))
            + interaction
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "n_users": self.n_users,
            "n_items": self.n_items,
            "embedding_dim": self.embedding_dim,
            "l2": self.l2,
            "global_mean": self.global_mean,
            "rating_range": self.rating_range,
        }


class TripleSampler(keras.utils.PyDataset):
    """(user, [positive, negatives…]) batches; uniform negatives redrawn every epoch with numpy."""

    def __init__(self, users, items, n_items, batch_size, n_negatives, seed, **kwargs):
        super().__init__(**kwargs)
        self.users, self.items, self.n_items = users, items, n_items
        self.batch_size, self.n_negatives = batch_size, n_negatives
        self.rng = np.random.default_rng(seed)
        self.on_epoch_end()

    def __len__(self) -> int:
        return math.ceil(len(self.users) / self.batch_size)

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.users))
        self.negatives = self.rng.integers(0, self.n_items, (len(self.users), self.n_negatives))

    def __getitem__(self, index: int):
        rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        candidates = np.concatenate([self.items[rows, None], self.negatives[rows]], axis=1)
        return {"user": self.users[rows], "items": candidates.astype(np.int32)}, np.zeros(len(rows), np.int32)


@dataclasses.dataclass(frozen=True)
class BPRMFConfig:
    # search=: BPR (Rendle et al. 2009) gives no ranges; these are ours (factors on a doubling grid,
    # penalty and learning rate log-uniform)
    embedding_dim: int = hyperparameter(64, "factors per user and item", search=Choice(16, 32, 64, 128, 256))
    l2: float = hyperparameter(1e-5, "L2 penalty of the factors", search=Range(1e-7, 1e-2, log=True))
    epochs: int = hyperparameter(20, "passes over the training events")
    batch_size: int = hyperparameter(1024, "(user, item) pairs per step")
    learning_rate: float = hyperparameter(5e-3, "Adam's learning rate", search=Range(1e-3, 5e-2, log=True))
    negatives: int = hyperparameter(
        4, "uniformly sampled negatives per positive pair", search=Choice(1, 4, 16)
    )
    seed: int = hyperparameter(0, "seed of the initialisation and the sampling")
    min_rating: float = hyperparameter(
        0.0,
        "train only on events rated >= this (e.g. 4: the LSIC paper's BPR, 4-5 stars as positive feedback)",
    )

    def __post_init__(self) -> None:
        _check_training(self, "bpr-mf")
        require_integers(self, "bpr-mf", ("negatives",), 1)
        require(
            math.isfinite(self.min_rating), "bpr-mf", "min_rating", f"must be finite, got {self.min_rating}"
        )


@dataclasses.dataclass(frozen=True)
class RatingMFConfig:
    # search=: ours, as BPR-MF's
    embedding_dim: int = hyperparameter(32, "factors per user and item", search=Choice(8, 16, 32, 64, 128))
    l2: float = hyperparameter(1e-4, "L2 penalty of the factors", search=Range(1e-6, 1e-2, log=True))
    epochs: int = hyperparameter(30, "passes over the training ratings")
    batch_size: int = hyperparameter(1024, "ratings per step")
    learning_rate: float = hyperparameter(3e-3, "Adam's learning rate", search=Range(1e-3, 3e-2, log=True))
    seed: int = hyperparameter(0, "seed of the initialisation and the shuffling")

    def __post_init__(self) -> None:
        _check_training(self, "mf")


def _check_training(config: BPRMFConfig | RatingMFConfig, owner: str) -> None:
    require_integers(config, owner, ("embedding_dim", "batch_size"), 1)
    require_integers(config, owner, ("epochs", "seed"), 0)
    require_numbers(config, owner, ("l2",), 0)
    require_numbers(config, owner, ("learning_rate",), 0, low_open=True)


class BPRMFRecommender(KerasRecommender):
    name = "bpr-mf"
    config_class = BPRMFConfig

    def fit(self, data: TrainingData) -> BPRMFRecommender:
        c = self.config
        keras.utils.set_random_seed(c.seed)
        self.keras_model = BPRMF(data.n_users, data.n_items, c.embedding_dim, c.l2)
        self.keras_model.compile(optimizer=keras.optimizers.Adam(c.learning_rate), loss=RankingLoss("bpr"))
        seq = data.sequences
        positive = seq.ratings >= c.min_rating
        if not positive.any():
            raise ValueError(
                f"bpr-mf: min_rating {c.min_rating:g} leaves no training event (of {len(positive)}; the "
                f"highest rating is {seq.ratings.max() if len(positive) else 'none'})"
            )
        sampler = TripleSampler(
            seq.users[positive],
            seq.items[positive].astype(np.int32),
            data.n_items,
            c.batch_size,
            c.negatives,
            c.seed,
        )
        self.keras_model.fit(sampler, epochs=c.epochs, verbose=0)
        return self


class RatingMFRecommender(KerasRecommender):
    """Ranks by predicted rating; also answers `predict_ratings` for RMSE/MAE."""

    name = "mf"
    config_class = RatingMFConfig

    def fit(self, data: TrainingData) -> RatingMFRecommender:
        c = self.config
        keras.utils.set_random_seed(c.seed)
        seq = data.sequences
        self.keras_model = MatrixFactorization(
            data.n_users,
            data.n_items,
            c.embedding_dim,
            c.l2,
            global_mean=float(seq.ratings.mean()),
            rating_range=(float(seq.ratings.min()), float(seq.ratings.max())),
        )
        self.keras_model.compile(optimizer=keras.optimizers.Adam(c.learning_rate), loss="mse")
        x = {"user": seq.users, "item": seq.items.astype(np.int32)}
        self.keras_model.fit(
            x, seq.ratings, batch_size=c.batch_size, epochs=c.epochs, shuffle=True, verbose=0
        )
        return self

    def predict_ratings(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        x = {"user": users.astype(np.int32), "item": items.astype(np.int32)}
        model = self._model()
        predicted = model.predict(x, batch_size=8192, verbose=0).astype(np.float32)
        return np.clip(predicted, *model.rating_range) if model.rating_range else predicted
