/* sw_base.h — status codes, the error buffer, and small helpers shared by every
 * module of libspillway. Every fallible function returns sw_status and, when it
 * fails, writes a message naming the file, field or value at fault into the
 * caller's sw_err (which may be NULL when the caller does not care). */
#ifndef SW_BASE_H
#define SW_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sw_status {
    SW_OK = 0,
    SW_E_INVALID_ARG,  /* caller passed something unusable (flag, parameter) */
    SW_E_IO,           /* open/read/write/mmap failed */
    SW_E_FORMAT,       /* malformed input file or data */
    SW_E_UNSUPPORTED,  /* valid but not supported (version, type, architecture) */
    SW_E_NOMEM,        /* allocation failed (host or device) */
    SW_E_NOT_FOUND,    /* key, tensor, template, device not present */
    SW_E_RANGE,        /* value out of range, e.g. prompt longer than the context */
    SW_E_BACKEND,      /* device / driver error */
    SW_E_CANCELLED,    /* work cancelled by the caller */
    SW_E_BUSY,         /* queue full, try later */
    SW_E_INTERNAL,     /* a bug: an invariant did not hold */
} sw_status;

#define SW_ERR_LEN 512

typedef struct sw_err {
    char msg[SW_ERR_LEN];
} sw_err;

/* Short name of a status ("format error", ...). Never NULL. */
const char *sw_status_str(sw_status s);

/* Format a message into err (if non-NULL) and return s, so that callers can write
 * `return sw_err_set(err, SW_E_FORMAT, "%s: tensor '%s' ...", path, name);` */
sw_status sw_err_set(sw_err *err, sw_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Prepend context to an existing message: "ctx: old message". Returns s. */
sw_status sw_err_wrap(sw_err *err, sw_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Overflow-checked size arithmetic: return false on overflow. */
static inline bool sw_add_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_add_overflow(a, b, out);
}
static inline bool sw_mul_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}

/* Monotonic time in seconds. */
double sw_time_s(void);
/* Sleeps for s seconds, the whole time even when signals interrupt it (s <= 0:
 * returns at once). */
void sw_sleep_s(double s);

/* UTF-8 (strict: no overlongs, surrogates or code points past U+10FFFF).
 * sw_utf8_decode: the length (1-4) of the valid sequence at s[0..n) and its code
 * point, or 0 when the bytes there are not valid UTF-8 (or n is 0). */
size_t sw_utf8_decode(const char *s, size_t n, uint32_t *cp);
/* A valid UTF-8 copy of text[0..len): each byte that does not start a valid
 * sequence becomes U+FFFD (as llama.cpp's decoder does). *out is malloc'd and
 * NUL-terminated; *out_len excludes the NUL. */
sw_status sw_utf8_sanitize(const char *text, size_t len, char **out, size_t *out_len, sw_err *err);
/* The same into out (room for 3 * len bytes, not NUL-terminated); returns the
 * bytes written. */
size_t sw_utf8_sanitize_into(const char *text, size_t len, char *out);

/* Logging to stderr, filtered by level (SW_LOG env var: error|warn|info|debug). */
typedef enum { SW_LOG_ERROR = 0, SW_LOG_WARN, SW_LOG_INFO, SW_LOG_DEBUG } sw_log_level;
void sw_log(sw_log_level lvl, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void sw_log_set_level(sw_log_level lvl);

#define SW_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SW_MAX(a, b) ((a) > (b) ? (a) : (b))

#ifdef __cplusplus
}
#endif
#endif
