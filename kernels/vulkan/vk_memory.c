/* vk_memory.c — Vulkan buffers and host<->device transfers.
 *
 * Every sw_buffer is one VkBuffer with its own VkDeviceMemory (a model has a
 * few dozen buffers, far below maxMemoryAllocationCount). Weights, KV cache and
 * activations prefer device-local memory; SW_BUF_HOST_VISIBLE buffers take
 * host-visible + coherent memory. When a buffer's memory is host-visible and
 * coherent (lavapipe, integrated GPUs, ReBAR) it stays mapped and transfers are
 * a memcpy; otherwise they go through a persistent staging buffer in chunks,
 * each chunk a vkCmdCopyBuffer submitted and waited on (SW_VK_FORCE_STAGING=1
 * forces this path everywhere, so it is tested on lavapipe too).
 *
 * Transfers are immediate. A transfer in the middle of a step first submits
 * and waits for the ops recorded so far, so that it is ordered after them, as
 * on the CPU backend. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk_internal.h"

#define STAGING_BYTES ((size_t)16 << 20)

int sw_vk_find_memory(const sw_vk_backend *vk, uint32_t type_bits, VkMemoryPropertyFlags want) {
    for (uint32_t i = 0; i < vk->memp.memoryTypeCount; i++)
        if ((type_bits & (1u << i)) && (vk->memp.memoryTypes[i].propertyFlags & want) == want)
            return (int)i;
    return -1;
}

/* Create buf + memory of the first acceptable type in `prefs` (n of them). */
static sw_status make_buffer(sw_vk_backend *vk, size_t size, const VkMemoryPropertyFlags *prefs,
                             int n_prefs, VkBuffer *buf, VkDeviceMemory *mem, void **map,
                             const char *what, sw_err *err) {
    *buf = VK_NULL_HANDLE;
    *mem = VK_NULL_HANDLE;
    *map = NULL;
    VkBufferCreateInfo bci = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                              .size = size,
                              .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT |
                                       VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                       VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                              .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VK_CHECK(vkCreateBuffer(vk->dev, &bci, NULL, buf), err, what);
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(vk->dev, *buf, &req);
    VkResult r = VK_ERROR_OUT_OF_DEVICE_MEMORY;
    for (int p = 0; p < n_prefs; p++) {
        int type = sw_vk_find_memory(vk, req.memoryTypeBits, prefs[p]);
        if (type < 0) continue;
        VkMemoryAllocateInfo mai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                                    .allocationSize = req.size,
                                    .memoryTypeIndex = (uint32_t)type};
        r = vkAllocateMemory(vk->dev, &mai, NULL, mem);
        if (r != VK_SUCCESS) {
            *mem = VK_NULL_HANDLE;
            continue; /* e.g. a small ReBAR heap is full: try the next preference */
        }
        VkMemoryPropertyFlags f = vk->memp.memoryTypes[type].propertyFlags;
        const VkMemoryPropertyFlags hv =
            VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
        if ((f & hv) == hv) {
            r = vkMapMemory(vk->dev, *mem, 0, VK_WHOLE_SIZE, 0, map);
            if (r != VK_SUCCESS) *map = NULL; /* fall back to staging */
        }
        r = vkBindBufferMemory(vk->dev, *buf, *mem, 0);
        if (r != VK_SUCCESS) break;
        vk->allocated += req.size;
        return SW_OK;
    }
    if (*mem) vkFreeMemory(vk->dev, *mem, NULL);
    vkDestroyBuffer(vk->dev, *buf, NULL);
    *buf = VK_NULL_HANDLE;
    *mem = VK_NULL_HANDLE;
    *map = NULL;
    return sw_vk_fail(err, r, "vkAllocateMemory/vkBindBufferMemory", what);
}

sw_status sw_vk_buf_alloc(sw_backend *be, size_t size, sw_buf_usage usage, sw_buffer **out,
                          sw_err *err) {
    sw_vk_backend *vk = sw_vk(be);
    *out = NULL;
    sw_buffer *b = calloc(1, sizeof *b);
    if (!b) return sw_err_set(err, SW_E_NOMEM, "vulkan: buf_alloc: out of host memory");
    b->size = size;
    /* whole 16-byte words so shaders may read the last word of any tensor */
    b->alloc_size = (SW_MAX(size, (size_t)16) + 15) / 16 * 16;
    b->usage = usage;
    const VkMemoryPropertyFlags dl = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
    const VkMemoryPropertyFlags hv =
        VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    VkMemoryPropertyFlags prefs[3];
    int n = 0;
    if (usage == SW_BUF_HOST_VISIBLE) {
        prefs[n++] = hv | dl;
        prefs[n++] = hv;
    } else {
        prefs[n++] = dl;
        prefs[n++] = 0;
    }
    char what[96];
    snprintf(what, sizeof what, "allocating a buffer of %zu bytes", size);
    sw_status st = make_buffer(vk, b->alloc_size, prefs, n, &b->buf, &b->mem, &b->map, what, err);
    if (st != SW_OK) {
        free(b);
        return st;
    }
    *out = b;
    return SW_OK;
}

void sw_vk_buf_free(sw_backend *be, sw_buffer *b) {
    sw_vk_backend *vk = sw_vk(be);
    if (!b) return;
    /* a recorded dispatch may still reference it: run what is recorded first
     * (best effort; a failure here was or will be reported by the step) */
    if (vk->recording && vk->n_dispatch > 0) sw_vk_flush(vk, true, NULL);
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(vk->dev, b->buf, &req);
    vk->allocated -= SW_MIN(vk->allocated, (uint64_t)req.size);
    if (b->map) vkUnmapMemory(vk->dev, b->mem);
    vkDestroyBuffer(vk->dev, b->buf, NULL);
    vkFreeMemory(vk->dev, b->mem, NULL);
    free(b);
}

sw_status sw_vk_staging_init(sw_vk_backend *vk, sw_err *err) {
    const VkMemoryPropertyFlags prefs[2] = {
        VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT |
            VK_MEMORY_PROPERTY_HOST_CACHED_BIT,
        VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT};
    sw_status st = make_buffer(vk, STAGING_BYTES, prefs, 2, &vk->staging, &vk->staging_mem,
                               &vk->staging_map, "staging buffer", err);
    if (st != SW_OK) return st;
    if (!vk->staging_map)
        return sw_err_set(err, SW_E_BACKEND, "vulkan: staging buffer: vkMapMemory failed");
    vk->staging_size = STAGING_BYTES;
    return SW_OK;
}

void sw_vk_staging_free(sw_vk_backend *vk) {
    if (vk->staging_map) vkUnmapMemory(vk->dev, vk->staging_mem);
    if (vk->staging) vkDestroyBuffer(vk->dev, vk->staging, NULL);
    if (vk->staging_mem) vkFreeMemory(vk->dev, vk->staging_mem, NULL);
    vk->staging = VK_NULL_HANDLE;
    vk->staging_mem = VK_NULL_HANDLE;
    vk->staging_map = NULL;
}

/* One buffer-to-buffer copy on the transfer command buffer, submitted and
 * waited on. */
static sw_status copy_now(sw_vk_backend *vk, VkBuffer src, VkDeviceSize src_off, VkBuffer dst,
                          VkDeviceSize dst_off, VkDeviceSize n, const char *what, sw_err *err) {
    VK_CHECK(vkResetCommandBuffer(vk->xfer_cmd, 0), err, what);
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    VK_CHECK(vkBeginCommandBuffer(vk->xfer_cmd, &bi), err, what);
    VkBufferCopy region = {.srcOffset = src_off, .dstOffset = dst_off, .size = n};
    vkCmdCopyBuffer(vk->xfer_cmd, src, dst, 1, &region);
    VK_CHECK(vkEndCommandBuffer(vk->xfer_cmd), err, what);
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
                       .commandBufferCount = 1,
                       .pCommandBuffers = &vk->xfer_cmd};
    VK_CHECK(vkResetFences(vk->dev, 1, &vk->fence), err, what);
    VK_CHECK(vkQueueSubmit(vk->queue, 1, &si, vk->fence), err, what);
    VK_CHECK(vkWaitForFences(vk->dev, 1, &vk->fence, VK_TRUE, UINT64_MAX), err, what);
    return SW_OK;
}

static sw_status check_range(const char *op, const sw_buffer *b, size_t offset, size_t n,
                             sw_err *err) {
    if (offset > b->size || n > b->size - offset)
        return sw_err_set(err, SW_E_RANGE,
                          "vulkan: %s: bytes [%zu, %zu + %zu) outside a buffer of %zu bytes", op,
                          offset, offset, n, b->size);
    return SW_OK;
}

/* Make a transfer ordered after the ops recorded so far. */
static sw_status settle(sw_vk_backend *vk, sw_err *err) {
    if (vk->recording && vk->n_dispatch > 0) return sw_vk_flush(vk, true, err);
    return SW_OK;
}

sw_status sw_vk_upload(sw_backend *be, sw_buffer *dst, size_t offset, const void *src, size_t n,
                       sw_err *err) {
    sw_vk_backend *vk = sw_vk(be);
    sw_status st = check_range("upload", dst, offset, n, err);
    if (st == SW_OK) st = settle(vk, err);
    if (st != SW_OK || n == 0) return st;
    if (dst->map && !vk->force_staging) {
        memcpy((uint8_t *)dst->map + offset, src, n);
        return SW_OK;
    }
    for (size_t done = 0; done < n;) {
        size_t chunk = SW_MIN(n - done, vk->staging_size);
        memcpy(vk->staging_map, (const uint8_t *)src + done, chunk);
        st = copy_now(vk, vk->staging, 0, dst->buf, offset + done, chunk, "upload", err);
        if (st != SW_OK) return st;
        done += chunk;
    }
    return SW_OK;
}

sw_status sw_vk_download(sw_backend *be, sw_buffer *src, size_t offset, void *dst, size_t n,
                         sw_err *err) {
    sw_vk_backend *vk = sw_vk(be);
    sw_status st = check_range("download", src, offset, n, err);
    if (st == SW_OK) st = settle(vk, err);
    if (st != SW_OK || n == 0) return st;
    if (src->map && !vk->force_staging) {
        memcpy(dst, (const uint8_t *)src->map + offset, n);
        return SW_OK;
    }
    for (size_t done = 0; done < n;) {
        size_t chunk = SW_MIN(n - done, vk->staging_size);
        st = copy_now(vk, src->buf, offset + done, vk->staging, 0, chunk, "download", err);
        if (st != SW_OK) return st;
        memcpy((uint8_t *)dst + done, vk->staging_map, chunk);
        done += chunk;
    }
    return SW_OK;
}

const struct sw_vk_device_info *sw_vk_backend_device(sw_backend *be) {
    return &sw_vk(be)->info;
}

sw_status sw_vk_backend_copy(sw_backend *be, sw_buffer *src, size_t src_off, sw_buffer *dst,
                             size_t dst_off, size_t n, sw_err *err) {
    sw_vk_backend *vk = sw_vk(be);
    sw_status st = check_range("copy", src, src_off, n, err);
    if (st == SW_OK) st = check_range("copy", dst, dst_off, n, err);
    if (st != SW_OK || n == 0) return st;
    bool implicit = !vk->recording;
    if (implicit && (st = sw_vk_record_start(vk, err)) != SW_OK) return st;
    /* ordered after and before everything else in the step, as dispatches are */
    const VkAccessFlags all = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                              VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
    const VkPipelineStageFlags stages =
        VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = all,
                          .dstAccessMask = all};
    vkCmdPipelineBarrier(vk->cmd, stages, VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &mb, 0, NULL, 0,
                         NULL);
    VkBufferCopy region = {.srcOffset = src_off, .dstOffset = dst_off, .size = n};
    vkCmdCopyBuffer(vk->cmd, src->buf, dst->buf, 1, &region);
    vkCmdPipelineBarrier(vk->cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, stages, 0, 1, &mb, 0, NULL, 0,
                         NULL);
    vk->n_dispatch++; /* makes a later upload or download settle this step first */
    return implicit ? sw_vk_flush(vk, false, err) : SW_OK;
}

sw_status sw_vk_mem_info(sw_backend *be, size_t *free_b, size_t *total_b, sw_err *err) {
    sw_vk_backend *vk = sw_vk(be);
    (void)err;
    uint64_t total = 0, free_sum = 0;
    if (vk->has_budget) {
        VkPhysicalDeviceMemoryBudgetPropertiesEXT bud = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT};
        VkPhysicalDeviceMemoryProperties2 mp = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2, .pNext = &bud};
        vkGetPhysicalDeviceMemoryProperties2(vk->pd, &mp);
        for (uint32_t i = 0; i < mp.memoryProperties.memoryHeapCount; i++) {
            if (!(mp.memoryProperties.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT))
                continue;
            total += mp.memoryProperties.memoryHeaps[i].size;
            if (bud.heapBudget[i] > bud.heapUsage[i])
                free_sum += bud.heapBudget[i] - bud.heapUsage[i];
        }
    } else {
        /* no budget extension: heap sizes minus what this backend holds */
        for (uint32_t i = 0; i < vk->memp.memoryHeapCount; i++)
            if (vk->memp.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
                total += vk->memp.memoryHeaps[i].size;
        free_sum = total > vk->allocated ? total - vk->allocated : 0;
    }
    *free_b = (size_t)free_sum;
    *total_b = (size_t)total;
    return SW_OK;
}
