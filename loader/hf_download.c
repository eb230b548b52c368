/* hf_download.c — SHA-256 and the Hugging Face hub downloader (see
 * hf_download.h). libcurl does the HTTP; this file decides where the file
 * goes, resumes a ".part" file with a Range request after a cut connection,
 * and verifies the LFS SHA-256 the hub sends in X-Linked-ETag before the
 * file is renamed into the cache, so a cached file is always a whole,
 * checked one. */
#include "hf_download.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- SHA-256 --------------------------------------------------------------------- */

static const uint32_t k_sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const uint8_t *p) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t s1 = ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25);
        uint32_t ch = (e & f) ^ (~e & g);
        uint32_t t1 = hh + s1 + ch + k_sha256_k[i] + w[i];
        uint32_t s0 = ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22);
        uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
        uint32_t t2 = s0 + maj;
        hh = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

void sw_sha256_init(sw_sha256 *c) {
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->h, iv, sizeof iv);
    c->n_bytes = 0;
    c->n_block = 0;
}

void sw_sha256_update(sw_sha256 *c, const void *data, size_t n) {
    const uint8_t *p = data;
    c->n_bytes += n;
    if (c->n_block) {
        size_t k = SW_MIN(n, 64 - c->n_block);
        memcpy(c->block + c->n_block, p, k);
        c->n_block += k;
        p += k;
        n -= k;
        if (c->n_block < 64) return;
        sha256_block(c->h, c->block);
        c->n_block = 0;
    }
    for (; n >= 64; p += 64, n -= 64) sha256_block(c->h, p);
    memcpy(c->block, p, n);
    c->n_block = n;
}

void sw_sha256_final(sw_sha256 *c, uint8_t out[32]) {
    uint64_t bits = c->n_bytes * 8;
    uint8_t pad[72] = {0x80};
    /* Pad to 56 mod 64, then the 64-bit big-endian bit length. */
    size_t npad = (c->n_block < 56 ? 56 : 120) - c->n_block;
    for (int i = 0; i < 8; i++) pad[npad + i] = (uint8_t)(bits >> (56 - 8 * i));
    uint64_t n_bytes = c->n_bytes;
    sw_sha256_update(c, pad, npad + 8);
    c->n_bytes = n_bytes;
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(c->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)c->h[i];
    }
}

static void to_hex(const uint8_t d[32], char hex[65]) {
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

void sw_sha256_hex(const void *data, size_t n, char hex[65]) {
    sw_sha256 c;
    uint8_t d[32];
    sw_sha256_init(&c);
    sw_sha256_update(&c, data, n);
    sw_sha256_final(&c, d);
    to_hex(d, hex);
}

sw_status sw_sha256_file(const char *path, char hex[65], sw_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return sw_err_set(err, SW_E_IO, "%s: %s", path, strerror(errno));
    sw_sha256 c;
    sw_sha256_init(&c);
    uint8_t *buf = malloc(1 << 20);
    if (!buf) {
        fclose(f);
        return sw_err_set(err, SW_E_NOMEM, "out of memory hashing %s", path);
    }
    size_t n;
    while ((n = fread(buf, 1, 1 << 20, f)) > 0) sw_sha256_update(&c, buf, n);
    bool bad = ferror(f);
    free(buf);
    fclose(f);
    if (bad) return sw_err_set(err, SW_E_IO, "%s: read error", path);
    uint8_t d[32];
    sw_sha256_final(&c, d);
    to_hex(d, hex);
    return SW_OK;
}

/* ---- spec and paths ------------------------------------------------------------------ */

static bool name_char(char c) { return isalnum((unsigned char)c) || strchr("._-", c); }

static bool path_ok(const char *p) {
    if (!*p || *p == '/' || strstr(p, "//")) return false;
    for (const char *s = p; *s; s++)
        if (!name_char(*s) && *s != '/' && *s != '+') return false;
    /* No "." or ".." components: the file must stay inside its cache folder. */
    const char *s = p;
    while (*s) {
        size_t n = strcspn(s, "/");
        if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) return false;
        s += n;
        if (*s == '/') s++;
    }
    return p[strlen(p) - 1] != '/';
}

sw_status sw_hf_parse_spec(const char *spec, char **repo, char **file, sw_err *err) {
    *repo = *file = NULL;
    if (!spec) return sw_err_set(err, SW_E_INVALID_ARG, "--hf: no repository given");
    const char *colon = strchr(spec, ':');
    size_t repo_len;
    const char *f;
    if (colon) {
        repo_len = (size_t)(colon - spec);
        f = colon + 1;
    } else {
        /* owner/repo/file: the file starts after the second slash. */
        const char *s1 = strchr(spec, '/');
        const char *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
        if (!s2)
            return sw_err_set(err, SW_E_INVALID_ARG,
                              "--hf %s: expected OWNER/REPO:FILE (e.g. "
                              "ggml-org/models:tinyllamas/stories260K.gguf)",
                              spec);
        repo_len = (size_t)(s2 - spec);
        f = s2 + 1;
    }
    char *r = strndup(spec, repo_len);
    if (!r) return sw_err_set(err, SW_E_NOMEM, "out of memory");
    const char *slash = strchr(r, '/');
    bool repo_ok = slash && slash != r && slash[1] && !strchr(slash + 1, '/');
    for (const char *s = r; repo_ok && *s; s++) repo_ok = name_char(*s) || *s == '/';
    if (repo_ok && (strstr(r, "..") || r[0] == '.')) repo_ok = false;
    if (!repo_ok) {
        sw_status st = sw_err_set(err, SW_E_INVALID_ARG,
                                  "--hf %s: the repository must be OWNER/NAME (letters, digits, "
                                  "'.', '_', '-')",
                                  spec);
        free(r);
        return st;
    }
    if (!path_ok(f)) {
        free(r);
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "--hf %s: bad file path '%s' (relative path in the repository, no "
                          "'..', no spaces)",
                          spec, f);
    }
    *file = strdup(f);
    if (!*file) {
        free(r);
        return sw_err_set(err, SW_E_NOMEM, "out of memory");
    }
    *repo = r;
    return SW_OK;
}

static char *cache_root(const char *given) {
    const char *env;
    char buf[4096];
    if (given && *given) return strdup(given);
    if ((env = getenv("SPILLWAY_CACHE")) && *env) return strdup(env);
    if ((env = getenv("XDG_CACHE_HOME")) && *env) {
        snprintf(buf, sizeof buf, "%s/spillway", env);
        return strdup(buf);
    }
    if ((env = getenv("HOME")) && *env) {
        snprintf(buf, sizeof buf, "%s/.cache/spillway", env);
        return strdup(buf);
    }
    return strdup(".spillway-cache");
}

/* mkdir -p of the directory part of path. */
static sw_status make_parents(const char *path, sw_err *err) {
    char *p = strdup(path);
    if (!p) return sw_err_set(err, SW_E_NOMEM, "out of memory");
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            sw_status st = sw_err_set(err, SW_E_IO, "cannot create %s: %s", p, strerror(errno));
            free(p);
            return st;
        }
        *s = '/';
    }
    free(p);
    return SW_OK;
}

/* ---- one transfer --------------------------------------------------------------------------- */

typedef struct xfer {
    CURL *curl;
    const char *part;
    FILE *f;
    uint64_t have;        /* bytes in the part file when the transfer began */
    uint64_t written;     /* bytes written by this transfer */
    long status;          /* of the response being received */
    bool decided;         /* first body byte seen: file opened (or body discarded) */
    bool discard;         /* an error body: do not write it */
    bool restart;         /* the part cannot be resumed: start over */
    bool write_failed;
    char linked_etag[128];
    char etag[128];
    uint64_t range_start; /* from Content-Range */
    uint64_t total;       /* whole-file size when known */
    bool progress;
    double t_start, t_last_draw;
} xfer;

static void header_value(const char *line, size_t n, size_t name_len, char *out, size_t cap) {
    const char *v = line + name_len;
    const char *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ')) end--;
    size_t k = SW_MIN((size_t)(end - v), cap - 1);
    memcpy(out, v, k);
    out[k] = '\0';
}

static size_t on_header(char *line, size_t size, size_t nitems, void *user) {
    xfer *x = user;
    size_t n = size * nitems;
    char v[160];
    if (n >= 5 && !strncmp(line, "HTTP/", 5)) {
        /* A new response (after a redirect): its own ETag and range apply. */
        x->etag[0] = '\0';
        x->range_start = 0;
        const char *sp = memchr(line, ' ', n);
        x->status = sp ? strtol(sp + 1, NULL, 10) : 0;
    } else if (n > 14 && !strncasecmp(line, "x-linked-etag:", 14)) {
        header_value(line, n, 14, x->linked_etag, sizeof x->linked_etag);
    } else if (n > 5 && !strncasecmp(line, "etag:", 5)) {
        header_value(line, n, 5, x->etag, sizeof x->etag);
    } else if (n > 14 && !strncasecmp(line, "content-range:", 14)) {
        /* "bytes START-END/TOTAL" */
        header_value(line, n, 14, v, sizeof v);
        unsigned long long a, b, t;
        if (sscanf(v, "bytes %llu-%llu/%llu", &a, &b, &t) == 3) {
            x->range_start = a;
            x->total = t;
        }
    } else if (n > 15 && !strncasecmp(line, "content-length:", 15)) {
        header_value(line, n, 15, v, sizeof v);
        if (x->status == 200) x->total = strtoull(v, NULL, 10);
    }
    return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *user) {
    xfer *x = user;
    size_t n = size * nmemb;
    if (!x->decided) {
        x->decided = true;
        if (x->status == 200) {
            /* The whole file, whether or not we asked for a range. */
            x->have = 0;
            x->f = fopen(x->part, "wb");
        } else if (x->status == 206) {
            if (x->range_start != x->have) {
                x->restart = true;
                return 0; /* abort: the server resumed at the wrong offset */
            }
            x->f = fopen(x->part, "ab");
        } else {
            x->discard = true;
        }
        if (!x->discard && !x->f) {
            x->write_failed = true;
            return 0;
        }
    }
    if (x->discard) return n;
    if (fwrite(data, 1, n, x->f) != n) {
        x->write_failed = true;
        return 0;
    }
    x->written += n;
    return n;
}

static void draw_bar(xfer *x, uint64_t now_b, bool final) {
    double t = sw_time_s();
    if (!final && t - x->t_last_draw < 0.1) return;
    x->t_last_draw = t;
    double mib = 1024.0 * 1024.0;
    double rate = (double)x->written / SW_MAX(t - x->t_start, 1e-3) / mib;
    if (x->total > 0) {
        double frac = SW_MIN(1.0, (double)now_b / (double)x->total);
        int w = 30, k = (int)(frac * w);
        char bar[32];
        for (int i = 0; i < w; i++) bar[i] = i < k ? '=' : (i == k ? '>' : ' ');
        bar[w] = '\0';
        fprintf(stderr, "\rdownload [%s] %5.1f%% %.1f/%.1f MiB %.1f MiB/s ", bar, 100 * frac,
                (double)now_b / mib, (double)x->total / mib, rate);
    } else {
        fprintf(stderr, "\rdownload %.1f MiB %.1f MiB/s ", (double)now_b / mib, rate);
    }
    if (final) fputc('\n', stderr);
    fflush(stderr);
}

static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    xfer *x = user;
    if (x->progress && x->decided && !x->discard) draw_bar(x, x->have + x->written, false);
    return 0;
}

static uint64_t file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Normalise an ETag to a lowercase sha256 hex digest, or "" when it is not one
 * (weak tags, git blob SHA-1s of non-LFS files, CDN MD5s). */
static void etag_sha256(const char *tag, char out[65]) {
    out[0] = '\0';
    const char *s = tag;
    if (!strncmp(s, "W/", 2)) s += 2;
    if (*s == '"') s++;
    size_t n = strcspn(s, "\"");
    if (n != 64) return;
    for (size_t i = 0; i < 64; i++) {
        if (!isxdigit((unsigned char)s[i])) return;
        out[i] = (char)tolower((unsigned char)s[i]);
    }
    out[64] = '\0';
}

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

typedef enum { TRY_OK, TRY_RETRY, TRY_FAIL } try_result;

static try_result transfer(const char *url, const char *part, bool progress, char expect[65],
                           sw_status *st, sw_err *err) {
    xfer x = {0};
    x.part = part;
    x.have = file_size(part);
    x.progress = progress;
    x.t_start = x.t_last_draw = sw_time_s();
    CURL *c = curl_easy_init();
    if (!c) {
        *st = sw_err_set(err, SW_E_NOMEM, "cannot create a libcurl handle");
        return TRY_FAIL;
    }
    struct curl_slist *hdrs = NULL;
    const char *token = getenv("HF_TOKEN");
    char *auth = NULL;
    if (token && *token && (auth = malloc(strlen(token) + 32))) {
        sprintf(auth, "Authorization: Bearer %s", token);
        hdrs = curl_slist_append(hdrs, auth);
    }
    char range[48];
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "spillway/0.1");
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &x);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    /* A stalled transfer (under 1 KiB/s for a minute) counts as cut. */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    if (hdrs) curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    if (x.have > 0) {
        snprintf(range, sizeof range, "%llu-", (unsigned long long)x.have);
        curl_easy_setopt(c, CURLOPT_RANGE, range);
        sw_log(SW_LOG_INFO, "download: resuming %s at byte %llu", part,
               (unsigned long long)x.have);
    }
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (x.f) fclose(x.f);
    if (rc == CURLE_OK && status == 200 && !x.decided) {
        /* An empty file never calls on_body; it still needs to exist. */
        FILE *f = fopen(part, "wb");
        if (f) fclose(f);
        else x.write_failed = true;
    }
    if (progress && x.decided && !x.discard) draw_bar(&x, x.have + x.written, true);
    curl_easy_cleanup(c);
    curl_slist_free_all(hdrs);
    free(auth);
    char tag[65];
    etag_sha256(x.linked_etag[0] ? x.linked_etag : x.etag, tag);
    if (tag[0]) memcpy(expect, tag, 65);

    if (x.write_failed) {
        *st = sw_err_set(err, SW_E_IO, "cannot write %s: %s", part, strerror(errno));
        return TRY_FAIL;
    }
    if (x.restart || status == 416) {
        /* The part is not a prefix the server can continue: start over. */
        unlink(part);
        sw_log(SW_LOG_WARN, "download: server cannot resume %s (HTTP %ld); restarting", part,
               status);
        *st = sw_err_set(err, SW_E_IO, "%s: cannot resume (HTTP %ld)", url, status);
        return TRY_RETRY;
    }
    if (rc != CURLE_OK) {
        *st = sw_err_set(err, SW_E_IO, "%s: %s (after %llu bytes)", url, curl_easy_strerror(rc),
                         (unsigned long long)(x.have + x.written));
        return TRY_RETRY;
    }
    if (status == 401 || status == 403) {
        *st = sw_err_set(err, SW_E_IO,
                         "%s: HTTP %ld: access denied (a gated or private repository needs "
                         "HF_TOKEN)",
                         url, status);
        return TRY_FAIL;
    }
    if (status == 404) {
        *st = sw_err_set(err, SW_E_NOT_FOUND, "%s: HTTP 404: no such repository or file", url);
        return TRY_FAIL;
    }
    if (status >= 500 || status == 429) {
        *st = sw_err_set(err, SW_E_IO, "%s: HTTP %ld", url, status);
        return TRY_RETRY;
    }
    if (status != 200 && status != 206) {
        *st = sw_err_set(err, SW_E_IO, "%s: unexpected HTTP %ld", url, status);
        return TRY_FAIL;
    }
    uint64_t size = file_size(part);
    if (x.total > 0 && size != x.total) {
        *st = sw_err_set(err, SW_E_IO, "%s: got %llu of %llu bytes", url,
                         (unsigned long long)size, (unsigned long long)x.total);
        return TRY_RETRY;
    }
    return TRY_OK;
}

sw_status sw_hf_download(const char *spec, const sw_hf_params *p, char **path, sw_err *err) {
    *path = NULL;
    sw_hf_params params = {0};
    if (p) params = *p;
    char *repo = NULL, *file = NULL, *root = NULL, *dest = NULL, *part = NULL, *url = NULL;
    sw_status st = sw_hf_parse_spec(spec, &repo, &file, err);
    if (st != SW_OK) return st;
    root = cache_root(params.cache_dir);
    const char *ep = params.endpoint;
    if (!ep || !*ep) ep = getenv("SPILLWAY_HF_ENDPOINT");
    if (!ep || !*ep) ep = "https://huggingface.co";
    size_t ep_len = strlen(ep);
    while (ep_len > 0 && ep[ep_len - 1] == '/') ep_len--;
    size_t n = (root ? strlen(root) : 0) + strlen(repo) + strlen(file) + ep_len + 64;
    dest = malloc(n);
    part = malloc(n + 8);
    url = malloc(n);
    if (!root || !dest || !part || !url) {
        st = sw_err_set(err, SW_E_NOMEM, "out of memory");
        goto done;
    }
    /* owner/repo -> owner--repo: one folder per repository, as the hub's own
     * cache names them. */
    char *flat = strdup(repo);
    if (!flat) {
        st = sw_err_set(err, SW_E_NOMEM, "out of memory");
        goto done;
    }
    char *slash = strchr(flat, '/');
    *slash = '\0';
    snprintf(dest, n, "%s/hf/%s--%s/%s", root, flat, slash + 1, file);
    free(flat);
    snprintf(part, n + 8, "%s.part", dest);
    snprintf(url, n, "%.*s/%s/resolve/main/%s", (int)ep_len, ep, repo, file);

    struct stat sb;
    if (stat(dest, &sb) == 0 && S_ISREG(sb.st_mode)) {
        sw_log(SW_LOG_INFO, "download: using cached %s", dest);
        *path = dest;
        dest = NULL;
        goto done;
    }
    if ((st = make_parents(dest, err)) != SW_OK) goto done;
    pthread_once(&g_curl_once, curl_init_once);
    int tries = params.max_tries > 0 ? params.max_tries : 5;
    char expect[65] = "";
    sw_log(SW_LOG_INFO, "download: %s -> %s", url, dest);
    for (int t = 1;; t++) {
        try_result r = transfer(url, part, params.progress, expect, &st, err);
        if (r == TRY_OK) break;
        if (r == TRY_FAIL || t >= tries) {
            sw_err_wrap(err, st, "download failed after %d attempt%s", t, t == 1 ? "" : "s");
            goto done;
        }
        sw_log(SW_LOG_WARN, "download: attempt %d of %d failed (%s); retrying", t, tries,
               err ? err->msg : "");
        sw_sleep_s(0.25 * (t < 4 ? t : 4));
    }
    if (expect[0]) {
        char got[65];
        if ((st = sw_sha256_file(part, got, err)) != SW_OK) goto done;
        if (strcmp(got, expect) != 0) {
            unlink(part);
            st = sw_err_set(err, SW_E_FORMAT,
                            "%s: SHA-256 mismatch: the hub says %s, the download is %s (the "
                            "partial file was deleted; try again)",
                            url, expect, got);
            goto done;
        }
        sw_log(SW_LOG_INFO, "download: sha256 %s verified", got);
    } else {
        sw_log(SW_LOG_INFO, "download: the server sent no SHA-256 for %s; not verified", file);
    }
    if (rename(part, dest) != 0) {
        st = sw_err_set(err, SW_E_IO, "cannot rename %s to %s: %s", part, dest, strerror(errno));
        goto done;
    }
    *path = dest;
    dest = NULL;
    st = SW_OK;
done:
    free(repo);
    free(file);
    free(root);
    free(dest);
    free(part);
    free(url);
    return st;
}
