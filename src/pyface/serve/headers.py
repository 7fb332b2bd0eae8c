"""Width and height of an encoded image read from its header, before anything is decoded.

A 50-megapixel photo fits in a few hundred kilobytes, and a flat-coloured PNG of
20000 x 20000 pixels in a few dozen; decoding either takes a large slice of memory and
time. Reading the size from the header first lets the service refuse them for the
cost of a few bytes. Formats not listed here (JPEG 2000, OpenEXR, Radiance HDR,
Sun raster, ...) are still decoded, and their size checked afterwards.
"""

from __future__ import annotations

import re
import struct

__all__ = ["image_dimensions", "jpeg_is_complete"]

# Start-of-frame markers carry the size; C4 (Huffman tables), C8 and CC (arithmetic
# coding conditioning) share the range but are not frames.
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers standing alone, without a length: TEM, RST0-7, SOI, EOI.
_JPEG_BARE = frozenset([0x01, *range(0xD0, 0xD9)])
_PNM_TOKEN = re.compile(rb"(?:\s|#[^\n\r]*)*(\d+)")


def _jpeg_segments(data: bytes):
    """(marker, start of the segment's payload, payload length) of each segment up to the first scan."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker in _JPEG_BARE:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        yield marker, pos + 4, length - 2
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            return
        pos += 2 + length


def _jpeg(data: bytes) -> tuple[int, int] | None:
    for marker, start, length in _jpeg_segments(data):
        if marker in _JPEG_FRAMES and length >= 5 and start + 5 <= len(data):
            height, width = struct.unpack(">HH", data[start + 1 : start + 5])
            return width, height
    return None


def jpeg_is_complete(data: bytes) -> bool:
    """Whether a JPEG reaches its end-of-image marker after its first scan.

    OpenCV decodes a JPEG cut short without complaint, filling the missing part
    with grey; a face recognised from half a photo is silent garbage. Inside the
    scan data every 0xFF byte is followed by 0x00 or a restart marker, so 0xFFD9
    after the scan's start can only be the end of the image.
    """
    scan = None
    for marker, start, _ in _jpeg_segments(data):
        if marker == 0xDA:
            scan = start
    return scan is not None and data.rfind(b"\xff\xd9") >= scan


def _png(data: bytes) -> tuple[int, int] | None:
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


def _gif(data: bytes) -> tuple[int, int] | None:
    return struct.unpack("<HH", data[6:10]) if len(data) >= 10 else None


def _bmp(data: bytes) -> tuple[int, int] | None:
    if len(data) < 26:
        return None
    width, height = struct.unpack("<ii", data[18:26])
    return abs(width), abs(height)  # a negative height means rows stored top to bottom


def _pnm(data: bytes) -> tuple[int, int] | None:
    pos, sizes = 2, []
    for _ in range(2):
        match = _PNM_TOKEN.match(data, pos)
        if match is None:
            return None
        sizes.append(int(match.group(1)))
        pos = match.end()
    return sizes[0], sizes[1]


def _webp(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None


def _tiff(data: bytes) -> tuple[int, int] | None:
    order = "<" if data[:2] == b"II" else ">"
    if len(data) < 8:
        return None
    (ifd,) = struct.unpack(order + "I", data[4:8])
    if ifd + 2 > len(data):
        return None
    (count,) = struct.unpack(order + "H", data[ifd : ifd + 2])
    found = {}
    for entry in range(min(count, 4096)):
        at = ifd + 2 + 12 * entry
        if at + 12 > len(data):
            break
        tag, kind = struct.unpack(order + "HH", data[at : at + 4])
        if tag in (256, 257):  # ImageWidth, ImageLength: a SHORT or a LONG
            fmt = order + ("H" if kind == 3 else "I")
            found[tag] = struct.unpack(fmt, data[at + 8 : at + 8 + struct.calcsize(fmt)])[0]
    return (found[256], found[257]) if len(found) == 2 else None


_SIGNATURES = (
    (b"\xff\xd8\xff", _jpeg),
    (b"\x89PNG\r\n\x1a\n", _png),
    (b"GIF87a", _gif),
    (b"GIF89a", _gif),
    (b"BM", _bmp),
    (b"II*\x00", _tiff),
    (b"MM\x00*", _tiff),
)


def image_dimensions(data: bytes) -> tuple[int, int] | None:
    """(width, height) in pixels from the header of a JPEG, PNG, GIF, BMP, TIFF, PNM or WebP; None if unknown."""
    for signature, read in _SIGNATURES:
        if data.startswith(signature):
            return read(data)
    if len(data) >= 3 and data[0:1] == b"P" and data[1:2] in b"123456" and data[2:3].isspace():
        return _pnm(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp(data)
    return None
