"""``pyface gallery``: the commands on both stores, and their one-line errors."""

import json

import cv2
import pytest

from pyface import cli


@pytest.fixture()
def on_disk(tmp_path, model_file, make_images):
    """Image files of the tiny model's three people (four each) in person folders."""
    images, labels = make_images(n_classes=3, per_class=4, seed=7)
    for i, (image, label) in enumerate(zip(images, labels)):
        folder = tmp_path / f"person{label}"
        folder.mkdir(exist_ok=True)
        cv2.imwrite(str(folder / f"{i}.png"), image)
    return tmp_path


def _run(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_create_enroll_list_identify_rename_remove(gallery_url, model_file, on_disk, capsys):
    model = ["--model", model_file]
    assert _run(capsys, "gallery", "create", gallery_url, *model)[0] == 0
    status, out, _ = _run(capsys, "gallery", "enroll", gallery_url, "alice", on_disk / "person0", *model,
                          "--metadata", '{"badge": 1042}')
    assert status == 0 and "Enrolled alice from 4 images" in out
    assert _run(capsys, "gallery", "enroll", gallery_url, "bob", on_disk / "person1", *model)[0] == 0
    status, out, _ = _run(capsys, "gallery", "list", gallery_url, *model, "--json")
    assert json.loads(out) == [{"name": "alice", "templates": 4}, {"name": "bob", "templates": 4}]
    status, out, _ = _run(capsys, "gallery", "identify", gallery_url, on_disk / "person0", on_disk / "person1",
                          *model, "--threshold", "0", "--json")
    records = json.loads(out)
    assert [r["person"] for r in records] == ["alice"] * 4 + ["bob"] * 4
    # The enrolled images themselves: half their own template's cosine (1), half their mean template's.
    assert all(0.75 < r["similarity"] < 1.0 for r in records)
    assert _run(capsys, "gallery", "rename", gallery_url, "bob", "Bob", *model)[0] == 0
    assert _run(capsys, "gallery", "remove", gallery_url, "alice", *model)[0] == 0
    status, out, _ = _run(capsys, "gallery", "list", gallery_url, *model)
    assert out.splitlines() == ["Bob  4 templates", "1 people"]
    status, out, _ = _run(capsys, "gallery", "identify", gallery_url, on_disk / "person2", *model, "--threshold", "1")
    assert status == 0 and out.count("unknown (closest: Bob)") == 4


def test_create_imports_the_models_people(tmp_path, model_file, tiny_model, capsys):
    status, out, _ = _run(capsys, "gallery", "create", tmp_path / "g.db", "--model", model_file, "--import")
    assert status == 0 and "imported 3 people" in out
    status, out, _ = _run(capsys, "gallery", "list", tmp_path / "g.db", "--model", model_file, "--json")
    assert [p["name"] for p in json.loads(out)] == tiny_model.names


@pytest.mark.parametrize("argv, fragment", [
    (["identify", "{g}", "{img}"], "no gallery at"),
    (["create", "{model}"], "already exists"),
    (["list", "{model}"], "not a pyface gallery"),
    (["remove", "{made}", "nobody"], "nobody called 'nobody'"),
    (["enroll", "{made}", "unknown", "{img}"], "cannot name a person"),
    (["identify", "{made}", "{img}"], "the gallery is empty"),
    (["enroll", "{made}", "x", "{img}", "--metadata", "{{"], "--metadata is not JSON"),
])
def test_mistakes_are_one_line(tmp_path, model_file, on_disk, capsys, argv, fragment):
    assert _run(capsys, "gallery", "create", tmp_path / "made.db", "--model", model_file)[0] == 0
    names = {"g": tmp_path / "none.db", "img": on_disk / "person0" / "0.png", "model": model_file,
             "made": tmp_path / "made.db"}
    status, _, err = _run(capsys, "gallery", *[a.format(**names) for a in argv], "--model", model_file)
    assert status == 1 and fragment in err and len(err.strip().splitlines()) == 1, err
