/* data.c — the labelled data set: JSON lines with a prompt or chat messages,
 * and a label or a reference answer. */
#include "rtool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sw_status parse_item(const char *path, int line, cJSON *o, need_field need, item *it,
                            sw_err *err) {
#define BAD(...)                                                                        \
    do {                                                                                \
        char m_[200];                                                                   \
        snprintf(m_, sizeof m_, __VA_ARGS__);                                           \
        return sw_err_set(err, SW_E_INVALID_ARG, "%s:%d: %s", path, line, m_);          \
    } while (0)
    memset(it, 0, sizeof *it);
    it->line = line;
    if (!cJSON_IsObject(o)) BAD("expected a JSON object");
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(o, "messages");
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(o, "prompt");
    if (msgs && prompt) BAD("has both \"messages\" and \"prompt\"; give one");
    if (!msgs && !prompt) BAD("needs \"messages\" (a chat) or \"prompt\" (a text)");
    if (prompt) {
        if (!cJSON_IsString(prompt)) BAD("prompt: expected a string");
        it->prompt = it->query = prompt->valuestring;
    } else {
        if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) < 1)
            BAD("messages: expected a non-empty array");
        it->msgs = msgs;
        size_t i = 0;
        for (const cJSON *m = msgs->child; m; m = m->next, i++) {
            const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
            const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
            if (!cJSON_IsObject(m)) BAD("messages[%zu]: expected an object", i);
            if (!cJSON_IsString(role)) BAD("messages[%zu].role: expected a string", i);
            if (strcmp(role->valuestring, "system") && strcmp(role->valuestring, "user") &&
                strcmp(role->valuestring, "assistant"))
                BAD("messages[%zu].role: \"%.40s\" is not system, user or assistant", i,
                    role->valuestring);
            if (!cJSON_IsString(content)) BAD("messages[%zu].content: expected a string", i);
            if (!strcmp(role->valuestring, "user")) it->query = content->valuestring;
        }
        if (!it->query) BAD("messages: no user message");
    }
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(o, "local_ok");
    if (ok) {
        if (!cJSON_IsBool(ok)) BAD("local_ok: expected true or false");
        it->has_local_ok = true;
        it->local_ok = cJSON_IsTrue(ok);
    } else if (need == NEED_LABEL) {
        BAD("local_ok: missing (label the data with spillway-router label)");
    }
    const cJSON *cok = cJSON_GetObjectItemCaseSensitive(o, "cloud_ok");
    if (cok) {
        if (!cJSON_IsBool(cok)) BAD("cloud_ok: expected true or false");
        it->has_cloud_ok = true;
        it->cloud_ok = cJSON_IsTrue(cok);
    }
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(o, "reference");
    if (ref) {
        if (cJSON_IsString(ref)) {
            it->reference = ref->valuestring;
        } else if (cJSON_IsNumber(ref)) {
            snprintf(it->ref_buf, sizeof it->ref_buf, "%.17g", ref->valuedouble);
            it->reference = it->ref_buf;
        } else {
            BAD("reference: expected a string or a number");
        }
    } else if (need == NEED_REFERENCE) {
        BAD("reference: missing (the right answer to label against)");
    }
    const cJSON *cat = cJSON_GetObjectItemCaseSensitive(o, "category");
    if (cat) {
        if (!cJSON_IsString(cat)) BAD("category: expected a string");
        it->category = cat->valuestring;
    }
    it->json = o;
    return SW_OK;
#undef BAD
}

static void item_release(item *it) {
    cJSON_Delete(it->json);
    free(it->ids);
    free(it->h_last);
    free(it->h_mean);
    free(it->answer);
    free(it->gen_ids);
    free(it->gen_lp);
}

void data_free(dataset *d) {
    for (int32_t i = 0; i < d->n; i++) item_release(&d->items[i]);
    free(d->items);
    d->items = NULL;
    d->n = 0;
}

sw_status data_load(const char *path, need_field need, dataset *out, sw_err *err) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "r");
    if (!f) return sw_err_set(err, SW_E_IO, "%s: cannot open: %s", path, strerror(errno));
    sw_status st = data_read(f, path, need, out, err);
    fclose(f);
    return st;
}

sw_status data_read(FILE *f, const char *path, need_field need, dataset *out, sw_err *err) {
    memset(out, 0, sizeof *out);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0;
    int32_t cap_items = 0;
    sw_status st = SW_OK;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        const char *p = line;
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
        if (!*p) continue;
        if ((size_t)len != strlen(line)) {
            st = sw_err_set(err, SW_E_INVALID_ARG, "%s:%d: contains a NUL byte", path, lineno);
            break;
        }
        const char *end = NULL;
        cJSON *o = cJSON_ParseWithOpts(line, &end, false);
        if (!o) {
            st = sw_err_set(err, SW_E_INVALID_ARG, "%s:%d: not valid JSON at column %d", path,
                            lineno, end ? (int)(end - line) + 1 : 1);
            break;
        }
        if (out->n == cap_items) {
            int32_t nc = cap_items ? 2 * cap_items : 256;
            item *ni = realloc(out->items, (size_t)nc * sizeof *ni);
            if (!ni) {
                cJSON_Delete(o);
                st = sw_err_set(err, SW_E_NOMEM, "out of memory reading %s", path);
                break;
            }
            out->items = ni;
            cap_items = nc;
        }
        item *it = &out->items[out->n];
        if ((st = parse_item(path, lineno, o, need, it, err)) != SW_OK) {
            cJSON_Delete(o);
            break;
        }
        out->n++;
    }
    free(line);
    if (st == SW_OK && out->n == 0)
        st = sw_err_set(err, SW_E_INVALID_ARG, "%s: no items", path);
    if (st != SW_OK) data_free(out);
    return st;
}
