"""The native kernel against the NumPy reference: every output and gradient, many shapes,
every instruction-set path this machine has, 1 and 2 threads."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import pyface
from pyface.kernel import reference

RTOL = 1e-4  # max |kernel - reference| / max |reference|, per tensor

# (batch, time, input, hidden): batch 1, time 1, sizes below and across the SIMD widths
# (4, 8, 16), odd and prime sizes, and one large case.
SHAPES = [
    (1, 1, 1, 1),
    (1, 6, 3, 7),
    (2, 3, 65, 33),
    (3, 7, 16, 16),
    (5, 4, 3, 1),
    (4, 2, 1, 65),
    (7, 5, 64, 17),
    (13, 3, 8, 8),
    (64, 64, 64, 256),
]

ISAS = pyface.supported_isas()


@pytest.fixture(params=ISAS)
def isa(request):
    before = pyface.get_isa()
    pyface.set_isa(request.param)
    yield request.param
    pyface.set_isa(before)


def make_layer(rng, B, T, D, H, scale=0.5):
    f = np.float32
    return dict(
        x=rng.standard_normal((B, T, D)).astype(f),
        w_ih=(rng.standard_normal((4 * H, D)) * scale / np.sqrt(D)).astype(f),
        w_hh=(rng.standard_normal((4 * H, H)) * scale / np.sqrt(H)).astype(f),
        bias=(rng.standard_normal(4 * H) * scale).astype(f),
        h0=rng.standard_normal((B, H)).astype(f),
        c0=rng.standard_normal((B, H)).astype(f),
    )


def as64(a):
    return None if a is None else a.astype(np.float64)


def rel_err(got, want):
    return float(np.max(np.abs(got.astype(np.float64) - want)) / max(np.max(np.abs(want)), 1e-30))


def assert_close(name, got, want):
    assert got.shape == want.shape, f"{name}: shape {got.shape} != {want.shape}"
    assert got.dtype == np.float32, f"{name}: dtype {got.dtype}"
    err = rel_err(got, want)
    assert err <= RTOL, f"{name}: max relative difference {err:.2e} > {RTOL:.0e}"


def check_against_reference(layer, *, reverse, use_state=True, dy=True, dh=True, dc=True, seed=1):
    """Forward and backward through both implementations; compare every tensor."""
    B, T, _ = layer["x"].shape
    H = layer["w_hh"].shape[1]
    args = [layer[k] for k in ("x", "w_ih", "w_hh", "bias")]
    states = [layer["h0"], layer["c0"]] if use_state else [None, None]

    y, (h, c), cache = pyface.lstm_forward(*args, *states, reverse=reverse)
    y_r, (h_r, c_r), cache_r = reference.lstm_forward(*map(as64, args + states), reverse=reverse)
    for name, got, want in (("y", y, y_r), ("h_T", h, h_r), ("c_T", c, c_r)):
        assert_close(name, got, want)

    rng = np.random.default_rng(seed)
    g_y = rng.standard_normal((B, T, H)).astype(np.float32) if dy else None
    g_h = rng.standard_normal((B, H)).astype(np.float32) if dh else None
    g_c = rng.standard_normal((B, H)).astype(np.float32) if dc else None
    grads = pyface.lstm_backward(g_y, g_h, g_c, cache)
    grads_r = reference.lstm_backward(as64(g_y), as64(g_h), as64(g_c), cache_r)
    for name, got, want in zip(pyface.LstmGrads._fields, grads, grads_r):
        assert_close(name, got, want)
    return y, grads


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B%dT%dD%dH%d" % s)
@pytest.mark.parametrize("n_threads", [1, 2], ids=["1thread", "2threads"])
def test_matches_reference(isa, kernel_threads, n_threads, shape, reverse):
    # Two threads split small batches by hidden units and large ones by rows: both are covered.
    kernel_threads(n_threads)
    check_against_reference(make_layer(np.random.default_rng(0), *shape), reverse=reverse)


@pytest.mark.parametrize(
    "options",
    [
        dict(use_state=False),
        dict(dy=False),
        dict(dh=False, dc=False),
        dict(dy=False, dc=False),
        dict(dy=False, dh=False),
        dict(use_state=False, dy=False, dh=False),
    ],
    ids=["no-h0-c0", "no-dy", "dy-only", "dh-only", "dc-only", "dc-only-zero-state"],
)
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_optional_arguments(isa, options, reverse):
    check_against_reference(make_layer(np.random.default_rng(2), 3, 5, 9, 19), reverse=reverse, **options)


def test_saturated_gates_match_reference(isa):
    # Large weights push the gates into the flat ends of sigmoid and tanh.
    check_against_reference(make_layer(np.random.default_rng(3), 4, 6, 10, 12, scale=8.0), reverse=False)


def run_all(layer, reverse):
    y, (h, c), cache = pyface.lstm_forward(**layer, reverse=reverse)
    return [y, h, c, *pyface.lstm_backward(y, h, c, cache)]


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_one_and_two_threads_agree(isa, kernel_threads, reverse):
    # Rows may fall in register tiles of other heights, so the order of sums can differ.
    layer = make_layer(np.random.default_rng(4), 9, 7, 20, 24)
    kernel_threads(1)
    one = run_all(layer, reverse)
    kernel_threads(2)
    two = run_all(layer, reverse)
    for name, a, b in zip(["y", "h_T", "c_T", *pyface.LstmGrads._fields], one, two):
        assert rel_err(b, a.astype(np.float64)) <= 1e-6, name


@pytest.mark.parametrize("n", [1, 2])
def test_same_thread_count_is_bitwise_reproducible(isa, kernel_threads, n):
    kernel_threads(n)
    layer = make_layer(np.random.default_rng(4), 9, 7, 20, 24)
    for a, b in zip(run_all(layer, False), run_all(layer, False)):
        np.testing.assert_array_equal(a, b)


def test_inference_mode_keeps_nothing_and_gives_the_same_outputs():
    layer = make_layer(np.random.default_rng(5), 3, 4, 5, 6)
    y, (h, c), cache = pyface.lstm_forward(**layer, training=False)
    assert cache is None
    y2, (h2, c2), cache2 = pyface.lstm_forward(**layer, training=True)
    assert isinstance(cache2, pyface.LstmCache)
    for a, b in ((y, y2), (h, h2), (c, c2)):
        np.testing.assert_array_equal(a, b)


def test_need_dx_false_skips_only_dx():
    layer = make_layer(np.random.default_rng(6), 3, 4, 5, 6)
    y, _, cache = pyface.lstm_forward(**layer)
    full = pyface.lstm_backward(y, None, None, cache)
    partial = pyface.lstm_backward(y, None, None, cache, need_dx=False)
    assert partial.dx is None and full.dx is not None
    for a, b in zip(full[1:], partial[1:]):
        np.testing.assert_array_equal(a, b)


def test_cache_is_independent_of_later_changes_and_reusable():
    layer = make_layer(np.random.default_rng(7), 3, 4, 5, 6)
    y, _, cache = pyface.lstm_forward(**layer)
    first = pyface.lstm_backward(y, None, None, cache)
    for a in layer.values():
        a[...] = 0.0  # the caller reuses its arrays
    second = pyface.lstm_backward(y, None, None, cache)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert (cache.batch, cache.time, cache.input_size, cache.hidden_size) == (3, 4, 5, 6)
    assert cache.nbytes > 0 and cache.isa == pyface.get_isa()


def test_bidirectional_halves_are_time_mirrors():
    # reverse=True on x equals the forward pass on x flipped in time, flipped back.
    layer = make_layer(np.random.default_rng(8), 2, 6, 4, 5)
    y_rev, (h_rev, _), _ = pyface.lstm_forward(**layer, reverse=True)
    flipped = dict(layer, x=np.ascontiguousarray(layer["x"][:, ::-1]))
    y_fwd, (h_fwd, _), _ = pyface.lstm_forward(**flipped)
    np.testing.assert_allclose(y_rev, y_fwd[:, ::-1], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(h_rev, h_fwd, rtol=1e-6, atol=1e-6)


def test_denormal_mode_is_restored():
    layer = make_layer(np.random.default_rng(9), 2, 3, 4, 5)
    pyface.lstm_forward(**layer)
    tiny = np.array([1e-38], dtype=np.float32) * np.float32(1e-3)
    assert tiny[0] != 0.0, "flush-to-zero leaked out of the kernel into the caller's thread"


# ---- bad arguments -------------------------------------------------------------------------


def good_args():
    return make_layer(np.random.default_rng(10), 2, 3, 4, 5)


def with_(name, value):
    args = good_args()
    args[name] = value
    return args


@pytest.mark.parametrize(
    "name, value, error, words",
    [
        ("x", np.zeros((2, 3, 4)), TypeError, "x must have dtype float32"),
        ("x", [[[0.0] * 4] * 3] * 2, TypeError, "x must be a numpy.ndarray"),
        ("x", np.zeros((2, 3), np.float32), ValueError, "x must have shape (batch, time, input)"),
        ("x", np.zeros((0, 3, 4), np.float32), ValueError, "x must not be empty"),
        ("x", np.zeros((2, 0, 4), np.float32), ValueError, "x must not be empty"),
        ("x", np.zeros((2, 4, 3), np.float32).transpose(0, 2, 1), ValueError, "x must be C-contiguous"),
        ("w_ih", np.zeros((20, 3), np.float32), ValueError, "w_ih must have shape (4*hidden, input)"),
        ("w_ih", np.zeros((16, 4), np.float32), ValueError, "w_ih must have shape"),
        ("w_ih", np.zeros((20, 4), np.float16), TypeError, "w_ih must have dtype float32"),
        ("w_hh", np.zeros((20, 4), np.float32), ValueError, "w_hh must have shape (4*hidden, hidden)"),
        ("w_hh", np.zeros((24, 6), np.float32), ValueError, "w_ih must have shape"),
        ("bias", np.zeros(19, np.float32), ValueError, "bias must have shape"),
        ("bias", np.zeros((4, 5), np.float32), ValueError, "bias must have shape"),
        ("bias", np.zeros(20, np.int32), TypeError, "bias must have dtype float32"),
        ("h0", np.zeros((2, 4), np.float32), ValueError, "h0 must have shape"),
        ("h0", np.zeros((3, 5), np.float32), ValueError, "h0 must have shape"),
        ("c0", np.zeros((2, 5), np.float64), TypeError, "c0 must have dtype float32"),
        ("c0", np.zeros((2, 10), np.float32)[:, ::2], ValueError, "c0 must be C-contiguous"),
    ],
)
def test_forward_rejects_bad_arguments(name, value, error, words):
    with pytest.raises(error) as info:
        pyface.lstm_forward(**with_(name, value))
    assert words in str(info.value)


def test_forward_rejects_misaligned_data():
    raw = np.zeros(2 * 3 * 4 * 4 + 1, np.uint8)[1:].view(np.float32).reshape(2, 3, 4)
    assert not raw.flags.aligned
    with pytest.raises(ValueError, match="x must be aligned"):
        pyface.lstm_forward(**with_("x", raw))


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(cache=None), TypeError, "call lstm_forward with training=True"),
        (dict(cache="cache"), TypeError, "cache must be the cache returned by lstm_forward"),
        (dict(dy=np.zeros((2, 3, 4), np.float32)), ValueError, "dy must have shape"),
        (dict(dy=np.zeros((2, 3, 5))), TypeError, "dy must have dtype float32"),
        (dict(dh_T=np.zeros((5, 2), np.float32)), ValueError, "dh_T must have shape"),
        (dict(dc_T=np.zeros((5, 2), np.float32).T), ValueError, "dc_T must be C-contiguous"),
        (dict(dc_T=np.zeros((2, 6), np.float32)), ValueError, "dc_T must have shape"),
    ],
)
def test_backward_rejects_bad_arguments(kwargs, error, words):
    _, _, cache = pyface.lstm_forward(**good_args())
    call = dict(dy=None, dh_T=None, dc_T=None, cache=cache)
    call.update(kwargs)
    with pytest.raises(error) as info:
        pyface.lstm_backward(**call)
    assert words in str(info.value)


def test_settings_reject_bad_values():
    with pytest.raises(ValueError, match="n must be >= 1"):
        pyface.set_num_threads(0)
    with pytest.raises(ValueError, match="isa must be one of"):
        pyface.set_isa("sse9")


# ---- run-time dispatch and threads ---------------------------------------------------------


def run_python(code, **env):
    full_env = dict(os.environ)
    full_env.pop("PYFACE_ISA", None)
    full_env.update(env)
    # From a neutral folder: the source folder would shadow the installed package.
    return subprocess.run(
        [sys.executable, "-c", code], env=full_env, cwd=tempfile.gettempdir(), capture_output=True, text=True, timeout=120
    )


def test_info_describes_the_build():
    info = pyface.info()
    assert info["isa"] in ("generic", "avx2", "avx512") and info["isa"] == pyface.get_isa()
    assert info["isa"] in info["supported_isas"] and "generic" in info["supported_isas"]
    assert info["threads"] == pyface.get_num_threads() >= 1
    assert info["version"] == pyface.__version__
    assert info["vector_width"] == {"generic": 4, "avx2": 8, "avx512": 16}[info["isa"]]


def test_default_is_the_widest_supported_path():
    order = ["generic", "avx2", "avx512"]
    out = run_python("import pyface; print(pyface.info()['isa'])")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == max(ISAS, key=order.index)


@pytest.mark.parametrize("name", ISAS)
def test_environment_forces_a_path(name):
    out = run_python("import pyface; print(pyface.info()['isa'])", PYFACE_ISA=name)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == name


def test_environment_refuses_an_unknown_path():
    out = run_python("import pyface", PYFACE_ISA="neon9")
    assert out.returncode != 0
    assert "PYFACE_ISA=neon9 is not one of generic, avx2, avx512" in out.stderr


def test_environment_refuses_a_path_the_cpu_lacks():
    missing = [n for n in ("avx2", "avx512") if n not in ISAS]
    if not missing:
        pytest.skip("this CPU supports every path; nothing to refuse")
    out = run_python("import pyface", PYFACE_ISA=missing[0])
    assert out.returncode != 0 and "does not support it" in out.stderr


def test_omp_num_threads_is_respected():
    out = run_python("import pyface; print(pyface.info()['threads'])", OMP_NUM_THREADS="1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"


# ---- Python threads --------------------------------------------------------------------------


def test_gil_is_released_while_the_kernel_runs():
    layer = make_layer(np.random.default_rng(11), 64, 64, 128, 256)
    span = {}

    def work():
        span["start"] = time.perf_counter()
        for _ in range(3):
            pyface.lstm_forward(**layer, training=False)
        span["end"] = time.perf_counter()

    worker = threading.Thread(target=work)
    ticks = []
    worker.start()
    while worker.is_alive():
        ticks.append(time.perf_counter())
    worker.join()
    inner = (span["end"] - span["start"]) * 0.1
    during = [t for t in ticks if span["start"] + inner < t < span["end"] - inner]
    # With the GIL held, this thread could not run at all while the kernel does.
    assert len(during) > 100, f"only {len(during)} Python steps ran beside the kernel"


def test_concurrent_calls_from_python_threads_match_serial_calls():
    layers = [make_layer(np.random.default_rng(20 + i), 5, 6, 7, 9) for i in range(8)]
    serial = [run_all(layer, i % 2 == 1) for i, layer in enumerate(layers)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(lambda i: run_all(layers[i], i % 2 == 1), range(len(layers))))
    for one, two in zip(serial, parallel):
        for a, b in zip(one, two):
            np.testing.assert_array_equal(a, b)


def test_an_equal_float32_descriptor_that_is_another_object_is_accepted():
    # A pickled array comes back with its own float32 descriptor object (a Dask worker's
    # arrays do): equal to float32, not the same object, and accepted.
    import pickle

    layer = make_layer(np.random.default_rng(0), 2, 3, 4, 5)
    args = [layer[k] for k in ("x", "w_ih", "w_hh", "bias")]
    y = pyface.lstm_forward(*args)[0]
    other = np.dtype(np.float32).newbyteorder("=")
    assert other == np.float32 and other is not np.dtype(np.float32)
    for again in ([pickle.loads(pickle.dumps(a)) for a in args], [a.view(other) for a in args]):
        np.testing.assert_array_equal(pyface.lstm_forward(*again)[0], y)


def test_big_endian_float32_is_refused():
    layer = make_layer(np.random.default_rng(0), 2, 3, 4, 5)
    with pytest.raises(TypeError, match="x must have dtype float32"):
        pyface.lstm_forward(layer["x"].astype(">f4"), layer["w_ih"], layer["w_hh"], layer["bias"])
