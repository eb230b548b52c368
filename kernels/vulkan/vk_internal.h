/* vk_internal.h — what the Vulkan backend's files share and no one else needs:
 * the backend and buffer structs, the VK_CHECK macro, and the entry points of
 * each file (vk_backend.c: device, step, profiling; vk_memory.c: buffers and
 * transfers; vk_pipeline.c: shaders, pipelines, descriptor sets, dispatch;
 * vk_ops.c: the ops, which turn tensors into bindings + push constants;
 * vk_coop.c: the cooperative-matrix matmul's check at create). */
#ifndef SW_VK_INTERNAL_H
#define SW_VK_INTERNAL_H

#include <vulkan/vulkan.h>

#include "backend.h"
#include "vk_backend.h"
#include "vk_device.h"

/* Evaluate a Vulkan call; on failure set err naming the call and what it was
 * for, and RETURN a status from the enclosing function (never abort). */
#define VK_CHECK(call, err, what)                                                            \
    do {                                                                                     \
        VkResult vkr_ = (call);                                                              \
        if (vkr_ != VK_SUCCESS) return sw_vk_fail((err), vkr_, #call, (what));               \
    } while (0)

/* Map a VkResult to sw_status and write "vulkan: <what>: <call> failed: <name>". */
sw_status sw_vk_fail(sw_err *err, VkResult r, const char *call, const char *what);
const char *sw_vk_result_str(VkResult r);

/* The shaders, one per op family (kernels/vulkan/shaders/<name>.comp). Every
 * shader uses descriptor set 0 with bindings 0..n_bindings-1, all storage
 * buffers, and a push-constant block of at most SW_VK_PUSH_MAX bytes. */
typedef enum sw_vk_shader_id {
    SW_VK_SH_GET_ROWS = 0,
    SW_VK_SH_RMS_NORM,
    SW_VK_SH_MATVEC,    /* T <= SW_VK_MATVEC_MAX_T, shared-memory reduction */
    SW_VK_SH_MATVEC_SG, /* same, subgroupAdd reduction (needs subgroup arithmetic) */
    SW_VK_SH_MATMUL,    /* tiled, any T */
    SW_VK_SH_ROPE,
    SW_VK_SH_KV_WRITE,
    SW_VK_SH_ATTENTION,
    SW_VK_SH_ELEMENTWISE, /* add, swiglu, gelu (spec constant) */
    /* fast paths (16/8-bit storage + shaderFloat16, see sw_vk_backend.fast) */
    SW_VK_SH_MATVEC_FAST,    /* T <= SW_VK_MATVEC_MAX_T, rows per workgroup, shared-memory reduction */
    SW_VK_SH_MATVEC_FAST_SG, /* same, subgroupAdd reduction */
    SW_VK_SH_MATMUL_FAST,    /* 64x64 tiles, f16 weight tile: quantized types and F16 */
    SW_VK_SH_MATMUL_FAST32,  /* 64x64 tiles, f32 weight tile: F32 and BF16 */
    SW_VK_SH_MATMUL_COOP,    /* 64x64 tiles on VK_NV_cooperative_matrix (see vk_coop.c) */
    SW_VK_SH_LAYER_NORM,     /* encoders (bert) */
    /* fused ops (add_rms_norm is rms_norm with a spec constant) */
    SW_VK_SH_ROPE_KV_WRITE,
    SW_VK_SH_COUNT
} sw_vk_shader_id;

#define SW_VK_MAX_BINDINGS 8
#define SW_VK_MAX_SPEC 4
#define SW_VK_PUSH_MAX 128
#define SW_VK_MATVEC_MAX_T 8
/* Largest head_dim the attention shader keeps in registers (64 threads x 4). */
#define SW_VK_ATTN_MAX_HEAD_DIM 256

struct sw_buffer {
    VkBuffer buf;
    VkDeviceMemory mem;
    size_t size;       /* bytes the caller asked for */
    size_t alloc_size; /* bytes of the VkBuffer (size rounded up to 16) */
    void *map;         /* persistent mapping when the memory is host-visible+coherent */
    sw_buf_usage usage;
};

typedef struct sw_vk_pipeline {
    sw_vk_shader_id shader;
    uint32_t spec[SW_VK_MAX_SPEC];
    VkPipeline pipe;
} sw_vk_pipeline;

/* Per-op timing of one step (SW_VK_PROFILE=1). */
typedef struct sw_vk_prof_entry {
    const char *op; /* static string */
    uint32_t query; /* first of two timestamps */
} sw_vk_prof_entry;

typedef struct sw_vk_backend {
    sw_backend base;
    VkInstance inst;
    VkPhysicalDevice pd;
    VkDevice dev;
    VkQueue queue;
    uint32_t qfam;
    VkPhysicalDeviceProperties props;
    VkPhysicalDeviceMemoryProperties memp;
    sw_vk_device_info info;
    bool has_budget; /* VK_EXT_memory_budget enabled */
    /* 16/8-bit features enabled on the device (all false with SW_VK_PLAIN=1) */
    struct {
        bool float16, int8, int16, storage16, storage8;
    } feat;
    bool fast; /* matmul uses the *_FAST shaders: storage16 && storage8 && float16 */
    /* VK_NV_cooperative_matrix + vulkanMemoryModel enabled (coop_enabled), and
     * matmul_coop passed its check at create (coop: prefill uses it) */
    bool coop_enabled, coop;
    size_t align;    /* storage-buffer offset alignment (>= 4) */
    size_t max_range;

    /* commands: one buffer for steps, one for immediate transfers */
    VkCommandPool cmd_pool;
    VkCommandBuffer cmd;
    VkCommandBuffer xfer_cmd;
    VkFence fence;
    bool recording;     /* between begin and end (explicit or implicit) */
    bool in_step;       /* an explicit sw_be_begin is open */
    uint32_t n_dispatch; /* dispatches recorded since the last submit */

    /* staging for transfers to/from memory the host cannot map */
    VkBuffer staging;
    VkDeviceMemory staging_mem;
    void *staging_map;
    size_t staging_size;
    bool force_staging;
    uint64_t allocated; /* bytes of device memory we hold (mem_info fallback) */

    /* pipelines and descriptors */
    VkShaderModule modules[SW_VK_SH_COUNT];
    VkDescriptorSetLayout dsl[SW_VK_MAX_BINDINGS + 1]; /* by binding count */
    VkPipelineLayout pl[SW_VK_MAX_BINDINGS + 1];
    VkPipelineCache pcache;
    sw_vk_pipeline *pipes;
    size_t n_pipes, cap_pipes;
    VkDescriptorPool *pools;
    size_t n_pools, cur_pool;
    uint64_t n_dispatch_by_shader[SW_VK_SH_COUNT]; /* since create (tests read it) */

    /* profiling */
    bool profile;
    VkQueryPool qpool;
    uint32_t max_queries, n_queries;
    sw_vk_prof_entry *prof;
    size_t n_prof;
} sw_vk_backend;

static inline sw_vk_backend *sw_vk(sw_backend *be) { return (sw_vk_backend *)be; }

/* ---- vk_backend.c ---- */
/* Start recording (implicitly when an op runs outside begin/end). */
sw_status sw_vk_record_start(sw_vk_backend *vk, sw_err *err);
/* Submit what was recorded, wait for it, and (when keep_recording) start
 * recording again. Used by end(), by implicit steps, and by transfers in the
 * middle of a step, which must see every op recorded before them. */
sw_status sw_vk_flush(sw_vk_backend *vk, bool keep_recording, sw_err *err);

/* ---- vk_memory.c ---- */
sw_status sw_vk_buf_alloc(sw_backend *be, size_t size, sw_buf_usage usage, sw_buffer **out,
                          sw_err *err);
void sw_vk_buf_free(sw_backend *be, sw_buffer *buf);
sw_status sw_vk_upload(sw_backend *be, sw_buffer *dst, size_t offset, const void *src, size_t n,
                       sw_err *err);
sw_status sw_vk_download(sw_backend *be, sw_buffer *src, size_t offset, void *dst, size_t n,
                         sw_err *err);
sw_status sw_vk_mem_info(sw_backend *be, size_t *free_b, size_t *total_b, sw_err *err);
/* Create / destroy the staging buffer (called by create / free). */
sw_status sw_vk_staging_init(sw_vk_backend *vk, sw_err *err);
void sw_vk_staging_free(sw_vk_backend *vk);
/* Index of a memory type with all of `want` among type_bits, or -1. */
int sw_vk_find_memory(const sw_vk_backend *vk, uint32_t type_bits, VkMemoryPropertyFlags want);

/* ---- vk_pipeline.c ---- */
/* A storage-buffer binding: [offset, offset + range) of buf. */
typedef struct sw_vk_bind {
    const sw_buffer *buf;
    VkDeviceSize offset, range;
} sw_vk_bind;

/* Bind `span` bytes starting at byte `offset` of buf. The descriptor offset is
 * rounded down to the device's alignment; the returned residual (bytes from the
 * descriptor start to `offset`) goes to the shader as a push constant. */
uint32_t sw_vk_bind_bytes(const sw_vk_backend *vk, const sw_buffer *buf, size_t offset,
                          size_t span, sw_vk_bind *out);
/* The whole span of tensor t (sw_tensor_nbytes). */
uint32_t sw_vk_bind_tensor(const sw_vk_backend *vk, const sw_tensor *t, sw_vk_bind *out);

sw_status sw_vk_pipelines_init(sw_vk_backend *vk, sw_err *err);
void sw_vk_pipelines_free(sw_vk_backend *vk);
/* Make the descriptor pools reusable (after the work using them finished). */
sw_status sw_vk_descriptors_reset(sw_vk_backend *vk, sw_err *err);

typedef struct sw_vk_dispatch_desc {
    const char *op;           /* for errors and the profile */
    sw_vk_shader_id shader;
    uint32_t spec[SW_VK_MAX_SPEC]; /* specialization constants 0..3 (unused = 0) */
    const sw_vk_bind *binds;
    uint32_t n_binds;
    const void *push;
    uint32_t push_size;
    uint32_t groups[3];
} sw_vk_dispatch_desc;

/* Record one dispatch (starting an implicit step if none is open, and
 * submitting it at once in that case), followed by a compute->compute barrier. */
sw_status sw_vk_dispatch(sw_vk_backend *vk, const sw_vk_dispatch_desc *d, sw_err *err);
/* Split n workgroups into a 2-D grid within the device's per-dimension limit;
 * shaders linearize gl_WorkGroupID and skip ids >= n. */
void sw_vk_grid(const sw_vk_backend *vk, uint64_t n, uint32_t groups[3]);

/* Profiling: record a timestamp pair around a dispatch (vk_backend.c). */
void sw_vk_prof_begin(sw_vk_backend *vk, const char *op);
void sw_vk_prof_end(sw_vk_backend *vk);

/* ---- vk_coop.c ---- */
/* Once, at create, when coop_enabled: run matmul_coop and matmul_fast on the
 * same small Q4_0 problem; set vk->coop only if they agree. Never fails the
 * backend: a disagreement or an error is logged and the tiled path stays. */
void sw_vk_coop_check(sw_vk_backend *vk);
/* Run one random Q4_0 matmul (K 256, N 96, T 80: ragged tiles) through
 * shaders a and b; *nerr = ||out_a - out_b|| / ||out_b|| (NaN-safe: a
 * non-finite output gives +inf). */
sw_status sw_vk_matmul_compare(sw_vk_backend *vk, sw_vk_shader_id a, sw_vk_shader_id b,
                               double *nerr, sw_err *err);
/* Shader id by name (the .comp file name), or SW_VK_SH_COUNT (vk_pipeline.c). */
sw_vk_shader_id sw_vk_shader_by_name(const char *name);

/* ---- vk_ops.c ---- */
sw_status sw_vk_get_rows(sw_backend *be, const sw_tensor *table, const sw_tensor *ids,
                         sw_tensor *out, sw_err *err);
sw_status sw_vk_rms_norm(sw_backend *be, const sw_tensor *x, const sw_tensor *w, float eps,
                         sw_tensor *out, sw_err *err);
sw_status sw_vk_matmul(sw_backend *be, const sw_tensor *w, const sw_tensor *x,
                       const sw_tensor *bias, sw_tensor *out, sw_err *err);
/* matmul through shader sh (one of the matvec / matmul shaders), or the one
 * sw_vk_matmul would choose when sh is SW_VK_SH_COUNT. SW_E_UNSUPPORTED when
 * a fast shader cannot read the weights at their offset. */
sw_status sw_vk_matmul_with(sw_backend *be, const sw_tensor *w, const sw_tensor *x,
                            const sw_tensor *bias, sw_tensor *out, sw_vk_shader_id sh,
                            sw_err *err);
sw_status sw_vk_rope(sw_backend *be, sw_tensor *x, const sw_tensor *pos,
                     const sw_rope_params *p, sw_err *err);
sw_status sw_vk_kv_write(sw_backend *be, const sw_tensor *k, const sw_tensor *v,
                         sw_tensor *k_cache, sw_tensor *v_cache, const sw_tensor *slots,
                         sw_err *err);
sw_status sw_vk_attention(sw_backend *be, const sw_tensor *q, const sw_tensor *k_cache,
                          const sw_tensor *v_cache, const sw_attn_params *p, sw_tensor *out,
                          sw_err *err);
sw_status sw_vk_layer_norm(sw_backend *be, const sw_tensor *x, const sw_tensor *w,
                           const sw_tensor *bias, float eps, sw_tensor *out, sw_err *err);
sw_status sw_vk_gelu(sw_backend *be, const sw_tensor *x, sw_tensor *out, sw_err *err);
sw_status sw_vk_swiglu(sw_backend *be, const sw_tensor *gate, const sw_tensor *up,
                       sw_tensor *out, sw_err *err);
sw_status sw_vk_geglu(sw_backend *be, const sw_tensor *gate, const sw_tensor *up, sw_tensor *out,
                      sw_err *err);
sw_status sw_vk_scale(sw_backend *be, const sw_tensor *x, float s, sw_tensor *out, sw_err *err);
sw_status sw_vk_softcap(sw_backend *be, const sw_tensor *x, float cap, sw_tensor *out,
                        sw_err *err);
sw_status sw_vk_add(sw_backend *be, const sw_tensor *a, const sw_tensor *b, sw_tensor *out,
                    sw_err *err);
sw_status sw_vk_add_rms_norm(sw_backend *be, sw_tensor *x, const sw_tensor *h, const sw_tensor *w,
                             float eps, sw_tensor *out, sw_err *err);
sw_status sw_vk_rope_kv_write(sw_backend *be, sw_tensor *q, sw_tensor *k, const sw_tensor *v,
                              const sw_tensor *pos, const sw_rope_params *p, sw_tensor *k_cache,
                              sw_tensor *v_cache, const sw_tensor *slots, sw_err *err);
/* Weight types the matmul and get_rows shaders dequantize. */
bool sw_vk_supports_type(sw_backend *be, sw_type type);

#endif
