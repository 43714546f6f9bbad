"""The SavedModel exports TF Serving loads — `export_for_serving` dispatches: history models
(`HistoryScorable`, signatures of `ServingModule`) and rating models with stored state
(`RatingServable` with a serving graph: `rating_servable`; signatures of `RatingServingModule`) —
the TF Serving client (`client.py`: REST and gRPC, behind `movierec query`), the warmup requests and
atomic version writing every export uses (`warmup.py`) and TF Serving's model config
(`server_config.py`)."""

from movierec.serving.export import HistoryScorable, ServingModule, export_for_serving
from movierec.serving.rating_export import (
    RatingServable,
    RatingServingModule,
    export_rating_model,
    rating_servable,
)

__all__ = [
    "HistoryScorable",
    "RatingServable",
    "RatingServingModule",
    "ServingModule",
    "export_for_serving",
    "export_rating_model",
    "rating_servable",
]
