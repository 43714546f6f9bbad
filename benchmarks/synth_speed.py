"""Speed and memory of `movierec data synth` (movierec.data.synth_files.write_synthetic) per size.

    scripts/run python benchmarks/synth_speed.py --events 1000000 --events 4000000 --events 16000000

Each size runs in a fresh Python process (peak RSS is a per-process high-water mark), writes the files
into a temporary folder that is deleted afterwards, and prints one JSON line: wall seconds, events/s,
the process's RSS after its imports and at its peak, and the growth between the two (the generator's
own memory, which should not grow with the event count). Numbers depend on the machine and on what
else runs on it. Synthetic data is test data for scale and plumbing, not a benchmark of accuracy.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def measure(events: int, layout: str, seed: int, folder: Path) -> dict:
    """Writes one synthetic dataset into `folder` in this process and returns its figures."""
    from movierec.data.synth import SynthConfig
    from movierec.data.synth_files import write_synthetic

    baseline = _rss_mb()
    start = time.perf_counter()
    result = write_synthetic(folder, SynthConfig(events=events, layout=layout, seed=seed))
    seconds = time.perf_counter() - start
    peak = _rss_mb()
    return {
        "events": events,
        "layout": layout,
        "users": result.users,
        "items": result.items,
        "seconds": round(seconds, 2),
        "events_per_second": round(events / seconds),
        "bytes_written": sum(Path(f).stat().st_size for f in result.files),
        "rss_after_imports_mb": round(baseline, 1),
        "peak_rss_mb": round(peak, 1),
        "rss_growth_mb": round(peak - baseline, 1),
    }


@click.command()
@click.option(
    "--events",
    "sizes",
    multiple=True,
    type=click.IntRange(min=1),
    default=(1_000_000, 4_000_000),
    show_default=True,
    help="Event counts to time (repeat the option).",
)
@click.option("--layout", default="ml-csv", show_default=True, type=click.Choice(["ml-csv", "ml-dat"]))
@click.option("--seed", default=0, show_default=True)
@click.option("--child", is_flag=True, hidden=True, help="Measure one size in this process.")
def main(sizes: tuple[int, ...], layout: str, seed: int, child: bool) -> None:
    if child:
        with tempfile.TemporaryDirectory(prefix="synth-speed-") as folder:
            click.echo(json.dumps(measure(sizes[0], layout, seed, Path(folder))))
        return
    for events in sizes:
        command = [sys.executable, __file__, "--child", "--events", str(events), "--layout", layout]
        output = subprocess.run([*command, "--seed", str(seed)], check=True, capture_output=True, text=True)
        click.echo(output.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
