"""`movierec data fetch|inspect|split|synth`: download, inspect, split and synthesise datasets."""

from __future__ import annotations

import calendar
import datetime
import re
import sys
import time
from pathlib import Path

import click

from movierec import storage
from movierec.cli.common import data_options, echo_json, load, protocol_options, split_params
from movierec.data import DataError, fetch_dataset
from movierec.data.fetch import KNOWN_DATASETS
from movierec.data.split_files import MANIFEST, manifest, write_split
from movierec.data.splits import PROTOCOLS, make_split, same_second_share
from movierec.data.synth import DEFAULT_END, DEFAULT_START, SYNTH_LAYOUTS, SynthConfig
from movierec.data.synth_files import write_synthetic


@click.group()
def data() -> None:
    """Download, inspect, split and synthesise datasets."""


@data.command("fetch")
@click.argument("name", type=click.Choice(sorted(KNOWN_DATASETS)))
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    envvar="MOVIEREC_DATA_DIR",
    help="Where to keep it (default: $MOVIEREC_DATA_DIR or ~/.cache/movierec/data).",
)
def data_fetch(name: str, data_dir: Path | None) -> None:
    """Download NAME from GroupLens, check its checksum and unpack it (once; later calls reuse it)."""
    bar = None

    def progress(done: int, total: int | None) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total or 0, label=f"downloading {name}", file=sys.stderr)
            bar.__enter__()
        bar.update(done - bar.pos)

    try:
        path = fetch_dataset(name, data_dir, progress=progress)
    except DataError as error:
        raise click.ClickException(str(error)) from error
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    click.echo(str(path))


@data.command("inspect")
@data_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def data_inspect(data: str, data_dir: Path | None, strict: bool, as_json: bool) -> None:
    """Load a dataset and report its size, time span and rejected rows."""
    dataset = load(data, data_dir, strict)
    frame = dataset.interactions
    summary = {
        "name": dataset.name,
        "layout": dataset.layout,
        "files": [str(f) for f in dataset.files],
        "checksum": dataset.checksum,
        "time_unit": dataset.time_unit,
        "interactions": len(frame),
        "users": int(frame["user_id"].nunique()),
        "items": int(frame["item_id"].nunique()),
        "first_timestamp": int(frame["timestamp"].min()),
        "last_timestamp": int(frame["timestamp"].max()),
        "same_second_share": round(same_second_share(frame), 4),
        "rating_counts": {str(k): int(v) for k, v in frame["rating"].value_counts().sort_index().items()},
        "report": dataset.report.to_dict(),
    }
    if as_json:
        echo_json(summary)
        return
    for key in (
        "name",
        "layout",
        "checksum",
        "time_unit",
        "interactions",
        "users",
        "items",
        "first_timestamp",
        "last_timestamp",
        "same_second_share",
    ):
        click.echo(f"{key:16} {summary[key]}")
    click.echo(f"{'ratings':16} {summary['rating_counts']}")
    click.echo(dataset.report.summary())


@data.command("split")
@data_options
@click.option(
    "--protocol",
    default="temporal",
    show_default=True,
    type=click.Choice(sorted(PROTOCOLS)),
    help="Protocol whose split is written.",
)
@protocol_options
@click.option(
    "--out",
    required=True,
    help="Folder (or URI) to write train.tsv, validation.tsv, test.tsv and split.json into; "
    "`--data OUT --protocol given-split` reads it back.",
)
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print split.json's content.")
def data_split(
    data: str,
    data_dir: Path | None,
    strict: bool,
    protocol: str,
    session_gap: int,
    seed: int,
    test_fraction: float,
    out: str,
    force: bool,
    as_json: bool,
) -> None:
    """Write a protocol's split as files any command reads back.

    Only the kept rows are written (UserId, ItemId, Rating, Time; SessionId for session data); what the
    protocol dropped is counted in split.json, with its parameters and the source data's checksum.
    `movierec evaluate --data OUT --protocol given-split` then gives exactly the metrics of
    `--data DATA --protocol PROTOCOL`. --session-gap is not part of the split: it is recorded in
    split.json for the commands that read it back.
    """
    dataset = load(data, data_dir, strict)
    try:
        split = make_split(dataset.interactions, protocol, **split_params(protocol, test_fraction, seed))
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    extra = {"session_gap": session_gap}
    try:
        written = write_split(dataset, split, out, overwrite=force, extra=extra)
    except FileExistsError as error:
        raise click.ClickException(f"{error}") from error
    except OSError as error:
        raise click.ClickException(f"cannot write the split to {out}: {error}") from error
    record = manifest(dataset, split, extra)
    if as_json:
        echo_json(record)
        return
    rows = ", ".join(f"{role} {n}" for role, n in record["rows"].items())
    dropped = ", ".join(f"{k} {v}" for k, v in split.dropped.items()) or "none"
    click.echo(f"{protocol} split of {dataset.name} written to {written}: {rows} rows (dropped: {dropped})")
    click.echo(f"read it back with: movierec evaluate --data {written} --protocol given-split ...")
    click.echo(f"parameters and source checksum: {MANIFEST}")


def _parse_day(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """--start/--end: YYYY-MM-DD (UTC; --start at 00:00:00, --end at 23:59:59) or unix seconds."""
    if value is None:
        return None
    text = value.strip()
    if re.fullmatch(r"[0-9]+", text):
        return int(text)
    try:
        day = datetime.date.fromisoformat(text)
    except ValueError as error:
        raise click.BadParameter(
            f"expected a date YYYY-MM-DD (UTC) or unix seconds, got {value!r}", ctx=ctx, param=param
        ) from error
    midnight = calendar.timegm(day.timetuple())
    return midnight + 86399 if param.name == "end" else midnight


@data.command("synth")
@click.option("--out", required=True, help="Folder (or URI) to write the files into (created if missing).")
@click.option("--events", default=1_000_000, show_default=True, type=int, help="Number of ratings (exactly).")
@click.option("--users", type=int, help="Number of users  [default: events / 120]")
@click.option(
    "--items",
    type=int,
    help="Number of movies  [default: 5·√events, at least 50 and twice the ratings per user]",
)
@click.option(
    "--layout",
    default="ml-csv",
    show_default=True,
    type=click.Choice(SYNTH_LAYOUTS),
    help="ml-csv: movies.csv, ratings.csv (half stars); ml-dat: movies.dat, users.dat, ratings.dat "
    "(ML-1M style, whole stars).",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Same seed, same bytes.")
@click.option(
    "--start",
    callback=_parse_day,
    metavar="DATE|SECONDS",
    help="First possible timestamp: YYYY-MM-DD (UTC) or unix seconds  [default: 2000-01-01]",
)
@click.option(
    "--end",
    callback=_parse_day,
    metavar="DATE|SECONDS",
    help="Last possible timestamp: YYYY-MM-DD (the whole day, UTC) or unix seconds  [default: 2003-12-31]",
)
@click.option("--force", is_flag=True, help="Replace the layout's files if --out already holds them.")
def data_synth(
    out: str,
    events: int,
    users: int | None,
    items: int | None,
    layout: str,
    seed: int,
    start: int | None,
    end: int | None,
    force: bool,
) -> None:
    """Generate a MovieLens-like dataset of any size: TEST DATA for scale and plumbing, not a benchmark
    of accuracy (metrics on it say nothing about real ratings).

    Zipf-like movie popularity, MovieLens' genres, "Word Word (1994)" titles, ML-1M demographics, tastes
    over genres that drift, session bursts, and timestamp ties at ML-100K's rate (51% of a user's
    consecutive ratings share a second). Seeded, streamed in constant memory, written atomically.
    """
    config = SynthConfig(
        events=events,
        users=users,
        items=items,
        layout=layout,
        seed=seed,
        start=DEFAULT_START if start is None else start,
        end=DEFAULT_END if end is None else end,
    )
    try:
        config = config.resolved()
    except ValueError as error:
        raise click.UsageError(str(error)) from error
    began = time.perf_counter()
    with click.progressbar(length=config.events, label=f"synthesising {layout}", file=sys.stderr) as bar:

        def progress(written: int) -> None:
            bar.update(written - bar.pos)

        try:
            result = write_synthetic(out, config, overwrite=force, progress=progress)
        except FileExistsError as error:
            raise click.ClickException(str(error)) from error
        except OSError as error:
            raise click.ClickException(f"cannot write the synthetic dataset to {out}: {error}") from error
    seconds = time.perf_counter() - began
    names = ", ".join(storage.name(f) for f in result.files)
    click.echo(
        f"wrote {result.events:,} synthetic ratings of {result.users:,} users and {result.items:,} movies "
        f"({layout}, seed {seed}, {seconds:.1f} s) to {result.folder}: {names}"
    )
    click.echo("test data for scale and plumbing, not a benchmark of accuracy")
    click.echo(f"read it with: movierec data inspect --data {result.folder}")
