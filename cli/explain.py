"""`movierec explain`: why a model saved by `movierec train` predicts a rating, from its attention gates.

IARN (models/iarn) reads two histories per (user, item, time): the items the user rated and the users
who rated the item, strictly before the time (the latest `max_history` of each). Each event enters
its side's state through an attention gate a_t in (0, 1) that depends on the *other* side's sequence
(eqs. 6, 8 of Pei et al., CIKM 2017): the gates are the model's own account of which past ratings
mattered for this pair. The command prints both histories sorted by gate, highest first, with
titles and genres from the model folder's catalogue.json where the data had them, and the predicted
rating; `--html` writes the same as a small self-contained page with a bar per event (width = gate).
The SavedModel's `explain` signature (serving/rating_export.py) returns the same histories and gates.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from movierec.cli.common import load_catalogue, load_stream, write_atomically
from movierec.models import load_model


def _date(timestamp: int) -> str:
    return datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%d %H:%M")


def explanation(model_dir: Path, user: str, item: str, timestamp: int | None) -> dict[str, Any]:
    """The model's explanation with raw ids, titles and genres, both histories sorted by gate, highest
    first (ties, and backbones without gates: the latest event first). Raises click errors that name
    the argument at fault."""
    model = load_model(model_dir)
    if not callable(getattr(model, "explain", None)):
        raise click.BadParameter(
            f"the {model.name} model in {model_dir} has no gates to explain a rating with "
            "(`movierec explain` needs an IARN model: `movierec train --model iarn`)",
            param_hint="--model-dir",
        )
    stream = load_stream(model_dir)
    (user_index,) = stream.encode_users([user])
    if user_index < 0:
        raise click.BadParameter(f"unknown user id {user!r}: not in the model's data", param_hint="--user")
    (item_index,) = stream.encode_items([item])
    if item_index < 0:
        raise click.BadParameter(f"unknown item id {item!r}: not in the model's data", param_hint="--item")
    found = model.explain(int(user_index), int(item_index), timestamp)
    catalogue = load_catalogue(model_dir)

    def ordered(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        by_time = sorted(events, key=lambda e: -e["timestamp"])  # stable: the latest first on ties
        return sorted(by_time, key=lambda e: -(e["gate"] if e["gate"] is not None else 0.0))

    item_id = str(stream.item_ids[item_index])
    user_events = [
        {
            "item_id": str(stream.item_ids[e["item"]]),
            **catalogue.get(str(stream.item_ids[e["item"]]), {}),
            **e,
        }
        for e in found["user_history"]
    ]
    item_events = [{"user_id": str(stream.user_ids[e["user"]]), **e} for e in found["item_history"]]
    for events, index in ((user_events, "item"), (item_events, "user")):
        for event in events:
            del event[index]  # model indices: the raw ids are what a reader knows
    return {
        "user_id": user,
        "item_id": item_id,
        **{f"item_{key}": value for key, value in catalogue.get(item_id, {}).items()},
        "timestamp": found["timestamp"],
        "backbone": found["backbone"],
        "predicted_rating": found["predicted_rating"],
        "raw_rating": found["raw_rating"],
        "user_history": ordered(user_events),
        "item_history": ordered(item_events),
    }


def _gate(value: float | None) -> str:
    return "  n/a" if value is None else f"{value:.3f}"


def _bar(value: float | None, width: int = 20) -> str:
    return "" if value is None else "#" * round(value * width)


def render_text(found: dict[str, Any]) -> str:
    """Both histories, sorted by gate (highest first), with the predicted rating on top."""
    title = found.get("item_title") or ""
    lines = [
        f"user {found['user_id']} × item {found['item_id']}"
        + (f" {title}" if title else "")
        + f" at {_date(found['timestamp'])} UTC (timestamp {found['timestamp']}),"
        + f" backbone {found['backbone']}",
        f"predicted rating {found['predicted_rating']:.2f} (unclipped {found['raw_rating']:.3f})",
        "",
        f"user {found['user_id']}'s rated items the prediction read ({len(found['user_history'])}, "
        "strictly before the time), sorted by gate, highest first:",
        f"  {'gate':>5}  {'':20}  rating  {'date':16}  item",
    ]
    for e in found["user_history"]:
        described = f"  {e['title']}" if e.get("title") else ""
        genres = f" [{'|'.join(e['genres'])}]" if e.get("genres") else ""
        lines.append(
            f"  {_gate(e['gate'])}  {_bar(e['gate']):20}  {e['rating']:6.1f}  {_date(e['timestamp'])}  "
            f"{e['item_id']}{described}{genres}"
        )
    lines += [
        "",
        f"item {found['item_id']}'s raters the prediction read ({len(found['item_history'])}, strictly "
        "before the time), sorted by gate, highest first:",
        f"  {'gate':>5}  {'':20}  rating  {'date':16}  user",
    ]
    for e in found["item_history"]:
        lines.append(
            f"  {_gate(e['gate'])}  {_bar(e['gate']):20}  {e['rating']:6.1f}  {_date(e['timestamp'])}  "
            f"{e['user_id']}"
        )
    return "\n".join(lines)


STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin-bottom: 2em; }
td, th { padding: 2px 8px; text-align: left; }
.track { width: 200px; background: #eee; }
.bar { height: 12px; background: #3b7dd8; }
"""


def render_html(found: dict[str, Any]) -> str:
    """A self-contained page (inline CSS, no script): one table per side, a bar per event whose width
    is its gate (a percentage of the track), titles escaped."""

    def rows(events: list[dict[str, Any]], label) -> str:
        out = []
        for e in events:
            gate = e["gate"]
            bar = "" if gate is None else f'<div class="bar" style="width: {100 * gate:.4f}%"></div>'
            out.append(
                f'<tr><td>{_gate(gate)}</td><td class="track">{bar}</td><td>{e["rating"]:.1f}</td>'
                f"<td>{_date(e['timestamp'])}</td><td>{label(e)}</td></tr>"
            )
        return "\n".join(out)

    def item_label(e: dict[str, Any]) -> str:
        title = f" {html.escape(e['title'])}" if e.get("title") else ""
        genres = f" [{html.escape('|'.join(e['genres']))}]" if e.get("genres") else ""
        return f"{html.escape(e['item_id'])}{title}{genres}"

    head = "<tr><th>gate</th><th></th><th>rating</th><th>date</th><th>{}</th></tr>"
    user, item = html.escape(found["user_id"]), html.escape(found["item_id"])
    title = html.escape(found.get("item_title") or "")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Why user {user} × item {item}</title>
<style>{STYLE}</style></head>
<body>
<h1>User {user} × item {item} {title}</h1>
<p>Predicted rating <strong>{found["predicted_rating"]:.2f}</strong> (unclipped {found["raw_rating"]:.3f})
at {_date(found["timestamp"])} UTC, {html.escape(found["backbone"])} backbone. Each bar is an event's
attention gate (0 to 1): how much it entered the state. Sorted by gate, highest first.</p>
<h2>Items user {user} rated before</h2>
<table>{head.format("item")}
{rows(found["user_history"], item_label)}
</table>
<h2>Users who rated item {item} before</h2>
<table>{head.format("user")}
{rows(found["item_history"], lambda e: html.escape(e["user_id"]))}
</table>
</body></html>
"""


@click.command()
@click.option(
    "--model-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="A folder written by `movierec train` (an IARN model).",
)
@click.option("--user", required=True, help="Raw user id.")
@click.option("--item", required=True, help="Raw item id.")
@click.option(
    "--timestamp",
    type=int,
    default=None,
    help="Seconds since the epoch; the histories end strictly before it "
    "(default: after every training event).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write an HTML page."
)
def explain(
    model_dir: Path, user: str, item: str, timestamp: int | None, as_json: bool, html_path: Path | None
) -> None:
    """Why the model predicts its rating of ITEM by USER: the user's rated items and the item's raters it
    read, each with its attention gate, sorted by gate (highest first), and the predicted rating."""
    found = explanation(model_dir, user, item, timestamp)
    if html_path is not None:
        write_atomically(html_path, render_html(found))
    if as_json:
        click.echo(json.dumps(found, indent=2, ensure_ascii=False))
    else:
        click.echo(render_text(found))
        if html_path is not None:
            click.echo(f"\nwrote {html_path}")
