// pyface._core: validate every argument, release the GIL, call the kernel.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "pyface.h"

namespace py = pybind11;
using pyface::LstmCache;
using pyface::LstmDims;

namespace {

std::string shape_str(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
    return s + (a.ndim() == 1 ? ",)" : ")");
}

// A float32, C-contiguous, aligned, non-empty array of `ndim` dimensions, or an exception
// naming the argument. Never converts: a silent copy would hide a caller's mistake.
py::array checked(py::handle obj, const char* name, py::ssize_t ndim, const char* expected) {
    if (!py::isinstance<py::array>(obj))
        throw py::type_error(std::string(name) + " must be a numpy.ndarray of float32 with shape " +
                             expected + ", got " + std::string(py::str(py::type::of(obj).attr("__name__"))));
    auto a = py::reinterpret_borrow<py::array>(obj);
    // Equivalent, not the same object: an array that went through pickle (a Dask worker's,
    // say) carries its own float32 descriptor.
    if (!py::detail::npy_api::get().PyArray_EquivTypes_(a.dtype().ptr(), py::dtype::of<float>().ptr()))
        throw py::type_error(std::string(name) + " must have dtype float32, got " +
                             std::string(py::str(a.dtype())) + " (use .astype(np.float32))");
    if (a.ndim() != ndim)
        throw py::value_error(std::string(name) + " must have shape " + expected + ", got " + shape_str(a));
    for (py::ssize_t i = 0; i < ndim; ++i)
        if (a.shape(i) == 0)
            throw py::value_error(std::string(name) + " must not be empty, got shape " + shape_str(a));
    if (!(a.flags() & py::array::c_style))
        throw py::value_error(std::string(name) + " must be C-contiguous (use np.ascontiguousarray)");
    if (!a.attr("flags").attr("aligned").cast<bool>())
        throw py::value_error(std::string(name) + " must be aligned (use np.ascontiguousarray)");
    return a;
}

void expect_shape(const py::array& a, const char* name, std::vector<int64_t> shape, const std::string& expected) {
    for (size_t i = 0; i < shape.size(); ++i)
        if (a.shape(py::ssize_t(i)) != shape[i])
            throw py::value_error(std::string(name) + " must have shape " + expected + ", got " + shape_str(a));
}

std::string dims_str(std::initializer_list<std::pair<const char*, int64_t>> dims) {
    std::string s = "(";
    bool first = true;
    for (auto& d : dims) {
        s += (first ? "" : ", ") + std::string(d.first) + "=" + std::to_string(d.second);
        first = false;
    }
    return s + ")";
}

// Refuses, before allocating, a call whose buffers would not fit in this machine's memory:
// allocating first could succeed on paper and then be killed by the OS when touched. Sized for
// the kernels that will run, k: their vector width sets the padding of every buffer.
void check_memory(const LstmDims& d, const pyface::Kernels& k, bool backward) {
    const int vw = k.vw;
    const double B = double(d.batch), T = double(d.time), H = double(d.hidden), D = double(d.input);
    // Scratch and cache, plus the outputs: dx, dw_ih, dw_hh and dbias, or y.
    double need = backward ? pyface::backward_workspace_bytes(d, vw) + sizeof(float) * (B * T * D + 4 * H * (D + H + 1))
                           : pyface::forward_workspace_bytes(d, vw) + pyface::cache_bytes(d, vw) + sizeof(float) * B * T * H;
    const double have = double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGE_SIZE));
    if (need > have)
        throw py::value_error("sizes too large: " +
                              dims_str({{"batch", d.batch}, {"time", d.time}, {"input", d.input}, {"hidden", d.hidden}}) +
                              " needs " + std::to_string(need / 1e9) + " GB, more than this machine's " +
                              std::to_string(have / 1e9) + " GB of memory");
}

const float* optional_state(py::handle obj, const char* name, const LstmDims& d, py::array& keep) {
    if (obj.is_none()) return nullptr;
    const std::string expected = dims_str({{"batch", d.batch}, {"hidden", d.hidden}});
    keep = checked(obj, name, 2, expected.c_str());
    expect_shape(keep, name, {d.batch, d.hidden}, expected);
    return static_cast<const float*>(keep.data());
}

// "float32" or "bfloat16"; bfloat16 only where a bfloat16 path is active, or the error says why not.
pyface::Precision parse_precision(const std::string& name) {
    if (name == "float32") return pyface::Precision::float32;
    if (name != "bfloat16")
        throw py::value_error("precision must be 'float32' or 'bfloat16', got '" + name + "'");
    const std::string why = pyface::bf16_unavailable_reason();
    if (!why.empty()) throw py::value_error(why);
    return pyface::Precision::bfloat16;
}

// A throughput probe (fma_probe, bf16_probe) run without the GIL.
double probe(double (*run)(int64_t), int64_t rounds) {
    // About 1e10 rounds is a minute at 1 GHz: anything larger is a mistake, not a measurement.
    if (rounds < 1 || rounds > (int64_t(1) << 34))
        throw py::value_error("rounds must be in [1, 2**34], got " + std::to_string(rounds));
    py::gil_scoped_release release;
    return run(rounds);
}

const char* precision_name(pyface::Precision p) {
    return p == pyface::Precision::bfloat16 ? "bfloat16" : "float32";
}

py::tuple forward(py::handle x_obj, py::handle w_ih_obj, py::handle w_hh_obj, py::handle bias_obj,
                  py::handle h0_obj, py::handle c0_obj, bool reverse, bool training, const std::string& precision_arg) {
    // Checked first: a machine without the path says so whatever the arrays are.
    const pyface::Precision precision = parse_precision(precision_arg);
    py::array x = checked(x_obj, "x", 3, "(batch, time, input)");
    py::array w_hh = checked(w_hh_obj, "w_hh", 2, "(4*hidden, hidden)");
    if (w_hh.shape(0) != 4 * w_hh.shape(1))
        throw py::value_error("w_hh must have shape (4*hidden, hidden), got " + shape_str(w_hh));
    LstmDims d{x.shape(0), x.shape(1), x.shape(2), w_hh.shape(1)};
    const std::string wih_expected = "(4*hidden, input) = " + dims_str({{"4*hidden", 4 * d.hidden}, {"input", d.input}});
    py::array w_ih = checked(w_ih_obj, "w_ih", 2, wih_expected.c_str());
    expect_shape(w_ih, "w_ih", {4 * d.hidden, d.input}, wih_expected);
    const std::string bias_expected = "(4*hidden,) = (" + std::to_string(4 * d.hidden) + ",)";
    py::array bias = checked(bias_obj, "bias", 1, bias_expected.c_str());
    expect_shape(bias, "bias", {4 * d.hidden}, bias_expected);
    py::array h0, c0;
    const float* h0p = optional_state(h0_obj, "h0", d, h0);
    const float* c0p = optional_state(c0_obj, "c0", d, c0);
    // The instruction set is read once, so the call is sized for the kernels it runs on even
    // if another thread switches it meanwhile.
    const pyface::Kernels& kernels =
        precision == pyface::Precision::bfloat16 ? *pyface::bf16_kernels() : pyface::active_kernels();
    check_memory(d, kernels, false);

    py::array_t<float> y({d.batch, d.time, d.hidden}), h_T({d.batch, d.hidden}), c_T({d.batch, d.hidden});
    std::shared_ptr<LstmCache> cache = training ? std::make_shared<LstmCache>() : nullptr;
    {
        py::gil_scoped_release nogil;
        pyface::lstm_forward(kernels, d, static_cast<const float*>(x.data()), static_cast<const float*>(w_ih.data()),
                             static_cast<const float*>(w_hh.data()), static_cast<const float*>(bias.data()),
                             h0p, c0p, reverse, precision, y.mutable_data(), h_T.mutable_data(),
                             c_T.mutable_data(), cache.get());
    }
    return py::make_tuple(y, h_T, c_T, cache ? py::cast(cache) : py::none());
}

py::tuple backward(py::handle dy_obj, py::handle dh_obj, py::handle dc_obj, py::handle cache_obj, bool need_dx) {
    if (cache_obj.is_none())
        throw py::type_error("cache is None: call lstm_forward with training=True to keep what backward needs");
    if (!py::isinstance<LstmCache>(cache_obj))
        throw py::type_error("cache must be the cache returned by lstm_forward, got " +
                             std::string(py::str(py::type::of(cache_obj).attr("__name__"))));
    auto cache = cache_obj.cast<std::shared_ptr<LstmCache>>();
    const LstmDims& d = cache->dims;
    py::array dy, dh, dc;
    const float* dyp = nullptr;
    if (!dy_obj.is_none()) {
        const std::string expected = dims_str({{"batch", d.batch}, {"time", d.time}, {"hidden", d.hidden}});
        dy = checked(dy_obj, "dy", 3, expected.c_str());
        expect_shape(dy, "dy", {d.batch, d.time, d.hidden}, expected);
        dyp = static_cast<const float*>(dy.data());
    }
    const float* dhp = optional_state(dh_obj, "dh_T", d, dh);
    const float* dcp = optional_state(dc_obj, "dc_T", d, dc);
    // Backward runs on the kernels forward ran on (their layout is in the cache), whatever
    // the active instruction set is now.
    check_memory(d, *cache->kernels, true);

    py::array_t<float> dw_ih({4 * d.hidden, d.input}), dw_hh({4 * d.hidden, d.hidden}), dbias(4 * d.hidden);
    py::array_t<float> dh0({d.batch, d.hidden}), dc0({d.batch, d.hidden});
    py::object dx = py::none();
    float* dxp = nullptr;
    if (need_dx) {
        py::array_t<float> a({d.batch, d.time, d.input});
        dxp = a.mutable_data();
        dx = a;
    }
    {
        py::gil_scoped_release nogil;
        pyface::lstm_backward(*cache, dyp, dhp, dcp, dxp, dw_ih.mutable_data(), dw_hh.mutable_data(),
                              dbias.mutable_data(), dh0.mutable_data(), dc0.mutable_data());
    }
    return py::make_tuple(dx, dw_ih, dw_hh, dbias, dh0, dc0);
}

py::list supported_isas() {
    py::list out;
    for (auto isa : {pyface::Isa::generic, pyface::Isa::avx2, pyface::Isa::avx512})
        if (pyface::isa_supported(isa)) out.append(pyface::isa_name(isa));
    return out;
}

py::dict cpu_features() {
    const pyface::CpuFeatures& f = pyface::cpu_features();
    py::dict out;
    for (auto& [name, value] : std::initializer_list<std::pair<const char*, bool>>{
             {"avx", f.avx}, {"fma", f.fma}, {"avx2", f.avx2}, {"avx512f", f.avx512f},
             {"avx512_bf16", f.avx512_bf16}, {"amx_tile", f.amx_tile}, {"amx_bf16", f.amx_bf16},
             {"os_ymm", f.os_ymm}, {"os_zmm", f.os_zmm}, {"os_tile", f.os_tile}})
        out[name] = value;
    return out;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "pyface's native LSTM kernel. Use the wrappers in the pyface package.";
    pyface::active_kernels();  // an invalid PYFACE_ISA fails the import, not a later call
    pyface::active_bf16_path();  // as does an invalid PYFACE_BF16

    py::class_<LstmCache, std::shared_ptr<LstmCache>>(m, "LstmCache",
        "What lstm_backward needs from one lstm_forward(training=True) call. Read-only.")
        .def_property_readonly("batch", [](const LstmCache& c) { return c.dims.batch; })
        .def_property_readonly("time", [](const LstmCache& c) { return c.dims.time; })
        .def_property_readonly("input_size", [](const LstmCache& c) { return c.dims.input; })
        .def_property_readonly("hidden_size", [](const LstmCache& c) { return c.dims.hidden; })
        .def_property_readonly("reverse", [](const LstmCache& c) { return c.reverse; })
        .def_property_readonly("isa", [](const LstmCache& c) { return std::string(c.kernels->name); })
        .def_property_readonly("precision", [](const LstmCache& c) { return std::string(precision_name(c.precision)); })
        .def_property_readonly("nbytes", &LstmCache::nbytes)
        .def("__repr__", [](const LstmCache& c) {
            return "<LstmCache batch=" + std::to_string(c.dims.batch) + " time=" + std::to_string(c.dims.time) +
                   " input=" + std::to_string(c.dims.input) + " hidden=" + std::to_string(c.dims.hidden) +
                   (c.reverse ? " reverse" : "") +
                   (c.precision == pyface::Precision::bfloat16 ? " bfloat16" : "") + " nbytes=" + std::to_string(c.nbytes()) + ">";
        });

    m.def("lstm_forward", &forward, py::arg("x"), py::arg("w_ih"), py::arg("w_hh"), py::arg("bias"),
          py::arg("h0"), py::arg("c0"), py::arg("reverse"), py::arg("training"), py::arg("precision") = "float32");
    m.def("lstm_backward", &backward, py::arg("dy"), py::arg("dh_T"), py::arg("dc_T"), py::arg("cache"),
          py::arg("need_dx"));
    m.def("workspace_bytes", [](int64_t batch, int64_t time, int64_t input, int64_t hidden) {
        if (batch < 1 || time < 1 || input < 1 || hidden < 1)
            throw py::value_error("batch, time, input and hidden must be >= 1");
        const LstmDims d{batch, time, input, hidden};
        const int vw = pyface::active_kernels().vw;
        py::dict out;
        out["forward"] = pyface::forward_workspace_bytes(d, vw);
        out["cache"] = pyface::cache_bytes(d, vw);
        out["backward"] = pyface::backward_workspace_bytes(d, vw);
        return out;
    }, py::arg("batch"), py::arg("time"), py::arg("input"), py::arg("hidden"));
    m.def("fma_probe", [](int64_t rounds) { return probe(pyface::fma_probe, rounds); }, py::arg("rounds"));
    m.def("bf16_probe", [](int64_t rounds) { return probe(pyface::bf16_probe, rounds); }, py::arg("rounds"));
    m.def("get_isa", [] { return std::string(pyface::active_kernels().name); });
    m.def("set_isa", [](const std::string& name) {
        pyface::Isa isa;
        if (!pyface::parse_isa(name.c_str(), &isa))
            throw py::value_error("isa must be one of 'generic', 'avx2', 'avx512', got '" + name + "'");
        pyface::set_active_isa(isa);
    }, py::arg("name"));
    m.def("supported_isas", &supported_isas);
    m.def("cpu_features", &cpu_features);
    m.def("get_bf16_path", []() -> py::object {
        const pyface::Bf16Path path = pyface::active_bf16_path();
        if (path == pyface::Bf16Path::none) return py::none();
        return py::str(pyface::bf16_path_name(path));
    });
    m.def("check_precision", [](const std::string& name) { parse_precision(name); }, py::arg("precision"));
    m.def("vector_width", [] { return pyface::active_kernels().vw; });
    m.def("get_num_threads", &pyface::num_threads);
    m.def("set_num_threads", [](int n) {
        if (n < 1) throw py::value_error("n must be >= 1, got " + std::to_string(n));
        pyface::set_num_threads(n);
    }, py::arg("n"));
    m.attr("__version__") = PYFACE_VERSION;
    m.attr("openmp") = _OPENMP;
    m.attr("compiler") = __VERSION__;
}
