/* json_schema_num.c — JSON numbers within bounds, as a DFA (the numeric part
 * of the JSON Schema compiler, json_schema.c).
 *
 * A bounded number is written without exponent, and split by sign: a
 * non-negative one is its magnitude, a negative one '-' and a magnitude > 0
 * (so no "-0"). On magnitudes (decimal strings: integer digits without
 * leading zeros, optionally '.' and digits) "m >= a" and "m <= b" are each a
 * union of simple digit patterns (longer/shorter integer part, same length
 * and greater/smaller at the first differing digit, equal integer part and a
 * fraction compared digit by digit); the range is their intersection, taken
 * on DFAs. Bounds come from the schema as doubles, written as the shortest
 * decimal that reads back to the same double.
 *
 * Exactness against validators that compare binary doubles (Python's
 * jsonschema): rounding decimal to double is monotone, so m >= a as decimals
 * gives double(m) >= a; for strict bounds we also keep to at most 15
 * significant digits (DBL_DIG), so distinct decimals stay distinct doubles
 * and m > a gives double(m) > a. Integers are exact: integer bounds beyond
 * 2^53 in magnitude (where the schema's text may not be the double we read)
 * are refused unless they are past what we generate anyway (16 digits). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar_internal.h"

/* Integers: at most 16 digits; bounded non-integers: at most 15 integer
 * digits, 20 fraction digits, 15 significant digits. */
#define INT_DIGITS 16
#define NUM_INT_DIGITS 15
#define NUM_FRAC_DIGITS 20
#define NUM_SIG_DIGITS 15

typedef struct decimal {
    char i[400]; /* integer digits, no leading zeros ("0" for zero) */
    char f[400]; /* fraction digits, no trailing zeros (may be empty) */
} decimal;

/* v >= 0, finite: the shortest decimal that reads back to v, as digit strings. */
static void to_decimal(double v, decimal *d) {
    char buf[64];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, v);
        if (strtod(buf, NULL) == v) break;
    }
    /* buf: D[.DDD]e[+-]XX */
    char digits[32];
    int nd = 0;
    const char *p = buf;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9') digits[nd++] = *p;
    int exp10 = atoi(p + 1); /* value = 0.digits * 10^(exp10 + 1) */
    int point = exp10 + 1;   /* digits before the decimal point */
    int ni = 0, nf = 0;
    if (point <= 0) {
        d->i[ni++] = '0';
        for (int k = 0; k < -point; k++) d->f[nf++] = '0';
        for (int k = 0; k < nd; k++) d->f[nf++] = digits[k];
    } else {
        for (int k = 0; k < point; k++) d->i[ni++] = k < nd ? digits[k] : '0';
        for (int k = point; k < nd; k++) d->f[nf++] = digits[k];
    }
    while (nf > 0 && d->f[nf - 1] == '0') nf--;
    /* strip leading zeros of the integer part */
    int lead = 0;
    while (lead < ni - 1 && d->i[lead] == '0') lead++;
    memmove(d->i, d->i + lead, (size_t)(ni - lead));
    ni -= lead;
    d->i[ni] = '\0';
    d->f[nf] = '\0';
}

static sw_rx *digit(sw_arena *a, int lo, int hi) {
    if (lo > hi) return sw_rx_none(a);
    return sw_rx_byterange(a, (uint8_t)('0' + lo), (uint8_t)('0' + hi));
}

static sw_rx *digits(sw_arena *a, int32_t min, int32_t max) {
    return sw_rx_rep(a, digit(a, 0, 9), min, max);
}

static sw_rx *lit_n(sw_arena *a, const char *s, size_t n) {
    return sw_rx_lit(a, s, n);
}

/* Integer strings (no leading zeros) of the same length as s and > s (gt) or
 * < s (!gt). */
static sw_rx *int_same_len(sw_arena *a, const char *s, bool gt) {
    size_t len = strlen(s);
    sw_rx **alts = sw_arena_alloc(a, (len + 1) * sizeof *alts);
    if (!alts) return NULL;
    int32_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int d = s[i] - '0';
        int lo = gt ? d + 1 : (i == 0 && len > 1 ? 1 : 0);
        int hi = gt ? 9 : d - 1;
        if (lo > hi) continue;
        alts[n++] = sw_rx_cat3(a, lit_n(a, s, i), digit(a, lo, hi), digits(a, (int32_t)(len - i - 1), (int32_t)(len - i - 1)));
    }
    return sw_rx_alt(a, alts, n);
}

/* Integer strings >= s (ge) or <= s (!ge). */
static sw_rx *int_cmp(sw_arena *a, const char *s, bool ge) {
    size_t len = strlen(s);
    sw_rx *other;
    if (ge) {
        other = sw_rx_cat2(a, digit(a, 1, 9), digits(a, (int32_t)len, -1)); /* longer */
    } else {
        /* shorter: "0" is shorter only when len > 1 */
        other = len > 1 ? sw_rx_alt2(a, sw_rx_str(a, "0"),
                                     sw_rx_cat2(a, digit(a, 1, 9), digits(a, 0, (int32_t)len - 2)))
                        : sw_rx_none(a);
    }
    sw_rx *k[3] = {other, int_same_len(a, s, ge), sw_rx_str(a, s)};
    return sw_rx_alt(a, k, 3);
}

static sw_rx *frac_any(sw_arena *a) {
    return sw_rx_opt(a, sw_rx_cat2(a, sw_rx_str(a, "."), digits(a, 1, -1)));
}

/* Optional fractions F (none = 0) with 0.F >= 0.f, or > when strict. */
static sw_rx *frac_ge(sw_arena *a, const char *f, bool strict) {
    size_t k = strlen(f);
    if (k == 0) {
        if (!strict) return frac_any(a);
        /* > 0: some nonzero digit */
        return sw_rx_cat2(a, sw_rx_str(a, "."), sw_rx_cat3(a, digits(a, 0, -1), digit(a, 1, 9), digits(a, 0, -1)));
    }
    sw_rx **alts = sw_arena_alloc(a, (k + 1) * sizeof *alts);
    if (!alts) return NULL;
    int32_t n = 0;
    for (size_t i = 0; i < k; i++) {
        int d = f[i] - '0';
        if (d < 9) alts[n++] = sw_rx_cat3(a, lit_n(a, f, i), digit(a, d + 1, 9), digits(a, 0, -1));
    }
    alts[n++] = strict ? sw_rx_cat3(a, sw_rx_str(a, f), digits(a, 0, -1), sw_rx_cat2(a, digit(a, 1, 9), digits(a, 0, -1)))
                       : sw_rx_cat2(a, sw_rx_str(a, f), digits(a, 0, -1));
    return sw_rx_cat2(a, sw_rx_str(a, "."), sw_rx_alt(a, alts, n));
}

/* Optional fractions F with 0.F <= 0.f, or < when strict. */
static sw_rx *frac_le(sw_arena *a, const char *f, bool strict) {
    size_t k = strlen(f);
    if (k == 0) {
        if (strict) return sw_rx_none(a);
        return sw_rx_opt(a, sw_rx_cat2(a, sw_rx_str(a, "."), sw_rx_rep(a, sw_rx_str(a, "0"), 1, -1)));
    }
    sw_rx **alts = sw_arena_alloc(a, (2 * k + 1) * sizeof *alts);
    if (!alts) return NULL;
    int32_t n = 0;
    for (size_t i = 0; i < k; i++) {
        int d = f[i] - '0';
        if (d > 0) alts[n++] = sw_rx_cat3(a, lit_n(a, f, i), digit(a, 0, d - 1), digits(a, 0, -1));
        if (i > 0) alts[n++] = lit_n(a, f, i); /* a proper prefix: smaller */
    }
    if (!strict) alts[n++] = sw_rx_cat2(a, sw_rx_str(a, f), sw_rx_rep(a, sw_rx_str(a, "0"), 0, -1));
    return sw_rx_opt(a, sw_rx_cat2(a, sw_rx_str(a, "."), sw_rx_alt(a, alts, n)));
}

/* Magnitudes m with m >= d (> when strict); integers only when integer. */
static sw_rx *mag_ge(sw_arena *a, const decimal *d, bool strict, bool integer) {
    if (integer) /* the caller made the bound an exact integer, inclusive */
        return int_cmp(a, d->i, true);
    sw_rx *bigger = sw_rx_alt2(a, sw_rx_cat2(a, digit(a, 1, 9), digits(a, (int32_t)strlen(d->i), -1)),
                               int_same_len(a, d->i, true));
    return sw_rx_alt2(a, sw_rx_cat2(a, bigger, frac_any(a)),
                      sw_rx_cat2(a, sw_rx_str(a, d->i), frac_ge(a, d->f, strict)));
}

static sw_rx *mag_le(sw_arena *a, const decimal *d, bool strict, bool integer) {
    if (integer) return int_cmp(a, d->i, false);
    size_t len = strlen(d->i);
    sw_rx *shorter = len > 1 ? sw_rx_alt2(a, sw_rx_str(a, "0"),
                                          sw_rx_cat2(a, digit(a, 1, 9), digits(a, 0, (int32_t)len - 2)))
                             : sw_rx_none(a);
    sw_rx *smaller = sw_rx_alt2(a, shorter, int_same_len(a, d->i, false));
    return sw_rx_alt2(a, sw_rx_cat2(a, smaller, frac_any(a)),
                      sw_rx_cat2(a, sw_rx_str(a, d->i), frac_le(a, d->f, strict)));
}

static sw_rx *mag_any(sw_arena *a, bool integer) {
    sw_rx *i = sw_rx_alt2(a, sw_rx_str(a, "0"), sw_rx_cat2(a, digit(a, 1, 9), digits(a, 0, -1)));
    return integer ? i : sw_rx_cat2(a, i, frac_any(a));
}

typedef struct mag_bound {
    bool set, strict;
    double v; /* >= 0 */
} mag_bound;

/* DFA of the magnitudes within [lo, hi]. */
static sw_status mag_range(sw_arena *a, bool integer, mag_bound lo, mag_bound hi, sw_dfa *out,
                           const char *what, sw_err *err) {
    decimal dl, dh;
    sw_rx *ge = mag_any(a, integer), *le = mag_any(a, integer);
    if (lo.set) {
        to_decimal(lo.v, &dl);
        ge = mag_ge(a, &dl, lo.strict, integer);
    }
    if (hi.set) {
        to_decimal(hi.v, &dh);
        le = mag_le(a, &dh, hi.strict, integer);
    }
    if (sw_arena_failed(a)) return sw_err_set(err, SW_E_NOMEM, "%s: out of memory", what);
    sw_dfa dg, dlq;
    sw_status st = sw_dfa_build(ge, SW_GRAMMAR_MAX_DFA_STATES, &dg, what, err);
    if (st != SW_OK) return st;
    st = sw_dfa_build(le, SW_GRAMMAR_MAX_DFA_STATES, &dlq, what, err);
    if (st == SW_OK) st = sw_dfa_intersect(&dg, &dlq, SW_GRAMMAR_MAX_DFA_STATES, out, what, err);
    sw_dfa_free(&dg);
    sw_dfa_free(&dlq);
    return st;
}

/* The shape every generated number keeps to: integers of at most INT_DIGITS
 * digits; bounded numbers with at most NUM_INT_DIGITS integer digits,
 * NUM_FRAC_DIGITS fraction digits and NUM_SIG_DIGITS significant ones. */
static sw_rx *num_shape(sw_arena *a, bool integer) {
    sw_rx *sign = sw_rx_opt(a, sw_rx_str(a, "-"));
    if (integer)
        return sw_rx_cat2(a, sign, sw_rx_alt2(a, sw_rx_str(a, "0"),
                                              sw_rx_cat2(a, digit(a, 1, 9), digits(a, 0, INT_DIGITS - 1))));
    /* significant digits: count from the first nonzero one; "0" and "0.000"
     * prefixes are free */
    sw_rx *int_part = sw_rx_alt2(a, sw_rx_str(a, "0"), sw_rx_cat2(a, digit(a, 1, 9), digits(a, 0, NUM_INT_DIGITS - 1)));
    sw_rx *shape = sw_rx_cat3(a, sign, int_part, sw_rx_opt(a, sw_rx_cat2(a, sw_rx_str(a, "."), digits(a, 1, NUM_FRAC_DIGITS))));
    return shape;
}

/* Significant digits <= NUM_SIG_DIGITS: leading zeros (and the point) free,
 * then at most that many digits. */
static sw_rx *sig_digits(sw_arena *a) {
    sw_rx *zeros = sw_rx_rep(a, sw_rx_alt2(a, sw_rx_str(a, "0"), sw_rx_str(a, ".")), 0, -1);
    /* after the first nonzero digit, up to NUM_SIG_DIGITS - 1 more digits, with
     * at most one '.' among them (the shape DFA enforces the single point) */
    sw_rx *rest = sw_rx_cat2(a, digit(a, 1, 9),
                             sw_rx_rep(a, sw_rx_cat2(a, sw_rx_opt(a, sw_rx_str(a, ".")), digit(a, 0, 9)), 0,
                                       NUM_SIG_DIGITS - 1));
    sw_rx *tail = sw_rx_cat2(a, rest, sw_rx_opt(a, sw_rx_str(a, ".")));
    return sw_rx_cat3(a, sw_rx_opt(a, sw_rx_str(a, "-")), zeros, sw_rx_opt(a, tail));
}

static sw_status apply_shape(sw_arena *a, bool integer, bool bounded, sw_dfa *num, sw_dfa *out,
                             const char *what, sw_err *err) {
    sw_dfa shape, sig, tmp;
    sw_status st = sw_dfa_build(num_shape(a, integer), SW_GRAMMAR_MAX_DFA_STATES, &shape, what, err);
    if (st != SW_OK) return st;
    st = sw_dfa_intersect(num, &shape, SW_GRAMMAR_MAX_DFA_STATES, &tmp, what, err);
    sw_dfa_free(&shape);
    if (st != SW_OK) return st;
    if (integer || !bounded) {
        *out = tmp;
        return SW_OK;
    }
    st = sw_dfa_build(sig_digits(a), SW_GRAMMAR_MAX_DFA_STATES, &sig, what, err);
    if (st == SW_OK) st = sw_dfa_intersect(&tmp, &sig, SW_GRAMMAR_MAX_DFA_STATES, out, what, err);
    sw_dfa_free(&sig);
    sw_dfa_free(&tmp);
    return st;
}

sw_status sw_schema_number_dfa(bool integer, sw_num_bound lo, sw_num_bound hi, sw_dfa *out,
                               const char *what, sw_err *err) {
    memset(out, 0, sizeof *out);
    const double two53 = 9007199254740992.0;
    double limit = integer ? 1e16 : 1e15; /* magnitudes we generate stay below */
    if ((lo.set && !isfinite(lo.v)) || (hi.set && !isfinite(hi.v)))
        return sw_err_set(err, SW_E_INVALID_ARG, "%s: a bound is not a finite number", what);
    /* bounds past what we generate do not constrain */
    if (hi.set && hi.v >= limit) hi.set = false;
    if (lo.set && lo.v <= -limit) lo.set = false;
    if ((lo.set && lo.v >= limit) || (hi.set && hi.v <= -limit))
        return sw_err_set(err, SW_E_UNSUPPORTED,
                          "%s: bounds beyond %s are not supported (numbers are generated with at "
                          "most %d integer digits)",
                          what, integer ? "1e16" : "1e15", integer ? INT_DIGITS : NUM_INT_DIGITS);
    if (integer) {
        /* exact integer bounds, inclusive */
        if ((lo.set && fabs(lo.v) >= two53) || (hi.set && fabs(hi.v) >= two53))
            return sw_err_set(err, SW_E_UNSUPPORTED,
                              "%s: integer bounds of 2^53 or more are not supported (not exact as doubles)",
                              what);
        if (lo.set) {
            double c = ceil(lo.v);
            if (lo.strict && c == lo.v) c += 1;
            lo.v = c;
            lo.strict = false;
        }
        if (hi.set) {
            double f = floor(hi.v);
            if (hi.strict && f == hi.v) f -= 1;
            hi.v = f;
            hi.strict = false;
        }
    }
    bool bounded = lo.set || hi.set;
    sw_arena *a = sw_arena_create();
    if (!a) return sw_err_set(err, SW_E_NOMEM, "%s: out of memory", what);
    sw_status st = SW_OK;
    sw_dfa pos = {0}, neg = {0}, all = {0};
    /* non-negative values: magnitude = value */
    bool pos_empty = hi.set && (hi.v < 0 || (hi.v == 0 && hi.strict));
    if (!pos_empty) {
        mag_bound ml = {false, false, 0}, mh = {false, false, 0};
        if (lo.set && lo.v >= 0) ml = (mag_bound){true, lo.strict, lo.v};
        if (hi.set) mh = (mag_bound){true, hi.strict, hi.v};
        if ((st = mag_range(a, integer, ml, mh, &pos, what, err)) != SW_OK) goto done;
    }
    /* negative values: '-' and a magnitude > 0 */
    bool neg_empty = lo.set && lo.v >= 0;
    if (!neg_empty) {
        mag_bound ml = {true, true, 0}, mh = {false, false, 0};
        if (hi.set && hi.v < 0) ml = (mag_bound){true, hi.strict, -hi.v};
        if (lo.set) mh = (mag_bound){true, lo.strict, -lo.v};
        if (integer && ml.strict) ml = (mag_bound){true, false, ml.v + 1}; /* m > 0: m >= 1 */
        if ((st = mag_range(a, integer, ml, mh, &neg, what, err)) != SW_OK) goto done;
    }
    sw_rx *x = sw_rx_alt2(a, sw_rx_from_dfa(a, &pos), sw_rx_cat2(a, sw_rx_str(a, "-"), sw_rx_from_dfa(a, &neg)));
    if (!x) {
        st = sw_err_set(err, SW_E_NOMEM, "%s: out of memory", what);
        goto done;
    }
    if ((st = sw_dfa_build(x, SW_GRAMMAR_MAX_DFA_STATES, &all, what, err)) != SW_OK) goto done;
    st = apply_shape(a, integer, bounded, &all, out, what, err);
done:
    sw_dfa_free(&pos);
    sw_dfa_free(&neg);
    sw_dfa_free(&all);
    sw_arena_free(a);
    return st;
}

/* Unbounded numbers: -?(0|[1-9][0-9]{0,15})(.[0-9]{1,16})?([eE][+-]?[0-9]{1,3})? */
sw_rx *sw_schema_number_any(sw_arena *a, bool integer) {
    sw_rx *sign = sw_rx_opt(a, sw_rx_str(a, "-"));
    sw_rx *i = sw_rx_alt2(a, sw_rx_str(a, "0"), sw_rx_cat2(a, digit(a, 1, 9), digits(a, 0, INT_DIGITS - 1)));
    if (integer) return sw_rx_cat2(a, sign, i);
    sw_rx *frac = sw_rx_opt(a, sw_rx_cat2(a, sw_rx_str(a, "."), digits(a, 1, 16)));
    sw_rx *e = sw_rx_opt(a, sw_rx_cat3(a, sw_rx_byteset(a, (uint8_t[32]){[12] = 0x20, [8] = 0x20}),
                                       sw_rx_opt(a, sw_rx_byteset(a, (uint8_t[32]){[5] = 0x28})),
                                       digits(a, 1, 3)));
    return sw_rx_cat(a, (sw_rx *[]){sign, i, frac, e}, 4);
}
