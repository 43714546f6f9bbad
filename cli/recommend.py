"""`movierec recommend`: top-K items from a model saved by `movierec train`."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from movierec.cli.common import echo_json, load_catalogue, load_stream
from movierec.evaluation import top_k
from movierec.evaluation.experiment import seen_items
from movierec.models import QueryBatch, get_spec, load_model


@click.command()
@click.option(
    "--model-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="A folder written by `movierec train`.",
)
@click.option("--user", "users", multiple=True, required=True, help="Raw user id (repeatable).")
@click.option("-k", "--top", "k", default=10, show_default=True, help="How many items to recommend.")
@click.option("--keep-seen", is_flag=True, help="Allow items the user has already rated.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def recommend(model_dir: Path, users: tuple[str, ...], k: int, keep_seen: bool, as_json: bool) -> None:
    """Top-K items for users, given everything the model saw of them: item id, title and genres (where
    the data has them), the score, and for rating models the predicted rating (the score clipped to
    the training ratings' scale; the ranking uses the unclipped score)."""
    model = load_model(model_dir)
    stream = load_stream(model_dir)
    encoded = stream.encode_users(list(users))
    unknown = [u for u, e in zip(users, encoded, strict=True) if e < 0]
    if unknown:
        raise click.ClickException(
            f"unknown user id(s) {', '.join(unknown)}: not in the model's training data"
        )
    history_length = np.diff(stream.sequences.indptr)[encoded]
    starts = stream.sequences.indptr[encoded]
    session_starts = np.array(
        [
            int(np.flatnonzero(stream.sequences.session_start[s : s + n])[-1]) if n else 0
            for s, n in zip(starts, history_length, strict=True)
        ]
    )
    batch = QueryBatch(encoded, history_length, session_starts, stream.sequences)
    scores = model.score(batch)
    excluded = None if keep_seen else seen_items(encoded, history_length, stream)
    indices, values = top_k(scores, k, excluded)
    catalogue = load_catalogue(model_dir)
    ratings = stream.sequences.ratings
    scale = (float(ratings.min()), float(ratings.max())) if get_spec(model.name).rating else None
    output = {}
    for raw, idx, val in zip(users, indices, values, strict=True):
        rows = []
        for i, v in zip(idx, val, strict=True):
            row = {"item_id": str(stream.item_ids[i]), **catalogue.get(str(stream.item_ids[i]), {})}
            row["score"] = float(v)
            if scale is not None:
                row["predicted_rating"] = float(np.clip(v, *scale))
            rows.append(row)
        output[raw] = rows
    if as_json:
        echo_json(output)
        return
    for raw, items in output.items():
        click.echo(f"user {raw}:")
        for rank, it in enumerate(items, start=1):
            described = f"  {it['title']} [{'|'.join(it['genres'])}]" if it.get("title") else ""
            rating = f"  predicted rating {it['predicted_rating']:.2f}" if "predicted_rating" in it else ""
            click.echo(f"{rank:>3}. {it['item_id']}{described}  score {it['score']:.3f}{rating}")
