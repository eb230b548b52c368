/* cuda_device.h — CUDA device discovery. Returns clear statuses when there is no
 * driver, no device, or a driver older than the runtime; never aborts. */
#ifndef SW_CUDA_DEVICE_H
#define SW_CUDA_DEVICE_H

#include "sw_base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sw_cuda_device_info {
    char name[256];
    int cc_major, cc_minor;     /* compute capability */
    uint64_t total_mem;         /* bytes */
    int sm_count;
    int mem_bus_width_bits;
    int driver_version, runtime_version; /* e.g. 13000 */
    int mem_clock_khz;          /* peak memory clock (0 if unknown) */
    int l2_bytes;               /* L2 cache size */
    double peak_gbps;           /* nominal DRAM bandwidth: 2 * clock * bus width (0 if unknown) */
} sw_cuda_device_info;

/* Number of usable CUDA devices. No driver / no device -> SW_E_NOT_FOUND or
 * SW_E_BACKEND with the CUDA error text; *n is 0 then. */
sw_status sw_cuda_device_count(int *n, sw_err *err);
sw_status sw_cuda_device_info_get(int index, sw_cuda_device_info *out, sw_err *err);

#ifdef __cplusplus
}
#endif
#endif
