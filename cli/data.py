"""`movierec data fetch|inspect|split`: download, inspect and split datasets."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from movierec.cli.common import data_options, echo_json, load, protocol_options, split_params
from movierec.data import DataError, fetch_dataset
from movierec.data.fetch import KNOWN_DATASETS
from movierec.data.split_files import MANIFEST, manifest, write_split
from movierec.data.splits import PROTOCOLS, make_split, same_second_share


@click.group()
def data() -> None:
    """Download, inspect and split datasets."""


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
