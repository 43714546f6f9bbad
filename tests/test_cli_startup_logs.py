"""The `movierec` command hides TensorFlow's native start-up logs unless `movierec --verbose`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from movierec.cli.quiet_startup import verbose_requested

# TensorFlow's C++ (absl/TSL) log line: severity letter, date, time, thread id, file:line]
NATIVE_LOG_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ [\w.\-]+:\d+\]")
NOISE_WORDS = ("absl::InitializeLog", "cuInit", "cudart", "cuda drivers", "oneDNN")


def native_noise(stderr: str) -> list[str]:
    return [
        line
        for line in stderr.splitlines()
        if NATIVE_LOG_LINE.match(line) or any(word in line for word in NOISE_WORDS)
    ]


def run_movierec(*args: str) -> subprocess.CompletedProcess[str]:
    """Runs the installed console script, as a user would: the quieting must happen in the real
    entry point, before TensorFlow loads, which an in-process CliRunner call cannot show."""
    script = Path(sys.executable).with_name("movierec")
    assert script.exists(), f"the movierec console script is not installed next to {sys.executable}"
    # Level 0 lets every native message through unless the command itself hides it (scripts/run sets
    # 2, and importing movierec.cli in this process sets 3: neither may decide the outcome here).
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"}
    result = subprocess.run(
        [str(script), *args], capture_output=True, text=True, env=env, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr
    return result


@pytest.mark.parametrize(
    ("argv", "verbose"),
    [
        (["movierec", "--verbose", "evaluate", "--data", "x"], True),
        (["movierec", "evaluate", "--verbose"], False),  # a command's argument, not the group's flag
        (["movierec", "-h"], False),
        (["movierec"], False),
    ],
)
def test_only_the_group_option_counts_as_verbose(argv: list[str], verbose: bool) -> None:
    assert verbose_requested(argv) is verbose


@pytest.mark.slow
def test_tensorflow_startup_noise_only_with_verbose(fixtures_dir: Path) -> None:
    # GRU4Rec runs TensorFlow ops, so the device set-up (cuInit) happens as well as the import.
    command = ["evaluate", "--data", str(fixtures_dir / "ml-100k"), "--model", "gru4rec"]
    command += ["--set", "epochs=1", "--protocol", "temporal", "--bootstrap", "10"]
    verbose = run_movierec("--verbose", *command)
    if not native_noise(verbose.stderr):
        pytest.skip("TensorFlow logs nothing at start-up on this machine: there is no noise to hide")
    quiet = run_movierec(*command)
    assert native_noise(quiet.stderr) == []
    assert "fitting gru4rec" in quiet.stderr  # the command's own progress still reaches stderr
    assert quiet.stdout == verbose.stdout  # hiding logs changes no result
