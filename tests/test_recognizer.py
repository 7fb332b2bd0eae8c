import cv2
import numpy as np
import pytest

from pyface.data.preprocess import Preprocessor


@pytest.fixture(scope="module")
def files(tmp_path_factory, make_images):
    """Raw images on disk: colour PNGs of 40x30 pixels, and their person names."""
    images, labels = make_images(per_class=4, seed=3)
    folder = tmp_path_factory.mktemp("faces")
    paths = []
    for i, image in enumerate(images):
        colour = cv2.cvtColor(cv2.resize(image, (30, 40)), cv2.COLOR_GRAY2BGR)
        path = folder / f"{i}.png"
        cv2.imwrite(str(path), colour)
        paths.append(path)
    return paths, [f"person{k}" for k in labels]


def test_predicts_paths_raw_images_and_datasets_alike(tiny_model, files, make_dataset):
    paths, names = files
    from_paths = tiny_model.predict(paths)
    assert from_paths.dtype.kind == "U" and from_paths.tolist() == tiny_model.predict([str(p) for p in paths]).tolist()
    assert (from_paths == np.array(names)).mean() >= 0.9
    raw = [cv2.imread(str(p)) for p in paths]
    np.testing.assert_array_equal(tiny_model.predict_proba(raw), tiny_model.predict_proba(paths))
    assert tiny_model.predict(paths[0]).tolist() == [from_paths[0]]
    assert tiny_model.predict(raw[0]).tolist() == [from_paths[0]]
    grey = np.stack([cv2.cvtColor(r, cv2.COLOR_BGR2GRAY) for r in raw])
    np.testing.assert_allclose(tiny_model.predict_proba(grey), tiny_model.predict_proba(raw), atol=0.05)
    faces = make_dataset(per_class=4, seed=5)
    np.testing.assert_array_equal(tiny_model.predict_proba(faces), tiny_model.predict_proba(list(faces.images)))


def test_probabilities_are_per_person(tiny_model, make_dataset):
    proba = tiny_model.predict_proba(make_dataset(per_class=2, seed=4))
    assert proba.shape == (6, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert tiny_model.names == ["person0", "person1", "person2"]


def test_evaluate_reports_accuracy_people_and_confusion(tiny_model, make_dataset):
    test = make_dataset(per_class=5, seed=6)
    report = tiny_model.evaluate(test)
    confusion = report["confusion"]
    assert confusion.shape == (3, 3) and confusion.sum() == 15 == report["n_images"]
    assert report["accuracy"] == pytest.approx(np.trace(confusion) / 15)
    assert report["accuracy"] >= 0.9
    assert set(report["per_person"]) == {"person0", "person1", "person2"}
    predicted = tiny_model.predict(test)
    truth = np.array(test.names)[test.labels]
    for k, name in enumerate(report["names"]):
        assert report["per_person"][name] == pytest.approx(np.mean(predicted[truth == name] == name))
        assert confusion[k].sum() == 5
    assert report["loss"] > 0


def test_evaluate_matches_people_by_name(tiny_model, make_dataset):
    test = make_dataset(per_class=5, seed=6)
    renamed = test[np.arange(len(test))]
    renamed.names = list(reversed(test.names))
    renamed.labels = len(test.names) - 1 - test.labels
    assert tiny_model.evaluate(renamed)["accuracy"] == tiny_model.evaluate(test)["accuracy"]
    subset = test[test.labels == 1]
    report = tiny_model.evaluate(subset)
    assert set(report["per_person"]) == {"person1"} and report["n_images"] == 5


def test_evaluate_rejects_unknown_people(tiny_model, make_dataset):
    with pytest.raises(ValueError, match="person3"):
        tiny_model.evaluate(make_dataset(n_classes=4, per_class=2))


def test_dataset_preprocessed_otherwise_needs_its_files(tiny_model, files):
    from pyface.data import from_arrays, load_images

    paths, _ = files
    folder = paths[0].parent
    person = folder / "someone"
    person.mkdir(exist_ok=True)
    for p in paths[:3]:
        (person / p.name).write_bytes(p.read_bytes())
    other = load_images(folder, preprocessor=Preprocessor(size=32, equalize=None))
    np.testing.assert_array_equal(tiny_model.predict_proba(other), tiny_model.predict_proba(paths[:3]))
    in_memory = from_arrays(other.images, other.labels, preprocessor=other.preprocessor)
    with pytest.raises(ValueError, match="preprocessed differently"):
        tiny_model.predict(in_memory)


def test_unreadable_inputs_are_reported(tiny_model, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.png"):
        tiny_model.predict(tmp_path / "missing.png")
    junk = tmp_path / "junk.png"
    junk.write_text("not an image")
    with pytest.raises(ValueError, match="junk.png"):
        tiny_model.predict([junk])
