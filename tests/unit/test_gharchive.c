/* tests/unit/test_gharchive.c - the gharchive flattener (plugins/gharchive/ghflat.c): the
 * fast extractor against the jansson reference on real sample events, hand-written edge
 * cases and thousands of random mutations; the gzip stream in odd chunkings, multi-member
 * files, truncation, corruption, long and bad lines, and the type filter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <zlib.h>

#include "ghflat.h"

#ifndef WEIR_FIXTURES
#error WEIR_FIXTURES must name shared/fixtures
#endif

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = NULL;
    size_t cap = 0, n = 0, r;
    do {
        if (n + 65536 > cap) {
            cap = cap ? cap * 2 : 65536;
            buf = realloc(buf, cap + 1);
            assert_non_null(buf);
        }
        r = fread(buf + n, 1, cap - n, f);
        n += r;
    } while (r > 0);
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Compares two rows as JSON; the payload strings are compared as parsed JSON too. */
static void assert_rows_equal(const char *a, size_t an, const char *b, size_t bn, const char *line)
{
    json_error_t e1, e2;
    json_t *ja = json_loadb(a, an, JSON_ALLOW_NUL, &e1);
    json_t *jb = json_loadb(b, bn, JSON_ALLOW_NUL, &e2);
    if (!ja || !jb)
        fail_msg("row is not JSON (%s / %s) for line: %.300s", ja ? "ok" : e1.text,
                 jb ? "ok" : e2.text, line);
    json_t *pa = json_object_get(ja, "payload"), *pb = json_object_get(jb, "payload");
    if (json_is_string(pa) && json_is_string(pb)) {
        json_t *xa = json_loadb(json_string_value(pa), json_string_length(pa),
                                JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        json_t *xb = json_loadb(json_string_value(pb), json_string_length(pb),
                                JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        if (!xa || !xb || !json_equal(xa, xb))
            fail_msg("payloads differ for line: %.300s", line);
        json_decref(xa);
        json_decref(xb);
        json_object_del(ja, "payload");
        json_object_del(jb, "payload");
    } else if (!json_equal(pa, pb)) {
        fail_msg("payload kinds differ for line: %.300s", line);
    }
    if (!json_equal(ja, jb)) {
        char *da = json_dumps(ja, JSON_COMPACT), *db = json_dumps(jb, JSON_COMPACT);
        fail_msg("rows differ:\n fast    %s\n jansson %s\n line %.300s", da, db, line);
    }
    json_decref(ja);
    json_decref(jb);
}

/* Flattens `line` both ways; they must agree. Returns the fast path's result. */
static int check_line(const char *line, size_t n, const char *const *types, size_t nt)
{
    struct ghf_buf f = { 0 }, j = { 0 };
    bool slow;
    int rf = ghf_flatten_line(line, n, types, nt, &f, &slow);
    int rj = ghf_flatten_jansson(line, n, types, nt, &j);
    if (rf != rj)
        fail_msg("fast path says %d, jansson %d, for: %.*s", rf, rj, (int)(n > 300 ? 300 : n),
                 line);
    if (rf == 1) {
        assert_true(f.len > 0 && f.p[f.len - 1] == '\n');
        assert_rows_equal(f.p, f.len - 1, j.p, j.len - 1, line);
    } else {
        assert_int_equal(f.len, 0);
    }
    ghf_buf_release(&f);
    ghf_buf_release(&j);
    return rf;
}

static void test_samples_match_jansson(void **state)
{
    (void)state;
    size_t n;
    char *text = read_file(WEIR_FIXTURES "/gharchive/sample-events.ndjson", &n);
    int lines = 0;
    for (char *p = text, *nl; (nl = strchr(p, '\n')); p = nl + 1) {
        assert_int_equal(check_line(p, (size_t)(nl - p), NULL, 0), 1);
        bool slow = true;
        struct ghf_buf b = { 0 };
        ghf_flatten_line(p, (size_t)(nl - p), NULL, 0, &b, &slow);
        assert_false(slow); /* real events take the fast path */
        ghf_buf_release(&b);
        lines++;
    }
    assert_int_equal(lines, 9);
    free(text);
}

static void test_row_shape(void **state)
{
    (void)state;
    const char *line =
        "{\"id\":\"7\",\"type\":\"WatchEvent\",\"actor\":{\"id\":5,\"login\":\"ann\"},"
        "\"repo\":{\"id\":9,\"name\":\"a/b\"},\"org\":{\"login\":\"acme\"},"
        "\"payload\":{\"action\":\"started\",\"q\":\"say \\\"hi\\\"\"},"
        "\"public\":true,\"created_at\":\"2026-01-02T03:04:05Z\"}";
    struct ghf_buf b = { 0 };
    assert_int_equal(ghf_flatten_line(line, strlen(line), NULL, 0, &b, NULL), 1);
    assert_int_equal(ghf_buf_add(&b, "", 1), 0);
    assert_string_equal(b.p, "{\"id\":\"7\",\"type\":\"WatchEvent\",\"actor_id\":5,"
                             "\"actor_login\":\"ann\",\"repo_id\":9,\"repo_name\":\"a/b\","
                             "\"org_login\":\"acme\",\"created_at\":\"2026-01-02T03:04:05Z\","
                             "\"public\":true,\"payload\":\"{\\\"action\\\":\\\"started\\\","
                             "\\\"q\\\":\\\"say \\\\\\\"hi\\\\\\\"\\\"}\"}\n");
    ghf_buf_release(&b);
}

static const char *const edge_cases[] = {
    /* valid */
    "{}",
    " { \"id\" : \"1\" , \"type\" :\t\"PushEvent\" , \"payload\" : { } } \r",
    "{\"id\":1,\"type\":null,\"actor\":\"x\",\"repo\":[1,2],\"org\":null,\"payload\":null}",
    "{\"actor\":{\"id\":1,\"id\":2,\"login\":\"a\"},\"actor\":{\"login\":\"b\"}}",
    "{\"id\":\"1\",\"id\":\"2\"}",
    "{\"\\u0069d\":\"escaped key\",\"type\":\"X\"}",
    "{\"type\":\"Push\\u0045vent\"}",
    "{\"actor\":{\"\\u006cogin\":\"esc\"}}",
    "{\"payload\":{\"s\":\"\\ud83d\\ude00 \\u00e9 \\\\ \\/ \\b\\f\\n\\r\\t\",\"u\":\"\xc3\xa9\xe2\x98\x83\xf0\x9f\x98\x80\"}}",
    "{\"payload\":{\"n\":[0,-0,1.5,-2.25e10,1E+2,3e-5,123456789012345678,-12345678901234567]}}",
    "{\"payload\":{\"big\":12345678901234567890}}",
    "{\"payload\":{\"huge\":1e999}}",
    "{\"payload\":{\"nul\":\"a\\u0000b\"}}",
    "{\"payload\":{\"\\u0000k\":1}}",
    "{\"payload\":[[[[[[[[[[{\"a\":[{}]}]]]]]]]]]],\"public\":false}",
    "{\"payload\":\t{\"tab\":1}\t,\"public\":true}",
    "{\"created_at\":\"2015-01-01T15:00:00Z\",\"public\":true,\"org\":{\"id\":1,\"login\":\"o\"}}",
    /* invalid */
    "",
    "[]",
    "\"str\"",
    "{",
    "{\"id\":\"1\"",
    "{\"id\":\"1\",}",
    "{\"id\" \"1\"}",
    "{\"id\":\"1\"} x",
    "{\"id\":\"1\"}{}",
    "{\"id\":\"unterminated}",
    "{\"id\":\"bad \\x escape\"}",
    "{\"id\":\"bad \\u12G4\"}",
    "{\"id\":\"lone \\ud83d high\"}",
    "{\"id\":\"lone \\ude00 low\"}",
    "{\"id\":\"raw \x01 control\"}",
    "{\"id\":\"bad utf8 \xc3\x28\"}",
    "{\"id\":\"overlong \xc0\xaf\"}",
    "{\"id\":\"surrogate \xed\xa0\x80\"}",
    "{\"id\":\"too big \xf4\x90\x80\x80\"}",
    "{\"id\":01}",
    "{\"id\":1.}",
    "{\"id\":.5}",
    "{\"id\":-}",
    "{\"id\":1e}",
    "{\"id\":+1}",
    "{\"id\":tru}",
    "{\"id\":nulll}",
    "{\"id\":NaN}",
    "{\"payload\":{\"a\":1,}}",
    "{\"payload\":[1,]}",
    "{\"payload\":{\"a\" 1}}",
    "{\"actor\":{\"id\":1,\"login\"}}",
    "{'id':1}",
};

static void test_edge_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof edge_cases / sizeof edge_cases[0]; i++)
        check_line(edge_cases[i], strlen(edge_cases[i]), NULL, 0);
    /* a NUL byte inside a line */
    static const char nul_line[] = "{\"id\":\"a\0b\"}";
    check_line(nul_line, sizeof nul_line - 1, NULL, 0);
    /* found by fuzz_ghflat: jansson skips a NUL right after a number */
    static const char nul_num[] = "{\"actor\":{\"id\":15\0,\"login\":\"x\"}}";
    assert_int_equal(check_line(nul_num, sizeof nul_num - 1, NULL, 0), 1);
    /* deep nesting beyond jansson's limit */
    size_t depth = 3000;
    char *deep = malloc(depth * 2 + 32);
    size_t k = 0;
    k += (size_t)snprintf(deep, 32, "{\"payload\":");
    for (size_t i = 0; i < depth; i++)
        deep[k++] = '[';
    for (size_t i = 0; i < depth; i++)
        deep[k++] = ']';
    deep[k++] = '}';
    check_line(deep, k, NULL, 0);
    free(deep);
}

static void test_type_filter(void **state)
{
    (void)state;
    const char *types[] = { "PushEvent", "WatchEvent" };
    assert_int_equal(check_line("{\"type\":\"PushEvent\"}", 20, types, 2), 1);
    assert_int_equal(check_line("{\"type\":\"ForkEvent\"}", 20, types, 2), 0);
    assert_int_equal(check_line("{\"id\":1}", 8, types, 2), 0);
    assert_int_equal(check_line("{\"type\":7}", 10, types, 2), 0);
    const char *esc = "{\"type\":\"Push\\u0045vent\"}";
    assert_int_equal(check_line(esc, strlen(esc), types, 2), 1);
    assert_int_equal(check_line("{\"type\":\"Push", 13, types, 2), -1);
}

/* Random byte edits of real events: both paths must agree on every one. */
static void test_mutations_agree(void **state)
{
    (void)state;
    size_t n;
    char *text = read_file(WEIR_FIXTURES "/gharchive/sample-events.ndjson", &n);
    char *lines[16];
    size_t lens[16], nl = 0;
    for (char *p = text, *e; nl < 16 && (e = strchr(p, '\n')); p = e + 1) {
        lines[nl] = p;
        lens[nl++] = (size_t)(e - p);
    }
    static const char alphabet[] = "{}[]\",:\\u0123456789eE+-.tfnlx \t\x80\xc3\xa9\xed\xf4\x01";
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    int valid = 0, invalid = 0;
    char *buf = malloc(16384);
    for (int iter = 0; iter < 20000; iter++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        size_t li = (size_t)(seed >> 33) % nl, len = lens[li];
        memcpy(buf, lines[li], len);
        int edits = 1 + (int)((seed >> 20) % 3);
        for (int e = 0; e < edits; e++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            size_t pos = (size_t)(seed >> 33) % len;
            char c = alphabet[(seed >> 13) % (sizeof alphabet - 1)];
            switch ((seed >> 40) % 3) {
            case 0: /* replace */
                buf[pos] = c;
                break;
            case 1: /* delete */
                memmove(buf + pos, buf + pos + 1, len - pos - 1);
                len--;
                break;
            default: /* insert */
                if (len + 1 < 16384) {
                    memmove(buf + pos + 1, buf + pos, len - pos);
                    buf[pos] = c;
                    len++;
                }
            }
        }
        if (check_line(buf, len, NULL, 0) == 1)
            valid++;
        else
            invalid++;
    }
    free(buf);
    free(text);
    /* the mutations produce both outcomes, so both sides of the comparison ran */
    assert_true(valid > 1000);
    assert_true(invalid > 1000);
}

/* ---- streams ------------------------------------------------------------------------- */

static unsigned char *gzip_bytes(const char *data, size_t n, size_t *out_len)
{
    z_stream zs = { 0 };
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&zs, n) + 64;
    unsigned char *out = malloc(cap);
    zs.next_in = (Bytef *)(uintptr_t)data;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    *out_len = zs.total_out;
    deflateEnd(&zs);
    return out;
}

static int collect(void *ud, const char *data, size_t len)
{
    return ghf_buf_add(ud, data, len);
}

/* Runs gz through a fresh flattener in chunks of `chunk` bytes (0: random sizes). */
static int run_stream(const unsigned char *gz, size_t n, size_t chunk, struct ghf_buf *out,
                      struct ghf_stats *st, char *err, const char *const *types, size_t nt,
                      uint64_t max_bad, size_t max_line)
{
    struct ghf g;
    out->len = 0;
    assert_int_equal(ghf_init(&g, types, nt, max_line, max_bad, collect, out), 0);
    uint64_t seed = 12345;
    int rc = 0;
    for (size_t off = 0; off < n && rc == 0;) {
        size_t c = chunk;
        if (!c) {
            seed = seed * 6364136223846793005ull + 1;
            c = 1 + (size_t)(seed >> 33) % 5000;
        }
        if (c > n - off)
            c = n - off;
        rc = ghf_feed_gz(&g, gz + off, c);
        off += c;
    }
    if (rc == 0)
        rc = ghf_finish(&g, true);
    *st = g.stats;
    snprintf(err, 256, "%s", g.err);
    ghf_release(&g);
    return rc;
}

static void test_stream_chunkings(void **state)
{
    (void)state;
    size_t n, gzn;
    char *text = read_file(WEIR_FIXTURES "/gharchive/sample-events.ndjson", &n);
    unsigned char *gz = gzip_bytes(text, n, &gzn);
    struct ghf_buf ref = { 0 }, out = { 0 };
    struct ghf_stats st;
    char err[256];
    assert_int_equal(run_stream(gz, gzn, gzn, &ref, &st, err, NULL, 0, 0, 0), 0);
    assert_int_equal(st.rows, 9);
    assert_int_equal(st.lines, 9);
    size_t chunks[] = { 1, 2, 7, 100, 4096, 0 };
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        assert_int_equal(run_stream(gz, gzn, chunks[i], &out, &st, err, NULL, 0, 0, 0), 0);
        assert_int_equal(out.len, ref.len);
        assert_memory_equal(out.p, ref.p, ref.len);
    }
    /* two gzip members back to back (as `cat a.gz b.gz`), the second without a final \n */
    size_t gz2n;
    unsigned char *gz2 = gzip_bytes("{\"id\":\"x\"}", 10, &gz2n);
    unsigned char *both = malloc(gzn + gz2n);
    memcpy(both, gz, gzn);
    memcpy(both + gzn, gz2, gz2n);
    assert_int_equal(run_stream(both, gzn + gz2n, 333, &out, &st, err, NULL, 0, 0, 0), 0);
    assert_int_equal(st.rows, 10);
    /* truncated: every cut inside the stream is noticed */
    for (size_t cut = 1; cut < gzn; cut += gzn / 17) {
        assert_int_equal(run_stream(gz, cut, 512, &out, &st, err, NULL, 0, 0, 0), -1);
        assert_non_null(strstr(err, "truncated"));
    }
    assert_int_equal(run_stream(gz, 0, 512, &out, &st, err, NULL, 0, 0, 0), -1);
    assert_non_null(strstr(err, "empty"));
    /* corrupt: not gzip at all, and a flipped byte in the middle */
    assert_int_equal(run_stream((const unsigned char *)"<html>nope</html>", 17, 17, &out, &st, err,
                                NULL, 0, 0, 0),
                     -1);
    assert_non_null(strstr(err, "corrupt gzip"));
    gz[gzn / 2] ^= 0x55;
    assert_int_equal(run_stream(gz, gzn, 4096, &out, &st, err, NULL, 0, 0, 0), -1);
    free(both);
    free(gz2);
    free(gz);
    free(text);
    ghf_buf_release(&ref);
    ghf_buf_release(&out);
}

static void test_stream_filter_bad_long(void **state)
{
    (void)state;
    const char *text = "{\"type\":\"PushEvent\",\"id\":\"1\"}\n"
                       "\n"
                       "{\"type\":\"WatchEvent\",\"id\":\"2\"}\r\n"
                       "not json\n"
                       "{\"type\":\"PushEvent\",\"id\":\"3\"}";
    size_t gzn;
    unsigned char *gz = gzip_bytes(text, strlen(text), &gzn);
    struct ghf_buf out = { 0 };
    struct ghf_stats st;
    char err[256];
    const char *types[] = { "PushEvent" };
    /* one bad line: fails with max_bad 0 and names the line */
    assert_int_equal(run_stream(gz, gzn, 5, &out, &st, err, types, 1, 0, 0), -1);
    assert_non_null(strstr(err, "line 3 is not a JSON event"));
    /* tolerated with max_bad 1 */
    assert_int_equal(run_stream(gz, gzn, 5, &out, &st, err, types, 1, 1, 0), 0);
    assert_int_equal(st.rows, 2);
    assert_int_equal(st.filtered, 1);
    assert_int_equal(st.bad, 1);
    assert_int_equal(st.lines, 4);
    assert_int_equal(ghf_buf_add(&out, "", 1), 0);
    assert_non_null(strstr(out.p, "\"id\":\"1\""));
    assert_non_null(strstr(out.p, "\"id\":\"3\""));
    assert_null(strstr(out.p, "\"id\":\"2\""));
    /* a line longer than max_line fails, whether it arrives whole or in pieces */
    assert_int_equal(run_stream(gz, gzn, 1, &out, &st, err, NULL, 0, 9, 16), -1);
    assert_non_null(strstr(err, "longer than 16 bytes"));
    assert_int_equal(run_stream(gz, gzn, gzn, &out, &st, err, NULL, 0, 9, 16), -1);
    assert_non_null(strstr(err, "longer than 16 bytes"));
    free(gz);
    ghf_buf_release(&out);
}

static int refuse(void *ud, const char *data, size_t len)
{
    (void)ud;
    (void)data;
    (void)len;
    return -1;
}

static void test_write_failure_and_reset(void **state)
{
    (void)state;
    size_t n, gzn;
    char *text = read_file(WEIR_FIXTURES "/gharchive/sample-events.ndjson", &n);
    unsigned char *gz = gzip_bytes(text, n, &gzn);
    struct ghf g;
    assert_int_equal(ghf_init(&g, NULL, 0, 0, 0, refuse, NULL), 0);
    assert_int_equal(ghf_feed_gz(&g, gz, gzn), 0); /* rows are buffered below 1 MiB */
    assert_int_equal(ghf_finish(&g, true), -1);
    assert_string_equal(g.err, "cannot write rows");
    /* reset: a retried download starts over cleanly */
    struct ghf_buf out = { 0 };
    g.write = collect;
    g.ud = &out;
    assert_int_equal(ghf_reset(&g), 0);
    assert_int_equal(ghf_feed_gz(&g, gz, gzn / 2), 0);
    assert_int_equal(ghf_reset(&g), 0);
    assert_int_equal(ghf_feed_gz(&g, gz, gzn), 0);
    assert_int_equal(ghf_finish(&g, true), 0);
    assert_int_equal(g.stats.rows, 9);
    ghf_release(&g);
    ghf_release(&g); /* safe twice */
    ghf_buf_release(&out);
    free(gz);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_samples_match_jansson),
        cmocka_unit_test(test_row_shape),
        cmocka_unit_test(test_edge_cases),
        cmocka_unit_test(test_type_filter),
        cmocka_unit_test(test_mutations_agree),
        cmocka_unit_test(test_stream_chunkings),
        cmocka_unit_test(test_stream_filter_bad_long),
        cmocka_unit_test(test_write_failure_and_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
