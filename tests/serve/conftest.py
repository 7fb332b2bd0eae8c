"""A real ``pyface serve`` in a subprocess on a free loopback port, and a plain HTTP client to talk to it."""

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import cv2
import numpy as np
import pytest

from pyface import Preprocessor, from_arrays, train

# A network small enough to train in about a second (as the tiny models of tests/model).
TINY = {"hidden_size": 8, "num_layers": 1, "views": ("rows",), "bidirectional": False, "augment": None,
        "batch_size": 8}
STARTUP_SECONDS = 120  # a generous bound on a loaded machine, not a measurement


def block_images(n_classes=3, per_class=6, size=24, seed=0):
    """uint8 images (N, size, size) and labels: class k is a bright block in its own place."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    block = size // 3
    for k in range(n_classes):
        row, col = divmod(k % 9, 3)
        for _ in range(per_class):
            image = rng.integers(0, 60, (size, size)).astype(np.uint8)
            r0, c0 = row * block, col * block
            image[r0 : r0 + block, c0 : c0 + block] = rng.integers(200, 256, (block, block))
            images.append(image)
            labels.append(k)
    return np.stack(images), np.array(labels)


def png(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", image)
    assert ok
    return data.tobytes()


def jpeg(image: np.ndarray, quality: int = 95) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return data.tobytes()


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory) -> Path:
    """A tiny recognizer of three people (person0..2) on 16-pixel images, saved; copy it before serving."""
    images, labels = block_images(per_class=8)
    data = from_arrays(images, labels, names=["person0", "person1", "person2"], preprocessor=Preprocessor(size=16))
    path = tmp_path_factory.mktemp("tiny") / "tiny.pyface"
    train(data, epochs=25, quiet=True, seed=0, **TINY).save(path)
    return path


@pytest.fixture
def model_copy(tiny_model_file, tmp_path) -> Path:
    """A copy of the tiny model that the server may enrol into."""
    path = tmp_path / "model.pyface"
    shutil.copy(tiny_model_file, path)
    return path


class Answer:
    def __init__(self, status: int, headers: dict, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"Answer({self.status}, {self.body[:300]!r})"


def multipart(files, fields=None) -> tuple[bytes, str]:
    """A multipart/form-data body of ``files`` [(field, filename, bytes)] and text ``fields``; and its type."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in (fields or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, filename, data in files:
        head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                f"Content-Type: application/octet-stream\r\n\r\n")
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class Server:
    """A ``pyface serve`` process, and requests to it over HTTP on the loopback address."""

    def __init__(self, process: subprocess.Popen, log: Path):
        self.process = process
        self.log = log
        self.port = self._wait_for_port()
        self.wait_healthy()

    def _wait_for_port(self) -> int:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            found = re.search(r"serving on http://127\.0\.0\.1:(\d+)", self.log.read_text())
            if found:
                return int(found.group(1))
            if self.process.poll() is not None:
                pytest.fail(f"pyface serve exited with {self.process.returncode}:\n{self.log.read_text()}")
            time.sleep(0.05)
        pytest.fail(f"pyface serve did not start:\n{self.log.read_text()}")

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            try:
                if self.request("GET", "/health").status == 200:
                    return
            except OSError:
                time.sleep(0.05)
        pytest.fail(f"pyface serve never answered /health:\n{self.log.read_text()}")

    def connection(self, timeout: float = 120) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> Answer:
        connection = self.connection()
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return Answer(response.status, dict(response.getheaders()), response.read())
        finally:
            connection.close()

    def post_image(self, path: str, data: bytes, content_type: str = "image/png", headers: dict | None = None):
        return self.request("POST", path, data, {"Content-Type": content_type, **(headers or {})})

    def post_form(self, path: str, files, fields=None, headers: dict | None = None) -> Answer:
        body, content_type = multipart(files, fields)
        return self.request("POST", path, body, {"Content-Type": content_type, **(headers or {})})

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start(model: Path, *options: str, log: Path, env: dict | None = None) -> Server:
    command = [sys.executable, "-m", "pyface", "serve", str(model), "--port", "0", *options]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ, **(env or {})})
    try:
        return Server(process, log)
    except BaseException:
        process.kill()
        process.wait()
        raise


@pytest.fixture
def serve(tmp_path):
    """``serve(model, *options, env=None)`` starts a server; every one started is stopped after the test."""
    servers = []

    def run(model, *options, env=None):
        server = start(model, *options, log=tmp_path / f"server{len(servers)}.log", env=env)
        servers.append(server)
        return server

    yield run
    for server in servers:
        server.stop()
