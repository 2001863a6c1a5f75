/* tests/unit/test_tmpl.c - the template engine (core/tmpl.h): rendering, filters, tests,
 * Jinja semantics, error messages with locations, limits, and tmpl_render_json. Most cases
 * are rows of a table: template, expected output or expected error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka needs the headers above */
#include <cmocka.h>
#include <jansson.h>

#include "core/err.h"
#include "core/tmpl.h"

static const char VARS[] =
    "{\"ds\": \"2026-01-05\", \"ds_nodash\": \"20260105\", \"ts\": \"2026-01-05T00:00:00+00:00\","
    " \"run_id\": \"manual__1\", \"dag\": {\"id\": \"weather\"}, \"task\": {\"id\": \"fetch\"},"
    " \"params\": {\"city\": \"Utrecht\", \"n\": 3, \"f\": 1.5, \"xs\": [3, 1, 2],"
    " \"names\": [\"b\", \"A\", \"c\", \"a\"], \"m\": {\"b\": 2, \"a\": 1}, \"empty\": \"\","
    " \"nothing\": null, \"rows\": [{\"n\": \"x\", \"v\": 2}, {\"n\": \"y\", \"v\": 1}]},"
    " \"conf\": {}}";

static int calls;

static json_t *host_call(void *ud, const char *name, json_t *args, struct weir_err *err)
{
    (void)ud;
    calls++;
    if (!strcmp(name, "var")) {
        const char *k = json_string_value(json_array_get(args, 0));
        if (k && !strcmp(k, "region"))
            return json_string("eu-west-1");
        err_set(err, WEIR_ENOTFOUND, "variable '%s' not found", k ? k : "?");
        return NULL;
    }
    if (!strcmp(name, "xcom")) {
        if (json_array_size(args) != 2)
            return NULL; /* no message: the engine supplies one */
        return json_pack("{s:s, s:i}", "object", "s3://raw/weather/x.json", "count", 7);
    }
    if (!strcmp(name, "nargs"))
        return json_integer((json_int_t)json_array_size(args));
    err_set(err, WEIR_EINVAL, "unknown function '%s'", name);
    return NULL;
}

static json_t *vars;

static int setup(void **state)
{
    (void)state;
    vars = json_loads(VARS, 0, NULL);
    return vars ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    json_decref(vars);
    return 0;
}

static struct tmpl_env env_default(void)
{
    struct tmpl_env env = { .vars = vars, .call = host_call, .ud = NULL, .max_output = 0 };
    return env;
}

/* Renders `src` and checks the output; prints the template on failure. */
static void ok(const char *src, const char *want)
{
    struct tmpl_env env = env_default();
    struct weir_err err;
    char *out = NULL;
    int rc = tmpl_render(src, &env, &out, &err);
    if (rc != 0)
        fail_msg("template %s: unexpected error %d at %s: %s", src, rc, err.loc, err.msg);
    if (strcmp(out, want) != 0)
        fail_msg("template %s:\n  got  [%s]\n  want [%s]", src, out, want);
    free(out);
    assert_int_equal(tmpl_check(src, &err), 0);
}

/* Renders `src`, expecting code `code`, a message containing `msg` and location `loc`. */
static void bad(const char *src, int code, const char *msg, const char *loc)
{
    struct tmpl_env env = env_default();
    struct weir_err err;
    char *out = (char *)"sentinel";
    int rc = tmpl_render(src, &env, &out, &err);
    if (rc != -code)
        fail_msg("template %s: rc %d, want %d (msg: %s)", src, rc, -code, err.msg);
    assert_null(out);
    assert_int_equal(err.code, code);
    if (!strstr(err.msg, msg))
        fail_msg("template %s:\n  got msg  [%s]\n  want msg containing [%s]", src, err.msg, msg);
    if (loc && strcmp(err.loc, loc) != 0)
        fail_msg("template %s: msg [%s] loc [%s], want [%s]", src, err.msg, err.loc, loc);
}

static void test_text_and_output(void **state)
{
    (void)state;
    ok("", "");
    ok("plain text", "plain text");
    ok("no { braces } here {", "no { braces } here {");
    ok("Hello {{ params.city }} on {{ ds }}!", "Hello Utrecht on 2026-01-05!");
    ok("{{ dag.id }}/{{ task.id }}/{{ run_id }}", "weather/fetch/manual__1");
    ok("{{ params['city'] }} {{ params.xs[0] }} {{ params.xs[-1] }} {{ params.xs.1 }}",
       "Utrecht 3 2 1");
    ok("line\n", "line"); /* one trailing newline dropped, like Jinja */
    ok("line\n\n", "line\n");
    ok("{{ 'a' 'b' }}", "ab"); /* adjacent literals concatenate */
    ok("{{ \"q\\\"\\n\\t\\\\\" }}", "q\"\n\t\\");
    ok("{{ {'a': {'b': 1}} }}", "{\"a\": {\"b\": 1}}"); /* }} inside braces is not the end */
}

static void test_values_render(void **state)
{
    (void)state;
    ok("{{ 1 }} {{ -2 }} {{ 1.5 }} {{ 2.0 }} {{ 0.1 }} {{ 1e20 }} {{ 1.5e-7 }} {{ 123456789.0 }}",
       "1 -2 1.5 2.0 0.1 1e+20 1.5e-07 123456789.0");
    ok("{{ true }} {{ false }} {{ none }} {{ True }} {{ None }}", "True False None True None");
    ok("{{ params.xs }} {{ params.m }} {{ [] }} {{ {} }}", "[3, 1, 2] {\"b\": 2, \"a\": 1} [] {}");
    ok("{{ [1, 'a', none, true, 2.5] }}", "[1, \"a\", null, true, 2.5]");
    ok("{{ params.nothing }}", "None");
}

static void test_values_more(void **state)
{
    (void)state;
    ok("{{ -1.5 }} {{ 1e-5 }} {{ 100.0 }} {{ 1e16 }} {{ 12345678901234567890.0 }} {{ -0.0 }}",
       "-1.5 1e-05 100.0 1e+16 1.2345678901234567e+19 -0.0");
    ok("{{ 'a\nb\t\\\r' | tojson }} {{ [false, none, -2.5] | tojson }}",
       "\"a\\nb\\t\\\\\\r\" [false, null, -2.5]");
    ok("{{ true < false }} {{ [1, 2] < [1, 2, 3] }} {{ [1] == [1, 2] }} {{ {'a': 1} == {'a': 2} }} "
       "{{ {'a': 1} == {'b': 1} }} {{ none == none }} {{ 1 == 'a' }} {{ [1, [2]] == [1, [2]] }}",
       "False True False False False True False True");
    ok("{{ 0.0 or 'z' }} {{ 1.5 and 'y' }}", "z y");
    bad("{{ 5 | list }}", WEIR_EINVAL, "integer is not iterable", NULL);

    /* values from the host may nest deeper than the engine lets templates build */
    json_t *deep = json_array(), *cur = deep;
    for (int i = 0; i < 600; i++) {
        json_t *next = json_array();
        json_array_append_new(cur, next);
        cur = next;
    }
    json_t *v = json_deep_copy(vars);
    json_object_set_new(v, "deep", deep);
    struct tmpl_env env = { .vars = v };
    struct weir_err err;
    char *out = NULL;
    assert_int_equal(tmpl_render("{{ [deep] }}", &env, &out, &err), -WEIR_ETOOBIG);
    assert_string_equal(err.msg, "value nests too deeply (limit 500)");
    assert_int_equal(tmpl_render("{{ deep | tojson | length }}", &env, &out, &err), 0);
    assert_string_equal(out, "1202");
    free(out);
    json_decref(v);
}

static void test_arithmetic(void **state)
{
    (void)state;
    ok("{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 10 - 2 - 3 }}", "7 9 5");
    ok("{{ 7 / 2 }} {{ 4 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }}",
       "3.5 2.0 3 -4 1 2");
    ok("{{ 7.5 // 2 }} {{ -7.5 % 2 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 2.0 ** 3 }}",
       "3.0 0.5 1024 0.5 8.0");
    ok("{{ 0.1 + 0.2 }} {{ 1 + 1.5 }} {{ -params.n }} {{ +params.f }}",
       "0.30000000000000004 2.5 -3 1.5");
    ok("{{ 'a' ~ 1 ~ 2.5 ~ none ~ true }}", "a12.5NoneTrue");
    ok("{{ 'ab' + 'cd' }} {{ [1] + [2, 3] }} {{ 'ab' * 3 }} {{ 2 * [0] }}",
       "abcd [1, 2, 3] ababab [0, 0]");
    ok("{{ 9223372036854775807 }}", "9223372036854775807");
}

static void test_comparisons_logic(void **state)
{
    (void)state;
    ok("{{ 1 == 1.0 }} {{ 'a' != 'b' }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 2 >= 2 }}",
       "True True True False True");
    ok("{{ 'abc' < 'abd' }} {{ [1, 2] < [1, 3] }} {{ [1, 2] == [1, 2] }} {{ {'a': 1} == {'a': 1} }}",
       "True True True True");
    ok("{{ 'a' in 'cat' }} {{ 3 in params.xs }} {{ 5 not in params.xs }} {{ 'a' in params.m }}",
       "True True True True");
    ok("{{ not true }} {{ not params.empty }} {{ true and false }} {{ false or 'x' }}",
       "False True False x");
    ok("{{ 0 or 'default' }} {{ 'first' and 'second' }} {{ [] or none }}", "default second None");
    ok("{{ 'y' if params.n > 2 else 'n' }} {{ 'y' if params.n > 5 else 'n' }} [{{ 'x' if false }}]",
       "y n []");
    ok("{{ 'a' if false else 'b' if false else 'c' }}", "c");
    /* `and` does not evaluate its right side when the left is false */
    ok("{{ false and undefined_name }} {{ true or undefined_name }}", "False True");
}

static void test_if(void **state)
{
    (void)state;
    const char *t = "{% if params.n > 5 %}big{% elif params.n > 2 %}mid{% else %}small{% endif %}";
    ok(t, "mid");
    ok("{% if false %}a{% elif false %}b{% endif %}", "");
    ok("{% if params.empty %}x{% else %}empty{% endif %}", "empty");
    ok("{% if params.xs %}{% if 1 in params.xs %}nested{% endif %}{% endif %}", "nested");
    ok("{% if params.m %}dict{% endif %}{% if {} %}no{% endif %}", "dict");
}

static void test_for(void **state)
{
    (void)state;
    ok("{% for x in params.xs %}{{ x }}{% endfor %}", "312");
    ok("{% for x in params.xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}"
       "{{ loop.length }}{{ loop.revindex }};{% endfor %}",
       "10TrueFalse33;21FalseFalse32;32FalseTrue31;");
    ok("{% for x in [] %}a{% else %}empty{% endfor %}", "empty");
    ok("{% for k in params.m %}{{ k }}{% endfor %}", "ba");
    ok("{% for k, v in params.m.items() %}{{ k }}={{ v }};{% endfor %}", "b=2;a=1;");
    ok("{% for c in 'hé!' %}[{{ c }}]{% endfor %}", "[h][é][!]");
    ok("{% for x in range(10) if x is even %}{{ x }}{{ ',' if not loop.last }}{% endfor %}",
       "0,2,4,6,8");
    ok("{% for i in range(2) %}{% for j in range(2) %}{{ i }}{{ j }} {% endfor %}{% endfor %}",
       "00 01 10 11 ");
    ok("{% for r in params.rows %}{{ r.n }}{% if loop.previtem is defined %}<{{ loop.previtem.n }}{% endif %}"
       "{% endfor %}",
       "xy<x");
    ok("{{ range(3) }} {{ range(1, 4) }} {{ range(10, 0, -3) }}",
       "[0, 1, 2] [1, 2, 3] [10, 7, 4, 1]");
}

static void test_set_and_scope(void **state)
{
    (void)state;
    ok("{% set x = 5 %}{{ x * 2 }}", "10");
    ok("{% set x = params.xs | sort %}{{ x }} {{ params.xs }}", "[1, 2, 3] [3, 1, 2]");
    ok("{% set ds = 'shadowed' %}{{ ds }}", "shadowed");
    ok("{% set x %}a{{ 1 + 1 }}b{% endset %}{{ x | upper }}", "A2B");
    /* a set inside a loop stays inside the loop (Jinja scoping) */
    ok("{% set n = 0 %}{% for i in range(3) %}{% set n = n + 1 %}{{ n }}{% endfor %}{{ n }}",
       "1110");
    ok("{% if true %}{% set y = 'if' %}{% endif %}{{ y }}", "if");
    /* namespace() carries values out of loops, as in Jinja */
    ok("{% set ns = namespace(n=0, found=false) %}{% for x in params.xs %}{% set ns.n = ns.n + x %}"
       "{% if x == 1 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.n }} {{ ns.found }}",
       "6 True");
    ok("{% set ns = namespace(params.m) %}{% set ns.c %}x{{ 1 }}{% endset %}{{ ns.a }}{{ ns.c }}",
       "1x1");
    ok("{% for x in params.xs %}{{ loop.cycle('odd', 'even') }} {% endfor %}", "odd even odd ");
    bad("{% set ns = namespace() %}{% set ns.me = [ns] %}", WEIR_EINVAL,
        "a namespace cannot hold a namespace", "1:27");
    bad("{% set d = {} %}{% set d.x = 1 %}", WEIR_EINVAL,
        "cannot set 'd.x': only namespace() objects can be changed", NULL);
    bad("{% set nope.x = 1 %}", WEIR_EINVAL, "undefined variable 'nope'", NULL);
    bad("{% for i in range(100) %}{% set ns = namespace() %}{% endfor %}", WEIR_ETOOBIG,
        "too many namespace() objects", NULL);
}

static void test_whitespace_and_comments(void **state)
{
    (void)state;
    ok("a {# comment {{ x }} #} b", "a  b");
    ok("a  {#- trimmed -#}  b", "ab");
    ok("x\n  {%- if true %}\ny{% endif -%}\n  z", "x\nyz");
    ok("[ {{- 1 -}} ]", "[1]");
    ok("{% for x in params.xs -%}\n  {{ x }}\n{%- endfor %}", "312");
    ok("{% raw %}{{ not rendered }}{% if %}{% endraw %}", "{{ not rendered }}{% if %}");
    ok("{%- raw -%}  {{ x }}  {%- endraw -%}", "{{ x }}");
}

static void test_filters_strings(void **state)
{
    (void)state;
    ok("{{ 'hello World' | upper }} {{ 'Hello' | lower }} {{ 'hello big-world' | title }}",
       "HELLO WORLD hello Hello Big-World");
    ok("{{ 'hELLO' | capitalize }} [{{ '  x \\n' | trim }}] [{{ 'xxaxx' | trim('x') }}]",
       "Hello [x] [a]");
    ok("{{ ds | replace('-', '') }} {{ 'aaa' | replace('a', 'b', 2) }} {{ 'ab' | replace('', '-') }}",
       "20260105 bba -a-b-");
    ok("{{ params.city | length }} {{ 'héllo' | length }} {{ params.xs | count }} {{ params.m | length }}",
       "7 5 3 2");
    ok("{{ 'abc' | first }} {{ 'abc' | last }} {{ 'abc' | reverse }} {{ 42 | string ~ '!' }}",
       "a c cba 42!");
    ok("{{ 'a,b,,c' | split(',') }} {{ ' a  b ' | split }}",
       "[\"a\", \"b\", \"\", \"c\"] [\"a\", \"b\"]");
    ok("{{ '<b>' | safe }}", "<b>");
}

static void test_filters_values(void **state)
{
    (void)state;
    ok("{{ missing | default('d') }} {{ params.city | default('d') }} {{ params.nope | d('x') }}",
       "d Utrecht x");
    ok("[{{ params.empty | default('e') }}] {{ params.empty | default('e', true) }} [{{ x | default }}]",
       "[] e []");
    ok("{{ params.xs | join('-') }} {{ params.xs | join }} {{ params.rows | join(', ', attribute='n') }}",
       "3-1-2 312 x, y");
    ok("{{ params.xs | first }} {{ params.xs | last }} {{ params.xs | reverse }}", "3 2 [2, 1, 3]");
    ok("{{ '42' | int + 1 }} {{ '3.7' | int }} {{ 'x' | int }} {{ 'x' | int(-1) }} {{ 3.9 | int }}"
       " {{ '0x1f' | int(0, 16) }} {{ '1_000' | int }}",
       "43 3 0 -1 3 31 1000");
    ok("{{ '3.5' | float }} {{ 2 | float }} {{ 'x' | float }}", "3.5 2.0 0.0");
    ok("{{ -3 | abs }} {{ -2.5 | abs }} {{ 2.5 | round }} {{ 3.5 | round }} {{ 3.14159 | round(2) }}"
       " {{ 2.1 | round(0, 'ceil') }} {{ 2.9 | round(method='floor') }} {{ 7 | round }}",
       "3 2.5 2.0 4.0 3.14 3.0 2.0 7");
    ok("{{ params.m | tojson }} {{ 'a\"b' | tojson }} {{ none | tojson }} {{ [1.5, true] | tojson }}",
       "{\"a\": 1, \"b\": 2} \"a\\\"b\" null [1.5, true]");
    ok("{{ {'a': [1]} | tojson(indent=2) }}", "{\n  \"a\": [\n    1\n  ]\n}");
    ok("{{ params.m | list }} {{ 'ab' | list }} {{ params.xs | list }}",
       "[\"b\", \"a\"] [\"a\", \"b\"] [3, 1, 2]");
    ok("{{ params.xs | sort }} {{ params.xs | sort(reverse=true) }} {{ params.names | sort }}",
       "[1, 2, 3] [3, 2, 1] [\"A\", \"a\", \"b\", \"c\"]");
    ok("{{ params.names | sort(case_sensitive=true) }} {{ params.rows | sort(attribute='v') | "
       "map(attribute='n') | join }}",
       "[\"A\", \"a\", \"b\", \"c\"] yx");
    ok("{{ [1, 2, 1, 3, 2] | unique }} {{ ['a', 'A', 'b'] | unique }} {{ ['a', 'A'] | "
       "unique(case_sensitive=true) }}",
       "[1, 2, 3] [\"a\", \"b\"] [\"a\", \"A\"]");
    ok("{{ params.xs | sum }} {{ params.rows | sum(attribute='v') }} {{ [1, 2.5] | sum }} "
       "{{ params.xs | min }} {{ params.xs | max }}",
       "6 3 3.5 1 3");
    ok("{{ params.m | dictsort }} {{ ['a', 'b'] | map('upper') | list }}",
       "[[\"a\", 1], [\"b\", 2]] [\"A\", \"B\"]");
}

static void test_percent_format(void **state)
{
    (void)state;
    ok("{{ '%s-%05d|%-4s|%4s|%.2f|%x|%%|%.1s' % ('a', 42, 'b', 'c', 3.14159, 255, 'xyz') }}",
       "a-00042|b   |   c|3.14|ff|%|x");
    ok("{{ '%d items' % 3 }} {{ '%i%%' % 2.7 }} {{ '%s' % none }} {{ '%s=%s' | format('k', 1.5) }}",
       "3 items 2% None k=1.5");
    /* the longest conversion spec (all flags, width and precision) once overflowed */
    ok("{{ ('%-+ 0#-+99.99d' % 5) | length }} {{ ('%-+ 0#-+99.99e' % -1.5) | length }}", "100 106");
    bad("{{ '%999d' % 5 }}", WEIR_EINVAL, "unsupported format character '9'", NULL);
    bad("{{ '%s %s' % ('a',) }}", WEIR_EINVAL, "not enough arguments for format string", NULL);
    bad("{{ '%s' % ('a', 'b') }}", WEIR_EINVAL, "not all arguments converted", NULL);
    bad("{{ '%q' % 1 }}", WEIR_EINVAL, "unsupported format character 'q'", NULL);
    bad("{{ '%d' % 'x' }}", WEIR_EINVAL, "%d format: a number is required, not string", NULL);
}

static void test_dates(void **state)
{
    (void)state;
    ok("{{ ds | ds_add(7) }} {{ ds | ds_add(-5) }} {{ '2024-02-28' | ds_add(1) }} "
       "{{ '2023-12-31' | ds_add(365) }}",
       "2026-01-12 2025-12-31 2024-02-29 2024-12-30");
    ok("{{ macros.ds_add(ds, 1) }} {{ ds_add('2026-03-01', -1) }}", "2026-01-06 2026-02-28");
    ok("{{ ds | ds_format('%Y-%m-%d', '%d/%m/%Y') }} {{ macros.ds_format(ds_nodash, '%Y%m%d', "
       "'%Y-%m-%d %a %j') }}",
       "05/01/2026 2026-01-05 Mon 005");
    bad("{{ 'tomorrow' | ds_add(1) }}", WEIR_EINVAL, "'tomorrow' is not a date 'YYYY-MM-DD'",
        "1:4");
    bad("{{ '2026-02-30' | ds_add(1) }}", WEIR_EINVAL, "is not a date", NULL);
    bad("{{ ds | ds_format('%d/%m/%Y', '%Y') }}", WEIR_EINVAL, "does not match format", NULL);
    bad("{{ macros.nope(ds) }}", WEIR_EINVAL, "unknown macro 'nope'", NULL);
}

static void test_tests(void **state)
{
    (void)state;
    ok("{{ missing is defined }} {{ missing is undefined }} {{ params.city is defined }} "
       "{{ params.nope is defined }} {{ params.nope.deeper is defined }} {{ params.xs[7] is defined }}",
       "False True True False False False");
    ok("{{ params.nothing is none }} {{ 0 is none }} {{ params.nothing is not none }}",
       "True False False");
    ok("{{ 1 is number }} {{ 'a' is string }} {{ params.m is mapping }} {{ params.xs is sequence }} "
       "{{ true is boolean }} {{ 1 is integer }} {{ 1.0 is float }}",
       "True True True True True True True");
    ok("{{ 4 is even }} {{ 3 is odd }} {{ 9 is divisibleby(3) }} {{ 9 is divisibleby 4 }} "
       "{{ 2 is in([1, 2]) }} {{ 'a' is eq('a') }} {{ 'ab' is lower }}",
       "True True True False True True True");
    ok("{% if params.opt is defined %}{{ params.opt }}{% else %}none{% endif %}", "none");
}

static void test_methods(void **state)
{
    (void)state;
    ok("{{ ds.split('-') }} {{ ds.split('-', 1) }} {{ ' a b '.split() }}",
       "[\"2026\", \"01\", \"05\"] [\"2026\", \"01-05\"] [\"a\", \"b\"]");
    ok("{{ 'Ab'.upper() }} {{ 'Ab'.lower() }} {{ ' x '.strip() }}| {{ 'xa'.lstrip('x') }} "
       "{{ 'ax'.rstrip('x') }} {{ ds.replace('-', '/') }}",
       "AB ab x| a a 2026/01/05");
    ok("{{ 'abc'.startswith('ab') }} {{ 'abc'.endswith('bc') }} {{ 'abc'.endswith('x') }} "
       "{{ '-'.join(['a', 'b']) }}",
       "True True False a-b");
    ok("{{ params.m.keys() | list }} {{ params.m.values() | list }} {{ params.m.get('a') }} "
       "{{ params.m.get('z') }} {{ params.m.get('z', 0) }}",
       "[\"b\", \"a\"] [2, 1] 1 None 0");
}

static void test_slices_and_index(void **state)
{
    (void)state;
    ok("{{ 'abcdef'[1:3] }} {{ 'abcdef'[::2] }} {{ 'abc'[::-1] }} {{ 'abc'[-2:] }} {{ 'héllo'[1:3] }}",
       "bc ace cba bc él");
    ok("{{ params.xs[1:] }} {{ params.xs[:-1] }} {{ params.xs[::-1] }} {{ params.xs[5:] }}",
       "[1, 2] [3, 1] [2, 1, 3] []");
    ok("{{ 'héllo'[1] }} {{ params.rows[1]['n'] }} {{ params.m['a'] }}", "é y 1");
}

static void test_host_calls(void **state)
{
    (void)state;
    calls = 0;
    ok("{{ var('region') }} {{ xcom('fetch', 'object').object }} {{ nargs(1, 2, 3) }}",
       "eu-west-1 s3://raw/weather/x.json 3");
    assert_true(calls >= 3);
    bad("{{ var('nope') }}", WEIR_ENOTFOUND, "variable 'nope' not found", "1:4");
    bad("{{ xcom('only-one') }}", WEIR_EINTERNAL, "function 'xcom' failed", NULL);
    bad("{{ frobnicate(1) }}", WEIR_EINVAL, "unknown function 'frobnicate'", NULL);
    bad("{{ var(name='x') }}", WEIR_EINVAL, "keyword arguments are only supported by filters",
        NULL);

    /* without a host table, functions are unknown */
    struct tmpl_env env = { .vars = vars };
    struct weir_err err;
    char *out = NULL;
    assert_int_equal(tmpl_render("{{ var('x') }}", &env, &out, &err), -WEIR_EINVAL);
    assert_string_equal(err.msg, "unknown function 'var'");
    assert_null(out);
    /* ...and no env at all works for plain templates */
    assert_int_equal(tmpl_render("{{ 1 + 1 }}", NULL, &out, &err), 0);
    assert_string_equal(out, "2");
    free(out);
}

static void test_airflow_compat(void **state)
{
    (void)state;
    ok("{{ var.value.region }} {{ var.json.region }} {{ var.value.get('nope', 'dflt') }} "
       "{{ var.value.get('region', 'dflt') }}",
       "eu-west-1 eu-west-1 dflt eu-west-1");
    ok("{{ var.value.nope | default('d') }} {{ var.value.nope is defined }} "
       "{{ var.value.region is defined }}",
       "d False True");
    bad("{{ var.value.nope }}", WEIR_ENOTFOUND, "variable 'nope' not found", "1:4");
    ok("{{ ti.xcom_pull(task_ids='fetch', key='object').count }} "
       "{{ task_instance.xcom_pull('fetch', 'object').count }}",
       "7 7");
    bad("{{ ti.xcom_pull(key='k') }}", WEIR_EINVAL, "xcom_pull() needs task_ids", NULL);
    bad("{{ ti.xcom_pull(task_ids='a', bogus=1) }}", WEIR_EINVAL,
        "xcom_pull() takes task_ids and key", NULL);
    ok("{{ '2026-01-05T13:04:05.123456+02:00' | strftime('%Y/%m/%d/%H %z %a %j') }}",
       "2026/01/05/13 +0200 Mon 005");
    ok("{{ '2026-01-05T00:00:00Z'.strftime('%Y-%m-%d-%-H %Z') }} {{ ds | strftime('%A') }}",
       "2026-01-05-0 UTC Monday");
    bad("{{ '2026-13-01' | strftime('%Y') }}", WEIR_EINVAL,
        "'strftime': '2026-13-01' is not an ISO 8601 date or timestamp", NULL);
    bad("{{ ts | strftime }}", WEIR_EINVAL, "filter 'strftime' needs 1 argument", NULL);
}

static void test_errors_runtime(void **state)
{
    (void)state;
    bad("{{ paramz }}", WEIR_EINVAL, "undefined variable 'paramz'", "1:4");
    bad("x\n  {{ params.cityz }}", WEIR_EINVAL, "'params' has no attribute 'cityz'", "2:6");
    bad("{{ params.m.b.c }}", WEIR_EINVAL, "'params.m.b' (integer) has no attribute 'c'", NULL);
    bad("{{ params.xs[3] }}", WEIR_EINVAL, "index 3 is out of range for 'params.xs' (length 3)",
        NULL);
    bad("{{ params.m['z'] }}", WEIR_EINVAL, "'params.m' has no key 'z'", NULL);
    bad("{{ 1 / 0 }}", WEIR_EINVAL, "division by zero", NULL);
    bad("{{ 1 // 0 }}", WEIR_EINVAL, "division by zero", NULL);
    bad("{{ 1.0 % 0 }}", WEIR_EINVAL, "division by zero", NULL);
    bad("{{ 9223372036854775807 + 1 }}", WEIR_EINVAL, "integer overflow", NULL);
    bad("{{ 1e308 * 10 }}", WEIR_EINVAL, "float result is out of range", NULL);
    bad("{{ 'a' + 1 }}", WEIR_EINVAL, "unsupported operand types for +: string and integer", NULL);
    bad("{{ 'a' < 1 }}", WEIR_EINVAL, "cannot compare string with integer", NULL);
    bad("{{ -'a' }}", WEIR_EINVAL, "bad operand type for unary -", NULL);
    bad("{% for x in 5 %}{% endfor %}", WEIR_EINVAL, "cannot loop over '5' (integer)", "1:13");
    bad("{% for a, b in [1] %}{% endfor %}", WEIR_EINVAL, "cannot unpack integer into 2 variables",
        NULL);
    bad("{{ 'abc' | replace(1, 'b') }}", WEIR_EINVAL,
        "'replace': argument 1 must be a string, not integer", NULL);
    bad("{{ 'a' | replace('a') }}", WEIR_EINVAL, "filter 'replace' needs 2 arguments", NULL);
    bad("{{ 'a' | upper(1) }}", WEIR_EINVAL, "filter 'upper' takes at most 0 arguments", NULL);
    bad("{{ [1] | sort(bogus=1) }}", WEIR_EINVAL, "filter 'sort' has no argument 'bogus'", NULL);
    bad("{{ [1, 'a'] | sort }}", WEIR_EINVAL, "cannot compare", NULL);
    bad("{{ [] | first }}", WEIR_EINVAL, "'first' of an empty list", NULL);
    bad("{{ missing | upper }}", WEIR_EINVAL, "undefined variable 'missing'", NULL);
    bad("{{ params.city.nope() }}", WEIR_EINVAL, "'params.city' (string) has no method 'nope'",
        NULL);
    bad("{{ params() }}", WEIR_EINVAL, "unknown function 'params'", NULL);
    bad("{{ {1: 2} }}", WEIR_EINVAL, "dict keys must be strings", NULL);
    bad("{{ 1 is divisibleby(0) }}", WEIR_EINVAL, "non-zero", NULL);
}

static void test_errors_syntax(void **state)
{
    (void)state;
    bad("{{ ds | uper }}", WEIR_EINVAL, "unknown filter 'uper'", "1:9");
    bad("{{ ds is frob }}", WEIR_EINVAL, "unknown test 'frob'", NULL);
    bad("{% if true %}x", WEIR_EINVAL, "unclosed 'if' block (missing '{% endif %}')", "1:1");
    bad("a\n{% for x in y %}", WEIR_EINVAL, "unclosed 'for' block", "2:1");
    bad("{% if true %}{% endfor %}", WEIR_EINVAL, "unexpected 'endfor' inside 'if' block", "1:14");
    bad("{% endif %}", WEIR_EINVAL, "unexpected 'endif'", "1:1");
    bad("{% if true %}{% else %}{% elif x %}{% endif %}", WEIR_EINVAL, "unexpected 'elif'", NULL);
    bad("{% if 1 + %}", WEIR_EINVAL, "expected an expression, got '%}'", "1:11");
    bad("{% if x y %}{% endif %}", WEIR_EINVAL, "expected '%}', got 'y'", "1:9");
    bad("{{ x y }}", WEIR_EINVAL, "expected '}}', got 'y'", "1:6");
    bad("{{ 'abc }}", WEIR_EINVAL, "unterminated string", "1:4");
    bad("{{ x", WEIR_EINVAL, "expected '}}', got end of template", NULL);
    bad("{# never closed", WEIR_EINVAL, "unclosed comment", "1:1");
    bad("{% frob %}", WEIR_EINVAL, "unknown tag 'frob'", "1:1");
    bad("{% %}", WEIR_EINVAL, "expected a tag name", NULL);
    bad("{{ }}", WEIR_EINVAL, "expected an expression", NULL);
    bad("{{ a ! b }}", WEIR_EINVAL, "unexpected character '!'", NULL);
    bad("{{ 99999999999999999999 }}", WEIR_EINVAL, "out of range", NULL);
    bad("{% set = 1 %}", WEIR_EINVAL, "expected a variable name", NULL);
    bad("{% for x on y %}{% endfor %}", WEIR_EINVAL, "expected 'in', got 'on'", NULL);
    bad("{% raw %}never ends", WEIR_EINVAL, "unclosed 'raw' block", NULL);
    bad("{{ f(a=1, 2) }}", WEIR_EINVAL, "positional argument after a keyword argument", NULL);
    bad("{{ (1, 2 }}", WEIR_EINVAL, "expected ')'", NULL);
    bad("{{ [1, 2 }}", WEIR_EINVAL, "expected ']'", NULL);

    bad("{{ 1e999 }}", WEIR_EINVAL, "number '1e999' is out of range", "1:4");
    bad("{{ \x01 }}", WEIR_EINVAL, "unexpected byte 0x01", "1:4");
    bad("{{ f(1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17) }}", WEIR_EINVAL,
        "too many arguments (limit 16)", NULL);
    bad("{{ x[] }}", WEIR_EINVAL, "empty subscript", NULL);
    bad("{{ x.'a' }}", WEIR_EINVAL, "expected a name after '.', got ''a''", NULL);
    bad("{{ x | 1 }}", WEIR_EINVAL, "expected a filter name after '|', got '1'", NULL);
    bad("{{ x is 1 }}", WEIR_EINVAL, "expected a test name after 'is', got '1'", NULL);
    bad("{% for a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q in x %}{% endfor %}", WEIR_EINVAL,
        "too many loop variables (limit 16)", NULL);
    ok("{{ '\\r\\q' }}|{{ () }}|{{ (1,) }}|{{ 2 <= 2 }}", "\r\\q|[]|[1]|True");

    struct weir_err err;
    assert_int_equal(tmpl_check("{{ undefined_is_fine_here }} {{ f(x) }}", &err), 0);
    assert_int_equal(tmpl_check("{% if %}", &err), -WEIR_EINVAL);
    assert_string_equal(err.loc, "1:7");
    assert_int_equal(tmpl_check("{{ x | nofilter }}", &err), -WEIR_EINVAL);
    assert_string_equal(err.msg, "unknown filter 'nofilter'");
    assert_int_equal(tmpl_check("{{ x }}", NULL), 0);
    assert_int_equal(tmpl_check("{{", NULL), -WEIR_EINVAL);
}

static char *repeat(const char *a, int n, const char *mid, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), lm = strlen(mid);
    char *s = malloc(la * (size_t)n + lb * (size_t)n + lm + 1);
    size_t k = 0;
    for (int i = 0; i < n; i++, k += la)
        memcpy(s + k, a, la);
    memcpy(s + k, mid, lm);
    k += lm;
    for (int i = 0; i < n; i++, k += lb)
        memcpy(s + k, b, lb);
    s[k] = '\0';
    return s;
}

static void test_limits(void **state)
{
    (void)state;
    char *s;
    /* nesting: parentheses, lists, unary chains, blocks, long operator chains */
    char *deep = repeat("(", 200, "1", ")");
    char *t = malloc(strlen(deep) + 8);
    snprintf(t, strlen(deep) + 8, "{{ %s }}", deep);
    bad(t, WEIR_ETOOBIG, "expression nests too deeply", NULL);
    free(t);
    free(deep);
    s = repeat("[", 10000, "", "]");
    t = malloc(strlen(s) + 8);
    snprintf(t, strlen(s) + 8, "{{ %s }}", s);
    bad(t, WEIR_ETOOBIG, "nests too deeply", NULL);
    free(t);
    free(s);
    s = repeat("not ", 100000, "1", "");
    t = malloc(strlen(s) + 8);
    snprintf(t, strlen(s) + 8, "{{ %s }}", s);
    bad(t, WEIR_ETOOBIG, "nests too deeply", NULL);
    free(t);
    free(s);
    s = repeat("1 + ", 100000, "1", "");
    t = malloc(strlen(s) + 8);
    snprintf(t, strlen(s) + 8, "{{ %s }}", s);
    bad(t, WEIR_ETOOBIG, "expression nests too deeply", NULL);
    free(t);
    free(s);
    s = repeat("{% if 1 %}", 1000, "", "{% endif %}");
    bad(s, WEIR_ETOOBIG, "blocks nest too deeply", NULL);
    free(s);
    s = repeat("{% if 1 %}", 90, "ok", "{% endif %}");
    ok(s, "ok");
    free(s);

    /* work: loops, output, strings, lists */
    bad("{% for i in range(1000000) %}{% for j in range(2) %}{% endfor %}{% endfor %}",
        WEIR_ETOOBIG, "too many loop iterations", NULL);
    bad("{{ range(100000000) }}", WEIR_ETOOBIG, "range() is too long", NULL);
    bad("{{ 'x' * 100000000 }}", WEIR_ETOOBIG, "string is too long", NULL);
    bad("{{ [1] * 100000000 }}", WEIR_ETOOBIG, "list is too long", NULL);
    bad("{% set s = 'xxxxxxxxxxxxxxxx' %}{% for i in range(100) %}{{ s * 100000 }}{% endfor %}",
        WEIR_ETOOBIG, "output is too big", NULL);

    struct tmpl_env env = env_default();
    env.max_output = 10;
    struct weir_err err;
    char *out = NULL;
    assert_int_equal(tmpl_render("0123456789", &env, &out, &err), 0);
    free(out);
    assert_int_equal(tmpl_render("0123456789x", &env, &out, &err), -WEIR_ETOOBIG);
    assert_null(out);
    assert_int_equal(tmpl_render("{{ 'abcdefghijk' }}", &env, &out, &err), -WEIR_ETOOBIG);
    assert_string_equal(err.loc, "1:1");
}

static void test_render_json(void **state)
{
    (void)state;
    struct tmpl_env env = env_default();
    struct weir_err err;
    json_t *in =
        json_loads("{\"cities\": \"{{ params.city }}\", \"n\": 3, \"list\": "
                   "[\"{{ ds }}\", true, null, 1.5, {\"{{ k }}\": \"{{ params.n + 1 }}\"}],"
                   " \"plain\": \"no template\\n\"}",
                   0, NULL);
    json_t *out = NULL;
    assert_non_null(in);
    assert_int_equal(tmpl_render_json(in, &env, &out, &err), 0);
    char *s = json_dumps(out, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(s, "{\"cities\":\"Utrecht\",\"list\":[\"2026-01-05\",true,null,1.5,"
                           "{\"{{ k }}\":\"4\"}],\"n\":3,\"plain\":\"no template\"}");
    free(s);
    /* the input is untouched */
    assert_string_equal(json_string_value(json_object_get(in, "cities")), "{{ params.city }}");
    json_decref(out);
    json_decref(in);

    in = json_loads("{\"with\": {\"to\": \"s3://{{ bucket }}/x\"}}", 0, NULL);
    out = (json_t *)1;
    assert_int_equal(tmpl_render_json(in, &env, &out, &err), -WEIR_EINVAL);
    assert_null(out);
    assert_string_equal(err.msg, "with.to: undefined variable 'bucket'");
    assert_string_equal(err.loc, "1:9");
    json_decref(in);

    in = json_loads("{\"a\": [\"ok\", \"{{ 1 / 0 }}\"]}", 0, NULL);
    assert_int_equal(tmpl_render_json(in, &env, &out, &err), -WEIR_EINVAL);
    assert_string_equal(err.msg, "a[1]: division by zero");
    json_decref(in);

    in = json_string("{{ ds }}");
    assert_int_equal(tmpl_render_json(in, &env, &out, &err), 0);
    assert_string_equal(json_string_value(out), "2026-01-05");
    json_decref(out);
    json_decref(in);

    in = json_string("{{ nope }}");
    assert_int_equal(tmpl_render_json(in, &env, &out, &err), -WEIR_EINVAL);
    assert_string_equal(err.msg, "undefined variable 'nope'");
    json_decref(in);
}

static void test_api_misuse(void **state)
{
    (void)state;
    struct weir_err err;
    char *out = NULL;
    assert_int_equal(tmpl_render(NULL, NULL, &out, &err), -WEIR_EINVAL);
    assert_int_equal(tmpl_render("x", NULL, NULL, &err), -WEIR_EINVAL);
    assert_int_equal(tmpl_render("{{ x }}", NULL, &out, NULL), -WEIR_EINVAL);
    assert_null(out);
    assert_int_equal(tmpl_check(NULL, &err), -WEIR_EINVAL);
    json_t *r = NULL;
    assert_int_equal(tmpl_render_json(NULL, NULL, &r, &err), -WEIR_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_and_output),
        cmocka_unit_test(test_values_render),
        cmocka_unit_test(test_values_more),
        cmocka_unit_test(test_arithmetic),
        cmocka_unit_test(test_comparisons_logic),
        cmocka_unit_test(test_if),
        cmocka_unit_test(test_for),
        cmocka_unit_test(test_set_and_scope),
        cmocka_unit_test(test_whitespace_and_comments),
        cmocka_unit_test(test_filters_strings),
        cmocka_unit_test(test_filters_values),
        cmocka_unit_test(test_percent_format),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_tests),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_slices_and_index),
        cmocka_unit_test(test_host_calls),
        cmocka_unit_test(test_airflow_compat),
        cmocka_unit_test(test_errors_runtime),
        cmocka_unit_test(test_errors_syntax),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_render_json),
        cmocka_unit_test(test_api_misuse),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
