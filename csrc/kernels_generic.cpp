// The generic path: 4 floats per vector, 3-row register tiles.
#define PYFACE_ISA_NS generic
#define PYFACE_ISA generic
#define PYFACE_ISA_NAME "generic"
#define PYFACE_VW 4
#define PYFACE_MR 3
#include "kernels_impl.h"

const pyface::Kernels* pyface::kernels_generic() { return &generic::table; }
