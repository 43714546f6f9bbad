"""Keras 3 recommenders and baselines. Nothing here knows about TFX, files or data splits."""

from movierec.models.base import QueryBatch, RatingPredictor, Recommender, TrainingData, UserSequences
from movierec.models.gru4rec import GRU4Rec, GRU4RecRecommender
from movierec.models.item_knn import ItemKNN
from movierec.models.losses import RANKING_LOSSES, RankingLoss
from movierec.models.matrix_factorization import (
    BPRMF,
    BPRMFRecommender,
    MatrixFactorization,
    RatingMFRecommender,
)
from movierec.models.popularity import Popularity, SessionPopularity
from movierec.models.registry import MODELS, build_model, get_spec, load_model, save_model

__all__ = [
    "BPRMF",
    "MODELS",
    "RANKING_LOSSES",
    "BPRMFRecommender",
    "GRU4Rec",
    "GRU4RecRecommender",
    "ItemKNN",
    "MatrixFactorization",
    "Popularity",
    "QueryBatch",
    "RankingLoss",
    "RatingMFRecommender",
    "RatingPredictor",
    "Recommender",
    "SessionPopularity",
    "TrainingData",
    "UserSequences",
    "build_model",
    "get_spec",
    "load_model",
    "save_model",
]
