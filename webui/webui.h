/* webui/webui.h - weir's HTTP server: the REST API under /api/v1 (Airflow's stable REST
 * API v1 shapes, docs/rest-api.md), auth (users and roles in the store; basic auth, bearer
 * tokens, a session cookie with CSRF token for the UI), /health, /metrics and the UI's
 * static assets, on libmicrohttpd's own threads.
 *
 * Threads: web_start/web_stop from one controlling thread. Requests run on the server's
 * thread pool; each pool thread opens its own store connection (never shared). The
 * callbacks in web_opts are called from those threads, so they must be thread-safe. */
#ifndef WEIR_WEBUI_WEBUI_H
#define WEIR_WEBUI_WEBUI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct weir_err;
struct web;

struct web_opts {
    const char *host;      /* address to bind, e.g. "127.0.0.1" or "0.0.0.0"; NULL: 127.0.0.1 */
    int port;              /* 0: pick a free port (see web_port) */
    const char *store_url; /* every server thread opens its own connection to it */
    const char
        *dags_folder; /* for /dags/{id}/source: only files below it are served; may be NULL */
    /* Called after the API changed the store (trigger, clear, unpause...) so the scheduler
     * re-reads it. Any thread. May be NULL. */
    void (*wake)(void *ud);
    void *wake_ud;
    /* Scheduler counters for /metrics and /health (a JSON object of name -> number, new
     * reference, or NULL); NULL when no scheduler runs in this process. Any thread. */
    json_t *(*stats)(void *ud);
    void *stats_ud;
    int threads;        /* server threads; 0: number of CPUs, at most 8 */
    int conn_timeout_s; /* idle connection timeout; 0: 30 s */
    size_t max_body;    /* request body limit; 0: 1 MiB */
};

/* Opens one store connection to check the store, binds and starts serving. Returns once
 * the socket listens, or NULL with `err` filled (WEIR_EIO: cannot bind; WEIR_EUNAVAIL:
 * store unreachable). Strings in `o` are copied. */
struct web *web_start(const struct web_opts *o, struct weir_err *err);
/* The port actually bound (useful with port 0). */
int web_port(const struct web *w);
/* Stops accepting, waits for requests in flight, closes every thread's store connection
 * and frees `w`. NULL-safe. */
void web_stop(struct web *w);

/* The check every JSON request body passes, in this order: size (at most `max` bytes:
 * -WEIR_ETOOBIG), UTF-8, nesting depth (32), JSON syntax with duplicate keys refused, and an
 * object at the top (all -WEIR_EINVAL with the position in `err`). *out gets a new
 * reference. Pure and thread-safe; public for the fuzz target tests/fuzz/fuzz_webbody.c. */
int web_parse_body(const char *data, size_t len, size_t max, json_t **out, struct weir_err *err);

/* ---- users and tokens (for `weir users` and `weir standalone`) ---- */

struct store;

/* Creates a user with role "admin", "op" or "viewer" and the password hashed with
 * libsodium's crypto_pwhash_str (Argon2id, interactive limits). -WEIR_EINVAL for a bad
 * role, username or a password shorter than 8 bytes; -WEIR_ECONFLICT if it exists. */
int web_user_create(struct store *st, const char *username, const char *role, const char *password,
                    struct weir_err *err);
/* Changes a user's password (same rules as web_user_create). -WEIR_ENOTFOUND if absent. */
int web_user_set_password(struct store *st, const char *username, const char *password,
                          struct weir_err *err);
/* Writes a random password (24 URL-safe characters) into `out` (at least 25 bytes). */
void web_random_password(char *out, size_t len);
/* Creates an API token for `username` valid for `ttl_us` (0: no expiry) and writes its text
 * ("weir_" + 64 hex digits) into `out` (at least 72 bytes); only its hash is stored.
 * -WEIR_ENOTFOUND for an unknown user. */
int web_token_create(struct store *st, const char *username, int64_t ttl_us, char *out, size_t len,
                     struct weir_err *err);

/* The UI's static assets, compiled into the binary. `path` is the URL path ("/index.html",
 * "/app.js"); "/" serves "/index.html" and "/login" serves "/login.html" when present (else
 * a minimal built-in login page). Assets are served to anyone (they hold no data: every
 * datum comes from the authenticated API) with ETag and Cache-Control headers.
 *
 * Provided by the file that webui/assets/assets.cmake adds to weir_webui (the asset
 * generator); when that file does not exist, webui/assets_none.c returns an empty
 * table. *n gets the number of entries. The table is static and never freed. */
struct web_asset {
    const char *path, *content_type;
    const unsigned char *data;
    size_t len;
};
const struct web_asset *web_assets(size_t *n);

#endif
