"""What the command groups share: loading data with its rejected-row report, `--set` parsing, the
data and protocol options, JSON output, atomic writes and the trained-model folder of `train`."""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import click
import numpy as np

from movierec.constants import DEFAULT_SESSION_GAP
from movierec.data import DataError, Dataset, load_dataset, resolve_dataset
from movierec.data.stream import QUERY_MODES, EventStream
from movierec.evaluation.experiment import DEFAULT_KS
from movierec.models import UserSequences, get_spec, make_config

# Metrics of the result tables, in column order, and those shown with their intervals, for the
# default cutoffs (5, 10, 20); other `--ks` get `headline_metrics(ks)`.
HEADLINE = ("recall@20", "mrr@20", "ndcg@10", "precision@5", "map", "auc", "rmse", "mae")
DETAIL_METRICS = ("recall@20", "mrr@20", "rmse")


def headline_metrics(ks: tuple[int, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(table columns, metrics shown with their intervals) for the metric cutoffs `ks`: the usual
    columns for the default cutoffs; else Precision@K and NDCG@K for every K, MRR and MAP (the
    measures of the LSIC paper), AUC and the rating errors."""
    if tuple(ks) == DEFAULT_KS:
        return HEADLINE, DETAIL_METRICS
    ranked = (*(f"{metric}@{k}" for metric in ("precision", "ndcg") for k in ks), "mrr", "map")
    return (*ranked, "auc", "rmse", "mae"), (*ranked, "rmse")


def parse_ks(ctx: click.Context | None, param: click.Parameter | None, value: str | None):
    """`--ks 3,5,10` → (3, 5, 10): positive integers, sorted, each once."""
    if value is None:
        return DEFAULT_KS
    parts = [part.strip() for part in value.split(",")]
    if not all(re.fullmatch(r"[0-9]+", part) for part in parts) or any(int(p) < 1 for p in parts):
        raise click.BadParameter(
            f"expected positive whole numbers separated by commas (e.g. 3,5,10), got {value!r}",
            ctx=ctx,
            param=param,
            param_hint="--ks",
        )
    return tuple(sorted({int(part) for part in parts}))


def parse_cut_time(ctx: click.Context | None, param: click.Parameter | None, value: str | None):
    """`--cut-time`: a date YYYY-MM-DD (that day's midnight, UTC) or integer unix seconds."""
    if value is None:
        return None
    text = value.strip()
    if re.fullmatch(r"-?[0-9]+", text):
        return int(text)
    if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        try:
            day = datetime.date.fromisoformat(text)
        except ValueError as error:
            raise click.BadParameter(
                f"{value!r} is not a calendar date ({error})", ctx=ctx, param=param, param_hint="--cut-time"
            ) from error
        return int(datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.UTC).timestamp())
    raise click.BadParameter(
        f"expected a date YYYY-MM-DD (UTC midnight) or integer unix seconds, got {value!r}",
        ctx=ctx,
        param=param,
        param_hint="--cut-time",
    )


def ranking_options(f):
    """What a ranking metric means (evaluate, benchmark): queries, seen items, relevance, cutoffs."""
    options = [
        click.option(
            "--query-mode",
            type=click.Choice(QUERY_MODES),
            default="next-item",
            show_default=True,
            help="next-item: every held-out event is a query; user: one top-N list per user.",
        ),
        click.option("--keep-seen", is_flag=True, help="Do not remove already-seen items from the rankings."),
        click.option(
            "--positive-rating",
            type=float,
            metavar="X",
            help="Only held-out events rated >= X are relevant (e.g. 4: the LSIC paper's positives); "
            "lower-rated ones stay candidates, neither relevant nor removed. Queries (users, with "
            "--query-mode user) left without a relevant item are not asked and are counted. Default: every "
            "held-out event is relevant.",
        ),
        click.option(
            "--ks",
            callback=parse_ks,
            metavar="K,K,...",
            help="Metric cutoffs, comma-separated, e.g. 3,5,10 (default 5,10,20); the table shows "
            "Precision@K and NDCG@K for each, MRR and MAP when they differ from the default.",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def cut_time_option(f):
    """`--cut-time` (evaluate, train): a fixed temporal cut instead of --test-fraction."""
    return click.option(
        "--cut-time",
        callback=parse_cut_time,
        metavar="DATE|SECONDS",
        help="temporal: a fixed cut t1 instead of --test-fraction — events before it train, events at or "
        "after it are evaluated. YYYY-MM-DD (midnight UTC) or integer unix seconds, e.g. 1998-03-01.",
    )(f)


def check_cut_time(ctx: click.Context, cut_time: int | None, protocols: tuple[str, ...]) -> None:
    """--cut-time only with protocols that have a cut, and not together with --test-fraction."""
    if cut_time is None:
        return
    without = [p for p in protocols if p not in CUT_PROTOCOLS]
    if without:
        raise click.BadParameter(
            f"only the {', '.join(CUT_PROTOCOLS)} protocol has a cut time; {', '.join(without)} "
            "has none (choose --protocol temporal)",
            param_hint="--cut-time",
        )
    if ctx.get_parameter_source("test_fraction") is not click.core.ParameterSource.DEFAULT:
        raise click.BadParameter(
            "give either --cut-time or --test-fraction: both place the temporal cut",
            param_hint="--cut-time",
        )


def echo_json(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2, sort_keys=False))


def load(data: str, data_dir: Path | None, strict: bool) -> Dataset:
    try:
        dataset = load_dataset(resolve_dataset(data, data_dir), strict=strict)
    except DataError as error:
        raise click.ClickException(str(error)) from error
    if dataset.report.total_rejected:
        click.echo(dataset.report.summary(), err=True)
    return dataset


def parse_hparams(pairs: tuple[str, ...]) -> dict[str, Any]:
    """`--set KEY=VALUE` pairs: VALUE as JSON where it parses, else as a string."""
    hparams = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--set")
        try:
            hparams[key] = json.loads(value)
        except json.JSONDecodeError:
            hparams[key] = value
    return hparams


def known_hparams(model_name: str) -> set[str]:
    """The hyper-parameters a model declares (read from its config class: no model is built)."""
    return {f.name for f in dataclasses.fields(get_spec(model_name).factory.config_class)}


def check_hparams(models: tuple[str, ...], hparams: dict[str, Any]) -> None:
    """Every --set key is taken by some selected model, with a value of the declared type and range:
    checked up front, before any data is read, against the models' config classes."""
    unknown = set(hparams) - set().union(*(known_hparams(name) for name in models))
    if unknown:
        takes = "; ".join(f"{name}: {', '.join(sorted(known_hparams(name))) or 'none'}" for name in models)
        raise click.BadParameter(
            f"no selected model takes {', '.join(sorted(unknown))} (they take {takes}; "
            "`movierec models` lists them)",
            param_hint="--set",
        )
    for name in models:
        try:
            make_config(get_spec(name).factory.config_class, hparams_for(name, hparams, 0), name)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--set") from error


def hparams_for(model_name: str, hparams: dict[str, Any], seed: int) -> dict[str, Any]:
    """The --set values this model takes (several models may be evaluated in one call); --seed seeds
    every model that takes a seed unless --set seed=... says otherwise."""
    known = known_hparams(model_name)
    chosen = {k: v for k, v in hparams.items() if k in known}
    if "seed" in known:
        chosen.setdefault("seed", seed)
    return chosen


def data_options(f):
    f = click.option("--strict", is_flag=True, help="Stop at the first malformed or rejected row.")(f)
    f = click.option(
        "--data-dir",
        type=click.Path(path_type=Path),
        envvar="MOVIEREC_DATA_DIR",
        help="Where named datasets live (default: $MOVIEREC_DATA_DIR or ~/.cache/movierec/data).",
    )(f)
    f = click.option(
        "--data",
        required=True,
        help="A dataset name (ml-100k, ml-1m, ...) in --data-dir, or a folder of GroupLens/Netflix files "
        "or session-tsv split files.",
    )(f)
    return f


def protocol_options(f):
    f = click.option(
        "--session-gap",
        default=DEFAULT_SESSION_GAP,
        show_default=True,
        help="Seconds of inactivity that end a session (session-based models and Item-KNN).",
    )(f)
    f = click.option(
        "--seed",
        default=0,
        show_default=True,
        help="Seed of the validation/test user split, the models and the bootstrap.",
    )(f)
    f = click.option(
        "--test-fraction",
        default=0.2,
        show_default=True,
        help="temporal: share of the latest events that form the evaluation period.",
    )(f)
    return f


SEEDED_PROTOCOLS = ("temporal", "random")  # the protocols with a random part: --seed and --test-fraction
CUT_PROTOCOLS = ("temporal",)  # the protocols with a cut time: --cut-time


def split_params(
    protocol: str, test_fraction: float, seed: int, cut_time: int | None = None
) -> dict[str, Any]:
    """The protocol's parameters from the command's options; a cut time replaces the test fraction."""
    if cut_time is not None:
        if protocol not in CUT_PROTOCOLS:
            raise click.BadParameter(f"protocol {protocol} has no cut time", param_hint="--cut-time")
        return {"cut_time": cut_time, "seed": seed}
    return {"test_fraction": test_fraction, "seed": seed} if protocol in SEEDED_PROTOCOLS else {}


def write_atomically(path: Path, text: str) -> None:
    """A failed run never leaves a half-written file in place of a good one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
        handle.write(text)
    Path(handle.name).replace(path)


def save_stream(stream: EventStream, directory: Path) -> None:
    seq = stream.sequences
    np.savez_compressed(
        directory / "stream.npz",
        user_ids=stream.user_ids,
        item_ids=stream.item_ids,
        indptr=seq.indptr,
        items=seq.items,
        ratings=seq.ratings,
        timestamps=seq.timestamps,
        session_start=seq.session_start,
        roles=stream.roles,
        session_gap=stream.session_gap,
    )


CATALOGUE_FILE = "catalogue.json"


def save_catalogue(dataset: Dataset, stream: EventStream, directory: Path) -> None:
    """Title and genres of each model item (by raw id), for `movierec recommend`; nothing where the
    layout has no item table."""
    if dataset.items is None:
        return
    table = dataset.items.assign(item_id=dataset.items["item_id"].astype(str)).drop_duplicates("item_id")
    rows = table.set_index("item_id").reindex(stream.item_ids.astype(str))
    catalogue = {
        item: {
            "title": title if isinstance(title, str) else "",
            "genres": list(genres) if isinstance(genres, tuple | list) else [],
        }
        for item, title, genres in zip(rows.index, rows["title"], rows["genres"], strict=True)
    }
    (directory / CATALOGUE_FILE).write_text(json.dumps(catalogue, ensure_ascii=False))


def load_catalogue(directory: Path) -> dict[str, dict[str, Any]]:
    path = directory / CATALOGUE_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def load_stream(directory: Path) -> EventStream:
    arrays = np.load(directory / "stream.npz")
    sequences = UserSequences(
        arrays["indptr"], arrays["items"], arrays["ratings"], arrays["timestamps"], arrays["session_start"]
    )
    return EventStream(
        arrays["user_ids"], arrays["item_ids"], sequences, arrays["roles"], int(arrays["session_gap"])
    )
