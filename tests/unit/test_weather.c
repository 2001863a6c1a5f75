/* tests/unit/test_weather.c - the weather plugin's pure parts (plugins/weather/wxlib.c) and
 * the shared ingest helpers (plugins/ingest/ingest.c): places CSV, variable lists, request
 * URLs, Open-Meteo responses (the recorded fixture, errors, truncation, wrong shapes),
 * flattened rows, connection base URLs, backoff and atomic file outputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "ingest.h"
#include "wxlib.h"

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

static void test_places_dutch_cities(void **state)
{
    (void)state;
    struct wx_places pl;
    struct ing_err err;
    assert_int_equal(wx_places_load(WEIR_DAGS_DATA "/dutch_cities.csv", &pl, &err), 0);
    assert_int_equal(pl.n, 24);
    assert_string_equal(pl.v[0].name, "Amsterdam");
    assert_true(pl.v[0].lat > 52.36 && pl.v[0].lat < 52.37);
    int found = 0;
    for (size_t i = 0; i < pl.n; i++)
        found += strcmp(pl.v[i].name, "'s-Hertogenbosch") == 0;
    assert_int_equal(found, 1);
    wx_places_release(&pl);
    assert_int_equal(wx_places_load("/nonexistent/places.csv", &pl, &err), -1);
    assert_non_null(strstr(err.msg, "cannot open places file '/nonexistent/places.csv'"));
}

static void test_places_csv_forms(void **state)
{
    (void)state;
    struct wx_places pl;
    struct ing_err err;
    const char *csv = "\xEF\xBB\xBFLongitude , extra,NAME,Latitude\r\n"
                      "\r\n"
                      "4.5,x,\"Den \"\"Haag\"\", centre\",52.07\r\n"
                      "-0.1, y , London ,51.5";
    assert_int_equal(wx_places_parse(csv, strlen(csv), &pl, &err), 0);
    assert_int_equal(pl.n, 2);
    assert_string_equal(pl.v[0].name, "Den \"Haag\", centre");
    assert_true(pl.v[0].lon > 4.49 && pl.v[0].lon < 4.51);
    assert_string_equal(pl.v[1].name, "London");
    assert_true(pl.v[1].lon < 0);
    wx_places_release(&pl);

    static const struct {
        const char *csv, *msg;
    } bad[] = {
        { "", "empty" },
        { "name,lat\nA,1\n", "must name the columns" },
        { "name,latitude,longitude\n", "no places" },
        { "name,latitude,longitude\nA,91,4\n", "line 2: latitude" },
        { "name,latitude,longitude\nA,52,x\n", "line 2: longitude" },
        { "name,latitude,longitude\nA,52,4\nB,52\n", "line 3: missing columns" },
        { "name,latitude,longitude\n,52,4\n", "empty name" },
        { "name,latitude,longitude\n\"A,52,4\n", "syntax error" },
        { "name,latitude,longitude\nA,nan,4\n", "latitude" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err.msg[0] = '\0';
        assert_int_equal(wx_places_parse(bad[i].csv, strlen(bad[i].csv), &pl, &err), -1);
        if (!strstr(err.msg, bad[i].msg))
            fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, bad[i].msg);
        assert_null(pl.v);
    }
}

static void test_vars(void **state)
{
    (void)state;
    const char *vars[8];
    json_t *store = NULL, *spec = json_string(" temperature_2m, precipitation ,wind_speed_10m,");
    struct ing_err err;
    assert_int_equal(wx_vars_parse(spec, vars, 8, &store, &err), 3);
    assert_string_equal(vars[2], "wind_speed_10m");
    json_decref(store);
    json_decref(spec);
    spec = json_pack("[ss]", "a", "b");
    assert_int_equal(wx_vars_parse(spec, vars, 8, &store, &err), 2);
    json_decref(store);
    json_decref(spec);
    const char *bad[] = { "", "Temp", "a,a", "a&b=1" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        spec = json_string(bad[i]);
        assert_int_equal(wx_vars_parse(spec, vars, 8, &store, &err), -1);
        json_decref(store);
        json_decref(spec);
    }
    spec = json_integer(3);
    assert_int_equal(wx_vars_parse(spec, vars, 8, &store, &err), -1);
    json_decref(store);
    json_decref(spec);
}

static void test_url(void **state)
{
    (void)state;
    struct wx_place v[3] = { { "A", 52.3676, 4.9041 }, { "B", -33.5, 151.25 }, { "C", 0, -0.5 } };
    struct wx_places pl = { v, 3 };
    const char *vars[] = { "temperature_2m", "precipitation" };
    struct wx_query q = { vars, 2, "Europe/Amsterdam", 3, 1 };
    char *u = wx_url("http://h:1/p", &pl, 1, 2, &q);
    assert_string_equal(u, "http://h:1/p/v1/forecast?latitude=-33.5,0&longitude=151.25,-0.5"
                           "&hourly=temperature_2m,precipitation&timezone=Europe%2FAmsterdam"
                           "&forecast_days=3&past_days=1");
    free(u);
    struct wx_query q2 = { vars, 1, NULL, 0, 0 };
    u = wx_url("https://api.open-meteo.com", &pl, 0, 1, &q2);
    assert_string_equal(u, "https://api.open-meteo.com/v1/forecast?latitude=52.3676"
                           "&longitude=4.9041&hourly=temperature_2m&timezone=UTC");
    free(u);
}

static void test_response_fixture_and_rows(void **state)
{
    (void)state;
    size_t n;
    char *body = read_file(WEIR_FIXTURES "/open-meteo/forecast-example.json", &n);
    const char *vars[] = { "temperature_2m", "windspeed_10m", "weathercode" };
    struct wx_query q = { vars, 3, "UTC", 0, 0 };
    json_t *resp;
    struct ing_err err;
    assert_int_equal(wx_response_check(body, n, 1, &q, &resp, &err), WX_OK);
    assert_true(json_is_array(resp));
    struct wx_place place = { "Enschede \"E\"", 52.2215, 6.8937 };
    struct ing_buf out = { 0 };
    long rows = wx_rows(&place, json_array_get(resp, 0), &q, &out);
    size_t hours = json_array_size(
        json_object_get(json_object_get(json_array_get(resp, 0), "hourly"), "time"));
    assert_int_equal(rows, (long)hours);
    assert_true(rows > 0);
    /* every row is a JSON object with the place, the time and each variable */
    size_t lines = 0;
    for (char *p = out.p, *nl; (nl = strchr(p, '\n')); p = nl + 1, lines++) {
        json_t *r = json_loadb(p, (size_t)(nl - p), 0, NULL);
        assert_non_null(r);
        assert_string_equal(json_string_value(json_object_get(r, "name")), "Enschede \"E\"");
        assert_true(json_real_value(json_object_get(r, "latitude")) == 52.2215);
        assert_non_null(json_string_value(json_object_get(r, "time")));
        assert_int_equal(json_object_size(r), 7);
        if (lines == 0) {
            assert_string_equal(json_string_value(json_object_get(r, "time")), "2026-10-03T00:00");
            assert_true(json_real_value(json_object_get(r, "temperature_2m")) == 11.8);
            assert_true(json_is_real(json_object_get(r, "windspeed_10m")));
            assert_true(json_is_integer(json_object_get(r, "weathercode")));
        }
        json_decref(r);
    }
    assert_int_equal(lines, hours);
    /* 11.8 prints as 11.8, not 11.800000000000001 */
    assert_non_null(strstr(out.p, "\"temperature_2m\":11.8,"));
    ing_buf_release(&out);
    json_decref(resp);

    /* a variable the response lacks */
    const char *missing[] = { "temperature_2m", "wind_speed_10m" };
    struct wx_query qm = { missing, 2, "UTC", 0, 0 };
    assert_int_equal(wx_response_check(body, n, 1, &qm, &resp, &err), WX_ESHAPE);
    assert_non_null(strstr(err.msg, "hourly.wind_speed_10m is missing"));
    /* two places asked, one answered */
    assert_int_equal(wx_response_check(body, n, 2, &q, &resp, &err), WX_ESHAPE);
    /* truncated body: worth a retry */
    assert_int_equal(wx_response_check(body, n / 2, 1, &q, &resp, &err), WX_EPARSE);
    assert_non_null(strstr(err.msg, "not JSON"));
    assert_null(resp);
    free(body);
}

static void test_response_errors_and_arrays(void **state)
{
    (void)state;
    const char *vars[] = { "t" };
    struct wx_query q = { vars, 1, NULL, 0, 0 };
    json_t *resp;
    struct ing_err err;
    const char *e = "{\"error\":true,\"reason\":\"Cannot initialize WeatherVariable from invalid"
                    " String value foo for key hourly\"}";
    assert_int_equal(wx_response_check(e, strlen(e), 1, &q, &resp, &err), WX_EAPI);
    assert_string_equal(err.msg, "open-meteo refused the request: Cannot initialize"
                                 " WeatherVariable from invalid String value foo for key hourly");
    const char *two = "[{\"hourly\":{\"time\":[\"a\",\"b\"],\"t\":[1,null]}},"
                      "{\"hourly\":{\"time\":[\"a\",\"b\"],\"t\":[2.5,3]}}]";
    assert_int_equal(wx_response_check(two, strlen(two), 2, &q, &resp, &err), WX_OK);
    struct wx_place p = { "X", 1, 2 };
    struct ing_buf out = { 0 };
    assert_int_equal(wx_rows(&p, json_array_get(resp, 0), &q, &out), 2);
    assert_int_equal(wx_rows(&p, json_array_get(resp, 1), &q, &out), 2);
    assert_string_equal(
        out.p, "{\"name\":\"X\",\"latitude\":1,\"longitude\":2,\"time\":\"a\",\"t\":1}\n"
               "{\"name\":\"X\",\"latitude\":1,\"longitude\":2,\"time\":\"b\",\"t\":null}\n"
               "{\"name\":\"X\",\"latitude\":1,\"longitude\":2,\"time\":\"a\",\"t\":2.5}\n"
               "{\"name\":\"X\",\"latitude\":1,\"longitude\":2,\"time\":\"b\",\"t\":3}\n");
    ing_buf_release(&out);
    json_decref(resp);
    const char *shorter = "{\"hourly\":{\"time\":[\"a\",\"b\"],\"t\":[1]}}";
    assert_int_equal(wx_response_check(shorter, strlen(shorter), 1, &q, &resp, &err), WX_ESHAPE);
    assert_int_equal(wx_response_check("[1]", 3, 1, &q, &resp, &err), WX_ESHAPE);
    assert_int_equal(wx_response_check("{\"hourly\":{}}", 13, 1, &q, &resp, &err), WX_ESHAPE);
}

/* ---- ingest helpers through a fake host ---------------------------------------------- */

static json_t *g_conn;

static json_t *fake_conn_get(struct weir_task_ctx *ctx, const char *id)
{
    (void)ctx;
    (void)id;
    return g_conn ? json_incref(g_conn) : NULL;
}

static int fake_cancelled(struct weir_task_ctx *ctx)
{
    (void)ctx;
    return 0;
}

static void test_base_url(void **state)
{
    (void)state;
    struct weir_host host = { .abi = WEIR_PLUGIN_ABI,
                              .size = sizeof host,
                              .conn_get = fake_conn_get,
                              .cancelled = fake_cancelled };
    struct ing_task t = { NULL, &host };
    struct ing_err err;
    static const struct {
        const char *conn, *want;
    } cases[] = {
        { NULL, "https://api.open-meteo.com" },
        { "{\"conn_type\":\"http\",\"host\":\"127.0.0.1\",\"port\":8080}",
          "http://127.0.0.1:8080" },
        { "{\"conn_type\":\"http\",\"host\":\"h\",\"port\":1,\"schema\":\"f-429x2-a\"}",
          "http://h:1/f-429x2-a" },
        { "{\"conn_type\":\"https\",\"host\":\"mirror.example\",\"schema\":\"gh/\"}",
          "https://mirror.example/gh" },
        { "{\"conn_type\":\"generic\",\"host\":\"x.example\"}", "https://x.example" },
        { "{\"conn_type\":\"generic\",\"host\":\"x\",\"extra\":{\"scheme\":\"http\"}}",
          "http://x" },
        { "{\"conn_type\":\"generic\",\"host\":\"http://y.example/base/\"}",
          "http://y.example/base" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        g_conn = cases[i].conn ? json_loads(cases[i].conn, 0, NULL) : NULL;
        char *u = ing_base_url(&t, "c", "https://api.open-meteo.com/", &err);
        assert_non_null(u);
        assert_string_equal(u, cases[i].want);
        free(u);
        json_decref(g_conn);
    }
    g_conn = json_loads("{\"conn_type\":\"http\"}", 0, NULL);
    assert_null(ing_base_url(&t, "c", "https://d", &err));
    assert_string_equal(err.msg, "connection 'c' has no host");
    json_decref(g_conn);
    g_conn = NULL;
}

static void test_backoff_and_retryable(void **state)
{
    (void)state;
    assert_int_equal(ing_backoff_ms(1000, 60000, 1, -1), 1000);
    assert_int_equal(ing_backoff_ms(1000, 60000, 3, -1), 4000);
    assert_int_equal(ing_backoff_ms(1000, 60000, 30, -1), 60000);
    assert_int_equal(ing_backoff_ms(100, 60000, 1, 5), 5000);
    assert_int_equal(ing_backoff_ms(100, 3000, 1, 50), 3000);
    assert_true(ing_http_retryable(429));
    assert_true(ing_http_retryable(500));
    assert_true(ing_http_retryable(503));
    assert_false(ing_http_retryable(400));
    assert_false(ing_http_retryable(404));
    assert_false(ing_http_retryable(200));
}

static void test_outputs(void **state)
{
    (void)state;
    char dir[] = "/tmp/weir-ingest-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char dest[256], tmp[300];
    snprintf(dest, sizeof dest, "%s/a/b/out.json", dir);
    struct ing_out o;
    struct ing_err err;
    bool retry;
    struct ing_task t = { NULL, NULL };
    /* commit renames into place, creating folders */
    assert_int_equal(ing_out_open(&o, dest, dir, &err), 0);
    snprintf(tmp, sizeof tmp, "%s", o.tmp_path);
    fputs("hello world", o.fp);
    assert_int_equal(access(dest, F_OK), -1); /* nothing visible before commit */
    assert_int_equal(ing_out_truncate(&o, 5, &err), 0);
    assert_int_equal(ing_out_commit(&o, &t, "s3", &retry, &err), 0);
    ing_out_release(&o);
    size_t n;
    char *got = read_file(dest, &n);
    assert_string_equal(got, "hello");
    free(got);
    assert_int_equal(access(tmp, F_OK), -1);
    /* released without commit: the old file stays, the temp file goes */
    assert_int_equal(ing_out_open(&o, dest, dir, &err), 0);
    snprintf(tmp, sizeof tmp, "%s", o.tmp_path);
    fputs("half", o.fp);
    ing_out_release(&o);
    assert_int_equal(access(tmp, F_OK), -1);
    got = read_file(dest, &n);
    assert_string_equal(got, "hello");
    free(got);
    /* bad destinations */
    assert_int_equal(ing_out_open(&o, "", dir, &err), -1);
    assert_int_equal(ing_out_open(&o, "s3://bucket", dir, &err), -1);
    assert_non_null(strstr(err.msg, "expected s3://bucket/key"));
    assert_int_equal(ing_out_open(&o, "s3:///key", dir, &err), -1);
    snprintf(tmp, sizeof tmp, "%s/folder/", dir);
    assert_int_equal(ing_out_open(&o, tmp, dir, &err), -1);
    assert_non_null(strstr(err.msg, "is a folder"));
    assert_int_equal(ing_out_open(&o, "/proc/nope/x.json", dir, &err), -1);
    /* an s3 destination writes its temp file in the work dir */
    assert_int_equal(ing_out_open(&o, "s3://bkt/raw/x.json", dir, &err), 0);
    assert_true(o.s3);
    assert_string_equal(o.bucket, "bkt");
    assert_string_equal(o.key, "raw/x.json");
    assert_true(strncmp(o.tmp_path, dir, strlen(dir)) == 0);
    ing_out_release(&o);
    snprintf(tmp, sizeof tmp, "%s/a/b", dir);
    unlink(dest);
    rmdir(tmp);
    snprintf(tmp, sizeof tmp, "%s/a", dir);
    rmdir(tmp);
    assert_int_equal(rmdir(dir), 0);
}

static void test_buf_jstr(void **state)
{
    (void)state;
    struct ing_buf b = { 0 };
    ing_buf_add_jstr(&b, "a\"b\\c\n\x01\xc3\xa9", 9);
    assert_string_equal(b.p, "\"a\\\"b\\\\c\\u000a\\u0001\xc3\xa9\"");
    json_t *j = json_loads(b.p, JSON_DECODE_ANY, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(j), "a\"b\\c\n\x01\xc3\xa9");
    json_decref(j);
    ing_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_places_dutch_cities),
        cmocka_unit_test(test_places_csv_forms),
        cmocka_unit_test(test_vars),
        cmocka_unit_test(test_url),
        cmocka_unit_test(test_response_fixture_and_rows),
        cmocka_unit_test(test_response_errors_and_arrays),
        cmocka_unit_test(test_base_url),
        cmocka_unit_test(test_backoff_and_retryable),
        cmocka_unit_test(test_outputs),
        cmocka_unit_test(test_buf_jstr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
