"""The Tuner's search (movierec.evaluation.tuning) on a slice of MovieLens 100K: it ranks trials by the
validation users' metric, keeps to its budget, resumes an interrupted search and never sees a test
event. The searched model is Item-KNN (it fits in a fraction of a second), in places wrapped by a
test-only model whose knob makes it clearly worse and which records the data it is given."""

import dataclasses
import json
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from click.testing import CliRunner

from movierec.cli import main
from movierec.constants import TEST, VALIDATION
from movierec.data import load_dataset
from movierec.evaluation.experiment import prepare
from movierec.evaluation.tuning import Budget, TuningData, make_tuner, tune, tuning_data
from movierec.models import MODELS, ItemKNN, build_model, get_spec
from movierec.models.hyperparameters import (
    Choice,
    Range,
    check_search_space,
    hyperparameter,
    make_config,
    search_space,
)
from movierec.models.registry import ModelSpec


@pytest.fixture(scope="module")
def data(ml100k_slice: Path) -> TuningData:
    return tuning_data(load_dataset(ml100k_slice), "temporal", seed=0)


@dataclasses.dataclass(frozen=True)
class ScrambledKNNConfig:
    # the bad setting is the default, so trial 0 is the worse one and the search must move off it
    scramble: bool = hyperparameter(True, "rank at random (clearly worse)", search=Choice(True, False))
    alpha: float = hyperparameter(0.5, "Item-KNN's α", search=Range(0.0, 1.0, step=0.05))
    seed: int = hyperparameter(0, "seed")


class ScrambledKNN(ItemKNN):
    """Item-KNN, or random scores with scramble=True; records what it is fitted on and asked about."""

    name = "scrambled-knn"
    config_class = ScrambledKNNConfig
    seen: ClassVar[list] = []  # (kind, users, items, timestamps) of every fit and every scored batch
    interrupt_at: int | None = None  # raise KeyboardInterrupt at this fit (a killed process)

    def __init__(self, **hparams):
        self.options = make_config(ScrambledKNNConfig, hparams, self.name)
        super().__init__(alpha=self.options.alpha)

    def fit(self, data):
        fits = sum(kind == "fit" for kind, *_ in ScrambledKNN.seen)
        if ScrambledKNN.interrupt_at == fits:
            raise KeyboardInterrupt
        seq = data.sequences
        ScrambledKNN.seen.append(("fit", seq.users, seq.items, seq.timestamps))
        return super().fit(data)

    def score(self, batch):
        seq = batch.sequences
        ScrambledKNN.seen.append(("score", batch.users, seq.users, seq.items, seq.timestamps))
        scores = super().score(batch)
        if self.options.scramble:
            scores = np.random.default_rng(0).random(scores.shape).astype(np.float32)
        return scores

    def get_config(self):
        return dataclasses.asdict(self.options)


@pytest.fixture
def scrambled(monkeypatch):
    monkeypatch.setitem(MODELS, "scrambled-knn", ModelSpec("scrambled-knn", ScrambledKNN, "test only"))
    monkeypatch.setattr(ScrambledKNN, "seen", [])
    monkeypatch.setattr(ScrambledKNN, "interrupt_at", None)
    return ScrambledKNN


def test_every_model_declares_a_space_that_fits_its_fields_or_none():
    spaces = {name: search_space(spec.factory.config_class) for name, spec in MODELS.items()}
    for name, spec in MODELS.items():
        check_search_space(spec.factory.config_class, name)  # types, bounds, defaults inside
    assert {"regularization", "alpha"} <= set(spaces["itemknn"])
    assert {"embedding_dim", "l2"} <= set(spaces["bpr-mf"])
    assert {"hidden_size", "learning_rate", "dropout_hidden", "loss"} <= set(spaces["gru4rec"])
    assert spaces["pop"] == {}
    for value in spaces["gru4rec"]["loss"].values:  # every choice builds
        build_model("gru4rec", loss=value)
    with pytest.raises(ValueError, match=r"bad: alpha's default 0\.5 is outside its search space"):

        @dataclasses.dataclass(frozen=True)
        class Bad:
            alpha: float = hyperparameter(0.5, "α", search=Range(0.6, 1.0))

        check_search_space(Bad, "bad")
    listed = CliRunner().invoke(main, ["models", "itemknn", "--json"])
    fields = {f["name"]: f for f in json.loads(listed.output)["itemknn"]["hyperparameters"]}
    assert fields["alpha"]["search"] == "[0, 1] step 0.05" and fields["regularization"]["search"].endswith(
        "log"
    )


def test_a_tiny_search_picks_the_better_of_two_clearly_different_settings(data, scrambled, tmp_path):
    lines = []
    # alpha fixed: the space is scramble's two points; the third trial finds nothing new to try
    report = tune(
        "scrambled-knn",
        data,
        str(tmp_path / "search"),
        budget=Budget(3),
        fixed={"alpha": 0.5},
        seed=1,
        log=lines.append,
    )
    trials = report["trials"]
    assert len(trials) == 2 and trials[0]["defaults"] and trials[0]["searched"]["scramble"] is True
    assert report["stopped_because"] == "every point of the space was tried"
    scores = {t["trial"]: t["metrics"]["recall@20"] for t in trials}
    assert report["best"]["searched"]["scramble"] is False
    assert report["best"]["metrics"]["recall@20"] == max(scores.values()) > 2 * scores[trials[0]["trial"]]
    assert report["best_hparams"]["scramble"] is False and report["best_hparams"]["seed"] == 1
    # one progress line per trial, with the metric and the time
    assert [line.split(":")[0] for line in lines if line.startswith("trial ")] == ["trial 0", "trial 1"]
    assert all(" s, " in line and "recall@20 0." in line for line in lines if line.startswith("trial "))
    written = {p.name for p in (tmp_path / "search").iterdir()}
    assert {"trials.json", "trials.csv", "trials.png", "best_hyperparameters.json"} <= written
    assert (tmp_path / "search" / "trials.png").read_bytes()[:4] == b"\x89PNG"
    csv = (tmp_path / "search" / "trials.csv").read_text().splitlines()
    assert csv[0].startswith("trial,status,scramble,recall@20") and len(csv) == 3


def test_the_search_never_reads_a_test_users_held_out_event(ml100k_slice, data, scrambled, tmp_path):
    _, stream = prepare(load_dataset(ml100k_slice), "temporal", seed=0)
    seq = stream.sequences
    test_events = set(
        zip(*(a[stream.roles == TEST].tolist() for a in (seq.users, seq.items, seq.timestamps)), strict=True)
    )
    validation_users = set(seq.users[stream.roles == VALIDATION].tolist())
    assert test_events and validation_users
    tune("scrambled-knn", data, str(tmp_path / "search"), budget=Budget(2), log=lambda _: None)
    seen = ScrambledKNN.seen
    assert {kind for kind, *_ in seen} == {"fit", "score"}
    for kind, *arrays in seen:
        events = set(zip(*(a.tolist() for a in arrays[-3:]), strict=True))
        assert not events & test_events, kind
        if kind == "score":
            assert set(arrays[0].tolist()) <= validation_users  # the queried users
    with pytest.raises(ValueError, match="validation: the stream holds test events"):
        TuningData(data.training, stream)


def test_an_interrupted_search_resumes_without_redoing_finished_trials(data, scrambled, tmp_path):
    directory = str(tmp_path / "search")
    ScrambledKNN.interrupt_at = 2  # the third trial's fit: the process dies
    with pytest.raises(KeyboardInterrupt):
        tune("scrambled-knn", data, directory, budget=Budget(4), log=lambda _: None)
    finished = json.loads((tmp_path / "search" / "trials.json").read_text())["trials"]
    assert [t["status"] for t in finished] == ["COMPLETED", "COMPLETED"]
    first = {t["trial"]: t["searched"] for t in finished}

    ScrambledKNN.interrupt_at, fits_before = None, len(ScrambledKNN.seen)
    lines = []
    report = tune("scrambled-knn", data, directory, budget=Budget(4), log=lines.append)
    assert lines[0].startswith("resuming the search of scrambled-knn") and "2 trials done" in lines[0]
    refits = [entry for entry in ScrambledKNN.seen[fits_before:] if entry[0] == "fit"]
    assert len(refits) == 2  # trials 2 (interrupted, run again) and 3; not 0 and 1
    assert [t["trial"] for t in report["trials"]] == ["0", "1", "2", "3"]
    assert {t["trial"]: t["searched"] for t in report["trials"][:2]} == first
    # the same folder with another space, seed or data is refused, not mixed in
    with pytest.raises(ValueError, match=r"directory: .* holds a search with other fixed, seed"):
        make_tuner("scrambled-knn", directory, budget=Budget(4), seed=7, data_description=data.description)


def test_the_budget_stops_on_patience_and_time(data, scrambled, tmp_path):
    # scramble=False fixed: trial 0 (the defaults) is already good; patience 1 stops at the next trial
    # that does not beat it, long before the 20 trials
    lines = []
    report = tune(
        "scrambled-knn",
        data,
        str(tmp_path / "a"),
        budget=Budget(20, patience=1),
        fixed={"scramble": False},
        log=lines.append,
    )
    assert report["stopped_because"].startswith("patience") and len(report["trials"]) < 20
    assert "scramble" not in report["space"] and report["fixed"]["scramble"] is False
    report = tune("scrambled-knn", data, str(tmp_path / "b"), budget=Budget(20, max_seconds=1e-3), log=print)
    assert len(report["trials"]) == 1 and report["stopped_because"].startswith("time budget")


def test_movierec_tune_runs_the_search_and_refuses_a_model_without_a_space(ml100k_slice, tmp_path):
    runner = CliRunner()
    refused = runner.invoke(
        main, ["tune", "--data", "/nonexistent", "--model", "pop", "--output", str(tmp_path)]
    )
    assert refused.exit_code == 2 and "pop declares no search space: nothing to tune" in refused.output
    typo = ["tune", "--data", "/nonexistent", "--model", "itemknn", "--metric", "recal@20", "--output", "x"]
    refused = runner.invoke(main, typo)
    assert refused.exit_code == 2 and "'recal@20' is not a validation metric of itemknn" in refused.output
    output = tmp_path / "knn"
    args = ["tune", "--data", str(ml100k_slice), "--model", "itemknn", "--budget-trials", "2"]
    result = runner.invoke(main, [*args, "--output", str(output)])
    assert result.exit_code == 0, result.output
    assert "trial 0: recall@20" in result.output and "best: --set" in result.output
    report = json.loads((output / "trials.json").read_text())
    assert len(report["trials"]) == 2 and report["evaluated_on"] == "validation users"
    assert report["data"]["protocol"]["protocol"] == "temporal"
    assert get_spec("itemknn").factory(**json.loads((output / "best_hyperparameters.json").read_text()))
