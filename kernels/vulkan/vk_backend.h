/* vk_backend.h — the Vulkan implementation of the backend interface
 * (runtime/backend.h): compute shaders for every op, recorded into one command
 * buffer per step (sw_be_begin .. sw_be_end) and submitted at the end. Runs on
 * any Vulkan 1.2 device, Mesa's lavapipe (CPU) included.
 *
 * Environment:
 *   SW_VK_PROFILE=1        timestamp every dispatch, print per-op times at end()
 *   SW_VK_FORCE_STAGING=1  move data through the staging buffer even when the
 *                          device memory is host-visible (tests use it).
 *   SW_VK_NO_SUBGROUP=1    reduce in shared memory even where the device has
 *                          subgroup arithmetic (tests cover both paths). */
#ifndef SW_VK_BACKEND_H
#define SW_VK_BACKEND_H

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* device < 0: the preferred device (first discrete GPU, else integrated, else
 * any); otherwise the index in sw_vk_list_devices order. *out is returned
 * (free with sw_backend_free). No driver or no device: SW_E_NOT_FOUND. */
sw_status sw_backend_vulkan_create(int32_t device, sw_backend **out, sw_err *err);

#ifdef __cplusplus
}
#endif
#endif
