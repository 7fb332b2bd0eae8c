"""What the native kernel runs on: instruction set and threads."""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any, Dict, List

import cv2
import numpy as np

from .reference import PRECISIONS  # one list of precisions: the reference's, which defines their math

# The native module reads PYFACE_ISA and PYFACE_BF16 as it loads and knows the names in lower
# case only; users write AVX2 as often as avx2.
for _variable in ("PYFACE_ISA", "PYFACE_BF16"):
    if os.environ.get(_variable, "").strip():
        os.environ[_variable] = os.environ[_variable].strip().lower()
del _variable
if importlib.util.find_spec("pyface._core") is None:  # the bare source tree has no compiled module
    raise ImportError(
        "pyface's native module pyface._core is missing: this is probably the source folder, "
        "not the installed package. Install with `pip install .` and run Python from another folder."
    )


def _started_as_command() -> bool:
    # The pyface script, or `python -m pyface` while its package is being imported.
    return os.path.basename(sys.argv[0]) in ("pyface", "-m") if sys.argv else False


# Any other failure to load (an unknown PYFACE_ISA, one the CPU lacks) speaks for itself;
# the command says it in one line instead of a traceback, as it does for every mistake.
try:
    from .. import _core  # noqa: E402
except ImportError as exc:
    if not _started_as_command():
        raise
    print(f"pyface: error: {exc}", file=sys.stderr)
    raise SystemExit(1) from None

__all__ = ["info", "set_num_threads", "get_num_threads", "set_isa", "get_isa", "supported_isas",
           "PRECISIONS", "check_precision"]


def info() -> Dict[str, Any]:
    """Describe the build and the machine: version, instruction set in use, threads, libraries.

    ``isa`` is one of ``'avx512'``, ``'avx2'``, ``'generic'``: the best the CPU and OS support,
    unless the environment variable ``PYFACE_ISA`` (or :func:`set_isa`) chose another.
    ``bf16`` is the path ``precision="bfloat16"`` runs on, ``'amx'`` or ``'avx512bf16'``, or
    None where there is none (then it raises; see :func:`check_precision`); the environment
    variable ``PYFACE_BF16`` (``amx``, ``avx512bf16`` or ``none``) forces it. ``cpu_features``
    says which of the relevant cpuid bits the CPU has (named as in ``/proc/cpuinfo``) and
    which register state the OS saves (``os_ymm``, ``os_zmm``, ``os_tile``).
    """
    return {
        "version": _core.__version__,
        "isa": _core.get_isa(),
        "vector_width": _core.vector_width(),
        "supported_isas": _core.supported_isas(),
        "bf16": _core.get_bf16_path(),
        "cpu_features": _core.cpu_features(),
        "threads": _core.get_num_threads(),
        "openmp": _core.openmp,
        "compiler": _core.compiler,
        "numpy": np.__version__,
        "opencv": cv2.__version__,
    }


def set_num_threads(n: int) -> None:
    """Use ``n`` OpenMP threads in the kernel (default: ``OMP_NUM_THREADS`` or all cores)."""
    _core.set_num_threads(int(n))


def get_num_threads() -> int:
    """Number of threads the kernel uses."""
    return _core.get_num_threads()


def set_isa(name: str) -> None:
    """Switch the kernel path: ``'generic'``, ``'avx2'`` or ``'avx512'``.

    Raises ``ValueError`` for a path this CPU (or its OS) does not support. Mostly for testing
    and measuring; the default is already the fastest supported path.
    """
    _core.set_isa(str(name))


def get_isa() -> str:
    """Name of the kernel path in use."""
    return _core.get_isa()


def supported_isas() -> List[str]:
    """Kernel paths this machine can run, slowest first."""
    return list(_core.supported_isas())


def check_precision(precision: str) -> None:
    """Raise ``ValueError`` unless the kernel can run in ``precision`` here.

    ``"float32"`` runs everywhere. ``"bfloat16"`` needs a bfloat16 kernel path (``info()["bf16"]``);
    without one the message names what the CPU lacks, e.g. ``precision='bfloat16' needs a CPU
    with AVX512_BF16 or AMX (this CPU has: avx2)``. pyface does not fall back to float32: a
    run asked for in bfloat16 would otherwise silently take twice as long as planned.
    """
    if not isinstance(precision, str):
        raise TypeError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    _core.check_precision(precision)
