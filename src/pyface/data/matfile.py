"""Read one numeric matrix from a MATLAB level-5 ``.mat`` file, with NumPy and zlib only.

The layout relied on (MATLAB "MAT-File Format", level 5):

- A 128-byte header: 116 bytes of text, 8 bytes of subsystem offset, a 2-byte version and
  a 2-byte endian indicator, the characters ``IM`` as written by a little-endian machine
  (read back as ``MI`` when the file is big-endian).
- Then data elements, each an 8-byte tag (uint32 type, uint32 byte count) followed by its
  data padded to a multiple of 8 bytes. A tag whose first uint32 has non-zero upper 16 bits
  is a "small element": the byte count is in those 16 bits, the type in the lower 16, and
  up to 4 bytes of data follow in the same 8 bytes.
- A compressed element (type 15) holds one zlib stream that inflates to another element;
  its data is not padded.
- A matrix element (type 14) holds sub-elements in order: array flags (uint32 x 2; class
  in the low byte of the first, complex bit 0x0800), dimensions (int32 x ndim), the name
  (int8 text), then the real part. The real part may be stored in a smaller type than the
  class (MATLAB writes integer-valued doubles as uint8, for instance); values are
  converted to the class's type. Data is in column-major (Fortran) order.

Only real, non-sparse numeric matrices are read; cells, structs, text, sparse and complex
matrices are refused with :class:`MatFileError`.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np

__all__ = ["MatFileError", "read_matrix"]

_HEADER_BYTES = 128
_MI_MATRIX = 14
_MI_COMPRESSED = 15
_COMPLEX_FLAG = 0x0800

# Storage types of data elements (the "mi" codes).
_STORAGE = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 9: "f8", 12: "i8", 13: "u8"}
# Numeric array classes (the "mx" codes) and the dtype MATLAB gives them.
_CLASSES = {6: "f8", 7: "f4", 8: "i1", 9: "u1", 10: "i2", 11: "u2", 12: "i4", 13: "u4", 14: "i8", 15: "u8"}
_CLASS_NAMES = {1: "cell", 2: "struct", 3: "object", 4: "char", 5: "sparse"}


class MatFileError(ValueError):
    """The bytes are not a level-5 MAT file, or the wanted matrix is missing or not numeric."""


def _elements(buf: bytes, endian: str, start: int = 0):
    """Yield (type, data bytes) of the consecutive data elements of ``buf`` from ``start``."""
    u4 = np.dtype(endian + "u4")
    pos = start
    while pos + 8 <= len(buf):
        first, second = np.frombuffer(buf, u4, 2, pos)
        first, second = int(first), int(second)
        if first >> 16:
            kind, size = first & 0xFFFF, first >> 16
            if size > 4:
                raise MatFileError(f"small data element of {size} bytes at offset {pos}")
            yield kind, buf[pos + 4 : pos + 4 + size]
            pos += 8
            continue
        kind, size = first, second
        end = pos + 8 + size
        if end > len(buf):
            raise MatFileError(f"data element at offset {pos} runs past the end of the file")
        yield kind, buf[pos + 8 : end]
        pos = end if kind == _MI_COMPRESSED else pos + 8 + (size + 7) // 8 * 8


def _matrix(body: bytes, endian: str, wanted: str) -> np.ndarray | None:
    """The matrix in a matrix element's data if it is named ``wanted``, else None."""
    parts = list(_elements(body, endian))
    if len(parts) < 4:
        raise MatFileError("matrix element with fewer than four sub-elements")
    (_, flags), (dims_type, dims), (_, name_bytes), (data_type, data) = parts[:4]
    name = name_bytes.decode("ascii", errors="replace")
    if name != wanted:
        return None
    word = int(np.frombuffer(flags, endian + "u4", 1)[0])
    array_class = word & 0xFF
    if array_class not in _CLASSES:
        kind = _CLASS_NAMES.get(array_class, f"class {array_class}")
        raise MatFileError(f"variable {name!r} is a {kind} array, not a numeric matrix")
    if word & _COMPLEX_FLAG:
        raise MatFileError(f"variable {name!r} is complex")
    if dims_type not in _STORAGE or data_type not in _STORAGE:
        raise MatFileError(f"variable {name!r} has an unknown storage type")
    shape = tuple(int(d) for d in np.frombuffer(dims, endian + _STORAGE[dims_type]))
    values = np.frombuffer(data, endian + _STORAGE[data_type])
    if values.size != int(np.prod(shape)):
        raise MatFileError(f"variable {name!r}: {values.size} values for a {shape} matrix")
    return values.astype(_CLASSES[array_class]).reshape(shape, order="F")


def read_matrix(source: str | os.PathLike | bytes, name: str) -> np.ndarray:
    """The numeric matrix called ``name`` in a level-5 MAT file.

    Parameters
    ----------
    source : path or bytes
        The file, or its whole content.
    name : str
        The MATLAB variable name.

    Returns
    -------
    ndarray
        MATLAB's shape (at least 2-D) and class dtype (double -> float64, uint8 -> uint8,
        ...), native byte order, C-contiguous: element ``[i, j]`` is MATLAB's ``(i+1, j+1)``.

    Raises
    ------
    MatFileError
        Not a level-5 MAT file, no variable ``name``, or one that is not a real numeric
        matrix.
    """
    buf = bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) else Path(source).read_bytes()
    if len(buf) < _HEADER_BYTES or buf[126:128] not in (b"IM", b"MI"):
        raise MatFileError("not a level-5 MAT file (no MATLAB 5.0 header)")
    endian = "<" if buf[126:128] == b"IM" else ">"
    for kind, data in _elements(buf, endian, _HEADER_BYTES):
        if kind == _MI_COMPRESSED:
            try:
                data = zlib.decompress(data)
            except zlib.error as exc:
                raise MatFileError(f"corrupt compressed element ({exc})") from exc
            kind, data = next(_elements(data, endian), (None, b""))
        if kind == _MI_MATRIX and data:
            found = _matrix(data, endian, name)
            if found is not None:
                return np.ascontiguousarray(found)
    raise MatFileError(f"no variable {name!r} in the MAT file")
