/* spillway-generate — load a model, run one prompt (plain or through the
 * model's chat template), stream the continuation to stdout. With --json, print
 * one JSON object with ids, text, log-probabilities, entropies and timings
 * instead. Exit codes: 0 ok, 1 runtime error, 2 bad command line. */
#include <spillway.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_BATCH 512 /* prompt tokens per forward step */

typedef struct opts {
    const char *model;
    const char *hf;        /* --hf OWNER/REPO:FILE, downloaded into the cache */
    const char *cache_dir; /* --cache-dir; NULL: $SPILLWAY_CACHE or ~/.cache/spillway */
    const char *prompt;
    const char *system;
    const char *messages_file;
    const char *chat_template;
    const char *chat_template_file;
    bool chat;
    int32_t n_predict;
    sw_sampler_params sp;
    sw_logit_bias bias[SW_MAX_LOGIT_BIAS]; /* -l; sp.logit_bias points here */
    const char *backend;
    int32_t device; /* --device; -1: the preferred GPU */
    int32_t threads;
    int32_t ctx;
    bool json;
    bool interactive; /* -i: a chat on stdin, one user turn per line */
} opts;

static void usage(FILE *f) {
    fprintf(f,
            "usage: spillway-generate -m FILE [-p TEXT] [options]\n"
            "  -m, --model FILE          GGUF model\n"
            "  --hf OWNER/REPO:FILE      download the model from the Hugging Face hub (cached,\n"
            "                            resumable, SHA-256 checked) instead of -m\n"
            "  --cache-dir DIR           download cache (default $SPILLWAY_CACHE or ~/.cache/spillway)\n"
            "  -p, --prompt TEXT         prompt (BOS added as the model's metadata says)\n"
            "  --chat                    render the prompt with the model's chat template\n"
            "  --system TEXT             system message (with --chat)\n"
            "  --messages FILE.json      OpenAI-style messages array (implies --chat)\n"
            "  --chat-template NAME      use a built-in template instead of the model's (%s)\n"
            "  --chat-template-file FILE use this Jinja template instead of the model's\n"
            "  -n, --n-predict N         tokens to generate (default 128)\n"
            "  --temp T                  temperature; 0 is greedy (default 0.8)\n"
            "  --top-k K, --top-p P, --min-p P\n"
            "  --repeat-penalty F, --repeat-last-n N\n"
            "  --presence-penalty F, --frequency-penalty F\n"
            "  --seed N                  RNG seed\n"
            "  -l, --logit-bias ID(+|-)B add B to token ID's logit (repeatable; -100 bans it)\n"
            "  --top-logprobs N          report N alternatives per token (--json, max %d)\n"
            "  --backend NAME            cpu|cuda|vulkan|auto (default auto)\n"
            "  --device N                GPU device index (default: the preferred one)\n"
            "  --list-devices            print the devices each backend sees and exit\n"
            "  --threads N               CPU threads (default: all cores)\n"
            "  --ctx N                   context size (default: model's, capped at 4096)\n"
            "  --json                    print one JSON object instead of streaming text\n"
            "  -i, --interactive         chat on stdin, one user turn per line (implies --chat;\n"
            "                            -p, if given, is the first turn); the KV cache is reused\n"
            "                            across turns and the oldest turns are dropped when the\n"
            "                            context is full; /reset forgets, /exit or EOF ends;\n"
            "                            with --json, one object per turn\n",
            sw_chat_names(), SW_MAX_TOP_LOGPROBS);
}

/* ---- command line -------------------------------------------------------- */

static bool parse_i32(const char *s, int32_t lo, int32_t hi, int32_t *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = (int32_t)v;
    return true;
}

static bool parse_f32(const char *s, float *out) {
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || end == s || *end || !isfinite(v)) return false;
    *out = v;
    return true;
}

/* "ID+B" or "ID-B" (llama.cpp's form) -> one more logit bias entry. */
static bool parse_bias(const char *s, opts *o) {
    char *end;
    errno = 0;
    long id = strtol(s, &end, 10);
    float b;
    if (errno || end == s || id < 0 || id > INT32_MAX || (*end != '+' && *end != '-') ||
        !parse_f32(end, &b) || b < -100.0f || b > 100.0f || o->sp.n_logit_bias >= SW_MAX_LOGIT_BIAS)
        return false;
    o->bias[o->sp.n_logit_bias++] = (sw_logit_bias){(int32_t)id, b};
    o->sp.logit_bias = o->bias;
    return true;
}

static bool parse_u64(const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    if (*s == '-') return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end) return false;
    *out = v;
    return true;
}

/* Returns 0 when parsed, 2 on a bad command line (message printed). */
static int parse_args(int argc, char **argv, opts *o) {
    memset(o, 0, sizeof *o);
    sw_sampler_params_default(&o->sp);
    o->n_predict = 128;
    o->backend = "auto";
    o->device = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true, takes = true;
#define IS(x) (strcmp(a, (x)) == 0)
        if (IS("-h") || IS("--help")) {
            usage(stdout);
            exit(0);
        } else if (IS("--chat")) {
            o->chat = true;
            takes = false;
        } else if (IS("--json")) {
            o->json = true;
            takes = false;
        } else if (IS("-i") || IS("--interactive")) {
            o->interactive = true;
            o->chat = true;
            takes = false;
        } else if (IS("--list-devices")) {
            sw_devices_print(stdout);
            exit(0);
        } else if (!val) {
            fprintf(stderr, "spillway-generate: %s: %s\n", a,
                    a[0] == '-' ? "unknown flag or missing value" : "unexpected argument");
            return 2;
        } else if (IS("-m") || IS("--model")) o->model = val;
        else if (IS("--hf")) o->hf = val;
        else if (IS("--cache-dir")) o->cache_dir = val;
        else if (IS("-p") || IS("--prompt")) o->prompt = val;
        else if (IS("--system")) o->system = val;
        else if (IS("--messages")) o->messages_file = val;
        else if (IS("--chat-template")) o->chat_template = val;
        else if (IS("--chat-template-file")) o->chat_template_file = val;
        else if (IS("-n") || IS("--n-predict")) ok = parse_i32(val, 0, INT32_MAX, &o->n_predict);
        else if (IS("--temp")) ok = parse_f32(val, &o->sp.temperature) && o->sp.temperature >= 0;
        else if (IS("--top-k")) ok = parse_i32(val, 0, INT32_MAX, &o->sp.top_k);
        else if (IS("--top-p")) ok = parse_f32(val, &o->sp.top_p) && o->sp.top_p >= 0 && o->sp.top_p <= 1;
        else if (IS("--min-p")) ok = parse_f32(val, &o->sp.min_p) && o->sp.min_p >= 0 && o->sp.min_p <= 1;
        else if (IS("--repeat-penalty")) ok = parse_f32(val, &o->sp.repeat_penalty) && o->sp.repeat_penalty > 0;
        else if (IS("--repeat-last-n")) ok = parse_i32(val, -1, INT32_MAX, &o->sp.repeat_last_n);
        else if (IS("--presence-penalty")) ok = parse_f32(val, &o->sp.presence_penalty);
        else if (IS("--frequency-penalty")) ok = parse_f32(val, &o->sp.frequency_penalty);
        else if (IS("--seed")) ok = parse_u64(val, &o->sp.seed);
        else if (IS("-l") || IS("--logit-bias")) ok = parse_bias(val, o);
        else if (IS("--top-logprobs")) ok = parse_i32(val, 0, SW_MAX_TOP_LOGPROBS, &o->sp.n_top_logprobs);
        else if (IS("--backend")) {
            o->backend = val;
            ok = !strcmp(val, "cpu") || !strcmp(val, "cuda") || !strcmp(val, "vulkan") ||
                 !strcmp(val, "auto");
        } else if (IS("--threads")) ok = parse_i32(val, 1, 4096, &o->threads);
        else if (IS("--device")) ok = parse_i32(val, 0, 1024, &o->device);
        else if (IS("--ctx")) ok = parse_i32(val, 1, INT32_MAX, &o->ctx);
        else {
            fprintf(stderr, "spillway-generate: unknown flag %s (see --help)\n", a);
            return 2;
        }
#undef IS
        if (!ok) {
            fprintf(stderr, "spillway-generate: bad value for %s: '%s'\n", a, val);
            return 2;
        }
        if (takes) i++;
    }
    if (!o->model == !o->hf) {
        fprintf(stderr, "spillway-generate: give exactly one of -m FILE or --hf REPO:FILE "
                        "(see --help)\n");
        return 2;
    }
    if (o->messages_file) o->chat = true;
    if (!o->prompt && !o->messages_file && !o->interactive) {
        fprintf(stderr, "spillway-generate: give a prompt with -p TEXT or --messages FILE\n");
        return 2;
    }
    if ((o->system || o->chat_template || o->chat_template_file) && !o->chat) {
        fprintf(stderr, "spillway-generate: --system, --chat-template and --chat-template-file "
                        "need --chat\n");
        return 2;
    }
    if (o->chat_template && o->chat_template_file) {
        fprintf(stderr, "spillway-generate: give --chat-template or --chat-template-file, not both\n");
        return 2;
    }
    return 0;
}

/* ---- prompt -------------------------------------------------------------- */

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = (n + 4096 + 1) * 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, 4096, f);
        n += r;
        if (r < 4096) break;
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* The messages of a chat, OpenAI-shaped: --system, then --messages FILE, then -p
 * as a user turn (and the turns of an interactive chat). */
typedef struct chat_list {
    cJSON *msgs; /* array, owned */
} chat_list;

static void chat_list_free(chat_list *c) {
    cJSON_Delete(c->msgs);
    c->msgs = NULL;
}

static size_t chat_len(const chat_list *c) { return (size_t)cJSON_GetArraySize(c->msgs); }

static const char *chat_role(const chat_list *c, size_t i) {
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(c->msgs, (int)i), "role");
    return cJSON_IsString(r) ? r->valuestring : "";
}

static int add_msg(chat_list *c, const char *role, const char *content) {
    if (!c->msgs && !(c->msgs = cJSON_CreateArray())) return 1;
    cJSON *m = cJSON_CreateObject();
    if (!m || !cJSON_AddStringToObject(m, "role", role) || !cJSON_AddStringToObject(m, "content", content)) {
        cJSON_Delete(m);
        return 1;
    }
    cJSON_AddItemToArray(c->msgs, m);
    return 0;
}

static int load_messages(const char *path, chat_list *c) {
    size_t len;
    char *text = read_file(path, &len);
    if (!text) {
        fprintf(stderr, "spillway-generate: --messages %s: %s\n", path, strerror(errno));
        return 1;
    }
    cJSON *arr = cJSON_ParseWithLength(text, len);
    free(text);
    if (!cJSON_IsArray(arr)) {
        cJSON_Delete(arr);
        fprintf(stderr, "spillway-generate: --messages %s: expected a JSON array of messages\n",
                path);
        return 1;
    }
    int i = 0;
    cJSON *m;
    cJSON_ArrayForEach(m, arr) {
        if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "role"))) {
            fprintf(stderr, "spillway-generate: --messages %s: message %d needs a string \"role\"\n",
                    path, i);
            cJSON_Delete(arr);
            return 1;
        }
        i++;
    }
    if (!c->msgs && !(c->msgs = cJSON_CreateArray())) {
        cJSON_Delete(arr);
        return 1;
    }
    while (cJSON_GetArraySize(arr) > 0) cJSON_AddItemToArray(c->msgs, cJSON_DetachItemFromArray(arr, 0));
    cJSON_Delete(arr);
    return 0;
}

/* The chat template: --chat-template NAME, --chat-template-file FILE, else the model's. */
static int load_template(const opts *o, const sw_model *m, sw_chat_template **t) {
    sw_err err = {{0}};
    if (o->chat_template) {
        if (sw_chat_template_builtin(o->chat_template, t, &err) != SW_OK) {
            fprintf(stderr, "spillway-generate: %s\n", err.msg);
            return 2;
        }
    } else if (o->chat_template_file) {
        if (sw_chat_template_file(o->chat_template_file, t, &err) != SW_OK) {
            fprintf(stderr, "spillway-generate: %s\n", err.msg);
            return 2;
        }
    } else if (sw_chat_template_gguf(sw_model_gguf(m), NULL, t, &err) != SW_OK) {
        fprintf(stderr, "spillway-generate: %s\n", err.msg);
        return 1;
    }
    return 0;
}

/* Render messages into prompt text, ending with the assistant's turn. */
static int render_list(const sw_chat_template *t, const sw_tokenizer *tok, const chat_list *c,
                       char **out) {
    sw_err err = {{0}};
    int32_t bos = sw_tokenizer_bos(tok), eos = sw_tokenizer_eos(tok);
    cJSON *empty = c->msgs ? NULL : cJSON_CreateArray();
    sw_chat_input in = {
        .messages = c->msgs ? c->msgs : empty,
        .add_generation_prompt = true,
        .openai = true,
        .bos_token = bos >= 0 ? sw_tokenizer_token_text(tok, bos) : NULL,
        .eos_token = eos >= 0 ? sw_tokenizer_token_text(tok, eos) : NULL,
    };
    sw_status st = sw_chat_render_template(t, &in, out, NULL, &err);
    cJSON_Delete(empty);
    if (st != SW_OK) {
        fprintf(stderr, "spillway-generate: chat template %s: %s\n", sw_chat_template_label(t), err.msg);
        return 1;
    }
    return 0;
}

/* The messages of the command line: --system, --messages FILE, -p. */
static int command_line_chat(const opts *o, chat_list *c) {
    int rc = 0;
    if (!c->msgs && !(c->msgs = cJSON_CreateArray())) return 1;
    if (o->system) rc = add_msg(c, "system", o->system);
    if (!rc && o->messages_file) rc = load_messages(o->messages_file, c);
    if (!rc && o->prompt) rc = add_msg(c, "user", o->prompt);
    return rc;
}

/* Tokenize prompt text. Special-token text is parsed (as llama.cpp does), and
 * BOS is added when the metadata asks for it, unless a rendered chat already
 * spelled it out. */
static int tokenize_text(const sw_tokenizer *tok, const char *text, bool rendered, int32_t **ids,
                         size_t *n) {
    bool add_bos = sw_tokenizer_add_bos(tok) && sw_tokenizer_bos(tok) >= 0;
    if (add_bos && rendered) {
        const char *bos_s = sw_tokenizer_token_text(tok, sw_tokenizer_bos(tok));
        if (bos_s && *bos_s && strncmp(text, bos_s, strlen(bos_s)) == 0) add_bos = false;
    }
    sw_err err = {{0}};
    if (sw_tokenize(tok, text, strlen(text), add_bos, true, ids, n, &err) != SW_OK) {
        fprintf(stderr, "spillway-generate: tokenizing the prompt: %s\n", err.msg);
        return 1;
    }
    return 0;
}

static int tokenize_prompt(const opts *o, const sw_model *m, int32_t **ids, size_t *n) {
    const sw_tokenizer *tok = sw_model_tokenizer(m);
    if (!o->chat) return tokenize_text(tok, o->prompt, false, ids, n);
    sw_chat_template *t = NULL;
    int rc = load_template(o, m, &t);
    chat_list c = {0};
    char *text = NULL;
    if (!rc) rc = command_line_chat(o, &c);
    if (!rc) rc = render_list(t, tok, &c, &text);
    if (!rc) rc = tokenize_text(tok, text, true, ids, n);
    free(text);
    chat_list_free(&c);
    sw_chat_template_free(t);
    return rc;
}

/* ---- one sequence on the paged cache ------------------------------------- */

typedef struct seq {
    int32_t *blocks; /* owned block table */
    int32_t n_blocks, cap;
    int32_t n_past;  /* tokens already in the cache */
} seq;

/* Feed n tokens at positions n_past.. and get the last token's logits. */
static sw_status seq_eval(sw_model *m, sw_kv_cache *kv, seq *s, const int32_t *toks, int32_t n,
                          float *logits, sw_err *err) {
    int32_t bs = sw_kv_block_size(kv);
    while ((int64_t)s->n_blocks * bs < (int64_t)s->n_past + n) {
        if (s->n_blocks == s->cap) {
            int32_t cap = s->cap ? s->cap * 2 : 16;
            int32_t *nb = realloc(s->blocks, (size_t)cap * sizeof *nb);
            if (!nb) return sw_err_set(err, SW_E_NOMEM, "out of memory for the block table");
            s->blocks = nb;
            s->cap = cap;
        }
        int32_t b = sw_kv_alloc_block(kv);
        if (b < 0)
            return sw_err_set(err, SW_E_NOMEM, "KV cache full at %d tokens", s->n_past + n);
        s->blocks[s->n_blocks++] = b;
    }
    int32_t *pos = malloc((size_t)n * sizeof *pos);
    if (!pos) return sw_err_set(err, SW_E_NOMEM, "out of memory");
    for (int32_t i = 0; i < n; i++) pos[i] = s->n_past + i;
    int32_t seq_start[2] = {0, n};
    const int32_t *tables[1] = {s->blocks};
    sw_batch b = {
        .n_tokens = n,
        .tokens = toks,
        .pos = pos,
        .n_seqs = 1,
        .seq_start = seq_start,
        .block_tables = tables,
        .n_blocks = &s->n_blocks,
        .all_logits = false,
    };
    sw_status st = sw_model_forward(m, kv, &b, logits, err);
    free(pos);
    if (st == SW_OK) s->n_past += n;
    return st;
}

/* ---- output -------------------------------------------------------------- */

typedef struct gen_out {
    sw_token_info *info; /* [n] */
    int32_t n, cap;
    char *text;          /* streamed bytes, NUL-terminated */
    size_t text_len, text_cap;
} gen_out;

static int text_append(gen_out *g, const char *s) {
    size_t n = strlen(s);
    if (g->text_len + n + 1 > g->text_cap) {
        size_t cap = (g->text_len + n + 1) * 2;
        char *t = realloc(g->text, cap);
        if (!t) return 1;
        g->text = t;
        g->text_cap = cap;
    }
    memcpy(g->text + g->text_len, s, n + 1);
    g->text_len += n;
    return 0;
}

/* Sample from logits (the last prompt token's), stream each token's text
 * (unless --json), feed it back, until end-of-generation, n_predict tokens or
 * a full context. g gets the tokens and text; every token but the last one
 * sampled is in the cache afterwards (sq->n_past). Returns 0, or 1 after
 * printing the error. */
static int generate(sw_model *m, sw_kv_cache *kv, seq *sq, sw_sampler *smp, sw_detok *dt,
                    float *logits, const opts *o, int32_t ctx, gen_out *g, int32_t *n_decode,
                    const char **stop) {
    const sw_tokenizer *tok = sw_model_tokenizer(m);
    sw_err err = {{0}};
    *stop = "length";
    *n_decode = 0;
    while (g->n < o->n_predict) {
        sw_token_info *ti = &g->info[g->n];
        if (sw_sampler_sample(smp, logits, ti, &err) != SW_OK) {
            fprintf(stderr, "spillway-generate: sampling: %s\n", err.msg);
            return 1;
        }
        if (sw_tokenizer_is_eog(tok, ti->id)) {
            *stop = "eog";
            break;
        }
        g->n++;
        sw_sampler_accept(smp, ti->id);
        const char *piece = sw_detok_push(dt, ti->id);
        if (text_append(g, piece)) return 1;
        if (!o->json) {
            fputs(piece, stdout);
            fflush(stdout);
        }
        if (g->n == o->n_predict) break;
        if (sq->n_past >= ctx) {
            *stop = "context";
            break;
        }
        if (seq_eval(m, kv, sq, &ti->id, 1, logits, &err) != SW_OK) {
            fprintf(stderr, "\nspillway-generate: decode: %s\n", err.msg);
            return 1;
        }
        (*n_decode)++;
    }
    return 0;
}

/* Generated bytes need not be valid UTF-8 (a character split by max tokens, a
 * byte-fallback token, a random model): JSON output gets U+FFFD for every byte
 * that does not start a valid sequence, as the server writes it. */
static void add_text(cJSON *obj, const char *key, const char *text, size_t len) {
    char *clean = NULL;
    size_t n = 0;
    sw_err err = {{0}};
    if (sw_utf8_sanitize(text, len, &clean, &n, &err) == SW_OK)
        cJSON_AddStringToObject(obj, key, clean);
    else
        cJSON_AddStringToObject(obj, key, "");
    free(clean);
}

static cJSON *ids_json(const int32_t *ids, size_t n) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(ids[i]));
    return a;
}

static void print_json(const opts *o, const sw_tokenizer *tok, const int32_t *prompt,
                       size_t n_prompt, const gen_out *g, double load_ms, double prompt_ms,
                       double gen_ms, int32_t n_decode) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "prompt_ids", ids_json(prompt, n_prompt));
    cJSON *gen = cJSON_AddArrayToObject(root, "gen_ids");
    cJSON *lp = cJSON_CreateArray(), *ent = cJSON_CreateArray();
    cJSON *top = o->sp.n_top_logprobs > 0 ? cJSON_CreateArray() : NULL;
    for (int32_t i = 0; i < g->n; i++) {
        const sw_token_info *t = &g->info[i];
        cJSON_AddItemToArray(gen, cJSON_CreateNumber(t->id));
        cJSON_AddItemToArray(lp, cJSON_CreateNumber(t->logprob));
        cJSON_AddItemToArray(ent, cJSON_CreateNumber(t->entropy));
        if (!top) continue;
        cJSON *alts = cJSON_CreateArray();
        for (int32_t j = 0; j < t->n_top; j++) {
            cJSON *alt = cJSON_CreateObject();
            char piece[256];
            size_t pn = sw_token_to_piece(tok, t->top_ids[j], true, piece, sizeof piece - 1);
            piece[SW_MIN(pn, sizeof piece - 1)] = '\0';
            cJSON_AddNumberToObject(alt, "id", t->top_ids[j]);
            add_text(alt, "token", piece, strlen(piece));
            cJSON_AddNumberToObject(alt, "logprob", t->top_logprobs[j]);
            cJSON_AddItemToArray(alts, alt);
        }
        cJSON_AddItemToArray(top, alts);
    }
    add_text(root, "text", g->text ? g->text : "", g->text ? g->text_len : 0);
    cJSON_AddItemToObject(root, "logprobs", lp);
    if (top) cJSON_AddItemToObject(root, "top_logprobs", top);
    cJSON_AddItemToObject(root, "entropy", ent);
    cJSON *tm = cJSON_AddObjectToObject(root, "timings");
    cJSON_AddNumberToObject(tm, "load_ms", load_ms);
    cJSON_AddNumberToObject(tm, "prompt_ms", prompt_ms);
    cJSON_AddNumberToObject(tm, "prompt_tok_s", prompt_ms > 0 ? n_prompt / (prompt_ms / 1e3) : 0);
    cJSON_AddNumberToObject(tm, "gen_ms", gen_ms);
    cJSON_AddNumberToObject(tm, "gen_tok_s", gen_ms > 0 ? n_decode / (gen_ms / 1e3) : 0);
    char *s = cJSON_PrintUnformatted(root);
    if (s) printf("%s\n", s);
    free(s);
    cJSON_Delete(root);
}

/* ---- interactive chat ---------------------------------------------------- */

/* Drop the oldest exchange after the system message(s): the first
 * non-system message, and an assistant reply that would then lead. Returns
 * the number of messages dropped: 0 when only the newest one is left. */
static size_t drop_oldest(chat_list *c) {
    size_t i = 0, n = chat_len(c);
    while (i < n && !strcmp(chat_role(c, i), "system")) i++;
    if (n - i <= 1) return 0;
    size_t k = 1;
    if (i + 1 < n - 1 && !strcmp(chat_role(c, i + 1), "assistant")) k = 2;
    for (size_t j = 0; j < k; j++) cJSON_DeleteItemFromArray(c->msgs, (int)i);
    return k;
}

static size_t common_prefix(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    size_t i = 0;
    while (i < na && i < nb && a[i] == b[i]) i++;
    return i;
}

/* One user turn per line of stdin. Each turn renders the whole conversation,
 * keeps the cached tokens it shares with what is already in the KV cache (the
 * previous prompt and answer), evaluates the rest and answers. */
static int run_interactive(const opts *o, sw_model *m, int32_t ctx) {
    const sw_model_config *cfg = sw_model_config_get(m);
    const sw_tokenizer *tok = sw_model_tokenizer(m);
    sw_err err = {{0}};
    sw_chat_template *tmpl = NULL;
    int rc = load_template(o, m, &tmpl);
    if (rc) return rc;
    chat_list c = {0};
    sw_kv_cache *kv = NULL;
    float *logits = malloc((size_t)cfg->n_vocab * sizeof *logits);
    int32_t *cached = NULL; /* tokens in the cache, in order */
    size_t n_cached = 0;
    seq sq = {0};
    gen_out g = {.cap = SW_MAX(o->n_predict, 1)};
    g.info = malloc((size_t)g.cap * sizeof *g.info);
    char *line = NULL;
    size_t line_cap = 0;
    bool tty = isatty(STDIN_FILENO);
    rc = 1;
    sw_kv_params kp = {.block_size = 16, .n_blocks = (ctx + 15) / 16, .type = SW_TYPE_F16};
    if (!logits || !g.info || command_line_chat(o, &c)) {
        fprintf(stderr, "spillway-generate: out of memory\n");
        goto out;
    }
    if (sw_kv_cache_create(m, &kp, &kv, &err) != SW_OK) {
        fprintf(stderr, "spillway-generate: %s\n", err.msg);
        goto out;
    }
    /* room kept for the answer when old turns must go */
    int32_t reserve = SW_MIN(o->n_predict, ctx / 4);
    bool pending = chat_len(&c) > 0 && !strcmp(chat_role(&c, chat_len(&c) - 1), "user"); /* -p */
    for (int turn = 1;; ) {
        if (!pending) {
            if (tty) fputs("> ", stderr);
            ssize_t len = getline(&line, &line_cap, stdin);
            if (len < 0) break;
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
            if (len == 0) continue;
            if (!strcmp(line, "/exit") || !strcmp(line, "/quit")) break;
            if (!strcmp(line, "/reset")) {
                size_t keep = 0;
                while (keep < chat_len(&c) && !strcmp(chat_role(&c, keep), "system")) keep++;
                while (chat_len(&c) > keep) cJSON_DeleteItemFromArray(c.msgs, (int)keep);
                fprintf(stderr, "(conversation reset)\n");
                continue;
            }
            if (add_msg(&c, "user", line)) goto oom;
        }
        pending = false;
        /* render; drop the oldest exchanges until prompt + reserve fit (on a
         * copy of the list: a message that cannot fit at all loses nothing) */
        int32_t *ids = NULL;
        size_t n_ids = 0;
        int dropped = 0;
        cJSON *saved = cJSON_Duplicate(c.msgs, 1);
        if (!saved) goto oom;
        for (;;) {
            char *text = NULL;
            if (render_list(tmpl, tok, &c, &text) || tokenize_text(tok, text, true, &ids, &n_ids)) {
                free(text);
                cJSON_Delete(saved);
                goto out;
            }
            free(text);
            if (n_ids + (size_t)reserve <= (size_t)ctx && n_ids < (size_t)ctx) break;
            free(ids);
            ids = NULL;
            size_t k = drop_oldest(&c);
            if (!k) break;
            dropped += (int)k;
        }
        if (!ids) {
            fprintf(stderr,
                    "spillway-generate: this message does not fit the context of %d tokens "
                    "with room for an answer (raise --ctx); it was not sent\n", ctx);
            cJSON_Delete(c.msgs);
            c.msgs = saved; /* all but the newest user message */
            cJSON_DeleteItemFromArray(c.msgs, cJSON_GetArraySize(c.msgs) - 1);
            continue;
        }
        cJSON_Delete(saved);
        if (dropped)
            fprintf(stderr, "(context full: dropped the %d oldest message%s)\n", dropped,
                    dropped == 1 ? "" : "s");
        /* reuse the cached prefix; the last prompt token is always evaluated
         * for its logits */
        size_t keep = common_prefix(cached, n_cached, ids, n_ids);
        if (keep >= n_ids) keep = n_ids - 1;
        sq.n_past = (int32_t)keep;
        n_cached = keep;
        double tp = sw_time_s();
        for (size_t i = keep; i < n_ids; i += MAX_BATCH) {
            int32_t n = (int32_t)SW_MIN((size_t)MAX_BATCH, n_ids - i);
            if (seq_eval(m, kv, &sq, ids + i, n, logits, &err) != SW_OK) {
                fprintf(stderr, "spillway-generate: prompt: %s\n", err.msg);
                free(ids);
                goto out;
            }
        }
        double prompt_ms = (sw_time_s() - tp) * 1e3;
        int32_t *nc = realloc(cached, ((size_t)ctx + 1) * sizeof *nc);
        if (!nc) {
            free(ids);
            goto oom;
        }
        cached = nc;
        memcpy(cached, ids, n_ids * sizeof *ids);
        n_cached = n_ids;

        /* answer */
        sw_sampler *smp = NULL;
        sw_detok *dt = sw_detok_create(tok, false);
        if (!dt || sw_sampler_create(&o->sp, (int32_t)cfg->n_vocab, &smp, &err) != SW_OK) {
            fprintf(stderr, "spillway-generate: %s\n", dt ? err.msg : "out of memory");
            sw_detok_free(dt);
            free(ids);
            goto out;
        }
        for (size_t i = 0; i < n_ids; i++) sw_sampler_accept(smp, ids[i]);
        g.n = 0;
        g.text_len = 0;
        if (g.text) g.text[0] = 0;
        double tg = sw_time_s();
        int32_t n_decode = 0;
        const char *stop = NULL;
        int grc = generate(m, kv, &sq, smp, dt, logits, o, ctx, &g, &n_decode, &stop);
        double gen_ms = (sw_time_s() - tg) * 1e3;
        const char *tail = grc ? "" : sw_detok_flush(dt);
        if (!grc && text_append(&g, tail)) grc = 1;
        if (!grc && !o->json) fputs(tail, stdout); /* tail lives in dt */
        sw_sampler_free(smp);
        sw_detok_free(dt);
        if (grc) {
            free(ids);
            goto out;
        }
        /* the answer's tokens that were fed back are in the cache too */
        for (int32_t i = 0; i < n_decode; i++) cached[n_cached++] = g.info[i].id;
        if (o->json) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddNumberToObject(j, "turn", turn);
            add_text(j, "text", g.text ? g.text : "", g.text ? g.text_len : 0);
            cJSON *gen = cJSON_AddArrayToObject(j, "gen_ids");
            for (int32_t i = 0; i < g.n; i++)
                cJSON_AddItemToArray(gen, cJSON_CreateNumber(g.info[i].id));
            cJSON_AddNumberToObject(j, "prompt_tokens", (double)n_ids);
            cJSON_AddNumberToObject(j, "cached_tokens", (double)keep);
            add_text(j, "stop", stop, strlen(stop));
            char *js = cJSON_PrintUnformatted(j);
            if (js) printf("%s\n", js);
            free(js);
            cJSON_Delete(j);
        } else {
            fputc('\n', stdout);
        }
        fflush(stdout);
        fprintf(stderr,
                "turn %d: prompt %zu tokens (%zu cached, %zu evaluated in %.1f ms) | "
                "generated %d tokens in %.1f ms (%.1f tok/s) | stop: %s\n",
                turn, n_ids, keep, n_ids - keep, prompt_ms, g.n, gen_ms,
                gen_ms > 0 ? n_decode / (gen_ms / 1e3) : 0.0, stop);
        free(ids);
        if (add_msg(&c, "assistant", g.text ? g.text : "")) goto oom;
        turn++;
    }
    rc = 0;
    goto out;
oom:
    fprintf(stderr, "spillway-generate: out of memory\n");
    rc = 1;
out:
    free(line);
    free(cached);
    free(sq.blocks);
    free(logits);
    free(g.info);
    free(g.text);
    sw_kv_cache_free(kv);
    chat_list_free(&c);
    sw_chat_template_free(tmpl);
    return rc;
}

/* ---- main ---------------------------------------------------------------- */

int main(int argc, char **argv) {
    opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc;

    sw_err err = {{0}};
    sw_backend *be = NULL;
    sw_model *m = NULL;
    sw_kv_cache *kv = NULL;
    sw_sampler *smp = NULL;
    sw_detok *dt = NULL;
    int32_t *prompt = NULL;
    size_t n_prompt = 0;
    float *logits = NULL;
    seq sq = {0};
    gen_out g = {0};
    rc = 1;

    char *downloaded = NULL; /* the cached path of an --hf model */
    if (o.hf) {
        sw_hf_params hp = {.cache_dir = o.cache_dir, .progress = isatty(STDERR_FILENO)};
        if (sw_hf_download(o.hf, &hp, &downloaded, &err) != SW_OK) {
            fprintf(stderr, "spillway-generate: --hf %s: %s\n", o.hf, err.msg);
            return 1;
        }
        o.model = downloaded;
    }

    double t0 = sw_time_s();
    sw_backend_config bc = {.name = o.backend, .n_threads = o.threads, .device = o.device};
    if (sw_backend_create(&bc, &be, &err) != SW_OK) {
        fprintf(stderr, "spillway-generate: backend %s: %s\n", o.backend, err.msg);
        goto done;
    }
    sw_model_params mp = {.progress = true};
    if (sw_model_load(o.model, be, &mp, &m, &err) != SW_OK) {
        fprintf(stderr, "spillway-generate: %s\n", err.msg);
        goto done;
    }
    double load_ms = (sw_time_s() - t0) * 1e3;
    const sw_model_config *cfg = sw_model_config_get(m);
    const sw_tokenizer *tok = sw_model_tokenizer(m);

    int32_t ctx = o.ctx > 0 ? o.ctx : (int32_t)SW_MIN(cfg->n_ctx_train, 4096);
    if (ctx > cfg->n_ctx_train) {
        fprintf(stderr, "spillway-generate: --ctx %d is larger than the model's context %lld; using %lld\n",
                ctx, (long long)cfg->n_ctx_train, (long long)cfg->n_ctx_train);
        ctx = (int32_t)cfg->n_ctx_train;
    }
    if (o.interactive) {
        rc = run_interactive(&o, m, ctx);
        goto done;
    }
    if ((rc = tokenize_prompt(&o, m, &prompt, &n_prompt)) != 0) goto done;
    rc = 1;
    if (n_prompt == 0) {
        fprintf(stderr, "spillway-generate: the prompt is empty after tokenization\n");
        goto done;
    }
    if (n_prompt >= (size_t)ctx) {
        fprintf(stderr,
                "spillway-generate: the prompt has %zu tokens, which does not fit the context of "
                "%d tokens (raise --ctx)\n",
                n_prompt, ctx);
        goto done;
    }

    sw_kv_params kp = {.block_size = 16, .n_blocks = (ctx + 15) / 16, .type = SW_TYPE_F16};
    if (sw_kv_cache_create(m, &kp, &kv, &err) != SW_OK ||
        sw_sampler_create(&o.sp, (int32_t)cfg->n_vocab, &smp, &err) != SW_OK) {
        fprintf(stderr, "spillway-generate: %s\n", err.msg);
        goto done;
    }
    dt = sw_detok_create(tok, false);
    logits = malloc((size_t)cfg->n_vocab * sizeof *logits);
    g.cap = o.n_predict;
    g.info = malloc((size_t)SW_MAX(g.cap, 1) * sizeof *g.info);
    if (!dt || !logits || !g.info) {
        fprintf(stderr, "spillway-generate: out of memory\n");
        goto done;
    }
    for (size_t i = 0; i < n_prompt; i++) sw_sampler_accept(smp, prompt[i]);

    /* Prefill the prompt, MAX_BATCH tokens per step. */
    double tp = sw_time_s();
    for (size_t i = 0; i < n_prompt; i += MAX_BATCH) {
        int32_t n = (int32_t)SW_MIN((size_t)MAX_BATCH, n_prompt - i);
        if (seq_eval(m, kv, &sq, prompt + i, n, logits, &err) != SW_OK) {
            fprintf(stderr, "spillway-generate: prompt: %s\n", err.msg);
            goto done;
        }
    }
    double prompt_ms = (sw_time_s() - tp) * 1e3;

    /* Generate: sample from the last logits, feed the token back. */
    double tg = sw_time_s();
    int32_t n_decode = 0;
    const char *stop = NULL;
    if (generate(m, kv, &sq, smp, dt, logits, &o, ctx, &g, &n_decode, &stop)) goto done;
    double gen_ms = (sw_time_s() - tg) * 1e3;
    const char *tail = sw_detok_flush(dt);
    if (text_append(&g, tail)) goto done;
    if (!o.json) {
        fputs(tail, stdout);
        fputc('\n', stdout);
    } else {
        print_json(&o, tok, prompt, n_prompt, &g, load_ms, prompt_ms, gen_ms, n_decode);
    }
    fflush(stdout);
    fprintf(stderr,
            "load %.0f ms | prompt %zu tokens in %.1f ms (%.1f tok/s) | generated %d tokens, "
            "%d decode steps in %.1f ms (%.1f tok/s) | stop: %s\n",
            load_ms, n_prompt, prompt_ms, prompt_ms > 0 ? n_prompt / (prompt_ms / 1e3) : 0.0, g.n,
            n_decode, gen_ms, gen_ms > 0 ? n_decode / (gen_ms / 1e3) : 0.0, stop);
    rc = 0;
done:
    free(g.info);
    free(g.text);
    free(sq.blocks);
    free(logits);
    free(prompt);
    sw_detok_free(dt);
    sw_sampler_free(smp);
    sw_kv_cache_free(kv);
    sw_model_free(m);
    sw_backend_free(be);
    free(downloaded);
    return rc;
}
