"""Face data sets: loading a folder-per-person tree, holding images with labels, splitting."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .images import decode_image, natural_key
from .preprocess import Preprocessor
from .split import stratified_split

__all__ = ["FaceDataset", "load_images", "from_arrays", "select_people"]


class FaceDataset:
    """Preprocessed face images with person labels.

    Attributes
    ----------
    images : ndarray, float32, shape (N, size, size), values in [0, 1]
    labels : ndarray, int64, shape (N,)
        Index into ``names`` of the person in each image.
    names : list of str
        Person names, indexed by label. Kept whole when the data set is subset.
    paths : list of str
        Source file of each image, "" for images given as arrays.
    preprocessor : Preprocessor
        What turned the source images into ``images``.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        names: Sequence[str],
        paths: Sequence[str],
        preprocessor: Preprocessor,
    ) -> None:
        images = np.asarray(images)
        labels = np.asarray(labels)
        if images.dtype != np.float32 or images.ndim != 3:
            raise ValueError(f"images must be float32 (N, size, size), got {images.dtype} {images.shape}")
        if labels.shape != (len(images),) or (labels.size and not np.issubdtype(labels.dtype, np.integer)):
            raise ValueError(
                f"labels must be integers of shape ({len(images)},), got {labels.dtype} {labels.shape}"
            )
        if len(paths) != len(images):
            raise ValueError(f"got {len(paths)} paths for {len(images)} images")
        if labels.size and (labels.min() < 0 or labels.max() >= len(names)):
            raise ValueError(f"labels must lie in [0, {len(names)}), the range of names")
        self.images = images
        self.labels = labels.astype(np.int64)
        self.names = list(names)
        self.paths = list(paths)
        self.preprocessor = preprocessor

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, idx) -> FaceDataset:
        """Subset by index array, boolean mask or slice.

        ``names`` stay whole so that labels keep their meaning.
        """
        if isinstance(idx, (int, np.integer)):
            raise TypeError(
                "a FaceDataset is indexed by an array, mask or slice; use dataset[[i]] for one image"
            )
        if isinstance(idx, slice):
            positions = np.arange(len(self))[idx]
        else:
            idx = np.asarray(idx)
            if idx.dtype == bool:
                if idx.shape != (len(self),):
                    raise IndexError(f"boolean mask has shape {idx.shape}, expected ({len(self)},)")
                positions = np.flatnonzero(idx)
            elif idx.size == 0:
                positions = np.empty(0, dtype=np.int64)
            elif np.issubdtype(idx.dtype, np.integer) and idx.ndim == 1:
                positions = idx
            else:
                raise TypeError(f"cannot index a FaceDataset with {idx.dtype} array of shape {idx.shape}")
        return FaceDataset(
            self.images[positions],
            self.labels[positions],
            self.names,
            [self.paths[p] for p in positions],
            self.preprocessor,
        )

    def split(self, *, test_size: float = 0.2, seed: int | None = 0) -> tuple[FaceDataset, FaceDataset]:
        """Random train/test split stratified by person.

        Each person gives ``round(test_size * n)`` of their n images to the test set, but
        never all of them, so every tested person is also trained on. Both parts keep
        the data set's order. The same seed gives the same split.
        """
        if not 0.0 < test_size < 1.0:
            raise ValueError(f"test_size must be a fraction in (0, 1), got {test_size!r}")
        train, test = stratified_split(self.labels, test_size, np.random.default_rng(seed))
        return self[train], self[test]

    def split_first(self, k: int) -> tuple[FaceDataset, FaceDataset]:
        """Per person, the first k images in data set order go to train and the rest to test."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
            raise ValueError(f"k must be a non-negative integer, got {k!r}")
        is_train = np.zeros(len(self), dtype=bool)
        for label in np.unique(self.labels):
            is_train[np.flatnonzero(self.labels == label)[:k]] = True
        return self[is_train], self[~is_train]

    def __repr__(self) -> str:
        n_people = len(np.unique(self.labels))
        return f"FaceDataset({len(self)} images of {n_people} people, preprocessor={self.preprocessor!r})"


# A folder of thousands of bad files gets a message of a readable length, not thousands of lines.
_PROBLEMS_SHOWN = 20


def _listing(problems: list[str]) -> str:
    """The first problems, one per indented line, and how many more there are."""
    shown = "".join(f"\n  {problem}" for problem in problems[:_PROBLEMS_SHOWN])
    hidden = len(problems) - _PROBLEMS_SHOWN
    return shown + (f"\n  ... and {hidden} more" if hidden > 0 else "")


def _report(problems: list[str], *, strict: bool) -> None:
    if not problems:
        return
    message = f"{len(problems)} problem(s) while loading images:" + _listing(problems)
    if strict:
        raise ValueError(message)
    warnings.warn(message, stacklevel=3)


def load_images(
    root: str | Path,
    *,
    preprocessor: Preprocessor | None = None,
    strict: bool = False,
    extensions: Sequence[str] | None = None,
    people: Sequence[str] | None = None,
) -> FaceDataset:
    """Load a folder-per-person tree of face images (ORL, Extended Yale B, LFW layouts).

    ``root/<person>/<image>``: each subfolder of ``root`` is one person, named after the
    folder. Folders and files are taken in natural order (s2 before s10, 2.pgm before
    10.pgm), so labels are stable. Files directly under ``root`` and hidden entries are
    ignored.

    Parameters
    ----------
    root : path
        The folder holding one subfolder per person.
    preprocessor : Preprocessor or None
        Applied to every image; None means ``Preprocessor()``.
    strict : bool
        Raise instead of warning about unreadable files and persons without images.
    extensions : sequence of str or None
        Only read files with these suffixes (case-insensitive, e.g. ``[".pgm"]``); None
        reads every file, so a stray non-image file is reported rather than passed over.
    people : sequence of str or None
        Only read the person folders of these names (each must exist); None reads all.

    Returns
    -------
    FaceDataset
        Labels 0..K-1 for the K persons with at least one readable image.

    Raises
    ------
    FileNotFoundError
        ``root`` is not a folder.
    ValueError
        No person with a readable image; or, with ``strict=True``, any unreadable file
        or person folder without a readable image.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"face image folder not found: {root}")
    preprocessor = Preprocessor() if preprocessor is None else preprocessor
    wanted = None
    if extensions is not None:
        wanted = {("" if e.startswith(".") else ".") + e.lower() for e in extensions}

    def visible(entries):
        shown = (p for p in entries if not p.name.startswith("."))
        return sorted(shown, key=lambda p: natural_key(p.name))

    folders = visible(p for p in root.iterdir() if p.is_dir())
    if people is not None:
        chosen = set(people)
        missing = sorted(chosen - {f.name for f in folders})
        if missing:
            raise ValueError(f"no person folder under {root} for {', '.join(missing[:5])}"
                             + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
        folders = [f for f in folders if f.name in chosen]
    images, labels, names, paths, problems = [], [], [], [], []
    for folder in folders:
        files = [p for p in visible(folder.iterdir()) if p.is_file()]
        if wanted is not None:
            files = [p for p in files if p.suffix.lower() in wanted]
        found = 0
        for path in files:
            raw = decode_image(np.fromfile(path, dtype=np.uint8))
            if raw is None:
                problems.append(f"{path}: not a readable image")
                continue
            try:
                image = preprocessor(raw)
            except (TypeError, ValueError) as error:
                problems.append(f"{path}: {error}")
                continue
            images.append(image)
            labels.append(len(names))
            paths.append(str(path))
            found += 1
        if found:
            names.append(folder.name)
        else:
            problems.append(f"{folder}: person folder without a readable image")

    if not names:
        raise ValueError(f"no person folder with a readable image under {root}{_listing(problems)}")
    _report(problems, strict=strict)
    return FaceDataset(np.stack(images), np.array(labels, dtype=np.int64), names, paths, preprocessor)


def from_arrays(
    images: np.ndarray | Sequence[np.ndarray],
    labels: np.ndarray | Sequence[int],
    *,
    names: Sequence[str] | None = None,
    preprocessor: Preprocessor | None = None,
) -> FaceDataset:
    """Build a data set from images already in memory.

    Parameters
    ----------
    images : (N, H, W) array or sequence of images
        uint8, uint16, or floating values in [0, 1]; anything ``Preprocessor`` accepts.
    labels : (N,) integers
        Person of each image, 0 <= label < len(names).
    names : sequence of str or None
        Person names indexed by label; None names each label by its number.
    preprocessor : Preprocessor or None
        Applied to every image; None means ``Preprocessor()``.
    """
    preprocessor = Preprocessor() if preprocessor is None else preprocessor
    labels = np.asarray(labels)
    if labels.ndim != 1 or (labels.size and not np.issubdtype(labels.dtype, np.integer)):
        raise ValueError(f"labels must be a 1-D integer array, got {labels.dtype} {labels.shape}")
    if len(labels) != len(images):
        raise ValueError(f"got {len(labels)} labels for {len(images)} images")
    if labels.size and labels.min() < 0:
        raise ValueError("labels must be non-negative")
    if names is None:
        names = [str(i) for i in range(int(labels.max()) + 1 if labels.size else 0)]
    return FaceDataset(preprocessor.transform(images), labels, names, [""] * len(labels), preprocessor)


def select_people(dataset: FaceDataset, names) -> FaceDataset:
    """The images of the people ``names`` only, with ``names`` (in that order) as the data set's names.

    Training on it makes a model of exactly these people, unlike indexing, which keeps
    every name of the original data set.
    """
    names = [str(n) for n in names]
    missing = sorted(set(names) - set(dataset.names))
    if missing:
        raise ValueError(f"the data set has nobody called {missing}")
    index = {name: k for k, name in enumerate(names)}
    keep = np.array([dataset.names[k] in index for k in dataset.labels], dtype=bool)
    subset = dataset[keep]
    labels = np.array([index[subset.names[k]] for k in subset.labels], dtype=np.int64)
    return FaceDataset(subset.images, labels, names, subset.paths, subset.preprocessor)
