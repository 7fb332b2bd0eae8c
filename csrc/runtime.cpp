// Storage, threads and the denormal mode around the per-ISA kernels.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

#include "pyface.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#endif

namespace pyface {

namespace {

// Freed large blocks kept for reuse, at most kPoolLimit bytes in all. Only an allocation
// cache: a block's contents never carry from one call to the next (Buffer zeroes on request).
constexpr size_t kPoolMin = size_t(1) << 20, kPoolLimit = size_t(1) << 30;

// A cache line, and the size of an AVX-512 vector.
constexpr size_t kAlignment = 64;

struct Pool {
    std::mutex mutex;
    std::vector<std::pair<size_t, float*>> blocks;  // (bytes, block)
    size_t bytes = 0;

    ~Pool() {
        for (auto& b : blocks) std::free(b.second);
    }

    // A free block of at least `want` bytes and at most twice that, or null.
    float* take(size_t want, size_t* got) {
        std::lock_guard<std::mutex> lock(mutex);
        for (size_t i = 0; i < blocks.size(); ++i)
            if (blocks[i].first >= want && blocks[i].first / 2 <= want) {
                float* p = blocks[i].second;
                *got = blocks[i].first;
                bytes -= *got;
                blocks[i] = blocks.back();
                blocks.pop_back();
                return p;
            }
        return nullptr;
    }

    bool give(float* p, size_t size) {
        std::lock_guard<std::mutex> lock(mutex);
        if (bytes + size > kPoolLimit) return false;
        blocks.emplace_back(size, p);
        bytes += size;
        return true;
    }
};

Pool& pool() {
    static Pool p;
    return p;
}

}  // namespace

int64_t round_up(int64_t n, int64_t multiple) { return (n + multiple - 1) / multiple * multiple; }

Buffer::Buffer() noexcept = default;

Buffer::Buffer(size_t n, bool zero) : n_(n) {
    if (n == 0) return;
    // aligned_alloc takes only whole multiples of the alignment.
    bytes_ = size_t(round_up(int64_t(n * sizeof(float)), kAlignment));
    if (bytes_ >= kPoolMin) p_ = pool().take(bytes_, &bytes_);
    if (!p_) p_ = static_cast<float*>(std::aligned_alloc(kAlignment, bytes_));
    if (!p_) throw std::bad_alloc();
    if (zero) std::fill(p_, p_ + n, 0.0f);
}

void Buffer::release() noexcept {
    if (p_ && !(bytes_ >= kPoolMin && pool().give(p_, bytes_))) std::free(p_);
    p_ = nullptr;
    n_ = bytes_ = 0;
}

Buffer::Buffer(Buffer&& o) noexcept : p_(o.p_), n_(o.n_), bytes_(o.bytes_) {
    o.p_ = nullptr;
    o.n_ = o.bytes_ = 0;
}

Buffer& Buffer::operator=(Buffer&& o) noexcept {
    if (this != &o) {
        release();
        p_ = o.p_;
        n_ = o.n_;
        bytes_ = o.bytes_;
        o.p_ = nullptr;
        o.n_ = o.bytes_ = 0;
    }
    return *this;
}

Buffer::~Buffer() { release(); }

float* Buffer::data() { return p_; }
const float* Buffer::data() const { return p_; }
size_t Buffer::size() const { return n_; }

#if defined(__x86_64__) || defined(_M_X64)
// FTZ (bit 15) and DAZ (bit 6): denormals in a long recurrence cost ~100x per operation.
DenormalsOff::DenormalsOff() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | 0x8040); }
DenormalsOff::~DenormalsOff() { _mm_setcsr(saved_); }
#else
DenormalsOff::DenormalsOff() : saved_(0) {}
DenormalsOff::~DenormalsOff() {}
#endif

namespace {
std::atomic<int>& threads_setting() {
    static std::atomic<int> n{omp_get_max_threads()};
    return n;
}
}  // namespace

int num_threads() { return threads_setting().load(); }

double fma_probe(int64_t rounds) {
    const Kernels& k = active_kernels();
    const int threads = num_threads();
    std::vector<float> sinks(size_t(threads) * 16, 1.0f);  // one cache line per thread
#pragma omp parallel num_threads(threads)
    k.fma_chains(rounds, sinks.data() + 16 * omp_get_thread_num());
    return 2.0 * kFmaChains * k.vw * double(rounds) * threads;
}
double bf16_probe(int64_t rounds) {
    const Kernels* k = bf16_kernels();
    if (!k) return 0.0;
    const int threads = num_threads();
    std::vector<float> sinks(size_t(threads) * 16, 1.0f);
#pragma omp parallel num_threads(threads)
    k->bf16_chains(rounds, sinks.data() + 16 * omp_get_thread_num());
    return 4.0 * kFmaChains * k->vw * double(rounds) * threads;
}

uint16_t to_bfloat16(float x) {
    uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40u);  // NaN stays (quiet) NaN
    bits += 0x7fffu + ((bits >> 16) & 1u);  // ties to even; a carry rounds into the exponent
    return uint16_t(bits >> 16);
}

void set_num_threads(int n) { threads_setting().store(n < 1 ? 1 : n); }

}  // namespace pyface
