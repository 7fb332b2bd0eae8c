// Storage, threads and the denormal mode around the per-ISA kernels.
#include <omp.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "pyface.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#endif

namespace pyface {

Buffer::Buffer(size_t n, bool zero) : n_(n) {
    if (n == 0) return;
    const size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    p_ = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (!p_) throw std::bad_alloc();
    if (zero)
        for (size_t i = 0; i < n; ++i) p_[i] = 0.0f;
}

Buffer& Buffer::operator=(Buffer&& o) noexcept {
    if (this != &o) {
        std::free(p_);
        p_ = o.p_;
        n_ = o.n_;
        o.p_ = nullptr;
        o.n_ = 0;
    }
    return *this;
}

Buffer::~Buffer() { std::free(p_); }

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
void set_num_threads(int n) { threads_setting().store(n < 1 ? 1 : n); }

}  // namespace pyface
