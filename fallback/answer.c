/* answer.c — numeric and normalized-text matching of short answers (answer.h). */
#include "answer.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

char *sw_answer_normalize(const char *text) {
    size_t n = strlen(text);
    char *out = malloc(n + 1), *o = out;
    if (!out) return NULL;
    bool space = true; /* drop leading separators */
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (isalnum(*p) && *p < 0x80) {
            *o++ = (char)tolower(*p);
            space = false;
        } else if (*p >= 0x80) { /* keep non-ASCII letters as they are */
            *o++ = (char)*p;
            space = false;
        } else if (!space) {
            *o++ = ' ';
            space = true;
        }
    }
    if (o > out && o[-1] == ' ') o--;
    *o = '\0';
    return out;
}

/* Scan the number starting at p (a digit, or '-' before one): digits with
 * optional thousands commas ("1,234,567") and a decimal part. Returns the
 * character after it. */
static const char *scan_number(const char *p, double *v) {
    bool neg = *p == '-';
    if (neg) p++;
    double x = 0;
    const char *q = p;
    int group = 0;
    while (isdigit((unsigned char)*q) ||
           (*q == ',' && group > 0 && group <= 3 && isdigit((unsigned char)q[1]) &&
            isdigit((unsigned char)q[2]) && isdigit((unsigned char)q[3]) &&
            !isdigit((unsigned char)q[4]))) {
        if (*q == ',') {
            group = 0;
            q++;
            continue;
        }
        x = x * 10 + (*q - '0');
        group++;
        q++;
    }
    if (*q == '.' && isdigit((unsigned char)q[1])) {
        double f = 0.1;
        for (q++; isdigit((unsigned char)*q); q++, f /= 10) x += (*q - '0') * f;
    }
    *v = neg ? -x : x;
    return q;
}

/* Every number in text, in order (malloc'd array; *n its length). */
static double *numbers(const char *text, size_t *n) {
    size_t cap = 8;
    double *v = malloc(cap * sizeof *v);
    *n = 0;
    if (!v) return NULL;
    for (const char *p = text; *p;) {
        bool starts = isdigit((unsigned char)*p) ||
                      (*p == '-' && isdigit((unsigned char)p[1]) &&
                       (p == text || !isalnum((unsigned char)p[-1])));
        if (!starts || (p > text && isdigit((unsigned char)p[-1]))) {
            p++;
            continue;
        }
        double x;
        p = scan_number(p, &x);
        if (*n == cap) {
            double *w = realloc(v, 2 * cap * sizeof *v);
            if (!w) break;
            v = w;
            cap *= 2;
        }
        v[(*n)++] = x;
    }
    return v;
}

static bool same_number(double a, double b) { return fabs(a - b) <= 1e-9 * fmax(1.0, fabs(b)); }

bool sw_answer_number(const char *text, double *out) {
    while (isspace((unsigned char)*text)) text++;
    if (!(isdigit((unsigned char)*text) || (*text == '-' && isdigit((unsigned char)text[1]))))
        return false;
    const char *end = scan_number(text, out);
    while (isspace((unsigned char)*end)) end++;
    return *end == '\0';
}

static bool in_list(const double *v, size_t n, double x) {
    for (size_t i = 0; i < n; i++)
        if (same_number(v[i], x)) return true;
    return false;
}

static bool match_number(const char *prompt, const char *answer, double ref) {
    size_t na = 0, np = 0;
    double *a = numbers(answer, &na), *p = prompt ? numbers(prompt, &np) : NULL;
    bool skip_prompt = !in_list(p, np, ref), ok = false;
    for (size_t i = 0; a && i < na; i++) {
        if (skip_prompt && in_list(p, np, a[i])) continue;
        ok = same_number(a[i], ref);
        break;
    }
    free(a);
    free(p);
    return ok;
}

bool sw_answer_match(const char *prompt, const char *answer, const char *reference) {
    if (!answer || !reference) return false;
    double ref;
    if (sw_answer_number(reference, &ref)) return match_number(prompt, answer, ref);
    char *a = sw_answer_normalize(answer), *r = sw_answer_normalize(reference);
    bool ok = false;
    if (a && r && r[0]) {
        size_t lr = strlen(r);
        for (const char *p = strstr(a, r); p && !ok; p = strstr(p + 1, r))
            ok = (p == a || p[-1] == ' ') && (p[lr] == '\0' || p[lr] == ' ');
    }
    free(a);
    free(r);
    return ok;
}
