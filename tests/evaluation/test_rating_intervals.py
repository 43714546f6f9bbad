"""RMSE/MAE come with user-bootstrap intervals, and a paired comparison of two rating models gives the
RMSE difference on the same user draws."""

import numpy as np
import pytest

from movierec.data import load_dataset
from movierec.evaluation.experiment import (
    EvaluationSettings,
    aggregate_runs,
    paired_comparison,
    prepare,
    run_experiment,
)


@pytest.fixture(scope="module")
def mf_runs(ml100k_dir):
    dataset = load_dataset(ml100k_dir)
    split, stream = prepare(dataset, "temporal", seed=0)
    settings = EvaluationSettings(bootstrap_resamples=200)
    return [
        run_experiment(
            dataset,
            "mf",
            split=split,
            stream=stream,
            hparams={"epochs": epochs, "seed": 0},
            settings=settings,
        )[1]
        for epochs in (1, 8)
    ]


def test_rmse_and_mae_have_user_bootstrap_intervals(mf_runs):
    result = mf_runs[0]
    for name in ("rmse", "mae"):
        low, high = result.intervals[name]
        assert low < result.metrics[name] < high, name
    # resampling users, not events: the interval is wider than an event-level one would be
    errors = result.per_rating["squared_error"]
    assert len(errors) == result.metrics["count"] == len(result.rating_users)
    assert len(np.unique(result.rating_users)) < len(errors)


def test_paired_rmse_difference_uses_the_same_draws(mf_runs):
    short, longer = mf_runs
    paired = paired_comparison([longer], [short], n_resamples=200)
    rmse = paired["rmse"]
    assert rmse["difference"] == pytest.approx(longer.metrics["rmse"] - short.metrics["rmse"])
    assert rmse["low"] <= rmse["difference"] <= rmse["high"]
    # the same model against itself differs by exactly nothing on every draw
    same = paired_comparison([short], [short], n_resamples=50)["rmse"]
    assert same["low"] == same["high"] == same["difference"] == 0.0
    merged = aggregate_runs(mf_runs, n_resamples=200)
    assert "rmse" in merged["intervals"]
