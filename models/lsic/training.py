"""LSIC's adversarial training (Algorithm 1): pre-train G and D, then alternate g-steps and d-steps.

Our reading of §3.4 (eqs. 20-21 contradict each other as printed; ../shared/papers/README.md):
- D is a siamese pairwise network: one scorer s_θ (an `LSICScorer`) scores both movies of a pair;
  its loss is the hinge max(0, ε − s_θ(u, m⁺, t) + s_θ(u, m, t)) for real negatives m (random
  movies) and for G's samples alike; D(u, m, m⁺ | t) = σ(s_θ(u, m, t) − s_θ(u, m⁺, t)) ∈ (0, 1) is the
  probability that m is as good as a real positive. As printed, eq. (21) would let D push random
  negatives above positives; this reading keeps the hinge of eq. (21) and the (0, 1) output the text
  asks for, and makes log D a reward that is high when G's pick looks like a positive.
- G is an LSIC scorer with its own weights; its policy G_φ(m | u, t) is a softmax over the user's N
  MF candidates (`policy="candidates"`) or the catalogue. A g-step samples K movies without
  replacement (Gumbel top-k), rewards each with log D(u, m_k, m⁺ | t), normalises the batch's rewards
  to zero mean and unit variance ("rewards normalised with a Gaussian"), and follows REINFORCE (eq. 23).
  `generator_training="gumbel"` is the "w/o RL" ablation: G's relaxed one-hot sample (Gumbel-softmax,
  Jang et al. 2017) scores as the sample's expected D score, and G maximises log D through it.
- Pre-training (line 2, "pair-wise scenario"): G with BPR (−log σ(s⁺ − s⁻)), D with its hinge, both on
  real positives against uniformly drawn movies. A d-step draws one negative from G and one at random.
Positives are training ratings ≥ `positive_rating`; each is predicted at its week from the month
before (windows.py). Every draw comes from a generator seeded by (seed, phase, epoch), so a run that
resumes from a checkpoint repeats the uninterrupted run exactly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from movierec import storage
from movierec.evaluation.ragged import Ragged
from movierec.evaluation.ranking import RankingAccumulator
from movierec.models.base import TrainingData, UserSequences, gather_ranges, holdout
from movierec.models.lsic.candidates import built_mf, rerank, train_candidate_mf
from movierec.models.lsic.config import LSICConfig
from movierec.models.lsic.network import LSICScorer
from movierec.models.lsic.windows import StepClock, StepGrid, build_grids
from movierec.models.matrix_factorization import BPRMF

_WINDOW = {
    "slots": tf.TensorSpec([None], tf.int32),
    "others": tf.TensorSpec([None], tf.int32),
    "weights": tf.TensorSpec([None], tf.float32),
}
_INPUTS = {
    "users": tf.TensorSpec([None], tf.int32),
    "movies": tf.TensorSpec([None], tf.int32),
    "user_window": _WINDOW,
    "movie_window": _WINDOW,
}
_ITEMS = tf.TensorSpec([None], tf.int32)
_SUPPORT = tf.TensorSpec([None, None], tf.int32)
_SEED = tf.TensorSpec([2], tf.int32)
CURVE_K = 5  # the paper's figure 3: Precision@5 and NDCG@5 per epoch


@dataclasses.dataclass
class Trained:
    """What an LSIC fit leaves: G (the recommender), D, the candidate MF and the step grid."""

    generator: LSICScorer
    discriminator: LSICScorer
    mf: BPRMF
    clock: StepClock
    user_grid: StepGrid
    movie_grid: StepGrid


class Episode:
    """The training events of one run laid out for LSIC: positives with their weeks, both step grids,
    and every user's policy support (MF's top-N candidates, or the catalogue)."""

    def __init__(self, data: TrainingData, config: LSICConfig) -> None:
        seq = data.sequences
        self.n_users, self.n_items, self.config = data.n_users, data.n_items, config
        self.clock = StepClock.ending_at(seq.timestamps, config.step_seconds)
        self.user_grid, self.movie_grid = build_grids(seq, data.n_items, self.clock, config.session_steps)
        positive = seq.ratings >= config.positive_rating
        self.users = seq.users[positive].astype(np.int32)
        self.items = seq.items[positive].astype(np.int32)
        self.steps = self.clock.step_of(seq.timestamps[positive])
        self.support: np.ndarray | None = None  # [n_users, N] MF candidates (policy="candidates")

    def set_candidates(self, mf: BPRMF) -> None:
        """G's policy support per user: MF's top-N movies (over the whole catalogue: a training
        positive may be among them)."""
        if self.config.policy != "candidates" or self.config.candidates == 0:
            return
        n = min(self.config.candidates, self.n_items)
        support = np.zeros((self.n_users, n), np.int32)
        for start in range(0, self.n_users, 1024):
            users = np.arange(start, min(start + 1024, self.n_users), dtype=np.int32)
            scores = keras.ops.convert_to_numpy(mf.score_all(users))
            support[users] = np.argsort(-scores, axis=1, kind="stable")[:, :n]
        self.support = support

    def inputs(self, users: np.ndarray, step: int, movies: np.ndarray | None = None) -> dict[str, Any]:
        """Scorer inputs for `users` at `step` against `movies` (default: the catalogue)."""
        users = np.asarray(users, np.int32)
        everyone = np.arange(self.n_items) if movies is None else np.asarray(movies, np.int32)
        inputs = {
            "users": users,
            "user_window": self.user_grid.window(users, np.full(len(users), step)).as_inputs(),
            "movie_window": self.movie_grid.window(everyone, np.full(len(everyone), step)).as_inputs(),
        }
        if movies is not None:
            inputs["movies"] = everyone
        return inputs

    def batch(
        self, rows: np.ndarray, negatives: np.ndarray
    ) -> tuple[dict[str, Any], np.ndarray, np.ndarray, np.ndarray]:
        """(inputs, positive columns, negative columns, support columns [B, S]) of a batch: the
        columns index the movies the batch needs (its users' support, positives and negatives)."""
        users, positives = self.users[rows], self.items[rows]
        if self.support is None:
            movies = np.arange(self.n_items, dtype=np.int32)
            support = np.broadcast_to(movies, (len(rows), self.n_items))
        else:
            support = self.support[users]
            movies = np.unique(np.concatenate([positives, negatives, support.ravel()])).astype(np.int32)
        inputs = self.inputs(users, int(self.steps[rows[0]]), movies if self.support is not None else None)

        def column(items: np.ndarray) -> np.ndarray:
            return np.searchsorted(movies, items).astype(np.int32)

        return inputs, column(positives), column(negatives), column(support)

    def batches(self, rng: np.random.Generator, size: int) -> list[np.ndarray]:
        """Positive rows in batches of at most `size`, each within one week (one step for the movie
        windows), in a shuffled order."""
        order = np.lexsort((rng.random(len(self.steps)), self.steps))
        steps = self.steps[order]
        bounds = np.flatnonzero(np.r_[True, steps[1:] != steps[:-1], True])
        out = [order[a:b][k : k + size] for a, b in itertools.pairwise(bounds) for k in range(0, b - a, size)]
        return [out[i] for i in rng.permutation(len(out))]


def _l2(scorer: LSICScorer, users, items) -> tf.Tensor:
    """Squared norms of the rows a batch reads (the paper's L2 on factors, per example); `items` are
    movie ids."""
    rows = [scorer.user_factors(users), scorer.item_factors(items), scorer.user_inputs(users)]
    rows.append(scorer.item_inputs(items))
    return tf.add_n([tf.reduce_sum(tf.square(r)) for r in rows]) / tf.cast(tf.shape(users)[0], tf.float32)


def _pick(scores, items):
    return tf.gather(scores, items[:, None], batch_dims=1)[:, 0]


class Adversary:
    """Compiled steps of G and D (pre-training, g-steps, d-steps) with their optimizers. Every step
    takes a batch's inputs and column indices into the movies it scores (`Episode.batch`)."""

    def __init__(self, generator: LSICScorer, discriminator: LSICScorer, config: LSICConfig):
        self.g, self.d, self.config = generator, discriminator, config

        def optimizer():
            kind = keras.optimizers.Adam if config.optimizer == "adam" else keras.optimizers.SGD
            return kind(config.learning_rate, clipvalue=config.clip_value)

        self.g_optimizer, self.d_optimizer = optimizer(), optimizer()
        self.g_optimizer.build(generator.trainable_variables)
        self.d_optimizer.build(discriminator.trainable_variables)
        signature = [_INPUTS, _ITEMS, _ITEMS, _SUPPORT, _SEED]
        self.pretrain_g = self._compile(self._pretrain_g, signature)
        self.pretrain_d = self._compile(self._pretrain_d, signature)
        g_step = self._g_reinforce if config.generator_training == "reinforce" else self._g_gumbel
        self.g_step = self._compile(g_step, signature)
        self.d_step = self._compile(self._d_step, signature)

    @staticmethod
    def _compile(fn, signature):
        return tf.function(fn, input_signature=signature, autograph=False, reduce_retracing=True)

    def _apply(self, tape, loss, scorer, optimizer):
        variables = scorer.trainable_variables
        optimizer.apply(tape.gradient(loss, variables), variables)
        return loss

    def _penalty(self, scorer, inputs, positives):
        movies = inputs["movies"] if "movies" in inputs else tf.range(scorer.n_items)
        return self.config.l2 * _l2(scorer, inputs["users"], tf.gather(movies, positives))

    def _pretrain_g(self, inputs, positives, negatives, support, seed):
        with tf.GradientTape() as tape:
            scores = self.g(inputs, training=True)
            margin = _pick(scores, positives) - _pick(scores, negatives)
            loss = -tf.reduce_mean(tf.math.log_sigmoid(margin)) + self._penalty(self.g, inputs, positives)
        return self._apply(tape, loss, self.g, self.g_optimizer)

    def _hinge(self, scores, positives, negatives):
        """D's loss (eq. 21 as we read it): max(0, ε − s_θ(m⁺) + s_θ(m))."""
        return tf.reduce_mean(
            tf.nn.relu(self.config.margin - _pick(scores, positives) + _pick(scores, negatives))
        )

    def _pretrain_d(self, inputs, positives, negatives, support, seed):
        with tf.GradientTape() as tape:
            scores = self.d(inputs, training=True)
            loss = self._hinge(scores, positives, negatives) + self._penalty(self.d, inputs, positives)
        return self._apply(tape, loss, self.d, self.d_optimizer)

    @staticmethod
    def _gumbel(shape, seed):
        return -tf.math.log(-tf.math.log(tf.random.stateless_uniform(shape, seed, 1e-9, 1.0)))

    def _g_reinforce(self, inputs, positives, negatives, support, seed):
        d_scores = tf.stop_gradient(self.d(inputs))
        with tf.GradientTape() as tape:
            logits = tf.gather(self.g(inputs, training=True), support, batch_dims=1)  # policy support
            k = tf.minimum(self.config.samples, tf.shape(logits)[1])
            # K samples without replacement: the top-k of logits + Gumbel noise
            picked = tf.math.top_k(tf.stop_gradient(logits) + self._gumbel(tf.shape(logits), seed), k).indices
            log_policy = tf.gather(tf.nn.log_softmax(logits), picked, batch_dims=1)
            sampled = tf.gather(support, picked, batch_dims=1)
            # reward log D(u, m_k, m⁺ | t) = log σ(s_θ(m_k) − s_θ(m⁺)), normalised over the batch
            d_sampled = tf.gather(d_scores, sampled, batch_dims=1)
            reward = tf.math.log_sigmoid(d_sampled - _pick(d_scores, positives)[:, None])
            mean, variance = tf.nn.moments(reward, axes=[0, 1])
            advantage = tf.stop_gradient((reward - mean) / tf.sqrt(variance + 1e-8))
            loss = -tf.reduce_mean(log_policy * advantage)  # eq. (23)
        self._apply(tape, loss, self.g, self.g_optimizer)
        return -tf.reduce_mean(reward)

    def _g_gumbel(self, inputs, positives, negatives, support, seed):
        d_scores = tf.stop_gradient(self.d(inputs))
        with tf.GradientTape() as tape:
            logits = tf.gather(self.g(inputs, training=True), support, batch_dims=1)
            noisy = (
                tf.nn.log_softmax(logits) + self._gumbel(tf.shape(logits), seed)
            ) / self.config.gumbel_temperature
            relaxed = tf.nn.softmax(noisy)  # a relaxed one-hot sample of G's policy
            expected = tf.reduce_sum(relaxed * tf.gather(d_scores, support, batch_dims=1), axis=1)
            loss = -tf.reduce_mean(tf.math.log_sigmoid(expected - _pick(d_scores, positives)))
        self._apply(tape, loss, self.g, self.g_optimizer)
        return loss

    def _d_step(self, inputs, positives, negatives, support, seed):
        logits = tf.gather(tf.stop_gradient(self.g(inputs)), support, batch_dims=1)
        drawn = tf.random.stateless_categorical(tf.nn.log_softmax(logits), 1, seed)  # one of G's picks
        generated = tf.cast(tf.gather(support, drawn, batch_dims=1)[:, 0], tf.int32)
        with tf.GradientTape() as tape:
            scores = self.d(inputs, training=True)
            loss = (self._hinge(scores, positives, negatives) + self._hinge(scores, positives, generated)) / 2
            loss += self._penalty(self.d, inputs, positives)
        return self._apply(tape, loss, self.d, self.d_optimizer)


# -- held-out curves (figure 3) -------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class HeldOut:
    """Later training positives of users the earlier events know: one ranked list per user at `now`."""

    users: np.ndarray
    relevant: Ragged
    excluded: Ragged

    @classmethod
    def of(cls, head: UserSequences, later: UserSequences, n_items: int, positive_rating: float) -> HeldOut:
        keep = (later.ratings >= positive_rating) & (np.diff(head.indptr)[later.users] > 0)
        pairs = np.unique(np.stack([later.users[keep], later.items[keep]], 1), axis=0)
        seen = np.zeros(len(pairs), bool)
        if len(pairs):
            head_pairs = head.users.astype(np.int64) * n_items + head.items
            seen = np.isin(pairs[:, 0].astype(np.int64) * n_items + pairs[:, 1], head_pairs)
        pairs = pairs[~seen]
        users, counts = np.unique(pairs[:, 0], return_counts=True) if len(pairs) else (np.zeros(0, int), [])
        relevant = Ragged(np.r_[0, np.cumsum(counts)].astype(np.int64), pairs[:, 1].astype(np.int64))
        lengths = np.diff(head.indptr)[users]
        excluded = Ragged(
            np.r_[0, np.cumsum(lengths)].astype(np.int64),
            head.items[gather_ranges(head.indptr[users], lengths)].astype(np.int64),
        )
        return cls(users.astype(np.int32), relevant, excluded)


def ranked(scorer: LSICScorer, mf: BPRMF, episode: Episode, users: np.ndarray, excluded: Ragged, n: int):
    """Re-ranked scores [B, M] of `users` at `now` (what `LSICRecommender.score` computes)."""
    scores = keras.ops.convert_to_numpy(scorer(episode.inputs(users, episode.clock.now_step)))
    mf_scores = keras.ops.convert_to_numpy(mf.score_all(np.asarray(users, np.int32)))
    mask = np.zeros(scores.shape, bool)
    mask[np.repeat(np.arange(len(users)), np.diff(excluded.indptr)), excluded.indices] = True
    return rerank(mf_scores, scores, n, mask)


def curve_point(trained: Trained, episode: Episode, held: HeldOut, config: LSICConfig) -> dict[str, float]:
    point = {}
    for name, scorer in (("g", trained.generator), ("d", trained.discriminator)):
        accumulator = RankingAccumulator(ks=(CURVE_K,))
        for start in range(0, len(held.users), 512):
            stop = min(start + 512, len(held.users))
            excluded = held.excluded.slice(start, stop)
            scores = ranked(scorer, trained.mf, episode, held.users[start:stop], excluded, config.candidates)
            accumulator.update(scores, held.relevant.slice(start, stop), excluded)
        result = accumulator.result()
        point[f"{name}_precision_at_{CURVE_K}"] = float(result[f"precision@{CURVE_K}"])
        point[f"{name}_ndcg_at_{CURVE_K}"] = float(result[f"ndcg@{CURVE_K}"])
    return point


# -- checkpoints ----------------------------------------------------------------------------------------
class Checkpoints:
    """Per-epoch state of one run under `directory/<key>`: `state.json` (written last: the commit
    point) names the arrays file of the latest finished epoch; older arrays are removed after it."""

    def __init__(self, directory: str, key: str) -> None:
        self.folder = storage.join(directory, key) if directory else None

    def _state(self) -> dict[str, Any] | None:
        path = storage.join(self.folder, "state.json") if self.folder else None
        return json.loads(storage.read_text(path)) if path and storage.exists(path) else None

    def latest(self) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
        state = self._state()
        return (
            None if state is None else (state, storage.load_npz(storage.join(self.folder, state["arrays"])))
        )

    def save(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        if self.folder is None:
            return
        storage.makedirs(self.folder)
        name = f"epoch-{state['done']:04d}.npz"
        storage.save_npz(storage.join(self.folder, name), **arrays)
        previous = self._state()  # its name only: the arrays are not read back
        temporary = storage.join(self.folder, "state.json.tmp")
        storage.write_text(temporary, json.dumps({**state, "arrays": name}))
        # a rename replaces state.json whole (one object on gs://): a crash leaves the old or the new
        tf.io.gfile.rename(str(temporary), str(storage.join(self.folder, "state.json")), overwrite=True)
        if previous and previous["arrays"] != name:
            storage.remove_tree(storage.join(self.folder, previous["arrays"]))


def _weights(prefix: str, variables) -> dict[str, np.ndarray]:
    return {f"{prefix}{k:04d}": keras.ops.convert_to_numpy(v) for k, v in enumerate(variables)}


def _restore(prefix: str, variables, arrays: dict[str, np.ndarray]) -> None:
    for k, variable in enumerate(variables):
        variable.assign(arrays[f"{prefix}{k:04d}"])


def run_key(config: LSICConfig, data: TrainingData, label: str) -> str:
    """Checkpoints belong to one configuration, one training set and one run (selection/final)."""
    digest = hashlib.sha256()
    settings = {k: v for k, v in dataclasses.asdict(config).items() if k != "checkpoint_dir"}
    digest.update(json.dumps(settings, sort_keys=True).encode())
    seq = data.sequences
    for array in (seq.indptr, seq.items, seq.ratings, seq.timestamps):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(f"{data.n_users},{data.n_items},{label}".encode())
    return f"{label}-{digest.hexdigest()[:16]}"


# -- one run -----------------------------------------------------------------------------------------------
EpochHook = Callable[[dict[str, Any]], None]


def run(
    data: TrainingData,
    config: LSICConfig,
    epochs: int,
    posters: np.ndarray | None,
    held_out: HeldOut | None = None,
    label: str = "final",
    on_epoch_end: EpochHook | None = None,
) -> tuple[Trained, list[dict[str, Any]]]:
    """Candidate MF, `pretrain_epochs` of pre-training, `epochs` adversarial epochs; the log has one
    entry per epoch (with the held-out curve point after pre-training and every adversarial epoch)."""
    episode = Episode(data, config)
    if len(episode.users) == 0:
        raise ValueError(
            f"lsic: no training rating >= positive_rating={config.positive_rating}: nothing to learn from"
        )
    checkpoints = Checkpoints(config.checkpoint_dir, run_key(config, data, label))
    keras.utils.set_random_seed(config.seed)
    shape = dict(
        n_users=data.n_users,
        n_items=data.n_items,
        mixture=config.mixture,
        mf_dim=config.mf_dim,
        embedding_dim=config.embedding_dim,
        hidden_size=config.hidden_size,
        session_steps=config.session_steps,
        attention_neighbours=config.attention_neighbours,
        poster_dim=0 if posters is None else posters.shape[1],
        init_scale=config.init_scale,
    )
    generator, discriminator = (
        LSICScorer(**shape, name="generator"),
        LSICScorer(**shape, name="discriminator"),
    )
    resumed = checkpoints.latest()
    if resumed is None:
        mf = train_candidate_mf(
            episode.users,
            episode.items,
            data.n_users,
            data.n_items,
            config.mf_dim,
            config.mf_epochs,
            config.seed,
        )
    else:
        mf = built_mf(data.n_users, data.n_items, config.mf_dim)
        _restore("mf", mf.weights, resumed[1])
    factors = [
        keras.ops.convert_to_numpy(w) for w in (mf.user_embedding.embeddings, mf.item_embedding.embeddings)
    ]
    bias = keras.ops.convert_to_numpy(mf.item_bias.embeddings)
    for scorer in (generator, discriminator):
        scorer.set_mf(factors[0], factors[1], bias)
        if posters is not None:
            scorer.set_posters(posters)
    episode.set_candidates(mf)
    adversary = Adversary(generator, discriminator, config)
    trained = Trained(generator, discriminator, mf, episode.clock, episode.user_grid, episode.movie_grid)
    log: list[dict[str, Any]] = []
    done = 0
    if resumed is not None:
        state, arrays = resumed
        for prefix, variables in (
            ("g", generator.weights),
            ("d", discriminator.weights),
            ("go", adversary.g_optimizer.variables),
            ("do", adversary.d_optimizer.variables),
        ):
            _restore(prefix, variables, arrays)
        log, done = state["log"], int(state["done"])

    plan = [("pretrain", e) for e in range(1, config.pretrain_epochs + 1)]
    plan += [("adversarial", e) for e in range(1, epochs + 1)]
    for index, (phase, epoch) in enumerate(plan, start=1):
        if index <= done:
            continue
        started = time.perf_counter()
        rng = np.random.default_rng([config.seed, index])
        entry: dict[str, Any] = {"phase": phase, "epoch": index}
        if phase == "pretrain":
            entry["g_loss"] = _pass(episode, rng, config, adversary.pretrain_g)
            entry["d_loss"] = _pass(episode, rng, config, adversary.pretrain_d)
        else:
            for _ in range(config.g_steps):
                entry["g_loss"] = _pass(episode, rng, config, adversary.g_step)
            for _ in range(config.d_steps):
                entry["d_loss"] = _pass(episode, rng, config, adversary.d_step)
        entry["seconds"] = time.perf_counter() - started
        for key in ("g_loss", "d_loss"):
            if not np.isfinite(entry[key]):
                raise FloatingPointError(
                    f"lsic: the {key[0].upper()} loss became {entry[key]} in {phase} epoch {epoch} "
                    f"(run epoch {index}); lower learning_rate or check the inputs"
                )
        is_curve_point = phase == "adversarial" or epoch == config.pretrain_epochs
        if held_out is not None and len(held_out.users) and is_curve_point:
            entry.update(curve_point(trained, episode, held_out, config))
        log.append(entry)
        arrays = {
            **_weights("mf", mf.weights),
            **_weights("g", generator.weights),
            **_weights("d", discriminator.weights),
            **_weights("go", adversary.g_optimizer.variables),
            **_weights("do", adversary.d_optimizer.variables),
        }
        checkpoints.save({"done": index, "log": log}, arrays)
        if on_epoch_end is not None:
            on_epoch_end(entry)
    return trained, log


def _pass(episode: Episode, rng: np.random.Generator, config: LSICConfig, step) -> float:
    """One pass over the positives with `step(inputs, positives, negatives, support, seed)` (columns,
    `Episode.batch`); the mean loss."""
    losses, weights = [], []
    for rows in episode.batches(rng, config.batch_size):
        negatives = rng.integers(0, episode.n_items, len(rows)).astype(np.int32)
        seed = rng.integers(0, 2**31 - 1, 2).astype(np.int32)
        inputs, positives, negatives, support = episode.batch(rows, negatives)
        if "movies" not in inputs:
            inputs["movies"] = np.arange(episode.n_items, dtype=np.int32)
        losses.append(float(step(inputs, positives, negatives, support, seed)))
        weights.append(len(rows))
    return float(np.average(losses, weights=weights))


def train(
    data: TrainingData, config: LSICConfig, posters: np.ndarray | None, on_epoch_end: EpochHook | None = None
) -> tuple[Trained, dict[str, Any]]:
    """The best adversarial epoch on the held-out latest training events (G's Precision@5, the
    paper's "generator with best performance"; 0 = right after pre-training), then a refit on every
    training event for that many epochs. Test users are never read."""
    started = time.perf_counter()
    summary: dict[str, Any] = {"selection": [], "best_epoch": None, "heldout_users": 0}
    if config.holdout_fraction > 0:
        seq = data.sequences
        head, later = holdout(seq, config.holdout_fraction)
        held = HeldOut.of(head, seq.select(later), data.n_items, config.positive_rating)
        if len(held.users):
            head_data = dataclasses.replace(data, sequences=head)
            _, selection = run(head_data, config, config.epochs, posters, held, "selection", on_epoch_end)
            points = [e for e in selection if f"g_precision_at_{CURVE_K}" in e]
            best = max(points, key=lambda e: e[f"g_precision_at_{CURVE_K}"])  # the earliest of ties
            best_epoch = sum(1 for e in selection[: selection.index(best) + 1] if e["phase"] == "adversarial")
            summary.update(selection=selection, best_epoch=best_epoch, heldout_users=len(held.users))
            trained, log = run(data, config, best_epoch, posters, None, "final", on_epoch_end)
            summary.update(epochs=log, seconds=time.perf_counter() - started)
            return trained, summary
    trained, log = run(data, config, config.epochs, posters, None, "final", on_epoch_end)
    summary.update(epochs=log, best_epoch=config.epochs, seconds=time.perf_counter() - started)
    return trained, summary
