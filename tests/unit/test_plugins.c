/* tests/unit/test_plugins.c - the plugin registry (good, wrong-ABI, missing-symbol, NULL
 * init and duplicate plugins built from plugins_fixtures/), the host table forwarding to a
 * task context, parameter validation, and connection URIs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "executor/executor.h"
#include "executor/executor_int.h"

#define FIX(name) WEIR_FIXTURE_DIR "/weir_" name ".so"

static void test_load_good(void **state)
{
    (void)state;
    struct exec_plugins *reg = exec_plugins_load(NULL);
    struct weir_err err = { 0 };
    assert_int_equal(exec_plugins_add_file(reg, FIX("fixture"), &err), 0);
    const struct weir_plugin *p = NULL;
    const struct weir_operator *op = exec_plugins_find(reg, "fixture.echo", &p);
    assert_non_null(op);
    assert_non_null(p);
    assert_string_equal(p->name, "fixture");
    assert_string_equal(op->name, "echo");
    assert_null(exec_plugins_find(reg, "fixture.nope", NULL));
    assert_null(exec_plugins_find(reg, "nope.echo", NULL));
    assert_null(exec_plugins_find(reg, "fixture", NULL));
    assert_null(exec_plugins_find(reg, "fixtur.echo", NULL));

    json_t *j = exec_plugins_to_json(reg);
    assert_int_equal(json_array_size(j), 1);
    json_t *e = json_array_get(j, 0);
    assert_string_equal(json_string_value(json_object_get(e, "name")), "fixture");
    assert_string_equal(json_string_value(json_object_get(e, "version")), "0.1");
    assert_string_equal(json_string_value(json_object_get(e, "file")), FIX("fixture"));
    json_t *ops = json_object_get(e, "operators");
    assert_int_equal(json_array_size(ops), 2); /* echo, block */
    json_t *params = json_object_get(json_array_get(ops, 0), "params");
    assert_true(json_is_object(json_object_get(params, "msg")));
    json_decref(j);
    j = exec_plugins_errors(reg);
    assert_int_equal(json_array_size(j), 0);
    json_decref(j);
    exec_plugins_free(reg);
}

static void expect_refused(const char *file, int code, const char *msg)
{
    struct exec_plugins *reg = exec_plugins_load(NULL);
    struct weir_err err = { 0 };
    assert_int_equal(exec_plugins_add_file(reg, file, &err), -code);
    assert_string_equal(err.msg, msg);
    json_t *errs = exec_plugins_errors(reg);
    assert_int_equal(json_array_size(errs), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(errs, 0), "error")), msg);
    assert_string_equal(json_string_value(json_object_get(json_array_get(errs, 0), "file")), file);
    json_decref(errs);
    json_t *j = exec_plugins_to_json(reg);
    assert_int_equal(json_array_size(j), 0);
    json_decref(j);
    exec_plugins_free(reg);
}

static void test_wrong_abi(void **state)
{
    (void)state;
    expect_refused(FIX("fix_abi2"), WEIR_EINVAL,
                   "plugin 'weir_fix_abi2.so': ABI version 2, weir expects 1");
}

static void test_missing_symbol(void **state)
{
    (void)state;
    expect_refused(FIX("fix_nosym"), WEIR_EINVAL,
                   "plugin 'weir_fix_nosym.so': no entry symbol 'weir_plugin_init'");
}

static void test_null_init(void **state)
{
    (void)state;
    expect_refused(FIX("fix_null"), WEIR_EINVAL,
                   "plugin 'weir_fix_null.so': weir_plugin_init returned NULL");
}

static void test_descriptor_size(void **state)
{
    (void)state;
    /* smaller than ABI 1 ever was: refused */
    char msg[160];
    snprintf(msg, sizeof msg, "plugin 'weir_fix_small.so': descriptor size %zu, weir expects at least %zu",
             offsetof(struct weir_plugin, n_operators), offsetof(struct weir_plugin, flags));
    expect_refused(FIX("fix_small"), WEIR_EINVAL, msg);
    /* built before `flags` was appended: loads, and its flags are not read */
    struct exec_plugins *reg = exec_plugins_load(NULL);
    struct weir_err err = { 0 };
    assert_int_equal(exec_plugins_add_file(reg, FIX("fix_old"), &err), 0);
    const struct weir_plugin *p = NULL;
    assert_non_null(exec_plugins_find(reg, "fix_old.noop", &p));
    assert_int_equal(p->flags, WEIR_PLUGIN_REUSABLE); /* there, but beyond its size */
    assert_false(exec__plugin_reusable(p));
    /* a full descriptor without the flag, and the shell plugin that declares it */
    assert_int_equal(exec_plugins_add_file(reg, FIX("fixture"), &err), 0);
    assert_non_null(exec_plugins_find(reg, "fixture.echo", &p));
    assert_false(exec__plugin_reusable(p));
    assert_int_equal(exec_plugins_add_file(reg, WEIR_PLUGIN_DIR "/weir_shell.so", &err), 0);
    assert_non_null(exec_plugins_find(reg, "shell.run", &p));
    assert_true(exec__plugin_reusable(p));
    assert_false(exec__plugin_reusable(NULL));
    exec_plugins_free(reg);
}

static void test_not_a_file(void **state)
{
    (void)state;
    struct exec_plugins *reg = exec_plugins_load(NULL);
    struct weir_err err = { 0 };
    assert_int_equal(exec_plugins_add_file(reg, "/nonexistent/weir_x.so", &err), -WEIR_EINVAL);
    assert_non_null(strstr(err.msg, "plugin 'weir_x.so': cannot load: "));
    exec_plugins_free(reg);
}

static void test_duplicate(void **state)
{
    (void)state;
    struct exec_plugins *reg = exec_plugins_load(NULL);
    struct weir_err err = { 0 };
    assert_int_equal(exec_plugins_add_file(reg, FIX("fixture"), &err), 0);
    assert_int_equal(exec_plugins_add_file(reg, FIX("fixz_dup"), &err), -WEIR_ECONFLICT);
    assert_string_equal(err.msg, "plugin 'weir_fixz_dup.so': duplicate plugin name 'fixture' "
                                 "(already loaded from 'weir_fixture.so')");
    /* the first one still works */
    assert_non_null(exec_plugins_find(reg, "fixture.echo", NULL));
    exec_plugins_free(reg);
}

static void test_load_path(void **state)
{
    (void)state;
    /* two good plugins, five refused ones, and a missing folder that is only warned about */
    struct exec_plugins *reg = exec_plugins_load("/nonexistent/plugins::" WEIR_FIXTURE_DIR);
    json_t *j = exec_plugins_to_json(reg);
    assert_int_equal(json_array_size(j), 2);
    json_decref(j);
    j = exec_plugins_errors(reg);
    assert_int_equal(json_array_size(j), 5);
    json_decref(j);
    assert_non_null(exec_plugins_find(reg, "fixture.echo", NULL));
    exec_plugins_free(reg);
}

static void test_lazy(void **state)
{
    (void)state;
    struct exec_plugins *reg = exec_plugins_load(WEIR_FIXTURE_DIR);
    assert_int_equal(exec__plugins_opened(reg), 0);
    /* the file named after the plugin is opened, nothing else */
    assert_non_null(exec_plugins_find(reg, "fixture.echo", NULL));
    assert_int_equal(exec__plugins_opened(reg), 1);
    /* an unknown operator of a known plugin opens nothing more */
    assert_null(exec_plugins_find(reg, "fixture.nope", NULL));
    assert_int_equal(exec__plugins_opened(reg), 1);
    /* an unknown plugin opens every file */
    assert_null(exec_plugins_find(reg, "nope.x", NULL));
    assert_int_equal(exec__plugins_opened(reg), 7);
    json_t *j = exec_plugins_errors(reg);
    assert_int_equal(json_array_size(j), 5);
    json_decref(j);
    exec_plugins_free(reg);
}

/* ---- the host table, driven with a context of our own -------------------------------- */

struct fake_ctx {
    struct weir_task_ctx base;
    char log[1024];
    char failed[256];
    json_t *xcoms;
};

static void f_vlog(struct weir_task_ctx *ctx, enum weir_log_level level, const char *fmt,
                   va_list ap)
{
    struct fake_ctx *f = (struct fake_ctx *)ctx;
    size_t n = strlen(f->log);
    n += (size_t)snprintf(f->log + n, sizeof f->log - n, "%d:", (int)level);
    vsnprintf(f->log + n, sizeof f->log - n, fmt, ap);
    n = strlen(f->log);
    snprintf(f->log + n, sizeof f->log - n, "\n");
}

static int f_vfail(struct weir_task_ctx *ctx, const char *fmt, va_list ap)
{
    struct fake_ctx *f = (struct fake_ctx *)ctx;
    vsnprintf(f->failed, sizeof f->failed, fmt, ap);
    return WEIR_TASK_FAILED;
}

static int f_xcom_push(struct weir_task_ctx *ctx, const char *key, json_t *value)
{
    struct fake_ctx *f = (struct fake_ctx *)ctx;
    return json_object_set(f->xcoms, key, value);
}

static const struct exec_ctx_ops fake_ops = {
    .vlog = f_vlog,
    .vfail = f_vfail,
    .xcom_push = f_xcom_push,
};

static void test_host_table(void **state)
{
    (void)state;
    struct exec_plugins *reg = exec_plugins_load(WEIR_FIXTURE_DIR);
    const struct weir_operator *op = exec_plugins_find(reg, "fixture.echo", NULL);
    assert_non_null(op);
    const struct weir_host *host = exec__host();
    assert_int_equal(host->abi, WEIR_PLUGIN_ABI);
    assert_int_equal(host->size, sizeof(struct weir_host));

    struct fake_ctx f = { .base.ops = &fake_ops, .xcoms = json_object() };
    json_t *params = json_pack("{s:s}", "msg", "hello");
    assert_int_equal(op->run(&f.base, host, params), WEIR_TASK_SUCCESS);
    assert_string_equal(f.log, "2:echo: hello\n");
    assert_string_equal(json_string_value(json_object_get(f.xcoms, "msg")), "hello");
    json_decref(params);

    params = json_pack("{s:s}", "msg", "fail");
    assert_int_equal(op->run(&f.base, host, params), WEIR_TASK_FAILED);
    assert_string_equal(f.failed, "asked to fail");
    json_decref(params);
    json_decref(f.xcoms);
    exec_plugins_free(reg);
}

/* ---- parameter validation ------------------------------------------------------------ */

static const char schema[] = "{\"command\": {\"type\": \"string\", \"required\": true},"
                             " \"n\": {\"type\": \"integer\", \"default\": 3},"
                             " \"ratio\": {\"type\": \"number\"},"
                             " \"flag\": {\"type\": \"boolean\", \"default\": false},"
                             " \"env\": {\"type\": \"object\"},"
                             " \"list\": {\"type\": \"array\"},"
                             " \"anything\": {\"type\": \"any\"}}";

static json_t *validate_ok(const char *params_json)
{
    json_t *p = json_loads(params_json, 0, NULL);
    assert_non_null(p);
    json_t *out = NULL;
    struct weir_err err = { 0 };
    int rc = exec_params_validate(schema, p, &out, &err);
    if (rc != 0)
        fail_msg("validate %s: %s", params_json, err.msg);
    json_decref(p);
    return out;
}

static void validate_bad(const char *params_json, const char *msg)
{
    json_t *p = json_loads(params_json, JSON_DECODE_ANY, NULL);
    json_t *out = NULL;
    struct weir_err err = { 0 };
    assert_int_equal(exec_params_validate(schema, p, &out, &err), -WEIR_EINVAL);
    assert_null(out);
    assert_string_equal(err.msg, msg);
    json_decref(p);
}

static void test_params(void **state)
{
    (void)state;
    json_t *o = validate_ok("{\"command\": \"ls\"}");
    assert_string_equal(json_string_value(json_object_get(o, "command")), "ls");
    assert_int_equal(json_integer_value(json_object_get(o, "n")), 3);
    assert_true(json_is_false(json_object_get(o, "flag")));
    assert_null(json_object_get(o, "ratio"));
    json_decref(o);

    /* rendered strings are converted to the declared type */
    o = validate_ok("{\"command\": \"ls\", \"n\": \"42\", \"ratio\": \"0.5\", \"flag\": \"true\","
                    " \"env\": \"{\\\"A\\\": 1}\", \"list\": \"[1,2]\", \"anything\": [1]}");
    assert_int_equal(json_integer_value(json_object_get(o, "n")), 42);
    assert_true(json_number_value(json_object_get(o, "ratio")) == 0.5);
    assert_true(json_is_true(json_object_get(o, "flag")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "env"), "A")), 1);
    assert_int_equal(json_array_size(json_object_get(o, "list")), 2);
    json_decref(o);

    /* integers are numbers; integral reals are integers; null means absent */
    o = validate_ok("{\"command\": \"x\", \"ratio\": 2, \"n\": 7.0, \"flag\": null}");
    assert_int_equal(json_integer_value(json_object_get(o, "n")), 7);
    assert_true(json_is_false(json_object_get(o, "flag")));
    json_decref(o);

    validate_bad("{}", "missing required parameter 'command'");
    validate_bad("{\"command\": \"ls\", \"nope\": 1}", "unknown parameter 'nope'");
    validate_bad("{\"command\": 5}", "parameter 'command' must be a string, got integer");
    validate_bad("{\"command\": \"x\", \"n\": \"4x\"}",
                 "parameter 'n' must be an integer, got string");
    validate_bad("{\"command\": \"x\", \"n\": 1.5}",
                 "parameter 'n' must be an integer, got number");
    validate_bad("{\"command\": \"x\", \"flag\": \"yes\"}",
                 "parameter 'flag' must be a boolean, got string");
    validate_bad("{\"command\": \"x\", \"env\": [1]}",
                 "parameter 'env' must be an object, got array");
    validate_bad("[1]", "parameters must be an object, got array");

    /* NULL params and NULL schema */
    json_t *out = NULL;
    struct weir_err err = { 0 };
    assert_int_equal(exec_params_validate(NULL, NULL, &out, &err), 0);
    assert_int_equal(json_object_size(out), 0);
    json_decref(out);
    assert_int_equal(exec_params_validate("{\"a\": {\"type\": \"strin\"}}", NULL, &out, &err),
                     -WEIR_EINVAL);
    assert_string_equal(err.msg, "params schema: parameter 'a' needs a known \"type\"");
    assert_int_equal(exec_params_validate("{", NULL, &out, &err), -WEIR_EINVAL);
}

/* ---- connection URIs ------------------------------------------------------------------ */

static void test_conn_uri(void **state)
{
    (void)state;
    struct weir_err err = { 0 };
    json_t *c = exec__conn_parse(
        "my_db",
        "postgresql://us%40er:p%40ss:w@db.example.com:5433/analytics?sslmode=require&a=b+c", &err);
    assert_non_null(c);
    assert_string_equal(json_string_value(json_object_get(c, "conn_id")), "my_db");
    assert_string_equal(json_string_value(json_object_get(c, "conn_type")), "postgres");
    assert_string_equal(json_string_value(json_object_get(c, "login")), "us@er");
    assert_string_equal(json_string_value(json_object_get(c, "password")), "p@ss:w");
    assert_string_equal(json_string_value(json_object_get(c, "host")), "db.example.com");
    assert_int_equal(json_integer_value(json_object_get(c, "port")), 5433);
    assert_string_equal(json_string_value(json_object_get(c, "schema")), "analytics");
    json_t *extra = json_object_get(c, "extra");
    assert_string_equal(json_string_value(json_object_get(extra, "sslmode")), "require");
    assert_string_equal(json_string_value(json_object_get(extra, "a")), "b c");
    json_decref(c);

    c = exec__conn_parse("s3", "aws-s3://?__extra__=%7B%22region%22%3A%22eu%22%7D", &err);
    assert_non_null(c);
    assert_string_equal(json_string_value(json_object_get(c, "conn_type")), "aws_s3");
    assert_null(json_object_get(c, "host"));
    assert_null(json_object_get(c, "login"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(c, "extra"), "region")),
                        "eu");
    json_decref(c);

    c = exec__conn_parse("h", "http://[::1]:8080", &err);
    assert_non_null(c);
    assert_string_equal(json_string_value(json_object_get(c, "host")), "[::1]");
    assert_int_equal(json_integer_value(json_object_get(c, "port")), 8080);
    json_decref(c);

    c = exec__conn_parse("j",
                         "{\"conn_type\": \"http\", \"host\": \"h\", \"port\": 80,"
                         " \"extra\": \"{\\\"k\\\": 1}\"}",
                         &err);
    assert_non_null(c);
    assert_string_equal(json_string_value(json_object_get(c, "conn_type")), "http");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(c, "extra"), "k")), 1);
    json_decref(c);

    assert_null(exec__conn_parse("x", "no-scheme", &err));
    assert_int_equal(err.code, WEIR_EINVAL);
    assert_null(exec__conn_parse("x", "http://h:99999", &err));
    assert_string_equal(err.msg, "connection URI has an invalid port");
    assert_null(exec__conn_parse("x", "{\"a\": ", &err));
}

/* ---- DAG doc scanner ------------------------------------------------------------------ */

static void doc_ok(const char *text, const char *task_id, const char *want_task,
                   const char *want_params)
{
    json_t *task = NULL, *params = NULL;
    struct weir_err err = { 0 };
    int rc = exec__doc_task(text, strlen(text), task_id, &task, &params, &err);
    if (rc != 0)
        fail_msg("scan for '%s': %s", task_id, err.msg);
    json_t *wt = json_loads(want_task, 0, NULL), *wp = json_loads(want_params, 0, NULL);
    assert_true(json_equal(task, wt));
    assert_true(json_equal(params, wp));
    json_decref(wt);
    json_decref(wp);
    json_decref(task);
    json_decref(params);
}

static void test_doc_scan(void **state)
{
    (void)state;
    /* canonical text: sorted keys, compact */
    const char *doc = "{\"dag_id\":\"d\",\"params\":{\"p\":{\"default\":\"x}\\\"]\"}},"
                      "\"tasks\":[{\"run\":\"shell.run\",\"task_id\":\"a\",\"with\":{\"command\":"
                      "\"echo '{[\\\"'\"}},{\"retries\":2,\"task_id\":\"b\",\"with\":{\"n\":[1,"
                      "{\"task_id\":\"a\"}]}},{\"task_id\":\"ab\"}],\"z\":null}";
    doc_ok(doc, "a",
           "{\"run\":\"shell.run\",\"task_id\":\"a\",\"with\":{\"command\":"
           "\"echo '{[\\\"'\"}}",
           "{\"p\":{\"default\":\"x}\\\"]\"}}");
    /* a nested object with a task_id key does not count; prefixes do not match */
    doc_ok(doc, "b", "{\"retries\":2,\"task_id\":\"b\",\"with\":{\"n\":[1,{\"task_id\":\"a\"}]}}",
           "{\"p\":{\"default\":\"x}\\\"]\"}}");
    doc_ok(doc, "ab", "{\"task_id\":\"ab\"}", "{\"p\":{\"default\":\"x}\\\"]\"}}");
    /* spaced text (as a jsonb column would give it back), no params */
    doc_ok(" { \"tasks\" : [ { \"task_id\" : \"t\" , \"x\" : true } ] } ", "t",
           "{\"task_id\":\"t\",\"x\":true}", "{}");

    json_t *task = NULL, *params = NULL;
    struct weir_err err = { 0 };
    assert_int_equal(exec__doc_task(doc, strlen(doc), "c", &task, &params, &err), -WEIR_ENOTFOUND);
    assert_null(task);
    assert_null(params);
    static const char *const bad[] = {
        "",
        "[]",
        "{\"tasks\":[{\"task_id\":\"a\"}",
        "{\"tasks\":[{\"task_id\":\"a\",}]}",
        "{\"tasks\":{\"task_id\":\"a\"}}",
        "{\"tasks\":[{\"task_id\":\"a\"]}]}",
        "{\"params\":{\"a\":},\"tasks\":[]}",
        "{\"tasks\":[{\"task_id\":\"a\"\"x\":1}]}",
        "{\"tasks\":[\"unterminated]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = exec__doc_task(bad[i], strlen(bad[i]), "a", &task, &params, &err);
        if (rc != -WEIR_EINVAL)
            fail_msg("bad doc %zu: rc %d", i, rc);
        assert_null(task);
        assert_null(params);
    }
    /* deep nesting stops at the limit instead of recursing */
    char deep[2000];
    size_t n = 0;
    n += (size_t)snprintf(deep, sizeof deep, "{\"tasks\":[{\"task_id\":\"a\",\"x\":");
    for (int i = 0; i < 600 && n < sizeof deep - 10; i++)
        deep[n++] = '[';
    deep[n] = '\0';
    assert_int_equal(exec__doc_task(deep, n, "a", &task, &params, &err), -WEIR_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_good),      cmocka_unit_test(test_wrong_abi),
        cmocka_unit_test(test_missing_symbol), cmocka_unit_test(test_null_init),
        cmocka_unit_test(test_descriptor_size), cmocka_unit_test(test_not_a_file),
        cmocka_unit_test(test_duplicate),
        cmocka_unit_test(test_load_path),      cmocka_unit_test(test_lazy),
        cmocka_unit_test(test_host_table),     cmocka_unit_test(test_params),
        cmocka_unit_test(test_conn_uri),       cmocka_unit_test(test_doc_scan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
