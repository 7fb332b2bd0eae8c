"""The service's parts on their own: image headers, the micro-batcher."""

import asyncio
import concurrent.futures

import cv2
import numpy as np
import pytest

from pyface.serve.batcher import MicroBatcher
from pyface.serve.headers import image_dimensions, jpeg_is_complete


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".pgm", ".ppm", ".webp", ".tiff"])
@pytest.mark.parametrize("width, height", [(37, 23), (640, 480), (1, 1)])
def test_image_dimensions_from_the_header_of_each_format(suffix, width, height):
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3 if suffix == ".ppm" else 1), np.uint8)
    ok, data = cv2.imencode(suffix, image if image.shape[2] == 3 else image[:, :, 0])
    assert ok
    assert image_dimensions(data.tobytes()) == (width, height)


def test_image_dimensions_of_unknown_or_cut_headers_is_none():
    assert image_dimensions(b"hello") is None
    assert image_dimensions(b"") is None
    png = cv2.imencode(".png", np.zeros((5, 5), np.uint8))[1].tobytes()
    assert image_dimensions(png[:20]) is None


def test_a_jpeg_is_complete_only_up_to_its_end_marker():
    image = np.random.default_rng(1).integers(0, 256, (64, 64), np.uint8)
    for params in ([], [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]):
        data = cv2.imencode(".jpg", image, params)[1].tobytes()
        assert jpeg_is_complete(data)
        assert jpeg_is_complete(data + b"trailing bytes some cameras add")
        assert not jpeg_is_complete(data[:-2])
        assert not jpeg_is_complete(data[: len(data) // 2])
        assert not jpeg_is_complete(data[:200])


def run_batches(items, *, max_batch, work=None):
    calls = []

    def default_work(batch):
        calls.append(list(batch))
        return [item * 10 for item in batch]

    async def main():
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            batcher = MicroBatcher(work or default_work, executor=pool, max_batch=max_batch, max_wait=0.05)
            try:
                return await asyncio.gather(*(batcher.submit(i) for i in items), return_exceptions=True)
            finally:
                await batcher.close()

    return asyncio.run(main()), calls


def test_items_arriving_together_are_answered_in_bounded_batches():
    results, calls = run_batches(range(20), max_batch=8)
    assert results == [i * 10 for i in range(20)]
    assert [len(c) for c in calls] == [8, 8, 4]
    assert sorted(i for c in calls for i in c) == list(range(20))


def test_a_batch_of_one_answers_each_item_alone():
    results, calls = run_batches(range(5), max_batch=1)
    assert results == [0, 10, 20, 30, 40]
    assert calls == [[0], [1], [2], [3], [4]]


def test_a_failing_batch_fails_each_of_its_requests():
    def work(batch):
        raise RuntimeError("kernel fault")

    results, _ = run_batches(range(3), max_batch=8, work=work)
    assert all(isinstance(r, RuntimeError) and str(r) == "kernel fault" for r in results)


def test_batcher_options_are_checked():
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        with pytest.raises(ValueError, match="max_batch"):
            MicroBatcher(list, executor=pool, max_batch=0)
        with pytest.raises(ValueError, match="max_wait"):
            MicroBatcher(list, executor=pool, max_wait=-1)
