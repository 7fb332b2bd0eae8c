// One LSTM layer, forward and backward through time, on the kernels of one instruction set.
//
// Forward: pack the weights once; project every timestep's input in one GEMM (bias folded
// in); then per step one fused kernel does the recurrent product for all four gates, the
// non-linearities and the cell update. Backward: per step one fused kernel turns dL/dh into
// gate gradients; after the loop both weight gradients are one GEMM over all steps, dx another.
// Threads own disjoint batch rows for the whole time loop, so steps need no barrier; batches
// too small for that split the hidden units instead and meet once per step.
//
// Every buffer is allocated before the parallel region: an exception cannot leave an OpenMP
// region (it ends the process), while out of one std::bad_alloc reaches Python as MemoryError.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "pyface.h"

namespace pyface {
namespace {

// Internal gate layout. Hidden units are grouped in blocks of `vw` (one SIMD vector); the four
// gates of a block sit side by side, [i f g o] each vw wide, so one micro-tile of nr = 4*vw
// columns holds every gate of the same units and the cell update runs from the accumulators.
// The hidden size is padded to hp (a multiple of vw); padded units have zero weights and stay
// exactly zero through the recurrence.
struct Layout {
    int64_t vw, nr, hp, g;

    Layout(int64_t vector_width, int64_t hidden)
        : vw(vector_width), nr(4 * vector_width),
          hp(round_up(hidden, vector_width)), g(4 * hp) {}

    // Column of (gate, unit) in the interleaved layout.
    int64_t col(int64_t gate, int64_t unit) const {
        return unit / vw * nr + gate * vw + unit % vw;
    }
};

// Rows [i0, i1) of B (k x n), given as a pointer to each row, into panels of nr columns, each
// k x nr: the right-hand matrix layout of Kernels::gemm. Columns from n_valid on (and the
// tail of the last panel) are zero.
template <class RowPtr>
void pack_panels(int64_t k, int64_t i0, int64_t i1, int64_t n, int64_t nr, RowPtr row, float* out,
                 int64_t n_valid) {
    for (int64_t c0 = 0; c0 < n; c0 += nr, out += k * nr) {
        const int64_t left = n_valid - c0, width = left < 0 ? 0 : left < nr ? left : nr;
        for (int64_t i = i0; i < i1; ++i) {
            const float* src = row(i) + c0;
            float* dst = out + i * nr;
            for (int64_t j = 0; j < width; ++j) dst[j] = src[j];
            for (int64_t j = width; j < nr; ++j) dst[j] = 0.0f;
        }
    }
}

// Gate pre-activations a thread projects ahead of its recurrence: half of a 1 MiB L2.
constexpr int64_t kGateBytesAhead = 512 * 1024;

// Floats of a (k x n) matrix packed by pack_panels.
int64_t packed_size(int64_t k, int64_t n, int64_t nr) { return round_up(n, nr) * k; }

struct Range {
    int64_t begin, end;
    bool empty() const { return begin >= end; }
    int64_t size() const { return end - begin; }
};

// This thread's part of [0, n), cut at multiples of `align`.
Range share(int64_t n, int64_t align = 1) {
    const int id = omp_get_thread_num(), count = omp_get_num_threads();
    const int64_t units = (n + align - 1) / align;
    return {std::min(n, units * id / count * align), std::min(n, units * (id + 1) / count * align)};
}

// Slot of h_t / c_t and of h_{t-1} / c_{t-1} in the (time + 1, batch, hp) state buffers: the
// initial state sits before the first processed step, which is t = 0 or, reversed, t = T-1.
struct StateSlots {
    int64_t out, prev;
    explicit StateSlots(bool reverse) : out(reverse ? 0 : 1), prev(reverse ? 1 : 0) {}
};

int64_t time_of(int64_t step, int64_t T, bool reverse) { return reverse ? T - 1 - step : step; }

typedef float F4 __attribute__((vector_size(4 * sizeof(float))));
typedef int I4 __attribute__((vector_size(4 * sizeof(int))));

#if defined(__clang__)
#define PYFACE_SHUFFLE(a, b, i, j, k, l) __builtin_shufflevector(a, b, i, j, k, l)
#else
#define PYFACE_SHUFFLE(a, b, i, j, k, l) __builtin_shuffle(a, b, I4{i, j, k, l})
#endif

// out[c * out_rs + r] = src[r * src_rs + c] for a 4 x 4 tile, in registers.
inline void transpose4(const float* src, int64_t src_rs, float* out, int64_t out_rs) {
    F4 r[4];
    for (int j = 0; j < 4; ++j) std::memcpy(&r[j], src + j * src_rs, sizeof(F4));
    const F4 t0 = PYFACE_SHUFFLE(r[0], r[1], 0, 4, 1, 5), t1 = PYFACE_SHUFFLE(r[0], r[1], 2, 6, 3, 7);
    const F4 t2 = PYFACE_SHUFFLE(r[2], r[3], 0, 4, 1, 5), t3 = PYFACE_SHUFFLE(r[2], r[3], 2, 6, 3, 7);
    const F4 c[4] = {PYFACE_SHUFFLE(t0, t2, 0, 1, 4, 5), PYFACE_SHUFFLE(t0, t2, 2, 3, 6, 7),
                     PYFACE_SHUFFLE(t1, t3, 0, 1, 4, 5), PYFACE_SHUFFLE(t1, t3, 2, 3, 6, 7)};
    for (int j = 0; j < 4; ++j) std::memcpy(out + j * out_rs, &c[j], sizeof(F4));
}
#undef PYFACE_SHUFFLE

// (4H x K) torch-layout weights as the right-hand matrix of x W^T: rows are the K inputs,
// columns the interleaved gates (panel p = hidden block p). Inputs from k_valid on are zero.
// Only the hidden blocks in `blocks` are written, so threads can pack their own.
void pack_gate_columns(const float* w, int64_t H, int64_t k_valid, int64_t k, const Layout& L,
                       Range blocks, float* out) {
    // A transpose, by 4 x 4 tiles in registers where whole tiles fit (every vector width is a
    // multiple of 4); single floats at the ragged edges. A batch-1 call spends about a fifth
    // of its time here when this is done one float at a time.
    const int64_t ld = L.nr;  // floats between consecutive inputs in a panel
    for (int64_t blk = blocks.begin; blk < blocks.end; ++blk) {
        float* panel = out + blk * k * L.nr;
        const int64_t unit0 = blk * L.vw, units = std::min(L.vw, std::max<int64_t>(H - unit0, 0));
        for (int64_t gate = 0; gate < 4; ++gate) {
            const float* src = w + (gate * H + unit0) * k_valid;
            float* dst = panel + gate * L.vw;
            int64_t v = 0;
            for (; v + 4 <= units; v += 4) {
                int64_t i = 0;
                for (; i + 4 <= k_valid; i += 4) transpose4(src + v * k_valid + i, k_valid, dst + i * ld + v, ld);
                for (; i < k_valid; ++i)
                    for (int64_t j = v; j < v + 4; ++j) dst[i * ld + j] = src[j * k_valid + i];
            }
            for (int64_t i = 0; i < k_valid; ++i) {
                for (int64_t j = v; j < units; ++j) dst[i * ld + j] = src[j * k_valid + i];
                for (int64_t j = units; j < L.vw; ++j) dst[i * ld + j] = 0.0f;
            }
        }
        std::fill(panel + k_valid * L.nr, panel + k * L.nr, 0.0f);
    }
}

// The same weights untransposed, as the right-hand matrix of dgates W: rows are the
// interleaved gates, columns the N inputs (padded to n).
void pack_gate_rows(const float* w, int64_t H, int64_t n_valid, int64_t n, const Layout& L,
                    float* out) {
    const std::vector<float> zeros(size_t(n), 0.0f);
    pack_panels(L.g, 0, L.g, n, L.nr, [&](int64_t row) {
        const int64_t gate = row % L.nr / L.vw, unit = row / L.nr * L.vw + row % L.vw;
        return unit < H ? w + (gate * H + unit) * n_valid : zeros.data();
    }, out, n_valid);
}

// Rows [r0, r1) of an interleaved (g x n) gradient, src pointing at row r0, into torch layout
// (4H x n_valid), dropping padding.
void unpack_gate_rows(const float* src, int64_t n, int64_t r0, int64_t r1, int64_t H,
                      int64_t n_valid, const Layout& L, float* dst) {
    for (int64_t r = r0; r < r1; ++r, src += n) {
        const int64_t gate = r % L.nr / L.vw, unit = r / L.nr * L.vw + r % L.vw;
        if (unit < H) std::memcpy(dst + (gate * H + unit) * n_valid, src, n_valid * sizeof(float));
    }
}

void copy_rows(const float* src, int64_t rows, int64_t width, int64_t src_rs, float* dst,
               int64_t dst_rs) {
    for (int64_t r = 0; r < rows; ++r) std::memcpy(dst + r * dst_rs, src + r * src_rs, width * sizeof(float));
}

// Rows of width `width` into rows of `padded` floats, zeros after; null src gives zeros.
void pad_rows(const float* src, int64_t rows, int64_t width, int64_t src_rs, float* dst,
              int64_t dst_rs, int64_t padded) {
    for (int64_t r = 0; r < rows; ++r) {
        float* out = dst + r * dst_rs;
        if (src) std::memcpy(out, src + r * src_rs, width * sizeof(float));
        std::fill(out + (src ? width : 0), out + padded, 0.0f);
    }
}

// bfloat16 operands are stored as uint16 in float Buffers (two to a float) and packed as pairs:
// one 32-bit word holds the operands of depth 2i (low half) and 2i + 1 (high half).
int64_t half_of(int64_t n) { return (n + 1) / 2; }
uint16_t* bf16_in(Buffer& b) { return reinterpret_cast<uint16_t*>(b.data()); }
const uint16_t* bf16_in(const Buffer& b) { return reinterpret_cast<const uint16_t*>(b.data()); }
uint32_t* pairs_in(Buffer& b) { return reinterpret_cast<uint32_t*>(b.data()); }
const uint32_t* pairs_in(const Buffer& b) { return reinterpret_cast<const uint32_t*>(b.data()); }
uint32_t pair(uint16_t lo, uint16_t hi) { return uint32_t(lo) | uint32_t(hi) << 16; }

// pack_panels in pairs: rows [2 p0, 2 p1) of a bf16 (rows x n) matrix, row r at row(r) or null
// (zeros), into panels of kp pairs x nr words.
template <class RowPtr>
void pack_pair_panels(int64_t kp, int64_t p0, int64_t p1, int64_t n, int64_t nr, RowPtr row, uint32_t* out,
                      int64_t n_valid) {
    for (int64_t c0 = 0; c0 < n; c0 += nr, out += kp * nr) {
        const int64_t left = n_valid - c0, width = left < 0 ? 0 : left < nr ? left : nr;
        for (int64_t i = p0; i < p1; ++i) {
            const uint16_t* lo = row(2 * i);
            const uint16_t* hi = row(2 * i + 1);
            uint32_t* dst = out + i * nr;
            for (int64_t j = 0; j < width; ++j) dst[j] = pair(lo ? lo[c0 + j] : 0, hi ? hi[c0 + j] : 0);
            for (int64_t j = width; j < nr; ++j) dst[j] = 0;
        }
    }
}

// pack_gate_columns in pairs along the k inputs (k even) of bf16 weights w (4H x k_valid).
void pack_gate_column_pairs(const uint16_t* w, int64_t H, int64_t k_valid, int64_t k, const Layout& L,
                            Range blocks, uint32_t* out) {
    const int64_t kp = k / 2;
    for (int64_t blk = blocks.begin; blk < blocks.end; ++blk)
        for (int64_t gate = 0; gate < 4; ++gate)
            for (int64_t v = 0; v < L.vw; ++v) {
                const int64_t unit = blk * L.vw + v;
                const uint16_t* src = unit < H ? w + (gate * H + unit) * k_valid : nullptr;
                uint32_t* dst = out + blk * kp * L.nr + gate * L.vw + v;
                for (int64_t i = 0; i < kp; ++i) {
                    const int64_t j = 2 * i;
                    dst[i * L.nr] = pair(src && j < k_valid ? src[j] : 0, src && j + 1 < k_valid ? src[j + 1] : 0);
                }
            }
}

// pack_gate_rows in pairs along the interleaved gate rows, from bf16 weights w (4H x n_valid).
void pack_gate_row_pairs(const uint16_t* w, int64_t H, int64_t n_valid, int64_t n, const Layout& L,
                         uint32_t* out) {
    pack_pair_panels(L.g / 2, 0, L.g / 2, n, L.nr, [&](int64_t row) -> const uint16_t* {
        const int64_t gate = row % L.nr / L.vw, unit = row / L.nr * L.vw + row % L.vw;
        return unit < H ? w + (gate * H + unit) * n_valid : nullptr;
    }, out, n_valid);
}

}  // namespace

double forward_workspace_bytes(const LstmDims& d, int vw) {
    const Layout L(vw, d.hidden);
    const double packed = double(L.g) * (double(d.input) + double(L.hp)), bias = double(L.g);
    return sizeof(float) * (packed + bias);
}

double cache_bytes(const LstmDims& d, int vw) {
    const Layout L(vw, d.hidden);
    const double B = double(d.batch), T = double(d.time), D = double(d.input), H = double(d.hidden);
    return sizeof(float) * (B * T * double(L.g) + 2.0 * B * (T + 1) * double(L.hp) + B * T * D + 4 * H * (D + H));
}

double backward_workspace_bytes(const LstmDims& d, int vw) {
    const Layout L(vw, d.hidden);
    const double B = double(d.batch), T = double(d.time), g = double(L.g), hp = double(L.hp);
    // The input and hidden sizes in whole panels of nr columns.
    const double dp = double(round_up(d.input, L.nr)), hpp = double(round_up(L.hp, L.nr));
    const double packed = g * hpp + g * dp;
    const double steps = B * T * (hp + g + dp + hpp) + B * (3 * hp + hpp);
    return sizeof(float) * (packed + steps + g * (dp + hp + 1));
}

LstmCache::LstmCache() = default;
LstmCache::~LstmCache() = default;

size_t LstmCache::nbytes() const {
    return (x.size() + w_ih.size() + w_hh.size() + gates.size() + hs.size() + cs.size() + h_bf.size()) * sizeof(float);
}

// Buffers touched per step are time-major, (time, batch, ...): the rows one step reads and
// writes are contiguous, instead of one row per page in a batch-major layout.
void lstm_forward(const Kernels& k, const LstmDims& d, const float* x, const float* w_ih,
                  const float* w_hh, const float* bias, const float* h0, const float* c0, bool reverse,
                  Precision precision, float* y, float* h_T, float* c_T, LstmCache* cache) {
    const int64_t B = d.batch, T = d.time, D = d.input, H = d.hidden;
    const Layout L(k.vw, H);
    const StateSlots slot(reverse);
    const int64_t first = time_of(0, T, reverse), last = time_of(T - 1, T, reverse);
    const int64_t blocks = L.hp / L.vw, step_g = B * L.g, step_h = B * L.hp;
    // In bfloat16 the products read pairs: x in rows of an even width, the weights packed in
    // pairs (half the floats of the float32 panels), h also kept in bf16 for the next step.
    const bool bf = precision == Precision::bfloat16;
    const int64_t dx2 = round_up(D, 2);

    Buffer wih_p(packed_size(bf ? dx2 / 2 : D, L.g, L.nr)), whh_p(packed_size(bf ? L.hp / 2 : L.hp, L.g, L.nr));
    Buffer wih_bf(bf ? size_t(half_of(4 * H * D)) : 0), whh_bf(bf ? size_t(half_of(4 * H * H)) : 0);
    std::vector<float> bias_g(size_t(L.g), 0.0f);
    Buffer gates_local, hs_local, cs_local, xt_local, hb_local;
    Buffer& gates = cache ? cache->gates : gates_local;
    Buffer& hs = cache ? cache->hs : hs_local;
    Buffer& cs = cache ? cache->cs : cs_local;
    Buffer& xt = cache ? cache->x : xt_local;  // x in (time, batch, input) order; bf16 rows of dx2 in bfloat16
    Buffer& hb = cache ? cache->h_bf : hb_local;
    gates = Buffer(size_t(T * step_g));
    hs = Buffer(size_t((T + 1) * step_h));
    cs = Buffer(size_t((T + 1) * step_h));
    xt = Buffer(bf ? size_t(half_of(B * T * dx2)) : size_t(B * T * D));
    hb = Buffer(bf ? size_t(half_of((T + 1) * step_h)) : 0);
    if (cache) {
        cache->dims = d;
        cache->reverse = reverse;
        cache->precision = precision;
        cache->kernels = &k;
        cache->w_ih = Buffer(size_t(4 * H * D));
        cache->w_hh = Buffer(size_t(4 * H * H));
        std::memcpy(cache->w_ih.data(), w_ih, size_t(4 * H * D) * sizeof(float));
        std::memcpy(cache->w_hh.data(), w_hh, size_t(4 * H * H) * sizeof(float));
    }
    if (bf) {  // rounded once per call (the packing reads every weight once per hidden block)
        k.round_bf16(w_ih, 4 * H * D, bf16_in(wih_bf));
        k.round_bf16(w_hh, 4 * H * H, bf16_in(whh_bf));
    }

    // Threads normally own a slice of the batch from the input projection to the outputs, with
    // no barrier. A batch smaller than a register tile per thread is split by hidden units
    // instead, with one barrier per step: each thread then streams only its part of W_hh.
    const int threads = num_threads();
    const bool split_units = threads > 1 && blocks > 1 && B < int64_t(k.mr) * threads;
    const int nt = static_cast<int>(std::min<int64_t>(threads, split_units ? blocks : B));
#pragma omp parallel num_threads(nt)
    {
        DenormalsOff flush;
        const Range packed = share(blocks);
        if (bf) {
            pack_gate_column_pairs(bf16_in(wih_bf), H, D, dx2, L, packed, pairs_in(wih_p));
            pack_gate_column_pairs(bf16_in(whh_bf), H, H, L.hp, L, packed, pairs_in(whh_p));
        } else {
            pack_gate_columns(w_ih, H, D, D, L, packed, wih_p.data());
            pack_gate_columns(w_hh, H, H, L.hp, L, packed, whh_p.data());
        }
        for (int64_t gate = 0; gate < 4; ++gate)
            for (int64_t unit = packed.begin * L.vw; unit < std::min(H, packed.end * L.vw); ++unit)
                bias_g[size_t(L.col(gate, unit))] = bias[gate * H + unit];
        const Range steps = share(T);
        for (int64_t t = steps.begin; t < steps.end; ++t) {
            if (!bf) {
                copy_rows(x + t * D, B, D, T * D, xt.data() + t * B * D, D);
                continue;
            }
            for (int64_t b = 0; b < B; ++b) {
                uint16_t* row = bf16_in(xt) + (t * B + b) * dx2;
                k.round_bf16(x + (b * T + t) * D, D, row);
                if (dx2 > D) row[D] = 0;
            }
        }
#pragma omp barrier
        // x W_ih^T + b for rows r of timestep t (or of steps t .. t + n - 1, all rows): one GEMM.
        auto project = [&](int64_t t, int64_t n, Range r) {
            if (n < 1) return;
            const int64_t row0 = t * B + r.begin, m = n == 1 ? r.size() : n * B;
            if (bf)
                k.gemm_pairs(m, L.g, dx2 / 2, pairs_in(xt) + row0 * dx2 / 2, dx2 / 2, 1, pairs_in(wih_p),
                             gates.data() + row0 * L.g, L.g, false, bias_g.data());
            else
                k.gemm(m, L.g, D, xt.data() + row0 * D, D, 1, wih_p.data(), gates.data() + row0 * L.g, L.g, false,
                       bias_g.data());
        };
        // Split by units, every thread projects a share of the timesteps up front.
        if (split_units) project(steps.begin, steps.size(), Range{0, B});

        const Range rows = split_units ? Range{0, B} : share(B);
        const Range blks = split_units ? packed : Range{0, blocks};
        const int64_t u0 = blks.begin * L.vw, u1 = std::min(H, blks.end * L.vw);
        for (int64_t b = rows.begin; b < rows.end; ++b) {
            const int64_t at = (first + slot.prev) * step_h + b * L.hp;
            float* h = hs.data() + at;
            float* c = cs.data() + at;
            for (int64_t u = u0; u < blks.end * L.vw; ++u) {
                h[u] = h0 && u < H ? h0[b * H + u] : 0.0f;
                c[u] = c0 && u < H ? c0[b * H + u] : 0.0f;
                if (bf) bf16_in(hb)[at + u] = to_bfloat16(h[u]);
            }
        }
#pragma omp barrier
        // Split by rows, each thread projects its own rows a few steps ahead of the recurrence,
        // as many as keep those gates in L2 until the steps read them (all of them up front
        // would stream the whole gate buffer through memory at the standard size).
        const int64_t ahead = std::max<int64_t>(1, kGateBytesAhead / (rows.size() * L.g * int64_t(sizeof(float))));
        for (int64_t step = 0; step < T; ++step) {
            if (split_units && step > 0) {
#pragma omp barrier
            }
            const int64_t t = time_of(step, T, reverse);
            if (!split_units && step % ahead == 0)
                for (int64_t later = step; later < std::min(T, step + ahead); ++later)
                    project(time_of(later, T, reverse), 1, rows);
            ForwardStep s{};
            s.hidden = H;
            s.hp = L.hp;
            s.w_hh = whh_p.data();
            s.h_prev = hs.data() + (t + slot.prev) * step_h;
            s.c_prev = cs.data() + (t + slot.prev) * step_h;
            s.h = hs.data() + (t + slot.out) * step_h;
            s.c = cs.data() + (t + slot.out) * step_h;
            s.h_rs = s.c_rs = L.hp;
            s.gates = gates.data() + t * step_g;
            s.gates_rs = L.g;
            s.keep_gates = cache != nullptr;
            if (bf) {
                s.w_hh_pairs = pairs_in(whh_p);
                s.h_prev_pairs = pairs_in(hb) + (t + slot.prev) * step_h / 2;
                s.h_bf = bf16_in(hb) + (t + slot.out) * step_h;
                s.hb_rs = L.hp;
            }
            k.forward_step(s, rows.begin, rows.end, blks.begin, blks.end);
        }
        for (int64_t b = rows.begin; b < rows.end && u1 > u0; ++b) {
            copy_rows(hs.data() + slot.out * step_h + b * L.hp + u0, T, u1 - u0, step_h, y + b * T * H + u0, H);
            const int64_t fin = (last + slot.out) * step_h + b * L.hp + u0;
            std::memcpy(h_T + b * H + u0, hs.data() + fin, size_t(u1 - u0) * sizeof(float));
            std::memcpy(c_T + b * H + u0, cs.data() + fin, size_t(u1 - u0) * sizeof(float));
        }
    }
}

void lstm_backward(const LstmCache& cache, const float* dy, const float* dh_T, const float* dc_T,
                   float* dx, float* dw_ih, float* dw_hh, float* dbias, float* dh0, float* dc0) {
    const Kernels& k = *cache.kernels;
    const LstmDims& d = cache.dims;
    const int64_t B = d.batch, T = d.time, D = d.input, H = d.hidden, BT = B * T;
    const bool reverse = cache.reverse;
    const Layout L(k.vw, H);
    const StateSlots slot(reverse);
    const int64_t first = time_of(0, T, reverse), step_g = B * L.g, step_h = B * L.hp;
    // In bfloat16 every product reads pairs: W_hh and W_ih packed in pairs along the gate rows,
    // the gate deltas also kept in bf16, and the weight-gradient product pairs timesteps.
    const bool bf = cache.precision == Precision::bfloat16;
    const int64_t gp = L.g / 2, dx2 = round_up(D, 2);

    Buffer whh_p(packed_size(bf ? gp : L.g, L.hp, L.nr)), wih_p;
    if (dx) wih_p = Buffer(packed_size(bf ? gp : L.g, D, L.nr));
    if (bf) {
        Buffer w_bf(size_t(half_of(4 * H * std::max(D, H))));
        k.round_bf16(cache.w_hh.data(), 4 * H * H, bf16_in(w_bf));
        pack_gate_row_pairs(bf16_in(w_bf), H, H, L.hp, L, pairs_in(whh_p));
        if (dx) {
            k.round_bf16(cache.w_ih.data(), 4 * H * D, bf16_in(w_bf));
            pack_gate_row_pairs(bf16_in(w_bf), H, D, D, L, pairs_in(wih_p));
        }
    } else {
        pack_gate_rows(cache.w_hh.data(), H, H, L.hp, L, whh_p.data());
        if (dx) pack_gate_rows(cache.w_ih.data(), H, D, D, L, wih_p.data());
    }
    // dy (batch, time, hidden) is read in place unless the hidden size needs padding.
    const bool pad_dy = dy && H != L.hp;
    Buffer dy_pad(pad_dy ? size_t(BT * L.hp) : 0);
    const float* dy_use = pad_dy ? dy_pad.data() : dy;
    const int64_t dy_width = pad_dy ? L.hp : H;
    Buffer dh_init(size_t(B * L.hp)), dc(size_t(B * L.hp)), dh0_pad(size_t(B * L.hp));
    Buffer dg(size_t(T * step_g));  // (time, batch, g)
    Buffer dg_bf(bf ? size_t(half_of(T * step_g)) : 0);
    const int64_t dh_acc_rs = round_up(L.hp, L.nr);
    Buffer dh_acc(size_t(B * dh_acc_rs));
    // The inputs of every step in (time, batch) order, packed as the right-hand side of the
    // weight-gradient GEMMs.
    // [x | h_prev]: one GEMM gives both weight gradients and reads dG once. x takes whole
    // panels (dp columns), so h_prev's panels follow it in the same packed buffer. In bfloat16
    // the depth of that product is BT / 2 pairs of (time, batch) rows, and dG^T is paired alike.
    const int64_t dp = round_up(D, L.nr), n_in = dp + L.hp, depth = bf ? half_of(BT) : BT;
    Buffer in_p(packed_size(depth, n_in, L.nr)), acc(size_t(L.g * n_in));
    Buffer dgt_pairs(bf ? size_t(depth * L.g) : 0);
    Buffer gate_sums(size_t(L.g), true);  // dbias in the interleaved layout
    const int64_t h_panels = packed_size(depth, dp, L.nr);
    const float* x_in = cache.x.data();                        // row t*B + b: x_t of sequence b
    const float* h_in = cache.hs.data() + slot.prev * step_h;  // row t*B + b: h before step t

#pragma omp parallel num_threads(num_threads())
    {
        DenormalsOff flush;
        // Phase 1: each thread backpropagates its slice of the batch through time.
        const Range rows = share(B);
        if (!rows.empty()) {
            const int64_t b0 = rows.begin, nb = rows.size();
            if (pad_dy) pad_rows(dy + b0 * T * H, nb * T, H, H, dy_pad.data() + b0 * T * L.hp, L.hp, L.hp);
            pad_rows(dh_T ? dh_T + b0 * H : nullptr, nb, H, H, dh_init.data() + b0 * L.hp, L.hp, L.hp);
            pad_rows(dc_T ? dc_T + b0 * H : nullptr, nb, H, H, dc.data() + b0 * L.hp, L.hp, L.hp);
            for (int64_t step = T - 1; step >= 0; --step) {
                const int64_t t = time_of(step, T, reverse), t_next = time_of(step + 1, T, reverse);
                BackwardStep s{};
                s.hp = L.hp;
                s.g = L.g;
                s.w_hh = whh_p.data();
                s.dg_next = step == T - 1 ? nullptr : dg.data() + t_next * step_g;
                s.dh_init = dh_init.data();
                s.dy = dy_use ? dy_use + t * dy_width : nullptr;
                s.dy_rs = T * dy_width;
                s.gates = cache.gates.data() + t * step_g;
                s.gates_rs = L.g;
                s.c = cache.cs.data() + (t + slot.out) * step_h;
                s.c_prev = cache.cs.data() + (t + slot.prev) * step_h;
                s.c_rs = L.hp;
                s.dc = dc.data();
                s.dh_acc = dh_acc.data();
                s.dh_acc_rs = dh_acc_rs;
                s.dg = dg.data() + t * step_g;
                s.dg_rs = L.g;
                if (bf) {
                    s.w_hh_pairs = pairs_in(whh_p);
                    s.dg_next_pairs = step == T - 1 ? nullptr : pairs_in(dg_bf) + t_next * step_g / 2;
                    s.dg_bf = bf16_in(dg_bf) + t * step_g;
                }
                k.backward_step(s, rows.begin, rows.end);
            }
            // dL/dh0 is the recurrent product of the first processed step's gate gradients.
            if (bf)
                k.gemm_pairs(nb, L.hp, gp, pairs_in(dg_bf) + (first * step_g + b0 * L.g) / 2, gp, 1,
                             pairs_in(whh_p), dh0_pad.data() + b0 * L.hp, L.hp, false, nullptr);
            else
                k.gemm(nb, L.hp, L.g, dg.data() + first * step_g + b0 * L.g, L.g, 1, whh_p.data(),
                       dh0_pad.data() + b0 * L.hp, L.hp, false, nullptr);
            copy_rows(dh0_pad.data() + b0 * L.hp, nb, H, L.hp, dh0 + b0 * H, H);
            copy_rows(dc.data() + b0 * L.hp, nb, H, L.hp, dc0 + b0 * H, H);

            for (int64_t t = 0; t < T && !bf; ++t) {
                const int64_t r0 = t * B + b0, r1 = r0 + nb;
                pack_panels(BT, r0, r1, dp, L.nr, [&](int64_t r) { return x_in + r * D; }, in_p.data(), D);
                pack_panels(BT, r0, r1, L.hp, L.nr, [&](int64_t r) { return h_in + r * L.hp; },
                            in_p.data() + h_panels, L.hp);
            }
        }
        if (bf) {
            // Pairs of (time, batch) rows cross the threads' batch slices: packed after all are done.
#pragma omp barrier
            const Range pairs = share(depth);
            const uint16_t* xb = bf16_in(cache.x);
            const uint16_t* hb = bf16_in(cache.h_bf) + slot.prev * step_h;
            pack_pair_panels(depth, pairs.begin, pairs.end, dp, L.nr,
                             [&](int64_t r) { return r < BT ? xb + r * dx2 : nullptr; }, pairs_in(in_p), D);
            pack_pair_panels(depth, pairs.begin, pairs.end, L.hp, L.nr,
                             [&](int64_t r) { return r < BT ? hb + r * L.hp : nullptr; },
                             pairs_in(in_p) + h_panels, L.hp);
            const uint16_t* dgb = bf16_in(dg_bf);
            for (int64_t i = pairs.begin; i < pairs.end; ++i) {
                const uint16_t* lo = dgb + 2 * i * L.g;
                const uint16_t* hi = 2 * i + 1 < BT ? lo + L.g : nullptr;
                uint32_t* out = pairs_in(dgt_pairs) + i * L.g;
                for (int64_t j = 0; j < L.g; ++j) out[j] = pair(lo[j], hi ? hi[j] : 0);
            }
        }
#pragma omp barrier
        // Phase 2: weight gradients dG^T (g x BT) times the inputs of every step, one GEMM
        // split by gate rows; dx split by timesteps.
        const Range gate_rows = share(L.g, k.mr);
        if (!gate_rows.empty()) {
            const int64_t g0 = gate_rows.begin, ng = gate_rows.size();
            float* rows_acc = acc.data() + g0 * n_in;
            if (bf)
                k.gemm_pairs(ng, n_in, depth, pairs_in(dgt_pairs) + g0, 1, L.g, pairs_in(in_p), rows_acc, n_in,
                             false, nullptr);
            else
                k.gemm(ng, n_in, BT, dg.data() + g0, 1, L.g, in_p.data(), rows_acc, n_in, false, nullptr);
            unpack_gate_rows(rows_acc, n_in, g0, gate_rows.end, H, D, L, dw_ih);
            unpack_gate_rows(rows_acc + dp, n_in, g0, gate_rows.end, H, H, L, dw_hh);
            float* sum = gate_sums.data() + g0;
            for (int64_t r = 0; r < BT; ++r) {
                const float* row = dg.data() + r * L.g + g0;
                for (int64_t j = 0; j < ng; ++j) sum[j] += row[j];
            }
            unpack_gate_rows(sum, 1, g0, gate_rows.end, H, 1, L, dbias);
        }
        if (dx) {
            const Range steps = share(T);
            for (int64_t t = steps.begin; t < steps.end; ++t) {
                if (bf)
                    k.gemm_pairs(B, D, gp, pairs_in(dg_bf) + t * step_g / 2, gp, 1, pairs_in(wih_p), dx + t * D,
                                 T * D, false, nullptr);
                else
                    k.gemm(B, D, L.g, dg.data() + t * step_g, L.g, 1, wih_p.data(), dx + t * D, T * D, false,
                           nullptr);
            }
        }
    }
}

}  // namespace pyface
