"""A model trained on one vocabulary scores a stream over another through raw ids (no pipeline).

The new stream holds every event of the old one plus events of items and a user the model never saw,
with the vocabularies in different index orders (as Transform's, by frequency, reorder on refreshed
data). The adapter must give exactly the scores the model gives on the same queries over its own
vocabulary, each on the right raw id, and -inf on items the model cannot recommend.
"""

import numpy as np
import pytest

from movierec.components.histories import stream_from_histories
from movierec.components.id_space import InVocabulary, ModelVocabulary
from movierec.data.splits import TEST, TRAIN, session_starts
from movierec.data.stream import EventStream, Queries, build_queries
from movierec.evaluation.experiment import EvaluationSettings, evaluate_ranking
from movierec.models import build_model
from movierec.models.base import QueryBatch

GAP = 3600
# (user, item, timestamp, role). Unknown to the model: items "1683" (truncated to 4 characters' worth
# of "168" it would hit a known id) and "7", user "u9". Same-second groups mix known and unknown items;
# u1's third session opens with an unknown item.
EVENTS = [
    ("u1", "1", 0, TRAIN),
    ("u1", "16", 0, TRAIN),
    ("u1", "1683", 100, TRAIN),
    ("u1", "2", 100, TRAIN),
    ("u1", "3", 200, TRAIN),
    ("u1", "7", 10000, TEST),
    ("u1", "5", 10000, TEST),
    ("u1", "168", 10100, TEST),
    ("u1", "1", 10200, TEST),
    ("u1", "2", 10200, TEST),
    ("u1", "1683", 20000, TEST),
    ("u1", "3", 20100, TEST),
    ("u1", "16", 20200, TEST),
    ("u2", "2", 0, TRAIN),
    ("u2", "3", 50, TRAIN),
    ("u2", "5", 60, TRAIN),
    ("u2", "1", 5000, TEST),
    ("u2", "1683", 5000, TEST),
    ("u2", "16", 5000, TEST),
    ("u2", "168", 5100, TEST),
    ("u3", "168", 0, TRAIN),
    ("u3", "1", 10, TRAIN),
    ("u3", "16", 20, TRAIN),
    ("u3", "2", 100, TEST),
    ("u3", "7", 150, TEST),
    ("u3", "3", 200, TEST),
    ("u4", "5", 0, TRAIN),
    ("u4", "3", 0, TRAIN),
    ("u4", "2", 10, TRAIN),
    ("u4", "1", 20, TEST),
    ("u9", "1", 0, TRAIN),
    ("u9", "2", 5, TRAIN),
    ("u9", "3", 10, TEST),
    ("u9", "1683", 20, TEST),
]
# The model's vocabulary ("9" left the catalogue since) and the refreshed one, in other orders.
OLD = ModelVocabulary(items=["168", "16", "9", "1", "2", "3", "5"], users=["u2", "u1", "u3", "u4"])
NEW_ITEMS = np.array(["5", "1683", "3", "2", "1", "16", "168", "7"])
NEW_USERS = np.array(["u4", "u9", "u1", "u3", "u2"])


def stream(events, items: np.ndarray, users: np.ndarray, sessions_of=None) -> EventStream:
    """The stream SequenceGen's histories give; `sessions_of` maps (user, item, timestamp) to the
    event's session start flag (default: from the timestamps, as SequenceGen sets it)."""
    events = sorted(events, key=lambda e: (e[0], e[2]))
    user = np.array([e[0] for e in events])
    times = np.array([e[2] for e in events], dtype=np.int64)
    starts = session_starts(np.unique(user, return_inverse=True)[1], times, GAP)
    if sessions_of is not None:
        starts = np.array([sessions_of[e[:3]] for e in events])
    names, lengths = np.unique(user, return_counts=True)
    histories = {
        "user_id": names,
        "item_ids": np.array([e[1] for e in events]),
        "timestamps": times,
        "ratings": np.full(len(events), 4.0, np.float32),
        "roles": np.array([e[3] for e in events], dtype=np.int64),
        "session_start": starts.astype(np.int64),
        "lengths": lengths.astype(np.int64),
    }
    return stream_from_histories(histories, items, users, GAP)


def refreshed_and_own():
    """(the refreshed stream, the same events seen by the model: unknown ids dropped, the sessions
    kept as the refreshed stream has them)."""
    new = stream(EVENTS, NEW_ITEMS, NEW_USERS)
    flags = {}
    for user in range(new.n_users):
        rows = range(new.sequences.indptr[user], new.sequences.indptr[user + 1])
        opened = False
        for row in rows:
            item, raw_user = new.item_ids[new.sequences.items[row]], new.user_ids[user]
            opened |= bool(new.sequences.session_start[row])
            if item in OLD.items and raw_user in OLD.users:
                flags[(raw_user, item, int(new.sequences.timestamps[row]))] = opened
                opened = False
    known = [e for e in EVENTS if e[1] in OLD.items and e[0] in OLD.users]
    own = stream(known, OLD.items, OLD.users, flags)
    return new, own


def keyed(events: EventStream, queries: Queries) -> dict[tuple, int]:
    """Query index by (raw user, raw target, timestamp): the same query in any id space."""
    seq = events.sequences
    out = {}
    for q in range(len(queries)):
        user = queries.users[q]
        (target,) = queries.relevant.row(q)
        stamp = seq.timestamps[seq.indptr[user] + queries.positions[q]]
        out[(events.user_ids[user], events.item_ids[target], int(stamp))] = q
    return out


def all_scores(model, events: EventStream, queries: Queries) -> np.ndarray:
    batch, _, _ = queries.batch(0, len(queries), events.sequences)
    return model.score(batch)


@pytest.mark.parametrize(
    "name, hparams",
    [("pop", {}), ("spop", {}), ("itemknn", {}), ("gru4rec", {"epochs": 1, "hidden_size": 8, "n_sample": 0})],
)
def test_scores_land_on_the_raw_ids_the_model_gave_them(name, hparams):
    new, own = refreshed_and_own()
    assert own.n_items == len(OLD.items) and not np.array_equal(new.item_ids[: own.n_items], own.item_ids)
    model = build_model(name, **hparams).fit(own.training_data())
    adapted = InVocabulary(model, OLD, new.item_ids, new.user_ids)

    new_queries, own_queries = build_queries(new, TEST), build_queries(own, TEST)
    got, expected = all_scores(adapted, new, new_queries), all_scores(model, own, own_queries)
    assert got.shape == (len(new_queries), new.n_items)
    unknown = np.isin(new.item_ids, ["1683", "7"])
    assert np.isneginf(got[:, unknown]).all()  # never recommended, "1683" not taken for "168"
    assert np.isfinite(got[:, ~unknown]).all()

    own_index = {raw: i for i, raw in enumerate(own.item_ids)}
    columns = [own_index[raw] for raw in new.item_ids[~unknown]]
    shared = keyed(own, own_queries)
    compared = 0
    for key, q in keyed(new, new_queries).items():
        if key in shared:
            np.testing.assert_allclose(
                got[q, ~unknown], expected[shared[key], columns], rtol=1e-5, err_msg=key
            )
            compared += 1
    assert compared == len(own_queries) > 0  # every query the model can see, compared
    if name == "pop":  # and the numbers themselves: training counts by raw id
        counts = np.bincount(own.training_data().sequences.items, minlength=own.n_items)
        for raw in ("168", "16", "5"):
            assert (got[:, list(new.item_ids).index(raw)] == counts[list(own.item_ids).index(raw)]).all()


def test_the_evaluation_scores_both_vocabularies_on_the_same_queries():
    new, own = refreshed_and_own()
    model = build_model("itemknn").fit(own.training_data())
    queries = build_queries(new, TEST)
    settings = EvaluationSettings(role="test")
    adapted = evaluate_ranking(InVocabulary(model, OLD, new.item_ids, new.user_ids), new, queries, settings)
    same_vocabulary = evaluate_ranking(
        build_model("itemknn").fit(new.training_data()), new, queries, settings
    )
    assert np.array_equal(adapted.query_rows(), same_vocabulary.query_rows())
    # A target the old model does not know ranks below every candidate (AUC 0), not an error.
    targets = new.item_ids[queries.relevant.indices][adapted.query_rows()]
    auc = adapted.per_query()["auc"][np.isin(targets, ["1683", "7"])]
    assert len(auc) and (auc[~np.isnan(auc)] == 0).all() and not np.isnan(auc).all()


def test_a_model_that_reads_users_gets_its_own_user_indices_and_no_row_for_strangers():
    new, own = refreshed_and_own()
    model = build_model("bpr-mf", epochs=1, embedding_dim=4).fit(own.training_data())
    adapted = InVocabulary(model, OLD, new.item_ids, new.user_ids)
    queries = build_queries(new, TEST)
    got = all_scores(adapted, new, queries)
    stranger = new.user_ids[queries.users] == "u9"
    assert stranger.any() and np.isneginf(got[stranger]).all()
    assert adapted.coverage()["users_unknown_to_model"] == 1
    known = np.flatnonzero(~stranger)
    own_users = np.array([list(OLD.users).index(u) for u in new.user_ids[queries.users[known]]])
    zeros = np.zeros(len(known), dtype=np.int64)
    expected = model.score(QueryBatch(own_users, zeros, zeros, own.sequences))  # by its user indices
    for raw in ("168", "3", "5"):
        np.testing.assert_allclose(
            got[known, list(new.item_ids).index(raw)], expected[:, list(OLD.items).index(raw)], rtol=1e-5
        )


def test_vocabularies_round_trip_and_a_wrong_one_is_refused(tmp_path):
    OLD.save(str(tmp_path))
    loaded = ModelVocabulary.load(str(tmp_path))
    assert loaded.items.tolist() == OLD.items.tolist() and loaded.users.tolist() == OLD.users.tolist()
    assert ModelVocabulary.load(str(tmp_path / "none")) is None
    with pytest.raises(ValueError, match="item vocabulary repeats ids"):
        ModelVocabulary(items=["1", "2", "1"], users=["u1"])

    new, own = refreshed_and_own()
    model = build_model("pop").fit(own.training_data())
    short = ModelVocabulary(items=OLD.items[:-1], users=OLD.users)  # not the vocabulary it trained on
    queries = build_queries(new, TEST)
    with pytest.raises(ValueError, match="saved vocabulary is not the model's"):
        all_scores(InVocabulary(model, short, new.item_ids, new.user_ids), new, queries)


def test_a_context_cut_inside_a_same_second_group_is_refused():
    new, own = refreshed_and_own()
    adapted = InVocabulary(build_model("pop").fit(own.training_data()), OLD, new.item_ids, new.user_ids)
    user = list(new.user_ids).index("u1")  # its events 0 and 1 share a second
    with pytest.raises(ValueError, match="position falls inside a same-timestamp tie group"):
        adapted.score(QueryBatch(np.array([user]), np.array([1]), np.array([0]), new.sequences))
