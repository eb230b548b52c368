/* vk_backend.h — the Vulkan implementation of the backend interface
 * (runtime/backend.h): compute shaders for every op, recorded into one command
 * buffer per step (sw_be_begin .. sw_be_end) and submitted at the end. Runs on
 * any Vulkan 1.2 device, Mesa's lavapipe (CPU) included.
 *
 * Matmul has two paths. Where the device has 16-bit and 8-bit storage-buffer
 * access and shaderFloat16 (NVIDIA, AMD, Intel, lavapipe), the "fast" shaders
 * read weight fields with 16/8-bit loads, give several rows to a decode
 * workgroup, and tile prefill with 64x64 outputs and an f16 weight tile
 * (matvec_fast*, matmul_fast*). Elsewhere the plain shaders read 32-bit
 * words only (matvec*, matmul). On top of the fast path, prefill runs on
 * NVIDIA tensor cores (matmul_coop, VK_NV_cooperative_matrix) where the device
 * has them and the shader agreed with matmul_fast in a check at create. The
 * INFO line at create says which paths are on.
 *
 * Environment:
 *   SW_VK_PROFILE=1        timestamp every dispatch, print per-op times at end()
 *   SW_VK_FORCE_STAGING=1  move data through the staging buffer even when the
 *                          device memory is host-visible (tests use it).
 *   SW_VK_NO_SUBGROUP=1    reduce in shared memory even where the device has
 *                          subgroup arithmetic (tests cover both paths).
 *   SW_VK_PLAIN=1          enable no 16/8-bit feature and use the plain shaders
 *                          even where the fast ones could run (tests cover both).
 *   SW_VK_NO_COOP=1        do not use cooperative matrices (compare with them). */
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

/* Whether be (borrowed; a Vulkan backend, else false) runs the fast matmul
 * shaders. Tests use it to prove that the fast path is what they test. */
bool sw_vk_backend_fast_path(sw_backend *be);
/* Dispatches of the shader `name` (its file name without .comp, e.g.
 * "matvec_fast_sg") recorded by be since it was created; 0 for an unknown
 * name or a backend other than Vulkan. For tests. */
uint64_t sw_vk_backend_shader_dispatches(sw_backend *be, const char *name);
/* Whether prefill runs on cooperative matrices (enabled and checked). */
bool sw_vk_backend_coop_matrix(sw_backend *be);
/* The check behind cooperative matrices, on any two matmul shaders (named as
 * above): one random Q4_0 matmul (K 256, N 96, T 80) through each, *nerr =
 * ||a - b|| / ||b||, +inf when a result is not finite. For tests. */
sw_status sw_vk_backend_compare_shaders(sw_backend *be, const char *a, const char *b,
                                        double *nerr, sw_err *err);

/* What be (a Vulkan backend) runs on (borrowed; lives as long as be). */
const struct sw_vk_device_info *sw_vk_backend_device(sw_backend *be);
/* Record a device-side copy of n bytes from src+src_off to dst+dst_off into
 * the current step (run at once outside a step), ordered after the ops
 * recorded before it and before those after it. spillway-bench's copy
 * bandwidth probe. */
sw_status sw_vk_backend_copy(sw_backend *be, sw_buffer *src, size_t src_off, sw_buffer *dst,
                             size_t dst_off, size_t n, sw_err *err);

#ifdef __cplusplus
}
#endif
#endif
