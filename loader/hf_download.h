/* hf_download.h — fetch a model file from the Hugging Face hub into a local
 * cache (--hf REPO:FILE), resuming partial downloads and verifying the
 * SHA-256 the hub publishes for LFS files; plus the SHA-256 it uses. */
#ifndef SW_HF_DOWNLOAD_H
#define SW_HF_DOWNLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sw_base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- SHA-256 (FIPS 180-4) ---- */

typedef struct sw_sha256 {
    uint32_t h[8];
    uint64_t n_bytes;
    uint8_t block[64];
    size_t n_block;
} sw_sha256;

void sw_sha256_init(sw_sha256 *c);
void sw_sha256_update(sw_sha256 *c, const void *data, size_t n);
void sw_sha256_final(sw_sha256 *c, uint8_t out[32]);
/* Lowercase hex of the digest of data / of a whole file. hex: 65 bytes. */
void sw_sha256_hex(const void *data, size_t n, char hex[65]);
sw_status sw_sha256_file(const char *path, char hex[65], sw_err *err);

/* ---- download ---- */

typedef struct sw_hf_params {
    /* Cache root; NULL: $SPILLWAY_CACHE, else $XDG_CACHE_HOME/spillway, else
     * ~/.cache/spillway. Files land in <root>/hf/<owner>--<repo>/<file>. */
    const char *cache_dir;
    /* Hub base URL; NULL: $SPILLWAY_HF_ENDPOINT, else https://huggingface.co. */
    const char *endpoint;
    bool progress;   /* draw a progress bar on stderr */
    int max_tries;   /* attempts, resuming after a cut connection; <= 0: 5 */
} sw_hf_params;

/* Split "owner/repo:path/in/repo.gguf" (also "owner/repo/path.gguf" when the
 * repo part has exactly one slash before the file). Rejects empty parts, "..",
 * absolute paths and characters that do not belong in a URL path. */
sw_status sw_hf_parse_spec(const char *spec, char **repo, char **file, sw_err *err);

/* Make sure REPO:FILE is in the cache and return its local path in *path
 * (malloc'd). A file already in the cache is used as is (no network). Else it
 * is fetched from <endpoint>/<repo>/resolve/main/<file> into "<path>.part",
 * resuming from the part's size with a Range request, retried on transfer
 * errors, then checked against the SHA-256 from the X-Linked-ETag / ETag
 * header when that is a 64-hex-digit hash, and renamed into place. A hash
 * mismatch deletes the part file and is SW_E_FORMAT naming both hashes.
 * $HF_TOKEN, when set, is sent as a bearer token (never logged). */
sw_status sw_hf_download(const char *spec, const sw_hf_params *p, char **path, sw_err *err);

#ifdef __cplusplus
}
#endif
#endif
