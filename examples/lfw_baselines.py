"""The issue's reference methods on the photos examples/lfw.py uses: LBPH and PCA + SVC.

The bar of pyface's LFW issue quotes OpenCV's LBPH and scikit-learn's eigenfaces + SVC on the
LFW people kept out of the pool. This script measures the same two methods on the pool's
held-out people, with the photos and splits pyface is measured on, so the figures can be
set side by side:

    python examples/lfw.py path/to/lfw split > lfw_split.json      # in pyface's environment
    python examples/lfw_baselines.py path/to/lfw lfw_split.json     # in the environment below

It needs scikit-learn and OpenCV's contrib build (``cv2.face``), which are not pyface's
dependencies and cannot share an environment with its ``opencv-python-headless``:
``python -m venv baselines && baselines/bin/pip install scikit-learn opencv-contrib-python-headless``.

Both methods read a fixed centre crop, as in the issue: rows 70-195 and columns 78-172 of the
250 x 250 photo (``sklearn.datasets.fetch_lfw_people``'s default), resized to 47 x 62 pixels.
- LBPH: ``cv2.face.LBPHFaceRecognizer_create(radius=2, neighbors=8, grid_x=8, grid_y=8)``.
  Closed set: trained on the training photos, accuracy on the test photos. Open set: trained
  on the 5 enrolment photos of each person, the share of their other photos named right; and
  the EER of the chi-square distance between the histograms of all pairs of photos.
- PCA + SVC as in scikit-learn's eigenfaces example: 150 whitened components, an RBF SVC with
  balanced class weights, C and gamma by 5-fold grid search on the training photos.
"""

import argparse
import json
import os

import cv2
import numpy as np
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV
from sklearn.svm import SVC

CROP = (slice(70, 195), slice(78, 172))
SIZE = (47, 62)  # width, height


def load(folder: str, pairs: list, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Centre crops (N, 62, 47) uint8 and labels (indices into ``names``) of [relative path, person] pairs."""
    crops = []
    for path, _ in pairs:
        grey = cv2.imread(os.path.join(folder, path), cv2.IMREAD_GRAYSCALE)
        if grey is None:
            raise SystemExit(f"cannot read {os.path.join(folder, path)}")
        crops.append(cv2.resize(grey[CROP], SIZE, interpolation=cv2.INTER_AREA))
    return np.stack(crops), np.array([names.index(name) for _, name in pairs])


def lbph() -> "cv2.face.LBPHFaceRecognizer":
    return cv2.face.LBPHFaceRecognizer_create(radius=2, neighbors=8, grid_x=8, grid_y=8)


def lbph_accuracy(train: tuple, test: tuple) -> float:
    model = lbph()
    model.train(list(train[0]), train[1])
    predicted = np.array([model.predict(image)[0] for image in test[0]])
    return float(np.mean(predicted == test[1]))


def lbph_eer(images: np.ndarray, labels: np.ndarray) -> float:
    """EER of the chi-square distance between the LBP histograms of all pairs of photos."""
    # pyface.open_set's roc_curve / equal_error_rate would do this, but pyface cannot be installed
    # beside OpenCV's contrib build, so this script counts the error rates itself.
    model = lbph()
    model.train(list(images), labels)
    hist = np.stack([h.ravel() for h in model.getHistograms()]).astype(np.float64)
    upper = np.triu_indices(len(hist), 1)
    distances = np.empty((len(hist), len(hist)))
    for i, row in enumerate(hist):
        total = row + hist
        distances[i] = np.divide((row - hist) ** 2, total, out=np.zeros_like(hist), where=total > 0).sum(axis=1)
    d, same = distances[upper], (labels[:, None] == labels[None, :])[upper]
    genuine, impostor = np.sort(d[same]), np.sort(d[~same])
    thresholds = np.unique(d)
    far = np.searchsorted(impostor, thresholds, side="right") / len(impostor)
    frr = 1.0 - np.searchsorted(genuine, thresholds, side="right") / len(genuine)
    best = np.argmin(np.abs(far - frr))
    return float((far[best] + frr[best]) / 2)


def pca_svc_accuracy(train: tuple, test: tuple) -> float:
    flat_train = train[0].reshape(len(train[0]), -1) / 255.0
    flat_test = test[0].reshape(len(test[0]), -1) / 255.0
    pca = PCA(n_components=150, whiten=True, svd_solver="randomized", random_state=0).fit(flat_train)
    grid = {"C": [1e3, 5e3, 1e4, 5e4, 1e5], "gamma": [1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 0.1]}
    search = GridSearchCV(SVC(kernel="rbf", class_weight="balanced"), grid).fit(pca.transform(flat_train), train[1])
    return float(np.mean(search.predict(pca.transform(flat_test)) == test[1]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="the LFW pool (one folder per person)")
    parser.add_argument("split", help="the JSON that `examples/lfw.py FOLDER split` prints")
    args = parser.parse_args()
    with open(args.split) as f:
        lists = json.load(f)
    closed, opened = lists["closed"], lists["open"]
    names = sorted({name for _, name in opened["all"]})
    train, test = load(args.folder, closed["train"], names), load(args.folder, closed["test"], names)
    result = {"closed_lbph": lbph_accuracy(train, test), "closed_pca_svc": pca_svc_accuracy(train, test),
              "open_lbph_named_right": lbph_accuracy(load(args.folder, opened["enroll"], names),
                                                     load(args.folder, opened["rest"], names)),
              "open_lbph_eer": lbph_eer(*load(args.folder, opened["all"], names))}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
