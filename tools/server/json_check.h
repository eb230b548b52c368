/* json_check.h — checking request bodies field by field, shared by every
 * wire format's parser: the body as one strict JSON object, and optional
 * fields of a given type and range. Each failure fills an srv_error (400,
 * the parameter named as the parser spells it: "messages[2].role",
 * "messages.2.role") and returns false/NULL. */
#ifndef SW_SERVER_JSON_CHECK_H
#define SW_SERVER_JSON_CHECK_H

#include <cjson/cJSON.h>

#include "req.h"

/* The body as a JSON object: strict UTF-8, no NUL bytes, nothing after the
 * value. NULL and e filled on failure; the caller deletes the tree. */
cJSON *srv_json_parse_object(const char *body, size_t len, srv_error *e);

/* What every request parser starts with: r zeroed for wire with the default
 * sampling, the body parsed into r->raw (a strict JSON object), and the
 * optional "model" string into r->model. false with e filled and r freed. */
bool srv_json_begin_request(srv_request *r, srv_wire wire, const char *body, size_t len,
                            srv_error *e);

/* The name of v's JSON type ("string", "array", ...). */
const char *srv_json_type_name(const cJSON *v);
/* "'param' must be WANT, got TYPE" (400 invalid_type); always false. */
bool srv_json_type_error(srv_error *e, const char *param, const char *want, const cJSON *got);
/* 500 out of memory; always false. */
bool srv_json_nomem(srv_error *e);

/* Field lookup: NULL when absent or JSON null (null means "the default"). */
const cJSON *srv_json_field(const cJSON *obj, const char *name);
/* v is a number holding an integer in [lo, hi]. */
bool srv_json_int(const cJSON *v, const char *name, double lo, double hi, double *out,
                  srv_error *e);
/* Optional fields: untouched when absent. Numbers in [lo, hi] (lo_open: > lo). */
bool srv_json_opt_num(const cJSON *obj, const char *name, double lo, double hi, bool lo_open,
                      float *out, srv_error *e);
bool srv_json_opt_int(const cJSON *obj, const char *name, double lo, double hi, int32_t *out,
                      bool *given, srv_error *e);
bool srv_json_opt_bool(const cJSON *obj, const char *name, bool *out, srv_error *e);

#endif
