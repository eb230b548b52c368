/* route_model.c — features, the router file and scoring (route_model.h). */
#include "route_model.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

#define RTR_FORMAT "spillway-router"
#define RTR_VERSION 1

struct sw_rtr {
    pthread_mutex_t mu;
    sw_rtr_spec spec; /* strings owned */
    sw_logreg clf;
    double *scores;
    int32_t n_scores, n_train, n_wrong;
    double cv_auroc;
    uint64_t n_updates;
};

/* ---- features ----------------------------------------------------------------------- */

static bool word_at(const char *p, const char *w) {
    size_t n = strlen(w);
    return strncasecmp(p, w, n) == 0 && !isalpha((unsigned char)p[n]);
}

void sw_rtr_text_features(const char *text, int32_t n_prompt_tokens, float out[SW_RTR_N_TEXT]) {
    static const char *const arith[] = {"plus", "minus", "times", "sum", "multiply", "multiplied",
                                        "divide", "divided", "product", "difference"};
    if (!text) text = "";
    size_t chars = 0, digits = 0, words = 0, numbers = 0, max_digits = 0, ops = 0, quotes = 0;
    size_t run = 0;
    bool in_word = false;
    for (const char *p = text; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if ((c & 0xC0) != 0x80) chars++; /* count code points, not bytes */
        if (isdigit(c)) {
            digits++;
            if (run++ == 0) numbers++;
            max_digits = SW_MAX(max_digits, run);
        } else if (!(c == ',' && run > 0 && isdigit((unsigned char)p[1]))) {
            run = 0;
        }
        bool alnum = isalnum(c) || c >= 0x80;
        if (alnum && !in_word) {
            words++;
            if (isalpha(c) && (p == text || !isalpha((unsigned char)p[-1])))
                for (size_t k = 0; k < sizeof arith / sizeof arith[0]; k++)
                    if (word_at(p, arith[k])) ops++;
        }
        in_word = alnum;
        if (c == '"') quotes++;
        if ((c == '+' || c == '*' || c == '/' || c == '-' || c == 'x') && p > text) {
            /* an operator between two numbers: "3 + 4", "3*4", "3 x 4" */
            const char *a = p - 1, *b = p + 1;
            while (a > text && *a == ' ') a--;
            while (*b == ' ') b++;
            if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) ops++;
        }
    }
    out[0] = (float)log1p(SW_MAX(n_prompt_tokens, 0));
    out[1] = (float)log1p((double)chars);
    out[2] = (float)log1p((double)words);
    out[3] = (float)numbers;
    out[4] = (float)max_digits;
    out[5] = chars ? (float)digits / (float)chars : 0.0f;
    out[6] = (float)ops;
    out[7] = (float)(quotes / 2);
}

void sw_rtr_prompt_id(const int32_t *ids, size_t n, char id[17]) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        uint32_t v = (uint32_t)ids[i];
        for (int k = 0; k < 4; k++) {
            h ^= (v >> (8 * k)) & 0xffu;
            h *= 0x100000001b3ull;
        }
    }
    snprintf(id, 17, "%016llx", (unsigned long long)h);
}

void sw_rtr_model_id(const sw_gguf *g, char *name, size_t name_cap, char id[17]) {
    uint64_t h = 0xcbf29ce484222325ull;
#define MIX(ptr, len)                                                   \
    do {                                                                \
        const unsigned char *b_ = (const unsigned char *)(ptr);         \
        for (size_t i_ = 0; i_ < (size_t)(len); i_++) {                 \
            h ^= b_[i_];                                                \
            h *= 0x100000001b3ull;                                      \
        }                                                               \
    } while (0)
    const char *arch = NULL, *gname = NULL;
    sw_err err;
    if (sw_gguf_get_str(g, "general.architecture", &arch, &err) == SW_OK && arch)
        MIX(arch, strlen(arch) + 1);
    for (int64_t i = 0; i < sw_gguf_n_tensors(g); i++) {
        const sw_gguf_tensor *t = sw_gguf_tensor_at(g, i);
        MIX(t->name, strlen(t->name) + 1);
        int32_t type = (int32_t)t->type;
        MIX(&type, sizeof type);
        MIX(t->ne, sizeof t->ne);
    }
#undef MIX
    snprintf(id, 17, "%016llx", (unsigned long long)h);
    if (sw_gguf_get_str(g, "general.name", &gname, &err) != SW_OK || !gname || !*gname)
        gname = "unnamed";
    if (name_cap) snprintf(name, name_cap, "%s", gname);
}

unsigned sw_rtr_engine_hidden(unsigned h) {
    return (h & (SW_HIDDEN_LAST | SW_HIDDEN_MEAN)) | ((h & SW_RTR_HIDDEN_QUERY) ? SW_HIDDEN_MEAN : 0);
}

/* The prompt's text, token by token (control tokens as their text): the
 * concatenation, malloc'd, and off[i] = where token i starts (off[n] = end). */
static char *prompt_pieces(const sw_tokenizer *tok, const int32_t *ids, int32_t n, size_t *off) {
    size_t len = 0, cap = 256;
    char *txt = malloc(cap);
    for (int32_t i = 0; txt && i < n; i++) {
        off[i] = len;
        for (;;) {
            size_t need = sw_token_to_piece(tok, ids[i], true, txt + len, cap - len - 1);
            if (len + need < cap) {
                len += need;
                break;
            }
            char *nt = realloc(txt, 2 * cap + need);
            if (!nt) {
                free(txt);
                return NULL;
            }
            txt = nt;
            cap = 2 * cap + need;
        }
    }
    if (txt) txt[len] = '\0';
    off[n] = len;
    return txt;
}

bool sw_rtr_query_span(const sw_tokenizer *tok, const int32_t *ids, int32_t n, const char *query,
                       int32_t span[2]) {
    span[0] = 0;
    span[1] = n;
    if (!tok || !query || n < 1) return false;
    size_t a = 0, b = strlen(query); /* templates often trim the message */
    while (a < b && isspace((unsigned char)query[a])) a++;
    while (b > a && isspace((unsigned char)query[b - 1])) b--;
    size_t *off = malloc(((size_t)n + 1) * sizeof *off);
    char *txt = off ? prompt_pieces(tok, ids, n, off) : NULL;
    const char *at = NULL;
    for (const char *p = txt; a < b && p;) { /* the last occurrence */
        const char *q = memmem(p, off[n] - (size_t)(p - txt), query + a, b - a);
        if (q) at = q;
        p = q ? q + 1 : NULL;
    }
    if (at) { /* the tokens whose text overlaps [at, at + b - a) */
        size_t s0 = (size_t)(at - txt), s1 = s0 + (b - a);
        int32_t i = 0, k = n;
        while (i < n && off[i + 1] <= s0) i++;
        while (k > i + 1 && off[k - 1] >= s1) k--;
        span[0] = i;
        span[1] = k;
    }
    free(txt);
    free(off);
    return at != NULL;
}

int32_t sw_rtr_dim(const sw_rtr_spec *s) {
    int32_t d = 0;
    if (s->hidden & SW_HIDDEN_LAST) d += s->n_embd;
    if (s->hidden & SW_HIDDEN_MEAN) d += s->n_embd;
    if (s->hidden & SW_RTR_HIDDEN_QUERY) d += s->n_embd;
    if (s->text) d += SW_RTR_N_TEXT;
    return d;
}

sw_status sw_rtr_vector(const sw_rtr_spec *s, const sw_rtr_input *in, float *out, sw_err *err) {
    if (s->hidden && in->n_embd != s->n_embd)
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "router: hidden states have %d dimensions, the router expects %d",
                          in->n_embd, s->n_embd);
    static const char *const names[3] = {"last-token", "mean", "query-mean"};
    const float *parts[3] = {in->hidden_last, in->hidden_mean, in->hidden_mean};
    const unsigned flags[3] = {SW_HIDDEN_LAST, SW_HIDDEN_MEAN, SW_RTR_HIDDEN_QUERY};
    size_t off = 0;
    for (int k = 0; k < 3; k++) {
        if (!(s->hidden & flags[k])) continue;
        if (!parts[k])
            return sw_err_set(err, SW_E_INVALID_ARG, "router: the %s hidden state is missing",
                              names[k]);
        memcpy(out + off, parts[k], (size_t)s->n_embd * sizeof *out);
        off += (size_t)s->n_embd;
    }
    if (s->text) sw_rtr_text_features(in->text, in->n_prompt_tokens, out + off);
    return SW_OK;
}

/* ---- lifetime ----------------------------------------------------------------------- */

static sw_status set_spec(sw_rtr *r, const sw_rtr_spec *s, sw_err *err) {
    r->spec = *s;
    r->spec.model_name = strdup(s->model_name ? s->model_name : "unnamed");
    r->spec.model_id = strdup(s->model_id ? s->model_id : "");
    r->spec.prompt_id = s->prompt_id ? strdup(s->prompt_id) : NULL;
    r->spec.prompt_probe = s->prompt_probe ? strdup(s->prompt_probe) : NULL;
    if (!r->spec.model_name || !r->spec.model_id || (s->prompt_id && !r->spec.prompt_id) ||
        (s->prompt_probe && !r->spec.prompt_probe))
        return sw_err_set(err, SW_E_NOMEM, "out of memory for the router");
    return SW_OK;
}

static sw_rtr *rtr_alloc(void) {
    sw_rtr *r = calloc(1, sizeof *r);
    if (r) pthread_mutex_init(&r->mu, NULL);
    return r;
}

sw_status sw_rtr_create(const sw_rtr_spec *spec, const sw_logreg *clf,
                        const sw_rtr_train_info *info, sw_rtr **out, sw_err *err) {
    *out = NULL;
    if (!spec || !clf || clf->d != sw_rtr_dim(spec))
        return sw_err_set(err, SW_E_INVALID_ARG, "router: classifier has %d features, spec %d",
                          clf ? clf->d : 0, spec ? sw_rtr_dim(spec) : 0);
    sw_rtr *r = rtr_alloc();
    if (!r) return sw_err_set(err, SW_E_NOMEM, "out of memory for the router");
    sw_status st = set_spec(r, spec, err);
    if (st == SW_OK) st = sw_logreg_copy(&r->clf, clf, err);
    if (st == SW_OK && info && info->n_scores > 0) {
        if (!(r->scores = malloc((size_t)info->n_scores * sizeof *r->scores))) {
            st = sw_err_set(err, SW_E_NOMEM, "out of memory for the router's scores");
        } else {
            memcpy(r->scores, info->scores, (size_t)info->n_scores * sizeof *r->scores);
            r->n_scores = info->n_scores;
        }
    }
    if (info) {
        r->n_train = info->n_train;
        r->n_wrong = info->n_wrong;
        r->cv_auroc = info->cv_auroc;
    }
    if (st != SW_OK) {
        sw_rtr_free(r);
        return st;
    }
    *out = r;
    return SW_OK;
}

void sw_rtr_free(sw_rtr *r) {
    if (!r) return;
    free((char *)r->spec.model_name);
    free((char *)r->spec.model_id);
    free((char *)r->spec.prompt_id);
    free((char *)r->spec.prompt_probe);
    sw_logreg_release(&r->clf);
    free(r->scores);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

const sw_rtr_spec *sw_rtr_spec_get(const sw_rtr *r) { return &r->spec; }
const double *sw_rtr_train_scores(const sw_rtr *r, int32_t *n) {
    *n = r->n_scores;
    return r->scores;
}
double sw_rtr_cv_auroc(const sw_rtr *r) { return r->cv_auroc; }
uint64_t sw_rtr_n_updates(sw_rtr *r) {
    pthread_mutex_lock(&r->mu);
    uint64_t n = r->n_updates;
    pthread_mutex_unlock(&r->mu);
    return n;
}

sw_status sw_rtr_check_model(const sw_rtr *r, const char *model_name, const char *model_id,
                             sw_err *err) {
    if (model_id && !strcmp(r->spec.model_id, model_id)) return SW_OK;
    return sw_err_set(err, SW_E_INVALID_ARG,
                      "the router was trained for model '%s' (fingerprint %s), but this is '%s' "
                      "(fingerprint %s); train one for this model with spillway-router train",
                      r->spec.model_name, r->spec.model_id, model_name ? model_name : "?",
                      model_id ? model_id : "?");
}

/* ---- scoring ------------------------------------------------------------------------ */

static sw_status with_vector(sw_rtr *r, const sw_rtr_input *in, float **v, sw_err *err) {
    if (!(*v = malloc((size_t)r->clf.d * sizeof **v)))
        return sw_err_set(err, SW_E_NOMEM, "out of memory scoring a request");
    sw_status st = sw_rtr_vector(&r->spec, in, *v, err);
    if (st != SW_OK) {
        free(*v);
        *v = NULL;
    }
    return st;
}

sw_status sw_rtr_score(sw_rtr *r, const sw_rtr_input *in, double *p, double *logit, sw_err *err) {
    float *v;
    sw_status st = with_vector(r, in, &v, err);
    if (st != SW_OK) return st;
    pthread_mutex_lock(&r->mu);
    double z = sw_logreg_logit(&r->clf, v);
    pthread_mutex_unlock(&r->mu);
    free(v);
    if (p) *p = sw_sigmoid(z);
    if (logit) *logit = z;
    return SW_OK;
}

sw_status sw_rtr_update(sw_rtr *r, const sw_rtr_input *in, bool local_ok, double lr, sw_err *err) {
    float *v;
    sw_status st = with_vector(r, in, &v, err);
    if (st != SW_OK) return st;
    pthread_mutex_lock(&r->mu);
    sw_logreg_sgd(&r->clf, v, local_ok ? 0 : 1, lr > 0 ? lr : 0.01,
                  r->clf.lambda / SW_MAX(r->n_train, 1));
    r->n_updates++;
    pthread_mutex_unlock(&r->mu);
    free(v);
    return SW_OK;
}

/* A rendered probe for a message: at most 160 bytes, control characters as
 * \n or ?, so that a template's text stays on one line and short. */
static void quote_probe(const char *p, char *out, size_t cap) {
    size_t o = 0;
    for (; p && *p && o + 4 < cap; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = c < 0x20 ? '?' : (char)c;
        }
    }
    if (p && *p && o + 3 < cap) out[o++] = '.', out[o++] = '.', out[o++] = '.';
    out[o] = '\0';
}

sw_status sw_rtr_check_prompt(const sw_rtr *r, const char *prompt_id, const char *probe,
                              sw_err *err) {
    if (!r->spec.prompt_id)
        return sw_err_set(err, SW_E_NOT_FOUND,
                          "the router file does not record the chat rendering it was trained "
                          "with (an older file): chat requests are scored as rendered now; "
                          "retrain with this spillway-router to have it checked");
    if (prompt_id && !strcmp(r->spec.prompt_id, prompt_id)) return SW_OK;
    char a[168], b[168];
    quote_probe(r->spec.prompt_probe, a, sizeof a);
    quote_probe(probe, b, sizeof b);
    return sw_err_set(err, SW_E_INVALID_ARG,
                      "the router was trained on chat prompts rendered as \"%s\" (rendering %s), "
                      "but this server renders \"%s\" (rendering %s): its hidden states would "
                      "differ; train the router with the server's chat template (or start the "
                      "server with the template it was trained with)",
                      a, r->spec.prompt_id, b, prompt_id ? prompt_id : "?");
}

/* ---- the file ----------------------------------------------------------------------- */

static cJSON *num_array(const double *v, int32_t n) {
    cJSON *a = cJSON_CreateArray();
    for (int32_t i = 0; a && i < n; i++)
        if (!cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]))) {
            cJSON_Delete(a);
            return NULL;
        }
    return a;
}

static cJSON *to_json(const sw_rtr *r) {
    cJSON *o = cJSON_CreateObject(), *m, *f, *c, *t, *h;
    bool ok = o && cJSON_AddStringToObject(o, "format", RTR_FORMAT) &&
              cJSON_AddNumberToObject(o, "version", RTR_VERSION) &&
              (m = cJSON_AddObjectToObject(o, "model")) &&
              cJSON_AddStringToObject(m, "name", r->spec.model_name) &&
              cJSON_AddStringToObject(m, "fingerprint", r->spec.model_id) &&
              (f = cJSON_AddObjectToObject(o, "features")) &&
              (h = cJSON_AddArrayToObject(f, "hidden")) &&
              cJSON_AddBoolToObject(f, "text", r->spec.text) &&
              cJSON_AddNumberToObject(f, "n_embd", r->spec.n_embd) &&
              (c = cJSON_AddObjectToObject(o, "classifier")) &&
              cJSON_AddNumberToObject(c, "lambda", r->clf.lambda) &&
              cJSON_AddNumberToObject(c, "bias", r->clf.b) &&
              cJSON_AddItemToObject(c, "mean", num_array(r->clf.mean, r->clf.d)) &&
              cJSON_AddItemToObject(c, "scale", num_array(r->clf.scale, r->clf.d)) &&
              cJSON_AddItemToObject(c, "w", num_array(r->clf.w, r->clf.d)) &&
              (t = cJSON_AddObjectToObject(o, "training")) &&
              cJSON_AddNumberToObject(t, "examples", r->n_train) &&
              cJSON_AddNumberToObject(t, "wrong", r->n_wrong) &&
              cJSON_AddNumberToObject(t, "cv_auroc", r->cv_auroc) &&
              cJSON_AddNumberToObject(t, "online_updates", (double)r->n_updates) &&
              cJSON_AddItemToObject(t, "oof_scores", num_array(r->scores, r->n_scores));
    cJSON *pr;
    if (ok && r->spec.prompt_id)
        ok = (pr = cJSON_AddObjectToObject(o, "prompt")) &&
             cJSON_AddStringToObject(pr, "fingerprint", r->spec.prompt_id) &&
             cJSON_AddStringToObject(pr, "probe", r->spec.prompt_probe ? r->spec.prompt_probe : "");
    if (ok && (r->spec.hidden & SW_HIDDEN_LAST))
        ok = cJSON_AddItemToArray(h, cJSON_CreateString("last"));
    if (ok && (r->spec.hidden & SW_HIDDEN_MEAN))
        ok = cJSON_AddItemToArray(h, cJSON_CreateString("mean"));
    if (ok && (r->spec.hidden & SW_RTR_HIDDEN_QUERY))
        ok = cJSON_AddItemToArray(h, cJSON_CreateString("query"));
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

sw_status sw_rtr_save(sw_rtr *r, const char *path, sw_err *err) {
    pthread_mutex_lock(&r->mu);
    cJSON *o = to_json(r);
    pthread_mutex_unlock(&r->mu);
    char *text = o ? cJSON_Print(o) : NULL;
    cJSON_Delete(o);
    if (!text) return sw_err_set(err, SW_E_NOMEM, "%s: out of memory writing the router", path);
    size_t n = strlen(path) + 8;
    char *tmp = malloc(n);
    sw_status st = SW_OK;
    FILE *fp = NULL;
    if (!tmp) {
        st = sw_err_set(err, SW_E_NOMEM, "%s: out of memory", path);
        goto done;
    }
    snprintf(tmp, n, "%s.tmp", path);
    if (!(fp = fopen(tmp, "w"))) {
        st = sw_err_set(err, SW_E_IO, "%s: cannot write: %s", tmp, strerror(errno));
        goto done;
    }
    bool ok = fputs(text, fp) >= 0 && fputc('\n', fp) != EOF;
    if (fclose(fp) != 0 || !ok) {
        st = sw_err_set(err, SW_E_IO, "%s: write failed: %s", tmp, strerror(errno));
        remove(tmp);
        goto done;
    }
    if (rename(tmp, path) != 0) {
        st = sw_err_set(err, SW_E_IO, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
        remove(tmp);
    }
done:
    free(tmp);
    free(text);
    return st;
}

/* Load helpers: each names path and field in its error. */
static const cJSON *need(const cJSON *o, const char *key, const char *path, const char *where,
                         sw_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) sw_err_set(err, SW_E_INVALID_ARG, "%s: %s%s: missing", path, where, key);
    return v;
}

static bool get_num(const cJSON *o, const char *key, double *out, const char *path,
                    const char *where, sw_err *err) {
    const cJSON *v = need(o, key, path, where, err);
    if (!v) return false;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
        sw_err_set(err, SW_E_INVALID_ARG, "%s: %s%s: expected a number", path, where, key);
        return false;
    }
    *out = v->valuedouble;
    return true;
}

/* An array of exactly n finite numbers (n < 0: any length; *got receives it). */
static bool get_nums(const cJSON *o, const char *key, int32_t n, double **out, int32_t *got,
                     const char *path, const char *where, sw_err *err) {
    const cJSON *a = need(o, key, path, where, err);
    if (!a) return false;
    if (!cJSON_IsArray(a)) {
        sw_err_set(err, SW_E_INVALID_ARG, "%s: %s%s: expected an array of numbers", path, where,
                   key);
        return false;
    }
    int32_t m = cJSON_GetArraySize(a);
    if (n >= 0 && m != n) {
        sw_err_set(err, SW_E_INVALID_ARG, "%s: %s%s: expected %d numbers, got %d", path, where,
                   key, n, m);
        return false;
    }
    double *v = malloc((size_t)(m > 0 ? m : 1) * sizeof *v);
    if (!v) {
        sw_err_set(err, SW_E_NOMEM, "%s: out of memory", path);
        return false;
    }
    int32_t i = 0;
    for (const cJSON *e = a->child; e; e = e->next, i++) {
        if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble)) {
            sw_err_set(err, SW_E_INVALID_ARG, "%s: %s%s[%d]: expected a number", path, where, key,
                       i);
            free(v);
            return false;
        }
        v[i] = e->valuedouble;
    }
    *out = v;
    if (got) *got = m;
    return true;
}

static sw_status parse(const cJSON *o, const char *path, sw_rtr *r, sw_err *err) {
    const cJSON *v;
    double num;
#define FAIL(...) return sw_err_set(err, SW_E_INVALID_ARG, __VA_ARGS__)
    if (!cJSON_IsObject(o)) FAIL("%s: not a router file (expected a JSON object)", path);
    v = cJSON_GetObjectItemCaseSensitive(o, "format");
    if (!cJSON_IsString(v) || strcmp(v->valuestring, RTR_FORMAT))
        FAIL("%s: format: expected \"%s\" (not a spillway-router file)", path, RTR_FORMAT);
    if (!get_num(o, "version", &num, path, "", err)) return SW_E_INVALID_ARG;
    if (num != RTR_VERSION) FAIL("%s: version: %g is not supported (this build reads %d)", path, num, RTR_VERSION);
    const cJSON *m = need(o, "model", path, "", err), *f, *c, *t, *name, *fp, *h, *text;
    if (!m) return SW_E_INVALID_ARG;
    name = cJSON_GetObjectItemCaseSensitive(m, "name");
    fp = cJSON_GetObjectItemCaseSensitive(m, "fingerprint");
    if (!cJSON_IsString(name)) FAIL("%s: model.name: expected a string", path);
    if (!cJSON_IsString(fp) || strlen(fp->valuestring) != 16)
        FAIL("%s: model.fingerprint: expected 16 hex digits", path);
    sw_rtr_spec spec = {.model_name = name->valuestring, .model_id = fp->valuestring};
    const cJSON *pr = cJSON_GetObjectItemCaseSensitive(o, "prompt");
    if (pr) { /* optional: files from before it was recorded have none */
        const cJSON *pid = cJSON_GetObjectItemCaseSensitive(pr, "fingerprint");
        const cJSON *probe = cJSON_GetObjectItemCaseSensitive(pr, "probe");
        if (!cJSON_IsObject(pr)) FAIL("%s: prompt: expected an object", path);
        if (!cJSON_IsString(pid) || strlen(pid->valuestring) != 16)
            FAIL("%s: prompt.fingerprint: expected 16 hex digits", path);
        if (!cJSON_IsString(probe)) FAIL("%s: prompt.probe: expected a string", path);
        spec.prompt_id = pid->valuestring;
        spec.prompt_probe = probe->valuestring;
    }
    if (!(f = need(o, "features", path, "", err))) return SW_E_INVALID_ARG;
    if (!(h = need(f, "hidden", path, "features.", err))) return SW_E_INVALID_ARG;
    if (!cJSON_IsArray(h))
        FAIL("%s: features.hidden: expected an array of \"last\"/\"mean\"/\"query\"", path);
    int32_t i = 0;
    for (const cJSON *e = h->child; e; e = e->next, i++) {
        if (cJSON_IsString(e) && !strcmp(e->valuestring, "last")) spec.hidden |= SW_HIDDEN_LAST;
        else if (cJSON_IsString(e) && !strcmp(e->valuestring, "mean")) spec.hidden |= SW_HIDDEN_MEAN;
        else if (cJSON_IsString(e) && !strcmp(e->valuestring, "query")) spec.hidden |= SW_RTR_HIDDEN_QUERY;
        else FAIL("%s: features.hidden[%d]: expected \"last\", \"mean\" or \"query\"", path, i);
    }
    if ((spec.hidden & SW_HIDDEN_MEAN) && (spec.hidden & SW_RTR_HIDDEN_QUERY))
        FAIL("%s: features.hidden: \"mean\" and \"query\" together are not supported (the "
             "engine gives one mean per request)", path);
    if (!(text = need(f, "text", path, "features.", err))) return SW_E_INVALID_ARG;
    if (!cJSON_IsBool(text)) FAIL("%s: features.text: expected true or false", path);
    spec.text = cJSON_IsTrue(text);
    if (!get_num(f, "n_embd", &num, path, "features.", err)) return SW_E_INVALID_ARG;
    if (num < 0 || num > 1e6 || num != floor(num) || (spec.hidden && num < 1))
        FAIL("%s: features.n_embd: %g is not a valid width", path, num);
    spec.n_embd = (int32_t)num;
    int32_t d = sw_rtr_dim(&spec);
    if (d < 1) FAIL("%s: features: no features selected", path);
    sw_status st = set_spec(r, &spec, err);
    if (st != SW_OK) return st;
    if (!(c = need(o, "classifier", path, "", err))) return SW_E_INVALID_ARG;
    if ((st = sw_logreg_init(&r->clf, d, err)) != SW_OK) return st;
    free(r->clf.mean), free(r->clf.scale), free(r->clf.w);
    r->clf.mean = r->clf.scale = r->clf.w = NULL;
    if (!get_num(c, "lambda", &r->clf.lambda, path, "classifier.", err) ||
        !get_num(c, "bias", &r->clf.b, path, "classifier.", err) ||
        !get_nums(c, "mean", d, &r->clf.mean, NULL, path, "classifier.", err) ||
        !get_nums(c, "scale", d, &r->clf.scale, NULL, path, "classifier.", err) ||
        !get_nums(c, "w", d, &r->clf.w, NULL, path, "classifier.", err))
        return SW_E_INVALID_ARG;
    for (int32_t j = 0; j < d; j++)
        if (!(r->clf.scale[j] > 0)) FAIL("%s: classifier.scale[%d]: must be > 0", path, j);
    if (!(t = need(o, "training", path, "", err))) return SW_E_INVALID_ARG;
    double ex, wr, upd;
    if (!get_num(t, "examples", &ex, path, "training.", err) ||
        !get_num(t, "wrong", &wr, path, "training.", err) ||
        !get_num(t, "cv_auroc", &r->cv_auroc, path, "training.", err) ||
        !get_num(t, "online_updates", &upd, path, "training.", err) ||
        !get_nums(t, "oof_scores", -1, &r->scores, &r->n_scores, path, "training.", err))
        return SW_E_INVALID_ARG;
    r->n_train = (int32_t)ex;
    r->n_wrong = (int32_t)wr;
    r->n_updates = (uint64_t)fmax(0, upd);
    for (int32_t j = 0; j < r->n_scores; j++)
        if (!(r->scores[j] >= 0 && r->scores[j] <= 1))
            FAIL("%s: training.oof_scores[%d]: %g is not a probability", path, j, r->scores[j]);
#undef FAIL
    return SW_OK;
}

sw_status sw_rtr_load(const char *path, sw_rtr **out, sw_err *err) {
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return sw_err_set(err, SW_E_IO, "%s: cannot open the router file: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 > cap) {
            cap = cap ? 2 * cap : 65536;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(fp);
                return sw_err_set(err, SW_E_NOMEM, "%s: out of memory reading it", path);
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len, fp);
        len += got;
        if (got == 0) break;
    }
    bool rd_err = ferror(fp);
    fclose(fp);
    if (rd_err) {
        free(buf);
        return sw_err_set(err, SW_E_IO, "%s: read error", path);
    }
    sw_status st = sw_rtr_load_memory(buf, len, path, out, err);
    free(buf);
    return st;
}

sw_status sw_rtr_load_memory(const char *buf, size_t len, const char *path, sw_rtr **out,
                             sw_err *err) {
    *out = NULL;
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(buf, len, &end, false);
    if (!o) {
        size_t at = end ? (size_t)(end - buf) : len;
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "%s: not valid JSON at byte %zu of %zu (truncated or corrupt router "
                          "file?)",
                          path, at, len);
    }
    sw_rtr *r = rtr_alloc();
    sw_status st = r ? parse(o, path, r, err) : sw_err_set(err, SW_E_NOMEM, "out of memory");
    cJSON_Delete(o);
    if (st != SW_OK) {
        sw_rtr_free(r);
        return st;
    }
    *out = r;
    return SW_OK;
}
