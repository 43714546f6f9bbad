"""The GRU4Rec network in Keras 3 (Hidasi, Karatzoglou, Baltrunas & Tikk, ICLR 2016, §3, Fig. 1).

`GRU4Rec`: one GRU step (`call`/`step`), candidate or full-catalogue scores, and a traceable pass over
padded sequences (`encode`/`score_sequences`) for inference and serving.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from movierec.models.gru4rec.fused_step import FusedGRUWeights, at_step, fused_step, fused_weights, read_once

UNROLL = 4  # GRU steps per iteration of the inference loop (`GRU4Rec.encode_states`)


def take_rows(table: keras.Variable, rows) -> Any:
    """Rows `rows` [N] of the item table `table` [n_items, …]: [N, …].

    On TensorFlow the lookup reads only those rows (`tf.gather` on the resource variable:
    ResourceGather). `ops.take` would first read the whole table, and while that read is alive the
    optimizer's in-place update of the step's rows (a scatter) makes TensorFlow copy the whole table
    (copy-on-write): a training step then costs O(catalogue), not O(candidates).
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.gather(table.value, rows)
    return ops.take(table, rows, axis=0)


def times_transposed(x, rows) -> Any:
    """x [B, H] · rowsᵀ for item rows [N, H] (a table or rows taken from one): [B, N].

    On TensorFlow one MatMul that reads `rows` transposed (`transpose_b`): `ops.transpose` would
    materialise rowsᵀ, and its gradient transposes [H, N] back — two passes over the rows a step.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.matmul(x, rows, transpose_b=True)
    return ops.matmul(x, ops.transpose(rows))


@keras.saving.register_keras_serializable(package="movierec")
class SessionGRUCell(keras.layers.Layer):
    """One GRU layer for one time step, with the gates of Hidasi et al. 2016, §3 eq. (1)–(4):

        h_t = (1 − z_t) h_{t−1} + z_t ĥ_t                  (1)
        z_t = σ(W_z x_t + U_z h_{t−1})                      (2)
        ĥ_t = tanh(W x_t + U (r_t ⊙ h_{t−1}))               (3)
        r_t = σ(W_r x_t + U_r h_{t−1})                      (4)

    The input projection x_t ↦ [W_z; W_r; W] x_t is separate (`project`): with item ids as input it is a
    row lookup, which is exactly the product with a one-hot vector (the 1-of-N input of §3.1).
    """

    def __init__(self, units: int, input_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.units, self.input_dim = int(units), int(input_dim)

    def build(self, input_shape=None) -> None:
        h = self.units
        self.input_kernel = self.add_weight(
            shape=(self.input_dim, 3 * h), initializer="glorot_uniform", name="input_kernel"
        )
        self.recurrent_kernel = self.add_weight(
            shape=(h, 3 * h), initializer="orthogonal", name="recurrent_kernel"
        )
        self.bias = self.add_weight(shape=(3 * h,), initializer="zeros", name="bias")

    def project(self, inputs) -> Any:
        """[W_z; W_r; W] x for dense inputs [B, input_dim], or the one-hot lookup for int ids [B]."""
        if "int" in str(inputs.dtype):
            return take_rows(self.input_kernel, inputs)
        return ops.matmul(inputs, self.input_kernel)

    def call(self, projected, state) -> Any:
        """projected: [B, 3H] (from `project`), state: h_{t−1} [B, H] → h_t [B, H]."""
        return self.recur(projected + self.bias, state)

    def recur(self, x, state, kernels=None) -> Any:
        """`call` on an input projection that already holds the bias (inference adds it once for a
        whole sequence): x [B, 3H], state h_{t−1} [B, H] → h_t [B, H]. `kernels`: `split_kernels()`,
        read once outside a loop over steps."""
        u_zr, u = self.split_kernels() if kernels is None else kernels
        # splits, not slices: a split's gradient is one concatenation, a slice's a zero-filled tensor
        # of the whole input per slice, summed (a tenth of a training step's kernel time)
        x_z, x_r, x_c = ops.split(x, 3, axis=1)
        recurrent_z, recurrent_r = ops.split(ops.matmul(state, u_zr), 2, axis=1)
        z = ops.sigmoid(x_z + recurrent_z)  # eq. (2)
        r = ops.sigmoid(x_r + recurrent_r)  # eq. (4)
        candidate = ops.tanh(x_c + ops.matmul(r * state, u))  # eq. (3)
        return (1.0 - z) * state + z * candidate  # eq. (1)

    def split_kernels(self) -> tuple[Any, Any]:
        """The recurrent kernel's [U_z; U_r] [H, 2H] and U [H, H] parts."""
        u_zr, u = ops.split(self.recurrent_kernel, [2 * self.units], axis=1)
        return u_zr, u

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units, "input_dim": self.input_dim}


@keras.saving.register_keras_serializable(package="movierec")
class GRU4Rec(keras.Model):
    """The GRU4Rec network (Hidasi et al. 2016, §3, Fig. 1): input item → [embedding] → GRU layers →
    scores r = act(h · W_outᵀ + b_out) of candidate items (the feedforward output layer).

    - `embedding_dim=0`: 1-of-N input, the first GRU layer's input weights are the item lookup;
      `embedding_dim>0`: a separate embedding layer feeds the GRU (§3.1 reports both).
    - `constrained_embedding=True`: the input embedding of item i is its output weight row W_out[i]
      (input and output item representations tied; then `embedding_dim` must be 0).
    - States are stacked per layer: [n_layers, B, hidden_size].
    - `dropout_carried=True`: in training, the dropped-out hidden state is also the state carried to
      the next step (the authors' implementation); else only the layer's output is dropped.
    """

    def __init__(
        self,
        n_items: int,
        hidden_size: int = 100,
        n_layers: int = 1,
        embedding_dim: int = 0,
        dropout_input: float = 0.0,
        dropout_hidden: float = 0.0,
        final_activation: str = "linear",
        constrained_embedding: bool = False,
        dropout_carried: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if constrained_embedding and embedding_dim:
            raise ValueError(
                "constrained_embedding uses the output weights as embedding: set embedding_dim=0"
            )
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        self.n_items, self.hidden_size, self.n_layers = int(n_items), int(hidden_size), int(n_layers)
        self.embedding_dim = int(embedding_dim)
        self.dropout_input, self.dropout_hidden = float(dropout_input), float(dropout_hidden)
        self.final_activation = final_activation
        self.constrained_embedding = bool(constrained_embedding)
        self.dropout_carried = bool(dropout_carried)
        self.activation = keras.activations.get(final_activation)

        self.one_hot = self.embedding_dim == 0 and not self.constrained_embedding
        self.embedding = (
            keras.layers.Embedding(self.n_items, self.embedding_dim, name="item_embedding")
            if self.embedding_dim
            else None
        )
        first_input = self.n_items if self.one_hot else (self.embedding_dim or self.hidden_size)
        self.cells = [
            SessionGRUCell(
                self.hidden_size, first_input if layer == 0 else self.hidden_size, name=f"gru_{layer}"
            )
            for layer in range(self.n_layers)
        ]
        self.input_dropout = keras.layers.Dropout(self.dropout_input)
        self.hidden_dropout = keras.layers.Dropout(self.dropout_hidden)
        self.build()

    def build(self, input_shape=None) -> None:
        # Every shape is known from the config, so the weights exist as soon as the model does
        # (load_model then restores them without a sample call).
        if self.embedding is not None:
            self.embedding.build((None,))
        for cell in self.cells:
            cell.build()
        self.output_weights = self.add_weight(
            shape=(self.n_items, self.hidden_size), initializer="glorot_uniform", name="output_weights"
        )
        self.output_bias = self.add_weight(shape=(self.n_items,), initializer="zeros", name="output_bias")
        self.built = True

    # -- one step ---------------------------------------------------------------------------------

    def initial_state(self, batch_size: int) -> Any:
        return ops.zeros((self.n_layers, batch_size, self.hidden_size))

    def step(self, items, state, reset=None, training: bool = False, output_weights=None) -> tuple[Any, Any]:
        """Feeds `items` [B] to the network in `state` [L, B, H]; returns (next state, top hidden [B, H]).

        Where `reset` [B] is true the lane's state is zeroed BEFORE the item is read: the item opens a
        new session (§3.1.1). The state is not a differentiable input of the step: gradients stop at
        it (BPTT of length 1, as in the paper). `output_weights`: the output weights already read
        whole (`read_output_weights`), from which the tied embedding takes its rows (see there).
        """
        state = ops.stop_gradient(ops.convert_to_tensor(state, dtype=self.output_weights.dtype))
        if reset is not None:
            keep = 1.0 - ops.cast(ops.reshape(reset, (1, -1, 1)), state.dtype)
            state = state * keep
        items = ops.cast(items, "int32")
        if self.one_hot:
            projected = self.cells[0].project(items)
            if training and self.dropout_input > 0:
                # dropout of the 1-of-N input: the whole item is dropped (scaled by 1/(1 − p)) or kept
                projected = projected * self.input_dropout(ops.ones((ops.shape(items)[0], 1)), training=True)
        else:
            if self.embedding is not None:
                vectors = take_rows(self.embedding.embeddings, items)
            elif output_weights is None:  # the tied embedding: the output weights' rows
                vectors = take_rows(self.output_weights, items)
            else:
                vectors = ops.take(output_weights, items, axis=0)
            projected = self.cells[0].project(self.input_dropout(vectors, training=training))
        next_states, hidden = [], None
        for cell in self.cells:
            if hidden is not None:  # layers above the first read the one below (dropped out)
                projected = cell.project(hidden)
            hidden = cell(projected, state[len(next_states)])
            if self.dropout_carried:
                hidden = self.hidden_dropout(hidden, training=training)
                next_states.append(hidden)
            else:
                next_states.append(hidden)
                hidden = self.hidden_dropout(hidden, training=training)
        return ops.stack(next_states, axis=0), hidden

    # -- scores -----------------------------------------------------------------------------------

    def score_items(self, hidden, items) -> Any:
        """Scores of the candidates `items` [C] shared by the batch: act(h · W_out[items]ᵀ + b_out[items])."""
        items = ops.cast(items, "int32")
        weights = take_rows(self.output_weights, items)  # [C, H]
        bias = take_rows(self.output_bias, items)
        return self.activation(times_transposed(hidden, weights) + bias)

    def scores_whole_catalogue(self, n_candidates: int | None) -> bool:
        """Whether scoring the whole catalogue is the cheaper way to score `n_candidates` (a static
        count; None: unknown): when the catalogue is no larger than the candidate list (ML-100K's
        1,682 movies against 80 + 2,048 training candidates), one full-catalogue matmul beats
        gathering [C, H] output rows, and the output weights get one dense gradient instead of C
        gathered rows."""
        return n_candidates is not None and self.n_items <= n_candidates

    def score_candidates(self, hidden, items) -> Any:
        """`score_items`' values, computed the cheaper way for the candidate count
        (`scores_whole_catalogue`: the catalogue's scores, then a column pick)."""
        if self.scores_whole_catalogue(items.shape[0]):
            return ops.take(self.score_all(hidden), ops.cast(items, "int32"), axis=1)
        return self.score_items(hidden, items)

    def score_all(self, hidden, output_weights=None) -> Any:
        """Scores of the whole catalogue for hidden states [B, H]: [B, n_items] (`output_weights`: the
        table already read, `read_output_weights`)."""
        table = self.output_weights if output_weights is None else output_weights
        return self.activation(times_transposed(hidden, table) + self.output_bias)

    def read_output_weights(self) -> Any:
        """The output weights read whole, for a training step that scores the whole catalogue: its
        tied-embedding lookup (`step`) and its scores (`score_all`) share this one read. TensorFlow
        switches a variable that is ever accessed row-wise (a gather) to copy-on-read: from then on
        every whole read and every dense update copies the table. A step that reads the table
        whole anyway takes its rows from the read, so the table is never accessed row-wise."""
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            return tf.convert_to_tensor(self.output_weights.value)  # one ReadVariableOp for both uses
        return ops.convert_to_tensor(self.output_weights)

    def call(self, inputs: dict, training: bool = False) -> tuple[Any, Any]:
        """inputs: "items" [B], "state" [L, B, H] (zeros when absent), optional "reset" [B] and
        "candidates" [C]. Returns (next state, scores [B, C] or [B, n_items])."""
        items = inputs["items"]
        state = inputs.get("state")
        if state is None:
            state = self.initial_state(ops.shape(items)[0])
        state, hidden = self.step(items, state, inputs.get("reset"), training=training)
        candidates = inputs.get("candidates")
        scores = self.score_all(hidden) if candidates is None else self.score_items(hidden, candidates)
        return state, scores

    # -- padded sequences (inference, serving) ------------------------------------------------------

    def encode(self, items, reset, mask) -> Any:
        """Runs over padded sequences and returns the top hidden state after each row's last valid step.

        items [B, T] int, reset [B, T] bool (zero the state before that step), mask [B, T] bool (valid
        steps; padded steps leave the state unchanged). A row without valid steps keeps the zero state.
        """
        return self.encode_states(items, reset, mask)[-1]

    def encode_states(self, items, reset, mask, states=None, fused=None) -> tuple:
        """`encode` from given per-layer states (a tuple of n_layers [B, H]; zeros when None) → the
        per-layer states after each row's last valid step: how a served session advances its state
        by its new events only. `reset` None: no step zeroes the state (the loop then has no reset
        arithmetic: a reader of the current session only never resets).

        Inference only (no dropout), so the loop body holds only the recurrence: the first layer's
        inputs of every step are one gather before it, and each layer's step is one fused kernel
        (`fused_step`; on a CPU, a short history's cost is the number of small ops per step, not
        arithmetic).
        """
        items = ops.cast(items, "int32")
        inputs = ops.transpose(self.first_layer_inputs(items), (1, 0, 2))  # time-major: a step is a gather
        mask = ops.transpose(ops.cast(mask, "bool"))[:, :, None]  # [T, B, 1]
        if states is None:
            states = tuple(ops.zeros((ops.shape(items)[0], self.hidden_size)) for _ in self.cells)
        states = tuple(states)
        fused = self.fused_layers() if fused is None else fused
        fused = [read_once(layer) for layer in fused]
        # UNROLL steps per loop iteration (a loop iteration costs more than a fused step): the
        # sequences get masked steps in front up to a multiple of UNROLL, which leave the state as is
        width = ops.shape(items)[1]
        blocks = (width + UNROLL - 1) // UNROLL
        front = blocks * UNROLL - width

        def in_blocks(sequence, fill):
            padded = ops.pad(sequence, [[front, 0], [0, 0], [0, 0]], constant_values=fill)
            return ops.reshape(padded, (blocks, UNROLL, *ops.shape(sequence)[1:]))

        sequences = [in_blocks(inputs, 0.0), in_blocks(mask, False)]
        if reset is not None:
            keep = ops.transpose(1.0 - ops.cast(reset, self.output_weights.dtype))[:, :, None]
            sequences.append(in_blocks(keep, 1.0))

        def body(block, states):
            steps = [ops.unstack(at_step(a, block), UNROLL, axis=0) for a in sequences]
            for x, step_mask, *step_keep in zip(*steps, strict=True):
                read = [state * step_keep[0] for state in states] if step_keep else states
                advanced = []
                for layer in range(len(self.cells)):
                    below = x if layer == 0 else advanced[-1]
                    advanced.append(fused_step(below, read[layer], fused[layer]))
                states = tuple(
                    ops.where(step_mask, new, old) for new, old in zip(advanced, states, strict=True)
                )
            return states

        return ops.fori_loop(0, blocks, body, states)

    def first_layer_inputs(self, items) -> Any:
        """The first GRU layer's inputs for items [B, T]: the item vectors [B, T, D] (the embedding, or
        the output weight rows when tied), or for the 1-of-N input the input kernel's rows [B, T, 3H]
        (its product with a one-hot vector; `fused_layers` gives that layer an identity kernel)."""
        if self.one_hot:
            return ops.take(self.cells[0].input_kernel, items, axis=0)
        if self.embedding is not None:
            return self.embedding(items)
        return ops.take(self.output_weights, items, 0)

    def fused_layers(self) -> list[FusedGRUWeights]:
        """Each layer's fused-step weights (`fused_step`) for the inputs `encode_states` feeds it: the
        first layer's `first_layer_inputs`, the layers above the hidden state below."""
        layers = []
        for n, cell in enumerate(self.cells):
            kernel = cell.input_kernel
            if n == 0 and self.one_hot:  # the inputs are already the kernel's rows
                kernel = ops.eye(3 * self.hidden_size, dtype=kernel.dtype)
            layers.append(fused_weights(kernel, cell.recurrent_kernel, cell.bias))
        return layers

    def score_sequences(self, items, reset, mask) -> Any:
        """Full-catalogue scores [B, n_items] after padded sequences (see `encode`)."""
        return self.score_all(self.encode(items, reset, mask))

    def predict_step(self, data) -> Any:
        """`predict` on {"items", "reset", "mask"} [B, T] returns `score_sequences` (compiled by Keras)."""
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self.score_sequences(x["items"], x["reset"], x["mask"])

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "n_items": self.n_items,
            "hidden_size": self.hidden_size,
            "n_layers": self.n_layers,
            "embedding_dim": self.embedding_dim,
            "dropout_input": self.dropout_input,
            "dropout_hidden": self.dropout_hidden,
            "final_activation": self.final_activation,
            "constrained_embedding": self.constrained_embedding,
            "dropout_carried": self.dropout_carried,
        }
