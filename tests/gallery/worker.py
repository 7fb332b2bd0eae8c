"""A process writing into a gallery, for the tests of concurrency and crashes.

    worker.py enroll URL MODEL PREFIX N        enroll PREFIX-0 .. PREFIX-{N-1}, one image each
    worker.py batches URL MODEL SIZE K COUNT   enroll COUNT batches (0: forever) of SIZE people
                                               with K templates each, one transaction a batch
"""

import sys

import numpy as np

import pyface


def main(argv):
    mode, url, model_path = argv[:3]
    model = pyface.load_model(model_path)
    gallery = pyface.open_gallery(url, model)
    rng = np.random.default_rng(abs(hash(tuple(argv))) % 2**32)
    if mode == "enroll":
        prefix, n = argv[3], int(argv[4])
        for i in range(n):
            gallery.enroll(f"{prefix}-{i}", rng.integers(0, 256, (24, 24), dtype=np.uint8))
    elif mode == "batches":
        size, k, count = map(int, argv[3:6])
        d = model.network.arch.feature_size
        batch = 0
        while count == 0 or batch < count:
            people = [(f"b{batch}-{i}", rng.standard_normal((k, d)), {"batch": batch}) for i in range(size)]
            gallery.enroll_many(people)
            print(batch, flush=True)
            batch += 1
    gallery.close()
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
