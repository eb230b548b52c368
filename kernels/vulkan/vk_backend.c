/* vk_backend.c — the Vulkan backend object: instance, device and queue
 * selection, the step model (one command buffer recorded between begin and end,
 * submitted and waited on a fence), per-dispatch timestamps behind
 * SW_VK_PROFILE=1, and the ops table. Buffers live in vk_memory.c, pipelines and
 * dispatch in vk_pipeline.c, the ops in vk_ops.c. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk_internal.h"

/* ------------------------------------------------------------- errors -- */

const char *sw_vk_result_str(VkResult r) {
    switch (r) {
    case VK_SUCCESS: return "VK_SUCCESS";
    case VK_NOT_READY: return "VK_NOT_READY";
    case VK_TIMEOUT: return "VK_TIMEOUT";
    case VK_INCOMPLETE: return "VK_INCOMPLETE";
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
    case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
    case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
    case VK_ERROR_FORMAT_NOT_SUPPORTED: return "VK_ERROR_FORMAT_NOT_SUPPORTED";
    case VK_ERROR_FRAGMENTED_POOL: return "VK_ERROR_FRAGMENTED_POOL";
    case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY";
    case VK_ERROR_INVALID_SHADER_NV: return "VK_ERROR_INVALID_SHADER_NV";
    default: return "VkResult (unnamed)";
    }
}

sw_status sw_vk_fail(sw_err *err, VkResult r, const char *call, const char *what) {
    sw_status st = SW_E_BACKEND;
    if (r == VK_ERROR_OUT_OF_HOST_MEMORY || r == VK_ERROR_OUT_OF_DEVICE_MEMORY ||
        r == VK_ERROR_OUT_OF_POOL_MEMORY || r == VK_ERROR_FRAGMENTED_POOL)
        st = SW_E_NOMEM;
    return sw_err_set(err, st, "vulkan: %s: %s failed: %s (%d)", what, call, sw_vk_result_str(r),
                      (int)r);
}

/* -------------------------------------------------------------- steps -- */

sw_status sw_vk_record_start(sw_vk_backend *vk, sw_err *err) {
    if (vk->recording) return SW_OK;
    VK_CHECK(vkResetCommandBuffer(vk->cmd, 0), err, "starting a step");
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    VK_CHECK(vkBeginCommandBuffer(vk->cmd, &bi), err, "starting a step");
    vk->recording = true;
    vk->n_dispatch = 0;
    vk->n_queries = 0;
    vk->n_prof = 0;
    if (vk->profile) vkCmdResetQueryPool(vk->cmd, vk->qpool, 0, vk->max_queries);
    return SW_OK;
}

/* Print this submission's per-op GPU times, summed by op name. */
static void prof_report(sw_vk_backend *vk) {
    if (!vk->profile || vk->n_prof == 0) return;
    uint64_t *ts = calloc(vk->n_queries, sizeof *ts);
    if (!ts) return;
    VkResult r = vkGetQueryPoolResults(vk->dev, vk->qpool, 0, vk->n_queries,
                                       vk->n_queries * sizeof *ts, ts, sizeof *ts,
                                       VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
    if (r != VK_SUCCESS) {
        sw_log(SW_LOG_WARN, "vulkan profile: vkGetQueryPoolResults failed: %s",
               sw_vk_result_str(r));
        free(ts);
        return;
    }
    double period_ns = (double)vk->props.limits.timestampPeriod, total = 0.0;
    fprintf(stderr, "vulkan profile: %zu dispatches\n", vk->n_prof);
    /* sum by op name (few distinct names: quadratic is fine) */
    for (size_t i = 0; i < vk->n_prof; i++) {
        const char *op = vk->prof[i].op;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++) seen = !strcmp(vk->prof[j].op, op);
        if (seen) continue;
        double us = 0.0;
        int n = 0;
        for (size_t j = i; j < vk->n_prof; j++) {
            if (strcmp(vk->prof[j].op, op)) continue;
            uint32_t q = vk->prof[j].query;
            us += (double)(ts[q + 1] - ts[q]) * period_ns * 1e-3;
            n++;
        }
        total += us;
        fprintf(stderr, "  %-12s %5d x  %10.1f us\n", op, n, us);
    }
    fprintf(stderr, "  %-12s          %10.1f us\n", "total", total);
    free(ts);
}

sw_status sw_vk_flush(sw_vk_backend *vk, bool keep_recording, sw_err *err) {
    if (!vk->recording) return keep_recording ? sw_vk_record_start(vk, err) : SW_OK;
    vk->recording = false;
    VK_CHECK(vkEndCommandBuffer(vk->cmd), err, "ending a step");
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
                       .commandBufferCount = 1,
                       .pCommandBuffers = &vk->cmd};
    VK_CHECK(vkResetFences(vk->dev, 1, &vk->fence), err, "submitting a step");
    VK_CHECK(vkQueueSubmit(vk->queue, 1, &si, vk->fence), err, "submitting a step");
    VK_CHECK(vkWaitForFences(vk->dev, 1, &vk->fence, VK_TRUE, UINT64_MAX), err,
             "waiting for a step");
    prof_report(vk);
    sw_status st = sw_vk_descriptors_reset(vk, err);
    if (st != SW_OK) return st;
    return keep_recording ? sw_vk_record_start(vk, err) : SW_OK;
}

static sw_status vk_begin(sw_backend *be, sw_err *err) {
    sw_vk_backend *vk = sw_vk(be);
    if (vk->in_step)
        return sw_err_set(err, SW_E_INVALID_ARG, "vulkan: begin: a step is already open");
    sw_status st = sw_vk_record_start(vk, err);
    if (st == SW_OK) vk->in_step = true;
    return st;
}

static sw_status vk_end(sw_backend *be, sw_err *err) {
    sw_vk_backend *vk = sw_vk(be);
    if (!vk->in_step) return sw_err_set(err, SW_E_INVALID_ARG, "vulkan: end without begin");
    vk->in_step = false;
    return sw_vk_flush(vk, false, err);
}

/* ---------------------------------------------------------- profiling -- */

void sw_vk_prof_begin(sw_vk_backend *vk, const char *op) {
    if (!vk->profile || vk->n_queries + 2 > vk->max_queries) return;
    vk->prof[vk->n_prof].op = op;
    vk->prof[vk->n_prof].query = vk->n_queries;
    vkCmdWriteTimestamp(vk->cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, vk->qpool, vk->n_queries);
}

void sw_vk_prof_end(sw_vk_backend *vk) {
    if (!vk->profile || vk->n_queries + 2 > vk->max_queries) return;
    vkCmdWriteTimestamp(vk->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, vk->qpool,
                        vk->n_queries + 1);
    vk->n_queries += 2;
    vk->n_prof++;
}

static bool env_on(const char *name) {
    const char *v = getenv(name);
    return v && v[0] && strcmp(v, "0") != 0;
}

/* ------------------------------------------------------------ create -- */

static void vk_free(sw_backend *be) {
    sw_vk_backend *vk = sw_vk(be);
    if (!vk) return;
    if (vk->dev) {
        vkDeviceWaitIdle(vk->dev); /* best effort: we are tearing down either way */
        sw_vk_pipelines_free(vk);
        sw_vk_staging_free(vk);
        if (vk->qpool) vkDestroyQueryPool(vk->dev, vk->qpool, NULL);
        if (vk->fence) vkDestroyFence(vk->dev, vk->fence, NULL);
        if (vk->cmd_pool) vkDestroyCommandPool(vk->dev, vk->cmd_pool, NULL);
        vkDestroyDevice(vk->dev, NULL);
    }
    if (vk->inst) vkDestroyInstance(vk->inst, NULL);
    free(vk->prof);
    free(vk);
}

static sw_status create_instance(sw_vk_backend *vk, sw_err *err) {
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                             .pApplicationName = "spillway",
                             .apiVersion = VK_API_VERSION_1_2};
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                               .pApplicationInfo = &app};
    VkResult r = vkCreateInstance(&ci, NULL, &vk->inst);
    if (r == VK_ERROR_INCOMPATIBLE_DRIVER) {
        vk->inst = VK_NULL_HANDLE;
        return sw_err_set(err, SW_E_NOT_FOUND, "vulkan: no Vulkan 1.2 driver");
    }
    if (r != VK_SUCCESS) {
        vk->inst = VK_NULL_HANDLE;
        return sw_vk_fail(err, r, "vkCreateInstance", "creating the instance");
    }
    return SW_OK;
}

/* Pick the physical device: index `device` in enumeration order (the order
 * sw_vk_list_devices reports), or the preferred one when device < 0. */
static sw_status pick_device(sw_vk_backend *vk, int32_t device, sw_err *err) {
    sw_vk_device_info *infos = NULL;
    int n_info = 0;
    sw_status st = sw_vk_list_devices(&infos, &n_info, err);
    if (st != SW_OK) return st;
    int idx = device < 0 ? sw_vk_preferred_device(infos, n_info) : device;
    if (idx < 0 || idx >= n_info) {
        free(infos);
        return sw_err_set(err, SW_E_NOT_FOUND, "vulkan: device %d does not exist (%d found)",
                          (int)device, n_info);
    }
    vk->info = infos[idx];
    free(infos);

    uint32_t n = 0;
    VK_CHECK(vkEnumeratePhysicalDevices(vk->inst, &n, NULL), err, "listing devices");
    if ((uint32_t)idx >= n)
        return sw_err_set(err, SW_E_NOT_FOUND, "vulkan: device %d vanished (%u now)", idx, n);
    VkPhysicalDevice *pds = calloc(n, sizeof *pds);
    if (!pds) return sw_err_set(err, SW_E_NOMEM, "vulkan: out of memory listing devices");
    VkResult r = vkEnumeratePhysicalDevices(vk->inst, &n, pds);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
        free(pds);
        return sw_vk_fail(err, r, "vkEnumeratePhysicalDevices", "listing devices");
    }
    vk->pd = pds[idx];
    free(pds);
    vkGetPhysicalDeviceProperties(vk->pd, &vk->props);
    vkGetPhysicalDeviceMemoryProperties(vk->pd, &vk->memp);
    /* the shaders are SPIR-V 1.5 (glslc --target-env=vulkan1.2) */
    if (vk->props.apiVersion < VK_API_VERSION_1_2)
        return sw_err_set(err, SW_E_UNSUPPORTED, "vulkan: device '%s' supports Vulkan %u.%u, need 1.2",
                          vk->info.name, VK_API_VERSION_MAJOR(vk->props.apiVersion),
                          VK_API_VERSION_MINOR(vk->props.apiVersion));
    vk->align = SW_MAX((size_t)vk->props.limits.minStorageBufferOffsetAlignment, (size_t)4);
    vk->max_range = vk->props.limits.maxStorageBufferRange;
    /* SW_VK_MAX_BINDING=BYTES lowers the binding limit, so that tests can run
     * the split paths (vk_ops.c) on small tensors */
    const char *cap = getenv("SW_VK_MAX_BINDING");
    if (cap && *cap) {
        char *end = NULL;
        unsigned long long v = strtoull(cap, &end, 10);
        if (end && !*end && v >= 4096 && v < vk->max_range) vk->max_range = (size_t)v;
    }
    return SW_OK;
}

static bool device_has_ext(VkPhysicalDevice pd, const char *name) {
    uint32_t n = 0;
    if (vkEnumerateDeviceExtensionProperties(pd, NULL, &n, NULL) != VK_SUCCESS || !n) return false;
    VkExtensionProperties *e = calloc(n, sizeof *e);
    if (!e) return false;
    bool found = false;
    if (vkEnumerateDeviceExtensionProperties(pd, NULL, &n, e) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++) found = !strcmp(e[i].extensionName, name);
    free(e);
    return found;
}

/* What create_device enables: a feature chain f2 -> f11 -> f12 [-> fcm]. */
typedef struct device_features {
    VkPhysicalDeviceFeatures2 f2;
    VkPhysicalDeviceVulkan11Features f11;
    VkPhysicalDeviceVulkan12Features f12;
    VkPhysicalDeviceCooperativeMatrixFeaturesNV fcm;
    const char *exts[2];
    uint32_t n_ext;
} device_features;

/* The extensions and features to enable, from what info reports (SW_VK_PLAIN
 * cleared the 16/8-bit ones): everything the fast shaders use where present,
 * and cooperative matrices (matmul_coop.comp) on top of the fast path where
 * the device has the 16x16x16 shape, the memory model its SPIR-V declares,
 * and the 32-wide subgroups its 4-subgroup workgroup assumes. Sets
 * has_budget and coop_enabled. */
static void choose_features(sw_vk_backend *vk, device_features *f) {
    const sw_vk_device_info *di = &vk->info;
    memset(f, 0, sizeof *f);
    if (device_has_ext(vk->pd, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME)) {
        f->exts[f->n_ext++] = VK_EXT_MEMORY_BUDGET_EXTENSION_NAME;
        vk->has_budget = true;
    }
    vk->coop_enabled = di->coop_nv_f16_16x16x16 && di->vulkan_memory_model &&
                       di->subgroup_size == 32 && di->storage_16bit && di->storage_8bit &&
                       di->shader_float16 && !env_on("SW_VK_NO_COOP");
    f->fcm.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV;
    f->fcm.cooperativeMatrix = VK_TRUE;
    if (vk->coop_enabled) f->exts[f->n_ext++] = VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME;
    f->f12.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES;
    f->f12.pNext = vk->coop_enabled ? &f->fcm : NULL;
    f->f12.storageBuffer8BitAccess = di->storage_8bit;
    f->f12.shaderFloat16 = di->shader_float16;
    f->f12.shaderInt8 = di->shader_int8;
    f->f12.vulkanMemoryModel = vk->coop_enabled;
    f->f11.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES;
    f->f11.pNext = &f->f12;
    f->f11.storageBuffer16BitAccess = di->storage_16bit;
    f->f2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2;
    f->f2.pNext = &f->f11;
    f->f2.features.shaderInt16 = di->shader_int16;
}

static sw_status create_device(sw_vk_backend *vk, sw_err *err) {
    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(vk->pd, &nq, NULL);
    VkQueueFamilyProperties *qf = calloc(nq ? nq : 1, sizeof *qf);
    if (!qf) return sw_err_set(err, SW_E_NOMEM, "vulkan: out of memory listing queues");
    vkGetPhysicalDeviceQueueFamilyProperties(vk->pd, &nq, qf);
    int fam = -1;
    for (uint32_t i = 0; i < nq && fam < 0; i++)
        if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) fam = (int)i;
    uint32_t ts_bits = fam >= 0 ? qf[fam].timestampValidBits : 0;
    free(qf);
    if (fam < 0)
        return sw_err_set(err, SW_E_UNSUPPORTED, "vulkan: device '%s' has no compute queue",
                          vk->info.name);
    vk->qfam = (uint32_t)fam;

    float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                   .queueFamilyIndex = vk->qfam,
                                   .queueCount = 1,
                                   .pQueuePriorities = &prio};
    device_features f;
    choose_features(vk, &f);
    VkDeviceCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                              .pNext = &f.f2,
                              .queueCreateInfoCount = 1,
                              .pQueueCreateInfos = &qci,
                              .enabledExtensionCount = f.n_ext,
                              .ppEnabledExtensionNames = f.exts};
    VkResult r = vkCreateDevice(vk->pd, &dci, NULL, &vk->dev);
    if (r != VK_SUCCESS) {
        vk->dev = VK_NULL_HANDLE;
        return sw_vk_fail(err, r, "vkCreateDevice", vk->info.name);
    }
    vkGetDeviceQueue(vk->dev, vk->qfam, 0, &vk->queue);
    vk->feat.float16 = vk->info.shader_float16;
    vk->feat.int8 = vk->info.shader_int8;
    vk->feat.int16 = vk->info.shader_int16;
    vk->feat.storage16 = vk->info.storage_16bit;
    vk->feat.storage8 = vk->info.storage_8bit;
    vk->fast = vk->feat.storage16 && vk->feat.storage8 && vk->feat.float16;

    VkCommandPoolCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                   .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                   .queueFamilyIndex = vk->qfam};
    VK_CHECK(vkCreateCommandPool(vk->dev, &pci, NULL, &vk->cmd_pool), err, "command pool");
    VkCommandBuffer cbs[2];
    VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                      .commandPool = vk->cmd_pool,
                                      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                      .commandBufferCount = 2};
    VK_CHECK(vkAllocateCommandBuffers(vk->dev, &ai, cbs), err, "command buffers");
    vk->cmd = cbs[0];
    vk->xfer_cmd = cbs[1];
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    VK_CHECK(vkCreateFence(vk->dev, &fci, NULL, &vk->fence), err, "fence");

    vk->profile = env_on("SW_VK_PROFILE");
    if (vk->profile && ts_bits == 0) {
        sw_log(SW_LOG_WARN, "vulkan: SW_VK_PROFILE ignored: the compute queue has no timestamps");
        vk->profile = false;
    }
    if (vk->profile) {
        vk->max_queries = 8192;
        VkQueryPoolCreateInfo qpi = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                     .queryType = VK_QUERY_TYPE_TIMESTAMP,
                                     .queryCount = vk->max_queries};
        VK_CHECK(vkCreateQueryPool(vk->dev, &qpi, NULL, &vk->qpool), err, "timestamp pool");
        vk->prof = calloc(vk->max_queries / 2, sizeof *vk->prof);
        if (!vk->prof) return sw_err_set(err, SW_E_NOMEM, "vulkan: out of memory for the profile");
    }
    return SW_OK;
}

static void *vk_host_ptr(sw_backend *be, sw_buffer *buf) {
    (void)be;
    (void)buf;
    return NULL; /* device memory, even when mapped: access goes through upload/download */
}

static const sw_backend_ops k_vk_ops = {
    .name = "vulkan",
    .free = vk_free,
    .buf_alloc = sw_vk_buf_alloc,
    .buf_free = sw_vk_buf_free,
    .upload = sw_vk_upload,
    .download = sw_vk_download,
    .upload_weight = NULL,
    .mem_info = sw_vk_mem_info,
    .supports_type = sw_vk_supports_type,
    .host_ptr = vk_host_ptr,
    .begin = vk_begin,
    .end = vk_end,
    .get_rows = sw_vk_get_rows,
    .rms_norm = sw_vk_rms_norm,
    .matmul = sw_vk_matmul,
    .rope = sw_vk_rope,
    .kv_write = sw_vk_kv_write,
    .attention = sw_vk_attention,
    .swiglu = sw_vk_swiglu,
    .geglu = sw_vk_geglu,
    .add = sw_vk_add,
    .scale = sw_vk_scale,
    .softcap = sw_vk_softcap,
    .add_rms_norm = sw_vk_add_rms_norm,
    .rope_kv_write = sw_vk_rope_kv_write,
    .logits_summary = NULL,
    .layer_norm = sw_vk_layer_norm,
    .gelu = sw_vk_gelu,
    .non_causal_attention = true,
};

bool sw_vk_backend_fast_path(sw_backend *be) {
    return be && be->ops == &k_vk_ops && sw_vk(be)->fast;
}

bool sw_vk_backend_coop_matrix(sw_backend *be) {
    return be && be->ops == &k_vk_ops && sw_vk(be)->coop;
}

sw_status sw_vk_backend_compare_shaders(sw_backend *be, const char *a, const char *b,
                                        double *nerr, sw_err *err) {
    if (!be || be->ops != &k_vk_ops || !nerr)
        return sw_err_set(err, SW_E_INVALID_ARG, "vulkan: compare_shaders: not a Vulkan backend");
    sw_vk_shader_id ia = sw_vk_shader_by_name(a), ib = sw_vk_shader_by_name(b);
    if (ia == SW_VK_SH_COUNT || ib == SW_VK_SH_COUNT)
        return sw_err_set(err, SW_E_INVALID_ARG, "vulkan: compare_shaders: unknown shader '%s'",
                          ia == SW_VK_SH_COUNT ? (a ? a : "(null)") : b ? b : "(null)");
    return sw_vk_matmul_compare(sw_vk(be), ia, ib, nerr, err);
}

sw_status sw_backend_vulkan_create(int32_t device, sw_backend **out, sw_err *err) {
    if (!out) return sw_err_set(err, SW_E_INVALID_ARG, "vulkan: out is NULL");
    *out = NULL;
    sw_vk_backend *vk = calloc(1, sizeof *vk);
    if (!vk) return sw_err_set(err, SW_E_NOMEM, "vulkan: out of memory");
    vk->base.ops = &k_vk_ops;
    vk->base.n_threads = 1;
    vk->force_staging = env_on("SW_VK_FORCE_STAGING");
    sw_status st = create_instance(vk, err);
    if (st == SW_OK) st = pick_device(vk, device, err);
    /* SW_VK_NO_SUBGROUP=1: use the shared-memory reductions even where
     * subgroup arithmetic exists (tests cover both paths on one device) */
    if (st == SW_OK && env_on("SW_VK_NO_SUBGROUP")) vk->info.subgroup_arithmetic = false;
    /* SW_VK_PLAIN=1: enable no 16/8-bit feature, so only the plain shaders run */
    if (st == SW_OK && env_on("SW_VK_PLAIN")) {
        vk->info.shader_float16 = vk->info.shader_int8 = vk->info.shader_int16 = false;
        vk->info.storage_16bit = vk->info.storage_8bit = false;
    }
    if (st == SW_OK) st = create_device(vk, err);
    if (st == SW_OK) st = sw_vk_staging_init(vk, err);
    if (st == SW_OK) st = sw_vk_pipelines_init(vk, err);
    if (st != SW_OK) {
        vk_free(&vk->base);
        return st;
    }
    sw_vk_coop_check(vk);
    sw_log(SW_LOG_INFO,
           "vulkan: using %s (%s), subgroup %u%s; matmul: %s path%s (16-bit storage %s, 8-bit "
           "storage %s, float16 %s), cooperative matrix %s",
           vk->info.name, sw_vk_kind_name(vk->info.kind), vk->info.subgroup_size,
           vk->info.subgroup_arithmetic ? " with arithmetic" : "", vk->fast ? "fast" : "plain",
           env_on("SW_VK_PLAIN") ? " by SW_VK_PLAIN=1" : "", vk->feat.storage16 ? "on" : "off",
           vk->feat.storage8 ? "on" : "off", vk->feat.float16 ? "on" : "off",
           vk->coop ? "on" : vk->coop_enabled ? "off (failed its check)" : "off");
    *out = &vk->base;
    return SW_OK;
}
