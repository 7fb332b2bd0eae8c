"""How pyface scales on Dask: batch recognition throughput and seconds per training epoch.

    python bench/dask_scaling.py                 # the full measurement (an idle machine, ~1 hour)
    python bench/dask_scaling.py --smoke         # a few seconds, only to prove the script runs
    python bench/dask_scaling.py --no-training   # batch recognition only (a few minutes)

Batch recognition: images per second of ``distributed.predict_files`` on ``--workers``
single-threaded worker processes, against one process naming the same files (the way
``pyface predict`` does) with 1 and with ``--workers`` kernel threads. Training: seconds per
epoch of ``pyface.train`` in one process and of ``distributed.train`` on 1 and ``--workers``
workers, on ORL and on ``synthetic_faces`` with ``--people`` people, with the share of each
step spent outside the workers' gradient computation (communication and scheduling).

The projection to 8, 32 and 128 workers models a step on n workers as
``compute / n + a + b * n``: the batch's computing time divides among the workers, while the
driver sends the weights to and gathers the gradients from each worker in turn (``b`` per
worker, ``a`` fixed), both fitted to the communication measured on 1 and ``--workers``
workers. Each worker needs a shard of at least ``--min-shard`` images to keep its kernel
efficient, so n workers need a global batch of at least n * min_shard.
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import time

import cv2
import numpy as np

import pyface
from pyface.data import load_images
from pyface.data.images import list_image_files
from pyface.datasets import fetch_att_faces, synthetic_faces


def _cluster(n_workers: int):
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None)
    return cluster, Client(cluster)


def _one_process_rate(model, paths: list[str], threads: int, batch: int = 64) -> float:
    # The kernel and OpenCV (decoding, face detection) both on ``threads`` cores.
    before, before_cv = pyface.get_num_threads(), cv2.getNumThreads()
    pyface.set_num_threads(threads)
    cv2.setNumThreads(threads)
    try:
        started = time.perf_counter()
        for start in range(0, len(paths), batch):
            model.predict(paths[start : start + batch])
        return len(paths) / (time.perf_counter() - started)
    finally:
        pyface.set_num_threads(before)
        cv2.setNumThreads(before_cv)


def predict_throughput(model, paths: list[str], workers: int) -> dict:
    from pyface import distributed

    rates = {"1 process, 1 thread": _one_process_rate(model, paths, 1),
             f"1 process, {workers} threads": _one_process_rate(model, paths, workers)}
    cluster, client = _cluster(workers)
    try:
        distributed.predict_files(model, paths[: 4 * workers], client=client, quiet=True)  # workers load the model
        started = time.perf_counter()
        table = distributed.predict_files(model, paths, client=client, quiet=True)
        rates[f"predict_files, {workers} workers"] = len(table) / (time.perf_counter() - started)
    finally:
        client.close()
        cluster.close()
    return rates


def epoch_seconds(data, options: dict, workers: int, epochs: int) -> dict:
    from pyface import distributed

    rows = {}
    model = pyface.train(data, epochs=epochs, quiet=True, **options)
    rows[f"pyface.train, {pyface.get_num_threads()} threads"] = (statistics.mean(model.history["seconds"]), None)
    for n in sorted({1, workers}):
        cluster, client = _cluster(n)
        try:
            # Workers import pyface before the clock starts: the first epoch times training, not imports.
            client.run(importlib.import_module, "pyface.training.step")
            model = distributed.train(data, client=client, epochs=epochs, quiet=True, **options)
            rows[f"distributed.train, {n} worker{'s' if n > 1 else ''}"] = (
                statistics.mean(model.history["seconds"]), model.history["communication_share"])
        finally:
            client.close()
            cluster.close()
    return rows


def projection(rows: dict, workers: int, steps_per_epoch: int, batch: int, min_shard: int) -> list[str]:
    """Seconds per epoch on 8, 32 and 128 workers from the 1- and ``workers``-worker measurements."""
    one = rows["distributed.train, 1 worker"]
    many = rows[f"distributed.train, {workers} workers"]
    step1, step_n = one[0] / steps_per_epoch, many[0] / steps_per_epoch
    compute = step1 * (1 - one[1])  # the whole batch on one worker
    comm1, comm_n = step1 * one[1], step_n * many[1]
    b = max((comm_n - comm1) / (workers - 1), 0.0) if workers > 1 else 0.0
    a = max(comm1 - b, 0.0)
    lines = [f"  model: step(n) = {compute * 1e3:.1f} ms / n + {a * 1e3:.2f} ms + {b * 1e3:.2f} ms * n "
             f"(batch {batch}); the step is shortest near n = {np.sqrt(compute / b) if b else float('inf'):.0f}"]
    images = steps_per_epoch * batch
    for n in (8, 32, 128):
        global_batch = max(batch, n * min_shard)
        scaled = compute * global_batch / batch  # computing time grows with the batch
        step = scaled / n + a + b * n
        lines.append(f"  {n:4d} workers: global batch {global_batch:5d}, {step * 1e3:8.1f} ms per step, "
                     f"{step * -(-images // global_batch):8.2f} s per epoch, communication {(a + b * n) / step:.0%}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, only to check that the script runs")
    parser.add_argument("--orl", help="ORL / AT&T faces folder (default: pyface.datasets.fetch_att_faces)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2, one per core)")
    parser.add_argument("--images", type=int, default=4000, help="image files to name (default 4000)")
    parser.add_argument("--people", type=int, default=500, help="people of the synthetic set (default 500)")
    parser.add_argument("--per-person", type=int, default=10, help="images per synthetic person (default 10)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs timed per run (default 2)")
    parser.add_argument("--no-training", action="store_true", help="measure batch recognition only")
    parser.add_argument("--min-shard", type=int, default=8, help="images per worker per step (default 8)")
    args = parser.parse_args()
    options: dict = {}
    if args.smoke:
        args.images, args.people, args.per_person, args.epochs = 64, 6, 4, 1
        options = dict(hidden_size=8, num_layers=1, views=("rows",), bidirectional=False)
    if args.orl:
        orl = load_images(args.orl)
    else:
        orl = fetch_att_faces()
    if args.smoke:
        orl = orl[np.flatnonzero(orl.labels < 4)]
    files = [str(p) for p in list_image_files(sorted({os.path.dirname(p) for p in orl.paths}))]
    paths = [files[k % len(files)] for k in range(args.images)]

    model = pyface.train(orl, epochs=1, quiet=True, **options)
    print(f"Batch recognition, {len(paths)} images ({os.path.basename(paths[0])}...):")
    for name, rate in predict_throughput(model, paths, args.workers).items():
        print(f"  {name:<28} {rate:8.1f} images/s")

    if args.no_training:
        return
    batch = 32
    sets = {"ORL": orl, f"synthetic, {args.people} people": synthetic_faces(args.people, args.per_person, seed=0)}
    for label, data in sets.items():
        print(f"Training on {label} ({len(data)} images), seconds per epoch:")
        rows = epoch_seconds(data, options, args.workers, args.epochs)
        for name, (seconds, share) in rows.items():
            extra = "" if share is None else f"   communication {share:.0%} of each step"
            print(f"  {name:<28} {seconds:8.2f} s{extra}")
        if args.workers > 1:
            print("  projection:")
            print("\n".join(projection(rows, args.workers, -(-len(data) // batch), batch, args.min_shard)))


if __name__ == "__main__":
    main()
