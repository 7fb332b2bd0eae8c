"""A fixed second view of a face beside the network's: histograms of the face, projected onto
the directions that tell people apart.

A model's embedding is the network's summary of a face joined with this one, and its
classifier's answers are joined with how like each trained person's mean view a face looks.
The histograms (:mod:`.histograms`: of gradient orientations, of local binary patterns, of
local phase) describe a face without learning anything; a linear discriminant fitted on the
training people keeps the directions along which people differ more than photos of one person
do. On LFW's held-out people the general model's network alone named 40.7 % right from 5
photos each (by the best template) with an equal error rate of 25.7 %, the view of gradients
and patterns alone 68.8 % / 19.6 %, and the two joined at the share chosen on kept-out people
66.3 % / 18.7 %; the view of all five histograms, its directions weighted, alone 74.3 % /
15.7 % (docs/experiments.md, "A stronger second view", "Local phase, wider patterns and
weighted directions"). In the closed set the classifier named 71.8 % right, joined with the
view of gradients and patterns 85.7 %. The network, trained on 2-3 photos of each of 1,500
people, learns some of what tells faces apart; the descriptor, fitted in closed form, brings
more.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..nn.functional import unit_rows
from .histograms import KINDS, LAYOUT, face_histograms, histogram_size

__all__ = ["FaceDescriptor", "discriminant_projection", "check_fittable", "descriptor_kinds", "KINDS", "FITTING",
           "RICH", "OPEN_SET_CHOICE", "CLOSED_SET_CHOICE"]

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
# Every histogram (26,644 values on 64-pixel faces) is fitted on more components and
# directions, with less shrinkage, and its directions weighted (discriminant_projection's
# ``weighting``). The view alone on LFW's held-out people (fitted on the general model's
# training people, mirror images averaged in): "hog+lbp" as fitted for it EER 19.6 %; all of
# them, 600 / 400 dimensions, no shrinkage, weighting 0 / 2: 16.6 / 15.8 % (without local
# phase, weighting 0 / 1 / 2 / 3: 17.5 / 16.8 / 16.5 / 16.8 %); shrinkage 0.05 and weighting
# 2: 15.7 %, joined with the network at 0.8 / 0.9 of the cosine 15.6 / 15.5 %
# (docs/experiments.md, "Local phase, wider patterns and weighted directions").
RICH = "hog+lbp+lbp2+lbph+lpq"
# Kinds joined with "|": each is fitted, and the people kept out of training choose the one
# (and its share) that verifies them best, the first on a tie. The open-set recipe's: on ORL's
# few, closely cropped faces all five verify worse than both histograms (unseen people's EER
# 9.1 / 8.3 % against 6.9 / 7.8 %, seeds 0 / 1), on LFW's photos better (15.6 against 18.7 %);
# the kept-out people chose both histograms on ORL (both seeds) and all five on LFW (their EER
# 14.1 against 16.5 %).
OPEN_SET_CHOICE = "hog+lbp|" + RICH
# The closed set's: nobody is kept out to choose, so the first is fitted wherever the faces can
# give it (32 pixels or more) and both histograms on smaller faces. Joined to the classifier,
# all five named 86.9 / 85.3 % of LFW's held-out people's test photos right, both histograms
# 85.7 / 84.6 % (seeds 0 / 1, the same networks; docs/experiments.md, "All five histograms
# for the closed set").
CLOSED_SET_CHOICE = RICH + "|hog+lbp"
# How each kind is fitted where its caller does not say: discriminant_projection's options.
FITTING = {**{kind: {"pca_dimensions": PCA_DIMENSIONS, "dimensions": DIMENSIONS, "shrinkage": SHRINKAGE,
                     "weighting": 0.0} for kind in ("hog", "lbp", "hog+lbp")},
           RICH: {"pca_dimensions": 600, "dimensions": 400, "shrinkage": 0.05, "weighting": 2.0}}
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


def descriptor_kinds(choice: str) -> list[str]:
    """The kinds of ``choice``: one of ``KINDS``, or several joined with "|" (see ``OPEN_SET_CHOICE``)."""
    kinds = str(choice).split("|")
    if not all(kind in KINDS for kind in kinds) or len(set(kinds)) != len(kinds):
        raise ValueError(f"descriptor must be one of {KINDS}, or several of them joined with '|', got {choice!r}")
    return kinds


def check_fittable(labels: np.ndarray, size: int, kind: str = "hog") -> None:
    """ValueError unless every descriptor of ``kind`` (:func:`descriptor_kinds`) can be fitted on faces
    of ``size`` pixels of the people ``labels``."""
    for one in descriptor_kinds(kind):
        histogram_size(size, one)
    _check_people(labels)


def _within_scatter(z: np.ndarray, labels: np.ndarray) -> np.ndarray:
    centred = z.copy()
    for person in np.unique(labels):
        rows = labels == person
        centred[rows] -= z[rows].mean(axis=0)
    return centred.T @ centred / len(z)


def _principal_axes(centred: np.ndarray, most: int) -> tuple[np.ndarray, np.ndarray]:
    """(singular values (k,), right singular vectors (k, F)) of ``centred`` (N, F): the ``most``
    largest, leaving out those of (numerically) no variance, which cannot be whitened.

    From the eigenvectors of the smaller of its two Gram matrices: for 4,000 faces of 27,000
    histogram values each this takes seconds where a singular value decomposition took minutes.
    Eigenvalues are squares of singular values, so the smallest trusted is 1e-6 of the largest
    singular value rather than the 1e-8 a decomposition could resolve.
    """
    n, f = centred.shape
    values, vectors = np.linalg.eigh(centred.T @ centred if f <= n else centred @ centred.T)
    values, vectors = values[::-1], vectors[:, ::-1]
    s = np.sqrt(np.maximum(values, 0.0))
    k = min(most, int(np.sum(s > s[0] * 1e-6)))
    s = s[:k]
    vt = vectors[:, :k].T if f <= n else (vectors[:, :k].T @ centred) / s[:, None]
    return s, vt


def discriminant_projection(features: np.ndarray, labels: np.ndarray, *, dimensions: int = DIMENSIONS,
                            pca_dimensions: int = PCA_DIMENSIONS, shrinkage: float = SHRINKAGE,
                            weighting: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(mean (F,), projection (F, D)) of a linear discriminant fitted on ``features`` (N, F) of people ``labels``.

    The features are centred and whitened on their ``pca_dimensions`` principal components;
    there the within-person scatter, pulled a share ``shrinkage`` in [0, 1] towards its mean
    variance, is whitened too; the projection keeps the ``dimensions`` directions of largest
    variance that remain (at most one fewer than the people), along which people differ most
    for what varies between photos of one person. Each direction is then scaled by
    ``(t / (1 + t)) ** weighting`` (``weighting`` >= 0; 0 leaves them alike), t its variance in
    units of the (shrunk) within-person variance: in cosines of the projected rows, directions along
    which photos of one person differ nearly as much as people do count less (much as the
    cross term of a joint Bayesian model weighs them). Needs two people, one of them with two
    or more rows.
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
    if not (np.isfinite(weighting) and weighting >= 0.0):
        raise ValueError(f"weighting must be a finite number >= 0, got {weighting}")
    mean = x.mean(axis=0)
    s, vt = _principal_axes(x - mean, pca_dimensions)
    whiten = vt.T * (np.sqrt(len(x)) / s)
    k = len(s)
    z = (x - mean) @ whiten
    within = _within_scatter(z, labels)
    within = (1.0 - shrinkage) * within + shrinkage * np.eye(k) * np.trace(within) / k
    values, vectors = np.linalg.eigh(within)
    if values[0] <= values[-1] * 1e-12:
        raise ValueError("the within-person scatter cannot be inverted: give more images per person, or more "
                         "people, or a shrinkage above 0")
    to_within_white = vectors / np.sqrt(values)
    w = z @ to_within_white
    _, s2, vt2 = np.linalg.svd(w - w.mean(axis=0), full_matrices=False)
    kept = min(dimensions, len(people) - 1, k)
    variance = s2[:kept] ** 2 / len(x)
    return mean, whiten @ to_within_white @ vt2[:kept].T * (variance / (1.0 + variance)) ** weighting


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
    def fit(cls, images: np.ndarray, labels: np.ndarray, *, kind: str = "hog", dimensions: int | None = None,
            pca_dimensions: int | None = None, shrinkage: float | None = None, weighting: float | None = None,
            weight: float = WEIGHT) -> FaceDescriptor:
        """The descriptor ``kind`` of preprocessed faces (N, S, S) of the people ``labels``: the
        :func:`discriminant_projection` of their histograms, at most ``dimensions`` directions of
        ``pca_dimensions`` components, ``shrinkage`` and ``weighting`` as it takes them. Each
        left at None is the kind's measured choice, ``FITTING[kind]``."""
        if kind not in KINDS:
            raise ValueError(f"descriptor kind must be one of {KINDS}, got {kind!r}")
        given = {"dimensions": dimensions, "pca_dimensions": pca_dimensions, "shrinkage": shrinkage,
                 "weighting": weighting}
        options = {**FITTING[kind], **{name: value for name, value in given.items() if value is not None}}
        mean, projection = discriminant_projection(face_histograms(images, kind), labels, **options)
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
