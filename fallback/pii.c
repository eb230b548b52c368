/* pii.c — PII detectors: a PCRE2 pattern per kind finds candidates, a
 * checksum or range validation keeps only the plausible ones (see pii.h). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "pii.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Patterns are written so that PCRE2 cannot backtrack badly: every repeated
 * group is either single-character or possessive, and the lookarounds keep a
 * candidate from starting or ending inside a longer token. */
static const struct {
    sw_pii_kind kind;
    const char *name;
    const char *pattern;
} k_detectors[] = {
    {SW_PII_EMAIL, "email",
     "(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
     "(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z]{2,24}(?![A-Za-z0-9-])"},
    /* Two phone shapes: "+CC ..." (E.164 with optional separators) and the
     * North American "(NPA) NXX-XXXX" / "NPA-NXX-XXXX" / "NPA.NXX.XXXX" forms,
     * optionally preceded by "1 ". A bare digit run is not taken for a phone. */
    {SW_PII_PHONE, "phone",
     "(?<![\\w+])\\+\\d++(?>[ .\\-]?\\(?\\d++\\)?){0,7}+(?![\\w])"
     "|(?<![\\w+.\\-])(?:1[ .\\-])?(?:\\([2-9]\\d{2}\\) ?|[2-9]\\d{2}[ .\\-])[2-9]\\d{2}[ .\\-]\\d{4}"
     "(?![\\w\\-])"},
    {SW_PII_CARD, "card", "(?<![\\d.+\\-])\\d(?:[ \\-]?\\d){12,18}(?!\\d)"},
    /* Only the start is matched; the validator walks the body, because how far
     * an IBAN extends depends on its country. */
    {SW_PII_IBAN, "iban", "(?<![A-Za-z0-9])[A-Z]{2}\\d{2}(?= ?[A-Z0-9])"},
    {SW_PII_SSN, "ssn", "(?<![\\w\\-])\\d{3}-\\d{2}-\\d{4}(?![\\w\\-])"},
};
#define N_DETECTORS (sizeof k_detectors / sizeof k_detectors[0])

struct sw_pii {
    unsigned kinds;
    pcre2_code *code[N_DETECTORS];
    pcre2_match_context *mctx;
};

const char *sw_pii_kind_str(sw_pii_kind k) {
    for (size_t i = 0; i < N_DETECTORS; i++)
        if (k_detectors[i].kind == k) return k_detectors[i].name;
    return "?";
}

sw_status sw_pii_kind_parse(const char *name, sw_pii_kind *kind, sw_err *err) {
    for (size_t i = 0; name && i < N_DETECTORS; i++) {
        if (!strcmp(name, k_detectors[i].name)) {
            *kind = k_detectors[i].kind;
            return SW_OK;
        }
    }
    return sw_err_set(err, SW_E_INVALID_ARG,
                      "unknown PII detector '%s' (expected email, phone, card, iban or ssn)",
                      name ? name : "(null)");
}

void sw_pii_kinds_str(unsigned kinds, char *buf, size_t cap) {
    if (!cap) return;
    buf[0] = '\0';
    size_t used = 0;
    for (size_t i = 0; i < N_DETECTORS; i++) {
        if (!(kinds & k_detectors[i].kind)) continue;
        int n = snprintf(buf + used, cap - used, "%s%s", used ? "," : "", k_detectors[i].name);
        if (n < 0 || (size_t)n >= cap - used) return;
        used += (size_t)n;
    }
}

sw_status sw_pii_create(unsigned kinds, sw_pii **out, sw_err *err) {
    if (!out) return sw_err_set(err, SW_E_INVALID_ARG, "sw_pii_create: out is NULL");
    *out = NULL;
    if (kinds & ~(unsigned)SW_PII_ALL)
        return sw_err_set(err, SW_E_INVALID_ARG, "sw_pii_create: unknown kind bits 0x%x", kinds);
    sw_pii *p = calloc(1, sizeof *p);
    if (!p) return sw_err_set(err, SW_E_NOMEM, "sw_pii_create: out of memory");
    p->kinds = kinds;
    p->mctx = pcre2_match_context_create(NULL);
    if (!p->mctx) {
        sw_pii_free(p);
        return sw_err_set(err, SW_E_NOMEM, "sw_pii_create: out of memory");
    }
    /* The patterns are linear, but a hard limit keeps a pathological input
     * from costing more than a few milliseconds even if one is not. */
    pcre2_set_match_limit(p->mctx, 1000000);
    for (size_t i = 0; i < N_DETECTORS; i++) {
        if (!(kinds & k_detectors[i].kind)) continue;
        int ec;
        PCRE2_SIZE eo;
        p->code[i] = pcre2_compile((PCRE2_SPTR)k_detectors[i].pattern, PCRE2_ZERO_TERMINATED, 0,
                                   &ec, &eo, NULL);
        if (!p->code[i]) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(ec, msg, sizeof msg);
            sw_pii_free(p);
            return sw_err_set(err, SW_E_INTERNAL, "PII pattern '%s' at offset %zu: %s",
                              k_detectors[i].name, (size_t)eo, (const char *)msg);
        }
        /* JIT is an optimization; the interpreter gives the same answers. */
        (void)pcre2_jit_compile(p->code[i], PCRE2_JIT_COMPLETE);
    }
    *out = p;
    return SW_OK;
}

void sw_pii_free(sw_pii *p) {
    if (!p) return;
    for (size_t i = 0; i < N_DETECTORS; i++) pcre2_code_free(p->code[i]);
    pcre2_match_context_free(p->mctx);
    free(p);
}

unsigned sw_pii_kinds(const sw_pii *p) { return p ? p->kinds : 0; }

/* ---- validations -------------------------------------------------------------- */

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
static bool is_alnum(char c) { return is_digit(c) || is_upper(c) || (c >= 'a' && c <= 'z'); }

bool sw_pii_luhn_ok(const char *s, size_t len) {
    int sum = 0, n = 0;
    for (size_t i = len; i-- > 0;) {
        char c = s[i];
        if (c == ' ' || c == '-') continue;
        if (!is_digit(c)) return false;
        int d = c - '0';
        if (n % 2 == 1) {
            d *= 2;
            if (d > 9) d -= 9;
        }
        sum += d;
        n++;
    }
    return n > 0 && sum % 10 == 0;
}

/* A card candidate: 13-19 digits, Luhn, an issuer prefix of a real network
 * (2 Mastercard, 3 Amex/Diners/JCB, 4 Visa, 5 Mastercard/Maestro, 6 Discover/
 * UnionPay/Maestro), not one repeated digit, and when grouped, consistent
 * separators with groups of 3-6 digits (how cards are printed) — this drops
 * most timestamps, order numbers and digit tables that happen to pass Luhn. */
static bool card_ok(const char *s, size_t len) {
    char digits[20];
    size_t nd = 0, group = 0;
    char sep = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (is_digit(c)) {
            if (nd == sizeof digits) return false;
            digits[nd++] = c;
            group++;
            continue;
        }
        if (sep && c != sep) return false;
        sep = c;
        if (group < 3 || group > 6) return false;
        group = 0;
    }
    if (sep && (group < 3 || group > 6)) return false;
    if (nd < 13 || nd > 19) return false;
    if (digits[0] < '2' || digits[0] > '6') return false;
    bool same = true;
    for (size_t i = 1; i < nd; i++) same = same && digits[i] == digits[0];
    if (same) return false;
    return sw_pii_luhn_ok(digits, nd);
}

/* IBAN lengths by country (ISO 13616 registry). A country not listed is not
 * accepted, which keeps random "AB12 ..." strings out. */
static const struct {
    char cc[3];
    unsigned char len;
} k_iban_len[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16},
    {"BG", 22}, {"BH", 22}, {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CR", 22}, {"CY", 28},
    {"CZ", 24}, {"DE", 22}, {"DK", 18}, {"DO", 28}, {"EE", 20}, {"EG", 29}, {"ES", 24},
    {"FI", 18}, {"FO", 18}, {"FR", 27}, {"GB", 22}, {"GE", 22}, {"GI", 23}, {"GL", 18},
    {"GR", 27}, {"GT", 28}, {"HR", 21}, {"HU", 28}, {"IE", 22}, {"IL", 23}, {"IQ", 23},
    {"IS", 26}, {"IT", 27}, {"JO", 30}, {"KW", 30}, {"KZ", 20}, {"LB", 28}, {"LC", 32},
    {"LI", 21}, {"LT", 20}, {"LU", 20}, {"LV", 21}, {"MC", 27}, {"MD", 24}, {"ME", 22},
    {"MK", 19}, {"MR", 27}, {"MT", 31}, {"MU", 30}, {"NL", 18}, {"NO", 15}, {"PK", 24},
    {"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22}, {"SA", 24},
    {"SC", 31}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27}, {"ST", 25}, {"SV", 28},
    {"TL", 23}, {"TN", 24}, {"TR", 26}, {"UA", 29}, {"VA", 22}, {"VG", 24}, {"XK", 20},
};

static int iban_country_len(const char *cc) {
    for (size_t i = 0; i < sizeof k_iban_len / sizeof k_iban_len[0]; i++)
        if (k_iban_len[i].cc[0] == cc[0] && k_iban_len[i].cc[1] == cc[1]) return k_iban_len[i].len;
    return 0;
}

/* ISO 7064 mod 97-10 over the rearranged IBAN (first four characters moved to
 * the end, letters as 10..35), computed incrementally so no bignum is needed. */
static bool iban_mod97(const char *iban, size_t n) {
    unsigned rem = 0;
    for (size_t k = 0; k < n; k++) {
        char c = iban[(k + 4) % n];
        if (is_digit(c)) {
            rem = (rem * 10 + (unsigned)(c - '0')) % 97;
        } else if (is_upper(c)) {
            unsigned v = (unsigned)(c - 'A') + 10;
            rem = (rem * 100 + v) % 97;
        } else {
            return false;
        }
    }
    return rem == 1;
}

bool sw_pii_iban_ok(const char *s, size_t len) {
    char compact[40];
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ' ') continue;
        if (n == sizeof compact || !is_alnum(s[i])) return false;
        compact[n++] = s[i];
    }
    if (n < 4 || !is_upper(compact[0]) || !is_upper(compact[1]) || !is_digit(compact[2]) ||
        !is_digit(compact[3]))
        return false;
    int want = iban_country_len(compact);
    return want && (size_t)want == n && iban_mod97(compact, n);
}

/* Walk an IBAN body from a matched country+check start: take exactly the
 * country's length in characters (single spaces allowed between them), then
 * require that the token ends there. Returns the byte length, 0 if none. */
static size_t iban_extent(const char *s, size_t avail) {
    if (avail < 4) return 0;
    int want = iban_country_len(s);
    if (!want) return 0;
    size_t i = 0;
    int got = 0;
    while (i < avail && got < want) {
        if (s[i] == ' ' && got >= 4 && i + 1 < avail && s[i + 1] != ' ' && s[i - 1] != ' ') {
            i++;
            continue;
        }
        if (!is_upper(s[i]) && !is_digit(s[i])) return 0;
        i++;
        got++;
    }
    if (got != want) return 0;
    if (i < avail && is_alnum(s[i])) return 0;
    return sw_pii_iban_ok(s, i) ? i : 0;
}

bool sw_pii_ssn_ok(const char *s, size_t len) {
    if (len != 11 || s[3] != '-' || s[6] != '-') return false;
    for (size_t i = 0; i < 11; i++)
        if (i != 3 && i != 6 && !is_digit(s[i])) return false;
    int area = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    int group = (s[4] - '0') * 10 + (s[5] - '0');
    int serial = (s[7] - '0') * 1000 + (s[8] - '0') * 100 + (s[9] - '0') * 10 + (s[10] - '0');
    /* Never issued: area 000, 666 and 900-999; group 00; serial 0000. */
    if (area == 0 || area == 666 || area >= 900) return false;
    return group != 0 && serial != 0;
}

static bool phone_ok(const char *s, size_t len) {
    size_t digits = 0;
    for (size_t i = 0; i < len; i++) digits += is_digit(s[i]);
    if (s[0] == '+') return digits >= 8 && digits <= 15; /* E.164: at most 15 */
    return digits == 10 || digits == 11;                 /* NANP, with or without the 1 */
}

static bool email_ok(const char *s, size_t len) {
    const char *at = memchr(s, '@', len);
    if (!at || at == s) return false;
    size_t local = (size_t)(at - s);
    if (s[local - 1] == '.') return false;
    for (size_t i = 1; i < local; i++)
        if (s[i] == '.' && s[i - 1] == '.') return false;
    return true;
}

/* Validate a candidate; may shorten it (cards grouped with trailing digits,
 * IBANs). Returns the validated length or 0. */
static size_t validate(sw_pii_kind kind, const char *text, size_t off, size_t len, size_t total) {
    const char *s = text + off;
    switch (kind) {
    case SW_PII_EMAIL: return email_ok(s, len) ? len : 0;
    case SW_PII_PHONE: return phone_ok(s, len) ? len : 0;
    case SW_PII_SSN: return sw_pii_ssn_ok(s, len) ? len : 0;
    case SW_PII_IBAN: return iban_extent(s, total - off);
    case SW_PII_CARD:
        /* "4111 1111 1111 1111 2024": the whole run fails, its grouped prefixes
         * are tried from the longest down. */
        for (size_t l = len; l > 0; l--) {
            if (l < len && s[l] != ' ' && s[l] != '-') continue;
            if (card_ok(s, l)) return l;
        }
        return 0;
    }
    return 0;
}

/* Run every enabled detector over text and call on_match for each validated
 * match, in detector order and then by offset. on_match returns false to stop
 * the current detector (true: go on looking for more of its matches);
 * *stop_all set by it ends the whole scan. */
typedef bool (*match_fn)(void *user, const sw_pii_match *m, bool *stop_all);

static sw_status scan_all(const sw_pii *p, const char *text, size_t len, match_fn on_match,
                          void *user, sw_err *err) {
    if (len == 0) return SW_OK;
    pcre2_match_data *md = pcre2_match_data_create(2, NULL);
    if (!md) return sw_err_set(err, SW_E_NOMEM, "sw_pii_scan: out of memory");
    sw_status st = SW_OK;
    bool stop_all = false;
    for (size_t d = 0; d < N_DETECTORS && st == SW_OK && !stop_all; d++) {
        if (!p->code[d]) continue;
        PCRE2_SIZE start = 0;
        while (start < len) {
            int rc = pcre2_match(p->code[d], (PCRE2_SPTR)text, len, start, 0, md, p->mctx);
            if (rc == PCRE2_ERROR_NOMATCH) break;
            if (rc < 0) {
                PCRE2_UCHAR msg[120];
                pcre2_get_error_message(rc, msg, sizeof msg);
                st = sw_err_set(err, SW_E_INTERNAL, "PII detector '%s' at byte %zu: %s",
                                k_detectors[d].name, (size_t)start, (const char *)msg);
                break;
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t off = ov[0], mlen = ov[1] - ov[0];
            size_t vlen = validate(k_detectors[d].kind, text, off, mlen, len);
            size_t next = ov[1] > off ? ov[1] : off + 1;
            if (vlen) {
                sw_pii_match m = {k_detectors[d].kind, off, vlen};
                if (!on_match(user, &m, &stop_all) || stop_all) break;
                /* an IBAN's validated extent goes past the pattern's match */
                if (off + vlen > next) next = off + vlen;
            }
            start = next;
        }
    }
    pcre2_match_data_free(md);
    return st;
}

typedef struct first_ctx {
    unsigned kinds;
    bool stop_early, have_first;
    sw_pii_match *first;
} first_ctx;

static bool on_first(void *user, const sw_pii_match *m, bool *stop_all) {
    first_ctx *c = user;
    c->kinds |= m->kind;
    if (c->first && (!c->have_first || m->offset < c->first->offset)) {
        *c->first = *m;
        c->have_first = true;
    }
    *stop_all = c->stop_early;
    return false; /* one match per kind is enough to pin the request */
}

sw_status sw_pii_scan(const sw_pii *p, const char *text, size_t len, bool stop_early,
                      unsigned *found, sw_pii_match *first, sw_err *err) {
    if (found) *found = 0;
    if (first) memset(first, 0, sizeof *first);
    if (!p || (!text && len)) return sw_err_set(err, SW_E_INVALID_ARG, "sw_pii_scan: NULL argument");
    first_ctx c = {0, stop_early, false, first};
    sw_status st = scan_all(p, text, len, on_first, &c, err);
    if (found) *found = c.kinds;
    return st;
}

typedef struct all_ctx {
    sw_pii_match *m;
    size_t n, cap;
    bool oom;
} all_ctx;

static bool on_any(void *user, const sw_pii_match *m, bool *stop_all) {
    all_ctx *c = user;
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 8;
        sw_pii_match *nm = realloc(c->m, cap * sizeof *nm);
        if (!nm) {
            c->oom = true;
            *stop_all = true;
            return false;
        }
        c->m = nm;
        c->cap = cap;
    }
    c->m[c->n++] = *m;
    return true;
}

/* Earlier first; at the same offset the longer span first. */
static int by_offset(const void *a, const void *b) {
    const sw_pii_match *x = a, *y = b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return (int)x->kind - (int)y->kind;
}

sw_status sw_pii_find_all(const sw_pii *p, const char *text, size_t len, sw_pii_match **out,
                          size_t *n_out, sw_err *err) {
    if (out) *out = NULL;
    if (n_out) *n_out = 0;
    if (!p || !out || !n_out || (!text && len))
        return sw_err_set(err, SW_E_INVALID_ARG, "sw_pii_find_all: NULL argument");
    all_ctx c = {0};
    sw_status st = scan_all(p, text, len, on_any, &c, err);
    if (st == SW_OK && c.oom) st = sw_err_set(err, SW_E_NOMEM, "sw_pii_find_all: out of memory");
    if (st != SW_OK) {
        free(c.m);
        return st;
    }
    /* Overlaps between detectors (an IBAN's digits can pass as a card): the
     * span that starts first wins, then the longer one. */
    if (c.n > 1) qsort(c.m, c.n, sizeof *c.m, by_offset);
    size_t kept = 0, end = 0;
    for (size_t i = 0; i < c.n; i++) {
        if (kept && c.m[i].offset < end) continue;
        c.m[kept++] = c.m[i];
        end = c.m[i].offset + c.m[i].len;
    }
    if (!kept) {
        free(c.m);
        c.m = NULL;
    }
    *out = c.m;
    *n_out = kept;
    return SW_OK;
}
