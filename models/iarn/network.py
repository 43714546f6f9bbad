"""The IARN network of Pei, Yang, Sun, Zhang, Bozzon & Tax (CIKM 2017), Keras 3 ops only.

Two recurrent networks, one per side, that do not share parameters (§3.1). For a pair (user i, item j)
at time t, the user side reads x_i = the embeddings of the items i rated before t and the item side
reads x_j = the embeddings of the users who rated j before t (history.py), oldest first, right-padded.

- Feature encoder (§3.3), item side only as in the paper: E_v(x_jt) = Σ_k M^k x_jt over item j's genres
  (flat, eq. 11) or Σ_k M^{leaf k} M^{group(k)} x_jt (hierarchical, eq. 12: the parent's projection
  first, then the leaf's; features.py defines the hierarchy and why paths are added). An item with
  no genre uses one extra learned projection (its path is "Other"). E_u is the identity.
- Interacting attention (§3.2): a bidirectional ReLU RNN per side (eqs. 7, 9) gives (→u_t; ←u_t) at
  every step and the summary (→u_T; ←u_1); the user gate a_it = σ(M_uᵀ tanh(L_u (→u_t; ←u_t; →v_T;
  ←v_1) + b'_u)) (eq. 6), the item gate symmetrically (eq. 8). L_u is one Dense over the
  concatenation written as its two halves, the own half (with b'_u) and the paired half, so the
  paired half is computed once per paired sequence (the catalogue scorer relies on it).
- Attention-gated recurrence (§3.1): u_t = (1 − a_t) u_{t−1} + a_t ReLU(W_u u_{t−1} + H_u E_u(x_t)
  + b_u) (eqs. 3-5), u_0 = 0. Padded steps get a_t = 0, so they carry the state unchanged: no
  influence on the last state or on anything after.
- Heads: ũ_i = PReLU(W̃_u u_T + b̃_u), ṽ_j likewise (eq. 2), after dropout on u_T, v_T (§3.4);
  r̃_ij = ⟨ũ_i, ṽ_j⟩ (eq. 1), no global mean or biases: the README's reading of the paper has none
  and the PReLU heads can represent an offset themselves.

Backbones (§4.1): "iarn" as above; "tagm" drops the paired half of eqs. (6), (8) (gates from the own
bi-RNN only, as TAGM); "rnn" is eq. (4) alone (a_t = 1 on real steps); "lstm" replaces the gated
recurrence by a Keras LSTM (no scalar gates). `rating_input` (ours) appends r − μ to every x_t.

The model also carries what predictions need besides weights, as non-trainable variables saved in the
`.keras` archive: the item genre table and every training event (user-major: indptr, items, ratings,
timestamps), from which both sides' histories are rebuilt; the vocabularies travel in its config.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from movierec.models.cudnn import nonempty_mask, zero_empty
from movierec.models.iarn.features import GROUP_NAMES, OTHER

SIDES = ("user", "item")
OTHER_SIDE = {"user": "item", "item": "user"}


@keras.saving.register_keras_serializable(package="movierec")
class AttentionGatedCell(keras.layers.Layer):
    """Eqs. (3)-(4): the step input is [H E(x_t) + b, a_t] (the projection is done for all steps at
    once outside the loop); u_t = (1 − a_t) u_{t−1} + a_t ReLU(W u_{t−1} + H E(x_t) + b)."""

    def __init__(self, units: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = int(units)
        self.state_size = self.units
        self.output_size = self.units

    def build(self, input_shape: Any = None) -> None:
        self.recurrent_kernel = self.add_weight(
            name="recurrent_kernel", shape=(self.units, self.units), initializer="orthogonal"
        )
        self.built = True

    def call(self, inputs: Any, states: Any, training: bool = False) -> tuple[Any, list[Any]]:
        previous = states[0] if isinstance(states, list | tuple) else states
        projected, gate = inputs[:, : self.units], inputs[:, self.units :]
        candidate = ops.relu(ops.matmul(previous, self.recurrent_kernel) + projected)  # eq. (4)
        state = (1.0 - gate) * previous + gate * candidate  # eq. (3)
        return state, [state]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="movierec")
class IARN(keras.Model):
    """See the module. `n_genres` 0 (or `features="none"`) switches the feature encoder off;
    `genre_parents` [n_genres] are the genres' group indices (features.genre_parents); `n_events`
    sizes the stored training events."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        backbone: str = "iarn",
        features: str = "flat",
        embedding_dim: int = 32,
        hidden_size: int = 64,
        latent_dim: int = 25,
        attention_units: int = 64,
        rating_input: bool = False,
        dropout: float = 0.25,
        n_genres: int = 0,
        genre_parents: list[int] | tuple[int, ...] | None = None,
        n_events: int = 0,
        global_mean: float = 0.0,
        rating_range: tuple[float, float] | list[float] | None = None,
        vocabularies: dict[str, list[str]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if backbone not in ("iarn", "tagm", "rnn", "lstm"):
            raise ValueError(f"backbone must be iarn, tagm, rnn or lstm, got {backbone!r}")
        if features not in ("none", "flat", "hierarchical"):
            raise ValueError(f"features must be none, flat or hierarchical, got {features!r}")
        self.n_users, self.n_items = int(n_users), int(n_items)
        self.backbone, self.features = str(backbone), str(features)
        self.embedding_dim, self.hidden_size = int(embedding_dim), int(hidden_size)
        self.latent_dim, self.attention_units = int(latent_dim), int(attention_units)
        self.rating_input = bool(rating_input)
        self.dropout_rate = float(dropout)
        self.n_genres = int(n_genres)
        self.genre_parents = [int(p) for p in (genre_parents if genre_parents is not None else [])]
        if len(self.genre_parents) not in (0, self.n_genres):
            raise ValueError(
                f"genre_parents has {len(self.genre_parents)} entries for {self.n_genres} genres"
            )
        if not self.genre_parents:
            self.genre_parents = [OTHER] * self.n_genres
        self.n_events = int(n_events)
        self.global_mean = float(global_mean)
        self.rating_range = tuple(float(r) for r in rating_range) if rating_range is not None else None
        self.vocabularies = {k: list(v) for k, v in (vocabularies or {}).items()}
        self.use_features = self.features != "none" and self.n_genres > 0
        self.attention = self.backbone in ("iarn", "tagm")
        self.interacting = self.backbone == "iarn"

        E, H, F = self.embedding_dim, self.hidden_size, self.attention_units
        # x_t: the item embeddings on the user side, the user embeddings on the item side
        self.embeddings = {
            "user": keras.layers.Embedding(self.n_items, E, name="item_input_embedding"),
            "item": keras.layers.Embedding(self.n_users, E, name="user_input_embedding"),
        }
        if self.backbone == "lstm":
            self.lstms = {s: keras.layers.LSTM(H, name=f"{s}_lstm") for s in SIDES}
        else:
            self.projections = {s: keras.layers.Dense(H, name=f"{s}_input_projection") for s in SIDES}  # H, b
            self.gated = {
                s: keras.layers.RNN(AttentionGatedCell(H, name=f"{s}_gated_cell"), name=f"{s}_gated_rnn")
                for s in SIDES
            }
        if self.attention:
            rnn = keras.layers.SimpleRNN

            def bi(side: str, direction: str) -> keras.layers.Layer:
                return rnn(
                    H,
                    activation="relu",
                    return_sequences=True,
                    return_state=True,
                    go_backwards=direction == "backward",
                    name=f"{side}_{direction}_rnn",
                )

            self.forward_rnns = {s: bi(s, "forward") for s in SIDES}  # eqs. (7), (9)
            self.backward_rnns = {s: bi(s, "backward") for s in SIDES}
            self.own_fusion = {s: keras.layers.Dense(F, name=f"{s}_fusion_own") for s in SIDES}  # L, b'
            self.scorers = {
                s: keras.layers.Dense(1, use_bias=False, name=f"{s}_attention_score") for s in SIDES
            }
            if self.interacting:
                self.paired_fusion = {
                    s: keras.layers.Dense(F, use_bias=False, name=f"{s}_fusion_paired") for s in SIDES
                }
        self.head_dropout = keras.layers.Dropout(self.dropout_rate, name="head_dropout")
        self.heads = {s: keras.layers.Dense(self.latent_dim, name=f"{s}_head") for s in SIDES}  # eq. (2)
        self.head_activations = {s: keras.layers.PReLU(name=f"{s}_head_prelu") for s in SIDES}
        self.build()

    @property
    def input_dim(self) -> int:
        return self.embedding_dim + (1 if self.rating_input else 0)

    def build(self, input_shape: Any = None) -> None:
        # Every shape is known from the config: weights exist at construction (load_model needs no call).
        D, H = self.input_dim, self.hidden_size
        for layer in self.embeddings.values():
            layer.build((None,))
        for side in SIDES:
            if self.backbone == "lstm":
                self.lstms[side].build((None, None, D))
            else:
                self.projections[side].build((None, None, D))
                self.gated[side].build((None, None, H + 1))
            if self.attention:
                self.forward_rnns[side].build((None, None, D))
                self.backward_rnns[side].build((None, None, D))
                self.own_fusion[side].build((None, None, 2 * H))
                self.scorers[side].build((None, None, self.attention_units))
                if self.interacting:
                    self.paired_fusion[side].build((None, 2 * H))
            self.heads[side].build((None, H))
            self.head_activations[side].build((None, self.latent_dim))
        if self.use_features:
            # M^k of eqs. (10)-(12) per genre, plus one for items without a genre; orthogonal, so a
            # path's product keeps the input's scale
            self.genre_kernels = self.add_weight(
                name="genre_kernels", shape=(self.n_genres + 1, D, D), initializer="orthogonal"
            )
            if self.features == "hierarchical":
                self.group_kernels = self.add_weight(
                    name="group_kernels", shape=(len(GROUP_NAMES), D, D), initializer="orthogonal"
                )
        self.item_genres = self._table("item_genres", (self.n_items, self.n_genres), "float32")
        self.event_indptr = self._table("event_indptr", (self.n_users + 1,), "int64")
        self.event_items = self._table("event_items", (self.n_events,), "int32")
        self.event_ratings = self._table("event_ratings", (self.n_events,), "float32")
        self.event_timestamps = self._table("event_timestamps", (self.n_events,), "int64")
        self.built = True

    def _table(self, name: str, shape: tuple[int, ...], dtype: str) -> keras.Variable:
        return self.add_weight(name=name, shape=shape, dtype=dtype, initializer="zeros", trainable=False)

    # -- inputs and the feature encoder -----------------------------------------------------------------

    def item_encoders(self, items: Any) -> Any:
        """[b, D, D] per item: Σ_k M^k over its genres (eq. 11) or Σ_k M^{group(k)} M^k (eq. 12, row
        vectors: the parent's projection applies first); the extra kernel when it has no genre."""
        genres = ops.take(self.item_genres, ops.cast(items, "int32"), axis=0)  # [b, G] multi-hot
        none = ops.cast(ops.sum(genres, axis=-1, keepdims=True) == 0, genres.dtype)
        weights = ops.concatenate([genres, none], axis=-1)  # [b, G + 1]
        kernels = self.genre_kernels
        if self.features == "hierarchical":
            parents = np.asarray([*self.genre_parents, OTHER], dtype=np.int32)
            kernels = ops.matmul(ops.take(self.group_kernels, parents, axis=0), kernels)  # eq. (12)
        return ops.einsum("bg,gde->bde", weights, kernels)

    def step_inputs(self, side: str, others: Any, ratings: Any, owners: Any = None) -> tuple[Any, Any]:
        """(E(x_t) [b, L, D], mask [b, L]) of histories `others` [b, L] (counterpart ids, -1 padding)
        with their `ratings`; `owners` [b] are the items (item side, for the feature encoder)."""
        others = ops.cast(others, "int32")
        mask = others >= 0
        x = self.embeddings[side](ops.maximum(others, 0))
        if self.rating_input:
            centred = ops.where(mask, ops.cast(ratings, "float32") - self.global_mean, 0.0)
            x = ops.concatenate([x, ops.expand_dims(centred, -1)], axis=-1)
        x = x * ops.expand_dims(ops.cast(mask, x.dtype), -1)
        if side == "item" and self.use_features:
            x = ops.einsum("bld,bde->ble", x, self.item_encoders(owners))  # E_v, eqs. (11)/(12)
        return x, mask

    # -- the two modules, by stage (the catalogue scorer runs them separately) ------------------------

    def encode_side(self, side: str, others: Any, ratings: Any, owners: Any = None) -> dict[str, Any]:
        """Everything of one side that does not depend on the paired sequence: the mask, H E(x_t) + b,
        the own half of the fusion layer over (→u_t; ←u_t) and the paired half this side's summary
        (→u_T; ←u_1) gives the *other* side's gates (eqs. 6-9); the LSTM's last state."""
        x, mask = self.step_inputs(side, others, ratings, owners)
        encoded = {"mask": mask}
        if self.backbone == "lstm":
            # an empty history's row gets one step so the LSTM stays on cuDNN on a GPU; its state is
            # then reset to the zero state it has without it (models/cudnn.py)
            lstm_mask, has_history = nonempty_mask(mask)
            encoded["state"] = zero_empty(has_history, self.lstms[side](x, mask=lstm_mask))
            return encoded
        encoded["projected"] = self.projections[side](x)
        if self.attention:
            forward, last = self.forward_rnns[side](x, mask=mask)  # →u_t, →u_T
            backward, first = self.backward_rnns[side](x, mask=mask)  # in reverse order; ←u_1
            context = ops.concatenate([forward, ops.flip(backward, axis=1)], axis=-1)
            encoded["own"] = self.own_fusion[side](context)
            if self.interacting:
                summary = ops.concatenate([last, first], axis=-1)
                encoded["to_other"] = self.paired_fusion[OTHER_SIDE[side]](summary)
        return encoded

    def gates(self, side: str, encoded: dict[str, Any], from_other: Any = None) -> Any:
        """a_t [b, L] in (0, 1) on real steps, exactly 0 on padding (eqs. 6, 8); `from_other` [b, F] is
        the paired side's half of the fusion layer (iarn only). 1 on real steps for the rnn backbone."""
        mask = encoded["mask"]
        if not self.attention:
            return ops.cast(mask, "float32")
        fused = encoded["own"]
        if self.interacting:
            fused = fused + ops.expand_dims(from_other, 1)
        scores = ops.sigmoid(ops.squeeze(self.scorers[side](ops.tanh(fused)), -1))
        return ops.where(mask, scores, 0.0)

    def last_state(self, side: str, encoded: dict[str, Any], gates: Any) -> Any:
        """u_T [b, H]: the gated recurrence (eqs. 3-5) over H E(x_t) + b, or the LSTM's last state."""
        if self.backbone == "lstm":
            return encoded["state"]
        return self.gated[side](ops.concatenate([encoded["projected"], ops.expand_dims(gates, -1)], -1))

    def represent(self, side: str, state: Any, training: bool = False) -> Any:
        """ũ_i or ṽ_j [b, latent] (eq. 2)."""
        return self.head_activations[side](self.heads[side](self.head_dropout(state, training=training)))

    def forward(self, inputs: dict[str, Any], training: bool = False) -> tuple[Any, Any, Any]:
        """(ratings [b] (eq. 1, unclipped), user gates [b, Lu], item gates [b, Li]) of row-aligned pairs:
        `inputs` has user_items, user_ratings [b, Lu], item_users, item_ratings [b, Li], items [b]."""
        user = self.encode_side("user", inputs["user_items"], inputs["user_ratings"])
        item = self.encode_side("item", inputs["item_users"], inputs["item_ratings"], inputs["items"])
        user_gates = self.gates("user", user, item.get("to_other"))
        item_gates = self.gates("item", item, user.get("to_other"))
        u = self.represent("user", self.last_state("user", user, user_gates), training)
        v = self.represent("item", self.last_state("item", item, item_gates), training)
        return ops.sum(u * v, axis=-1), user_gates, item_gates

    def call(self, inputs: dict[str, Any], training: bool = False) -> Any:
        return self.forward(inputs, training)[0]

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "backbone": self.backbone,
            "features": self.features,
            "embedding_dim": self.embedding_dim,
            "hidden_size": self.hidden_size,
            "latent_dim": self.latent_dim,
            "attention_units": self.attention_units,
            "rating_input": self.rating_input,
            "dropout": self.dropout_rate,
            "n_genres": self.n_genres,
            "genre_parents": list(self.genre_parents),
            "n_events": self.n_events,
            "global_mean": self.global_mean,
            "rating_range": self.rating_range,
            "vocabularies": self.vocabularies,
        }
