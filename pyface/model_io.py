"""Model files: one ``.npz`` holding the weights and a JSON description of everything else.

The JSON (member ``metadata``) records the format and its version, the architecture,
the preprocessing, the people's names, the training settings and the history; each
weight array is the member ``param.<name>``. Files are read with pickling disabled,
so opening a model file never runs code from it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile

import numpy as np

from .network import Architecture, Network
from .preprocess import Preprocessor
from .recognizer import FaceRecognizer

FORMAT = "pyface-model"
FORMAT_VERSION = 1
_META = "metadata"
_PARAM = "param."


class ModelFileError(ValueError):
    """A file that is not a readable pyface model: corrupt, truncated, foreign or too new."""

    def __init__(self, path, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def save_model(model: FaceRecognizer, path) -> None:
    """Write ``model`` to ``path`` so that the file is either the old one or the complete new one.

    The data goes to a temporary file in the same folder, is flushed to disk, and
    only then renamed over ``path``; a failure at any point removes the temporary
    file and leaves whatever was at ``path`` untouched.
    """
    path = os.fspath(path)
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": model.network.arch.to_dict(),
        "names": list(model.names),
        "preprocessor": model.preprocessor.to_dict(),
        "training": model.training,
        "history": model.history,
    }
    arrays = {_META: np.array(json.dumps(metadata))}
    arrays.update({_PARAM + name: value for name, value in model.network.params.items()})
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private; a model file is as readable as any other file.
        os.chmod(tmp, os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _read_members(path) -> dict[str, np.ndarray]:
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ModelFileError(path, "not a pyface model file (a bare array, not an archive)")
        with loaded as npz:
            return {name: npz[name] for name in npz.files}
    except (FileNotFoundError, IsADirectoryError, PermissionError, ModelFileError):
        raise
    except zipfile.BadZipFile as exc:
        raise ModelFileError(path, f"corrupt or truncated model file ({exc})") from exc
    except (ValueError, OSError, EOFError, KeyError) as exc:
        raise ModelFileError(path, f"not a pyface model file or corrupt ({exc})") from exc


def load_model(path) -> FaceRecognizer:
    """Read a model written by :meth:`FaceRecognizer.save`.

    Raises :class:`ModelFileError` (a ``ValueError``) naming the file and the problem
    when it is corrupt, truncated, not a pyface model, or from a newer pyface.
    """
    members = _read_members(path)
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
        network = Network(arch, {n: np.ascontiguousarray(v) for n, v in params.items()})
        preprocessor = Preprocessor.from_dict(metadata["preprocessor"])
        return FaceRecognizer(network, metadata["names"], preprocessor,
                              training=metadata.get("training"), history=metadata.get("history"))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(path, f"inconsistent model file ({exc})") from exc
