// The avx2 path: 8 floats per vector, 3-row register tiles.
#define PYFACE_ISA_NS avx2
#define PYFACE_ISA avx2
#define PYFACE_ISA_NAME "avx2"
#define PYFACE_VW 8
#define PYFACE_MR 3
#include "kernels_impl.h"

const pyface::Kernels* pyface::kernels_avx2() { return &avx2::table; }
