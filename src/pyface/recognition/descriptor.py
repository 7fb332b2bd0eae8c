"""A fixed second view of a face beside the network's: gradient histograms, projected onto
the directions that tell people apart.

The open-set model's embedding is the network's summary of a face joined with this one.
Histograms of oriented gradients (OpenCV's ``HOGDescriptor``: 8-pixel cells, 9 orientations,
blocks of 2 x 2 cells normalised together) describe the local shape of a face without
learning anything; a linear discriminant fitted on the training people keeps the directions
along which people differ more than photos of one person do. On LFW's held-out people the
general model's embedding alone named 40.7 % right from 5 photos each with an equal error rate
of 25.7 %, this descriptor alone 52.7 % / 24.6 %, and the two joined 54.0 % / 21.7 %
(docs/experiments.md, "A second view: gradient histograms beside the LSTMs"): the network, trained
on 2-3 photos of each of 1,500 people, learns some of what tells faces apart and the
descriptor, fitted in closed form, brings the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["FaceDescriptor", "gradient_histograms", "histogram_size", "discriminant_projection", "check_fittable",
           "KINDS"]

KINDS = ("hog",)
CELL = 8  # pixels: the side of a histogram's cell, and the stride of the 2 x 2-cell blocks
BINS = 9  # orientations over 0-180 degrees
# Principal components kept before the discriminant (of 1,764 histogram values on 64-pixel
# faces): the discriminant needs a within-person scatter it can invert.
PCA_DIMENSIONS = 200
# Directions the descriptor keeps (at most one fewer than the people it is fitted on).
DIMENSIONS = 100
# The within-person scatter is pulled this far towards its mean variance before it is
# inverted: with 2-3 photos per person it is estimated from few differences.
SHRINKAGE = 0.1
# The descriptor's share of the cosine of two joined embeddings (the network's is the rest).
# On LFW's held-out people 0.3 / 0.4 / 0.5 / 0.6 gave an EER of 22.4 / 21.7 / 21.1 / 21.1 %
# (25.7 % without), on ORL's unseen people 7.0 / 7.4 / 8.4 / - % (8.0 % without; seeds 0 and 1):
# 0.4 gains on both.
WEIGHT = 0.4
# The smallest face the histograms can describe: one block of 2 x 2 cells.
MIN_SIZE = 2 * CELL


def _hog(size: int) -> tuple[cv2.HOGDescriptor, int]:
    """OpenCV's descriptor for faces of ``size`` pixels, and where in the face its window starts."""
    side = size - size % CELL
    if side < MIN_SIZE:
        raise ValueError(f"gradient histograms need faces of at least {MIN_SIZE} pixels, got {size}")
    return cv2.HOGDescriptor((side, side), (2 * CELL, 2 * CELL), (CELL, CELL), (CELL, CELL), BINS), (size - side) // 2


def histogram_size(size: int) -> int:
    """Values in the gradient histograms of a face of ``size`` x ``size`` pixels."""
    return int(_hog(size)[0].getDescriptorSize())


def gradient_histograms(images: np.ndarray) -> np.ndarray:
    """Histograms of oriented gradients (N, F) float32 of preprocessed faces (N, S, S) in [0, 1].

    Each value is the square root of OpenCV's (the Hellinger mapping, which makes the
    Euclidean distance of histograms behave like a distance of distributions). Faces whose
    side is no multiple of 8 pixels are read in their centred part that is.
    """
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(f"expected preprocessed faces (N, S, S), got shape {images.shape}")
    hog, start = _hog(images.shape[1])
    side = images.shape[1] - images.shape[1] % CELL
    levels = np.clip(np.rint(images[:, start : start + side, start : start + side] * 255.0), 0, 255).astype(np.uint8)
    out = np.empty((len(images), hog.getDescriptorSize()), dtype=np.float32)
    for k, face in enumerate(levels):
        out[k] = hog.compute(np.ascontiguousarray(face)).ravel()
    return np.sqrt(np.maximum(out, 0.0))


def check_fittable(labels: np.ndarray, size: int) -> None:
    """ValueError unless a descriptor can be fitted on faces of ``size`` pixels of the people ``labels``."""
    histogram_size(size)
    people, counts = np.unique(np.asarray(labels), return_counts=True)
    if len(people) < 2 or counts.max() < 2:
        raise ValueError(f"a descriptor needs two people, one of them with two or more images; got "
                         f"{len(people)} people with at most {counts.max() if len(counts) else 0} images each")


def _within_scatter(z: np.ndarray, labels: np.ndarray) -> np.ndarray:
    centred = z.copy()
    for person in np.unique(labels):
        rows = labels == person
        centred[rows] -= z[rows].mean(axis=0)
    return centred.T @ centred / len(z)


def discriminant_projection(features: np.ndarray, labels: np.ndarray, *, dimensions: int = DIMENSIONS,
                            pca_dimensions: int = PCA_DIMENSIONS,
                            shrinkage: float = SHRINKAGE) -> tuple[np.ndarray, np.ndarray]:
    """(mean (F,), projection (F, D)) of a linear discriminant fitted on ``features`` (N, F) of people ``labels``.

    The features are centred and whitened on their ``pca_dimensions`` principal components;
    there the within-person scatter, pulled a share ``shrinkage`` in [0, 1] towards its mean
    variance, is whitened too; the projection keeps the ``dimensions`` directions of largest
    variance that remain (at most one fewer than the people), along which people differ most
    for what varies between photos of one person. Needs two people, one of them with two or
    more rows.
    """
    x = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    if x.ndim != 2 or labels.shape != (len(x),):
        raise ValueError(f"expected features (N, F) and N labels, got {x.shape} and {labels.shape}")
    if not np.isfinite(x).all():
        raise ValueError("the features hold NaN or infinity")
    check_fittable(labels, MIN_SIZE)
    people = np.unique(labels)
    if not 0.0 <= shrinkage <= 1.0:
        raise ValueError(f"shrinkage must be in [0, 1], got {shrinkage}")
    mean = x.mean(axis=0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    # Components of (numerically) no variance cannot be whitened.
    k = min(pca_dimensions, int(np.sum(s > s[0] * 1e-8)))
    whiten = vt[:k].T * (np.sqrt(len(x)) / s[:k])
    z = (x - mean) @ whiten
    within = _within_scatter(z, labels)
    within = (1.0 - shrinkage) * within + shrinkage * np.eye(k) * np.trace(within) / k
    values, vectors = np.linalg.eigh(within)
    if values[0] <= values[-1] * 1e-12:
        raise ValueError("the within-person scatter cannot be inverted: give more images per person, or more "
                         "people, or a shrinkage above 0")
    to_within_white = vectors / np.sqrt(values)
    w = z @ to_within_white
    _, _, vt2 = np.linalg.svd(w - w.mean(axis=0), full_matrices=False)
    kept = min(dimensions, len(people) - 1, k)
    return mean, whiten @ to_within_white @ vt2[:kept].T


@dataclass(frozen=True, eq=False)
class FaceDescriptor:
    """Gradient histograms of a face, projected by a discriminant: unit rows (N, size) float32.

    ``mean`` (F,) and ``projection`` (F, size) come from :meth:`fit`; ``weight`` in (0, 1)
    is the descriptor's share of the cosine of two joined embeddings (:meth:`join`).
    """

    mean: np.ndarray
    projection: np.ndarray
    weight: float = WEIGHT
    kind: str = "hog"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"descriptor kind must be one of {KINDS}, got {self.kind!r}")
        mean = np.asarray(self.mean, dtype=np.float32)
        projection = np.asarray(self.projection, dtype=np.float32)
        if mean.ndim != 1 or projection.ndim != 2 or projection.shape[0] != len(mean) or projection.shape[1] < 1:
            raise ValueError(f"a descriptor needs a mean (F,) and a projection (F, D), got {mean.shape} and "
                             f"{projection.shape}")
        if not (np.isfinite(mean).all() and np.isfinite(projection).all()):
            raise ValueError("the descriptor's mean and projection must be finite")
        if not (isinstance(self.weight, (int, float)) and 0.0 < self.weight < 1.0):
            raise ValueError(f"the descriptor's weight must be in (0, 1), got {self.weight!r}")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "projection", projection)
        object.__setattr__(self, "weight", float(self.weight))

    @classmethod
    def fit(cls, images: np.ndarray, labels: np.ndarray, *, dimensions: int = DIMENSIONS,
            weight: float = WEIGHT) -> FaceDescriptor:
        """The descriptor of preprocessed faces (N, S, S) of the people ``labels`` (see :func:`discriminant_projection`)."""
        mean, projection = discriminant_projection(gradient_histograms(images), labels, dimensions=dimensions)
        return cls(mean, projection, weight)

    @property
    def size(self) -> int:
        return int(self.projection.shape[1])

    def transform(self, images: np.ndarray) -> np.ndarray:
        """Unit rows (N, size) float32 of preprocessed faces (N, S, S) of the size it was fitted on."""
        histograms = gradient_histograms(images)
        if histograms.shape[1] != len(self.mean):
            raise ValueError(f"faces of {np.shape(images)[1]} pixels give {histograms.shape[1]} histogram values; "
                             f"the descriptor was fitted on faces giving {len(self.mean)}")
        projected = (histograms - self.mean) @ self.projection
        norms = np.linalg.norm(projected, axis=1, keepdims=True)
        return (projected / np.maximum(norms, np.finfo(np.float32).tiny)).astype(np.float32)

    def join(self, embeddings: np.ndarray, images: np.ndarray) -> np.ndarray:
        """The network's unit ``embeddings`` (N, E) of ``images`` joined with theirs: unit rows (N, E + size).

        Each part is scaled by the square root of its share, so the cosine of two joined
        rows is (1 - weight) times the network's cosine plus weight times the descriptor's.
        """
        return np.hstack([np.sqrt(1.0 - self.weight) * embeddings,
                          np.sqrt(self.weight) * self.transform(images)]).astype(np.float32)

    def to_dict(self) -> dict:
        """What a model file's metadata records besides the two arrays."""
        return {"kind": self.kind, "weight": self.weight, "cell": CELL, "bins": BINS}
