/* oai_parse.c — parse and validate OpenAI chat/completions request bodies.
 *
 * Every field is checked for its JSON type and range before anything reaches
 * the engine, and each failure names the parameter the way OpenAI does
 * ("messages[2].role", "temperature"), with status 400. Unknown fields are
 * ignored (clients send vendor extras); features we do not implement (the
 * legacy functions API, n > 1, suffix) are refused rather than silently
 * dropped, because an answer that ignored them would be wrong. Tool calling:
 * oai_tools.c. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oai.h"

#define BAD_REQ "invalid_request_error"

/* ---- chat messages ---------------------------------------------------------- */

/* Content of a message: a string, or an array of {"type": "text", "text"}
 * parts (one text block each; the prompt joins them with newlines), or null
 * for an assistant turn. */
static bool parse_content(const cJSON *msg, size_t i, srv_msg *out, srv_error *e) {
    char param[96];
    snprintf(param, sizeof param, "messages[%zu].content", i);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(msg, "content");
    if (!c || cJSON_IsNull(c)) {
        if (!strcmp(out->role, "assistant")) return true;
        srv_error_set(e, 400, BAD_REQ, "missing_required_parameter", param,
                      "'%s' is required for a %s message", param, out->role);
        return false;
    }
    if (cJSON_IsString(c)) {
        srv_block *b = srv_msg_add_block(out, SRV_BLOCK_TEXT);
        if (!b || !(b->text = strdup(c->valuestring))) return srv_json_nomem(e);
        return true;
    }
    if (!cJSON_IsArray(c)) return srv_json_type_error(e, param, "a string or an array of content parts", c);
    size_t j = 0;
    const cJSON *part;
    cJSON_ArrayForEach(part, c) {
        char pp[128];
        snprintf(pp, sizeof pp, "%s[%zu]", param, j);
        if (!cJSON_IsObject(part)) return srv_json_type_error(e, pp, "an object", part);
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
        if (!cJSON_IsString(type)) {
            snprintf(pp + strlen(pp), sizeof pp - strlen(pp), ".type");
            return srv_json_type_error(e, pp, "a string", type);
        }
        if (strcmp(type->valuestring, "text") != 0) {
            snprintf(pp + strlen(pp), sizeof pp - strlen(pp), ".type");
            srv_error_set(e, 400, BAD_REQ, "unsupported_value", pp,
                          "content part type '%.40s' is not supported by this text-only model; "
                          "use 'text'",
                          type->valuestring);
            return false;
        }
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (!cJSON_IsString(text)) {
            snprintf(pp + strlen(pp), sizeof pp - strlen(pp), ".text");
            return srv_json_type_error(e, pp, "a string", text);
        }
        srv_block *b = srv_msg_add_block(out, SRV_BLOCK_TEXT);
        if (!b || !(b->text = strdup(text->valuestring))) return srv_json_nomem(e);
        j++;
    }
    return true;
}

static bool parse_messages(const cJSON *root, srv_request *r, srv_error *e) {
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (!msgs || cJSON_IsNull(msgs)) {
        srv_error_set(e, 400, BAD_REQ, "missing_required_parameter", "messages",
                      "'messages' is required");
        return false;
    }
    if (!cJSON_IsArray(msgs)) return srv_json_type_error(e, "messages", "an array", msgs);
    size_t n = (size_t)cJSON_GetArraySize(msgs);
    if (n == 0) {
        srv_error_set(e, 400, BAD_REQ, "invalid_value", "messages",
                      "'messages' must contain at least one message");
        return false;
    }
    size_t i = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs) {
        char param[64];
        snprintf(param, sizeof param, "messages[%zu]", i);
        if (!cJSON_IsObject(m)) return srv_json_type_error(e, param, "an object", m);
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        snprintf(param, sizeof param, "messages[%zu].role", i);
        if (!role || cJSON_IsNull(role)) {
            srv_error_set(e, 400, BAD_REQ, "missing_required_parameter", param,
                          "'%s' is required", param);
            return false;
        }
        if (!cJSON_IsString(role)) return srv_json_type_error(e, param, "a string", role);
        const char *rs = role->valuestring;
        const char *canon = NULL;
        if (!strcmp(rs, "system") || !strcmp(rs, "developer")) canon = "system";
        else if (!strcmp(rs, "user")) canon = "user";
        else if (!strcmp(rs, "assistant")) canon = "assistant";
        if (!strcmp(rs, "tool")) {
            if (!oai_parse_tool_message(m, i, r, e)) return false;
            i++;
            continue;
        }
        if (!canon) {
            bool fn = !strcmp(rs, "function");
            srv_error_set(e, 400, BAD_REQ, fn ? "unsupported_value" : "invalid_value", param,
                          fn ? "role 'function' (the legacy functions API) is not supported; use "
                               "tools and 'tool' messages"
                             : "unknown role '%.40s'; expected system, developer, user, assistant "
                               "or tool",
                          rs);
            return false;
        }
        const cJSON *tc = srv_json_field(m, "tool_calls");
        if (tc && strcmp(canon, "assistant")) {
            snprintf(param, sizeof param, "messages[%zu].tool_calls", i);
            srv_error_set(e, 400, BAD_REQ, "invalid_value", param,
                          "only assistant messages carry tool_calls");
            return false;
        }
        srv_msg *sm = srv_request_add_msg(r, canon);
        if (!sm) return srv_json_nomem(e);
        if (!parse_content(m, i, sm, e)) return false;
        if (tc && !oai_parse_tool_calls(tc, i, sm, e)) return false;
        i++;
    }
    return true;
}

/* ---- completions prompt ---------------------------------------------------- */

static bool parse_token_array(const cJSON *arr, const char *param, int32_t n_vocab,
                              srv_request *r, srv_error *e) {
    size_t n = (size_t)cJSON_GetArraySize(arr);
    if (n == 0) {
        srv_error_set(e, 400, BAD_REQ, "invalid_value", param, "'%s' is an empty token list",
                      param);
        return false;
    }
    r->prompt_ids = malloc(n * sizeof *r->prompt_ids);
    if (!r->prompt_ids) return srv_json_nomem(e);
    size_t i = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, arr) {
        char pp[80];
        snprintf(pp, sizeof pp, "%s[%zu]", param, i);
        double d = 0;
        if (!srv_json_int(t, pp, 0, (double)n_vocab - 1, &d, e)) return false;
        r->prompt_ids[i++] = (int32_t)d;
    }
    r->n_prompt_ids = n;
    return true;
}

static bool all_numbers(const cJSON *arr) {
    const cJSON *t;
    cJSON_ArrayForEach(t, arr) if (!cJSON_IsNumber(t)) return false;
    return true;
}

/* prompt: "text" | ["text"] | [ids...] | [[ids...]]. One prompt per request:
 * a batch would need n choices, which we do not serve. */
static bool parse_prompt(const cJSON *root, int32_t n_vocab, srv_request *r, srv_error *e) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "prompt");
    if (!p || cJSON_IsNull(p)) {
        srv_error_set(e, 400, BAD_REQ, "missing_required_parameter", "prompt",
                      "'prompt' is required");
        return false;
    }
    if (cJSON_IsString(p)) {
        r->prompt = strdup(p->valuestring);
        return r->prompt ? true : srv_json_nomem(e);
    }
    if (!cJSON_IsArray(p))
        return srv_json_type_error(e, "prompt", "a string, an array of strings or an array of token ids",
                          p);
    int n = cJSON_GetArraySize(p);
    if (n == 0) {
        srv_error_set(e, 400, BAD_REQ, "invalid_value", "prompt", "'prompt' is an empty array");
        return false;
    }
    if (all_numbers(p)) return parse_token_array(p, "prompt", n_vocab, r, e);
    if (n > 1) {
        srv_error_set(e, 400, BAD_REQ, "unsupported_value", "prompt",
                      "batched prompts (%d) are not supported; send one prompt per request", n);
        return false;
    }
    const cJSON *one = cJSON_GetArrayItem(p, 0);
    if (cJSON_IsString(one)) {
        r->prompt = strdup(one->valuestring);
        return r->prompt ? true : srv_json_nomem(e);
    }
    if (cJSON_IsArray(one) && all_numbers(one))
        return parse_token_array(one, "prompt[0]", n_vocab, r, e);
    return srv_json_type_error(e, "prompt[0]", "a string or an array of token ids", one);
}

/* ---- the request ------------------------------------------------------------- */

static bool parse_stop(const cJSON *root, srv_request *r, srv_error *e) {
    const cJSON *s = srv_json_field(root, "stop");
    if (!s) return true;
    if (cJSON_IsString(s)) {
        if (!*s->valuestring) return true;
        return srv_request_add_stop(r, s->valuestring) ? true : srv_json_nomem(e);
    }
    if (!cJSON_IsArray(s)) return srv_json_type_error(e, "stop", "a string or an array of strings", s);
    int n = cJSON_GetArraySize(s);
    if (n > OAI_MAX_STOP) {
        srv_error_set(e, 400, BAD_REQ, "invalid_value", "stop",
                      "'stop' has %d sequences; at most %d are allowed", n, OAI_MAX_STOP);
        return false;
    }
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, s) {
        char pp[32];
        snprintf(pp, sizeof pp, "stop[%d]", i++);
        if (!cJSON_IsString(it)) return srv_json_type_error(e, pp, "a string", it);
        if (!*it->valuestring) continue;
        if (!srv_request_add_stop(r, it->valuestring)) return srv_json_nomem(e);
    }
    return true;
}

/* logit_bias: {"token id": bias in [-100, 100], ...}, ids of this model's
 * vocabulary; -100 bans the token (sampler.h). */
static bool parse_logit_bias(const cJSON *root, int32_t n_vocab, srv_request *r, srv_error *e) {
    const cJSON *v = srv_json_field(root, "logit_bias");
    if (!v) return true;
    if (!cJSON_IsObject(v)) return srv_json_type_error(e, "logit_bias", "an object", v);
    int n = cJSON_GetArraySize(v);
    if (n == 0) return true;
    if (n > SW_MAX_LOGIT_BIAS) {
        srv_error_set(e, 400, BAD_REQ, "invalid_value", "logit_bias",
                      "'logit_bias' has %d entries; at most %d are allowed", n, SW_MAX_LOGIT_BIAS);
        return false;
    }
    if (!(r->logit_bias = malloc((size_t)n * sizeof *r->logit_bias))) return srv_json_nomem(e);
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, v) {
        const char *k = it->string ? it->string : "";
        char *end = NULL;
        long long id = -1;
        if (*k >= '0' && *k <= '9' && strlen(k) <= 10) id = strtoll(k, &end, 10);
        if (id < 0 || !end || *end || id >= n_vocab) {
            srv_error_set(e, 400, BAD_REQ, "invalid_value", "logit_bias",
                          "'logit_bias' key '%.40s' is not a token id of this model (0..%d)", k,
                          (int)n_vocab - 1);
            return false;
        }
        if (!cJSON_IsNumber(it)) return srv_json_type_error(e, "logit_bias", "an object of numbers", it);
        double d = it->valuedouble;
        if (!isfinite(d) || d < -100.0 || d > 100.0) {
            srv_error_set(e, 400, BAD_REQ, "invalid_value", "logit_bias",
                          "'logit_bias' of token %lld is %g; it must be between -100 and 100",
                          id, d);
            return false;
        }
        r->logit_bias[i++] = (sw_logit_bias){(int32_t)id, (float)d};
    }
    r->sp.logit_bias = r->logit_bias;
    r->sp.n_logit_bias = i;
    return true;
}

/* A JSON Schema for the output (compiled, and refused with its reason, only
 * when the local model answers: a cloud provider reads it itself). */
static bool take_schema(const cJSON *v, const char *param, srv_request *r, srv_error *e) {
    if (!cJSON_IsObject(v) && !cJSON_IsBool(v)) return srv_json_type_error(e, param, "a JSON Schema (an object)", v);
    if (!(r->format.schema = cJSON_Duplicate(v, true))) return srv_json_nomem(e);
    r->format.type = SRV_FORMAT_JSON_SCHEMA;
    return true;
}

/* response_format: "text"; "json_object" (JSON mode: the output is one JSON
 * object; with llama.cpp's "schema" member, that schema); "json_schema"
 * with json_schema: {name, schema, strict, description} (OpenAI's structured
 * outputs; a missing schema allows any JSON value). */
static bool parse_response_format(const cJSON *root, srv_request *r, srv_error *e) {
    const cJSON *v = srv_json_field(root, "response_format");
    if (!v) return true;
    if (!cJSON_IsObject(v)) return srv_json_type_error(e, "response_format", "an object", v);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(v, "type");
    if (!cJSON_IsString(t)) return srv_json_type_error(e, "response_format.type", "a string", t);
    if (!strcmp(t->valuestring, "json_object")) {
        const cJSON *sch = srv_json_field(v, "schema");
        if (sch) return take_schema(sch, "response_format.schema", r, e);
        r->format.type = SRV_FORMAT_JSON_OBJECT;
    } else if (!strcmp(t->valuestring, "json_schema")) {
        const cJSON *js = srv_json_field(v, "json_schema");
        if (!js) {
            srv_error_set(e, 400, BAD_REQ, "missing_required_parameter", "response_format.json_schema",
                          "'response_format.json_schema' is required for type 'json_schema'");
            return false;
        }
        if (!cJSON_IsObject(js)) return srv_json_type_error(e, "response_format.json_schema", "an object", js);
        const cJSON *name = srv_json_field(js, "name"), *sch = srv_json_field(js, "schema");
        if (name && !cJSON_IsString(name))
            return srv_json_type_error(e, "response_format.json_schema.name", "a string", name);
        if (name && !(r->format.name = strdup(name->valuestring))) return srv_json_nomem(e);
        if (!srv_json_opt_bool(js, "strict", &r->format.strict, e)) return false;
        if (sch) return take_schema(sch, "response_format.json_schema.schema", r, e);
        r->format.type = SRV_FORMAT_JSON_SCHEMA; /* no schema: any JSON value */
        if (!(r->format.schema = cJSON_CreateObject())) return srv_json_nomem(e);
    } else if (strcmp(t->valuestring, "text") != 0) {
        srv_error_set(e, 400, BAD_REQ, "unsupported_value", "response_format.type",
                      "response_format '%.40s' is not supported; use 'text', 'json_object' or "
                      "'json_schema'",
                      t->valuestring);
        return false;
    }
    return true;
}

/* llama.cpp's fields: "json_schema" (a schema) and "grammar" (GBNF text);
 * at most one constraint per request. */
static bool parse_llama_constraints(const cJSON *root, srv_request *r, srv_error *e) {
    const cJSON *js = srv_json_field(root, "json_schema"), *gr = srv_json_field(root, "grammar");
    if (gr && cJSON_IsString(gr) && !gr->valuestring[0]) gr = NULL; /* "" means none, as llama.cpp */
    if (!js && !gr) return true;
    if ((js && gr) || r->format.type != SRV_FORMAT_TEXT) {
        srv_error_set(e, 400, BAD_REQ, "invalid_value", js && gr ? "grammar" : js ? "json_schema" : "grammar",
                      "give one output constraint: response_format, json_schema or grammar");
        return false;
    }
    if (js) return take_schema(js, "json_schema", r, e);
    if (!cJSON_IsString(gr)) return srv_json_type_error(e, "grammar", "a string (GBNF)", gr);
    if (!(r->format.grammar = strdup(gr->valuestring))) return srv_json_nomem(e);
    r->format.type = SRV_FORMAT_GRAMMAR;
    return true;
}

/* Fields we refuse rather than ignore. */
static bool refuse_unsupported(const cJSON *root, srv_error *e) {
    const cJSON *v;
    if ((v = srv_json_field(root, "n"))) {
        double d = 0;
        if (!srv_json_int(v, "n", 1, 128, &d, e)) return false;
        if (d != 1) {
            srv_error_set(e, 400, BAD_REQ, "unsupported_value", "n",
                          "'n' is %.0f; only n = 1 is supported (send separate requests)", d);
            return false;
        }
    }
    if ((v = srv_json_field(root, "best_of"))) {
        double d = 0;
        if (!srv_json_int(v, "best_of", 1, 128, &d, e)) return false;
        if (d != 1) {
            srv_error_set(e, 400, BAD_REQ, "unsupported_value", "best_of",
                          "only best_of = 1 is supported");
            return false;
        }
    }
    if ((v = srv_json_field(root, "functions"))) {
        if (!cJSON_IsArray(v)) return srv_json_type_error(e, "functions", "an array", v);
        if (cJSON_GetArraySize(v) > 0) {
            srv_error_set(e, 400, BAD_REQ, "unsupported_parameter", "functions",
                          "'functions' (the legacy functions API) is not supported; use 'tools'");
            return false;
        }
    }
    if ((v = srv_json_field(root, "suffix"))) {
        if (!cJSON_IsString(v)) return srv_json_type_error(e, "suffix", "a string", v);
        if (*v->valuestring) {
            srv_error_set(e, 400, BAD_REQ, "unsupported_parameter", "suffix",
                          "'suffix' (insertion) is not supported");
            return false;
        }
    }
    return true;
}

static bool parse_sampling(const cJSON *root, srv_request *r, srv_error *e) {
    sw_sampler_params *sp = &r->sp;
    if (!srv_json_opt_num(root, "temperature", 0, 2, false, &sp->temperature, e)) return false;
    if (!srv_json_opt_num(root, "top_p", 0, 1, false, &sp->top_p, e)) return false;
    if (!srv_json_opt_num(root, "min_p", 0, 1, false, &sp->min_p, e)) return false;
    if (!srv_json_opt_num(root, "presence_penalty", -2, 2, false, &sp->presence_penalty, e)) return false;
    if (!srv_json_opt_num(root, "frequency_penalty", -2, 2, false, &sp->frequency_penalty, e))
        return false;
    if (!srv_json_opt_num(root, "repetition_penalty", 0, 10, true, &sp->repeat_penalty, e)) return false;
    if (!srv_json_opt_num(root, "repeat_penalty", 0, 10, true, &sp->repeat_penalty, e)) return false;
    int32_t top_k = sp->top_k;
    /* -1 means "off" in llama.cpp's API. */
    if (!srv_json_opt_int(root, "top_k", -1, 1e9, &top_k, NULL, e)) return false;
    sp->top_k = top_k < 0 ? 0 : top_k;
    if (!srv_json_opt_int(root, "repeat_last_n", -1, 1e9, &sp->repeat_last_n, NULL, e)) return false;
    const cJSON *seed = srv_json_field(root, "seed");
    if (seed) {
        double d = 0;
        /* Doubles hold integers exactly up to 2^53; beyond that two seeds
         * could silently collide, so refuse them. */
        if (!srv_json_int(seed, "seed", -9007199254740992.0, 9007199254740992.0, &d, e))
            return false;
        sp->seed = (uint64_t)(int64_t)d;
        r->seed_given = true;
    }
    return true;
}

static bool parse_limits(const cJSON *root, srv_request *r, srv_error *e) {
    int32_t mt = 0, mct = 0;
    bool g1 = false, g2 = false;
    if (!srv_json_opt_int(root, "max_tokens", 1, INT32_MAX, &mt, &g1, e)) return false;
    if (!srv_json_opt_int(root, "max_completion_tokens", 1, INT32_MAX, &mct, &g2, e)) return false;
    r->max_tokens = g2 ? mct : (g1 ? mt : 0);
    return true;
}

static bool parse_logprobs(const cJSON *root, srv_request *r, srv_error *e) {
    if (r->wire == SRV_WIRE_OAI_CHAT) {
        if (!srv_json_opt_bool(root, "logprobs", &r->logprobs, e)) return false;
        bool given = false;
        if (!srv_json_opt_int(root, "top_logprobs", 0, SW_MAX_TOP_LOGPROBS, &r->top_logprobs, &given, e))
            return false;
        if (given && !r->logprobs) {
            srv_error_set(e, 400, BAD_REQ, "invalid_value", "top_logprobs",
                          "'top_logprobs' requires 'logprobs' to be true");
            return false;
        }
        return true;
    }
    /* Completions: logprobs is the number of alternatives (0 = only the
     * sampled tokens' own logprobs). */
    const cJSON *v = srv_json_field(root, "logprobs");
    if (!v) return true;
    if (cJSON_IsBool(v))
        return srv_json_type_error(e, "logprobs", "an integer (the number of alternatives)", v);
    double d = 0;
    if (!srv_json_int(v, "logprobs", 0, SW_MAX_TOP_LOGPROBS, &d, e)) return false;
    r->logprobs = true;
    r->top_logprobs = (int32_t)d;
    return true;
}

bool oai_parse_request(const char *body, size_t len, srv_wire wire, int32_t n_vocab,
                       srv_request *r, srv_error *e) {
    bool chat = wire == SRV_WIRE_OAI_CHAT;
    if (!srv_json_begin_request(r, chat ? SRV_WIRE_OAI_CHAT : SRV_WIRE_OAI_COMPLETIONS, body, len,
                                e))
        return false;
    const cJSON *root = r->raw, *v;
    bool ok = false;
    if (chat ? !parse_messages(root, r, e) : !parse_prompt(root, n_vocab, r, e)) goto done;
    if (chat && !oai_parse_tools(root, r, e)) goto done;
    if (!chat && (v = srv_json_field(root, "tools"))) {
        srv_error_set(e, 400, BAD_REQ, "unsupported_parameter", "tools",
                      "'tools' belong to /v1/chat/completions, not to /v1/completions");
        goto done;
    }
    if (!srv_json_opt_bool(root, "stream", &r->stream, e)) goto done;
    if ((v = srv_json_field(root, "stream_options"))) {
        if (!cJSON_IsObject(v)) {
            srv_json_type_error(e, "stream_options", "an object", v);
            goto done;
        }
        if (!r->stream) {
            srv_error_set(e, 400, BAD_REQ, "invalid_value", "stream_options",
                          "'stream_options' is only allowed when 'stream' is true");
            goto done;
        }
        const cJSON *iu = srv_json_field(v, "include_usage");
        if (iu && !cJSON_IsBool(iu)) {
            srv_json_type_error(e, "stream_options.include_usage", "a boolean", iu);
            goto done;
        }
        r->include_usage = iu && cJSON_IsTrue(iu);
    }
    if (!chat && !srv_json_opt_bool(root, "echo", &r->echo, e)) goto done;
    if (!parse_limits(root, r, e) || !parse_sampling(root, r, e) || !parse_logprobs(root, r, e) ||
        !parse_stop(root, r, e) || !parse_logit_bias(root, n_vocab, r, e) ||
        !parse_response_format(root, r, e) || !parse_llama_constraints(root, r, e) ||
        !refuse_unsupported(root, e) ||
        !srv_json_opt_bool(root, "ignore_eos", &r->ignore_eos, e))
        goto done;
    if (r->echo && r->logprobs) {
        srv_error_set(e, 400, BAD_REQ, "unsupported_value", "echo",
                      "'echo' together with 'logprobs' is not supported (prompt logprobs are "
                      "not computed)");
        goto done;
    }
    /* OpenAI's completions endpoint defaults to 16 tokens; chat runs until
     * the model stops or the context is full. */
    if (!chat && r->max_tokens == 0) r->max_tokens = 16;
    if (!r->seed_given) r->sp.seed = srv_random_u64();
    r->hints.spillway = cJSON_GetObjectItemCaseSensitive(root, "spillway");
    ok = true;
done:
    if (!ok) srv_request_free(r);
    return ok;
}
