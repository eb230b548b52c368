/* devices.c — list the devices each compiled-in backend can see. */
#include "devices.h"

#include <stdlib.h>
#include <unistd.h>

#ifdef SW_HAVE_CUDA
#include "cuda_device.h"
#endif
#ifdef SW_HAVE_VULKAN
#include "vk_device.h"
#endif

static void print_cpu(FILE *f) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    fprintf(f, "cpu:\n  0: %ld threads", n);
#if defined(__x86_64__)
    __builtin_cpu_init();
    fprintf(f, ", avx2 %s, fma %s, avx512f %s", __builtin_cpu_supports("avx2") ? "yes" : "no",
            __builtin_cpu_supports("fma") ? "yes" : "no",
            __builtin_cpu_supports("avx512f") ? "yes" : "no");
#endif
    fputc('\n', f);
}

static int print_cuda(FILE *f) {
#ifdef SW_HAVE_CUDA
    sw_err err = {{0}};
    int n = 0;
    fprintf(f, "cuda:\n");
    if (sw_cuda_device_count(&n, &err) != SW_OK) {
        fprintf(f, "  none (%s)\n", err.msg);
        return 0;
    }
    for (int i = 0; i < n; i++) {
        sw_cuda_device_info d;
        if (sw_cuda_device_info_get(i, &d, &err) != SW_OK) {
            fprintf(f, "  %d: error: %s\n", i, err.msg);
            continue;
        }
        fprintf(f, "  %d: %s, sm_%d%d, %.1f GiB, %d SMs, driver %d, runtime %d\n", i, d.name,
                d.cc_major, d.cc_minor, (double)d.total_mem / (1 << 30), d.sm_count,
                d.driver_version, d.runtime_version);
    }
    return n;
#else
    fprintf(f, "cuda:\n  not built (configure with -DSW_CUDA=ON where nvcc is installed)\n");
    return 0;
#endif
}

static int print_vulkan(FILE *f) {
#ifdef SW_HAVE_VULKAN
    sw_err err = {{0}};
    sw_vk_device_info *devs = NULL;
    int n = 0;
    fprintf(f, "vulkan:\n");
    if (sw_vk_list_devices(&devs, &n, &err) != SW_OK) {
        fprintf(f, "  none (%s)\n", err.msg);
        return 0;
    }
    int pref = sw_vk_preferred_device(devs, n);
    for (int i = 0; i < n; i++) {
        const sw_vk_device_info *d = &devs[i];
        fprintf(f,
                "  %d: %s (%s), Vulkan %u.%u, %.1f GiB device-local, subgroup %u%s%s%s%s%s\n", i,
                d->name, sw_vk_kind_name(d->kind), (d->api_version >> 22) & 0x7f,
                (d->api_version >> 12) & 0x3ff, (double)d->device_local_bytes / (1 << 30),
                d->subgroup_size, d->subgroup_arithmetic ? ", subgroup-arith" : "",
                d->shader_float16 ? ", fp16" : "", d->storage_8bit ? ", int8-storage" : "",
                d->cooperative_matrix ? ", coopmat" : "", i == pref ? "  [preferred]" : "");
    }
    int gpus = 0;
    for (int i = 0; i < n; i++) gpus += devs[i].kind != SW_VK_CPU;
    free(devs);
    return gpus;
#else
    fprintf(f, "vulkan:\n  not built (configure with -DSW_VULKAN=ON; needs libvulkan-dev and glslc)\n");
    return 0;
#endif
}

int sw_devices_print(FILE *f) {
    print_cpu(f);
    int n = print_cuda(f);
    n += print_vulkan(f);
    return n;
}
