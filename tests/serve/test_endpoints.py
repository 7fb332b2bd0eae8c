"""Every endpoint of ``pyface serve``, over HTTP, answering what the library answers."""

from urllib.parse import quote

import numpy as np
import pytest

from pyface import load_model

from .conftest import block_images, jpeg, png


@pytest.fixture
def server(serve, model_copy):
    return serve(model_copy)


@pytest.fixture(scope="module")
def faces():
    """Two new faces of each of the three trained people (uint8 24x24)."""
    return block_images(per_class=2, seed=9)[0]


def test_health_names_the_model_and_counts_the_people(server):
    answer = server.request("GET", "/health")
    assert answer.status == 200
    assert answer.json == {"status": "ok", "model": "model.pyface", "people": 3}


def test_identify_answers_as_the_library_from_a_raw_body_or_a_form(server, model_copy, faces):
    model = load_model(model_copy)
    names, scores = model.identify(list(faces))
    for face, name, score in zip(faces, names, scores):
        raw = server.post_image("/identify", png(face))
        form = server.post_form("/identify", [("image", "face.png", png(face))])
        assert raw.status == form.status == 200
        assert raw.json == form.json
        assert raw.json["name"] == name
        assert raw.json["score"] == pytest.approx(score, abs=1e-6)
        assert raw.json["known"] is (name != "unknown")
        assert "candidates" not in raw.json


def test_identify_reads_a_jpeg_as_the_library_reads_the_file(server, model_copy, faces, tmp_path):
    path = tmp_path / "face.jpg"
    path.write_bytes(jpeg(faces[2], quality=70))
    (name,), (score,) = load_model(model_copy).identify(path)
    answer = server.post_image("/identify", path.read_bytes(), "image/jpeg")
    assert answer.json["name"] == name and answer.json["score"] == pytest.approx(score, abs=1e-6)


def test_identify_with_k_adds_the_top_candidates(server, model_copy, faces):
    names, scores = load_model(model_copy).search(faces[:1], k=2)
    answer = server.post_image("/identify?k=2", png(faces[0]))
    assert answer.status == 200
    candidates = answer.json["candidates"]
    assert [c["name"] for c in candidates] == list(names[0])
    np.testing.assert_allclose([c["score"] for c in candidates], scores[0], atol=1e-6)
    assert candidates[0]["score"] == pytest.approx(answer.json["score"], abs=1e-6)
    assert len(server.post_image("/identify?k=50", png(faces[0])).json["candidates"]) == 3


def test_verify_answers_as_the_library(server, model_copy, faces):
    model = load_model(model_copy)
    for i, j in [(0, 1), (0, 2), (3, 5)]:
        same, score = model.verify(faces[i], faces[j])
        answer = server.post_form("/verify", [("a", "a.png", png(faces[i])), ("b", "b.png", png(faces[j]))])
        assert answer.status == 200
        assert answer.json["same"] is same
        assert answer.json["score"] == pytest.approx(score, abs=1e-6)
        assert answer.json["threshold"] == model.verify_threshold


def test_people_are_listed_enrolled_and_removed_and_the_model_file_follows(server, model_copy):
    strangers = block_images(n_classes=5, per_class=4, seed=3)
    newcomer = strangers[0][strangers[1] == 4]
    assert server.request("GET", "/people").json == {"people": ["person0", "person1", "person2"], "count": 3}

    images = [("images", f"{i}.png", png(face)) for i, face in enumerate(newcomer[:3])]
    answer = server.post_form("/people/" + quote("Zoë O'Neil"), images)
    assert answer.status == 201
    assert answer.json == {"name": "Zoë O'Neil", "images": 3, "people": 4}
    assert load_model(model_copy).enrolled == {"Zoë O'Neil": 3}

    answer = server.post_image("/people/solo", png(newcomer[3]))
    assert answer.status == 201 and answer.json["images"] == 1
    assert server.request("GET", "/people").json["people"] == ["person0", "person1", "person2", "Zoë O'Neil", "solo"]
    assert server.request("GET", "/health").json["people"] == 5
    assert server.post_image("/identify", png(newcomer[3])).json["name"] == "solo"

    answer = server.request("DELETE", "/people/solo")
    assert answer.status == 200 and answer.json == {"removed": "solo", "people": 4}
    assert load_model(model_copy).enrolled == {"Zoë O'Neil": 3}
    assert "solo" not in server.request("GET", "/people").json["people"]


def test_openapi_describes_every_route(server):
    answer = server.request("GET", "/openapi.json")
    assert answer.status == 200
    spec = answer.json
    assert spec["openapi"].startswith("3.")
    routes = {(path, method) for path, item in spec["paths"].items() for method in item}
    assert routes == {("/health", "get"), ("/identify", "post"), ("/verify", "post"), ("/people", "get"),
                      ("/people/{name}", "post"), ("/people/{name}", "delete"), ("/openapi.json", "get")}
    assert "security" not in spec["paths"]["/people/{name}"]["post"]


def test_command_line_mistakes_are_one_line(model_copy, tmp_path, capsys):
    import socket

    from pyface import cli

    assert cli.main(["serve", str(tmp_path / "missing.pyface")]) == 1
    assert capsys.readouterr().err.strip() == f"pyface: error: model file not found: {tmp_path / 'missing.pyface'}"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cli.main(["serve", str(model_copy), "--port", str(port)]) == 1
    assert capsys.readouterr().err.startswith(f"pyface: error: cannot listen on 127.0.0.1:{port}:")
    assert cli.main(["serve", str(model_copy), "--token", " "]) == 1
    assert "the token (--token) is blank" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["serve", str(model_copy), "--port", "70000"])
    assert "a port is at most 65535" in capsys.readouterr().err


@pytest.mark.parametrize("logged", [False, True])
def test_requests_are_logged_only_when_asked(serve, model_copy, faces, logged):
    server = serve(model_copy, *(["--access-log"] if logged else []))
    assert server.post_image("/identify", png(faces[0])).status == 200
    assert server.request("GET", "/nowhere").status == 404
    server.stop()
    log = server.log.read_text()
    assert ('"POST /identify HTTP/1.1" 200' in log) is logged
    assert "pyface: serving on" in log
