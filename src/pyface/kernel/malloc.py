"""How much freed memory the process keeps for reuse: glibc malloc's thresholds.

A batch of faces goes through NumPy temporaries of about a megabyte each (the stacked
images, their row and column views, the kernel's outputs). glibc serves blocks above its
mmap threshold with fresh pages and returns them when freed, so every batch pays its page
faults again. Left alone, glibc raises that threshold by itself after the first large free;
but a process started with ``MALLOC_TRIM_THRESHOLD_`` or ``MALLOC_MMAP_THRESHOLD_`` set (Dask's
nanny sets the first for every worker) keeps it fixed at 128 kB.
"""

from __future__ import annotations

import ctypes
import ctypes.util

__all__ = ["M_TRIM_THRESHOLD", "M_MMAP_THRESHOLD", "M_MMAP_MAX", "set_malloc_option"]

# glibc's <malloc.h>
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4


def set_malloc_option(option: int, value: int) -> bool:
    """``mallopt(option, value)``; False where the C library is not glibc or refuses the value."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or None).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS, Windows): its own policy stays
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(option, value))
