/* rtool.h — spillway-router's pieces: the labelled data set (data.c), the
 * local runs that give each item its hidden states and local answer (run.c),
 * and the three commands (label.c, train.c, eval.c). */
#ifndef SW_TOOL_ROUTER_H
#define SW_TOOL_ROUTER_H

#include <spillway.h>

#include <cjson/cJSON.h>
#include <stdio.h>

#include "route_model.h"

/* ---- data (data.c) ---- */

typedef struct item {
    int line;              /* 1-based line in the data file */
    cJSON *json;           /* the line as parsed (label copies it out); owned */
    const cJSON *msgs;     /* chat items: the "messages" array, a view into json */
    const char *prompt;    /* completions items: view into json */
    const char *query;     /* the last user message or the prompt: text features */
    const char *reference; /* "reference" (label); NULL when absent */
    char ref_buf[64];      /* a numeric reference as text */
    bool has_local_ok, local_ok;
    bool has_cloud_ok, cloud_ok;
    const char *category;  /* optional; NULL */
    /* filled by a local run (run.c) */
    int32_t *ids;
    int32_t n_ids;
    float *h_last, *h_mean;
    int32_t n_embd;
    char *answer;
    int32_t *gen_ids;
    float *gen_lp;
    int32_t n_gen;
    bool ran;
    char run_error[SW_ERR_LEN + 64];
} item;

typedef struct dataset {
    item *items;
    int32_t n;
} dataset;

typedef enum need_field { NEED_NONE = 0, NEED_LABEL, NEED_REFERENCE } need_field;

/* Read a JSON-lines file. Each line: {"messages": [...]} or {"prompt": "..."},
 * plus "local_ok" (NEED_LABEL) or "reference" (NEED_REFERENCE); "cloud_ok"
 * and "category" are optional. Blank lines are skipped. An error names the
 * file, the line and the field. */
sw_status data_load(const char *path, need_field need, dataset *out, sw_err *err);
/* The same from an open stream; path names it in errors. */
sw_status data_read(FILE *f, const char *path, need_field need, dataset *out, sw_err *err);
void data_free(dataset *d);

/* ---- local runs (run.c) ---- */

typedef struct runner {
    sw_backend *be;
    sw_model *model;
    sw_engine *engine;
    sw_chat_template *chat; /* the model's, else chatml (as spillway-server) */
    char model_name[128];
    char model_id[17];
} runner;

sw_status runner_open(runner *r, const char *model_path, int32_t threads, sw_err *err);
void runner_close(runner *r);

typedef struct run_params {
    unsigned hidden;     /* SW_HIDDEN_* to collect */
    int32_t max_tokens;  /* 0: prefill only */
    bool quiet;          /* no progress on stderr */
} run_params;

/* Tokenize every item the way spillway-server does and run it through the
 * engine (greedy), filling ids, hidden states and the answer. An item that
 * cannot run (e.g. too long) gets run_error and ran = false. */
sw_status runner_run(runner *r, dataset *d, const run_params *p, sw_err *err);

/* The chat rendering's identity (route_model.h): the probe conversation
 * rendered and tokenized exactly like every item; *probe (malloc'd) is its
 * text with special tokens. */
sw_status runner_prompt_id(runner *r, char id[17], char **probe, sw_err *err);

/* The router's input for an item that ran. */
sw_rtr_input item_input(const item *it);

/* ---- post-hoc signals (eval.c) ---- */
enum { SIG_WINDOW = 0, SIG_WHOLE, SIG_NOVEL, SIG_NOVEL_MIN, SIG_COUNT };
extern const char *const k_sig_names[SIG_COUNT];
/* Each signal as a score (higher: more likely wrong) from the item's answer. */
void posthoc_signals(const item *it, int32_t probe_tokens, double out[SIG_COUNT]);

/* ---- commands ---- */
int cmd_label(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);

/* The default feature set (train, eval): the mean hidden state over the
 * query's tokens (route_model.h), with the text features. */
#define RTR_DEFAULT_HIDDEN SW_RTR_HIDDEN_QUERY
#define RTR_DEFAULT_FEATURES "query"
/* train's L2 strength: fixed, not cross-validation's pick, which at 150-250
 * training items varies from 0.001 to 3 between halves of one set (held-out
 * AUROC over 6 splits of dev sets 2/3/4: 0.870 at 1, 0.863 with the pick,
 * 0.836 at 10; docs/fallback.md). */
#define RTR_DEFAULT_LAMBDA 1.0
#define RTR_FEATURES_HELP "a comma list of last, mean, query (mean or query, not both), or none"

/* shared option parsing */
bool parse_int(const char *s, int32_t lo, int32_t hi, int32_t *out);
bool parse_hidden(const char *s, unsigned *out);

#endif
