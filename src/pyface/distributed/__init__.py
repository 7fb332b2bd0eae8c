"""pyface on a Dask cluster: batch recognition of many files and data-parallel training.

Needs the ``dask`` extra (``pip install "pyface[dask]"``); ``import pyface`` never imports
Dask, this package does.
"""

try:
    import distributed as _distributed  # noqa: F401  (the check that the extra is installed)
    import pandas as _pandas  # noqa: F401
except ImportError as exc:
    raise ImportError(
        f"pyface.distributed needs Dask and pandas ({exc}); install them with: pip install 'pyface[dask]'"
    ) from exc

from .predict import embed_files, predict_files
from .train import train

__all__ = ["predict_files", "embed_files", "train"]
