"""What the ``pyface`` commands say: counts in words, progress only on a terminal, what a resumed run
did, one figure for one number, and the instruction-set variable in any case."""

import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from pyface import cli
from pyface.datasets import synthetic_faces
from pyface import load_model
from pyface.training.checkpoint import load_checkpoint

TINY = ["--hidden", "6", "--layers", "1", "--no-bidirectional", "--size", "16", "--no-augment"]
# Enough for the tiny network to tell the people apart: a run that does not warns on stderr.
LEARNS = ["--epochs", "20", "--batch-size", "4", "--learning-rate", "0.01"]


def run(capsys, *argv):
    """Run the command in this process; (exit status, stdout, stderr)."""
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def python_m_pyface(*argv, cwd, **env):
    """``python -m pyface argv`` in a child process, with stdout and stderr as pipes (no terminal)."""
    full_env = {k: v for k, v in os.environ.items() if k != "PYFACE_ISA"} | env
    return subprocess.run([sys.executable, "-m", "pyface", *map(str, argv)], capture_output=True, text=True,
                          cwd=cwd, env=full_env, timeout=300)


def write_faces(root, n_people, per_person, seed=1):
    faces = synthetic_faces(n_people=n_people, per_person=per_person, size=16, seed=seed)
    for i, (image, label) in enumerate(zip(faces.images, faces.labels)):
        folder = root / faces.names[label]
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{i}.png"), np.rint(image * 255).astype(np.uint8))
    return root


@pytest.fixture(scope="module")
def faces_dir(tmp_path_factory):
    return write_faces(tmp_path_factory.mktemp("faces"), 3, 5)


def test_one_of_a_kind_is_said_in_the_singular(tmp_path, capsys):
    status, out, err = run(capsys, "train", write_faces(tmp_path / "one", 1, 1), "--out", tmp_path / "a.pyface",
                           *TINY)
    assert status == 1 and "found only one person" in err
    assert out.startswith(f"Loaded 1 image of 1 person from {tmp_path / 'one'}")
    status, out, err = run(capsys, "train", write_faces(tmp_path / "two", 2, 1), "--out", tmp_path / "b.pyface",
                           "--epochs", "1", "--test-size", "0", *TINY)
    assert status == 0, err
    assert "Loaded 2 images of 2 people" in out and "Training on all 2 images;" in out
    assert "Trained 1 epoch in " in out


def test_no_progress_bar_when_stderr_is_no_terminal(faces_dir, tmp_path, capsys):
    # capsys's stderr is no terminal: without --quiet, still no progress bar (and, as the model
    # learns, no warning either).
    status, out, err = run(capsys, "train", faces_dir, "--out", tmp_path / "m.pyface", *LEARNS, *TINY)
    assert status == 0 and err == ""
    assert "Trained 20 epochs" in out


def test_the_installed_command_in_a_script_writes_results_only(faces_dir, tmp_path):
    result = python_m_pyface("train", faces_dir, "--out", tmp_path / "m.pyface", *LEARNS, *TINY, cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == ""
    assert "Trained 20 epochs" in result.stdout and (tmp_path / "m.pyface").is_file()


def test_a_resumed_run_reports_the_epochs_it_trained(faces_dir, tmp_path, capsys):
    out_file, ckpt = tmp_path / "m.pyface", tmp_path / "run.ckpt"
    argv = ["train", faces_dir, "--out", out_file, "--epochs", "5", "--checkpoint", ckpt, "--checkpoint-every", "2",
            *TINY]
    status, out, _ = run(capsys, *argv)
    assert status == 0 and "Trained 5 epochs in " in out
    assert load_checkpoint(ckpt)[0].epoch == 4  # the last multiple of 2
    status, out, _ = run(capsys, *argv, "--resume", ckpt)
    assert status == 0 and f"Trained 1 epoch (epoch 5; the first 4 came from {ckpt}) in " in out
    assert load_model(out_file).history["epoch"] == [1, 2, 3, 4, 5]
    # A checkpoint holding every epoch leaves nothing to train.
    argv[argv.index("--checkpoint-every") + 1] = "5"
    assert run(capsys, *argv)[0] == 0 and load_checkpoint(ckpt)[0].epoch == 5
    status, out, _ = run(capsys, *argv, "--resume", ckpt)
    assert status == 0 and f"Trained no more epochs ({ckpt} already held all 5) in " in out


def test_demo_prints_the_figure_its_explanation_picture_shows(tmp_path, capsys):
    status, out, err = run(capsys, "demo", "--out", tmp_path, "--people", "3", "--per-person", "4", "--epochs", "2",
                           "--quiet")
    assert status == 0, err
    lines = out.splitlines()
    first = lines[lines.index("4. Predictions on held-out images:") + 1]
    predicted = re.fullmatch(r"   image of \w+: (\w+ [\d.]+%) \((right|WRONG)\)", first).group(1)
    explained = re.search(r"^5\. Explanation of the first \((\w+ [\d.]+%)\): rows ", out, re.M).group(1)
    assert explained == predicted
    assert "Drew 12 synthetic faces of 3 people" in out and "for 2 epochs (3 held out)" in out


@pytest.mark.parametrize("written, isa", [("GENERIC", "generic"), (" Generic ", "generic")])
def test_the_instruction_set_variable_is_read_in_any_case(tmp_path, written, isa):
    result = python_m_pyface("info", cwd=tmp_path, PYFACE_ISA=written)
    assert result.returncode == 0, result.stderr
    assert f"instruction set   {isa} " in result.stdout


def test_an_unknown_instruction_set_is_named_with_the_accepted_ones(tmp_path):
    result = python_m_pyface("info", cwd=tmp_path, PYFACE_ISA="AVX3")
    assert result.returncode != 0 and result.stdout == ""
    # One line naming the accepted values: no traceback, no guess about a source folder.
    assert result.stderr == "pyface: error: PYFACE_ISA=avx3 is not one of generic, avx2, avx512\n"
