/* spillway-router — label data with the local model, train the learned router,
 * and evaluate routing signals (issue #12):
 *
 *   spillway-router label -m MODEL --data refs.jsonl --out labelled.jsonl
 *   spillway-router train -m MODEL --data labelled.jsonl --out ROUTER
 *   spillway-router eval  -m MODEL --data labelled.jsonl [--router ROUTER] [--json]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtool.h"

bool parse_int(const char *s, int32_t lo, int32_t hi, int32_t *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < lo || v > hi) return false;
    *out = (int32_t)v;
    return true;
}

bool parse_hidden(const char *s, unsigned *out) {
    static const struct { const char *name; unsigned flag; } k[] = {
        {"last", SW_HIDDEN_LAST}, {"mean", SW_HIDDEN_MEAN}, {"query", SW_RTR_HIDDEN_QUERY}};
    if (!strcmp(s, "none")) {
        *out = 0;
        return true;
    }
    unsigned h = 0;
    for (const char *p = s;;) {
        size_t n = strcspn(p, ",");
        unsigned f = 0;
        for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
            if (n == strlen(k[i].name) && !strncmp(p, k[i].name, n)) f = k[i].flag;
        if (!f || (h & f)) return false;
        h |= f;
        if (!p[n]) break;
        p += n + 1;
    }
    if ((h & SW_HIDDEN_MEAN) && (h & SW_RTR_HIDDEN_QUERY)) return false; /* one mean per request */
    *out = h;
    return true;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: spillway-router COMMAND [options]\n"
            "\n"
            "commands:\n"
            "  label -m MODEL --data refs.jsonl --out labelled.jsonl\n"
            "        answer each item locally (greedy) and label it by numeric or normalized-text\n"
            "        match against its \"reference\"; writes each line with \"local_ok\" and\n"
            "        \"local_answer\" added\n"
            "  train -m MODEL --data labelled.jsonl --out ROUTER\n"
            "        fit the pre-call router on the items' hidden states and text features;\n"
            "        prints the cross-validated AUROC\n"
            "  eval  -m MODEL --data labelled.jsonl [--router ROUTER] [--json]\n"
            "        AUROC, APGR, CPT(50%%), CPT(80%%) and PGR at 20/40/60%% sent to the cloud for\n"
            "        every signal and their combination\n"
            "\n"
            "Each data line is {\"messages\": [...]} or {\"prompt\": \"...\"} with \"local_ok\":\n"
            "true|false (train, eval) or \"reference\" (label); \"cloud_ok\" and \"category\" are\n"
            "optional. Run 'spillway-router COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    sw_log_set_level(SW_LOG_WARN);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "label")) return cmd_label(argc - 1, argv + 1);
    if (!strcmp(cmd, "train")) return cmd_train(argc - 1, argv + 1);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc - 1, argv + 1);
    fprintf(stderr, "spillway-router: unknown command '%s' (label, train or eval)\n", cmd);
    return 2;
}
