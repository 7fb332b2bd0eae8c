"""Checkpoints: periodic and on Ctrl-C, written atomically, resumed to exactly the uninterrupted result."""

import os
import shlex

import cv2
import numpy as np
import pytest

from pyface import cli

from pyface.io import npz as model_io

from pyface.training import loop as training
from pyface.training.checkpoint import load_checkpoint
from pyface.datasets import synthetic_faces
from pyface import ModelFileError, load_model
from pyface.training import TrainingInterrupted, train

# Two layers, both readings, augmentation and dropout: every random generator and every
# kind of state a checkpoint must carry is in use.
OPTIONS = {"hidden_size": 6, "num_layers": 2, "bidirectional": True, "views": ("rows", "columns"),
           "dropout": 0.3, "augment": True, "batch_size": 5, "epochs": 5, "quiet": True}


@pytest.fixture(scope="module")
def faces(small_faces):
    return small_faces


@pytest.fixture()
def one_thread(kernel_threads):
    """The kernel at one thread (bit-identical results), restored afterwards."""
    kernel_threads(1)


def interrupt_in_epoch(monkeypatch, k):
    """Make Ctrl-C arrive at the end of epoch k's updates, before the epoch is recorded.

    The weights, optimizer and generators have then moved on, so a checkpoint that
    took them as they stand would resume from a state no epoch boundary ever had.
    """
    real = training.train_epoch
    calls = []

    def epoch_then_ctrl_c(*args, **kwargs):
        result = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == k:
            raise KeyboardInterrupt
        return result

    monkeypatch.setattr(training, "train_epoch", epoch_then_ctrl_c)


def assert_same_weights(a, b):
    assert a.network.params.keys() == b.network.params.keys()
    for name, value in a.network.params.items():
        np.testing.assert_array_equal(value, b.network.params[name], err_msg=name)


@pytest.mark.parametrize("extra", [{}, {"validation_fraction": 0.34, "patience": 2, "epochs": 7},
                                   {"blended_people": 2}],
                         ids=["plain", "early-stopping", "blended-people"])
def test_ctrl_c_saves_a_checkpoint_that_resumes_to_the_uninterrupted_weights(faces, tmp_path, monkeypatch,
                                                                             one_thread, extra):
    options = {**OPTIONS, **extra}
    uninterrupted = train(faces, seed=4, **options)
    ckpt = tmp_path / "run.ckpt"
    interrupt_in_epoch(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt) as info:
        train(faces, seed=4, checkpoint=ckpt, checkpoint_every=None, **options)
    stop = info.value
    assert isinstance(stop, TrainingInterrupted)
    assert stop.epochs_done == 2 and stop.checkpoint == str(ckpt)
    assert "resume=" in str(stop) and str(ckpt) in str(stop)
    assert load_checkpoint(ckpt)[0].epoch == 2
    monkeypatch.undo()
    resumed = train(faces, resume=ckpt, **options)
    assert_same_weights(resumed, uninterrupted)
    assert resumed.history == uninterrupted.history | {"seconds": resumed.history["seconds"]}
    assert resumed.training == uninterrupted.training


def test_periodic_checkpoints_resume_to_the_uninterrupted_weights(faces, tmp_path, one_thread):
    uninterrupted = train(faces, seed=1, **OPTIONS)
    ckpt = tmp_path / "run.ckpt"
    train(faces, seed=1, checkpoint=ckpt, checkpoint_every=2, **OPTIONS)
    state, run = load_checkpoint(ckpt)
    assert state.epoch == 4 and state.history["epoch"] == [1, 2, 3, 4]
    assert run["seed"] == 1 and run["names"] == faces.names
    assert sorted(os.listdir(tmp_path)) == ["run.ckpt"]  # no temporary file left behind
    assert_same_weights(train(faces, resume=ckpt, **OPTIONS), uninterrupted)


def test_a_failed_checkpoint_write_keeps_the_previous_checkpoint(faces, tmp_path, monkeypatch):
    ckpt = tmp_path / "run.ckpt"
    real_savez, writes = model_io.np.savez, []

    def disk_full_on_the_second_write(f, **arrays):
        writes.append(1)
        if len(writes) == 2:
            f.write(b"PK\x03\x04 half a checkpoint")
            raise OSError("disk full")
        real_savez(f, **arrays)

    monkeypatch.setattr(model_io.np, "savez", disk_full_on_the_second_write)
    with pytest.raises(OSError, match="disk full"):
        train(faces, checkpoint=ckpt, checkpoint_every=1, **OPTIONS)
    assert sorted(os.listdir(tmp_path)) == ["run.ckpt"]
    assert load_checkpoint(ckpt)[0].epoch == 1


def test_ctrl_c_without_a_checkpoint_path_says_so(faces, monkeypatch):
    interrupt_in_epoch(monkeypatch, 1)
    with pytest.raises(TrainingInterrupted, match="no checkpoint was written") as info:
        train(faces, **OPTIONS)
    assert info.value.checkpoint is None and info.value.epochs_done == 0


def test_resume_refuses_other_data_or_options(faces, tmp_path):
    ckpt = tmp_path / "run.ckpt"
    train(faces, checkpoint=ckpt, **{**OPTIONS, "epochs": 1})
    other = synthetic_faces(n_people=3, per_person=6, size=16, seed=3)
    with pytest.raises(ValueError, match="other images"):
        train(other, resume=ckpt, **OPTIONS)
    with pytest.raises(ValueError, match="learning_rate"):
        train(faces, resume=ckpt, **{**OPTIONS, "learning_rate": 0.1})
    with pytest.raises(ValueError, match="hidden_size"):
        train(faces, resume=ckpt, **{**OPTIONS, "hidden_size": 7})


def test_a_damaged_or_foreign_checkpoint_is_refused(faces, tmp_path):
    ckpt = tmp_path / "run.ckpt"
    train(faces, checkpoint=ckpt, **{**OPTIONS, "epochs": 1})
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="checkpoint"):
        train(faces, resume=ckpt, **OPTIONS)
    model = tmp_path / "faces.pyface"
    train(faces, **{**OPTIONS, "epochs": 1}).save(model)
    with pytest.raises(ModelFileError, match="not a pyface checkpoint"):
        train(faces, resume=model, **OPTIONS)


# ---------------------------------------------------------------------------- the command line

TINY = ["--epochs", "4", "--hidden", "6", "--layers", "1", "--size", "16", "--quiet", "--seed", "3"]


@pytest.fixture(scope="module")
def faces_dir(tmp_path_factory, faces):
    root = tmp_path_factory.mktemp("faces")
    for i, (image, label) in enumerate(zip(faces.images, faces.labels)):
        folder = root / faces.names[label]
        folder.mkdir(exist_ok=True)
        cv2.imwrite(str(folder / f"{i}.png"), np.rint(image * 255).astype(np.uint8))
    return root


def test_cli_ctrl_c_prints_the_resume_command_which_finishes_the_run(faces_dir, tmp_path, monkeypatch,
                                                                     capsys, one_thread):
    whole = tmp_path / "whole.pyface"
    assert cli.main(["train", str(faces_dir), "--out", str(whole), *TINY]) == 0
    out, ckpt = tmp_path / "faces.pyface", tmp_path / "run.ckpt"
    interrupt_in_epoch(monkeypatch, 3)
    capsys.readouterr()
    status = cli.main(["train", str(faces_dir), "--out", str(out), "--checkpoint", str(ckpt), *TINY])
    err = capsys.readouterr().err
    assert status == 130
    assert len(err.strip().splitlines()) == 1, err
    assert "after 2 of 4 epochs" in err and "resume with: pyface train" in err
    assert not out.exists() and load_checkpoint(ckpt)[0].epoch == 2
    monkeypatch.undo()
    command = shlex.split(err.split("resume with: ")[1])
    assert command[:2] == ["pyface", "train"] and command[-2:] == ["--resume", str(ckpt)]
    assert cli.main(command[1:]) == 0
    assert_same_weights(load_model(out), load_model(whole))


def test_cli_ctrl_c_checkpoints_next_to_the_model_by_default(faces_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "faces.pyface"
    interrupt_in_epoch(monkeypatch, 2)
    assert cli.main(["train", str(faces_dir), "--out", str(out), *TINY]) == 130
    assert f"--resume {tmp_path / 'faces.ckpt'}" in capsys.readouterr().err
    assert load_checkpoint(tmp_path / "faces.ckpt")[0].epoch == 1


def test_cli_writes_no_checkpoint_unless_asked_or_interrupted(faces_dir, tmp_path):
    assert cli.main(["train", str(faces_dir), "--out", str(tmp_path / "a.pyface"), *TINY]) == 0
    assert not (tmp_path / "a.ckpt").exists()
    assert cli.main(["train", str(faces_dir), "--out", str(tmp_path / "b.pyface"), "--checkpoint-every", "3",
                     *TINY]) == 0
    assert load_checkpoint(tmp_path / "b.ckpt")[0].epoch == 3


def test_cli_resume_from_a_missing_checkpoint_is_a_one_line_error(faces_dir, tmp_path, capsys):
    status = cli.main(["train", str(faces_dir), "--out", str(tmp_path / "m.pyface"), "--resume",
                       str(tmp_path / "nowhere.ckpt"), *TINY])
    err = capsys.readouterr().err
    assert status == 1 and len(err.strip().splitlines()) == 1 and "checkpoint file not found" in err
