/* json_check.c — field-by-field checks of request bodies (json_check.h). */
#include "json_check.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define BAD_REQ "invalid_request_error"

/* ---- helpers --------------------------------------------------------------- */

const char *srv_json_type_name(const cJSON *v) {
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsBool(v)) return "boolean";
    if (cJSON_IsNumber(v)) return "number";
    if (cJSON_IsString(v)) return "string";
    if (cJSON_IsArray(v)) return "array";
    if (cJSON_IsObject(v)) return "object";
    return "invalid";
}

bool srv_json_type_error(srv_error *e, const char *param, const char *want, const cJSON *got) {
    srv_error_set(e, 400, BAD_REQ, "invalid_type", param, "'%s' must be %s, got %s", param, want,
                  srv_json_type_name(got));
    return false;
}

/* Field lookup: NULL when absent or JSON null (null means "use the default",
 * as in OpenAI's API). */
const cJSON *srv_json_field(const cJSON *obj, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return (v && !cJSON_IsNull(v)) ? v : NULL;
}

/* Optional number in [lo, hi]. Returns false (e filled) on a bad value. */
bool srv_json_opt_num(const cJSON *obj, const char *name, double lo, double hi, bool lo_open,
                    float *out, srv_error *e) {
    const cJSON *v = srv_json_field(obj, name);
    if (!v) return true;
    if (!cJSON_IsNumber(v)) return srv_json_type_error(e, name, "a number", v);
    double d = v->valuedouble;
    if (!isfinite(d) || d < lo || d > hi || (lo_open && d <= lo)) {
        srv_error_set(e, 400, BAD_REQ, "invalid_value", name,
                      "'%s' is %g; it must be %s %g and <= %g", name, d, lo_open ? ">" : ">=", lo,
                      hi);
        return false;
    }
    *out = (float)d;
    return true;
}

/* Whether v is a JSON number holding an integer in [lo, hi]. */
bool srv_json_int(const cJSON *v, const char *name, double lo, double hi, double *out,
                      srv_error *e) {
    if (!cJSON_IsNumber(v)) return srv_json_type_error(e, name, "an integer", v);
    double d = v->valuedouble;
    if (!isfinite(d) || d != floor(d)) {
        srv_error_set(e, 400, BAD_REQ, "invalid_type", name, "'%s' must be an integer, got %g",
                      name, d);
        return false;
    }
    if (d < lo || d > hi) {
        srv_error_set(e, 400, BAD_REQ, "invalid_value", name,
                      "'%s' is %.0f; it must be between %.0f and %.0f", name, d, lo, hi);
        return false;
    }
    *out = d;
    return true;
}

bool srv_json_opt_int(const cJSON *obj, const char *name, double lo, double hi, int32_t *out,
                    bool *given, srv_error *e) {
    const cJSON *v = srv_json_field(obj, name);
    if (given) *given = false;
    if (!v) return true;
    double d = 0;
    if (!srv_json_int(v, name, lo, hi, &d, e)) return false;
    *out = (int32_t)d;
    if (given) *given = true;
    return true;
}

bool srv_json_opt_bool(const cJSON *obj, const char *name, bool *out, srv_error *e) {
    const cJSON *v = srv_json_field(obj, name);
    if (!v) return true;
    if (!cJSON_IsBool(v)) return srv_json_type_error(e, name, "a boolean", v);
    *out = cJSON_IsTrue(v);
    return true;
}

bool srv_json_nomem(srv_error *e) {
    srv_error_set(e, 500, "server_error", NULL, NULL, "out of memory parsing the request");
    return false;
}

/* ---- body-level checks ------------------------------------------------------ */

/* Strict UTF-8 check (no overlongs, surrogates, or code points past U+10FFFF).
 * A body that is not UTF-8 is not JSON (RFC 8259 section 8.1). */
static bool utf8_valid(const unsigned char *s, size_t n, size_t *bad_at) {
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = sw_utf8_decode((const char *)s + i, n - i, &cp);
        if (!k) {
            *bad_at = i;
            return false;
        }
        i += k;
    }
    return true;
}

static bool digit_at(const char *s, size_t n, size_t i) { return i < n && s[i] >= '0' && s[i] <= '9'; }

/* cJSON's number parser is laxer than RFC 8259 section 6: it takes "01",
 * "1." and "-.5". The body parsed, so its strings and literals are
 * well formed; find the first number token that is not
 * -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? and return its offset. */
static bool numbers_strict(const char *s, size_t n, size_t *bad_at) {
    for (size_t i = 0; i < n;) {
        if (s[i] == '"') {
            for (i++; i < n && s[i] != '"'; i++)
                if (s[i] == '\\') i++;
            i++;
            continue;
        }
        if (s[i] != '-' && !digit_at(s, n, i)) {
            i++;
            continue;
        }
        size_t at = i;
        bool ok = true;
        if (s[i] == '-') i++;
        if (!digit_at(s, n, i)) ok = false;
        else if (s[i] == '0') i++;
        else
            while (digit_at(s, n, i)) i++;
        if (ok && i < n && s[i] == '.') {
            ok = digit_at(s, n, ++i);
            while (digit_at(s, n, i)) i++;
        }
        if (ok && i < n && (s[i] == 'e' || s[i] == 'E')) {
            i++;
            if (i < n && (s[i] == '+' || s[i] == '-')) i++;
            ok = digit_at(s, n, i);
            while (digit_at(s, n, i)) i++;
        }
        if (!ok || digit_at(s, n, i) || (i < n && s[i] == '.')) { /* "01", "1.5.5" */
            *bad_at = at;
            return false;
        }
    }
    return true;
}

cJSON *srv_json_parse_object(const char *body, size_t len, srv_error *e) {
    if (!body || len == 0) {
        srv_error_set(e, 400, BAD_REQ, "invalid_json", NULL,
                      "the request body is empty; expected a JSON object");
        return NULL;
    }
    size_t bad = 0;
    if (!utf8_valid((const unsigned char *)body, len, &bad)) {
        srv_error_set(e, 400, BAD_REQ, "invalid_json", NULL,
                      "the request body is not valid UTF-8 (at byte %zu)", bad);
        return NULL;
    }
    if (memchr(body, '\0', len)) {
        srv_error_set(e, 400, BAD_REQ, "invalid_json", NULL,
                      "the request body contains a NUL byte; escape it as \\u0000 in strings");
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, false);
    if (!root) {
        size_t at = (end && end >= body) ? (size_t)(end - body) : 0;
        srv_error_set(e, 400, BAD_REQ, "invalid_json", NULL,
                      "could not parse the JSON body of the request (error near byte %zu of %zu)",
                      at, len);
        return NULL;
    }
    /* Trailing non-space after the value is not JSON either. */
    if (end) {
        while ((size_t)(end - body) < len && (*end == ' ' || *end == '\n' || *end == '\r' ||
                                               *end == '\t'))
            end++;
        if ((size_t)(end - body) < len) {
            cJSON_Delete(root);
            srv_error_set(e, 400, BAD_REQ, "invalid_json", NULL,
                          "unexpected data after the JSON value at byte %zu",
                          (size_t)(end - body));
            return NULL;
        }
    }
    if (!numbers_strict(body, len, &bad)) {
        cJSON_Delete(root);
        srv_error_set(e, 400, BAD_REQ, "invalid_json", NULL,
                      "the number at byte %zu is not JSON (RFC 8259: no leading zeros, "
                      "digits on both sides of '.')",
                      bad);
        return NULL;
    }
    if (!cJSON_IsObject(root)) {
        srv_error_set(e, 400, BAD_REQ, "invalid_json", NULL,
                      "the request body must be a JSON object, got %s", srv_json_type_name(root));
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}


bool srv_json_begin_request(srv_request *r, srv_wire wire, const char *body, size_t len,
                            srv_error *e) {
    memset(r, 0, sizeof *r);
    r->wire = wire;
    sw_sampler_params_default(&r->sp);
    if (!(r->raw = srv_json_parse_object(body, len, e))) return false;
    const cJSON *v = srv_json_field(r->raw, "model");
    bool ok = !v || (cJSON_IsString(v) ? (r->model = strdup(v->valuestring)) != NULL || srv_json_nomem(e)
                                       : srv_json_type_error(e, "model", "a string", v));
    if (!ok) srv_request_free(r);
    return ok;
}
