#pragma once
#include <cuda_runtime.h>

#include <cstdint>

// out = a * x + y on `stream`; returns the launch's error.
cudaError_t launch_saxpy(int64_t n, float a, const float *x, const float *y, float *out, cudaStream_t stream);
// The __CUDA_ARCH__ the current device runs arch_kernel with.
cudaError_t probe_arch(int *arch);
