/* plugins/ingest/ingest.c - outputs (temp file, then rename or upload), connection base
 * URLs and one streaming HTTP GET for the ingestion plugins. See ingest.h.
 *
 * Only weir/plugin.h, libcurl, jansson and (when present) the s3 plugin's client
 * library: this code is linked into plugins and must never reach into the host. */
#include "ingest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#ifdef WEIR_HAVE_S3CLIENT
#include "s3client.h"
#endif

#define OUT_IOBUF (1 << 20) /* stdio buffer of an output file */

#ifndef WEIR_VERSION /* set by weir's CMake; a plugin built alone still compiles */
#define WEIR_VERSION "dev"
#endif

int ing_fail(struct ing_err *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static const char *errtext(int e, char *buf, size_t len)
{
    return strerror_r(e, buf, len); /* GNU form: use the returned pointer */
}

bool ing_is_s3(const char *dest)
{
    return strncmp(dest, "s3://", 5) == 0;
}

/* mkdir -p of the folder part of `path`. */
static int make_parents(const char *path, struct ing_err *err)
{
    char *d = strdup(path);
    if (!d)
        return ing_fail(err, "out of memory");
    char *slash = strrchr(d, '/');
    if (!slash || slash == d) {
        free(d);
        return 0;
    }
    *slash = '\0';
    for (char *p = d + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(d, 0777) < 0 && errno != EEXIST) {
            char eb[128];
            ing_fail(err, "cannot create folder '%s': %s", d, errtext(errno, eb, sizeof eb));
            free(d);
            return -1;
        }
        *p = '/';
    }
    if (mkdir(d, 0777) < 0 && errno != EEXIST) {
        char eb[128];
        ing_fail(err, "cannot create folder '%s': %s", d, errtext(errno, eb, sizeof eb));
        free(d);
        return -1;
    }
    free(d);
    return 0;
}

void ing_out_release(struct ing_out *o)
{
    if (o->fp)
        fclose(o->fp);
    o->fp = NULL;
    if (o->tmp_path)
        unlink(o->tmp_path);
    free(o->tmp_path);
    free(o->dest);
    free(o->bucket);
    free(o->key);
    free(o->iobuf);
    memset(o, 0, sizeof *o);
}

int ing_out_open(struct ing_out *o, const char *dest, const char *workdir, struct ing_err *err)
{
    memset(o, 0, sizeof *o);
    if (!dest || !*dest)
        return ing_fail(err, "empty output destination");
    o->dest = strdup(dest);
    if (!o->dest)
        goto oom;
    size_t n = strlen(dest) + 64;
    if (ing_is_s3(dest)) {
        const char *b = dest + 5, *slash = strchr(b, '/');
        if (!slash || slash == b || !slash[1]) {
            ing_fail(err, "output '%s': expected s3://bucket/key", dest);
            goto fail;
        }
        o->s3 = true;
        o->bucket = strndup(b, (size_t)(slash - b));
        o->key = strdup(slash + 1);
        if (!o->bucket || !o->key)
            goto oom;
        if (!workdir || !*workdir)
            workdir = "/tmp";
        n = strlen(workdir) + 64;
        o->tmp_path = malloc(n);
        if (!o->tmp_path)
            goto oom;
        static unsigned seq;
        snprintf(o->tmp_path, n, "%s/.s3out-%ld-%u", workdir, (long)getpid(), ++seq);
    } else {
        if (dest[strlen(dest) - 1] == '/') {
            ing_fail(err, "output '%s' is a folder, expected a file name", dest);
            goto fail;
        }
        if (make_parents(dest, err) < 0)
            goto fail;
        o->tmp_path = malloc(n);
        if (!o->tmp_path)
            goto oom;
        snprintf(o->tmp_path, n, "%s.tmp-%ld", dest, (long)getpid());
    }
    int fd = open(o->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        char eb[128];
        ing_fail(err, "cannot create '%s': %s", o->tmp_path, errtext(errno, eb, sizeof eb));
        free(o->tmp_path);
        o->tmp_path = NULL; /* nothing to unlink */
        goto fail;
    }
    o->fp = fdopen(fd, "w");
    if (!o->fp) {
        close(fd);
        goto oom;
    }
    o->iobuf = malloc(OUT_IOBUF);
    if (o->iobuf)
        setvbuf(o->fp, o->iobuf, _IOFBF, OUT_IOBUF);
    return 0;
oom:
    ing_fail(err, "out of memory");
fail:
    ing_out_release(o);
    return -1;
}

int ing_out_truncate(struct ing_out *o, long long len, struct ing_err *err)
{
    char eb[128];
    if (fflush(o->fp) != 0 || ftruncate(fileno(o->fp), (off_t)len) < 0 ||
        fseeko(o->fp, (off_t)len, SEEK_SET) < 0)
        return ing_fail(err, "cannot rewind '%s': %s", o->tmp_path, errtext(errno, eb, sizeof eb));
    return 0;
}

#ifdef WEIR_HAVE_S3CLIENT
static int s3_cancelled(void *arg)
{
    const struct ing_task *t = arg;
    return t->host->cancelled(t->ctx);
}

static void s3_log(void *arg, const char *line)
{
    const struct ing_task *t = arg;
    t->host->log(t->ctx, WEIR_LOG_WARN, "%s", line);
}

static const char *content_type(const char *key)
{
    size_t n = strlen(key);
    static const struct {
        const char *ext, *type;
    } types[] = {
        { ".json.gz", "application/gzip" },    { ".gz", "application/gzip" },
        { ".ndjson", "application/x-ndjson" }, { ".jsonl", "application/x-ndjson" },
        { ".json", "application/json" },       { ".csv", "text/csv" },
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        size_t en = strlen(types[i].ext);
        if (n >= en && strcmp(key + n - en, types[i].ext) == 0)
            return types[i].type;
    }
    return "application/octet-stream";
}

/* Uploads the finished temporary file with the shared S3 client (plugins/s3/client). */
static int s3_upload(const struct ing_task *t, const char *conn_id, struct ing_out *o,
                     bool *retryable, struct ing_err *err)
{
    json_t *conn = t->host->conn_get(t->ctx, conn_id && *conn_id ? conn_id : "aws_default");
    if (!conn)
        return ing_fail(err, "output '%s': unknown S3 connection '%s'", o->dest,
                        conn_id && *conn_id ? conn_id : "aws_default");
    struct s3_err se = { 0 };
    struct s3_client *c = s3_client_from_conn(conn, &se);
    json_decref(conn);
    if (!c)
        return ing_fail(err, "output '%s': S3 connection '%s': %s", o->dest, conn_id, se.msg);
    s3_client_set_cancel(c, s3_cancelled, (void *)t);
    s3_client_set_log(c, s3_log, (void *)t);
    struct s3_put_opts opts = { .content_type = content_type(o->key) };
    int rc = s3_put_file(c, o->bucket, o->key, o->tmp_path, &opts, &se);
    s3_client_free(c);
    if (rc < 0) {
        *retryable = rc == S3_EHTTP || rc == S3_ENET;
        return ing_fail(err, "%s", se.msg);
    }
    return 0;
}
#endif

int ing_out_commit(struct ing_out *o, const struct ing_task *t, const char *s3_conn_id,
                   bool *retryable, struct ing_err *err)
{
    char eb[128];
    *retryable = false;
    if (!o->fp)
        return ing_fail(err, "output '%s' is not open", o->dest);
    int bad = fflush(o->fp) != 0 || ferror(o->fp);
    int e = errno;
    if (!bad && !o->s3 && fsync(fileno(o->fp)) < 0) {
        bad = 1;
        e = errno;
    }
    if (fclose(o->fp) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    o->fp = NULL;
    if (bad)
        return ing_fail(err, "cannot write '%s': %s", o->tmp_path, errtext(e, eb, sizeof eb));
    if (!o->s3) {
        if (rename(o->tmp_path, o->dest) < 0)
            return ing_fail(err, "cannot rename '%s' to '%s': %s", o->tmp_path, o->dest,
                            errtext(errno, eb, sizeof eb));
        free(o->tmp_path);
        o->tmp_path = NULL;
        return 0;
    }
#ifdef WEIR_HAVE_S3CLIENT
    return s3_upload(t, s3_conn_id, o, retryable, err);
#else
    (void)t;
    (void)s3_conn_id;
    return ing_fail(err, "output '%s': this build has no S3 client (plugins/s3/client)", o->dest);
#endif
}

/* ---- HTTP ---------------------------------------------------------------------------- */

char *ing_base_url(const struct ing_task *t, const char *conn_id, const char *default_url,
                   struct ing_err *err)
{
    json_t *c = conn_id && *conn_id ? t->host->conn_get(t->ctx, conn_id) : NULL;
    char *out = NULL;
    if (!c) {
        out = strdup(default_url);
    } else {
        const char *host = json_string_value(json_object_get(c, "host"));
        const char *type = json_string_value(json_object_get(c, "conn_type"));
        const char *schema = json_string_value(json_object_get(c, "schema"));
        json_t *port = json_object_get(c, "port");
        const char *xs = json_string_value(json_object_get(json_object_get(c, "extra"), "scheme"));
        if (!host || !*host) {
            json_decref(c);
            ing_fail(err, "connection '%s' has no host", conn_id);
            return NULL;
        }
        const char *scheme = "https";
        if (type && (strcmp(type, "http") == 0 || strcmp(type, "https") == 0))
            scheme = type;
        else if (xs && *xs)
            scheme = xs;
        struct ing_buf b = { 0 };
        if (!strstr(host, "://")) {
            ing_buf_adds(&b, scheme);
            ing_buf_adds(&b, "://");
        }
        ing_buf_adds(&b, host);
        if (json_is_integer(port)) {
            char pb[24];
            snprintf(pb, sizeof pb, ":%lld", (long long)json_integer_value(port));
            ing_buf_adds(&b, pb);
        }
        if (schema && *schema) {
            ing_buf_adds(&b, "/");
            ing_buf_adds(&b, schema);
        }
        ing_buf_add(&b, "", 1);
        json_decref(c);
        if (b.oom) {
            ing_buf_release(&b);
            ing_fail(err, "out of memory");
            return NULL;
        }
        out = b.p;
    }
    if (!out) {
        ing_fail(err, "out of memory");
        return NULL;
    }
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == '/')
        out[--n] = '\0';
    return out;
}

struct get_state {
    CURL *h;
    const struct ing_task *t;
    ing_body_fn fn;
    void *ud;
    struct ing_http_res *res;
    long status; /* 0 until the first body byte */
    size_t body_len;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *p)
{
    struct get_state *s = p;
    size_t n = size * nmemb;
    if (s->status == 0)
        curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &s->status);
    if (s->status >= 200 && s->status < 300) {
        if (s->fn(s->ud, data, n) != 0) {
            s->res->aborted_by_cb = true;
            return CURL_WRITEFUNC_ERROR;
        }
        return n;
    }
    size_t room = sizeof s->res->body - 1 - s->body_len;
    size_t k = n < room ? n : room;
    memcpy(s->res->body + s->body_len, data, k);
    s->body_len += k;
    s->res->body[s->body_len] = '\0';
    return n;
}

static int on_progress(void *p, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt;
    (void)dn;
    (void)ut;
    (void)un;
    struct get_state *s = p;
    if (s->t->host->cancelled(s->t->ctx)) {
        s->res->cancelled = true;
        return 1;
    }
    return 0;
}

int ing_http_get(void *handle, const struct ing_task *t, const char *url,
                 const struct ing_http_opts *opts, ing_body_fn fn, void *ud,
                 struct ing_http_res *res, struct ing_err *err)
{
    CURL *h = handle;
    struct get_state s = { .h = h, .t = t, .fn = fn, .ud = ud, .res = res };
    memset(res, 0, sizeof *res);
    res->retry_after_s = -1;
    curl_easy_reset(h);
    char curl_err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &s);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "weir/" WEIR_VERSION);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT,
                     opts && opts->connect_timeout_s > 0 ? opts->connect_timeout_s : 30L);
    if (opts && opts->timeout_s > 0)
        curl_easy_setopt(h, CURLOPT_TIMEOUT, opts->timeout_s);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, opts && opts->stall_s > 0 ? opts->stall_s : 60L);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &res->status);
    curl_off_t ra = -1;
    if (curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
        res->retry_after_s = (long)ra;
    if (rc == CURLE_OK)
        return 0;
    if (res->cancelled)
        return ing_fail(err, "cancelled");
    if (res->aborted_by_cb)
        return -1; /* the callback filled its own message */
    return ing_fail(err, "GET '%s': %s", url, curl_err[0] ? curl_err : curl_easy_strerror(rc));
}

bool ing_http_retryable(long status)
{
    return status == 408 || status == 425 || status == 429 || (status >= 500 && status < 600);
}

int ing_sleep(const struct ing_task *t, long ms)
{
    while (ms > 0) {
        if (t->host->cancelled(t->ctx))
            return -1;
        long step = ms < 100 ? ms : 100;
        struct timespec ts = { .tv_sec = 0, .tv_nsec = step * 1000000L };
        nanosleep(&ts, NULL);
        ms -= step;
    }
    return t->host->cancelled(t->ctx) ? -1 : 0;
}

long ing_backoff_ms(long base_ms, long max_ms, int attempt, long retry_after_s)
{
    long d = base_ms;
    for (int i = 1; i < attempt && d < max_ms; i++)
        d *= 2;
    if (retry_after_s > 0 && retry_after_s * 1000 > d)
        d = retry_after_s * 1000;
    return d > max_ms ? max_ms : d;
}

void ing_now_utc(char *buf, size_t len)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- buffers ------------------------------------------------------------------------- */

static bool buf_grow(struct ing_buf *b, size_t extra)
{
    if (b->oom)
        return false;
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void ing_buf_add(struct ing_buf *b, const char *s, size_t n)
{
    if (!buf_grow(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void ing_buf_adds(struct ing_buf *b, const char *s)
{
    ing_buf_add(b, s, strlen(s));
}

void ing_buf_add_jstr(struct ing_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (!buf_grow(b, n * 6 + 2))
        return;
    char *o = b->p + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c < 0x20) {
            *o++ = '\\';
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        } else {
            *o++ = (char)c;
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->p);
    b->p[b->len] = '\0';
}

void ing_buf_release(struct ing_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}
