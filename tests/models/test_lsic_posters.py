"""LSIC's poster inputs (eq. 8): vectors keyed by raw movie id, and images through a Keras CNN."""

from __future__ import annotations

import numpy as np
import pytest

from movierec.models.lsic.posters import embed_images, generated_vectors, load_vectors, save_vectors


def test_vectors_align_with_the_models_movies_by_raw_id(tmp_path):
    path = str(tmp_path / "posters.npz")
    save_vectors(path, np.array(["50", "7", "99"]), np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    vectors, covered = load_vectors(path, np.array(["7", "8", "50"]))
    assert covered == 2
    np.testing.assert_array_equal(vectors, [[3.0, 4.0], [0.0, 0.0], [1.0, 2.0]])  # no poster: zeros


def test_a_malformed_poster_file_is_an_error_that_names_it(tmp_path):
    path = tmp_path / "posters.npz"
    np.savez(path, item_ids=np.array(["1"]))
    with pytest.raises(ValueError, match=r"posters\.npz: missing array 'vectors'"):
        load_vectors(str(path), np.array(["1"]))
    np.savez(path, item_ids=np.array(["1", "2"]), vectors=np.array([[np.nan], [0.0]]))
    with pytest.raises(ValueError, match="NaN or infinity"):
        load_vectors(str(path), np.array(["1"]))
    (tmp_path / "text.npz").write_text("not an archive")
    with pytest.raises(ValueError, match=r"text\.npz: not a readable \.npz"):
        load_vectors(str(tmp_path / "text.npz"), np.array(["1"]))


def test_generated_vectors_are_seeded_and_shaped_like_resnet_features():
    ids = np.array(["1", "2", "3"])
    a, b = generated_vectors(ids, seed=4), generated_vectors(ids, seed=4)
    assert a.shape == (3, 2048) and (a >= 0).all()
    np.testing.assert_array_equal(a, b)


def test_images_go_through_a_keras_cnn_into_vectors(tmp_path):
    import keras
    from PIL import Image

    rng = np.random.default_rng(0)
    for movie in ("12", "40"):
        Image.fromarray(rng.integers(0, 255, (48, 32, 3), dtype=np.uint8)).save(tmp_path / f"{movie}.png")
    (tmp_path / "notes.txt").write_text("not a poster")
    # a small CNN stands in for ResNet-101 (same path: resize, ResNet preprocessing, pooled features)
    keras.utils.set_random_seed(0)
    cnn = keras.Sequential(
        [
            keras.Input((64, 64, 3)),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
        ]
    )
    ids, vectors = embed_images(str(tmp_path), image_size=64, network=cnn)
    assert ids.tolist() == ["12", "40"]
    assert vectors.shape == (2, 8) and np.isfinite(vectors).all()
    assert not np.allclose(vectors[0], vectors[1])  # different images, different vectors
