"""TFX components of movierec. They know nothing about a particular model."""

from movierec.components.artifacts import DataReport
from movierec.components.example_gen import MovieLensExampleGen
from movierec.components.ranking_evaluator import RankingEvaluator
from movierec.components.reviewed_schema import ReviewedSchemaGen
from movierec.components.sequence_gen import SequenceGen
from movierec.components.validation_gate import AnomalyGate

__all__ = [
    "AnomalyGate",
    "DataReport",
    "MovieLensExampleGen",
    "RankingEvaluator",
    "ReviewedSchemaGen",
    "SequenceGen",
]
