"""Scores normalized against a cohort: the offsets, and every score a normalizing model gives."""

import numpy as np
import pytest

import pyface
from pyface.recognition.cohort import NEAREST, cohort_means, cohort_offsets, identity_offsets, normalized
from pyface.recognition.open_set import equal_error_rate, identification_scores, pair_scores, roc_curve
from pyface.recognition.recognizer import FaceRecognizer


def _unit(rows):
    rows = np.asarray(rows, dtype=np.float64)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _offset_by_hand(rows, cohort, nearest):
    """Each row's mean of its ``nearest`` highest cosines with the cohort, one row and member at a time."""
    out = []
    for row in np.asarray(rows, dtype=np.float64):
        cosines = sorted(float(row @ member) for member in np.asarray(cohort, dtype=np.float64))
        out.append(np.mean(cosines[-nearest:]))
    return np.array(out)


def test_the_cohort_is_each_persons_unit_mean_template():
    rng = np.random.default_rng(0)
    templates = _unit(rng.normal(size=(7, 5)))
    labels = np.array([2, 0, 2, 1, 0, 2, 1])
    cohort = cohort_means(templates, labels)
    assert cohort.dtype == np.float32 and cohort.shape == (3, 5)
    for k in range(3):
        mean = templates[labels == k].mean(axis=0)
        np.testing.assert_allclose(cohort[k], mean / np.linalg.norm(mean), atol=1e-6)


@pytest.mark.parametrize("nearest", [1, 3, 50])
def test_offsets_are_the_mean_of_the_nearest_cosines(nearest):
    rng = np.random.default_rng(1)
    faces, cohort = _unit(rng.normal(size=(9, 6))), _unit(rng.normal(size=(11, 6)))
    # 50 is more than the 11 members: all of them.
    np.testing.assert_allclose(cohort_offsets(faces, cohort, nearest=nearest),
                               _offset_by_hand(faces, cohort, min(nearest, 11)), atol=1e-6)


@pytest.mark.parametrize("nearest", [0, -1, 2.5, True, "50"])
def test_offsets_refuse_a_bad_count(nearest):
    with pytest.raises(ValueError, match="nearest must be a positive integer"):
        cohort_offsets(np.eye(3), np.eye(3), nearest=nearest)


def test_an_empty_cohort_is_refused():
    with pytest.raises(ValueError, match="at least one member"):
        cohort_offsets(np.eye(3), np.zeros((0, 3)))


def test_normalized_scores_take_off_the_mean_of_both_offsets():
    scores = np.array([[0.5, 0.2], [0.1, 0.9], [0.3, 0.3]], dtype=np.float32)
    faces, identities = np.array([0.2, 0.4, 0.0]), np.array([0.1, 0.3])
    out = normalized(scores, faces, identities)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.35, -0.05], [-0.15, 0.55], [0.25, 0.15]], atol=1e-7)
    # An identity's offset is the mean of its templates': runs of 2, 1 and 3 templates.
    np.testing.assert_allclose(identity_offsets([1.0, 3.0, 5.0, 0.0, 3.0, 6.0], np.array([0, 2, 3])), [2.0, 5.0, 3.0])


def test_pair_scores_with_offsets_match_a_loop_over_pairs():
    rng = np.random.default_rng(2)
    e, labels, offsets = _unit(rng.normal(size=(8, 4))), np.array([0, 1, 0, 2, 1, 2, 0, 1]), rng.uniform(0, 0.5, 8)
    genuine, impostor = pair_scores(e, labels, offsets=offsets)
    expected = {True: [], False: []}
    for i in range(8):
        for j in range(i + 1, 8):
            expected[bool(labels[i] == labels[j])].append(e[i] @ e[j] - (offsets[i] + offsets[j]) / 2)
    np.testing.assert_allclose(genuine, expected[True], atol=1e-12)
    np.testing.assert_allclose(impostor, expected[False], atol=1e-12)
    with pytest.raises(ValueError, match="one value per face"):
        pair_scores(e, labels, offsets=offsets[:5])


def test_identification_scores_with_offsets_match_the_rule_by_hand():
    rng = np.random.default_rng(3)
    e, labels = _unit(rng.normal(size=(7, 4))), np.array([0, 1, 0, 1, 2, 0, 2])
    gallery, owners = _unit(rng.normal(size=(4, 4))), np.array([5, 6, 5, 5])
    offsets, gallery_offsets = rng.uniform(0, 0.5, 7), rng.uniform(0, 0.5, 4)

    def score(face, templates, template_offsets):
        cosines = templates @ e[face]
        mean = templates.sum(axis=0)
        rule = 0.5 * cosines.max() + 0.5 * (e[face] @ mean) / np.linalg.norm(mean)
        return rule - 0.5 * (offsets[face] + np.mean(template_offsets))

    genuine, impostor = [], []
    for face in range(7):
        own = [i for i in range(7) if labels[i] == labels[face] and i != face]
        genuine.append(score(face, e[own], offsets[own]))
        others = [score(face, e[labels == k], offsets[labels == k]) for k in set(labels) - {labels[face]}]
        others += [score(face, gallery[owners == k], gallery_offsets[owners == k]) for k in (5, 6)]
        impostor.append(max(others))
    got = identification_scores(e, labels, gallery=gallery, gallery_labels=owners, offsets=offsets,
                                gallery_offsets=gallery_offsets)
    np.testing.assert_allclose(got[0], genuine, atol=1e-12)
    np.testing.assert_allclose(got[1], impostor, atol=1e-12)
    with pytest.raises(ValueError, match="go together"):
        identification_scores(e, labels, gallery=gallery, offsets=offsets)


@pytest.fixture(scope="module")
def normalizing(tiny_model, make_dataset):
    """The tiny model's parts, scoring against its cohort of three people (the two nearest)."""
    model = FaceRecognizer(tiny_model.network, tiny_model.names, tiny_model.preprocessor,
                           templates=tiny_model.templates, template_labels=tiny_model.template_labels,
                           threshold=0.1, verify_threshold=0.2,
                           cohort=cohort_means(tiny_model.templates, tiny_model.template_labels), cohort_nearest=2)
    strangers = make_dataset(n_classes=3, per_class=4, seed=9)
    model.enroll("newcomer", strangers.images[:3])
    return model, strangers


def _expected_scores(model, images):
    """Each face's score for each identity of the model's gallery, from cosines and offsets by hand."""
    names, templates, owners = model.gallery()
    cohort = np.stack([_unit(model.templates[model.template_labels == k]).sum(axis=0) for k in range(3)])
    cohort = _unit(cohort)
    faces = model.embed(images).astype(np.float64)
    face_offsets = _offset_by_hand(faces, cohort, 2)
    out = np.empty((len(faces), len(names)))
    for k in range(len(names)):
        own = templates[owners == k].astype(np.float64)
        mean = own.sum(axis=0) / np.linalg.norm(own.sum(axis=0))
        rule = 0.5 * (faces @ own.T).max(axis=1) + 0.5 * faces @ mean
        out[:, k] = rule - 0.5 * (face_offsets + _offset_by_hand(own, cohort, 2).mean())
    return names, out, face_offsets


def test_a_normalizing_model_identifies_searches_and_verifies_by_normalized_scores(normalizing):
    model, strangers = normalizing
    names, expected, face_offsets = _expected_scores(model, strangers)
    assert names[-1] == "newcomer" and np.ptp(face_offsets) > 1e-3  # the offsets differ from face to face
    answer, scores = model.identify(strangers, threshold=-np.inf)
    np.testing.assert_allclose(scores, expected.max(axis=1), atol=1e-5)
    assert answer.tolist() == [names[k] for k in expected.argmax(axis=1)]
    found, ranked = model.search(strangers, k=2)
    np.testing.assert_allclose(ranked, -np.sort(-expected, axis=1)[:, :2], atol=1e-5)
    # The threshold applies to the normalized score.
    limit = float(np.median(expected.max(axis=1)))
    assert (model.identify(strangers, threshold=limit)[0] == "unknown").tolist() == \
        (expected.max(axis=1) < limit).tolist()
    a, b = strangers.images[0], strangers.images[5]
    ea, eb = model.embed(a)[0].astype(np.float64), model.embed(b)[0].astype(np.float64)
    same, score = model.verify(a, b)
    assert score == pytest.approx(ea @ eb - 0.5 * (face_offsets[0] + face_offsets[5]), abs=1e-5)
    assert same == (score >= 0.2)


def test_enrolment_changes_reach_the_offsets(normalizing):
    model, strangers = normalizing
    model.add_images("newcomer", strangers.images[3:5])
    model.rename("newcomer", "regular")
    names, expected, _ = _expected_scores(model, strangers)
    np.testing.assert_allclose(model.search(strangers, k=4)[1], -np.sort(-expected, axis=1), atol=1e-5)
    model.remove("regular")
    names, expected, _ = _expected_scores(model, strangers)
    assert "regular" not in names
    np.testing.assert_allclose(model.identify(strangers, threshold=-np.inf)[1], expected.max(axis=1), atol=1e-5)


def test_plain_models_score_plain_cosines(tiny_model, make_dataset):
    faces = make_dataset(n_classes=3, per_class=2, seed=4)
    assert tiny_model.cohort_nearest is None
    np.testing.assert_array_equal(tiny_model.score_offsets(tiny_model.embed(faces)), np.zeros(6))
    ea, eb = tiny_model.embed(faces.images[:2]).astype(np.float64)
    assert tiny_model.verify(faces.images[0], faces.images[1], threshold=0.0)[1] == pytest.approx(ea @ eb, abs=1e-6)


def test_the_cohort_setting_travels_with_the_model_file(normalizing, tmp_path):
    model, strangers = normalizing
    model.save(tmp_path / "m.pyface")
    loaded = pyface.load_model(tmp_path / "m.pyface")
    assert loaded.cohort_nearest == 2
    np.testing.assert_array_equal(loaded.cohort, model.cohort)
    np.testing.assert_array_equal(loaded.identify(strangers, threshold=-np.inf)[1],
                                  model.identify(strangers, threshold=-np.inf)[1])


def test_a_door_of_enrolled_people_alone_scores_as_the_model_does(normalizing):
    # Without the trained people's templates, the cohort still normalizes the scores.
    model, strangers = normalizing
    door = FaceRecognizer(model.network, model.names, model.preprocessor, cohort=model.cohort,
                          cohort_nearest=model.cohort_nearest)
    door.enroll("newcomer", strangers.images[:3])
    face_offsets = _offset_by_hand(model.embed(strangers), model.cohort, 2)
    enrolled = model.embed(strangers.images[:3]).astype(np.float64)
    mean = enrolled.sum(axis=0) / np.linalg.norm(enrolled.sum(axis=0))
    faces = model.embed(strangers).astype(np.float64)
    rule = 0.5 * (faces @ enrolled.T).max(axis=1) + 0.5 * faces @ mean
    expected = rule - 0.5 * (face_offsets + _offset_by_hand(enrolled, model.cohort, 2).mean())
    np.testing.assert_allclose(door.identify(strangers, threshold=-np.inf)[1], expected, atol=1e-5)


@pytest.mark.parametrize("cohort, nearest, message", [
    (None, 5, "go together"), (np.zeros((2, 3)), None, "go together"),
    (np.ones((2, 3)), 2, "finite rows of"), ("nan", 2, "finite rows of"),
    ("means", 0, "cohort_nearest must be a positive integer"), ("means", 1.5, "cohort_nearest must be a positive")])
def test_a_bad_cohort_is_refused(tiny_model, cohort, nearest, message):
    if isinstance(cohort, str):
        cohort = cohort_means(tiny_model.templates, tiny_model.template_labels)
        if nearest == 2:  # "nan": the right width, not finite
            cohort[0, 0] = np.nan
    with pytest.raises(ValueError, match=message):
        FaceRecognizer(tiny_model.network, tiny_model.names, tiny_model.preprocessor, cohort=cohort,
                       cohort_nearest=nearest)


def test_the_kept_out_people_choose_whether_scores_are_normalized(make_dataset):
    faces = make_dataset(n_classes=9, per_class=6, seed=1)
    model = pyface.train(faces, open_set=True, epochs=4, blended_people=0, hidden_size=8, num_layers=1,
                         views=("rows",), bidirectional=False, augment=None, batch_size=8, quiet=True,
                         calibration_people=0.3, descriptor=None)
    chosen = model.calibration["cohort"]
    strangers = pyface.data.select_people(faces, sorted(set(faces.names) - set(model.names)))
    emb = model.embed(strangers).astype(np.float64)
    cohort = _unit(np.stack([_unit(model.templates[model.template_labels == k]).sum(axis=0)
                             for k in range(len(model.names))]))
    offsets = _offset_by_hand(emb, cohort, NEAREST if NEAREST < len(cohort) else len(cohort))
    plain = equal_error_rate(*roc_curve(*pair_scores(emb, strangers.labels)))[0]
    against = equal_error_rate(*roc_curve(*pair_scores(emb, strangers.labels, offsets=offsets)))[0]
    assert chosen["nearest"] == NEAREST
    np.testing.assert_allclose(chosen["eer"], [plain, against], atol=1e-6)
    assert chosen["normalized"] == (against < plain)
    assert model.cohort_nearest == (NEAREST if against < plain else None)
