"""The descriptor joined to open-set embeddings: gradient histograms and their discriminant projection."""

import json

import numpy as np
import pytest

import pyface
from pyface.nn.functional import softmax
from pyface.recognition.descriptor import (CLASS_SCALE, CLOSED_SET_CHOICE, FITTING, OPEN_SET_CHOICE, RICH, FaceDescriptor,
                                           discriminant_projection)
from pyface.recognition.histograms import face_histograms, histogram_size
from pyface.recognition.model_file import FORMAT_VERSION
from pyface.recognition.open_set import equal_error_rate, pair_scores, roc_curve
from pyface.recognition.recognizer import embed_images
from pyface.recognition.references import DESCRIPTOR_WEIGHTS, calibrated_descriptor


def _faces(n=6, size=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size)).astype(np.float32) / 255.0


def _people(n_people=8, per_person=10, dims=12, seed=0):
    """Features where people differ along the first 3 axes, and photos of one person, more, along the rest."""
    rng = np.random.default_rng(seed)
    centres = np.zeros((n_people, dims))
    centres[:, :3] = rng.normal(0, 2.0, (n_people, 3))
    labels = np.repeat(np.arange(n_people), per_person)
    noise = rng.normal(0, 0.3, (len(labels), dims))
    noise[:, 3:] *= 10.0
    return centres[labels] + noise, labels


def _nearest_centre_accuracy(x, labels, fit_rows, test_rows):
    centres = np.stack([x[fit_rows][labels[fit_rows] == k].mean(0) for k in np.unique(labels)])
    guess = np.argmin(((x[test_rows, None, :] - centres[None]) ** 2).sum(-1), axis=1)
    return np.mean(guess == labels[test_rows])


def test_the_discriminant_keeps_what_tells_people_apart():
    x, labels = _people()
    mean, projection = discriminant_projection(x, labels, dimensions=3, shrinkage=0.0)
    assert mean.shape == (12,) and projection.shape == (12, 3)
    fit_rows, test_rows = np.arange(len(x)) % 2 == 0, np.arange(len(x)) % 2 == 1
    raw = _nearest_centre_accuracy(x, labels, fit_rows, test_rows)
    projected = _nearest_centre_accuracy((x - mean) @ projection, labels, fit_rows, test_rows)
    assert projected > 0.9 and projected > raw + 0.3
    # Without shrinkage, photos of one person scatter alike in every kept direction (whitened).
    z = (x - mean) @ projection
    within = np.concatenate([z[labels == k] - z[labels == k].mean(0) for k in np.unique(labels)])
    np.testing.assert_allclose(within.T @ within / len(z), np.eye(3), atol=1e-8)


def test_the_discriminant_keeps_at_most_one_direction_fewer_than_people():
    x, labels = _people(n_people=3)
    assert discriminant_projection(x, labels, dimensions=50)[1].shape == (12, 2)


def test_weighted_directions_count_as_much_more_as_people_differ_along_them():
    x, labels = _people()
    plain_mean, plain = discriminant_projection(x, labels, dimensions=3, shrinkage=0.0)
    mean, weighted = discriminant_projection(x, labels, dimensions=3, shrinkage=0.0, weighting=2.0)
    np.testing.assert_array_equal(mean, plain_mean)
    z = (x - mean) @ weighted
    within = np.concatenate([z[labels == k] - z[labels == k].mean(0) for k in np.unique(labels)])
    within_variance = (within**2).mean(0)
    t = z.var(axis=0) / within_variance  # each direction's variance in units of the within-person one
    assert t.min() > 1.0 and t.max() > t.min() + 1.0
    # Unweighted, each direction has a within-person variance of 1: weighted, (t / (1 + t)) ** 2 squared.
    np.testing.assert_allclose(within_variance, (t / (1.0 + t)) ** 4, rtol=1e-8)
    np.testing.assert_allclose(weighted, plain * (t / (1.0 + t)) ** 2, rtol=1e-8, atol=1e-12)
    for weighting in (-0.5, np.nan, np.inf):
        with pytest.raises(ValueError, match="weighting"):
            discriminant_projection(x, labels, weighting=weighting)


def test_more_values_than_faces_give_the_same_discriminant():
    # Fewer rows than values take the principal axes from the rows' Gram matrix: the values
    # that never vary add nothing and the rest project as before.
    x, labels = _people(per_person=3)
    assert x.shape == (24, 12)
    padded = np.hstack([x, np.zeros((24, 30))])
    _, projection = discriminant_projection(x, labels, dimensions=4, shrinkage=0.05, weighting=1.0)
    _, wide = discriminant_projection(padded, labels, dimensions=4, shrinkage=0.05, weighting=1.0)
    assert wide.shape == (42, 4) and np.all(wide[12:] == 0)
    signs = np.sign(np.sum(wide[:12] * projection, axis=0))
    np.testing.assert_allclose(wide[:12] * signs, projection, rtol=1e-6, atol=1e-9)


def test_each_kind_is_fitted_as_measured_unless_told_otherwise():
    faces, labels = _faces(16, 32), np.repeat(np.arange(4), 4)
    rich = FaceDescriptor.fit(faces, labels, kind=RICH)
    assert rich.kind == RICH and len(rich.mean) == histogram_size(32, RICH)
    _, expected = discriminant_projection(face_histograms(faces, RICH), labels, **FITTING[RICH])
    np.testing.assert_allclose(rich.projection, expected, rtol=1e-5, atol=1e-9)
    assert FITTING[RICH]["weighting"] > 0.0 and FITTING["hog+lbp"]["weighting"] == 0.0
    told = FaceDescriptor.fit(faces, labels, kind=RICH, dimensions=2, weighting=0.0)
    _, plain = discriminant_projection(face_histograms(faces, RICH), labels,
                                       **{**FITTING[RICH], "dimensions": 2, "weighting": 0.0})
    np.testing.assert_allclose(told.projection, plain, rtol=1e-5, atol=1e-9)
    with pytest.raises(ValueError, match="descriptor kind must be one of"):
        FaceDescriptor.fit(faces, labels, kind="sift")


@pytest.mark.parametrize("labels, message", [
    (np.zeros(6, int), "two people"),
    (np.arange(6), "two or more images"),
])
def test_the_discriminant_needs_people_seen_twice(labels, message):
    with pytest.raises(ValueError, match=message):
        discriminant_projection(np.random.default_rng(0).normal(size=(6, 4)), labels)


def test_the_discriminant_refuses_nan():
    x, labels = _people()
    x[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        discriminant_projection(x, labels)


def test_a_descriptor_gives_unit_rows_and_joins_them_with_their_shares():
    faces, labels = _faces(12, 32), np.repeat(np.arange(4), 3)
    descriptor = FaceDescriptor.fit(faces, labels)
    own = descriptor.transform(faces)
    assert own.shape == (12, 3) and own.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(own, axis=1), 1.0, rtol=1e-5)
    network_part = np.random.default_rng(2).normal(size=(12, 5))
    network_part /= np.linalg.norm(network_part, axis=1, keepdims=True)
    joined = descriptor.join(network_part.astype(np.float32), faces)
    np.testing.assert_allclose(np.linalg.norm(joined, axis=1), 1.0, rtol=1e-5)
    # The joined cosine is the two cosines weighted by their shares.
    w = descriptor.weight
    assert w == 0.4
    expected = (1 - w) * (network_part @ network_part.T) + w * (own @ own.T)
    np.testing.assert_allclose(joined @ joined.T, expected, atol=1e-5)
    with pytest.raises(ValueError, match="fitted on faces giving"):
        descriptor.transform(_faces(2, 64))


@pytest.mark.parametrize("change, message", [
    (dict(weight=1.0), "weight"),
    (dict(kind="sift"), "kind"),
    (dict(projection=np.zeros((5, 3), np.float32)), r"mean \(F,\) and a projection"),
    (dict(mean=np.full(36, np.nan, np.float32)), "finite"),
])
def test_a_descriptor_refuses_bad_parts(change, message):
    parts = dict(mean=np.zeros(36, np.float32), projection=np.ones((36, 3), np.float32))
    with pytest.raises(ValueError, match=message):
        FaceDescriptor(**{**parts, **change})


@pytest.fixture(scope="module")
def open_model(make_dataset):
    faces = make_dataset(n_classes=8, per_class=6)
    model = pyface.train(faces, open_set=True, epochs=3, blended_people=0, hidden_size=8, num_layers=1,
                         views=("rows",), bidirectional=False, augment=None, batch_size=8, quiet=True,
                         calibration_people=0.3)
    return faces, model


def test_open_set_models_join_the_descriptor_to_their_embeddings(open_model):
    faces, model = open_model
    # 16-pixel faces are too small for the recipe's patterns of the half-size face: "auto" fits both others.
    assert model.training["descriptor"] == "hog+lbp" and model.descriptor is not None
    # Fitted on the 6 trained people: at most 5 directions.
    assert model.descriptor.size == 5 and len(model.descriptor.mean) == histogram_size(16, "hog+lbp")
    assert model.descriptor.weight in DESCRIPTOR_WEIGHTS
    emb = model.embed(faces)
    assert emb.shape == (len(faces), model.architecture.feature_size + 5) == (len(faces), model.embedding_size)
    alone = embed_images(model.network, faces.images)
    np.testing.assert_allclose(emb, model.descriptor.join(alone, faces.images), atol=1e-6)
    assert model.templates.shape[1] == model.embedding_size
    assert repr(model).endswith("LSTM over rows, with hog+lbp histograms)")


def test_an_open_set_model_keeps_the_curve_its_descriptor_share_was_chosen_from(open_model, tmp_path):
    _, model = open_model
    curve = model.calibration["descriptor_share"]
    assert curve["share"] == list(DESCRIPTOR_WEIGHTS) and len(curve["eer"]) == len(DESCRIPTOR_WEIGHTS)
    assert model.descriptor.weight == curve["share"][int(np.argmin(curve["eer"]))]
    model.save(tmp_path / "m.pyface")
    assert pyface.load_model(tmp_path / "m.pyface").calibration["descriptor_share"] == curve


def test_a_descriptor_travels_with_the_model_file(open_model, tmp_path):
    faces, model = open_model
    model.enroll("someone", faces[:2])
    model.save(tmp_path / "m.pyface")
    loaded = pyface.load_model(tmp_path / "m.pyface")
    np.testing.assert_array_equal(loaded.descriptor.projection, model.descriptor.projection)
    np.testing.assert_array_equal(loaded.embed(faces), model.embed(faces))
    assert loaded.identify(faces[:4])[0].tolist() == model.identify(faces[:4])[0].tolist()
    members, metadata = _members(tmp_path / "m.pyface")
    assert metadata["format_version"] == FORMAT_VERSION == 6
    assert metadata["descriptor"] == {"kind": "hog+lbp", "weight": model.descriptor.weight, "cell": 8, "bins": 9,
                                      "patterns": 59}
    assert members["descriptor.projection"].shape == (histogram_size(16, "hog+lbp"), 5)


def _members(path):
    with np.load(path, allow_pickle=False) as npz:
        members = {name: npz[name] for name in npz.files}
    return members, json.loads(str(members["metadata"]))


@pytest.mark.parametrize("damage, message", [
    (lambda m, meta: m.pop("descriptor.projection"), "descriptor.projection is missing"),
    (lambda m, meta: m.update({"descriptor.mean": m["descriptor.mean"][:-1]}), "mean"),
    (lambda m, meta: m.update({"descriptor.mean": m["descriptor.mean"].astype(np.float64)}), "float64"),
    (lambda m, meta: meta["descriptor"].update(cell=6), "laid out as"),
    (lambda m, meta: meta["descriptor"].update(weight=2), "weight"),
    (lambda m, meta: meta.update(descriptor="hog"), "JSON object"),
])
def test_a_damaged_descriptor_is_a_clear_error(open_model, tmp_path, damage, message):
    _, model = open_model
    path = tmp_path / "m.pyface"
    model.save(path)
    members, metadata = _members(path)
    damage(members, metadata)
    members["metadata"] = np.array(json.dumps(metadata))
    with open(path, "wb") as f:
        np.savez(f, **members)
    with pytest.raises(pyface.ModelFileError, match=message):
        pyface.load_model(path)


def test_descriptor_none_keeps_the_network_alone(make_dataset, tiny):
    faces = make_dataset(n_classes=8, per_class=6)
    model = pyface.train(faces, open_set=True, epochs=1, quiet=True, calibration_people=0.3, **tiny)
    assert tiny["descriptor"] is None and model.descriptor is None
    assert model.embedding_size == model.architecture.feature_size
    logits, _ = model.network.forward(faces.images)
    np.testing.assert_allclose(model.predict_proba(faces), softmax(logits.astype(np.float64)), rtol=1e-6)


@pytest.mark.parametrize("descriptor", ["sift", "hog|sift", "hog|hog", "hog|", "hog+lbp,lbp"])
def test_an_unknown_descriptor_is_refused_before_training(make_dataset, tiny, descriptor):
    with pytest.raises(ValueError, match="descriptor must be one of"):
        pyface.train(make_dataset(n_classes=4, per_class=4), quiet=True, **{**tiny, "descriptor": descriptor})


def test_a_choice_of_descriptors_that_cannot_all_be_fitted_fails_before_training(make_dataset, tiny):
    faces = make_dataset(n_classes=8, per_class=4, image_size=16)
    with pytest.raises(ValueError, match="at least 32 pixels, got 16"):
        pyface.train(faces, open_set=True, epochs=1, quiet=True, calibration_people=0.3,
                     **{**tiny, "descriptor": OPEN_SET_CHOICE})


def test_a_descriptor_that_cannot_be_fitted_fails_before_training(make_dataset, tiny):
    # 12-pixel faces are smaller than one block of the histograms.
    faces = make_dataset(n_classes=8, per_class=4, image_size=12)
    with pytest.raises(ValueError, match="at least 16 pixels"):
        pyface.train(faces, open_set=True, epochs=1, quiet=True, calibration_people=0.3,
                     **{**tiny, "descriptor": "hog+lbp"})


@pytest.mark.parametrize("size, per_class", [(12, 4), (16, 1)])
def test_auto_trains_without_a_descriptor_where_none_can_be_fitted(make_dataset, tiny, size, per_class):
    # Faces too small for one block of histograms, or nobody seen twice.
    faces = make_dataset(n_classes=4, per_class=per_class, image_size=size)
    model = pyface.train(faces, epochs=1, quiet=True, **{**tiny, "descriptor": "auto"})
    assert model.descriptor is None and model.training["descriptor"] is None
    fitted = pyface.train(make_dataset(n_classes=4, per_class=2), epochs=1, quiet=True,
                          **{**tiny, "descriptor": "auto"})
    assert fitted.training["descriptor"] == "hog+lbp"


@pytest.mark.parametrize("size, choice", [(16, "hog+lbp"), (31, "hog+lbp"), (32, OPEN_SET_CHOICE)])
def test_auto_lets_the_open_set_recipe_choose_among_the_views_its_faces_can_give(make_dataset, tiny, size, choice):
    faces = make_dataset(n_classes=8, per_class=4, image_size=size)
    model = pyface.train(faces, open_set=True, epochs=1, quiet=True, calibration_people=0.3,
                         **{**tiny, "descriptor": "auto"})
    assert model.training["descriptor"] == choice and OPEN_SET_CHOICE == "hog+lbp|" + RICH
    kinds = choice.split("|")
    curve = model.calibration["descriptor_share"]
    assert curve["kind"] == [kind for kind in kinds for _ in DESCRIPTOR_WEIGHTS]
    assert curve["share"] == list(DESCRIPTOR_WEIGHTS) * len(kinds)
    best = int(np.argmin(curve["eer"]))
    assert (model.descriptor.kind, model.descriptor.weight) == (curve["kind"][best], curve["share"][best])


@pytest.mark.parametrize("size, choice, kind", [(16, "hog+lbp", "hog+lbp"), (31, "hog+lbp", "hog+lbp"),
                                                (32, CLOSED_SET_CHOICE, RICH)])
def test_auto_gives_a_closed_set_model_all_five_histograms_where_its_faces_can_give_them(make_dataset, tiny,
                                                                                          size, choice, kind):
    faces = make_dataset(n_classes=4, per_class=4, image_size=size)
    model = pyface.train(faces, epochs=1, quiet=True, **{**tiny, "descriptor": "auto"})
    assert model.training["descriptor"] == choice and CLOSED_SET_CHOICE == RICH + "|hog+lbp"
    # Nobody kept out to choose: the first view is kept, at the share used without kept-out people.
    assert model.descriptor.kind == kind and model.descriptor.weight == 0.4
    assert model.calibration.get("descriptor_share") is None
    assert len(model.descriptor.mean) == histogram_size(size, kind)


@pytest.mark.parametrize("kind, size", [("lbp", 16), ("hog+lbp", 16), (RICH, 32)])
def test_every_kind_of_histograms_trains_and_travels_with_the_model(make_dataset, tiny, tmp_path, kind, size):
    faces = make_dataset(n_classes=8, per_class=6, image_size=size)
    model = pyface.train(faces, open_set=True, epochs=1, quiet=True, calibration_people=0.3,
                         **{**tiny, "descriptor": kind})
    assert model.descriptor.kind == kind and len(model.descriptor.mean) == histogram_size(size, kind)
    model.save(tmp_path / "m.pyface")
    loaded = pyface.load_model(tmp_path / "m.pyface")
    assert loaded.descriptor.kind == kind and repr(loaded).endswith(f", with {kind} histograms)")
    np.testing.assert_array_equal(loaded.embed(faces), model.embed(faces))


def test_a_face_and_its_mirror_image_look_the_same_to_the_descriptor():
    faces, labels = _faces(12, 32), np.repeat(np.arange(4), 3)
    descriptor = FaceDescriptor.fit(faces, labels, kind="hog+lbp")
    own = descriptor.transform(faces)
    np.testing.assert_allclose(descriptor.transform(faces[:, :, ::-1]), own, atol=1e-5)
    # ... while different faces still look different.
    assert np.abs(own[:, None] - own[None]).sum(-1)[~np.eye(12, dtype=bool)].min() > 1e-2


def test_closed_set_models_join_the_descriptor_to_the_classifier(make_dataset, tiny):
    faces = make_dataset(n_classes=5, per_class=6)
    model = pyface.train(faces, epochs=2, quiet=True, **{**tiny, "descriptor": "auto"})
    assert model.descriptor.kind == "hog+lbp" and model.descriptor.weight == 0.4  # no kept-out people
    # Every training face is a template: each person's mean view is the unit mean of their faces'.
    assert len(model.templates) == len(faces)
    views = np.stack([model.descriptor.transform(faces.images[faces.labels == k]).mean(0) for k in range(5)])
    views /= np.linalg.norm(views, axis=1, keepdims=True)
    probe = make_dataset(n_classes=5, per_class=2, seed=3)
    logits, _ = model.network.forward(probe.images)
    cosines = model.descriptor.transform(probe.images) @ views.T
    expected = softmax(logits.astype(np.float64) + CLASS_SCALE * cosines)
    np.testing.assert_allclose(model.predict_proba(probe), expected, rtol=1e-4, atol=1e-9)
    assert model.evaluate(probe)["accuracy"] == np.mean(expected.argmax(1) == probe.labels)


def test_the_descriptor_share_is_the_one_that_verifies_kept_out_people_best(make_dataset, tiny_model):
    people = make_dataset(n_classes=6, per_class=5, seed=7)
    fitted = FaceDescriptor.fit(people.images, people.labels, kind="hog+lbp")
    chosen, curve = calibrated_descriptor(tiny_model.network, fitted, (people.images, people.labels))
    alone = embed_images(tiny_model.network, people.images)

    def eer(weight):
        joined = FaceDescriptor(fitted.mean, fitted.projection, weight, fitted.kind).join(alone, people.images)
        return equal_error_rate(*roc_curve(*pair_scores(joined, people.labels)))[0]

    eers = [eer(w) for w in DESCRIPTOR_WEIGHTS]
    assert max(eers) > min(eers)  # the share matters here
    assert chosen.weight == DESCRIPTOR_WEIGHTS[int(np.argmin(eers))]
    assert curve["share"] == list(DESCRIPTOR_WEIGHTS)
    np.testing.assert_allclose(curve["eer"], eers, atol=1e-6)
    np.testing.assert_array_equal(chosen.projection, fitted.projection)
    # Kept-out faces of one person each cannot measure it: the share stays.
    lone, no_curve = calibrated_descriptor(tiny_model.network, fitted, (people.images[::5], people.labels[::5]))
    assert lone.weight == fitted.weight and no_curve is None


def test_the_kept_out_people_choose_the_descriptor_and_share_that_verify_them_best(make_dataset, tiny_model):
    people = make_dataset(n_classes=6, per_class=5, seed=7)
    fit = make_dataset(n_classes=8, per_class=4, seed=3)
    candidates = [FaceDescriptor.fit(fit.images, fit.labels, kind=kind) for kind in ("hog", "lbp", "hog+lbp")]
    alone = embed_images(tiny_model.network, people.images)

    def eer(candidate, weight):
        joined = np.hstack([np.sqrt(1 - weight) * alone, np.sqrt(weight) * candidate.transform(people.images)])
        return equal_error_rate(*roc_curve(*pair_scores(joined, people.labels)))[0]

    eers = np.array([[eer(candidate, w) for w in DESCRIPTOR_WEIGHTS] for candidate in candidates])
    assert len(np.unique(np.round(eers.min(axis=1), 9))) > 1  # the views verify differently here
    chosen, curve = calibrated_descriptor(tiny_model.network, candidates, (people.images, people.labels))
    assert curve["kind"] == [kind for kind in ("hog", "lbp", "hog+lbp") for _ in DESCRIPTOR_WEIGHTS]
    assert curve["share"] == list(DESCRIPTOR_WEIGHTS) * 3
    np.testing.assert_allclose(curve["eer"], eers.ravel(), atol=1e-6)
    # The lowest EER wins; on a tie the first view and the smaller share.
    k, w = np.unravel_index(np.argmin(eers), eers.shape)
    assert chosen.kind == candidates[k].kind and chosen.weight == DESCRIPTOR_WEIGHTS[w]
    np.testing.assert_array_equal(chosen.projection, candidates[k].projection)
    # Without people to choose on, the first view is kept as it is.
    first, no_curve = calibrated_descriptor(tiny_model.network, candidates, (people.images[::5], people.labels[::5]))
    assert first is candidates[0] and no_curve is None
