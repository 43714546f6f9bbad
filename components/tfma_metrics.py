"""TFMA metrics TFMA 0.52 lacks, for the stock Evaluator's rating evaluation.

`RootMeanSquaredError`: √MSE, derived from TFMA's own `MeanSquaredError` computation (one pass over
the data, per slice), so thresholds and reports speak in the rating scale like the command line's
RMSE. Named in an EvalConfig as `MetricConfig(class_name="RootMeanSquaredError",
module="movierec.components.tfma_metrics")`.
"""

from __future__ import annotations

import math

from tensorflow_model_analysis.metrics import mean_regression_error, metric_types, metric_util

ROOT_MEAN_SQUARED_ERROR_NAME = "root_mean_squared_error"


class RootMeanSquaredError(metric_types.Metric):
    """√(mean of (label − prediction)²) over the examples of each slice."""

    def __init__(self, name: str = ROOT_MEAN_SQUARED_ERROR_NAME, **kwargs):
        super().__init__(metric_util.merge_per_key_computations(_computations), name=name, **kwargs)


def _computations(
    name: str | None = None,
    eval_config=None,
    model_name: str = "",
    output_name: str = "",
    example_weighted: bool = False,
    sub_key=None,
    aggregation_type=None,
    class_weights=None,
    preprocessors=None,
) -> metric_types.MetricComputations:
    squared = mean_regression_error.MeanSquaredError(name=f"_{name}_mse")
    computations = squared.computations(
        eval_config=eval_config,
        model_names=[model_name],
        output_names=[output_name],
        example_weighted=example_weighted,
    )
    mse_key = computations[-1].keys[-1]
    key = metric_types.MetricKey(
        name=name,
        model_name=model_name,
        output_name=output_name,
        sub_key=sub_key,
        example_weighted=example_weighted,
    )

    def result(metrics: dict) -> dict:
        mse = metrics[mse_key]
        return {key: math.sqrt(mse) if mse == mse else float("nan")}

    computations.append(metric_types.DerivedMetricComputation(keys=[key], result=result))
    return computations


metric_types.register_metric(RootMeanSquaredError)
