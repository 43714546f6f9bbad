"""GRU4Rec's `update_state` signature (serving/export.py), loaded in a fresh process as TF Serving loads
it: a history fed in pieces through the returned state ranks exactly as `recommend` ranks the whole
history (which is the evaluated ranking, tests/serving/test_gru4rec_export.py), for a model that reads
whole histories and for one that reads only the current session; pauses open sessions; same-second
events split across requests and malformed states are refused with an error naming the field."""

from __future__ import annotations

import itertools
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from movierec.constants import DEFAULT_SESSION_GAP
from movierec.models import build_model
from movierec.serving.export import export_for_serving

pytestmark = pytest.mark.slow  # shares tests/serving's Transform output and trained GRU4Rec

K = 20

SERVE = textwrap.dedent(
    """
    import pickle, sys
    import numpy as np
    import tensorflow as tf

    export_dir, path = sys.argv[1], sys.argv[2]
    with open(path, "rb") as f:
        asked = pickle.load(f)
    signatures = tf.saved_model.load(export_dir).signatures

    def padded(rows, fill, dtype):
        width = max([len(r) for r in rows] + [0])
        values = [[fill] * (width - len(r)) + list(r) for r in rows]
        return tf.constant(values, dtype, shape=(len(rows), width))

    def strings(rows):
        return padded(rows, "", tf.string)

    def times(rows):
        return padded(rows, -1, tf.int64)

    def update(state, length, last, items, stamps, exclude):
        out = signatures["update_state"](
            state=tf.constant(state, tf.float32), session_length=tf.constant(length, tf.int32),
            last_timestamp=tf.constant(last, tf.int64), item_ids=strings(items), timestamps=times(stamps),
            k=tf.fill([len(items)], asked["k"]), exclude=strings(exclude))
        return {k: v.numpy() for k, v in out.items()}

    def chain(steps):
        rows = len(steps[0][0])
        state, length, last = np.zeros((rows, 0), np.float32), np.zeros(rows, np.int32), np.full(rows, -1)
        answers = []
        for items, stamps in steps:
            seen = [sum((list(s[0][r]) for s in steps[: len(answers)]), []) for r in range(rows)]
            out = update(state, length, last, items, stamps, seen)
            state, length, last = out["state"], out["session_length"], out["last_timestamp"]
            answers.append(out)
        return answers

    def recommend(items, stamps):
        out = signatures["recommend"](
            item_ids=strings(items), timestamps=times(stamps), k=tf.fill([len(items)], asked["k"]),
            exclude=tf.zeros([len(items), 0], tf.string))
        return {k: v.numpy() for k, v in out.items()}

    def error(*args):
        try:
            update(*args)
        except tf.errors.InvalidArgumentError as e:
            return e.message
        return None

    out = {
        "chain": chain(asked["steps"]),
        "whole": recommend(asked["whole_items"], asked["whole_times"]),
        "errors": {name: error(*args) for name, args in asked["bad"].items()},
    }
    print(pickle.dumps(out).hex())
    """
)


def ask(export_dir: str, folder, asked: dict) -> dict:
    path = folder / "asked.pkl"
    path.write_bytes(pickle.dumps({"k": K, **asked}))
    done = subprocess.run(
        [sys.executable, "-c", SERVE, export_dir, str(path)], capture_output=True, text=True, cwd="/"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return pickle.loads(bytes.fromhex(done.stdout.strip().splitlines()[-1]))


def pieces(items: list[str], times: list[int], n: int) -> list[tuple[list[str], list[int]]]:
    """The history cut into about n requests, never inside one second (its events are unordered)."""
    cuts = [i for i in range(1, len(times)) if times[i] != times[i - 1]]
    chosen = sorted({cuts[round(j * (len(cuts) - 1) / n)] for j in range(1, n)})
    bounds = [0, *chosen, len(items)]
    return [(items[a:b], times[a:b]) for a, b in itertools.pairwise(bounds)]


def batched(histories: list[tuple[list[str], list[int]]], n: int) -> list[tuple[list, list]]:
    """Several users' pieces as batched requests (a user with fewer pieces sends nothing later)."""
    cut = [pieces(items, times, n) for items, times in histories]
    steps = max(len(c) for c in cut)
    return [
        ([c[s][0] if s < len(c) else [] for c in cut], [c[s][1] if s < len(c) else [] for c in cut])
        for s in range(steps)
    ]


def users_with(setup, low: int, high: int, count: int, sessions: bool = False) -> list[int]:
    seq = setup.sequences
    lengths = np.diff(seq.indptr)
    found = []
    for user in np.flatnonzero((lengths >= low) & (lengths <= high)):
        rows = slice(seq.indptr[user], seq.indptr[user + 1])
        if not sessions or seq.session_start[rows][1:].any():
            found.append(int(user))
        if len(found) == count:
            break
    return found


def check_chain_equals_whole(answers: dict, histories) -> None:
    last = answers["chain"][-1]
    whole = answers["whole"]
    for row, (items, _) in enumerate(histories):
        assert [i.decode() for i in last["item_ids"][row]] == [i.decode() for i in whole["item_ids"][row]]
        np.testing.assert_allclose(last["scores"][row], whole["scores"][row], rtol=1e-4, atol=1e-5)
        assert not set(items) & {i.decode() for i in last["item_ids"][row]}


def test_a_history_fed_in_pieces_ranks_as_the_whole_history(gru4rec, tmp_path):
    # the shared model reads whole histories ("sequence", no resets): the state never restarts
    users = users_with(gru4rec, 40, 150, 2)
    histories = [gru4rec.history(u) for u in users]
    steps = batched(histories, 4)
    answers = ask(
        gru4rec.export_dir,
        tmp_path,
        {
            "steps": steps,
            "whole_items": [h[0] for h in histories],
            "whole_times": [h[1] for h in histories],
            "bad": {},
        },
    )
    check_chain_equals_whole(answers, histories)
    last = answers["chain"][-1]
    assert last["state"].shape == (2, 16)  # one layer of 16 units
    assert list(last["session_length"]) == [len(h[0]) for h in histories]
    assert list(last["last_timestamp"]) == [h[1][-1] for h in histories]
    assert all(a["unknown_ids"].tolist() == [0, 0] for a in answers["chain"])


@pytest.fixture(scope="module")
def session_model(gru4rec, tmp_path_factory) -> str:
    """A GRU4Rec that reads only the current session, exported with the shared Transform output."""
    model = build_model(
        "gru4rec", hidden_size=8, epochs=1, batch_size=64, n_sample=64, inference_mode="session"
    ).fit(gru4rec.data)
    export_dir = str(tmp_path_factory.mktemp("gru4rec-session") / "gru4rec" / "1")
    assert export_for_serving(
        model,
        gru4rec.transform,
        gru4rec.items,
        export_dir,
        session_gap=DEFAULT_SESSION_GAP,
        user_vocabulary=gru4rec.users,
        rated=gru4rec.sequences,
    )
    return export_dir


def test_pauses_open_sessions_and_the_state_follows_the_current_one(gru4rec, session_model, tmp_path):
    users = users_with(gru4rec, 30, 180, 2, sessions=True)
    histories = [gru4rec.history(u) for u in users]
    seq = gru4rec.sequences
    answers = ask(
        session_model,
        tmp_path,
        {
            "steps": batched(histories, 5),
            "whole_items": [h[0] for h in histories],
            "whole_times": [h[1] for h in histories],
            "bad": {},
        },
    )
    # recommend (with timestamps) reads only the last session: the chained state must agree
    check_chain_equals_whole(answers, histories)
    for row, user in enumerate(users):
        starts = seq.session_start[seq.indptr[user] : seq.indptr[user + 1]]
        current = len(starts) - int(np.flatnonzero(starts)[-1])
        assert answers["chain"][-1]["session_length"][row] == current


def test_bad_requests_are_refused_naming_the_field(gru4rec, tmp_path):
    items, times = gru4rec.history(users_with(gru4rec, 40, 150, 1)[0])
    fresh = (np.zeros((1, 0), np.float32), [0], [-1])
    bad = {
        "state_width": (np.zeros((1, 5), np.float32), [3], [times[2]], [items[3:5]], [times[3:5]], [[]]),
        "same_second": (np.zeros((1, 16), np.float32), [3], [times[4]], [items[5:6]], [[times[4]]], [[]]),
        "rows": (np.zeros((2, 0), np.float32), [0], [-1], [items[:2]], [times[:2]], [[]]),
        "fine": (*fresh, [items[:3]], [times[:3]], [[]]),
    }
    answers = ask(
        gru4rec.export_dir,
        tmp_path,
        {
            "steps": [([items[:2]], [times[:2]])],
            "whole_items": [items[:2]],
            "whole_times": [times[:2]],
            "bad": bad,
        },
    )
    # Assert's data is printed with its quotes escaped
    errors = {name: (message or "").replace("\\'", "'") for name, message in answers["errors"].items()}
    assert "'state'" in errors["state_width"] and "[B, 16]" in errors["state_width"]
    assert "'timestamps'" in errors["same_second"] and "one second" in errors["same_second"]
    assert "'state'" in errors["rows"]
    assert answers["errors"]["fine"] is None
