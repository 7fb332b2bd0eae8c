"""Random, label-preserving changes to preprocessed face images, applied afresh every epoch."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Augmentation:
    """How far each change may go; 0 (or False) turns a change off.

    shift: largest translation, as a fraction of the image side.
    rotation: largest rotation, in degrees.
    scale: largest relative zoom in or out.
    flip: mirror left-right half of the time (faces are nearly symmetric).
    brightness: largest offset added to the [0, 1] intensities.
    contrast: largest relative stretch or squeeze of intensities around their mean.
    """

    shift: float = 0.05
    rotation: float = 5.0
    scale: float = 0.05
    flip: bool = True
    brightness: float = 0.1
    contrast: float = 0.2

    def __post_init__(self):
        for name in ("shift", "rotation", "scale", "brightness", "contrast"):
            if getattr(self, name) < 0:
                raise ValueError(f"augmentation {name} must be non-negative, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return asdict(self)

    def __call__(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A changed copy of ``images`` (N, S, S) float in [0, 1]."""
        images = np.asarray(images, dtype=np.float32)
        n, rows, cols = images.shape
        out = np.empty_like(images)
        angles = rng.uniform(-self.rotation, self.rotation, n)
        zooms = 1.0 + rng.uniform(-self.scale, self.scale, n)
        shifts = rng.uniform(-self.shift, self.shift, (n, 2)) * (cols, rows)
        flips = rng.random(n) < 0.5 if self.flip else np.zeros(n, dtype=bool)
        gains = (1.0 + rng.uniform(-self.contrast, self.contrast, n)).astype(np.float32)
        offsets = rng.uniform(-self.brightness, self.brightness, n).astype(np.float32)
        center = ((cols - 1) / 2.0, (rows - 1) / 2.0)
        for i in range(n):
            image = images[i, :, ::-1] if flips[i] else images[i]
            matrix = cv2.getRotationMatrix2D(center, float(angles[i]), float(zooms[i]))
            matrix[:, 2] += shifts[i]
            # Replicated borders look like the face's surroundings; black borders would
            # teach the network that a dark edge means nothing, then never occur at test time.
            out[i] = cv2.warpAffine(np.ascontiguousarray(image), matrix, (cols, rows),
                                    flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        mean = out.mean(axis=(1, 2), keepdims=True)
        out = (out - mean) * gains[:, None, None] + mean + offsets[:, None, None]
        return np.clip(out, 0.0, 1.0, out=out)
