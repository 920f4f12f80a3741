// saxpy_torch._C: custom ops registered with TORCH_LIBRARY, as vLLM's _C: the module object itself is
// empty (no pybind11), so it builds against the CPython stable ABI (Py_LIMITED_API, set by CMake) and one
// wheel serves every Python. Importing it runs the static registrations below.
#include <Python.h>

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <vector>

#include "kernels.h"

namespace {

void check_inputs(const at::Tensor &x, const at::Tensor &y) {
    TORCH_CHECK(x.scalar_type() == at::kFloat && y.scalar_type() == at::kFloat, "saxpy: float32 tensors only");
    TORCH_CHECK(x.sizes() == y.sizes(), "saxpy: x and y differ in shape");
    TORCH_CHECK(x.device() == y.device(), "saxpy: x and y are on different devices");
}

at::Tensor saxpy_cpu(double a, const at::Tensor &x, const at::Tensor &y) {
    check_inputs(x, y);
    const at::Tensor xc = x.contiguous(), yc = y.contiguous();
    at::Tensor out = at::empty_like(xc);
    const float *px = xc.data_ptr<float>(), *py = yc.data_ptr<float>();
    float *po = out.data_ptr<float>();
    const float af = static_cast<float>(a);
    for (int64_t i = 0; i < xc.numel(); ++i) po[i] = af * px[i] + py[i];
    return out;
}

at::Tensor saxpy_cuda(double a, const at::Tensor &x, const at::Tensor &y) {
    check_inputs(x, y);
    const c10::cuda::CUDAGuard guard(x.device());
    const at::Tensor xc = x.contiguous(), yc = y.contiguous();
    at::Tensor out = at::empty_like(xc);
    const cudaError_t err = launch_saxpy(xc.numel(), static_cast<float>(a), xc.data_ptr<float>(),
                                         yc.data_ptr<float>(), out.data_ptr<float>(),
                                         c10::cuda::getCurrentCUDAStream(x.device().index()).stream());
    TORCH_CHECK(err == cudaSuccess, "saxpy kernel: ", cudaGetErrorString(err));
    return out;
}

int64_t kernel_arch() {
    int arch = -1;
    const cudaError_t err = probe_arch(&arch);
    TORCH_CHECK(err == cudaSuccess, "arch_kernel: ", cudaGetErrorString(err));
    return arch;
}

// CUDA's driver and runtime versions as this extension sees them (1000 * major + 10 * minor).
std::vector<int64_t> cuda_versions() {
    int driver = 0, runtime = 0;
    cudaDriverGetVersion(&driver);
    cudaRuntimeGetVersion(&runtime);
    return {driver, runtime};
}

}  // namespace

TORCH_LIBRARY(saxpy_torch, m) {
    m.def("saxpy(float a, Tensor x, Tensor y) -> Tensor");
    m.def("kernel_arch() -> int", &kernel_arch);
    m.def("cuda_versions() -> int[]", &cuda_versions);
}

TORCH_LIBRARY_IMPL(saxpy_torch, CPU, m) { m.impl("saxpy", &saxpy_cpu); }

TORCH_LIBRARY_IMPL(saxpy_torch, CUDA, m) { m.impl("saxpy", &saxpy_cuda); }

PyMODINIT_FUNC PyInit__C(void) {
    static PyModuleDef module = {PyModuleDef_HEAD_INIT, "_C", "saxpy_torch's ops, registered with torch", 0,
                                 nullptr};
    return PyModule_Create(&module);
}
