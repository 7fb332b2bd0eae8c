"""The open-set rule's score of a face for an identity known by several templates.

An identity's score weighs two cosines: with its most similar template, and with the unit
mean of its templates; in the models this release trains, half each. The best template
keeps a person recognisable from the one photo that resembles the face (on ORL, with the
network alone, the best template named people enrolled from 5 images right 84-94 % of the
time where the mean gave 62-80 %); the mean template averages out the light, pose and
expression of single photos, which the face's second view (the descriptor) does not learn
away. With it, LFW's held-out people enrolled from 5 photos were named right 66.3 % of the
time by the best template, 72.0 % by the mean and 72.5 % by half of each; ORL's unseen
people (seeds 0 / 1, the view at 0.2-0.3 of the cosine) 100 / 100 % by the best template,
98 / 98 % by the mean and 100 / 98 % by half of each (docs/experiments.md, "Mean and best
template"). An identity with one template scores that template's cosine. Each model keeps
the share of the best template its thresholds were set for (``FaceRecognizer.best_share``):
models written before this rule score by the best template alone (a share of 1).

The cosine with the mean template needs no mean vector: it is the sum of the face's
cosines with the templates over the length of the templates' sum, so every search that
has a face's cosines with all templates gets it from one more pass over them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BEST_SHARE", "check_best_share", "run_starts", "template_sum_norms", "identity_scores"]

# The best template's share of an identity's score in the models this release trains; the
# mean template's is the rest.
BEST_SHARE = 0.5


def run_starts(owners: np.ndarray) -> np.ndarray:
    """Where each run of equal ``owners`` (M,) starts: the identities' contiguous templates."""
    owners = np.asarray(owners)
    if not len(owners):
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])


def template_sum_norms(templates: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The length of the sum of each run's unit ``templates`` (M, d), runs starting at ``starts``,
    in the templates' float type.

    Never below a tiny positive value: templates summing to nothing (opposite faces of one
    person) give a mean cosine of 0 rather than a division by zero.
    """
    templates = np.asarray(templates)
    if not len(starts):
        return np.zeros(0, dtype=templates.dtype)
    sums = np.add.reduceat(templates.astype(np.float64, copy=False), starts, axis=0)
    return np.maximum(np.linalg.norm(sums, axis=1), 1e-12).astype(templates.dtype)


def check_best_share(best_share) -> float:
    """``best_share`` as a float, or ValueError unless it is a number in [0, 1]."""
    if isinstance(best_share, bool) or not isinstance(best_share, (int, float, np.floating)) \
            or not 0.0 <= best_share <= 1.0:
        raise ValueError(f"best_share must be a number in [0, 1], got {best_share!r}")
    return float(best_share)


def identity_scores(similarities: np.ndarray, starts: np.ndarray, sum_norms: np.ndarray, *,
                    best_share: float) -> np.ndarray:
    """Each face's score for each identity (N, runs), from its cosines with every template (N, M).

    ``starts`` and ``sum_norms`` describe the runs of templates as :func:`run_starts` and
    :func:`template_sum_norms` give them; ``best_share`` is the best template's share of
    the score (1: the best template alone).
    """
    best = np.maximum.reduceat(similarities, starts, axis=1)
    if best_share == 1.0:
        return best
    mean = np.add.reduceat(similarities, starts, axis=1) / sum_norms
    return (best_share * best + (1.0 - best_share) * mean).astype(similarities.dtype, copy=False)
