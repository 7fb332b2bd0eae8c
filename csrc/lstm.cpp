// One LSTM layer, forward and backward through time, on the active kernels.
//
// Forward: pack the weights once; project every timestep's input in one GEMM (bias folded
// in); then per step one fused kernel does the recurrent product for all four gates, the
// non-linearities and the cell update. Backward: per step one fused kernel turns dL/dh into
// gate gradients; after the loop the weight gradients and dx are one GEMM each over all steps.
// Threads own disjoint batch rows for the whole time loop, so steps need no barrier.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "pyface.h"

namespace pyface {
namespace {

// Rows [begin, end) of `rows` for thread `id` of `count`.
void share(int64_t rows, int id, int count, int64_t* begin, int64_t* end) {
    *begin = rows * id / count;
    *end = rows * (id + 1) / count;
}

// Slot of h_t / c_t and of h_{t-1} / c_{t-1} in the (batch, time + 1, hp) state buffers: the
// initial state sits before the first processed step, which is t = 0 or, reversed, t = T-1.
struct StateSlots {
    int64_t out, prev;
    explicit StateSlots(bool reverse) : out(reverse ? 0 : 1), prev(reverse ? 1 : 0) {}
};

int64_t time_of(int64_t step, int64_t T, bool reverse) { return reverse ? T - 1 - step : step; }

// (4H x K) torch-layout weights as the right-hand matrix of x W^T: rows are the K inputs,
// columns the interleaved gates (panel p = hidden block p). Inputs from k_valid on are zero.
void pack_gate_columns(const float* w, int64_t H, int64_t k_valid, int64_t k, const Layout& L,
                       float* out) {
    // A transpose: for one block the 4*vw source rows (64 lines on AVX-512) stay in L1 while
    // the columns are read across them.
    for (int64_t unit0 = 0; unit0 < L.hp; unit0 += L.vw) {
        const int64_t units = std::min(L.vw, std::max<int64_t>(H - unit0, 0));
        for (int64_t i = 0; i < k_valid; ++i)
            for (int64_t gate = 0; gate < 4; ++gate, out += L.vw) {
                const float* src = w + (gate * H + unit0) * k_valid + i;
                for (int64_t v = 0; v < units; ++v) out[v] = src[v * k_valid];
                for (int64_t v = units; v < L.vw; ++v) out[v] = 0.0f;
            }
        const int64_t rest = (k - k_valid) * L.nr;
        std::fill(out, out + rest, 0.0f);
        out += rest;
    }
}

// The same weights untransposed, as the right-hand matrix of dgates W: rows are the
// interleaved gates, columns the N inputs (padded to n).
void pack_gate_rows(const float* w, int64_t H, int64_t n_valid, int64_t n, const Layout& L,
                    float* out) {
    const std::vector<float> zeros(size_t(n), 0.0f);
    pack_panels(L.g, n, L.nr, [&](int64_t row) {
        const int64_t gate = row % L.nr / L.vw, unit = row / L.nr * L.vw + row % L.vw;
        return unit < H ? w + (gate * H + unit) * n_valid : zeros.data();
    }, out, n_valid);
}

// Interleaved (g x n) gradient -> torch-layout (4H x n_valid), dropping padding.
void unpack_gate_rows(const float* src, int64_t n, int64_t H, int64_t n_valid, const Layout& L,
                      float* dst) {
    for (int64_t gate = 0; gate < 4; ++gate)
        for (int64_t unit = 0; unit < H; ++unit)
            std::memcpy(dst + (gate * H + unit) * n_valid, src + L.col(gate, unit) * n,
                        n_valid * sizeof(float));
}

void copy_rows(const float* src, int64_t rows, int64_t width, int64_t src_rs, float* dst,
               int64_t dst_rs) {
    for (int64_t r = 0; r < rows; ++r) std::memcpy(dst + r * dst_rs, src + r * src_rs, width * sizeof(float));
}

}  // namespace

size_t LstmCache::nbytes() const {
    return (x.size() + w_ih.size() + w_hh.size() + gates.size() + hs.size() + cs.size()) * sizeof(float);
}

void lstm_forward(const LstmDims& d, const float* x, const float* w_ih, const float* w_hh,
                  const float* bias, const float* h0, const float* c0, bool reverse, float* y,
                  float* h_T, float* c_T, LstmCache* cache) {
    const Kernels& k = cache && cache->kernels ? *cache->kernels : active_kernels();
    const int64_t B = d.batch, T = d.time, D = d.input, H = d.hidden;
    const Layout L(k.vw, H);
    const StateSlots slot(reverse);
    const int threads = num_threads();

    Buffer wih_p(packed_size(D, L.g, L.nr)), whh_p(packed_size(L.hp, L.g, L.nr));
    pack_gate_columns(w_ih, H, D, D, L, wih_p.data());
    pack_gate_columns(w_hh, H, H, L.hp, L, whh_p.data());

    Buffer gates_local, hs_local, cs_local;
    Buffer& gates = cache ? cache->gates : gates_local;
    Buffer& hs = cache ? cache->hs : hs_local;
    Buffer& cs = cache ? cache->cs : cs_local;
    gates = Buffer(size_t(B * T * L.g));
    hs = Buffer(size_t(B * (T + 1) * L.hp), true);
    cs = Buffer(size_t(B * (T + 1) * L.hp), true);
    const int64_t state_rs = (T + 1) * L.hp;

    // x W_ih^T + b for every timestep in one GEMM, accumulated onto rows holding the bias.
    std::vector<float> bias_g(size_t(L.g), 0.0f);
    for (int64_t gate = 0; gate < 4; ++gate)
        for (int64_t unit = 0; unit < H; ++unit) bias_g[size_t(L.col(gate, unit))] = bias[gate * H + unit];
    for (int64_t r = 0; r < B * T; ++r) std::memcpy(gates.data() + r * L.g, bias_g.data(), L.g * sizeof(float));
    parallel_gemm(k, threads, B * T, L.g, D, x, D, 1, wih_p.data(), gates.data(), L.g, true);

    const int64_t first = time_of(0, T, reverse);
    if (h0) copy_rows(h0, B, H, H, hs.data() + (first + slot.prev) * L.hp, state_rs);
    if (c0) copy_rows(c0, B, H, H, cs.data() + (first + slot.prev) * L.hp, state_rs);

    const int nt = static_cast<int>(std::min<int64_t>(threads, B));
#pragma omp parallel num_threads(nt)
    {
        DenormalsOff flush;
        int64_t begin, end;
        share(B, omp_get_thread_num(), omp_get_num_threads(), &begin, &end);
        for (int64_t step = 0; step < T && begin < end; ++step) {
            const int64_t t = time_of(step, T, reverse);
            ForwardStep s;
            s.hp = L.hp;
            s.w_hh = whh_p.data();
            s.h_prev = hs.data() + (t + slot.prev) * L.hp;
            s.c_prev = cs.data() + (t + slot.prev) * L.hp;
            s.h = hs.data() + (t + slot.out) * L.hp;
            s.c = cs.data() + (t + slot.out) * L.hp;
            s.h_rs = s.c_rs = state_rs;
            s.gates = gates.data() + t * L.g;
            s.gates_rs = T * L.g;
            k.forward_step(s, begin, end);
        }
    }

    for (int64_t b = 0; b < B; ++b)
        copy_rows(hs.data() + b * state_rs + slot.out * L.hp, T, H, L.hp, y + b * T * H, H);
    const int64_t last = time_of(T - 1, T, reverse);
    copy_rows(hs.data() + (last + slot.out) * L.hp, B, H, state_rs, h_T, H);
    copy_rows(cs.data() + (last + slot.out) * L.hp, B, H, state_rs, c_T, H);

    if (cache) {
        cache->dims = d;
        cache->reverse = reverse;
        cache->kernels = &k;
        cache->x = Buffer(size_t(B * T * D));
        std::memcpy(cache->x.data(), x, size_t(B * T * D) * sizeof(float));
        cache->w_ih = Buffer(size_t(4 * H * D));
        std::memcpy(cache->w_ih.data(), w_ih, size_t(4 * H * D) * sizeof(float));
        cache->w_hh = Buffer(size_t(4 * H * H));
        std::memcpy(cache->w_hh.data(), w_hh, size_t(4 * H * H) * sizeof(float));
    }
}

void lstm_backward(const LstmCache& cache, const float* dy, const float* dh_T, const float* dc_T,
                   float* dx, float* dw_ih, float* dw_hh, float* dbias, float* dh0, float* dc0) {
    const Kernels& k = *cache.kernels;
    const LstmDims& d = cache.dims;
    const int64_t B = d.batch, T = d.time, D = d.input, H = d.hidden;
    const bool reverse = cache.reverse;
    const Layout L(k.vw, H);
    const StateSlots slot(reverse);
    const int threads = num_threads();
    const int64_t state_rs = (T + 1) * L.hp;

    Buffer whh_p(packed_size(L.g, L.hp, L.nr));
    pack_gate_rows(cache.w_hh.data(), H, H, L.hp, L, whh_p.data());

    Buffer dy_pad;
    if (dy) {
        dy_pad = Buffer(size_t(B * T * L.hp), true);
        copy_rows(dy, B * T, H, H, dy_pad.data(), L.hp);
    }
    Buffer dh_init(size_t(B * L.hp), true), dc(size_t(B * L.hp), true), dh0_pad(size_t(B * L.hp));
    if (dh_T) copy_rows(dh_T, B, H, H, dh_init.data(), L.hp);
    if (dc_T) copy_rows(dc_T, B, H, H, dc.data(), L.hp);
    Buffer dg(size_t(B * T * L.g));

    const int nt = static_cast<int>(std::min<int64_t>(threads, B));
#pragma omp parallel num_threads(nt)
    {
        DenormalsOff flush;
        int64_t begin, end;
        share(B, omp_get_thread_num(), omp_get_num_threads(), &begin, &end);
        for (int64_t step = T - 1; step >= 0 && begin < end; --step) {
            const int64_t t = time_of(step, T, reverse);
            BackwardStep s;
            s.hp = L.hp;
            s.g = L.g;
            s.w_hh = whh_p.data();
            s.dg_next = step == T - 1 ? nullptr : dg.data() + time_of(step + 1, T, reverse) * L.g;
            s.dh_init = dh_init.data();
            s.dy = dy ? dy_pad.data() + t * L.hp : nullptr;
            s.dy_rs = T * L.hp;
            s.gates = cache.gates.data() + t * L.g;
            s.gates_rs = T * L.g;
            s.c = cache.cs.data() + (t + slot.out) * L.hp;
            s.c_prev = cache.cs.data() + (t + slot.prev) * L.hp;
            s.c_rs = state_rs;
            s.dc = dc.data();
            s.dg = dg.data() + t * L.g;
            s.dg_rs = T * L.g;
            k.backward_step(s, begin, end);
        }
        // dL/dh0 is the recurrent product of the first processed step's gate gradients.
        if (begin < end) {
            const int64_t first = time_of(0, T, reverse);
            k.gemm(end - begin, L.hp, L.g, dg.data() + begin * T * L.g + first * L.g, T * L.g, 1,
                   whh_p.data(), dh0_pad.data() + begin * L.hp, L.hp, false);
        }
    }
    copy_rows(dh0_pad.data(), B, H, L.hp, dh0, H);
    copy_rows(dc.data(), B, H, L.hp, dc0, H);

    // Weight gradients: dG^T (g x BT) times the inputs of every step, one GEMM each.
    const int64_t BT = B * T;
    {
        Buffer x_p(packed_size(BT, D, L.nr)), acc(size_t(L.g * D));
        pack_panels(BT, D, L.nr, [&](int64_t r) { return cache.x.data() + r * D; }, x_p.data());
        parallel_gemm(k, threads, L.g, D, BT, dg.data(), 1, L.g, x_p.data(), acc.data(), D, false);
        unpack_gate_rows(acc.data(), D, H, D, L, dw_ih);
    }
    {
        Buffer h_p(packed_size(BT, L.hp, L.nr)), acc(size_t(L.g * L.hp));
        pack_panels(BT, L.hp, L.nr, [&](int64_t r) {
            return cache.hs.data() + r / T * state_rs + (r % T + slot.prev) * L.hp;
        }, h_p.data());
        parallel_gemm(k, threads, L.g, L.hp, BT, dg.data(), 1, L.g, h_p.data(), acc.data(), L.hp, false);
        unpack_gate_rows(acc.data(), L.hp, H, H, L, dw_hh);
    }
    {
        std::vector<float> sum(size_t(L.g), 0.0f);
        for (int64_t r = 0; r < BT; ++r) {
            const float* row = dg.data() + r * L.g;
            for (int64_t j = 0; j < L.g; ++j) sum[size_t(j)] += row[j];
        }
        unpack_gate_rows(sum.data(), 1, H, 1, L, dbias);
    }
    if (dx) {
        Buffer wih_p(packed_size(L.g, D, L.nr));
        pack_gate_rows(cache.w_ih.data(), H, D, D, L, wih_p.data());
        parallel_gemm(k, threads, BT, D, L.g, dg.data(), L.g, 1, wih_p.data(), dx, D, false);
    }
}

}  // namespace pyface
