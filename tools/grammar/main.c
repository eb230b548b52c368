/* spillway-grammar — compile a JSON Schema or a GBNF grammar the way the
 * server does, and try it: print statistics, random sentences (for checking
 * them against an independent validator), or whether given texts are
 * complete sentences, viable prefixes, or refused.
 *
 *   spillway-grammar --schema FILE [--sample N] [--seed S] [--max-bytes N]
 *   spillway-grammar --gbnf FILE --check < lines
 *
 * Sentences and checked texts are JSON string literals, one per line, so any
 * byte can be written. A grammar that does not compile: its error on stderr,
 * exit status 2. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "spillway.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: spillway-grammar (--schema FILE | --gbnf FILE) [options]\n"
            "  --schema FILE     a JSON Schema ('-' = stdin)\n"
            "  --gbnf FILE       a GBNF grammar ('-' = stdin)\n"
            "  --info            print the compiled grammar's size as JSON\n"
            "  --sample N        print N random sentences, one JSON string per line\n"
            "  --seed S          random seed for --sample (default 1)\n"
            "  --max-bytes N     soft length of a sample (default 200)\n"
            "  --check           read JSON string lines from stdin; print complete, prefix or refused\n");
}

static char *read_all(const char *path, size_t *len) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (n + 1 < cap) break;
        char *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    if (f != stdin) fclose(f);
    if (buf) buf[n] = '\0';
    *len = n;
    return buf;
}

static void print_json_string(const char *s, size_t n) {
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20 || c >= 0x7F) printf("\\u%04x", c); /* bytes, not characters */
        else putchar(c);
    }
    printf("\"\n");
}

/* A line holding a JSON string whose characters are all below 256 stands for
 * those bytes (the inverse of print_json_string). */
static char *decode_line(const char *line, size_t *n) {
    cJSON *j = cJSON_Parse(line);
    if (!cJSON_IsString(j)) {
        cJSON_Delete(j);
        return NULL;
    }
    /* cJSON gives UTF-8; map code points < 256 back to bytes */
    const unsigned char *u = (const unsigned char *)j->valuestring;
    size_t len = strlen(j->valuestring), k = 0;
    char *out = malloc(len + 1);
    for (size_t i = 0; out && i < len;) {
        if (u[i] < 0x80) out[k++] = (char)u[i++];
        else if ((u[i] & 0xE0) == 0xC0 && i + 1 < len) {
            out[k++] = (char)(((u[i] & 0x1F) << 6) | (u[i + 1] & 0x3F));
            i += 2;
        } else {
            free(out);
            out = NULL;
        }
    }
    cJSON_Delete(j);
    *n = k;
    return out;
}

int main(int argc, char **argv) {
    static const struct option opts[] = {
        {"schema", required_argument, 0, 's'}, {"gbnf", required_argument, 0, 'g'},
        {"info", no_argument, 0, 'i'},         {"sample", required_argument, 0, 'n'},
        {"seed", required_argument, 0, 'r'},   {"max-bytes", required_argument, 0, 'm'},
        {"check", no_argument, 0, 'c'},        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *schema = NULL, *gbnf = NULL;
    bool info = false, check = false;
    long n_samples = 0, max_bytes = 200;
    unsigned long long seed = 1;
    int o;
    while ((o = getopt_long(argc, argv, "s:g:in:r:m:ch", opts, NULL)) != -1) {
        switch (o) {
        case 's': schema = optarg; break;
        case 'g': gbnf = optarg; break;
        case 'i': info = true; break;
        case 'n': n_samples = strtol(optarg, NULL, 10); break;
        case 'r': seed = strtoull(optarg, NULL, 10); break;
        case 'm': max_bytes = strtol(optarg, NULL, 10); break;
        case 'c': check = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 1;
        }
    }
    if (!schema == !gbnf || n_samples < 0 || max_bytes < 0) {
        usage(stderr);
        return 1;
    }
    size_t len;
    char *text = read_all(schema ? schema : gbnf, &len);
    if (!text) {
        fprintf(stderr, "spillway-grammar: cannot read %s\n", schema ? schema : gbnf);
        return 1;
    }
    sw_grammar *g;
    sw_err err = {{0}};
    double t0 = sw_time_s();
    sw_status st = schema ? sw_grammar_from_json_schema(text, len, &g, &err)
                          : sw_grammar_from_gbnf(text, len, &g, &err);
    double t_compile = sw_time_s() - t0;
    free(text);
    if (st != SW_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    int rc = 0;
    if (info) {
        sw_grammar_info gi;
        sw_grammar_get_info(g, &gi);
        printf("{\"rules\": %d, \"elements\": %d, \"terminals\": %d, \"dfa_states\": %d, "
               "\"compile_ms\": %.3f}\n",
               gi.n_rules, gi.n_elems, gi.n_terms, gi.n_dfa_states, t_compile * 1e3);
    }
    for (long i = 0; i < n_samples; i++) {
        char *s;
        size_t n;
        if ((st = sw_grammar_sample(g, seed + (unsigned long long)i * 7919u, (size_t)max_bytes, &s, &n,
                                    &err)) != SW_OK) {
            fprintf(stderr, "sample %ld: %s\n", i, err.msg);
            rc = 3;
            break;
        }
        print_json_string(s, n);
        free(s);
    }
    if (check) {
        sw_gmatch *m;
        if (sw_gmatch_create(g, &m, &err) != SW_OK) {
            fprintf(stderr, "%s\n", err.msg);
            sw_grammar_free(g);
            return 1;
        }
        char *line = NULL;
        size_t cap = 0;
        ssize_t got;
        while ((got = getline(&line, &cap, stdin)) > 0) {
            size_t n;
            char *b = decode_line(line, &n);
            if (!b) {
                printf("bad-line\n");
                continue;
            }
            sw_gmatch_reset(m);
            if (!sw_gmatch_feed(m, b, n)) printf("refused\n");
            else printf(sw_gmatch_accepting(m) ? "complete\n" : "prefix\n");
            free(b);
        }
        free(line);
        sw_gmatch_free(m);
    }
    sw_grammar_free(g);
    return rc;
}
