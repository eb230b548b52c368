/* embed_parse.c — the /v1/embeddings wire format (embed.h): the request
 * (input as strings or token ids, encoding_format, dimensions) checked into
 * an srv_embed_req, and the response in OpenAI's shape (float or base64). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed.h"
#include "json_check.h"
#include "oai.h"

/* OpenAI's limit on inputs per request. */
#define EMBED_MAX_INPUTS 2048


/* A list of token ids, checked against the vocabulary. */
static bool parse_ids(const cJSON *arr, const char *param, int32_t n_vocab, srv_embed_input *in,
                      srv_error *e) {
    size_t n = (size_t)cJSON_GetArraySize(arr), k = 0;
    if (n == 0) {
        srv_error_set(e, 400, "invalid_request_error", "invalid_value", param,
                      "'%s' is an empty token list", param);
        return false;
    }
    int32_t *ids = malloc(n * sizeof *ids);
    if (!ids) return srv_json_nomem(e);
    in->ids = ids;
    in->n = n;
    const cJSON *t;
    cJSON_ArrayForEach(t, arr) {
        char p[80];
        snprintf(p, sizeof p, "%.40s[%zu]", param, k);
        double d = 0;
        if (!srv_json_int(t, p, 0, (double)n_vocab - 1, &d, e)) return false;
        ids[k++] = (int32_t)d;
    }
    return true;
}

void srv_embed_req_free(srv_embed_req *r) {
    for (size_t i = 0; r->in && i < r->n; i++) free((void *)r->in[i].ids);
    free(r->in);
    memset(r, 0, sizeof *r);
}

/* input: "text" | ["text", ...] | [id, ...] | [[id, ...], ...] */
static bool parse_input(const cJSON *root, const srv_embedder *em, srv_embed_req *r, srv_error *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "input");
    if (!v || cJSON_IsNull(v)) {
        srv_error_set(e, 400, "invalid_request_error", "missing_required_parameter", "input",
                      "'input' is required");
        return false;
    }
    bool one = cJSON_IsString(v) || (cJSON_IsArray(v) && cJSON_IsNumber(cJSON_GetArrayItem(v, 0)));
    if (!one && !cJSON_IsArray(v))
        return srv_json_type_error(e, "input", "a string, a list of strings or token ids", v);
    size_t n = one ? 1 : (size_t)cJSON_GetArraySize(v);
    if (n == 0 || n > EMBED_MAX_INPUTS) {
        srv_error_set(e, 400, "invalid_request_error", "invalid_value", "input",
                      "'input' has %zu items; send 1 to %d", n, EMBED_MAX_INPUTS);
        return false;
    }
    if (!(r->in = calloc(n, sizeof *r->in))) return srv_json_nomem(e);
    r->n = n;
    for (size_t i = 0; i < n; i++) {
        const cJSON *it = one ? v : cJSON_GetArrayItem(v, (int)i);
        char p[32];
        snprintf(p, sizeof p, one ? "input" : "input[%zu]", i);
        if (cJSON_IsString(it)) {
            if (!it->valuestring[0]) {
                srv_error_set(e, 400, "invalid_request_error", "invalid_value", p,
                              "'%s' is an empty string", p);
                return false;
            }
            int32_t *ids = NULL;
            if (!em->tokenize(em, it->valuestring, &ids, &r->in[i].n, e)) return false;
            r->in[i].ids = ids;
            if (r->in[i].n == 0) {
                srv_error_set(e, 400, "invalid_request_error", "invalid_value", p,
                              "'%s' is empty after tokenization", p);
                return false;
            }
        } else if (cJSON_IsArray(it) && (one || cJSON_IsNumber(cJSON_GetArrayItem(it, 0)))) {
            if (!parse_ids(it, p, em->n_vocab, &r->in[i], e)) return false;
        } else {
            return srv_json_type_error(e, p, "a string or a list of token ids", it);
        }
        if (r->in[i].n > (size_t)em->max_tokens) {
            srv_error_set(e, 400, "invalid_request_error", "context_length_exceeded", p,
                          "'%s' has %zu tokens; this model embeds at most %d", p, r->in[i].n,
                          em->max_tokens);
            return false;
        }
    }
    return true;
}

static bool parse_fields(const cJSON *root, const srv_embedder *em, srv_embed_req *r,
                         srv_error *e) {
    const cJSON *model = srv_json_field(root, "model");
    if (model && !cJSON_IsString(model)) return srv_json_type_error(e, "model", "a string", model);
    r->model = model ? model->valuestring : NULL;
    const cJSON *f = srv_json_field(root, "encoding_format");
    if (f && !(cJSON_IsString(f) && (!strcmp(f->valuestring, "float") ||
                                      !strcmp(f->valuestring, "base64")))) {
        srv_error_set(e, 400, "invalid_request_error", "invalid_value", "encoding_format",
                      "'encoding_format' must be 'float' or 'base64'");
        return false;
    }
    r->base64 = f && !strcmp(f->valuestring, "base64");
    const cJSON *d = srv_json_field(root, "dimensions");
    double dims = 0;
    if (d && !srv_json_int(d, "dimensions", 1, 1e6, &dims, e)) return false;
    if (d && dims != em->dim) {
        srv_error_set(e, 400, "invalid_request_error", "unsupported_value", "dimensions",
                      "'dimensions' %.0f is not supported: this model embeds in %d dimensions "
                      "(leave 'dimensions' out)",
                      dims, em->dim);
        return false;
    }
    const cJSON *u = srv_json_field(root, "user");
    if (u && !cJSON_IsString(u)) return srv_json_type_error(e, "user", "a string", u);
    return parse_input(root, em, r, e);
}

/* The vector as base64 of its little-endian float32 bytes (OpenAI's format). */
static void base64_floats(sbuf *b, const float *v, int32_t n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t len = (size_t)n * 4;
    const unsigned char *p = (const unsigned char *)v; /* the host is little-endian */
    sbuf_puts(b, "\"");
    for (size_t i = 0; i < len; i += 3) {
        unsigned x = (unsigned)p[i] << 16 | (i + 1 < len ? (unsigned)p[i + 1] << 8 : 0) |
                     (i + 2 < len ? p[i + 2] : 0);
        char q[4] = {tab[x >> 18 & 63], tab[x >> 12 & 63], i + 1 < len ? tab[x >> 6 & 63] : '=',
                     i + 2 < len ? tab[x & 63] : '='};
        sbuf_add(b, q, 4);
    }
    sbuf_puts(b, "\"");
}

char *srv_embed_json(const srv_embedder *em, const srv_embed_req *r, const float *out,
                        size_t tokens) {
    sbuf b = {0};
    sbuf_puts(&b, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < r->n; i++) {
        sbuf_printf(&b, "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":", i ? "," : "", i);
        const float *v = out + i * (size_t)em->dim;
        if (r->base64) {
            base64_floats(&b, v, em->dim);
        } else {
            sbuf_puts(&b, "[");
            for (int32_t k = 0; k < em->dim; k++) sbuf_printf(&b, k ? ",%.9g" : "%.9g", (double)v[k]);
            sbuf_puts(&b, "]");
        }
        sbuf_puts(&b, "}");
    }
    sbuf_puts(&b, "],\"model\":");
    oai_json_str(&b, em->model, strlen(em->model));
    sbuf_printf(&b, ",\"usage\":{\"prompt_tokens\":%zu,\"total_tokens\":%zu}}", tokens, tokens);
    return sbuf_take(&b);
}


bool srv_embed_parse(const cJSON *root, const srv_embedder *em, srv_embed_req *r, srv_error *e) {
    memset(r, 0, sizeof *r);
    if (parse_fields(root, em, r, e)) return true;
    srv_embed_req_free(r);
    return false;
}
