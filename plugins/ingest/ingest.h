/* plugins/ingest/ingest.h - helpers shared by the ingestion plugins (weather, gharchive):
 * outputs that land atomically in a local file or an s3:// object, the base URL of an
 * HTTP connection, and one HTTP GET with libcurl that streams the body, honours
 * cancellation and classifies failures as retryable or not.
 *
 * This is plugin code: it sees only weir/plugin.h, libcurl and jansson (never a host
 * header). It is a static library (PIC) linked into each plugin, so every .so still
 * exports only weir_plugin_init. */
#ifndef WEIR_PLUGINS_INGEST_H
#define WEIR_PLUGINS_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <weir/plugin.h>

/* One line of error text, as core's struct weir_err keeps (plugins cannot use core). */
struct ing_err {
    char msg[256];
};

/* Fills err->msg (printf style) and returns -1, so `return ing_fail(err, ...)` reads well. */
int ing_fail(struct ing_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A task's host and context, passed together to helpers that log or poll cancellation. */
struct ing_task {
    struct weir_task_ctx *ctx;
    const struct weir_host *host;
};

/* ---- outputs ------------------------------------------------------------------------- */

/* An output being written: a local temporary file that ing_out_commit() renames into
 * place (local destination, same folder, so the rename is atomic) or uploads in one piece
 * (s3://bucket/key). A rerun therefore replaces the output and never leaves half a file.
 * `fp` is open for writing between ing_out_open() and ing_out_commit(). */
struct ing_out {
    char *dest;     /* as given: a path or s3://bucket/key */
    char *tmp_path; /* the temporary file */
    FILE *fp;
    bool s3;
    char *bucket, *key; /* s3 only */
    char *iobuf;        /* stdio buffer (large: the gharchive writer is hot) */
};

/* Validates `dest` (non-empty; s3://bucket/key with both parts) and opens the temporary
 * file: next to a local destination (creating missing parent folders), or in `workdir`
 * for s3. Returns 0, or -1 with err filled (o is then released). */
int ing_out_open(struct ing_out *o, const char *dest, const char *workdir, struct ing_err *err);

/* Truncates the temporary file back to `len` bytes (a retried download rewinds). */
int ing_out_truncate(struct ing_out *o, long long len, struct ing_err *err);

/* Finishes the output: flushes and closes the file, then renames it over the destination
 * or uploads it through the s3 connection `s3_conn_id`. Returns 0, or -1 with err filled
 * and *retryable set when trying again may help (network, 5xx). */
int ing_out_commit(struct ing_out *o, const struct ing_task *t, const char *s3_conn_id,
                   bool *retryable, struct ing_err *err);

/* Closes and removes whatever is left (an uncommitted temporary file). NULL-safe fields. */
void ing_out_release(struct ing_out *o);

/* True when `dest` names an S3 object (starts with s3://). */
bool ing_is_s3(const char *dest);

/* ---- HTTP ---------------------------------------------------------------------------- */

/* The base URL of connection `conn_id`, without a trailing '/': `default_url` when the
 * connection is unknown. From a connection: a host that already holds "scheme://" is used
 * as is; otherwise the scheme is conn_type when it is http or https (so the URI
 * http://127.0.0.1:8080 works), else extra.scheme, else https; then :port, then the
 * schema as a path prefix (http://h:1/mirror -> .../mirror). Returns a malloc'd string or
 * NULL (err filled) when the connection has no host. */
char *ing_base_url(const struct ing_task *t, const char *conn_id, const char *default_url,
                   struct ing_err *err);

/* Receives body bytes of a 2xx response; returns 0 to continue, non-zero to abort the
 * transfer (then ing_http_get reports the callback's message from its own err). */
typedef int (*ing_body_fn)(void *ud, const char *data, size_t len);

struct ing_http_opts {
    long timeout_s;         /* whole transfer; 0: none (then stalls end it: see stall_s) */
    long stall_s;           /* abort when under 1 byte/s for this long; 0: 60 */
    long connect_timeout_s; /* 0: 30 */
};

/* Outcome of one GET. */
struct ing_http_res {
    long status;        /* HTTP status, 0 when no response arrived */
    long retry_after_s; /* Retry-After of a 429/503, -1 when absent */
    char body[2048];    /* start of a non-2xx body (NUL-terminated), for error text */
    bool cancelled;     /* host->cancelled() said stop */
    bool aborted_by_cb; /* the body callback returned non-zero */
};

/* GETs `url` with the easy handle `h` (reset here): a 2xx body streams to `fn`, any other
 * status keeps up to sizeof res->body - 1 bytes for the error message. Returns 0 when a
 * whole response arrived (check res->status), or -1 on a transport error, a cancellation
 * or an aborted callback, with err filled (curl's text). */
int ing_http_get(void *h, const struct ing_task *t, const char *url,
                 const struct ing_http_opts *opts, ing_body_fn fn, void *ud,
                 struct ing_http_res *res, struct ing_err *err);

/* True for statuses that a later attempt may fix: 408, 425, 429 and 5xx. */
bool ing_http_retryable(long status);

/* Sleeps `ms` in short slices, returning early (-1) if the task is cancelled. */
int ing_sleep(const struct ing_task *t, long ms);

/* The delay before attempt `attempt` (1-based retry number): base_ms * 2^(attempt-1),
 * at least retry_after_s seconds when the server said so, capped at max_ms. */
long ing_backoff_ms(long base_ms, long max_ms, int attempt, long retry_after_s);

/* The current UTC time as "YYYY-MM-DDTHH:MM:SSZ" into buf (at least 21 bytes). */
void ing_now_utc(char *buf, size_t len);

/* A growing byte buffer. On allocation failure it stops growing and sets `oom`; the
 * owner checks that once, at the end, instead of after every append. */
struct ing_buf {
    char *p;
    size_t len, cap;
    bool oom;
};
/* ing_buf_add_jstr appends s[0..n) as a JSON string literal (quotes included). */
void ing_buf_add(struct ing_buf *b, const char *s, size_t n);
void ing_buf_adds(struct ing_buf *b, const char *s);
void ing_buf_add_jstr(struct ing_buf *b, const char *s, size_t n);
void ing_buf_release(struct ing_buf *b);

#endif
