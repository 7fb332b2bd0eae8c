"""The ``pyface`` command: every subcommand, its output, and its errors as one line without a traceback."""

import contextlib
import importlib
import io
import json
import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

import pyface
from pyface import cli
from pyface.data import load_images
from pyface.datasets import synthetic_faces
from pyface.recognition.explain import explain
from pyface import load_model

# A small, fast network: a few seconds of training for all the tests together.
TINY = ["--epochs", "3", "--hidden", "8", "--layers", "1", "--no-bidirectional", "--size", "16", "--quiet"]
PEOPLE = ["person01", "person02", "person03"]


def run(capsys, *argv):
    """Run the command in this process; (exit status, stdout, stderr)."""
    try:
        status = cli.main(list(map(str, argv)))
    except SystemExit as exc:  # argparse: --help, --version, malformed command lines
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status, err, *fragments):
    assert status != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("pyface") and "error" in lines[0]
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


def _write_faces(root, faces):
    for image, label in zip(faces.images, faces.labels):
        folder = root / faces.names[label]
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{len(list(folder.iterdir())) + 1}.png"), np.rint(image * 255).astype(np.uint8))
    return root


@pytest.fixture(scope="module")
def faces_dir(tmp_path_factory):
    """Three synthetic people, eight 32x32 PNG images each, one folder per person."""
    return _write_faces(tmp_path_factory.mktemp("faces"), synthetic_faces(n_people=3, per_person=8, size=32, seed=1))


@pytest.fixture(scope="module")
def trained(faces_dir, tmp_path_factory):
    """A model trained by ``pyface train`` on ``faces_dir``, with what the command printed."""
    out = tmp_path_factory.mktemp("model") / "faces.pyface"
    capture = io.StringIO()
    with contextlib.redirect_stdout(capture):
        status = cli.main(["train", str(faces_dir), "--out", str(out), *TINY])
    assert status == 0
    return out, capture.getvalue()


# ----------------------------------------------------------------------------- train


def test_train_saves_model_plots_and_reports_held_out_accuracy(trained):
    out, printed = trained
    assert "Loaded 24 images of 3 people" in printed
    assert "holding out 6 to test" in printed
    assert "Held-out accuracy:" in printed and f"Saved the model to {out}" in printed
    model = load_model(out)
    assert model.names == PEOPLE
    arch = model.architecture
    assert (arch.hidden_size, arch.num_layers, arch.bidirectional, arch.image_size) == (8, 1, False, 16)
    assert len(model.history["epoch"]) == 3
    for name in ("faces.curves.png", "faces.confusion.png"):
        picture = cv2.imread(str(out.with_name(name)))
        assert picture is not None and picture.shape[0] > 100
        assert out.with_name(name).stat().st_size < 200_000


def test_train_on_all_images_without_plots_when_matplotlib_is_missing(faces_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    out = tmp_path / "all.pyface"
    status, printed, err = run(capsys, "train", faces_dir, "--out", out, "--test-size", "0", *TINY)
    assert status == 0, err
    assert "none held out" in printed and "Held-out accuracy" not in printed
    lines = [line for line in printed.splitlines() if "matplotlib" in line]
    assert lines == ["matplotlib is not installed, so no plots were drawn (pip install 'pyface[plot]')"]
    assert out.is_file() and not list(tmp_path.glob("*.png"))


def test_train_with_face_detection_keeps_it_for_prediction(faces_dir, tmp_path, capsys):
    out = tmp_path / "detect.pyface"
    status, printed, err = run(capsys, "train", faces_dir, "--out", out, "--detect-faces", *TINY)
    assert status == 0, err
    found, whole = map(int, re.search(r"a face found in (\d+) images?; (\d+) without one used whole", printed).groups())
    assert found + whole == 24
    assert load_model(out).preprocessor.detect_faces is True


def test_train_finds_faces_in_photos_by_default(faces_dir, tmp_path, capsys):
    out = tmp_path / "auto.pyface"
    status, printed, err = run(capsys, "train", faces_dir, "--out", out, *TINY)
    assert status == 0, err
    assert load_model(out).preprocessor.detect_faces == "auto"
    status, printed, err = run(capsys, "train", faces_dir, "--out", out, "--faces", "whole", *TINY)
    assert status == 0, err
    assert load_model(out).preprocessor.detect_faces is False and "Face detection" not in printed


@pytest.mark.parametrize("conv, expected", [("3", 3), ("2,3", (2, 3))])
def test_train_with_convolutions_keeps_them_in_the_model(faces_dir, tmp_path, capsys, conv, expected):
    out = tmp_path / "conv.pyface"
    status, printed, err = run(capsys, "train", faces_dir, "--out", out, "--conv", conv, *TINY)
    assert status == 0, err
    model = load_model(out)
    assert model.network.arch.conv_channels == expected
    assert ("conv2.weight" in model.network.params) == isinstance(expected, tuple)


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("quiet", [False, True])
def test_train_shows_a_progress_bar_only_on_a_terminal_without_quiet(faces_dir, tmp_path, monkeypatch, quiet):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    options = [o for o in TINY if o != "--quiet"] + (["--quiet"] if quiet else [])
    # Learning enough not to warn that the model tells nobody apart, which would show on stderr.
    options += ["--epochs", "30", "--batch-size", "4", "--learning-rate", "0.01", "--no-augment"]
    assert cli.main(["train", str(faces_dir), "--out", str(tmp_path / "m.pyface"), *options]) == 0
    shown = terminal.getvalue()
    if quiet:
        assert shown == ""
    else:
        # Refreshes are rate-limited, so the last epochs of a fast run may not be drawn.
        assert "training:" in shown and "/30 [" in shown and "epoch/s" in shown and "loss=" in shown


# ----------------------------------------------------------------------------- evaluate


def test_evaluate_prints_accuracy_per_person_and_confusions(trained, faces_dir, capsys):
    out, _ = trained
    expected = load_model(out).evaluate(load_images(faces_dir, preprocessor=load_model(out).preprocessor))
    status, printed, _ = run(capsys, "evaluate", out, faces_dir)
    assert status == 0
    assert f"Accuracy: {100 * expected['accuracy']:.1f}% ({int(np.trace(expected['confusion']))} of 24 images, " \
           "3 people)" in printed
    assert "precision" in printed and "recall" in printed
    for name in PEOPLE:
        assert any(line.startswith(name) for line in printed.splitlines())
    assert ("Worst confusions" in printed) == bool(expected["accuracy"] < 1)


def test_evaluate_json_is_consistent_with_the_confusion_matrix(trained, faces_dir, capsys):
    out, _ = trained
    status, printed, _ = run(capsys, "evaluate", out, faces_dir, "--json")
    assert status == 0
    report = json.loads(printed)
    confusion = np.array(report["confusion_matrix"])
    assert report["names"] == PEOPLE and confusion.sum() == report["images"] == 24
    assert report["accuracy"] == pytest.approx(np.trace(confusion) / 24)
    for k, person in enumerate(report["people"]):
        assert person["name"] == PEOPLE[k] and person["images"] == 8
        assert person["recall"] == pytest.approx(confusion[k, k] / 8)
        column = confusion[:, k].sum()
        assert person["precision"] == (pytest.approx(confusion[k, k] / column) if column else None)
    assert sum(c["images"] for c in report["confusions"]) == 24 - np.trace(confusion)


def test_classification_report_agrees_with_scikit_learn(trained, faces_dir):
    from sklearn.metrics import precision_recall_fscore_support

    from pyface.recognition.evaluation import classification_report

    model = load_model(trained[0])
    faces = load_images(faces_dir, preprocessor=model.preprocessor)
    report = classification_report(model, faces)
    truth, predicted = np.array(faces.names)[faces.labels], model.predict(faces)
    precision, recall, _, support = precision_recall_fscore_support(truth, predicted, labels=PEOPLE,
                                                                    zero_division=np.nan)
    assert [p["name"] for p in report["people"]] == PEOPLE and [p["images"] for p in report["people"]] == [8] * 3
    for k, person in enumerate(report["people"]):
        assert person["recall"] == pytest.approx(recall[k])
        assert person["precision"] == (None if np.isnan(precision[k]) else pytest.approx(precision[k]))
    pairs = {(c["true"], c["predicted"]): c["images"] for c in report["confusions"]}
    wrong = [(t, p) for t, p in zip(truth, predicted) if t != p]
    assert pairs == {pair: wrong.count(pair) for pair in set(wrong)}
    assert [c["images"] for c in report["confusions"]] == sorted(pairs.values(), reverse=True)


def test_evaluate_skips_people_the_model_does_not_know(trained, faces_dir, tmp_path, capsys):
    out, _ = trained
    mixed = tmp_path / "mixed"
    _write_faces(mixed, synthetic_faces(n_people=3, per_person=2, size=32, seed=1))
    stranger = mixed / "stranger"
    stranger.mkdir()
    cv2.imwrite(str(stranger / "1.png"), np.full((32, 32), 128, np.uint8))
    status, printed, err = run(capsys, "evaluate", out, mixed, "--json")
    assert status == 0
    assert "skipping 1 person the model was not trained on: stranger" in err
    assert json.loads(printed)["images"] == 6


# ----------------------------------------------------------------------------- predict


def test_predict_names_each_image_with_its_confidence(trained, faces_dir, capsys):
    out, _ = trained
    model = load_model(out)
    files = [faces_dir / "person02" / "3.png", faces_dir / "person03" / "1.png"]
    status, printed, _ = run(capsys, "predict", out, *files)
    assert status == 0
    lines = printed.splitlines()
    assert len(lines) == 2
    proba = model.predict_proba([str(f) for f in files])
    for line, path, p in zip(lines, files, proba):
        assert line.split() == [str(path), model.names[p.argmax()], f"{100 * p.max():.1f}%"]


def test_predict_a_folder_as_json_with_a_threshold(trained, faces_dir, tmp_path, capsys):
    out, _ = trained
    status, printed, _ = run(capsys, "predict", out, faces_dir, "--json", "--threshold", "1")
    assert status == 0
    records = json.loads(printed)
    assert len(records) == 24
    assert records[0]["image"] == str(faces_dir / "person01" / "1.png")
    assert records[1]["image"] == str(faces_dir / "person01" / "2.png")
    # Training images match their own templates (similarity 1 up to rounding): only those may pass.
    assert all(r["best_match"] in PEOPLE and 0 < r["confidence"] < 1 + 1e-5 for r in records)
    assert all((r["person"] is None) == (r["confidence"] < 1) for r in records)
    status, printed, _ = run(capsys, "predict", out, faces_dir / "person01", "--threshold", "0")
    assert status == 0 and "unknown" not in printed and len(printed.splitlines()) == 8
    # A face that is no training image is below similarity 1 to every template.
    mirrored = tmp_path / "mirrored.png"
    cv2.imwrite(str(mirrored), cv2.flip(cv2.imread(str(faces_dir / "person01" / "1.png")), 1))
    status, printed, _ = run(capsys, "predict", out, mirrored, "--threshold", "1")
    assert status == 0 and "unknown (closest: " in printed


def test_predict_reports_an_unreadable_image_and_still_names_the_others(trained, faces_dir, tmp_path, capsys):
    out, _ = trained
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.png").write_bytes((faces_dir / "person01" / "1.png").read_bytes())
    (folder / "b.png").write_bytes(b"this is no image")
    (folder / "notes.txt").write_text("not an image suffix: not looked at")
    status, printed, err = run(capsys, "predict", out, folder)
    assert status == 1
    assert printed.splitlines()[0].startswith(str(folder / "a.png"))
    assert len(printed.splitlines()) == 1
    assert f"{folder / 'b.png'}: not a readable image" in err
    assert "1 of 2 images could not be read" in err and "Traceback" not in err


# ----------------------------------------------------------------------------- explain


def test_explain_writes_a_heat_map_and_names_the_rows(trained, faces_dir, tmp_path, capsys):
    out, _ = trained
    image = faces_dir / "person02" / "1.png"
    heat = tmp_path / "heat.png"
    status, printed, _ = run(capsys, "explain", out, image, "--out", heat)
    assert status == 0
    picture = cv2.imread(str(heat))
    assert picture is not None and picture.shape == (16 * 4 + 44, 2 * 16 * 4 + 108, 3)
    model = load_model(out)
    assert printed.splitlines()[0].startswith(f"{image}: {model.predict(str(image))[0]} ")
    assert "Rows that drove the decision most" in printed

    status, printed, _ = run(capsys, "explain", out, image, "--out", heat, "--json", "--person", "person03")
    report = json.loads(printed)
    assert report["person"] == "person03"
    np.testing.assert_allclose(report["row_importance"], explain(model, image, person="person03"), rtol=1e-5)


def test_explain_writes_next_to_the_current_folder_by_default(trained, faces_dir, tmp_path, capsys, monkeypatch):
    out, _ = trained
    monkeypatch.chdir(tmp_path)
    status, _, _ = run(capsys, "explain", out, faces_dir / "person01" / "2.png")
    assert status == 0 and (tmp_path / "2.explain.png").is_file()


# ----------------------------------------------------------------------------- info, bench, demo


def test_info_shows_the_runtime(capsys):
    status, printed, _ = run(capsys, "info")
    details = pyface.info()
    assert status == 0
    assert f"pyface            {details['version']}" in printed
    assert f"instruction set   {details['isa']}" in printed
    assert f"threads           {details['threads']}" in printed
    assert f"OpenCV            {details['opencv']}" in printed
    status, printed, _ = run(capsys, "info", "--json")
    assert json.loads(printed) == json.loads(json.dumps(details))


def test_bench_times_the_standard_configuration(capsys):
    status, printed, _ = run(capsys, "bench", "--min-time", "0.01", "--threads", "1")
    assert status == 0
    assert "batch 32, 64 rows of 64 pixels, 2 layers of 128" in printed
    rows = [line for line in printed.splitlines() if line.startswith("| standard")]
    assert [row.split("|")[2].strip() for row in rows] == ["inference", "train"]
    header = next(line for line in printed.splitlines() if line.startswith("| config"))
    assert "pyface ms" in header and "pyface GFLOP/s" in header and "numpy" not in header
    for row in rows:
        milliseconds, gflops = (float(cell) for cell in row.split("|")[4:6])
        assert milliseconds > 0 and gflops > 0


def test_demo_runs_the_whole_pipeline_on_synthetic_faces(tmp_path, capsys):
    status, printed, err = run(capsys, "demo", "--out", tmp_path / "demo", "--people", "3", "--per-person", "4",
                               "--epochs", "2", "--quiet")
    assert status == 0, err
    assert "SYNTHETIC faces" in printed
    for step in ("1. Drew 12 synthetic faces of 3 people", "2. Training", "3. Held-out accuracy:",
                 "4. Predictions", "5. Explanation", "6. Saved the model"):
        assert step in printed
    assert printed.rstrip().splitlines()[-1].strip() == "pyface train path/to/faces --out faces.pyface"
    for name in ("faces.pyface", "faces.png", "explain.png", "curves.png", "confusion.png"):
        assert (tmp_path / "demo" / name).is_file(), name
    assert load_model(tmp_path / "demo" / "faces.pyface").names == ["person01", "person02", "person03"]


# ----------------------------------------------------------------------------- user mistakes


@pytest.fixture(scope="module")
def mistakes(tmp_path_factory, faces_dir):
    root = tmp_path_factory.mktemp("mistakes")
    (root / "empty").mkdir()
    (root / "flat").mkdir()
    cv2.imwrite(str(root / "flat" / "1.png"), np.zeros((8, 8), np.uint8))  # images but no person folders
    (root / "notes.txt").write_text("hello")
    (root / "broken.png").write_bytes(b"\x89PNG but not really")
    np.save(root / "array.npy", np.zeros(3))
    (root / "one").mkdir()
    (root / "one" / "alice").mkdir()
    cv2.imwrite(str(root / "one" / "alice" / "1.png"), np.zeros((8, 8), np.uint8))
    return root


@pytest.mark.parametrize("argv, fragments", [
    (["train", "{root}/missing"], ["face folder not found", "missing"]),
    (["train", "{root}/notes.txt"], ["not a folder"]),
    (["train", "{root}/empty"], ["no images found under", "one folder of images per person"]),
    (["train", "{root}/flat"], ["no images found under"]),
    (["train", "{root}/one"], ["found only one person (alice)"]),
    (["train", "{faces}", "--out", "{root}/no/such/folder/m.pyface"], ["does not exist"]),
    (["train", "{faces}", "--out", "{root}/empty"], ["is a folder"]),
    (["evaluate", "{root}/missing.pyface", "{faces}"], ["model file not found"]),
    (["evaluate", "{root}/notes.txt", "{faces}"], ["not a pyface model"]),
    (["evaluate", "{root}/array.npy", "{faces}"], ["not a pyface model"]),
    (["evaluate", "{root}", "{faces}"], ["is a folder, not a model file"]),
    (["evaluate", "{model}", "{root}/missing"], ["face folder not found"]),
    (["evaluate", "{model}", "{root}/one"], ["none of the people in the folder are known"]),
    (["predict", "{model}", "{root}/missing.png"], ["image file not found"]),
    (["predict", "{model}", "{root}/broken.png"], []),
    (["predict", "{model}", "{root}/empty"], ["no images found in the folder"]),
    (["predict", "{root}/notes.txt", "{faces}"], ["not a pyface model"]),
    (["explain", "{model}", "{root}/broken.png", "--out", "{root}/h.png"], ["not a readable image"]),
    (["explain", "{model}", "{root}/missing.png"], ["image file not found"]),
    (["explain", "{model}", "{faces}"], ["is a folder; give one image file"]),
    (["verify", "{model}", "{faces}/person01/1.png", "{faces}"], ["is a folder; give one image file"]),
    (["explain", "{model}", "{faces}/person01/1.png", "--person", "zed"], ["does not know"]),
    (["explain", "{model}", "{faces}/person01/1.png", "--out", "{root}/heat.txt"], ["could not write"]),
])
def test_user_mistakes_are_one_line_errors(argv, fragments, mistakes, faces_dir, trained, capsys):
    argv = [a.format(root=mistakes, faces=faces_dir, model=trained[0]) for a in argv]
    status, _, err = run(capsys, *argv)
    if argv[0] == "predict" and argv[-1].endswith("broken.png"):
        # Each unreadable image is named on its own line, then the count.
        assert status == 1 and "Traceback" not in err
        assert err.splitlines() == [f"pyface: error: {argv[-1]}: not a readable image",
                                    "pyface: error: 1 of 1 image could not be read"]
        return
    assert status == 1
    assert_one_line_error(status, err, *fragments)


@pytest.mark.parametrize("blended, expected", [(None, 3), ("auto", 3), ("0", 0), ("2", 2)])
def test_train_blends_one_person_per_real_one_unless_told(faces_dir, tmp_path, capsys, blended, expected):
    out = tmp_path / "blended.pyface"
    given = [] if blended is None else ["--blended", blended]
    status, printed, err = run(capsys, "train", faces_dir, "--out", out, *given, *TINY)
    assert status == 0, err
    model = load_model(out)
    # Three people: the default makes one blended person each; none of them is in the model.
    assert model.training["blended_people"] == expected and model.names == PEOPLE


@pytest.mark.parametrize("given, expected", [([], 5), (["--descriptor", "none"], None)])
def test_train_open_set_joins_the_descriptor_unless_told(tmp_path, capsys, given, expected):
    faces_dir = _write_faces(tmp_path / "faces", synthetic_faces(n_people=8, per_person=4, size=32, seed=2))
    out = tmp_path / "open.pyface"
    status, printed, err = run(capsys, "train", faces_dir, "--out", out, "--open-set", "--test-size", "0",
                               "--blended", "2", *given, *TINY)
    assert status == 0, err
    model = load_model(out)
    # Two of the eight people are kept out for the thresholds: the descriptor keeps 6 - 1 directions
    # (16-pixel faces: both histograms, too small for the recipe's patterns of the half-size face).
    assert len(model.names) == 6 and model.training["descriptor"] == (None if expected is None else "hog+lbp")
    assert (None if model.descriptor is None else model.descriptor.size) == expected


@pytest.mark.parametrize("argv, fragment", [
    (["train", "x", "--epochs", "0"], "argument --epochs: must be at least 1, got 0"),
    (["train", "x", "--epochs", "many"], "expected an integer"),
    (["train", "x", "--test-size", "1"], "argument --test-size: must lie in [0, 1)"),
    (["train", "x", "--test-size", "-0.1"], "must lie in [0, 1)"),
    (["train", "x", "--learning-rate", "0"], "must be a positive number"),
    (["train", "x", "--size", "4"], "must be at least 8"),
    (["train", "x", "--conv", "8,0"], "channels must be at least 1"),
    (["train", "x", "--conv", "8;16"], "expected whole numbers separated by commas"),
    (["train", "x", "--blended", "-1"], "argument --blended: must be 'auto' or at least 0, got -1"),
    (["train", "x", "--blended", "lots"], "expected 'auto' or a whole number, got 'lots'"),
    (["train", "x", "--descriptor", "sift"], "argument --descriptor: invalid choice: 'sift'"),
    (["predict", "m", "i", "--threshold", "2.5"], "argument --threshold: must lie in [-2, 2]"),
    (["verify", "m", "a", "b", "--threshold", "nan"], "argument --threshold: must lie in [-2, 2]"),
    (["predict", "m", "i", "--threshold", "high"], "argument --threshold: expected a number or 'auto'"),
    (["bench", "--threads", "0"], "argument --threads: must be at least 1"),
    (["demo", "--people", "1"], "argument --people: must be at least 2"),
    (["fly"], "invalid choice: 'fly'"),
    ([], "required: COMMAND"),
])
def test_options_out_of_range_are_one_line_usage_errors(argv, fragment, capsys):
    status, _, err = run(capsys, *argv)
    assert status == 2
    assert_one_line_error(status, err, fragment)


def test_debug_shows_the_traceback(mistakes, capsys):
    status, _, err = run(capsys, "train", mistakes / "missing", "--debug")
    assert status == 1 and "Traceback" in err and "face folder not found" in err
    status, _, err = run(capsys, "--debug", "evaluate", mistakes / "notes.txt", mistakes)
    assert status == 1 and "Traceback" in err and "ModelFileError" in err


def test_an_unexpected_failure_is_one_line_with_a_hint(trained, faces_dir, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(importlib.import_module("pyface.recognition.evaluation"), "classification_report", broken)
    status, _, err = run(capsys, "evaluate", trained[0], faces_dir)
    assert_one_line_error(status, err, "unexpected ZeroDivisionError", "--debug")


def test_python_dash_m_pyface_runs_the_command(tmp_path):
    env = dict(os.environ)
    result = subprocess.run([sys.executable, "-m", "pyface", "--version"], capture_output=True, text=True,
                            cwd=tmp_path, env=env, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == f"pyface {pyface.__version__}"
    result = subprocess.run([sys.executable, "-m", "pyface", "predict", "missing.pyface", "x.png"],
                            capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == "pyface: error: model file not found: missing.pyface\n"


@pytest.mark.parametrize("text, value", [("auto", "auto"), ("-0.25", -0.25), ("0", 0.0), ("2", 2.0), ("-2", -2.0)])
def test_a_threshold_is_a_score_of_either_sign_or_auto(text, value):
    # A model that normalizes scores against its cohort sets thresholds near 0, and a more
    # lenient one lies below it.
    from pyface.cli.options import threshold_option

    assert threshold_option(text) == value
