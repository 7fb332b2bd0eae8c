"""Train and test pyface on the ORL / AT&T faces over the splits used in docs/experiments.md.

    python examples/orl_accuracy.py path/to/att_faces
    python examples/orl_accuracy.py path/to/att_faces --splits 42,first5 --options '{"epochs": 60}'

A split is a seed of the stratified 80/20 split (8 training and 2 test images per person)
or firstK: the first K images of each person to train, the rest to test.
"""

import argparse
import json
import time

import numpy as np

from pyface.data import load_images
from pyface.training import train


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="the att_faces folder (s1 .. s40)")
    parser.add_argument("--splits", default="42,0,1,2,3,4,first5")
    parser.add_argument("--options", default="{}", help="keyword options of pyface.train, as JSON")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    args = parser.parse_args()
    options = json.loads(args.options)
    faces = load_images(args.folder)
    seeded = []
    for split in args.splits.split(","):
        if split.startswith("first"):
            train_set, test_set = faces.split_first(int(split[len("first"):]))
        else:
            train_set, test_set = faces.split(test_size=0.2, seed=int(split))
        started = time.perf_counter()
        model = train(train_set, seed=args.seed, quiet=True, **options)
        seconds = time.perf_counter() - started
        accuracy = model.evaluate(test_set)["accuracy"]
        if not split.startswith("first") and split != "42":
            seeded.append(accuracy)
        print(f"split {split}: accuracy {100 * accuracy:.2f}% in {seconds:.1f} s "
              f"({len(model.history['epoch'])} epochs)", flush=True)
    if seeded:
        print(f"mean over the seeded splits other than 42: {100 * np.mean(seeded):.2f}%")


if __name__ == "__main__":
    main()
