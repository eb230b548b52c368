/* web.c — GET / and /web/NAME: the embedded page (web.h), plus
 * /web/auth.json, which tells the page whether to ask for an API key
 * (without needing one: it says nothing a 401 would not). */
#include "web.h"

#include <microhttpd.h>
#include <string.h>

#include "oai.h"

const srv_web_asset *srv_web_find(const char *name) {
    for (size_t i = 0; name && i < srv_web_n_assets; i++)
        if (!strcmp(srv_web_assets[i].name, name)) return &srv_web_assets[i];
    return NULL;
}

static const char *content_type(const char *name) {
    static const struct {
        const char *ext, *type;
    } k_types[] = {{".html", "text/html; charset=utf-8"},
                   {".js", "text/javascript; charset=utf-8"},
                   {".css", "text/css; charset=utf-8"},
                   {".svg", "image/svg+xml"},
                   {".json", "application/json"},
                   {".txt", "text/plain; charset=utf-8"}};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof k_types / sizeof k_types[0]; i++) {
        size_t e = strlen(k_types[i].ext);
        if (n > e && !strcmp(name + n - e, k_types[i].ext)) return k_types[i].type;
    }
    return "application/octet-stream";
}

static int respond_static(srv_conn *sc, const void *data, size_t len, const char *type) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, "Content-Security-Policy", SRV_WEB_CSP);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    enum MHD_Result ret = MHD_queue_response(sc->conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    sc->status = 200;
    sc->responded = true;
    return ret;
}

int srv_handle_web(srv_conn *sc) {
    const char *name = sc->url_arg ? sc->url_arg : "index.html";
    if (!strcmp(name, "auth.json")) {
        static const char yes[] = "{\"api_key_required\":true}";
        static const char no[] = "{\"api_key_required\":false}";
        bool need = sc->s->cfg.n_api_keys > 0;
        return respond_static(sc, need ? yes : no, need ? sizeof yes - 1 : sizeof no - 1,
                              "application/json");
    }
    const srv_web_asset *a = srv_web_find(name);
    if (!a) {
        srv_error e;
        srv_error_set(&e, 404, "invalid_request_error", "not_found", NULL,
                      "no such file in the web page: %.100s", name);
        return srv_respond_error(sc, &e);
    }
    return respond_static(sc, a->data, a->len, content_type(a->name));
}
