/* tests/unit/test_dag.c - the DAG file parser, data-driven: one folder per case under
 * tests/unit/dag_cases/<case>/ holding dag.yaml and expected.txt.
 *
 * expected.txt:
 *   lines starting with '#' are comments; "@no-ops" disables the operator registry;
 *   the first other line is either "ok" or the expected error as "loc: msg"
 *   (loc is "dag.yaml:line:col", since the case is parsed under the name dag.yaml);
 *   after "ok", each line "path = json" checks one value of the doc: path segments are
 *   separated by '.', a number indexes an array, "@id" picks the task with that id from
 *   "tasks" (e.g. "tasks.@load.needs = [\"fetch\"]").
 * A case folder may also hold expected.json: the exact canonical text of the doc. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"
#include "scheduler/scheduler.h"

#ifndef DAG_CASES_DIR
#error "DAG_CASES_DIR must name tests/unit/dag_cases"
#endif

/* A fake plugin registry: the operators the cases use, with params schemas. */
static bool fake_find(void *ud, const char *ref, const char **schema)
{
    (void)ud;
    static const struct {
        const char *ref, *schema;
    } ops[] = {
        { "shell.run", "{\"cmd\": {\"type\": \"string\", \"required\": true},"
                       " \"cwd\": {\"type\": \"string\"},"
                       " \"append_env\": {\"type\": \"boolean\", \"default\": true}}" },
        { "weather.forecast", "{\"cities\": {\"type\": \"string\", \"required\": true},"
                              " \"to\": {\"type\": \"string\", \"required\": true}}" },
        { "warehouse.load", "{\"from\": {\"type\": \"string\", \"required\": true},"
                            " \"table\": {\"type\": \"string\", \"required\": true},"
                            " \"batch_size\": {\"type\": \"integer\"},"
                            " \"options\": {\"type\": \"object\"}}" },
        { "test.noop", NULL },
        { "test.any", "{}" },
        { "test.broken", "{not json" },
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        if (strcmp(ops[i].ref, ref) == 0) {
            *schema = ops[i].schema;
            return true;
        }
    }
    return false;
}

static const struct sched_ops fake_ops = { fake_find, NULL };

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct buf b;
    buf_init(&b, 0);
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        buf_add(&b, tmp, n);
    fclose(f);
    if (len)
        *len = b.len;
    char *s = buf_detach(&b);
    buf_release(&b); /* buf_detach leaves an initialized (allocated) empty buffer */
    return s;
}

/* Cuts the next line off *p (NULL at the end). */
static char *next_line(char **p)
{
    char *s = *p;
    if (!s || !*s)
        return NULL;
    char *nl = strchr(s, '\n');
    if (nl) {
        *nl = '\0';
        *p = nl + 1;
    } else {
        *p = s + strlen(s);
    }
    return s;
}

static void rtrim(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        s[--n] = '\0';
}

/* Follows a check path through the doc. Borrowed result or NULL. */
static json_t *walk(json_t *doc, const char *path)
{
    char *copy = xstrdup(path), *rest = copy;
    json_t *cur = doc;
    while (rest && cur) {
        char *seg = rest, *dot = strchr(rest, '.');
        if (dot) {
            *dot = '\0';
            rest = dot + 1;
        } else {
            rest = NULL;
        }
        if (seg[0] == '@') {
            json_t *found = NULL, *t;
            size_t i;
            json_array_foreach(cur, i, t) {
                if (strcmp(json_string_value(json_object_get(t, "task_id")), seg + 1) == 0)
                    found = t;
            }
            cur = found;
        } else if (json_is_array(cur)) {
            char *end;
            unsigned long i = strtoul(seg, &end, 10);
            cur = *end ? NULL : json_array_get(cur, i);
        } else {
            cur = json_object_get(cur, seg);
        }
    }
    free(copy);
    return cur;
}

static char *dump(json_t *doc)
{
    return json_dumps(doc, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
}

static void run_case(void **state)
{
    const char *name = *state;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/dag.yaml", DAG_CASES_DIR, name);
    size_t len = 0;
    char *src = slurp(path, &len);
    if (!src)
        fail_msg("%s: cannot read dag.yaml", name);
    snprintf(path, sizeof path, "%s/%s/expected.txt", DAG_CASES_DIR, name);
    char *exp = slurp(path, NULL);
    if (!exp)
        fail_msg("%s: cannot read expected.txt", name);

    const struct sched_ops *ops = &fake_ops;
    char *save = exp, *first = NULL, *line;
    while ((line = next_line(&save))) {
        rtrim(line);
        if (!line[0] || line[0] == '#')
            continue;
        if (strcmp(line, "@no-ops") == 0) {
            ops = NULL;
            continue;
        }
        first = line;
        break;
    }
    if (!first)
        fail_msg("%s: expected.txt has no result line", name);

    json_t *doc = NULL;
    struct weir_err err;
    err_clear(&err);
    int rc = sched_dag_parse_string(src, len, "dag.yaml", ops, &doc, &err);
    if (strcmp(first, "ok") != 0) {
        if (rc == 0) {
            char *s = dump(doc);
            fail_msg("%s: expected error '%s', got ok: %s", name, first, s);
        }
        char got[512];
        snprintf(got, sizeof got, "%s: %s", err.loc, err.msg);
        if (strcmp(got, first) != 0)
            fail_msg("%s:\n  expected: %s\n  got:      %s", name, first, got);
        assert_null(doc);
        assert_true(rc < 0);
        free(src);
        free(exp);
        return;
    }
    if (rc != 0)
        fail_msg("%s: expected ok, got %s: %s", name, err.loc, err.msg);
    assert_non_null(doc);
    while ((line = next_line(&save))) {
        rtrim(line);
        if (!line[0] || line[0] == '#')
            continue;
        char *eq = strstr(line, " = ");
        if (!eq)
            fail_msg("%s: bad check line '%s'", name, line);
        *eq = '\0';
        json_error_t je;
        json_t *want = json_loads(eq + 3, JSON_DECODE_ANY, &je);
        if (!want)
            fail_msg("%s: bad json in check '%s': %s", name, line, je.text);
        json_t *got = walk(doc, line);
        if (!got || !json_equal(got, want)) {
            char *g = got ? dump(got) : xstrdup("(missing)");
            fail_msg("%s: check '%s':\n  expected: %s\n  got:      %s", name, line, eq + 3, g);
        }
        json_decref(want);
    }
    /* Identical input gives identical text: the store versions DAGs by it. */
    char *a = dump(doc);
    json_t *doc2 = NULL;
    assert_int_equal(sched_dag_parse_string(src, len, "dag.yaml", ops, &doc2, &err), 0);
    char *b = dump(doc2);
    assert_string_equal(a, b);
    snprintf(path, sizeof path, "%s/%s/expected.json", DAG_CASES_DIR, name);
    char *full = slurp(path, NULL);
    if (full) {
        rtrim(full);
        if (strcmp(full, a) != 0)
            fail_msg("%s: canonical text differs:\n  expected: %s\n  got:      %s", name, full, a);
        free(full);
    }
    free(a);
    free(b);
    json_decref(doc2);
    json_decref(doc);
    free(src);
    free(exp);
}

/* ---- tests that do not fit a folder ---------------------------------------------------- */

static void test_parse_file(void **state)
{
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s/valid_minimal/dag.yaml", DAG_CASES_DIR);
    json_t *doc = NULL;
    struct weir_err err;
    err_clear(&err);
    assert_int_equal(sched_dag_parse_file(path, NULL, &doc, &err), 0);
    assert_string_equal(json_string_value(json_object_get(doc, "fileloc")), path);
    json_decref(doc);

    snprintf(path, sizeof path, "%s/err_unknown_key_task/dag.yaml", DAG_CASES_DIR);
    assert_int_equal(sched_dag_parse_file(path, NULL, &doc, &err), -WEIR_EINVAL);
    assert_null(doc);
    assert_non_null(strstr(err.loc, "err_unknown_key_task/dag.yaml:"));

    assert_true(sched_dag_parse_file("/nonexistent/x.yaml", NULL, &doc, &err) < 0);
    assert_int_equal(err.code, WEIR_ENOTFOUND);
    assert_null(doc);
    /* err may be NULL */
    assert_true(sched_dag_parse_file("/nonexistent/x.yaml", NULL, &doc, NULL) < 0);
    assert_true(sched_dag_parse_string("dag: [", 6, NULL, NULL, &doc, NULL) < 0);
}

/* Builds a DAG with `n` tasks in a chain (each needs the previous one), written in
 * reverse order so the sort has work to do. */
static char *chain_dag(size_t n)
{
    struct buf b;
    buf_init(&b, 0);
    buf_adds(&b, "dag: big\ntasks:\n");
    for (size_t i = n; i-- > 0;) {
        buf_addf(&b, "  t%zu:\n    run: test.noop\n", i);
        if (i > 0)
            buf_addf(&b, "    needs: t%zu\n", i - 1);
    }
    char *s = buf_detach(&b);
    buf_release(&b);
    return s;
}

static void test_limits(void **state)
{
    (void)state;
    json_t *doc = NULL;
    struct weir_err err;
    char *src = chain_dag(10000);
    clock_t t0 = clock();
    assert_int_equal(sched_dag_parse_string(src, strlen(src), "big.yaml", NULL, &doc, &err), 0);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    assert_true(secs < 20.0);
    json_t *tasks = json_object_get(doc, "tasks");
    assert_int_equal(json_array_size(tasks), 10000);
    assert_string_equal(json_string_value(json_object_get(json_array_get(tasks, 0), "task_id")),
                        "t0");
    assert_string_equal(json_string_value(json_object_get(json_array_get(tasks, 9999), "task_id")),
                        "t9999");
    json_decref(doc);
    free(src);

    src = chain_dag(10001);
    assert_int_equal(sched_dag_parse_string(src, strlen(src), "big.yaml", NULL, &doc, &err),
                     -WEIR_ETOOBIG);
    assert_string_equal(err.loc, "big.yaml:2:1");
    assert_non_null(strstr(err.msg, "too many tasks"));
    free(src);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void)
{
    DIR *d = opendir(DAG_CASES_DIR);
    if (!d) {
        fprintf(stderr, "cannot open %s\n", DAG_CASES_DIR);
        return 1;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        names = xrealloc(names, (n + 1) * sizeof *names);
        names[n++] = xstrdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);

    struct CMUnitTest *tests = xcalloc(n + 2, sizeof *tests);
    for (size_t i = 0; i < n; i++) {
        tests[i].name = names[i];
        tests[i].test_func = run_case;
        tests[i].initial_state = names[i];
    }
    tests[n].name = "parse_file";
    tests[n].test_func = test_parse_file;
    tests[n + 1].name = "limits";
    tests[n + 1].test_func = test_limits;
    int rc = _cmocka_run_group_tests("dag", tests, n + 2, NULL, NULL);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(tests);
    return rc;
}
