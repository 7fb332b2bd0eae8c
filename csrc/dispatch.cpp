// Run-time choice of the kernel path: the best the CPU and the OS support, or the one named by
// PYFACE_ISA. One cached pointer, read by every call. Also the one place that reads the CPU's
// bfloat16 features and chooses the bfloat16 path (PYFACE_BF16).
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
const Kernels* kernels_avx512bf16() { return nullptr; }
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
constexpr unsigned kCpuidEdxAmxBf16 = 1u << 22;     // leaf 7 subleaf 0, edx: tile product of bf16 pairs
constexpr unsigned kCpuidEdxAmxTile = 1u << 24;     // leaf 7 subleaf 0, edx: tile registers, ldtilecfg
constexpr unsigned kCpuidEaxAvx512Bf16 = 1u << 5;   // leaf 7 subleaf 1, eax: vdpbf16ps, vcvtne2ps2bf16
// The AVX-512 subsets the avx512 kernels are compiled for (CMakeLists.txt).
constexpr unsigned kCpuidEbxAvx512Used = kCpuidEbxAvx512F | kCpuidEbxAvx512Dq | kCpuidEbxAvx512Bw | kCpuidEbxAvx512Vl;

// XCR0: the register state the OS saves on a context switch (Intel SDM vol. 1, XSAVE chapter).
constexpr uint64_t kXcr0SseState = 1u << 1;        // xmm
constexpr uint64_t kXcr0AvxState = 1u << 2;        // upper halves of ymm
constexpr uint64_t kXcr0OpmaskState = 1u << 5;     // k0-k7
constexpr uint64_t kXcr0ZmmHi256State = 1u << 6;   // upper halves of zmm0-15
constexpr uint64_t kXcr0Hi16ZmmState = 1u << 7;    // zmm16-31
constexpr uint64_t kXcr0TileCfgState = 1u << 17;   // AMX tile configuration
constexpr uint64_t kXcr0TileDataState = 1u << 18;  // AMX tile registers
constexpr uint64_t kXcr0Tile = kXcr0TileCfgState | kXcr0TileDataState;
constexpr uint64_t kXcr0Ymm = kXcr0SseState | kXcr0AvxState;
constexpr uint64_t kXcr0Zmm = kXcr0Ymm | kXcr0OpmaskState | kXcr0ZmmHi256State | kXcr0Hi16ZmmState;


uint64_t xgetbv0() {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t(hi) << 32) | lo;
}

// The CPU's own bits (what /proc/cpuinfo lists) and whether the OS saves the state they need.
CpuFeatures detect() {
    CpuFeatures f;
    unsigned a, b, c, d;
    if (!__get_cpuid(kCpuidLeafFeatures, &a, &b, &c, &d)) return f;
    f.fma = c & kCpuidEcxFma;
    f.avx = c & kCpuidEcxAvx;
    const bool osxsave = c & kCpuidEcxOsxsave;
    // The OS must save the wider registers on context switch, or using them corrupts state.
    const uint64_t xcr0 = osxsave ? xgetbv0() : 0;
    f.os_ymm = (xcr0 & kXcr0Ymm) == kXcr0Ymm;
    f.os_zmm = (xcr0 & kXcr0Zmm) == kXcr0Zmm;
    f.os_tile = (xcr0 & kXcr0Tile) == kXcr0Tile;
    if (__get_cpuid_max(0, nullptr) < kCpuidLeafExtendedFeatures) return f;
    __cpuid_count(kCpuidLeafExtendedFeatures, 0, a, b, c, d);
    const unsigned max_subleaf = a;
    f.avx2 = b & kCpuidEbxAvx2;
    f.avx512f = b & kCpuidEbxAvx512F;
    f.avx512_used = (b & kCpuidEbxAvx512Used) == kCpuidEbxAvx512Used;
    f.amx_tile = d & kCpuidEdxAmxTile;
    f.amx_bf16 = d & kCpuidEdxAmxBf16;
    if (max_subleaf >= 1) {
        __cpuid_count(kCpuidLeafExtendedFeatures, 1, a, b, c, d);
        f.avx512_bf16 = a & kCpuidEaxAvx512Bf16;
    }
    return f;
}

bool usable_avx2(const CpuFeatures& f) { return f.avx && f.os_ymm && f.avx2 && f.fma; }
bool usable_avx512(const CpuFeatures& f) { return usable_avx2(f) && f.os_zmm && f.avx512_used; }

const CpuFeatures& features() {
    static const CpuFeatures f = detect();
    return f;
}
#else
const CpuFeatures& features() {
    static const CpuFeatures f{};
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

const char* const kBf16Names = "none, avx512bf16, amx";

// PYFACE_BF16 names a path to force (or none); unset, the best usable path runs.
Bf16Path initial_bf16() {
    const char* forced = std::getenv("PYFACE_BF16");
    if (forced && *forced) {
        Bf16Path path;
        const std::string var = std::string("PYFACE_BF16=") + forced;
        if (!parse_bf16_path(forced, &path))
            throw std::invalid_argument(var + " is not one of " + kBf16Names);
        if (path == Bf16Path::none) return path;
        if (!bf16_cpu_supports(path))
            throw std::invalid_argument(var + ": this CPU (or its operating system) does not support it");
        if (!bf16_path_built(path))
            throw std::invalid_argument(var + ": pyface's bfloat16 kernel for it is not yet available");
        return path;
    }
    for (Bf16Path path : {Bf16Path::amx, Bf16Path::avx512bf16})
        if (bf16_cpu_supports(path) && bf16_path_built(path)) return path;
    return Bf16Path::none;
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
        case Isa::avx512: return usable_avx512(features());
        case Isa::avx2: return usable_avx2(features());
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

const CpuFeatures& cpu_features() { return features(); }

bool bf16_cpu_supports(Bf16Path path) {
    const CpuFeatures& f = features();
    switch (path) {
#ifdef PYFACE_X86
        case Bf16Path::amx: return f.amx_tile && f.amx_bf16 && f.os_tile;
        case Bf16Path::avx512bf16: return f.avx512_bf16 && usable_avx512(f);
#endif
        default: return false;
    }
}

// A path ships enabled only after its tests ran on a CPU that has it: avx512bf16 has (AMD Zen 4);
// amx has not, so it is not built.
const Kernels* bf16_table(Bf16Path path) {
    return path == Bf16Path::avx512bf16 ? kernels_avx512bf16() : nullptr;
}

bool bf16_path_built(Bf16Path path) { return bf16_table(path) != nullptr; }

const Kernels* bf16_kernels() { return bf16_table(active_bf16_path()); }

Bf16Path active_bf16_path() {
    static const Bf16Path path = initial_bf16();
    return path;
}

const char* bf16_path_name(Bf16Path path) {
    switch (path) {
        case Bf16Path::amx: return "amx";
        case Bf16Path::avx512bf16: return "avx512bf16";
        default: return "none";
    }
}

bool parse_bf16_path(const char* name, Bf16Path* out) {
    for (Bf16Path path : {Bf16Path::none, Bf16Path::avx512bf16, Bf16Path::amx})
        if (std::strcmp(name, bf16_path_name(path)) == 0) {
            *out = path;
            return true;
        }
    return false;
}

std::string bf16_unavailable_reason() {
    const Bf16Path active = active_bf16_path();
    if (active != Bf16Path::none) return "";
    const std::string head = "precision='bfloat16' ";
    const char* forced = std::getenv("PYFACE_BF16");
    std::string has;
    for (Bf16Path path : {Bf16Path::amx, Bf16Path::avx512bf16})
        if (bf16_cpu_supports(path)) has += (has.empty() ? "" : ", ") + std::string(bf16_path_name(path));
    if (has.empty()) {
        bool any_built = false;
        for (Bf16Path path : {Bf16Path::amx, Bf16Path::avx512bf16}) any_built = any_built || bf16_path_built(path);
        return head + "needs a CPU with AVX512_BF16 or AMX (this CPU has: " + isa_name(best_isa()) + ")" +
               (any_built ? "" : "; pyface's bfloat16 kernel is not yet available");
    }
    if (forced && *forced) return head + "is switched off by PYFACE_BF16=" + forced;
    return head + "cannot run: this CPU has " + has + ", but pyface's bfloat16 kernel for it is not yet available";
}

const Kernels& active_kernels() { return *active().load(std::memory_order_acquire); }

void set_active_isa(Isa isa) {
    if (!isa_supported(isa))
        throw std::invalid_argument(std::string("instruction set '") + isa_name(isa) +
                                    "' is not supported by this CPU (or its operating system)");
    active().store(table_of(isa), std::memory_order_release);
}

}  // namespace pyface
