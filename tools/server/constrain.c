/* constrain.c — the local model's output constraints: a request's
 * response_format json_schema, llama.cpp's json_schema and grammar fields
 * compiled into an sw_grammar (runtime/json_schema.h, runtime/gbnf.h) for the
 * engine. A schema or grammar that does not compile is the client's 400,
 * naming the field and what the compiler refused.
 *
 * Compiled grammars are kept in a small cache keyed by their text: clients
 * send the same schema again and again, and a grammar's mask cache (its
 * per-state token sets) is only warm on reuse. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#define GCACHE_SLOTS 16

typedef struct gc_entry {
    int kind;   /* 0 empty, 1 schema, 2 GBNF, 3 tool calls */
    char *text; /* the key: compact schema JSON or grammar text */
    sw_grammar *g;
    uint64_t used;
} gc_entry;

struct srv_gcache {
    pthread_mutex_t mu;
    gc_entry e[GCACHE_SLOTS];
    uint64_t tick;
};

srv_gcache *srv_gcache_create(void) {
    srv_gcache *c = calloc(1, sizeof *c);
    if (c) pthread_mutex_init(&c->mu, NULL);
    return c;
}

void srv_gcache_free(srv_gcache *c) {
    if (!c) return;
    for (int i = 0; i < GCACHE_SLOTS; i++) {
        free(c->e[i].text);
        sw_grammar_free(c->e[i].g);
    }
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* A reference to the cached grammar for (kind, text), or NULL. */
static sw_grammar *gcache_get(srv_gcache *c, int kind, const char *text) {
    sw_grammar *g = NULL;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < GCACHE_SLOTS && !g; i++)
        if (c->e[i].kind == kind && !strcmp(c->e[i].text, text)) {
            g = sw_grammar_retain(c->e[i].g);
            c->e[i].used = ++c->tick;
        }
    pthread_mutex_unlock(&c->mu);
    return g;
}

/* Keep g (a new reference) for (kind, text), evicting the least recently used. */
static void gcache_put(srv_gcache *c, int kind, const char *text, sw_grammar *g) {
    char *copy = strdup(text);
    if (!copy) return;
    pthread_mutex_lock(&c->mu);
    int v = 0;
    for (int i = 1; i < GCACHE_SLOTS; i++)
        if (c->e[i].used < c->e[v].used) v = i;
    free(c->e[v].text);
    sw_grammar_free(c->e[v].g);
    c->e[v] = (gc_entry){kind, copy, sw_grammar_retain(g), ++c->tick};
    pthread_mutex_unlock(&c->mu);
}

/* The request field the constraint came from, for error messages. */
static const char *constraint_param(const srv_request *r) {
    if (r->format.type == SRV_FORMAT_GRAMMAR) return "grammar";
    if (r->wire == SRV_WIRE_ANTHROPIC) return "output_config.format";
    if (cJSON_GetObjectItemCaseSensitive(r->raw, "json_schema")) return "json_schema";
    return "response_format";
}

/* The outcome of a compilation: kept in the cache, or the client's error. */
static bool compiled(srv *s, int kind, const char *text, const char *param, sw_status st,
                     const sw_err *cerr, sw_grammar **out, srv_error *e) {
    const sw_err err = *cerr;
    if (st == SW_E_NOMEM) {
        srv_error_set(e, 500, "server_error", NULL, NULL, "out of memory compiling the %s", param);
        return false;
    }
    if (st != SW_OK) {
        srv_error_set(e, 400, "invalid_request_error",
                      st == SW_E_UNSUPPORTED ? "unsupported_value" : "invalid_value", param, "%s",
                      err.msg);
        return false;
    }
    if (s->gcache) gcache_put(s->gcache, kind, text, *out);
    return true;
}

/* Compile (or find) the grammar for kind/text; 400 naming param on failure. */
static bool compile_cached(srv *s, int kind, const char *text, const char *param, sw_grammar **out,
                           srv_error *e) {
    if (s->gcache && (*out = gcache_get(s->gcache, kind, text))) return true;
    sw_err err = {{0}};
    sw_status st = kind == 1 ? sw_grammar_from_json_schema(text, strlen(text), out, &err)
                             : sw_grammar_from_gbnf(text, strlen(text), out, &err);
    return compiled(s, kind, text, param, st, &err, out, e);
}

bool srv_format_grammar(srv *s, const srv_request *r, sw_grammar **out, srv_error *e) {
    *out = NULL;
    if (r->format.type == SRV_FORMAT_GRAMMAR)
        return compile_cached(s, 2, r->format.grammar, "grammar", out, e);
    if (r->format.type != SRV_FORMAT_JSON_SCHEMA) return true;
    char *text = cJSON_PrintUnformatted(r->format.schema);
    if (!text) {
        srv_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
        return false;
    }
    bool ok = compile_cached(s, 1, text, constraint_param(r), out, e);
    free(text);
    return ok;
}

bool srv_compile_tool_grammar(srv *s, const sw_tool_call_syntax *syn, const sw_tool_def *defs,
                              int32_t n, sw_grammar **out, srv_error *e) {
    *out = NULL;
    /* the key: everything the grammar depends on */
    cJSON *k = cJSON_CreateObject(), *tools = k ? cJSON_AddArrayToObject(k, "tools") : NULL;
    const char *strs[] = {syn->open, syn->close, syn->sep, syn->list_open, syn->list_close,
                          syn->name_key, syn->args_key};
    cJSON *sx = tools ? cJSON_AddArrayToObject(k, "syntax") : NULL;
    for (size_t i = 0; sx && i < sizeof strs / sizeof *strs; i++)
        cJSON_AddItemToArray(sx, cJSON_CreateString(strs[i] ? strs[i] : ""));
    if (sx) {
        cJSON_AddBoolToObject(k, "text_before", syn->text_before);
        cJSON_AddNumberToObject(k, "max_calls", syn->max_calls);
    }
    for (int32_t i = 0; tools && i < n; i++) {
        cJSON *t = cJSON_CreateArray();
        cJSON_AddItemToArray(tools, t);
        cJSON_AddItemToArray(t, cJSON_CreateString(defs[i].name));
        cJSON_AddItemToArray(t, defs[i].parameters ? cJSON_Duplicate(defs[i].parameters, true) : cJSON_CreateNull());
    }
    char *key = sx ? cJSON_PrintUnformatted(k) : NULL;
    cJSON_Delete(k);
    if (!key) {
        srv_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
        return false;
    }
    bool ok;
    if (s->gcache && (*out = gcache_get(s->gcache, 3, key))) {
        ok = true;
    } else {
        sw_err err = {{0}};
        sw_status st = sw_grammar_tool_calls(syn, defs, n, out, &err);
        ok = compiled(s, 3, key, "tools", st, &err, out, e);
    }
    free(key);
    return ok;
}
