"""``pyface serve MODEL --gallery URL``: every endpoint on a shared gallery, SQLite and PostgreSQL.

The people live in the gallery, not in the model file: what the service enrols is seen by
``pyface.open_gallery`` in this process and by a second server on the same gallery.
"""

import threading
import time
from urllib.parse import urlsplit

import numpy as np
import pytest

import pyface

from .conftest import STARTUP_SECONDS, block_images, png


@pytest.fixture(scope="module")
def strangers():
    """Four faces of each of six people the tiny model never saw (blocks in other places)."""
    images, labels = block_images(n_classes=9, per_class=4, seed=5)
    return [images[labels == k] for k in range(3, 9)]


def form(images):
    return [("images", f"{i}.png", png(image)) for i, image in enumerate(images)]


def open_gallery(gallery_url, model_copy):
    return pyface.open_gallery(gallery_url, pyface.load_model(model_copy), create=False)


def test_every_endpoint_answers_from_the_gallery(serve, model_copy, gallery_url, strangers):
    server = serve(model_copy, "--gallery", gallery_url)
    assert server.request("GET", "/health").json == {"status": "ok", "model": "model.pyface", "people": 0}
    assert server.request("GET", "/people").json == {"people": [], "count": 0}
    answer = server.post_image("/identify", png(strangers[0][3]))
    assert answer.status == 409 and "empty" in answer.json["error"]

    answer = server.post_form("/people/alice", form(strangers[0][:3]))
    assert answer.status == 201 and answer.json == {"name": "alice", "images": 3, "people": 1}
    answer = server.post_image("/people/bob", png(strangers[1][0]))
    assert answer.status == 201 and answer.json == {"name": "bob", "images": 1, "people": 2}
    assert server.request("GET", "/health").json["people"] == 2
    assert server.request("GET", "/people").json == {"people": ["alice", "bob"], "count": 2}
    assert pyface.load_model(model_copy).enrolled == {}  # the model file is left alone

    probes = [strangers[0][3], strangers[1][1], strangers[2][0]]
    with open_gallery(gallery_url, model_copy) as gallery:
        assert gallery.enrolled == {"alice": 3, "bob": 1}
        names, scores = gallery.identify(probes)
        ranked, ranked_scores = gallery.search(probes, k=2)
    for i, probe in enumerate(probes):
        answer = server.post_image("/identify", png(probe))
        assert answer.status == 200
        assert answer.json["name"] == names[i] and answer.json["known"] is (names[i] != "unknown")
        assert answer.json["score"] == pytest.approx(scores[i], abs=1e-6)
        candidates = server.post_image("/identify?k=2", png(probe)).json["candidates"]
        assert [c["name"] for c in candidates] == list(ranked[i])
        np.testing.assert_allclose([c["score"] for c in candidates], ranked_scores[i], atol=1e-6)
    assert len(server.post_image("/identify?k=50", png(probes[0])).json["candidates"]) == 2

    model = pyface.load_model(model_copy)
    same, score = model.verify(strangers[0][0], strangers[0][1])
    answer = server.post_form("/verify", [("a", "a.png", png(strangers[0][0])), ("b", "b.png", png(strangers[0][1]))])
    assert answer.status == 200
    assert answer.json == {"same": same, "score": pytest.approx(score, abs=1e-6), "threshold": model.verify_threshold}

    answer = server.request("DELETE", "/people/bob")
    assert answer.status == 200 and answer.json == {"removed": "bob", "people": 1}
    with open_gallery(gallery_url, model_copy) as gallery:
        assert gallery.names() == ["alice"]


def test_a_name_taken_is_409_and_nobody_is_404(serve, model_copy, gallery_url, strangers):
    server = serve(model_copy, "--gallery", gallery_url)
    assert server.post_form("/people/alice", form(strangers[0][:2])).status == 201
    answer = server.post_form("/people/alice", form(strangers[1][:3]))
    assert answer.status == 409 and "alice" in answer.json["error"]
    for name in ("bob", "person0"):  # nobody, and a trained person who is not in the gallery
        answer = server.request("DELETE", f"/people/{name}")
        assert answer.status == 404 and name in answer.json["error"]
    with open_gallery(gallery_url, model_copy) as gallery:
        assert gallery.enrolled == {"alice": 2}  # the first alice, untouched


def test_two_servers_on_one_gallery_see_each_others_people(serve, model_copy, gallery_url, strangers):
    first = serve(model_copy, "--gallery", gallery_url)
    second = serve(model_copy, "--gallery", gallery_url)
    assert first.post_form("/people/alice", form(strangers[0][:3])).status == 201
    assert second.request("GET", "/people").json["people"] == ["alice"]
    assert second.post_form("/people/bob", form(strangers[1][:3])).status == 201
    assert second.post_form("/people/alice", form(strangers[2][:3])).status == 409  # taken through the other
    for server in (first, second):
        assert server.request("GET", "/health").json["people"] == 2
        assert server.post_image("/identify?k=2", png(strangers[1][3])).json == \
            first.post_image("/identify?k=2", png(strangers[1][3])).json
    with open_gallery(gallery_url, model_copy) as gallery:
        expected = gallery.identify([strangers[1][3]])[0][0]
    assert second.post_image("/identify", png(strangers[1][3])).json["name"] == expected
    assert first.request("DELETE", "/people/bob").status == 200
    assert second.request("DELETE", "/people/bob").status == 404
    assert second.request("GET", "/people").json["people"] == ["alice"]


def test_sigkill_while_enrolling_leaves_the_gallery_consistent(serve, model_copy, gallery_url, strangers):
    server = serve(model_copy, "--gallery", gallery_url)
    acknowledged, stop = {}, threading.Event()

    def enrol_until_killed():
        for i in range(10_000):
            try:
                answer = server.post_form(f"/people/p{i}", form(strangers[i % len(strangers)][:3]))
            except OSError:
                return
            if answer.status == 201:
                acknowledged[f"p{i}"] = answer.json["images"]
            if stop.is_set():
                return

    worker = threading.Thread(target=enrol_until_killed)
    worker.start()
    deadline = time.monotonic() + STARTUP_SECONDS
    while len(acknowledged) < 4 and time.monotonic() < deadline and worker.is_alive():
        time.sleep(0.005)
    server.process.kill()  # SIGKILL, most likely in the middle of the next enrolment
    server.process.wait()
    stop.set()
    worker.join()
    assert len(acknowledged) >= 4

    with open_gallery(gallery_url, model_copy) as gallery:
        enrolled = gallery.enrolled  # every person's templates read back whole
    in_flight = f"p{len(acknowledged)}"
    assert set(acknowledged) <= set(enrolled) <= set(acknowledged) | {in_flight}
    assert all(count == 3 for count in enrolled.values())
    restarted = serve(model_copy, "--gallery", gallery_url)
    assert restarted.request("GET", "/health").json["people"] == len(enrolled)
    assert restarted.post_form(f"/people/{in_flight}", form(strangers[0][:3])).status == \
        (409 if in_flight in enrolled else 201)


def _drop_connections(postgres_server, postgres_url, *, allow: bool = True):
    """End every connection to the test's database, as a restart of PostgreSQL does; ``allow``: new ones."""
    import psycopg

    database = urlsplit(postgres_url).path.strip("/")
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {database} ALLOW_CONNECTIONS {str(allow).lower()}")
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,))


def test_a_dropped_database_connection_is_503_then_reopened(serve, model_copy, postgres_server, postgres_url,
                                                             strangers):
    server = serve(model_copy, "--gallery", postgres_url)
    assert server.post_form("/people/alice", form(strangers[0][:3])).status == 201
    _drop_connections(postgres_server, postgres_url)
    assert server.request("GET", "/people").json["people"] == ["alice"]  # a read is tried again
    _drop_connections(postgres_server, postgres_url)
    answer = server.post_image("/identify", png(strangers[0][3]))
    assert answer.status == 200 and answer.json["name"] == "alice"

    _drop_connections(postgres_server, postgres_url)
    assert server.post_form("/people/bob", form(strangers[1][:3])).status == 201  # its name check reconnects

    _drop_connections(postgres_server, postgres_url, allow=False)  # the database out of reach
    for method, path in [("GET", "/health"), ("GET", "/people"), ("DELETE", "/people/bob")]:
        answer = server.request(method, path)
        assert answer.status == 503 and "cannot be reached" in answer.json["error"], answer
        assert answer.headers["retry-after"] == "5"
    assert server.post_image("/identify", png(strangers[0][3])).status == 503
    _drop_connections(postgres_server, postgres_url)  # back
    assert server.request("GET", "/health").json["people"] == 2
    assert server.request("DELETE", "/people/bob").status == 200


def test_a_change_on_a_dropped_connection_is_not_tried_again(model_copy, postgres_server, postgres_url, strangers):
    from pyface.serve.errors import StoreUnavailable
    from pyface.serve.store import open_shared_gallery

    store = open_shared_gallery(postgres_url, pyface.load_model(model_copy))
    try:
        assert store.enroll("alice", list(strangers[0][:2])) == 2
        _drop_connections(postgres_server, postgres_url)
        with pytest.raises(StoreUnavailable, match="could not be changed, try again"):
            store.enroll("bob", list(strangers[1][:2]))
        assert store.enroll("bob", list(strangers[1][:2])) == 2  # on the connection opened since
        _drop_connections(postgres_server, postgres_url)
        with pytest.raises(StoreUnavailable, match="could not be changed, try again"):
            store.remove("bob")
        store.remove("bob")
        assert store.names() == ["alice"]
    finally:
        store.close()


def test_a_gallery_that_cannot_be_used_is_one_line(model_copy, tmp_path, capsys, small_faces, tiny):
    from pyface import cli

    not_a_gallery = tmp_path / "notes.db"
    not_a_gallery.write_text("hello")
    assert cli.main(["serve", str(model_copy), "--gallery", str(not_a_gallery)]) == 1
    assert capsys.readouterr().err == f"pyface: error: {not_a_gallery}: not a pyface gallery (not an SQLite database)\n"
    other = tmp_path / "other.db"
    pyface.open_gallery(other, pyface.train(small_faces, epochs=1, quiet=True, **tiny)).close()
    assert cli.main(["serve", str(model_copy), "--gallery", str(other)]) == 1
    assert "the gallery holds embeddings of another model" in capsys.readouterr().err
