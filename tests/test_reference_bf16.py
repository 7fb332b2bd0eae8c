"""bfloat16 in the NumPy reference: exact rounding by bit pattern, the mixed-precision LSTM against float64.

bfloat16 keeps 8 significant bits, so its unit roundoff is u = 2**-8 (about 3.9e-3): an
LSTM whose products see operands rounded to it is expected to be off by a few u, while
float32 is off by about 1e-7. The tolerances below sit between the two, so a reference that
forgot to round fails the lower bound and one that rounded wrongly (or accumulated in
bfloat16) fails the upper one.
"""

import numpy as np
import pytest

from pyface.kernel.reference import lstm_backward, lstm_forward, round_to_bfloat16

U = 2.0**-8  # unit roundoff of bfloat16, round to nearest

# float32 bit pattern in, the bfloat16 (as float32 bits) it rounds to, derived by hand: the upper
# 16 bits are kept; the lower 16 decide: below 0x8000 down, above up, exactly 0x8000 to the
# even kept pattern (lowest kept bit 0).
BITS = [
    (0x3F800000, 0x3F800000, "1.0 is exact"),
    (0x3F808000, 0x3F800000, "tie between 1.0 and 1.0078125: to even 1.0 (0x3f80)"),
    (0x3F818000, 0x3F820000, "tie above an odd pattern (0x3f81): up to even 0x3f82"),
    (0x3F807FFF, 0x3F800000, "just below the tie: down"),
    (0x3F808001, 0x3F810000, "just above the tie: up"),
    (0xBF808001, 0xBF810000, "negative: the sign is kept, magnitude rounds the same"),
    (0x3FFF8000, 0x40000000, "carry out of the fraction: 1.99609375 + half ulp -> 2.0"),
    (0x7F7F0000, 0x7F7F0000, "largest finite bfloat16, about 3.3895e38"),
    (0x7F7F7FFF, 0x7F7F0000, "just below half an ulp past it: stays finite"),
    (0x7F7F8000, 0x7F800000, "tie above the largest finite (odd 0x7f7f): to even, which is infinity"),
    (0x7F7FFFFF, 0x7F800000, "largest finite float32: overflows to infinity"),
    (0x7F800000, 0x7F800000, "+infinity"),
    (0xFF800000, 0xFF800000, "-infinity"),
    (0x00000001, 0x00000000, "smallest float32 subnormal: down to +0"),
    (0x00008000, 0x00000000, "subnormal tie, even below: +0"),
    (0x00018000, 0x00020000, "subnormal tie, odd below: up"),
    (0x00010000, 0x00010000, "smallest bfloat16 subnormal is exact"),
    (0x807FFFFF, 0x80800000, "largest negative subnormal rounds up to the smallest normal"),
    (0x80000000, 0x80000000, "-0 stays -0"),
]
NANS = [
    (0x7FC00000, 0x7FC00000, "quiet NaN"),
    (0x7F800001, 0x7FC00000, "signalling NaN with a payload only in the cut bits: stays NaN (quiet)"),
    (0xFFC12345, 0xFFC10000, "negative NaN: sign and upper payload kept"),
]


@pytest.mark.parametrize("before, after, why", BITS + NANS, ids=[w for _, _, w in BITS + NANS])
def test_rounding_by_bit_pattern(before, after, why):
    out = round_to_bfloat16(np.array([before], dtype=np.uint32).view(np.float32))
    assert out.dtype == np.float32
    assert int(out.view(np.uint32)[0]) == after, f"{why}: got {int(out.view(np.uint32)[0]):#010x}"


def test_rounding_keeps_shape_and_takes_only_float32():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2]  # not contiguous
    np.testing.assert_array_equal(round_to_bfloat16(a), a)  # small integers are exact
    assert round_to_bfloat16(a).shape == (3, 2)
    with pytest.raises(TypeError, match="float32"):
        round_to_bfloat16(np.ones(3))


def _problem(B, T, D, H, seed=0, x_scale=1.0, forget_bias=0.0):
    rng = np.random.default_rng(seed)
    s = 1 / np.sqrt(H)  # torch's initialisation range
    bias = rng.uniform(-s, s, 4 * H)
    bias[H : 2 * H] += forget_bias
    return {
        "x": x_scale * rng.standard_normal((B, T, D)),
        "w_ih": rng.uniform(-s, s, (4 * H, D)),
        "w_hh": rng.uniform(-s, s, (4 * H, H)),
        "bias": bias,
        "h0": 0.5 * rng.standard_normal((B, H)),
        "c0": 0.5 * rng.standard_normal((B, H)),
    }


def _as32(p):
    return {k: v.astype(np.float32) for k, v in p.items()}


def _relative(a, exact):
    return float(np.linalg.norm(a - exact) / np.linalg.norm(exact))


def _errors(p, precision, seed=9):
    """Relative L2 errors of y, h_T, c_T, dx, dw_ih, dw_hh, dbias, dh0, dc0 against float64."""
    B, T, _ = p["x"].shape
    H = p["w_hh"].shape[1]
    rng = np.random.default_rng(seed)
    seeds = (rng.standard_normal((B, T, H)), rng.standard_normal((B, H)), rng.standard_normal((B, H)))
    y, (h, c), cache = lstm_forward(**p)
    exact = [y, h, c, *lstm_backward(*seeds, cache)]
    y2, (h2, c2), cache2 = lstm_forward(**_as32(p), precision=precision)
    assert cache2["precision"] == precision
    got = [y2, h2, c2, *lstm_backward(*(s.astype(np.float32) for s in seeds), cache2)]
    assert all(g.dtype == np.float32 for g in got)
    return dict(zip(["y", "h_T", "c_T", "dx", "dw_ih", "dw_hh", "dbias", "dh0", "dc0"],
                    (_relative(g, e) for g, e in zip(got, exact))))


SHAPES = {"standard-ish": (4, 8, 16, 24), "odd": (5, 17, 33, 40), "batch-1": (1, 16, 32, 32)}


@pytest.mark.parametrize("shape", list(SHAPES.values()), ids=list(SHAPES))
def test_bfloat16_is_within_a_few_roundoffs_of_float64(shape):
    bf16 = _errors(_problem(*shape), "bfloat16")
    f32 = _errors(_problem(*shape), "float32")
    for name, error in bf16.items():
        assert 0.02 * U < error < 4 * U, (name, error)  # rounded, and no worse than a few u
        assert f32[name] < 1e-5, (name, f32[name])      # the same problem in float32: far tighter


def test_bfloat16_with_large_inputs_stays_bounded():
    # |x| around 10 saturates gates; products of larger operands carry larger absolute errors.
    errors = _errors(_problem(3, 12, 20, 16, x_scale=10.0), "bfloat16")
    for name, error in errors.items():
        assert error < 8 * U, (name, error)


def test_cell_state_does_not_drift_over_512_steps():
    # The forget-gate bias of 1 that pyface's networks start from, and small inputs: each step
    # adds little to a cell state that remembers. Rounding only the products' operands, the
    # error stays at its level of the first steps, about u/3 (measured: 1.4e-3); a cell state
    # kept in bfloat16 loses the small updates and sits near u (3.4e-3), above the bound.
    p = _problem(2, 512, 16, 32, seed=3, forget_bias=1.0, x_scale=0.1)
    _, _, exact = lstm_forward(**p)
    _, _, bf16 = lstm_forward(**_as32(p), precision="bfloat16")
    c64, c16 = exact["c"], bf16["c"]
    per_step = np.linalg.norm(c16 - c64, axis=(0, 2)) / np.linalg.norm(c64, axis=(0, 2))
    early, late = per_step[32:96].max(), per_step[-64:].max()
    assert late < U / 2, late
    assert late < 1.5 * early, (early, late)


def test_weights_are_rounded_before_the_products():
    # w = 1 + 2**-10 is 1 in bfloat16, x = 1 and h0 = 0.5 are exact: the bfloat16 layer equals
    # the float32 layer with w = 1 exactly, one step of it.
    H = 3
    one_plus = np.float32(1 + 2.0**-10)
    args = dict(x=np.ones((2, 1, 4), np.float32), bias=np.zeros(4 * H, np.float32),
                h0=np.full((2, H), 0.5, np.float32), c0=np.full((2, H), 0.25, np.float32))
    bf16 = lstm_forward(w_ih=np.full((4 * H, 4), one_plus), w_hh=np.full((4 * H, H), one_plus),
                        **args, precision="bfloat16")
    ones = lstm_forward(w_ih=np.ones((4 * H, 4), np.float32), w_hh=np.ones((4 * H, H), np.float32), **args)
    plain = lstm_forward(w_ih=np.full((4 * H, 4), one_plus), w_hh=np.full((4 * H, H), one_plus), **args)
    np.testing.assert_array_equal(bf16[0], ones[0])
    assert not np.array_equal(plain[0], ones[0])


def test_backward_follows_the_precision_of_its_cache():
    p = _as32(_problem(2, 5, 6, 7))
    dy = np.random.default_rng(1).standard_normal((2, 5, 7)).astype(np.float32)
    _, _, c32 = lstm_forward(**p)
    _, _, c16 = lstm_forward(**p, precision="bfloat16")
    g32, g16 = lstm_backward(dy, None, None, c32), lstm_backward(dy, None, None, c16)
    for a, b in zip(g32, g16):
        assert 0 < np.abs(a - b).max() < 0.05 * np.abs(a).max()


def test_bad_precisions_are_refused():
    p = _problem(1, 2, 3, 4)
    with pytest.raises(ValueError, match="precision must be one of"):
        lstm_forward(**_as32(p), precision="float16")
    with pytest.raises(TypeError, match="x must be float32"):
        lstm_forward(**p, precision="bfloat16")
