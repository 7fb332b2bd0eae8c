"""NumPy's OpenBLAS kept to one thread while the network computes.

After a multiplication shared among threads, OpenBLAS's threads keep spinning for a
while, on the very cores the kernel's OpenMP threads then need: on 2 cores, a training
step with a 130-person head took 3.5 times as long as with 30 people, all of it lost
to the two thread pools taking turns. The network's own NumPy products are small, so
one OpenBLAS thread costs them nothing. Outside the network, NumPy keeps the thread
count it had. Without OpenBLAS (another BLAS, or no ``/proc/self/maps``) nothing changes.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading

# NumPy's own wheels ship OpenBLAS with prefixed, 64-bit-integer symbol names.
_NAMES = (("openblas_get_num_threads", "openblas_set_num_threads"),
          ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
          ("openblas_get_num_threads64_", "openblas_set_num_threads64_"))

_lock = threading.Lock()
_depth = 0
_saved = 1
_api = None
_searched = False


def _loaded_openblas() -> list[str]:
    """Paths of the OpenBLAS libraries mapped into this process."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "/" in line}
    except OSError:
        return []
    return sorted(p for p in paths if "openblas" in os.path.basename(p).lower() and ".so" in p)


def openblas_threads_api():
    """(get, set) of the thread count of the OpenBLAS NumPy uses, or None without one."""
    global _api, _searched
    if not _searched:
        _searched = True
        for path in _loaded_openblas():
            try:
                lib = ctypes.CDLL(path, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
            except OSError:
                continue
            for get, set_ in _NAMES:
                if hasattr(lib, get) and hasattr(lib, set_):
                    getter, setter = getattr(lib, get), getattr(lib, set_)
                    getter.restype, getter.argtypes = ctypes.c_int, []
                    setter.restype, setter.argtypes = None, [ctypes.c_int]
                    _api = (getter, setter)
                    return _api
    return _api


@contextlib.contextmanager
def one_blas_thread():
    """Run the block with OpenBLAS at one thread; nested and concurrent blocks restore it once, at the end of the last."""
    global _depth, _saved
    api = openblas_threads_api()
    if api is None:
        yield
        return
    get, set_ = api
    with _lock:
        if _depth == 0:
            _saved = get()
            set_(1)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                set_(_saved)
