"""Training checkpoints: everything a run needs to continue exactly where it stopped.

A checkpoint is an ``.npz`` like a model file, written atomically the same way. Its
JSON member ``metadata`` holds the format and its version, the run (architecture,
training settings, seed, people's names, preprocessing, a fingerprint of the data),
the number of completed epochs, the optimizer's step count, the states of the random
generators, the history and the early-stopping state. The arrays are the weights
(``param.<name>``), Adam's moments (``adam_m.<name>``, ``adam_v.<name>``) and, once
validation has picked a best epoch, its weights (``best.<name>``).
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass

import numpy as np

from ..io.npz import METADATA, ModelFileError, check_format, read_metadata, read_npz, write_npz_atomically
from ..nn.network import Architecture, non_finite_parameters

FORMAT = "pyface-checkpoint"
FORMAT_VERSION = 1
_KIND = "pyface checkpoint"


@dataclass
class TrainingState:
    """Where a run stands after ``epoch`` completed epochs.

    ``params``, ``adam_m`` and ``adam_v`` map parameter names to float32 arrays of the
    architecture's shapes; ``rng_states`` maps each training generator's name to its
    ``bit_generator.state``; ``history`` has one entry per completed epoch in each list.
    ``best_*`` and ``waited`` are the early-stopping state (None/0 without validation).
    """

    epoch: int
    params: dict[str, np.ndarray]
    adam_m: dict[str, np.ndarray]
    adam_v: dict[str, np.ndarray]
    adam_t: int
    rng_states: dict[str, dict]
    history: dict[str, list]
    best_score: tuple[float, float] | None = None
    best_params: dict[str, np.ndarray] | None = None
    best_epoch: int | None = None
    waited: int = 0

    def copy(self) -> TrainingState:
        """A deep copy: later training steps cannot change it."""
        return copy.deepcopy(self)


def data_fingerprint(*arrays: np.ndarray) -> str:
    """SHA-256 of the arrays' shapes, dtypes and bytes: tells whether a resumed run sees the same data."""
    digest = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        digest.update(f"{a.dtype.str}{a.shape}".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def save_checkpoint(path, state: TrainingState, run: dict) -> None:
    """Write ``state`` and the JSON-serialisable description ``run`` of its run to ``path``, atomically.

    A state with non-finite weights is refused with ``ValueError``, so that a
    checkpoint on disk is always one worth resuming.
    """
    broken = non_finite_parameters(state.params)
    if broken:
        raise ValueError(f"refusing to save a checkpoint with non-finite weights (in {', '.join(broken)})")
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "run": run,
        "epoch": state.epoch,
        "adam_t": state.adam_t,
        "rng_states": state.rng_states,
        "history": state.history,
        "best_score": state.best_score,
        "best_epoch": state.best_epoch,
        "waited": state.waited,
    }
    arrays = {METADATA: np.array(json.dumps(metadata))}
    groups = {"param": state.params, "adam_m": state.adam_m, "adam_v": state.adam_v, "best": state.best_params}
    for group, values in groups.items():
        arrays.update({f"{group}.{name}": value for name, value in (values or {}).items()})
    write_npz_atomically(path, arrays)


def _group(path, members: dict, group: str, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    found = {name[len(group) + 1:]: value for name, value in members.items() if name.startswith(group + ".")}
    if set(found) != set(shapes):
        raise ModelFileError(path, f"inconsistent checkpoint ({group} arrays do not match the architecture)")
    for name, value in found.items():
        if value.dtype != np.float32 or value.shape != shapes[name]:
            raise ModelFileError(path, f"inconsistent checkpoint ({group}.{name} is {value.dtype} {value.shape})")
    if non_finite_parameters(found):
        raise ModelFileError(path, f"corrupt checkpoint (non-finite {group} arrays)")
    return {name: np.ascontiguousarray(value) for name, value in found.items()}


def load_checkpoint(path) -> tuple[TrainingState, dict]:
    """The state and the run description written by :func:`save_checkpoint`.

    Raises :class:`~pyface.ModelFileError` for a file that is corrupt,
    truncated, not a checkpoint, or from a newer pyface.
    """
    members = read_npz(path, _KIND)
    metadata = read_metadata(path, members, _KIND)
    check_format(path, metadata, format=FORMAT, version=FORMAT_VERSION, kind=_KIND)
    del members[METADATA]
    try:
        run = metadata["run"]
        shapes = Architecture.from_dict(run["architecture"]).parameter_shapes()
        best_score = metadata["best_score"]
        state = TrainingState(
            epoch=int(metadata["epoch"]),
            params=_group(path, members, "param", shapes),
            adam_m=_group(path, members, "adam_m", shapes),
            adam_v=_group(path, members, "adam_v", shapes),
            adam_t=int(metadata["adam_t"]),
            rng_states=dict(metadata["rng_states"]),
            history={key: list(values) for key, values in metadata["history"].items()},
            best_score=None if best_score is None else tuple(best_score),
            best_params=_group(path, members, "best", shapes) if any(n.startswith("best.") for n in members) else None,
            best_epoch=metadata["best_epoch"],
            waited=int(metadata["waited"]),
        )
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelFileError(path, f"inconsistent checkpoint ({exc})") from exc
    return state, run
