"""The two-level genre hierarchy IARN's hierarchical feature encoder (eq. 12) reads.

MovieLens genres are flat; the paper's hierarchies come from Amazon's category trees. We define one
level above the genres, by the kind of story a genre tells (ours; no source gives one):

    Action & Adventure : Action, Adventure, War, Western
    Suspense           : Crime, Film-Noir, Horror, Mystery, Thriller
    Fantastic          : Fantasy, Sci-Fi
    Family             : Animation, Children's, Musical
    Drama & Romance    : Drama, Romance
    Comedy             : Comedy
    Non-fiction        : Documentary
    Other              : unknown, and any genre not named above (e.g. ml-latest's IMAX)

An item affiliated with genres g_1..g_m has m leaf-to-root paths (leaf g_k, root its group); eq. (12)
is the product along one path, M_{g_k} · M_{group(g_k)} · x, and, since the paper defines no
combination across paths, the paths' effects are added as eq. (11) adds flat features (ours). Genre
names match case-insensitively, ignoring punctuation and spaces ("Children's" = "Childrens").
"""

from __future__ import annotations

import re

import numpy as np

GENRE_GROUPS: dict[str, tuple[str, ...]] = {
    "Action & Adventure": ("Action", "Adventure", "War", "Western"),
    "Suspense": ("Crime", "Film-Noir", "Horror", "Mystery", "Thriller"),
    "Fantastic": ("Fantasy", "Sci-Fi"),
    "Family": ("Animation", "Children's", "Musical"),
    "Drama & Romance": ("Drama", "Romance"),
    "Comedy": ("Comedy",),
    "Non-fiction": ("Documentary",),
    "Other": (),
}
GROUP_NAMES: tuple[str, ...] = tuple(GENRE_GROUPS)
OTHER = GROUP_NAMES.index("Other")


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_GROUP_OF = {_key(genre): index for index, genres in enumerate(GENRE_GROUPS.values()) for genre in genres}


def genre_parents(genre_names: list[str] | tuple[str, ...]) -> np.ndarray:
    """[n_genres] int32: the group index (into GROUP_NAMES) of each genre column; "Other" when the
    genre is not in the hierarchy."""
    return np.array([_GROUP_OF.get(_key(name), OTHER) for name in genre_names], dtype=np.int32)
