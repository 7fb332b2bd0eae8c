"""Uploaded bytes to preprocessed faces: decoded as the library reads image files, checked, with clear errors."""

from __future__ import annotations

import cv2
import numpy as np

from ..data.dataset import FaceDataset
from ..data.preprocess import Preprocessor
from .errors import ClientError
from .headers import image_dimensions, jpeg_is_complete

__all__ = ["ImageLimits", "decode_image", "FacePreprocessor", "as_faces"]

# Below this many pixels a side there is no face to recognise, only a resized blur.
MIN_SIDE = 8


class ImageLimits:
    """The sizes of image the service decodes.

    Parameters
    ----------
    max_pixels : int, default 20_000_000
        Width x height above which an image is refused (413), from its header when
        the format has one the service reads, so it is never decoded.
    min_side : int, default 8
        Pixels a side below which an image is refused (400).
    """

    def __init__(self, *, max_pixels: int = 20_000_000, min_side: int = MIN_SIDE):
        if max_pixels < 1 or min_side < 1:
            raise ValueError(f"image limits must be positive, got max_pixels={max_pixels}, min_side={min_side}")
        self.max_pixels = int(max_pixels)
        self.min_side = int(min_side)

    def check(self, width: int, height: int, what: str) -> None:
        """A ClientError when an image of ``width`` x ``height`` pixels is out of bounds."""
        if width * height > self.max_pixels:
            raise ClientError(413, f"{what} is {width}x{height} pixels ({width * height / 1e6:.1f} megapixels); "
                                   f"the limit is {self.max_pixels / 1e6:g} megapixels")
        if min(width, height) < self.min_side:
            raise ClientError(400, f"{what} is {width}x{height} pixels; a face needs at least "
                                   f"{self.min_side}x{self.min_side}")


def _imdecode(data: bytes) -> np.ndarray | None:
    # As pyface.data reads image files (unchanged depth and channels), so a file and its
    # upload give the same answer; OpenCV's own log lines would only repeat our error.
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        return cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None
    finally:
        cv2.utils.logging.setLogLevel(level)


def decode_image(data: bytes, *, limits: ImageLimits, what: str = "the image") -> np.ndarray:
    """The image encoded in ``data``, as OpenCV decodes it; a ClientError naming what is wrong with it."""
    if not data:
        raise ClientError(400, f"{what} is empty (0 bytes)")
    size = image_dimensions(data)
    if size is not None:
        limits.check(*size, what)
    if data.startswith(b"\xff\xd8\xff") and not jpeg_is_complete(data):
        raise ClientError(400, f"{what} is a truncated JPEG (it stops before its end marker)")
    image = _imdecode(data)
    if image is None or image.size == 0:
        start = data[:8].hex(" ")
        raise ClientError(400, f"{what} is not an image OpenCV can decode ({len(data)} bytes starting {start})")
    limits.check(image.shape[1], image.shape[0], what)
    return image


class FacePreprocessor:
    """The model's preprocessing with a client's mistakes turned into 400 answers."""

    def __init__(self, preprocessor: Preprocessor):
        self.preprocessor = preprocessor

    def __call__(self, image: np.ndarray, what: str = "the image") -> np.ndarray:
        """The face (size, size) float32 the network reads; a ClientError for an image it cannot take."""
        try:
            return self.preprocessor(image)  # safe from many threads: each has its own detector
        except (TypeError, ValueError) as error:
            raise ClientError(400, f"{what}: {error}") from None


def as_faces(faces: list[np.ndarray], preprocessor: Preprocessor) -> FaceDataset:
    """Preprocessed faces as a data set the recognizer reads without preprocessing them again."""
    n = len(faces)
    return FaceDataset(np.stack(faces).astype(np.float32, copy=False), np.zeros(n, dtype=np.int64), ["face"],
                       [""] * n, preprocessor)
