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
#include <getopt.h>
#include <libgen.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "embed.h"
#include "hf_download.h"
#include "learned.h"
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
            "  --chat-template NAME      use a built-in chat template instead of the model's (%s)\n"
            "  --chat-template-file FILE use this Jinja chat template instead of the model's\n"
            "  --embedding-model FILE    serve /v1/embeddings from this GGUF (e.g. a BERT model from\n"
            "                            scripts/convert-bert.py) instead of the served model\n"
            "  --system-prompt TEXT      system message for local chats that bring none (as an\n"
            "                            Ollama Modelfile's SYSTEM); the cloud gets the request as sent\n"
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
            "  --cors-origin ORIGIN      allow browser requests from ORIGIN (repeatable; '*' for any;\n"
            "                            default: http(s)://localhost, 127.0.0.1 and [::1], any port)\n"
            "  --strict-model-names      refuse a 'model' the server does not know (404) instead of\n"
            "                            serving it on the automatic route\n"
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
            "  --router FILE             learned router (spillway-router train): route_score for\n"
            "                            every auto-routed request\n"
            "  --cloud-share S           send the auto requests whose score is in the top S\n"
            "                            (0..1) of recent traffic to the cloud\n"
            "  --shadow-rate R           also ask the cloud for a fraction R (0..1) of local auto\n"
            "                            answers and learn from the agreement (needs --router)\n"
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

enum {
    OPT_HF = 256, OPT_CACHE_DIR, OPT_DOWNLOAD_ONLY, OPT_MODEL_ALIAS, OPT_CHAT_TEMPLATE,
    OPT_CHAT_TEMPLATE_FILE, OPT_SYSTEM_PROMPT,
    OPT_BACKEND, OPT_DEVICE, OPT_LIST_DEVICES, OPT_PARALLEL, OPT_MAX_QUEUE, OPT_BATCH_TOKENS,
    OPT_KV_MEMORY, OPT_NO_PREFIX_CACHE, OPT_HOST, OPT_PORT, OPT_API_KEY, OPT_API_KEY_FILE,
    OPT_MAX_BODY, OPT_TIMEOUT, OPT_CORS_ORIGIN, OPT_STRICT_MODEL_NAMES, OPT_CLOUD_PROVIDER,
    OPT_CLOUD_URL, OPT_CLOUD_MODEL, OPT_CLOUD_KEY_ENV, OPT_ROUTE_CONFIG, OPT_LEDGER, OPT_VERSION,
    OPT_ROUTER, OPT_CLOUD_SHARE, OPT_SHADOW_RATE, OPT_EMBEDDING_MODEL,
};

static const struct option k_options[] = {
    {"model", required_argument, NULL, 'm'},
    {"hf", required_argument, NULL, OPT_HF},
    {"cache-dir", required_argument, NULL, OPT_CACHE_DIR},
    {"download-only", no_argument, NULL, OPT_DOWNLOAD_ONLY},
    {"model-alias", required_argument, NULL, OPT_MODEL_ALIAS},
    {"alias", required_argument, NULL, OPT_MODEL_ALIAS},
    {"chat-template", required_argument, NULL, OPT_CHAT_TEMPLATE},
    {"chat-template-file", required_argument, NULL, OPT_CHAT_TEMPLATE_FILE},
    {"embedding-model", required_argument, NULL, OPT_EMBEDDING_MODEL},
    {"system-prompt", required_argument, NULL, OPT_SYSTEM_PROMPT},
    {"backend", required_argument, NULL, OPT_BACKEND},
    {"device", required_argument, NULL, OPT_DEVICE},
    {"list-devices", no_argument, NULL, OPT_LIST_DEVICES},
    {"threads", required_argument, NULL, 't'},
    {"ctx", required_argument, NULL, 'c'},
    {"parallel", required_argument, NULL, OPT_PARALLEL},
    {"np", required_argument, NULL, OPT_PARALLEL},
    {"max-queue", required_argument, NULL, OPT_MAX_QUEUE},
    {"batch-tokens", required_argument, NULL, OPT_BATCH_TOKENS},
    {"kv-memory", required_argument, NULL, OPT_KV_MEMORY},
    {"no-prefix-cache", no_argument, NULL, OPT_NO_PREFIX_CACHE},
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"api-key", required_argument, NULL, OPT_API_KEY},
    {"api-key-file", required_argument, NULL, OPT_API_KEY_FILE},
    {"max-body", required_argument, NULL, OPT_MAX_BODY},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"cors-origin", required_argument, NULL, OPT_CORS_ORIGIN},
    {"strict-model-names", no_argument, NULL, OPT_STRICT_MODEL_NAMES},
    {"cloud-provider", required_argument, NULL, OPT_CLOUD_PROVIDER},
    {"cloud-url", required_argument, NULL, OPT_CLOUD_URL},
    {"cloud-model", required_argument, NULL, OPT_CLOUD_MODEL},
    {"cloud-key-env", required_argument, NULL, OPT_CLOUD_KEY_ENV},
    {"route-config", required_argument, NULL, OPT_ROUTE_CONFIG},
    {"ledger", required_argument, NULL, OPT_LEDGER},
    {"router", required_argument, NULL, OPT_ROUTER},
    {"cloud-share", required_argument, NULL, OPT_CLOUD_SHARE},
    {"shadow-rate", required_argument, NULL, OPT_SHADOW_RATE},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* --cors-origin: "*", or a scheme://host[:port] origin (what browsers send). */
static bool cors_origin_ok(const char *v) {
    if (!strcmp(v, "*")) return true;
    const char *h = !strncmp(v, "http://", 7) ? v + 7 : !strncmp(v, "https://", 8) ? v + 8 : NULL;
    return h && *h && !strchr(h, '/') && strlen(v) < 256;
}

/* One option and its value (NULL for flags). 0: go on; 1: clean exit; 2: bad. */
static int apply_option(int opt, const char *name, const char *v, srv_config *c) {
#define BAD()                                                                           \
    do {                                                                                \
        fprintf(stderr, "spillway-server: bad value for --%s: '%s'\n", name, v);        \
        return 2;                                                                       \
    } while (0)
    int32_t iv;
    switch (opt) {
    case 'h': usage(stdout); return 1;
    case OPT_VERSION: printf("spillway-server %s\n", SW_VERSION); return 1;
    case 'm': c->model_path = v; break;
    case OPT_HF: c->hf = v; break;
    case OPT_CACHE_DIR: c->cache_dir = v; break;
    case OPT_LIST_DEVICES: sw_devices_print(stdout); return 1;
    case OPT_DEVICE:
        if (!parse_int(v, 0, 1024, &iv)) BAD();
        c->device = iv;
        break;
    case OPT_DOWNLOAD_ONLY: c->download_only = true; break;
    case OPT_HOST: c->host = v; break;
    case OPT_PORT:
        if (!parse_int(v, 0, 65535, &iv)) BAD();
        c->port = iv;
        break;
    case OPT_BACKEND: c->backend = v; break;
    case 't':
        if (!parse_int(v, 1, 4096, &c->threads)) BAD();
        break;
    case 'c':
        if (!parse_int(v, 2, INT32_MAX, &c->ctx)) BAD();
        break;
    case OPT_PARALLEL:
        if (!parse_int(v, 1, 65536, &c->parallel)) BAD();
        break;
    case OPT_MAX_QUEUE:
        if (!parse_int(v, 1, INT32_MAX, &c->max_queue)) BAD();
        break;
    case OPT_BATCH_TOKENS:
        if (!parse_int(v, 1, 1 << 20, &c->batch_tokens)) BAD();
        break;
    case OPT_KV_MEMORY:
        if (!parse_size(v, &c->kv_memory) || c->kv_memory == 0) BAD();
        break;
    case OPT_NO_PREFIX_CACHE: c->no_prefix_cache = true; break;
    case OPT_API_KEY:
        if (!*v) BAD();
        if (!add_key(c, v)) return 2;
        break;
    case OPT_API_KEY_FILE:
        if (!read_key_file(c, v)) return 2;
        break;
    case OPT_MODEL_ALIAS:
        if (!*v) BAD();
        c->alias = v;
        break;
    case OPT_CHAT_TEMPLATE: c->chat_template = v; break;
    case OPT_CHAT_TEMPLATE_FILE: c->chat_template_file = v; break;
    case OPT_EMBEDDING_MODEL:
        if (!*v) BAD();
        c->embedding_model = v;
        break;
    case OPT_SYSTEM_PROMPT: c->system_prompt = *v ? v : NULL; break;
    case OPT_MAX_BODY: {
        uint64_t b;
        if (!parse_size(v, &b) || b == 0 || b > ((uint64_t)1 << 40)) BAD();
        c->max_body = (size_t)b;
        break;
    }
    case OPT_TIMEOUT: {
        char *end;
        double t = strtod(v, &end);
        if (end == v || *end || !isfinite(t) || t < 0 || t > 1e7) BAD();
        c->timeout_s = t;
        break;
    }
    case OPT_CORS_ORIGIN: {
        if (!cors_origin_ok(v)) BAD();
        const char **o = realloc(c->cors_origins, (size_t)(c->n_cors_origins + 1) * sizeof *o);
        if (!o) return 2;
        c->cors_origins = o;
        o[c->n_cors_origins++] = v;
        break;
    }
    case OPT_STRICT_MODEL_NAMES: c->strict_model_names = true; break;
    case OPT_CLOUD_PROVIDER: {
        sw_provider p;
        if (sw_provider_parse(v, &p, NULL) != SW_OK) BAD();
        c->cloud_provider = v;
        break;
    }
    case OPT_CLOUD_URL:
        if (strncmp(v, "http://", 7) && strncmp(v, "https://", 8)) BAD();
        c->cloud_url = v;
        break;
    case OPT_CLOUD_MODEL:
        if (!*v) BAD();
        c->cloud_model = v;
        break;
    case OPT_CLOUD_KEY_ENV:
        if (!*v) BAD();
        c->cloud_key_env = v;
        break;
    case OPT_ROUTE_CONFIG: c->route_config = v; break;
    case OPT_LEDGER:
        if (!*v) BAD();
        c->ledger = v;
        break;
    case OPT_ROUTER:
        if (!*v) BAD();
        c->router = v;
        break;
    case OPT_CLOUD_SHARE:
    case OPT_SHADOW_RATE: {
        char *end;
        double x = strtod(v, &end);
        if (end == v || *end || !(x >= 0.0 && x <= 1.0)) {
            fprintf(stderr, "spillway-server: --%s: '%s' is not a share in [0, 1]\n", name, v);
            return 2;
        }
        if (opt == OPT_CLOUD_SHARE) c->cloud_share = x;
        else c->shadow_rate = x;
        break;
    }
    default: return 2;
    }
    return 0;
#undef BAD
}

/* The long name of opt, for messages. */
static const char *option_name(int opt) {
    for (const struct option *o = k_options; o->name; o++)
        if (o->val == opt) return o->name;
    return "?";
}

/* Returns 0 to go on, 1 for a clean exit (help/version), 2 for a bad command line. */
static int parse_args(int argc, char **argv, srv_config *c) {
    c->host = "127.0.0.1";
    c->port = 8080;
    c->backend = "auto";
    c->device = -1;
    c->max_body = 1 << 20;
    c->timeout_s = 600;
    c->cloud_share = -1;
    opterr = 0; /* our own messages */
    optind = 1;
    /* llama.cpp's single-dash -np, kept as an alias of --parallel */
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-np")) argv[i] = (char *)"--np";
    int opt, idx;
    while ((opt = getopt_long(argc, argv, ":m:t:c:h", k_options, &idx)) != -1) {
        if (opt == '?') {
            fprintf(stderr, "spillway-server: unknown option '%s' (see --help)\n",
                    argv[optind - 1]);
            return 2;
        }
        if (opt == ':') {
            fprintf(stderr, "spillway-server: %s needs a value\n", argv[optind - 1]);
            return 2;
        }
        int rc = apply_option(opt, option_name(opt), optarg, c);
        if (rc) return rc;
    }
    if (optind < argc) {
        fprintf(stderr, "spillway-server: unexpected argument '%s' (see --help)\n", argv[optind]);
        return 2;
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
    if (c->chat_template && c->chat_template_file) {
        fprintf(stderr, "spillway-server: give --chat-template or --chat-template-file, not both\n");
        return 2;
    }
    if (c->chat_template || c->chat_template_file) {
        /* a bad name or file is a usage error, found before the model loads */
        sw_chat_template *t = NULL;
        sw_err err = {{0}};
        sw_status st = c->chat_template ? sw_chat_template_builtin(c->chat_template, &t, &err)
                                        : sw_chat_template_file(c->chat_template_file, &t, &err);
        sw_chat_template_free(t);
        if (st != SW_OK) {
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

static void free_config(srv_config *c) {
    for (int i = 0; i < c->n_api_keys; i++) free(c->api_keys[i]);
    free(c->api_keys);
    free(c->cors_origins);
    c->api_keys = NULL;
    c->cors_origins = NULL;
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

    /* Chat template: the flag's, else the model's own (Jinja), else chatml
     * (said out loud, since a wrong template silently degrades every answer). */
    sw_err terr = {{0}};
    if (c->chat_template) st = sw_chat_template_builtin(c->chat_template, &s->chat, err);
    else if (c->chat_template_file) st = sw_chat_template_file(c->chat_template_file, &s->chat, err);
    else {
        sw_status ts = sw_chat_template_gguf(sw_model_gguf(s->model), NULL, &s->chat, &terr);
        /* a named tool_use template serves requests with tools, as in transformers */
        sw_err uerr = {{0}};
        sw_status us = sw_chat_template_gguf(sw_model_gguf(s->model), "tool_use", &s->chat_tools, &uerr);
        if (us != SW_OK && us != SW_E_NOT_FOUND)
            fprintf(stderr, "spillway-server: ignoring the model's tool_use chat template: %s\n",
                    uerr.msg);
        if (ts != SW_OK) {
            fprintf(stderr,
                    "spillway-server: %s; using chatml for chat requests (override with "
                    "--chat-template NAME or --chat-template-file FILE)\n",
                    ts == SW_E_NOT_FOUND ? "the model has no chat template" : terr.msg);
            st = sw_chat_template_builtin("chatml", &s->chat, err);
        }
    }
    if (st != SW_OK) return st;
    s->chat_native_tools = sw_chat_template_uses_tools(s->chat);

    sw_engine_params ep;
    sw_engine_params_default(&ep);
    ep.n_ctx = c->ctx > 0 ? c->ctx : (int32_t)SW_MIN(mc->n_ctx_train, (int64_t)4096);
    ep.max_running = c->parallel;
    ep.max_queued = c->max_queue;
    ep.max_batch_tokens = c->batch_tokens;
    ep.kv_memory_bytes = c->kv_memory;
    ep.no_prefix_cache = c->no_prefix_cache;
    if ((st = srv_learned_check_model(s, err)) != SW_OK) return st;
    if ((st = sw_engine_create(s->model, &ep, &s->engine, err)) != SW_OK) return st;
    s->n_ctx = sw_engine_n_ctx(s->engine);
    st = c->embedding_model ? srv_embedder_model_create(s, c->embedding_model, &s->embedder, err)
                            : srv_embedder_engine_create(s, &s->embedder, err);
    if (st != SW_OK) return st;
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
            (long long)kv_tokens, kb, s->n_ctx, sw_chat_template_label(s->chat));
    return SW_OK;
}

static void *loader_main(void *arg) {
    loader *L = arg;
    sw_err err = {{0}};
    /* Testing aid: hold the server in the loading state so that tests can
     * observe /health's 503 even with a model that loads in a millisecond. */
    const char *delay = getenv("SW_SERVER_TEST_LOAD_DELAY");
    if (delay) sw_sleep_s(SW_MIN(atof(delay), 60.0));
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
    srv_embedder_free(s->embedder);
    sw_engine_free(s->engine);
    srv_gcache_free(s->gcache); /* after the engine: its requests hold grammars */
    sw_chat_template_free(s->chat);
    sw_chat_template_free(s->chat_tools);
    sw_model_free(s->model);
    sw_backend_free(s->be);
    free_config(&s->cfg);
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
    /* Testing aid: a slow engine, so that tests can hold a request running
     * (a full queue, a busy slot) even with a model that decodes in microseconds. */
    const char *tok_delay = getenv("SW_SERVER_TEST_TOKEN_DELAY");
    if (tok_delay && atof(tok_delay) > 0) s.test_token_delay_s = SW_MIN(atof(tok_delay), 1.0);
    if (rc) {
        free_config(&s.cfg);
        return rc == 1 ? 0 : 2;
    }
    if (s.cfg.download_only) {
        char *path = NULL;
        sw_err err = {{0}};
        sw_hf_params hp = {.cache_dir = s.cfg.cache_dir, .progress = isatty(STDERR_FILENO)};
        sw_status st = sw_hf_download(s.cfg.hf, &hp, &path, &err);
        free_config(&s.cfg);
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
    s.gcache = srv_gcache_create();
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
    /* One line, on stdout (scripts read the port from it); logs go to stderr. */
    printf("spillway-server: listening on http://%s%s%s:%d\n", v6 ? "[" : "", h, v6 ? "]" : "",
           port);
    fflush(stdout);
    if (s.cfg.n_api_keys > 0)
        fprintf(stderr, "spillway-server: %d API key%s required\n", s.cfg.n_api_keys,
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
