import numpy as np
import pytest

from pyface.training.augment import Augmentation

OFF = dict(shift=0.0, rotation=0.0, scale=0.0, flip=False, brightness=0.0, contrast=0.0)


def _images(n=16, size=20, seed=0):
    return np.random.default_rng(seed).random((n, size, size), dtype=np.float32)


def test_same_generator_state_gives_same_images():
    images = _images()
    a = Augmentation()(images, np.random.default_rng(3))
    b = Augmentation()(images, np.random.default_rng(3))
    c = Augmentation()(images, np.random.default_rng(4))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert a.dtype == np.float32 and a.shape == images.shape
    assert a.min() >= 0.0 and a.max() <= 1.0


def test_all_off_is_the_identity_and_leaves_input_alone():
    images = _images()
    before = images.copy()
    out = Augmentation(**OFF)(images, np.random.default_rng(0))
    np.testing.assert_allclose(out, images, atol=1e-6)
    np.testing.assert_array_equal(images, before)


def test_flip_mirrors_about_half():
    images = _images(n=40)
    out = Augmentation(**{**OFF, "flip": True})(images, np.random.default_rng(0))
    mirrored = [np.allclose(o, i[:, ::-1], atol=1e-6) for o, i in zip(out, images)]
    same = [np.allclose(o, i, atol=1e-6) for o, i in zip(out, images)]
    assert all(m or s for m, s in zip(mirrored, same))
    assert 10 <= sum(mirrored) <= 30


def test_shift_moves_content_by_at_most_the_limit():
    size = 40
    images = np.zeros((30, size, size), np.float32)
    images[:, 18:22, 18:22] = 1.0
    out = Augmentation(**{**OFF, "shift": 0.1})(images, np.random.default_rng(0))
    rows, cols = np.indices((size, size))
    moves = []
    for o in out:
        w = o / o.sum()
        moves.append(max(abs((w * rows).sum() - 19.5), abs((w * cols).sum() - 19.5)))
    assert max(moves) <= 0.1 * size + 0.5
    assert max(moves) > 1.0


def test_brightness_offsets_whole_images_within_the_limit():
    images = np.full((20, 8, 8), 0.5, np.float32)
    out = Augmentation(**{**OFF, "brightness": 0.2})(images, np.random.default_rng(0))
    offsets = out[:, 0, 0] - 0.5
    np.testing.assert_allclose(out, np.broadcast_to(0.5 + offsets[:, None, None], out.shape), atol=1e-6)
    assert np.abs(offsets).max() <= 0.2 + 1e-6
    assert np.abs(offsets).max() > 0.05


def test_contrast_stretches_around_the_mean():
    images = np.tile(np.array([0.4, 0.6], np.float32), (20, 2, 1))
    out = Augmentation(**{**OFF, "contrast": 0.5})(images, np.random.default_rng(0))
    gains = (out[:, 0, 1] - out[:, 0, 0]) / 0.2
    np.testing.assert_allclose(out.mean(axis=(1, 2)), 0.5, atol=1e-6)
    assert gains.min() >= 0.5 - 1e-5 and gains.max() <= 1.5 + 1e-5
    assert gains.max() - gains.min() > 0.3


def test_negative_limits_are_rejected():
    with pytest.raises(ValueError, match="shift"):
        Augmentation(shift=-0.1)
