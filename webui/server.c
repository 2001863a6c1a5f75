/* webui/server.c - the HTTP server on libmicrohttpd: its threads, request bodies and their
 * limits, routing to the handlers of api.c and api_admin.c, static assets, problem-JSON
 * errors (the one table from error codes to HTTP status), per-thread store connections,
 * request metrics and the access log.
 *
 * Design: MHD runs an internal thread pool (epoll); a request is handled entirely on the
 * thread that read it, so each thread's store connection (a pthread key) is never used
 * concurrently. Bodies are collected into a buf capped at max_body: a request that
 * announces more than 8x the limit is answered 413 at once (and the connection closed);
 * a smaller oversized body is drained and then answered 413, so the client reliably
 * reads the answer. Slow clients are cut by MHD's connection timeout. */
#define LOG_MODULE "web"
#include "webui/webui.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/ts.h"
#include "store/store.h"
#include "webui/web_int.h"

#define JSON_MAX_DEPTH 32

const double web__bucket_le[WEB_NBUCKETS] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                              0.05,   0.1,   0.25,   0.5,   1.0,  5.0 };

/* ---- the one table from error codes to HTTP status ---------------------------------- */

struct code_status {
    int code;
    int status;
    const char *title; /* Airflow's problem titles */
    const char *type;  /* the fragment of Airflow's error documentation */
};

static const struct code_status code_table[] = {
    { WEIR_EINVAL, 400, "Bad Request", "BadRequest" },
    { WEB_EUNAUTH, 401, "Unauthorized", "Unauthenticated" },
    { WEB_EFORBIDDEN, 403, "Forbidden", "PermissionDenied" },
    { WEIR_ENOTFOUND, 404, "Not Found", "NotFound" },
    { WEB_EMETHOD, 405, "Method Not Allowed", "MethodNotAllowed" },
    { WEIR_ECONFLICT, 409, "Conflict", "AlreadyExists" },
    { WEIR_ETOOBIG, 413, "Request Entity Too Large", "RequestTooLarge" },
    { WEIR_EUNAVAIL, 503, "Service Unavailable", "Unavailable" },
    { WEIR_ETIMEOUT, 504, "Gateway Timeout", "Timeout" },
    { WEIR_EIO, 500, "Internal Server Error", "Unknown" },
    { WEIR_EINTERNAL, 500, "Internal Server Error", "Unknown" },
};

static const struct code_status *code_lookup(int code)
{
    if (code < 0)
        code = -code;
    for (size_t i = 0; i < WEIR_ARRAY_LEN(code_table); i++)
        if (code_table[i].code == code)
            return &code_table[i];
    return &code_table[WEIR_ARRAY_LEN(code_table) - 1];
}

/* ---- helpers ------------------------------------------------------------------------ */

bool web__valid_id(const char *s)
{
    if (!s || !*s || strlen(s) > 250 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return false;
    for (const char *p = s; *p; p++) {
        char ch = *p;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              strchr("_.~:+-", ch)))
            return false;
    }
    return true;
}

static bool valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + len > n)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

void web__hist_observe(struct web__hist *h, int64_t us)
{
    double s = (double)us / 1e6;
    size_t i = 0;
    while (i < WEB_NBUCKETS && s > web__bucket_le[i])
        i++;
    atomic_fetch_add(&h->bucket[i], 1);
    atomic_fetch_add(&h->count, 1);
    atomic_fetch_add(&h->sum_us, (uint64_t)(us > 0 ? us : 0));
}

void web__store_time(struct req *r, int64_t t0)
{
    web__hist_observe(&r->w->store_hist, ts_mono_us() - t0);
}

void web__wake(struct req *r)
{
    if (r->w->wake)
        r->w->wake(r->w->wake_ud);
}

struct store *web__store(struct req *r, struct weir_err *err)
{
    if (r->st)
        return r->st;
    struct web *w = r->w;
    struct store *st = pthread_getspecific(w->st_key);
    if (!st) {
        st = store_open(w->store_url, err);
        if (!st)
            return NULL;
        pthread_mutex_lock(&w->mu);
        w->stores = xrealloc(w->stores, (w->nstores + 1) * sizeof(*w->stores));
        w->stores[w->nstores++] = st;
        pthread_mutex_unlock(&w->mu);
        pthread_setspecific(w->st_key, st);
    }
    r->st = st;
    return st;
}

const char *web__header(struct req *r, const char *name)
{
    return MHD_lookup_connection_value(r->c, MHD_HEADER_KIND, name);
}

const char *web__query(struct req *r, const char *name)
{
    return MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND, name);
}

/* ---- responses ---------------------------------------------------------------------- */

static void add_common_headers(struct MHD_Response *resp, const char *type)
{
    MHD_add_response_header(resp, "Content-Type", type);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Referrer-Policy", "same-origin");
}

int web__send(struct req *r, int status, const char *type, const void *data, size_t len,
              const char *const *headers)
{
    if (r->responded)
        return 0;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return -WEIR_EINTERNAL;
    add_common_headers(resp, type);
    for (size_t i = 0; headers && headers[i]; i += 2)
        MHD_add_response_header(resp, headers[i], headers[i + 1]);
    if (r->too_big)
        MHD_add_response_header(resp, "Connection", "close");
    MHD_queue_response(r->c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    r->responded = true;
    r->status = status;
    return 0;
}

int web__json(struct req *r, int status, json_t *v)
{
    char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(v);
    if (!s)
        return web__problem(r, WEIR_EINTERNAL, "response cannot be serialized");
    const char *h[] = { "Cache-Control", "no-store", NULL };
    int rc = web__send(r, status, "application/json", s, strlen(s), h);
    free(s);
    return rc;
}

int web__no_content(struct req *r)
{
    const char *h[] = { "Cache-Control", "no-store", NULL };
    return web__send(r, 204, "application/json", "", 0, h);
}

static int problem_v(struct req *r, int code, const char *detail)
{
    const struct code_status *cs = code_lookup(code);
    json_t *o = json_object();
    char type[160];
    snprintf(type, sizeof type,
             "https://airflow.apache.org/docs/apache-airflow/stable/stable-rest-api-ref.html"
             "#section/Errors/%s",
             cs->type);
    json_object_set_new(o, "type", json_string(type));
    json_object_set_new(o, "title", json_string(cs->title));
    json_object_set_new(o, "status", json_integer(cs->status));
    /* a detail from stored data could hold invalid UTF-8: then send the title */
    json_t *d = json_string(detail);
    json_object_set_new(o, "detail", d ? d : json_string(cs->title));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (cs->status >= 500)
        LOG_ERROR("%s %s: %d %s", r->method, r->url, cs->status, detail);
    else
        LOG_INFO("%s %s: %d %s", r->method, r->url, cs->status, detail);
    const char *h401[] = { "Cache-Control", "no-store", "WWW-Authenticate", "Bearer realm=\"weir\"",
                           NULL };
    const char *h[] = { "Cache-Control", "no-store", NULL };
    int rc = web__send(r, cs->status, "application/problem+json", s, s ? strlen(s) : 0,
                       cs->status == 401 ? h401 : h);
    free(s);
    (void)rc;
    return code < 0 ? code : -code;
}

int web__problem(struct req *r, int code, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return problem_v(r, code, detail);
}

int web__fail(struct req *r, int rc, const struct weir_err *err)
{
    int code = rc < 0 ? -rc : rc;
    if (!code)
        code = WEIR_EINTERNAL;
    if (err && err->loc[0])
        return web__problem(r, code, "%s: %s", err->loc, err->msg);
    return problem_v(r, code, err && err->msg[0] ? err->msg : err_name(code));
}

/* ---- request bodies ------------------------------------------------------------------ */

/* Nesting depth of JSON text, ignoring brackets inside strings. */
static int json_depth(const char *s, size_t n)
{
    int depth = 0, max = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max)
                max = depth;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return max;
}

int web_parse_body(const char *data, size_t len, size_t max, json_t **out, struct weir_err *err)
{
    *out = NULL;
    if (len > max)
        return err_set(err, WEIR_ETOOBIG, "request body is larger than %zu bytes", max);
    if (len == 0)
        return err_set(err, WEIR_EINVAL, "request body is required");
    if (!valid_utf8((const unsigned char *)data, len))
        return err_set(err, WEIR_EINVAL, "request body is not valid UTF-8");
    if (json_depth(data, len) > JSON_MAX_DEPTH)
        return err_set(err, WEIR_EINVAL, "request body nests deeper than %d levels",
                       JSON_MAX_DEPTH);
    json_error_t je;
    json_t *v = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
    if (!v)
        return err_set(err, WEIR_EINVAL, "malformed JSON at line %d column %d: %s", je.line,
                       je.column, je.text);
    if (!json_is_object(v)) {
        json_decref(v);
        return err_set(err, WEIR_EINVAL, "request body must be a JSON object");
    }
    *out = v;
    return 0;
}

int web__body_object(struct req *r, json_t **out)
{
    *out = NULL;
    if (r->too_big)
        return web__problem(r, WEIR_ETOOBIG, "request body is larger than %zu bytes",
                            r->w->max_body);
    const char *ct = web__header(r, "Content-Type");
    if (r->body.len && ct && strncasecmp(ct, "application/json", 16) != 0 &&
        strncasecmp(ct, "application/merge-patch+json", 28) != 0)
        return web__problem(r, WEIR_EINVAL, "content type '%.60s' is not application/json", ct);
    struct weir_err err = { 0 };
    int rc = web_parse_body(r->body.s, r->body.len, r->w->max_body, out, &err);
    return rc < 0 ? web__fail(r, rc, &err) : 0;
}

int web__check_keys(struct req *r, json_t *o, const char *const *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        bool ok = false;
        for (size_t i = 0; allowed[i]; i++)
            if (strcmp(k, allowed[i]) == 0)
                ok = true;
        if (!ok)
            return web__problem(r, WEIR_EINVAL, "unknown field '%.100s'", k);
    }
    return 0;
}

/* ---- static assets and the built-in login page --------------------------------------- */

static const char builtin_login[] =
    "<!doctype html><html><head><meta charset=\"utf-8\"><title>weir: log in</title>"
    "<style>body{font-family:sans-serif;max-width:22em;margin:4em auto}"
    "input{display:block;width:100%;margin:.3em 0 1em;padding:.4em}"
    "#err{color:#b00}</style></head><body><h1>weir</h1>"
    "<form id=\"f\"><label>Username<input name=\"username\" autocomplete=\"username\" required>"
    "</label><label>Password<input name=\"password\" type=\"password\" "
    "autocomplete=\"current-password\" required></label><button>Log in</button>"
    "<p id=\"err\"></p></form><script>"
    "document.getElementById('f').onsubmit=async function(e){e.preventDefault();"
    "var d=new FormData(this);var r=await fetch('/auth/login',{method:'POST',"
    "headers:{'Content-Type':'application/json'},body:JSON.stringify({username:d.get('username'),"
    "password:d.get('password')})});if(r.ok){location.href='/'}else{"
    "document.getElementById('err').textContent='Wrong username or password'}};"
    "</script></body></html>";

static const struct web_asset *asset_find(const char *path)
{
    size_t n = 0;
    const struct web_asset *a = web_assets(&n);
    for (size_t i = 0; a && i < n; i++)
        if (strcmp(a[i].path, path) == 0)
            return &a[i];
    return NULL;
}

static int serve_asset(struct req *r, const char *path)
{
    if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0)
        return web__problem(r, WEB_EMETHOD, "method %s not allowed on '%.200s'", r->method, path);
    const struct web_asset *a = NULL;
    if (strcmp(path, "/") == 0)
        a = asset_find("/index.html");
    else if (strcmp(path, "/login") == 0)
        a = asset_find("/login.html");
    else
        a = asset_find(path);
    if (!a && (strcmp(path, "/login") == 0 || strcmp(path, "/") == 0)) {
        const char *h[] = { "Cache-Control", "no-store", NULL };
        return web__send(r, 200, "text/html; charset=utf-8", builtin_login,
                         sizeof builtin_login - 1, h);
    }
    if (!a)
        return web__problem(r, WEIR_ENOTFOUND, "no such page '%.200s'", path);
    /* ETag: FNV-1a of the content, so a rebuilt binary invalidates caches */
    uint64_t hsh = 1469598103934665603ULL;
    for (size_t i = 0; i < a->len; i++)
        hsh = (hsh ^ a->data[i]) * 1099511628211ULL;
    char etag[24];
    snprintf(etag, sizeof etag, "\"%016llx\"", (unsigned long long)hsh);
    const char *inm = web__header(r, "If-None-Match");
    const char *h[] = { "Cache-Control", "no-cache", "ETag", etag, NULL };
    if (inm && strcmp(inm, etag) == 0)
        return web__send(r, 304, a->content_type, "", 0, h);
    return web__send(r, 200, a->content_type, a->data, a->len, h);
}

/* ---- routing ------------------------------------------------------------------------- */

static int route(struct req *r)
{
    const char *url = r->url;
    if (!valid_utf8((const unsigned char *)url, strlen(url)))
        return web__problem(r, WEIR_EINVAL, "request path is not valid UTF-8");
    if (strcmp(url, "/health") == 0 || strcmp(url, "/api/v1/health") == 0) {
        if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0)
            return web__problem(r, WEB_EMETHOD, "method %s not allowed", r->method);
        return web__health(r);
    }
    if (strcmp(url, "/auth/login") == 0) {
        if (strcmp(r->method, "POST") != 0)
            return web__problem(r, WEB_EMETHOD, "method %s not allowed", r->method);
        return web__login(r);
    }
    if (strcmp(url, "/auth/logout") == 0) {
        if (strcmp(r->method, "POST") != 0)
            return web__problem(r, WEB_EMETHOD, "method %s not allowed", r->method);
        if (web__auth(r, PERM_READ) < 0)
            return -1;
        return web__logout(r);
    }
    if (strcmp(url, "/auth/me") == 0) {
        if (strcmp(r->method, "GET") != 0)
            return web__problem(r, WEB_EMETHOD, "method %s not allowed", r->method);
        if (web__auth(r, PERM_READ) < 0)
            return -1;
        return web__me(r);
    }
    if (strcmp(url, "/metrics") == 0) {
        if (strcmp(r->method, "GET") != 0)
            return web__problem(r, WEB_EMETHOD, "method %s not allowed", r->method);
        if (web__auth(r, PERM_READ) < 0)
            return -1;
        return web__metrics(r);
    }
    if (strcmp(url, "/api/v1/openapi.json") == 0) {
        if (web__auth(r, PERM_READ) < 0)
            return -1;
        const char *h[] = { "Cache-Control", "no-cache", NULL };
        return web__send(r, 200, "application/json", web__openapi_json, strlen(web__openapi_json),
                         h);
    }
    if (strcmp(url, "/api/v1") == 0 || strcmp(url, "/api/v1/") == 0) {
        if (web__auth(r, PERM_READ) < 0)
            return -1;
        return web__problem(r, WEIR_ENOTFOUND, "no such endpoint '%.200s'", url);
    }
    if (strncmp(url, "/api/v1/", 8) != 0)
        return serve_asset(r, url);

    /* split the rest into segments */
    r->path_copy = xstrdup(url + 8);
    const char *segs[12];
    int nseg = 0;
    char *save = r->path_copy, *p = r->path_copy;
    if (*p) {
        for (;;) {
            char *slash = strchr(save, '/');
            if (nseg == (int)WEIR_ARRAY_LEN(segs))
                return web__problem(r, WEIR_ENOTFOUND, "no such endpoint '%.200s'", url);
            segs[nseg++] = save;
            if (!slash)
                break;
            *slash = '\0';
            save = slash + 1;
        }
    }
    bool path_matched = false;
    for (size_t i = 0; i < web__nroutes; i++) {
        const struct web_route *rt = &web__routes[i];
        const char *pat = rt->pattern;
        int k = 0, na = 0;
        bool ok = true;
        const char *args[8];
        while (ok && *pat) {
            const char *end = strchr(pat, '/');
            size_t len = end ? (size_t)(end - pat) : strlen(pat);
            if (k >= nseg) {
                ok = false;
                break;
            }
            if (len == 1 && pat[0] == '*') {
                if (na < 8)
                    args[na++] = segs[k];
            } else if (strlen(segs[k]) != len || strncmp(segs[k], pat, len) != 0) {
                ok = false;
            }
            k++;
            pat += len;
            if (*pat == '/')
                pat++;
        }
        if (!ok || k != nseg)
            continue;
        path_matched = true;
        if (strcmp(rt->method, r->method) != 0 &&
            !(strcmp(rt->method, "GET") == 0 && strcmp(r->method, "HEAD") == 0))
            continue;
        for (int a = 0; a < na; a++) {
            /* "~" is Airflow's wildcard for "any DAG / any run" */
            if (strcmp(args[a], "~") != 0 && !web__valid_id(args[a]))
                return web__problem(r, WEIR_ENOTFOUND, "invalid id '%.100s' in path", args[a]);
            r->args[a] = args[a];
        }
        r->nargs = na;
        if (web__auth(r, rt->perm) < 0)
            return -1;
        return rt->fn(r);
    }
    if (path_matched) {
        if (web__auth(r, PERM_READ) < 0)
            return -1;
        return web__problem(r, WEB_EMETHOD, "method %s not allowed on '%.200s'", r->method, url);
    }
    if (web__auth(r, PERM_READ) < 0)
        return -1;
    return web__problem(r, WEIR_ENOTFOUND, "no such endpoint '%.200s'", url);
}

/* ---- MHD callbacks ---------------------------------------------------------------------- */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    struct web *w = cls;
    struct req *r = *con_cls;
    if (!r) {
        r = xcalloc(1, sizeof(*r));
        r->w = w;
        r->c = c;
        r->method = method;
        r->url = url;
        r->t0 = ts_mono_us();
        buf_init(&r->body, w->max_body + 1);
        *con_cls = r;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl) {
            char *end = NULL;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno || end == cl || n > (unsigned long long)w->max_body) {
                r->too_big = true;
                if (errno || end == cl || n > 8ULL * w->max_body) {
                    web__problem(r, WEIR_ETOOBIG, "request body is larger than %zu bytes",
                                 w->max_body);
                    return MHD_YES;
                }
            }
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!r->too_big && buf_add(&r->body, upload_data, *upload_size) < 0) {
            r->too_big = true;
            buf_reset(&r->body);
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->responded)
        return MHD_YES;
    if (r->too_big) {
        web__problem(r, WEIR_ETOOBIG, "request body is larger than %zu bytes", w->max_body);
    } else {
        route(r);
        if (!r->responded)
            web__problem(r, WEIR_EINTERNAL, "handler for '%.200s' sent no response", url);
    }
    return r->responded ? MHD_YES : MHD_NO;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c;
    struct web *w = cls;
    struct req *r = *con_cls;
    if (!r)
        return;
    int64_t us = ts_mono_us() - r->t0;
    if (r->status > 0 && r->status < WEB_NSTATUS)
        atomic_fetch_add(&w->status_count[r->status], 1);
    web__hist_observe(&w->req_hist, us);
    LOG_DEBUG("%s %s status=%d us=%lld user=%s%s", r->method, r->url, r->status, (long long)us,
              r->user[0] ? r->user : "-",
              toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted=1");
    buf_release(&r->body);
    free(r->path_copy);
    free(r);
    *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n')
        line[--n] = '\0';
    LOG_DEBUG("libmicrohttpd: %s", line);
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

static void web_free(struct web *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->nstores; i++)
        store_free(w->stores[i]);
    free(w->stores);
    for (size_t i = 0; i < WEB_LCACHE_SLOTS; i++) {
        free(w->lcache[i].key);
        free(w->lcache[i].body);
    }
    pthread_mutex_destroy(&w->lcache_mu);
    free(w->host);
    free(w->store_url);
    free(w->dags_folder);
    pthread_mutex_destroy(&w->mu);
    pthread_mutex_destroy(&w->cache_mu);
    pthread_key_delete(w->st_key);
    free(w);
}

struct web *web_start(const struct web_opts *o, struct weir_err *err)
{
    if (!o->store_url) {
        err_set(err, WEIR_EINVAL, "web server: no store url");
        return NULL;
    }
    if (o->port < 0 || o->port > 65535) {
        err_set(err, WEIR_EINVAL, "web server: port %d out of range", o->port);
        return NULL;
    }
    struct web *w = xcalloc(1, sizeof(*w));
    pthread_mutex_init(&w->mu, NULL);
    pthread_mutex_init(&w->cache_mu, NULL);
    pthread_mutex_init(&w->lcache_mu, NULL);
    pthread_key_create(&w->st_key, NULL);
    w->host = xstrdup(o->host && *o->host ? o->host : "127.0.0.1");
    w->store_url = xstrdup(o->store_url);
    w->dags_folder = o->dags_folder ? xstrdup(o->dags_folder) : NULL;
    w->wake = o->wake;
    w->wake_ud = o->wake_ud;
    w->stats = o->stats;
    w->stats_ud = o->stats_ud;
    w->max_body = o->max_body ? o->max_body : (size_t)1 << 20;
    w->started_at = ts_now_us();
    web__auth_init(w);

    /* check the store once up front, so a bad URL fails the start, not every request */
    struct store *st = store_open(w->store_url, err);
    if (!st) {
        web_free(w);
        return NULL;
    }
    int ver = 0;
    if (store_schema_version(st, &ver, err) < 0 || ver < 2) {
        if (ver < 2 && err && !err->code)
            err_set(err, WEIR_EUNAVAIL,
                    "web server: store schema is not migrated (run 'weir db "
                    "migrate')");
        store_free(st);
        web_free(w);
        return NULL;
    }
    store_free(st);

    struct sockaddr_in sa4;
    struct sockaddr_in6 sa6;
    struct sockaddr *sa = NULL;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    memset(&sa4, 0, sizeof sa4);
    memset(&sa6, 0, sizeof sa6);
    if (inet_pton(AF_INET, w->host, &sa4.sin_addr) == 1) {
        sa4.sin_family = AF_INET;
        sa4.sin_port = htons((uint16_t)o->port);
        sa = (struct sockaddr *)&sa4;
    } else if (inet_pton(AF_INET6, w->host, &sa6.sin6_addr) == 1) {
        sa6.sin6_family = AF_INET6;
        sa6.sin6_port = htons((uint16_t)o->port);
        sa = (struct sockaddr *)&sa6;
        flags |= MHD_USE_IPv6;
    } else {
        err_set(err, WEIR_EINVAL, "web server: host '%s' is not an IP address", w->host);
        web_free(w);
        return NULL;
    }
    int threads = o->threads;
    if (threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 2;
        if (threads > 8)
            threads = 8;
    }
    unsigned timeout = o->conn_timeout_s > 0 ? (unsigned)o->conn_timeout_s : 30;
    w->d = MHD_start_daemon(
        flags, (uint16_t)o->port, NULL, NULL, on_request, w, MHD_OPTION_SOCK_ADDR, sa,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads, MHD_OPTION_CONNECTION_TIMEOUT, timeout,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)0, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)128 * 1024,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
        w, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, w, MHD_OPTION_END);
    if (!w->d) {
        char eb[128];
        err_set(err, WEIR_EIO, "web server: cannot listen on %s:%d: %s", w->host, o->port,
                err_errno(errno, eb, sizeof eb));
        web_free(w);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(w->d, MHD_DAEMON_INFO_BIND_PORT);
    w->port = di ? di->port : o->port;
    LOG_INFO("web server listening url=http://%s%s%s:%d/ threads=%d",
             sa == (struct sockaddr *)&sa6 ? "[" : "", w->host,
             sa == (struct sockaddr *)&sa6 ? "]" : "", w->port, threads);
    return w;
}

int web_port(const struct web *w)
{
    return w ? w->port : 0;
}

void web_stop(struct web *w)
{
    if (!w)
        return;
    if (w->d)
        MHD_stop_daemon(w->d);
    web_free(w);
}
