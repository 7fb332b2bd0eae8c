"""The gallery API, the same on SQLite and PostgreSQL."""

import numpy as np
import pytest

import pyface
from pyface import load_model
from pyface.recognition.cohort import cohort_means
from pyface.recognition.recognizer import FaceRecognizer


@pytest.fixture()
def faces(make_dataset):
    """Images of the tiny model's three people, eight each."""
    return make_dataset(n_classes=3, per_class=8, seed=5)


@pytest.fixture()
def gallery(gallery_url, tiny_model):
    with pyface.open_gallery(gallery_url, tiny_model) as opened:
        yield opened


def _of(faces, k, first, stop):
    return list(faces.images[faces.labels == k][first:stop])


def test_enroll_list_rename_remove(gallery, faces):
    assert len(gallery) == 0 and gallery.names() == []
    assert gallery.enroll("alice", _of(faces, 0, 0, 3), metadata={"badge": 17}) == 3
    assert gallery.enroll("bob", _of(faces, 1, 0, 2)) == 2
    assert gallery.names() == ["alice", "bob"] and len(gallery) == 2
    assert "alice" in gallery and "carol" not in gallery and 3 not in gallery
    assert gallery.metadata("alice") == {"badge": 17} and gallery.metadata("bob") == {}
    assert gallery.enrolled == {"alice": 3, "bob": 2}
    gallery.rename("bob", "Bob")
    assert gallery.names() == ["alice", "Bob"] and gallery.enrolled == {"alice": 3, "Bob": 2}
    gallery.remove("alice")
    assert gallery.names() == ["Bob"] and "alice" not in gallery and gallery.enrolled == {"Bob": 2}


def test_mistakes_are_refused_and_change_nothing(gallery, faces):
    gallery.enroll("alice", _of(faces, 0, 0, 2))
    with pytest.raises(ValueError, match="already in the gallery"):
        gallery.enroll("alice", _of(faces, 1, 0, 2))
    for bad in ("", "unknown", None):
        with pytest.raises(ValueError, match="name"):
            gallery.enroll(bad, _of(faces, 1, 0, 2))
    with pytest.raises(ValueError, match="no images"):
        gallery.enroll("bob", [])
    with pytest.raises(FileNotFoundError, match="missing.png"):
        gallery.enroll("bob", ["missing.png"])
    with pytest.raises(ValueError, match="JSON"):
        gallery.enroll("bob", _of(faces, 1, 0, 2), metadata={"when": object()})
    with pytest.raises(KeyError, match="carol"):
        gallery.remove("carol")
    with pytest.raises(KeyError, match="carol"):
        gallery.rename("carol", "Carol")
    gallery.enroll("bob", _of(faces, 1, 0, 2))
    with pytest.raises(ValueError, match="already in the gallery"):
        gallery.rename("bob", "alice")
    assert gallery.enrolled == {"alice": 2, "bob": 2}


def test_enroll_many_is_all_or_nothing(gallery, tiny_model):
    d = tiny_model.network.arch.feature_size
    gallery.enroll_embeddings("alice", np.ones((2, d)))
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="alice"):
        gallery.enroll_many([("bob", rng.standard_normal((3, d)), None), ("alice", rng.standard_normal((1, d)), None)])
    with pytest.raises(ValueError, match="values"):
        gallery.enroll_many([("bob", rng.standard_normal((3, d)), None), ("carol", np.ones((1, d + 1)), None)])
    with pytest.raises(ValueError, match="finite"):
        gallery.enroll_embeddings("bob", np.full((1, d), np.nan))
    assert gallery.names() == ["alice"]


def test_identify_and_search_follow_the_open_set_rule(gallery, faces, tiny_model):
    for k, name in enumerate(["alice", "bob"]):
        gallery.enroll(name, _of(faces, k, 0, 4))
    queries = _of(faces, 0, 4, 8) + _of(faces, 1, 4, 8) + _of(faces, 2, 0, 4)
    # What the recognizer answers with the same two people enrolled and no trained templates.
    reference = FaceRecognizer(tiny_model.network, tiny_model.names, tiny_model.preprocessor,
                               threshold=tiny_model.threshold)
    for k, name in enumerate(["alice", "bob"]):
        reference.enroll(name, _of(faces, k, 0, 4))
    for threshold in ("auto", 0.5, -1.0):
        names, scores = gallery.identify(queries, threshold=threshold)
        expected, expected_scores = reference.identify(queries, threshold=threshold)
        np.testing.assert_array_equal(names, expected)
        np.testing.assert_allclose(scores, expected_scores, rtol=0, atol=1e-5)
    assert list(gallery.identify(queries, threshold=-1.0)[0][:8]) == ["alice"] * 4 + ["bob"] * 4

    found, similar = gallery.search(queries, k=5)
    assert found.shape == similar.shape == (12, 2)  # only two people to find
    assert (np.diff(similar, axis=1) <= 0).all()
    np.testing.assert_allclose(similar[:, 0], gallery.identify(queries)[1])
    # By hand: a person's score is half their best template's cosine, half that of their unit mean template.
    embedded, templates = tiny_model.embed(queries), tiny_model.embed(_of(faces, 1, 0, 4))
    mean = templates.mean(axis=0) / np.linalg.norm(templates.mean(axis=0))
    bob = np.where(found == "bob", similar, np.nan)
    np.testing.assert_allclose(np.nanmax(bob, axis=1), 0.5 * (embedded @ templates.T).max(axis=1) + 0.5 * embedded @ mean,
                               atol=1e-5)


def test_search_and_identify_refuse_bad_requests(gallery, faces):
    with pytest.raises(ValueError, match="empty"):
        gallery.identify(_of(faces, 0, 0, 1))
    gallery.enroll("alice", _of(faces, 0, 0, 2))
    for k in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="k must be"):
            gallery.search(_of(faces, 0, 0, 1), k=k)
    with pytest.raises(ValueError, match="threshold"):
        gallery.identify(_of(faces, 0, 0, 1), threshold="strict")


def test_a_second_gallery_object_sees_every_change(gallery_url, tiny_model, faces):
    writer = pyface.open_gallery(gallery_url, tiny_model)
    reader = pyface.open_gallery(gallery_url, tiny_model, create=False)
    writer.enroll("alice", _of(faces, 0, 0, 3))
    assert reader.identify(_of(faces, 0, 3, 4), threshold=-1.0)[0].tolist() == ["alice"]
    writer.enroll("bob", _of(faces, 1, 0, 3))
    writer.rename("alice", "Alice")
    assert reader.identify(_of(faces, 0, 3, 4) + _of(faces, 1, 3, 4), threshold=-1.0)[0].tolist() == ["Alice", "bob"]
    writer.remove("Alice")
    assert reader.identify(_of(faces, 0, 3, 4), threshold=-1.0)[0].tolist() == ["bob"]
    assert reader.enrolled == {"bob": 3}
    writer.close()
    reader.close()


def test_a_recognizers_people_are_imported(gallery, tiny_model, faces):
    model = FaceRecognizer(tiny_model.network, tiny_model.names, tiny_model.preprocessor,
                           templates=tiny_model.templates, template_labels=tiny_model.template_labels,
                           threshold=tiny_model.threshold)
    model.enroll("stranger", _of(faces, 2, 0, 3))
    added = gallery.import_recognizer(model)
    assert added == len(model.templates) + 3
    assert gallery.names() == [*model.gallery()[0]]
    queries = list(faces.images)
    names, scores = gallery.identify(queries)
    expected, expected_scores = model.identify(queries)
    np.testing.assert_array_equal(names, expected)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-5)
    with pytest.raises(ValueError, match="already in the gallery"):
        gallery.import_recognizer(model)


def test_another_model_is_refused(gallery_url, tiny_model, tmp_path, faces):
    pyface.open_gallery(gallery_url, tiny_model).close()
    other = pyface.train(pyface.from_arrays(faces.images, faces.labels, names=faces.names,
                                            preprocessor=tiny_model.preprocessor),
                         epochs=1, quiet=True, hidden_size=8, num_layers=1, views=("rows",), bidirectional=False,
                         augment=None, seed=1)
    with pytest.raises(pyface.GalleryError, match="another model.*re-enroll"):
        pyface.open_gallery(gallery_url, other)
    # The same weights loaded from a file are the same model.
    tiny_model.save(tmp_path / "same.pyface")
    pyface.open_gallery(gallery_url, load_model(tmp_path / "same.pyface")).close()


def test_no_gallery_is_created_when_asked_not_to(tmp_path, tiny_model):
    with pytest.raises(FileNotFoundError, match="no gallery"):
        pyface.open_gallery(tmp_path / "none.db", tiny_model, create=False)
    assert not (tmp_path / "none.db").exists()


def _clustered(d, people=60, seed=1):
    """Templates of made-up people (three each around a centre) and one query near each centre."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((people, d))
    enrolled = [(f"p{i}", centres[i] + 0.05 * rng.standard_normal((3, d)), None) for i in range(people)]
    queries = centres + 0.05 * rng.standard_normal(centres.shape)
    return enrolled, (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)


def test_approximate_search_answers_as_exact_search(gallery_url, tiny_model):
    d = tiny_model.network.arch.feature_size
    people, queries = _clustered(d)
    exact = pyface.open_gallery(gallery_url, tiny_model)
    approximate = pyface.open_gallery(gallery_url, tiny_model, search="approximate")
    exact.enroll_many(people[:30])
    assert approximate.search_embeddings(queries, k=1)[0][:30, 0].tolist() == [f"p{i}" for i in range(30)]
    # Changes made elsewhere reach the index: new people, a removal, a rename.
    exact.enroll_many(people[30:])
    exact.remove("p7")
    exact.rename("p8", "P8")
    exact.enroll_embeddings("p7-again", queries[7][None])
    names, scores = approximate.search_embeddings(queries, k=3)
    expected, expected_scores = exact.search_embeddings(queries, k=3)
    np.testing.assert_array_equal(names, expected)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-5)
    assert names[7, 0] == "p7-again" and names[8, 0] == "P8" and "p7" not in names
    exact.close()
    approximate.close()


def test_searches_score_people_by_the_rule_of_the_gallerys_model(gallery_url, tiny_model):
    # A model from before the mean template (its thresholds set for the best template alone).
    best_only = FaceRecognizer(tiny_model.network, tiny_model.names, tiny_model.preprocessor,
                               threshold=tiny_model.threshold, best_share=1.0)
    people, queries = _clustered(tiny_model.network.arch.feature_size, people=20)
    templates = np.stack([t / np.linalg.norm(t, axis=1, keepdims=True) for _, t, _ in people])  # (20, 3, d)
    per_person = np.einsum("nd,ptd->npt", queries.astype(np.float64), templates)
    means = templates.mean(axis=1)
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    by_rule = {1.0: per_person.max(axis=2), 0.5: 0.5 * per_person.max(axis=2) + 0.5 * queries @ means.T}
    # A model that normalizes scores against its trained people: each face's offset the mean of its
    # two highest cosines with their unit mean templates, a person's the mean of their templates'.
    normalizing = FaceRecognizer(tiny_model.network, tiny_model.names, tiny_model.preprocessor,
                                 templates=tiny_model.templates, template_labels=tiny_model.template_labels,
                                 threshold=tiny_model.threshold, cohort_nearest=2,
                                 cohort=cohort_means(tiny_model.templates, tiny_model.template_labels))
    cohort = np.stack([tiny_model.templates[tiny_model.template_labels == k].astype(np.float64).sum(axis=0)
                       for k in range(len(tiny_model.names))])
    cohort /= np.linalg.norm(cohort, axis=1, keepdims=True)

    def offset(rows):
        return np.array([np.mean(sorted(row @ cohort.T.astype(np.float64))[-2:]) for row in rows])

    person_offsets = np.array([offset(t).mean() for t in templates])
    by_rule["normalized"] = by_rule[0.5] - 0.5 * (offset(queries)[:, None] + person_offsets[None, :])
    with pyface.open_gallery(gallery_url, best_only) as writer:
        writer.enroll_many(people)
    for model, share in ((best_only, 1.0), (tiny_model, 0.5), (normalizing, "normalized")):
        for search in ("exact", "approximate"):
            with pyface.open_gallery(gallery_url, model, search=search) as gallery:
                names, scores = gallery.search_embeddings(queries, k=3)
            ranked = np.argsort(-by_rule[share], axis=1, kind="stable")[:, :3]
            assert names.tolist() == [[f"p{k}" for k in row] for row in ranked], (share, search)
            np.testing.assert_allclose(scores, np.take_along_axis(by_rule[share], ranked, axis=1), atol=1e-5)
    # The normalization moves who comes first for some faces: the test can tell the rules apart.
    assert (by_rule["normalized"].argmax(axis=1) != by_rule[0.5].argmax(axis=1)).any() or \
        not np.allclose(by_rule["normalized"], by_rule[0.5] - 0.5 * offset(queries)[:, None], atol=1e-3)


def test_the_index_file_is_a_cache_of_the_store(tmp_path, tiny_model):
    from pyface.io.npz import read_npz

    path, index = tmp_path / "faces.db", tmp_path / "faces.db.index"
    people, queries = _clustered(tiny_model.network.arch.feature_size)
    with pyface.open_gallery(path, tiny_model, search="approximate") as gallery:
        gallery.enroll_many(people[:40])
        gallery.search_embeddings(queries, k=1)
    assert index.stat().st_mode & 0o777 == 0o600
    assert int(read_npz(index)["generation"]) == 1
    # Changed without the index: the stale file is not used but rebuilt.
    with pyface.open_gallery(path, tiny_model) as gallery:
        gallery.enroll_many(people[40:])
    with pyface.open_gallery(path, tiny_model, search="approximate") as gallery:
        assert gallery.search_embeddings(queries, k=1)[0][:, 0].tolist() == [f"p{i}" for i in range(60)]
    assert int(read_npz(index)["generation"]) == 2
    index.write_bytes(b"PK damaged")
    with pyface.open_gallery(path, tiny_model, search="approximate") as gallery:
        with pytest.warns(UserWarning, match="unusable gallery index, rebuilding"):
            assert gallery.search_embeddings(queries, k=1)[0][:, 0].tolist() == [f"p{i}" for i in range(60)]
    assert int(read_npz(index)["generation"]) == 2
