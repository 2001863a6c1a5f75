/* webui/web_int.h - what the files of webui/ share: the server struct, the per-request
 * struct, response and error helpers, routing and the handler tables. Only files in
 * webui/ include this header. */
#ifndef WEIR_WEBUI_WEB_INT_H
#define WEIR_WEBUI_WEB_INT_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "webui/webui.h"

struct store;
struct weir_err;

/* Error codes of the HTTP layer, appended after core/err.h's WEIR_E* in the one table that
 * maps codes to HTTP status (server.c). */
enum {
    WEB_EUNAUTH = 100,    /* 401: no or bad credentials */
    WEB_EFORBIDDEN = 101, /* 403: role too low, or CSRF token missing */
    WEB_EMETHOD = 102,    /* 405 */
};

/* What a route needs from the caller. */
enum web_perm {
    PERM_PUBLIC = 0,
    PERM_READ,
    PERM_EDIT,
    PERM_ADMIN
};
enum web_role {
    ROLE_NONE = 0,
    ROLE_VIEWER,
    ROLE_OP,
    ROLE_ADMIN
};

#define WEB_NSTATUS  600
#define WEB_NBUCKETS 12

/* One histogram: cumulative buckets are computed when rendered. */
struct web__hist {
    _Atomic uint64_t bucket[WEB_NBUCKETS + 1]; /* last: +Inf */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_us;
};
extern const double web__bucket_le[WEB_NBUCKETS]; /* seconds */

#define WEB_CACHE_SLOTS 256
struct web__cache_ent {
    unsigned char key[32];
    char username[256];
    int role;
    int64_t expires; /* monotonic us; 0: empty */
};

/* A short-lived cache of serialized DAG lists (see api.c, h_dags_list). */
#define WEB_LCACHE_SLOTS 16
struct web__lcache_ent {
    char *key;  /* canonical query string */
    char *body; /* the JSON answer */
    size_t len;
    int64_t expires; /* monotonic us */
    uint64_t gen;    /* web.dags_gen when computed */
};

struct web {
    struct MHD_Daemon *d;
    int port;
    char *host, *store_url, *dags_folder;
    void (*wake)(void *ud);
    void *wake_ud;
    json_t *(*stats)(void *ud);
    void *stats_ud;
    size_t max_body;
    pthread_key_t st_key;
    pthread_mutex_t mu; /* guards stores */
    struct store **stores;
    size_t nstores;
    pthread_mutex_t cache_mu;
    struct web__cache_ent cache[WEB_CACHE_SLOTS];
    unsigned char cache_secret[32];
    _Atomic uint64_t status_count[WEB_NSTATUS];
    struct web__hist req_hist, store_hist;
    pthread_mutex_t lcache_mu;
    struct web__lcache_ent lcache[WEB_LCACHE_SLOTS];
    _Atomic uint64_t dags_gen; /* bumped by every DAG change made through this server */
    int64_t started_at;
};

/* One request. Lives from the first call of the access handler until MHD reports it
 * completed. */
struct req {
    struct web *w;
    struct MHD_Connection *c;
    const char *method, *url;
    struct buf body;
    bool too_big;
    bool responded;
    int status;
    int64_t t0;
    struct store *st; /* this thread's connection, opened on first use */
    /* auth */
    char user[256];
    int role;
    bool via_cookie;
    char csrf[80];
    /* routing */
    const char *args[8];
    int nargs;
    char *path_copy;
};

/* ---- server.c ---- */
/* This thread's store connection (opened on first use), or NULL with `err` filled. */
struct store *web__store(struct req *r, struct weir_err *err);
/* Responds with JSON (steals `v`). Returns 0. */
int web__json(struct req *r, int status, json_t *v);
/* Responds with a body of `type` (copied). */
int web__send(struct req *r, int status, const char *type, const void *data, size_t len,
              const char *const *headers);
/* 204 No Content. */
int web__no_content(struct req *r);
/* Airflow's problem JSON for a WEIR_E* / WEB_E* code (negative or positive) and a detail. */
int web__problem(struct req *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* web__problem with err's message (and location). */
int web__fail(struct req *r, int rc, const struct weir_err *err);
/* A header or query argument, or NULL. */
const char *web__header(struct req *r, const char *name);
const char *web__query(struct req *r, const char *name);

/* Reads ?limit= (default 100, at most 1000; 0 means the default) and ?offset=. Returns 0,
 * or the result of the 400 answer it queued for a bad value. */
int web__page_params(struct req *r, size_t *limit, size_t *offset);
/* Airflow's collection {NAME: [items in [offset, offset+limit)], "total_entries": n} from
 * the whole list `arr` (stolen). New reference. */
json_t *web__page_of(const char *name, json_t *arr, size_t limit, size_t offset);
/* The body as a JSON object: size, depth, syntax, UTF-8 and type checked; *out new ref. On
 * failure responds 400/413 and returns negative. */
int web__body_object(struct req *r, json_t **out);
/* Responds 400 if `o` has a key not in the NULL-terminated `allowed`. */
int web__check_keys(struct req *r, json_t *o, const char *const *allowed);
/* Records `t0` (monotonic us) as the start of one store call. */
void web__store_time(struct req *r, int64_t t0);
void web__hist_observe(struct web__hist *h, int64_t us);
void web__wake(struct req *r);
/* Valid id for dag/run/task/key paths: 1..250 bytes of [A-Za-z0-9_.~:+-], not . or .. */
bool web__valid_id(const char *s);

/* Times a store call: STORE(r, store_x(...)) */
#define STORE(r, call)              \
    ({                              \
        int64_t _t0 = ts_mono_us(); \
        int _rc = (call);           \
        web__store_time((r), _t0);  \
        _rc;                        \
    })

/* ---- auth.c ---- */
/* Authenticates the request (basic, bearer, cookie); fills r->user/role. 0, or responds
 * 401/403 and returns negative. Enforces CSRF for cookie-authenticated changes. */
int web__auth(struct req *r, enum web_perm perm);
/* Sets up the credential cache of a new server. */
void web__auth_init(struct web *w);
/* Forgets every cached basic-auth credential (after a user changed through this server). */
void web__auth_cache_clear(struct web *w);
int web__login(struct req *r);
int web__logout(struct req *r);
int web__me(struct req *r);
const char *web__role_name(int role);
int web__role_parse(const char *s);
/* Hashes a password for the store; 0 or negative. *out new string (free()). */
int web__hash_password(const char *password, char **out, struct weir_err *err);

/* ---- api.c / api_admin.c / metrics.c ---- */
typedef int web_handler_fn(struct req *r);
struct web_route {
    const char *method;
    const char *pattern; /* segments after /api/v1, '*' matches one segment */
    enum web_perm perm;
    web_handler_fn *fn;
};
extern const struct web_route web__routes[];
extern const size_t web__nroutes;
int web__metrics(struct req *r);
/* api_admin.c */
int web__h_variables_list(struct req *r);
int web__h_variable_get(struct req *r);
int web__h_variable_post(struct req *r);
int web__h_variable_patch(struct req *r);
int web__h_variable_delete(struct req *r);
int web__h_connections_list(struct req *r);
int web__h_connection_get(struct req *r);
int web__h_connection_post(struct req *r);
int web__h_connection_patch(struct req *r);
int web__h_connection_delete(struct req *r);
int web__h_pools_list(struct req *r);
int web__h_pool_get(struct req *r);
int web__h_pool_post(struct req *r);
int web__h_pool_patch(struct req *r);
int web__h_pool_delete(struct req *r);
int web__h_users_list(struct req *r);
int web__h_user_get(struct req *r);
int web__h_user_post(struct req *r);
int web__h_user_patch(struct req *r);
int web__h_user_delete(struct req *r);
int web__h_import_errors(struct req *r);
int web__h_version(struct req *r);

int web__health(struct req *r);
extern const char web__openapi_json[];

#endif
