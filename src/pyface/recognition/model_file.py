"""Model files: one ``.npz`` holding the weights and a JSON description of everything else.

The JSON (member ``metadata``) records the format and its version, the architecture,
the preprocessing, the people's names, the training settings, the history and the
open-set identities (the default thresholds, the enrolled people's names and template
counts); each weight array is the member ``param.<name>``, the trained people's templates
``open_set.templates`` with their labels ``open_set.template_labels``, and the enrolled
people's templates, one after the other, ``open_set.enrolled``. Version 2 files kept one
mean embedding per person: each loads as that person's only template. Version 1 files,
from before the open set, load with no templates, no threshold and nobody enrolled.
Files are read with pickling disabled, so opening a model file never runs code from it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
import zlib

import numpy as np

from ..nn.network import Architecture, Network
from ..data.preprocess import Preprocessor
from ..recognition.recognizer import FaceRecognizer

FORMAT = "pyface-model"
FORMAT_VERSION = 3
_META = "metadata"
_PARAM = "param."
_TEMPLATES = "open_set.templates"
_TEMPLATE_LABELS = "open_set.template_labels"
_CENTROIDS = "open_set.centroids"  # version 2: one mean embedding per trained person
_ENROLLED = "open_set.enrolled"


class ModelFileError(ValueError):
    """A file that is not a readable pyface model: corrupt, truncated, foreign or too new."""

    def __init__(self, path, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def write_npz_atomically(path, arrays: dict[str, np.ndarray], *, mode: int | None = None) -> None:
    """Write ``arrays`` as an ``.npz`` at ``path`` so that the file is either the old one or the complete new one.

    The data goes to a temporary file in the same folder, is flushed to disk, and
    only then renamed over ``path``; a failure at any point (an interrupt included)
    removes the temporary file and leaves whatever was at ``path`` untouched. ``mode``
    sets the file's permissions (default: those of the file it replaces, or 0644).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private; a model file is as readable as any other file.
        if mode is None:
            mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o644
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def non_finite_parameters(params: dict[str, np.ndarray]) -> list[str]:
    """Names of the arrays in ``params`` holding a NaN or an infinity."""
    return [name for name, value in params.items() if not np.isfinite(value).all()]


def save_model(model: FaceRecognizer, path) -> None:
    """Write ``model`` to ``path`` atomically (see :func:`write_npz_atomically`).

    A model whose weights hold NaN or infinity is refused with ``ValueError``: it
    would only ever answer nonsense, and writing it could replace a good file.
    """
    broken = non_finite_parameters(model.network.params)
    if broken:
        raise ValueError(f"refusing to save a model with non-finite weights (in {', '.join(broken)})")
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": model.network.arch.to_dict(),
        "names": list(model.names),
        "preprocessor": model.preprocessor.to_dict(),
        "training": model.training,
        "history": model.history,
        "open_set": {"threshold": model.threshold, "verify_threshold": model.verify_threshold,
                     "enrolled": [{"name": n, "templates": c} for n, c in model.enrolled.items()]},
    }
    arrays = {_META: np.array(json.dumps(metadata))}
    arrays.update({_PARAM + name: value for name, value in model.network.params.items()})
    if model.templates is not None:
        arrays[_TEMPLATES] = model.templates
        arrays[_TEMPLATE_LABELS] = model.template_labels
    templates = list(model.enrolled_templates().values())
    if templates:
        arrays[_ENROLLED] = np.concatenate(templates)
    write_npz_atomically(path, arrays)


def _open_set(metadata: dict, members: dict[str, np.ndarray]) -> dict:
    """Keyword arguments of FaceRecognizer for the open set: templates, thresholds, enrolled.

    Raises ValueError when the metadata and the arrays disagree.
    """
    version = metadata["format_version"]
    if version < 2:
        return {}
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
    for key in ("threshold", "verify_threshold"):
        value = info[key]
        if value is not None and not (isinstance(value, (int, float)) and -1 <= value <= 1):
            raise ValueError(f"{key} must be a cosine similarity in [-1, 1], got {value!r}")
    ends = np.cumsum(counts)
    return {"templates": templates, "template_labels": labels, "threshold": info["threshold"],
            "verify_threshold": info["verify_threshold"],
            "enrolled": {p["name"]: enrolled[end - c : end] for p, c, end in zip(people, counts, ends)}}


_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK"


def read_npz(path, kind: str = "pyface model") -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` archive at ``path``, its checksums verified.

    Pickled members are refused, so reading never runs code from the file. Anything
    but an intact archive of plain arrays raises :class:`ModelFileError` naming
    ``kind``; a missing file raises ``FileNotFoundError`` as usual.
    """
    with open(path, "rb") as f:
        magic = f.read(len(_NPY_MAGIC))
    if magic == _NPY_MAGIC:
        raise ModelFileError(path, f"not a {kind} file (a bare array, not an archive)")
    if not magic.startswith(_ZIP_MAGIC):
        raise ModelFileError(path, f"not a {kind} file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            # Checksums first: a damaged array header could claim an array of any size.
            damaged = npz.zip.testzip()
            if damaged is not None:
                raise ModelFileError(path, f"corrupt {kind} file (member {damaged} fails its checksum)")
            return {name: npz[name] for name in npz.files}
    except ModelFileError:
        raise
    except zipfile.BadZipFile as exc:
        raise ModelFileError(path, f"corrupt or truncated {kind} file ({exc})") from exc
    # What zipfile and numpy raise on damaged headers: a compression method or zip version
    # that does not exist (NotImplementedError), an "encrypted" flag (RuntimeError), data
    # that does not inflate (zlib.error), sizes past the end (EOFError).
    except (ValueError, OSError, EOFError, KeyError, NotImplementedError, RuntimeError, zlib.error) as exc:
        raise ModelFileError(path, f"not a {kind} file or corrupt ({exc})") from exc


def load_model(path) -> FaceRecognizer:
    """Read a model written by :meth:`FaceRecognizer.save`.

    Raises :class:`ModelFileError` (a ``ValueError``) naming the file and the problem
    when it is corrupt, truncated, not a pyface model, or from a newer pyface.
    """
    members = read_npz(path)
    if _META not in members:
        raise ModelFileError(path, "not a pyface model file (no metadata)")
    try:
        metadata = json.loads(str(members[_META]))
    except (ValueError, TypeError) as exc:
        raise ModelFileError(path, f"corrupt metadata ({exc})") from exc
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ModelFileError(path, "not a pyface model file (unknown format)")
    version = metadata.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise ModelFileError(path, f"corrupt metadata (format version {version!r})")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            path, f"model format version {version} is newer than this pyface reads ({FORMAT_VERSION}); "
                  "upgrade pyface to load it"
        )
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
        preprocessor = Preprocessor.from_dict(metadata["preprocessor"])
        return FaceRecognizer(network, metadata["names"], preprocessor,
                              training=metadata.get("training"), history=metadata.get("history"),
                              **_open_set(metadata, members))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(path, f"inconsistent model file ({exc})") from exc
