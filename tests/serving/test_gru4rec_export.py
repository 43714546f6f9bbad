"""GRU4Rec's TF Serving export (serving/export.py) on a small model trained on MovieLens 100K, loaded in
a fresh process as TF Serving loads it: `serving_default` (Examples) and `recommend` (ids, k,
exclusions) rank what evaluation ranks, exclude the whole history however long, report unknown ids,
honour k, and fail a malformed request with an error that names it."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from movierec.evaluation.ragged import Ragged
from movierec.evaluation.ranking import top_k
from movierec.models import QueryBatch
from movierec.serving.rating_export import dense_outputs
from movierec.serving.warmup import example

pytestmark = pytest.mark.slow  # Transform on Beam and a training epoch (shared by tests/serving)

SERVE = textwrap.dedent(
    """
    import pickle, sys, time
    import numpy as np
    import tensorflow as tf

    export_dir, path = sys.argv[1], sys.argv[2]
    with open(path, "rb") as f:
        requests = pickle.load(f)
    loaded = tf.saved_model.load(export_dir)

    def numpy(out):
        return {k: v.numpy() for k, v in out.items()}

    def default(examples):
        return numpy(loaded.signatures["serving_default"](examples=tf.constant(examples, tf.string)))

    def recommend(item_ids, timestamps, k, exclude):
        return numpy(loaded.signatures["recommend"](
            item_ids=tf.constant(item_ids, tf.string, shape=np.shape(item_ids)),
            timestamps=tf.constant(timestamps, tf.int64, shape=np.shape(timestamps)),
            k=tf.constant(k, tf.int32, shape=np.shape(k)),
            exclude=tf.constant(exclude, tf.string, shape=np.shape(exclude)),
        ))

    def error(call, *args):
        try:
            call(*args)
        except tf.errors.InvalidArgumentError as e:
            return e.message
        return None

    out = {"default": {name: default(ex) for name, ex in requests["default"].items()}}
    out["recommend"] = {name: recommend(*args) for name, args in requests["recommend"].items()}
    out["errors"] = {name: error(default, ex) for name, ex in requests["bad_default"].items()}
    out["errors"].update({name: error(recommend, *a) for name, a in requests["bad_recommend"].items()})
    out["after_errors"] = default(requests["default"]["short"])
    # cost follows the real history: interleaved calls, medians
    times = {"short": [], "long": []}
    for _ in range(15):
        for name in times:
            args = requests["recommend"][f"{name}_timing"]
            start = time.perf_counter()
            recommend(*args)
            times[name].append(time.perf_counter() - start)
    out["median_seconds"] = {name: float(np.median(t)) for name, t in times.items()}
    out["transform_outputs"] = sorted(
        type(spec).__name__ for spec in loaded.signatures["transform_features"].structured_outputs.values()
    )
    print(pickle.dumps(out).hex())
    """
)


def history_example(items, times=None) -> bytes:
    return example({"item_ids": list(items), **({"timestamps": list(times)} if times else {})})


class Served:
    """Everything the fresh process answered, and what it was asked."""

    def __init__(self, setup, folder):
        seq = setup.sequences
        lengths = np.diff(seq.indptr)
        self.long_user = int(np.argmax(lengths))  # ML-100K: 737 ratings
        self.long_items, self.long_times = setup.history(self.long_user)
        assert len(self.long_items) > 200  # longer than the model's max_history
        scrambled = np.random.default_rng(0).permutation(len(self.long_items))
        self.short = self.long_items[:10]
        n = len(setup.items)
        pad = [""] * 3
        # one batch of every kind of row, for `recommend` (dense, "" padding anywhere) and as Examples
        rng = np.random.default_rng(1)
        tied = rng.permutation(30)  # the user's first 30 events, out of order (ML-100K: same-second ties)
        later = rng.permutation(np.arange(100, 130))  # a later stretch, also out of order
        mixed_rows = [
            (
                [self.long_items[i] for i in tied] + ["no-such-movie"],
                [self.long_times[i] for i in tied] + [7],
            ),
            ([*self.long_items[40:45], "nor-this"], None),
            ([self.long_items[i] for i in later], [self.long_times[i] for i in later]),
            ([], None),
        ]
        self.mixed_rows = mixed_rows
        mixed_width = max(len(items) for items, _ in mixed_rows) + 2
        mixed_items, mixed_times = [], []
        for items, times in mixed_rows:  # padding in front, in the middle and behind
            gap = len(items) // 2
            row = ["", *list(items[:gap]), "", *list(items[gap:])]
            mixed_items.append(row + [""] * (mixed_width - len(row)))
            timed = [-1] * len(items) if times is None else list(times)
            row_times = [0, *timed[:gap], 0, *timed[gap:]]
            mixed_times.append(row_times + [0] * (mixed_width - len(row_times)))
        requests = {
            "default": {
                "long": [
                    history_example(
                        [self.long_items[i] for i in scrambled], [self.long_times[i] for i in scrambled]
                    )
                ],
                "short": [history_example(self.short)],
                "unknown": [
                    history_example(["50", "no-such-movie", "181", "nor-this"]),
                    history_example(["no-such-movie", "nor-this", "x"]),
                    example({"items": ["50", "181"]}),  # a wrong feature name: no item_ids at all
                    history_example([]),
                ],
                "empty_batch": [],
                "mixed": [history_example(items, times) for items, times in mixed_rows],
            },
            "recommend": {
                "long": (  # scrambled too: the canonical order is the signature's to restore
                    [[self.long_items[i] for i in scrambled]],
                    [[self.long_times[i] for i in scrambled]],
                    [n],
                    np.zeros((1, 0), object),
                ),
                "k": (
                    [self.short, self.short, self.short, self.short],
                    np.zeros((4, 0), np.int64),
                    [3, 0, -5, n + 100],
                    np.zeros((4, 0), object),
                ),
                "exclude": ([self.short, self.short], np.zeros((2, 0), np.int64), [20, 20], [[""] * 3] * 2),
                "padded": (
                    [self.short + pad, pad + self.short[:5] + ["no-such-movie"] + pad + [""]],
                    [list(range(13)), [-1] * 3 + [1, 2, 3, 4, 5, 6] + [-1] * 4],
                    [10, 10],
                    np.zeros((2, 0), object),
                ),
                "mixed": (
                    mixed_items,
                    mixed_times,
                    [10] * len(mixed_rows),
                    np.zeros((len(mixed_rows), 0), object),
                ),
                "empty_batch": (
                    np.zeros((0, 0), object),
                    np.zeros((0, 0), np.int64),
                    [],
                    np.zeros((0, 0), object),
                ),
                "short_timing": ([self.short], np.zeros((1, 0), np.int64), [10], np.zeros((1, 0), object)),
                "long_timing": (
                    [self.long_items[-200:]],
                    np.zeros((1, 0), np.int64),
                    [10],
                    np.zeros((1, 0), object),
                ),
            },
            "bad_default": {
                "garbage": [history_example(self.short), b"not-an-example"],
                "timestamps": [history_example(self.short), history_example(self.short[:2], [5])],
                "timestamps_extra": [history_example(self.short[:1], [5, 6, 7]), history_example(self.short)],
            },
            "bad_recommend": {
                "k_rows": (
                    [self.short, self.short],
                    np.zeros((2, 0), np.int64),
                    [10],
                    np.zeros((2, 0), object),
                ),
                "timestamps_shape": ([self.short], [[1, 2]], [10], np.zeros((1, 0), object)),
                "exclude_rows": ([self.short], np.zeros((1, 0), np.int64), [10], np.full((2, 1), "", object)),
            },
        }
        self.requests = requests
        self.answers = self._ask(setup, folder, requests)
        # exclude the first row's top 3 in a second ask (they are only known now)
        top3 = [i.decode() for i in self.answers["recommend"]["exclude"]["item_ids"][0][:3]]
        requests["recommend"] = {
            **requests["recommend"],
            "exclude": ([self.short, self.short], np.zeros((2, 0), np.int64), [20, 20], [["", "", ""], top3]),
        }
        self.excluded = top3
        self.answers["recommend"]["exclude"] = self._ask(setup, folder, requests)["recommend"]["exclude"]

    @staticmethod
    def _ask(setup, folder, requests) -> dict:
        path = folder / "requests.pkl"
        path.write_bytes(pickle.dumps(requests))
        done = subprocess.run(
            [sys.executable, "-c", SERVE, setup.export_dir, str(path)],
            capture_output=True,
            text=True,
            cwd="/",
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return pickle.loads(bytes.fromhex(done.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def served(gru4rec, tmp_path_factory) -> Served:
    return Served(gru4rec, tmp_path_factory.mktemp("gru4rec-served"))


def ids(row) -> list[str]:
    return [i.decode() for i in row if i]


def evaluated(setup, user: int, k: int) -> tuple[list[str], np.ndarray]:
    """What evaluation ranks after the user's whole history: `score()` and `top_k` without the seen."""
    seq = setup.sequences
    length = int(seq.indptr[user + 1] - seq.indptr[user])
    batch = QueryBatch(np.array([user]), np.array([length]), np.array([0]), seq)
    scores = setup.model.score(batch)
    seen = seq.items[seq.indptr[user] : seq.indptr[user + 1]].astype(np.int64)
    indices, values = top_k(scores, k, Ragged(np.array([0, len(seen)], np.int64), seen))
    return [str(setup.items[i]) for i in indices[0]], values[0]


def test_a_long_history_is_excluded_whole_and_ranked_as_evaluated(gru4rec, served):
    history = set(served.long_items)
    n = len(gru4rec.items)
    for answer in (served.answers["default"]["long"], served.answers["recommend"]["long"]):
        returned = ids(answer["item_ids"][0])
        assert not history & set(returned)  # all 737 rated items, not only the latest 200
        assert answer["history_length"][0] == len(served.long_items)
        assert answer["unknown_ids"][0] == 0
    # recommend with k = the catalogue: every item but the history, then "" / -inf
    every = served.answers["recommend"]["long"]
    assert len(ids(every["item_ids"][0])) == n - len(history)
    assert np.isneginf(every["scores"][0][n - len(history) :]).all()
    # the evaluated ranking (the scorer caps the GRU at max_history = 200 as evaluation does)
    expected, values = evaluated(gru4rec, served.long_user, 20)
    assert ids(served.answers["default"]["long"]["item_ids"][0])[:20] == expected
    assert ids(every["item_ids"][0])[:20] == expected
    np.testing.assert_allclose(every["scores"][0][:20], values, rtol=1e-4, atol=1e-5)


def test_unknown_ids_are_counted_and_an_empty_history_gets_the_documented_ranking(served):
    unknown = served.answers["default"]["unknown"]
    assert unknown["unknown_ids"].tolist() == [2, 3, 0, 0]
    assert unknown["history_length"].tolist() == [2, 0, 0, 0]
    assert not {"50", "181"} & set(ids(unknown["item_ids"][0]))
    # no known item (all unknown, a misnamed feature, nothing sent): the zero-state ranking, the same
    # for all three rows, told apart by unknown_ids / history_length
    empty = ids(unknown["item_ids"][3])
    assert len(empty) == 100 and ids(unknown["item_ids"][1]) == ids(unknown["item_ids"][2]) == empty
    assert empty != ids(unknown["item_ids"][0])


def test_k_is_per_row_and_clamped_and_exclusions_are_removed(gru4rec, served):
    n = len(gru4rec.items)
    k = served.answers["recommend"]["k"]
    assert k["item_ids"].shape == (4, n)  # the widest row's k, clamped to the catalogue
    assert [len(ids(row)) for row in k["item_ids"]] == [3, 0, 0, n - len(set(served.short))]
    assert ids(k["item_ids"][0]) == ids(k["item_ids"][3])[:3]
    assert np.isneginf(k["scores"][0][3:]).all() and np.isneginf(k["scores"][1]).all()
    excluded = served.answers["recommend"]["exclude"]
    plain, without = ids(excluded["item_ids"][0]), ids(excluded["item_ids"][1])
    assert plain[:3] == served.excluded and not set(served.excluded) & set(without)
    assert without[:17] == plain[3:]  # the rest keeps its order
    # recommend and serving_default agree (no timestamps: the request order is the time order)
    short = served.answers["default"]["short"]
    assert ids(short["item_ids"][0])[:20] == plain


def test_padding_is_not_history_and_timestamps_order_the_history(served):
    padded = served.answers["recommend"]["padded"]
    short = served.answers["default"]["short"]
    # row 0: the 10 items timed 0..9 (the padding after them, and its timestamps, ignored); row 1: five
    # known items and an unknown one between padding
    assert ids(padded["item_ids"][0]) == ids(short["item_ids"][0])[:10]
    assert padded["history_length"].tolist() == [10, 5] and padded["unknown_ids"].tolist() == [0, 1]


def test_recommend_reads_a_mixed_batch_as_the_examples_path_reads_each_row(served):
    """`recommend` lays out its dense request itself (one sort per row); `serving_default` parses
    Examples into flat values. Rows with same-second events sent out of order, padding in the middle,
    unknown ids, no timestamps, several sessions, or nothing at all rank the same on both paths."""
    tied_times = served.mixed_rows[0][1][:30]
    assert len(set(tied_times)) < len(tied_times)  # same-second events among them
    dense, examples = served.answers["recommend"]["mixed"], served.answers["default"]["mixed"]
    assert dense["history_length"].tolist() == [30, 5, 30, 0]
    assert dense["unknown_ids"].tolist() == [1, 1, 0, 0]
    for name in ("history_length", "unknown_ids"):
        assert dense[name].tolist() == examples[name].tolist(), name
    for row in range(len(served.mixed_rows)):  # k = 10 asked; the Examples get the export's top 100
        assert ids(dense["item_ids"][row]) == ids(examples["item_ids"][row])[:10], row
        np.testing.assert_allclose(dense["scores"][row], examples["scores"][row][:10], rtol=1e-6)


def test_a_short_history_costs_only_its_steps(served):
    # the GRU runs over the batch's longest real history, not a padding to max_history (200): padded,
    # both would cost the same; the margin is modest because the fixed part of a call (parsing,
    # lookups, the history's layout, the top-k) is most of a 10-item call since the loop body got lean
    seconds = served.answers["median_seconds"]
    assert seconds["short"] * 1.5 < seconds["long"], seconds


def test_malformed_requests_fail_with_an_error_naming_them_and_the_servable_keeps_serving(served):
    # Assert's data is printed with its quotes escaped
    errors = {name: (message or "").replace("\\'", "'") for name, message in served.answers["errors"].items()}
    assert "Could not parse example input" in errors["garbage"] and "not-an-example" in errors["garbage"]
    assert "'timestamps'" in errors["timestamps"] and "rows] [1]" in errors["timestamps"]
    assert "'timestamps'" in errors["timestamps_extra"] and "rows] [0]" in errors["timestamps_extra"]
    assert "'k'" in errors["k_rows"]
    assert "'timestamps'" in errors["timestamps_shape"]
    assert "'exclude'" in errors["exclude_rows"]
    assert ids(served.answers["after_errors"]["item_ids"][0]) == ids(
        served.answers["default"]["short"]["item_ids"][0]
    )


def test_an_empty_batch_is_answered_with_empty_arrays(served):
    for answer in (served.answers["default"]["empty_batch"], served.answers["recommend"]["empty_batch"]):
        assert answer["item_ids"].shape[0] == answer["scores"].shape[0] == answer["unknown_ids"].shape[0] == 0


def test_transform_features_returns_dense_tensors_only(served):
    assert served.answers["transform_outputs"] and set(served.answers["transform_outputs"]) == {"TensorSpec"}
    sparse = tf.sparse.SparseTensor([[0, 1], [2, 0]], tf.constant([7, 8], tf.int64), [3, 2])
    ragged = tf.ragged.constant([["a"], [], ["b", "c"]])
    floats = tf.sparse.SparseTensor([[1, 0]], [0.5], [2, 1])
    dense = dense_outputs({"sparse": sparse, "ragged": ragged, "floats": floats, "plain": tf.constant([1])})
    assert dense["sparse"].numpy().tolist() == [[-1, 7], [-1, -1], [8, -1]]
    assert dense["ragged"].numpy().tolist() == [[b"a", b""], [b"", b""], [b"b", b"c"]]
    assert np.isnan(dense["floats"].numpy()[0, 0]) and dense["floats"].numpy()[1, 0] == 0.5
    assert all(isinstance(v, tf.Tensor) for v in dense.values())
