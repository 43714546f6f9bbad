"""Shared by the GRU4Rec serving tests (export, warmup, client, GPU kernels): a small GRU4Rec trained on
the real MovieLens 100K in the id space of a real Transform output, and its export (built once per
session by tests/serving/conftest.py).

Transform analyses one interaction per movie and per user (every id of ML-100K, so its vocabularies
cover the catalogue; Beam on all 100,000 events would only cost time), and the model trains for one
epoch of small session-parallel batches over every event: the weights are real, not the point."""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
from transform_setup import transform_output

from movierec.constants import DEFAULT_SESSION_GAP
from movierec.data.splits import session_starts
from movierec.models import TrainingData, UserSequences, build_model, save_model
from movierec.models.base import canonical_order

# "sequence": the whole history is the context, so the 200-event cap (`max_history`) matters
HPARAMS = {
    "hidden_size": 16,
    "epochs": 1,
    "batch_size": 64,
    "n_sample": 64,
    "inference_mode": "sequence",
    "session_mode": "user",
    "dropout_hidden": 0.0,
}


def ml100k_events(folder) -> np.ndarray:
    """u.data as int64 [n, 4]: user, item, rating, timestamp."""
    with tf.io.gfile.GFile(os.path.join(str(folder), "u.data")) as f:
        return np.loadtxt(f, dtype=np.int64, delimiter="\t", ndmin=2)


class GRU4RecSetup:
    """The trained model, Transform's vocabularies, every user's history and the export."""

    def __init__(self, folder, data_dir):
        from movierec.components.histories import vocabulary
        from movierec.serving.export import export_for_serving

        events = ml100k_events(data_dir)
        _, first_of_item = np.unique(events[:, 1], return_index=True)
        _, first_of_user = np.unique(events[:, 0], return_index=True)
        rows = [
            {"user_id": str(u), "item_id": str(i), "rating": float(r), "timestamp": int(t)}
            for u, i, r, t in events[np.union1d(first_of_item, first_of_user)]
        ]
        self.transform = transform_output(folder, rows)
        self.items = vocabulary(self.transform, "item_id")
        self.users = vocabulary(self.transform, "user_id")
        item_index = {raw: k for k, raw in enumerate(self.items)}
        user_index = {raw: k for k, raw in enumerate(self.users)}
        users = np.array([user_index[str(u)] for u in events[:, 0]], np.int64)
        items = np.array([item_index[str(i)] for i in events[:, 1]], np.int64)
        times = events[:, 3]
        order = canonical_order(users, times, items)
        users, items, times = users[order], items[order], times[order]
        self.sequences = UserSequences(
            np.r_[0, np.cumsum(np.bincount(users, minlength=len(self.users)))].astype(np.int64),
            items.astype(np.int32),
            events[order, 2].astype(np.float32),
            times,
            session_starts(users, times, DEFAULT_SESSION_GAP),
        )
        self.data = TrainingData(len(self.users), len(self.items), self.sequences)
        self.model = build_model("gru4rec", **HPARAMS).fit(self.data)
        self.model_dir = str(folder / "recommender")
        save_model(self.model, self.model_dir)
        self.export_dir = str(folder / "serving" / "gru4rec" / "1")
        assert export_for_serving(
            self.model,
            self.transform,
            self.items,
            self.export_dir,
            session_gap=DEFAULT_SESSION_GAP,
            user_vocabulary=self.users,
            rated=self.sequences,
        )

    def history(self, user: int) -> tuple[list[str], list[int]]:
        """A user's whole history: raw item ids and timestamps, in the stored (canonical) order."""
        seq = self.sequences
        rows = slice(seq.indptr[user], seq.indptr[user + 1])
        return [str(self.items[i]) for i in seq.items[rows]], [int(t) for t in seq.timestamps[rows]]
