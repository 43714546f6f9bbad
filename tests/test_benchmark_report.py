"""`movierec benchmark`: results.json, report.html, the README table and resumption, on an invented
dataset (ml-csv files written here) with fast models: Pop, Item-KNN and a tiny GRU4Rec."""

from __future__ import annotations

import base64
import copy
import importlib.util
import json
import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from click.testing import CliRunner

from movierec.cli import main
from movierec.data import load_dataset
from movierec.evaluation.report import TABLE_END, TABLE_START, markdown_table, render_report

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
MODELS = ("pop", "itemknn", "gru4rec")
TINY_GRU4REC = ("gru4rec.epochs=2", "gru4rec.hidden_size=8", "gru4rec.batch_size=8")
LATENCY = {
    "k": 10,
    "threads": 2,
    "tensorflow": "2.21.0",
    "results": [
        {
            "catalogue": "ml-100k",
            "n_items": 1682,
            "batch": 1,
            "history": 10,
            "calls": 300,
            "same_top10_as_numpy": True,
            "served": {
                "p50_ms": 4.377,
                "p95_ms": 8.647,
                "p99_ms": 21.64,
                "calls_per_s": 191.8,
                "rows_per_s": 191.8,
            },
            "numpy": {
                "p50_ms": 0.265,
                "p95_ms": 0.398,
                "p99_ms": 4.55,
                "calls_per_s": 2698.1,
                "rows_per_s": 2698.1,
            },
            "served_p50_over_numpy": 16.5,
        }
    ],
}


def invent_dataset(folder: Path, users: int = 120, items: int = 60, seed: int = 0) -> Path:
    """ml-csv files no test has seen: every user rates in short sessions (a minute apart) spread over
    60 days, mostly walking up a chain of items, so the temporal split's evaluation period has many
    users and the sequence models have something to learn."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    start, span = 880_000_000, 60 * 86_400
    popularity = 1.0 / np.arange(1, items + 1) ** 0.8
    popularity /= popularity.sum()
    for user in range(1, users + 1):
        seen: set[int] = set()
        item = int(rng.choice(items, p=popularity))
        for session_start in np.sort(rng.integers(start, start + span, 6)):
            for step in range(int(rng.integers(2, 7))):
                while item in seen and len(seen) < items:
                    item = (item + 1) % items if rng.random() < 0.7 else int(rng.choice(items, p=popularity))
                seen.add(item)
                rows.append(f"{user},{item + 1},{int(rng.integers(1, 6))}.0,{session_start + 60 * step}")
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + "\n".join(rows) + "\n")
    genres = ("Drama", "Comedy", "Action|Thriller", "Romance")
    titles = "".join(
        f'{i},"Invented Film {i}, The ({1990 + i % 10})",{genres[i % 4]}\n' for i in range(1, items + 1)
    )
    (folder / "movies.csv").write_text("movieId,title,genres\n" + titles)
    return folder


def benchmark(data: Path, output: Path, *extra: str, models=MODELS) -> str:
    args = ["benchmark", "--data", str(data), "--output", str(output), "--bootstrap", "100"]
    args += [a for m in models for a in ("--model", m)]
    args += [a for s in TINY_GRU4REC if s.split(".")[0] in models for a in ("--set", s)]
    result = CliRunner().invoke(main, [*args, *extra], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def strict_json(path: Path) -> dict:
    def refuse(constant: str):
        raise ValueError(f"{path} holds {constant}: not strict JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return invent_dataset(tmp_path_factory.mktemp("invented") / "films")


@pytest.fixture(scope="module")
def bench(data: Path, tmp_path_factory) -> tuple[Path, str]:
    """One benchmark of the three models (with a serving-latency file), its folder and its output."""
    latency = tmp_path_factory.mktemp("latency") / "serving_latency.json"
    latency.write_text(json.dumps(LATENCY))
    output = tmp_path_factory.mktemp("bench") / "run"
    return output, benchmark(data, output, "--latency", str(latency))


def copied(bench: tuple[Path, str], tmp_path: Path) -> Path:
    """A copy of the benchmark's folder (tests that rerun it leave the shared one intact), with the
    files' modification times."""
    target = tmp_path / "run"
    shutil.copytree(bench[0], target)
    return target


def test_results_hold_every_model_with_intervals_and_paired_differences(bench, data) -> None:
    output, _ = bench
    results = strict_json(output / "results.json")
    meta = results["benchmark"]
    models = {m["model"]: m for m in results["models"]}
    assert list(models) == list(MODELS)

    assert meta["dataset"]["checksum"] == load_dataset(data).checksum
    assert meta["protocol"]["protocol"] == "temporal"
    assert meta["seeds"] == {"split": [0], "model": 0, "bootstrap": 0, "repeat": 1}
    assert {"numpy", "keras", "tensorflow", "movierec"} <= set(meta["versions"])
    assert meta["primary_metric"] == "recall@20"
    assert re.fullmatch("[0-9a-f]{64}", meta["code"]["fingerprint"])  # the sources these models ran
    assert meta["code"]["other_code"] == meta["code"]["unrecorded"] == []
    assert "VmHWM" in meta["peak_memory"] or "ru_maxrss" in meta["peak_memory"]

    for name, m in models.items():
        assert m["queries"] > 100, name
        for metric in ("recall@20", "mrr@20", "ndcg@10", "map"):
            low, high = m["intervals"][metric]
            assert low <= m["metrics"][metric] + 1e-12 and m["metrics"][metric] <= high + 1e-12, (
                name,
                metric,
            )
            assert low < high, (name, metric)  # users differ: the interval is not a point
        assert m["wall"]["fit_seconds"] >= 0 and m["wall"]["evaluate_seconds"] > 0
        assert m["memory"]["peak_rss_mb"] >= m["memory"]["start_rss_mb"] > 0
        assert m["seeds"]["split"] == [0]
    training_events = models["pop"]["throughput"]["training_events"]
    assert training_events == models["gru4rec"]["throughput"]["training_events"] > 1000
    gru = models["gru4rec"]
    assert gru["throughput"]["fit_events_per_second"] == pytest.approx(
        training_events / gru["wall"]["fit_seconds"], rel=0.01
    )
    assert len(gru["training_log"]["epoch_losses"]) == 2
    assert gru["seeds"]["model"] == [0] and models["pop"]["seeds"]["model"] == [None]

    # the reference is the baseline with the best validation value, not the best test value
    validation = {b: models[b]["validation"]["value"] for b in ("pop", "itemknn")}
    reference = max(validation, key=validation.get)
    assert meta["best_baseline"]["model"] == reference
    assert "validation users" in meta["best_baseline"]["chosen_by"]
    assert models["gru4rec"]["validation"] is None  # only baselines are scored on validation users
    assert "versus" not in models[reference]
    for name in (n for n in MODELS if n != reference):
        versus = models[name]["versus"]
        assert versus["model"] == reference
        for metric in ("recall@20", "mrr@20"):
            paired = versus["paired_difference"][metric]
            # same queries: the mean of per-query differences is the difference of the means
            expected = models[name]["metrics"][metric] - models[reference]["metrics"][metric]
            assert paired["difference"] == pytest.approx(expected, abs=1e-9)
            assert paired["low"] <= paired["difference"] + 1e-12 <= paired["high"] + 2e-12
            assert 0.0 <= paired["p_not_greater"] <= 1.0
    assert results["serving_latency"] == LATENCY


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str]] = []
        self.links: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs)
        for key in ("src", "href"):
            if key in attrs and tag != "img":
                self.links.append(attrs[key])
        if tag in ("script", "link", "iframe", "object"):
            self.links.append(tag)

    def handle_data(self, data) -> None:
        self.text.append(data)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_report_is_self_contained_with_the_figures_and_the_text(bench) -> None:
    output, _ = bench
    results = strict_json(output / "results.json")
    page = _Page()
    page.feed((output / "report.html").read_text())
    assert page.links == []  # no script, stylesheet or other external asset
    alts = [image["alt"] for image in page.images]
    assert alts == [
        "metric bars with 95% intervals",
        "paired differences to the best baseline",
        "learning curves",
    ]
    for image in page.images:
        prefix = "data:image/png;base64,"
        assert image["src"].startswith(prefix)
        width, height = png_size(base64.b64decode(image["src"][len(prefix) :]))
        assert width >= 300 and height >= 150
    text = " ".join(page.text)
    for expected in (
        "Results (test users)",
        "Pop",
        "Item-KNN",
        "GRU4Rec",
        "Cost",
        "Learning curves",
        "Serving latency",
    ):
        assert expected in text
    gru = next(m for m in results["models"] if m["model"] == "gru4rec")
    assert f"{gru['metrics']['recall@20']:.4f}" in text
    assert "4.38" in text  # the latency file's p50
    assert "LSIC" not in text and "attention gate" not in text  # neither ran


def test_report_draws_lsic_curves_and_an_iarn_explanation_when_they_ran(bench) -> None:
    """The LSIC and IARN sections from their training log and explanation (values invented here: the
    two models take minutes to train; the benchmark stores exactly these fields for them)."""
    results = copy.deepcopy(strict_json(bench[0] / "results.json"))
    entry = copy.deepcopy(results["models"][0])
    epochs = [{"phase": "pretrain", "epoch": 1, "g_loss": 0.69, "d_loss": 0.98}] + [
        {"phase": "adversarial", "epoch": e, "g_loss": 0.7 - 0.01 * e, "d_loss": 0.97 - 0.02 * e}
        for e in (2, 3, 4)
    ]
    selection = [
        dict(e, g_precision_at_5=0.1 + 0.01 * i, d_precision_at_5=0.08, g_ndcg_at_5=0.2, d_ndcg_at_5=0.19)
        for i, e in enumerate(epochs)
    ]
    results["models"].append(
        {
            **entry,
            "model": "lsic",
            "baseline": False,
            "training_log": {"epochs": epochs, "selection": selection},
        }
    )
    events = [
        {"item_id": str(i), "title": f"Film {i}", "rating": 4.0, "timestamp": 880_000_000 + i, "gate": g}
        for i, g in enumerate((0.9, 0.5, 0.1))
    ]
    raters = [{"user_id": "7", "rating": 3.0, "timestamp": 880_000_100, "gate": 0.4}]
    explanation = {
        "user_id": "42", "item_id": "9", "item_title": "Film 9", "timestamp": 880_000_200,
        "actual_rating": 4.0, "predicted_rating": 3.61, "backbone": "gru", "chosen": "a validation user",
        "user_history": events, "item_history": raters,
    }  # fmt: skip
    results["models"].append({**entry, "model": "iarn", "baseline": False, "explanation": explanation})
    page = _Page()
    page.feed(render_report(results))
    assert {"LSIC GAN curves", "IARN attention gates"} <= {image["alt"] for image in page.images}
    text = " ".join(page.text)
    assert "predicted 3.61, rated 4" in text and "Film 0" in text


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_table_script_reproduces_the_rows_and_rewrites_the_readme_block(bench, tmp_path) -> None:
    output, printed = bench
    results = strict_json(output / "results.json")
    script = load_script("results_table").main
    shown = CliRunner().invoke(script, [str(output / "results.json")])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout == markdown_table(results)
    assert shown.stdout in printed  # what `movierec benchmark` printed at the end

    lines = shown.stdout.strip().splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {r[0]: r for r in ([c.strip() for c in line.strip("|").split("|")] for line in lines[2:])}
    reference = results["benchmark"]["best_baseline"]["model"]
    names = {"pop": "Pop", "itemknn": "Item-KNN", "gru4rec": "GRU4Rec"}
    assert len(rows) == len(MODELS)
    for m in results["models"]:
        row = rows[names[m["model"]] + (" (best baseline)" if m["model"] == reference else "")]
        assert row[header.index("Recall@20")] == f"{m['metrics']['recall@20']:.4f}"
        assert row[header.index("MRR@20")] == f"{m['metrics']['mrr@20']:.4f}"
        low, high = m["intervals"]["recall@20"]
        assert row[header.index("95% interval")] == f"[{low:.4f}, {high:.4f}]"
        difference = row[header.index(f"Recall@20 − {names[reference]}")]
        if m["model"] == reference:
            assert difference == ""
        else:
            assert difference == f"{m['versus']['paired_difference']['recall@20']['difference']:+.4f}"

    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n\n{TABLE_START}\nold table\n{TABLE_END}\n\nafter\n")
    updated = CliRunner().invoke(script, [str(output / "results.json"), "--readme", str(readme)])
    assert updated.exit_code == 0, updated.output
    text = readme.read_text()
    assert "old table" not in text and shown.stdout in text
    assert text.startswith("# Title\n\nbefore\n\n" + TABLE_START) and text.endswith(TABLE_END + "\n\nafter\n")
    readme.write_text("no markers\n")
    refused = CliRunner().invoke(script, [str(output / "results.json"), "--readme", str(readme)])
    assert refused.exit_code != 0 and "--readme" in refused.output and readme.read_text() == "no markers\n"


def test_an_interrupted_benchmark_resumes_without_retraining_finished_models(bench, data, tmp_path) -> None:
    output = copied(bench, tmp_path)
    before = strict_json(output / "results.json")
    # interrupted while GRU4Rec trained: its arrays may be written, its record (written last) is not
    (output / "models" / "gru4rec.json").unlink()
    stamps = {m: (output / "models" / f"{m}.json").stat().st_mtime_ns for m in ("pop", "itemknn")}
    printed = benchmark(data, output)
    assert "[1/3] pop: finished earlier" in printed and "[2/3] itemknn: finished earlier" in printed
    assert "[3/3] gru4rec: fitting" in printed and printed.count("fitting") == 1
    assert {m: (output / "models" / f"{m}.json").stat().st_mtime_ns for m in stamps} == stamps
    after = strict_json(output / "results.json")
    for old, new in zip(before["models"], after["models"], strict=True):
        assert new["model"] == old["model"]
        if new["model"] != "gru4rec":
            assert new["metrics"] == old["metrics"] and new["intervals"] == old["intervals"]
            assert new["finished"] == old["finished"]
    assert (output / "models" / "gru4rec.json").exists()
    assert not list(output.rglob("*.tmp-*"))  # every file was written whole, then renamed
    # everything finished: nothing is trained again
    assert "fitting" not in benchmark(data, output)


def test_a_crashed_benchmark_keeps_the_models_that_finished(data, tmp_path) -> None:
    """A real failure in the third model (LSIC given a poster file that does not exist) stops the run;
    the two finished models are on disk and the next run reads them back."""
    output = tmp_path / "crashed"
    args = ["benchmark", "--data", str(data), "--output", str(output), "--bootstrap", "100"]
    args += ["--model", "pop", "--model", "itemknn", "--model", "lsic"]
    crashed = CliRunner().invoke(main, [*args, "--set", f"lsic.poster_file={tmp_path / 'none.npz'}"])
    assert isinstance(crashed.exception, ValueError) and "poster" in str(crashed.exception)
    assert sorted(p.name for p in (output / "models").iterdir()) == [
        "itemknn.json",
        "itemknn.npz",
        "pop.json",
        "pop.npz",
    ]
    assert not (output / "results.json").exists()
    stamps = {m: (output / "models" / f"{m}.json").stat().st_mtime_ns for m in ("pop", "itemknn")}
    printed = benchmark(data, output, models=("pop", "itemknn"))
    assert "fitting" not in printed and printed.count("finished earlier") == 2
    assert {m: (output / "models" / f"{m}.json").stat().st_mtime_ns for m in stamps} == stamps
    assert [m["model"] for m in strict_json(output / "results.json")["models"]] == ["pop", "itemknn"]


def test_arrays_replaced_by_another_run_are_refused(bench, data, tmp_path) -> None:
    """A record read back whose .npz another benchmark replaced meanwhile is not mixed with it."""
    from movierec.evaluation.benchmark import RecordChanged, load_record, stored_runs

    output = copied(bench, tmp_path)
    record = load_record(output, "pop")
    assert len(stored_runs(output, "pop", record)[0].query_users) == record["result"]["evaluation"]["queries"]
    shutil.copy(output / "models" / "itemknn.npz", output / "models" / "pop.npz")
    with pytest.raises(RecordChanged, match=r"pop\.npz"):
        stored_runs(output, "pop", record)


def test_a_changed_seed_or_hyper_parameter_is_not_served_from_stale_results(bench, data, tmp_path) -> None:
    output = copied(bench, tmp_path)
    pop = output / "models" / "pop.json"
    stamp = pop.stat().st_mtime_ns
    printed = benchmark(data, output, "--seed", "1", models=("pop", "itemknn"))
    assert "pop: the stored result is of another configuration" in printed and "split_seeds" in printed
    assert pop.stat().st_mtime_ns != stamp
    assert strict_json(pop)["configuration"]["split_seeds"] == [1]
    results = strict_json(output / "results.json")
    assert results["benchmark"]["seeds"]["split"] == [1] and [m["model"] for m in results["models"]] == [
        "pop",
        "itemknn",
    ]

    # a hyper-parameter retrains that model only
    printed = benchmark(data, output, "--seed", "1", "--set", "itemknn.alpha=0.25", models=("pop", "itemknn"))
    assert "pop: finished earlier" in printed
    assert "itemknn: the stored result is of another configuration (hparams changed)" in printed
    assert strict_json(output / "models" / "itemknn.json")["configuration"]["hparams"]["alpha"] == 0.25


@pytest.mark.parametrize("layout", ["ml-100k", "ml-dat", "ml-csv", "netflix"])
def test_every_layout_runs_even_without_evaluation_queries(fixtures_dir, tmp_path, layout) -> None:
    """The fixtures' few rows leave (almost) nothing to evaluate: the benchmark still writes strict
    JSON (undefined metrics as null) and a report that says why there is no reference."""
    output = tmp_path / layout
    benchmark(fixtures_dir / layout, output, models=("pop", "spop"))
    results = strict_json(output / "results.json")
    assert results["benchmark"]["dataset"]["layout"] == layout
    assert [m["model"] for m in results["models"]] == ["pop", "spop"]
    html = (output / "report.html").read_text()
    assert "<h2>Results (test users)</h2>" in html
    if results["benchmark"]["best_baseline"]["model"] is None:
        assert "No paired differences" in html


def test_split_files_under_given_split_give_the_temporal_numbers(bench, data, tmp_path) -> None:
    """The session-tsv layout (`data split --out`) read back under given-split: the same metrics as
    the temporal benchmark that made the split."""
    files = tmp_path / "split"
    made = CliRunner().invoke(
        main, ["data", "split", "--data", str(data), "--protocol", "temporal", "--out", str(files)]
    )
    assert made.exit_code == 0, made.output
    output = tmp_path / "given"
    benchmark(files, output, "--protocol", "given-split", models=("pop", "itemknn"))
    given = {m["model"]: m["metrics"] for m in strict_json(output / "results.json")["models"]}
    temporal = {m["model"]: m["metrics"] for m in strict_json(bench[0] / "results.json")["models"]}
    for name in ("pop", "itemknn"):
        assert given[name] == pytest.approx(temporal[name], abs=1e-12), name


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--model", "pop", "--set", "gru4rec.epochs=1"], "--set"),
        (["--model", "pop", "--set", "pop.epochs=1"], "--set"),
        (["--model", "pop", "--metric", "rmse"], "--metric"),
        (["--model", "pop", "--latency", "/nonexistent/latency.json"], "--latency"),
    ],
)
def test_bad_options_are_refused_naming_the_option(tmp_path, args, option) -> None:
    result = CliRunner().invoke(
        main, ["benchmark", "--data", str(tmp_path), "--output", str(tmp_path / "out"), *args]
    )
    assert result.exit_code == 2 and option in result.output, result.output
    assert not (tmp_path / "out").exists()


def chromium() -> str:
    found = next(
        (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None
    )
    if found is None:
        pytest.skip(
            "headless Chromium is not installed in this environment (Debian package `chromium`: "
            "scripts/setup-env installs it into the root filesystem, a native venv needs the host's): "
            "the report's render check needs it"
        )
    return found


def test_the_report_renders_in_headless_chromium(bench, tmp_path) -> None:
    browser = chromium()
    report = (bench[0] / "report.html").resolve()
    flags = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        "--window-size=1280,2400",
    ]
    shot = tmp_path / "shot.png"
    subprocess.run(
        [*flags, f"--screenshot={shot}", report.as_uri()], check=True, capture_output=True, timeout=120
    )
    assert png_size(shot.read_bytes()) == (1280, 2400)
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[..., :3]
    assert (pixels.mean(axis=2) < 0.9).mean() > 0.02  # text, tables and figures, not a blank page
    dom = subprocess.run(
        [*flags, "--dump-dom", report.as_uri()], check=True, capture_output=True, text=True, timeout=120
    ).stdout
    assert "Results (test users)" in dom and "GRU4Rec" in dom
    assert len(re.findall(r"<img [^>]*src=\"data:image/png;base64,", dom)) == 3
