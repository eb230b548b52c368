/* spillway-tokenize — tokenize text with a GGUF model's tokenizer.
 *
 *   spillway-tokenize -m FILE [-f TEXTFILE | -p TEXT] [--add-bos] [--parse-special]
 *                     [--show-pieces]
 *
 * Prints the ids on one line separated by spaces; with --show-pieces, one
 * "id 'piece'" line per token instead. Exit 1 on errors (unreadable file, bad
 * model), 2 on bad usage. */
#include <spillway.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f, "usage: spillway-tokenize -m FILE [-f TEXTFILE | -p TEXT] [--add-bos]\n"
               "                         [--parse-special] [--show-pieces]\n"
               "  -m FILE          GGUF model or vocab file\n"
               "  -p TEXT          text to tokenize\n"
               "  -f TEXTFILE      read the text from a file (bytes as they are)\n"
               "  --add-bos        prepend the BOS token\n"
               "  --parse-special  map special-token text (e.g. <|im_start|>) to its token\n"
               "  --show-pieces    print one \"id 'piece'\" line per token\n");
}

static int read_file(const char *path, char **buf, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    while (b) {
        if (n == cap) {
            char *nb = realloc(b, cap * 2);
            if (!nb) {
                free(b);
                b = NULL;
                break;
            }
            b = nb;
            cap *= 2;
        }
        size_t k = fread(b + n, 1, cap - n, f);
        n += k;
        if (k == 0) break;
    }
    int bad = ferror(f) || !b;
    fclose(f);
    if (bad) {
        free(b);
        return -1;
    }
    *buf = b;
    *len = n;
    return 0;
}

/* Length of the well-formed UTF-8 sequence at p (n bytes left), 0 if none. */
static size_t utf8_seq(const unsigned char *p, size_t n) {
    size_t k = p[0] >= 0xF0 && p[0] <= 0xF4   ? 4
               : p[0] >= 0xE0 && p[0] <= 0xEF ? 3
               : p[0] >= 0xC2 && p[0] <= 0xDF ? 2
                                              : 0;
    if (k == 0 || k > n) return 0;
    for (size_t i = 1; i < k; i++)
        if ((p[i] & 0xC0) != 0x80) return 0;
    return k;
}

/* Print a piece with C-style escapes for quotes, backslashes and control bytes;
 * whole UTF-8 characters go out raw so text stays readable, stray bytes (a
 * byte-fallback token holding part of a character) as \xNN. */
static void print_piece(const char *p, size_t n) {
    putchar('\'');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x80) {
            size_t k = utf8_seq((const unsigned char *)p + i, n - i);
            if (k == 0) {
                printf("\\x%02x", c);
            } else {
                fwrite(p + i, 1, k, stdout);
                i += k - 1;
            }
            continue;
        }
        if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c == '\r')
            fputs("\\r", stdout);
        else if (c == '\'' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20 || c == 0x7F)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
    putchar('\'');
}

int main(int argc, char **argv) {
    const char *model = NULL, *text_arg = NULL, *text_file = NULL;
    bool add_bos = false, parse_special = false, show = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "-m") || !strcmp(a, "-p") || !strcmp(a, "-f")) && i + 1 >= argc) {
            fprintf(stderr, "spillway-tokenize: %s needs an argument\n", a);
            usage(stderr);
            return 2;
        }
        if (!strcmp(a, "-m"))
            model = argv[++i];
        else if (!strcmp(a, "-p"))
            text_arg = argv[++i];
        else if (!strcmp(a, "-f"))
            text_file = argv[++i];
        else if (!strcmp(a, "--add-bos"))
            add_bos = true;
        else if (!strcmp(a, "--parse-special"))
            parse_special = true;
        else if (!strcmp(a, "--show-pieces"))
            show = true;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "spillway-tokenize: unknown argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!model || (!text_arg && !text_file) || (text_arg && text_file)) {
        fprintf(stderr, "spillway-tokenize: need -m FILE and exactly one of -p TEXT / -f FILE\n");
        usage(stderr);
        return 2;
    }

    char *text = NULL;
    size_t len = 0;
    if (text_file) {
        if (read_file(text_file, &text, &len) != 0) {
            fprintf(stderr, "spillway-tokenize: cannot read '%s'\n", text_file);
            return 1;
        }
    }

    sw_err err = {{0}};
    sw_gguf *g = NULL;
    sw_tokenizer *tok = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = 1;
    if (sw_gguf_open(model, &g, &err) != SW_OK) {
        fprintf(stderr, "spillway-tokenize: %s\n", err.msg);
        goto out;
    }
    if (sw_tokenizer_create(g, &tok, &err) != SW_OK) {
        fprintf(stderr, "spillway-tokenize: %s\n", err.msg);
        goto out;
    }
    if (add_bos && sw_tokenizer_bos(tok) < 0) {
        fprintf(stderr, "spillway-tokenize: %s has no BOS token\n", model);
        goto out;
    }
    const char *src = text ? text : text_arg;
    if (!text) len = strlen(text_arg);
    if (sw_tokenize(tok, src, len, add_bos, parse_special, &ids, &n, &err) != SW_OK) {
        fprintf(stderr, "spillway-tokenize: %s\n", err.msg);
        goto out;
    }
    if (show) {
        char small[256];
        for (size_t i = 0; i < n; i++) {
            size_t k = sw_token_to_piece(tok, ids[i], true, small, sizeof small);
            printf("%d ", (int)ids[i]);
            if (k <= sizeof small) {
                print_piece(small, k);
            } else {
                char *big = malloc(k);
                if (big) {
                    sw_token_to_piece(tok, ids[i], true, big, k);
                    print_piece(big, k);
                    free(big);
                }
            }
            putchar('\n');
        }
    } else {
        for (size_t i = 0; i < n; i++)
            printf(i ? " %d" : "%d", (int)ids[i]);
        putchar('\n');
    }
    rc = 0;
out:
    free(ids);
    sw_tokenizer_free(tok);
    sw_gguf_free(g);
    free(text);
    return rc;
}
