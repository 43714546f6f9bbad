"""Rating-prediction error (explicit-feedback models), kept next to the ranking metrics so every caller
reports the same definitions."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["rating_error_sums", "rating_metrics", "rating_metrics_from_sums"]


def rating_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """``rmse``, ``mae`` and ``count`` of predictions against true ratings.

    Raises on NaN/inf or a length mismatch rather than returning a number: both mean a pipeline bug
    (a diverged model, a misaligned join), and a silently wrong RMSE is worse than a crash. An empty
    input gives NaN errors with ``count`` 0.
    """
    truth, pred = _checked(y_true, y_pred)
    if truth.size == 0:
        return {"rmse": math.nan, "mae": math.nan, "count": 0}
    error = pred - truth
    return {
        "rmse": float(np.sqrt(np.mean(error * error))),
        "mae": float(np.mean(np.abs(error))),
        "count": int(truth.size),
    }


def rating_error_sums(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """The sums behind ``rating_metrics`` (``squared_error``, ``absolute_error``, ``count``): parts of
    the data summed separately and added give the metrics of the whole (`rating_metrics_from_sums`)."""
    truth, pred = _checked(y_true, y_pred)
    error = pred - truth
    return {
        "squared_error": float(np.sum(error * error)),
        "absolute_error": float(np.sum(np.abs(error))),
        "count": int(truth.size),
    }


def rating_metrics_from_sums(sums: dict[str, float]) -> dict[str, float]:
    """``rmse``, ``mae`` and ``count`` from added ``rating_error_sums``."""
    count = int(sums["count"])
    if count == 0:
        return {"rmse": math.nan, "mae": math.nan, "count": 0}
    return {
        "rmse": math.sqrt(sums["squared_error"] / count),
        "mae": sums["absolute_error"] / count,
        "count": count,
    }


def _checked(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    truth = np.asarray(y_true, dtype=np.float64).ravel()
    pred = np.asarray(y_pred, dtype=np.float64).ravel()
    if truth.size != pred.size:
        raise ValueError(f"y_true has {truth.size} values but y_pred has {pred.size}")
    for name, array in (("y_true", truth), ("y_pred", pred)):
        if not np.isfinite(array).all():
            first = int(np.flatnonzero(~np.isfinite(array))[0])
            raise ValueError(f"{name} contains a non-finite value ({array[first]}) at index {first}")
    return truth, pred
