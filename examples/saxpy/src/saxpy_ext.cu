// saxpy._core: two CUDA kernels behind the CPython stable ABI (Py_LIMITED_API, set by CMake).
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <cuda_runtime.h>

#include <vector>

__global__ void saxpy_kernel(int n, float a, const float *x, float *y) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = a * x[i] + y[i];
}

// Reports the __CUDA_ARCH__ of the code the device actually runs (SASS or JIT-compiled PTX).
__global__ void arch_kernel(int *out) {
#ifdef __CUDA_ARCH__
    *out = __CUDA_ARCH__;
#endif
}

static PyObject *cuda_error(cudaError_t err, const char *what) {
    return PyErr_Format(PyExc_RuntimeError, "%s: %s (CUDA error %d)", what, cudaGetErrorString(err), (int)err);
}

static int devices(void) {
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
        cudaGetLastError();  // clear the sticky "no device / no driver" status
        return 0;
    }
    return count;
}

static int require_device(void) {
    if (devices() > 0) return 0;
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    PyErr_Format(PyExc_RuntimeError, "no CUDA device is available (cudaGetDeviceCount: %s)",
                 err == cudaSuccess ? "0 devices" : cudaGetErrorString(err));
    return -1;
}

static PyObject *device_count(PyObject *self, PyObject *args) { return PyLong_FromLong(devices()); }

static PyObject *device_info(PyObject *self, PyObject *args) {
    int index = 0;
    if (!PyArg_ParseTuple(args, "|i", &index)) return NULL;
    if (require_device() < 0) return NULL;
    cudaDeviceProp prop;
    cudaError_t err = cudaGetDeviceProperties(&prop, index);
    if (err != cudaSuccess) return cuda_error(err, "cudaGetDeviceProperties");
    int driver = 0, runtime = 0;
    cudaDriverGetVersion(&driver);
    cudaRuntimeGetVersion(&runtime);
    return Py_BuildValue("{s:i,s:s,s:i,s:i,s:i,s:i}", "index", index, "name", prop.name, "major", prop.major,
                         "minor", prop.minor, "driver_version", driver, "runtime_version", runtime);
}

static PyObject *kernel_arch(PyObject *self, PyObject *args) {
    if (require_device() < 0) return NULL;
    int *d_out = NULL, arch = -1;
    cudaError_t err = cudaMalloc(&d_out, sizeof(int));
    if (err != cudaSuccess) return cuda_error(err, "cudaMalloc");
    arch_kernel<<<1, 1>>>(d_out);
    err = cudaGetLastError();
    if (err == cudaSuccess) err = cudaMemcpy(&arch, d_out, sizeof(int), cudaMemcpyDeviceToHost);
    cudaFree(d_out);
    if (err != cudaSuccess) return cuda_error(err, "arch_kernel");
    cudaFuncAttributes attr;
    err = cudaFuncGetAttributes(&attr, arch_kernel);
    if (err != cudaSuccess) return cuda_error(err, "cudaFuncGetAttributes");
    return Py_BuildValue("{s:i,s:i,s:i}", "cuda_arch", arch, "binary_version", attr.binaryVersion,
                         "ptx_version", attr.ptxVersion);
}

static int floats(PyObject *list, std::vector<float> &out, const char *name) {
    if (!PyList_Check(list)) {
        PyErr_Format(PyExc_TypeError, "%s must be a list of floats", name);
        return -1;
    }
    Py_ssize_t n = PyList_Size(list);
    out.resize((size_t)n);
    for (Py_ssize_t i = 0; i < n; ++i) {
        out[(size_t)i] = (float)PyFloat_AsDouble(PyList_GetItem(list, i));
        if (PyErr_Occurred()) return -1;
    }
    return 0;
}

static PyObject *saxpy(PyObject *self, PyObject *args) {
    float a;
    PyObject *xs, *ys;
    if (!PyArg_ParseTuple(args, "fOO", &a, &xs, &ys)) return NULL;
    std::vector<float> x, y;
    if (floats(xs, x, "x") < 0 || floats(ys, y, "y") < 0) return NULL;
    if (x.size() != y.size()) return PyErr_Format(PyExc_ValueError, "x and y differ in length");
    if (require_device() < 0) return NULL;
    int n = (int)x.size();
    size_t bytes = x.size() * sizeof(float);
    float *d_x = NULL, *d_y = NULL;
    cudaError_t err = cudaMalloc(&d_x, bytes);
    if (err == cudaSuccess) err = cudaMalloc(&d_y, bytes);
    if (err == cudaSuccess) err = cudaMemcpy(d_x, x.data(), bytes, cudaMemcpyHostToDevice);
    if (err == cudaSuccess) err = cudaMemcpy(d_y, y.data(), bytes, cudaMemcpyHostToDevice);
    if (err == cudaSuccess) {
        saxpy_kernel<<<(n + 255) / 256, 256>>>(n, a, d_x, d_y);
        err = cudaGetLastError();
    }
    if (err == cudaSuccess) err = cudaMemcpy(y.data(), d_y, bytes, cudaMemcpyDeviceToHost);
    cudaFree(d_x);
    cudaFree(d_y);
    if (err != cudaSuccess) return cuda_error(err, "saxpy");
    PyObject *result = PyList_New(n);
    if (result == NULL) return NULL;
    for (int i = 0; i < n; ++i) PyList_SetItem(result, i, PyFloat_FromDouble(y[(size_t)i]));
    return result;
}

static PyMethodDef methods[] = {
    {"device_count", device_count, METH_NOARGS, "Number of CUDA devices (0 without a GPU or driver)."},
    {"device_info", device_info, METH_VARARGS, "device_info(index=0) -> dict of name, capability, versions."},
    {"kernel_arch", kernel_arch, METH_NOARGS, "The __CUDA_ARCH__ and binary/PTX versions the device ran."},
    {"saxpy", saxpy, METH_VARARGS, "saxpy(a, x, y) -> a*x + y computed on the GPU."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_core", NULL, -1, methods};

PyMODINIT_FUNC PyInit__core(void) { return PyModule_Create(&module); }
