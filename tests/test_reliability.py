"""Unattended runs: divergence stops cleanly, results are deterministic and thread-safe, odd data is handled."""

import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

import pyface
from pyface.kernel import lstm
from pyface.training.checkpoint import load_checkpoint
from pyface.data import load_images
from pyface.datasets import synthetic_faces
from pyface import load_model
from pyface.data.preprocess import Preprocessor
from pyface.training import TrainingDivergedError, train

TINY = {"hidden_size": 8, "num_layers": 1, "views": ("rows",), "bidirectional": False, "augment": None,
        "batch_size": 8, "quiet": True, "blended_people": 0}  # steps per epoch below count real images


@pytest.fixture(scope="module")
def faces(small_faces):
    return small_faces


def all_finite(model):
    return all(np.isfinite(v).all() for v in model.network.params.values())


# ---------------------------------------------------------------------------- divergence


def test_a_far_too_high_learning_rate_stops_with_the_last_good_weights(faces, tmp_path):
    ckpt = tmp_path / "run.ckpt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's overflow notes on the way to NaN
        with pytest.raises(TrainingDivergedError) as info:
            # No weight decay: with it, learning rate x decay >= 1 is refused before training. Adam's
            # steps are about the learning rate in size, so it takes 1e12, reached slowly over a long
            # warm-up, for a few epochs of good weights before the scores overflow.
            train(faces, epochs=40, learning_rate=1e12, warmup_epochs=10, weight_decay=0.0, checkpoint=ckpt,
                  **TINY)
    error = info.value
    assert f"diverged in epoch {error.epoch}" in str(error) and "learning rate" in str(error)
    assert 1 < error.epoch < 40
    assert all_finite(error.model)
    assert np.isfinite(error.model.predict_proba(faces)).all()
    state, _ = load_checkpoint(ckpt)
    assert state.epoch == error.epoch - 1 and error.checkpoint == str(ckpt)
    for name, value in error.model.network.params.items():
        np.testing.assert_array_equal(value, state.params[name])


class NanAfter:
    """The native kernel, except that its forward outputs turn NaN from call ``n`` on."""

    def __init__(self, n):
        self.calls, self.n = 0, n
        self.lstm_backward = lstm.lstm_backward

    def lstm_forward(self, *args, **kwargs):
        self.calls += 1
        y, final, cache = lstm.lstm_forward(*args, **kwargs)
        if self.calls >= self.n:
            y = np.full_like(y, np.nan)
        return y, final, cache


def test_nan_in_epoch_k_keeps_exactly_the_weights_of_epoch_k_minus_1(faces):
    options = {**TINY, "lr_schedule": "constant", "warmup_epochs": 0, "pooling": "mean"}
    calls_per_epoch = 3 + 1  # 18 images in batches of 8, then one check of the scores
    with pytest.raises(TrainingDivergedError, match=r"epoch 4: the training loss became nan") as info:
        train(faces, epochs=6, kernel=NanAfter(3 * calls_per_epoch + 1), **options)
    assert info.value.epoch == 4 and info.value.checkpoint is None
    three_epochs = train(faces, epochs=3, **options)
    for name, value in info.value.model.network.params.items():
        np.testing.assert_array_equal(value, three_epochs.network.params[name], err_msg=name)
    assert info.value.model.history["epoch"] == [1, 2, 3]


def test_save_refuses_non_finite_weights_and_keeps_the_old_file(faces, tmp_path):
    model = train(faces, epochs=1, **TINY)
    path = tmp_path / "faces.pyface"
    model.save(path)
    before = path.read_bytes()
    model.network.params["dense.weight"][1, 0] = np.inf
    with pytest.raises(ValueError, match="non-finite weights.*dense.weight"):
        model.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["faces.pyface"]
    assert all_finite(load_model(path))


# ---------------------------------------------------------------------------- determinism, threads


@pytest.mark.parametrize("threads", [1, 2])
def test_same_seed_and_thread_count_give_identical_weights(faces, threads, kernel_threads):
    pyface.set_num_threads(threads)
    options = {**TINY, "hidden_size": 16, "num_layers": 2, "bidirectional": True, "views": ("rows", "columns"),
               "augment": True, "dropout": 0.2, "epochs": 3, "seed": 11}
    a, b = train(faces, **options), train(faces, **options)
    for name, value in a.network.params.items():
        np.testing.assert_array_equal(value, b.network.params[name], err_msg=name)
    assert a.history["loss"] == b.history["loss"]


def test_predict_from_many_threads_matches_serial_predictions(faces, kernel_threads):
    pyface.set_num_threads(2)
    model = train(faces, epochs=2, **{**TINY, "hidden_size": 16, "bidirectional": True})
    rng = np.random.default_rng(0)
    batches = [rng.random((int(rng.integers(1, 9)), 40, 30)).astype(np.float32) for _ in range(48)]
    serial = [model.predict_proba(list(batch)) for batch in batches]
    with ThreadPoolExecutor(max_workers=6) as pool:
        parallel = list(pool.map(lambda batch: model.predict_proba(list(batch)), batches))
    for one, other in zip(serial, parallel):
        np.testing.assert_array_equal(one, other)


# ---------------------------------------------------------------------------- data sets


def write_png(path, image):
    assert cv2.imwrite(str(path), image)


def test_one_person_is_a_clear_error_from_train(tmp_path):
    folder = tmp_path / "faces" / "alice"
    folder.mkdir(parents=True)
    for i in range(3):
        write_png(folder / f"{i}.png", np.full((20, 20), 40 * i, np.uint8))
    dataset = load_images(tmp_path / "faces", preprocessor=Preprocessor(size=16))
    assert dataset.names == ["alice"]
    with pytest.raises(ValueError, match="at least two people.*alice"):
        train(dataset, epochs=1, **TINY)
    two = synthetic_faces(n_people=2, per_person=3, size=16)
    with pytest.raises(ValueError, match="at least two people"):
        train(two[two.labels == 1], epochs=1, **TINY)  # two names, one of them without images


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (7, 5), (63, 63), (1, 80)])
def test_images_smaller_than_the_network_input_are_scaled_up(tmp_path, shape):
    rng = np.random.default_rng(0)
    for person in ("ann", "bob"):
        (tmp_path / person).mkdir()
        write_png(tmp_path / person / "1.png", rng.integers(0, 256, shape, dtype=np.uint8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dataset = load_images(tmp_path)
    assert dataset.images.shape == (2, 64, 64) and dataset.images.dtype == np.float32
    assert np.isfinite(dataset.images).all() and 0 <= dataset.images.min() and dataset.images.max() <= 1


def write_many(folder, n, content):
    folder.mkdir(parents=True)
    for i in range(n):
        (folder / f"{i}.png").write_bytes(content)


def test_a_folder_of_ten_thousand_images_loads_in_reasonable_time(tmp_path):
    _, png = cv2.imencode(".png", np.arange(64, dtype=np.uint8).reshape(8, 8) * 4)
    write_many(tmp_path / "crowd", 10_000, png.tobytes())
    write_many(tmp_path / "solo", 3, png.tobytes())
    started = time.perf_counter()
    dataset = load_images(tmp_path, preprocessor=Preprocessor(size=8), strict=True)
    assert time.perf_counter() - started < 15
    assert len(dataset) == 10_003 and dataset.names == ["crowd", "solo"]
    assert dataset.paths[:3] == [str(tmp_path / "crowd" / f"{i}.png") for i in range(3)]


def test_thousands_of_bad_files_give_a_short_report(tmp_path):
    _, png = cv2.imencode(".png", np.full((8, 8), 100, np.uint8))
    write_many(tmp_path / "good", 5, png.tobytes())
    write_many(tmp_path / "junk", 5_000, b"not an image")
    with pytest.warns(UserWarning) as caught:
        dataset = load_images(tmp_path, preprocessor=Preprocessor(size=8))
    assert dataset.names == ["good"]
    message = str(caught[0].message)
    assert message.startswith("5001 problem(s)")
    assert len(message.splitlines()) < 30 and "and 4981 more" in message
    with pytest.raises(ValueError, match="and 4981 more") as info:
        load_images(tmp_path, preprocessor=Preprocessor(size=8), strict=True)
    assert len(str(info.value).splitlines()) < 30
