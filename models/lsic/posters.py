"""Movie posters for LSIC (eq. 8): one vector per movie, fed once to its LSTM at t = 0.

The paper encodes each poster with ResNet-101's 2,048-d pooled features. Two ways in:
- a file of precomputed vectors (`.npz` with `item_ids`: raw movie ids as strings, `vectors`: [n, P]),
  e.g. from ResNet features of TMDB posters (ml-latest's `links.csv` maps movie ids to TMDB/IMDb);
- `embed_images(folder, …)`: images named `<movie id>.jpg|png` through a Keras CNN
  (`keras.applications.ResNet101`, average-pooled; pass `weights=` a local ImageNet weight file —
  nothing is downloadable here, and random weights only test the plumbing).
`generated_vectors` makes seeded random vectors for tests: they carry no information about a movie.
"""

from __future__ import annotations

import os

import numpy as np

from movierec import storage

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def load_vectors(path: str, item_ids: np.ndarray) -> tuple[np.ndarray, int]:
    """([n_items, P] vectors aligned with `item_ids`, zero rows for movies the file lacks; how many
    movies it covers). A malformed file is an error that names it and what is wrong."""
    try:
        arrays = storage.load_npz(path)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable .npz of poster vectors ({error})") from None
    for key in ("item_ids", "vectors"):
        if key not in arrays:
            raise ValueError(f"{path}: missing array {key!r} (expected item_ids [n] and vectors [n, P])")
    ids, vectors = arrays["item_ids"].astype(str), np.asarray(arrays["vectors"], dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) != len(ids):
        raise ValueError(
            f"{path}: vectors must be [len(item_ids), P], got {vectors.shape} for {len(ids)} ids"
        )
    if not np.isfinite(vectors).all():
        raise ValueError(
            f"{path}: vectors contain NaN or infinity (row {int(np.argmin(np.isfinite(vectors).all(1)))})"
        )
    row = {movie: k for k, movie in enumerate(ids)}
    out = np.zeros((len(item_ids), vectors.shape[1]), np.float32)
    found = np.array([row.get(str(movie), -1) for movie in item_ids], dtype=np.int64)
    out[found >= 0] = vectors[found[found >= 0]]
    return out, int((found >= 0).sum())


def save_vectors(path: str, item_ids: np.ndarray, vectors: np.ndarray) -> None:
    storage.save_npz(path, item_ids=np.asarray(item_ids).astype(str), vectors=np.asarray(vectors, np.float32))


def generated_vectors(item_ids: np.ndarray, dim: int = 2048, seed: int = 0) -> np.ndarray:
    """Seeded non-negative random vectors shaped like ResNet's pooled features (tests, plumbing)."""
    return np.abs(np.random.default_rng(seed).normal(size=(len(item_ids), dim))).astype(np.float32)


def embed_images(
    folder: str, weights: str | None = None, image_size: int = 224, batch_size: int = 32, network=None
):
    """(movie ids, [n, P] vectors) of the images in `folder` through a Keras CNN: by default
    ResNet-101, average-pooled (P = 2,048; `weights`: a local weight file for ResNet-101 without its
    top, or None for random weights), else `network` (any Keras model from images to vectors)."""
    import keras

    names = sorted(f for f in storage.listdir(folder) if f.lower().endswith(IMAGE_SUFFIXES))
    if not names:
        raise ValueError(f"{folder}: no poster images (<movie id>{'|'.join(IMAGE_SUFFIXES)})")
    if network is None:
        network = keras.applications.ResNet101(
            include_top=False, weights=weights, pooling="avg", input_shape=(image_size, image_size, 3)
        )
    ids, vectors = [], []
    for start in range(0, len(names), batch_size):
        chunk = names[start : start + batch_size]
        images = np.stack([_image(storage.join(folder, name), image_size) for name in chunk])
        images = keras.applications.resnet.preprocess_input(images)
        vectors.append(np.asarray(network.predict(images, verbose=0), np.float32))
        ids.extend(os.path.splitext(name)[0] for name in chunk)
    return np.array(ids), np.concatenate(vectors)


def _image(path: str, size: int) -> np.ndarray:
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(storage.read_bytes(path))) as image:
            return np.asarray(image.convert("RGB").resize((size, size)), dtype=np.float32)
    except OSError as error:
        raise ValueError(f"{path}: not a readable image ({error})") from None
