"""The RankingEvaluator's per-user work as Beam transforms: no worker holds more than a batch of users.

`score_split` reads one split of SequenceGen's user histories, cuts it into batches of users
(`BatchElements`), and `ScoreUserBatch` scores each batch on whichever worker runs it: the batch
becomes an `EventStream` over the full vocabularies (so user and item indices are those of a single
pass), every contender ranks the full catalogue for the batch's queries (`evaluate_ranking`, the same
queries, seen-item filtering and ties as the command line), and the batch is summarised per user
(`UserSums`: metric sums, and sums of the candidate's per-query differences to each other model for
the paired bootstrap). The summaries are joined once and written to the evaluation artifact; their
size grows with the users, not with the queries or events.

The popularity baselines are fitted from a Beam count of the training events per item. Any other
baseline is trained by the component before the pipeline (a model needs its training data in one
place, as the Trainer does) and loaded here from its folder, as the candidate and the latest blessed
model are: each worker loads the models once (`DoFn.setup`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Sequence

import apache_beam as beam
import numpy as np
import tensorflow as tf

from movierec import storage
from movierec.components.histories import parse_user_histories, stream_from_histories
from movierec.components.id_space import InVocabulary, ModelVocabulary
from movierec.data.stream import build_queries, lookup_ids
from movierec.evaluation import RankingAccumulator
from movierec.evaluation.experiment import EvaluationSettings, evaluate_ranking, evaluate_rating_sums
from movierec.evaluation.rating import rating_metrics_from_sums
from movierec.evaluation.user_sums import UserSums
from movierec.models import RatingPredictor, load_model
from movierec.models.popularity import Popularity
from movierec.models.registry import get_spec

CANDIDATE = "candidate"
LATEST_BLESSED = "latest_blessed"
_COUNTS = ("queries", "queries_without_relevant", "queries_without_negatives")


def counts_baseline(name: str) -> bool:
    """Whether the baseline `name` is fitted from per-item training counts (on Beam)."""
    return issubclass(get_spec(name).factory, Popularity)


@dataclasses.dataclass(frozen=True)
class Contenders:
    """Where the compared models come from; picklable, so every worker loads them itself.

    `baseline_dir` None: the baseline is a popularity model fitted from the Beam item counts."""

    candidate_dir: str
    baseline: str  # its registry name
    baseline_dir: str | None = None
    latest_blessed_dir: str | None = None

    @property
    def baseline_name(self) -> str:
        return f"baseline:{self.baseline}"

    @property
    def names(self) -> list[str]:
        names = [CANDIDATE, self.baseline_name]
        return [*names, LATEST_BLESSED] if self.latest_blessed_dir else names


def difference_name(name: str) -> str:
    return f"{CANDIDATE} - {name}"


@dataclasses.dataclass(frozen=True)
class ScoredUsers:
    """Per-user summaries of one split for every contender, joinable across batches.

    `ranking[model]`: metric sums per user; `paired["candidate - model"]`: sums of the candidate's
    per-query differences to `model`; `counts[model]`: query counts; `rating_sums[model]`: rating
    error sums (rating models only)."""

    ranking: dict[str, UserSums]
    paired: dict[str, UserSums]
    counts: dict[str, dict[str, int]]
    rating_sums: dict[str, dict[str, float]]

    @classmethod
    def empty(cls, models: Sequence[str], settings: EvaluationSettings) -> ScoredUsers:
        """The summary of a split without users (every mean NaN, every count 0)."""
        names = tuple(RankingAccumulator(ks=settings.ks).metric_names)
        nothing = UserSums.of_queries({name: np.zeros(0) for name in names}, np.zeros(0, np.int64))
        return cls(
            {model: nothing for model in models},
            {difference_name(model): nothing for model in models if model != CANDIDATE},
            {model: dict.fromkeys(_COUNTS, 0) for model in models},
            {},
        )

    @classmethod
    def join(cls, parts: Sequence[ScoredUsers]) -> ScoredUsers:
        """One summary of the batches' (disjoint users)."""
        first = parts[0]
        return cls(
            {m: UserSums.concatenate([p.ranking[m] for p in parts]) for m in first.ranking},
            {d: UserSums.concatenate([p.paired[d] for p in parts]) for d in first.paired},
            {m: {c: sum(p.counts[m][c] for p in parts) for c in _COUNTS} for m in first.counts},
            {
                m: {s: sum(p.rating_sums[m][s] for p in parts) for s in first.rating_sums[m]}
                for m in first.rating_sums
            },
        )

    def results(self) -> dict[str, dict[str, float]]:
        """Per model: the metric means over the split's queries, the query counts, RMSE/MAE where rated."""
        out = {model: {**sums.means(), **self.counts[model]} for model, sums in self.ranking.items()}
        for model, sums in self.rating_sums.items():
            out[model].update(rating_metrics_from_sums(sums))
        return out

    def differences(
        self, level: float, n_resamples: int, seed: int = 0
    ) -> dict[str, dict[str, dict[str, float]]]:
        """Per "candidate - model": each metric's difference with its paired user-bootstrap interval."""
        return {
            name: sums.difference_summaries(level, n_resamples, seed) for name, sums in self.paired.items()
        }

    def save(self, path: str) -> None:
        """One .npz (any filesystem): the per-user arrays, and the counts as JSON."""
        arrays: dict[str, np.ndarray] = {}
        for kind, table in (("ranking", self.ranking), ("paired", self.paired)):
            for name, sums in table.items():
                for field in ("users", "sums", "counts"):
                    arrays[f"{kind}|{name}|{field}"] = getattr(sums, field)
                arrays[f"{kind}|{name}|names"] = np.array(sums.names, dtype=str)
        arrays["totals"] = np.array(json.dumps({"counts": self.counts, "rating_sums": self.rating_sums}))
        storage.makedirs(os.path.dirname(path))
        storage.save_npz(path, **arrays)

    @classmethod
    def load(cls, path: str) -> ScoredUsers:
        arrays = storage.load_npz(path)
        tables: dict[str, dict[str, UserSums]] = {"ranking": {}, "paired": {}}
        for key in arrays:
            if key.endswith("|names"):
                kind, name, _ = key.split("|")
                tables[kind][name] = UserSums(
                    arrays[f"{kind}|{name}|users"],
                    tuple(str(n) for n in arrays[key]),
                    arrays[f"{kind}|{name}|sums"],
                    arrays[f"{kind}|{name}|counts"],
                )
        totals = json.loads(str(arrays["totals"]))
        return cls(tables["ranking"], tables["paired"], totals["counts"], totals["rating_sums"])


class ScoreUserBatch(beam.DoFn):
    """Scores a batch of serialized user histories with every contender: one `ScoredUsers` per batch."""

    def __init__(
        self,
        contenders: Contenders,
        items: np.ndarray,
        users: np.ndarray,
        role: int,
        settings: EvaluationSettings,
        session_gap: int,
    ) -> None:
        self.contenders = contenders
        self.items, self.users = items, users
        self.role, self.settings, self.session_gap = role, settings, session_gap
        self.models: dict[str, object] = {}

    def setup(self) -> None:
        c = self.contenders
        self.models = {CANDIDATE: load_model(c.candidate_dir)}
        if c.baseline_dir is not None:
            self.models[c.baseline_name] = load_model(c.baseline_dir)
        if c.latest_blessed_dir is not None:
            vocabulary = ModelVocabulary.load(c.latest_blessed_dir)
            self.models[LATEST_BLESSED] = InVocabulary(
                load_model(c.latest_blessed_dir), vocabulary, self.items, self.users
            )

    def process(self, records: list[bytes], item_counts: dict[str, int]) -> Iterable[ScoredUsers]:
        if self.contenders.baseline_name not in self.models:  # a popularity baseline: from the counts
            self.models[self.contenders.baseline_name] = _popularity(
                self.contenders.baseline, item_counts, self.items
            )
        events = stream_from_histories(
            parse_user_histories(records), self.items, self.users, self.session_gap
        )
        queries = build_queries(events, self.role, self.settings.query_mode)
        accumulators = {
            name: evaluate_ranking(self.models[name], events, queries, self.settings)
            for name in self.contenders.names
        }
        candidate = accumulators[CANDIDATE]
        query_users = queries.users[candidate.query_rows()]
        paired = {
            difference_name(name): paired_sums(candidate, accumulator, queries.users)
            for name, accumulator in accumulators.items()
            if name != CANDIDATE
        }
        yield ScoredUsers(
            {name: UserSums.of_queries(acc.per_query(), query_users) for name, acc in accumulators.items()},
            paired,
            {name: {c: int(acc.result()[c]) for c in _COUNTS} for name, acc in accumulators.items()},
            {
                name: evaluate_rating_sums(self.models[name], events, self.role)
                for name in self.contenders.names
                if isinstance(self.models[name], RatingPredictor)
            },
        )


def paired_sums(a: RankingAccumulator, b: RankingAccumulator, query_users: np.ndarray) -> UserSums:
    """Per-user sums of a − b per query (NaN where either is undefined), both scored on the same
    queries; `query_users` gives the user of every row fed to the accumulators."""
    rows = a.query_rows()
    if not np.array_equal(rows, b.query_rows()):
        raise ValueError("the two models were scored on different queries: their results cannot be paired")
    values_a, values_b = a.per_query(), b.per_query()
    return UserSums.of_queries({m: values_a[m] - values_b[m] for m in values_a}, query_users[rows])


def _popularity(name: str, item_counts: dict[str, int], items: np.ndarray) -> Popularity:
    counts = np.zeros(len(items), dtype=np.float64)
    if item_counts:
        index = lookup_ids(items, list(item_counts))
        if (index < 0).any():
            raise ValueError("the training histories name items missing from the Transform vocabulary")
        counts[index] = list(item_counts.values())
    return get_spec(name).factory.from_counts(counts)


def _item_ids(record: bytes) -> list[str]:
    feature = tf.train.Example.FromString(record).features.feature["item_ids"]
    return [value.decode() for value in feature.bytes_list.value]


def training_item_counts(training_records: beam.PCollection) -> beam.PCollection:
    """(raw item id, its training events) from the training split's user histories."""
    return (
        training_records
        | "TrainingItems" >> beam.FlatMap(_item_ids)
        | "CountPerItem" >> beam.combiners.Count.PerElement()
    )


def score_split(
    records: beam.PCollection,
    item_counts: beam.PCollection,
    scorer: ScoreUserBatch,
    users_per_batch: int,
    output_path: str,
    label: str,
) -> beam.PCollection:
    """Scores a split's user histories in batches and writes the joined `ScoredUsers` to `output_path`."""
    models = scorer.contenders.names
    settings = scorer.settings

    def write(parts: list[ScoredUsers]) -> str:
        joined = ScoredUsers.join(parts) if parts else ScoredUsers.empty(models, settings)
        joined.save(output_path)
        return output_path

    return (
        records
        | f"Batch{label}"
        >> beam.BatchElements(min_batch_size=users_per_batch, max_batch_size=users_per_batch)
        | f"Score{label}" >> beam.ParDo(scorer, item_counts=beam.pvalue.AsDict(item_counts))
        | f"Join{label}" >> beam.combiners.ToList()
        | f"Write{label}" >> beam.Map(write)
    )
