"""Loading face folders, the FaceDataset container and its splits."""

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from pyface.data import FaceDataset, from_arrays, load_images
from pyface.data.preprocess import Preprocessor

ORL_NAMES = [f"s{i}" for i in range(1, 41)]
ORL_FILES = [f"{i}.pgm" for i in range(1, 11)]


@pytest.fixture(scope="module")
def orl(att_faces_dir):
    return load_images(att_faces_dir)


# --- the real ORL data -------------------------------------------------------------------


def test_orl_has_forty_people_of_ten_images(orl):
    assert len(orl) == 400
    assert orl.names == ORL_NAMES
    np.testing.assert_array_equal(np.bincount(orl.labels), np.full(40, 10))


def test_orl_arrays_have_the_promised_shape_dtype_and_range(orl):
    assert orl.images.shape == (400, 64, 64) and orl.images.dtype == np.float32
    assert orl.labels.shape == (400,) and orl.labels.dtype == np.int64
    assert orl.images.min() >= 0.0 and orl.images.max() <= 1.0
    assert orl.preprocessor == Preprocessor()


def test_orl_order_is_natural_and_labels_match_folders(orl, att_faces_dir):
    expected = [str(att_faces_dir / name / file) for name in ORL_NAMES for file in ORL_FILES]
    assert orl.paths == expected
    for path, label in zip(orl.paths, orl.labels):
        assert Path(path).parent.name == orl.names[label]


def test_orl_images_are_the_preprocessed_files(orl):
    for i in (0, 137, 399):
        raw = cv2.imread(orl.paths[i], cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(orl.images[i], Preprocessor()(raw))


def test_orl_split_is_stratified(orl):
    train, test = orl.split(test_size=0.2, seed=0)
    assert (len(train), len(test)) == (320, 80)
    np.testing.assert_array_equal(np.bincount(train.labels, minlength=40), np.full(40, 8))
    np.testing.assert_array_equal(np.bincount(test.labels, minlength=40), np.full(40, 2))
    assert set(train.paths).isdisjoint(test.paths)
    assert set(train.paths) | set(test.paths) == set(orl.paths)
    assert train.names == test.names == ORL_NAMES


def test_orl_split_keeps_images_with_their_labels_and_order(orl):
    train, test = orl.split(test_size=0.5, seed=3)
    position = {path: i for i, path in enumerate(orl.paths)}
    for part in (train, test):
        rows = [position[p] for p in part.paths]
        assert rows == sorted(rows)
        np.testing.assert_array_equal(part.images, orl.images[rows])
        np.testing.assert_array_equal(part.labels, orl.labels[rows])
    np.testing.assert_array_equal(np.bincount(test.labels), np.full(40, 5))


def test_orl_split_is_seeded(orl):
    first = orl.split(seed=7)[1].paths
    assert orl.split(seed=7)[1].paths == first
    assert orl.split(seed=8)[1].paths != first


def test_orl_split_first_takes_the_first_files(orl, att_faces_dir):
    train, test = orl.split_first(3)
    assert [Path(p).name for p in train.paths[:3]] == ["1.pgm", "2.pgm", "3.pgm"]
    assert {Path(p).name for p in train.paths} == {"1.pgm", "2.pgm", "3.pgm"}
    assert {Path(p).name for p in test.paths} == set(ORL_FILES[3:])
    np.testing.assert_array_equal(np.bincount(train.labels), np.full(40, 3))
    np.testing.assert_array_equal(np.bincount(test.labels), np.full(40, 7))
    assert test.paths[0] == str(att_faces_dir / "s1" / "4.pgm")


# --- FaceDataset -------------------------------------------------------------------------


def small(labels=(0, 0, 1, 1, 1, 2), seed=0):
    images = np.random.default_rng(seed).integers(0, 256, size=(len(labels), 10, 12)).astype(np.uint8)
    return from_arrays(images, np.array(labels), names=["ann", "bob", "cy"])


def test_subsets_by_slice_mask_and_indices():
    data = small()
    by_slice = data[1:4]
    by_mask = data[np.array([False, True, True, True, False, False])]
    by_index = data[[1, 2, 3]]
    for part in (by_slice, by_mask, by_index, data[np.array([1, 2, 3])]):
        assert isinstance(part, FaceDataset)
        np.testing.assert_array_equal(part.labels, [0, 1, 1])
        np.testing.assert_array_equal(part.images, data.images[1:4])
        assert part.names == ["ann", "bob", "cy"]
        assert part.preprocessor is data.preprocessor
    reordered = data[[5, 0]]
    np.testing.assert_array_equal(reordered.labels, [2, 0])
    np.testing.assert_array_equal(reordered.images, data.images[[5, 0]])


def test_empty_subset_keeps_names():
    part = small()[[]]
    assert len(part) == 0 and part.images.shape == (0, 64, 64) and part.names == ["ann", "bob", "cy"]


def test_bad_indices_are_rejected():
    data = small()
    with pytest.raises(TypeError, match=r"\[\[i\]\]"):
        data[0]
    with pytest.raises(IndexError):
        data[np.array([True, False])]
    with pytest.raises(TypeError):
        data[np.array([0.5, 1.0])]


def test_split_never_takes_every_image_of_a_person():
    data = small(labels=(0, 1, 1, 2, 2, 2))
    train, test = data.split(test_size=0.9, seed=0)
    np.testing.assert_array_equal(np.bincount(train.labels, minlength=3), [1, 1, 1])
    np.testing.assert_array_equal(np.bincount(test.labels, minlength=3), [0, 1, 2])


def test_split_rounds_half_up():
    # 2 images at 0.25 -> 0.5 -> 1 test image (round-half-to-even would give 0).
    train, test = small(labels=(0, 0, 1, 1)).split(test_size=0.25)
    np.testing.assert_array_equal(np.bincount(test.labels, minlength=2), [1, 1])


@pytest.mark.parametrize("test_size", [0.0, 1.0, -0.1, 2])
def test_split_rejects_sizes_outside_the_unit_interval(test_size):
    with pytest.raises(ValueError, match="test_size"):
        small().split(test_size=test_size)


def test_split_first_edges():
    data = small()
    train, test = data.split_first(0)
    assert len(train) == 0 and len(test) == len(data)
    train, test = data.split_first(5)
    assert len(train) == len(data) and len(test) == 0
    with pytest.raises(ValueError, match="k"):
        data.split_first(-1)


def test_from_arrays_takes_uint8_and_unit_floats_alike():
    rng = np.random.default_rng(4)
    as_uint8 = rng.integers(0, 256, size=(3, 20, 20)).astype(np.uint8)
    as_float = as_uint8 / 255.0
    pre = Preprocessor(size=20, equalize=None)
    a = from_arrays(as_uint8, [0, 1, 1], preprocessor=pre)
    b = from_arrays(as_float, [0, 1, 1], preprocessor=pre)
    np.testing.assert_allclose(a.images, as_uint8 / 255.0, atol=1e-6)
    np.testing.assert_allclose(b.images, a.images, atol=1e-6)
    assert a.names == ["0", "1"] and a.paths == ["", "", ""]
    assert a.labels.dtype == np.int64


@pytest.mark.parametrize(
    "labels, names",
    [([0, 1], None), ([0, 1, 2], ["a", "b"]), ([0, -1, 1], None), ([0.0, 1.0, 1.0], None)],
)
def test_from_arrays_rejects_bad_labels(labels, names):
    with pytest.raises(ValueError):
        from_arrays(np.zeros((3, 8, 8), np.uint8), labels, names=names)


def test_repr_counts_images_and_people():
    assert repr(small()).startswith("FaceDataset(6 images of 3 people")


# --- folders on disk ---------------------------------------------------------------------


def face(seed, shape=(30, 24)):
    return np.random.default_rng(seed).integers(0, 256, size=shape).astype(np.uint8)


def write(path, image):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path


@pytest.fixture
def tree(tmp_path):
    """Two people with two good images each."""
    for seed, (person, i) in enumerate([("alice", 1), ("alice", 2), ("bob", 1), ("bob", 2)]):
        write(tmp_path / person / f"{i}.png", face(seed))
    return tmp_path


def test_natural_order_of_folders_and_files(tmp_path):
    for person in ("s10", "s2", "s1"):
        for name in ("10.pgm", "2.pgm", "1.pgm"):
            write(tmp_path / person / name, face(0))
    data = load_images(tmp_path)
    assert data.names == ["s1", "s2", "s10"]
    assert [Path(p).relative_to(tmp_path).as_posix() for p in data.paths[:3]] == [
        "s1/1.pgm",
        "s1/2.pgm",
        "s1/10.pgm",
    ]


def test_colour_and_sixteen_bit_files_load(tmp_path):
    colour = np.zeros((30, 30, 3), np.uint8)
    colour[..., 2] = 255
    write(tmp_path / "ann" / "red.jpg", colour)
    write(tmp_path / "ann" / "red.png", colour)
    # 16-bit levels 0..900: read as 8 bits they would all fall to 0..3.
    deep = np.arange(30 * 30, dtype=np.uint16).reshape(30, 30)
    write(tmp_path / "bob" / "deep.png", deep)
    data = load_images(tmp_path, preprocessor=Preprocessor(size=30, equalize=None))
    np.testing.assert_allclose(data.images[:2], 0.299, atol=2.0 / 255)
    np.testing.assert_allclose(data.images[2], deep / 65535.0, atol=1e-6)


@pytest.mark.parametrize(
    "name, content",
    [
        ("corrupt.png", bytes(np.random.default_rng(5).integers(0, 256, 500, dtype=np.uint8))),
        ("zero.pgm", b""),
        ("notes.txt", b"photos taken in 1992\n"),
        ("header_only.pgm", b"P5\n24 30\n255\n"),
    ],
)
def test_unreadable_file_is_reported_by_path(tree, name, content):
    bad = tree / "alice" / name
    bad.write_bytes(content)
    with pytest.warns(UserWarning, match=re.escape(str(bad))):
        data = load_images(tree)
    assert len(data) == 4 and str(bad) not in data.paths
    with pytest.raises(ValueError, match=re.escape(str(bad))):
        load_images(tree, strict=True)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".pgm"])
def test_truncated_file_is_reported_by_path(tree, suffix):
    ok, encoded = cv2.imencode(suffix, face(6, shape=(60, 50)))
    bad = tree / "bob" / f"cut{suffix}"
    bad.write_bytes(encoded.tobytes()[: len(encoded) // 2])
    with pytest.warns(UserWarning, match=re.escape(str(bad))):
        data = load_images(tree)
    assert len(data) == 4
    with pytest.raises(ValueError, match=re.escape(str(bad))):
        load_images(tree, strict=True)


def test_every_bad_file_is_listed(tree):
    bad = [tree / "alice" / "a.png", tree / "bob" / "b.png"]
    for path in bad:
        path.write_bytes(b"not an image")
    with pytest.warns(UserWarning) as record:
        load_images(tree)
    (message,) = [str(w.message) for w in record if "problem" in str(w.message)]
    assert "2 problem(s)" in message and all(str(p) in message for p in bad)


def test_person_folder_without_readable_image_is_reported(tree):
    (tree / "carol").mkdir()
    (tree / "dave").mkdir()
    (tree / "dave" / "broken.jpg").write_bytes(b"\xff\xd8\xff")
    with pytest.warns(UserWarning, match="carol") as record:
        data = load_images(tree)
    assert str(tree / "dave" / "broken.jpg") in str(record[0].message)
    assert data.names == ["alice", "bob"]
    with pytest.raises(ValueError, match="carol"):
        load_images(tree, strict=True)


def test_clean_tree_loads_without_warning(tree, recwarn):
    (tree / "alice" / ".DS_Store").write_bytes(b"\x00\x01")
    (tree / "README").write_text("two people")
    data = load_images(tree)
    assert len(recwarn) == 0
    assert data.names == ["alice", "bob"] and len(data) == 4


def test_extensions_choose_files(tree, recwarn):
    (tree / "alice" / "notes.txt").write_text("not a face")
    write(tree / "bob" / "3.PNG", face(7))
    write(tree / "bob" / "4.jpg", face(8))
    data = load_images(tree, extensions=["png"])
    assert len(recwarn) == 0
    assert [Path(p).name for p in data.paths] == ["1.png", "2.png", "1.png", "2.png", "3.PNG"]


def test_missing_root_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_images(tmp_path / "nowhere")


def test_root_without_people_raises_naming_it(tmp_path):
    (tmp_path / "loose.png").write_bytes(b"")
    with pytest.raises(ValueError, match=re.escape(str(tmp_path))):
        load_images(tmp_path)


def test_root_whose_people_have_no_images_raises(tmp_path):
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann" / "x.png").write_bytes(b"junk")
    with pytest.raises(ValueError, match="no person folder") as info:
        load_images(tmp_path)
    assert str(tmp_path / "ann" / "x.png") in str(info.value)


def test_loaded_dataset_uses_the_given_preprocessor(tree):
    pre = Preprocessor(size=16, equalize="clahe")
    data = load_images(tree, preprocessor=pre)
    assert data.preprocessor is pre and data.images.shape == (4, 16, 16)
