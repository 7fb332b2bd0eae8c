"""NumPy's OpenBLAS runs on one thread inside the network and on as many as before outside it."""

import threading

import numpy as np
import pytest

from pyface.kernel import reference
from pyface.kernel.blas import one_blas_thread, openblas_threads_api
from pyface.nn.network import Architecture, Network, init_parameters


def numpy_blas_name() -> str:
    return np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]


NUMPY_HAS_OPENBLAS = "openblas" in numpy_blas_name().lower()
# Everything below but the last test is about OpenBLAS's threads; a NumPy built on another
# BLAS (Accelerate, MKL, a reference BLAS) has none of them to hold, which is supported.
needs_openblas = pytest.mark.skipif(not NUMPY_HAS_OPENBLAS, reason=f"NumPy uses {numpy_blas_name()}, not OpenBLAS")


@pytest.fixture()
def openblas():
    """(get, set) of NumPy's OpenBLAS thread count, at 2 threads for the test and restored after."""
    if not NUMPY_HAS_OPENBLAS:
        pytest.skip(f"NumPy uses {numpy_blas_name()}, not OpenBLAS")
    api = openblas_threads_api()
    assert api is not None, f"NumPy's BLAS is {numpy_blas_name()!r}, and no OpenBLAS was found in the process"
    get, set_ = api
    before = get()
    set_(2)
    yield get
    set_(before)


@needs_openblas
def test_numpys_openblas_is_found():
    assert openblas_threads_api() is not None


def test_without_openblas_holding_one_thread_is_a_no_op(monkeypatch):
    # What a NumPy on another BLAS meets: no thread API found, and blocks still run and nest.
    from pyface.kernel import blas

    monkeypatch.setattr(blas, "openblas_threads_api", lambda: None)
    with one_blas_thread(), one_blas_thread():
        product = np.ones((3, 3)) @ np.ones((3, 3))
    np.testing.assert_array_equal(product, np.full((3, 3), 3.0))


def test_one_thread_inside_nested_blocks_and_the_count_restored_after(openblas):
    with one_blas_thread():
        assert openblas() == 1
        with one_blas_thread():
            assert openblas() == 1
        assert openblas() == 1
    assert openblas() == 2
    with pytest.raises(RuntimeError), one_blas_thread():
        raise RuntimeError
    assert openblas() == 2


def test_concurrent_blocks_restore_the_count_once_all_have_ended(openblas):
    inside = threading.Barrier(8)
    seen = []

    def work():
        with one_blas_thread():
            inside.wait()  # every thread is in its block at once
            seen.append(openblas())
            inside.wait()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [1] * 8
    assert openblas() == 2


def test_the_network_runs_its_kernel_and_head_with_one_blas_thread(openblas, monkeypatch):
    counts = []

    class Recording:
        def lstm_forward(self, *args, **kwargs):
            counts.append(openblas())
            return reference.lstm_forward(*args, **kwargs)

        def lstm_backward(self, *args, **kwargs):
            counts.append(openblas())
            return reference.lstm_backward(*args, **kwargs)

    arch = Architecture(n_classes=3, image_size=6, hidden_size=4, head="cosine")
    net = Network(arch, init_parameters(arch, np.random.default_rng(0)), kernel=Recording())
    head = net._head
    monkeypatch.setattr(net, "_head", lambda f: counts.append(openblas()) or head(f))
    images = np.random.default_rng(1).random((2, 6, 6))
    logits, cache = net.forward(images, training=True, rng=np.random.default_rng(2))
    assert openblas() == 2
    net.backward(np.ones_like(logits), cache)
    net.features(images)
    assert openblas() == 2
    assert len(counts) == 4 * 2 + 1 + 4 * 2 + 4 * 2 and set(counts) == {1}
