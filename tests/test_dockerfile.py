"""The Dockerfile's GPU variant installs TensorFlow's CUDA extra at exactly the locked TensorFlow version.

No image is built here (no registry but PyPI and Debian's): the recipe is read as text, the way
Docker reads it (continuation lines joined), so a lock bump without the Dockerfile fails here, not in a
GPU node's pip.
"""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _instructions() -> list[str]:
    """The Dockerfile's instructions, one string each (comments dropped, `\\` continuations joined)."""
    text = (REPO / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    return [i.strip() for i in re.sub(r"\\\n", " ", "\n".join(lines)).split("\n") if i.strip()]


def _locked(name: str) -> str:
    for line in (REPO / "requirements" / "lock.txt").read_text().splitlines():
        pinned, _, version = line.partition("==")
        if pinned.strip().lower() == name:
            return version.strip()
    raise AssertionError(f"requirements/lock.txt pins no {name}")


def _install_step() -> str:
    steps = [i for i in _instructions() if i.startswith("RUN ") and "runtime.txt" in i]
    assert len(steps) == 1, steps
    return steps[0]


def test_gpu_variant_pins_the_cuda_extra_to_the_locked_tensorflow():
    step = _install_step()
    gpu = re.search(r"\bgpu\)\s*gpu_extra=\"([^\"]*)\"\s*;;", step)
    assert gpu, step
    assert gpu.group(1) == f"tensorflow[and-cuda]=={_locked('tensorflow')}"


def test_cpu_variant_is_the_default_and_adds_nothing():
    assert "ARG VARIANT=cpu" in _instructions()
    step = _install_step()
    assert re.search(r"\bcpu\)\s*gpu_extra=\"\"\s*;;", step), step
    # any other value stops the build instead of silently building the CPU image
    assert re.search(r"\*\)[^)]*exit 1\s*;;", step), step


@pytest.mark.parametrize(
    "flag", ["-r /src/movierec/requirements/runtime.txt", "-c /src/movierec/requirements/lock.txt"]
)
def test_the_extra_is_resolved_with_the_locked_set_in_one_pip_call(flag):
    # one resolver run sees the runtime requirements, the extra and the lock's constraints together,
    # so the extra can neither upgrade a locked package nor install another TensorFlow
    pip = _install_step().split("&& pip install", 1)[1]
    assert flag in pip and '${gpu_extra:+"$gpu_extra"}' in pip
