/* jinja.h — a Jinja template interpreter that renders chat templates exactly as
 * Python's jinja2 does in the configuration Hugging Face transformers uses:
 * ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) with the
 * loop-controls extension and transformers' {% generation %} tag, its tojson
 * (ensure_ascii=False, indent, separators, sort_keys), raise_exception and
 * strftime_now. Values follow Python's semantics (truthiness, str()/repr(),
 * slicing, string methods); Undefined behaves like jinja2's default Undefined.
 *
 * Templates and variables come from untrusted model files and requests, so a
 * render is bounded in steps, call depth, output size and memory: a hostile
 * template ends in an error, never a hang or a crash. */
#ifndef SW_JINJA_H
#define SW_JINJA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sw_base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sw_jinja_tmpl sw_jinja_tmpl;
typedef struct sw_jinja_vars sw_jinja_vars;

/* Parse a template (len bytes of UTF-8, need not be NUL-terminated). A syntax
 * error is SW_E_FORMAT with "line N: message" as jinja2 words it. */
sw_status sw_jinja_parse(const char *src, size_t len, sw_jinja_tmpl **out, sw_err *err);
void sw_jinja_free(sw_jinja_tmpl *t);

/* The variables of a render. Values are copied in; names are copied. Setting a
 * name twice replaces its value. */
sw_status sw_jinja_vars_create(sw_jinja_vars **out, sw_err *err);
void sw_jinja_vars_free(sw_jinja_vars *v);
/* name = json.loads(text): Python's json (1 and 1.0 stay int and float). */
sw_status sw_jinja_vars_set_json(sw_jinja_vars *v, const char *name, const char *json, size_t len,
                                 sw_err *err);
struct cJSON;
/* name = the cJSON value (numbers that are whole and within 2^53 become ints). */
sw_status sw_jinja_vars_set_cjson(sw_jinja_vars *v, const char *name, const struct cJSON *j,
                                  sw_err *err);
sw_status sw_jinja_vars_set_str(sw_jinja_vars *v, const char *name, const char *s, sw_err *err);
sw_status sw_jinja_vars_set_bool(sw_jinja_vars *v, const char *name, bool b, sw_err *err);
sw_status sw_jinja_vars_set_none(sw_jinja_vars *v, const char *name, sw_err *err);
/* Each member of a JSON object (text, or cJSON) becomes a variable, replacing
 * one of the same name; a member named in refuse (NULL-terminated list, may be
 * NULL) is SW_E_INVALID_ARG, as Python refuses a keyword given twice. */
sw_status sw_jinja_vars_update_json(sw_jinja_vars *v, const char *json, size_t len,
                                    const char *const *refuse, sw_err *err);
sw_status sw_jinja_vars_update_cjson(sw_jinja_vars *v, const struct cJSON *obj,
                                     const char *const *refuse, sw_err *err);
/* True when name has been set. */
bool sw_jinja_vars_has(const sw_jinja_vars *v, const char *name);

/* Bounds of one render; a zero field takes the default in brackets. */
typedef struct sw_jinja_limits {
    uint64_t max_steps;   /* evaluation steps, ~ nodes + items touched [50,000,000] */
    size_t max_output;    /* bytes of output, and of any captured block [32 MiB] */
    size_t max_memory;    /* bytes allocated by the render [256 MiB] */
    int max_depth;        /* nested macro / call / filter invocations [128] */
} sw_jinja_limits;

/* Render t with vars (may be NULL) into *out (malloc'd, NUL-terminated; its
 * length in *out_len when non-NULL). raise_exception(msg) in the template is
 * SW_E_INVALID_ARG with msg as the message; errors of the kind Python raises
 * (undefined attribute, type errors, security) are SW_E_INVALID_ARG too;
 * exceeding a limit is SW_E_RANGE. */
sw_status sw_jinja_render(const sw_jinja_tmpl *t, const sw_jinja_vars *vars,
                          const sw_jinja_limits *lim, char **out, size_t *out_len, sw_err *err);

#ifdef __cplusplus
}
#endif
#endif
