"""Everything a pipeline run depends on, in one place (runners only choose where it runs)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from movierec.constants import DEFAULT_METRIC, DEFAULT_SESSION_GAP

SCHEMA_FILE = os.path.join("schema", "schema.pbtxt")  # the reviewed schema, below this package
# The Tuner's default budget: modest, so `make pipeline` stays a few minutes longer than untuned
# (`movierec tune` defaults to a larger one).
DEFAULT_TUNE_TRIALS, DEFAULT_TUNE_MINUTES, DEFAULT_TUNE_PATIENCE = 8, 5.0, 4


@dataclass
class PipelineConfig:
    data_path: str  # a folder of GroupLens/Netflix files (movierec.data layouts)
    output_dir: str  # pipeline root, ML Metadata and serving models go below it unless set
    # One pipeline (ML Metadata context) per model unless set: the latest blessed model a candidate is
    # compared with must be the same model's previous version (TFMA needs its rating signature), also
    # when several models' runs share an output folder.
    pipeline_name: str = ""
    model: str = "gru4rec"
    hparams: dict[str, Any] = field(default_factory=dict)
    protocol: str = "temporal"
    split_params: dict[str, Any] = field(default_factory=dict)
    session_gap: int = DEFAULT_SESSION_GAP
    strict: bool = False
    # ExampleGen reads rating files in pieces of about this many bytes (one Beam element each)
    example_gen_piece_bytes: int = 64 << 20
    # blessing
    metric: str = DEFAULT_METRIC
    margin: float = 0.0
    # refused when the paired user-bootstrap interval (this confidence) of candidate − latest blessed
    # lies entirely below −regression_tolerance × the blessed model's value (components.ranking_evaluator)
    regression_tolerance: float = 0.0
    regression_confidence: float = 0.95
    baseline: str = "pop"
    # users a Beam worker of the RankingEvaluator scores at once (components.user_scoring)
    evaluation_users_per_batch: int = 256
    # rating models (blessed by TFMA, pipeline/rating_evaluation.py): RMSE bound on the validation
    # users, and how much worse than the latest blessed model's RMSE a candidate may be
    max_rmse: float = 1.1
    rmse_tolerance: float = 0.01
    distribute: str | None = None  # "mirrored" for tf.distribute.MirroredStrategy
    serving_dir: str | None = None
    metadata_path: str | None = None
    beam_pipeline_args: list[str] = field(default_factory=lambda: ["--direct_running_mode=in_memory"])
    enable_cache: bool = True
    # the reviewed schema ExampleValidator checks the data against (None: pipeline/schema/schema.pbtxt)
    schema_path: str | None = None
    # keys the cache on movierec's code (None: computed from the installed sources, see fingerprint.py)
    code_fingerprint: str | None = None
    # Tuner (pipeline/modules/tuner.py): search the model's declared space on the validation users
    # before the Trainer, which then trains the best values. On by default: defaults picked on
    # ML-100K do not transfer to other data. A model without a search space is not tuned.
    tune: bool = True
    tune_trials: int = DEFAULT_TUNE_TRIALS
    tune_minutes: float | None = DEFAULT_TUNE_MINUTES  # trial time; None: no limit
    tune_patience: int | None = DEFAULT_TUNE_PATIENCE  # stop after this many trials without improvement
    tune_seed: int = 0

    def __post_init__(self) -> None:
        self.pipeline_name = self.pipeline_name or f"movierec-{self.model}"

    @property
    def pipeline_root(self) -> str:
        return os.path.join(self.output_dir, "pipeline_root")  # not Path: it would turn gs:// into gs:/

    @property
    def serving_model_dir(self) -> str:
        return self.serving_dir or os.path.join(self.output_dir, "serving", self.model)

    @property
    def schema_file(self) -> str:
        return self.schema_path or os.path.join(os.path.dirname(os.path.abspath(__file__)), SCHEMA_FILE)

    @property
    def search_root(self) -> str:
        """Where the Tuner keeps its searches (one folder per configuration and input, resumable)."""
        return os.path.join(self.pipeline_root, "Tuner", "searches")

    @property
    def tune_budget(self) -> dict[str, Any]:
        """The Tuner's budget as `movierec.evaluation.tuning.Budget` takes it."""
        seconds = None if self.tune_minutes is None else self.tune_minutes * 60
        return {"max_trials": self.tune_trials, "max_seconds": seconds, "patience": self.tune_patience}

    @property
    def metadata_db(self) -> str:
        return self.metadata_path or os.path.join(self.output_dir, "metadata.sqlite")
