// The bfloat16 path on AVX512_BF16: the avx512 kernels with every product read in bf16 pairs
// (vdpbf16ps: two bf16 products and a float32 sum per lane and instruction).
#define PYFACE_ISA_NS avx512bf16
#define PYFACE_ISA avx512
#define PYFACE_ISA_NAME "avx512bf16"
#define PYFACE_VW 16
#define PYFACE_MR 6
#define PYFACE_BF16 1
#include "kernels_impl.h"

const pyface::Kernels* pyface::kernels_avx512bf16() { return &avx512bf16::table; }
