/* toolcall.c — tool calling on the local model, shared by every wire format
 * (OpenAI tools, Anthropic tools: both arrive as srv_request.tools and
 * tool_choice, and leave through the writer's stream_tool_call and
 * srv_result.calls).
 *
 * The model writes calls in its family's syntax, read from its chat template's
 * text: Llama 3.x a bare JSON object {"name", "parameters"}; Mistral
 * [TOOL_CALLS][{"name", "arguments"}, ...] (v3 tokenizers) or
 * [TOOL_CALLS]name[ARGS]{...} per call (templates that write [ARGS]), the
 * marker a control token in their vocabularies, which the engine renders as
 * text for these requests (srv_tools_special_ids); every other family (and
 * models without tool support, e.g. SmolLM2) the Hermes/Qwen form
 *     <tool_call>
 *     {"name": "...", "arguments": {...}}
 *     </tool_call>
 * which the system prompt describes for templates that do not render tools. Arguments are always generated under the
 * grammar of the tool's parameters schema (runtime/json_schema.h,
 * sw_grammar_tool_calls): "required" and named choices allow only calls,
 * "auto" allows text that never contains the call marker, then calls.
 *
 * The answer is read back by an incremental parser: text until the marker
 * streams as content (a possible start of the marker is held back), then each
 * call's name as soon as it is complete and its arguments' JSON text piece by
 * piece, as OpenAI streams tool_calls deltas. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_grammar.h"
#include "server.h"

typedef enum { TC_HERMES = 0, TC_LLAMA3, TC_MISTRAL, TC_MISTRAL_ARGS } tc_format;

/* Mistral's for templates that write [TOOL_CALLS]; Llama 3's for its
 * header-style templates (unless they use Hermes tags); else Hermes */
static tc_format format_of(const srv *s) {
    const char *src = sw_chat_template_source(s->chat_tools ? s->chat_tools : s->chat);
    if (strstr(src, "[TOOL_CALLS]")) return strstr(src, "[ARGS]") ? TC_MISTRAL_ARGS : TC_MISTRAL;
    return strstr(src, "<|start_header_id|>") && !strstr(src, "<tool_call>") ? TC_LLAMA3 : TC_HERMES;
}

#define MISTRAL_MARK "[TOOL_CALLS]"
static const sw_tool_call_syntax k_syntax[] = {
    [TC_HERMES] = {"<tool_call>\n", "\n</tool_call>", "\n", NULL, NULL, "name", "arguments", false, 0, NULL},
    [TC_LLAMA3] = {NULL, NULL, NULL, NULL, NULL, "name", "parameters", false, 1, NULL},
    [TC_MISTRAL] = {NULL, NULL, ", ", MISTRAL_MARK "[", "]", "name", "arguments", false, 0, NULL},
    [TC_MISTRAL_ARGS] = {MISTRAL_MARK, NULL, NULL, NULL, NULL, "name", "arguments", false, 0, "[ARGS]"},
};

/* The control tokens of a Mistral vocabulary that its calls are written with. */
static const char *const k_mistral_specials[] = {MISTRAL_MARK, "[ARGS]"};

size_t srv_tools_special_ids(const srv *s, int32_t *ids, size_t cap) {
    tc_format f = format_of(s);
    size_t n = 0;
    if (!s->tok || (f != TC_MISTRAL && f != TC_MISTRAL_ARGS)) return 0;
    for (size_t i = 0; i < sizeof k_mistral_specials / sizeof *k_mistral_specials && n < cap; i++) {
        const char *t = k_mistral_specials[i];
        int32_t id = sw_tokenizer_find(s->tok, t, strlen(t));
        size_t len;
        /* a control token: it renders as nothing unless asked */
        if (id >= 0 && sw_token_piece(s->tok, id, &len) && len == 0) ids[n++] = id;
    }
    return n;
}

bool srv_tools_active(const srv_request *r) {
    return r->n_tools > 0 && r->tool_choice != SRV_TOOL_NONE;
}

/* ---- the prompt ------------------------------------------------------------------ */

static void tool_signature(sbuf *b, const srv_tool *t) {
    cJSON *o = cJSON_CreateObject(), *fn = NULL;
    if (o && cJSON_AddStringToObject(o, "type", "function") && (fn = cJSON_AddObjectToObject(o, "function"))) {
        cJSON_AddStringToObject(fn, "name", t->name);
        if (t->description) cJSON_AddStringToObject(fn, "description", t->description);
        if (t->parameters) cJSON_AddItemToObject(fn, "parameters", cJSON_Duplicate(t->parameters, true));
    }
    char *j = fn ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!j) b->oom = true;
    else sbuf_puts(b, j);
    free(j);
}

char *srv_tools_system_text(const srv *s, const srv_request *r) {
    if (!srv_tools_active(r)) return NULL;
    tc_format f = format_of(s);
    sbuf b = {0};
    sbuf_puts(&b, f == TC_LLAMA3 ? "You have access to the following functions:\n\n"
                                 : "You can call functions to answer. Their signatures, one per "
                                   "line:\n<tools>\n");
    for (size_t i = 0; i < r->n_tools; i++) {
        if (r->tool_choice == SRV_TOOL_NAMED && strcmp(r->tools[i].name, r->tool_name)) continue;
        tool_signature(&b, &r->tools[i]);
        sbuf_puts(&b, "\n");
    }
    if (f == TC_LLAMA3)
        sbuf_puts(&b, "\nTo call a function, answer with only a JSON object of the form "
                      "{\"name\": function name, \"parameters\": {argument name: value}}.");
    else if (f == TC_MISTRAL)
        sbuf_puts(&b, "</tools>\n\nTo call functions, write " MISTRAL_MARK " and a JSON list of the calls:\n"
                      MISTRAL_MARK "[{\"name\": \"function name\", \"arguments\": {\"argument\": \"value\"}}]");
    else if (f == TC_MISTRAL_ARGS)
        sbuf_puts(&b, "</tools>\n\nTo call a function, write " MISTRAL_MARK ", its name, [ARGS] and its "
                      "arguments as a JSON object:\n" MISTRAL_MARK "function_name[ARGS]{\"argument\": \"value\"}");
    else
        sbuf_puts(&b, "</tools>\n\nTo call a function, write a JSON object with its name and "
                      "arguments between <tool_call> and </tool_call>, one block per call:\n"
                      "<tool_call>\n{\"name\": \"function name\", \"arguments\": {\"argument\": "
                      "\"value\"}}\n</tool_call>");
    if (r->tool_choice == SRV_TOOL_ANY) sbuf_puts(&b, "\nCall at least one function now.");
    if (r->tool_choice == SRV_TOOL_NAMED) sbuf_printf(&b, "\nCall the function %s now.", r->tool_name);
    return sbuf_take(&b);
}

void srv_tools_render_block(const srv *s, const srv_block *k, sbuf *b) {
    tc_format f = format_of(s);
    const sw_tool_call_syntax *syn = &k_syntax[f];
    if (k->type == SRV_BLOCK_TOOL_USE) {
        cJSON *in = cJSON_Parse(k->input ? k->input : "{}"), *o = syn->args_marker ? in : cJSON_CreateObject();
        if (!syn->args_marker) {
            cJSON_AddStringToObject(o, "name", k->name ? k->name : "");
            cJSON_AddItemToObject(o, syn->args_key, in ? in : cJSON_CreateObject());
        }
        char *j = o ? cJSON_PrintUnformatted(o) : strdup("{}");
        cJSON_Delete(o);
        if (!j) {
            b->oom = true;
            return;
        }
        sbuf_puts(b, syn->list_open ? syn->list_open : "");
        sbuf_puts(b, syn->open ? syn->open : "");
        if (syn->args_marker) {
            sbuf_puts(b, k->name ? k->name : "");
            sbuf_puts(b, syn->args_marker);
        }
        sbuf_puts(b, j);
        sbuf_puts(b, syn->close ? syn->close : "");
        sbuf_puts(b, syn->list_close ? syn->list_close : "");
        free(j);
    } else if (k->type == SRV_BLOCK_TOOL_RESULT) {
        if (f == TC_HERMES) sbuf_puts(b, "<tool_response>\n");
        if (k->is_error) sbuf_puts(b, "Error: ");
        sbuf_puts(b, k->text ? k->text : "");
        if (f == TC_HERMES) sbuf_puts(b, "\n</tool_response>");
    }
}

/* ---- the grammar ------------------------------------------------------------------ */

bool srv_tools_grammar(srv *s, const srv_request *r, sw_grammar **out, srv_error *e) {
    *out = NULL;
    tc_format f = format_of(s);
    sw_tool_call_syntax syn = k_syntax[f];
    syn.text_before = r->tool_choice == SRV_TOOL_AUTO;
    /* a named choice is one call of that function; otherwise as many as
     * parallel_tool_calls allows */
    if (f != TC_LLAMA3) syn.max_calls = r->parallel_tool_calls && r->tool_choice != SRV_TOOL_NAMED ? 0 : 1;
    sw_tool_def *defs = calloc(r->n_tools, sizeof *defs);
    if (!defs) {
        srv_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
        return false;
    }
    int32_t n = 0;
    for (size_t i = 0; i < r->n_tools; i++) {
        if (r->tool_choice == SRV_TOOL_NAMED && strcmp(r->tools[i].name, r->tool_name)) continue;
        defs[n].name = r->tools[i].name;
        defs[n++].parameters = r->tools[i].parameters;
    }
    bool ok = srv_compile_tool_grammar(s, &syn, defs, n, out, e);
    free(defs);
    return ok;
}

/* ---- reading the answer -------------------------------------------------------------- */

/* P_LIST: after Mistral's list marker, its '['; P_NAME: a bare name up to the
 * args marker; P_PREARGS: whitespace before the arguments; P_LSEP: after a
 * call of a list, ',' or ']'. P_BROKEN: the answer left the syntax (it cannot
 * under our grammar; the reader stays safe anyway): the rest is ignored. */
enum { P_START = 0, P_TEXT, P_HEAD, P_LIST, P_NAME, P_PREARGS, P_ARGS, P_TAIL, P_LSEP, P_BETWEEN, P_BROKEN };

typedef struct pcall {
    char id[40];
    char *name;
    sbuf args;
    size_t sent;   /* bytes of args already given to the sink */
    bool complete; /* the arguments object closed */
} pcall;

struct srv_tool_parser {
    tc_format fmt;
    const char *id_prefix; /* of the calls' ids */
    const char *open, *close; /* "" when none; open: the text that starts the calls */
    int state;
    bool calls_only;  /* no content: held-back text at the end is a cut call */
    bool named;       /* P_HEAD: this head's call was announced */
    sbuf pend;        /* P_START / P_TEXT: text held back (maybe the marker's start); else the
                         current call's head or tail, or the text between calls */
    sbuf tx;          /* text decided during this feed, not yet given to the sink */
    sw_json_state js; /* P_ARGS: the arguments object so far */
    pcall *calls;
    size_t n_calls, cap_calls;
    srv_tool_call *out; /* views for srv_result, built by srv_tool_parser_calls */
    bool oom;
};

srv_tool_parser *srv_tool_parser_create(const srv *s, bool calls_only, const char *id_prefix) {
    srv_tool_parser *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->calls_only = calls_only;
    p->fmt = format_of(s);
    p->id_prefix = id_prefix;
    p->open = p->fmt == TC_MISTRAL ? MISTRAL_MARK : k_syntax[p->fmt].open ? k_syntax[p->fmt].open : "";
    p->close = k_syntax[p->fmt].close ? k_syntax[p->fmt].close : "";
    p->state = *p->open ? P_TEXT : P_START;
    return p;
}

void srv_tool_parser_free(srv_tool_parser *p) {
    if (!p) return;
    for (size_t i = 0; i < p->n_calls; i++) {
        free(p->calls[i].name);
        sbuf_free(&p->calls[i].args);
    }
    free(p->calls);
    free(p->out);
    sbuf_free(&p->pend);
    sbuf_free(&p->tx);
    free(p);
}

static bool ends_with(const sbuf *b, const char *s) {
    size_t n = strlen(s);
    return n && b->n >= n && !memcmp(b->p + b->n - n, s, n);
}

/* The longest suffix of b that is a proper prefix of s (text that may still
 * turn into the marker). */
static size_t marker_overlap(const sbuf *b, const char *s) {
    size_t n = strlen(s);
    for (size_t k = n ? n - 1 : 0; k > 0; k--)
        if (b->n >= k && !memcmp(b->p + b->n - k, s, k)) return k;
    return 0;
}

static void drop(sbuf *b, size_t k) { /* remove the first k bytes */
    memmove(b->p, b->p + k, b->n - k);
    b->n -= k;
    if (b->p) b->p[b->n] = '\0';
}

static bool name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* Give the sink what this feed decided, in order: text, then the current
 * call's new argument bytes. */
static void flush(srv_tool_parser *p, const srv_tool_sink *sink) {
    if (p->tx.n) sink->text(sink->user, p->tx.p, p->tx.n);
    p->tx.n = 0;
    pcall *c = p->n_calls ? &p->calls[p->n_calls - 1] : NULL;
    if (c && c->args.n > c->sent) {
        sink->call(sink->user, p->n_calls - 1, NULL, NULL, c->args.p + c->sent, c->args.n - c->sent);
        c->sent = c->args.n;
    }
}

/* The call head so far ({ "name" : "NAME" , "args" :): *name_end set once
 * the name's closing quote has come. 1: the head is complete (all but the
 * whitespace before the arguments); 0: it may still be; -1: it cannot be. */
static int head_parse(const srv_tool_parser *p, const sbuf *h, size_t *name_start, size_t *name_end) {
    const char *args_key = k_syntax[p->fmt].args_key;
    size_t i = 0, n = h->n;
    const char *s = h->p;
#define WS() while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++
#define LIT(x)                                                                                     \
    do {                                                                                           \
        size_t l_ = strlen(x), m_ = n - i < l_ ? n - i : l_;                                       \
        if (memcmp(s + i, x, m_)) return -1;                                                       \
        if (m_ < l_) return 0;                                                                     \
        i += l_;                                                                                   \
    } while (0)
    *name_end = 0;
    WS();
    LIT("{");
    WS();
    LIT("\"name\"");
    WS();
    LIT(":");
    WS();
    LIT("\"");
    *name_start = i;
    while (i < n && s[i] != '"')
        if (!name_char(s[i++])) return -1; /* names are [A-Za-z0-9_-]: no escapes */
    if (i >= n) return 0;
    *name_end = i++;
    WS();
    LIT(",");
    WS();
    LIT("\"");
    LIT(args_key);
    LIT("\"");
    WS();
    LIT(":");
    return 1;
#undef WS
#undef LIT
}

static pcall *new_call(srv_tool_parser *p) {
    if (p->n_calls == p->cap_calls) {
        size_t c = p->cap_calls ? 2 * p->cap_calls : 4;
        pcall *nc = realloc(p->calls, c * sizeof *nc);
        if (!nc) return NULL;
        p->calls = nc;
        p->cap_calls = c;
    }
    pcall *c = &p->calls[p->n_calls++];
    memset(c, 0, sizeof *c);
    /* Mistral's templates accept only ids of 9 letters and digits */
    if (p->fmt == TC_MISTRAL || p->fmt == TC_MISTRAL_ARGS) srv_make_id(c->id, 10, "");
    else srv_make_id(c->id, sizeof c->id, p->id_prefix);
    return c;
}

static bool is_ws(char ch) {
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

static void enter_head(srv_tool_parser *p) {
    p->state = P_HEAD;
    p->named = false;
}

/* The opening marker has come: what follows it in this syntax. */
static void enter_calls(srv_tool_parser *p) {
    if (p->fmt == TC_MISTRAL) p->state = P_LIST;
    else if (k_syntax[p->fmt].args_marker) p->state = P_NAME;
    else enter_head(p);
}

/* The first byte of a call's arguments (an object). */
static void start_args(srv_tool_parser *p, pcall *c, char ch) {
    p->state = P_ARGS;
    p->pend.n = 0;
    sw_json_init(&p->js);
    if (ch != '{' || !sw_json_feed(&p->js, &ch, 1)) { /* arguments are an object */
        p->state = P_BROKEN;
        return;
    }
    sbuf_add(&c->args, &ch, 1);
}

/* P_NAME: a bare name, then the args marker. 1: both complete; 0: maybe
 * still; -1: cannot be. */
static int name_parse(const sbuf *h, const char *marker) {
    size_t i = 0, m = strlen(marker);
    while (i < h->n && name_char(h->p[i])) i++;
    size_t k = h->n - i < m ? h->n - i : m;
    if (memcmp(h->p + i, marker, k) || (i == 0 && k)) return -1;
    if (k < m) return h->n - i > m ? -1 : 0;
    return h->n == i + m ? 1 : -1;
}

static void feed_byte(srv_tool_parser *p, const srv_tool_sink *sink, char ch) {
    pcall *c = p->n_calls ? &p->calls[p->n_calls - 1] : NULL;
    sbuf_add(&p->pend, &ch, 1);
    switch (p->state) {
    case P_START:
        /* without a marker a call is the whole answer: decide at the first
         * byte that is not whitespace */
        if (is_ws(ch)) return;
        if (ch == '{') {
            enter_head(p);
        } else {
            sbuf_add(&p->tx, p->pend.p, p->pend.n);
            p->pend.n = 0;
            p->state = P_TEXT;
        }
        return;
    case P_TEXT:
        if (*p->open && ends_with(&p->pend, p->open)) {
            sbuf_add(&p->tx, p->pend.p, p->pend.n - strlen(p->open));
            p->pend.n = 0;
            enter_calls(p);
        } else if (p->pend.n) {
            /* release what can no longer become the marker */
            size_t keep = *p->open ? marker_overlap(&p->pend, p->open) : 0;
            sbuf_add(&p->tx, p->pend.p, p->pend.n - keep);
            drop(&p->pend, p->pend.n - keep);
        }
        return;
    case P_HEAD: {
        size_t ns, ne;
        int hp = head_parse(p, &p->pend, &ns, &ne);
        bool complete = hp == 1;
        if (hp < 0) { /* not the call syntax: the answer left it */
            p->state = P_BROKEN;
            return;
        }
        if (ne && !p->named) { /* the name just closed: the call starts */
            flush(p, sink);
            if (!(c = new_call(p)) || !(c->name = strndup(p->pend.p + ns, ne - ns))) {
                p->oom = true;
                return;
            }
            p->named = true;
            sink->call(sink->user, p->n_calls - 1, c->id, c->name, "", 0);
        }
        if (complete && c && !is_ws(ch) && ch != ':') start_args(p, c, ch); /* their first byte */
        return;
    }
    case P_LIST: /* whitespace, then the list's '[' */
        if (ch == '[') {
            p->pend.n = 0;
            enter_head(p);
        } else if (!is_ws(ch)) { /* no list: the marker was text ("auto" allows that) */
            sbuf_puts(&p->tx, MISTRAL_MARK);
            sbuf_add(&p->tx, p->pend.p, p->pend.n);
            p->pend.n = 0;
            p->state = P_TEXT;
        }
        return;
    case P_NAME: {
        const char *marker = k_syntax[p->fmt].args_marker;
        int np = name_parse(&p->pend, marker);
        if (np < 0) {
            p->state = P_BROKEN;
        } else if (np > 0) { /* the call starts */
            flush(p, sink);
            if (!(c = new_call(p)) || !(c->name = strndup(p->pend.p, p->pend.n - strlen(marker)))) {
                p->oom = true;
                return;
            }
            sink->call(sink->user, p->n_calls - 1, c->id, c->name, "", 0);
            p->pend.n = 0;
            p->state = P_PREARGS;
        }
        return;
    }
    case P_PREARGS:
        if (!is_ws(ch) && c) start_args(p, c, ch);
        return;
    case P_ARGS:
        p->pend.n = 0;
        if (!c) return;
        if (!sw_json_feed(&p->js, &ch, 1)) {
            p->state = P_BROKEN;
            return;
        }
        sbuf_add(&c->args, &ch, 1);
        if (sw_json_done(&p->js)) {
            /* a bare call ends with its arguments */
            p->state = k_syntax[p->fmt].args_marker && !*p->close ? P_BETWEEN : P_TAIL;
            c->complete = true;
        }
        return;
    case P_TAIL: /* whitespace, '}', the closing marker */
        if ((ch == '}' && !*p->close) || (*p->close && ends_with(&p->pend, p->close))) {
            p->pend.n = 0;
            p->state = p->fmt == TC_MISTRAL ? P_LSEP : P_BETWEEN;
        }
        return;
    case P_LSEP: /* a list's ',' before its next call, or its ']' */
        p->pend.n = 0;
        if (ch == ',') enter_head(p);
        else if (ch == ']') p->state = P_BETWEEN;
        else if (!is_ws(ch)) p->state = P_BROKEN;
        return;
    case P_BROKEN: p->pend.n = 0; return;
    default: /* P_BETWEEN: the separator, then the next call's marker */
        if (*p->open && ends_with(&p->pend, p->open)) {
            p->pend.n = 0;
            enter_calls(p);
        }
        return;
    }
}

void srv_tool_parser_feed(srv_tool_parser *p, const char *text, size_t n, const srv_tool_sink *sink) {
    for (size_t i = 0; i < n; i++) {
        if (p->state == P_TEXT && p->pend.n == 0) {
            /* plain text up to a possible marker start is decided at once */
            size_t j = i;
            while (j < n && text[j] != p->open[0]) j++;
            if (j > i) {
                sbuf_add(&p->tx, text + i, j - i);
                i = j - 1;
                continue;
            }
        }
        feed_byte(p, sink, text[i]);
    }
    flush(p, sink);
    if (p->pend.oom || p->tx.oom) p->oom = true;
}

void srv_tool_parser_finish(srv_tool_parser *p, const srv_tool_sink *sink) {
    if ((p->state == P_TEXT || p->state == P_START) && !p->calls_only) sbuf_add(&p->tx, p->pend.p, p->pend.n);
    p->pend.n = 0;
    flush(p, sink);
}

size_t srv_tool_parser_calls(srv_tool_parser *p, const srv_tool_call **calls) {
    free(p->out);
    p->out = p->n_calls ? calloc(p->n_calls, sizeof *p->out) : NULL;
    /* a call cut off by max_tokens is not a call (its arguments would not
     * parse); only complete ones are reported */
    size_t n = 0;
    for (size_t i = 0; p->out && i < p->n_calls; i++) {
        pcall *c = &p->calls[i];
        if (c->args.oom) p->oom = true;
        if (!c->complete) continue;
        p->out[n].id = c->id;
        p->out[n].name = c->name;
        p->out[n].arguments = c->args.p ? c->args.p : "";
        n++;
    }
    if (p->n_calls && !p->out) p->oom = true;
    *calls = p->out;
    return n;
}

bool srv_tool_parser_failed(const srv_tool_parser *p) {
    return p->oom;
}
