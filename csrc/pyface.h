// pyface: plain data types and function declarations of the LSTM kernel.
// Nothing here knows about Python; module.cpp is the only file that does.
//
// Nothing here is defined inline either. The per-instruction-set kernel files include this
// header and are compiled with different flags: an inline function defined here would be
// compiled once per flag set, and the linker keeps any one copy, possibly the widest, which
// then faults on a CPU without it. Definitions live in the .cpp files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace pyface {

enum class Isa : int { generic = 0, avx2 = 1, avx512 = 2 };

// The number format of the GEMM operands of one layer call. bfloat16 rounds x, h, the weights
// and the gate deltas feeding the dh and dW products; everything else stays float32.
enum class Precision : int { float32 = 0, bfloat16 = 1 };

// The instruction-set paths of the bfloat16 kernel. A path is usable only where the CPU and the
// OS support it and pyface ships its kernel (bf16_path_built in dispatch.cpp): avx512bf16 ships;
// amx does not yet (no AMX CPU has run its tests).
enum class Bf16Path : int { none = 0, avx512bf16 = 1, amx = 2 };

// What cpuid says the CPU has (the names /proc/cpuinfo uses), and which register state the OS
// saves on a context switch (XCR0). A feature is usable only with its state saved.
struct CpuFeatures {
    bool avx = false, fma = false, avx2 = false;
    bool avx512f = false, avx512_used = false;   // avx512_used: F, DQ, BW and VL, what the avx512 kernels use
    bool avx512_bf16 = false, amx_tile = false, amx_bf16 = false;
    bool os_ymm = false, os_zmm = false, os_tile = false;
};

// Sizes of one LSTM layer call: x is (batch, time, input), the state (batch, hidden).
struct LstmDims {
    int64_t batch, time, input, hidden;
};

// The kernels see gates interleaved by blocks of vw hidden units, [i f g o] each vw wide, the
// hidden size padded to hp, a multiple of vw (Layout in lstm.cpp).

// One forward timestep for a range of batch rows. All row strides are in floats.
struct ForwardStep {
    int64_t hidden;              // units from here on are padding, held at exactly zero
    int64_t hp;                  // padded hidden size: the K of the recurrent product
    const float* w_hh;           // packed W_hh^T: hp/vw panels of (hp x nr)
    const float* h_prev;         // h_{t-1}, row stride h_rs
    const float* c_prev;         // c_{t-1}, row stride c_rs
    float* h;                    // h_t out
    float* c;                    // c_t out
    int64_t h_rs, c_rs;
    float* gates;                // in: x_t W_ih^T + b; out: activations i f g o (row stride gates_rs)
    int64_t gates_rs;
    bool keep_gates;             // write the activations back (backward needs them; inference not)
    // bfloat16 kernels only: the recurrent product reads bf16 pairs (two bf16 in one 32-bit
    // word, the even index in the low half) and writes h_t rounded to bf16 for the next step.
    const uint32_t* w_hh_pairs;  // packed W_hh^T in pairs along hp: hp/vw panels of (hp/2 x nr) words
    const uint32_t* h_prev_pairs;  // h_{t-1} in bf16, row stride hb_rs/2 words
    uint16_t* h_bf;              // h_t out in bf16, row stride hb_rs
    int64_t hb_rs;
};

// One backward timestep for a range of batch rows.
struct BackwardStep {
    int64_t hp, g;
    const float* w_hh;           // packed W_hh (interleaved rows): ceil(hp/nr) panels of (g x nr)
    const float* dg_next;        // dgates of the step processed before (row stride dg_rs), or null:
    const float* dh_init;        //   then dh comes from dh_init (row stride hp)
    const float* dy;             // padded dL/dy_t (row stride dy_rs) or null
    int64_t dy_rs;
    const float* gates;          // activations at t (row stride gates_rs)
    int64_t gates_rs;
    const float* c;              // c_t and c_{t-1} (row stride c_rs)
    const float* c_prev;
    int64_t c_rs;
    float* dc;                   // in: dL/dc_t from later steps; out: dL/dc_{t-1} (row stride hp)
    float* dh_acc;               // scratch for partial dL/dh between passes (row stride dh_acc_rs)
    int64_t dh_acc_rs;
    float* dg;                   // out: dL/d(pre-activation gates) at t (row stride dg_rs)
    int64_t dg_rs;
    // bfloat16 kernels only: the recurrent product reads the gate deltas of the step before and
    // W_hh as bf16 pairs, and the deltas of this step are also written rounded to bf16.
    const uint32_t* w_hh_pairs;     // packed W_hh (interleaved rows) in pairs along g: panels of (g/2 x nr) words
    const uint32_t* dg_next_pairs;  // bf16 dgates of the step before (row stride dg_rs/2 words), or null
    uint16_t* dg_bf;                // out: the gate deltas in bf16 (row stride dg_rs)
};

// The kernels of one instruction set. Each is compiled in its own translation unit with only
// that instruction set enabled.
struct Kernels {
    Isa isa;
    const char* name;
    int vw;  // floats per vector
    int mr;  // rows per register tile

    // C[m x n] = S + A[m x k] * B, where S is C itself when accumulating, else every row is
    // row_init (n floats) or zero when that is null. A's element (r, j) is a[r*rs + j*cs]; B is
    // packed in panels of nr columns (pack_panels in lstm.cpp). Writes only the n columns of C.
    void (*gemm)(int64_t m, int64_t n, int64_t k, const float* a, int64_t rs, int64_t cs,
                 const float* b_packed, float* c, int64_t ldc, bool accumulate, const float* row_init);
    // Rows [row_begin, row_end) x hidden blocks [blk_begin, blk_end) (vw units each).
    void (*forward_step)(const ForwardStep& s, int64_t row_begin, int64_t row_end, int64_t blk_begin,
                         int64_t blk_end);
    void (*backward_step)(const BackwardStep& s, int64_t row_begin, int64_t row_end);
    // The throughput probe: `rounds` x kFmaChains independent vector FMAs, the most any float32
    // kernel on this path can do; writes a result to *sink so that none is optimised away.
    void (*fma_chains)(int64_t rounds, float* sink);

    // bfloat16 kernels only (null on the float32 paths). The products of gemm with both
    // operands in bf16 pairs: A's pair (r, j) is a[r*rs + j*cs], B packed in panels of kp x nr
    // words (kp pairs deep), float32 accumulation. forward_step and backward_step of such a
    // table read and write the bf16 fields of their step.
    void (*gemm_pairs)(int64_t m, int64_t n, int64_t kp, const uint32_t* a, int64_t rs, int64_t cs,
                       const uint32_t* b_packed, float* c, int64_t ldc, bool accumulate, const float* row_init);
    // dst[i] = src[i] rounded to bf16 (nearest, ties to even), i < n.
    void (*round_bf16)(const float* src, int64_t n, uint16_t* dst);
    // As fma_chains, with kFmaChains bf16 dot products of vw pairs each (4 flops per lane).
    void (*bf16_chains)(int64_t rounds, float* sink);
};

// Enough independent FMA chains to cover FMA latency times FMA ports on current x86 and ARM
// cores, few enough to stay in 16 vector registers.
constexpr int kFmaChains = 12;

const Kernels* kernels_generic();
const Kernels* kernels_avx2();    // null when not built for x86-64
const Kernels* kernels_avx512();  // null when not built for x86-64
const Kernels* kernels_avx512bf16();  // bfloat16 on AVX512_BF16; null when not built for x86-64

// Run-time dispatch (dispatch.cpp).
bool isa_supported(Isa isa);      // the CPU and the OS (saved vector state) both support it
const Kernels& active_kernels();
void set_active_isa(Isa isa);     // throws std::invalid_argument when unsupported
Isa best_isa();
const char* isa_name(Isa isa);
bool parse_isa(const char* name, Isa* out);

// bfloat16 dispatch (dispatch.cpp). The active path is chosen once, from PYFACE_BF16 or the best
// usable one; an invalid PYFACE_BF16 throws std::invalid_argument from the first call.
const CpuFeatures& cpu_features();
bool bf16_cpu_supports(Bf16Path path);  // the CPU and the OS
bool bf16_path_built(Bf16Path path);    // pyface ships a kernel for it, verified on such a CPU
Bf16Path active_bf16_path();
const Kernels* bf16_kernels();          // of the active bf16 path; null when none
const char* bf16_path_name(Bf16Path path);
bool parse_bf16_path(const char* name, Bf16Path* out);
// Why precision=bfloat16 cannot run here, as a sentence for the user; empty when it can.
std::string bf16_unavailable_reason();

// x rounded to the nearest bfloat16, ties to even (NaN stays NaN): the bits of the result.
uint16_t to_bfloat16(float x);

// The smallest multiple of `multiple` (> 0) that is at least n (>= 0): padded sizes.
int64_t round_up(int64_t n, int64_t multiple);

// 64-byte aligned float storage that does not zero unless asked. Large blocks come from and
// go back to a process-wide pool (runtime.cpp): fresh multi-megabyte allocations are mapped
// by the OS per call and page-faulted in, which cost a large layer a quarter of its time.
class Buffer {
public:
    Buffer() noexcept;
    explicit Buffer(size_t n, bool zero = false);
    Buffer(Buffer&& o) noexcept;
    Buffer& operator=(Buffer&& o) noexcept;
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    ~Buffer();
    float* data();
    const float* data() const;
    size_t size() const;

private:
    void release() noexcept;
    float* p_ = nullptr;
    size_t n_ = 0, bytes_ = 0;
};

// What backward needs from forward. Owned by the caller (a Python object), never global.
struct LstmCache {
    LstmCache();
    ~LstmCache();
    LstmDims dims{};
    bool reverse = false;
    Precision precision = Precision::float32;  // backward rounds as forward did
    const Kernels* kernels = nullptr;  // backward uses the layout forward used
    Buffer x, w_ih, w_hh;              // copies (x time-major): the caller may change its arrays
    Buffer gates;                      // (time, batch, g) activations
    Buffer hs, cs;                     // (time + 1, batch, hp): h0/c0 and every state
    // In bfloat16, x holds x rounded to bf16 instead, in rows of round_up(input, 2), and h_bf
    // every h rounded to bf16 as hs holds it: the operands of the weight-gradient product.
    Buffer h_bf;
    size_t nbytes() const;
};

// Flushes denormals to zero in the calling thread for its lifetime, then restores the mode.
class DenormalsOff {
public:
    DenormalsOff();
    ~DenormalsOff();

private:
    unsigned saved_;
};

int num_threads();
// Floating-point operations of one fma_chains(rounds) call on each of num_threads() threads,
// done; the caller times it.
double fma_probe(int64_t rounds);
// The same with the bf16 dot products of the active bf16 path; 0 when there is none.
double bf16_probe(int64_t rounds);
void set_num_threads(int n);

// Bytes the kernel allocates for one call, besides its outputs, for a vector width vw. In
// floating point so that absurd sizes are counted rather than overflowing.
double forward_workspace_bytes(const LstmDims& d, int vw);  // freed when the call returns
double cache_bytes(const LstmDims& d, int vw);              // kept in the cache for backward
double backward_workspace_bytes(const LstmDims& d, int vw);

// One LSTM layer on the kernels k. h0/c0 may be null (zeros). y is (batch, time, hidden); h_T,
// c_T (batch, hidden). With cache non-null, keeps what lstm_backward needs, k and the precision
// included. In bfloat16 the operands of every product are rounded to bf16 and the products
// accumulate in float32; k must then be bfloat16 kernels (k.gemm_pairs non-null).
void lstm_forward(const Kernels& k, const LstmDims& d, const float* x, const float* w_ih,
                  const float* w_hh, const float* bias, const float* h0, const float* c0, bool reverse,
                  Precision precision, float* y, float* h_T, float* c_T, LstmCache* cache);

// Gradients from a cache, on the kernels and in the precision its forward ran in. dy, dh_T, dc_T may be null
// (zeros); dx may be null (not computed).
void lstm_backward(const LstmCache& cache, const float* dy, const float* dh_T, const float* dc_T,
                   float* dx, float* dw_ih, float* dw_hh, float* dbias, float* dh0, float* dc0);

}  // namespace pyface
