// cuda_device.cu — CUDA device discovery (see cuda_device.h).
#include "cuda_device.h"

#include <cuda_runtime.h>
#include <stdio.h>
#include <string.h>

static sw_status cuda_status(cudaError_t e, sw_err *err, const char *what) {
    if (e == cudaSuccess) return SW_OK;
    sw_status s = SW_E_BACKEND;
    if (e == cudaErrorNoDevice) s = SW_E_NOT_FOUND;
    int drv = 0;
    if (e == cudaErrorInsufficientDriver && cudaDriverGetVersion(&drv) == cudaSuccess && drv == 0)
        return sw_err_set(err, SW_E_NOT_FOUND, "%s: no NVIDIA driver is installed (no GPU?)", what);
    if (e == cudaErrorInsufficientDriver)
        return sw_err_set(err, SW_E_UNSUPPORTED,
                          "%s: the NVIDIA driver is older than CUDA runtime %d.%d (%s)", what,
                          CUDART_VERSION / 1000, (CUDART_VERSION % 1000) / 10,
                          cudaGetErrorString(e));
    return sw_err_set(err, s, "%s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

extern "C" sw_status sw_cuda_device_count(int *n, sw_err *err) {
    *n = 0;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); // clear the sticky error state
        return cuda_status(e, err, "cuda: cannot enumerate devices");
    }
    if (count == 0) return sw_err_set(err, SW_E_NOT_FOUND, "cuda: no CUDA device found");
    *n = count;
    return SW_OK;
}

extern "C" sw_status sw_cuda_device_info_get(int index, sw_cuda_device_info *out, sw_err *err) {
    memset(out, 0, sizeof *out);
    int n = 0;
    sw_status s = sw_cuda_device_count(&n, err);
    if (s != SW_OK) return s;
    if (index < 0 || index >= n)
        return sw_err_set(err, SW_E_INVALID_ARG, "cuda: device %d does not exist (%d found)",
                          index, n);
    cudaDeviceProp p;
    cudaError_t e = cudaGetDeviceProperties(&p, index);
    if (e != cudaSuccess) return cuda_status(e, err, "cuda: cudaGetDeviceProperties");
    snprintf(out->name, sizeof out->name, "%s", p.name);
    out->cc_major = p.major;
    out->cc_minor = p.minor;
    out->total_mem = (uint64_t)p.totalGlobalMem;
    out->sm_count = p.multiProcessorCount;
    int bus = 0;
    if (cudaDeviceGetAttribute(&bus, cudaDevAttrGlobalMemoryBusWidth, index) == cudaSuccess)
        out->mem_bus_width_bits = bus;
    int clk = 0, l2 = 0;
    if (cudaDeviceGetAttribute(&clk, cudaDevAttrMemoryClockRate, index) == cudaSuccess)
        out->mem_clock_khz = clk;
    if (cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, index) == cudaSuccess) out->l2_bytes = l2;
    (void)cudaGetLastError();
    /* DDR: two transfers per clock */
    out->peak_gbps = 2.0 * (double)out->mem_clock_khz * 1e3 * (double)out->mem_bus_width_bits / 8.0 * 1e-9;
    cudaDriverGetVersion(&out->driver_version);
    cudaRuntimeGetVersion(&out->runtime_version);
    return SW_OK;
}
