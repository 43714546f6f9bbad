"""Keras 3 recommenders and baselines. Nothing here knows about TFX, files or data splits."""

from movierec.models.base import (
    KerasRecommender,
    QueryBatch,
    RatingPredictor,
    Recommender,
    SideFeatures,
    TrainingData,
    UserSequences,
)
from movierec.models.gru4rec import GRU4Rec, GRU4RecConfig, GRU4RecRecommender
from movierec.models.hyperparameters import describe, make_config
from movierec.models.item_knn import ItemKNN, ItemKNNConfig
from movierec.models.losses import RANKING_LOSSES, RankingLoss
from movierec.models.lsic import LSICConfig, LSICRecommender, LSICScorer
from movierec.models.lstm_cnn import LSTMCNN, LSTMCNNConfig, LSTMCNNRecommender
from movierec.models.matrix_factorization import (
    BPRMF,
    BPRMFConfig,
    BPRMFRecommender,
    MatrixFactorization,
    RatingMFConfig,
    RatingMFRecommender,
)
from movierec.models.popularity import Popularity, PopularityConfig, SessionPopularity
from movierec.models.registry import MODELS, build_model, get_spec, load_model, save_model
from movierec.models.rrn import RRN, RRNConfig, RRNRecommender

__all__ = [
    "BPRMF",
    "LSTMCNN",
    "MODELS",
    "RANKING_LOSSES",
    "RRN",
    "BPRMFConfig",
    "BPRMFRecommender",
    "GRU4Rec",
    "GRU4RecConfig",
    "GRU4RecRecommender",
    "ItemKNN",
    "ItemKNNConfig",
    "KerasRecommender",
    "LSICConfig",
    "LSICRecommender",
    "LSICScorer",
    "LSTMCNNConfig",
    "LSTMCNNRecommender",
    "MatrixFactorization",
    "Popularity",
    "PopularityConfig",
    "QueryBatch",
    "RRNConfig",
    "RRNRecommender",
    "RankingLoss",
    "RatingMFConfig",
    "RatingMFRecommender",
    "RatingPredictor",
    "Recommender",
    "SessionPopularity",
    "SideFeatures",
    "TrainingData",
    "UserSequences",
    "build_model",
    "describe",
    "get_spec",
    "load_model",
    "make_config",
    "save_model",
]
