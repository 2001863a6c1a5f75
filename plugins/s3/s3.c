/* plugins/s3/s3.c - the s3 plugin: put (a file or a glob), get, list, delete, copy, wait (a
 * key sensor) and create_bucket against any S3-compatible store, on top of the shared
 * client library (client/s3client.h). The connection comes from host->conn_get (the store
 * or WEIR_CONN_<ID>); see docs/s3.md for its forms.
 *
 * Errors: bad parameters and bad connections fail without retry; everything S3 or the
 * network says fails the try (so the task's retries apply) with S3's code and message. */
#include <errno.h>
#include <glob.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "s3client.h"
#include "weir/plugin.h"

#define CONN_PARAM                                                      \
    "\"conn_id\": {\"type\": \"string\", \"default\": \"aws_default\"," \
    " \"description\": \"connection with endpoint, region and keys (WEIR_CONN_<ID>)\"}"

struct op_ctx {
    struct weir_task_ctx *ctx;
    const struct weir_host *host;
};

static int is_cancelled(void *arg)
{
    struct op_ctx *o = arg;
    return o->host->cancelled(o->ctx);
}

static void log_retry(void *arg, const char *line)
{
    struct op_ctx *o = arg;
    o->host->log(o->ctx, WEIR_LOG_WARN, "%s", line);
}

/* Fails the task with the client's error: no retry for bad input. */
static int fail_s3(struct op_ctx *o, const struct s3_err *e)
{
    o->host->fail(o->ctx, "%s", e->msg);
    return e->status == S3_EINVAL ? WEIR_TASK_FAILED_NO_RETRY : WEIR_TASK_FAILED;
}

static const char *pstr(json_t *params, const char *key)
{
    return json_string_value(json_object_get(params, key));
}

/* Opens the client for params.conn_id, or fails the task (returned in *rc). */
static struct s3_client *open_client(struct op_ctx *o, json_t *params, int *rc)
{
    const char *id = pstr(params, "conn_id");
    json_t *conn = o->host->conn_get(o->ctx, id);
    if (!conn) {
        o->host->fail(o->ctx,
                      "connection '%s' not found (define it in the store or as "
                      "WEIR_CONN_<ID>, see docs/s3.md)",
                      id);
        *rc = WEIR_TASK_FAILED_NO_RETRY;
        return NULL;
    }
    struct s3_err e = { 0 };
    struct s3_client *c = s3_client_from_conn(conn, &e);
    json_decref(conn);
    if (!c) {
        *rc = fail_s3(o, &e);
        return NULL;
    }
    s3_client_set_cancel(c, is_cancelled, o);
    s3_client_set_log(c, log_retry, o);
    return c;
}

/* Parses an s3:// URL parameter; fails the task without retry when it is not one. */
static int parse_url(struct op_ctx *o, const char *what, const char *url, char **bucket, char **key,
                     bool need_key)
{
    struct s3_err e = { 0 };
    if (s3_url_parse(url, bucket, key, &e) < 0) {
        o->host->fail(o->ctx, "%s: %s", what, e.msg);
        return WEIR_TASK_FAILED_NO_RETRY;
    }
    if (need_key && !**key) {
        free(*bucket);
        free(*key);
        *bucket = *key = NULL;
        o->host->fail(o->ctx, "%s: '%s' names a bucket, not an object", what, url);
        return WEIR_TASK_FAILED_NO_RETRY;
    }
    return WEIR_TASK_SUCCESS;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Resolves a relative local path against the try's scratch folder (plugins never chdir). */
static char *local_path(struct op_ctx *o, const char *p)
{
    if (p[0] == '/')
        return strdup(p);
    const char *wd = json_string_value(json_object_get(o->host->context(o->ctx), "workdir"));
    if (!wd)
        return strdup(p);
    size_t n = strlen(wd) + strlen(p) + 2;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%s/%s", wd, p);
    return out;
}

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 1;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%s%s", a, b);
    return out;
}

static bool has_glob(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

/* Pushes `v` (stolen) as return_value; fails the task when the host cannot store it. */
static int push_result(struct op_ctx *o, json_t *v)
{
    if (!v)
        return o->host->fail(o->ctx, "out of memory");
    int rc = o->host->xcom_push(o->ctx, "return_value", v);
    json_decref(v);
    return rc < 0 ? o->host->fail(o->ctx, "cannot push return_value") : WEIR_TASK_SUCCESS;
}

/* ---- put -------------------------------------------------------------------------------- */

static int op_put(struct weir_task_ctx *ctx, const struct weir_host *host, json_t *params)
{
    struct op_ctx o = { ctx, host };
    char *bucket = NULL, *key = NULL, *src = NULL;
    struct s3_client *c = NULL;
    glob_t g = { 0 };
    bool globbed = false;
    json_t *uploaded = json_array();
    int rc = parse_url(&o, "put", pstr(params, "dest"), &bucket, &key, false);
    if (rc != WEIR_TASK_SUCCESS)
        goto out;
    json_int_t thr = json_integer_value(json_object_get(params, "multipart_threshold"));
    json_int_t part = json_integer_value(json_object_get(params, "part_size"));
    if (thr < 0 || part < 0) {
        host->fail(ctx, "put: multipart_threshold and part_size must not be negative");
        rc = WEIR_TASK_FAILED_NO_RETRY;
        goto out;
    }
    struct s3_put_opts opts = { .content_type = pstr(params, "content_type"),
                                .multipart_threshold = (uint64_t)thr,
                                .part_size = (uint64_t)part };
    if (!(src = local_path(&o, pstr(params, "src")))) {
        rc = host->fail(ctx, "out of memory");
        goto out;
    }
    bool many = has_glob(src);
    size_t n = 1;
    if (many) {
        int gr = glob(src, GLOB_ERR, NULL, &g);
        globbed = gr != GLOB_NOMATCH;
        if (gr == GLOB_NOMATCH) {
            rc = host->fail(ctx, "put: no file matches '%s'", src);
            goto out;
        }
        if (gr != 0) {
            rc = host->fail(ctx, "put: cannot read the folders of '%s'", src);
            goto out;
        }
        n = g.gl_pathc;
    }
    /* Several files, or a dest ending in '/', make dest a prefix: key = prefix + basename. */
    bool prefix = many || !*key || key[strlen(key) - 1] == '/';
    if (many && *key && key[strlen(key) - 1] != '/') { /* "s3://b/raw" + glob: raw/<name> */
        char *k2 = join(key, "/");
        if (!k2) {
            rc = host->fail(ctx, "out of memory");
            goto out;
        }
        free(key);
        key = k2;
    }
    if (!(c = open_client(&o, params, &rc)))
        goto out;
    for (size_t i = 0; i < n; i++) {
        const char *path = many ? g.gl_pathv[i] : src;
        struct stat sb;
        if (many && (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)))
            continue; /* folders matched by the pattern */
        char *k = prefix ? join(key, base_name(path)) : strdup(key);
        if (!k) {
            rc = host->fail(ctx, "out of memory");
            goto out;
        }
        struct s3_err e = { 0 };
        host->log(ctx, WEIR_LOG_INFO, "uploading '%s' to 's3://%s/%s'", path, bucket, k);
        if (s3_put_file(c, bucket, k, path, &opts, &e) < 0) {
            free(k);
            rc = fail_s3(&o, &e);
            goto out;
        }
        size_t ul = strlen(bucket) + strlen(k) + 7;
        char *url = malloc(ul);
        if (url)
            snprintf(url, ul, "s3://%s/%s", bucket, k);
        free(k);
        if (!url || json_array_append_new(uploaded, json_string(url)) < 0) {
            free(url);
            rc = host->fail(ctx, "out of memory");
            goto out;
        }
        free(url);
        host->progress(ctx, (double)(i + 1) / (double)n, NULL);
    }
    if (json_array_size(uploaded) == 0) {
        rc = host->fail(ctx, "put: no regular file matches '%s'", src);
        goto out;
    }
    host->log(ctx, WEIR_LOG_INFO, "uploaded %zu file(s)", json_array_size(uploaded));
    rc = push_result(&o, json_incref(uploaded));
out:
    if (globbed)
        globfree(&g);
    json_decref(uploaded);
    s3_client_free(c);
    free(bucket);
    free(key);
    free(src);
    return rc;
}

/* ---- get -------------------------------------------------------------------------------- */

/* Creates the parent folders of path (mkdir -p of its dirname). */
static int make_parents(const char *path)
{
    char *d = strdup(path);
    if (!d)
        return -1;
    for (char *p = d + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(d, 0777) != 0 && errno != EEXIST) {
            free(d);
            return -1;
        }
        *p = '/';
    }
    free(d);
    return 0;
}

static int op_get(struct weir_task_ctx *ctx, const struct weir_host *host, json_t *params)
{
    struct op_ctx o = { ctx, host };
    char *bucket = NULL, *key = NULL, *dest = NULL;
    struct s3_client *c = NULL;
    int rc = parse_url(&o, "get", pstr(params, "src"), &bucket, &key, true);
    if (rc != WEIR_TASK_SUCCESS)
        goto out;
    if (!(dest = local_path(&o, pstr(params, "dest")))) {
        rc = host->fail(ctx, "out of memory");
        goto out;
    }
    struct stat sb;
    size_t dl = strlen(dest);
    bool slash = dl && dest[dl - 1] == '/';
    if (slash || (stat(dest, &sb) == 0 && S_ISDIR(sb.st_mode))) {
        size_t n = dl + strlen(base_name(key)) + 2;
        char *d = malloc(n);
        if (d)
            snprintf(d, n, "%s%s%s", dest, slash ? "" : "/", base_name(key));
        free(dest);
        if (!(dest = d)) {
            rc = host->fail(ctx, "out of memory");
            goto out;
        }
    }
    if (make_parents(dest) != 0) {
        char eb[128];
        rc = host->fail(ctx, "get: cannot create the folder of '%s': %s", dest,
                        strerror_r(errno, eb, sizeof eb));
        goto out;
    }
    if (!(c = open_client(&o, params, &rc)))
        goto out;
    struct s3_err e = { 0 };
    host->log(ctx, WEIR_LOG_INFO, "downloading 's3://%s/%s' to '%s'", bucket, key, dest);
    if (s3_get_to_file(c, bucket, key, dest, &e) < 0) {
        rc = fail_s3(&o, &e);
        goto out;
    }
    rc = push_result(&o, json_string(dest));
out:
    s3_client_free(c);
    free(bucket);
    free(key);
    free(dest);
    return rc;
}

/* ---- list ------------------------------------------------------------------------------- */

static int op_list(struct weir_task_ctx *ctx, const struct weir_host *host, json_t *params)
{
    struct op_ctx o = { ctx, host };
    char *bucket = NULL, *prefix = NULL;
    struct s3_client *c = NULL;
    struct s3_object_list l = { 0 };
    int rc = parse_url(&o, "list", pstr(params, "url"), &bucket, &prefix, false);
    if (rc != WEIR_TASK_SUCCESS)
        goto out;
    json_int_t page = json_integer_value(json_object_get(params, "page_size"));
    json_int_t max = json_integer_value(json_object_get(params, "max_items"));
    bool details = json_is_true(json_object_get(params, "details"));
    if (page < 1 || page > 1000 || max < 1 || max > 1000000) {
        host->fail(ctx, "list: page_size must be 1..1000 and max_items 1..1000000");
        rc = WEIR_TASK_FAILED_NO_RETRY;
        goto out;
    }
    if (!(c = open_client(&o, params, &rc)))
        goto out;
    struct s3_err e = { 0 };
    if (s3_list(c, bucket, prefix, (int)page, (size_t)max, &l, &e) < 0) {
        rc = fail_s3(&o, &e);
        goto out;
    }
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < l.n; i++) {
        json_t *v = details ? json_pack("{s:s, s:I, s:s, s:s}", "key", l.items[i].key, "size",
                                        (json_int_t)l.items[i].size, "etag", l.items[i].etag,
                                        "last_modified", l.items[i].last_modified)
                            : json_string(l.items[i].key);
        if (!v) {
            host->log(ctx, WEIR_LOG_WARN, "list: skipping a key that is not UTF-8");
            continue;
        }
        json_array_append_new(arr, v);
    }
    host->log(ctx, WEIR_LOG_INFO, "listed %zu object(s) under 's3://%s/%s'", l.n, bucket, prefix);
    rc = push_result(&o, arr);
out:
    s3_object_list_release(&l);
    s3_client_free(c);
    free(bucket);
    free(prefix);
    return rc;
}

/* ---- delete ----------------------------------------------------------------------------- */

static int op_delete(struct weir_task_ctx *ctx, const struct weir_host *host, json_t *params)
{
    struct op_ctx o = { ctx, host };
    char *bucket = NULL, *key = NULL;
    struct s3_client *c = NULL;
    struct s3_object_list l = { 0 };
    bool recursive = json_is_true(json_object_get(params, "recursive"));
    int rc = parse_url(&o, "delete", pstr(params, "url"), &bucket, &key, !recursive);
    if (rc != WEIR_TASK_SUCCESS)
        goto out;
    if (!(c = open_client(&o, params, &rc)))
        goto out;
    struct s3_err e = { 0 };
    size_t n = 0;
    if (recursive) {
        if (s3_list(c, bucket, key, 0, 0, &l, &e) < 0) {
            rc = fail_s3(&o, &e);
            goto out;
        }
        for (size_t i = 0; i < l.n; i++) {
            if (s3_delete(c, bucket, l.items[i].key, &e) < 0) {
                rc = fail_s3(&o, &e);
                goto out;
            }
            host->progress(ctx, (double)(i + 1) / (double)l.n, NULL);
        }
        n = l.n;
    } else {
        if (s3_delete(c, bucket, key, &e) < 0) {
            rc = fail_s3(&o, &e);
            goto out;
        }
        n = 1;
    }
    host->log(ctx, WEIR_LOG_INFO, "deleted %zu object(s) at 's3://%s/%s'", n, bucket, key);
    rc = push_result(&o, json_integer((json_int_t)n));
out:
    s3_object_list_release(&l);
    s3_client_free(c);
    free(bucket);
    free(key);
    return rc;
}

/* ---- copy ------------------------------------------------------------------------------- */

static int op_copy(struct weir_task_ctx *ctx, const struct weir_host *host, json_t *params)
{
    struct op_ctx o = { ctx, host };
    char *sb = NULL, *sk = NULL, *db = NULL, *dk = NULL, *k = NULL;
    struct s3_client *c = NULL;
    int rc = parse_url(&o, "copy", pstr(params, "src"), &sb, &sk, true);
    if (rc != WEIR_TASK_SUCCESS)
        goto out;
    rc = parse_url(&o, "copy", pstr(params, "dest"), &db, &dk, false);
    if (rc != WEIR_TASK_SUCCESS)
        goto out;
    k = (!*dk || dk[strlen(dk) - 1] == '/') ? join(dk, base_name(sk)) : strdup(dk);
    if (!k) {
        rc = host->fail(ctx, "out of memory");
        goto out;
    }
    if (!(c = open_client(&o, params, &rc)))
        goto out;
    struct s3_err e = { 0 };
    host->log(ctx, WEIR_LOG_INFO, "copying 's3://%s/%s' to 's3://%s/%s'", sb, sk, db, k);
    if (s3_copy(c, sb, sk, db, k, &e) < 0) {
        rc = fail_s3(&o, &e);
        goto out;
    }
    size_t ul = strlen(db) + strlen(k) + 7;
    char *url = malloc(ul);
    if (url)
        snprintf(url, ul, "s3://%s/%s", db, k);
    rc = push_result(&o, url ? json_string(url) : NULL);
    free(url);
out:
    s3_client_free(c);
    free(sb);
    free(sk);
    free(db);
    free(dk);
    free(k);
    return rc;
}

/* ---- wait (sensor) ---------------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int op_wait(struct weir_task_ctx *ctx, const struct weir_host *host, json_t *params)
{
    struct op_ctx o = { ctx, host };
    char *bucket = NULL, *key = NULL;
    struct s3_client *c = NULL;
    bool prefix = json_is_true(json_object_get(params, "prefix"));
    bool soft_fail = json_is_true(json_object_get(params, "soft_fail"));
    double interval = json_number_value(json_object_get(params, "poke_interval"));
    double timeout = json_number_value(json_object_get(params, "timeout"));
    int rc = parse_url(&o, "wait", pstr(params, "url"), &bucket, &key, !prefix);
    if (rc != WEIR_TASK_SUCCESS)
        goto out;
    if (interval < 0.1 || timeout < 0) {
        host->fail(ctx, "wait: poke_interval must be at least 0.1 and timeout not negative");
        rc = WEIR_TASK_FAILED_NO_RETRY;
        goto out;
    }
    if (!(c = open_client(&o, params, &rc)))
        goto out;
    double start = now_s();
    for (int poke = 1;; poke++) {
        struct s3_err e = { 0 };
        int found;
        if (prefix) {
            struct s3_object_list l = { 0 };
            found = s3_list(c, bucket, key, 1, 1, &l, &e);
            if (found == S3_ETOOBIG) /* more than one: there is something */
                found = 1;
            s3_object_list_release(&l);
        } else {
            found = s3_head(c, bucket, key, NULL, &e);
        }
        if (found < 0) {
            rc = fail_s3(&o, &e);
            goto out;
        }
        if (found > 0) {
            host->log(ctx, WEIR_LOG_INFO, "found 's3://%s/%s' after %d poke(s)", bucket, key, poke);
            size_t ul = strlen(bucket) + strlen(key) + 7;
            char *url = malloc(ul);
            if (url)
                snprintf(url, ul, "s3://%s/%s", bucket, key);
            rc = push_result(&o, url ? json_string(url) : NULL);
            free(url);
            goto out;
        }
        double waited = now_s() - start;
        if (waited >= timeout) {
            if (soft_fail) {
                host->log(ctx, WEIR_LOG_WARN, "'s3://%s/%s' did not appear within %g s: skipping",
                          bucket, key, timeout);
                rc = WEIR_TASK_SKIPPED;
            } else {
                host->fail(ctx, "wait: 's3://%s/%s' did not appear within %g s", bucket, key,
                           timeout);
                rc = WEIR_TASK_FAILED_NO_RETRY; /* as Airflow's sensor timeout */
            }
            goto out;
        }
        host->log(ctx, WEIR_LOG_INFO, "poke %d: 's3://%s/%s' not there yet", poke, bucket, key);
        double until = now_s() + interval;
        if (until > start + timeout)
            until = start + timeout;
        while (now_s() < until) {
            if (host->cancelled(ctx)) {
                rc = host->fail(ctx, "wait: cancelled");
                goto out;
            }
            struct timespec ts = { 0, 100 * 1000000L };
            nanosleep(&ts, NULL);
        }
    }
out:
    s3_client_free(c);
    free(bucket);
    free(key);
    return rc;
}

/* ---- create_bucket ---------------------------------------------------------------------- */

static int op_create_bucket(struct weir_task_ctx *ctx, const struct weir_host *host, json_t *params)
{
    struct op_ctx o = { ctx, host };
    int rc = WEIR_TASK_SUCCESS;
    struct s3_client *c = open_client(&o, params, &rc);
    if (!c)
        return rc;
    struct s3_err e = { 0 };
    const char *b = pstr(params, "bucket");
    if (strncmp(b, "s3://", 5) == 0)
        b += 5;
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)strcspn(b, "/"), b);
    if (s3_bucket_create(c, name, &e) < 0)
        rc = fail_s3(&o, &e);
    else
        host->log(ctx, WEIR_LOG_INFO, "bucket '%s' is ready", name);
    s3_client_free(c);
    return rc;
}

/* ---- description ------------------------------------------------------------------------ */

static const struct weir_operator operators[] = {
    {
        .name = "put",
        .summary = "upload a file or a glob of files (multipart above a threshold)",
        .params_schema =
            "{\"src\": {\"type\": \"string\", \"required\": true, \"description\":"
            " \"local file or glob (relative paths: the try's scratch folder)\"},"
            " \"dest\": {\"type\": \"string\", \"required\": true, \"description\":"
            " \"s3://bucket/key, or s3://bucket/prefix/ (always a prefix for a glob)\"},"
            " \"content_type\": {\"type\": \"string\", \"description\":"
            " \"Content-Type of the objects (default application/octet-stream)\"},"
            " \"multipart_threshold\": {\"type\": \"integer\", \"default\": 8388608,"
            " \"description\": \"files larger than this many bytes use multipart upload\"},"
            " \"part_size\": {\"type\": \"integer\", \"default\": 8388608, \"description\":"
            " \"multipart part size in bytes (at least 5 MiB); bounds memory use\"}," CONN_PARAM
            "}",
        .run = op_put,
    },
    {
        .name = "get",
        .summary = "download an object to a local file",
        .params_schema =
            "{\"src\": {\"type\": \"string\", \"required\": true, \"description\":"
            " \"s3://bucket/key\"},"
            " \"dest\": {\"type\": \"string\", \"required\": true, \"description\":"
            " \"local file, or a folder (ending in / or existing) to keep the key's name\"}," CONN_PARAM
            "}",
        .run = op_get,
    },
    {
        .name = "list",
        .summary = "list the keys under a prefix (XCom return_value)",
        .params_schema =
            "{\"url\": {\"type\": \"string\", \"required\": true, \"description\":"
            " \"s3://bucket/prefix\"},"
            " \"details\": {\"type\": \"boolean\", \"default\": false, \"description\":"
            " \"push objects {key,size,etag,last_modified} instead of keys\"},"
            " \"page_size\": {\"type\": \"integer\", \"default\": 1000, \"description\":"
            " \"keys per request (1..1000)\"},"
            " \"max_items\": {\"type\": \"integer\", \"default\": 10000, \"description\":"
            " \"fail when there are more keys than this\"}," CONN_PARAM "}",
        .run = op_list,
    },
    {
        .name = "delete",
        .summary = "delete an object, or every object under a prefix",
        .params_schema =
            "{\"url\": {\"type\": \"string\", \"required\": true, \"description\":"
            " \"s3://bucket/key (or a prefix with recursive)\"},"
            " \"recursive\": {\"type\": \"boolean\", \"default\": false, \"description\":"
            " \"delete every key under the prefix\"}," CONN_PARAM "}",
        .run = op_delete,
    },
    {
        .name = "copy",
        .summary = "copy an object server-side",
        .params_schema =
            "{\"src\": {\"type\": \"string\", \"required\": true, \"description\":"
            " \"s3://bucket/key\"},"
            " \"dest\": {\"type\": \"string\", \"required\": true, \"description\":"
            " \"s3://bucket/key, or s3://bucket/prefix/ to keep the name\"}," CONN_PARAM "}",
        .run = op_copy,
    },
    {
        .name = "wait",
        .summary = "sensor: wait until a key (or any key under a prefix) exists",
        .params_schema =
            "{\"url\": {\"type\": \"string\", \"required\": true, \"description\":"
            " \"s3://bucket/key\"},"
            " \"prefix\": {\"type\": \"boolean\", \"default\": false, \"description\":"
            " \"wait for any key under url as a prefix\"},"
            " \"poke_interval\": {\"type\": \"number\", \"default\": 30, \"description\":"
            " \"seconds between checks\"},"
            " \"timeout\": {\"type\": \"number\", \"default\": 3600, \"description\":"
            " \"seconds before the sensor fails (without retry)\"},"
            " \"soft_fail\": {\"type\": \"boolean\", \"default\": false, \"description\":"
            " \"skip instead of failing on timeout\"}," CONN_PARAM "}",
        .run = op_wait,
    },
    {
        .name = "create_bucket",
        .summary = "create a bucket (no error when it exists and is ours)",
        .params_schema = "{\"bucket\": {\"type\": \"string\", \"required\": true,"
                         " \"description\": \"bucket name (or s3://bucket)\"}," CONN_PARAM "}",
        .run = op_create_bucket,
    },
};

static const struct weir_plugin plugin = {
    .abi = WEIR_PLUGIN_ABI,
    .size = sizeof(struct weir_plugin),
    .name = "s3",
    .version = "1.0.0",
    .summary = "objects in S3-compatible storage (AWS, MinIO, Scaleway): put, get, list, "
               "delete, copy, wait",
    .n_operators = sizeof operators / sizeof operators[0],
    .operators = operators,
};

const struct weir_plugin *weir_plugin_init(const struct weir_host *host)
{
    if (!host || host->abi != WEIR_PLUGIN_ABI || host->size < sizeof(struct weir_host))
        return NULL;
    return &plugin;
}
