"""A fixed second view of a face beside the network's: histograms of the face, projected onto
the directions that tell people apart.

A model's embedding is the network's summary of a face joined with this one, and its
classifier's answers are joined with how like each trained person's mean view a face looks.
The histograms (:mod:`.histograms`: of gradient orientations, of local binary patterns, or
both) describe a face without learning anything; a linear discriminant fitted on the training
people keeps the directions along which people differ more than photos of one person do. On
LFW's held-out people the general model's network alone named 40.7 % right from 5 photos
each with an equal error rate of 25.7 %, both histograms' view alone 68.8 % / 19.6 %, and
the two joined at the share chosen on kept-out people 66.3 % / 18.7 %; in the closed set
the classifier named 71.8 % right, joined with the view 85.7 % (docs/experiments.md, "A
stronger second view"): the network, trained on 2-3 photos of each of 1,500 people, learns
some of what tells faces apart, and the descriptor, fitted in closed form, brings more.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..nn.functional import unit_rows
from .histograms import KINDS, LAYOUT, face_histograms, histogram_size

__all__ = ["FaceDescriptor", "discriminant_projection", "check_fittable", "KINDS"]

# Principal components kept before the discriminant (of 1,764 gradient and 3,776 pattern
# histogram values on 64-pixel faces): the discriminant needs a within-person scatter it can
# invert. Directions the descriptor keeps (at most one fewer than the people it is fitted on).
# On LFW's held-out people, "hog+lbp" alone (mirror images averaged in), 200 / 100, 300 / 200,
# 400 / 300 and 500 / 300: EER 19.4 / 19.4 / 19.6 / 19.4 %, named right from 5 photos 63.0 /
# 68.9 / 68.8 / 67.1 %; fitted on the pool's people with 1-3 photos and judged on those with
# 4 or more, EER 18.9 / 18.7 / 18.5 / 19.0 % (docs/experiments.md, "A stronger second view").
PCA_DIMENSIONS = 400
DIMENSIONS = 300
# The within-person scatter is pulled this far towards its mean variance before it is
# inverted: with 2-3 photos per person it is estimated from few differences.
SHRINKAGE = 0.1
# The descriptor's share of the cosine of two joined embeddings (the network's is the rest)
# where no people kept out of training choose it (pyface.recognition.references.DESCRIPTOR_WEIGHTS).
# Gradient histograms (100 directions of 200 components, one face) on LFW's held-out people,
# w = 0.3 / 0.4 / 0.5 / 0.6: EER 22.4 / 21.7 / 21.1 / 21.1 % (25.7 % without); on ORL's unseen
# people 7.3 / 7.8 / 8.4 / 10.4 % (seed 0) and 6.4 / 7.1 / 8.4 / 9.7 % (seed 1), against 7.8 /
# 8.3 % without.
WEIGHT = 0.4
# How strongly the descriptor's cosine with each trained person's mean view moves the
# classifier's answer: the probabilities are proportional to the classifier's times
# exp(CLASS_SCALE x cosine). On LFW's 96 held-out people (80/20, "hog+lbp", seed 0) the
# classifier alone named 71.8 % of the test photos right, the nearest mean view alone 82.2 %,
# both at a scale of 20 / 40 / 60 / 120: 82.6 / 84.6 / 85.7 / 85.7 % (docs/experiments.md,
# "A stronger second view").
CLASS_SCALE = 60.0


def _check_people(labels: np.ndarray) -> None:
    people, counts = np.unique(np.asarray(labels), return_counts=True)
    if len(people) < 2 or counts.max() < 2:
        raise ValueError(f"a descriptor needs two people, one of them with two or more images; got "
                         f"{len(people)} people with at most {counts.max() if len(counts) else 0} images each")


def check_fittable(labels: np.ndarray, size: int, kind: str = "hog") -> None:
    """ValueError unless a descriptor ``kind`` can be fitted on faces of ``size`` pixels of the people ``labels``."""
    histogram_size(size, kind)
    _check_people(labels)


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
    _check_people(labels)
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
    """The histograms ``kind`` of a face (:mod:`.histograms`), projected by a discriminant: unit rows (N, size).

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
    def fit(cls, images: np.ndarray, labels: np.ndarray, *, kind: str = "hog", dimensions: int = DIMENSIONS,
            weight: float = WEIGHT) -> FaceDescriptor:
        """The descriptor ``kind`` of preprocessed faces (N, S, S) of the people ``labels``
        (:func:`discriminant_projection` of their histograms, ``dimensions`` directions at most)."""
        mean, projection = discriminant_projection(face_histograms(images, kind), labels, dimensions=dimensions)
        return cls(mean, projection, weight, kind)

    @property
    def size(self) -> int:
        return int(self.projection.shape[1])

    def _project(self, images: np.ndarray) -> np.ndarray:
        histograms = face_histograms(images, self.kind)
        if histograms.shape[1] != len(self.mean):
            raise ValueError(f"faces of {np.shape(images)[1]} pixels give {histograms.shape[1]} histogram values; "
                             f"the descriptor was fitted on faces giving {len(self.mean)}")
        return unit_rows(((histograms - self.mean) @ self.projection).astype(np.float32, copy=False))

    def transform(self, images: np.ndarray) -> np.ndarray:
        """Unit rows (N, size) float32 of preprocessed faces (N, S, S) of the size it was fitted on.

        Each face's row is the mean of its own and its mirror image's (re-scaled to unit
        length): a face seen a little from the left then looks more like one seen from the
        right. On LFW's held-out people, "hog+lbp": EER 20.6 -> 19.4 %, named right from 5
        photos 59.4 -> 63.0 % (fitting on mirror images as well did not add to it).
        """
        images = np.asarray(images)
        return unit_rows(self._project(images) + self._project(images[:, :, ::-1]))

    def part(self, joined: np.ndarray) -> np.ndarray:
        """The descriptor's unit rows (N, size) in embeddings (N, E + size) made by :meth:`join`."""
        return unit_rows(np.asarray(joined, dtype=np.float32)[:, -self.size :])

    def class_views(self, joined: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
        """Each class's mean view: unit rows (classes, size) of the mean of its faces' views.

        ``joined`` (M, E + size) are embeddings of the classes' own faces, ``labels`` (M,)
        their classes in [0, classes); a class without faces gets a row of zeros.
        """
        means = np.zeros((classes, self.size), dtype=np.float32)
        np.add.at(means, np.asarray(labels), self.part(joined))
        return unit_rows(means)

    def class_scores(self, images: np.ndarray, views: np.ndarray) -> np.ndarray:
        """What the descriptor adds to the classifier's log-probabilities of ``images`` (N, S, S):
        ``CLASS_SCALE`` times their cosines with the classes' ``views`` (:meth:`class_views`), (N, classes)."""
        return CLASS_SCALE * (self.transform(images) @ views.T).astype(np.float64)

    def join(self, embeddings: np.ndarray, images: np.ndarray) -> np.ndarray:
        """The network's unit ``embeddings`` (N, E) of ``images`` joined with theirs: unit rows (N, E + size).

        Each part is scaled by the square root of its share, so the cosine of two joined
        rows is (1 - weight) times the network's cosine plus weight times the descriptor's.
        """
        return self.join_views(embeddings, self.transform(images))

    def join_views(self, embeddings: np.ndarray, views: np.ndarray) -> np.ndarray:
        """:meth:`join` for faces whose views (N, size) were already made by :meth:`transform`."""
        return np.hstack([np.sqrt(1.0 - self.weight) * embeddings, np.sqrt(self.weight) * views]).astype(np.float32)

    def to_dict(self) -> dict:
        """What a model file's metadata records besides the two arrays."""
        return {"kind": self.kind, "weight": self.weight, **LAYOUT}
