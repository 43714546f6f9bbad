"""The benchmark scripts still run and keep their contracts (on the tiny fixture data: no timing here)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
from click.testing import CliRunner

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name: str) -> ModuleType:
    """benchmarks/ holds scripts, not a package: load one by path."""
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_load_speed_exits_non_zero_only_when_the_target_is_missed(fixtures_dir: Path) -> None:
    main = load_benchmark("load_speed").main
    data = str(fixtures_dir / "ml-100k")
    met = CliRunner().invoke(main, ["--data", data, "--repeat", "2", "--target", "1000"])
    assert met.exit_code == 0, met.output
    row = json.loads(met.stdout)
    assert row["interactions"] == 8 and len(row["seconds"]) == 2
    assert row["best_seconds"] == min(row["seconds"]) and row["met"] is True
    missed = CliRunner().invoke(main, ["--data", data, "--repeat", "1", "--target", "0"])
    assert missed.exit_code == 1
    assert json.loads(missed.stdout)["met"] is False


def test_tuning_trials_start_from_the_defaults_and_are_distinct_and_seeded() -> None:
    from movierec.models.gru4rec import GRU4RecRecommender

    tune = load_benchmark("tune_gru4rec")
    trials = tune.draw_trials(12, {"epochs": 1, "loss": "top1"}, seed=3)
    defaults = GRU4RecRecommender.defaults()
    searched = [name for name in tune.SPACE if name != "loss"]  # a fixed key is no longer searched
    assert trials[0] == {name: defaults[name] for name in searched}
    assert len(trials) == 12 and all(list(trial) == searched for trial in trials)
    assert len({json.dumps(trial, sort_keys=True) for trial in trials}) == 12
    assert all(trial[name] in tune.SPACE[name] for trial in trials for name in trial)
    assert tune.draw_trials(12, {"epochs": 1, "loss": "top1"}, seed=3) == trials
    assert tune.draw_trials(12, {"epochs": 1, "loss": "top1"}, seed=4) != trials
    # a space smaller than the budget yields each point once
    *fixed, last = tune.SPACE
    assert len(tune.draw_trials(500, dict.fromkeys(fixed, 0), seed=0)) == len(tune.SPACE[last])


def test_tuning_rejects_unknown_hyper_parameters(fixtures_dir: Path) -> None:
    tune = load_benchmark("tune_gru4rec")
    result = CliRunner().invoke(tune.main, ["--data", str(fixtures_dir / "ml-100k"), "--set", "epoch=1"])
    assert result.exit_code == 2 and "no hyper-parameter 'epoch'" in result.output


@pytest.mark.slow
def test_tuning_scores_validation_users_and_writes_every_trial(fixtures_dir: Path, tmp_path: Path) -> None:
    tune = load_benchmark("tune_gru4rec")
    output = tmp_path / "tune.json"
    args = ["--data", str(fixtures_dir / "ml-100k"), "--trials", "2", "--set", "epochs=1"]
    result = CliRunner().invoke(tune.main, [*args, "--bootstrap", "10", "--output", str(output)])
    assert result.exit_code == 0, result.output
    report = json.loads(output.read_text())
    assert report["evaluation"]["role"] == "validation"
    assert report["fixed"] == {"epochs": 1}
    assert [trial["trial"] for trial in report["trials"]] == [0, 1]
    for trial in report["trials"]:
        # what was searched and fixed is what the trained model actually used
        assert {**trial["searched"], "epochs": 1}.items() <= trial["hparams"].items()
        assert 0.0 <= trial["metrics"]["recall@20"] <= 1.0 and trial["queries"] > 0
    assert report["trials"][0]["searched"] != report["trials"][1]["searched"]
    assert "rank  trial  loss" in result.stdout
