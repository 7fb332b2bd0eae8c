import json
import os
import zipfile

import numpy as np
import pytest

from pyface import ModelFileError, load_model
from pyface.io import npz as model_io
from pyface.recognition.model_file import FORMAT_VERSION


@pytest.fixture()
def saved(tiny_model, tmp_path):
    path = tmp_path / "faces.pyface"
    tiny_model.save(path)
    return path


def test_round_trip_predicts_identically(tiny_model, saved, make_dataset):
    loaded = load_model(saved)
    faces = make_dataset(per_class=4, seed=9)
    np.testing.assert_array_equal(loaded.predict_proba(faces), tiny_model.predict_proba(faces))
    assert loaded.names == tiny_model.names
    assert loaded.architecture == tiny_model.architecture
    assert loaded.preprocessor == tiny_model.preprocessor
    assert loaded.training == tiny_model.training
    assert loaded.history == tiny_model.history
    assert sorted(os.listdir(saved.parent)) == ["faces.pyface"]


def test_round_trip_keeps_the_convolutional_front_end(tmp_path, make_dataset, tiny):
    from pyface.training import train

    faces = make_dataset(per_class=4)
    model = train(faces, epochs=2, quiet=True, **{**tiny, "conv_channels": 3, "conv_stride": 2})
    model.save(tmp_path / "conv.pyface")
    loaded = load_model(tmp_path / "conv.pyface")
    assert loaded.network.arch.conv_channels == 3
    np.testing.assert_array_equal(loaded.network.params["conv.weight"], model.network.params["conv.weight"])
    np.testing.assert_array_equal(loaded.predict_proba(faces), model.predict_proba(faces))


def test_file_is_a_plain_npz_with_json_metadata(saved):
    with np.load(saved, allow_pickle=False) as npz:
        metadata = json.loads(str(npz["metadata"]))
        assert npz["param.dense.bias"].shape == (3,)
    assert metadata["format"] == "pyface-model" and metadata["format_version"] == FORMAT_VERSION
    assert metadata["names"] == ["person0", "person1", "person2"]
    assert metadata["preprocessor"]["size"] == 16
    assert metadata["training"]["epochs"] == 25


def test_failed_save_leaves_the_old_file_intact(tiny_model, saved, monkeypatch):
    before = saved.read_bytes()

    def fail_midway(f, **arrays):
        f.write(b"PK\x03\x04 half a model")
        raise OSError("disk full")

    monkeypatch.setattr(model_io.np, "savez", fail_midway)
    with pytest.raises(OSError, match="disk full"):
        tiny_model.save(saved)
    assert saved.read_bytes() == before
    assert sorted(os.listdir(saved.parent)) == ["faces.pyface"]
    monkeypatch.undo()
    assert load_model(saved).names == tiny_model.names


def test_save_replaces_an_existing_file(tiny_model, saved):
    model = load_model(saved)
    model.names = ["ann", "ben", "cid"]
    model.save(saved)
    assert load_model(saved).names == ["ann", "ben", "cid"]
    assert oct(saved.stat().st_mode & 0o777) != oct(0o600)


def _rewrite(path, change):
    with np.load(path, allow_pickle=False) as npz:
        members = {name: npz[name] for name in npz.files}
    metadata = json.loads(str(members["metadata"]))
    change(members, metadata)
    members["metadata"] = np.array(json.dumps(metadata))
    with open(path, "wb") as f:
        np.savez(f, **members)


def test_newer_format_is_refused(saved):
    _rewrite(saved, lambda m, meta: meta.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(ModelFileError, match="newer") as info:
        load_model(saved)
    assert str(saved) in str(info.value)


@pytest.mark.parametrize("damage,message", [
    (lambda data: data[: len(data) // 2], "truncated"),
    (lambda data: data[:2000] + bytes(b ^ 0xFF for b in data[2000:2100]) + data[2100:], "corrupt"),
    (lambda data: b"", "not a pyface model"),
    (lambda data: b"name,person\n1.pgm,s1\n", "not a pyface model"),
])
def test_damaged_files_raise_naming_the_file(saved, damage, message):
    saved.write_bytes(damage(saved.read_bytes()))
    with pytest.raises(ModelFileError, match=message) as info:
        load_model(saved)
    assert isinstance(info.value, ValueError)
    assert info.value.path == str(saved) and str(saved) in str(info.value)


@pytest.mark.parametrize("change,message", [
    (lambda m, meta: meta.update(format="other-model"), "not a pyface model"),
    (lambda m, meta: m.pop("param.dense.bias"), "missing"),
    (lambda m, meta: m.update({"param.dense.bias": np.zeros(4, np.float32)}), "dense.bias"),
    (lambda m, meta: m.update({"param.dense.bias": np.zeros(3, np.float64)}), "float64"),
    (lambda m, meta: meta["architecture"].update(pooling="max"), "pooling"),
    (lambda m, meta: meta.pop("names"), "names"),
])
def test_inconsistent_files_are_refused(saved, change, message):
    _rewrite(saved, change)
    with pytest.raises(ModelFileError, match=message):
        load_model(saved)


def test_foreign_archives_are_refused(tmp_path):
    plain = tmp_path / "weights.npz"
    np.savez(plain, w=np.ones(3))
    with pytest.raises(ModelFileError, match="no metadata"):
        load_model(plain)
    bare = tmp_path / "array.npy"
    np.save(bare, np.ones(3))
    with pytest.raises(ModelFileError, match="not a pyface model"):
        load_model(bare)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, metadata=np.array([{"format": "pyface-model"}], dtype=object))
    with pytest.raises(ModelFileError):
        load_model(pickled)
    zipped = tmp_path / "other.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(ModelFileError):
        load_model(zipped)


def test_missing_file_is_not_a_format_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "nowhere.pyface")


def test_the_open_set_rule_is_kept_with_the_thresholds_set_for_it(tiny_model, saved, make_dataset, tmp_path):
    faces = make_dataset(per_class=3, seed=4)
    loaded = load_model(saved)
    assert loaded.best_share == tiny_model.best_share == 0.5  # the rule the training set the thresholds for
    np.testing.assert_array_equal(loaded.identify(faces)[1], tiny_model.identify(faces)[1])
    loaded.best_share = 0.25
    loaded.save(tmp_path / "quarter.pyface")
    quarter = load_model(tmp_path / "quarter.pyface")
    assert quarter.best_share == 0.25
    np.testing.assert_array_equal(quarter.identify(faces)[1], loaded.identify(faces)[1])
    assert not np.array_equal(quarter.identify(faces)[1], tiny_model.identify(faces)[1])


def test_files_from_before_the_mean_template_score_by_the_best_template(saved, make_dataset):
    # A version 4 file: thresholds set for the best template alone, no best_share recorded.
    def as_version_4(members, metadata):
        metadata["format_version"] = 4
        del metadata["open_set"]["best_share"]

    _rewrite(saved, as_version_4)
    old = load_model(saved)
    assert old.best_share == 1.0
    faces = make_dataset(per_class=3, seed=4)
    names, templates, owners = old.gallery()
    similarity = old.embed(faces) @ templates.T
    best = np.stack([similarity[:, owners == k].max(axis=1) for k in range(len(names))], axis=1)
    found, scores = old.identify(faces, threshold=-1)
    np.testing.assert_allclose(scores, best.max(axis=1), rtol=1e-6)
    assert found.tolist() == [names[k] for k in best.argmax(axis=1)]


def test_files_from_before_the_cohort_score_plain_cosines(saved):
    def as_version_5(members, metadata):
        metadata["format_version"] = 5
        del metadata["open_set"]["cohort_nearest"]

    _rewrite(saved, as_version_5)
    assert load_model(saved).cohort_nearest is None


def _with_cohort(members, metadata, nearest=3, cohort=None):
    members["open_set.cohort"] = np.eye(3, 8, dtype=np.float32) if cohort is None else cohort
    metadata["open_set"]["cohort_nearest"] = nearest


@pytest.mark.parametrize("value", [0, -3, 2.5, "50", True])
def test_a_bad_cohort_setting_is_refused(saved, value):
    _rewrite(saved, lambda m, meta: _with_cohort(m, meta, nearest=value))
    with pytest.raises(ModelFileError, match="cohort_nearest must be a positive integer"):
        load_model(saved)


@pytest.mark.parametrize("cohort", [None, np.eye(3, 8), np.full((3, 8), np.inf, dtype=np.float32)])
def test_a_missing_or_broken_cohort_is_refused(saved, cohort):
    def change(members, metadata):
        _with_cohort(members, metadata, cohort=cohort)
        if cohort is None:
            del members["open_set.cohort"]

    _rewrite(saved, change)
    with pytest.raises(ModelFileError, match="open_set.cohort is missing or not finite float32"):
        load_model(saved)


@pytest.mark.parametrize("nearest, threshold, good", [(None, 1.0, True), (None, -1.5, False), (3, -1.5, True),
                                                      (3, 2.5, False)])
def test_thresholds_are_checked_against_the_range_of_the_scores(saved, nearest, threshold, good):
    # A cosine lies in [-1, 1]; a normalized score, less the mean of two offsets, in [-2, 2].
    def change(members, metadata):
        if nearest is not None:
            _with_cohort(members, metadata, nearest)
        metadata["open_set"]["threshold"] = threshold

    _rewrite(saved, change)
    if good:
        assert load_model(saved).threshold == threshold
    else:
        with pytest.raises(ModelFileError, match="threshold must be a score in"):
            load_model(saved)


@pytest.mark.parametrize("share", [1.5, -0.1, "half", None])
def test_a_bad_best_share_is_refused(saved, share):
    _rewrite(saved, lambda m, meta: meta["open_set"].update(best_share=share))
    with pytest.raises(ModelFileError, match="best_share"):
        load_model(saved)
