"""`movierec query …`: ask a TF Serving server for a pushed model's answers (serving/client.py).

    movierec query status    --url http://localhost:8501 --model gru4rec
    movierec query metadata  --url localhost:8500 --model gru4rec            # gRPC
    movierec query recommend --url http://localhost:8501 --model gru4rec --items 50,181,258 -k 10
    movierec query recommend --url http://localhost:8501 --model rrn --user 196 -k 10
    movierec query session   --url http://localhost:8501 --model gru4rec --items 50,181 --state s.json
    movierec query rating    --url http://localhost:8501 --model rrn --user 196 --item 242

`--url` is REST for http(s)://, gRPC otherwise (host:port or grpc://host:port). Answers are printed as
JSON; a refused request exits with TF Serving's error message.
"""

from __future__ import annotations

import functools
import json

import click
import numpy as np


def _ids(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def _timestamps(value: str | None) -> list[list[int]] | None:
    """--timestamps as one request row of ints (None when not given)."""
    if value is None:
        return None
    try:
        return [[int(t) for t in _ids(value)]]
    except ValueError:
        raise click.BadParameter(f"not integers: {value!r}", param_hint="--timestamps") from None


def connection_options(f):
    @click.option(
        "--url", required=True, help="http(s)://host:port (REST) or host:port / grpc://host:port (gRPC)."
    )
    @click.option("--model", required=True, help="The model's name in TF Serving's config (e.g. gru4rec).")
    @click.option("--version", type=int, default=None, help="A version number (default: the latest served).")
    @click.option("--timeout", type=float, default=10.0, show_default=True, help="Seconds per attempt.")
    @click.option(
        "--retries",
        type=int,
        default=3,
        show_default=True,
        help="Retries while the server is UNAVAILABLE (503).",
    )
    @functools.wraps(f)
    def wrapper(url, model, version, timeout, retries, **kwargs):
        from movierec.serving.client import connect

        if timeout <= 0:
            raise click.BadParameter(f"must be > 0, got {timeout}", param_hint="--timeout")
        if retries < 0:
            raise click.BadParameter(f"must be >= 0, got {retries}", param_hint="--retries")
        client = connect(url, model, version, timeout=timeout, retries=retries)
        return f(client, **kwargs)

    return wrapper


def _run(call):
    from movierec.serving.client import ServingError

    try:
        return call()
    except ServingError as error:
        raise click.ClickException(str(error)) from None


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _echo(payload) -> None:
    click.echo(json.dumps(_plain(payload), indent=2))


@click.group("query")
def query() -> None:
    """Query models served by TF Serving (REST or gRPC)."""


@query.command()
@connection_options
def status(client) -> None:
    """The model's versions and their states."""
    _echo(_run(client.status))


@query.command()
@connection_options
def metadata(client) -> None:
    """The served signatures: inputs and outputs with dtypes and shapes."""
    _echo(_run(client.metadata))


@query.command()
@connection_options
@click.option(
    "--items", default=None, help="History models (gru4rec): the raw item ids, oldest first, comma-separated."
)
@click.option(
    "--timestamps", default=None, help="With --items: one timestamp (seconds) per item, comma-separated."
)
@click.option("--exclude", default=None, help="With --items: item ids never to recommend, comma-separated.")
@click.option("--user", default=None, help="Rating models (rrn, lstm-cnn, iarn): the raw user id.")
@click.option("-k", "k", type=int, default=10, show_default=True, help="How many items.")
def recommend(client, items, timestamps, exclude, user, k) -> None:
    """Top-k items: from a history (--items, GRU4Rec's `recommend`) or for a user (--user, a rating
    model's `recommend`). Items the answer pads with (fewer than k candidates) are dropped."""
    from movierec.serving.client import rating_recommend_request, recommend_request

    if (items is None) == (user is None):
        raise click.UsageError("give either --items (history models) or --user (rating models)")
    if user is not None:
        request = rating_recommend_request([user], k)
    else:
        times = _timestamps(timestamps)
        try:
            request = recommend_request([_ids(items)], k, times, [_ids(exclude)] if exclude else None)
        except ValueError as error:
            raise click.UsageError(str(error)) from None
    answer = _run(lambda: client.predict(request))
    rows = [
        {"item_id": i.decode() if isinstance(i, bytes) else str(i), "score": float(s)}
        for i, s in zip(answer["item_ids"][0], answer["scores"][0], strict=True)
        if i
    ]
    extra = {name: _plain(answer[name][0]) for name in ("unknown_ids", "history_length") if name in answer}
    _echo({"recommendations": rows, **extra})


@query.command()
@connection_options
@click.option("--items", required=True, help="The session's NEW raw item ids, oldest first, comma-separated.")
@click.option("--timestamps", default=None, help="One timestamp (seconds) per new item, comma-separated.")
@click.option(
    "--state",
    "state_file",
    required=True,
    help="JSON file holding the session (state, length, last timestamp, items seen); read when it "
    "exists, then replaced by the updated session. A missing file starts a new session.",
)
@click.option("-k", "k", type=int, default=10, show_default=True, help="How many items.")
def session(client, items, timestamps, state_file, k) -> None:
    """GRU4Rec's `update_state`: read only the new events on top of the session kept in --state,
    recommend (the session's earlier items excluded), and save the updated session."""
    from movierec import storage
    from movierec.serving.client import session_request

    times = _timestamps(timestamps)
    previous, seen = None, []
    if storage.exists(state_file):
        try:
            saved = json.loads(storage.read_text(state_file))
            previous = {
                "state": np.array([saved["state"]], np.float32),
                "session_length": np.array([saved["session_length"]], np.int32),
                "last_timestamp": np.array([saved["last_timestamp"]], np.int64),
            }
            seen = [str(i) for i in saved["seen"]]
        except (ValueError, KeyError, TypeError) as error:
            raise click.BadParameter(
                f"{state_file} is not a session this command wrote ({error!r})", param_hint="--state"
            ) from None
    try:
        request = session_request([_ids(items)], previous, k, times, [seen] if seen else None)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    answer = _run(lambda: client.predict(request))
    saved = {
        "state": _plain(answer["state"][0]),
        "session_length": int(answer["session_length"][0]),
        "last_timestamp": int(answer["last_timestamp"][0]),
        "seen": seen + _ids(items),
    }
    storage.write_atomically(state_file, json.dumps(saved).encode())
    rows = [
        {"item_id": i.decode() if isinstance(i, bytes) else str(i), "score": float(s)}
        for i, s in zip(answer["item_ids"][0], answer["scores"][0], strict=True)
        if i
    ]
    extra = {name: _plain(answer[name][0]) for name in ("unknown_ids", "history_length", "session_length")}
    _echo({"recommendations": rows, **extra})


@query.command()
@connection_options
@click.option("--user", required=True, help="The raw user id.")
@click.option("--item", required=True, help="The raw item id.")
@click.option("--timestamp", type=int, default=None, help="Seconds (default: the model's latest time).")
def rating(client, user, item, timestamp) -> None:
    """A rating model's predicted rating (`predict_rating`) of one (user, item)."""
    from movierec.serving.client import rating_request

    answer = _run(lambda: client.predict(rating_request([(user, item, timestamp)])))
    _echo({"user_id": user, "item_id": item, "predicted_rating": float(answer["predicted_rating"][0])})
