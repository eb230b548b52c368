/* vk_pipeline.c — shader modules, pipelines, descriptor sets and the recording
 * of one dispatch.
 *
 * - Shader modules come from SPIR-V embedded at build time (<name>.spv.h) and
 *   are created on first use, so a variant the device cannot run (subgroup
 *   arithmetic) is never even loaded.
 * - One VkPipeline per (shader, specialization constants), created on first
 *   use through a VkPipelineCache and kept until the backend is freed.
 * - Every shader sees set 0 = storage buffers 0..n-1 and one push-constant
 *   block; layouts are shared by all shaders with the same binding count.
 * - Descriptor sets come from a growing list of pools, reset after each
 *   submission (the sets of a step live until its fence signals). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk_internal.h"

#include "attention.spv.h"
#include "elementwise.spv.h"
#include "get_rows.spv.h"
#include "kv_write.spv.h"
#include "layer_norm.spv.h"
#include "matmul.spv.h"
#include "matmul_coop.spv.h"
#include "matmul_fast.spv.h"
#include "matmul_fast32.spv.h"
#include "matvec.spv.h"
#include "matvec_fast.spv.h"
#include "matvec_fast_sg.spv.h"
#include "matvec_sg.spv.h"
#include "rms_norm.spv.h"
#include "rope.spv.h"
#include "rope_kv_write.spv.h"

typedef struct {
    const char *name;
    const unsigned char *spv;
    size_t len;
    uint32_t n_bindings;
} shader_info;

static const shader_info k_shaders[SW_VK_SH_COUNT] = {
    [SW_VK_SH_GET_ROWS] = {"get_rows", sw_spv_get_rows, sizeof sw_spv_get_rows, 3},
    [SW_VK_SH_RMS_NORM] = {"rms_norm", sw_spv_rms_norm, sizeof sw_spv_rms_norm, 4},
    [SW_VK_SH_MATVEC] = {"matvec", sw_spv_matvec, sizeof sw_spv_matvec, 4},
    [SW_VK_SH_MATVEC_SG] = {"matvec_sg", sw_spv_matvec_sg, sizeof sw_spv_matvec_sg, 4},
    [SW_VK_SH_MATMUL] = {"matmul", sw_spv_matmul, sizeof sw_spv_matmul, 4},
    [SW_VK_SH_ROPE] = {"rope", sw_spv_rope, sizeof sw_spv_rope, 3},
    [SW_VK_SH_KV_WRITE] = {"kv_write", sw_spv_kv_write, sizeof sw_spv_kv_write, 5},
    [SW_VK_SH_ATTENTION] = {"attention", sw_spv_attention, sizeof sw_spv_attention, 7},
    [SW_VK_SH_ELEMENTWISE] = {"elementwise", sw_spv_elementwise, sizeof sw_spv_elementwise, 3},
    [SW_VK_SH_MATVEC_FAST] = {"matvec_fast", sw_spv_matvec_fast, sizeof sw_spv_matvec_fast, 4},
    [SW_VK_SH_MATVEC_FAST_SG] = {"matvec_fast_sg", sw_spv_matvec_fast_sg,
                                 sizeof sw_spv_matvec_fast_sg, 4},
    [SW_VK_SH_MATMUL_FAST] = {"matmul_fast", sw_spv_matmul_fast, sizeof sw_spv_matmul_fast, 4},
    [SW_VK_SH_MATMUL_FAST32] = {"matmul_fast32", sw_spv_matmul_fast32,
                                sizeof sw_spv_matmul_fast32, 4},
    [SW_VK_SH_MATMUL_COOP] = {"matmul_coop", sw_spv_matmul_coop, sizeof sw_spv_matmul_coop, 4},
    [SW_VK_SH_LAYER_NORM] = {"layer_norm", sw_spv_layer_norm, sizeof sw_spv_layer_norm, 4},
    [SW_VK_SH_ROPE_KV_WRITE] = {"rope_kv_write", sw_spv_rope_kv_write,
                                sizeof sw_spv_rope_kv_write, 8},
};

sw_vk_shader_id sw_vk_shader_by_name(const char *name) {
    for (int i = 0; name && i < SW_VK_SH_COUNT; i++)
        if (!strcmp(k_shaders[i].name, name)) return (sw_vk_shader_id)i;
    return SW_VK_SH_COUNT;
}

uint64_t sw_vk_backend_shader_dispatches(sw_backend *be, const char *name) {
    if (!be || strcmp(be->ops->name, "vulkan") != 0) return 0;
    sw_vk_shader_id id = sw_vk_shader_by_name(name);
    return id == SW_VK_SH_COUNT ? 0 : sw_vk(be)->n_dispatch_by_shader[id];
}

#define POOL_SETS 512

/* ----------------------------------------------------------- bindings -- */

uint32_t sw_vk_bind_bytes(const sw_vk_backend *vk, const sw_buffer *buf, size_t offset,
                          size_t span, sw_vk_bind *out) {
    size_t base = offset / vk->align * vk->align;
    size_t end = offset + span;
    end = (end + 3) / 4 * 4; /* whole words: shaders read uint/float arrays */
    if (end > buf->alloc_size) end = buf->alloc_size;
    out->buf = buf;
    out->offset = base;
    out->range = end > base ? end - base : 4;
    return (uint32_t)(offset - base);
}

uint32_t sw_vk_bind_tensor(const sw_vk_backend *vk, const sw_tensor *t, sw_vk_bind *out) {
    return sw_vk_bind_bytes(vk, t->buf, t->offset, sw_tensor_nbytes(t), out);
}

void sw_vk_grid(const sw_vk_backend *vk, uint64_t n, uint32_t groups[3]) {
    uint64_t max_x = vk->props.limits.maxComputeWorkGroupCount[0];
    if (max_x > 65535) max_x = 65535; /* keep ids well inside 32 bits */
    if (n == 0) n = 1;
    uint64_t gx = n < max_x ? n : max_x;
    groups[0] = (uint32_t)gx;
    groups[1] = (uint32_t)((n + gx - 1) / gx);
    groups[2] = 1;
}

/* ------------------------------------------------------------ layouts -- */

sw_status sw_vk_pipelines_init(sw_vk_backend *vk, sw_err *err) {
    VkDescriptorSetLayoutBinding b[SW_VK_MAX_BINDINGS];
    for (uint32_t i = 0; i < SW_VK_MAX_BINDINGS; i++)
        b[i] = (VkDescriptorSetLayoutBinding){.binding = i,
                                              .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                              .descriptorCount = 1,
                                              .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
    VkPushConstantRange pcr = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
                               .offset = 0,
                               .size = SW_VK_PUSH_MAX};
    for (uint32_t n = 1; n <= SW_VK_MAX_BINDINGS; n++) {
        VkDescriptorSetLayoutCreateInfo dci = {
            .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
            .bindingCount = n,
            .pBindings = b};
        VK_CHECK(vkCreateDescriptorSetLayout(vk->dev, &dci, NULL, &vk->dsl[n]), err,
                 "descriptor set layout");
        VkPipelineLayoutCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                          .setLayoutCount = 1,
                                          .pSetLayouts = &vk->dsl[n],
                                          .pushConstantRangeCount = 1,
                                          .pPushConstantRanges = &pcr};
        VK_CHECK(vkCreatePipelineLayout(vk->dev, &pci, NULL, &vk->pl[n]), err, "pipeline layout");
    }
    VkPipelineCacheCreateInfo cci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO};
    VK_CHECK(vkCreatePipelineCache(vk->dev, &cci, NULL, &vk->pcache), err, "pipeline cache");
    return SW_OK;
}

void sw_vk_pipelines_free(sw_vk_backend *vk) {
    for (size_t i = 0; i < vk->n_pipes; i++) vkDestroyPipeline(vk->dev, vk->pipes[i].pipe, NULL);
    free(vk->pipes);
    vk->pipes = NULL;
    vk->n_pipes = vk->cap_pipes = 0;
    for (size_t i = 0; i < vk->n_pools; i++) vkDestroyDescriptorPool(vk->dev, vk->pools[i], NULL);
    free(vk->pools);
    vk->pools = NULL;
    vk->n_pools = vk->cur_pool = 0;
    if (vk->pcache) vkDestroyPipelineCache(vk->dev, vk->pcache, NULL);
    for (int i = 0; i < SW_VK_SH_COUNT; i++)
        if (vk->modules[i]) vkDestroyShaderModule(vk->dev, vk->modules[i], NULL);
    for (int n = 0; n <= SW_VK_MAX_BINDINGS; n++) {
        if (vk->pl[n]) vkDestroyPipelineLayout(vk->dev, vk->pl[n], NULL);
        if (vk->dsl[n]) vkDestroyDescriptorSetLayout(vk->dev, vk->dsl[n], NULL);
    }
}

/* ---------------------------------------------------------- pipelines -- */

static sw_status get_module(sw_vk_backend *vk, sw_vk_shader_id id, sw_err *err) {
    if (vk->modules[id]) return SW_OK;
    const shader_info *si = &k_shaders[id];
    VkShaderModuleCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                   .codeSize = si->len,
                                   .pCode = (const uint32_t *)(const void *)si->spv};
    VkResult r = vkCreateShaderModule(vk->dev, &ci, NULL, &vk->modules[id]);
    if (r != VK_SUCCESS) {
        vk->modules[id] = VK_NULL_HANDLE;
        char what[64];
        snprintf(what, sizeof what, "shader %s", si->name);
        return sw_vk_fail(err, r, "vkCreateShaderModule", what);
    }
    return SW_OK;
}

static sw_status get_pipeline(sw_vk_backend *vk, sw_vk_shader_id id, const uint32_t *spec,
                              VkPipeline *out, sw_err *err) {
    for (size_t i = 0; i < vk->n_pipes; i++)
        if (vk->pipes[i].shader == id &&
            !memcmp(vk->pipes[i].spec, spec, sizeof vk->pipes[i].spec)) {
            *out = vk->pipes[i].pipe;
            return SW_OK;
        }
    sw_status st = get_module(vk, id, err);
    if (st != SW_OK) return st;
    if (vk->n_pipes == vk->cap_pipes) {
        size_t cap = vk->cap_pipes ? vk->cap_pipes * 2 : 32;
        sw_vk_pipeline *p = realloc(vk->pipes, cap * sizeof *p);
        if (!p) return sw_err_set(err, SW_E_NOMEM, "vulkan: out of memory for pipelines");
        vk->pipes = p;
        vk->cap_pipes = cap;
    }
    VkSpecializationMapEntry me[SW_VK_MAX_SPEC];
    for (uint32_t i = 0; i < SW_VK_MAX_SPEC; i++)
        me[i] = (VkSpecializationMapEntry){.constantID = i,
                                           .offset = i * (uint32_t)sizeof(uint32_t),
                                           .size = sizeof(uint32_t)};
    VkSpecializationInfo spi = {.mapEntryCount = SW_VK_MAX_SPEC,
                                .pMapEntries = me,
                                .dataSize = SW_VK_MAX_SPEC * sizeof(uint32_t),
                                .pData = spec};
    VkComputePipelineCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                  .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                  .module = vk->modules[id],
                  .pName = "main",
                  .pSpecializationInfo = &spi},
        .layout = vk->pl[k_shaders[id].n_bindings]};
    VkPipeline pipe;
    double t0 = sw_time_s();
    VkResult r = vkCreateComputePipelines(vk->dev, vk->pcache, 1, &ci, NULL, &pipe);
    if (r != VK_SUCCESS) {
        char what[96];
        snprintf(what, sizeof what, "pipeline %s [%u %u %u %u]", k_shaders[id].name, spec[0],
                 spec[1], spec[2], spec[3]);
        return sw_vk_fail(err, r, "vkCreateComputePipelines", what);
    }
    sw_log(SW_LOG_DEBUG, "vulkan: pipeline %s [%u %u %u %u] created in %.1f ms", k_shaders[id].name,
           spec[0], spec[1], spec[2], spec[3], (sw_time_s() - t0) * 1e3);
    sw_vk_pipeline *p = &vk->pipes[vk->n_pipes++];
    p->shader = id;
    memcpy(p->spec, spec, sizeof p->spec);
    p->pipe = pipe;
    *out = pipe;
    return SW_OK;
}

/* -------------------------------------------------------- descriptors -- */

static sw_status add_pool(sw_vk_backend *vk, sw_err *err) {
    VkDescriptorPool *p = realloc(vk->pools, (vk->n_pools + 1) * sizeof *p);
    if (!p) return sw_err_set(err, SW_E_NOMEM, "vulkan: out of memory for descriptor pools");
    vk->pools = p;
    VkDescriptorPoolSize ps = {.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                               .descriptorCount = POOL_SETS * SW_VK_MAX_BINDINGS};
    VkDescriptorPoolCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                     .maxSets = POOL_SETS,
                                     .poolSizeCount = 1,
                                     .pPoolSizes = &ps};
    VK_CHECK(vkCreateDescriptorPool(vk->dev, &ci, NULL, &vk->pools[vk->n_pools]), err,
             "descriptor pool");
    vk->n_pools++;
    return SW_OK;
}

sw_status sw_vk_descriptors_reset(sw_vk_backend *vk, sw_err *err) {
    for (size_t i = 0; i < vk->n_pools; i++)
        VK_CHECK(vkResetDescriptorPool(vk->dev, vk->pools[i], 0), err, "descriptor pool reset");
    vk->cur_pool = 0;
    return SW_OK;
}

static sw_status alloc_set(sw_vk_backend *vk, uint32_t n_bind, VkDescriptorSet *out,
                           sw_err *err) {
    for (;;) {
        if (vk->cur_pool == vk->n_pools) {
            sw_status st = add_pool(vk, err);
            if (st != SW_OK) return st;
        }
        VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                          .descriptorPool = vk->pools[vk->cur_pool],
                                          .descriptorSetCount = 1,
                                          .pSetLayouts = &vk->dsl[n_bind]};
        VkResult r = vkAllocateDescriptorSets(vk->dev, &ai, out);
        if (r == VK_SUCCESS) return SW_OK;
        if (r != VK_ERROR_OUT_OF_POOL_MEMORY && r != VK_ERROR_FRAGMENTED_POOL)
            return sw_vk_fail(err, r, "vkAllocateDescriptorSets", "descriptor set");
        vk->cur_pool++; /* this pool is full until the next reset */
    }
}

/* ------------------------------------------------------------ dispatch -- */

static sw_status record(sw_vk_backend *vk, const sw_vk_dispatch_desc *d, sw_err *err) {
    const shader_info *si = &k_shaders[d->shader];
    if (d->n_binds != si->n_bindings || d->push_size > SW_VK_PUSH_MAX || d->push_size % 4)
        return sw_err_set(err, SW_E_INTERNAL,
                          "vulkan: %s: shader %s takes %u bindings, got %u (push %u bytes)", d->op,
                          si->name, si->n_bindings, d->n_binds, d->push_size);
    VkDescriptorBufferInfo bi[SW_VK_MAX_BINDINGS];
    VkWriteDescriptorSet wr[SW_VK_MAX_BINDINGS];
    for (uint32_t i = 0; i < d->n_binds; i++) {
        if (d->binds[i].range > vk->max_range)
            return sw_err_set(err, SW_E_UNSUPPORTED,
                              "vulkan: %s: binding %u spans %llu bytes, more than the device's "
                              "maxStorageBufferRange %zu",
                              d->op, i, (unsigned long long)d->binds[i].range, vk->max_range);
        bi[i] = (VkDescriptorBufferInfo){
            .buffer = d->binds[i].buf->buf, .offset = d->binds[i].offset, .range = d->binds[i].range};
    }
    VkPipeline pipe = VK_NULL_HANDLE;
    sw_status st = get_pipeline(vk, d->shader, d->spec, &pipe, err);
    if (st != SW_OK) return sw_err_wrap(err, st, "vulkan: %s", d->op);
    VkDescriptorSet set;
    if ((st = alloc_set(vk, d->n_binds, &set, err)) != SW_OK)
        return sw_err_wrap(err, st, "vulkan: %s", d->op);
    for (uint32_t i = 0; i < d->n_binds; i++)
        wr[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                       .dstSet = set,
                                       .dstBinding = i,
                                       .descriptorCount = 1,
                                       .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                       .pBufferInfo = &bi[i]};
    vkUpdateDescriptorSets(vk->dev, d->n_binds, wr, 0, NULL);

    VkPipelineLayout pl = vk->pl[d->n_binds];
    vkCmdBindPipeline(vk->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipe);
    vkCmdBindDescriptorSets(vk->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pl, 0, 1, &set, 0, NULL);
    if (d->push_size) vkCmdPushConstants(vk->cmd, pl, VK_SHADER_STAGE_COMPUTE_BIT, 0, d->push_size, d->push);
    sw_vk_prof_begin(vk, d->op);
    vkCmdDispatch(vk->cmd, d->groups[0], d->groups[1], d->groups[2]);
    sw_vk_prof_end(vk);
    /* the next op reads what this one wrote (and may overwrite what it read) */
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_SHADER_READ_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT};
    vkCmdPipelineBarrier(vk->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                         VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    vk->n_dispatch++;
    vk->n_dispatch_by_shader[d->shader]++;
    return SW_OK;
}

sw_status sw_vk_dispatch(sw_vk_backend *vk, const sw_vk_dispatch_desc *d, sw_err *err) {
    bool implicit = !vk->recording;
    sw_status st = implicit ? sw_vk_record_start(vk, err) : SW_OK;
    if (st != SW_OK) return st;
    st = record(vk, d, err);
    if (!implicit) return st;
    if (st == SW_OK) return sw_vk_flush(vk, false, err);
    /* nothing of this op was recorded: close the command buffer unsubmitted */
    vkEndCommandBuffer(vk->cmd);
    vk->recording = false;
    sw_vk_descriptors_reset(vk, NULL);
    return st;
}
