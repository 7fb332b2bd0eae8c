"""Files on disk: atomic writes and the checked ``.npz`` archives of model files and checkpoints."""

from .atomic import atomic_write
from .npz import ModelFileError, check_format, read_metadata, read_npz, write_npz_atomically

__all__ = ["atomic_write", "ModelFileError", "check_format", "read_metadata", "read_npz", "write_npz_atomically"]
