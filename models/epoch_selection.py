"""The rating models' best-epoch rule (RRN, LSTM+CNN, IARN): pick the epoch on held-out later
training events, then refit on all of them for that many epochs.

`fit` receives training events only, so the latest `fraction` of them (by time; a timestamp's events
stay together, `base.holdout`) are held out; a first run trains on the earlier ones and, after every
epoch, predicts the held-out events whose user and item it has seen (as the protocols evaluate only
known ids) — as the evaluation period is predicted from the training events. The epoch with the lowest
RMSE is chosen; a non-finite RMSE stops with an error naming the epoch. Test users are never read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from movierec.models.base import UserSequences, holdout


@dataclass
class TrainingLog:
    """What a rating model's training did, for result files and the README numbers."""

    epochs: list[dict[str, float]] = field(default_factory=list)  # the run that ends in the model
    selection: list[dict[str, float]] = field(default_factory=list)  # the held-out run (if any)
    best_epoch: int | None = None
    best_validation_rmse: float | None = None
    validation_events: int = 0
    inputs: dict[str, Any] = field(default_factory=dict)  # which inputs were on (side features, …)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        seconds = [e["seconds"] for e in self.epochs + self.selection if e.get("epoch", 0) >= 1]
        return {
            "epochs": self.epochs,
            "selection": self.selection,
            "best_epoch": self.best_epoch,
            "best_validation_rmse": self.best_validation_rmse,
            "validation_events": self.validation_events,
            "inputs": self.inputs,
            "seconds": self.seconds,
            "seconds_per_epoch": float(np.mean(seconds)) if seconds else None,
        }


def train_epochs(
    owner: str, epochs: int, train_epoch: Callable[[], float], validation_rmse: Callable[[], float] | None
) -> list[dict[str, float]]:
    """Runs `epochs` epochs of `train_epoch` (returns the epoch's loss), each followed by
    `validation_rmse` if given; the log entries. A non-finite loss stops with an error naming the
    epoch (a non-finite RMSE is caught by `select_and_refit`)."""
    entries = []
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        loss = train_epoch()
        if not np.isfinite(loss):
            raise FloatingPointError(f"{owner}: the training loss became {loss} in epoch {epoch}")
        entry = {"epoch": epoch, "loss": loss, "seconds": time.perf_counter() - started}
        if validation_rmse is not None:
            entry["validation_rmse"] = validation_rmse()
        entries.append(entry)
    return entries


# run(sequences, epochs, validation or None) -> (model, log); the log has `epochs` entries with
# "epoch" and, given validation events, "validation_rmse", and the attributes set below
Run = Callable[[UserSequences, int, tuple[np.ndarray, ...] | None], tuple[Any, Any]]


def select_and_refit(
    owner: str, sequences: UserSequences, n_users: int, n_items: int, fraction: float, epochs: int, run: Run
) -> tuple[Any, Any]:
    """The model and log of the refit (or of `epochs` epochs on everything when nothing can be held
    out: `fraction` 0, or no later event of a seen user and item); the log records the selection run."""
    started = time.perf_counter()
    validation = None
    if fraction > 0 and len(sequences.items):
        head, later = holdout(sequences, fraction)
        seen_users = np.bincount(head.users, minlength=n_users) > 0
        seen_items = np.bincount(head.items, minlength=n_items) > 0
        users, items = sequences.users[later], sequences.items[later]
        known = seen_users[users] & seen_items[items]
        if known.any():
            validation = (
                users[known],
                items[known],
                sequences.ratings[later][known],
                sequences.timestamps[later][known],
            )
    if validation is None:
        model, log = run(sequences, epochs, None)
        log.seconds = time.perf_counter() - started
        return model, log
    _, selection = run(head, epochs, validation)
    scored = [e for e in selection.epochs if e["epoch"] >= 1]
    for entry in scored:
        if not np.isfinite(entry["validation_rmse"]):
            raise FloatingPointError(
                f"{owner}: the validation RMSE became non-finite in epoch {entry['epoch']}"
            )
    best = min(scored, key=lambda e: e["validation_rmse"])
    model, log = run(sequences, int(best["epoch"]), None)
    log.selection = selection.epochs
    log.best_epoch = int(best["epoch"])
    log.best_validation_rmse = float(best["validation_rmse"])
    log.validation_events = len(validation[0])
    log.seconds = time.perf_counter() - started
    return model, log
