/* spillway-server — an OpenAI-compatible HTTP server over one model and one
 * continuous-batching engine.
 *
 * Startup order: parse flags, start listening (so /health answers 503 while
 * the model loads), then load on a separate thread (download with --hf,
 * backend, model, chat template, engine) and flip to ready. main() itself
 * waits for SIGINT/SIGTERM; on the first one it stops accepting, lets the
 * connection threads cancel their requests (clients get an error chunk or a
 * 503), waits for them to drain, and frees everything. A second signal skips
 * the drain. Exit codes: 0 clean shutdown, 1 runtime error (model failed to
 * load, cannot listen), 2 bad command line. */
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hf_download.h"
#include "spill.h"

/* How long a shutdown waits for in-flight requests to finish their last chunk. */
#define DRAIN_S 10.0

static void usage(FILE *f) {
    fprintf(f,
            "usage: spillway-server (-m FILE | --hf OWNER/REPO:FILE) [options]\n"
            "model:\n"
            "  -m, --model FILE          GGUF model to serve\n"
            "  --hf OWNER/REPO:FILE      download FILE from the Hugging Face hub (cached; resumes;\n"
            "                            verifies the LFS sha256). $HF_TOKEN is sent if set\n"
            "  --cache-dir DIR           download cache (default $SPILLWAY_CACHE or ~/.cache/spillway)\n"
            "  --download-only           with --hf: download, print the path, exit\n"
            "  --model-alias NAME        model name in responses and /v1/models (default: file name)\n"
            "  --chat-template NAME      override the chat template (%s)\n"
            "  --backend NAME            cpu|cuda|vulkan|auto (default auto)\n"
            "  --device N                GPU device index (default: the preferred one)\n"
            "  --list-devices            print the devices each backend sees and exit\n"
            "  --threads N               CPU threads (default: all cores)\n"
            "engine:\n"
            "  --ctx N                   tokens per sequence (default: model's, capped at 4096)\n"
            "  --parallel N              sequences generating at once (default 64)\n"
            "  --max-queue N             waiting requests before 429 (default 1024)\n"
            "  --batch-tokens N          tokens per engine step (default 512)\n"
            "  --kv-memory BYTES         KV cache budget, e.g. 512M or 4G (default: parallel x ctx\n"
            "                            tokens, at most half the free device memory, 2G on cpu)\n"
            "  --no-prefix-cache         do not share KV blocks between requests with a common prefix\n"
            "http:\n"
            "  --host ADDR               address to listen on (default 127.0.0.1)\n"
            "  --port N                  port (default 8080; 0 picks a free one and prints it)\n"
            "  --api-key KEY             require 'Authorization: Bearer KEY' (repeatable)\n"
            "  --api-key-file FILE       one key per line ('#' comments)\n"
            "  --max-body BYTES          largest request body (default 1M; larger -> 413)\n"
            "  --timeout SECONDS         idle-connection timeout and per-request deadline (default 600;\n"
            "                            0 = none)\n"
            "cloud spill-over (docs/fallback.md):\n"
            "  --cloud-provider NAME     anthropic|openai (default anthropic)\n"
            "  --cloud-url URL           provider base URL (openai: including /v1)\n"
            "  --cloud-model NAME        the provider's model; any --cloud-* flag enables the cloud\n"
            "  --cloud-key-env VAR       environment variable with the provider key\n"
            "                            (default ANTHROPIC_API_KEY / OPENAI_API_KEY)\n"
            "  --route-config FILE       routing policy (JSON): thresholds, monitor, keys, prices,\n"
            "                            ledger, cloud; flags override it\n"
            "  --ledger FILE             append one JSON line per request (cost ledger)\n"
            "  -h, --help, --version\n",
            sw_chat_names());
}

/* ---- command line ------------------------------------------------------------------- */

static bool parse_int(const char *s, long lo, long hi, int32_t *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = (int32_t)v;
    return true;
}

/* "512M", "4G", "1.5GiB", "65536": binary multiples. */
static bool parse_size(const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !isfinite(v) || v < 0) return false;
    double mul = 1;
    switch (*end) {
    case 'k': case 'K': mul = 1024.0, end++; break;
    case 'm': case 'M': mul = 1024.0 * 1024, end++; break;
    case 'g': case 'G': mul = 1024.0 * 1024 * 1024, end++; break;
    case 't': case 'T': mul = 1024.0 * 1024 * 1024 * 1024, end++; break;
    default: break;
    }
    if (mul > 1 && (!strcmp(end, "iB") || !strcmp(end, "B") || !strcmp(end, "ib"))) end += strlen(end);
    if (*end == 'B' && mul == 1) end++;
    if (*end) return false;
    double b = v * mul;
    if (b >= 18446744073709551615.0) return false;
    *out = (uint64_t)b;
    return true;
}

static bool add_key(srv_config *c, const char *k) {
    char **v = realloc(c->api_keys, (size_t)(c->n_api_keys + 1) * sizeof *v);
    if (!v) return false;
    c->api_keys = v;
    if (!(v[c->n_api_keys] = strdup(k))) return false;
    c->n_api_keys++;
    return true;
}

static bool read_key_file(srv_config *c, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "spillway-server: --api-key-file %s: %s\n", path, strerror(errno));
        return false;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    bool ok = true;
    int before = c->n_api_keys;
    while (ok && (n = getline(&line, &cap, f)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ' ||
                         line[n - 1] == '\t'))
            line[--n] = '\0';
        char *k = line;
        while (*k == ' ' || *k == '\t') k++;
        if (!*k || *k == '#') continue;
        ok = add_key(c, k);
    }
    free(line);
    fclose(f);
    if (ok && c->n_api_keys == before) {
        fprintf(stderr, "spillway-server: --api-key-file %s has no keys\n", path);
        return false;
    }
    return ok;
}

/* Returns 0 to go on, 1 for a clean exit (help/version), 2 for a bad command line. */
static int parse_args(int argc, char **argv, srv_config *c) {
    c->host = "127.0.0.1";
    c->port = 8080;
    c->backend = "auto";
    c->device = -1;
    c->max_body = 1 << 20;
    c->timeout_s = 600;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED()                                                                          \
    do {                                                                                \
        if (!v) {                                                                       \
            fprintf(stderr, "spillway-server: %s needs a value\n", a);                  \
            return 2;                                                                   \
        }                                                                               \
        i++;                                                                            \
    } while (0)
#define BAD()                                                                           \
    do {                                                                                \
        fprintf(stderr, "spillway-server: bad value for %s: '%s'\n", a, v);             \
        return 2;                                                                       \
    } while (0)
        int32_t iv;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 1;
        } else if (!strcmp(a, "--version")) {
            printf("spillway-server %s\n", SW_VERSION);
            return 1;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            NEED();
            c->model_path = v;
        } else if (!strcmp(a, "--hf")) {
            NEED();
            c->hf = v;
        } else if (!strcmp(a, "--cache-dir")) {
            NEED();
            c->cache_dir = v;
        } else if (!strcmp(a, "--list-devices")) {
            sw_devices_print(stdout);
            return 1;
        } else if (!strcmp(a, "--device")) {
            NEED();
            if (!parse_int(v, 0, 1024, &iv)) BAD();
            c->device = iv;
        } else if (!strcmp(a, "--download-only")) {
            c->download_only = true;
        } else if (!strcmp(a, "--host")) {
            NEED();
            c->host = v;
        } else if (!strcmp(a, "--port")) {
            NEED();
            if (!parse_int(v, 0, 65535, &iv)) BAD();
            c->port = iv;
        } else if (!strcmp(a, "--backend")) {
            NEED();
            c->backend = v;
        } else if (!strcmp(a, "--threads") || !strcmp(a, "-t")) {
            NEED();
            if (!parse_int(v, 1, 4096, &c->threads)) BAD();
        } else if (!strcmp(a, "--ctx") || !strcmp(a, "-c")) {
            NEED();
            if (!parse_int(v, 2, INT32_MAX, &c->ctx)) BAD();
        } else if (!strcmp(a, "--parallel") || !strcmp(a, "-np")) {
            NEED();
            if (!parse_int(v, 1, 65536, &c->parallel)) BAD();
        } else if (!strcmp(a, "--max-queue")) {
            NEED();
            if (!parse_int(v, 1, INT32_MAX, &c->max_queue)) BAD();
        } else if (!strcmp(a, "--batch-tokens")) {
            NEED();
            if (!parse_int(v, 1, 1 << 20, &c->batch_tokens)) BAD();
        } else if (!strcmp(a, "--kv-memory")) {
            NEED();
            if (!parse_size(v, &c->kv_memory) || c->kv_memory == 0) BAD();
        } else if (!strcmp(a, "--no-prefix-cache")) {
            c->no_prefix_cache = true;
        } else if (!strcmp(a, "--api-key")) {
            NEED();
            if (!*v) BAD();
            if (!add_key(c, v)) return 2;
        } else if (!strcmp(a, "--api-key-file")) {
            NEED();
            if (!read_key_file(c, v)) return 2;
        } else if (!strcmp(a, "--model-alias") || !strcmp(a, "--alias")) {
            NEED();
            if (!*v) BAD();
            c->alias = v;
        } else if (!strcmp(a, "--chat-template")) {
            NEED();
            c->chat_template = v;
        } else if (!strcmp(a, "--max-body")) {
            NEED();
            uint64_t b;
            if (!parse_size(v, &b) || b == 0 || b > ((uint64_t)1 << 40)) BAD();
            c->max_body = (size_t)b;
        } else if (!strcmp(a, "--timeout")) {
            NEED();
            char *end;
            double t = strtod(v, &end);
            if (end == v || *end || !isfinite(t) || t < 0 || t > 1e7) BAD();
            c->timeout_s = t;
        } else if (!strcmp(a, "--cloud-provider")) {
            NEED();
            sw_provider p;
            if (sw_provider_parse(v, &p, NULL) != SW_OK) BAD();
            c->cloud_provider = v;
        } else if (!strcmp(a, "--cloud-url")) {
            NEED();
            if (strncmp(v, "http://", 7) && strncmp(v, "https://", 8)) BAD();
            c->cloud_url = v;
        } else if (!strcmp(a, "--cloud-model")) {
            NEED();
            if (!*v) BAD();
            c->cloud_model = v;
        } else if (!strcmp(a, "--cloud-key-env")) {
            NEED();
            if (!*v) BAD();
            c->cloud_key_env = v;
        } else if (!strcmp(a, "--route-config")) {
            NEED();
            c->route_config = v;
        } else if (!strcmp(a, "--ledger")) {
            NEED();
            if (!*v) BAD();
            c->ledger = v;
        } else {
            fprintf(stderr, "spillway-server: unknown option '%s' (see --help)\n", a);
            return 2;
        }
#undef NEED
#undef BAD
    }
    if (!c->model_path && !c->hf) {
        fprintf(stderr, "spillway-server: no model: give -m FILE or --hf OWNER/REPO:FILE\n");
        usage(stderr);
        return 2;
    }
    if (c->model_path && c->hf) {
        fprintf(stderr, "spillway-server: give either -m or --hf, not both\n");
        return 2;
    }
    if (c->download_only && !c->hf) {
        fprintf(stderr, "spillway-server: --download-only needs --hf\n");
        return 2;
    }
    if (c->chat_template) {
        sw_chat_kind k;
        sw_err err = {{0}};
        if (sw_chat_from_name(c->chat_template, &k, &err) != SW_OK) {
            fprintf(stderr, "spillway-server: %s\n", err.msg);
            return 2;
        }
    }
    if (c->hf) {
        char *r = NULL, *f = NULL;
        sw_err err = {{0}};
        if (sw_hf_parse_spec(c->hf, &r, &f, &err) != SW_OK) {
            fprintf(stderr, "spillway-server: %s\n", err.msg);
            return 2;
        }
        free(r);
        free(f);
    }
    return 0;
}

/* ---- loading -------------------------------------------------------------------------- */

typedef struct loader {
    srv *s;
    char *downloaded; /* --hf: the cached path; owned */
    atomic_bool finished;
} loader;

static void fmt_bytes(double b, char *out, size_t cap) {
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (b >= 1024 && i < 4) b /= 1024, i++;
    snprintf(out, cap, i ? "%.1f %s" : "%.0f %s", b, u[i]);
}

static void set_names(srv *s, const char *path) {
    char *tmp = strdup(path);
    const char *base = tmp ? basename(tmp) : path;
    snprintf(s->model_file, sizeof s->model_file, "%s", base);
    free(tmp);
    if (s->cfg.alias) {
        snprintf(s->model_id, sizeof s->model_id, "%s", s->cfg.alias);
    } else {
        snprintf(s->model_id, sizeof s->model_id, "%s", s->model_file);
        size_t n = strlen(s->model_id);
        if (n > 5 && !strcmp(s->model_id + n - 5, ".gguf")) s->model_id[n - 5] = '\0';
    }
}

static sw_status load(loader *L, sw_err *err) {
    srv *s = L->s;
    srv_config *c = &s->cfg;
    bool tty = isatty(STDERR_FILENO);
    sw_status st;
    const char *path = c->model_path;
    if (c->hf) {
        sw_hf_params hp = {.cache_dir = c->cache_dir, .progress = tty};
        if ((st = sw_hf_download(c->hf, &hp, &L->downloaded, err)) != SW_OK) return st;
        path = L->downloaded;
    }
    set_names(s, path);
    sw_backend_config bc = {.name = c->backend, .n_threads = c->threads, .device = c->device};
    if ((st = sw_backend_create(&bc, &s->be, err)) != SW_OK) return st;
    sw_model_params mp = {.progress = tty};
    double t0 = sw_time_s();
    if ((st = sw_model_load(path, s->be, &mp, &s->model, err)) != SW_OK) return st;
    double t_load = sw_time_s() - t0;
    s->tok = sw_model_tokenizer(s->model);
    if (!s->tok)
        return sw_err_set(err, SW_E_FORMAT, "%s has no tokenizer; the server needs one", path);
    const sw_model_config *mc = sw_model_config_get(s->model);

    /* Chat template: the flag, else the model's, else chatml (said out loud,
     * since a wrong template silently degrades every chat answer). */
    sw_err terr = {{0}};
    if (c->chat_template) {
        sw_chat_from_name(c->chat_template, &s->chat, &terr);
    } else {
        sw_status ts = sw_chat_from_gguf(sw_model_gguf(s->model), &s->chat, &terr);
        if (ts == SW_E_NOT_FOUND) {
            s->chat = SW_CHAT_CHATML;
            fprintf(stderr,
                    "spillway-server: the model has no chat template; using chatml for "
                    "/v1/chat/completions (override with --chat-template)\n");
        } else if (ts != SW_OK) {
            s->chat = SW_CHAT_CHATML;
            fprintf(stderr,
                    "spillway-server: the model's chat template is not recognised (%s); using "
                    "chatml (override with --chat-template NAME: %s)\n",
                    terr.msg, sw_chat_names());
        }
    }

    sw_engine_params ep;
    sw_engine_params_default(&ep);
    ep.n_ctx = c->ctx > 0 ? c->ctx : (int32_t)SW_MIN(mc->n_ctx_train, (int64_t)4096);
    ep.max_running = c->parallel;
    ep.max_queued = c->max_queue;
    ep.max_batch_tokens = c->batch_tokens;
    ep.kv_memory_bytes = c->kv_memory;
    ep.no_prefix_cache = c->no_prefix_cache;
    if ((st = sw_engine_create(s->model, &ep, &s->engine, err)) != SW_OK) return st;
    s->n_ctx = sw_engine_n_ctx(s->engine);
    snprintf(s->fingerprint, sizeof s->fingerprint, "fp_spillway_%s_%s", SW_VERSION,
             sw_backend_name(s->be));
    s->created = (int64_t)time(NULL);

    sw_engine_stats es;
    sw_engine_stats_get(s->engine, &es);
    int64_t kv_tokens = (int64_t)es.kv_blocks_total * es.kv_block_size;
    /* K and V, f16, per layer and kv head. */
    double kv_bytes = (double)kv_tokens * (double)mc->n_layer * 2.0 * (double)mc->n_head_kv *
                      (double)mc->head_dim * 2.0;
    char wb[32], kb[32];
    fmt_bytes((double)sw_model_weight_bytes(s->model), wb, sizeof wb);
    fmt_bytes(kv_bytes, kb, sizeof kb);
    fprintf(stderr,
            "spillway-server: model %s (%s, %.1fM params, %s) on %s, loaded in %.2f s\n"
            "spillway-server: KV cache %d blocks x %d tokens = %lld tokens, %s; context %d "
            "tokens per sequence; chat template %s\n",
            path, mc->arch_name, (double)sw_model_n_params(s->model) / 1e6, wb,
            sw_backend_name(s->be), t_load, es.kv_blocks_total, es.kv_block_size,
            (long long)kv_tokens, kb, s->n_ctx, sw_chat_kind_name(s->chat));
    return SW_OK;
}

static void *loader_main(void *arg) {
    loader *L = arg;
    sw_err err = {{0}};
    /* Testing aid: hold the server in the loading state so that tests can
     * observe /health's 503 even with a model that loads in a millisecond. */
    const char *delay = getenv("SW_SERVER_TEST_LOAD_DELAY");
    if (delay && atof(delay) > 0) {
        double d = SW_MIN(atof(delay), 60.0);
        struct timespec ts = {.tv_sec = (time_t)d, .tv_nsec = (long)((d - (double)(time_t)d) * 1e9)};
        nanosleep(&ts, NULL);
    }
    sw_status st = load(L, &err);
    if (st == SW_OK) {
        int expect = SRV_LOADING;
        if (atomic_compare_exchange_strong(&L->s->state, &expect, SRV_READY))
            fprintf(stderr, "spillway-server: ready (model '%s')\n", L->s->model_id);
    } else {
        fprintf(stderr, "spillway-server: cannot load the model: %s\n", err.msg);
        int expect = SRV_LOADING;
        atomic_compare_exchange_strong(&L->s->state, &expect, SRV_FAILED);
    }
    atomic_store(&L->finished, true);
    return NULL;
}

/* ---- main ------------------------------------------------------------------------------ */

static void free_all(srv *s, loader *L) {
    srv_spill_free(s, DRAIN_S);
    sw_engine_free(s->engine);
    sw_model_free(s->model);
    sw_backend_free(s->be);
    for (int i = 0; i < s->cfg.n_api_keys; i++) free(s->cfg.api_keys[i]);
    free(s->cfg.api_keys);
    free(L->downloaded);
    srv_metrics_destroy(&s->metrics);
}

/* Wait for a signal for up to timeout seconds; returns the signal or 0. */
static int wait_signal(const sigset_t *set, double timeout) {
    struct timespec ts = {.tv_sec = (time_t)timeout,
                          .tv_nsec = (long)((timeout - (double)(time_t)timeout) * 1e9)};
    int sig = sigtimedwait(set, NULL, &ts);
    return sig > 0 ? sig : 0;
}

int main(int argc, char **argv) {
    static srv s; /* static: large, and the MHD threads point into it */
    static loader L;
    int rc = parse_args(argc, argv, &s.cfg);
    if (rc) {
        for (int i = 0; i < s.cfg.n_api_keys; i++) free(s.cfg.api_keys[i]);
        free(s.cfg.api_keys);
        return rc == 1 ? 0 : 2;
    }
    if (s.cfg.download_only) {
        char *path = NULL;
        sw_err err = {{0}};
        sw_hf_params hp = {.cache_dir = s.cfg.cache_dir, .progress = isatty(STDERR_FILENO)};
        sw_status st = sw_hf_download(s.cfg.hf, &hp, &path, &err);
        for (int i = 0; i < s.cfg.n_api_keys; i++) free(s.cfg.api_keys[i]);
        free(s.cfg.api_keys);
        if (st != SW_OK) {
            fprintf(stderr, "spillway-server: %s\n", err.msg);
            return 1;
        }
        printf("%s\n", path);
        free(path);
        return 0;
    }

    /* Signals go to main's sigtimedwait only: block them before any thread
     * starts so every thread inherits the mask. A write to a closed socket
     * must be an error return, not a process kill. */
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    srv_metrics_init(&s.metrics);
    atomic_store(&s.state, SRV_LOADING);
    sw_err err = {{0}};
    /* Routing before listening: a bad policy file is a startup error, not a
     * surprise on the first request. */
    sw_status sst = srv_spill_init(&s, &err);
    if (sst != SW_OK) {
        fprintf(stderr, "spillway-server: %s\n", err.msg);
        free_all(&s, &L);
        return sst == SW_E_INVALID_ARG || sst == SW_E_FORMAT ? 2 : 1;
    }
    int port = 0;
    if (srv_http_start(&s, &port, &err) != SW_OK) {
        fprintf(stderr, "spillway-server: %s\n", err.msg);
        free_all(&s, &L);
        return 1;
    }
    const char *h = s.cfg.host;
    bool v6 = strchr(h, ':') != NULL;
    printf("spillway-server: listening on http://%s%s%s:%d\n", v6 ? "[" : "", h, v6 ? "]" : "",
           port);
    fflush(stdout);
    fprintf(stderr, "spillway-server: listening on http://%s%s%s:%d (%d API key%s)\n",
            v6 ? "[" : "", h, v6 ? "]" : "", port, s.cfg.n_api_keys,
            s.cfg.n_api_keys == 1 ? "" : "s");

    L.s = &s;
    pthread_t lt;
    if (pthread_create(&lt, NULL, loader_main, &L) != 0) {
        fprintf(stderr, "spillway-server: cannot start the loader thread\n");
        srv_http_stop();
        free_all(&s, &L);
        return 1;
    }

    int sig = 0;
    while (!sig) {
        sig = wait_signal(&set, 0.2);
        if (atomic_load(&s.state) == SRV_FAILED) break;
    }
    rc = atomic_load(&s.state) == SRV_FAILED ? 1 : 0;
    if (sig)
        fprintf(stderr, "spillway-server: %s: shutting down\n",
                sig == SIGINT ? "SIGINT" : "SIGTERM");
    atomic_store(&s.state, SRV_STOPPING);
    srv_http_quiesce();

    /* A load in progress cannot be interrupted; wait for it unless the user
     * insists with a second signal. */
    while (!atomic_load(&L.finished)) {
        if (wait_signal(&set, 0.1)) {
            fprintf(stderr, "spillway-server: second signal while loading: exiting now\n");
            return 130;
        }
    }
    pthread_join(lt, NULL);

    /* Connection threads see SRV_STOPPING within a wait slice and cancel
     * their requests; give them time to write the final chunk. */
    double t_end = sw_time_s() + DRAIN_S;
    while (atomic_load(&s.active) > 0 && sw_time_s() < t_end)
        if (wait_signal(&set, 0.02)) break;
    if (atomic_load(&s.active) > 0)
        fprintf(stderr, "spillway-server: closing %d connection(s) still open\n",
                atomic_load(&s.active));
    srv_http_stop();
    free_all(&s, &L);
    fprintf(stderr, "spillway-server: stopped\n");
    return rc;
}
