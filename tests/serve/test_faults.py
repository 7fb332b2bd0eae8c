"""The token, concurrent enrolments and identifications, SIGTERM while answering, SIGKILL while enrolling."""

import json
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from pyface import load_model

from .conftest import STARTUP_SECONDS, block_images, png


@pytest.fixture(scope="module")
def strangers():
    """Four faces of each of six people the tiny model never saw (blocks in other places)."""
    images, labels = block_images(n_classes=9, per_class=4, seed=5)
    return [images[labels == k] for k in range(3, 9)]


def form(images):
    return [("images", f"{i}.png", png(image)) for i, image in enumerate(images)]


def test_changing_the_people_needs_the_token(serve, model_copy, strangers):
    server = serve(model_copy, "--token", "s3cret")
    images = form(strangers[0][:2])
    for headers, words in [({}, "needs the service's token"), ({"Authorization": "Bearer nope"}, "wrong token"),
                           ({"Authorization": "Basic s3cret"}, "needs the service's token")]:
        answer = server.post_form("/people/eve", images, headers=headers)
        assert answer.status == 401 and words in answer.json["error"]
        assert answer.headers["www-authenticate"] == "Bearer"
    assert load_model(model_copy).enrolled == {}
    good = {"Authorization": "Bearer s3cret"}
    assert server.post_form("/people/eve", images, headers=good).status == 201
    assert server.request("DELETE", "/people/eve").status == 401
    assert load_model(model_copy).enrolled == {"eve": 2}
    assert server.request("DELETE", "/people/eve", headers=good).status == 200
    # Reading needs no token.
    assert server.post_image("/identify", png(strangers[0][0])).status == 200
    assert server.request("GET", "/people").status == 200
    assert "security" in server.request("GET", "/openapi.json").json["paths"]["/people/{name}"]["post"]


def test_the_token_can_come_from_the_environment(serve, model_copy, strangers):
    server = serve(model_copy, env={"PYFACE_TOKEN": "from-env"})
    assert server.post_image("/people/eve", png(strangers[0][0])).status == 401
    answer = server.post_image("/people/eve", png(strangers[0][0]), headers={"Authorization": "Bearer from-env"})
    assert answer.status == 201


def test_concurrent_enrolments_and_identifications_lose_nothing(serve, model_copy, strangers):
    server = serve(model_copy)
    newcomers = {f"visitor{k}": faces for k, faces in enumerate(strangers)}
    probes = [face for faces in strangers for face in faces] * 2
    with ThreadPoolExecutor(16) as pool:
        enrolments = {name: pool.submit(server.post_form, f"/people/{name}", form(faces[:2]))
                      for name, faces in newcomers.items()}
        twins = [pool.submit(server.post_form, "/people/twin", form(strangers[0][2:])) for _ in range(4)]
        answers = [pool.submit(server.post_image, "/identify", png(face)) for face in probes]
    assert {name: f.result().status for name, f in enrolments.items()} == {name: 201 for name in newcomers}
    assert sorted(f.result().status for f in twins) == [201, 409, 409, 409]
    known = {"person0", "person1", "person2", "twin", "unknown", *newcomers}
    for future in answers:
        assert future.result().status == 200
        assert future.result().json["name"] in known
    expected = {**{name: 2 for name in newcomers}, "twin": 2}
    assert load_model(model_copy).enrolled == expected
    assert sorted(server.request("GET", "/people").json["people"]) == sorted(["person0", "person1", "person2",
                                                                               *expected])


def _read_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def test_sigterm_answers_the_requests_in_flight_then_exits(serve, model_copy, strangers):
    server = serve(model_copy)
    body = png(strangers[0][0])
    expected = server.post_image("/identify", body).json
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=STARTUP_SECONDS)
    sock.sendall(f"POST /identify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
                 f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n".encode())
    # "100 Continue" comes once the service reads the body: the request is in flight.
    assert _read_head(sock).startswith(b"HTTP/1.1 100")
    server.process.send_signal(signal.SIGTERM)
    sock.sendall(body)
    response = b""
    while chunk := sock.recv(65536):
        response += chunk
    sock.close()
    head, _, payload = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), response
    assert json.loads(payload) == expected  # answered in full
    assert server.process.wait(timeout=STARTUP_SECONDS) == -signal.SIGTERM
    assert "Application shutdown complete" in server.log.read_text()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=5)


def test_sigkill_while_enrolling_leaves_a_consistent_model(serve, model_copy, strangers):
    server = serve(model_copy)
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

    enrolled = load_model(model_copy).enrolled  # the file is whole
    in_flight = f"p{len(acknowledged)}"
    assert set(acknowledged) <= set(enrolled) <= set(acknowledged) | {in_flight}
    assert all(count == 3 for count in enrolled.values())
    restarted = serve(model_copy)
    assert restarted.request("GET", "/health").json["people"] == 3 + len(enrolled)
