/* spillway-template — render a chat template the way Hugging Face's
 * apply_chat_template does, with the engine's Jinja interpreter.
 *
 *   spillway-template (--template FILE | --model GGUF [--name NAME] | --chat-template NAME)
 *                     --messages JSON [--tools JSON] [--kwargs JSON]
 *                     [--add-generation-prompt] [--bos-token X] [--eos-token Y] [--openai]
 *   spillway-template TEMPLATE-SOURCE --vars JSON      one render with exactly these variables
 *   spillway-template TEMPLATE-SOURCE --cases FILE     one render per line of FILE (JSON objects
 *                                                      of variables), one JSON result per line
 *
 * JSON arguments are JSON text, or @FILE (or just the path of an existing
 * file) to read it from a file ("@-" reads stdin). The rendered prompt goes to stdout exactly (no newline added).
 * Exit 0 ok, 1 when the template raises or cannot render, 2 on bad usage. */
#include <spillway.h>

#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: spillway-template (--template FILE | --model GGUF [--name NAME] |\n"
            "                          --chat-template NAME) --messages JSON [options]\n"
            "  --template FILE          Jinja template file\n"
            "  --model GGUF             the model's tokenizer.chat_template (and its BOS/EOS)\n"
            "  --name NAME              with --model: tokenizer.chat_template.NAME (e.g. tool_use)\n"
            "  --chat-template NAME     a built-in template (%s)\n"
            "  --messages JSON          the messages list\n"
            "  --tools JSON             the tools list (default: None)\n"
            "  --kwargs JSON            extra template variables, a JSON object\n"
            "  --add-generation-prompt  open the assistant's turn\n"
            "  --bos-token X, --eos-token Y   token texts (default: the model's, else undefined)\n"
            "  --openai                 adapt OpenAI messages as the server does (tool-call\n"
            "                           arguments strings -> objects, null content -> \"\")\n"
            "  --max-steps N, --max-output BYTES, --max-memory BYTES   render bounds\n"
            "  --print-source           print the template text instead of rendering\n"
            "  --vars JSON              render with exactly these variables (a JSON object)\n"
            "  --cases FILE             one render per line (a JSON object of variables each);\n"
            "                           prints {\"ok\": true, \"out\": ...} or {\"ok\": false,\n"
            "                           \"error\": ...} per line\n"
            "JSON arguments are JSON text, @FILE or a file's path (@- reads stdin).\n",
            sw_chat_names());
}

static char *slurp(FILE *f, size_t *len) {
    size_t cap = 65536, n = 0;
    char *b = malloc(cap + 1);
    while (b) {
        if (n == cap) {
            char *nb = realloc(b, cap * 2 + 1);
            if (!nb) {
                free(b);
                return NULL;
            }
            b = nb;
            cap *= 2;
        }
        size_t k = fread(b + n, 1, cap - n, f);
        n += k;
        if (k == 0) break;
    }
    if (!b || ferror(f)) {
        free(b);
        return NULL;
    }
    b[n] = '\0';
    *len = n;
    return b;
}

/* JSON text, @FILE / @- (stdin), or the path of a file when the text cannot be
 * JSON of the kind these flags take (an array or an object) and the file exists */
static char *json_arg(const char *flag, const char *v, size_t *len) {
    const char *p = v;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    const char *path = v[0] == '@' ? v + 1 : (*p != '[' && *p != '{' && access(v, R_OK) == 0) ? v : NULL;
    if (!path) {
        *len = strlen(v);
        return strdup(v);
    }
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) {
        fprintf(stderr, "spillway-template: %s %s: cannot open\n", flag, path);
        return NULL;
    }
    char *b = slurp(f, len);
    if (f != stdin) fclose(f);
    if (!b) fprintf(stderr, "spillway-template: %s %s: read error\n", flag, path);
    return b;
}

/* --vars: one render with exactly the given variables */
static int render_vars(const sw_chat_template *t, const char *arg, const sw_jinja_limits *lim) {
    size_t n;
    char *vj = json_arg("--vars", arg, &n);
    if (!vj) return 2;
    char *out = NULL;
    size_t len = 0;
    sw_err err = {{0}};
    sw_status st = sw_chat_render_vars(t, vj, n, lim, &out, &len, &err);
    free(vj);
    if (st != SW_OK) {
        fprintf(stderr, "spillway-template: %s\n", err.msg);
        return 1;
    }
    int rc = fwrite(out, 1, len, stdout) == len ? 0 : 1;
    free(out);
    return rc;
}

/* --cases: one render per input line, one JSON result per output line */
static int render_cases(const sw_chat_template *t, const char *path, const sw_jinja_limits *lim) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) {
        fprintf(stderr, "spillway-template: --cases %s: cannot open\n", path);
        return 2;
    }
    size_t total;
    char *all = slurp(f, &total);
    if (f != stdin) fclose(f);
    if (!all) {
        fprintf(stderr, "spillway-template: --cases %s: read error\n", path);
        return 2;
    }
    int rc = 0;
    for (char *line = all; line < all + total;) {
        char *nl = memchr(line, '\n', (size_t)(all + total - line));
        size_t n = nl ? (size_t)(nl - line) : (size_t)(all + total - line);
        if (n > 0) {
            char *out = NULL;
            size_t len = 0;
            sw_err err = {{0}};
            sw_status st = sw_chat_render_vars(t, line, n, lim, &out, &len, &err);
            cJSON *r = cJSON_CreateObject();
            cJSON_AddBoolToObject(r, "ok", st == SW_OK);
            if (st == SW_OK) cJSON_AddItemToObject(r, "out", cJSON_CreateString(out));
            else cJSON_AddItemToObject(r, "error", cJSON_CreateString(err.msg));
            if (st == SW_OK && strlen(out) != len) cJSON_AddBoolToObject(r, "nul", true);
            char *txt = cJSON_PrintUnformatted(r);
            if (!txt || printf("%s\n", txt) < 0) rc = 1;
            free(txt);
            cJSON_Delete(r);
            free(out);
        }
        line += n + 1;
    }
    free(all);
    return rc;
}

static bool parse_size(const char *s, uint64_t *out) {
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || s[0] == '-') return false;
    *out = v;
    return true;
}

int main(int argc, char **argv) {
    enum {
        O_TEMPLATE = 256, O_MODEL, O_NAME, O_BUILTIN, O_MESSAGES, O_TOOLS, O_KWARGS, O_AGP,
        O_BOS, O_EOS, O_OPENAI, O_STEPS, O_OUTPUT, O_MEMORY, O_SOURCE, O_VARS, O_CASES, O_HELP
    };
    static const struct option longopts[] = {
        {"template", required_argument, 0, O_TEMPLATE},
        {"model", required_argument, 0, O_MODEL},
        {"name", required_argument, 0, O_NAME},
        {"chat-template", required_argument, 0, O_BUILTIN},
        {"messages", required_argument, 0, O_MESSAGES},
        {"tools", required_argument, 0, O_TOOLS},
        {"kwargs", required_argument, 0, O_KWARGS},
        {"add-generation-prompt", no_argument, 0, O_AGP},
        {"bos-token", required_argument, 0, O_BOS},
        {"eos-token", required_argument, 0, O_EOS},
        {"openai", no_argument, 0, O_OPENAI},
        {"max-steps", required_argument, 0, O_STEPS},
        {"max-output", required_argument, 0, O_OUTPUT},
        {"max-memory", required_argument, 0, O_MEMORY},
        {"print-source", no_argument, 0, O_SOURCE},
        {"vars", required_argument, 0, O_VARS},
        {"cases", required_argument, 0, O_CASES},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    const char *tmpl_file = NULL, *model = NULL, *name = NULL, *builtin = NULL;
    const char *messages = NULL, *tools = NULL, *kwargs = NULL, *bos = NULL, *eos = NULL;
    const char *vars = NULL, *cases = NULL;
    bool agp = false, openai = false, print_source = false;
    sw_jinja_limits lim = {0};
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        uint64_t v;
        switch (opt) {
        case O_TEMPLATE: tmpl_file = optarg; break;
        case O_MODEL: model = optarg; break;
        case O_NAME: name = optarg; break;
        case O_BUILTIN: builtin = optarg; break;
        case O_MESSAGES: messages = optarg; break;
        case O_TOOLS: tools = optarg; break;
        case O_KWARGS: kwargs = optarg; break;
        case O_AGP: agp = true; break;
        case O_BOS: bos = optarg; break;
        case O_EOS: eos = optarg; break;
        case O_OPENAI: openai = true; break;
        case O_SOURCE: print_source = true; break;
        case O_VARS: vars = optarg; break;
        case O_CASES: cases = optarg; break;
        case O_STEPS:
        case O_OUTPUT:
        case O_MEMORY:
            if (!parse_size(optarg, &v) || v == 0) {
                fprintf(stderr, "spillway-template: %s wants a positive number, got '%s'\n",
                        argv[optind - 1], optarg);
                return 2;
            }
            if (opt == O_STEPS) lim.max_steps = v;
            else if (opt == O_OUTPUT) lim.max_output = (size_t)v;
            else lim.max_memory = (size_t)v;
            break;
        case O_HELP: usage(stdout); return 0;
        default:
            fprintf(stderr, "spillway-template: unknown or incomplete option '%s'\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "spillway-template: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if ((tmpl_file != NULL) + (model != NULL) + (builtin != NULL) != 1) {
        fprintf(stderr, "spillway-template: give exactly one of --template, --model, --chat-template\n");
        usage(stderr);
        return 2;
    }
    if (name && !model) {
        fprintf(stderr, "spillway-template: --name needs --model\n");
        return 2;
    }
    if (!messages && !print_source && !vars && !cases) {
        fprintf(stderr, "spillway-template: --messages (or --vars / --cases) is required\n");
        return 2;
    }

    sw_err err = {{0}};
    sw_chat_template *t = NULL;
    sw_gguf *g = NULL;
    sw_tokenizer *tok = NULL;
    sw_status st;
    int rc = 1;
    char *mj = NULL, *tj = NULL, *kj = NULL, *out = NULL;
    if (tmpl_file) {
        st = sw_chat_template_file(tmpl_file, &t, &err);
    } else if (builtin) {
        st = sw_chat_template_builtin(builtin, &t, &err);
        if (st == SW_E_NOT_FOUND) rc = 2;
    } else {
        st = sw_gguf_open(model, &g, &err);
        if (st == SW_OK) st = sw_chat_template_gguf(g, name, &t, &err);
        /* the model's BOS/EOS texts, unless given */
        if (st == SW_OK && (!bos || !eos) && sw_tokenizer_create(g, &tok, &err) == SW_OK) {
            int32_t b = sw_tokenizer_bos(tok), e = sw_tokenizer_eos(tok);
            if (!bos && b >= 0) bos = sw_tokenizer_token_text(tok, b);
            if (!eos && e >= 0) eos = sw_tokenizer_token_text(tok, e);
        }
    }
    if (st != SW_OK) {
        fprintf(stderr, "spillway-template: %s\n", err.msg);
        goto done;
    }
    if (print_source) {
        fputs(sw_chat_template_source(t), stdout);
        rc = 0;
        goto done;
    }
    if (vars || cases) {
        rc = vars ? render_vars(t, vars, &lim) : render_cases(t, cases, &lim);
        goto done;
    }
    sw_chat_input in = {.add_generation_prompt = agp, .openai = openai, .bos_token = bos,
                        .eos_token = eos, .limits = &lim};
    rc = 2;
    if (!(mj = json_arg("--messages", messages, &in.messages_json_len))) goto done;
    in.messages_json = mj;
    if (tools) {
        if (!(tj = json_arg("--tools", tools, &in.tools_json_len))) goto done;
        in.tools_json = tj;
    }
    if (kwargs) {
        if (!(kj = json_arg("--kwargs", kwargs, &in.kwargs_json_len))) goto done;
        in.kwargs_json = kj;
    }
    size_t len = 0;
    st = sw_chat_render_template(t, &in, &out, &len, &err);
    if (st != SW_OK) {
        fprintf(stderr, "spillway-template: %s\n", err.msg);
        rc = st == SW_E_FORMAT && !strstr(err.msg, "template") ? 2 : 1;
        goto done;
    }
    rc = fwrite(out, 1, len, stdout) == len && fflush(stdout) == 0 ? 0 : 1;
done:
    free(out);
    free(mj);
    free(tj);
    free(kj);
    sw_chat_template_free(t);
    sw_tokenizer_free(tok);
    sw_gguf_free(g);
    return rc;
}
