import numpy as np
import pytest
from pyface.training.blend import blend_people


def people(counts, size=4, seed=0):
    """Random images (N, size, size), every one different, and labels with ``counts[k]`` images of person k."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(counts)), counts)
    return rng.random((len(labels), size, size)).astype(np.float32), labels


def test_every_blended_image_is_the_mean_of_one_image_of_each_of_two_people():
    images, labels = people([3, 5, 4, 2])
    blended, new_labels = blend_people(images, labels, 5, 10, np.random.default_rng(1))
    assert blended.dtype == np.float32 and new_labels.dtype == np.int64
    assert sorted(set(new_labels)) == [10, 11, 12, 13, 14]
    pairs = set()
    for label in range(10, 15):
        sources = []
        for image in blended[new_labels == label]:
            means = (images[:, None] + images[None, :]) / 2
            i, j = np.argwhere(np.all(np.isclose(means, image, atol=1e-6), axis=(2, 3)))[0]
            assert labels[i] != labels[j]
            sources.append((i, j))
        first, second = zip(*sources)
        # Each source image serves once, and both people of the blend give every image they can.
        assert len(set(first)) == len(first) and len(set(second)) == len(second)
        pair = frozenset({labels[first[0]], labels[second[0]]})
        assert all(frozenset({labels[i], labels[j]}) == pair for i, j in sources)
        assert len(sources) == min(np.sum(labels == p) for p in pair)
        pairs.add(pair)
    assert len(pairs) == 5


def test_the_same_generator_state_gives_the_same_people():
    images, labels = people([4, 4, 4])
    a = blend_people(images, labels, 2, 3, np.random.default_rng(7))
    b = blend_people(images, labels, 2, 3, np.random.default_rng(7))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_no_more_blended_people_than_pairs():
    images, labels = people([2, 2, 2])
    assert len(np.unique(blend_people(images, labels, 3, 3, np.random.default_rng(0))[1])) == 3
    with pytest.raises(ValueError, match="3 people make at most 3 blended people, asked for 4"):
        blend_people(images, labels, 4, 3, np.random.default_rng(0))


def test_zero_blended_people_is_nothing():
    images, labels = people([2, 2])
    blended, new_labels = blend_people(images, labels, 0, 2, np.random.default_rng(0))
    assert blended.shape == (0, 4, 4) and new_labels.shape == (0,)
