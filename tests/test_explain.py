"""Explanations: input gradients through the kernel, per-row importance, the heat map."""

import cv2
import numpy as np
import pytest

from pyface.kernel import reference
from pyface.data import from_arrays
from pyface.recognition.explain import Explanation, explain, explanation, input_gradients, render
from pyface.nn.network import Architecture, Network, init_parameters
from pyface.data.preprocess import Preprocessor
from pyface.recognition.recognizer import FaceRecognizer
from pyface.training import train

ARCHITECTURES = [
    dict(views=("rows", "columns"), pooling="mean", bidirectional=True, num_layers=2),
    dict(views=("rows",), pooling="last", bidirectional=False, num_layers=1),
    dict(views=("columns",), pooling="mean", bidirectional=False, num_layers=3, dropout=0.5),
]


def _model(kernel=None, dtype=np.float32, size=12, seed=0, **arch_options):
    arch = Architecture(n_classes=3, image_size=size, hidden_size=5, **arch_options)
    params = init_parameters(arch, np.random.default_rng(seed), dtype=dtype)
    return FaceRecognizer(Network(arch, params, kernel=kernel), ["ann", "bob", "cy"], Preprocessor(size=size))


@pytest.mark.parametrize("options", ARCHITECTURES)
def test_input_gradients_match_finite_differences(options):
    # Float64 through the NumPy reference kernel: central differences are exact to ~1e-9.
    model = _model(kernel=reference, dtype=np.float64, **options)
    rng = np.random.default_rng(1)
    images = rng.random((3, 12, 12))
    gradients, logits = input_gradients(model, images)
    winners = logits.argmax(axis=1)
    np.testing.assert_allclose(logits, model.network.forward(images)[0], rtol=1e-12)
    direction = rng.standard_normal(images.shape)
    eps = 1e-5

    def score(x):
        return model.network.forward(x)[0][np.arange(3), winners]

    numeric = (score(images + eps * direction) - score(images - eps * direction)) / (2 * eps)
    np.testing.assert_allclose((gradients * direction).sum(axis=(1, 2)), numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("options", ARCHITECTURES[:2])
def test_native_kernel_gradients_match_the_reference(options):
    native = _model(**options)
    ref = FaceRecognizer(Network(native.network.arch, native.network.params, kernel=reference),
                         native.names, native.preprocessor)
    images = np.random.default_rng(2).random((4, 12, 12)).astype(np.float32)
    targets = np.array([0, 1, 2, 1])
    got, _ = input_gradients(native, images, targets)
    want, _ = input_gradients(ref, images, targets)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5 * np.abs(want).max())


def test_targets_must_index_the_names():
    model = _model(**ARCHITECTURES[1])
    with pytest.raises(ValueError, match="indices"):
        input_gradients(model, np.zeros((2, 12, 12), np.float32), np.array([0, 3]))


def test_row_contributions_add_up_to_the_score_difference():
    # Completeness of integrated gradients, exact up to the midpoint rule's error.
    model = _model(kernel=reference, dtype=np.float64, **ARCHITECTURES[0])
    image = np.random.default_rng(3).random((12, 12))
    result = explanation(model, image, steps=256)
    logits = model.network.forward(model.preprocessor(image)[None])[0][0]
    grey = model.network.forward(np.full((1, 12, 12), 0.5))[0][0]
    k = model.names.index(result.person)
    assert k == int(logits.argmax())
    assert result.score == pytest.approx(logits[k]) and result.baseline_score == pytest.approx(grey[k])
    assert result.row_contribution.sum() == pytest.approx(logits[k] - grey[k], rel=1e-3)
    np.testing.assert_allclose(result.row_contribution, result.attribution.sum(axis=1), rtol=1e-5)


def test_explain_returns_the_size_of_each_rows_contribution(tmp_path):
    model = _model(**ARCHITECTURES[0])
    raw = (np.random.default_rng(3).random((30, 20)) * 255).astype(np.uint8)
    result = explanation(model, raw)
    assert isinstance(result, Explanation)
    np.testing.assert_array_equal(result.face, model.preprocessor(raw))
    assert result.probability == pytest.approx(model.predict_proba(raw)[0].max(), rel=1e-5)
    assert result.person == model.predict(raw)[0]
    importance = explain(model, raw)
    assert importance.shape == (12,) and importance.dtype == np.float32
    np.testing.assert_allclose(importance, np.abs(result.row_contribution), rtol=1e-6)
    assert result.row_contribution.sum() == pytest.approx(result.score - result.baseline_score, rel=0.05)

    path = tmp_path / "face.png"
    cv2.imwrite(str(path), raw)
    np.testing.assert_allclose(explain(model, path), importance, rtol=1e-6)
    with pytest.raises(ValueError, match="steps"):
        explain(model, raw, steps=0)


def test_explain_a_chosen_person():
    model = _model(**ARCHITECTURES[0])
    image = np.random.default_rng(4).random((12, 12))
    logits = model.network.forward(model.preprocessor(image)[None])[0][0]
    contributions = []
    for k, name in enumerate(model.names):
        result = explanation(model, image, person=name)
        assert result.person == name and result.score == pytest.approx(logits[k], rel=1e-6)
        contributions.append(result.row_contribution)
    assert not np.allclose(contributions[0], contributions[1])
    with pytest.raises(ValueError, match="does not know 'zed'"):
        explanation(model, image, person="zed")


def test_unreadable_or_missing_images_are_reported(tmp_path):
    model = _model(**ARCHITECTURES[1])
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="not a readable image"):
        explain(model, bad)
    with pytest.raises(FileNotFoundError):
        explain(model, tmp_path / "missing.png")


def test_importance_points_at_the_rows_that_tell_people_apart():
    # Only rows 4..7 differ between the people; every other row is noise shared by all.
    rng = np.random.default_rng(0)
    images, labels = [], []
    for k in range(3):
        for _ in range(12):
            image = rng.random((16, 16)) * 0.3
            image[4:8, 5 * k : 5 * k + 5] = 1.0
            images.append(image)
            labels.append(k)
    data = from_arrays(np.stack(images), labels, names=["a", "b", "c"],
                       preprocessor=Preprocessor(size=16, equalize=None))
    model = train(data, seed=0, quiet=True, epochs=30, hidden_size=8, num_layers=1, bidirectional=False,
                  views=("rows",), augment=None, batch_size=8)
    importance = np.mean([explain(model, image) for image in data.images[::4]], axis=0)
    band = importance[4:8].mean()
    elsewhere = np.delete(importance, range(4, 8)).mean()
    assert band > 2 * elsewhere


def test_render_draws_face_heat_and_bars():
    model = _model(**ARCHITECTURES[0])
    result = explanation(model, np.random.default_rng(5).random((12, 12)))
    picture = render(result, scale=4)
    side = 12 * 4
    assert picture.dtype == np.uint8 and picture.shape == (side + 44, 2 * side + 108, 3)
    face = cv2.resize(np.rint(result.face * 255).astype(np.uint8), (side, side), interpolation=cv2.INTER_NEAREST)
    np.testing.assert_array_equal(picture[24 : 24 + side, :side, 0], face)
    # The most important row has the full-length bar; the bar area is otherwise white.
    top = int(result.row_importance.argmax())
    bar_row = picture[24 + top * 4 + 1, 2 * (side + 4) :]
    assert (bar_row[:96] != 255).any(axis=1).all()
