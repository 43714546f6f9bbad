"""LSTM+CNN: a combined LSTM and CNN movie recommender (Wang, Ye, Yang & Miao, 2020), in Keras 3.

- `config`: the hyper-parameters (`LSTMCNNConfig`; Table VI and documented defaults for the rest);
- `history`: the liked-movie histories, cut strictly before each predicted event;
- `network`: U_ef, M_f (genres + title CNN), U_pf (2-layer LSTM, final cell state), U_f, the head;
- `training`: MSE, Adam, tie groups shuffled per epoch, best epoch on held-out later training ratings;
- `inference`: the item tower once per call, histories looked up, whole-catalogue rating;
- `recommender`: the fit/score/predict_ratings adapter (`LSTMCNNRecommender`, registry name "lstm-cnn").
"""

from movierec.models.lstm_cnn.config import LSTMCNNConfig
from movierec.models.lstm_cnn.history import LikedHistory
from movierec.models.lstm_cnn.network import LSTMCNN
from movierec.models.lstm_cnn.recommender import LSTMCNNRecommender

__all__ = ["LSTMCNN", "LSTMCNNConfig", "LSTMCNNRecommender", "LikedHistory"]
