/* jinja_impl.h — internals of the Jinja interpreter (loader/jinja*.c), shared
 * by its files only; the public interface is jinja.h.
 *
 * Values follow Python's object model as jinja2 sees it: one tagged jv over
 * none, bool, int, float, str (with Markup's "safe" flag), sequences (list,
 * tuple, dict views, range, one-shot iterators), dicts (insertion-ordered),
 * namespaces, loop contexts, macros, bound built-in methods and Undefined.
 * Everything a render allocates lives in one arena and is dropped at once;
 * lists and dicts never change after they are built (the immutable sandbox
 * refuses mutation), so values share structure freely. Namespaces are the one
 * mutable object and are always used by reference. */
#ifndef SW_JINJA_IMPL_H
#define SW_JINJA_IMPL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jinja.h"

/* ---- arena ----------------------------------------------------------------- */

typedef struct jchunk jchunk;
typedef struct jarena {
    jchunk *head;
    size_t used;     /* bytes handed out, including stb_ds growth we account for */
    size_t limit;    /* 0: unlimited */
    bool over;       /* limit crossed: the render stops at its next step */
    void **arrays;   /* finished stb_ds arrays (any element type) to free at the end */
    struct jdict **dicts; /* dicts whose stb_ds members to free at the end */
} jarena;

void *ja_alloc(jarena *a, size_t n);                 /* zeroed; NULL only on malloc failure */
char *ja_strndup(jarena *a, const char *s, size_t n);
void ja_free_all(jarena *a);
/* Free the stb_ds array arr (no longer growing) with the arena. */
void ja_track_array(jarena *a, void *arr);
/* Account n more bytes; false (and a->over) once the limit is crossed. */
bool ja_charge(jarena *a, size_t n);

/* ---- values ---------------------------------------------------------------- */

typedef enum {
    JV_UNDEF = 0,
    JV_NONE,
    JV_BOOL,
    JV_INT,
    JV_FLOAT,
    JV_STR,
    JV_SEQ,
    JV_DICT,
    JV_NS,
    JV_LOOP,
    JV_MACRO,
    JV_FUNC,
} jv_type;

/* Sequence flavours: they iterate alike and differ in repr, len, indexing, + and tests. */
typedef enum {
    SQ_LIST = 0,
    SQ_TUPLE,
    SQ_ITEMS,  /* dict_items */
    SQ_KEYS,   /* dict_keys */
    SQ_VALUES, /* dict_values */
    SQ_RANGE,  /* range(start, stop, step), items materialised */
    SQ_ITER,   /* a generator / iterator: truthy, no len, consumed by iteration */
} jseq_kind;

/* A growable buffer behind strings built by repeated appends (x = x ~ y): a
 * string whose bytes end where the buffer's used bytes end may be extended in
 * place; the shorter strings sharing the buffer keep reading their own prefix. */
typedef struct jsbuf {
    char *p;
    size_t used, cap;
} jsbuf;

/* Strings are read by length only: s is not NUL-terminated when it is a prefix
 * of a buffer that has grown since. */
typedef struct jstr {
    size_t len;   /* bytes */
    size_t ncp;   /* code points (invalid UTF-8 bytes count one each) */
    char *s;
    jsbuf *buf;   /* NULL: s is this string's own copy */
} jstr;

typedef struct jv jv;
typedef struct jseq jseq;
typedef struct jdict jdict;
typedef struct jloop jloop;
typedef struct jmacro jmacro;
typedef struct jfunc jfunc;
typedef struct jundef jundef;

struct jv {
    uint8_t t;    /* jv_type */
    uint8_t safe; /* JV_STR: Markup */
    union {
        bool b;
        int64_t i;
        double f;
        jstr *s;
        jseq *q;
        jdict *d; /* JV_DICT and JV_NS */
        jloop *lp;
        jmacro *m;
        jfunc *fn;
        jundef *u;
    };
};

struct jseq {
    uint8_t kind;
    size_t n;
    jv *v;           /* n items (arena) */
    int64_t r_start, r_stop, r_step; /* SQ_RANGE, for repr */
    size_t pos;      /* SQ_ITER: items already consumed */
};

typedef struct jdent {
    jv k, v;
} jdent;

typedef struct jdidx {
    uint64_t key;
    int32_t value;
} jdidx;

struct jdict {
    jdent *e;        /* stb_ds array, insertion order */
    int32_t *next;   /* stb_ds array: next entry with the same hash, -1 */
    jdidx *idx;      /* stb_ds hash map hash -> first entry; built past a few keys */
    size_t n_idx;    /* entries indexed so far */
};

typedef enum { JU_UNDEFINED = 0, JU_SECURITY } jundef_exc;

struct jundef {
    uint8_t exc;        /* jundef_exc: what using it raises */
    const char *hint;   /* full message, or NULL to build one from name/obj */
    jv name;            /* the missing name, attribute or key */
    const char *objtype;/* "dict object", ... or NULL when a variable was missing */
};

/* ---- AST --------------------------------------------------------------------- */

typedef enum {
    /* expressions */
    N_CONST = 1,
    N_NAME,
    N_GETATTR,
    N_GETITEM,
    N_SLICE,
    N_CALL,
    N_FILTER,
    N_TEST,
    N_BINOP,
    N_CONCAT,
    N_COMPARE,
    N_OPERAND,
    N_AND,
    N_OR,
    N_NOT,
    N_NEG,
    N_POS,
    N_CONDEXPR,
    N_LIST,
    N_TUPLE,
    N_DICT,
    N_PAIR,
    N_NSREF,
    /* statements */
    N_DATA,
    N_PRINT,
    N_IF,
    N_FOR,
    N_SET,
    N_SETBLOCK,
    N_MACRO,
    N_CALLBLOCK,
    N_FILTERBLOCK,
    N_WITH,
    N_BREAK,
    N_CONTINUE,
    N_GENERATION,
    N_RAISE, /* a construct we parse but refuse when run (include, import, ...) */
} jnode_kind;

typedef enum {
    OP_ADD = 1, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW,
    OP_EQ, OP_NE, OP_LT, OP_LTEQ, OP_GT, OP_GTEQ, OP_IN, OP_NOTIN,
} jop;

typedef struct jname {
    const char *s;
    size_t n;
} jname;

typedef struct jnode jnode;
struct jnode {
    uint8_t kind;
    uint8_t op;
    uint8_t flags;
    uint16_t depth;   /* height of the subtree: bounds the evaluator's recursion */
    int line;
    int fid;          /* N_FILTER / N_TEST: builtin id, -1 unknown (raises when run) */
    jname name;       /* NAME, GETATTR attr, FILTER/TEST, MACRO, NSREF namespace, RAISE msg */
    jname attr;       /* NSREF attribute */
    jnode *a, *b, *c, *d;
    jnode **list;     /* stb_ds arrays */
    jnode **list2;
    jnode **list3;
    jname *names;     /* keyword / parameter names (stb_ds), parallel to list2 */
    jv value;         /* N_CONST, N_DATA */
};

/* N_FOR flags */
#define JF_RECURSIVE 1
#define JF_NOCLOSURE 2 /* the body defines no macro or call block: its scope can be reused */
/* N_MACRO / N_CALLBLOCK flags: the body refers to these names */
#define JF_CALLER 1
#define JF_VARARGS 2
#define JF_KWARGS 4

struct sw_jinja_tmpl {
    jarena arena;   /* nodes, names, constants */
    jnode **body;
    char *source;   /* normalised source */
};

/* ---- render context ---------------------------------------------------------- */

/* A scope: a few variables inline (a loop iteration holds "loop" and its
 * target), more in a dict. Names are borrowed: the template's source, or
 * static strings. */
#define JSCOPE_INLINE 4
typedef struct jscope jscope;
struct jscope {
    jscope *parent;
    jdict *vars;    /* str -> jv, past the inline slots (and the globals) */
    uint32_t n;
    jname names[JSCOPE_INLINE];
    jv vals[JSCOPE_INLINE];
};

struct jmacro {
    const jnode *def;   /* N_MACRO or N_CALLBLOCK (parameters, defaults, body, flags) */
    jscope *closure;    /* the scope it was defined in */
    jname name;
};

struct jloop {
    const jv *items;    /* the (filtered) items */
    size_t n, i;        /* length, index0 */
    int depth0;
    const jnode *node;  /* the N_FOR, for loop(...) in recursive loops */
    jscope *scope;      /* where the loop runs */
    jv last_changed;
    bool have_changed;
};

typedef struct jbuf {
    char *p;
    size_t len, cap;
} jbuf;

typedef struct jctx {
    jarena *a;
    const sw_jinja_limits *lim;
    uint64_t steps;
    int depth;
    bool failed;
    sw_status st;
    char msg[SW_ERR_LEN];
    jbuf *out;                /* where output goes now */
    jscope *globals;          /* render variables over the built-ins */
    jv filter_input;          /* the body text inside {% filter %} / {% set x | f %} */
    bool have_filter_input;
    int frames;               /* evaluator recursion, bounded to protect the C stack */
    bool raised;              /* the failure is the template's own raise_exception() */
} jctx;

/* Run a template body (jinja_eval.c). */
bool jx_run(jctx *c, jscope *root, jnode **body);

/* room for n more bytes within the memory bound */
bool jx_room(jctx *c, size_t n);

/* Fail the render: format the message (first failure wins). Returns false. */
bool jx_fail(jctx *c, sw_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Count work; fails on the step or memory budget. */
bool jx_step(jctx *c, uint64_t n);
/* Raise what using an Undefined raises. */
bool jx_undef_fail(jctx *c, const jv *u);
void jx_undef_message(const jv *u, char *buf, size_t cap);

/* ---- value helpers (jinja_value.c) -------------------------------------------- */

static inline jv jv_undef(void) { jv v = {0}; return v; }
static inline jv jv_none(void) { jv v = {0}; v.t = JV_NONE; return v; }
static inline jv jv_bool(bool b) { jv v = {0}; v.t = JV_BOOL; v.b = b; return v; }
static inline jv jv_int(int64_t i) { jv v = {0}; v.t = JV_INT; v.i = i; return v; }
static inline jv jv_float(double f) { jv v = {0}; v.t = JV_FLOAT; v.f = f; return v; }

jstr *jstr_new(jarena *a, const char *s, size_t n);   /* NULL on OOM */
bool jv_str(jctx *c, const char *s, size_t n, jv *out);
bool jv_strz(jctx *c, const char *s, jv *out);
jv jv_from_jstr(jstr *s, bool safe);
jv jv_undef_name(jctx *c, const char *name, size_t n);
jv jv_undef_attr(jctx *c, const jv *obj, const jv *name, jundef_exc exc, const char *hint);
jv jv_undef_hint(jctx *c, const char *hint);

jseq *jseq_new(jctx *c, uint8_t kind, size_t n);      /* items zeroed (Undefined) */
bool jv_seq(jctx *c, uint8_t kind, const jv *items, size_t n, jv *out);

jdict *jdict_new(jctx *c);
/* Lookup: NULL when missing. Keys compare with Python's == on hashable values. */
jv *jdict_get(const jdict *d, const jv *key);
jv *jdict_get_str(const jdict *d, const char *k, size_t n);
bool jdict_set(jctx *c, jdict *d, const jv *key, const jv *val);
size_t jdict_len(const jdict *d);
/* Same helpers without a render (building inputs): arena only, no budget. */
jdict *jdict_new_a(jarena *a);
bool jdict_set_a(jarena *a, jdict *d, const jv *key, const jv *val);

const char *jv_type_name(const jv *v);   /* Python's type(x).__name__ */
bool jv_truthy(const jv *v);
bool jv_hashable(const jv *v);
/* Python ==. Fails only on budget (deep structures). */
bool jv_eq(jctx *c, const jv *a, const jv *b, bool *eq);
/* Python <: *cmp < 0, 0, > 0; TypeError for unorderable types. */
bool jv_cmp(jctx *c, const jv *a, const jv *b, int *cmp, const char *opname);
/* len(); TypeError for objects without one. */
bool jv_len(jctx *c, const jv *v, size_t *n);
/* Iterate: items of lists/tuples/views/ranges, dict keys, characters of a string,
 * nothing for Undefined; consumes one-shot iterators. *items may point into v. */
bool jv_iter(jctx *c, const jv *v, const jv **items, size_t *n, jv **scratch);

/* str() and repr() appended to a buffer. */
bool jv_str_to(jctx *c, jbuf *b, const jv *v);
bool jv_repr_to(jctx *c, jbuf *b, const jv *v, int depth);
bool jv_to_str(jctx *c, const jv *v, jv *out); /* str(v) as a value; keeps Markup */
void jfloat_repr(double f, char *buf, size_t cap); /* Python repr(float) */

/* ---- output buffers ------------------------------------------------------------- */

bool jb_put(jctx *c, jbuf *b, const char *s, size_t n);
static inline bool jb_puts(jctx *c, jbuf *b, const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    return jb_put(c, b, s, n);
}
bool jb_putc(jctx *c, jbuf *b, char ch);
bool jb_printf(jctx *c, jbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* The buffer's text as a value (copied into the arena). */
bool jb_take(jctx *c, jbuf *b, jv *out);

/* ---- UTF-8 / Unicode (jinja_str.c) ------------------------------------------------- */

/* Decode one code point at s[i..n); invalid bytes decode to themselves (0x80..0xFF
 * as a "byte" code point) with *len 1. */
uint32_t ju_decode(const char *s, size_t n, size_t i, size_t *len);
size_t ju_encode(uint32_t cp, char *out);
size_t ju_count(const char *s, size_t n);
int ju_hexval(char ch); /* 0..15, -1 for a non-hex character */
bool ju_isspace(uint32_t cp); /* Python str.isspace / re \s */
bool ju_isprintable(uint32_t cp); /* Python str.isprintable for one code point */
bool ju_is_ident_start(uint32_t cp); /* non-ASCII identifier characters */
bool ju_is_ident_cont(uint32_t cp);
/* byte offset of code point index k (k <= ncp) */
size_t ju_offset(const jstr *s, size_t k);

/* ---- strings: Python str methods and formatting (jinja_str.c) ---------------------- */

typedef struct jargs {
    const jv *pos;
    size_t npos;
    const jname *kwn;   /* keyword names */
    const jv *kwv;
    size_t nkw;
} jargs;

/* Call a str method by name; *found false when there is none. */
bool jstr_method(jctx *c, const jv *self, const char *name, size_t nlen, const jargs *a,
                 jv *out);
bool jstr_has_method(const char *name, size_t nlen);
bool jstr_percent(jctx *c, const jv *fmt, const jv *args, jv *out);  /* fmt % args */
/* fmt.format(*a) or fmt.format_map(mapping) (one of a / mapping) */
bool jstr_format(jctx *c, const jv *fmt, const jargs *a, const jv *mapping, jv *out);
bool jstr_escape(jctx *c, const jv *v, jv *out);                     /* markupsafe.escape */
bool jstr_concat(jctx *c, const jv *a, const jv *b, jv *out);        /* a + b on strings */
/* a's text followed by b bytes, amortised O(b) when a is the latest view of a buffer */
bool jstr_append(jctx *c, const jstr *a, const char *b, size_t bn, bool safe, jv *out);
bool jstr_upper(jctx *c, const jv *s, jv *out);
bool jstr_lower(jctx *c, const jv *s, jv *out);
bool jstr_title_filter(jctx *c, const jv *s, jv *out);
bool jstr_capitalize(jctx *c, const jv *s, jv *out);
bool jstr_strip(jctx *c, const jv *s, const jv *chars, int which, jv *out); /* 1 l, 2 r, 3 both */
bool jstr_splitlines(jctx *c, const jv *s, bool keepends, jv *out);
bool jstr_replace(jctx *c, const jv *s, const jv *old, const jv *new_, int64_t count, jv *out);
bool jstr_slice(jctx *c, const jv *s, int64_t start, int64_t stop, int64_t step, jv *out);
bool jstr_index(jctx *c, const jv *s, int64_t i, jv *out, bool *found);
bool jstr_contains(jctx *c, const jv *hay, const jv *needle, bool *in);
bool jstr_repeat(jctx *c, const jv *s, int64_t n, jv *out);
bool jstr_islower(const jv *s);
bool jstr_isupper(const jv *s);

/* ---- JSON (jinja_json.c) ---------------------------------------------------------------- */

/* Python json.loads into values allocated in a. */
sw_status jjson_parse(jarena *a, const char *s, size_t n, jv *out, sw_err *err);
struct cJSON;
sw_status jjson_from_cjson(jarena *a, const struct cJSON *j, jv *out, sw_err *err);
typedef struct jdump_opts {
    bool ensure_ascii;
    bool sort_keys;
    const char *indent;    /* NULL: compact (one line) */
    size_t indent_len;
    const char *item_sep, *key_sep;
    size_t item_sep_len, key_sep_len;
} jdump_opts;
/* json.dumps(v, ...) appended to b. */
bool jjson_dump(jctx *c, jbuf *b, const jv *v, const jdump_opts *o, int depth);

/* ---- evaluation (jinja_eval.c) ------------------------------------------------------------- */

bool jx_getattr(jctx *c, const jv *obj, const char *name, size_t n, jv *out);
/* Only a Python attribute (no item fallback): *found false when there is none. */
bool jx_pyattr(jctx *c, const jv *obj, const char *name, size_t n, jv *out, bool *found);
bool jx_getitem(jctx *c, const jv *obj, const jv *key, jv *out);
bool jx_call(jctx *c, const jv *fn, const jargs *a, jv *out);
/* Run a filter / test by builtin id on already-evaluated arguments. */
bool jx_filter(jctx *c, int fid, const jv *self, const jargs *a, jv *out);
bool jx_test(jctx *c, int fid, const jv *self, const jargs *a, bool *out);

/* ---- filters, tests, globals (jinja_filters.c) ----------------------------------------------- */

int jf_filter_id(const char *name, size_t n);   /* -1 if unknown */
int jf_test_id(const char *name, size_t n);
bool jf_call_filter(jctx *c, int fid, const jv *self, const jargs *a, jv *out);
bool jf_call_test(jctx *c, int fid, const jv *self, const jargs *a, bool *out);

/* Built-in callables (globals and bound methods). */
typedef enum {
    JB_RANGE = 1,
    JB_DICT,
    JB_NAMESPACE,
    JB_RAISE,
    JB_STRFTIME,
    JB_CYCLER,
    JB_JOINER,
    JB_LIPSUM,
    JB_METHOD,      /* self.name(...) on a str, list, dict, loop */
    JB_UNSAFE,      /* mutation methods: callable name, calling raises SecurityError */
} jfunc_kind;

struct jfunc {
    uint8_t kind;
    jv self;
    jname name;
};

bool jf_call_builtin(jctx *c, const jfunc *f, const jargs *a, jv *out);
/* Helpers the filters and globals share. */
bool jx_want_int(jctx *c, const jv *v, const char *what, int64_t *out); /* int or bool */
bool jx_one_arg(jctx *c, const char *name, const jargs *a);             /* no arguments */
bool jx_dict_view(jctx *c, const jdict *d, uint8_t kind, jv *out);      /* items/keys/values */
static inline jv jx_seq_val(jseq *q) {
    jv v = {0};
    v.t = JV_SEQ;
    v.q = q;
    return v;
}
/* the items of an iterable (one-shot iterators are consumed) */
static inline bool jx_items(jctx *c, const jv *v, const jv **items, size_t *n) {
    jv *scratch;
    return jv_iter(c, v, items, n, &scratch);
}
/* Bind args to a parameter list: names[i] with default defs[i] (JV_UNDEF = required).
 * out[] gets one value per parameter. */
bool jf_bind(jctx *c, const char *fname, const char *const *names, size_t n, const jv *defs,
             const jargs *a, jv *out);

/* ---- lexer / parser (jinja_lex.c, jinja_parse.c) ---------------------------------------------- */

typedef enum {
    T_EOF = 0,
    T_DATA,
    T_VAR_BEGIN,
    T_VAR_END,
    T_BLOCK_BEGIN,
    T_BLOCK_END,
    T_NAME,
    T_STRING,
    T_INT,
    T_FLOAT,
    T_OP,
} jtok_type;

typedef struct jtok {
    uint8_t type;
    int line;
    const char *s;   /* T_DATA, T_NAME, T_STRING (decoded), T_OP */
    size_t n;
    int64_t i;
    double f;
} jtok;

/* Tokenize src (already newline-normalised) into *toks (stb_ds array). */
sw_status jlex(jarena *a, const char *src, size_t n, jtok **toks, sw_err *err);
/* Python-style newline normalisation and trailing-newline removal. */
char *jlex_normalize(const char *src, size_t n, size_t *out_n);

sw_status jparse(sw_jinja_tmpl *t, const jtok *toks, size_t ntoks, sw_err *err);

#endif
