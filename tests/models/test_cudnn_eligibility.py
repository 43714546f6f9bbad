"""Which recurrent parts of the models can run as cuDNN kernels on a GPU, checked with Keras' own rules.

With the TensorFlow backend, Keras 3 runs `keras.layers.LSTM`/`GRU` through cuDNN when the layer's
arguments pass `_do_lstm_arguments_support_cudnn` / `_do_gru_arguments_support_cudnn` (tanh, sigmoid,
a bias, no unroll; GRU reset_after), it has no recurrent dropout, and its mask is strictly right-padded
without an empty row (`_assert_valid_mask`, asserted in the graph). Those checks are Keras' functions,
imported from the installed version, so this test follows Keras rather than a copy of its rules.

Every other recurrence is one the paper defines differently from cuDNN's LSTM/GRU; they are listed
below with the paper's reason, so that adding, removing or replacing a recurrent part fails here until
the list (and the README's "Training on GPUs") says why.
"""

from __future__ import annotations

import re
from pathlib import Path

import keras
import numpy as np
import pytest
from keras.src.backend.tensorflow.rnn import (
    _do_gru_arguments_support_cudnn,
    _do_lstm_arguments_support_cudnn,
    _has_fully_masked_sequence,
    _is_sequence_right_padded,
)

from movierec.models.gru4rec.network import GRU4Rec
from movierec.models.iarn.network import IARN
from movierec.models.lsic.network import LSICScorer
from movierec.models.lstm_cnn.network import LSTMCNN
from movierec.models.rrn.network import RRN

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"

# Recurrent cells that are not the cell of a keras LSTM/GRU layer, and why the paper keeps them so.
CUSTOM_REASONS = {
    "SessionGRUCell": "GRU4Rec's candidate activation (Hidasi et al. 2016, §3, the paper's eq. 4) is "
    "tanh(W x + U (r ⊙ h)), the reset applied before the recurrent product; cuDNN's GRU is Keras' "
    "reset_after=True, tanh(W x + r ⊙ (U h + b)), a different function. Training also runs one step per "
    "session-parallel mini-batch with per-lane state resets (§3.1.1), so there is no sequence to fuse.",
    "StepLSTMCell": "RRN predicts step t from the state before t advanced by a rating-free probe step "
    "(the index shift of models/rrn/network.py), which needs the cell state c_t after every step; "
    "cuDNN's LSTM returns the h sequence and only the final c.",
    "AttentionGatedCell": "IARN eqs. (3)-(5): u_t = (1 − a_t) u_{t−1} + a_t ReLU(W u_{t−1} + H x_t + b) "
    "with a scalar attention gate per step from the other side; no LSTM/GRU has that form.",
    "SimpleRNNCell": "IARN eq. (7): the attention module's bi-directional RNN has the activation g = "
    "ReLU, and Keras has no cuDNN path for SimpleRNN with any activation.",
    "LSTMCell": "LSIC v4 (eqs. 14-18) feeds each step a context whose attention weights come from "
    "h_{t−1}, so a step's input depends on the previous state. v1-v3 could run as one Keras LSTM layer "
    "(same math); not done: it moves the cells' weights (saved .keras files would no longer load) for a "
    "window of 4 weekly steps plus a poster step.",
}


def _networks() -> dict[str, keras.Model]:
    """Every model's network in every variant that changes its recurrent parts, built."""
    networks = {
        "gru4rec": GRU4Rec(n_items=7, hidden_size=4, n_layers=2),
        "gru4rec embedding": GRU4Rec(n_items=7, hidden_size=4, embedding_dim=3),
        "rrn": RRN(n_users=3, n_items=4, embedding_dim=3, hidden_size=4, dynamic_dim=2),
        "lstm_cnn": LSTMCNN(n_users=3, n_items=4, embedding_dim=3, feature_dim=5, lstm_units=4),
    }
    for backbone in ("iarn", "tagm", "rnn", "lstm"):
        networks[f"iarn {backbone}"] = IARN(3, 4, backbone=backbone, embedding_dim=3, hidden_size=4)
    for mixture in ("v1", "v2", "v3", "v4"):
        scorer = LSICScorer(3, 4, mixture=mixture, mf_dim=2, embedding_dim=3, hidden_size=2)
        scorer._built_once()  # its cells are built by the first call
        networks[f"lsic {mixture}"] = scorer
    return networks


EXPECTED = {
    "gru4rec": {"custom": {"gru_0": "SessionGRUCell", "gru_1": "SessionGRUCell"}},
    "gru4rec embedding": {"custom": {"gru_0": "SessionGRUCell"}},
    "rrn": {"custom": {"user_network/lstm": "StepLSTMCell", "movie_network/lstm": "StepLSTMCell"}},
    "lstm_cnn": {"cudnn": {"history_lstm_1", "history_lstm_2"}},
    "iarn lstm": {"cudnn": {"user_lstm", "item_lstm"}},
    "iarn rnn": {
        "custom": {
            "user_gated_rnn/user_gated_cell": "AttentionGatedCell",
            "item_gated_rnn/item_gated_cell": "AttentionGatedCell",
        }
    },
    **{
        f"iarn {backbone}": {
            "custom": {
                "user_gated_rnn/user_gated_cell": "AttentionGatedCell",
                "item_gated_rnn/item_gated_cell": "AttentionGatedCell",
                **{
                    f"{side}_{direction}_rnn/simple_rnn_cell": "SimpleRNNCell"
                    for side in ("user", "item")
                    for direction in ("forward", "backward")
                },
            }
        }
        for backbone in ("iarn", "tagm")
    },
    **{
        f"lsic {m}": {"custom": {"user_lstm": "LSTMCell", "movie_lstm": "LSTMCell"}}
        for m in ("v1", "v2", "v3", "v4")
    },
}


def _recurrent_parts(model: keras.Model) -> tuple[dict[str, keras.layers.RNN], dict[str, str]]:
    """({name: keras LSTM/GRU layer}, {path below the model: class name} of every other recurrent
    cell). A recurrent cell is any layer that owns a `recurrent_kernel` (Keras' cells and ours)."""
    layers = list(model._flatten_layers(include_self=False, recursive=True))
    owner = {id(layer.cell): layer for layer in layers if isinstance(layer, keras.layers.RNN)}
    cudnn, custom = {}, {}
    for layer in layers:
        if getattr(layer, "recurrent_kernel", None) is None:
            continue
        parent = owner.get(id(layer))
        if isinstance(parent, keras.layers.LSTM | keras.layers.GRU):
            cudnn[parent.name] = parent
        else:
            custom[layer.path.split("/", 1)[1]] = type(layer).__name__
    return cudnn, custom


@pytest.fixture(scope="module")
def networks() -> dict[str, keras.Model]:
    return _networks()


@pytest.mark.parametrize("variant", sorted(EXPECTED))
def test_recurrent_parts_are_the_audited_ones(networks, variant):
    cudnn, custom = _recurrent_parts(networks[variant])
    assert set(cudnn) == EXPECTED[variant].get("cudnn", set())
    assert custom == EXPECTED[variant].get("custom", {})
    assert set(custom.values()) <= set(CUSTOM_REASONS)


@pytest.mark.parametrize("variant", sorted(v for v in EXPECTED if "cudnn" in EXPECTED[v]))
def test_keras_lstm_and_gru_layers_take_the_cudnn_path(networks, variant):
    cudnn, _ = _recurrent_parts(networks[variant])
    for name, layer in cudnn.items():
        cell = layer.cell
        assert layer.use_cudnn in ("auto", True), name
        assert not cell.recurrent_dropout, name  # Keras' LSTM/GRU skip cuDNN with recurrent dropout
        if isinstance(layer, keras.layers.GRU):
            supported = _do_gru_arguments_support_cudnn(
                cell.activation, cell.recurrent_activation, layer.unroll, cell.use_bias, cell.reset_after
            )
        else:
            supported = _do_lstm_arguments_support_cudnn(
                cell.activation, cell.recurrent_activation, layer.unroll, cell.use_bias
            )
        assert supported, f"{variant}: {name} has arguments cuDNN's kernel does not support"


def _record_masks(layer: keras.layers.RNN) -> list[np.ndarray]:
    """The masks `layer` hands its inner loop from now on, which is where Keras chooses cuDNN (the real
    loop still runs)."""
    seen, inner_loop = [], layer.inner_loop

    def recording(sequences, initial_state, mask, training=False):
        seen.append(np.asarray(mask[0] if isinstance(mask, list | tuple) else mask))
        return inner_loop(sequences, initial_state, mask, training=training)

    layer.inner_loop = recording
    return seen


def _valid_for_cudnn(mask: np.ndarray) -> bool:
    return bool(_is_sequence_right_padded(mask)) and not bool(_has_fully_masked_sequence(mask))


# Right-padded histories as the models' history builders lay them out, with an empty one (a user with
# no earlier liked movie, an item nobody rated before): [b=3, L=4].
MASK = np.array([[True, True, True, False], [False, False, False, False], [True, True, True, True]])


def test_lstm_cnn_masks_are_cudnn_valid_and_an_empty_history_still_gives_zero_state():
    model = LSTMCNN(n_users=3, n_items=4, embedding_dim=3, feature_dim=5, lstm_units=4)
    rng = np.random.default_rng(0)
    history = rng.normal(size=(3, 4, 5)).astype("float32")
    explicit = rng.normal(size=(3, 5)).astype("float32")
    # what the layers give with the histories' own mask on the CPU path (an empty row keeps the zero
    # initial state): the values the cuDNN-safe masks must not change
    _, _, reference = model.lstm_2(model.lstm_1(history, mask=MASK), mask=MASK)
    assert np.all(np.asarray(reference)[1] == 0)
    expected = model.user_fc(np.concatenate([explicit, np.asarray(reference)], axis=-1))
    first, second = _record_masks(model.lstm_1), _record_masks(model.lstm_2)
    got = model.user_features_from(explicit, history, MASK)
    masks = first + second
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-6, atol=1e-6)
    assert len(masks) == 2 and all(_valid_for_cudnn(m) for m in masks), masks
    assert not _valid_for_cudnn(MASK)  # the histories' own mask would stop a GPU train step


def test_iarn_lstm_masks_are_cudnn_valid_and_an_empty_history_still_gives_zero_state():
    model = IARN(3, 4, backbone="lstm", embedding_dim=3, hidden_size=4)
    others = np.where(MASK, np.array([[0, 1, 2, 3]]), -1).astype("int32")
    ratings = np.where(MASK, 4.0, 0.0).astype("float32")
    x, mask = model.step_inputs("user", others, ratings)
    reference = np.asarray(model.lstms["user"](x, mask=mask))
    assert np.all(reference[1] == 0)
    masks = _record_masks(model.lstms["user"])
    state = np.asarray(model.encode_side("user", others, ratings)["state"])
    np.testing.assert_allclose(state, reference, rtol=1e-6, atol=1e-6)
    assert len(masks) == 1 and _valid_for_cudnn(masks[0]), masks


RECURRENT_SOURCE = re.compile(
    r"keras\.layers\.(LSTM|GRU|SimpleRNN|RNN|LSTMCell|GRUCell|SimpleRNNCell|Bidirectional|ConvLSTM\w*)\("
    r"|name=\"recurrent_kernel\""
)


def test_every_model_source_with_a_recurrence_is_audited_here():
    # a new recurrent layer in a model not built above would escape the checks: it must be added
    found = {
        str(path.relative_to(MODELS_DIR))
        for path in MODELS_DIR.rglob("*.py")
        if RECURRENT_SOURCE.search(path.read_text())
    }
    assert found == {
        "gru4rec/network.py",
        "rrn/network.py",
        "lstm_cnn/network.py",
        "iarn/network.py",
        "lsic/network.py",
    }
