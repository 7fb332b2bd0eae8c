"""Model files: one ``.npz`` holding the weights and a JSON description of everything else.

The JSON (member ``metadata``) records the format and its version, the architecture,
the preprocessing, the people's names, the training settings, the history and the
open-set identities (the default thresholds, the enrolled people's names and template
counts); each weight array is the member ``param.<name>``, the trained people's templates
``open_set.templates`` with their labels ``open_set.template_labels``, and the enrolled
people's templates, one after the other, ``open_set.enrolled``; a model whose embeddings join
the network's with a descriptor's (version 4 on) keeps its ``descriptor.mean`` and
``descriptor.projection``, described under ``descriptor`` in the JSON; version 5 on records
the best template's share of an identity's score (``open_set.best_share``; 1 before), and
version 6 on how many of the cohort each face's offset averages over when scores are
normalized against a cohort (``open_set.cohort_nearest``; None, plain cosines, before) and
that cohort, ``open_set.cohort``.
Version 2 files kept one mean embedding per person: each loads as that person's only template. Version 1 files,
from before the open set, load with no templates, no threshold and nobody enrolled.
Files are read with pickling disabled, so opening a model file never runs code from it.
This module reads and writes the parts of a recognizer; :mod:`.recognizer` builds one from them.
"""

from __future__ import annotations

import json

import numpy as np

from ..data.preprocess import Preprocessor
from ..io.npz import METADATA, ModelFileError, check_format, read_metadata, read_npz, write_npz_atomically
from ..nn.network import Architecture, Network, non_finite_parameters
from .descriptor import FaceDescriptor
from .histograms import LAYOUT
from .cohort import check_nearest
from .identity import check_best_share

__all__ = ["FORMAT", "FORMAT_VERSION", "ModelFileError", "write_model", "read_model"]

FORMAT = "pyface-model"
# 4: the descriptor joined to open-set models' embeddings (an older pyface would embed
# without it and mismatch the templates, so it must refuse these files).
# 5: identities scored by their best and mean templates (an older pyface would score by the
# best template alone, higher, against thresholds set for this rule: it must refuse them).
# 6: scores normalized against the trained people (an older pyface would score plain cosines,
# higher, against thresholds set for normalized scores: it must refuse them).
FORMAT_VERSION = 6
_KIND = "pyface model"
_PARAM = "param."
_TEMPLATES = "open_set.templates"
_TEMPLATE_LABELS = "open_set.template_labels"
_CENTROIDS = "open_set.centroids"  # version 2: one mean embedding per trained person
_ENROLLED = "open_set.enrolled"
_COHORT = "open_set.cohort"
_DESCRIPTOR_MEAN = "descriptor.mean"
_DESCRIPTOR_PROJECTION = "descriptor.projection"


def write_model(path, *, network: Network, names: list[str], preprocessor: Preprocessor, training: dict,
                history: dict, templates: np.ndarray | None, template_labels: np.ndarray | None,
                threshold: float | None, verify_threshold: float | None, enrolled: dict[str, np.ndarray],
                best_share: float, calibration: dict | None = None,
                descriptor: FaceDescriptor | None = None, cohort: np.ndarray | None = None,
                cohort_nearest: int | None = None) -> None:
    """Write the parts of a recognizer to ``path`` atomically (the old file or the complete new one).

    Weights holding NaN or infinity are refused with ``ValueError``: such a model would
    only ever answer nonsense, and writing it could replace a good file.
    """
    broken = non_finite_parameters(network.params)
    if broken:
        raise ValueError(f"refusing to save a model with non-finite weights (in {', '.join(broken)})")
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": network.arch.to_dict(),
        "names": list(names),
        "preprocessor": preprocessor.to_dict(),
        "training": training,
        "history": history,
        "open_set": {"threshold": threshold, "verify_threshold": verify_threshold,
                     "enrolled": [{"name": n, "templates": len(t)} for n, t in enrolled.items()],
                     "calibration": calibration, "best_share": float(best_share),
                     "cohort_nearest": cohort_nearest},
        "descriptor": None if descriptor is None else descriptor.to_dict(),
    }
    arrays = {METADATA: np.array(json.dumps(metadata))}
    arrays.update({_PARAM + name: value for name, value in network.params.items()})
    if templates is not None:
        arrays[_TEMPLATES] = templates
        arrays[_TEMPLATE_LABELS] = template_labels
    if enrolled:
        arrays[_ENROLLED] = np.concatenate(list(enrolled.values()))
    if cohort is not None:
        arrays[_COHORT] = cohort
    if descriptor is not None:
        arrays[_DESCRIPTOR_MEAN] = descriptor.mean
        arrays[_DESCRIPTOR_PROJECTION] = descriptor.projection
    write_npz_atomically(path, arrays)


def _descriptor(metadata: dict, members: dict[str, np.ndarray]) -> FaceDescriptor | None:
    """The descriptor the file's embeddings join to the network's, or None (and always None before version 4)."""
    info = metadata.get("descriptor") if metadata["format_version"] >= 4 else None
    if info is None:
        return None
    if not isinstance(info, dict):
        raise ValueError("the descriptor must be a JSON object")
    described = {key: info.get(key) for key in LAYOUT}
    if described != LAYOUT:
        raise ValueError(f"the descriptor's histograms are laid out as {described}; this pyface reads {LAYOUT}")
    mean, projection = members.get(_DESCRIPTOR_MEAN), members.get(_DESCRIPTOR_PROJECTION)
    if mean is None or projection is None:
        raise ValueError(f"a descriptor is described but {_DESCRIPTOR_MEAN} or {_DESCRIPTOR_PROJECTION} is missing")
    for name, value in ((_DESCRIPTOR_MEAN, mean), (_DESCRIPTOR_PROJECTION, projection)):
        if value.dtype != np.float32:
            raise ValueError(f"{name} is {value.dtype}, expected float32")
    return FaceDescriptor(mean, projection, weight=info["weight"], kind=info["kind"])


def _open_set(metadata: dict, members: dict[str, np.ndarray]) -> dict:
    """Keyword arguments of FaceRecognizer for the open set: templates, thresholds, enrolled.

    Raises ValueError when the metadata and the arrays disagree.
    """
    version = metadata["format_version"]
    if version < 2:
        return {"best_share": 1.0}
    info = metadata["open_set"]
    people = info["enrolled"]
    # Version 2 kept one mean embedding per enrolled person.
    counts = [p["templates"] for p in people] if version >= 3 else [1] * len(people)
    if not all(isinstance(c, int) and c >= 1 for c in counts):
        raise ValueError("every enrolled person needs a positive number of templates")
    enrolled = members.get(_ENROLLED, np.zeros((0, 0), np.float32))
    if len(enrolled) != sum(counts):
        raise ValueError(f"{sum(counts)} enrolled templates listed but {len(enrolled)} stored")
    if version >= 3:
        templates, labels = members.get(_TEMPLATES), members.get(_TEMPLATE_LABELS)
    else:
        templates = members.get(_CENTROIDS)
        labels = None if templates is None else np.arange(len(templates))
    for name, value in ((_TEMPLATES, templates), (_ENROLLED, enrolled)):
        if value is not None and (value.dtype != np.float32 or not np.isfinite(value).all()):
            raise ValueError(f"{name} must be finite float32 values")
    if len({p["name"] for p in people}) != len(people):
        raise ValueError("an enrolled name appears twice")
    cohort_nearest = info["cohort_nearest"] if version >= 6 else None
    if cohort_nearest is not None:
        check_nearest(cohort_nearest, "cohort_nearest")
    cohort = members.get(_COHORT) if cohort_nearest is not None else None
    if cohort_nearest is not None and (cohort is None or cohort.dtype != np.float32 or not np.isfinite(cohort).all()):
        raise ValueError(f"scores are normalized against a cohort but {_COHORT} is missing or not finite float32")
    # A cosine lies in [-1, 1]; less the mean of two offsets (cosines too), in [-2, 2].
    bound = 1 if cohort_nearest is None else 2
    for key in ("threshold", "verify_threshold"):
        value = info[key]
        if value is not None and not (isinstance(value, (int, float)) and -bound <= value <= bound):
            raise ValueError(f"{key} must be a score in [-{bound}, {bound}], got {value!r}")
    ends = np.cumsum(counts)
    calibration = info.get("calibration")
    if calibration is not None and not isinstance(calibration, dict):
        raise ValueError("the thresholds' calibration must be a JSON object")
    best_share = info["best_share"] if version >= 5 else 1.0
    check_best_share(best_share)
    return {"templates": templates, "template_labels": labels, "threshold": info["threshold"],
            "calibration": calibration, "best_share": best_share, "cohort": cohort,
            "cohort_nearest": cohort_nearest, "verify_threshold": info["verify_threshold"],
            "enrolled": {p["name"]: enrolled[end - c : end] for p, c, end in zip(people, counts, ends)}}


def read_model(path) -> dict:
    """The parts of the recognizer written at ``path``, as keyword arguments of ``FaceRecognizer``.

    Raises :class:`ModelFileError` (a ``ValueError``) naming the file and the problem
    when it is corrupt, truncated, not a pyface model, or from a newer pyface.
    """
    members = read_npz(path, _KIND)
    metadata = read_metadata(path, members, _KIND)
    check_format(path, metadata, format=FORMAT, version=FORMAT_VERSION, kind=_KIND)
    params = {name[len(_PARAM):]: value for name, value in members.items() if name.startswith(_PARAM)}
    try:
        arch = Architecture.from_dict(metadata["architecture"])
        for name, value in params.items():
            if value.dtype != np.float32:
                raise ValueError(f"parameter {name} is {value.dtype}, expected float32")
        broken = non_finite_parameters(params)
        if broken:
            raise ValueError(f"non-finite weights in {', '.join(broken)}")
        network = Network(arch, {n: np.ascontiguousarray(v) for n, v in params.items()})
        return {"network": network, "names": metadata["names"],
                "preprocessor": Preprocessor.from_dict(metadata["preprocessor"]),
                "training": metadata.get("training"), "history": metadata.get("history"),
                "descriptor": _descriptor(metadata, members), **_open_set(metadata, members)}
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(path, f"inconsistent model file ({exc})") from exc
