/* tokenizer_unicode.c — Unicode property lookups for the WordPiece normalizer
 * (general category, White_Space, lowercase, canonical decomposition) over the
 * generated tables in tokenizer_unicode_data.c. The byte-level BPE path does not
 * need these: PCRE2 (UTF + UCP) answers \p{L}, \p{N}, \s itself. */
#include "tokenizer_impl.h"

int sw_tok_ucat(uint32_t cp) {
    if (cp > 0x10FFFF) return SW_UCAT_CN;
    /* last run whose start <= cp */
    size_t lo = 0, hi = sw_tok_ucat_n_runs;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if ((sw_tok_ucat_runs[mid] >> 8) <= cp)
            lo = mid;
        else
            hi = mid;
    }
    return (int)(sw_tok_ucat_runs[lo] & 0xFF);
}

bool sw_tok_is_white_space(uint32_t cp) {
    /* The White_Space property is small and stable; listing it is clearer
     * than a table. */
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
           cp == 0x205F || cp == 0x3000;
}

static long find_u32(const uint32_t *a, size_t n, uint32_t x) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (lo < n && a[lo] == x) ? (long)lo : -1;
}

size_t sw_tok_tolower(uint32_t cp, uint32_t out[3]) {
    if (cp < 0x80) {
        out[0] = (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
        return 1;
    }
    for (size_t i = 0; i < sw_tok_lower_multi_n; i++) {
        const uint32_t *e = &sw_tok_lower_multi[i * 5];
        if (e[0] == cp) {
            size_t n = e[1] > 3 ? 3 : e[1];
            for (size_t k = 0; k < n; k++)
                out[k] = e[2 + k];
            return n;
        }
    }
    long i = find_u32(sw_tok_lower_from, sw_tok_lower_n, cp);
    out[0] = i >= 0 ? sw_tok_lower_to[i] : cp;
    return 1;
}

size_t sw_tok_nfd(uint32_t cp, uint32_t out[4]) {
    /* Hangul syllables decompose algorithmically (Unicode ch. 3.12). */
    if (cp >= 0xAC00 && cp <= 0xD7A3) {
        uint32_t s = cp - 0xAC00;
        out[0] = 0x1100 + s / (21 * 28);
        out[1] = 0x1161 + (s % (21 * 28)) / 28;
        if (s % 28) {
            out[2] = 0x11A7 + s % 28;
            return 3;
        }
        return 2;
    }
    if (cp < 0xC0) {
        out[0] = cp;
        return 1;
    }
    long i = find_u32(sw_tok_nfd_cp, sw_tok_nfd_n, cp);
    if (i < 0) {
        out[0] = cp;
        return 1;
    }
    size_t a = sw_tok_nfd_off[i], b = sw_tok_nfd_off[i + 1];
    size_t n = b - a > 4 ? 4 : b - a;
    for (size_t k = 0; k < n; k++)
        out[k] = sw_tok_nfd_seq[a + k];
    return n;
}
