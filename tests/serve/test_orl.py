"""Real faces: for ORL images, the service answers exactly what the library answers."""

import shutil
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from pyface import Preprocessor, load_images, load_model, open_gallery, train

TRAINED = range(1, 31)  # s1..s30: trained on their images 1..8, tested on 9 and 10
ENROLLED = range(31, 36)  # s31..s35: enrolled over HTTP from images 1..5, tested on 6..10
STRANGERS = range(36, 41)  # s36..s40: never seen, tested on images 1..3


@pytest.fixture(scope="module")
def orl_model(att_faces_dir, tmp_path_factory):
    """A small, quickly trained recognizer of s1..s30 (accuracy is beside the point here)."""
    folder = tmp_path_factory.mktemp("orl")
    for k in TRAINED:
        (folder / "train" / f"s{k}").mkdir(parents=True)
        for i in range(1, 9):
            shutil.copy(att_faces_dir / f"s{k}" / f"{i}.pgm", folder / "train" / f"s{k}")
    data = load_images(folder / "train", preprocessor=Preprocessor(size=32))
    path = folder / "orl.pyface"
    train(data, epochs=4, seed=0, quiet=True, hidden_size=32, num_layers=1, bidirectional=False).save(path)
    return path


def test_identify_answers_exactly_as_the_library(serve, orl_model, att_faces_dir, tmp_path):
    model_file = tmp_path / "served.pyface"
    shutil.copy(orl_model, model_file)
    server = serve(model_file)
    reference = load_model(orl_model)
    for k in ENROLLED:
        files = [att_faces_dir / f"s{k}" / f"{i}.pgm" for i in range(1, 6)]
        reference.enroll(f"s{k}", files)
        images = [("images", f.name, f.read_bytes()) for f in files]
        assert server.post_form(f"/people/s{k}", images).status == 201

    probes = ([att_faces_dir / f"s{k}" / f"{i}.pgm" for k in TRAINED for i in (9, 10)]
              + [att_faces_dir / f"s{k}" / f"{i}.pgm" for k in ENROLLED for i in range(6, 11)]
              + [att_faces_dir / f"s{k}" / f"{i}.pgm" for k in STRANGERS for i in (1, 2, 3)])
    names, scores = reference.identify(probes)
    # Sixteen at a time, so that the service answers them in batches.
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda f: server.post_image("/identify", f.read_bytes(), "image/x-portable-graymap"),
                                probes))
    assert all(a.status == 200 for a in answers)
    assert [a.json["name"] for a in answers] == list(names)
    # The kernel sums in an order that depends on the batch: scores agree to float32 rounding.
    np.testing.assert_allclose([a.json["score"] for a in answers], scores, rtol=0, atol=1e-6)
    assert 0 < sum(a.json["known"] for a in answers) < len(answers)  # both answers occur
    # What the service saved is what the library enrolled.
    saved = load_model(model_file)
    assert saved.enrolled == reference.enrolled
    np.testing.assert_array_equal(saved.identify(probes)[0], names)


def test_identify_on_a_gallery_answers_exactly_as_the_gallery(serve, orl_model, att_faces_dir, gallery_url):
    server = serve(orl_model, "--gallery", gallery_url)
    for k in ENROLLED:
        images = [("images", f"{i}.pgm", (att_faces_dir / f"s{k}" / f"{i}.pgm").read_bytes()) for i in range(1, 6)]
        assert server.post_form(f"/people/s{k}", images).status == 201

    probes = ([att_faces_dir / f"s{k}" / f"{i}.pgm" for k in ENROLLED for i in range(6, 11)]
              + [att_faces_dir / f"s{k}" / f"{i}.pgm" for k in STRANGERS for i in (1, 2, 3)])
    with open_gallery(gallery_url, load_model(orl_model), create=False) as gallery:
        assert gallery.enrolled == {f"s{k}": 5 for k in ENROLLED}
        names, scores = gallery.identify(probes)
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda f: server.post_image("/identify", f.read_bytes(), "image/x-portable-graymap"),
                                probes))
    assert all(a.status == 200 for a in answers)
    assert [a.json["name"] for a in answers] == list(names)
    np.testing.assert_allclose([a.json["score"] for a in answers], scores, rtol=0, atol=1e-6)
    assert 0 < sum(a.json["known"] for a in answers) < len(answers)  # both answers occur
    assert load_model(orl_model).enrolled == {}  # the people went to the gallery, not the model file


@pytest.mark.parametrize("faces", ["whole", "auto"])
def test_a_server_told_how_to_find_faces_answers_orl_as_the_library(serve, orl_model, att_faces_dir, faces):
    # ORL images are face crops: the library's default ("auto") leaves them whole, so a server told
    # that uploads are face crops (no detector at all) must give the very same answers.
    server = serve(orl_model, "--faces", faces)
    reference = load_model(orl_model)
    probes = [att_faces_dir / f"s{k}" / f"{i}.pgm" for k in (*TRAINED[:10], *STRANGERS) for i in (9, 10)]
    names, scores = reference.identify(probes)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda f: server.post_image("/identify", f.read_bytes(), "image/x-portable-graymap"),
                                probes))
    assert [a.json["name"] for a in answers] == list(names)
    np.testing.assert_allclose([a.json["score"] for a in answers], scores, rtol=0, atol=1e-6)
    pairs = [(probes[0], probes[1]), (probes[0], probes[-1])]
    for a, b in pairs:
        same, score = reference.verify(a, b)
        answer = server.post_form("/verify", [("a", a.name, a.read_bytes()), ("b", b.name, b.read_bytes())])
        assert answer.status == 200 and answer.json["same"] == same
        assert answer.json["score"] == pytest.approx(score, abs=1e-6)


def test_a_server_that_never_looks_for_faces_reads_photos_whole(serve, orl_model, lfw_dir):
    # With --faces whole a photo is read whole, as a model trained with detect_faces=False reads it.
    photo = next(iter(sorted(lfw_dir.glob("*/*.jpg"))))
    server = serve(orl_model, "--faces", "whole")
    whole = load_model(orl_model)
    whole.preprocessor = Preprocessor.from_dict({**whole.preprocessor.to_dict(), "detect_faces": False})
    cropped = load_model(orl_model)
    answer = server.post_image("/identify", photo.read_bytes(), "image/jpeg")
    assert answer.status == 200
    assert answer.json["score"] == pytest.approx(whole.identify(photo)[1][0], abs=1e-6)
    assert answer.json["score"] != pytest.approx(cropped.identify(photo)[1][0], abs=1e-4)
