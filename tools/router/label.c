/* label.c — spillway-router label: answer locally, label by match. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "rtool.h"

static void label_usage(FILE *f) {
    fprintf(f, "usage: spillway-router label -m MODEL --data refs.jsonl --out labelled.jsonl\n"
               "  -m, --model PATH      the local model (GGUF)\n"
               "      --data FILE       JSON lines with \"messages\" or \"prompt\", and \"reference\"\n"
               "      --out FILE        where to write the labelled lines\n"
               "      --max-tokens N    answer length limit (default 128)\n"
               "  -t, --threads N       CPU threads (default 2)\n"
               "  -q, --quiet           no progress\n");
}

int cmd_label(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'}, {"data", required_argument, NULL, 'd'},
        {"out", required_argument, NULL, 'o'},   {"max-tokens", required_argument, NULL, 'n'},
        {"threads", required_argument, NULL, 't'}, {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0}};
    const char *model = NULL, *data = NULL, *out = NULL;
    int32_t max_tokens = 128, threads = 2;
    bool quiet = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:t:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'd': data = optarg; break;
        case 'o': out = optarg; break;
        case 'n':
            if (!parse_int(optarg, 1, 1 << 20, &max_tokens)) {
                fprintf(stderr, "spillway-router label: --max-tokens: '%s' is not 1..1048576\n", optarg);
                return 2;
            }
            break;
        case 't':
            if (!parse_int(optarg, 1, 1024, &threads)) {
                fprintf(stderr, "spillway-router label: --threads: '%s' is not 1..1024\n", optarg);
                return 2;
            }
            break;
        case 'q': quiet = true; break;
        case 'h': label_usage(stdout); return 0;
        default: label_usage(stderr); return 2;
        }
    }
    if (!model || !data || !out || optind < argc) {
        fprintf(stderr, "spillway-router label: %s\n",
                optind < argc ? "unexpected argument" : "needs -m MODEL, --data FILE and --out FILE");
        label_usage(stderr);
        return 2;
    }
    sw_err err = {{0}};
    dataset d;
    if (data_load(data, NEED_REFERENCE, &d, &err) != SW_OK) {
        fprintf(stderr, "spillway-router label: %s\n", err.msg);
        return 1;
    }
    runner r;
    if (runner_open(&r, model, threads, &err) != SW_OK) {
        fprintf(stderr, "spillway-router label: %s\n", err.msg);
        data_free(&d);
        return 1;
    }
    run_params rp = {.hidden = 0, .max_tokens = max_tokens, .quiet = quiet};
    int rc = 0;
    FILE *f = NULL;
    if (runner_run(&r, &d, &rp, &err) != SW_OK) {
        fprintf(stderr, "spillway-router label: %s\n", err.msg);
        rc = 1;
        goto done;
    }
    if (!(f = fopen(out, "w"))) {
        fprintf(stderr, "spillway-router label: cannot write %s\n", out);
        rc = 1;
        goto done;
    }
    int32_t n = 0, right = 0, skipped = 0;
    for (int32_t i = 0; i < d.n; i++) {
        item *it = &d.items[i];
        if (!it->ran) {
            fprintf(stderr, "spillway-router label: %s:%d: skipped: %s\n", data, it->line,
                    it->run_error);
            skipped++;
            continue;
        }
        bool ok = sw_answer_match(it->query, it->answer, it->reference);
        cJSON_DeleteItemFromObjectCaseSensitive(it->json, "local_ok");
        cJSON_DeleteItemFromObjectCaseSensitive(it->json, "local_answer");
        cJSON_AddBoolToObject(it->json, "local_ok", ok);
        cJSON_AddStringToObject(it->json, "local_answer", it->answer);
        char *line = cJSON_PrintUnformatted(it->json);
        if (!line || fprintf(f, "%s\n", line) < 0) {
            free(line);
            fprintf(stderr, "spillway-router label: writing %s failed\n", out);
            rc = 1;
            goto done;
        }
        free(line);
        n++;
        right += ok;
    }
    printf("labelled %d items (%d skipped): %d right (%.1f%%), %d wrong\n", n, skipped, right,
           n ? 100.0 * right / n : 0.0, n - right);
done:
    if (f && fclose(f) != 0 && rc == 0) {
        fprintf(stderr, "spillway-router label: writing %s failed\n", out);
        rc = 1;
    }
    runner_close(&r);
    data_free(&d);
    return rc;
}
