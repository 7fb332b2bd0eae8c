// Storage, threads and the parallel driver around the per-ISA kernels.
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

void parallel_gemm(const Kernels& k, int threads, int64_t m, int64_t n, int64_t kk, const float* a,
                   int64_t rs, int64_t cs, const float* b_packed, float* c, int64_t ldc,
                   bool accumulate) {
    const int64_t tiles = (m + k.mr - 1) / k.mr;
    const int nt = static_cast<int>(tiles < threads ? tiles : threads);
#pragma omp parallel num_threads(nt)
    {
        DenormalsOff flush;
        const int id = omp_get_thread_num(), count = omp_get_num_threads();
        const int64_t begin = tiles * id / count * k.mr;
        int64_t end = tiles * (id + 1) / count * k.mr;
        if (end > m) end = m;
        if (end > begin)
            k.gemm(end - begin, n, kk, a + begin * rs, rs, cs, b_packed, c + begin * ldc, ldc, accumulate);
    }
}

}  // namespace pyface
