/* vk_device.h — Vulkan instance creation and physical-device discovery: what
 * each device offers that our shaders care about (subgroups, 16-bit floats,
 * 8-bit storage, cooperative matrices). No loader / no device -> a status with
 * a message, never a crash. */
#ifndef SW_VK_DEVICE_H
#define SW_VK_DEVICE_H

#include "sw_base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sw_vk_device_kind {
    SW_VK_OTHER = 0,
    SW_VK_INTEGRATED,
    SW_VK_DISCRETE,
    SW_VK_VIRTUAL,
    SW_VK_CPU
} sw_vk_device_kind;

typedef struct sw_vk_device_info {
    char name[256];
    char driver[520];            /* driver name and version text, e.g. "llvmpipe Mesa 22.3.6" */
    sw_vk_device_kind kind;
    uint32_t vendor_id, device_id;
    uint32_t api_version;        /* VK_MAKE_API_VERSION packed */
    uint64_t device_local_bytes; /* largest device-local heap */
    uint32_t subgroup_size;
    bool subgroup_arithmetic;    /* subgroupAdd etc. in compute */
    bool shader_float16;         /* shaderFloat16 */
    bool shader_int8;            /* shaderInt8 */
    bool shader_int16;           /* shaderInt16 (core features) */
    bool storage_16bit;          /* storageBuffer16BitAccess */
    bool storage_8bit;           /* storageBuffer8BitAccess */
    bool cooperative_matrix;     /* VK_KHR_cooperative_matrix present */
    bool vulkan_memory_model;    /* vulkanMemoryModel (cooperative-matrix shaders need it) */
    /* VK_NV_cooperative_matrix with its cooperativeMatrix feature and a
     * 16x16x16 f16 x f16 + f32 -> f32 subgroup-scope shape (matmul_coop) */
    bool coop_nv_f16_16x16x16;
} sw_vk_device_info;

const char *sw_vk_kind_name(sw_vk_device_kind k);

/* Enumerate devices. *out is returned (free with free()); *n may be 0 only with
 * an error status. */
sw_status sw_vk_list_devices(sw_vk_device_info **out, int *n, sw_err *err);
/* Index of the preferred device: the first discrete GPU, else integrated, else
 * any (lavapipe). */
int sw_vk_preferred_device(const sw_vk_device_info *devs, int n);
/* Whether d has what the fast shaders need (16-bit and 8-bit storage and
 * shaderFloat16); and the same for the preferred device (false when there is
 * none). A backend on such a device uses them unless SW_VK_PLAIN=1. */
bool sw_vk_device_fast(const sw_vk_device_info *d);
bool sw_vk_preferred_device_fast(void);

#ifdef __cplusplus
}
#endif
#endif
