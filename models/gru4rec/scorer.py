"""The serving view of a trained GRU4Rec: full-catalogue scores from raw histories, read with the
evaluation's context rule (see movierec.serving.export)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from movierec.constants import DEFAULT_MAX_HISTORY
from movierec.models.gru4rec.config import INFERENCE_MODES
from movierec.models.gru4rec.fused_step import FusedGRUWeights
from movierec.models.gru4rec.network import GRU4Rec


class GRU4RecHistoryScorer(keras.Model):
    """{"items": [B, T] item indices, oldest first, left-padded with -1; "session_start": [B, T] bool}
    → full-catalogue scores [B, n_items], reading the history as `GRU4RecRecommender.query_sequences`
    reads a query's context:

    - inference_mode "session": only the current session (from the last session start);
      "sequence": the whole history, the state reset at session starts where training reset it;
    - at most the `max_history` latest events.

    The GRU runs only over the columns some row still reads, so a short history costs few steps.
    Build it after training: it keeps a copy of the network's recurrent weights in the fused steps'
    layout (`fused_layers`), taken when it is built.
    """

    def __init__(
        self,
        gru4rec: GRU4Rec,
        inference_mode: str = "session",
        reset_at_sessions: bool = False,
        max_history: int = DEFAULT_MAX_HISTORY,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if inference_mode not in INFERENCE_MODES:
            raise ValueError(f"unknown inference_mode {inference_mode!r}; choose one of {INFERENCE_MODES}")
        self.gru4rec = gru4rec
        self.inference_mode = inference_mode
        self.reset_at_sessions = bool(reset_at_sessions)
        self.max_history = int(max_history)
        # the fused steps' weights, computed once from the trained network (on a CPU a short served
        # history costs per op: slicing and concatenating the kernels per request was a tenth of it)
        self.fused = [
            FusedGRUWeights(
                *(
                    self.add_weight(
                        shape=tuple(value.shape),
                        initializer=keras.initializers.Constant(ops.convert_to_numpy(value)),
                        trainable=False,
                        name=f"fused_{part}_{layer}",
                    )
                    for part, value in zip(FusedGRUWeights._fields, weights, strict=True)
                )
            )
            for layer, weights in enumerate(gru4rec.fused_layers())
        ]

    def call(self, inputs) -> Any:
        items = ops.cast(inputs["items"], "int32")
        session_start = ops.cast(inputs["session_start"], "bool")
        width = ops.shape(items)[1]
        valid = items >= 0
        column = ops.arange(width, dtype="int32")[None, :]
        if self.inference_mode == "session":
            first = ops.max(ops.where(valid & session_start, column, 0), axis=1, keepdims=True)
        else:
            first = width - ops.sum(ops.cast(valid, "int32"), axis=1, keepdims=True)
        first = ops.maximum(first, width - self.max_history)
        mask = valid & (column >= first)
        # drop the leading columns no row reads (the histories are right-aligned)
        used = ops.max(ops.sum(ops.cast(mask, "int32"), axis=1))
        skip = width - used
        reset = (session_start & mask)[:, skip:] if self.reset_at_sessions else None
        hidden = self.gru4rec.encode_states(
            ops.maximum(items[:, skip:], 0), reset, mask[:, skip:], fused=self.fused
        )[-1]
        return self.gru4rec.score_all(hidden)

    # -- a served session's state (movierec.serving.export's `update_state`) -----------------------

    @property
    def state_size(self) -> int:
        """Width of the flattened state: n_layers × hidden_size."""
        return self.gru4rec.n_layers * self.gru4rec.hidden_size

    @property
    def resets_at_sessions(self) -> bool:
        """Whether a session start zeroes the state: the context is the current session ("session"),
        or training reset at sessions ("sequence" with session-mode training)."""
        return self.inference_mode == "session" or self.reset_at_sessions

    def advance(self, state, items, session_start, mask) -> tuple[Any, Any]:
        """Reads new events on top of a state, as `call` would read the whole history up to the cap.

        Args:
            state: float [B, state_size], the flattened per-layer states after the events already
                read (zeros: none).
            items: int [B, T] the new events' item indices, oldest first (any value where masked).
            session_start: bool [B, T], true where an event opens a session (the state is zeroed
                before it when `resets_at_sessions`).
            mask: bool [B, T], the valid steps.

        Returns:
            (the state after the new events [B, state_size], full-catalogue scores [B, n_items]).
        """
        network = self.gru4rec
        session_start, mask = ops.cast(session_start, "bool"), ops.cast(mask, "bool")
        reset = session_start & mask if self.resets_at_sessions else None
        shape = (-1, network.n_layers, network.hidden_size)
        layers = ops.reshape(ops.cast(state, network.output_weights.dtype), shape)
        states = [layers[:, i] for i in range(network.n_layers)]
        states = network.encode_states(
            ops.maximum(ops.cast(items, "int32"), 0), reset, mask, states, fused=self.fused
        )
        return ops.concatenate(list(states), axis=1), network.score_all(states[-1])
