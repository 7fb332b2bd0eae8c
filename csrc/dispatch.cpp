// Run-time choice of the kernel path: the best the CPU and the OS support, or the one named by
// PYFACE_ISA. One cached pointer, read by every call.
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "pyface.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#define PYFACE_X86 1
#endif

namespace pyface {

#ifndef PYFACE_X86
// Only the portable path is built off x86-64.
const Kernels* kernels_avx2() { return nullptr; }
const Kernels* kernels_avx512() { return nullptr; }
#endif

namespace {

#ifdef PYFACE_X86
// cpuid leaves and the feature bits read from them (Intel SDM vol. 2A, CPUID; AMD APM vol. 3).
constexpr unsigned kCpuidLeafFeatures = 1;          // feature bits in ecx
constexpr unsigned kCpuidLeafExtendedFeatures = 7;  // subleaf 0, feature bits in ebx
constexpr unsigned kCpuidEcxFma = 1u << 12;
constexpr unsigned kCpuidEcxOsxsave = 1u << 27;     // the OS enabled xgetbv and XCR0
constexpr unsigned kCpuidEcxAvx = 1u << 28;
constexpr unsigned kCpuidEbxAvx2 = 1u << 5;
constexpr unsigned kCpuidEbxAvx512F = 1u << 16;
constexpr unsigned kCpuidEbxAvx512Dq = 1u << 17;
constexpr unsigned kCpuidEbxAvx512Bw = 1u << 30;
constexpr unsigned kCpuidEbxAvx512Vl = 1u << 31;
// The AVX-512 subsets the avx512 kernels are compiled for (CMakeLists.txt).
constexpr unsigned kCpuidEbxAvx512Used = kCpuidEbxAvx512F | kCpuidEbxAvx512Dq | kCpuidEbxAvx512Bw | kCpuidEbxAvx512Vl;

// XCR0: the register state the OS saves on a context switch (Intel SDM vol. 1, XSAVE chapter).
constexpr uint64_t kXcr0SseState = 1u << 1;        // xmm
constexpr uint64_t kXcr0AvxState = 1u << 2;        // upper halves of ymm
constexpr uint64_t kXcr0OpmaskState = 1u << 5;     // k0-k7
constexpr uint64_t kXcr0ZmmHi256State = 1u << 6;   // upper halves of zmm0-15
constexpr uint64_t kXcr0Hi16ZmmState = 1u << 7;    // zmm16-31
constexpr uint64_t kXcr0Ymm = kXcr0SseState | kXcr0AvxState;
constexpr uint64_t kXcr0Zmm = kXcr0Ymm | kXcr0OpmaskState | kXcr0ZmmHi256State | kXcr0Hi16ZmmState;

struct CpuFeatures {
    bool avx2 = false, avx512 = false;
};

uint64_t xgetbv0() {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t(hi) << 32) | lo;
}

CpuFeatures detect() {
    CpuFeatures f;
    unsigned a, b, c, d;
    if (!__get_cpuid(kCpuidLeafFeatures, &a, &b, &c, &d)) return f;
    const bool fma = c & kCpuidEcxFma, osxsave = c & kCpuidEcxOsxsave, avx = c & kCpuidEcxAvx;
    if (!(osxsave && avx)) return f;
    // The OS must save the wider registers on context switch, or using them corrupts state.
    const uint64_t xcr0 = xgetbv0();
    const bool os_ymm = (xcr0 & kXcr0Ymm) == kXcr0Ymm;
    const bool os_zmm = (xcr0 & kXcr0Zmm) == kXcr0Zmm;
    if (__get_cpuid_max(0, nullptr) < kCpuidLeafExtendedFeatures) return f;
    __cpuid_count(kCpuidLeafExtendedFeatures, 0, a, b, c, d);
    const bool avx2 = b & kCpuidEbxAvx2;
    const bool avx512 = (b & kCpuidEbxAvx512Used) == kCpuidEbxAvx512Used;
    f.avx2 = os_ymm && avx2 && fma;
    f.avx512 = f.avx2 && os_zmm && avx512;
    return f;
}

const CpuFeatures& features() {
    static const CpuFeatures f = detect();
    return f;
}
#endif

const Kernels* table_of(Isa isa) {
    switch (isa) {
        case Isa::avx512: return kernels_avx512();
        case Isa::avx2: return kernels_avx2();
        default: return kernels_generic();
    }
}

const Kernels* initial() {
    const char* forced = std::getenv("PYFACE_ISA");
    if (forced && *forced) {
        Isa isa;
        if (!parse_isa(forced, &isa))
            throw std::invalid_argument(std::string("PYFACE_ISA=") + forced +
                                        " is not one of generic, avx2, avx512");
        if (!isa_supported(isa))
            throw std::invalid_argument(std::string("PYFACE_ISA=") + forced +
                                        ": this CPU (or its operating system) does not support it");
        return table_of(isa);
    }
    return table_of(best_isa());
}

std::atomic<const Kernels*>& active() {
    static std::atomic<const Kernels*> a{initial()};
    return a;
}

}  // namespace

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::avx512: return "avx512";
        case Isa::avx2: return "avx2";
        default: return "generic";
    }
}

bool parse_isa(const char* name, Isa* out) {
    for (Isa isa : {Isa::generic, Isa::avx2, Isa::avx512})
        if (std::strcmp(name, isa_name(isa)) == 0) {
            *out = isa;
            return true;
        }
    return false;
}

bool isa_supported(Isa isa) {
    if (!table_of(isa)) return false;
#ifdef PYFACE_X86
    switch (isa) {
        case Isa::avx512: return features().avx512;
        case Isa::avx2: return features().avx2;
        default: return true;
    }
#else
    return isa == Isa::generic;
#endif
}

Isa best_isa() {
    for (Isa isa : {Isa::avx512, Isa::avx2})
        if (isa_supported(isa)) return isa;
    return Isa::generic;
}

const Kernels& active_kernels() { return *active().load(std::memory_order_acquire); }

void set_active_isa(Isa isa) {
    if (!isa_supported(isa))
        throw std::invalid_argument(std::string("instruction set '") + isa_name(isa) +
                                    "' is not supported by this CPU (or its operating system)");
    active().store(table_of(isa), std::memory_order_release);
}

}  // namespace pyface
