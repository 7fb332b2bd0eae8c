"""The fixed descriptions of a face the descriptor projects: gradient and local binary pattern histograms."""

import cv2
import numpy as np
import pytest

from pyface.recognition.histograms import (KINDS, PATTERNS, PHASES, face_histograms, gradient_histograms,
                                           histogram_size, pattern_histograms, phase_histograms)
from pyface.recognition.histograms import _phase_codes  # the codes themselves, before they are counted


def _faces(n=6, size=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size)).astype(np.float32) / 255.0


def test_gradient_histograms_have_opencv_layout_and_are_square_roots():
    faces = _faces(3, 64)
    h = gradient_histograms(faces)
    # 7 x 7 blocks of 2 x 2 cells of 9 orientations: OpenCV's layout for a 64-pixel window.
    assert h.shape == (3, 7 * 7 * 2 * 2 * 9) == (3, histogram_size(64, "hog")) and h.dtype == np.float32
    hog = cv2.HOGDescriptor((64, 64), (16, 16), (8, 8), (8, 8), 9)
    raw = hog.compute(np.rint(faces[1] * 255).astype(np.uint8)).ravel()
    np.testing.assert_allclose(h[1] ** 2, raw, rtol=1e-5, atol=1e-7)


def test_gradient_histograms_ignore_a_change_of_brightness():
    # Gradients do not see an offset of every level: the descriptor reads shape, not light.
    levels = np.random.default_rng(1).integers(0, 200, (2, 32, 32))
    np.testing.assert_allclose(gradient_histograms(levels / 255.0), gradient_histograms((levels + 40) / 255.0),
                               atol=1e-6)


def _patterns_one_by_one(levels: np.ndarray, radius: int = 1) -> np.ndarray:
    """Each pixel's 8-bit pattern, pixel by pixel, the edge repeated beyond the face."""
    size = levels.shape[0]
    out = np.zeros_like(levels, dtype=np.int64)
    clockwise = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))
    around = [(radius * dr, radius * dc) for dr, dc in clockwise]
    for r in range(size):
        for c in range(size):
            for bit, (dr, dc) in enumerate(around):
                rr, cc = min(max(r + dr, 0), size - 1), min(max(c + dc, 0), size - 1)
                out[r, c] |= int(levels[rr, cc] >= levels[r, c]) << bit
    return out


def _is_uniform(code: int) -> bool:
    bits = [(code >> i) & 1 for i in range(8)]
    return sum(bits[i] != bits[(i + 1) % 8] for i in range(8)) <= 2


def test_pattern_histograms_count_each_cells_uniform_patterns():
    levels = np.random.default_rng(3).integers(0, 256, (16, 16))
    h = pattern_histograms(levels[None] / 255.0)
    assert h.shape == (1, 4 * PATTERNS) == (1, histogram_size(16, "lbp")) and PATTERNS == 59
    codes = _patterns_one_by_one(levels)
    uniform = [code for code in range(256) if _is_uniform(code)]
    assert len(uniform) == 58
    for cell, (r, c) in enumerate([(0, 0), (0, 8), (8, 0), (8, 8)]):
        expected = np.zeros(PATTERNS)
        for code in codes[r : r + 8, c : c + 8].ravel():
            expected[uniform.index(code) if code in uniform else 58] += 1
        np.testing.assert_allclose(h[0, cell * PATTERNS : (cell + 1) * PATTERNS] ** 2, expected / 64, atol=1e-6)


def test_pattern_histograms_ignore_any_change_of_light_that_keeps_the_order_of_greys():
    levels = np.random.default_rng(4).integers(0, 128, (2, 24, 24))
    brighter = 2 * levels + 1  # strictly increasing: the same order, ties and all
    np.testing.assert_array_equal(pattern_histograms(levels / 255.0), pattern_histograms(brighter / 255.0))
    assert not np.array_equal(pattern_histograms(levels / 255.0), pattern_histograms(levels[:, ::-1] / 255.0))


def test_pattern_histograms_of_many_faces_are_those_of_each():
    faces = _faces(300, 16)  # more than are counted at once
    many = pattern_histograms(faces)
    for k in (0, 255, 256, 299):
        np.testing.assert_array_equal(many[k], pattern_histograms(faces[k : k + 1])[0])
    assert pattern_histograms(faces[:0]).shape == (0, histogram_size(16, "lbp"))


def _cell_shares(codes: np.ndarray, values: int) -> np.ndarray:
    """Square roots of each 8 x 8 cell's shares of ``values`` codes, cells row by row, counted one by one."""
    cells = codes.shape[0] // 8
    out = np.zeros((cells * cells, values))
    for r in range(cells):
        for c in range(cells):
            for code in codes[8 * r : 8 * r + 8, 8 * c : 8 * c + 8].ravel():
                out[r * cells + c, code] += 1
    return np.sqrt(out / 64).ravel()


def test_pattern_histograms_at_radius_two_compare_neighbours_two_pixels_away():
    levels = np.random.default_rng(5).integers(0, 256, (16, 16))
    uniform = [code for code in range(256) if _is_uniform(code)]
    codes = np.vectorize(lambda code: uniform.index(code) if code in uniform else 58)(_patterns_one_by_one(levels, 2))
    np.testing.assert_allclose(pattern_histograms(levels[None] / 255.0, radius=2)[0], _cell_shares(codes, PATTERNS),
                               atol=1e-6)
    assert not np.allclose(pattern_histograms(levels[None] / 255.0, radius=2), pattern_histograms(levels[None] / 255.0))
    for radius in (0, 1.5, -1):
        with pytest.raises(ValueError, match="radius"):
            pattern_histograms(levels[None] / 255.0, radius=radius)


def _phases_one_by_one(face: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel's local phase code, from the sums over its 7 x 7 neighbourhood (the face
    mirrored at its edge, the edge pixel repeated) of the face times exp(-2 pi i (u . offset)),
    and where any of its 8 parts is too near 0 for its sign to be sure (the mirror makes some
    exactly 0 at the corners)."""
    size = face.shape[0]
    padded = np.pad(face.astype(np.float64), 3, mode="symmetric")
    frequencies = [(0, 1), (1, 0), (1, 1), (1, -1)]  # (rows, columns), in 1/7 cycles per pixel
    offsets = np.arange(-3, 4)
    codes = np.zeros((size, size), dtype=np.int64)
    unsure = np.zeros((size, size), dtype=bool)
    for r in range(size):
        for c in range(size):
            around = padded[r : r + 7, c : c + 7]
            for k, (fy, fx) in enumerate(frequencies):
                wave = np.exp(-2j * np.pi * (fy * offsets[:, None] + fx * offsets[None, :]) / 7)
                response = np.sum(around * wave)
                codes[r, c] |= (int(response.real > 0) << (2 * k)) | (int(response.imag > 0) << (2 * k + 1))
                unsure[r, c] |= min(abs(response.real), abs(response.imag)) < 1e-5
    return codes, unsure


def test_phase_histograms_count_each_cells_codes_of_local_phase():
    face = np.random.default_rng(6).random((16, 16)).astype(np.float32)
    h = phase_histograms(face[None])
    assert h.shape == (1, 4 * PHASES) and h.dtype == np.float32 and PHASES == 256
    expected, unsure = _phases_one_by_one(face)
    codes = _phase_codes(face[None])[0]
    assert unsure.sum() <= 4
    np.testing.assert_array_equal(codes[~unsure], expected[~unsure])
    np.testing.assert_allclose(h[0], _cell_shares(codes, PHASES), atol=1e-6)
    # A little blur leaves most codes as they were; another face does not.
    blurred = cv2.GaussianBlur(face, (3, 3), 0.5)
    other = np.random.default_rng(7).random((16, 16)).astype(np.float32)
    same = (expected == _phases_one_by_one(blurred)[0]).mean()
    assert same > 0.6 > (expected == _phases_one_by_one(other)[0]).mean()
    np.testing.assert_array_equal(phase_histograms(np.stack([face, other]))[1], phase_histograms(other[None])[0])


def test_half_size_patterns_read_each_two_by_two_block_as_its_mean():
    # Levels that stay whole numbers when four of them are averaged: no rounding to tell apart.
    levels = 4 * np.random.default_rng(8).integers(0, 64, (2, 32, 32))
    blocks = levels.reshape(2, 16, 2, 16, 2).mean(axis=(2, 4))
    rich = face_histograms(levels / 255.0, "hog+lbp+lbp2+lbph+lpq")
    start = histogram_size(32, "hog") + 2 * histogram_size(32, "lbp")
    np.testing.assert_allclose(rich[:, start : start + histogram_size(16, "lbp")], pattern_histograms(blocks / 255.0),
                               atol=1e-6)


def test_both_kinds_lie_side_by_side():
    faces = _faces(2, 32)
    both = face_histograms(faces, "hog+lbp")
    np.testing.assert_array_equal(both, np.hstack([gradient_histograms(faces), pattern_histograms(faces)]))
    assert both.shape[1] == histogram_size(32, "hog+lbp") == histogram_size(32, "hog") + histogram_size(32, "lbp")
    assert KINDS == ("hog", "lbp", "hog+lbp", "hog+lbp+lbp2+lbph+lpq")
    with pytest.raises(ValueError, match="descriptor kind must be one of"):
        face_histograms(faces, "sift")


def test_every_histogram_lies_side_by_side_in_order():
    faces = _faces(2, 48)
    rich = face_histograms(faces, "hog+lbp+lbp2+lbph+lpq")
    half = faces.reshape(2, 24, 2, 24, 2).mean(axis=(2, 4))  # 24-pixel faces: 3 x 3 cells
    sizes = [histogram_size(48, "hog"), 2 * histogram_size(48, "lbp"), 9 * PATTERNS, 36 * PHASES]
    assert rich.shape == (2, sum(sizes)) == (2, histogram_size(48, "hog+lbp+lbp2+lbph+lpq"))
    np.testing.assert_array_equal(rich[:, : sizes[0] + sizes[1]], np.hstack([
        gradient_histograms(faces), pattern_histograms(faces), pattern_histograms(faces, radius=2)]))
    assert rich[:, sizes[0] + sizes[1] : -sizes[3]].shape == pattern_histograms(half).shape
    np.testing.assert_array_equal(rich[:, -sizes[3] :], phase_histograms(faces))
    with pytest.raises(ValueError, match="half-size face need faces of at least 32 pixels, got 30"):
        face_histograms(_faces(2, 30), "hog+lbp+lbp2+lbph+lpq")
    with pytest.raises(ValueError, match="at least 32 pixels, got 24"):
        histogram_size(24, "hog+lbp+lbp2+lbph+lpq")


@pytest.mark.parametrize("kind", KINDS)
def test_faces_off_the_cell_grid_are_read_in_their_centred_part(kind):
    faces = _faces(2, 37)
    assert histogram_size(37, kind) == histogram_size(32, kind)
    # The window's own edge pixels compare with neighbours outside it in the larger face; inside
    # it the patterns and gradients agree.
    wide, window = face_histograms(faces, kind), face_histograms(faces[:, 2:34, 2:34], kind)
    assert wide.shape == window.shape
    if kind == "hog":
        np.testing.assert_array_equal(wide, window)


@pytest.mark.parametrize("shape", [(3, 12, 12), (3, 16, 20), (16, 16)])
@pytest.mark.parametrize("kind", KINDS)
def test_histograms_refuse_faces_they_cannot_read(shape, kind):
    with pytest.raises(ValueError, match="faces"):
        face_histograms(np.zeros(shape, np.float32), kind)
