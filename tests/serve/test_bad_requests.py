"""Every kind of bad request gets a 4xx JSON error naming the problem, and the server stays up."""

import shutil

import numpy as np
import pytest

from .conftest import block_images, jpeg, png, start

LIMIT_MB = 1


@pytest.fixture(scope="module")
def server(tiny_model_file, tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    model = folder / "model.pyface"
    shutil.copy(tiny_model_file, model)
    server = start(model, "--max-body-mb", str(LIMIT_MB), log=folder / "server.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def face():
    return block_images(per_class=1, seed=2)[0][0]


def check(answer, status: int, words: str):
    assert answer.status == status, answer
    assert answer.headers["content-type"] == "application/json"
    assert words in answer.json["error"], answer.json


def test_a_body_that_is_not_an_image(server):
    check(server.post_image("/identify", b"hello, this is text"), 400, "not an image OpenCV can decode")


def test_an_empty_body(server):
    check(server.post_image("/identify", b""), 400, "is empty (0 bytes)")


def test_a_truncated_jpeg(server, face):
    whole = jpeg(np.tile(face, (4, 4)))
    check(server.post_image("/identify", whole[: len(whole) * 2 // 3], "image/jpeg"), 400, "truncated JPEG")


def test_a_one_pixel_image(server):
    check(server.post_image("/identify", png(np.full((1, 1), 128, np.uint8))), 400, "is 1x1 pixels")


def test_a_50_megapixel_image_is_refused_from_its_header(server):
    # Flat grey compresses to a few dozen kilobytes: only the pixel count can refuse it.
    huge = png(np.full((7072, 7072), 128, np.uint8))
    assert len(huge) < LIMIT_MB * 1e6
    check(server.post_image("/identify", huge), 413, "is 7072x7072 pixels (50.0 megapixels)")
    answer = server.post_form("/people/giant", [("images", "big.png", huge)])
    check(answer, 413, "field 'images' (big.png) is 7072x7072 pixels")


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "application/x-www-form-urlencoded"])
def test_a_wrong_content_type(server, face, content_type):
    check(server.post_image("/identify", png(face), content_type), 415, f"Content-Type {content_type!r}")
    check(server.post_image("/verify", png(face), content_type), 415, "multipart/form-data")


def test_a_missing_multipart_field(server, face):
    check(server.post_form("/identify", [("picture", "f.png", png(face))]), 400,
          "no field 'image' (its fields: 'picture')")
    check(server.post_form("/verify", [("a", "f.png", png(face))]), 400, "no field 'b'")
    check(server.post_form("/identify", [], fields={"image": "face.png"}), 400, "is text, not a file")
    twice = [("a", "1.png", png(face)), ("a", "2.png", png(face)), ("b", "3.png", png(face))]
    check(server.post_form("/verify", twice), 400, "2 fields 'a'")


def test_a_malformed_multipart_body(server):
    answer = server.post_image("/identify", b"--x\r\nnonsense", "multipart/form-data")
    assert answer.status == 400 and answer.json["error"]


def test_an_unknown_person(server):
    check(server.request("DELETE", "/people/nobody"), 404, "nobody called 'nobody' is enrolled")


def test_a_trained_person_cannot_be_removed_or_enrolled_again(server, face):
    check(server.request("DELETE", "/people/person1"), 409, "trained person")
    check(server.post_image("/people/person1", png(face)), 409, "'person1' is already known")


@pytest.mark.parametrize("name, words", [("unknown", "answer for strangers"), ("%20%20", "cannot be blank"),
                                         ("a%07b", "control characters"), ("x" * 201, "at most 200 characters")])
def test_a_bad_name(server, face, name, words):
    check(server.post_image(f"/people/{name}", png(face)), 400, words)


@pytest.mark.parametrize("method, path, allowed", [("GET", "/identify", "POST"), ("PUT", "/people/x", "POST, DELETE"),
                                                   ("POST", "/health", "GET, HEAD"), ("DELETE", "/people", "GET, HEAD")])
def test_a_wrong_method(server, method, path, allowed):
    answer = server.request(method, path, b"")
    check(answer, 405, f"{method} is not allowed on {path}; use {allowed}")
    assert answer.headers["allow"] == allowed


def test_an_unknown_path(server):
    check(server.request("GET", "/recognise"), 404, "no such endpoint: /recognise")


@pytest.mark.parametrize("k", ["0", "-1", "many", "101", "2.5"])
def test_a_bad_k(server, face, k):
    check(server.post_image(f"/identify?k={k}", png(face)), 400, "k must be a whole number from 1 to 100")


def test_a_declared_body_over_the_limit_is_refused_before_it_is_sent(server):
    # Only the headers go out: the answer comes without the server waiting for the 20 MB.
    connection = server.connection()
    connection.putrequest("POST", "/identify")
    connection.putheader("Content-Type", "image/jpeg")
    connection.putheader("Content-Length", str(20_000_000))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413
    assert "request body of 20 MB is over the limit of 1 MB" in response.read().decode()
    connection.close()


def test_a_streamed_body_over_the_limit_is_refused_once_it_passes_it(server):
    # Chunked, so no Content-Length tells the size: the server counts what arrives.
    connection = server.connection()
    connection.putrequest("POST", "/people/streamer")
    connection.putheader("Content-Type", "image/png")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    chunk = b"\0" * 300_000
    try:
        for _ in range(5):
            connection.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may have answered and closed already
    response = connection.getresponse()
    assert response.status == 413
    assert "over the limit of 1 MB" in response.read().decode()
    connection.close()


def test_after_all_that_the_server_is_up_and_never_failed(server, face):
    assert server.request("GET", "/health").status == 200
    assert server.post_image("/identify", png(face)).status == 200
    log = server.log.read_text()
    assert " 500 " not in log and "Traceback" not in log
