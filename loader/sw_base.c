/* sw_base.c — status strings, error formatting, time and logging. */
#define _POSIX_C_SOURCE 200809L
#include "sw_base.h"

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
