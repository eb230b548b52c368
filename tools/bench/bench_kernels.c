/* bench_kernels.c — `spillway-bench kernels`: microbenchmarks of every op of
 * the decode step on any backend, each row judged against peaks measured in
 * the same run (docs/bench.md).
 *
 * For each row: the bytes it moves and the operations it does (bench_ops.c),
 * its best and median time, and its arithmetic intensity against the ridge
 * point of the peaks (compute peak / bandwidth peak), which decides whether it
 * is bound by memory or by compute; %peak is against that bound's peak. The
 * peaks (bench_peak_cpu.c, bench_peak_gpu.c) are measured before the rows,
 * between them (CPU) and after them; each keeps its best sample, so a quiet
 * moment during the rows cannot make a kernel look faster than the machine.
 *
 * Shapes: a llama3-8b decode step by default (or --shape for matmul), or with
 * --model FILE every distinct shape that model's step uses. */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "bench_kernels.h"
#ifdef SW_HAVE_CUDA
#include "cuda_backend.h"
#include "cuda_device.h"
#endif
#ifdef SW_HAVE_VULKAN
#include "vk_backend.h"
#include "vk_device.h"
#endif

#define MIB ((size_t)1 << 20)
#define MAX_LIST 32

typedef struct opts {
    const char *backend, *ops, *types, *model;
    int64_t shapes[MAX_LIST][3];
    int n_shapes;
    int64_t tokens[MAX_LIST];
    int n_tokens;
    int64_t ctxs[MAX_LIST];
    int n_ctxs;
    int threads, reps, per_step, device;
    long probe_mib;
    bool json, hot, plain, graphs, quick;
} opts;

static void usage(FILE *f) {
    fprintf(f, "usage: spillway-bench kernels [--backend cpu|vulkan|cuda|auto] [--op LIST]\n"
               "         [--type LIST] [--shape K,N,T]... [--model FILE] [--tokens LIST]\n"
               "         [--ctx LIST] [--threads N] [--reps R] [--per-step P] [--device D]\n"
               "         [--probe-mib M] [--hot] [--plain] [--no-graphs] [--quick] [--json]\n"
               "  every op of the decode step, each row against the peak of its bound\n"
               "  (memory or compute), measured in the same run with the same threads:\n"
               "  --op       matmul,attention,rms_norm,rope,kv_write,get_rows,add,swiglu\n"
               "             (default all; matmul alone when --shape is given)\n"
               "  --type     weight types of matmul and get_rows (default: every type the\n"
               "             backend supports for matmul, q4_0 for get_rows)\n"
               "  --shape    matmul shape, repeatable (also KxNxT); default 4096,4096,1\n"
               "             4096,14336,1 14336,4096,1 4096,4096,64\n"
               "  --model    every distinct shape of this GGUF's decode step (its own types)\n"
               "  --tokens   T of the other ops and of --model's matmuls (default 1,64)\n"
               "  --ctx      attention context lengths (default 512,4096,32768)\n"
               "  --reps     timed calls (CPU, default 10) or steps (GPUs, default 20)\n"
               "  --per-step GPUs: at least P calls per timed step (default 32)\n"
               "  --probe-mib the DRAM probe's buffer (CPU: default 4 x LLC, >= 256; GPUs:\n"
               "             also the operand copies cycled per step; default 1024)\n"
               "  --hot      operands stay cached between calls (compared with cache-level\n"
               "             probes); default: every call finds its operands in DRAM\n"
               "  --plain    weights in the raw GGUF layout (default: the engine's)\n"
               "  --no-graphs CUDA: no graph replay (times include launch overhead)\n"
               "  --quick    a quarter of the probe samples and 3 reps (tests; noisier)\n");
}

/* "a,b,c" of positive integers into v (at most MAX_LIST); -1 on a bad list. */
static int parse_ints(const char *s, int64_t *v) {
    int n = 0;
    for (const char *p = s;;) {
        char *end;
        errno = 0;
        long long x = strtoll(p, &end, 10);
        if (errno || end == p || x <= 0 || n == MAX_LIST) return -1;
        v[n++] = x;
        if (*end == 0) return n;
        if (*end != ',') return -1;
        p = end + 1;
    }
}

static int parse_shape(const char *a, int64_t *s) {
    char buf[96];
    snprintf(buf, sizeof buf, "%s", a);
    for (char *p = buf; *p; p++)
        if (*p == 'x' || *p == 'X') *p = ',';
    return parse_ints(buf, s) == 3 ? 0 : -1;
}

static int parse_args(int argc, char **argv, opts *o) {
    memset(o, 0, sizeof *o);
    o->backend = "cpu";
    o->device = -1;
    o->graphs = true;
    enum {
        O_BACKEND = 256,
        O_OP,
        O_TYPE,
        O_SHAPE,
        O_MODEL,
        O_TOKENS,
        O_CTX,
        O_THREADS,
        O_REPS,
        O_PER_STEP,
        O_DEVICE,
        O_PROBE,
        O_HOT,
        O_PLAIN,
        O_NO_GRAPHS,
        O_JSON,
        O_QUICK
    };
    static const struct option lo[] = {{"backend", required_argument, NULL, O_BACKEND},
                                       {"op", required_argument, NULL, O_OP},
                                       {"type", required_argument, NULL, O_TYPE},
                                       {"shape", required_argument, NULL, O_SHAPE},
                                       {"model", required_argument, NULL, O_MODEL},
                                       {"tokens", required_argument, NULL, O_TOKENS},
                                       {"ctx", required_argument, NULL, O_CTX},
                                       {"threads", required_argument, NULL, O_THREADS},
                                       {"reps", required_argument, NULL, O_REPS},
                                       {"per-step", required_argument, NULL, O_PER_STEP},
                                       {"device", required_argument, NULL, O_DEVICE},
                                       {"probe-mib", required_argument, NULL, O_PROBE},
                                       {"hot", no_argument, NULL, O_HOT},
                                       {"plain", no_argument, NULL, O_PLAIN},
                                       {"no-graphs", no_argument, NULL, O_NO_GRAPHS},
                                       {"json", no_argument, NULL, O_JSON},
                                       {"quick", no_argument, NULL, O_QUICK},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    optind = 1;
    opterr = 0;
    int c, li = -1;
    while ((c = getopt_long(argc, argv, ":m:h", lo, &li)) != -1) {
        int64_t one[MAX_LIST];
        bool ok = true;
        const char *name = li >= 0 ? lo[li].name : "-m";
        switch (c) {
        case 'h':
            usage(stdout);
            return 1;
        case O_BACKEND:
            o->backend = optarg;
            break;
        case O_OP:
            o->ops = optarg;
            break;
        case O_TYPE:
            o->types = optarg;
            break;
        case 'm':
        case O_MODEL:
            o->model = optarg;
            break;
        case O_SHAPE:
            ok = o->n_shapes < MAX_LIST && parse_shape(optarg, o->shapes[o->n_shapes]) == 0;
            if (ok) o->n_shapes++;
            break;
        case O_TOKENS:
            ok = (o->n_tokens = parse_ints(optarg, o->tokens)) > 0;
            break;
        case O_CTX:
            ok = (o->n_ctxs = parse_ints(optarg, o->ctxs)) > 0;
            break;
        case O_DEVICE: {
            char *end;
            errno = 0;
            long v = strtol(optarg, &end, 10);
            ok = !errno && end != optarg && !*end && v >= 0 && v < 1024;
            o->device = (int)v;
            break;
        }
        case O_THREADS:
        case O_REPS:
        case O_PER_STEP:
        case O_PROBE: {
            ok = parse_ints(optarg, one) == 1 && one[0] <= (c == O_PROBE ? 1 << 20 : 1 << 16);
            int v = ok ? (int)one[0] : 0;
            if (c == O_THREADS)
                o->threads = v;
            else if (c == O_REPS)
                o->reps = v;
            else if (c == O_PER_STEP)
                o->per_step = v;
            else
                o->probe_mib = v;
            break;
        }
        case O_HOT:
            o->hot = true;
            break;
        case O_PLAIN:
            o->plain = true;
            break;
        case O_NO_GRAPHS:
            o->graphs = false;
            break;
        case O_JSON:
            o->json = true;
            break;
        case O_QUICK:
            o->quick = true;
            break;
        case ':':
            fprintf(stderr, "kernels: %s needs a value\n", argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "kernels: unknown argument '%s'\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "kernels: --%s: bad value '%s' (%s)\n", name, optarg,
                    c == O_SHAPE    ? "K,N,T of positive integers; at most 32 shapes"
                    : c == O_DEVICE ? "a device index"
                                    : "positive integers");
            return 2;
        }
        li = -1;
    }
    if (optind < argc) {
        fprintf(stderr, "kernels: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    return 0;
}

/* ---- the rows to run ------------------------------------------------------------ */

typedef struct spec_list {
    bk_spec *v;
    int n, cap;
} spec_list;

static sw_status push(spec_list *l, const bk_spec *s, sw_err *err) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        bk_spec *v = realloc(l->v, sizeof *v * (size_t)cap);
        if (!v) return sw_err_set(err, SW_E_NOMEM, "out of memory");
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = *s;
    return SW_OK;
}

/* The dimensions of a decode step. */
typedef struct step_dims {
    int64_t n_embd, n_ff, n_ctx_max;
    int32_t n_head, n_head_kv, head_dim, n_rot, rope_mode;
    sw_type embd_type;
    int64_t n_vocab;
    bool swiglu, geglu; /* the FFN's gated activation (a model has one; the default step both) */
} step_dims;

static const step_dims k_llama3_8b = {4096, 14336, 1 << 20,      32,     8,    128,
                                      128,  0,     SW_TYPE_Q4_0, 128256, true, true};

/* The ops other than matmul, at each token count and context length. */
static sw_status push_step_ops(const opts *o, const bool *want, const step_dims *d,
                               const sw_type *types, int n_types, spec_list *l, sw_err *err) {
    static const int64_t def_tokens[] = {1, 64}, def_ctx[] = {512, 4096, 32768};
    const int64_t *tok = o->n_tokens ? o->tokens : def_tokens;
    const int n_tok = o->n_tokens ? o->n_tokens : 2;
    const int64_t *ctx = o->n_ctxs ? o->ctxs : def_ctx;
    const int n_ctx = o->n_ctxs ? o->n_ctxs : 3;
    sw_status st = SW_OK;
    bk_spec s;
    if (want[BK_ATTENTION]) {
        for (int i = 0; i < n_ctx && st == SW_OK; i++) {
            if (ctx[i] > d->n_ctx_max) continue;
            s = (bk_spec){.op = BK_ATTENTION,
                          .type = SW_TYPE_F16,
                          .T = 1,
                          .n_seqs = 1,
                          .ctx = (int32_t)ctx[i],
                          .n_head = d->n_head,
                          .n_head_kv = d->n_head_kv,
                          .head_dim = d->head_dim};
            snprintf(s.what, sizeof s.what, "decode");
            st = push(l, &s, err);
        }
        for (int i = 0; i < n_tok && st == SW_OK; i++) {
            if (tok[i] < 2 || tok[i] > d->n_ctx_max) continue;
            s = (bk_spec){.op = BK_ATTENTION,
                          .type = SW_TYPE_F16,
                          .T = tok[i],
                          .n_seqs = 1,
                          .ctx = (int32_t)tok[i],
                          .n_head = d->n_head,
                          .n_head_kv = d->n_head_kv,
                          .head_dim = d->head_dim};
            snprintf(s.what, sizeof s.what, "prefill");
            st = push(l, &s, err);
        }
    }
    for (int i = 0; i < n_tok && st == SW_OK; i++) {
        const int64_t T = tok[i];
        if (want[BK_RMS_NORM]) {
            s = (bk_spec){.op = BK_RMS_NORM, .K = d->n_embd, .T = T};
            snprintf(s.what, sizeof s.what, "attn_norm,ffn_norm");
            if ((st = push(l, &s, err))) break;
        }
        if (want[BK_ROPE]) {
            s = (bk_spec){.op = BK_ROPE,
                          .T = T,
                          .n_head = d->n_head,
                          .head_dim = d->head_dim,
                          .n_rot = d->n_rot,
                          .rope_mode = d->rope_mode};
            snprintf(s.what, sizeof s.what, "q");
            if ((st = push(l, &s, err))) break;
        }
        if (want[BK_KV_WRITE]) {
            s = (bk_spec){.op = BK_KV_WRITE,
                          .type = SW_TYPE_F16,
                          .T = T,
                          .n_head_kv = d->n_head_kv,
                          .head_dim = d->head_dim};
            if ((st = push(l, &s, err))) break;
        }
        if (want[BK_ROPE_KV_WRITE]) {
            s = (bk_spec){.op = BK_ROPE_KV_WRITE,
                          .type = SW_TYPE_F16,
                          .T = T,
                          .n_head = d->n_head,
                          .n_head_kv = d->n_head_kv,
                          .head_dim = d->head_dim,
                          .n_rot = d->n_rot,
                          .rope_mode = d->rope_mode};
            snprintf(s.what, sizeof s.what, "q,k,kv cache");
            if ((st = push(l, &s, err))) break;
        }
        for (int k = 0; want[BK_GET_ROWS] && k < n_types; k++) {
            s = (bk_spec){.op = BK_GET_ROWS, .type = types[k], .K = d->n_embd, .T = T};
            snprintf(s.what, sizeof s.what, "token_embd");
            if ((st = push(l, &s, err))) break;
        }
        if (st != SW_OK) break;
        if (want[BK_ADD]) {
            s = (bk_spec){.op = BK_ADD, .K = d->n_embd, .T = T};
            snprintf(s.what, sizeof s.what, "residual");
            if ((st = push(l, &s, err))) break;
        }
        if (want[BK_ADD_RMS_NORM]) {
            s = (bk_spec){.op = BK_ADD_RMS_NORM, .K = d->n_embd, .T = T};
            snprintf(s.what, sizeof s.what, "residual,ffn_norm");
            if ((st = push(l, &s, err))) break;
        }
        /* the model's own activation, or both when --op names them */
        if (want[BK_SWIGLU] && (d->swiglu || o->ops)) {
            s = (bk_spec){.op = BK_SWIGLU, .K = d->n_ff, .T = T};
            snprintf(s.what, sizeof s.what, "ffn");
            if ((st = push(l, &s, err))) break;
        }
        if (want[BK_GEGLU] && (d->geglu || o->ops)) {
            s = (bk_spec){.op = BK_GEGLU, .K = d->n_ff, .T = T};
            snprintf(s.what, sizeof s.what, d->geglu && !d->swiglu ? "ffn" : "ffn (gemma)");
            if ((st = push(l, &s, err))) break;
        }
    }
    return st;
}

/* Short name of a model tensor: "blk.3.attn_q.weight" -> "attn_q". */
static void tensor_role(const char *name, char *out, size_t n) {
    const char *p = name;
    if (!strncmp(p, "blk.", 4)) {
        p = strchr(p + 4, '.');
        p = p ? p + 1 : name;
    }
    snprintf(out, n, "%s", p);
    char *dot = strstr(out, ".weight");
    if (dot) *dot = 0;
}

static bool is_matmul_weight(const char *role) {
    static const char *const r[] = {"attn_q",   "attn_k", "attn_v",   "attn_output", "attn_qkv",
                                    "ffn_gate", "ffn_up", "ffn_down", "output"};
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++)
        if (!strcmp(role, r[i])) return true;
    return false;
}

/* Every distinct matmul (type, K, N) of the model, and its step's dimensions. */
static sw_status model_specs(const opts *o, const bool *want, spec_list *l, sw_err *err) {
    sw_gguf *g = NULL;
    sw_status st = sw_gguf_open(o->model, &g, err);
    if (st != SW_OK) return st;
    sw_model_config cfg;
    if ((st = sw_model_config_load(g, &cfg, err)) != SW_OK) {
        sw_gguf_free(g);
        return st;
    }
    const sw_gguf_tensor *embd = sw_gguf_find_tensor(g, "token_embd.weight");
    if (!embd) {
        sw_gguf_free(g);
        return sw_err_set(err, SW_E_FORMAT, "%s: no token_embd.weight", o->model);
    }
    step_dims d = {cfg.n_embd,
                   cfg.n_ff,
                   cfg.n_ctx_train,
                   (int32_t)cfg.n_head,
                   (int32_t)cfg.n_head_kv,
                   (int32_t)cfg.head_dim,
                   (int32_t)cfg.n_rot,
                   (int32_t)cfg.rope_mode,
                   embd->type,
                   embd->ne[1],
                   cfg.arch != SW_ARCH_GEMMA3,
                   cfg.arch == SW_ARCH_GEMMA3};
    static const int64_t def_tokens[] = {1, 64};
    const int64_t *tok = o->n_tokens ? o->tokens : def_tokens;
    const int n_tok = o->n_tokens ? o->n_tokens : 2;
    const int first = l->n;
    for (int64_t i = 0; want[BK_MATMUL] && i < sw_gguf_n_tensors(g) && st == SW_OK; i++) {
        const sw_gguf_tensor *t = sw_gguf_tensor_at(g, i);
        char role[sizeof l->v->what];
        tensor_role(t->name, role, sizeof role);
        bool tied_out = cfg.tied_embeddings && t == embd;
        if (!(t->n_dims == 2 && (is_matmul_weight(role) || tied_out))) continue;
        if (tied_out) snprintf(role, sizeof role, "output(tied)");
        for (int k = 0; k < n_tok && st == SW_OK; k++) {
            bk_spec *dup = NULL;
            for (int j = first; j < l->n; j++)
                if (l->v[j].type == t->type && l->v[j].K == t->ne[0] && l->v[j].N == t->ne[1] &&
                    l->v[j].T == tok[k])
                    dup = &l->v[j];
            if (dup) {
                if (!strstr(dup->what, role) &&
                    strlen(dup->what) + strlen(role) + 2 < sizeof dup->what) {
                    strcat(dup->what, ",");
                    strcat(dup->what, role);
                }
                continue;
            }
            bk_spec s = {
                .op = BK_MATMUL, .type = t->type, .K = t->ne[0], .N = t->ne[1], .T = tok[k]};
            snprintf(s.what, sizeof s.what, "%s", role);
            st = push(l, &s, err);
        }
    }
    if (st == SW_OK) st = push_step_ops(o, want, &d, &d.embd_type, 1, l, err);
    sw_gguf_free(g);
    return st;
}

static sw_status build_specs(const opts *o, sw_backend *be, spec_list *l, sw_err *err) {
    bool want[BK_OP_COUNT];
    for (int k = 0; k < BK_OP_COUNT; k++)
        want[k] = !o->ops && (!o->n_shapes || k == BK_MATMUL);
    if (o->ops) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", o->ops);
        for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save)) {
            bool all = !strcmp(tok, "all"), found = all;
            for (int k = 0; k < BK_OP_COUNT; k++)
                if (all || !strcmp(tok, bk_op_name((bk_op)k))) want[k] = found = true;
            if (!found)
                return sw_err_set(err, SW_E_INVALID_ARG,
                                  "--op '%s': unknown (matmul, attention, rms_norm, rope, "
                                  "kv_write, get_rows, add, swiglu, geglu, add_rms_norm, "
                                  "rope_kv_write, all)",
                                  tok);
        }
    }
    if (o->model) return model_specs(o, want, l, err);

    static const sw_type all[] = {SW_TYPE_F32,  SW_TYPE_F16,  SW_TYPE_BF16, SW_TYPE_Q8_0,
                                  SW_TYPE_Q4_0, SW_TYPE_Q4_1, SW_TYPE_Q5_0, SW_TYPE_Q5_1,
                                  SW_TYPE_Q2_K, SW_TYPE_Q3_K, SW_TYPE_Q4_K, SW_TYPE_Q5_K,
                                  SW_TYPE_Q6_K};
    sw_type types[MAX_LIST];
    int n_types = 0;
    if (o->types) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", o->types);
        for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save)) {
            if (n_types == MAX_LIST)
                return sw_err_set(err, SW_E_INVALID_ARG, "--type: too many types");
            sw_status st = sw_type_from_name(tok, &types[n_types], err);
            if (st != SW_OK) return st;
            n_types++;
        }
    } else {
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            if (sw_be_supports_type(be, all[i])) types[n_types++] = all[i];
    }
    static const int64_t def_shapes[][3] = {
        {4096, 4096, 1}, {4096, 14336, 1}, {14336, 4096, 1}, {4096, 4096, 64}};
    const int n_shapes = o->n_shapes ? o->n_shapes : 4;
    sw_status st = SW_OK;
    for (int i = 0; want[BK_MATMUL] && i < n_shapes && st == SW_OK; i++)
        for (int k = 0; k < n_types && st == SW_OK; k++) {
            const int64_t *sh = o->n_shapes ? o->shapes[i] : def_shapes[i];
            bk_spec s = {.op = BK_MATMUL, .type = types[k], .K = sh[0], .N = sh[1], .T = sh[2]};
            st = push(l, &s, err);
        }
    const sw_type q4 = SW_TYPE_Q4_0;
    if (st == SW_OK)
        st = push_step_ops(o, want, &k_llama3_8b, o->types ? types : &q4, o->types ? n_types : 1, l,
                           err);
    return st;
}

/* ---- the report ----------------------------------------------------------------- */

static const char *const k_compute_names[BK_C_COUNT] = {"int8", "f32", "gemm_f16", "gemm_i8"};

static void print_peaks(const bk_ctx *x) {
    const bk_peaks *pk = &x->peaks;
    printf("peaks, measured in this run (best samples before, between and after the rows; memory: "
           "best whole pass):\n");
    for (int i = 0; i < pk->n_mem; i++) {
        const bk_mem_probe *m = &pk->mem[i];
        printf("  memory  %-5s %8.1f MiB:", m->level, (double)m->bytes / MIB);
        if (m->read_gbps > 0) printf("  read %8.2f GB/s", m->read_gbps);
        if (m->copy_gbps > 0) printf("  copy %8.2f GB/s", m->copy_gbps);
        if (m->add_gbps > 0) printf("  add %8.2f GB/s", m->add_gbps);
        if (m->read_seg_gbps > 0) printf("  (read, best segment %.2f)", m->read_seg_gbps);
        printf("\n");
    }
    printf("          (%s)\n", pk->mem_how);
    for (int k = 0; k < BK_C_COUNT; k++)
        if (pk->gops[k] > 0)
            printf("  compute %-8s %10.1f Gop/s  (%s)\n", k_compute_names[k], pk->gops[k],
                   pk->how[k]);
}

/* The type a row names: weights, table or KV cache; activations are f32. */
static const char *row_type(const bk_row *r) {
    switch (r->spec.op) {
    case BK_MATMUL:
    case BK_GET_ROWS:
    case BK_ATTENTION:
    case BK_KV_WRITE:
    case BK_ROPE_KV_WRITE:
        return sw_type_name(r->spec.type);
    default:
        return "f32";
    }
}

static void print_table(const bk_row *rows, int n) {
    printf("%-13s %-5s %-26s %-22s %10s %10s %10s %5s %9s %9s %7s %-7s %-5s %8s %8s %6s\n", "op",
           "type", "shape", "what", "best_us", "median_us", "cpu_us", "wait", "MB", "Mop", "op/B",
           "bound", "level", "GB/s", "Gop/s", "%peak");
    for (int i = 0; i < n; i++) {
        const bk_row *r = &rows[i];
        char wait[16] = "-", cpu[24] = "-";
        if (r->waited >= 0) snprintf(wait, sizeof wait, "%.0f%%", 100 * r->waited);
        if (r->cpu_med >= 0) snprintf(cpu, sizeof cpu, "%.1f", r->cpu_med * 1e6);
        printf("%-13s %-5s %-26s %-22s %10.1f %10.1f %10s %5s %9.3f %9.2f %7.2f %-7s %-5s %8.2f "
               "%8.2f %5.1f%%\n",
               bk_op_name(r->spec.op), row_type(r), r->shape, r->spec.what[0] ? r->spec.what : "-",
               r->t_best * 1e6, r->t_med * 1e6, cpu, wait, r->bytes / 1e6, r->ops / 1e6, r->ai,
               r->compute_bound ? "compute" : "mem", r->level->level, r->gbps, r->gops, r->pct);
    }
}

/* The sizes of a row's op, enough to recount its bytes and ops (the test does). */
static void json_dims(cJSON *e, const bk_spec *s) {
    const bool heads = s->op == BK_ATTENTION || s->op == BK_ROPE || s->op == BK_KV_WRITE ||
                       s->op == BK_ROPE_KV_WRITE;
    if (s->op == BK_MATMUL) {
        cJSON_AddNumberToObject(e, "K", (double)s->K);
        cJSON_AddNumberToObject(e, "N", (double)s->N);
    } else if (!heads) {
        cJSON_AddNumberToObject(e, "n", (double)s->K); /* row length */
    }
    cJSON_AddNumberToObject(e, "T", (double)s->T);
    if (!heads) return;
    cJSON_AddNumberToObject(e, "head_dim", s->head_dim);
    if (s->op != BK_KV_WRITE) cJSON_AddNumberToObject(e, "n_head", s->n_head);
    if (s->op != BK_ROPE) cJSON_AddNumberToObject(e, "n_head_kv", s->n_head_kv);
    if (s->op == BK_ROPE || s->op == BK_ROPE_KV_WRITE)
        cJSON_AddNumberToObject(e, "n_rot", s->n_rot);
    if (s->op == BK_ATTENTION) {
        cJSON_AddNumberToObject(e, "ctx", s->ctx);
        cJSON_AddNumberToObject(e, "n_seqs", s->n_seqs);
    }
}

static cJSON *json_report(const bk_ctx *x, const opts *o, const char *command, const bk_row *rows,
                          int n) {
    cJSON *j = cJSON_CreateObject();
    char date[32];
    time_t now = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    cJSON_AddStringToObject(j, "bench", "kernels");
    cJSON_AddStringToObject(j, "date", date);
    cJSON_AddStringToObject(j, "command", command);
    cJSON_AddStringToObject(j, "backend", sw_backend_name(x->be));
    cJSON_AddNumberToObject(j, "threads", x->threads);
    cJSON_AddStringToObject(j, "layout", x->plain ? "plain" : "engine");
    cJSON_AddStringToObject(j, "operands", x->hot ? "hot" : "cold");
    cJSON_AddBoolToObject(j, "quick", x->quick);
    cJSON_AddStringToObject(j, "cold_how", x->cold_how);
    if (o->model) cJSON_AddStringToObject(j, "model", o->model);
    cJSON_AddItemToObject(j, "host", cJSON_Duplicate(x->host, true));
    cJSON *pk = cJSON_AddObjectToObject(j, "peaks");
    cJSON *mem = cJSON_AddArrayToObject(pk, "memory");
    for (int i = 0; i < x->peaks.n_mem; i++) {
        const bk_mem_probe *m = &x->peaks.mem[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "level", m->level);
        cJSON_AddNumberToObject(e, "bytes", (double)m->bytes);
        if (m->read_gbps > 0) cJSON_AddNumberToObject(e, "read_gbps", m->read_gbps);
        if (m->read_seg_gbps > 0)
            cJSON_AddNumberToObject(e, "read_best_segment_gbps", m->read_seg_gbps);
        if (m->copy_gbps > 0) cJSON_AddNumberToObject(e, "copy_gbps", m->copy_gbps);
        if (m->add_gbps > 0) cJSON_AddNumberToObject(e, "add_gbps", m->add_gbps);
        cJSON_AddItemToArray(mem, e);
    }
    cJSON_AddStringToObject(pk, "memory_how", x->peaks.mem_how);
    cJSON *comp = cJSON_AddObjectToObject(pk, "compute");
    for (int k = 0; k < BK_C_COUNT; k++)
        if (x->peaks.gops[k] > 0) {
            cJSON *e = cJSON_AddObjectToObject(comp, k_compute_names[k]);
            cJSON_AddNumberToObject(e, "gops", x->peaks.gops[k]);
            cJSON_AddStringToObject(e, "how", x->peaks.how[k]);
        }
    cJSON *arr = cJSON_AddArrayToObject(j, "rows");
    for (int i = 0; i < n; i++) {
        const bk_row *r = &rows[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "op", bk_op_name(r->spec.op));
        cJSON_AddStringToObject(e, "type", row_type(r));
        cJSON_AddStringToObject(e, "shape", r->shape);
        cJSON_AddStringToObject(e, "what", r->spec.what);
        json_dims(e, &r->spec);
        cJSON_AddNumberToObject(e, "bytes", r->bytes);
        cJSON_AddNumberToObject(e, "bytes_written", r->written);
        cJSON_AddNumberToObject(e, "ops", r->ops);
        cJSON_AddNumberToObject(e, "time_us_best", r->t_best * 1e6);
        cJSON_AddNumberToObject(e, "time_us_median", r->t_med * 1e6);
        if (r->waited >= 0) cJSON_AddNumberToObject(e, "waited_best", r->waited);
        if (r->clean >= 0) cJSON_AddNumberToObject(e, "undisturbed_calls", r->clean);
        if (r->cpu_med >= 0) cJSON_AddNumberToObject(e, "cpu_us", r->cpu_med * 1e6);
        cJSON_AddNumberToObject(e, "calls", x->reps);
        cJSON_AddNumberToObject(e, "gbps", r->gbps);
        cJSON_AddNumberToObject(e, "gops", r->gops);
        cJSON_AddNumberToObject(e, "intensity", r->ai);
        cJSON_AddNumberToObject(e, "ridge", r->ridge);
        cJSON_AddStringToObject(e, "bound", r->compute_bound ? "compute" : "mem");
        cJSON_AddStringToObject(e, "level", r->level->level);
        cJSON_AddNumberToObject(e, "peak_gbps", r->peak_gbps);
        cJSON_AddNumberToObject(e, "peak_gops", r->peak_gops);
        cJSON_AddStringToObject(e, "peak_compute", k_compute_names[r->peak_compute]);
        cJSON_AddNumberToObject(e, "pct_peak", r->pct);
        if (r->pct_cpu >= 0) cJSON_AddNumberToObject(e, "pct_peak_cpu", r->pct_cpu);
        cJSON_AddStringToObject(e, "peak_gbps_from", r->peak_same ? "read_same" : "probe");
        if (r->read_same > 0) cJSON_AddNumberToObject(e, "read_same_us", r->read_same * 1e6);
        if (r->read_same > 0 && !r->compute_bound)
            cJSON_AddNumberToObject(e, "pct_read_same", 100 * r->read_same / r->t_best);
        if (r->working_set == SIZE_MAX)
            cJSON_AddStringToObject(e, "working_set", "dram (flushed)");
        else
            cJSON_AddNumberToObject(e, "working_set", (double)r->working_set);
        cJSON_AddNumberToObject(e, "copies", r->copies);
        cJSON_AddNumberToObject(e, "calls_per_step", r->per_step);
        cJSON_AddItemToArray(arr, e);
    }
    return j;
}

/* ---- main ----------------------------------------------------------------------- */

static void setup_ctx(bk_ctx *x, const opts *o) {
    x->threads = x->be->n_threads;
    x->hot = o->hot;
    x->plain = o->plain;
    x->quick = o->quick;
    const size_t llc = bk_cpu_llc_bytes();
    if (x->kind == BK_CPU) {
        x->reps = o->reps ? o->reps : o->quick ? 3 : 10;
        x->probe_bytes = o->probe_mib ? (size_t)o->probe_mib * MIB : SW_MAX(4 * llc, 256 * MIB);
        snprintf(x->cold_how, sizeof x->cold_how, "%s of every operand before each call",
                 bk_cpu_flush_name());
        return;
    }
    x->reps = o->reps ? o->reps : o->quick ? 3 : 20;
    x->min_per_step = o->per_step ? o->per_step : 32;
    x->max_per_step = 4096;
    x->step_budget = 2.0;
    x->cold_bytes = 1024 * MIB;
#ifdef SW_HAVE_VULKAN
    if (x->kind == BK_VULKAN) {
        const sw_vk_device_info *di = sw_vk_backend_device(x->be);
        if (di->kind == SW_VK_CPU) { /* lavapipe: the host's memory, and slow */
            x->cold_bytes = SW_MAX(4 * llc, 256 * MIB);
            x->min_per_step = o->per_step ? o->per_step : 1;
            x->max_per_step = o->quick ? 64 : 1024;
            x->reps = o->reps ? o->reps : 3;
            x->step_budget = o->quick ? 0.1 : 0.5;
        } else if (di->device_local_bytes / 4 < x->cold_bytes) {
            x->cold_bytes = SW_MAX(di->device_local_bytes / 4, 64 * MIB);
        }
    }
#endif
#ifdef SW_HAVE_CUDA
    if (x->kind == BK_CUDA) {
        sw_cuda_device_info ci;
        sw_err e = {{0}};
        if (sw_cuda_device_info_get(o->device < 0 ? 0 : o->device, &ci, &e) == SW_OK)
            x->cold_bytes = SW_MAX((size_t)8 * (size_t)ci.l2_bytes, 512 * MIB);
    }
#endif
    if (o->probe_mib) x->cold_bytes = (size_t)o->probe_mib * MIB;
    snprintf(x->cold_how, sizeof x->cold_how,
             "each call of a step on its own copy of the operands, copies cycled over %zu MiB",
             x->cold_bytes >> 20);
}

static sw_status measure_peaks(bk_ctx *x, bk_phase phase, sw_err *err) {
    return x->kind == BK_CPU ? bk_cpu_peaks(x, phase, err) : bk_gpu_peaks(x, phase, err);
}

int sw_bench_kernels_main(int argc, char **argv) {
    opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc == 1 ? 0 : rc;
    if (!strcmp(o.backend, "cuda") && !getenv("SW_CUDA_GRAPHS"))
        setenv("SW_CUDA_GRAPHS", o.graphs ? "1" : "0", 1);
    sw_err err = {{0}};
    bk_ctx x;
    memset(&x, 0, sizeof x);
    sw_backend_config cfg = {.name = o.backend, .n_threads = o.threads, .device = o.device};
    if (sw_backend_create(&cfg, &x.be, &err) != SW_OK) {
        fprintf(stderr, "kernels: %s\n", err.msg);
        return 1;
    }
    const char *bname = sw_backend_name(x.be);
    x.kind = !strcmp(bname, "cuda") ? BK_CUDA : !strcmp(bname, "vulkan") ? BK_VULKAN : BK_CPU;
    setup_ctx(&x, &o);
    spec_list specs = {NULL, 0, 0};
    bk_row *rows = NULL;
    int n_rows = 0;
    rc = 0;
    if (build_specs(&o, x.be, &specs, &err) != SW_OK) {
        fprintf(stderr, "kernels: %s\n", err.msg);
        rc = 2;
        goto out;
    }
    if (x.kind == BK_CPU)
        bk_cpu_host(&x);
    else
        bk_gpu_host(&x, o.device);
    if (measure_peaks(&x, BK_FIRST, &err) != SW_OK) {
        fprintf(stderr, "kernels: peak probes: %s\n", err.msg);
        rc = 1;
        goto out;
    }
    rows = calloc((size_t)SW_MAX(specs.n, 1), sizeof *rows);
    if (!rows) {
        rc = 1;
        goto out;
    }
    for (int i = 0; i < specs.n; i++) {
        bk_row *r = &rows[n_rows];
        if (bk_run(&x, &specs.v[i], r, &err) != SW_OK) {
            fprintf(stderr, "kernels: %s %s: %s\n", bk_op_name(specs.v[i].op),
                    sw_type_name(specs.v[i].type), err.msg);
            rc = 1;
            continue;
        }
        n_rows++;
        /* what merely reading the row's operands takes, at the same moment */
        if (x.kind == BK_CPU && !x.hot && r->spec.op == BK_MATMUL)
            r->read_same = SW_MAX(0.0, bk_cpu_read_time(&x, (size_t)(r->bytes - r->written)));
        if (measure_peaks(&x, BK_BETWEEN, &err) != SW_OK) {
            fprintf(stderr, "kernels: peak probes: %s\n", err.msg);
            rc = 1;
        }
    }
    if (measure_peaks(&x, BK_LAST, &err) != SW_OK) {
        fprintf(stderr, "kernels: peak probes (after the rows): %s\n", err.msg);
        rc = 1;
    }
    for (int i = 0; i < n_rows; i++)
        bk_judge(&x, &rows[i]);
    char command[2048] = "spillway-bench";
    for (int i = 0; i < argc; i++) {
        size_t used = strlen(command);
        snprintf(command + used, sizeof command - used, " %s", argv[i]);
    }
    if (o.json) {
        cJSON *j = json_report(&x, &o, command, rows, n_rows);
#ifdef SW_HAVE_CUDA
        if (x.kind == BK_CUDA) {
            int64_t cap = 0, rep = 0;
            sw_backend_cuda_graph_stats(x.be, &cap, &rep);
            cJSON *g = cJSON_AddObjectToObject(j, "cuda_graphs");
            cJSON_AddNumberToObject(g, "captures", (double)cap);
            cJSON_AddNumberToObject(g, "replays", (double)rep);
        }
#endif
        char *s = cJSON_Print(j);
        if (s) printf("%s\n", s);
        free(s);
        cJSON_Delete(j);
    } else {
        printf("backend %s, %d threads, weights in the %s layout, operands %s (%s)\n%s%s%s\n",
               bname, x.threads, x.plain ? "plain GGUF" : "engine's", x.hot ? "hot" : "cold",
               x.hot ? "reused, no flush" : x.cold_how, x.device_line, x.device_line[0] ? "\n" : "",
               x.host_line);
        print_peaks(&x);
        print_table(rows, n_rows);
#ifdef SW_HAVE_CUDA
        if (x.kind == BK_CUDA) {
            int64_t cap = 0, rep = 0;
            sw_backend_cuda_graph_stats(x.be, &cap, &rep);
            printf("graphs: %lld captures, %lld replays%s\n", (long long)cap, (long long)rep,
                   rep ? "" : " (times include launch overhead)");
        }
#endif
    }
out:
    free(specs.v);
    free(rows);
    cJSON_Delete(x.host);
    if (x.kind == BK_CPU) bk_cpu_peaks_free(&x);
    sw_backend_free(x.be);
    return rc;
}
