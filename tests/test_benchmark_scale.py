"""benchmarks/scale.py: the process-tree memory sampler, and the whole benchmark at tiny sizes."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import scale  # noqa: E402

# a parent that holds ~50 MB and starts a child that holds ~300 MB and spends 1.5 s of CPU
TREE = r"""
import subprocess, sys, time
parent = bytearray(50 << 20)
child = subprocess.Popen([sys.executable, "-c",
    "import time; b = bytearray(300 << 20)\nwhile time.process_time() < 1.5: pass\ntime.sleep(1)"])
child.wait()
time.sleep(0.5)
"""


def test_the_sampler_counts_the_memory_of_child_processes():
    process = subprocess.Popen([sys.executable, "-c", TREE])
    start = time.time()
    with scale.TreeSampler(process.pid, 0.1) as sampler:
        assert process.wait() == 0
    peak = sampler.peak([(start, time.time())])
    assert peak["workers_mb"] >= 300  # the child's bytearray, seen from the grandparent
    assert peak["launcher_mb"] >= 50
    assert peak["peak_mb"] == pytest.approx(peak["launcher_mb"] + peak["workers_mb"], abs=0.2)
    assert 1.4 <= peak["cpu_seconds"] < 2.5  # the child's 1.5 s, counted once (alive, then reaped)
    # a span between samples gets the samples around it, not nothing
    t = sampler.samples[len(sampler.samples) // 2][0]
    assert sampler.peak([(t + 1e-4, t + 2e-4)])["peak_mb"] > 0


def test_verdicts_compare_throughput_and_memory_across_sizes():
    def result(events, seconds, peak):
        row = {"events": events, "seconds": seconds, "events_per_second": events / seconds, "peak_mb": peak}
        return {"events": events, "stages": {"ExampleGen": {**row, "under_budget": peak <= 1000}}}

    linear = scale.verdicts([result(10, 1.0, 500), result(160, 14.0, 600)], 1000)["ExampleGen"]
    assert linear["linear"] and linear["under_budget"]
    slow = scale.verdicts([result(10, 1.0, 500), result(160, 40.0, 1500)], 1000)["ExampleGen"]
    assert not slow["linear"] and not slow["under_budget"] and slow["peak_growth"] == 3.0
    assert scale.verdicts([result(10, 1.0, 500)], 1000) == {}  # one size proves nothing


@pytest.mark.slow
def test_the_benchmark_measures_every_stage_at_tiny_sizes(tmp_path):
    # One size, in_memory: about 2 minutes of CPU (each stage's process imports TensorFlow); the
    # benchmark itself runs multi_processing, and verdicts across sizes are tested above.
    output, png = tmp_path / "scale.json", tmp_path / "scale.png"
    command = [sys.executable, str(ROOT / "benchmarks" / "scale.py"), "--sizes", "2000"]
    command += ["--work", str(tmp_path / "work"), "--output", str(output), "--png", str(png)]
    command += ["--running-mode", "in_memory", "--memory-budget-mb", "100000"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(output.read_text())
    assert [r["events"] for r in report["results"]] == [2000]
    for result in report["results"]:
        assert set(result["stages"]) == set(scale.STAGES)
        for stage, row in result["stages"].items():
            assert row["seconds"] > 0 and row["events_per_second"] > 0 and row["cpu_seconds"] >= 0, stage
            assert row["peak_mb"] > 100 and row["under_budget"], stage  # a Python with TF loaded
        assert 0 < result["stages"]["GRU4Rec epoch"]["events"] < result["events"]  # the training split
    assert report["verdicts"] == {}  # one size: nothing to compare
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    for stage in scale.DATA_STAGES:
        assert f"| {stage} | 2,000 |" in run.stdout
    assert (tmp_path / "work" / "data-2000-seed0-ml-csv.json").exists()  # kept for the next run
