"""The stock TFX Evaluator (TFMA) for models that predict ratings: what it computes, on which slices,
and the thresholds that bless a candidate.

TFMA calls the exported `predict_rating` signature on the validation users' interaction Examples
(split "eval") and compares its `predicted_rating` with each Example's `rating`. Metrics: example
count, RMSE (`movierec.components.tfma_metrics`), MSE and MAE, overall and per slice: user gender,
age band, occupation, activity band (training ratings), and movie genre (an Example with several
genres counts in each). A candidate is blessed when its overall RMSE (the slices are reported, not
thresholded) is at most `max_rmse` and, once a blessed model exists, at most `rmse_tolerance` above
the latest blessed model's on the same Examples (TFMA's thresholds compare point values: the
tolerance is an absolute margin, not a significance test). The first run has no baseline: TFMA then
checks the value threshold only.
"""

from __future__ import annotations

from tensorflow_model_analysis.proto import config_pb2

from movierec.constants import SPLIT_OF_ROLE, VALIDATION

RATING_SIGNATURE = "predict_rating"
RATING_OUTPUT = "predicted_rating"
LABEL = "rating"
SLICE_FEATURES = ("gender", "age_band", "occupation", "activity_band", "genres")
EVALUATED_SPLIT = SPLIT_OF_ROLE[VALIDATION]  # blessing decisions never read the test users


def rating_eval_config(max_rmse: float, rmse_tolerance: float) -> config_pb2.EvalConfig:
    if max_rmse <= 0:
        raise ValueError(f"max_rmse must be > 0, got {max_rmse}")
    if rmse_tolerance < 0:
        raise ValueError(f"rmse_tolerance must be >= 0, got {rmse_tolerance}")
    rmse = config_pb2.MetricConfig(
        class_name="RootMeanSquaredError",
        module="movierec.components.tfma_metrics",
        # the overall slice only: a threshold without slicing specs would apply to every slice, and a
        # slice of a few ratings (one occupation, one genre) would decide the blessing
        per_slice_thresholds=[
            config_pb2.PerSliceMetricThreshold(
                slicing_specs=[config_pb2.SlicingSpec()],
                threshold=config_pb2.MetricThreshold(
                    value_threshold=config_pb2.GenericValueThreshold(upper_bound={"value": max_rmse}),
                    change_threshold=config_pb2.GenericChangeThreshold(
                        direction=config_pb2.MetricDirection.LOWER_IS_BETTER,
                        absolute={"value": rmse_tolerance},
                    ),
                ),
            )
        ],
    )
    spec = {"signature_name": RATING_SIGNATURE, "label_key": LABEL, "prediction_key": RATING_OUTPUT}
    return config_pb2.EvalConfig(
        model_specs=[
            config_pb2.ModelSpec(name="candidate", **spec),
            config_pb2.ModelSpec(name="baseline", is_baseline=True, **spec),
        ],
        slicing_specs=[config_pb2.SlicingSpec()]
        + [config_pb2.SlicingSpec(feature_keys=[feature]) for feature in SLICE_FEATURES],
        metrics_specs=[
            config_pb2.MetricsSpec(
                metrics=[
                    config_pb2.MetricConfig(class_name="ExampleCount"),
                    rmse,
                    config_pb2.MetricConfig(class_name="MeanSquaredError"),
                    config_pb2.MetricConfig(class_name="MeanAbsoluteError"),
                ]
            )
        ],
    )
