"""The fixed descriptions of a face the descriptor projects: gradient and local binary pattern histograms."""

import cv2
import numpy as np
import pytest

from pyface.recognition.histograms import (KINDS, PATTERNS, face_histograms, gradient_histograms, histogram_size,
                                           pattern_histograms)


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


def _patterns_one_by_one(levels: np.ndarray) -> np.ndarray:
    """Each pixel's 8-bit pattern, pixel by pixel, the edge repeated beyond the face."""
    size = levels.shape[0]
    out = np.zeros_like(levels, dtype=np.int64)
    around = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))
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


def test_both_kinds_lie_side_by_side():
    faces = _faces(2, 32)
    both = face_histograms(faces, "hog+lbp")
    np.testing.assert_array_equal(both, np.hstack([gradient_histograms(faces), pattern_histograms(faces)]))
    assert both.shape[1] == histogram_size(32, "hog+lbp") == histogram_size(32, "hog") + histogram_size(32, "lbp")
    assert KINDS == ("hog", "lbp", "hog+lbp")
    with pytest.raises(ValueError, match="descriptor kind must be one of"):
        face_histograms(faces, "sift")


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
