// Device code only: no torch headers here, so nvcc compiles it for every target quickly.
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels.h"

__global__ void saxpy_kernel(int64_t n, float a, const float *x, const float *y, float *out) {
    int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (i < n) out[i] = a * x[i] + y[i];
}

// Reports the __CUDA_ARCH__ of the code the device actually runs (SASS or JIT-compiled PTX).
__global__ void arch_kernel(int *out) {
#ifdef __CUDA_ARCH__
    *out = __CUDA_ARCH__;
#endif
}

cudaError_t launch_saxpy(int64_t n, float a, const float *x, const float *y, float *out, cudaStream_t stream) {
    const int threads = 256;
    const int64_t blocks = (n + threads - 1) / threads;
    if (blocks > 0) saxpy_kernel<<<static_cast<unsigned>(blocks), threads, 0, stream>>>(n, a, x, y, out);
    return cudaGetLastError();
}

cudaError_t probe_arch(int *arch) {
    int *d_out = nullptr;
    cudaError_t err = cudaMalloc(&d_out, sizeof(int));
    if (err != cudaSuccess) return err;
    arch_kernel<<<1, 1>>>(d_out);
    err = cudaGetLastError();
    if (err == cudaSuccess) err = cudaMemcpy(arch, d_out, sizeof(int), cudaMemcpyDeviceToHost);
    cudaFree(d_out);
    return err;
}
