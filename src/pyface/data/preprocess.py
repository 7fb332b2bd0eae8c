"""Turn face photographs into the fixed-size grey images the recognizer reads."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable

import cv2
import numpy as np

__all__ = ["Preprocessor", "frontal_face_cascade_path"]

_EQUALIZE_CHOICES = ("hist", "clahe", None)
_DETECT_CHOICES = (False, True, "auto")
_CASCADE_FILE = "haarcascade_frontalface_default.xml"
# A face narrower than this share of the image's shorter side is more likely a false detection.
_MIN_FACE_FRACTION = 0.1
# With detect_faces="auto", a face at least this share of the image's width means the image
# is already a face crop (ORL's faces span 0.63-0.91 of the width, LFW's photos 0.42-0.54).
_FACE_CROP_FRACTION = 0.6
# Before the full search, "auto" looks on a copy this many pixels wide for a face spanning at
# least this share of it: a few large windows, under a millisecond, where the full search costs
# 6 ms on an ORL image. It settles three in four ORL images and calls one of the 10,210 LFW
# photos a face crop (its face spans 0.58 of the width); what it misses goes on to the full search.
_QUICK_LOOK_WIDTH = 56
_QUICK_LOOK_FRACTION = 0.7
# Detection runs on a copy whose longer side is at most this: as reliable for faces of
# photo size, and milliseconds instead of seconds on a camera's full frame.
_DETECT_SIDE = 400


def frontal_face_cascade_path() -> str | None:
    """Path of the frontal-face Haar cascade bundled with OpenCV, or None if it ships none.

    OpenCV 5 builds (``opencv-python-headless`` 5.x) no longer ship the cascade files.
    """
    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if folder is None:
        return None
    path = os.path.join(folder, _CASCADE_FILE)
    return path if os.path.isfile(path) else None


def _load_cascade(cascade_path: str | None):
    if not hasattr(cv2, "CascadeClassifier"):
        raise RuntimeError(
            f"face detection needs cv2.CascadeClassifier, which OpenCV {cv2.__version__} as installed "
            "does not have (OpenCV 5 moved it to the contrib build): install opencv-contrib-python-headless, "
            "or an OpenCV below 5, or use detect_faces=False"
        )
    path = cascade_path if cascade_path is not None else frontal_face_cascade_path()
    if path is None:
        raise RuntimeError(
            f"face detection needs {_CASCADE_FILE}, which OpenCV {cv2.__version__} as installed "
            "does not ship: pass cascade_path= pointing to a copy of it (OpenCV's data/haarcascades folder), "
            "or use detect_faces=False"
        )
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(f"could not load a Haar cascade from {path!r}")
    return cascade


def _is_positive(value, types: tuple) -> bool:
    # bool is an int to Python, but True is no size.
    return isinstance(value, types) and not isinstance(value, bool) and value > 0


def _to_grey_unit(image: np.ndarray) -> np.ndarray:
    """Any supported image -> float32 (H, W) grey in [0, 1]."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, got {type(image).__name__}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ValueError(f"image must be (H, W) grey or (H, W, 3|4) BGR(A), got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image is empty, shape {image.shape}")

    if image.dtype == np.uint8:
        grey = image.astype(np.float32) / 255.0
    elif image.dtype == np.uint16:
        grey = image.astype(np.float32) / 65535.0
    elif np.issubdtype(image.dtype, np.floating):
        if not np.all(np.isfinite(image)):
            raise ValueError("image contains NaN or infinite values")
        grey = np.clip(image.astype(np.float32), 0.0, 1.0)
    else:
        raise TypeError(f"image dtype must be uint8, uint16 or floating, got {image.dtype}")

    if grey.ndim == 3:
        code = cv2.COLOR_BGR2GRAY if grey.shape[2] == 3 else cv2.COLOR_BGRA2GRAY
        grey = cv2.cvtColor(grey, code)
    return grey


def _quantize(grey: np.ndarray, *, stretch: bool) -> np.ndarray:
    """float [0, 1] -> uint8. With stretch, the image's own range is mapped to 0..255."""
    if stretch:
        low, high = float(grey.min()), float(grey.max())
        if high > low:
            # Equalisation discards absolute levels anyway; stretching first keeps the
            # levels of dim 16-bit images that would otherwise collapse into a few bins.
            grey = (grey - low) / (high - low)
    return np.clip(np.rint(grey * 255.0), 0, 255).astype(np.uint8)


def _shrunk(grey: np.ndarray, scale: float) -> np.ndarray:
    """``grey`` scaled by ``scale`` (at most 1), or itself at 1."""
    return grey if scale == 1.0 else cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def _resize(grey: np.ndarray, size: int) -> np.ndarray:
    h, w = grey.shape
    shrinking = h >= size and w >= size
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(grey, (size, size), interpolation=interpolation)


class Preprocessor:
    """Grey, crop, resize and equalise face images into float32 (size, size) arrays in [0, 1].

    Parameters
    ----------
    size : int, default 64
        Side in pixels of the square output.
    equalize : {"hist", "clahe", None}, default "hist"
        Global histogram equalisation, contrast-limited adaptive equalisation, or none.
    detect_faces : {"auto", True, False}, default "auto"
        Crop to the largest frontal face found by OpenCV's Haar cascade. ``"auto"`` leaves
        images that are already face crops (a face spanning most of the width, as in ORL)
        whole, so photos and face crops both work; True crops whenever a face is found;
        False never looks. An image with no face found is used whole and counted in
        ``n_faces_missed_``.
    face_scale : float, default 0.8
        Side of the square cropped around a detected face, relative to the detector's box
        (chosen on Labeled Faces in the Wild; the box includes forehead and chin).
    clahe_clip : float, default 2.0
        CLAHE contrast limit (only with ``equalize="clahe"``).
    clahe_grid : int, default 8
        CLAHE tiles per side (only with ``equalize="clahe"``).
    cascade_path : str or None, default None
        Haar cascade XML to detect faces with; None means OpenCV's bundled
        ``haarcascade_frontalface_default.xml``.

    Attributes
    ----------
    n_faces_found_ : int
        Images cropped to a detected face since construction.
    n_faces_missed_ : int
        Images in which detection found no face and that were used whole.
    """

    def __init__(
        self,
        *,
        size: int = 64,
        equalize: str | None = "hist",
        detect_faces: bool | str = "auto",
        face_scale: float = 0.8,
        clahe_clip: float = 2.0,
        clahe_grid: int = 8,
        cascade_path: str | None = None,
    ) -> None:
        if not _is_positive(size, (int, np.integer)):
            raise ValueError(f"size must be a positive integer, got {size!r}")
        if equalize not in _EQUALIZE_CHOICES:
            raise ValueError(f"equalize must be one of {_EQUALIZE_CHOICES}, got {equalize!r}")
        if isinstance(detect_faces, np.bool_):
            detect_faces = bool(detect_faces)
        if not (isinstance(detect_faces, bool) or detect_faces == "auto"):
            raise ValueError(f"detect_faces must be 'auto', True or False, got {detect_faces!r}")
        if not _is_positive(face_scale, (int, float, np.number)):
            raise ValueError(f"face_scale must be a positive number, got {face_scale!r}")
        if not _is_positive(clahe_clip, (int, float, np.number)):
            raise ValueError(f"clahe_clip must be a positive number, got {clahe_clip!r}")
        if not _is_positive(clahe_grid, (int, np.integer)):
            raise ValueError(f"clahe_grid must be a positive integer, got {clahe_grid!r}")
        if cascade_path is not None and not isinstance(cascade_path, (str, os.PathLike)):
            raise ValueError(f"cascade_path must be a path or None, got {cascade_path!r}")

        self.size = int(size)
        self.equalize = equalize
        self.detect_faces = detect_faces
        self.face_scale = float(face_scale)
        self.clahe_clip = float(clahe_clip)
        self.clahe_grid = int(clahe_grid)
        self.cascade_path = None if cascade_path is None else os.fspath(cascade_path)
        self.n_faces_found_ = 0
        self.n_faces_missed_ = 0
        self._load_detector()

    def _load_detector(self) -> None:
        # One detector per thread (an OpenCV cascade keeps scratch buffers and is not safe to
        # share), this thread's loaded now so that a missing detector fails here, not deep
        # inside a data load.
        self._detectors = threading.local()
        if self.detect_faces:
            self._detectors.cascade = _load_cascade(self.cascade_path)

    @property
    def _cascade(self):
        """This thread's face detector, or None without detection."""
        if not self.detect_faces:
            return None
        cascade = getattr(self._detectors, "cascade", None)
        if cascade is None:
            cascade = self._detectors.cascade = _load_cascade(self.cascade_path)
        return cascade

    def find_faces(self, image: np.ndarray) -> list[tuple[int, int, int, int]]:
        """Every frontal face in an image as (x, y, w, h) in its pixels, largest first.

        ``image`` is anything :meth:`__call__` accepts. Needs ``detect_faces`` other than False.
        """
        return self._find_faces(_quantize(_to_grey_unit(image), stretch=False))

    def _find_faces(self, grey: np.ndarray) -> list[tuple[int, int, int, int]]:
        if self._cascade is None:
            raise RuntimeError("finding faces needs a Preprocessor made with detect_faces=True or 'auto'")
        scale = min(1.0, _DETECT_SIDE / max(grey.shape))
        small = _shrunk(grey, scale)
        boxes = self._detect(small, max(1, int(_MIN_FACE_FRACTION * min(small.shape))))
        found = [tuple(int(round(v / scale)) for v in box) for box in boxes]
        return sorted(found, key=lambda box: -box[2] * box[3])

    def _spans_the_image(self, grey: np.ndarray) -> bool:
        """Whether a quick look finds one face spanning most of the width: a face crop."""
        small = _shrunk(grey, min(1.0, _QUICK_LOOK_WIDTH / grey.shape[1]))
        side = int(np.ceil(_QUICK_LOOK_FRACTION * small.shape[1]))
        return side <= min(small.shape) and len(self._detect(small, side)) > 0

    def _detect(self, grey: np.ndarray, min_side: int) -> np.ndarray:
        """Faces (x, y, w, h) of at least ``min_side`` pixels a side in ``grey``, as the cascade finds them."""
        return self._cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))

    def find_face(self, grey: np.ndarray) -> tuple[int, int, int, int] | None:
        """Largest face in a uint8 (H, W) grey image as (x, y, w, h) in pixels, or None."""
        faces = self._find_faces(grey)
        return faces[0] if faces else None

    def _crop(self, grey: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """The square of side ``face_scale`` times the box's around the box's centre, edges replicated."""
        x, y, w, h = box
        side = max(1, int(round(self.face_scale * max(w, h))))
        left, top = int(round(x + w / 2 - side / 2)), int(round(y + h / 2 - side / 2))
        pad = max(0, -left, -top, left + side - grey.shape[1], top + side - grey.shape[0])
        if pad:
            grey = cv2.copyMakeBorder(grey, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        return grey[top + pad : top + pad + side, left + pad : left + pad + side]

    def _finish(self, grey: np.ndarray) -> np.ndarray:
        """Resize and equalise a grey float image into the output."""
        grey = _resize(grey, self.size)
        if self.equalize is None:
            return grey
        levels = _quantize(grey, stretch=True)
        if self.equalize == "hist":
            levels = cv2.equalizeHist(levels)
        else:
            grid = (self.clahe_grid, self.clahe_grid)
            levels = cv2.createCLAHE(clipLimit=self.clahe_clip, tileGridSize=grid).apply(levels)
        return levels.astype(np.float32) / 255.0

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Preprocess one image.

        Parameters
        ----------
        image : ndarray, uint8, uint16 or floating (assumed in [0, 1], clipped)
            (H, W) grey, or (H, W, 3) BGR / (H, W, 4) BGRA colour as OpenCV reads it.

        Returns
        -------
        ndarray, float32, shape (size, size), values in [0, 1]
        """
        grey = _to_grey_unit(image)
        levels = _quantize(grey, stretch=False) if self.detect_faces else None
        if self.detect_faces == "auto" and self._spans_the_image(levels):
            self.n_faces_found_ += 1  # already a face crop: used whole
        elif self.detect_faces:
            faces = self._find_faces(levels)
            if not faces:
                self.n_faces_missed_ += 1
            elif self.detect_faces == "auto" and faces[0][2] >= _FACE_CROP_FRACTION * grey.shape[1]:
                self.n_faces_found_ += 1  # already a face crop: used whole
            else:
                self.n_faces_found_ += 1
                grey = self._crop(grey, faces[0])
        return self._finish(grey)

    def faces(self, image: np.ndarray) -> list[tuple[tuple[int, int, int, int], np.ndarray]]:
        """Every face in an image, largest first: its box (x, y, w, h) and it preprocessed (size, size).

        Each face is cropped as :meth:`__call__` crops the largest one; an image with no
        face found gives an empty list. Needs ``detect_faces`` other than False.
        """
        grey = _to_grey_unit(image)
        return [(box, self._finish(self._crop(grey, box))) for box in self._find_faces(_quantize(grey, stretch=False))]

    def transform(self, images: Iterable[np.ndarray] | np.ndarray) -> np.ndarray:
        """Preprocess many images (each as in ``__call__``, sizes may differ).

        Returns
        -------
        ndarray, float32, shape (N, size, size), values in [0, 1]
        """
        out = [self(image) for image in images]
        if not out:
            return np.empty((0, self.size, self.size), dtype=np.float32)
        return np.stack(out)

    def to_dict(self) -> dict:
        """Settings as a JSON-serialisable dict; ``from_dict`` rebuilds an equal Preprocessor."""
        return {
            "size": self.size,
            "equalize": self.equalize,
            "detect_faces": self.detect_faces,
            "face_scale": self.face_scale,
            "clahe_clip": self.clahe_clip,
            "clahe_grid": self.clahe_grid,
            "cascade_path": self.cascade_path,
        }

    @classmethod
    def from_dict(cls, settings: dict) -> Preprocessor:
        """Inverse of ``to_dict``; missing keys mean what pyface did before they existed, unknown keys are an error."""
        unknown = set(settings) - set(cls().to_dict())
        if unknown:
            raise ValueError(f"unknown Preprocessor settings: {sorted(unknown)}")
        # Settings saved before a setting existed meant what pyface did then: no face
        # detection unless asked, and crops of exactly the detector's box.
        return cls(**{"detect_faces": False, "face_scale": 1.0, **settings})

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Preprocessor):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.to_dict().items())
        return f"Preprocessor({args})"

    def __getstate__(self) -> dict:
        # An OpenCV cascade neither pickles nor deep-copies; it is reloaded from the path.
        state = self.__dict__.copy()
        del state["_detectors"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._load_detector()
