/* web.h — the built-in web page: files of tools/server/web/ compiled into
 * the binary (cmake/embed_web.cmake writes the table), served at "/" and
 * "/web/NAME" with a strict Content-Security-Policy. The page itself asks
 * for the API key when the server has one (it is never embedded), and
 * talks only to this server's own endpoints. */
#ifndef SW_SERVER_WEB_H
#define SW_SERVER_WEB_H

#include <stddef.h>

typedef struct srv_web_asset {
    const char *name;          /* file name, e.g. "app.js" */
    const unsigned char *data; /* NUL-terminated (the NUL is not counted) */
    size_t len;
} srv_web_asset;

/* generated: build/gen/web_assets.c */
extern const srv_web_asset srv_web_assets[];
extern const size_t srv_web_n_assets;

/* What every page response says about where content may come from: only
 * this server, no inline script or style, no frames, no plugins. */
#define SRV_WEB_CSP                                                                     \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "     \
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

const srv_web_asset *srv_web_find(const char *name); /* NULL: no such file */

#endif
