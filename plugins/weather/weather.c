/* plugins/weather/weather.c - the weather plugin: `weather.forecast` asks Open-Meteo for
 * hourly forecasts of the places in a CSV, several places per request, and writes the raw
 * responses with their fetch metadata to a file or s3:// object, and optionally the
 * flattened rows (place x hour) as NDJSON.
 *
 * Failure policy: Open-Meteo's {"error":true,"reason":...} (HTTP 400) fails at once
 * without retry, since the same request will be refused again. 429, 5xx, network errors,
 * timeouts and bodies that are not JSON (truncated) are retried inside the operator
 * (`http_retries`, exponential backoff, Retry-After honoured) and then fail the try so the
 * task's own retries apply. Outputs are temporary files renamed (or uploaded) only when
 * every request succeeded: a rerun replaces them whole. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "ingest.h"
#include "wxlib.h"

#define DEFAULT_BASE_URL "https://api.open-meteo.com"
#define MAX_BODY         (64u << 20)

static const char params_schema[] =
    "{"
    "\"places\": {\"type\": \"string\", \"required\": true,"
    " \"description\": \"CSV file with the columns name,latitude,longitude\"},"
    "\"to\": {\"type\": \"string\", \"required\": true,"
    " \"description\": \"raw responses with fetch metadata (JSON): a path or s3://bucket/key\"},"
    "\"rows_to\": {\"type\": \"string\","
    " \"description\": \"flattened rows (place x hour) as NDJSON: a path or s3://bucket/key\"},"
    "\"hourly\": {\"type\": \"any\", \"default\": \"temperature_2m,precipitation,wind_speed_10m\","
    " \"description\": \"hourly variables (comma-separated string or array)\"},"
    "\"batch_size\": {\"type\": \"integer\", \"default\": 10,"
    " \"description\": \"places per request (1..100)\"},"
    "\"forecast_days\": {\"type\": \"integer\", \"default\": 0,"
    " \"description\": \"days of forecast (1..16); 0: the API's default (7)\"},"
    "\"past_days\": {\"type\": \"integer\", \"default\": 0,"
    " \"description\": \"days of past data to include (0..92)\"},"
    "\"timezone\": {\"type\": \"string\", \"default\": \"UTC\","
    " \"description\": \"time zone of the hourly times (IANA name, or auto)\"},"
    "\"conn_id\": {\"type\": \"string\", \"default\": \"open_meteo\","
    " \"description\": \"HTTP connection of the API (default https://api.open-meteo.com)\"},"
    "\"http_retries\": {\"type\": \"integer\", \"default\": 3,"
    " \"description\": \"retries of a request after 429, 5xx, network errors or a truncated"
    " body\"},"
    "\"retry_backoff\": {\"type\": \"number\", \"default\": 2,"
    " \"description\": \"seconds before the first retry, doubled each time (max 60)\"},"
    "\"timeout\": {\"type\": \"integer\", \"default\": 60,"
    " \"description\": \"seconds a request may take\"},"
    "\"s3_conn_id\": {\"type\": \"string\", \"default\": \"aws_default\","
    " \"description\": \"S3 connection for s3:// outputs\"}"
    "}";

struct body {
    struct ing_buf b;
};

static int on_body(void *ud, const char *data, size_t len)
{
    struct body *b = ud;
    if (b->b.len + len > MAX_BODY)
        return -1;
    ing_buf_add(&b->b, data, len);
    return b->b.oom ? -1 : 0;
}

/* Writes the request's entry of the raw document. */
static int write_raw_entry(FILE *f, bool first, const char *url, const char *fetched_at,
                           const struct wx_places *pl, size_t from, size_t count,
                           const struct ing_buf *body)
{
    struct ing_buf b = { 0 };
    ing_buf_adds(&b, first ? "\n{\"url\":" : ",\n{\"url\":");
    ing_buf_add_jstr(&b, url, strlen(url));
    ing_buf_adds(&b, ",\"fetched_at\":");
    ing_buf_add_jstr(&b, fetched_at, strlen(fetched_at));
    ing_buf_adds(&b, ",\"places\":[");
    for (size_t i = 0; i < count; i++) {
        const struct wx_place *p = &pl->v[from + i];
        char num[96];
        ing_buf_adds(&b, i ? ",{\"name\":" : "{\"name\":");
        ing_buf_add_jstr(&b, p->name, strlen(p->name));
        snprintf(num, sizeof num, ",\"latitude\":%.10g,\"longitude\":%.10g}", p->lat, p->lon);
        ing_buf_adds(&b, num);
    }
    ing_buf_adds(&b, "],\"response\":");
    /* the body is checked JSON; trailing whitespace (a final newline) is dropped */
    size_t n = body->len;
    while (n && (body->p[n - 1] == '\n' || body->p[n - 1] == '\r' || body->p[n - 1] == ' '))
        n--;
    ing_buf_add(&b, body->p, n);
    ing_buf_adds(&b, "}");
    int rc = b.oom || fwrite(b.p, 1, b.len, f) != b.len ? -1 : 0;
    ing_buf_release(&b);
    return rc;
}

static int forecast(struct weir_task_ctx *ctx, const struct weir_host *host, json_t *params)
{
    struct ing_task t = { ctx, host };
    struct ing_err err = { "" };
    const char *places_path = json_string_value(json_object_get(params, "places"));
    const char *to = json_string_value(json_object_get(params, "to"));
    const char *rows_to = json_string_value(json_object_get(params, "rows_to"));
    const char *conn_id = json_string_value(json_object_get(params, "conn_id"));
    const char *s3_conn = json_string_value(json_object_get(params, "s3_conn_id"));
    json_int_t batch = json_integer_value(json_object_get(params, "batch_size"));
    json_int_t fdays = json_integer_value(json_object_get(params, "forecast_days"));
    json_int_t pdays = json_integer_value(json_object_get(params, "past_days"));
    json_int_t retries = json_integer_value(json_object_get(params, "http_retries"));
    json_int_t timeout = json_integer_value(json_object_get(params, "timeout"));
    double backoff = json_number_value(json_object_get(params, "retry_backoff"));
    const char *wd = json_string_value(json_object_get(host->context(ctx), "workdir"));
    if (rows_to && !*rows_to)
        rows_to = NULL;
    if (batch < 1 || batch > 100 || fdays < 0 || fdays > 16 || pdays < 0 || pdays > 92 ||
        retries < 0 || retries > 20 || timeout < 1 || backoff < 0 || backoff > 600) {
        host->fail(ctx, "weather.forecast: batch_size (1..100), forecast_days (0..16),"
                        " past_days (0..92), http_retries (0..20), timeout or retry_backoff"
                        " out of range");
        return WEIR_TASK_FAILED_NO_RETRY;
    }

    int result = WEIR_TASK_FAILED_NO_RETRY;
    struct wx_places pl = { 0 };
    json_t *var_store = NULL;
    const char *vars[WX_MAX_VARS];
    char *base = NULL, *url = NULL;
    CURL *h = NULL;
    struct ing_out raw = { 0 }, rows = { 0 };
    struct body body = { { 0 } };
    struct ing_buf rowbuf = { 0 };
    long long n_rows = 0;
    size_t n_requests = 0;
    bool curl_up = false;

    int nv = wx_vars_parse(json_object_get(params, "hourly"), vars, WX_MAX_VARS, &var_store, &err);
    if (nv < 0) {
        host->fail(ctx, "weather.forecast: %s", err.msg);
        goto out;
    }
    struct wx_query q = {
        .vars = vars,
        .n_vars = (size_t)nv,
        .timezone = json_string_value(json_object_get(params, "timezone")),
        .forecast_days = (int)fdays,
        .past_days = (int)pdays,
    };
    if (wx_places_load(places_path, &pl, &err) < 0) {
        host->fail(ctx, "weather.forecast: %s", err.msg);
        goto out;
    }
    base = ing_base_url(&t, conn_id, DEFAULT_BASE_URL, &err);
    if (!base) {
        host->fail(ctx, "weather.forecast: %s", err.msg);
        goto out;
    }
    if (ing_out_open(&raw, to, wd, &err) < 0 ||
        (rows_to && ing_out_open(&rows, rows_to, wd, &err) < 0)) {
        host->fail(ctx, "weather.forecast: %s", err.msg);
        goto out;
    }
    result = WEIR_TASK_FAILED;
    curl_up = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
    if (!curl_up || !(h = curl_easy_init())) {
        host->fail(ctx, "weather.forecast: cannot start libcurl");
        goto out;
    }
    char started[32];
    ing_now_utc(started, sizeof started);
    struct ing_buf head = { 0 };
    ing_buf_adds(&head, "{\"source\":\"open-meteo\",\"fetched_at\":");
    ing_buf_add_jstr(&head, started, strlen(started));
    ing_buf_adds(&head, ",\"base_url\":");
    ing_buf_add_jstr(&head, base, strlen(base));
    ing_buf_adds(&head, ",\"requests\":[");
    int hw = head.oom || fwrite(head.p, 1, head.len, raw.fp) != head.len;
    ing_buf_release(&head);
    if (hw) {
        host->fail(ctx, "weather.forecast: cannot write '%s'", raw.tmp_path);
        goto out;
    }
    host->log(ctx, WEIR_LOG_INFO, "forecasts for %zu place(s), %lld per request, from %s", pl.n,
              (long long)batch, base);
    struct ing_http_opts opts = { .timeout_s = (long)timeout, .stall_s = (long)timeout };
    for (size_t from = 0; from < pl.n; from += (size_t)batch) {
        size_t count = pl.n - from < (size_t)batch ? pl.n - from : (size_t)batch;
        free(url);
        url = wx_url(base, &pl, from, count, &q);
        if (!url) {
            host->fail(ctx, "weather.forecast: out of memory");
            goto out;
        }
        host->progress(ctx, (double)from / (double)pl.n, NULL);
        json_t *resp = NULL;
        char fetched_at[32];
        for (int attempt = 0;; attempt++) {
            struct ing_http_res res;
            char why[320];
            body.b.len = 0;
            ing_now_utc(fetched_at, sizeof fetched_at);
            int rc = ing_http_get(h, &t, url, &opts, on_body, &body, &res, &err);
            if (res.cancelled) {
                host->fail(ctx, "weather.forecast: cancelled");
                goto out;
            }
            if (rc < 0 && res.aborted_by_cb) {
                host->fail(ctx, "weather.forecast: GET %s: response larger than %u bytes", url,
                           MAX_BODY);
                result = WEIR_TASK_FAILED_NO_RETRY;
                goto out;
            }
            if (rc < 0) {
                snprintf(why, sizeof why, "%s", err.msg);
            } else if (res.status >= 200 && res.status < 300) {
                int ck =
                    wx_response_check(body.b.p ? body.b.p : "", body.b.len, count, &q, &resp, &err);
                if (ck == WX_OK)
                    break;
                if (ck != WX_EPARSE) {
                    host->fail(ctx, "weather.forecast: GET %s: %s", url, err.msg);
                    result = WEIR_TASK_FAILED_NO_RETRY;
                    goto out;
                }
                snprintf(why, sizeof why, "%s", err.msg);
            } else if (ing_http_retryable(res.status)) {
                snprintf(why, sizeof why, "HTTP %ld", res.status);
            } else {
                json_t *dummy = NULL;
                int ck = wx_response_check(res.body, strlen(res.body), count, &q, &dummy, &err);
                json_decref(dummy);
                if (ck == WX_EAPI)
                    host->fail(ctx, "weather.forecast: %s (HTTP %ld from %s)", err.msg, res.status,
                               url);
                else
                    host->fail(ctx, "weather.forecast: GET %s: HTTP %ld %.200s", url, res.status,
                               res.body);
                result = WEIR_TASK_FAILED_NO_RETRY;
                goto out;
            }
            if (attempt >= retries) {
                host->fail(ctx, "weather.forecast: GET %s failed after %d tries: %s", url,
                           attempt + 1, why);
                goto out;
            }
            long ms = ing_backoff_ms((long)(backoff * 1000), 60000, attempt + 1, res.retry_after_s);
            host->log(ctx, WEIR_LOG_WARN, "GET %s: %s; retry %d of %lld in %ld ms", url, why,
                      attempt + 1, (long long)retries, ms);
            if (ing_sleep(&t, ms) < 0) {
                host->fail(ctx, "weather.forecast: cancelled");
                goto out;
            }
        }
        n_requests++;
        int wr = write_raw_entry(raw.fp, from == 0, url, fetched_at, &pl, from, count, &body.b);
        if (wr == 0 && rows_to) {
            for (size_t i = 0; i < count && wr == 0; i++) {
                rowbuf.len = 0;
                long nr = wx_rows(&pl.v[from + i], json_array_get(resp, i), &q, &rowbuf);
                if (nr < 0 || fwrite(rowbuf.p, 1, rowbuf.len, rows.fp) != rowbuf.len)
                    wr = -1;
                else
                    n_rows += nr;
            }
        }
        json_decref(resp);
        if (wr < 0) {
            host->fail(ctx, "weather.forecast: cannot write the outputs");
            goto out;
        }
    }
    if (fputs("\n]}\n", raw.fp) < 0) {
        host->fail(ctx, "weather.forecast: cannot write '%s'", raw.tmp_path);
        goto out;
    }
    bool retryable;
    if (ing_out_commit(&raw, &t, s3_conn, &retryable, &err) < 0 ||
        (rows_to && ing_out_commit(&rows, &t, s3_conn, &retryable, &err) < 0)) {
        host->fail(ctx, "weather.forecast: %s", err.msg);
        goto out;
    }
    host->progress(ctx, 1.0, NULL);
    json_t *x = json_pack("{s:s,s:s?,s:I,s:I,s:I}", "path", to, "rows_path", rows_to, "rows",
                          (json_int_t)n_rows, "places", (json_int_t)pl.n, "requests",
                          (json_int_t)n_requests);
    json_t *rv = json_string(to), *nr = json_integer((json_int_t)n_rows);
    int xr = x && rv && nr ? host->xcom_push(ctx, "stats", x) : -1;
    if (xr == 0)
        xr = host->xcom_push(ctx, "path", rv);
    if (xr == 0)
        xr = host->xcom_push(ctx, "rows", nr);
    if (xr == 0 && rows_to) {
        json_t *rp = json_string(rows_to);
        xr = host->xcom_push(ctx, "rows_path", rp);
        json_decref(rp);
    }
    if (xr == 0)
        xr = host->xcom_push(ctx, "return_value", rv);
    json_decref(x);
    json_decref(rv);
    json_decref(nr);
    if (xr != 0) {
        host->fail(ctx, "weather.forecast: cannot push XComs");
        goto out;
    }
    host->log(ctx, WEIR_LOG_INFO, "%zu place(s) in %zu request(s) -> %s%s%s (%lld rows)", pl.n,
              n_requests, to, rows_to ? ", " : "", rows_to ? rows_to : "", n_rows);
    result = WEIR_TASK_SUCCESS;
out:
    ing_out_release(&raw);
    ing_out_release(&rows);
    ing_buf_release(&body.b);
    ing_buf_release(&rowbuf);
    wx_places_release(&pl);
    json_decref(var_store);
    free(url);
    free(base);
    if (h)
        curl_easy_cleanup(h);
    if (curl_up)
        curl_global_cleanup();
    return result;
}

static const struct weir_operator operators[] = {
    {
        .name = "forecast",
        .summary = "Open-Meteo hourly forecasts for the places of a CSV: raw JSON and NDJSON rows",
        .params_schema = params_schema,
        .run = forecast,
    },
};

static const struct weir_plugin plugin = {
    .abi = WEIR_PLUGIN_ABI,
    .size = sizeof(struct weir_plugin),
    .name = "weather",
    .version = "1.0.0",
    .summary = "Open-Meteo weather forecasts",
    .n_operators = sizeof operators / sizeof operators[0],
    .operators = operators,
};

const struct weir_plugin *weir_plugin_init(const struct weir_host *host)
{
    if (host->abi != WEIR_PLUGIN_ABI || host->size < sizeof(struct weir_host))
        return NULL;
    return &plugin;
}
