"""The images a run trains on: the data set, the validation part, the blended people."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.dataset import FaceDataset, from_arrays, select_people
from ..data.split import stratified_split
from .blend import blend_people
from .settings import TrainingSettings


def as_dataset(data, labels, names, preprocessor) -> FaceDataset:
    """``data`` as a FaceDataset: as it is, or images with labels through ``preprocessor``."""
    if isinstance(data, FaceDataset):
        if labels is not None or names is not None or preprocessor is not None:
            raise TypeError("a FaceDataset brings its labels, names and preprocessing; pass them only with images")
        return data
    if labels is None:
        raise TypeError("train(images, labels): labels are required with image arrays")
    labels = np.asarray(labels)
    if names is None and not np.issubdtype(labels.dtype, np.integer):
        names = [str(n) for n in np.unique(labels)]
        labels = np.searchsorted(np.unique(labels), labels)
    return from_arrays(data, labels, names=names, preprocessor=preprocessor)


def calibration_people(dataset: FaceDataset, fraction: float,
                       rng: np.random.Generator) -> tuple[FaceDataset, FaceDataset]:
    """(people to train on, people kept out to measure thresholds on), each a FaceDataset of its people.

    ``fraction`` of the people with at least two images (at least two people) are kept
    out; at least two people must remain to train on. The share is of those people, not of
    all: people with one image cannot be measured on (no pair of their own), and counting
    them would keep out nearly every person with more on a pool of mostly single photos.
    """
    present, counts = np.unique(dataset.labels, return_counts=True)
    eligible = [dataset.names[k] for k in present[counts >= 2]]
    n_out = max(2, int(np.floor(fraction * len(eligible) + 0.5)))
    if len(eligible) < n_out or len(present) - n_out < 2:
        raise ValueError(f"open_set=True keeps {n_out} people with two or more images out of training to set "
                         f"its thresholds, and needs two more to train on; the data has {len(present)} people, "
                         f"{len(eligible)} of them with two or more images")
    kept_out = set(rng.choice(eligible, size=n_out, replace=False).tolist())
    trained = [dataset.names[k] for k in present if dataset.names[k] not in kept_out]
    return select_people(dataset, trained), select_people(dataset, sorted(kept_out, key=dataset.names.index))


@dataclass(frozen=True)
class RunData:
    """Images and labels of a run: ``train`` (real people), ``validation``, and ``fit`` (train + blended)."""

    train: tuple[np.ndarray, np.ndarray]
    validation: tuple[np.ndarray, np.ndarray]
    fit: tuple[np.ndarray, np.ndarray]


def _validation_arrays(validation: FaceDataset, dataset: FaceDataset) -> tuple[np.ndarray, np.ndarray]:
    if validation.preprocessor != dataset.preprocessor:
        raise ValueError("validation_data must be preprocessed like the training data")
    index = {name: k for k, name in enumerate(dataset.names)}
    unknown = sorted({validation.names[k] for k in validation.labels} - set(index))
    if unknown:
        raise ValueError(f"validation_data has people absent from the training data: {unknown}")
    labels = np.array([index[validation.names[k]] for k in validation.labels], dtype=np.int64)
    return np.asarray(validation.images, dtype=np.float32), labels


def run_data(dataset: FaceDataset, validation_data: FaceDataset | None, settings: TrainingSettings,
             rngs: dict[str, np.random.Generator]) -> RunData:
    """Split off the validation images (given, or ``validation_fraction`` of each person) and add blended people."""
    images = np.asarray(dataset.images, dtype=np.float32)
    y = np.asarray(dataset.labels, dtype=np.int64)
    if validation_data is not None:
        train, validation = (images, y), _validation_arrays(validation_data, dataset)
    else:
        if settings.validation_fraction > 0:
            kept, held_out = stratified_split(y, settings.validation_fraction, rngs["split"])
        else:
            kept, held_out = np.arange(len(y)), np.array([], dtype=np.int64)
        train, validation = (images[kept], y[kept]), (images[held_out], y[held_out])
    fit = train
    if settings.blended_people:
        x_blend, y_blend = blend_people(*train, settings.blended_people, len(dataset.names), rngs["blend"])
        fit = (np.concatenate([train[0], x_blend]), np.concatenate([train[1], y_blend]))
    return RunData(train, validation, fit)
