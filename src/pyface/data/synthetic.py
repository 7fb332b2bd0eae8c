"""Procedurally drawn grey faces: a data set that needs no download, for demos and tests.

Every person has identity parameters drawn once (face shape, skin tone, hair style and
colour, eye spacing and size, brows, nose, mouth, glasses, beard); every image of that
person varies the pose (rotation, shift, scale, turn of the head), the lighting
(brightness, contrast, a light gradient from a random side), the expression (smile, open
mouth, raised brows, half-closed eyes), the level of the dark background and the sensor noise. Nothing
here resembles a real person.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .dataset import FaceDataset, from_arrays
from .preprocess import Preprocessor

__all__ = ["synthetic_faces"]

# Faces are drawn this many times larger than asked, then shrunk: anti-aliased edges.
_SUPERSAMPLE = 4
_HAIR_STYLES = ("short", "long", "fringe", "bald", "curly")


@dataclass(frozen=True)
class _Identity:
    """What stays the same across one person's images; lengths are fractions of the side."""

    face_w: float
    face_h: float
    skin: float
    hair: float
    hair_style: str
    hairline: float
    eye_y: float
    eye_gap: float
    eye_size: float
    iris: float
    brow_lift: float
    brow_tilt: float
    brow_width: float
    nose_len: float
    nose_w: float
    mouth_y: float
    mouth_w: float
    lip: float
    smile: float
    glasses: bool
    beard: bool
    ear: float


def _identity(rng: np.random.Generator) -> _Identity:
    u = rng.uniform
    return _Identity(
        face_w=u(0.26, 0.35), face_h=u(0.34, 0.43), skin=u(0.45, 0.85), hair=u(0.05, 0.6),
        hair_style=_HAIR_STYLES[rng.integers(len(_HAIR_STYLES))], hairline=u(0.0, 0.12),
        eye_y=u(-0.1, 0.0), eye_gap=u(0.09, 0.14), eye_size=u(0.028, 0.05), iris=u(0.0, 0.35),
        brow_lift=u(0.05, 0.09), brow_tilt=u(-18, 18), brow_width=u(0.012, 0.03),
        nose_len=u(0.08, 0.16), nose_w=u(0.025, 0.06), mouth_y=u(0.18, 0.26), mouth_w=u(0.06, 0.13),
        lip=u(0.01, 0.025), smile=u(-0.02, 0.04), glasses=bool(rng.random() < 0.25),
        beard=bool(rng.random() < 0.2), ear=u(0.04, 0.08),
    )


@dataclass(frozen=True)
class _Pose:
    """What changes between two pictures of one person."""

    turn: float  # head turned: features slide sideways, the far ear shrinks
    smile: float
    mouth_open: float
    brow_raise: float
    eye_open: float


class _Canvas:
    """A supersampled grey picture in face coordinates: origin at the face centre, unit = the image side."""

    def __init__(self, size: int, background: float):
        self.S = size * _SUPERSAMPLE
        self.pixels = np.full((self.S, self.S), background, dtype=np.float32)

    def pt(self, x: float, y: float) -> tuple[int, int]:
        return int(round((0.5 + x) * self.S)), int(round((0.5 + y) * self.S))

    def ln(self, v: float) -> int:
        return max(1, int(round(v * self.S)))


def _draw_head(c: _Canvas, p: _Identity, turn: float, shift: float) -> None:
    """Ears, face, and the hair of the identity's style."""
    canvas, pt, ln = c.pixels, c.pt, c.ln
    hair, skin = float(p.hair), float(p.skin)
    if p.hair_style in ("long", "curly"):
        cv2.ellipse(canvas, pt(0, 0.02), (ln(p.face_w + 0.07), ln(p.face_h + 0.06)), 0, 180, 360, hair, -1)
        if p.hair_style == "long":
            cv2.rectangle(canvas, pt(-p.face_w - 0.07, 0.0), pt(p.face_w + 0.07, p.face_h * 0.8), hair, -1)
    for side in (-1, 1):
        scale = 1 - 0.5 * side * turn
        cv2.ellipse(canvas, pt(side * p.face_w, 0.0), (ln(p.ear * scale), ln(p.ear * 1.6)), 0, 0, 360,
                    skin * 0.9, -1)
    cv2.ellipse(canvas, pt(0, 0), (ln(p.face_w), ln(p.face_h)), 0, 0, 360, skin, -1)
    if p.hair_style != "bald":
        # The hair cap: the top of a slightly larger head outline, closed by a hairline arc.
        top = -p.face_h * (0.62 - p.hairline)
        outline = cv2.ellipse2Poly(pt(0, -0.01), (ln(p.face_w * 1.06), ln(p.face_h * 1.04)), 0, 180, 360, 5)
        hairline = cv2.ellipse2Poly(pt(shift * 0.5, top), (ln(p.face_w * 0.95), ln(0.05)), 0, 0, 180, 10)
        left_y, right_y = outline[0][1], outline[-1][1]
        cap = np.concatenate([outline, [[outline[-1][0], max(right_y, hairline[0][1])]], hairline,
                              [[outline[0][0], max(left_y, hairline[-1][1])]]]).astype(np.int32)
        cv2.fillPoly(canvas, [cap], hair)
        if p.hair_style == "fringe":
            cv2.ellipse(canvas, pt(shift - p.face_w * 0.2, top), (ln(p.face_w * 0.7), ln(0.04)), 10, 0, 180, hair, -1)
        if p.hair_style == "curly":
            for k in range(9):
                angle = np.pi * (1 + k / 8)
                centre = pt(p.face_w * np.cos(angle), -0.03 + p.face_h * np.sin(angle))
                cv2.circle(canvas, centre, ln(0.045), hair, -1)
    else:
        cv2.ellipse(canvas, pt(0, -p.face_h * 0.2), (ln(p.face_w * 1.02), ln(p.face_h * 0.5)), 0, 180, 360,
                    skin * 1.05, -1)


def _draw_eyes(c: _Canvas, p: _Identity, pose: _Pose, shift: float) -> None:
    """Eyes with their irises and brows, and glasses for those who wear them."""
    canvas, pt, ln = c.pixels, c.pt, c.ln
    turn, eye_open, brow_raise = pose.turn, pose.eye_open, pose.brow_raise
    hair = float(p.hair)
    eye_y = p.eye_y
    for side in (-1, 1):
        x = shift + side * p.eye_gap * (1 - 0.3 * side * turn)
        white = (ln(p.eye_size * 1.5), ln(p.eye_size * eye_open))
        cv2.ellipse(canvas, pt(x, eye_y), white, 0, 0, 360, 0.95, -1)
        cv2.circle(canvas, pt(x + 0.3 * turn * p.eye_size, eye_y), ln(p.eye_size * 0.6 * eye_open), p.iris, -1)
        brow_y = eye_y - p.brow_lift - brow_raise
        half = p.eye_size * 1.8
        tilt = np.deg2rad(p.brow_tilt) * side
        a = pt(x - half * np.cos(tilt), brow_y - half * np.sin(tilt))
        b = pt(x + half * np.cos(tilt), brow_y + half * np.sin(tilt))
        cv2.line(canvas, a, b, min(hair, 0.3), ln(p.brow_width))
        if p.glasses:
            cv2.circle(canvas, pt(x, eye_y), ln(p.eye_size * 2.2), 0.1, ln(0.008))
    if p.glasses:
        cv2.line(canvas, pt(shift - p.eye_gap + p.eye_size * 2.2, eye_y),
                 pt(shift + p.eye_gap - p.eye_size * 2.2, eye_y), 0.1, ln(0.008))


def _draw_nose_and_mouth(c: _Canvas, p: _Identity, pose: _Pose, shift: float) -> None:
    """Nose and nostrils, a beard for those who wear one, and the lips."""
    canvas, pt, ln = c.pixels, c.pt, c.ln
    hair, skin, eye_y = float(p.hair), float(p.skin), p.eye_y
    smile, mouth_open = pose.smile, pose.mouth_open
    nose_top, nose_tip = eye_y + 0.02, eye_y + 0.02 + p.nose_len
    nose = np.array([pt(shift * 1.3, nose_top), pt(shift * 1.3 - p.nose_w, nose_tip),
                     pt(shift * 1.3 + p.nose_w, nose_tip)], dtype=np.int32)
    cv2.fillConvexPoly(canvas, nose, skin * 0.8)
    for side in (-1, 1):
        cv2.circle(canvas, pt(shift * 1.3 + side * p.nose_w * 0.6, nose_tip), ln(0.01), skin * 0.45, -1)

    if p.beard:
        cv2.ellipse(canvas, pt(shift, p.mouth_y + 0.02), (ln(p.face_w * 0.75), ln(p.face_h * 0.45)), 0, 0, 180,
                    hair, -1)
    mouth_y = p.mouth_y
    xs = np.linspace(-p.mouth_w, p.mouth_w, 16)
    curve = mouth_y + smile * (1 - (xs / p.mouth_w) ** 2)  # corners up when smiling
    upper = np.array([pt(shift + x, y - mouth_open / 2) for x, y in zip(xs, curve)], dtype=np.int32)
    lower = np.array([pt(shift + x, y + mouth_open / 2) for x, y in zip(xs, curve)], dtype=np.int32)
    if mouth_open:
        cv2.fillPoly(canvas, [np.concatenate([upper, lower[::-1]])], 0.1)
    lips = skin * 0.55
    cv2.polylines(canvas, [upper], False, lips, ln(p.lip))
    cv2.polylines(canvas, [lower], False, lips, ln(p.lip))


def _photograph(canvas: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Light, exposure, a small rotation and shift, downsampling and sensor noise: uint8 (size, size)."""
    S = canvas.shape[0]
    u = rng.uniform
    # Light falls from a random side; the whole picture then gets a random exposure.
    angle = u(0, 2 * np.pi)
    ramp = np.cos(angle) * np.linspace(-1, 1, S)[None, :] + np.sin(angle) * np.linspace(-1, 1, S)[:, None]
    canvas *= 1 + u(0.0, 0.2) * ramp.astype(np.float32)
    canvas = (canvas - 0.5) * u(0.8, 1.2) + 0.5 + u(-0.1, 0.1)

    rotation = cv2.getRotationMatrix2D((S / 2, S / 2), u(-5, 5), u(0.95, 1.05))
    rotation[:, 2] += u(-0.03, 0.03, 2) * S
    canvas = cv2.warpAffine(canvas, rotation, (S, S), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    small = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
    small += rng.normal(0.0, u(0.01, 0.03), small.shape).astype(np.float32)
    return np.clip(np.rint(small * 255), 0, 255).astype(np.uint8)


def _draw(p: _Identity, size: int, rng: np.random.Generator) -> np.ndarray:
    """One image of a person: uint8 (size, size) grey."""
    u = rng.uniform
    c = _Canvas(size, u(0.15, 0.4))
    turn = u(-0.25, 0.25)
    smile = p.smile + u(-0.02, 0.03)
    mouth_open = u(0.0, 0.025) if rng.random() < 0.3 else 0.0
    pose = _Pose(turn=turn, smile=smile, mouth_open=mouth_open, brow_raise=u(-0.01, 0.02), eye_open=u(0.45, 1.0))
    shift = turn * p.face_w * 0.35
    _draw_head(c, p, turn, shift)
    _draw_eyes(c, p, pose, shift)
    _draw_nose_and_mouth(c, p, pose, shift)
    return _photograph(c.pixels, size, rng)


def synthetic_faces(
    n_people: int = 10,
    per_person: int = 12,
    *,
    size: int = 64,
    seed: int | None = 0,
    preprocessor: Preprocessor | None = None,
) -> FaceDataset:
    """A made-up face data set, drawn with OpenCV: ``n_people`` people, ``per_person`` images each.

    Parameters
    ----------
    n_people, per_person : int
        At least 1 each.
    size : int
        Side in pixels of the drawn images (at least 16).
    seed : int or None
        The same seed gives the same people and the same images.
    preprocessor : Preprocessor or None
        Applied to the drawn images; None means ``Preprocessor(size=size)``.

    Returns
    -------
    FaceDataset
        ``n_people * per_person`` images, person by person; names ``person01``, ``person02``, ...;
        ``paths`` are empty strings.
    """
    for name, value, low in (("n_people", n_people, 1), ("per_person", per_person, 1), ("size", size, 16)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    people_rng, image_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    identities = [_identity(people_rng) for _ in range(n_people)]
    images = np.stack([_draw(p, size, image_rng) for p in identities for _ in range(per_person)])
    labels = np.repeat(np.arange(n_people), per_person)
    width = len(str(n_people))
    names = [f"person{k + 1:0{max(2, width)}d}" for k in range(n_people)]
    preprocessor = Preprocessor(size=size) if preprocessor is None else preprocessor
    return from_arrays(images, labels, names=names, preprocessor=preprocessor)
