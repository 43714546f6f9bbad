"""The inference loop's fused GRU step (models/gru4rec/fused_step.py) is eq. (1)–(4) of the cell, and
`encode` over any length (not a multiple of the loop's unroll) equals the training step run event by
event."""

import numpy as np
import pytest
from keras import ops

from movierec.models import GRU4Rec
from movierec.models.gru4rec.fused_step import fused_step, fused_weights
from movierec.models.gru4rec.network import UNROLL


def test_the_fused_step_is_the_cells_recurrence():
    model = GRU4Rec(30, hidden_size=8, embedding_dim=6)  # input [B, 6]
    model.step(np.array([0]), model.initial_state(1))  # builds the weights
    cell = model.cells[0]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 6)).astype(np.float32)
    state = rng.normal(size=(5, 8)).astype(np.float32)
    cell.bias.assign(rng.normal(size=24).astype(np.float32))  # a bias, so its split is checked too
    expected = ops.convert_to_numpy(cell(cell.project(x), state))
    weights = fused_weights(cell.input_kernel, cell.recurrent_kernel, cell.bias)
    np.testing.assert_allclose(
        ops.convert_to_numpy(fused_step(x, state, weights)), expected, rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize(
    "options", [{}, {"n_layers": 2}, {"constrained_embedding": True}, {"embedding_dim": 5}]
)
def test_encode_over_any_length_equals_the_step_by_step_state(options):
    model = GRU4Rec(40, hidden_size=8, **options)
    rng = np.random.default_rng(1)
    width = 2 * UNROLL + 3  # not a multiple of the unroll: masked steps are added in front
    lengths = np.array([width, 5, 1, 0])
    items = np.zeros((4, width), np.int32)
    mask = np.zeros((4, width), bool)
    for row, n in enumerate(lengths):  # left-padded, as served
        items[row, width - n :] = rng.integers(0, 40, n)
        mask[row, width - n :] = True
    reset = np.zeros_like(mask)
    reset[0, 4] = True  # a session opens inside row 0
    hidden = ops.convert_to_numpy(model.encode(items, reset, mask))
    for row, n in enumerate(lengths):
        state = model.initial_state(1)
        top = np.zeros((1, 8), np.float32)
        for t in range(width - n, width):
            state, top = model.step(items[row, t : t + 1], state, reset[row, t : t + 1])
        np.testing.assert_allclose(hidden[row], ops.convert_to_numpy(top)[0], rtol=1e-5, atol=1e-6)
