/* plugins/gharchive/gharchive.c - the gharchive plugin: `gharchive.fetch` downloads every
 * hourly GH Archive file of the run's data interval (YYYY-MM-DD-H.json.gz, UTC, hour not
 * zero-padded) and streams it: libcurl's write callback -> the raw copy (optional) and
 * zlib inflate -> lines -> flattened rows (ghflat.c) -> NDJSON. Memory stays bounded by
 * the buffers, whatever the file size.
 *
 * Failure policy: a 404 means the hour is not published yet; the operator waits for it
 * up to `wait_timeout` seconds (polling, honouring cancellation), then fails so the
 * task's own retries apply. 429, 5xx, network errors and truncated or corrupt gzip
 * streams are retried inside the operator (`http_retries`, exponential backoff) before
 * failing the same way. Lines that are not JSON fail the task without retry once more
 * than `max_bad_lines` are seen. Outputs are written to temporary files and renamed (or
 * uploaded) only when everything succeeded, so a rerun replaces them whole. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "ghflat.h"
#include "ingest.h"

#define DEFAULT_BASE_URL "https://data.gharchive.org"
#define MAX_TYPES        64

static const char params_schema[] =
    "{"
    "\"conn_id\": {\"type\": \"string\", \"default\": \"gharchive\","
    " \"description\": \"HTTP connection of the archive (default https://data.gharchive.org)\"},"
    "\"raw_to\": {\"type\": \"string\","
    " \"description\": \"where the hour files go unchanged: a path or s3://bucket/key; ending"
    " in '/' it is a folder or prefix that receives YYYY-MM-DD-H.json.gz\"},"
    "\"events_to\": {\"type\": \"string\","
    " \"description\": \"flattened events as NDJSON: a path or s3://bucket/key\"},"
    "\"event_types\": {\"type\": \"any\","
    " \"description\": \"keep only these event types (array, or comma-separated string)\"},"
    "\"wait_timeout\": {\"type\": \"integer\", \"default\": 0,"
    " \"description\": \"seconds to keep polling an hour that is not published yet (404);"
    " 0: fail at once and let the task's retries wait\"},"
    "\"poke_interval\": {\"type\": \"integer\", \"default\": 60,"
    " \"description\": \"seconds between polls of an unpublished hour\"},"
    "\"http_retries\": {\"type\": \"integer\", \"default\": 3,"
    " \"description\": \"retries of a download after 429, 5xx, network or gzip errors\"},"
    "\"retry_backoff\": {\"type\": \"number\", \"default\": 2,"
    " \"description\": \"seconds before the first retry, doubled each time (max 60)\"},"
    "\"stall_timeout\": {\"type\": \"integer\", \"default\": 60,"
    " \"description\": \"abort a download that receives nothing for this many seconds\"},"
    "\"max_bad_lines\": {\"type\": \"integer\", \"default\": 0,"
    " \"description\": \"lines that are not JSON events to skip before failing\"},"
    "\"interval_start\": {\"type\": \"string\","
    " \"description\": \"RFC 3339 start of the hours to fetch (default: the run's"
    " data_interval_start)\"},"
    "\"interval_end\": {\"type\": \"string\","
    " \"description\": \"RFC 3339 end, exclusive (default: the run's data_interval_end)\"},"
    "\"max_hours\": {\"type\": \"integer\", \"default\": 168,"
    " \"description\": \"refuse data intervals longer than this many hours\"},"
    "\"s3_conn_id\": {\"type\": \"string\", \"default\": \"aws_default\","
    " \"description\": \"S3 connection for s3:// outputs\"}"
    "}";

struct params {
    const char *conn_id, *raw_to, *events_to, *s3_conn_id;
    const char *types[MAX_TYPES];
    size_t n_types;
    json_int_t wait_timeout, poke_interval, http_retries, stall_timeout, max_bad, max_hours;
    double backoff;
};

/* Parses "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)" to epoch seconds. */
static int parse_rfc3339(const char *s, int64_t *out)
{
    int y, mo, d, h, mi, sec, n = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6)
        return -1;
    const char *p = s + n;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            ;
    int off = 0;
    if (*p == '+' || *p == '-') {
        int oh, om;
        if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2)
            return -1;
        off = (oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
    } else if (*p != 'Z' && *p != '\0') {
        return -1;
    }
    struct tm tm = { .tm_year = y - 1900,
                     .tm_mon = mo - 1,
                     .tm_mday = d,
                     .tm_hour = h,
                     .tm_min = mi,
                     .tm_sec = sec };
    *out = (int64_t)timegm(&tm) - off;
    return 0;
}

/* "2026-01-02-3.json.gz" for the hour starting at t. */
static void hour_name(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    snprintf(buf, len, "%04d-%02d-%02d-%d.json.gz", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour);
}

static int read_params(const struct ing_task *t, json_t *pj, struct params *p)
{
    memset(p, 0, sizeof *p);
    p->conn_id = json_string_value(json_object_get(pj, "conn_id"));
    p->raw_to = json_string_value(json_object_get(pj, "raw_to"));
    p->events_to = json_string_value(json_object_get(pj, "events_to"));
    p->s3_conn_id = json_string_value(json_object_get(pj, "s3_conn_id"));
    p->wait_timeout = json_integer_value(json_object_get(pj, "wait_timeout"));
    p->poke_interval = json_integer_value(json_object_get(pj, "poke_interval"));
    p->http_retries = json_integer_value(json_object_get(pj, "http_retries"));
    p->stall_timeout = json_integer_value(json_object_get(pj, "stall_timeout"));
    p->max_bad = json_integer_value(json_object_get(pj, "max_bad_lines"));
    p->max_hours = json_integer_value(json_object_get(pj, "max_hours"));
    p->backoff = json_number_value(json_object_get(pj, "retry_backoff"));
    if (p->raw_to && !*p->raw_to)
        p->raw_to = NULL;
    if (p->events_to && !*p->events_to)
        p->events_to = NULL;
    if (p->wait_timeout < 0 || p->poke_interval < 1 || p->http_retries < 0 ||
        p->http_retries > 20 || p->stall_timeout < 1 || p->max_bad < 0 || p->max_hours < 1 ||
        p->backoff < 0 || p->backoff > 600)
        return t->host->fail(t->ctx, "gharchive.fetch: wait_timeout, poke_interval, http_retries,"
                                     " stall_timeout, max_bad_lines, max_hours or retry_backoff"
                                     " out of range");
    json_t *types = json_object_get(pj, "event_types");
    if (json_is_array(types)) {
        size_t i;
        json_t *v;
        json_array_foreach(types, i, v) {
            if (!json_is_string(v) || p->n_types >= MAX_TYPES)
                return t->host->fail(t->ctx,
                                     "gharchive.fetch: event_types must be at most %d"
                                     " strings",
                                     MAX_TYPES);
            p->types[p->n_types++] = json_string_value(v);
        }
    } else if (json_is_string(types)) {
        /* the strings point into a copy kept alive by the params object: store the copy */
        json_object_set_new(pj, "_types_split", json_array());
        json_t *arr = json_object_get(pj, "_types_split");
        const char *s = json_string_value(types);
        while (*s) {
            size_t n = strcspn(s, ",");
            size_t a = 0, b = n;
            while (a < b && s[a] == ' ')
                a++;
            while (b > a && s[b - 1] == ' ')
                b--;
            if (b > a) {
                if (p->n_types >= MAX_TYPES)
                    return t->host->fail(t->ctx, "gharchive.fetch: more than %d event types",
                                         MAX_TYPES);
                json_array_append_new(arr, json_stringn(s + a, b - a));
                p->types[p->n_types++] =
                    json_string_value(json_array_get(arr, json_array_size(arr) - 1));
            }
            s += n;
            if (*s == ',')
                s++;
        }
    } else if (types && !json_is_null(types)) {
        return t->host->fail(t->ctx, "gharchive.fetch: event_types must be an array or a string");
    }
    for (size_t i = 0; i < p->n_types; i++)
        if (!p->types[i])
            return t->host->fail(t->ctx, "gharchive.fetch: invalid event type");
    if (!p->raw_to && !p->events_to)
        return t->host->fail(t->ctx, "gharchive.fetch: give raw_to, events_to or both");
    return 0;
}

/* State of one download attempt, shared with the body callback. */
struct dl {
    struct ghf *g;
    FILE *raw; /* NULL: no raw copy */
    int kind;  /* what stopped the transfer: see DL_* */
};

enum {
    DL_OK = 0,
    DL_GZIP = 1 /* retryable */,
    DL_DATA = 2 /* no retry */,
    DL_IO = 3
};

static int on_body(void *ud, const char *data, size_t len)
{
    struct dl *d = ud;
    if (d->raw && fwrite(data, 1, len, d->raw) != len) {
        d->kind = DL_IO;
        return -1;
    }
    if (ghf_feed_gz(d->g, data, len) < 0) {
        d->kind = strncmp(d->g->err, "corrupt gzip", 12) == 0   ? DL_GZIP
                  : strcmp(d->g->err, "cannot write rows") == 0 ? DL_IO
                                                                : DL_DATA;
        return -1;
    }
    return 0;
}

static int write_rows(void *ud, const char *data, size_t len)
{
    FILE *f = ud;
    if (!f)
        return 0;
    return fwrite(data, 1, len, f) == len ? 0 : -1;
}

/* Downloads and flattens one hour, retrying transient failures. Returns WEIR_TASK_*. */
static int fetch_hour(const struct ing_task *t, const struct params *p, CURL *h, const char *base,
                      int64_t hour, struct ghf *g, struct ing_out *events, uint64_t *rows,
                      uint64_t *filtered, uint64_t *bad, json_t *raw_list)
{
    const struct weir_host *host = t->host;
    char name[64], url[2048];
    hour_name(hour, name, sizeof name);
    snprintf(url, sizeof url, "%s/%s", base, name);
    if (strlen(base) + strlen(name) + 2 > sizeof url) {
        host->fail(t->ctx, "gharchive.fetch: base URL too long");
        return WEIR_TASK_FAILED_NO_RETRY;
    }

    struct ing_out raw = { 0 };
    struct ing_err err = { "" };
    if (p->raw_to) {
        char *dest = NULL;
        size_t rn = strlen(p->raw_to);
        if (p->raw_to[rn - 1] == '/') {
            dest = malloc(rn + strlen(name) + 1);
            if (dest)
                snprintf(dest, rn + strlen(name) + 1, "%s%s", p->raw_to, name);
        } else {
            dest = strdup(p->raw_to);
        }
        const char *wd = json_string_value(json_object_get(host->context(t->ctx), "workdir"));
        int orc = dest ? ing_out_open(&raw, dest, wd, &err) : ing_fail(&err, "out of memory");
        free(dest);
        if (orc < 0) {
            host->fail(t->ctx, "gharchive.fetch: %s", err.msg);
            return WEIR_TASK_FAILED_NO_RETRY;
        }
    }
    long long ev_start = events ? (long long)ftello(events->fp) : 0;
    struct ing_http_opts opts = { .stall_s = (long)p->stall_timeout };
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int attempt = 0, result = WEIR_TASK_FAILED;
    for (;;) {
        if ((events && ing_out_truncate(events, ev_start, &err) < 0) ||
            (raw.fp && ing_out_truncate(&raw, 0, &err) < 0)) {
            host->fail(t->ctx, "gharchive.fetch: %s", err.msg);
            goto out;
        }
        if (ghf_reset(g) < 0) {
            host->fail(t->ctx, "gharchive.fetch: %s", g->err);
            goto out;
        }
        struct dl d = { .g = g, .raw = raw.fp };
        struct ing_http_res res;
        struct timespec a0, a1;
        clock_gettime(CLOCK_MONOTONIC, &a0);
        int rc = ing_http_get(h, t, url, &opts, on_body, &d, &res, &err);
        if (res.cancelled) {
            host->fail(t->ctx, "gharchive.fetch: cancelled while downloading '%s'", name);
            goto out;
        }
        bool retry = false;
        char why[320];
        if (rc < 0 && d.kind == DL_DATA) {
            host->fail(t->ctx, "gharchive.fetch: '%s': %s", name, g->err);
            result = WEIR_TASK_FAILED_NO_RETRY;
            goto out;
        } else if (rc < 0 && d.kind == DL_IO) {
            host->fail(t->ctx, "gharchive.fetch: '%s': cannot write output", name);
            goto out;
        } else if (rc < 0 && d.kind == DL_GZIP) {
            snprintf(why, sizeof why, "%s", g->err);
            retry = true;
        } else if (rc < 0) {
            snprintf(why, sizeof why, "%s", err.msg);
            retry = true;
        } else if (res.status == 404) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec - t0.tv_sec + p->poke_interval <= p->wait_timeout) {
                host->log(t->ctx, WEIR_LOG_INFO,
                          "'%s' not published yet (404); polling again in %lld s", name,
                          (long long)p->poke_interval);
                if (ing_sleep(t, (long)p->poke_interval * 1000) < 0) {
                    host->fail(t->ctx, "gharchive.fetch: cancelled while waiting for '%s'", name);
                    goto out;
                }
                continue;
            }
            host->fail(t->ctx,
                       "gharchive.fetch: '%s' not published yet (HTTP 404 from %s);"
                       " the task's retries will try again",
                       name, url);
            goto out;
        } else if (ing_http_retryable(res.status)) {
            snprintf(why, sizeof why, "HTTP %ld", res.status);
            retry = true;
        } else if (res.status < 200 || res.status >= 300) {
            host->fail(t->ctx, "gharchive.fetch: GET %s: HTTP %ld %.200s", url, res.status,
                       res.body);
            goto out;
        } else if (ghf_finish(g, true) < 0) {
            if (strncmp(g->err, "truncated", 9) == 0 || strncmp(g->err, "empty", 5) == 0) {
                snprintf(why, sizeof why, "%s", g->err);
                retry = true;
            } else {
                host->fail(t->ctx, "gharchive.fetch: '%s': %s", name, g->err);
                /* bad data will not change; a failed write (disk full) may */
                if (strcmp(g->err, "cannot write rows") != 0)
                    result = WEIR_TASK_FAILED_NO_RETRY;
                goto out;
            }
        }
        if (retry) {
            attempt++;
            if (attempt > p->http_retries) {
                host->fail(t->ctx, "gharchive.fetch: GET %s failed after %d tries: %s", url,
                           attempt, why);
                goto out;
            }
            long ms = ing_backoff_ms((long)(p->backoff * 1000), 60000, attempt, res.retry_after_s);
            host->log(t->ctx, WEIR_LOG_WARN, "GET %s: %s; retry %d of %lld in %ld ms", url, why,
                      attempt, (long long)p->http_retries, ms);
            if (ing_sleep(t, ms) < 0) {
                host->fail(t->ctx, "gharchive.fetch: cancelled");
                goto out;
            }
            continue;
        }
        clock_gettime(CLOCK_MONOTONIC, &a1);
        double secs = (double)(a1.tv_sec - a0.tv_sec) + (double)(a1.tv_nsec - a0.tv_nsec) / 1e9;
        host->log(t->ctx, WEIR_LOG_INFO,
                  "%s: %llu events, %llu rows, %llu filtered, %llu bad lines; %llu bytes"
                  " (%llu unpacked) in %.2f s",
                  name, (unsigned long long)g->stats.lines, (unsigned long long)g->stats.rows,
                  (unsigned long long)g->stats.filtered, (unsigned long long)g->stats.bad,
                  (unsigned long long)g->stats.bytes_in, (unsigned long long)g->stats.bytes_out,
                  secs);
        break;
    }
    if (raw.fp) {
        bool retryable;
        if (ing_out_commit(&raw, t, p->s3_conn_id, &retryable, &err) < 0) {
            host->fail(t->ctx, "gharchive.fetch: %s", err.msg);
            goto out;
        }
        json_array_append_new(raw_list, json_string(raw.dest));
    }
    *rows += g->stats.rows;
    *filtered += g->stats.filtered;
    *bad += g->stats.bad;
    result = WEIR_TASK_SUCCESS;
out:
    ing_out_release(&raw);
    return result;
}

static int fetch(struct weir_task_ctx *ctx, const struct weir_host *host, json_t *params)
{
    struct ing_task t = { ctx, host };
    struct params p;
    struct ing_err err = { "" };
    json_t *pj = json_deep_copy(params); /* read_params may add the split type list */
    if (!pj)
        return host->fail(ctx, "gharchive.fetch: out of memory");
    if (read_params(&t, pj, &p) != 0) {
        json_decref(pj);
        return WEIR_TASK_FAILED_NO_RETRY;
    }
    json_t *c = host->context(ctx);
    const char *ss = json_string_value(json_object_get(params, "interval_start"));
    const char *es = json_string_value(json_object_get(params, "interval_end"));
    if (!ss || !*ss)
        ss = json_string_value(json_object_get(c, "data_interval_start"));
    if (!es || !*es)
        es = json_string_value(json_object_get(c, "data_interval_end"));
    const char *wd = json_string_value(json_object_get(c, "workdir"));
    int64_t start, end;
    if (parse_rfc3339(ss, &start) < 0 || parse_rfc3339(es, &end) < 0 || end < start) {
        json_decref(pj);
        return host->fail(ctx, "gharchive.fetch: invalid data interval '%s' .. '%s'", ss ? ss : "?",
                          es ? es : "?");
    }
    /* every hour that overlaps [start, end); an empty interval (a manual run of an
     * unscheduled DAG) means the hour holding start */
    int64_t first = start - ((start % 3600) + 3600) % 3600;
    int64_t n_hours = end > start ? (end - first + 3599) / 3600 : 1;
    if (n_hours > p.max_hours) {
        json_decref(pj);
        host->fail(ctx,
                   "gharchive.fetch: the data interval spans %lld hours, more than"
                   " max_hours (%lld)",
                   (long long)n_hours, (long long)p.max_hours);
        return WEIR_TASK_FAILED_NO_RETRY;
    }
    if (p.raw_to && n_hours > 1 && p.raw_to[strlen(p.raw_to) - 1] != '/') {
        json_decref(pj);
        host->fail(ctx,
                   "gharchive.fetch: the interval spans %lld hours: raw_to must end with"
                   " '/' (a folder or prefix)",
                   (long long)n_hours);
        return WEIR_TASK_FAILED_NO_RETRY;
    }

    int result = WEIR_TASK_FAILED;
    char *base = NULL;
    CURL *h = NULL;
    struct ghf g = { 0 };
    struct ing_out events = { 0 };
    json_t *raw_list = json_array(), *files = json_array();
    uint64_t rows = 0, filtered = 0, bad = 0;
    bool curl_up = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;

    base = ing_base_url(&t, p.conn_id, DEFAULT_BASE_URL, &err);
    if (!base) {
        host->fail(ctx, "gharchive.fetch: %s", err.msg);
        result = WEIR_TASK_FAILED_NO_RETRY;
        goto out;
    }
    if (!curl_up || !(h = curl_easy_init())) {
        host->fail(ctx, "gharchive.fetch: cannot start libcurl");
        goto out;
    }
    if (ghf_init(&g, p.n_types ? p.types : NULL, p.n_types, 0, (uint64_t)p.max_bad, write_rows,
                 NULL) < 0) {
        host->fail(ctx, "gharchive.fetch: %s", g.err);
        goto out;
    }
    if (p.events_to) {
        if (ing_out_open(&events, p.events_to, wd, &err) < 0) {
            host->fail(ctx, "gharchive.fetch: %s", err.msg);
            result = WEIR_TASK_FAILED_NO_RETRY;
            goto out;
        }
        g.ud = events.fp;
    }
    host->log(ctx, WEIR_LOG_INFO, "fetching %lld hour file(s) from %s%s%s", (long long)n_hours,
              base, p.n_types ? ", event types filtered" : "", "");
    for (int64_t i = 0; i < n_hours; i++) {
        int64_t hour = first + i * 3600;
        char name[64], url[2100];
        hour_name(hour, name, sizeof name);
        snprintf(url, sizeof url, "%s/%s", base, name);
        json_array_append_new(files, json_string(url));
        host->progress(ctx, (double)i / (double)n_hours, name);
        result = fetch_hour(&t, &p, h, base, hour, &g, p.events_to ? &events : NULL, &rows,
                            &filtered, &bad, raw_list);
        if (result != WEIR_TASK_SUCCESS)
            goto out;
    }
    result = WEIR_TASK_FAILED;
    if (p.events_to) {
        bool retryable;
        if (ing_out_commit(&events, &t, p.s3_conn_id, &retryable, &err) < 0) {
            host->fail(ctx, "gharchive.fetch: %s", err.msg);
            goto out;
        }
    }
    host->progress(ctx, 1.0, NULL);
    json_t *x = json_pack("{s:I,s:I,s:I,s:O,s:O,s:s?}", "rows", (json_int_t)rows, "filtered",
                          (json_int_t)filtered, "bad_lines", (json_int_t)bad, "files", files, "raw",
                          raw_list, "events_path", p.events_to);
    json_t *rv = p.events_to ? json_string(p.events_to) : json_incref(raw_list);
    json_t *rowsj = json_integer((json_int_t)rows);
    int xr = x ? host->xcom_push(ctx, "stats", x) : -1;
    if (xr == 0)
        xr = host->xcom_push(ctx, "rows", rowsj);
    if (xr == 0 && p.events_to)
        xr = host->xcom_push(ctx, "events_path", rv);
    if (xr == 0)
        xr = host->xcom_push(ctx, "raw", raw_list);
    if (xr == 0)
        xr = host->xcom_push(ctx, "return_value", rv);
    json_decref(x);
    json_decref(rv);
    json_decref(rowsj);
    if (xr != 0) {
        host->fail(ctx, "gharchive.fetch: cannot push XComs");
        goto out;
    }
    host->log(ctx, WEIR_LOG_INFO, "%llu rows from %lld hour(s)%s%s", (unsigned long long)rows,
              (long long)n_hours, p.events_to ? " -> " : "", p.events_to ? p.events_to : "");
    result = WEIR_TASK_SUCCESS;
out:
    ing_out_release(&events);
    ghf_release(&g);
    if (h)
        curl_easy_cleanup(h);
    if (curl_up)
        curl_global_cleanup();
    free(base);
    json_decref(raw_list);
    json_decref(files);
    json_decref(pj);
    return result;
}

static const struct weir_operator operators[] = {
    {
        .name = "fetch",
        .summary = "download the GH Archive hours of the data interval: raw copy and flattened"
                   " NDJSON events",
        .params_schema = params_schema,
        .run = fetch,
    },
};

static const struct weir_plugin plugin = {
    .abi = WEIR_PLUGIN_ABI,
    .size = sizeof(struct weir_plugin),
    .name = "gharchive",
    .version = "1.0.0",
    .summary = "GH Archive hourly event files, streamed and flattened",
    .n_operators = sizeof operators / sizeof operators[0],
    .operators = operators,
};

const struct weir_plugin *weir_plugin_init(const struct weir_host *host)
{
    if (host->abi != WEIR_PLUGIN_ABI || host->size < sizeof(struct weir_host))
        return NULL;
    return &plugin;
}
