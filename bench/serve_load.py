"""Load test of ``pyface serve``: concurrent clients posting ORL faces to /identify, for a bounded time.

Starts the service itself on a free loopback port (127.0.0.1 only), runs ``--clients``
client threads for ``--seconds`` seconds, each posting ORL faces one after the other
on a kept-alive connection, stops the service, and reports the errors, the p50 and
p99 latency and the faces answered per second. With ``--compare`` the same load
runs a second time against the service answering one face per kernel call
(``--max-batch 1``), and the speed-up of micro-batching is reported.

    python bench/serve_load.py --clients 16 --seconds 30 --compare
    python bench/serve_load.py --clients 16 --seconds 30 --compare --server-faces whole

Without ``--model``, a recognizer of the default architecture is first trained on
ORL for a couple of epochs (throughput does not depend on accuracy). The ORL folder
is ``--faces``, else ``att_faces`` in ``PYFACE_TEST_DATA``, else :func:`pyface.datasets.fetch_att_faces`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

STARTUP_SECONDS = 120


def face_files(folder: str | None) -> list[bytes]:
    """The bytes of every ORL image: the files of the folder, or the fetched faces encoded as PNG."""
    if folder is None and os.environ.get("PYFACE_TEST_DATA"):
        folder = str(Path(os.environ["PYFACE_TEST_DATA"]) / "att_faces")
    if folder:
        files = sorted(Path(folder).glob("s*/*.pgm"))
        if not files:
            raise SystemExit(f"no ORL images (s*/*.pgm) under {folder}")
        return [f.read_bytes() for f in files]
    from pyface.datasets import fetch_att_faces

    faces = fetch_att_faces(quiet=True)
    return [cv2.imencode(".png", np.rint(image * 255).astype(np.uint8))[1].tobytes() for image in faces.images]


def trained_model(faces: list[bytes], folder: Path, epochs: int) -> Path:
    """A recognizer of the default architecture, briefly trained on the faces (ten per person)."""
    from pyface import from_arrays, train

    images = [cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) for data in faces]
    labels = np.arange(len(images)) // 10
    print(f"training a model for {epochs} epochs on {len(images)} faces ...", file=sys.stderr, flush=True)
    path = folder / "load.pyface"
    train(from_arrays(images, labels), epochs=epochs, seed=0, quiet=True).save(path)
    return path


class Service:
    """``pyface serve`` in a subprocess on a free loopback port."""

    def __init__(self, model: Path, folder: Path, max_batch: int, max_wait_ms: float, faces: str | None):
        copy = folder / f"served-{max_batch}.pyface"
        shutil.copy(model, copy)
        self.log = folder / f"server-{max_batch}.log"
        command = [sys.executable, "-m", "pyface", "serve", str(copy), "--host", "127.0.0.1", "--port", "0",
                   "--max-batch", str(max_batch), "--max-wait-ms", str(max_wait_ms)]
        if faces is not None:
            command += ["--faces", faces]
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        self.port = self._port()
        self._wait_healthy()

    def _port(self) -> int:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline and self.process.poll() is None:
            found = re.search(r"serving on http://127\.0\.0\.1:(\d+)", self.log.read_text())
            if found:
                return int(found.group(1))
            time.sleep(0.05)
        self.stop()
        raise SystemExit(f"pyface serve did not start:\n{self.log.read_text()}")

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                connection.request("GET", "/health")
                if connection.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise SystemExit(f"pyface serve never answered /health:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def client(port: int, faces: list[bytes], start: int, deadline: float, latencies: list, errors: list) -> None:
    """Post faces until ``deadline``: each answer's latency in seconds, or what went wrong."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    i = start
    while time.monotonic() < deadline:
        body = faces[i % len(faces)]
        i += 1
        began = time.perf_counter()
        try:
            connection.request("POST", "/identify", body, {"Content-Type": "application/octet-stream"})
            response = connection.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException) as error:
            errors.append(f"{type(error).__name__}: {error}")
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            continue
        if response.status != 200:
            errors.append(f"{response.status}: {answer[:200]!r}")
        else:
            latencies.append(time.perf_counter() - began)
    connection.close()


def load(port: int, faces: list[bytes], *, clients: int, seconds: float) -> dict:
    """Run the clients for ``seconds`` and summarise what they saw."""
    latencies, errors = [], []
    deadline = time.monotonic() + seconds
    threads = [threading.Thread(target=client, args=(port, faces, k * 37, deadline, latencies, errors))
               for k in range(clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    ms = np.array(latencies) * 1000
    return {
        "clients": clients, "seconds": round(elapsed, 2), "answers": len(latencies), "errors": len(errors),
        "first_errors": errors[:3],
        "p50_ms": round(float(np.percentile(ms, 50)), 2) if len(ms) else None,
        "p99_ms": round(float(np.percentile(ms, 99)), 2) if len(ms) else None,
        "faces_per_second": round(len(latencies) / elapsed, 1),
    }


def measure(model: Path, faces: list[bytes], folder: Path, *, max_batch: int, args) -> dict:
    service = Service(model, folder, max_batch, args.max_wait_ms, args.server_faces)
    try:
        load(service.port, faces, clients=args.clients, seconds=min(args.warmup, args.seconds))  # warm up
        result = load(service.port, faces, clients=args.clients, seconds=args.seconds)
    finally:
        service.stop()
    return {"max_batch": max_batch, **result}


def _show(result: dict) -> None:
    print(f"max_batch={result['max_batch']:>3}: {result['clients']} clients, {result['seconds']} s, "
          f"{result['answers']} answers, {result['errors']} errors, p50 {result['p50_ms']} ms, "
          f"p99 {result['p99_ms']} ms, {result['faces_per_second']} faces/s", flush=True)
    for error in result["first_errors"]:
        print(f"    e.g. {error}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="model file (default: train one briefly on ORL)")
    parser.add_argument("--faces", help="ORL folder with s1..s40 (default: att_faces in PYFACE_TEST_DATA, else fetched)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds of load per mode (default 30)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load first (default 2)")
    parser.add_argument("--max-batch", type=int, default=32, help="the service's --max-batch (default 32)")
    parser.add_argument("--max-wait-ms", type=float, default=2.0, help="the service's --max-wait-ms (default 2)")
    parser.add_argument("--server-faces", choices=("auto", "crop", "whole"),
                        help="the service's --faces (default: as the model was trained); whole: the uploads "
                        "are face crops, no detector runs")
    parser.add_argument("--compare", action="store_true", help="also run with --max-batch 1 and give the speed-up")
    parser.add_argument("--train-epochs", type=int, default=2, help="epochs of the model trained without --model")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.seconds <= 0 or args.max_batch < 1:
        parser.error("--clients, --seconds and --max-batch must be positive")
    faces = face_files(args.faces)
    with tempfile.TemporaryDirectory(prefix="pyface-load-") as tmp:
        folder = Path(tmp)
        model = args.model or trained_model(faces, folder, args.train_epochs)
        results = [measure(model, faces, folder, max_batch=args.max_batch, args=args)]
        _show(results[0])
        if args.compare and args.max_batch != 1:
            results.append(measure(model, faces, folder, max_batch=1, args=args))
            _show(results[1])
            print(f"micro-batching: {results[0]['faces_per_second'] / results[1]['faces_per_second']:.2f}x "
                  f"the faces per second of one face per kernel call")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 1 if any(r["errors"] for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
