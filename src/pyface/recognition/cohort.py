"""Scores normalized against a cohort: how much more alike two faces are than each is to strangers.

Some faces look a little like everyone (a blurred, pale or frontal-average photo), and their
cosine with anybody is high; a threshold that keeps strangers out must then also turn away the
right person's sharper photos. Each face's *offset* is the mean of its ``nearest`` highest
cosines with a cohort of people it is not (the model's trained people, each their unit mean
template); a normalized score is the cosine less the mean of the two offsets (for an identity,
the mean offset of its templates). This is the mean half of adaptive score normalization
(speaker verification's AS-norm) and needs no change to the embeddings: they stay unit rows
whose dot product is the cosine.

Offline on the general model's embeddings of LFW's 96 held-out people (all pairs of their
photos): EER 15.63 -> 14.69 %, named right from 5 photos 76.6 -> 78.2 %, against the 1,218
trained people's means and the 50 nearest. Against their 3,870 training faces: 14.66 %;
dividing by the spread of the nearest as well (AS-norm's other half): 14.9-15.1 %;
subtracting the nearest members' mean from the embeddings themselves: 16.1-21.4 %
(docs/experiments.md, "Scores against a cohort").
"""

from __future__ import annotations

import numpy as np

from ..nn.functional import unit_rows

__all__ = ["NEAREST", "check_nearest", "cohort_means", "cohort_offsets", "identity_offsets", "normalized"]

# The cohort's members each face's offset averages over (LFW's held-out people, 1,218 trained
# people's means, 25 / 50 / 100 / 200 nearest: EER 14.70 / 14.69 / 14.75 / 14.75 %).
NEAREST = 50
# Cohort rows per block of the offsets' products: a block's cosines stay near this many floats.
_BLOCK_FLOATS = 1 << 22


def check_nearest(nearest, name: str = "nearest") -> int:
    """``nearest`` as an int, or ValueError (naming it ``name``) unless it is a positive integer."""
    if isinstance(nearest, bool) or not isinstance(nearest, (int, np.integer)) or nearest < 1:
        raise ValueError(f"{name} must be a positive integer, got {nearest!r}")
    return int(nearest)


def cohort_means(templates: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The cohort of the people ``labels`` (n,): each one's unit mean of their unit ``templates``
    (n, d), float32 (people, d), in the order of their labels."""
    labels = np.asarray(labels)
    people, where = np.unique(labels, return_inverse=True)
    sums = np.zeros((len(people), np.shape(templates)[1]), dtype=np.float64)
    np.add.at(sums, where, np.asarray(templates, dtype=np.float64))
    return unit_rows(sums).astype(np.float32)


def cohort_offsets(embeddings: np.ndarray, cohort: np.ndarray, *, nearest: int = NEAREST) -> np.ndarray:
    """Each unit row of ``embeddings`` (N, d): the mean of its ``nearest`` highest cosines with
    the rows of ``cohort`` (C, d) (all of them when C is smaller), float64 (N,)."""
    embeddings = np.asarray(embeddings, dtype=np.float32)
    cohort = np.asarray(cohort, dtype=np.float32)
    nearest = check_nearest(nearest)
    if not len(cohort):
        raise ValueError("a cohort needs at least one member")
    take = min(nearest, len(cohort))
    out = np.empty(len(embeddings), dtype=np.float64)
    block = max(1, _BLOCK_FLOATS // len(cohort))
    for start in range(0, len(embeddings), block):
        cosines = embeddings[start : start + block] @ cohort.T
        top = np.partition(cosines, len(cohort) - take, axis=1)[:, len(cohort) - take :]
        out[start : start + block] = top.astype(np.float64).mean(axis=1)
    return out


def identity_offsets(offsets: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Each identity's offset: the mean of its templates' ``offsets`` (M,), identities' templates
    in runs starting at ``starts`` (as ``pyface.recognition.identity.run_starts`` gives them)."""
    offsets = np.asarray(offsets, dtype=np.float64)
    if not len(starts):
        return np.zeros(0)
    lengths = np.diff(np.r_[starts, len(offsets)])
    return np.add.reduceat(offsets, starts) / lengths


def normalized(scores: np.ndarray, faces: np.ndarray, identities: np.ndarray) -> np.ndarray:
    """``scores`` (N, P) of N faces against P identities (or faces), less the mean of each
    face's offset (``faces``, (N,)) and each identity's (``identities``, (P,)); in the scores'
    float type."""
    scores = np.asarray(scores)
    shift = 0.5 * (np.asarray(faces, dtype=np.float64)[:, None] + np.asarray(identities, dtype=np.float64)[None, :])
    return (scores - shift).astype(scores.dtype, copy=False)
