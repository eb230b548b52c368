/* pii.h — detectors for personal data that pin a request to local compute:
 * e-mail addresses, phone numbers (international "+CC ..." and North American
 * forms), payment card numbers, IBANs and US social security numbers.
 *
 * Each detector is a PCRE2 pattern (JIT-compiled once) that finds candidates,
 * followed by a validation that removes most false positives: the Luhn check
 * and an issuer prefix for cards, the per-country length and the ISO 13616
 * mod-97 check for IBANs, the SSA's never-issued ranges for SSNs, the digit
 * count for phone numbers. The detectors err on the side of privacy only where
 * the shape is unambiguous: a bare 10-digit run is not taken for a phone number,
 * but "(415) 555-2671" is.
 *
 * Threading: a sw_pii is immutable after creation; any number of threads may
 * scan with the same one at once (match data is per call). */
#ifndef SW_PII_H
#define SW_PII_H

#include "sw_base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sw_pii_kind {
    SW_PII_EMAIL = 1u << 0,
    SW_PII_PHONE = 1u << 1,
    SW_PII_CARD = 1u << 2,
    SW_PII_IBAN = 1u << 3,
    SW_PII_SSN = 1u << 4,
} sw_pii_kind;

#define SW_PII_ALL (SW_PII_EMAIL | SW_PII_PHONE | SW_PII_CARD | SW_PII_IBAN | SW_PII_SSN)

/* "email", "phone", "card", "iban", "ssn"; "?" for anything else. */
const char *sw_pii_kind_str(sw_pii_kind k);
/* Parse one of the names above into *kind. SW_E_INVALID_ARG names the value. */
sw_status sw_pii_kind_parse(const char *name, sw_pii_kind *kind, sw_err *err);
/* Render a set of kinds as "card,email" into buf (always NUL-terminated). */
void sw_pii_kinds_str(unsigned kinds, char *buf, size_t cap);

typedef struct sw_pii_match {
    sw_pii_kind kind;
    size_t offset, len; /* bytes within the scanned text */
} sw_pii_match;

typedef struct sw_pii sw_pii;

/* Compile the detectors in the `kinds` mask (0 is valid: scans find nothing). */
sw_status sw_pii_create(unsigned kinds, sw_pii **out, sw_err *err);
void sw_pii_free(sw_pii *p); /* NULL is a no-op */
unsigned sw_pii_kinds(const sw_pii *p);

/* Scan text[len] (borrowed; need not be NUL-terminated; invalid UTF-8 is
 * scanned as bytes). *found receives the mask of kinds present; when stop_early
 * is true the scan stops at the first validated match (the router needs only
 * "any"), else every detector runs over the whole text. first (optional)
 * receives the earliest match found. SW_E_INTERNAL only when PCRE2 itself
 * fails (e.g. its match limit). */
sw_status sw_pii_scan(const sw_pii *p, const char *text, size_t len, bool stop_early,
                      unsigned *found, sw_pii_match *first, sw_err *err);

/* Every validated match in text[len] (borrowed), sorted by offset, without
 * overlaps (where two detectors claim overlapping bytes, the span that starts
 * first wins, then the longer one): what redaction replaces. *out is
 * malloc'd (caller frees; NULL when *n is 0). SW_E_NOMEM, or SW_E_INTERNAL
 * when PCRE2 fails. */
sw_status sw_pii_find_all(const sw_pii *p, const char *text, size_t len, sw_pii_match **out,
                          size_t *n, sw_err *err);

/* The validations, exposed for tests. Inputs may contain spaces and dashes. */
bool sw_pii_luhn_ok(const char *s, size_t len);
bool sw_pii_iban_ok(const char *s, size_t len);
bool sw_pii_ssn_ok(const char *s, size_t len); /* "ddd-dd-dddd" */

#ifdef __cplusplus
}
#endif
#endif
