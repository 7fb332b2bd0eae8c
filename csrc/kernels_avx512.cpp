// The avx512 path: 16 floats per vector, 6-row register tiles.
#define PYFACE_ISA_NS avx512
#define PYFACE_ISA avx512
#define PYFACE_ISA_NAME "avx512"
#define PYFACE_VW 16
#define PYFACE_MR 6
#include "kernels_impl.h"

const pyface::Kernels* pyface::kernels_avx512() { return &avx512::table; }
