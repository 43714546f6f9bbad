"""Rating-prediction error (explicit-feedback models), kept next to the ranking metrics so every caller
reports the same definitions."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["rating_metrics"]


def rating_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """``rmse``, ``mae`` and ``count`` of predictions against true ratings.

    Raises on NaN/inf or a length mismatch rather than returning a number: both mean a pipeline bug
    (a diverged model, a misaligned join), and a silently wrong RMSE is worse than a crash. An empty
    input gives NaN errors with ``count`` 0.
    """
    truth = np.asarray(y_true, dtype=np.float64).ravel()
    pred = np.asarray(y_pred, dtype=np.float64).ravel()
    if truth.size != pred.size:
        raise ValueError(f"y_true has {truth.size} values but y_pred has {pred.size}")
    for name, array in (("y_true", truth), ("y_pred", pred)):
        if not np.isfinite(array).all():
            first = int(np.flatnonzero(~np.isfinite(array))[0])
            raise ValueError(f"{name} contains a non-finite value ({array[first]}) at index {first}")
    if truth.size == 0:
        return {"rmse": math.nan, "mae": math.nan, "count": 0}
    error = pred - truth
    return {
        "rmse": float(np.sqrt(np.mean(error * error))),
        "mae": float(np.mean(np.abs(error))),
        "count": int(truth.size),
    }
