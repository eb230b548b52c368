/* schema_check.h — an independent JSON Schema validator for tests and
 * fuzzers (the reference the grammar compiler's outputs are checked against). */
#ifndef SW_TEST_SCHEMA_CHECK_H
#define SW_TEST_SCHEMA_CHECK_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

/* Whether instance validates against schema (both borrowed; $ref resolve
 * within schema). On failure why (if given) says what failed. */
bool sw_test_schema_valid(const cJSON *schema, const cJSON *instance, char *why, size_t why_len);

#endif
