/* tests/unit/test_yj.c - YAML to JSON: scalar typing, positions, errors, aliases, limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/yj.h"

static struct yj_doc *parse_ok(const char *src)
{
    struct weir_err e;
    err_clear(&e);
    struct yj_doc *d = yj_parse_string(src, strlen(src), "t.yaml", &e);
    if (!d)
        fail_msg("unexpected error %s: %s", e.loc, e.msg);
    return d;
}

/* Parses `src` expecting failure; checks the location and that msg contains `part`. */
static void parse_err(const char *src, int code, const char *loc, const char *part)
{
    struct weir_err e;
    err_clear(&e);
    struct yj_doc *d = yj_parse_string(src, strlen(src), "t.yaml", &e);
    if (d) {
        yj_free(d);
        fail_msg("expected an error for: %s", src);
    }
    assert_int_equal(e.code, code);
    if (loc)
        assert_string_equal(e.loc, loc);
    if (!strstr(e.msg, part))
        fail_msg("message '%s' lacks '%s'", e.msg, part);
}

static void test_scalars(void **state)
{
    (void)state;
    struct yj_doc *d = parse_ok("n1: null\nn2: ~\nn3:\nn4: NULL\n"
                                "b1: true\nb2: False\nb3: yes\n"
                                "i1: 42\ni2: -7\ni3: 0x1F\ni4: 0o17\ni5: +3\n"
                                "f1: 1.5\nf2: 2e3\nf3: .5\nf4: .inf\n"
                                "s1: '42'\ns2: \"true\"\ns3: 2026-01-01\ns4: 30s\ns5: 10:00\n"
                                "s6: !!str 12\ni6: !!int \"12\"\nf5: !!float 3\ns7: |\n  a\n  b\n"
                                "s8: ''\n");
    json_t *r = yj_root(d);
    assert_true(json_is_object(r));
    assert_true(json_is_null(json_object_get(r, "n1")));
    assert_true(json_is_null(json_object_get(r, "n2")));
    assert_true(json_is_null(json_object_get(r, "n3")));
    assert_true(json_is_null(json_object_get(r, "n4")));
    assert_true(json_is_true(json_object_get(r, "b1")));
    assert_true(json_is_false(json_object_get(r, "b2")));
    assert_string_equal(json_string_value(json_object_get(r, "b3")), "yes");
    assert_int_equal(json_integer_value(json_object_get(r, "i1")), 42);
    assert_int_equal(json_integer_value(json_object_get(r, "i2")), -7);
    assert_int_equal(json_integer_value(json_object_get(r, "i3")), 31);
    assert_int_equal(json_integer_value(json_object_get(r, "i4")), 15);
    assert_int_equal(json_integer_value(json_object_get(r, "i5")), 3);
    assert_true(json_is_real(json_object_get(r, "f1")));
    assert_true(json_real_value(json_object_get(r, "f2")) == 2000.0);
    assert_true(json_real_value(json_object_get(r, "f3")) == 0.5);
    assert_string_equal(json_string_value(json_object_get(r, "f4")), ".inf");
    assert_string_equal(json_string_value(json_object_get(r, "s1")), "42");
    assert_string_equal(json_string_value(json_object_get(r, "s2")), "true");
    assert_string_equal(json_string_value(json_object_get(r, "s3")), "2026-01-01");
    assert_string_equal(json_string_value(json_object_get(r, "s4")), "30s");
    assert_string_equal(json_string_value(json_object_get(r, "s5")), "10:00");
    assert_string_equal(json_string_value(json_object_get(r, "s6")), "12");
    assert_int_equal(json_integer_value(json_object_get(r, "i6")), 12);
    assert_true(json_is_real(json_object_get(r, "f5")));
    assert_string_equal(json_string_value(json_object_get(r, "s7")), "a\nb\n");
    assert_string_equal(json_string_value(json_object_get(r, "s8")), "");
    yj_free(d);
}

static void test_positions(void **state)
{
    (void)state;
    /* true/false/null are shared singletons in jansson: positions must still differ. */
    struct yj_doc *d = parse_ok("# comment\n"
                                "a: true\n"
                                "b:   true\n"
                                "list:\n"
                                "  - x\n"
                                "  -   null\n"
                                "map: {k: 1, j: [1, 2]}\n");
    json_t *r = yj_root(d);
    int l, c;
    yj_loc_root(d, &l, &c);
    assert_int_equal(l, 2);
    assert_int_equal(c, 1);
    assert_int_equal(yj_loc_key(d, r, "a", &l, &c), 0);
    assert_int_equal(l, 2);
    assert_int_equal(c, 1);
    assert_int_equal(yj_loc_value(d, r, "a", &l, &c), 0);
    assert_int_equal(l, 2);
    assert_int_equal(c, 4);
    assert_int_equal(yj_loc_value(d, r, "b", &l, &c), 0);
    assert_int_equal(l, 3);
    assert_int_equal(c, 6);
    json_t *list = json_object_get(r, "list");
    assert_int_equal(yj_loc_index(d, list, 0, &l, &c), 0);
    assert_int_equal(l, 5);
    assert_int_equal(c, 5);
    assert_int_equal(yj_loc_index(d, list, 1, &l, &c), 0);
    assert_int_equal(l, 6);
    assert_int_equal(c, 7);
    assert_int_equal(yj_loc_index(d, list, 2, &l, &c), -WEIR_ENOTFOUND);
    assert_int_equal(l, 0);
    json_t *map = json_object_get(r, "map");
    assert_int_equal(yj_loc_key(d, map, "j", &l, &c), 0);
    assert_int_equal(l, 7);
    assert_int_equal(c, 13);
    assert_int_equal(yj_loc_index(d, json_object_get(map, "j"), 1, &l, &c), 0);
    assert_int_equal(l, 7);
    assert_int_equal(c, 20);
    assert_int_equal(yj_loc_key(d, r, "nope", &l, &c), -WEIR_ENOTFOUND);
    assert_int_equal(yj_loc_key(d, map, "a", &l, &c), -WEIR_ENOTFOUND);
    assert_string_equal(yj_name(d), "t.yaml");
    yj_free(d);
}

static void test_key_order(void **state)
{
    (void)state;
    struct yj_doc *d = parse_ok("z: 1\na: 2\nm: 3\n");
    const char *k;
    json_t *v;
    const char *want[] = { "z", "a", "m" };
    size_t i = 0;
    json_object_foreach(yj_root(d), k, v) {
        assert_string_equal(k, want[i]);
        i++;
    }
    assert_int_equal(i, 3);
    yj_free(d);
}

static void test_empty(void **state)
{
    (void)state;
    struct yj_doc *d = parse_ok("");
    assert_true(json_is_null(yj_root(d)));
    yj_free(d);
    d = parse_ok("# only a comment\n---\n");
    assert_true(json_is_null(yj_root(d)));
    yj_free(d);
    d = parse_ok("just a string");
    assert_string_equal(json_string_value(yj_root(d)), "just a string");
    yj_free(d);
}

static void test_errors(void **state)
{
    (void)state;
    parse_err("a: 1\nb: 2\na: 3\n", WEIR_EINVAL, "t.yaml:3:1",
              "duplicate key 'a' (first at line 1)");
    parse_err("x: {a: 1, a: 2}\n", WEIR_EINVAL, "t.yaml:1:11", "duplicate key 'a'");
    parse_err("1: one\n", WEIR_EINVAL, "t.yaml:1:1", "mapping key '1' is not a string");
    parse_err("? [a]\n: b\n", WEIR_EINVAL, "t.yaml:1:3", "mapping key must be a string");
    parse_err("a: b: c\n", WEIR_EINVAL, "t.yaml:1:5",
              "invalid yaml: mapping values are not allowed in this context");
    parse_err("a:\n  - x\n y: 2\n", WEIR_EINVAL, NULL, "invalid yaml: ");
    parse_err("a: [1, 2\n", WEIR_EINVAL, NULL, "while parsing a flow sequence");
    parse_err("a: 1\n---\nb: 2\n", WEIR_EINVAL, "t.yaml:2:1", "more than one yaml document");
    parse_err("a: *nope\n", WEIR_EINVAL, "t.yaml:1:4", "unknown anchor 'nope'");
    parse_err("a: !custom x\n", WEIR_EINVAL, "t.yaml:1:4", "unsupported tag '!custom'");
    parse_err("a: !!int x\n", WEIR_EINVAL, "t.yaml:1:4", "'x' is not a valid !!int");
    parse_err("a: 99999999999999999999\n", WEIR_EINVAL, "t.yaml:1:4", "out of range");
    parse_err("a: \"x\\0y\"\n", WEIR_EINVAL, "t.yaml:1:4", "NUL byte");
    parse_err("a: \xff\xfe\n", WEIR_EINVAL, "t.yaml:1:4", "invalid yaml: invalid leading UTF-8");
    parse_err("<<: 1\n", WEIR_EINVAL, "t.yaml:1:5", "merge key '<<'");
}

static void test_aliases(void **state)
{
    (void)state;
    struct yj_doc *d = parse_ok("base: &b\n"
                                "  retries: 3\n"
                                "  env: {A: x}\n"
                                "t1: *b\n"
                                "t2:\n"
                                "  <<: *b\n"
                                "  retries: 5\n"
                                "s: &s hello\n"
                                "u: *s\n");
    json_t *r = yj_root(d);
    json_t *b = json_object_get(r, "base"), *t1 = json_object_get(r, "t1");
    json_t *t2 = json_object_get(r, "t2");
    assert_true(json_equal(b, t1));
    assert_true(b != t1); /* a copy: editing one never changes the other */
    assert_int_equal(json_integer_value(json_object_get(t2, "retries")), 5);
    assert_string_equal(json_string_value(json_object_get(json_object_get(t2, "env"), "A")), "x");
    assert_string_equal(json_string_value(json_object_get(r, "u")), "hello");
    int l, c;
    /* Copied positions point at the anchored definition. */
    assert_int_equal(yj_loc_value(d, t1, "retries", &l, &c), 0);
    assert_int_equal(l, 2);
    assert_int_equal(yj_loc_value(d, t2, "retries", &l, &c), 0);
    assert_int_equal(l, 7);
    assert_int_equal(yj_loc_value(d, t2, "env", &l, &c), 0);
    assert_int_equal(l, 3);
    assert_int_equal(yj_loc_value(d, r, "t1", &l, &c), 0);
    assert_int_equal(l, 4);
    assert_int_equal(c, 5);
    yj_free(d);

    /* Merging a list of mappings: earlier sources win, explicit keys win over all. */
    d = parse_ok("a: &a {x: 1, y: 1}\nb: &b {y: 2, z: 2}\nc:\n  <<: [*a, *b]\n  z: 3\n");
    json_t *cc = json_object_get(yj_root(d), "c");
    assert_int_equal(json_integer_value(json_object_get(cc, "x")), 1);
    assert_int_equal(json_integer_value(json_object_get(cc, "y")), 1);
    assert_int_equal(json_integer_value(json_object_get(cc, "z")), 3);
    yj_free(d);

    /* A mapping cannot contain an alias to itself: the anchor is not complete yet. */
    parse_err("a: &a [*a]\n", WEIR_EINVAL, "t.yaml:1:8", "unknown anchor 'a'");
}

static void test_billion_laughs(void **state)
{
    (void)state;
    const char *src = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                      "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                      "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                      "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                      "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                      "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                      "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
                      "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
                      "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
    parse_err(src, WEIR_ETOOBIG, NULL, "alias expansion limit exceeded");
}

static void test_depth(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 0);
    for (int i = 0; i < 300; i++)
        buf_addc(&b, '[');
    for (int i = 0; i < 300; i++)
        buf_addc(&b, ']');
    parse_err(b.s, WEIR_ETOOBIG, "t.yaml:1:257", "nesting deeper than 256 levels");
    buf_release(&b);
}

static void test_files(void **state)
{
    (void)state;
    struct weir_err e;
    err_clear(&e);
    assert_null(yj_parse_file("/nonexistent/dir/x.yaml", &e));
    assert_int_equal(e.code, WEIR_ENOTFOUND);
    assert_non_null(strstr(e.msg, "cannot open '/nonexistent/dir/x.yaml'"));

    char path[] = "/tmp/test_yj_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *src = "a: 1\nb: [x, y]\nc: {\n";
    assert_int_equal(write(fd, src, strlen(src)), (ssize_t)strlen(src));
    close(fd);
    err_clear(&e);
    assert_null(yj_parse_file(path, &e));
    char want[128];
    snprintf(want, sizeof want, "%s:4:1", path);
    assert_string_equal(e.loc, want);

    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("a: 1\n", f);
    fclose(f);
    struct yj_doc *d = yj_parse_file(path, &e);
    assert_non_null(d);
    assert_string_equal(yj_name(d), path);
    yj_free(d);

    /* Over 4 MiB: refused before parsing. */
    f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < (4 << 20) / 8 + 1; i++)
        fputs("# 45678\n", f);
    fclose(f);
    err_clear(&e);
    assert_null(yj_parse_file(path, &e));
    assert_int_equal(e.code, WEIR_ETOOBIG);
    unlink(path);

    err_clear(&e);
    assert_null(yj_parse_file("/tmp", &e));
    assert_int_equal(e.code, WEIR_EIO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),        cmocka_unit_test(test_positions),
        cmocka_unit_test(test_key_order),      cmocka_unit_test(test_empty),
        cmocka_unit_test(test_errors),         cmocka_unit_test(test_aliases),
        cmocka_unit_test(test_billion_laughs), cmocka_unit_test(test_depth),
        cmocka_unit_test(test_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
