/* spillway-quantize — convert the float weight matrices of any GGUF to another
 * tensor type.
 *
 *   spillway-quantize IN.gguf OUT.gguf TYPE
 *
 * Tensors with two or more dimensions stored as f32/f16/bf16 become TYPE (with
 * the row-size fallback and the q4_k_m mixture of sw_model_quant_choose);
 * 1-D tensors (norms, biases) are copied unchanged, as are tensors already in
 * the chosen type. All metadata is kept; general.file_type is updated. Works on
 * any GGUF, not only llama models: names only matter for the q4_k_m mixture.
 * Rows are converted one at a time while the writer streams the file, so memory
 * use does not grow with the model. */
#include <spillway.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const k_types[] = {"f32",  "f16",  "bf16", "q4_0", "q4_1", "q5_0", "q5_1",
                                      "q8_0", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "q4_k_m"};

/* One tensor being converted; the writer's fill callback may ask for its bytes
 * in one piece or in consecutive pieces, `pos` says how far we are. */
#define Q_MAX_THREADS 64

/* Per-worker scratch rows, shared by all tensors. */
typedef struct q_pool {
    int n_threads;
    float *row[Q_MAX_THREADS];
    uint8_t *qrow; /* worker 0 only: for rows the writer splits */
} q_pool;

typedef struct q_job {
    const sw_gguf_tensor *src; /* borrowed from the input sw_gguf */
    sw_type type;
    size_t in_row, out_row;
    int64_t n_rows;
    uint64_t pos;
    q_pool *pool; /* borrowed */
} q_job;

static void usage(FILE *f) {
    fprintf(f, "usage: spillway-quantize [--threads N] IN.gguf OUT.gguf TYPE\n"
               "TYPE: f32 f16 bf16 q4_0 q4_1 q5_0 q5_1 q8_0 q2_k q3_k q4_k q5_k q6_k q4_k_m\n"
               "Converts f32/f16/bf16 tensors with 2+ dimensions to TYPE; 1-D tensors and all\n"
               "metadata are kept. Rows are converted by N threads (default: one per CPU).\n");
}

static bool is_float(sw_type t) {
    return t == SW_TYPE_F32 || t == SW_TYPE_F16 || t == SW_TYPE_BF16;
}

static sw_status to_f32(sw_type t, const uint8_t *src, float *dst, int64_t n) {
    if (t == SW_TYPE_F32) {
        memcpy(dst, src, (size_t)n * sizeof(float)); /* the mapping need not be 4-aligned */
        return SW_OK;
    }
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, src + 2 * i, 2);
        dst[i] = t == SW_TYPE_F16 ? sw_f16_to_f32(h) : sw_bf16_to_f32(h);
    }
    return SW_OK;
}

static sw_status from_f32(sw_type t, const float *src, void *dst, int64_t n, sw_err *err) {
    if (t == SW_TYPE_F32) {
        memcpy(dst, src, (size_t)n * sizeof(float));
        return SW_OK;
    }
    if (t == SW_TYPE_F16 || t == SW_TYPE_BF16) {
        uint16_t *d = dst;
        for (int64_t i = 0; i < n; i++)
            d[i] = t == SW_TYPE_F16 ? sw_f32_to_f16(src[i]) : sw_f32_to_bf16(src[i]);
        return SW_OK;
    }
    return sw_quantize_row(t, src, dst, n, err);
}

static sw_status convert_row(const q_job *j, float *row, int64_t r, void *dst, sw_err *err) {
    const int64_t n = j->src->ne[0];
    const uint8_t *in = (const uint8_t *)j->src->data + (uint64_t)r * j->in_row;
    to_f32(j->src->type, in, row, n);
    sw_status st = from_f32(j->type, row, dst, n, err);
    if (st != SW_OK) return sw_err_wrap(err, st, "%s: row %lld", j->src->name, (long long)r);
    return SW_OK;
}

/* A worker's share of whole rows [r0, r1), written at out. */
typedef struct q_work {
    const q_job *j;
    float *row;
    int64_t r0, r1;
    uint8_t *out;
    sw_status st;
    sw_err err;
} q_work;

static void *q_work_run(void *arg) {
    q_work *w = arg;
    w->st = SW_OK;
    for (int64_t r = w->r0; r < w->r1 && w->st == SW_OK; r++)
        w->st = convert_row(w->j, w->row, r, w->out + (size_t)(r - w->r0) * w->j->out_row, &w->err);
    return NULL;
}

/* Rows are independent, so they are shared out among the workers. */
static sw_status convert_rows(const q_job *j, int64_t r0, int64_t n, uint8_t *out, sw_err *err) {
    int nt = j->pool->n_threads;
    if (nt < 1 || n < 2 * (int64_t)nt) nt = 1;
    q_work w[Q_MAX_THREADS];
    pthread_t tid[Q_MAX_THREADS];
    bool started[Q_MAX_THREADS] = {false};
    for (int i = 0; i < nt; i++) {
        int64_t a = r0 + n * i / nt, b = r0 + n * (i + 1) / nt;
        w[i] = (q_work){.j = j,
                        .row = j->pool->row[i],
                        .r0 = a,
                        .r1 = b,
                        .out = out + (size_t)(a - r0) * j->out_row};
        w[i].err.msg[0] = '\0';
    }
    for (int i = 1; i < nt; i++)
        started[i] = pthread_create(&tid[i], NULL, q_work_run, &w[i]) == 0;
    q_work_run(&w[0]);
    for (int i = 1; i < nt; i++) {
        if (started[i])
            pthread_join(tid[i], NULL);
        else
            q_work_run(&w[i]); /* no thread: do its share here */
    }
    for (int i = 0; i < nt; i++) {
        if (w[i].st != SW_OK) {
            if (err) *err = w[i].err;
            return w[i].st;
        }
    }
    return SW_OK;
}

static sw_status q_fill(void *ctx, void *dst, size_t nbytes, sw_err *err) {
    q_job *j = ctx;
    uint8_t *out = dst;
    const uint64_t total = (uint64_t)j->out_row * (uint64_t)j->n_rows;
    if (j->pos + nbytes > total)
        return sw_err_set(err, SW_E_INTERNAL,
                          "%s: writer asked for %zu bytes at offset %llu of %llu", j->src->name,
                          nbytes, (unsigned long long)j->pos, (unsigned long long)total);
    while (nbytes > 0) {
        int64_t r = (int64_t)(j->pos / j->out_row);
        size_t off = (size_t)(j->pos % j->out_row), n;
        sw_status st;
        if (off == 0 && nbytes >= j->out_row) {
            int64_t rows = (int64_t)(nbytes / j->out_row);
            n = (size_t)rows * j->out_row;
            st = convert_rows(j, r, rows, out, err);
        } else { /* the writer split a row: convert aside, copy the part asked for */
            n = SW_MIN(j->out_row - off, nbytes);
            st = convert_row(j, j->pool->row[0], r, j->pool->qrow, err);
            if (st == SW_OK) memcpy(out, j->pool->qrow + off, n);
        }
        if (st != SW_OK) return st;
        out += n;
        nbytes -= n;
        j->pos += n;
    }
    return SW_OK;
}

static void fmt_shape(char *buf, size_t cap, const sw_gguf_tensor *t) {
    size_t off = (size_t)snprintf(buf, cap, "[");
    for (uint32_t d = 0; d < t->n_dims && off < cap; d++)
        off += (size_t)snprintf(buf + off, cap - off, "%s%lld", d ? ", " : "", (long long)t->ne[d]);
    if (off < cap) snprintf(buf + off, cap - off, "]");
}

/* Highest "blk.N." index + 1: the layer count for the q4_k_m mixture, read from
 * the tensors so that it works whatever the architecture keys are. */
static int64_t count_layers(const sw_gguf *g) {
    int64_t n = 0;
    for (int64_t i = 0; i < sw_gguf_n_tensors(g); i++) {
        const char *name = sw_gguf_tensor_at(g, i)->name;
        long long v;
        if (sscanf(name, "blk.%lld.", &v) == 1 && v >= 0 && v + 1 > n) n = v + 1;
    }
    return n;
}

/* "12.3 KiB" style; buf needs 16 bytes. */
static const char *human(uint64_t b, char *buf) {
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1024.0 && u < 4)
        v /= 1024.0, u++;
    snprintf(buf, 16, u ? "%.2f %s" : "%.0f %s", v, units[u]);
    return buf;
}

int main(int argc, char **argv) {
    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        usage(stdout);
        return 0;
    }
    q_pool pool = {0};
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    pool.n_threads = ncpu < 1 ? 1 : ncpu > Q_MAX_THREADS ? Q_MAX_THREADS : (int)ncpu;
    if (argc >= 3 && !strcmp(argv[1], "--threads")) {
        char *end = NULL;
        long n = strtol(argv[2], &end, 10);
        if (!*argv[2] || *end || n < 1 || n > Q_MAX_THREADS) {
            fprintf(stderr, "spillway-quantize: --threads '%s': must be an integer in 1..%d\n",
                    argv[2], Q_MAX_THREADS);
            return 2;
        }
        pool.n_threads = (int)n;
        argc -= 2;
        argv += 2;
    }
    if (argc != 4) {
        usage(stderr);
        return 2;
    }
    const char *in = argv[1], *outp = argv[2], *tname = argv[3];
    char lname[16] = {0};
    for (size_t i = 0; tname[i] && i + 1 < sizeof lname; i++)
        lname[i] = (char)(tname[i] >= 'A' && tname[i] <= 'Z' ? tname[i] - 'A' + 'a' : tname[i]);
    size_t k = 0;
    for (; k < sizeof k_types / sizeof k_types[0]; k++)
        if (!strcmp(lname, k_types[k]) && strlen(tname) == strlen(lname)) break;
    sw_type base;
    bool q4_k_m = k < sizeof k_types / sizeof k_types[0] && !strcmp(k_types[k], "q4_k_m");
    if (k == sizeof k_types / sizeof k_types[0] ||
        sw_type_from_name(q4_k_m ? "q4_k" : lname, &base, NULL) != SW_OK) {
        fprintf(stderr,
                "spillway-quantize: unknown output type '%s' (use f32, f16, bf16, q4_0, q4_1, "
                "q5_0, q5_1, q8_0, q2_k, q3_k, q4_k, q5_k, q6_k or q4_k_m)\n",
                tname);
        return 2;
    }

    sw_err err = {{0}};
    sw_status st;
    sw_gguf *g = NULL;
    sw_gguf_writer *w = NULL;
    q_job *jobs = NULL;
    uint64_t bytes_in = 0, bytes_out = 0;
    int n_conv = 0, n_fallback = 0;
    double t0 = sw_time_s();

    if ((st = sw_gguf_open(in, &g, &err)) != SW_OK) goto done;
    const int64_t nt = sw_gguf_n_tensors(g), n_layer = count_layers(g);
    const bool tied = sw_gguf_find_tensor(g, "output.weight") == NULL; /* token_embd is the output */
    w = sw_gguf_writer_create();
    jobs = calloc((size_t)(nt > 0 ? nt : 1), sizeof *jobs);
    if (!w || !jobs) {
        st = sw_err_set(&err, SW_E_NOMEM, "writer for '%s'", outp);
        goto done;
    }
    for (int64_t i = 0; i < sw_gguf_n_kv(g); i++) {
        if ((st = sw_gguf_writer_copy_kv(w, g, i)) != SW_OK) {
            sw_err_set(&err, st, "'%s': copying key '%s'", in, sw_gguf_kv_key(g, i));
            goto done;
        }
    }
    if ((st = sw_gguf_writer_set_u32(w, "general.file_type", sw_model_file_type(base, q4_k_m))) !=
            SW_OK ||
        (st = sw_gguf_writer_set_u32(w, "general.quantization_version", 2)) != SW_OK) {
        sw_err_set(&err, st, "setting general.file_type");
        goto done;
    }

    /* plan every tensor first so that a bad input fails before OUT is written */
    int64_t max_ne0 = 0;
    size_t max_out_row = 0;
    for (int64_t i = 0; i < nt; i++) {
        const sw_gguf_tensor *t = sw_gguf_tensor_at(g, i);
        q_job *j = &jobs[i];
        char shape[96], note[128] = "";
        j->src = t;
        j->type = t->type;
        bool convert = t->n_dims >= 2;
        if (convert) {
            if (!is_float(t->type)) {
                st = sw_err_set(&err, SW_E_UNSUPPORTED,
                                "'%s': tensor '%s' has type %s; only f32/f16/bf16 weights can be "
                                "converted",
                                in, t->name, sw_type_name(t->type));
                goto done;
            }
            sw_type wanted;
            j->type = sw_model_quant_choose(t->name, t->ne[0], base, q4_k_m, n_layer, tied,
                                           &wanted);
            if (j->type != wanted) {
                snprintf(note, sizeof note, "  (fallback: rows of %lld do not fit %s blocks)",
                         (long long)t->ne[0], sw_type_name(wanted));
                n_fallback++;
            }
        }
        fmt_shape(shape, sizeof shape, t);
        j->n_rows = 1;
        for (uint32_t d = 1; d < t->n_dims; d++)
            j->n_rows *= t->ne[d];
        j->in_row = sw_row_size(t->type, t->ne[0]);
        j->out_row = sw_row_size(j->type, t->ne[0]);
        uint64_t out_bytes = (uint64_t)j->out_row * (uint64_t)j->n_rows;
        if (j->type == t->type) out_bytes = t->nbytes;
        bytes_in += t->nbytes;
        bytes_out += out_bytes;
        char h1[16], h2[16];
        printf("[%4lld/%lld] %-32s %-18s %5s -> %-5s %11s -> %11s%s\n", (long long)i + 1,
               (long long)nt, t->name, shape, sw_type_name(t->type), sw_type_name(j->type),
               human(t->nbytes, h1), human(out_bytes, h2), note);
        if (j->type == t->type) {
            st = sw_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, NULL,
                                           NULL, &err);
        } else {
            n_conv++;
            max_ne0 = SW_MAX(max_ne0, t->ne[0]);
            max_out_row = SW_MAX(max_out_row, j->out_row);
            st = sw_gguf_writer_add_tensor(w, t->name, j->type, t->n_dims, t->ne, NULL, q_fill, j,
                                           &err);
        }
        if (st != SW_OK) {
            sw_err_wrap(&err, st, "'%s': tensor '%s'", outp, t->name);
            goto done;
        }
    }
    for (int i = 0; i < pool.n_threads; i++) {
        pool.row[i] = malloc((size_t)(max_ne0 > 0 ? max_ne0 : 1) * sizeof(float));
        if (!pool.row[i]) break;
    }
    pool.qrow = malloc(max_out_row > 0 ? max_out_row : 1);
    if (!pool.row[pool.n_threads - 1] || !pool.qrow) {
        st = sw_err_set(&err, SW_E_NOMEM, "row buffers (%lld elements)", (long long)max_ne0);
        goto done;
    }
    for (int64_t i = 0; i < nt; i++)
        jobs[i].pool = &pool;
    if ((st = sw_gguf_writer_write(w, outp, &err)) != SW_OK) goto done;
    char h1[16], h2[16], h3[16], h4[16];
    struct stat sb;
    uint64_t out_size = stat(outp, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    printf("converted %d of %lld tensors to %s (%d fell back); tensor data %s -> %s; "
           "file %s -> %s; %.1f s\n",
           n_conv, (long long)nt, k_types[k], n_fallback, human(bytes_in, h1), human(bytes_out, h2),
           human(sw_gguf_file_size(g), h3), human(out_size, h4), sw_time_s() - t0);
done:
    if (st != SW_OK) fprintf(stderr, "spillway-quantize: %s: %s\n", sw_status_str(st), err.msg);
    for (int i = 0; i < Q_MAX_THREADS; i++)
        free(pool.row[i]);
    free(pool.qrow);
    free(jobs);
    sw_gguf_writer_free(w);
    sw_gguf_free(g);
    return st == SW_OK ? 0 : 1;
}
