/* test_sched_stop.c — the stop-string matcher on hand-made piece streams:
 * nothing of a stop string is ever emitted, text before it comes out exactly
 * once, partial matches are held back and released when they turn out not to
 * be a stop, and a stop split over many pieces is still found. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stop.h"

/* Feed pieces one by one; collect what is emitted per piece into out[i]
 * (NUL-separated copies) and the concatenation into all. Returns the match
 * index (or -1) and the piece at which it happened. */
typedef struct feed_result {
    char all[1024];
    char per[32][128];
    int32_t match;
    int at_piece;
    char flushed[256];
} feed_result;

static void feed(sw_stop *s, const char *const *pieces, int n, feed_result *r) {
    memset(r, 0, sizeof *r);
    r->match = -1;
    r->at_piece = -1;
    for (int i = 0; i < n; i++) {
        const char *emit;
        size_t len;
        int32_t m = sw_stop_push(s, pieces[i], strlen(pieces[i]), &emit, &len);
        assert_true(m >= -1);
        assert_int_equal(strlen(emit), len);
        snprintf(r->per[i], sizeof r->per[i], "%s", emit);
        strncat(r->all, emit, sizeof r->all - strlen(r->all) - 1);
        if (m >= 0 && r->match < 0) {
            r->match = m;
            r->at_piece = i;
        }
    }
    const char *emit;
    size_t len;
    sw_stop_flush(s, &emit, &len);
    snprintf(r->flushed, sizeof r->flushed, "%s", emit);
}

static void test_no_stops_passes_through(void **state) {
    (void)state;
    sw_stop *s;
    assert_int_equal(sw_stop_create(NULL, 0, &s, NULL), SW_OK);
    const char *p[] = {"Hello", " ", "world"};
    feed_result r;
    feed(s, p, 3, &r);
    assert_string_equal(r.per[0], "Hello");
    assert_string_equal(r.per[2], "world");
    assert_string_equal(r.all, "Hello world");
    assert_int_equal(r.match, -1);
    assert_string_equal(r.flushed, "");
    sw_stop_free(s);
}

static void test_stop_across_pieces(void **state) {
    (void)state;
    const char *stops[] = {"o Wor"};
    sw_stop *s;
    assert_int_equal(sw_stop_create(stops, 1, &s, NULL), SW_OK);
    const char *p[] = {"Hel", "lo W", "or", "ld", "!"};
    feed_result r;
    feed(s, p, 5, &r);
    assert_string_equal(r.per[0], "Hel");
    assert_string_equal(r.per[1], "l");  /* "o W" could start the stop: held */
    assert_string_equal(r.per[2], "");   /* match: nothing more */
    assert_string_equal(r.per[3], "");   /* finished: input ignored */
    assert_string_equal(r.all, "Hell");
    assert_int_equal(r.match, 0);
    assert_int_equal(r.at_piece, 2);
    assert_string_equal(r.flushed, "");
    assert_string_equal(sw_stop_string(s, 0), "o Wor");
    sw_stop_free(s);
}

static void test_partial_released(void **state) {
    (void)state;
    const char *stops[] = {"STOP"};
    sw_stop *s;
    assert_int_equal(sw_stop_create(stops, 1, &s, NULL), SW_OK);
    const char *p[] = {"aS", "T", "Ox", "yS"};
    feed_result r;
    feed(s, p, 4, &r);
    assert_string_equal(r.per[0], "a");
    assert_string_equal(r.per[1], "");
    assert_string_equal(r.per[2], "STOx"); /* not a stop after all: released */
    assert_string_equal(r.per[3], "y");
    assert_int_equal(r.match, -1);
    assert_string_equal(r.flushed, "S"); /* end of generation releases the rest */
    assert_int_equal(sw_stop_held(s), 0);
    sw_stop_free(s);
}

static void test_earliest_of_several(void **state) {
    (void)state;
    /* index 1 is empty and ignored; indices are the caller's */
    const char *stops[] = {"world", "", "lo"};
    sw_stop *s;
    assert_int_equal(sw_stop_create(stops, 3, &s, NULL), SW_OK);
    const char *p[] = {"hello world"};
    feed_result r;
    feed(s, p, 1, &r);
    assert_int_equal(r.match, 2);
    assert_string_equal(r.all, "hel");
    sw_stop_free(s);
}

static void test_overlapping_prefix(void **state) {
    (void)state;
    /* "aab" inside "aaab": the held suffix must restart correctly */
    const char *stops[] = {"aab"};
    sw_stop *s;
    assert_int_equal(sw_stop_create(stops, 1, &s, NULL), SW_OK);
    const char *p[] = {"x", "a", "a", "a", "b", "c"};
    feed_result r;
    feed(s, p, 6, &r);
    assert_int_equal(r.match, 0);
    assert_int_equal(r.at_piece, 4);
    assert_string_equal(r.all, "xa");
    sw_stop_free(s);
}

static void test_utf8_stop(void **state) {
    (void)state;
    const char *stops[] = {"\xc3\xa9t\xc3\xa9"}; /* "été" */
    sw_stop *s;
    assert_int_equal(sw_stop_create(stops, 1, &s, NULL), SW_OK);
    const char *p[] = {"l'\xc3\xa9", "t", "\xc3\xa9!"};
    feed_result r;
    feed(s, p, 3, &r);
    assert_string_equal(r.per[0], "l'");
    assert_int_equal(r.match, 0);
    assert_string_equal(r.all, "l'");
    sw_stop_free(s);
}

static void test_bad_args(void **state) {
    (void)state;
    sw_stop *s;
    sw_err err = {{0}};
    const char *stops[] = {"a", NULL};
    assert_int_equal(sw_stop_create(stops, 2, &s, &err), SW_E_INVALID_ARG);
    assert_null(s);
    assert_non_null(strstr(err.msg, "1"));
    assert_int_equal(sw_stop_create(NULL, 2, &s, &err), SW_E_INVALID_ARG);
    sw_stop_free(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_stops_passes_through),
        cmocka_unit_test(test_stop_across_pieces),
        cmocka_unit_test(test_partial_released),
        cmocka_unit_test(test_earliest_of_several),
        cmocka_unit_test(test_overlapping_prefix),
        cmocka_unit_test(test_utf8_stop),
        cmocka_unit_test(test_bad_args),
    };
    return cmocka_run_group_tests_name("sched_stop", tests, NULL, NULL);
}
