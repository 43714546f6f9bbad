"""Loading speed of a dataset folder: read, validate and checksum every file (`load_dataset`).

    scripts/run python benchmarks/load_speed.py --data ../shared/data/ml-100k     # target: 2.0 s

Prints one JSON line with every load's time, the best one and the target, and exits with status 1
when the best load misses the target. The best of `--repeat` loads is what is compared: on a shared
machine other work only ever adds time, so the minimum is the least noisy estimate of the code's own
cost. Speed targets live here, not in unit tests: numbers depend on the machine and on what else runs.
"""

from __future__ import annotations

import json
import sys
import time

import click

from movierec.data import load_dataset, resolve_dataset


def time_loads(data: str, repeat: int) -> tuple[list[float], int]:
    """Seconds of each of `repeat` full loads of `data`, and the number of interactions read."""
    path = resolve_dataset(data)
    seconds, rows = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        dataset = load_dataset(path)
        seconds.append(time.perf_counter() - start)
        rows = len(dataset.interactions)
    return seconds, rows


@click.command()
@click.option("--data", required=True, help="Dataset name or folder.")
@click.option("--repeat", default=3, show_default=True, type=click.IntRange(min=1), help="Loads timed.")
@click.option(
    "--target",
    default=2.0,
    show_default=True,
    type=float,
    help="Seconds the best load must stay under (the target set for MovieLens 100K).",
)
def main(data: str, repeat: int, target: float) -> None:
    seconds, rows = time_loads(data, repeat)
    best = min(seconds)
    row = {
        "data": data,
        "interactions": rows,
        "seconds": [round(s, 3) for s in seconds],
        "best_seconds": round(best, 3),
        "target_seconds": target,
        "met": best < target,
    }
    click.echo(json.dumps(row))
    if best >= target:
        click.echo(f"load_speed: best load {best:.3f} s misses the target of {target} s", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
