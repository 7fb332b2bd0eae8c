"""Preprocessor: output contract, equalisation, input kinds, settings, face cropping."""

import copy
import json
import pickle

import cv2
import numpy as np
import pytest

import pyface.data.preprocess as preprocess
from pyface.data.preprocess import Preprocessor, frontal_face_cascade_path


@pytest.fixture(scope="module")
def orl_image(att_faces_dir):
    image = cv2.imread(str(att_faces_dir / "s1" / "1.pgm"), cv2.IMREAD_UNCHANGED)
    assert image is not None and image.shape == (112, 92) and image.dtype == np.uint8
    return image


def low_contrast(shape=(64, 64), seed=0):
    return np.random.default_rng(seed).integers(100, 131, size=shape).astype(np.uint8)


# --- output contract ---------------------------------------------------------------------


@pytest.mark.parametrize("equalize", ["hist", "clahe", None])
@pytest.mark.parametrize("size", [64, 32])
def test_orl_image_becomes_float32_square_in_unit_range(orl_image, equalize, size):
    out = Preprocessor(size=size, equalize=equalize)(orl_image)
    assert out.dtype == np.float32
    assert out.shape == (size, size)
    assert 0.0 <= out.min() and out.max() <= 1.0


def test_input_is_not_modified(orl_image):
    before = orl_image.copy()
    Preprocessor()(orl_image)
    np.testing.assert_array_equal(orl_image, before)


# --- equalisation ------------------------------------------------------------------------


def test_hist_equalisation_spreads_a_narrow_histogram():
    image = low_contrast()  # 31 grey levels, 100..130
    out = Preprocessor(equalize="hist")(image)
    assert out.min() == 0.0 and out.max() == 1.0
    # An equalised image has a near-uniform distribution: its quartiles sit near 1/4, 1/2, 3/4.
    np.testing.assert_allclose(np.quantile(out, [0.25, 0.5, 0.75]), [0.25, 0.5, 0.75], atol=0.05)


def test_hist_equalisation_flattens_a_real_face(orl_image):
    out = Preprocessor(equalize="hist")(orl_image)
    plain = Preprocessor(equalize=None)(orl_image)
    counts_out = np.histogram(out, bins=8, range=(0, 1))[0]
    counts_plain = np.histogram(plain, bins=8, range=(0, 1))[0]
    # Eight equal bins each hold about an eighth of the pixels after, far from it before.
    assert counts_out.min() > 0.09 * out.size and counts_out.max() < 0.16 * out.size
    assert counts_plain.max() > 0.3 * plain.size


def test_no_equalisation_keeps_grey_levels():
    image = np.random.default_rng(1).integers(0, 256, size=(64, 64)).astype(np.uint8)
    out = Preprocessor(equalize=None)(image)
    np.testing.assert_allclose(out, image / 255.0, atol=1e-6)


def test_clahe_equalises_locally_where_hist_does_not():
    # Left half dark, right half bright, each with a little texture.
    rng = np.random.default_rng(2)
    image = np.empty((64, 64), np.uint8)
    image[:, :32] = rng.integers(20, 50, size=(64, 32))
    image[:, 32:] = rng.integers(180, 210, size=(64, 32))

    def halves_gap(out):
        return abs(out[:, 32:].mean() - out[:, :32].mean())

    assert halves_gap(Preprocessor(equalize="hist")(image)) > 0.4
    # With a loose contrast limit each tile is equalised on its own, so both halves centre on grey.
    assert halves_gap(Preprocessor(equalize="clahe", clahe_clip=40.0)(image)) < 0.1
    tight = Preprocessor(equalize="clahe", clahe_clip=2.0)(image)
    assert halves_gap(tight) > 0.3


def test_clahe_grid_changes_the_result(orl_image):
    coarse = Preprocessor(equalize="clahe", clahe_grid=2)(orl_image)
    fine = Preprocessor(equalize="clahe", clahe_grid=8)(orl_image)
    assert np.abs(coarse - fine).mean() > 0.01


def test_constant_image_stays_constant():
    for equalize in ("hist", "clahe", None):
        out = Preprocessor(equalize=equalize)(np.full((40, 40), 77, np.uint8))
        assert np.ptp(out) == 0.0, equalize


# --- kinds of input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "bgr, grey",
    # OpenCV's luma weights are 0.114 B + 0.587 G + 0.299 R; channel order is B, G, R.
    [((255, 0, 0), 0.114), ((0, 255, 0), 0.587), ((0, 0, 255), 0.299)],
)
def test_colour_is_bgr_converted_to_luma(bgr, grey):
    image = np.empty((30, 30, 3), np.uint8)
    image[:] = bgr
    out = Preprocessor(equalize=None)(image)
    np.testing.assert_allclose(out, grey, atol=1.0 / 255)


def test_alpha_channel_is_ignored():
    bgra = np.zeros((30, 30, 4), np.uint8)
    bgra[..., 2] = 255  # red
    bgra[..., 3] = np.random.default_rng(3).integers(0, 256, size=(30, 30))
    out = Preprocessor(equalize=None)(bgra)
    np.testing.assert_allclose(out, 0.299, atol=1.0 / 255)


def test_single_channel_last_axis_is_grey():
    image = low_contrast()
    np.testing.assert_array_equal(Preprocessor()(image[:, :, None]), Preprocessor()(image))


def test_sixteen_bit_full_range_maps_to_unit_range():
    image = np.zeros((64, 64), np.uint16)
    image[:, 32:] = 65535
    image[:, :16] = 32768
    out = Preprocessor(equalize=None)(image)
    np.testing.assert_allclose(out[:, 32:], 1.0)
    np.testing.assert_allclose(out[:, :16], 32768 / 65535, atol=1e-6)
    np.testing.assert_allclose(out[:, 16:32], 0.0)


def test_dim_sixteen_bit_image_keeps_its_levels_when_equalised():
    # 12-bit data in a 16-bit container: all of it lies below 1/16 of the full range.
    ramp = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)
    out = Preprocessor(equalize="hist")(ramp)
    assert out.min() == 0.0 and out.max() == 1.0
    assert len(np.unique(out)) > 200


def test_float_images_are_taken_as_unit_range_and_clipped():
    image = np.full((64, 64), 0.25)
    image[0, 0] = 7.0
    image[0, 1] = -3.0
    out = Preprocessor(equalize=None)(image)
    assert out[0, 0] == 1.0 and out[0, 1] == 0.0
    np.testing.assert_allclose(out[1:], 0.25)


def test_tiny_image_is_upscaled_smoothly():
    image = np.zeros((8, 8), np.uint8)
    image[:, 4:] = 255
    out = Preprocessor(equalize=None)(image)
    assert out.shape == (64, 64)
    assert np.all(out[:, 0] == 0.0) and np.all(out[:, -1] == 1.0)
    assert np.all(np.diff(out, axis=1) >= 0)
    # Interpolated, not blocky: the step between the halves passes through grey levels.
    assert np.any((out > 0.1) & (out < 0.9))


def test_shrinking_averages_areas():
    # Columns repeat 0, 0, 0, 255: a 4x area shrink gives a quarter everywhere, while
    # point sampling would give 0 or 1.
    image = np.tile(np.array([0, 0, 0, 255], np.uint8), (256, 64))
    out = Preprocessor(equalize=None)(image)
    np.testing.assert_allclose(out, 0.25, atol=1e-6)


@pytest.mark.parametrize(
    "image, error",
    [
        (np.zeros((10, 10, 2), np.uint8), ValueError),
        (np.zeros((10,), np.uint8), ValueError),
        (np.zeros((0, 10), np.uint8), ValueError),
        (np.zeros((10, 10), np.int32), TypeError),
        (np.full((10, 10), np.nan), ValueError),
        ([[0, 1], [1, 0]], TypeError),
    ],
)
def test_unsupported_images_are_rejected(image, error):
    with pytest.raises(error):
        Preprocessor()(image)


def test_transform_stacks_images_of_different_sizes(orl_image):
    pre = Preprocessor(size=32)
    images = [orl_image, low_contrast((20, 50)), np.zeros((5, 5, 3), np.uint8)]
    out = pre.transform(images)
    assert out.shape == (3, 32, 32) and out.dtype == np.float32
    for row, image in zip(out, images):
        np.testing.assert_array_equal(row, pre(image))


def test_transform_of_nothing_is_empty():
    out = Preprocessor(size=16).transform([])
    assert out.shape == (0, 16, 16) and out.dtype == np.float32


# --- settings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"size": 0},
        {"size": 1.5},
        {"size": True},
        {"equalize": "histogram"},
        {"detect_faces": "yes"},
        {"clahe_clip": 0.0},
        {"clahe_clip": "2"},
        {"clahe_clip": float("nan")},
        {"clahe_grid": 0},
        {"cascade_path": 3},
    ],
)
def test_bad_settings_raise_value_error(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        Preprocessor(**kwargs)


def test_settings_round_trip_through_json():
    pre = Preprocessor(size=48, equalize="clahe", clahe_clip=3.5, clahe_grid=4)
    back = Preprocessor.from_dict(json.loads(json.dumps(pre.to_dict())))
    assert back == pre
    assert back.to_dict() == {
        "size": 48,
        "equalize": "clahe",
        "detect_faces": "auto",
        "face_scale": 0.8,
        "clahe_clip": 3.5,
        "clahe_grid": 4,
        "cascade_path": None,
    }
    image = low_contrast()
    np.testing.assert_array_equal(back(image), pre(image))


def test_equality_is_by_settings():
    assert Preprocessor() == Preprocessor(size=64, equalize="hist")
    assert Preprocessor() != Preprocessor(equalize=None)
    assert Preprocessor() != Preprocessor(clahe_grid=4)
    assert Preprocessor() != "Preprocessor()"


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match="colour"):
        Preprocessor.from_dict({"size": 64, "colour": True})


def test_repr_rebuilds_an_equal_preprocessor():
    pre = Preprocessor(size=32, equalize=None)
    text = repr(pre)
    assert text.startswith("Preprocessor(") and "size=32" in text and "equalize=None" in text
    assert eval(text, {"Preprocessor": Preprocessor}) == pre


# --- face detection ----------------------------------------------------------------------


class FakeCascade:
    """Stands in for cv2.CascadeClassifier: returns fixed boxes, refuses to be copied like it."""

    def __init__(self, boxes):
        self.boxes = boxes
        self.seen = []

    def detectMultiScale(self, image, **kwargs):
        self.seen.append(image)
        return np.array(self.boxes, dtype=np.int32).reshape(-1, 4)

    def __reduce__(self):
        raise TypeError("cannot pickle 'cv2.CascadeClassifier' object")


@pytest.fixture
def fake_cascade(monkeypatch):
    cascade = FakeCascade([])
    monkeypatch.setattr(preprocess, "_load_cascade", lambda path: cascade)
    return cascade


def test_detection_crops_to_the_largest_face(fake_cascade):
    image = np.zeros((100, 100), np.uint8)
    image[10:50, 20:60] = 200  # the large "face"
    image[70:80, 70:80] = 50  # a small one
    fake_cascade.boxes = [(70, 70, 10, 10), (20, 10, 40, 40)]
    pre = Preprocessor(size=16, equalize=None, detect_faces=True)
    out = pre(image)
    np.testing.assert_allclose(out, 200 / 255, atol=1e-6)
    assert (pre.n_faces_found_, pre.n_faces_missed_) == (1, 0)
    assert fake_cascade.seen[0].dtype == np.uint8 and fake_cascade.seen[0].shape == (100, 100)


def test_detection_falls_back_to_the_whole_image_and_counts_it(fake_cascade):
    image = np.zeros((100, 100), np.uint8)
    image[:, 50:] = 255
    pre = Preprocessor(size=16, equalize=None, detect_faces=True)
    out = pre.transform([image, image])
    np.testing.assert_array_equal(out[0], Preprocessor(size=16, equalize=None)(image))
    assert (pre.n_faces_found_, pre.n_faces_missed_) == (0, 2)


def test_find_face_without_detection_is_an_error():
    with pytest.raises(RuntimeError, match="detect_faces=True"):
        Preprocessor(detect_faces=False).find_face(np.zeros((10, 10), np.uint8))


def test_detecting_preprocessor_pickles_and_copies(fake_cascade):
    pre = Preprocessor(detect_faces=True)
    assert pickle.loads(pickle.dumps(pre)) == pre
    assert copy.deepcopy(pre) == pre


def test_missing_cascade_class_is_a_clear_error(monkeypatch):
    monkeypatch.delattr(cv2, "CascadeClassifier", raising=False)
    with pytest.raises(RuntimeError, match="CascadeClassifier.*detect_faces=False"):
        Preprocessor(detect_faces=True)


class StubClassifier:
    def __init__(self, path):
        self.path = path

    def empty(self):
        return not self.path.endswith(".xml")


def test_missing_cascade_file_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(cv2, "CascadeClassifier", StubClassifier, raising=False)
    monkeypatch.setattr(cv2.data, "haarcascades", str(tmp_path) + "/")
    assert frontal_face_cascade_path() is None
    with pytest.raises(RuntimeError, match="cascade_path"):
        Preprocessor(detect_faces=True)
    with pytest.raises(RuntimeError, match="could not load"):
        Preprocessor(detect_faces=True, cascade_path=str(tmp_path / "cascade.txt"))


def test_bundled_cascade_is_found_when_present(monkeypatch, tmp_path):
    monkeypatch.setattr(cv2, "CascadeClassifier", StubClassifier, raising=False)
    monkeypatch.setattr(cv2.data, "haarcascades", str(tmp_path) + "/")
    (tmp_path / "haarcascade_frontalface_default.xml").write_text("<opencv_storage/>")
    assert frontal_face_cascade_path() == str(tmp_path / "haarcascade_frontalface_default.xml")
    pre = Preprocessor(detect_faces=True)
    assert pre._cascade.path == frontal_face_cascade_path()


def test_bundled_cascade_finds_real_faces(att_faces_dir):
    # The pinned OpenCV ships the frontal-face cascade; on ORL it finds most faces.
    pre = Preprocessor(detect_faces=True)
    images = [cv2.imread(str(att_faces_dir / f"s{p}" / "1.pgm"), cv2.IMREAD_GRAYSCALE) for p in range(1, 41)]
    boxes = [pre.find_face(image) for image in images]
    found = [b for b in boxes if b is not None]
    assert len(found) >= 28, f"a face in only {len(found)} of 40 ORL images"
    for (x, y, w, h), image in zip(found, images):
        assert 0 <= x and 0 <= y and x + w <= image.shape[1] and y + h <= image.shape[0]
        assert w * h < image.size
    out = pre.transform(images)
    assert out.shape == (40, 64, 64) and pre.n_faces_found_ == len(found)


# ---------------------------------------------------------------------------- photos and face crops


def test_face_crops_like_orl_pass_through_the_default_unchanged(att_faces_dir):
    # The default finds faces in photos but leaves images that already are face crops
    # whole: on ORL it gives exactly the images of no detection at all.
    paths = sorted(att_faces_dir.glob("*/*.pgm"))
    images = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in paths]
    np.testing.assert_array_equal(Preprocessor().transform(images),
                                  Preprocessor(detect_faces=False).transform(images))
    assert len(images) == 400


def test_photos_are_never_taken_for_face_crops(lfw_dir):
    # "auto" first takes a quick look for one face spanning the image; on photos, whose faces
    # span about half of the width, it must find none and crop as a full search does.
    photos = sorted(lfw_dir.glob("*/*.jpg"))[::25][:200]
    pre, cropped = Preprocessor(size=32), 0
    for path in photos:
        photo = cv2.imread(str(path), cv2.IMREAD_COLOR)
        faces = pre.faces(photo)
        if faces and faces[0][0][2] < 0.6 * photo.shape[1]:
            np.testing.assert_array_equal(pre(photo), faces[0][1], err_msg=str(path))
            cropped += 1
    assert cropped >= 0.9 * len(photos), f"only {cropped} of {len(photos)} photos cropped to a face"


def _photo(lfw_dir, name):
    return cv2.imread(str(next((lfw_dir / name).glob("*.jpg"))), cv2.IMREAD_COLOR)


def test_a_photo_is_cropped_around_its_face(lfw_dir):
    photo = _photo(lfw_dir, sorted(p.name for p in lfw_dir.iterdir() if p.is_dir())[0])
    pre = Preprocessor(size=32, equalize=None)
    (x, y, w, h), = pre.find_faces(photo)[:1]
    # Deep-funneled photos are centred on the face, which spans about half of the width.
    assert abs(x + w / 2 - 125) < 20 and abs(y + h / 2 - 125) < 25 and 80 < w < 160
    side = round(0.8 * w)
    left, top = round(x + w / 2 - side / 2), round(y + h / 2 - side / 2)
    grey = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255
    expected = cv2.resize(grey[top : top + side, left : left + side], (32, 32), interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(pre(photo), expected, atol=1 / 255)
    assert (pre.n_faces_found_, pre.n_faces_missed_) == (1, 0)


def test_every_face_of_a_group_photo_comes_with_its_box(lfw_dir):
    names = sorted(p.name for p in lfw_dir.iterdir() if p.is_dir())[:2]
    left, right = _photo(lfw_dir, names[0]), cv2.resize(_photo(lfw_dir, names[1]), (200, 200))
    group = np.zeros((250, 450, 3), np.uint8)
    group[:, :250], group[25:225, 250:] = left, right
    pre = Preprocessor(size=24)
    faces = pre.faces(group)
    assert len(faces) == 2
    (box_a, face_a), (box_b, face_b) = faces
    assert box_a[2] * box_a[3] >= box_b[2] * box_b[3]  # largest first
    assert box_a[0] + box_a[2] / 2 < 250 < box_b[0] + box_b[2] / 2  # the big face is on the left
    assert face_a.shape == face_b.shape == (24, 24)
    np.testing.assert_array_equal(face_a, pre(group))  # the largest face is what __call__ reads


def test_a_face_at_the_edge_is_cropped_with_replicated_edges():
    pre = Preprocessor(size=8, equalize=None, detect_faces=False, face_scale=2.0)
    grey = np.arange(100, dtype=np.float32).reshape(10, 10) / 100
    crop = pre._crop(grey, (0, 0, 4, 4))  # an 8 x 8 square around (2, 2) reaches 2 pixels past the edges
    assert crop.shape == (8, 8)
    np.testing.assert_array_equal(crop[:3, :3], grey[0, 0])
    np.testing.assert_array_equal(crop[2:, 2:], grey[:6, :6])


def test_settings_saved_before_face_finding_keep_their_meaning():
    old = Preprocessor.from_dict({"size": 64, "equalize": "hist", "detect_faces": True})
    assert old.face_scale == 1.0 and old.detect_faces is True
    assert Preprocessor.from_dict({"size": 64}).detect_faces is False


@pytest.mark.parametrize("kwargs", [{"detect_faces": "yes"}, {"face_scale": 0}, {"face_scale": -1.0}])
def test_bad_face_settings_are_refused(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        Preprocessor(**kwargs)


def test_a_model_names_every_face_of_a_group_photo(lfw_dir, tiny_model, tmp_path):
    import pyface

    names = sorted(p.name for p in lfw_dir.iterdir() if p.is_dir())[:2]
    group = np.zeros((250, 500, 3), np.uint8)
    group[:, :250], group[:, 250:] = _photo(lfw_dir, names[0]), _photo(lfw_dir, names[1])
    model = pyface.FaceRecognizer(tiny_model.network, tiny_model.names, Preprocessor(size=16),
                                  templates=tiny_model.templates, template_labels=tiny_model.template_labels,
                                  threshold=-1.0)
    found = model.identify_faces(group)
    assert [box for box, _, _ in found] == model.preprocessor.find_faces(group)
    assert len(found) == 2 and all(name in model.names and -1 <= score <= 1 for _, name, score in found)
    # By hand: each crop's unit embedding against each person's templates, half the best
    # template's cosine and half the unit mean template's; the person scoring highest.
    crops = np.stack([face for _, face in model.preprocessor.faces(group)])
    emb = model.network.features(crops).astype(np.float64)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    people = np.unique(model.template_labels)
    scores = []
    for person in people:
        own = model.templates[model.template_labels == person].astype(np.float64)
        mean = own.mean(axis=0) / np.linalg.norm(own.mean(axis=0))
        scores.append(0.5 * (emb @ own.T).max(axis=1) + 0.5 * emb @ mean)
    best = people[np.argmax(np.stack(scores, axis=1), axis=1)]
    assert [name for _, name, _ in found] == [model.names[k] for k in best]
    np.testing.assert_allclose([score for _, _, score in found], np.max(scores, axis=0), atol=1e-5)
    assert model.identify_faces(np.zeros((100, 100), np.uint8)) == []
