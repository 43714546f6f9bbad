"""Synthetic MovieLens-like ratings to any size: **test data for scale and plumbing, not a benchmark of
accuracy**.

The numbers a model reaches on this data say nothing about how it does on real ratings: the tastes,
popularity and rating rules below are simple invented processes. What the data does have is the
*shape* of MovieLens, so every reader, split, stream and pipeline step meets what it meets on the real
files, at any size:

- items: Zipf-like (power-law) popularity, MovieLens' genres (1–5 per movie, at ML-100K's rates),
  "Word Word (1994)" titles whose words lean on the genres, release years mostly just before the
  rating period;
- users: ML-1M's demographics (gender, age group, occupation code, zip code), a heavy-tailed number
  of ratings each (at least 20 where the sizes allow, as in MovieLens), a taste over genres that drifts
  from one mix to another over the user's history;
- time: session bursts (ratings tens of seconds apart, sessions hours to months apart, at ML-100K's
  measured gaps), and **timestamp ties at the real rate**: 51% of ML-100K's consecutive ratings of a
  user share a second (`same_second_share`), and so do this generator's by default;
- ratings: on the layout's scale (whole stars for ml-dat as in ML-1M, half stars for ml-csv as in
  ML-20M+), higher for movies of the user's current favourite genres, popular movies and generous
  users, with a marginal mix close to MovieLens'.

It streams: the item and user tables (small: one row per movie or user) are made up front; events
are generated per chunk of consecutive users holding about `CHUNK_EVENTS` ratings, each chunk from its
own seeded random stream, so memory does not grow with the event count and the same seed gives the
same events whatever is done with them.

    from movierec.data.synth import SynthConfig, SyntheticMovieLens
    generator = SyntheticMovieLens(SynthConfig(events=100_000, seed=1))
    for chunk in generator.chunks():  # EventChunk: user, item, rating, timestamp arrays
        ...

`movierec.data.synth_files.write_synthetic` writes it as the ml-csv or ml-dat layout
(`movierec data synth` on the command line).
"""

from __future__ import annotations

import calendar
import datetime
import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from statistics import NormalDist

import numpy as np

SYNTH_LAYOUTS = ("ml-csv", "ml-dat")
CHUNK_EVENTS = 200_000  # ratings per chunk of users (a chunk holds at least one user)
ML100K_SAME_SECOND_SHARE = 0.5104
"""Share of ML-100K's consecutive ratings of a user (in time order) that share a second, measured on
u.data with `movierec.data.splits.same_second_share` (50,561 of 99,057 pairs)."""

# MovieLens' 18 genres (ML-1M spelling; the ml-csv files of ML-20M on write "Children").
GENRES: tuple[str, ...] = (
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
CSV_GENRE_NAMES = {"Children's": "Children"}
# Share of ML-100K's movies in each genre (u.item), in GENRES order.
GENRE_SHARE = np.array(
    [.149, .080, .025, .073, .300, .065, .030, .431, .013,
     .014, .055, .033, .036, .147, .060, .149, .042, .016]
)  # fmt: skip
# Share of ML-100K's movies with 1, 2, 3, 4, 5 genres.
GENRE_COUNT_SHARE = np.array([0.495, 0.338, 0.128, 0.030, 0.009])

# ML-1M users.dat: age group codes and (roughly) their shares, the share of men, occupation codes 0–20
# (movierec.data.ML1M_OCCUPATIONS) with roughly ML-1M's mix (students, executives, engineers lead).
AGE_GROUPS = np.array([1, 18, 25, 35, 45, 50, 56])
AGE_GROUP_SHARE = np.array([0.037, 0.183, 0.347, 0.198, 0.091, 0.082, 0.062])
MALE_SHARE = 0.72
OCCUPATION_SHARE = np.array(
    [711, 528, 267, 173, 759, 112, 236, 679, 17, 92, 195, 129, 388, 142, 302, 144, 241, 502, 70, 72, 281],
    dtype=np.float64,
)

# Ratings: ML-100K's whole-star mix (u.data) and a half-star mix shaped like the recent ml-csv files'.
WHOLE_STAR_SHARE = np.array([0.0611, 0.1137, 0.2715, 0.3417, 0.2120])
HALF_STAR_SHARE = np.array([0.016, 0.031, 0.016, 0.066, 0.050, 0.195, 0.126, 0.266, 0.085, 0.149])

# Time between a user's consecutive ratings (ML-100K, u.data): inside a session (gap ≤ 1 h, not a tie)
# a median of 36 s; between sessions a median of about 5 days, spread from hours to months.
IN_SESSION_GAP_MEDIAN, IN_SESSION_GAP_SIGMA = 36.0, 0.8
SESSION_GAP_MEDIAN, SESSION_GAP_SIGMA = 100 * 3600.0, 1.9
SESSION_LENGTH_MEDIAN, SESSION_LENGTH_SIGMA = 60.0, 0.8  # a user's typical ratings per session

# Zipf-like popularity: weight ∝ (rank + POPULARITY_OFFSET) ** -POPULARITY_EXPONENT; GLOBAL_SHARE of a
# user's picks follow overall popularity, the rest popularity within a genre of the user's taste.
POPULARITY_EXPONENT, POPULARITY_OFFSET = 1.2, 5.0
GLOBAL_SHARE = 0.35
TASTE_CONCENTRATION = 3.0  # Dirichlet total: lower = narrower tastes
MIN_EVENTS_PER_USER = 20  # MovieLens keeps users with at least 20 ratings
EVENTS_PER_USER_SIGMA = 1.1  # log-normal spread of ratings per user (ML-100K: median 65, mean 106)

_TITLE_WORDS_TEXT = (
    "Night Day Man Woman Love Story City Last First Return Life Time Dream Secret Road House Girl Boy "
    "King Heart Summer Winter Blue Red Black White Golden Silent Lost Little Big American Dark Long "
    "Street River Moon Star Paradise Game Shadow Family Home Kiss Fire Water Sky Rain Storm Wild Angel"
)
_TITLE_WORDS = _TITLE_WORDS_TEXT.split()
_GENRE_WORDS = {
    "Action": "Fury Strike Force Hard Target Bullet Fist Run Danger Mission",
    "Adventure": "Quest Treasure Island Journey Jungle Legend Voyage Temple",
    "Animation": "Toon Tales Magic Cartoon Bunny Dragon",
    "Children's": "Kids Puppy Pony Christmas Friends Little Adventures",
    "Comedy": "Crazy Funny Wedding Party Trouble Mr Holiday Weekend",
    "Crime": "Heist Gang Godfather Murder Cop Money Job",
    "Documentary": "Portrait Inside Truth World Voices Making",
    "Drama": "Promise Letters Memory Daughter Father Mother Sister Brother Silence",
    "Fantasy": "Wizard Sword Kingdom Spell Ring Realm",
    "Film-Noir": "Dame Shadows Double Alley Murder Smoke",
    "Horror": "Dead Blood Evil Nightmare Scream Curse Zombie Haunting",
    "Musical": "Song Dance Melody Broadway Rhythm Music",
    "Mystery": "Clue Vanishing Stranger Case Riddle Window",
    "Romance": "Kiss Romance Sweetheart Bride Valentine Forever Passion",
    "Sci-Fi": "Space Planet Robot Galaxy Alien Future Machine Orbit",
    "Thriller": "Fear Hunted Edge Trap Deadly Witness Panic",
    "War": "Battle Soldier Front Glory Enemy Platoon Victory",
    "Western": "Gun Ranch Sheriff Outlaw Frontier Rider Canyon",
}
_ACCENTED_WORDS = ("Café", "Señor", "Amélie", "Déjà")  # Latin-1 letters, written in both encodings


def _day(text: str) -> int:
    day = datetime.date.fromisoformat(text)
    return calendar.timegm(day.timetuple())


DEFAULT_START = _day("2000-01-01")
DEFAULT_END = _day("2003-12-31") + 86399


def default_users(events: int) -> int:
    """Users for `events` ratings: about 120 ratings each (ML-100K 106, ML-1M 165, ML-25M 153)."""
    return max(1, round(events / 120))


def default_items(events: int) -> int:
    """Movies for `events` ratings: about 5·√events, at least 50 (100K → 1,581; 1M → 5,000; 25M → 25,000)."""
    return max(50, round(5 * math.sqrt(events)))


@dataclass(frozen=True)
class SynthConfig:
    """What to generate. `users` and `items` of None scale with `events` (see `resolved`).

    Args:
        events: total number of ratings (the files hold exactly this many).
        users: number of users (ids 1..users), each with at least one rating; default `default_users`.
        items: number of movies (ids 1..items); default `default_items`, or twice the ratings per user
            if that is more. Rarely rated movies may end up with no rating, as in MovieLens' movie tables.
        layout: "ml-csv" (half stars) or "ml-dat" (whole stars, with users.dat).
        seed: the same seed and configuration give byte-identical files.
        start, end: unix seconds; every timestamp lies in [start, end] (at least one day apart).
        same_second_share: the share of a user's consecutive ratings that share a second.

    Example:
        >>> SynthConfig(events=1_000_000).resolved().users
        8333
    """

    events: int = 1_000_000
    users: int | None = None
    items: int | None = None
    layout: str = "ml-csv"
    seed: int = 0
    start: int = DEFAULT_START
    end: int = DEFAULT_END
    same_second_share: float = ML100K_SAME_SECOND_SHARE

    def resolved(self) -> SynthConfig:
        """This configuration with the default users and items filled in, checked (ValueError naming the
        argument otherwise)."""
        if not isinstance(self.events, int) or self.events < 1:
            raise ValueError(f"events (--events) must be a positive whole number, got {self.events!r}")
        users = default_users(self.events) if self.users is None else self.users
        if self.items is None:  # enough movies that nobody needs to rate more than half of them
            items = max(default_items(self.events), -(-2 * self.events // max(users, 1)))
        else:
            items = self.items
        if not isinstance(users, int) or users < 1:
            raise ValueError(f"users (--users) must be a positive whole number, got {users!r}")
        if not isinstance(items, int) or items < 1:
            raise ValueError(f"items (--items) must be a positive whole number, got {items!r}")
        if users > self.events:
            raise ValueError(
                f"users (--users) {users} is more than events (--events) {self.events}: every user has at "
                "least one rating"
            )
        if self.events > users * items:
            raise ValueError(
                f"events (--events) {self.events} is more than users × items ({users} × {items}) allows: "
                "a user rates a movie at most once; raise --users or --items"
            )
        if self.layout not in SYNTH_LAYOUTS:
            raise ValueError(
                f"layout (--layout) must be one of {', '.join(SYNTH_LAYOUTS)}, got {self.layout!r}"
            )
        if self.end - self.start < 86400:
            raise ValueError(
                f"end (--end) must be at least one day after start (--start), got start {self.start} and "
                f"end {self.end} (unix seconds)"
            )
        if self.start < 0:
            raise ValueError(f"start (--start) must not be before 1970, got {self.start}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed (--seed) must be a non-negative whole number, got {self.seed!r}")
        if not 0.0 <= self.same_second_share < 1.0:
            raise ValueError(f"same_second_share must be in [0, 1), got {self.same_second_share!r}")
        return replace(self, users=users, items=items)


@dataclass(frozen=True)
class Catalogue:
    """The movies: ids 1..n, title (with year), release year, genre indices into GENRES, popularity."""

    titles: list[str]
    years: np.ndarray  # int
    genres: list[tuple[int, ...]]  # indices into GENRES, 1-5 per movie
    popularity: np.ndarray  # float64, sums to 1; Zipf-like over a random ranking of the ids
    quality: np.ndarray  # float64: how well the movie tends to be rated (standard-normal scale)

    @property
    def ids(self) -> np.ndarray:
        return np.arange(1, len(self.titles) + 1, dtype=np.int64)


@dataclass(frozen=True)
class UserTable:
    """The users: ids 1..n with ML-1M-style demographics and the number of ratings each will make."""

    gender: np.ndarray  # "M"/"F" as str objects
    age_group: np.ndarray  # ML-1M age group codes (1, 18, 25, ...)
    occupation: np.ndarray  # ML-1M occupation codes 0..20
    zip_code: np.ndarray  # int, written as five digits
    events: np.ndarray  # int64, ratings per user, summing to SynthConfig.events

    @property
    def ids(self) -> np.ndarray:
        return np.arange(1, len(self.events) + 1, dtype=np.int64)


@dataclass(frozen=True)
class EventChunk:
    """The ratings of consecutive users, grouped by user and in time order within a user.

    `rating_code` indexes the layout's rating levels (`rating_levels(layout)`): 0 = lowest.
    """

    user: np.ndarray  # int64 ids
    item: np.ndarray  # int64 ids
    rating_code: np.ndarray  # int8
    timestamp: np.ndarray  # int64 unix seconds

    def __len__(self) -> int:
        return len(self.user)


def rating_levels(layout: str) -> np.ndarray:
    """The rating values of a layout: 1..5 whole stars for ml-dat, 0.5..5 half stars for ml-csv."""
    return np.arange(1, 6, dtype=np.float64) if layout == "ml-dat" else np.arange(1, 11) / 2.0


def _rng(seed: int, *stream: int) -> np.random.Generator:
    """An independent random stream per purpose (and per chunk), so chunks never depend on each other."""
    return np.random.default_rng([seed, *stream])


def _lognormal(rng: np.random.Generator, median: float, sigma: float, size: int) -> np.ndarray:
    return median * np.exp(sigma * rng.standard_normal(size))


def _counts_per_user(rng: np.random.Generator, users: int, events: int, cap: int) -> np.ndarray:
    """Heavy-tailed ratings per user summing to exactly `events`, each in [1, cap], at least
    MIN_EVENTS_PER_USER where the mean allows (the floor shrinks with a small mean)."""
    mean = events / users
    floor = max(1, min(MIN_EVENTS_PER_USER, int(mean / 3)))
    shape = np.exp(EVENTS_PER_USER_SIGMA * rng.standard_normal(users))

    def total(scale: float) -> float:
        return float(np.minimum(floor + shape * scale, cap).sum())

    low, high = 0.0, 1.0
    while total(high) < events and high < 1e12:
        high *= 2
    for _ in range(100):  # bisection on the scale: the capped sum is monotone in it
        mid = (low + high) / 2
        low, high = (mid, high) if total(mid) < events else (low, mid)
    wanted = np.minimum(floor + shape * high, cap)
    counts = np.floor(wanted).astype(np.int64)
    remainder = events - int(counts.sum())
    if remainder > 0:  # the largest fractional parts (of users below the cap) take one more
        room = np.flatnonzero(counts < cap)
        order = room[np.argsort(-(wanted - counts)[room], kind="stable")]
        counts[order[:remainder]] += 1
    elif remainder < 0:
        order = np.argsort(-counts, kind="stable")[:-remainder]
        counts[order] -= 1
    return counts


def make_catalogue(config: SynthConfig) -> Catalogue:
    """The movie table of a resolved `config` (small: made in one go, from its own random stream)."""
    n = config.items
    rng = _rng(config.seed, 1)
    n_genres = rng.choice(len(GENRE_COUNT_SHARE), size=n, p=GENRE_COUNT_SHARE) + 1
    # k genres without replacement, weighted by their share: the top k of log-share + Gumbel noise
    keys = np.log(GENRE_SHARE)[None, :] + rng.gumbel(size=(n, len(GENRES)))
    ranked = np.argsort(-keys, axis=1, kind="stable")
    genres = [tuple(sorted(int(g) for g in ranked[i, : n_genres[i]])) for i in range(n)]
    rank = rng.permutation(n)  # popularity rank of each id: ids carry no popularity order
    weight = (rank + POPULARITY_OFFSET) ** -POPULARITY_EXPONENT
    popularity = weight / weight.sum()
    log_pop = np.log(popularity)
    quality = 0.8 * rng.standard_normal(n) + 0.6 * (log_pop - log_pop.mean()) / (log_pop.std() or 1.0)
    last_year = datetime.datetime.fromtimestamp(config.start, datetime.UTC).year
    recent = last_year - np.floor(rng.exponential(3.0, n)).astype(np.int64)
    older = rng.integers(1920, last_year + 1, n)
    years = np.maximum(np.where(rng.random(n) < 0.75, recent, older), 1902)
    titles = [_title(rng, genres[i], int(years[i])) for i in range(n)]
    return Catalogue(titles, years, genres, popularity, quality)


def _title(rng: np.random.Generator, genres: tuple[int, ...], year: int) -> str:
    words = []
    if rng.random() < 0.12:
        words.append("The")
    for _ in range(int(rng.integers(1, 4))):
        if rng.random() < 0.5:
            pool = _GENRE_WORDS[GENRES[genres[int(rng.integers(len(genres)))]]].split()
        else:
            pool = _TITLE_WORDS
        words.append(pool[int(rng.integers(len(pool)))])
    if rng.random() < 0.01:
        words.append(_ACCENTED_WORDS[int(rng.integers(len(_ACCENTED_WORDS)))])
    title = " ".join(words)
    if words[0] == "The" and len(words) > 1 and rng.random() < 0.5:  # MovieLens' "Title, The"
        title = " ".join(words[1:]) + ", The"
    if rng.random() < 0.05:
        title += f" {int(rng.integers(2, 5))}"  # a sequel
    return f"{title} ({year})"


def make_users(config: SynthConfig) -> UserTable:
    """The user table of a resolved `config`, with each user's number of ratings."""
    n = config.users
    rng = _rng(config.seed, 2)
    gender = np.where(rng.random(n) < MALE_SHARE, "M", "F").astype(object)
    age_group = AGE_GROUPS[rng.choice(len(AGE_GROUPS), size=n, p=AGE_GROUP_SHARE)]
    occupation = rng.choice(len(OCCUPATION_SHARE), size=n, p=OCCUPATION_SHARE / OCCUPATION_SHARE.sum())
    zip_code = rng.integers(1000, 100000, n)
    # nobody rates more than half the catalogue (ML-100K's keenest user: 737 of 1,682), unless the
    # requested sizes need it
    cap = max(-(-config.items // 2), -(-config.events // n))
    events = _counts_per_user(_rng(config.seed, 3), n, config.events, min(cap, config.items))
    return UserTable(gender, age_group, occupation, zip_code, events)


class SyntheticMovieLens:
    """A seeded MovieLens-like dataset: `catalogue` and `users` tables, and `chunks()` of events.

    Args:
        config: what to generate (see SynthConfig); defaults are filled in and checked here.

    Example:
        >>> generator = SyntheticMovieLens(SynthConfig(events=5_000, seed=7))
        >>> sum(len(chunk) for chunk in generator.chunks())
        5000
    """

    def __init__(self, config: SynthConfig) -> None:
        self.config = config.resolved()
        self.catalogue = make_catalogue(self.config)
        self.users = make_users(self.config)
        shares = WHOLE_STAR_SHARE if self.config.layout == "ml-dat" else HALF_STAR_SHARE
        normal = NormalDist()
        self._thresholds = np.array([normal.inv_cdf(c) for c in np.cumsum(shares)[:-1]])
        self._build_samplers()
        # chunks: consecutive users, a new chunk whenever CHUNK_EVENTS more ratings have begun
        begun = np.cumsum(self.users.events) - self.users.events
        boundaries = np.flatnonzero(np.diff(begun // CHUNK_EVENTS)) + 1
        self._chunk_starts = np.concatenate(([0], boundaries, [self.config.users])).astype(np.int64)
        # The latent score's mean and spread depend on the sizes (which movies get drawn): measured on
        # the first chunk, so that cutting it at standard-normal quantiles gives the target mix.
        latent = self._chunk_parts(0)[-1]
        self._latent_center, self._latent_scale = float(latent.mean()), float(latent.std() or 1.0)

    @property
    def n_chunks(self) -> int:
        return len(self._chunk_starts) - 1

    def _build_samplers(self) -> None:
        """One flat cumulative table for "a movie of genre g, by popularity": genre g's movies hold
        the values [g, g + 1), and pseudo-genre len(GENRES) holds every movie (overall popularity), so
        one searchsorted draws a movie for any mix of genres."""
        n_genres = len(GENRES)
        members: list[list[int]] = [[] for _ in range(n_genres + 1)]
        for item, genres in enumerate(self.catalogue.genres):
            for g in genres:
                members[g].append(item)
        members[n_genres] = list(range(len(self.catalogue.genres)))
        cdf_parts, item_parts, starts = [], [], [0]
        # a genre no movie has (tiny catalogues) borrows the whole catalogue
        members = [m if m else members[n_genres] for m in members]
        for g, items in enumerate(members):
            idx = np.asarray(items, dtype=np.int64)
            weight = self.catalogue.popularity[idx]
            cumulative = np.cumsum(weight) / weight.sum()
            cdf_parts.append(g + np.concatenate(([0.0], cumulative[:-1])))
            item_parts.append(idx)
            starts.append(starts[-1] + len(idx))
        self._genre_cdf = np.concatenate(cdf_parts)
        self._genre_items = np.concatenate(item_parts)
        self._genre_start = np.asarray(starts[:-1])
        self._genre_end = np.asarray(starts[1:])
        primary = np.array([genres[0] for genres in self.catalogue.genres], dtype=np.int64)
        self._primary_genre = primary
        self._taste_prior = GENRE_SHARE / GENRE_SHARE.sum()  # the average taste: MovieLens' genre mix

    def chunks(self) -> Iterator[EventChunk]:
        """The events, a chunk of users at a time (lazy: nothing is generated before it is asked
        for, and memory holds one chunk)."""
        for index in range(self.n_chunks):
            yield self.chunk(index)

    def chunk(self, index: int) -> EventChunk:
        """The events of the index-th chunk of users (0-based)."""
        first, local, item, timestamps, latent = self._chunk_parts(index)
        latent = (latent - self._latent_center) / self._latent_scale
        return EventChunk(
            user=(first + 1 + local).astype(np.int64),
            item=(item + 1).astype(np.int64),
            rating_code=np.searchsorted(self._thresholds, latent).astype(np.int8),
            timestamp=timestamps,
        )

    def _chunk_parts(self, index: int) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if not 0 <= index < self.n_chunks:
            raise IndexError(f"chunk {index} out of range (0..{self.n_chunks - 1})")
        first, last = int(self._chunk_starts[index]), int(self._chunk_starts[index + 1])
        rng = _rng(self.config.seed, 4, index)
        counts = self.users.events[first:last]
        tastes = self._tastes(rng, first, last)  # (users, 2, genres + 1): start and end of history
        local, genre, item, frac = self._pick_items(rng, counts, tastes)
        timestamps = self._timestamps(rng, counts)
        latent = self._latent_scores(rng, local, genre, item, frac, tastes, last - first)
        return first, local, item, timestamps, latent

    def _tastes(self, rng: np.random.Generator, first: int, last: int) -> np.ndarray:
        """Each user's genre weights at the start and the end of their history (the pseudo-genre last:
        the weight of picks by overall popularity), rows summing to 1."""
        n = last - first
        prior = np.broadcast_to(self._taste_prior, (n, len(GENRES))).copy()
        # demographic leanings (a little realism; tastes stay mostly individual)
        young = self.users.age_group[first:last] < 18
        prior[young, GENRES.index("Animation")] *= 3
        prior[young, GENRES.index("Children's")] *= 3
        female = self.users.gender[first:last] == "F"
        prior[female, GENRES.index("Romance")] *= 1.8
        prior[female, GENRES.index("War")] *= 0.6
        prior /= prior.sum(axis=1, keepdims=True)
        alpha = np.repeat(TASTE_CONCENTRATION * prior[:, None, :], 2, axis=1) + 1e-3
        genre_weights = rng.gamma(alpha)  # Dirichlet via normalised gammas, vectorised over users
        genre_weights /= genre_weights.sum(axis=2, keepdims=True)
        tastes = np.concatenate(
            [(1 - GLOBAL_SHARE) * genre_weights, np.full((n, 2, 1), GLOBAL_SHARE)], axis=2
        )
        return tastes

    def _draw(
        self, rng: np.random.Generator, local: np.ndarray, frac: np.ndarray, tastes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """One (genre, item) draw per slot: genre from the user's taste at `frac` of the history (the
        start taste with probability 1 - frac, the end taste else), then an item by popularity in it."""
        width = tastes.shape[2]
        late = rng.random(len(local)) < frac
        rows = local * 2 + late
        cdf = np.cumsum(tastes.reshape(-1, width), axis=1)
        cdf = cdf / cdf[:, -1:]
        flat = (cdf + np.arange(len(cdf))[:, None]).ravel()
        genre = np.searchsorted(flat, rows + rng.random(len(local)), side="right") - rows * width
        genre = np.clip(genre, 0, width - 1)
        at = np.searchsorted(self._genre_cdf, genre + rng.random(len(local)), side="right") - 1
        at = np.clip(at, self._genre_start[genre], self._genre_end[genre] - 1)
        return genre, self._genre_items[at]

    def _pick_items(
        self, rng: np.random.Generator, counts: np.ndarray, tastes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """count_u distinct movies per user, in the order of the user's history.

        Draws with replacement (taste, then popularity), oversampled, keeps each user's first draw of a
        movie and the first count_u of those; users left short draw again (a few rounds), and the
        rare user still short (a history covering much of the catalogue) takes the missing movies in
        popularity order with noise.
        """
        n_users, n_items = len(counts), len(self.catalogue.titles)
        chosen_local: list[np.ndarray] = []
        chosen_genre: list[np.ndarray] = []
        chosen_item: list[np.ndarray] = []
        have = np.zeros(n_users, dtype=np.int64)
        taken = np.zeros(0, dtype=np.int64)  # local * n_items + item of the kept draws, sorted
        for attempt in range(4):
            short = counts - have
            if not short.any():
                break
            draws = np.where(short > 0, np.ceil(short * (1.3 + attempt)) + 4, 0).astype(np.int64)
            local = np.repeat(np.arange(n_users), draws)
            within = np.arange(len(local)) - np.repeat(np.cumsum(draws) - draws, draws)
            position = (have[local] + within * (short[local] / np.maximum(draws[local], 1))) / np.maximum(
                counts[local] - 1, 1
            )
            genre, item = self._draw(rng, local, np.minimum(position, 1.0), tastes)
            key = local * n_items + item
            order = np.argsort(key, kind="stable")
            first = np.ones(len(key), dtype=bool)
            first[order[1:]] = key[order[1:]] != key[order[:-1]]
            if len(taken):  # drop movies the user kept in an earlier round (taken is sorted)
                at = np.minimum(np.searchsorted(taken, key), len(taken) - 1)
                first &= taken[at] != key
            keep = first
            rank = np.cumsum(keep) - 1
            start = np.cumsum(draws) - draws
            before = np.concatenate(([0], np.cumsum(keep)))[start][local]
            keep &= (rank - before) < short[local]
            chosen_local.append(local[keep])
            chosen_genre.append(genre[keep])
            chosen_item.append(item[keep])
            taken = np.sort(np.concatenate((taken, key[keep])))
            have += np.bincount(local[keep], minlength=n_users)
        short_users = np.flatnonzero(have < counts)
        if len(short_users):  # rare: a history covering much of the catalogue
            bounds = np.searchsorted(taken, np.stack([short_users, short_users + 1]) * n_items)
            log_popularity = np.log(self.catalogue.popularity)
            for user, low, high in zip(short_users, bounds[0], bounds[1], strict=True):
                available = np.ones(n_items, dtype=bool)
                available[taken[low:high] - user * n_items] = False
                pool = np.flatnonzero(available)
                noisy = log_popularity[pool] + rng.gumbel(size=len(pool))
                missing = int(counts[user] - have[user])
                extra = pool[np.argsort(-noisy, kind="stable")[:missing]]
                chosen_local.append(np.full(len(extra), user))
                chosen_genre.append(self._primary_genre[extra])
                chosen_item.append(extra)
                have[user] += len(extra)
        local = np.concatenate(chosen_local)
        order = np.argsort(local, kind="stable")  # per user: first round's picks, then later rounds'
        local = local[order]
        frac = (np.arange(len(local)) - np.repeat(np.cumsum(counts) - counts, counts)) / np.maximum(
            counts[local] - 1, 1
        )
        return local, np.concatenate(chosen_genre)[order], np.concatenate(chosen_item)[order], frac

    def _timestamps(self, rng: np.random.Generator, counts: np.ndarray) -> np.ndarray:
        """Each user's times: a tie (gap 0) with probability same_second_share, else a gap inside a
        session (seconds to minutes) or, once per session on average, a gap between sessions (hours to
        months); between-session gaps shrink where a history would not fit in [start, end]."""
        n_users, total = len(counts), int(counts.sum())
        span = self.config.end - self.config.start
        local = np.repeat(np.arange(n_users), counts)
        starts = np.cumsum(counts) - counts
        is_first = np.zeros(total, dtype=bool)
        is_first[starts] = True
        session_length = np.maximum(_lognormal(rng, SESSION_LENGTH_MEDIAN, SESSION_LENGTH_SIGMA, n_users), 2)
        p_break = (1 / session_length)[local]
        p_tie = np.minimum(self.config.same_second_share / (1 - p_break), 1.0)
        u_break, u_tie = rng.random(total), rng.random(total)
        is_break = ~is_first & (u_break < p_break)
        is_tie = ~is_first & ~is_break & (u_tie < p_tie)
        in_session = np.maximum(
            np.rint(_lognormal(rng, IN_SESSION_GAP_MEDIAN, IN_SESSION_GAP_SIGMA, total)), 1
        )
        between = 3600 + _lognormal(rng, SESSION_GAP_MEDIAN, SESSION_GAP_SIGMA, total)
        step = np.where(is_break, 0.0, np.where(is_tie | is_first, 0.0, in_session))
        breaks = np.where(is_break, between, 0.0)
        step_sum = np.bincount(local, weights=step, minlength=n_users)
        break_sum = np.bincount(local, weights=breaks, minlength=n_users)
        room = np.maximum(span - step_sum, 0.0)
        shrink = np.where(step_sum + break_sum > span, room / np.maximum(break_sum, 1.0), 1.0)
        gaps = step + np.where(is_break, np.maximum(np.floor(breaks * shrink[local]), 1.0), 0.0)
        gaps = gaps.astype(np.int64)
        elapsed = np.cumsum(gaps)
        elapsed -= np.repeat(elapsed[starts], counts)
        duration = elapsed[starts + counts - 1]
        slack = np.maximum(span - duration, 0)
        offset = np.floor(rng.random(n_users) * (slack + 1)).astype(np.int64)
        return np.minimum(self.config.start + np.repeat(offset, counts) + elapsed, self.config.end)

    def _latent_scores(
        self,
        rng: np.random.Generator,
        local: np.ndarray,
        genre: np.ndarray,
        item: np.ndarray,
        frac: np.ndarray,
        tastes: np.ndarray,
        n_users: int,
    ) -> np.ndarray:
        """A latent rating score per event: user generosity + movie quality + affinity of the user's
        current taste for the genre the movie was picked for + noise (cut into levels by `chunk`)."""
        n_genres = len(GENRES)
        genre = np.where(genre >= n_genres, self._primary_genre[item], genre)
        weights = tastes[:, :, :n_genres] / tastes[:, :, :n_genres].sum(axis=2, keepdims=True)
        current = (1 - frac) * weights[local, 0, genre] + frac * weights[local, 1, genre]
        affinity = np.clip(np.log(n_genres * current + 1e-9), -3, 3)
        generosity = 0.45 * rng.standard_normal(n_users)
        return (
            generosity[local]
            + 0.5 * self.catalogue.quality[item]
            + 0.35 * affinity
            + 0.75 * rng.standard_normal(len(item))
        )
