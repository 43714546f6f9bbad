"""LSIC (Zhao et al., "Leveraging Long and Short-term Information in Content-aware Movie
Recommendation via Adversarial Training"): MF + user/movie LSTMs in four mixtures (network.py), a
policy-gradient generator against a siamese discriminator (training.py), MF retrieval + re-ranking
(candidates.py), posters (posters.py), weekly windows (windows.py)."""

from movierec.models.lsic.config import LSICConfig
from movierec.models.lsic.network import LSICScorer
from movierec.models.lsic.recommender import LSICRecommender

__all__ = ["LSICConfig", "LSICRecommender", "LSICScorer"]
