"""Tiny, easily separable stand-ins for face images, for tests that need a trained model fast."""

import numpy as np
import pytest

from pyface.data import from_arrays
from pyface.data.preprocess import Preprocessor

# A network small enough to train in well under a second on a few dozen 16-pixel images.
TINY = {"hidden_size": 8, "num_layers": 1, "views": ("rows",), "bidirectional": False, "augment": None,
        "batch_size": 8}


def _make_images(n_classes=3, per_class=6, size=24, seed=0):
    """uint8 images (N, size, size) and int labels: class k is a bright block in its own place."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    block = size // 3
    for k in range(n_classes):
        row, col = divmod(k % 9, 3)
        for _ in range(per_class):
            image = rng.integers(0, 60, (size, size)).astype(np.uint8)
            dr, dc = rng.integers(-1, 2, 2)
            r0 = int(np.clip(row * block + dr, 0, size - block))
            c0 = int(np.clip(col * block + dc, 0, size - block))
            image[r0 : r0 + block, c0 : c0 + block] = rng.integers(200, 256, (block, block))
            images.append(image)
            labels.append(k)
    return np.stack(images), np.array(labels, dtype=np.int64)


def _make_dataset(n_classes=3, per_class=6, image_size=16, seed=0):
    images, labels = _make_images(n_classes, per_class, seed=seed)
    names = [f"person{k}" for k in range(n_classes)]
    return from_arrays(images, labels, names=names, preprocessor=Preprocessor(size=image_size))


@pytest.fixture(scope="session")
def make_images():
    """Factory of raw uint8 images and labels; see ``_make_images``."""
    return _make_images


@pytest.fixture(scope="session")
def make_dataset():
    """Factory of FaceDatasets of ``make_images`` preprocessed to ``image_size`` pixels square."""
    return _make_dataset


@pytest.fixture(scope="session")
def tiny():
    """Training options of a tiny network without augmentation."""
    return dict(TINY)


@pytest.fixture(scope="session")
def tiny_model():
    """A tiny recognizer of three people, trained on 16-pixel images (do not modify it)."""
    from pyface.training import train

    return train(_make_dataset(per_class=8), epochs=25, quiet=True, **TINY)
