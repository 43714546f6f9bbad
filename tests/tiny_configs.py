"""Tiny hyper-parameters for fast model tests, shared by the model, serving and pipeline tests."""

TINY_RRN = {
    "stationary_dim": 3,
    "embedding_dim": 4,
    "hidden_size": 5,
    "dynamic_dim": 3,
    "pmf_epochs": 2,
    "epochs": 1,
    "batch_size": 4,
    "learning_rate": 0.01,
    "validation_fraction": 0.0,
}
