// The SIMD kernels, written once with GCC/Clang vector extensions and compiled once per
// instruction set: the including file defines PYFACE_ISA_NS (namespace), PYFACE_ISA (enum
// value), PYFACE_VW (floats per vector) and PYFACE_MR (rows per register tile), and
// PYFACE_BF16 1 for the bfloat16 kernels (AVX512_BF16: the products read bf16 pairs).
//
// Everything here has internal linkage or lives in the per-ISA namespace: an inline function
// shared between translation units built with different flags could be merged by the linker
// into the widest version and fault on a smaller CPU. Hence no standard-library templates, and
// pyface.h, the one header included, holds only plain data types and declarations.
#include "pyface.h"

#ifndef PYFACE_BF16
#define PYFACE_BF16 0
#endif
#if PYFACE_BF16 || defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace pyface {
namespace PYFACE_ISA_NS {
namespace {

constexpr int VW = PYFACE_VW;
constexpr int MR = PYFACE_MR;
constexpr int NR = 4 * VW;
// Depth of one pass over a packed panel: KC x NR floats (32 KiB) stay in L1 while every row
// tile of the step reuses them; deeper products are done in KC-deep passes.
constexpr int64_t KC = 32768 / (NR * sizeof(float));

typedef float V __attribute__((vector_size(VW * sizeof(float))));
typedef int VI __attribute__((vector_size(VW * sizeof(int))));

inline V load(const float* p) { V v; __builtin_memcpy(&v, p, sizeof v); return v; }
inline void store(float* p, V v) { __builtin_memcpy(p, &v, sizeof v); }
// With -fno-signed-zeros (CMakeLists.txt) 0 + s folds to s and this is one broadcast, which
// can load straight from memory in the innermost loop.
inline V splat(float s) { return V{} + s; }
// Clamps that let NaN through (a comparison with NaN is false), so NaN in gives NaN out.
inline V clamp(V x, float lo, float hi) {
    x = x < splat(lo) ? splat(lo) : x;
    return x > splat(hi) ? splat(hi) : x;
}

// exp(x) by range reduction x = n ln2 + r, |r| <= ln2/2, and a degree-6 polynomial for e^r
// (relative error ~1e-7 over the clamped range, which keeps 2^n a normal float).
inline V vexp(V x) {
    x = clamp(x, -87.3f, 88.3f);
    const V round_magic = splat(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
    V n = (x * splat(1.44269504088896341f) + round_magic) - round_magic;
    V r = x - n * splat(0.693359375f);
    r = r - n * splat(-2.12194440e-4f);
    V p = splat(1.9875691500e-4f);
    p = p * r + splat(1.3981999507e-3f);
    p = p * r + splat(8.3334519073e-3f);
    p = p * r + splat(4.1665795894e-2f);
    p = p * r + splat(1.6666665459e-1f);
    p = p * r + splat(5.0000001201e-1f);
    p = p * (r * r) + r + splat(1.0f);
#if defined(__AVX512F__)
    // p * 2^n in one instruction (exact, as the exponent arithmetic below is).
    return (V)_mm512_scalef_ps((__m512)p, (__m512)n);
#else
    const VI bits = (__builtin_convertvector(n, VI) + 127) << 23;
    return p * (V)bits;
#endif
}

// 1 / d. With AVX-512, a 14-bit estimate and one Newton step (relative error about 2^-27):
// the gates take five reciprocals per unit and step, which the divider alone would serialise.
inline V vrecip(V d) {
#if defined(__AVX512F__)
    const V r = (V)_mm512_rcp14_ps((__m512)d);
    return r * (splat(2.0f) - d * r);
#else
    return splat(1.0f) / d;
#endif
}

inline VI lane_index() {
    VI idx;
    for (int l = 0; l < VW; ++l) idx[l] = l;
    return idx;
}

inline V vsigmoid(V x) { return vrecip(splat(1.0f) + vexp(-x)); }
inline V vtanh(V x) { return splat(2.0f) * vrecip(splat(1.0f) + vexp(splat(-2.0f) * x)) - splat(1.0f); }

// acc[r][q] += sum_j A(r, j) * B(j, q*VW .. q*VW+VW) over one packed panel of B.
template <int M>
inline void mma(V (&acc)[M][4], int64_t k, const float* a, int64_t rs, int64_t cs, const float* b) {
    int64_t j = 0;
    if (M <= 2) {
        // Few rows make few independent FMA chains, which would stall on FMA latency: odd j
        // accumulate separately.
        V odd[M][4] = {};
        for (; j + 2 <= k; j += 2, a += 2 * cs, b += 2 * NR)
            for (int r = 0; r < M; ++r) {
                const V a0 = splat(a[r * rs]), a1 = splat(a[r * rs + cs]);
                for (int q = 0; q < 4; ++q) {
                    acc[r][q] += a0 * load(b + q * VW);
                    odd[r][q] += a1 * load(b + NR + q * VW);
                }
            }
        for (int r = 0; r < M; ++r)
            for (int q = 0; q < 4; ++q) acc[r][q] += odd[r][q];
    }
    for (; j < k; ++j, a += cs, b += NR) {
        const V b0 = load(b), b1 = load(b + VW), b2 = load(b + 2 * VW), b3 = load(b + 3 * VW);
        for (int r = 0; r < M; ++r) {
            const V ar = splat(a[r * rs]);
            acc[r][0] += ar * b0;
            acc[r][1] += ar * b1;
            acc[r][2] += ar * b2;
            acc[r][3] += ar * b3;
        }
    }
}

#if PYFACE_BF16
static_assert(VW == 16, "the bf16 pair products are written for 512-bit vectors");
typedef uint32_t Pair;  // two bf16, the even index in the low half: what vdpbf16ps multiplies

inline __m512bh load_pairs(const Pair* p) { return (__m512bh)_mm512_loadu_si512(p); }
inline V dot_pairs(V acc, __m512bh a, __m512bh b) { return (V)_mm512_dpbf16_ps((__m512)acc, a, b); }

// acc[r][q] += sum_j A(r, j) . B(j, q*VW ..) over kp pairs of one packed panel of B, each
// step a pair of products added in one instruction.
template <int M>
inline void mma(V (&acc)[M][4], int64_t kp, const Pair* a, int64_t rs, int64_t cs, const Pair* b) {
    int64_t j = 0;
    if (M <= 2) {
        V odd[M][4] = {};  // as in the float32 product: more independent chains for few rows
        for (; j + 2 <= kp; j += 2, a += 2 * cs, b += 2 * NR)
            for (int r = 0; r < M; ++r) {
                const __m512bh a0 = (__m512bh)_mm512_set1_epi32(int(a[r * rs]));
                const __m512bh a1 = (__m512bh)_mm512_set1_epi32(int(a[r * rs + cs]));
                for (int q = 0; q < 4; ++q) {
                    acc[r][q] = dot_pairs(acc[r][q], a0, load_pairs(b + q * VW));
                    odd[r][q] = dot_pairs(odd[r][q], a1, load_pairs(b + NR + q * VW));
                }
            }
        for (int r = 0; r < M; ++r)
            for (int q = 0; q < 4; ++q) acc[r][q] += odd[r][q];
    }
    for (; j < kp; ++j, a += cs, b += NR) {
        const __m512bh b0 = load_pairs(b), b1 = load_pairs(b + VW), b2 = load_pairs(b + 2 * VW),
                       b3 = load_pairs(b + 3 * VW);
        for (int r = 0; r < M; ++r) {
            const __m512bh ar = (__m512bh)_mm512_set1_epi32(int(a[r * rs]));
            acc[r][0] = dot_pairs(acc[r][0], ar, b0);
            acc[r][1] = dot_pairs(acc[r][1], ar, b1);
            acc[r][2] = dot_pairs(acc[r][2], ar, b2);
            acc[r][3] = dot_pairs(acc[r][3], ar, b3);
        }
    }
}

// VW floats rounded to bf16 (nearest, ties to even), stored at p.
inline void store_bf16(uint16_t* p, V v) { _mm256_storeu_si256((__m256i*)p, (__m256i)_mm512_cvtneps_pbh((__m512)v)); }

// What the recurrent products read: bf16 pairs in the bfloat16 kernels, floats otherwise; the
// depth of the products counts these units.
typedef Pair Operand;
constexpr int64_t PER_OPERAND = 2;
#else
typedef float Operand;
constexpr int64_t PER_OPERAND = 1;
#endif

template <class T>
struct GemmArgs {
    int64_t n, k;        // columns of C; depth of this block of the product (in T)
    const T* a;
    int64_t rs, cs;
    const T* bp;         // first panel, at the block's first row
    int64_t panel_size;  // floats from one panel to the next
    float* c;
    int64_t ldc;
    bool accumulate;
    const float* row_init;  // n floats every row starts from when not accumulating, or null
};

// C tile: rows [r0, r0+M), columns of panel p.
template <int M, class T>
inline void gemm_tile(const GemmArgs<T>& g, int64_t r0, int64_t p) {
    const int64_t c0 = p * NR;
    const int64_t width = g.n - c0 < NR ? g.n - c0 : NR;
    float* c = g.c + r0 * g.ldc + c0;
    // A partial panel goes through a tile on the stack, so C is never touched past n.
    float tile[M][NR];
    V acc[M][4];
    // Starting values: C itself, the row_init columns (the bias of the input projection, which
    // spares a pass that would write it into C first) or zero.
    const float* init = g.row_init ? g.row_init + c0 : nullptr;
    for (int r = 0; r < M; ++r) {
        const float* cr = g.accumulate ? c + r * g.ldc : init;
        if (width < NR) {
            for (int j = 0; j < NR; ++j) tile[r][j] = cr && j < width ? cr[j] : 0.0f;
            cr = tile[r];
        }
        for (int q = 0; q < 4; ++q) acc[r][q] = cr ? load(cr + q * VW) : V{};
    }
    mma<M>(acc, g.k, g.a + r0 * g.rs, g.rs, g.cs, g.bp + p * g.panel_size);
    for (int r = 0; r < M; ++r) {
        float* cr = width < NR ? tile[r] : c + r * g.ldc;
        for (int q = 0; q < 4; ++q) store(cr + q * VW, acc[r][q]);
        if (width < NR)
            for (int j = 0; j < width; ++j) c[r * g.ldc + j] = tile[r][j];
    }
}

// One KC-deep pass of a fused step: product depth [k0, k1), and whether it is the last.
template <class Step>
struct Pass {
    const Step& s;
    int64_t k0, k1;
    bool last;
};

// Gates of rows [r0, r0+M), hidden block `blk`: recurrent product, then, on the last pass,
// the non-linearities and cell update straight from the accumulators. Earlier passes leave
// their partial sums in the gates buffer.
template <int M>
inline void forward_tile(const Pass<ForwardStep>& pass, int64_t r0, int64_t blk) {
    const ForwardStep& s = pass.s;
    V acc[M][4];
    for (int r = 0; r < M; ++r) {
        const float* pre = s.gates + (r0 + r) * s.gates_rs + blk * NR;
        for (int q = 0; q < 4; ++q) acc[r][q] = load(pre + q * VW);
    }
#if PYFACE_BF16
    mma<M>(acc, pass.k1 - pass.k0, s.h_prev_pairs + r0 * (s.hb_rs / 2) + pass.k0, s.hb_rs / 2, 1,
           s.w_hh_pairs + (blk * (s.hp / 2) + pass.k0) * NR);
#else
    mma<M>(acc, pass.k1 - pass.k0, s.h_prev + r0 * s.h_rs + pass.k0, s.h_rs, 1,
           s.w_hh + (blk * s.hp + pass.k0) * NR);
#endif
    if (!pass.last) {
        for (int r = 0; r < M; ++r)
            for (int q = 0; q < 4; ++q) store(s.gates + (r0 + r) * s.gates_rs + blk * NR + q * VW, acc[r][q]);
        return;
    }
    // Padding lanes of the last block are forced to zero: x W_ih^T puts NaN there when x
    // holds an infinity (inf * 0), and NaN would leak into real units through the recurrence.
    const VI live = lane_index() < VI{} + int(s.hidden - blk * VW);
    for (int r = 0; r < M; ++r) {
        const int64_t row = r0 + r;
        const V i = live ? vsigmoid(acc[r][0]) : V{}, f = live ? vsigmoid(acc[r][1]) : V{};
        const V g = live ? vtanh(acc[r][2]) : V{}, o = live ? vsigmoid(acc[r][3]) : V{};
        const V c = f * load(s.c_prev + row * s.c_rs + blk * VW) + i * g;
        store(s.c + row * s.c_rs + blk * VW, c);
        const V h = o * vtanh(c);
        store(s.h + row * s.h_rs + blk * VW, h);
#if PYFACE_BF16
        store_bf16(s.h_bf + row * s.hb_rs + blk * VW, h);
#endif
        if (s.keep_gates) {
            float* act = s.gates + row * s.gates_rs + blk * NR;
            store(act, i);
            store(act + VW, f);
            store(act + 2 * VW, g);
            store(act + 3 * VW, o);
        }
    }
}

// dL/dh for rows [r0, r0+M) and hidden units [p*NR, p*NR+NR) from the recurrence, then the
// gate gradients of those units at this step.
template <int M>
inline void backward_tile(const Pass<BackwardStep>& pass, int64_t r0, int64_t p) {
    const BackwardStep& s = pass.s;
    V acc[M][4];
    const int64_t u0 = p * NR;
    const int blocks = (int)((s.hp - u0) / VW < 4 ? (s.hp - u0) / VW : 4);
#if PYFACE_BF16
    const Pair* dg_next = s.dg_next_pairs;
#else
    const float* dg_next = s.dg_next;
#endif
    if (dg_next) {
        for (int r = 0; r < M; ++r)
            for (int q = 0; q < 4; ++q)
                acc[r][q] = pass.k0 == 0 ? V{} : load(s.dh_acc + (r0 + r) * s.dh_acc_rs + u0 + q * VW);
#if PYFACE_BF16
        mma<M>(acc, pass.k1 - pass.k0, dg_next + r0 * (s.dg_rs / 2) + pass.k0, s.dg_rs / 2, 1,
               s.w_hh_pairs + (p * (s.g / 2) + pass.k0) * NR);
#else
        mma<M>(acc, pass.k1 - pass.k0, dg_next + r0 * s.dg_rs + pass.k0, s.dg_rs, 1,
               s.w_hh + (p * s.g + pass.k0) * NR);
#endif
        if (!pass.last) {
            for (int r = 0; r < M; ++r)
                for (int q = 0; q < 4; ++q) store(s.dh_acc + (r0 + r) * s.dh_acc_rs + u0 + q * VW, acc[r][q]);
            return;
        }
    } else {
        for (int r = 0; r < M; ++r)
            for (int q = 0; q < blocks; ++q) acc[r][q] = load(s.dh_init + (r0 + r) * s.hp + u0 + q * VW);
    }
    for (int r = 0; r < M; ++r) {
        const int64_t row = r0 + r;
        for (int q = 0; q < blocks; ++q) {
            const int64_t u = u0 + q * VW;
            const int64_t blk = u / VW;
            V dh = acc[r][q];
            if (s.dy) dh += load(s.dy + row * s.dy_rs + u);
            const float* act = s.gates + row * s.gates_rs + blk * NR;
            const V i = load(act), f = load(act + VW), g = load(act + 2 * VW), o = load(act + 3 * VW);
            const V tc = vtanh(load(s.c + row * s.c_rs + u));
            float* dc_ptr = s.dc + row * s.hp + u;
            const V dc = load(dc_ptr) + dh * o * (splat(1.0f) - tc * tc);
            const V delta[4] = {dc * g * i * (splat(1.0f) - i),
                                dc * load(s.c_prev + row * s.c_rs + u) * f * (splat(1.0f) - f),
                                dc * i * (splat(1.0f) - g * g), dh * tc * o * (splat(1.0f) - o)};
            for (int gate = 0; gate < 4; ++gate) {
                store(s.dg + row * s.dg_rs + blk * NR + gate * VW, delta[gate]);
#if PYFACE_BF16
                store_bf16(s.dg_bf + row * s.dg_rs + blk * NR + gate * VW, delta[gate]);
#endif
            }
            store(dc_ptr, dc * f);
        }
    }
}


// Every tile of rows [begin, end) x column blocks [blk_begin, blk_end): blocks outer, so one block of the
// packed right-hand matrix stays in cache for all the rows; rows in tiles of MR, the remainder
// in one smaller tile.
template <template <int> class Tile, class Args>
inline void over_tiles(const Args& s, int64_t begin, int64_t end, int64_t blk_begin, int64_t blk_end) {
    for (int64_t blk = blk_begin; blk < blk_end; ++blk) {
        int64_t r = begin;
        for (; r + MR <= end; r += MR) Tile<MR>::run(s, r, blk);
        switch (end - r) {
#define PYFACE_ROWS(M_) \
    case M_: if (M_ < MR) Tile<(M_ < MR ? M_ : 1)>::run(s, r, blk); break;
            PYFACE_ROWS(1) PYFACE_ROWS(2) PYFACE_ROWS(3) PYFACE_ROWS(4) PYFACE_ROWS(5) PYFACE_ROWS(6) PYFACE_ROWS(7)
            default: break;
        }
    }
}

template <class T> struct OnGemm {
    template <int M> struct Tile { static void run(const GemmArgs<T>& g, int64_t r, int64_t p) { gemm_tile<M>(g, r, p); } };
};
template <int M> struct ForwardTile {
    static void run(const Pass<ForwardStep>& s, int64_t r, int64_t b) { forward_tile<M>(s, r, b); }
};
template <int M> struct BackwardTile {
    static void run(const Pass<BackwardStep>& s, int64_t r, int64_t p) { backward_tile<M>(s, r, p); }
};

// Column block by column block, in KC-deep passes over all the rows.
template <template <int> class Tile, class Step>
inline void in_passes(const Step& s, int64_t depth, int64_t begin, int64_t end, int64_t blk_begin, int64_t blk_end) {
    for (int64_t blk = blk_begin; blk < blk_end; ++blk) {
        int64_t k0 = 0;
        do {
            const int64_t k1 = depth - k0 <= KC ? depth : k0 + KC;
            over_tiles<Tile>(Pass<Step>{s, k0, k1, k1 == depth}, begin, end, blk, blk + 1);
            k0 = k1;
        } while (k0 < depth);
    }
}

// Blocked so that a block of A (MC x KC) stays in L2 and one of B (KC x NR) in L1 while they
// are reused. T is float, or a bf16 pair in the bfloat16 kernels' product of pairs.
template <class T>
void gemm_of(int64_t m, int64_t n, int64_t k, const T* a, int64_t rs, int64_t cs,
             const T* bp, float* c, int64_t ldc, bool accumulate, const float* row_init) {
    constexpr int64_t MC = 32 * MR;
    for (int64_t i0 = 0; i0 < m; i0 += MC) {
        const int64_t mb = m - i0 < MC ? m - i0 : MC;
        for (int64_t k0 = 0; k0 < k; k0 += KC) {
            const GemmArgs<T> g{n, k - k0 < KC ? k - k0 : KC, a + i0 * rs + k0 * cs, rs, cs, bp + k0 * NR,
                                k * NR, c + i0 * ldc, ldc, accumulate || k0 > 0, row_init};
            over_tiles<OnGemm<T>::template Tile>(g, 0, mb, 0, (n + NR - 1) / NR);
        }
    }
}

void gemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t rs, int64_t cs,
          const float* bp, float* c, int64_t ldc, bool accumulate, const float* row_init) {
    gemm_of<float>(m, n, k, a, rs, cs, bp, c, ldc, accumulate, row_init);
}

void forward_step(const ForwardStep& s, int64_t begin, int64_t end, int64_t blk_begin, int64_t blk_end) {
    in_passes<ForwardTile>(s, s.hp / PER_OPERAND, begin, end, blk_begin, blk_end);
}

void backward_step(const BackwardStep& s, int64_t begin, int64_t end) {
#if PYFACE_BF16
    const bool recurrent = s.dg_next_pairs != nullptr;
#else
    const bool recurrent = s.dg_next != nullptr;
#endif
    in_passes<BackwardTile>(s, recurrent ? s.g / PER_OPERAND : 0, begin, end, 0, (s.hp + NR - 1) / NR);
}

void fma_chains(int64_t rounds, float* sink) {
    V acc[kFmaChains];
    for (int j = 0; j < kFmaChains; ++j) acc[j] = splat(sink[0] + float(j));
    const V scale = splat(0.999999f), shift = splat(1e-6f);
    for (int64_t r = 0; r < rounds; ++r)
        for (int j = 0; j < kFmaChains; ++j) acc[j] = acc[j] * scale + shift;
    V sum = V{};
    for (int j = 0; j < kFmaChains; ++j) sum += acc[j];
    float total = 0.0f;
    for (int l = 0; l < VW; ++l) total += sum[l];
    *sink = total;
}

#if PYFACE_BF16
void gemm_pairs(int64_t m, int64_t n, int64_t kp, const uint32_t* a, int64_t rs, int64_t cs,
                const uint32_t* bp, float* c, int64_t ldc, bool accumulate, const float* row_init) {
    gemm_of<Pair>(m, n, kp, a, rs, cs, bp, c, ldc, accumulate, row_init);
}

void round_bf16(const float* src, int64_t n, uint16_t* dst) {
    int64_t i = 0;
    for (; i + VW <= n; i += VW) store_bf16(dst + i, load(src + i));
    for (; i < n; ++i) dst[i] = to_bfloat16(src[i]);
}

void bf16_chains(int64_t rounds, float* sink) {
    V acc[kFmaChains];
    for (int j = 0; j < kFmaChains; ++j) acc[j] = splat(sink[0] + float(j));
    const __m512bh a = (__m512bh)_mm512_set1_epi32(0x3f803f80), b = (__m512bh)_mm512_set1_epi32(0x33d633d6);
    for (int64_t r = 0; r < rounds; ++r)
        for (int j = 0; j < kFmaChains; ++j) acc[j] = dot_pairs(acc[j], a, b);
    V sum = V{};
    for (int j = 0; j < kFmaChains; ++j) sum += acc[j];
    float total = 0.0f;
    for (int l = 0; l < VW; ++l) total += sum[l];
    *sink = total;
}
#endif

#undef PYFACE_ROWS

static_assert(MR <= 8, "tails are spelled out up to 7 rows");

#if PYFACE_BF16
const Kernels table = {Isa::PYFACE_ISA, PYFACE_ISA_NAME, VW, MR, gemm, forward_step, backward_step, fma_chains,
                       gemm_pairs, round_bf16, bf16_chains};
#else
const Kernels table = {Isa::PYFACE_ISA, PYFACE_ISA_NAME, VW, MR, gemm, forward_step, backward_step, fma_chains,
                       nullptr, nullptr, nullptr};
#endif

}  // namespace
}  // namespace PYFACE_ISA_NS
}  // namespace pyface
