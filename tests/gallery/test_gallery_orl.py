"""Real faces: a gallery names ORL's people exactly as the recognizer it was filled from.

The recognizer answers among its trained people (by their training templates) and the
people enrolled into it; a gallery holds only who was put into it. So the comparison
is made twice, each time with the same people on both sides: (1) the trained people
exported into the gallery (``import_recognizer``) and s31-s40 enrolled from images,
against ``FaceRecognizer.enroll`` + ``identify``; (2) only s31-s40 in the gallery,
against a recognizer without trained templates, where ``identify`` can only answer
with enrolled people. Queries: every image of s31-s40 and the trained people's
held-out images, so both the naming and the "unknown" decisions are compared.
"""

import numpy as np
import pytest

import pyface
from pyface.recognition.open_set import select_people
from pyface.recognition.recognizer import FaceRecognizer

ENROLLED = [f"s{k}" for k in range(31, 41)]


@pytest.fixture(scope="module")
def orl(att_faces_dir):
    faces = pyface.load_images(att_faces_dir)
    train, held_out = select_people(faces, [f"s{k}" for k in range(1, 31)]).split(test_size=0.2, seed=42)
    # A short training: the comparison needs a model, not a good one.
    model = pyface.train(train, seed=0, quiet=True, epochs=8, head="cosine", cosine_scale=30)
    newcomers = select_people(faces, ENROLLED)
    enroll_part, _ = newcomers.split_first(5)
    queries = list(newcomers.paths) + list(held_out.paths)  # image files, as a user gives them
    return model, newcomers, enroll_part, queries


@pytest.mark.parametrize("trained", [True, False], ids=["with-trained-people", "enrolled-only"])
def test_a_gallery_names_orl_people_as_the_recognizer_does(orl, gallery_url, trained):
    model, newcomers, enroll_part, queries = orl
    assert model.descriptor is not None  # the embeddings join the network's and the descriptor's views
    reference = model if trained else FaceRecognizer(model.network, model.names, model.preprocessor,
                                                     threshold=model.threshold, descriptor=model.descriptor)
    reference = FaceRecognizer(reference.network, reference.names, reference.preprocessor,
                               templates=reference.templates, template_labels=reference.template_labels,
                               threshold=reference.threshold,
                               descriptor=model.descriptor)  # a copy: the module's model stays as trained
    with pyface.open_gallery(gallery_url, model) as gallery:
        if trained:
            gallery.import_recognizer(model)
        for k, name in enumerate(newcomers.names):
            images = [enroll_part.paths[i] for i in np.flatnonzero(enroll_part.labels == k)]
            assert len(images) == 5
            reference.enroll(name, images)
            assert gallery.enroll(name, images) == 5
        assert len(gallery) == (40 if trained else 10)
        for threshold in ("auto", -1.0):
            names, scores = gallery.identify(queries, threshold=threshold)
            expected, expected_scores = reference.identify(queries, threshold=threshold)
            np.testing.assert_array_equal(names, expected)
            np.testing.assert_allclose(scores, expected_scores, rtol=0, atol=1e-5)
        named = set(gallery.identify(queries, threshold=-1.0)[0])
        assert set(ENROLLED) <= named  # the comparison covered the enrolled people
