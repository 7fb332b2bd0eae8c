"""Model files never crash the loader and never run code: damaged files are refused with ModelFileError."""

import json
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyface import ModelFileError, load_model
from pyface.training import train

TINY = {"hidden_size": 4, "num_layers": 1, "views": ("rows",), "bidirectional": False, "augment": None,
        "epochs": 1, "quiet": True}


@pytest.fixture(scope="module")
def faces(small_faces):
    return small_faces


@pytest.fixture(scope="module")
def model_bytes(faces, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "faces.pyface"
    train(faces, **TINY).save(path)
    return path.read_bytes()


def _flip(data, at, mask):
    if not data:
        return data
    at %= len(data)
    return data[:at] + bytes([data[at] ^ mask]) + data[at + 1:]


def _insert(data, at, extra):
    at %= len(data) + 1
    return data[:at] + extra + data[at:]


def _delete(data, at, n):
    at %= max(len(data), 1)
    return data[:at] + data[at + n:]


def _truncate(data, at, _):
    return data[: at % max(len(data), 1)]


MUTATIONS = st.one_of(
    st.tuples(st.just(_flip), st.integers(0, 2**31), st.integers(1, 255)),
    st.tuples(st.just(_insert), st.integers(0, 2**31), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just(_delete), st.integers(0, 2**31), st.integers(1, 64)),
    st.tuples(st.just(_truncate), st.integers(0, 2**31), st.none()),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutations=st.lists(MUTATIONS, min_size=1, max_size=3))
def test_a_mutated_model_file_loads_and_predicts_finitely_or_is_refused(model_bytes, faces, tmp_path, mutations):
    data = model_bytes
    for mutate, at, arg in mutations:
        data = mutate(data, at, arg)
    path = tmp_path / "mutated.pyface"
    path.write_bytes(data)
    try:
        model = load_model(path)
    except ModelFileError as error:
        assert error.path == str(path)
        return
    assert np.isfinite(model.predict_proba(faces)).all()


def test_every_truncation_is_refused(model_bytes, tmp_path):
    path = tmp_path / "cut.pyface"
    for end in range(0, len(model_bytes), max(1, len(model_bytes) // 200)):
        path.write_bytes(model_bytes[:end])
        with pytest.raises(ModelFileError):
            load_model(path)


class _Payload:
    """Unpickling this runs ``os.mkdir(marker)``: a stand-in for any code a file could smuggle in."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


@pytest.mark.parametrize("member", ["metadata", "param.dense.bias"])
def test_a_pickled_object_array_is_refused_without_running_it(model_bytes, tmp_path, member):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pyface"
    path.write_bytes(model_bytes)
    with np.load(path, allow_pickle=False) as npz:
        members = {name: npz[name] for name in npz.files}
    members[member] = np.array([_Payload(marker)], dtype=object)
    with open(path, "wb") as f:
        np.savez(f, **members)
    with pytest.raises(ModelFileError, match="pickle"):
        load_model(path)
    assert not marker.exists()


def test_non_finite_weights_in_a_file_are_refused(model_bytes, tmp_path):
    path = tmp_path / "nan.pyface"
    path.write_bytes(model_bytes)
    with np.load(path, allow_pickle=False) as npz:
        members = {name: npz[name] for name in npz.files}
    members["param.dense.weight"] = np.full_like(members["param.dense.weight"], np.nan)
    with open(path, "wb") as f:
        np.savez(f, **members)
    with pytest.raises(ModelFileError, match="non-finite weights in dense.weight"):
        load_model(path)


def test_a_newer_format_version_is_refused(model_bytes, tmp_path):
    path = tmp_path / "future.pyface"
    path.write_bytes(model_bytes)
    with np.load(path, allow_pickle=False) as npz:
        members = {name: npz[name] for name in npz.files}
    metadata = json.loads(str(members["metadata"]))
    metadata["format_version"] += 1
    members["metadata"] = np.array(json.dumps(metadata))
    with open(path, "wb") as f:
        np.savez(f, **members)
    with pytest.raises(ModelFileError, match="newer"):
        load_model(path)


def _central_entry(data):
    """Offset of the first member's entry in the zip central directory."""
    return data.rindex(b"PK\x01\x02", 0, data.rindex(b"PK\x05\x06"))


@pytest.mark.parametrize("field,value", [(6, 0xFF), (8, 0x01), (10, 99), (10, 8)],
                         ids=["zip-version", "encrypted", "unknown-method", "deflate"])
def test_damaged_zip_directory_fields_are_refused(model_bytes, tmp_path, field, value):
    data = bytearray(model_bytes)
    data[_central_entry(model_bytes) + field] = value
    path = tmp_path / "damaged.pyface"
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError):
        load_model(path)


def test_an_array_header_claiming_a_huge_array_is_refused_before_allocating(faces, tmp_path):
    path = tmp_path / "huge.pyface"
    # Members larger than zipfile's read-ahead: their checksum is only known after numpy
    # has parsed the header and allocated what it claims.
    train(faces, **{**TINY, "hidden_size": 32}).save(path)
    data = path.read_bytes()
    honest, claim = b"'shape': (128, 32), }", b"'shape': (99999999999, 99999), }"
    at = data.index(honest)
    # Take the room from the header's padding so that every size in the archive stays right.
    path.write_bytes(data[:at] + claim + data[at + len(honest) + len(claim) - len(honest):])
    with pytest.raises(ModelFileError):
        load_model(path)
