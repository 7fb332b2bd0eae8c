"""``pyface enroll`` (and ``--add``), ``people``, ``rename``, ``remove``: managing who a model file knows.

Every change rewrites the model file atomically; every refusal leaves it byte for byte as it was.
"""

import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from pyface import cli
from pyface.datasets import synthetic_faces
from pyface import load_model
from pyface.training import train

TRAINED = ["person01", "person02", "person03"]


def run(capsys, *argv):
    """Run the command in this process; (exit status, stdout, stderr)."""
    try:
        status = cli.main([str(a) for a in argv])
    except SystemExit as exc:  # argparse: malformed command lines
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    """(model file of three trained people, PNG files of two strangers: six of 'dora', four of 'eve')."""
    root = tmp_path_factory.mktemp("people")
    faces = synthetic_faces(n_people=3, per_person=6, size=16, seed=5)
    path = root / "faces.pyface"
    train(faces, seed=0, quiet=True, epochs=2, hidden_size=6, num_layers=1, bidirectional=False,
          augment=None).save(path)
    strangers = synthetic_faces(n_people=5, per_person=6, size=16, seed=9)
    files = {}
    for name, label, n in (("dora", 3, 6), ("eve", 4, 4)):
        folder = root / name
        folder.mkdir()
        for i, image in enumerate(strangers.images[strangers.labels == label][:n]):
            cv2.imwrite(str(folder / f"{i + 1}.png"), np.rint(image * 255).astype(np.uint8))
        files[name] = sorted(folder.iterdir(), key=lambda p: int(p.stem))
    return path, files


@pytest.fixture()
def model(original, tmp_path):
    """A fresh copy of the model file, and the strangers' images."""
    path = tmp_path / "faces.pyface"
    shutil.copy(original[0], path)
    return path, original[1]


def test_enroll_add_images_rename_remove_and_list(model, capsys):
    path, files = model
    status, out, _ = run(capsys, "enroll", path, "dora", *files["dora"][:3])
    assert status == 0 and out == f"Enrolled dora from 3 images; {path} now knows 4 people (1 enrolled)\n"
    first = load_model(path).enrolled_templates()["dora"]

    status, out, _ = run(capsys, "enroll", path, "dora", files["dora"][3], "--add")
    assert status == 0 and out == f"Added 1 image to dora; {path} now knows 4 people (1 enrolled)\n"
    loaded = load_model(path)
    assert loaded.enrolled == {"dora": 4}
    # The templates kept, in order, and the new image's embedding after them.
    np.testing.assert_array_equal(loaded.enrolled_templates()["dora"][:3], first)
    np.testing.assert_allclose(loaded.enrolled_templates()["dora"][3], loaded.embed(str(files["dora"][3]))[0],
                               rtol=1e-5, atol=1e-6)

    assert run(capsys, "enroll", path, "eve", files["eve"][0])[0] == 0
    status, out, _ = run(capsys, "rename", path, "dora", "dorothy")
    assert status == 0 and out == f"Renamed dora to dorothy in {path}\n"
    status, out, _ = run(capsys, "rename", path, "person02", "bob")
    assert status == 0
    assert load_model(path).names == ["person01", "bob", "person03"]
    assert load_model(path).enrolled == {"dorothy": 4, "eve": 1}

    status, out, _ = run(capsys, "people", path)
    assert status == 0
    assert out.splitlines() == [f"{path}: 3 trained people, 2 enrolled", "  person01", "  bob", "  person03",
                                "  dorothy  (enrolled from 4 images)", "  eve  (enrolled from 1 image)"]

    status, out, _ = run(capsys, "remove", path, "dorothy")
    assert status == 0 and out == f"Removed dorothy; {path} now knows 4 people (1 enrolled)\n"
    status, out, _ = run(capsys, "people", path, "--json")
    assert json.loads(out) == [{"name": "person01", "kind": "trained"}, {"name": "bob", "kind": "trained"},
                               {"name": "person03", "kind": "trained"},
                               {"name": "eve", "kind": "enrolled", "images": 1}]
    # Each change replaced the file whole: no temporary file is left beside it.
    assert sorted(p.name for p in path.parent.iterdir()) == ["faces.pyface"]


def test_a_removed_person_is_no_longer_an_answer(model, capsys):
    path, files = model
    assert run(capsys, "enroll", path, "dora", files["dora"][0])[0] == 0
    # An image enrolled alone is its person's only template, and as similar to it as can be (1).
    status, out, _ = run(capsys, "predict", path, files["dora"][0], "--threshold", "0", "--json")
    assert status == 0 and [r["best_match"] for r in json.loads(out)] == ["dora"]
    assert json.loads(out)[0]["confidence"] == pytest.approx(1.0, abs=1e-5)
    assert run(capsys, "remove", path, "dora")[0] == 0
    status, out, _ = run(capsys, "predict", path, *files["dora"][:4], "--threshold", "0", "--json")
    assert status == 0 and {r["best_match"] for r in json.loads(out)} <= set(TRAINED)


@pytest.mark.parametrize("argv, fragment", [
    (["enroll", "{model}", "dora", "{dora}"], "'dora' is already known to the model (enrolled from 2 images): "
                                              "add images with --add, or remove or rename it first"),
    (["enroll", "{model}", "person01", "{dora}"], "'person01' is already known to the model (a trained person)"),
    (["enroll", "{model}", "eve", "{dora}", "--add"], "nobody called 'eve' is enrolled in {model} (enrolled: dora)"),
    (["enroll", "{model}", "person01", "{dora}", "--add"], "'person01' is a trained person, not an enrolled one"),
    (["enroll", "{model}", "dora", "{root}/nowhere.png", "--add"], "image file not found"),
    (["enroll", "{model}", "dora", "{root}/broken.png", "--add"], "not a readable image"),
    (["enroll", "{model}", "unknown", "{dora}"], "'unknown' is the answer for strangers"),
    (["remove", "{model}", "person02"], "'person02' is a trained person, not an enrolled one: only retraining"),
    (["remove", "{model}", "zed"], "nobody called 'zed' is enrolled in {model} (enrolled: dora)"),
    (["remove", "{root}/missing.pyface", "dora"], "model file not found"),
    (["rename", "{model}", "zed", "zoe"], "nobody called 'zed' is known to {model}"),
    (["rename", "{model}", "dora", "person03"], "'person03' is already known to the model"),
    (["rename", "{model}", "dora", "  "], "a person's name must be a non-empty string"),
    (["people", "{root}/notes.txt"], "not a pyface model"),
    (["rename", "{model}", "dora"], "the following arguments are required: NEW"),
])
def test_refusals_are_one_line_and_leave_the_file_untouched(model, capsys, argv, fragment):
    path, files = model
    root = path.parent
    (root / "broken.png").write_bytes(b"\x89PNG but not really")
    (root / "notes.txt").write_text("hello")
    assert run(capsys, "enroll", path, "dora", *files["dora"][:2])[0] == 0
    before = path.read_bytes()
    values = dict(model=path, root=root, dora=files["dora"][2])
    status, out, err = run(capsys, *[a.format(**values) for a in argv])
    lines = err.strip().splitlines()
    assert status in (1, 2) and out == "" and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("pyface") and fragment.format(**values) in lines[0]
    assert path.read_bytes() == before


def test_the_installed_command_enrolls_and_removes(model, tmp_path):
    path, files = model
    env = {k: v for k, v in os.environ.items() if k != "PYFACE_ISA"}

    def pyface(*argv):
        return subprocess.run([sys.executable, "-m", "pyface", *map(str, argv)], capture_output=True, text=True,
                              cwd=tmp_path, env=env, timeout=120)

    result = pyface("enroll", path, "eve", files["eve"][0].parent)
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout == f"Enrolled eve from 4 images; {path} now knows 4 people (1 enrolled)\n"
    result = pyface("remove", path, "dora")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == f"pyface: error: nobody called 'dora' is enrolled in {path} (enrolled: eve)\n"
    assert pyface("remove", path, "eve").returncode == 0
    assert load_model(path).enrolled == {}
