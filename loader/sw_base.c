/* sw_base.c — status strings, error formatting, time and logging. */
#define _POSIX_C_SOURCE 200809L
#include "sw_base.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *sw_status_str(sw_status s) {
    switch (s) {
    case SW_OK: return "ok";
    case SW_E_INVALID_ARG: return "invalid argument";
    case SW_E_IO: return "i/o error";
    case SW_E_FORMAT: return "format error";
    case SW_E_UNSUPPORTED: return "unsupported";
    case SW_E_NOMEM: return "out of memory";
    case SW_E_NOT_FOUND: return "not found";
    case SW_E_RANGE: return "out of range";
    case SW_E_BACKEND: return "backend error";
    case SW_E_CANCELLED: return "cancelled";
    case SW_E_BUSY: return "busy";
    case SW_E_INTERNAL: return "internal error";
    }
    return "unknown status";
}

sw_status sw_err_set(sw_err *err, sw_status s, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return s;
}

sw_status sw_err_wrap(sw_err *err, sw_status s, const char *fmt, ...) {
    if (err) {
        char prefix[SW_ERR_LEN], old[SW_ERR_LEN];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(prefix, sizeof prefix, fmt, ap);
        va_end(ap);
        memcpy(old, err->msg, sizeof old);
        old[sizeof old - 1] = '\0';
        /* prefix, ": ", old — truncated to the buffer, always NUL-terminated */
        size_t n = strlen(prefix);
        memcpy(err->msg, prefix, n + 1);
        if (n + 2 < sizeof err->msg) {
            memcpy(err->msg + n, ": ", 3);
            n += 2;
            size_t m = strlen(old);
            if (m > sizeof err->msg - 1 - n) m = sizeof err->msg - 1 - n;
            memcpy(err->msg + n, old, m);
            err->msg[n + m] = '\0';
        }
    }
    return s;
}

double sw_time_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void sw_sleep_s(double s) {
    if (!(s > 0)) return;
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int g_log_level = -1;

void sw_log_set_level(sw_log_level lvl) { g_log_level = (int)lvl; }

static int log_level(void) {
    if (g_log_level < 0) {
        const char *e = getenv("SW_LOG");
        g_log_level = SW_LOG_INFO;
        if (e) {
            if (!strcmp(e, "error")) g_log_level = SW_LOG_ERROR;
            else if (!strcmp(e, "warn")) g_log_level = SW_LOG_WARN;
            else if (!strcmp(e, "debug")) g_log_level = SW_LOG_DEBUG;
        }
    }
    return g_log_level;
}

void sw_log(sw_log_level lvl, const char *fmt, ...) {
    if ((int)lvl > log_level()) return;
    static const char *names[] = {"error", "warn", "info", "debug"};
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[%s] ", names[lvl]);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- UTF-8 ---- */

size_t sw_utf8_decode(const char *str, size_t n, uint32_t *cp) {
    const unsigned char *s = (const unsigned char *)str;
    if (n == 0) return 0;
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        v = c & 0x1F;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        v = c & 0x0F;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        v = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return len;
}

size_t sw_utf8_sanitize_into(const char *text, size_t len, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t k = sw_utf8_decode(text + i, len - i, &cp);
        if (k == 0) {
            /* one replacement character per bad byte, as llama.cpp's decoder */
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i += 1;
        } else {
            memcpy(out + o, text + i, k);
            o += k;
            i += k;
        }
    }
    return o;
}

sw_status sw_utf8_sanitize(const char *text, size_t len, char **out, size_t *out_len,
                               sw_err *err) {
    /* Worst case: every byte becomes the 3-byte U+FFFD. */
    if (len > (SIZE_MAX - 1) / 3)
        return sw_err_set(err, SW_E_RANGE, "UTF-8 text of %zu bytes too large", len);
    char *buf = malloc(len * 3 + 1);
    if (!buf) return sw_err_set(err, SW_E_NOMEM, "out of memory sanitizing UTF-8 (%zu bytes)", len);
    size_t o = sw_utf8_sanitize_into(text, len, buf);
    buf[o] = '\0';
    *out = buf;
    *out_len = o;
    return SW_OK;
}
