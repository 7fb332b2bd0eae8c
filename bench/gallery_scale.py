"""Galleries at scale: a million templates of the default embedding size, in one SQLite gallery.

    python bench/gallery_scale.py --templates 1000000 [--queries 1000] [--json out.json]

Measures, in one run: bulk enrolment rate; the time to open the gallery (loading every
template); exact search latency per query (p50, p99) on 1 and 2 threads, against a
plain NumPy brute force (one product, one argmax) on the same templates; the
approximate index's build time, load time, latency and recall@1 against the exact
search; the memory the templates take and the size of the files on disk.

The templates are made up but shaped like faces': people are random directions and
each person's templates lie near theirs; each query is a new image of an enrolled
person (the situation of a door camera). Needs ``pip install "pyface[ann]"``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time

import numpy as np

import pyface
from pyface.data.preprocess import Preprocessor
from pyface.kernel.blas import openblas_threads_api
from pyface.nn.network import Architecture, Network, init_parameters
from pyface.recognition.recognizer import FaceRecognizer

PER_PERSON = 5
NOISE = 0.6  # spread of a person's templates around their direction, per coordinate x sqrt(d)


def default_model() -> FaceRecognizer:
    """A recognizer of the default architecture (untrained: the gallery only needs its fingerprint and size)."""
    arch = Architecture(n_classes=2)
    network = Network(arch, init_parameters(arch, np.random.default_rng(0)))
    return FaceRecognizer(network, ["a", "b"], Preprocessor(size=arch.image_size), threshold=0.5)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def made_up_people(n_people: int, d: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Directions (n_people, d) of made-up people and their templates (n_people, PER_PERSON, d)."""
    centres = _unit(rng.standard_normal((n_people, d)).astype(np.float32))
    templates = np.empty((n_people, PER_PERSON, d), dtype=np.float32)
    for first in range(0, n_people, 10_000):
        part = centres[first : first + 10_000]
        noise = rng.standard_normal((len(part), PER_PERSON, d)).astype(np.float32) * (NOISE / np.sqrt(d))
        templates[first : first + len(part)] = _unit((part[:, None, :] + noise).reshape(-1, d)).reshape(noise.shape)
    return centres, templates


def set_threads(n: int) -> None:
    api = openblas_threads_api()
    if api is not None:
        api[1](n)
    if "faiss" in sys.modules:
        sys.modules["faiss"].omp_set_num_threads(n)


def latencies(search, queries: np.ndarray) -> tuple[np.ndarray, dict]:
    """Answers of ``search`` for each query alone, and p50 / p99 of the time per query in ms."""
    answers, times = [], []
    for q in queries:
        started = time.perf_counter()
        answers.append(search(q[None]))
        times.append(time.perf_counter() - started)
    ms = np.array(times) * 1e3
    return np.array(answers), {"p50_ms": float(np.median(ms)), "p99_ms": float(np.percentile(ms, 99))}


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def files_mb(path: str) -> float:
    found = [p for p in (path, path + "-wal", path + ".index") if os.path.exists(p)]
    return sum(os.path.getsize(p) for p in found) / 2**20


def enroll(path: str, model, templates: np.ndarray, batch: int) -> dict:
    started = time.perf_counter()
    with pyface.open_gallery(path, model) as gallery:
        for first in range(0, len(templates), batch):
            gallery.enroll_many([(f"p{first + i}", v, None) for i, v in enumerate(templates[first : first + batch])])
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "templates_per_s": templates.shape[0] * templates.shape[1] / seconds}


def exact_figures(path: str, model, templates: np.ndarray, queries: np.ndarray, report: dict) -> np.ndarray:
    before = rss_mb()
    started = time.perf_counter()
    gallery = pyface.open_gallery(path, model)
    gallery.enrolled  # loads every template
    report["open_exact_s"] = time.perf_counter() - started
    report["templates_memory_mb"] = rss_mb() - before
    # The NumPy baseline: the same templates in one array, one product and one argmax per query.
    vectors = templates.reshape(-1, templates.shape[2])
    owners = np.array([f"p{i}" for i in range(len(templates))])[np.arange(len(vectors)) // templates.shape[1]]
    for threads in (1, 2):
        set_threads(threads)
        truth, report[f"exact_{threads}_thread"] = latencies(lambda q: gallery.search_embeddings(q, k=1)[0][0, 0],
                                                             queries)
        _, report[f"numpy_{threads}_thread"] = latencies(lambda q: owners[int((q @ vectors.T).argmax())], queries)
    gallery.close()
    return truth


def approximate_figures(path: str, model, queries: np.ndarray, truth: np.ndarray, report: dict) -> None:
    for kind in ("build", "load"):  # the first opening builds and saves the index, the second loads it
        set_threads(2)
        started = time.perf_counter()
        gallery = pyface.open_gallery(path, model, search="approximate")
        gallery.enrolled
        report[f"index_{kind}_s"] = time.perf_counter() - started
        if kind == "build":
            gallery.save_index()
        set_threads(1)
        found, report[f"approximate_1_thread_{kind}"] = latencies(
            lambda q: gallery.search_embeddings(q, k=1)[0][0, 0], queries)
        report[f"recall_at_1_{kind}"] = float(np.mean(found == truth))
        gallery.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--templates", type=int, default=1_000_000, help="templates in the gallery (default 1e6)")
    parser.add_argument("--queries", type=int, default=1000, help="queries timed one at a time (default 1000)")
    parser.add_argument("--batch", type=int, default=2000, help="people per enrolment transaction (default 2000)")
    parser.add_argument("--folder", help="where the gallery goes (default: a temporary folder, deleted)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    model = default_model()
    d = model.network.arch.feature_size
    n_people = max(2, args.templates // PER_PERSON)
    rng = np.random.default_rng(0)
    centres, templates = made_up_people(n_people, d, rng)
    queries = _unit(centres[rng.integers(0, n_people, args.queries)]
                    + rng.standard_normal((args.queries, d)).astype(np.float32) * (NOISE / np.sqrt(d)))
    with tempfile.TemporaryDirectory(dir=args.folder) as folder:
        path = os.path.join(folder, "faces.db")
        report = {"templates": n_people * PER_PERSON, "people": n_people, "dimension": d, "queries": args.queries}
        report["enrolment"] = enroll(path, model, templates, args.batch)
        truth = exact_figures(path, model, templates, queries, report)
        approximate_figures(path, model, queries, truth, report)
        report["disk_mb"] = files_mb(path)
    print(json.dumps(report, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
