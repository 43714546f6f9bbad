"""rating_metrics: RMSE and MAE of rating predictions."""

import math

import numpy as np
import pytest

from movierec.evaluation import rating_metrics


def test_hand_computed_errors() -> None:
    # errors 1, 0, 2, 0 -> MAE 3/4, RMSE sqrt((1 + 0 + 4 + 0) / 4) = sqrt(1.25)
    result = rating_metrics(np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 2.0, 5.0, 4.0]))
    assert result == {"rmse": pytest.approx(math.sqrt(1.25)), "mae": pytest.approx(0.75), "count": 4}


def test_invalid_input_raises() -> None:
    with pytest.raises(ValueError, match="index 1"):
        rating_metrics(np.array([1.0, 2.0]), np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="3 values"):
        rating_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0]))


def test_empty_input() -> None:
    result = rating_metrics(np.zeros(0), np.zeros(0))
    assert result["count"] == 0
    assert math.isnan(result["rmse"])
