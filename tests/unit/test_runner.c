/* tests/unit/test_runner.c - the task runner against a real SQLite store and the real
 * shell plugin: state transitions (success, skipped, failed, up_for_retry with backoff),
 * log lines and masking, XCom return_value, templates (and a template error failing the
 * try), parameter validation, the claim CAS, test mode, heartbeats, cancellation by
 * SIGTERM and by the task instance leaving `running`. */
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/err.h"
#include "core/log.h"
#include "core/ts.h"
#include "executor/executor.h"
#include "executor/executor_int.h"
#include "store/store.h"

static char dir[256];
static char url[320];
static struct store *st;
static struct exec_plugins *reg;

/* The DAG doc: one task per behaviour under test. */
static const char doc_json[] =
    "{\"dag_id\": \"rd\", \"params\": {\"p\": {\"type\": \"string\", \"default\": \"pdef\"},"
    " \"q\": {\"type\": \"integer\", \"default\": 1}},"
    " \"tasks\": ["
    "  {\"task_id\": \"ok\", \"run\": \"shell.run\", \"with\": {\"command\": \"echo hello; echo"
    " world; echo; echo oops >&2\"}, \"retries\": 0},"
    "  {\"task_id\": \"flaky\", \"run\": \"shell.run\", \"with\": {\"command\": \"exit 3\"},"
    "   \"retries\": 2, \"retry_delay\": 10, \"retry_exponential_backoff\": true,"
    "   \"max_retry_delay\": 15},"
    "  {\"task_id\": \"skip\", \"run\": \"shell.run\", \"with\": {\"command\": \"exit 99\"}},"
    "  {\"task_id\": \"tmpl\", \"run\": \"shell.run\", \"with\": {\"command\":"
    "   \"echo {{ ds }} {{ ds_nodash }} {{ ts }} {{ params.p }} {{ params.q }} {{ var('v') }}"
    " {{ xcom('ok') }} {{ try_number }} {{ dag.id }} {{ task.id }} $GREETING\"},"
    "   \"env\": {\"GREETING\": \"hi-{{ run_id }}\"}},"
    "  {\"task_id\": \"badtmpl\", \"run\": \"shell.run\", \"with\": {\"command\": \"echo {{ nope }}\"},"
    "   \"retries\": 3},"
    "  {\"task_id\": \"badparam\", \"run\": \"shell.run\", \"with\": {\"command\": \"true\","
    "   \"bogus\": 1}, \"retries\": 3},"
    "  {\"task_id\": \"noop\", \"run\": \"nope.run\"},"
    "  {\"task_id\": \"secret\", \"run\": \"shell.run\", \"with\": {\"command\": \"echo pw=hunter2-secret\"}},"
    "  {\"task_id\": \"slow\", \"run\": \"shell.run\", \"with\": {\"command\": \"sleep 0.6; echo done\"}},"
    "  {\"task_id\": \"envcwd\", \"run\": \"shell.run\", \"with\": {\"command\": \"echo $FOO $N;"
    " pwd\", \"cwd\": \"/\", \"env\": {\"FOO\": \"bar\", \"N\": 5}}},"
    "  {\"task_id\": \"noenv\", \"run\": \"shell.run\", \"with\": {\"command\":"
    " \"echo ${WEIR_VAR_V:-unset} $X\", \"env\": {\"X\": \"1\"}, \"append_env\": false}},"
    "  {\"task_id\": \"emptyenv\", \"run\": \"shell.run\", \"with\": {\"command\":"
    " \"echo ${WEIR_VAR_V:-unset}\", \"env\": {}, \"append_env\": false}},"
    "  {\"task_id\": \"direct\", \"run\": \"shell.run\", \"with\": {\"command\":"
    " \"printenv WEIR_VAR_V\"}},"
    "  {\"task_id\": \"notfound\", \"run\": \"shell.run\", \"with\": {\"command\":"
    " \"weir-no-such-program x\"}},"
    "  {\"task_id\": \"badcwd\", \"run\": \"shell.run\", \"with\": {\"command\": \"true\","
    " \"cwd\": \"/nonexistent/dir\"}},"
    "  {\"task_id\": \"skip3\", \"run\": \"shell.run\", \"with\": {\"command\": \"exit 3\","
    " \"skip_exit_code\": \"3\"}},"
    "  {\"task_id\": \"bytes\", \"run\": \"shell.run\", \"with\": {\"command\":"
    " \"printf 'a\\\\377b\\\\n'\"}},"
    "  {\"task_id\": \"bg\", \"run\": \"shell.run\", \"with\": {\"command\":"
    " \"sleep 3 & echo started\"}},"
    "  {\"task_id\": \"scratch\", \"run\": \"shell.run\", \"with\": {\"command\":"
    " \"mkdir sub && echo x > sub/f && echo y > g && pwd\"}},"
    "  {\"task_id\": \"scratch0\", \"run\": \"shell.run\", \"with\": {\"command\": \"pwd\"}},"
    " {\"task_id\": \"long\", \"run\": \"shell.run\", \"with\": {\"command\": \"sleep 30\"},"
    "   \"retries\": 1, \"retry_delay\": 1}"
    " ]}";

static const char *const task_ids[] = { "ok",     "flaky",  "skip",  "tmpl", "badtmpl", "badparam",
                                        "noop",   "secret", "slow",  "long", "envcwd",  "noenv",
                                        "badcwd", "skip3",  "bytes", "bg", "scratch",
                                        "scratch0", "emptyenv", "direct", "notfound" };

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/weir-test-runner-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(url, sizeof url, "sqlite://%s/weir.db", dir);
    struct weir_err err = { 0 };
    st = store_open(url, &err);
    if (!st || store_migrate(st, NULL, &err) < 0) {
        fprintf(stderr, "store: %s\n", err.msg);
        return -1;
    }
    int64_t version = 0;
    if (store_dag_sync(st, "rd", "/dags/rd.yaml", doc_json, "", NULL, "UTC", NULL, false, &version,
                       &err) < 0) {
        fprintf(stderr, "dag sync: %s\n", err.msg);
        return -1;
    }
    reg = exec_plugins_load(WEIR_PLUGIN_DIR);
    if (!exec_plugins_find(reg, "shell.run", NULL))
        return -1;
    setenv("WEIR_VAR_V", "varval", 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    store_free(st);
    exec_plugins_free(reg);
    char p[400];
    static const char *const files[] = { "weir.db", "weir.db-wal", "weir.db-shm" };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
    return 0;
}

/* Creates run `run_id` (logical date 2026-01-02T03:04:05Z, conf `conf`) with every task
 * instance queued at try 0. */
static void make_run(const char *run_id, const char *conf)
{
    struct weir_err err = { 0 };
    struct store_dag d = { 0 };
    assert_int_equal(store_dag_get(st, "rd", &d, &err), 0);
    struct store_run r = { 0 };
    r.dag_id = "rd";
    r.run_id = (char *)run_id;
    r.version = d.version;
    r.state = RUN_RUNNING;
    r.run_type = RUN_TYPE_MANUAL;
    assert_int_equal(ts_parse("2026-01-02T03:04:05Z", NULL, &r.logical_date, &err), 0);
    r.data_interval_start = r.data_interval_end = r.logical_date;
    r.queued_at = r.start_date = r.end_date = TS_NONE;
    r.conf = conf ? json_loads(conf, 0, NULL) : NULL;
    json_t *ids = json_array();
    for (size_t i = 0; i < sizeof task_ids / sizeof task_ids[0]; i++)
        json_array_append_new(ids, json_string(task_ids[i]));
    int rc = store_run_create(st, &r, ids, &err);
    if (rc < 0)
        fail_msg("run create: %s", err.msg);
    json_decref(ids);
    json_decref(r.conf);
    store_dag_release(&d);
    for (size_t i = 0; i < sizeof task_ids / sizeof task_ids[0]; i++) {
        json_t *t = NULL;
        (void)t;
        int max_tries = strcmp(task_ids[i], "flaky") == 0      ? 3
                        : strcmp(task_ids[i], "badtmpl") == 0  ? 4
                        : strcmp(task_ids[i], "badparam") == 0 ? 4
                        : strcmp(task_ids[i], "long") == 0     ? 2
                                                               : 1;
        struct store_ti_update u = { .to = TI_QUEUED,
                                     .set_max_tries = true,
                                     .max_tries = max_tries };
        assert_int_equal(store_ti_update(st, "rd", run_id, task_ids[i], -1, -1, &u, &err), 0);
    }
}

static int run_task(const char *run_id, const char *task, int try_number, struct weir_err *err)
{
    struct exec_task_opts o = { .dag_id = "rd",
                                .run_id = run_id,
                                .task_id = task,
                                .try_number = try_number,
                                .store_url = url,
                                .heartbeat_us = 100000 };
    return exec_task_run(st, reg, &o, err);
}

static void get_ti(const char *run_id, const char *task, struct store_ti *ti)
{
    struct weir_err err = { 0 };
    memset(ti, 0, sizeof *ti);
    assert_int_equal(store_ti_get(st, "rd", run_id, task, ti, &err), 0);
}

/* The try's log as one string, lines joined by '\n'. Caller frees. */
static char *log_text(const char *run_id, const char *task, int try_number)
{
    struct store_log_list l = { 0 };
    struct weir_err err = { 0 };
    assert_int_equal(store_log_read(st, "rd", run_id, task, try_number, 0, 0, &l, &err), 0);
    size_t len = 1;
    for (size_t i = 0; i < l.n; i++)
        len += strlen(l.items[i].line) + 1;
    char *s = malloc(len);
    s[0] = '\0';
    for (size_t i = 0; i < l.n; i++) {
        assert_int_equal(l.items[i].seq, (int64_t)i + 1);
        assert_true(l.items[i].ts > 0);
        strncat(s, l.items[i].line, len - strlen(s) - 1);
        strncat(s, "\n", len - strlen(s) - 1);
    }
    store_log_list_release(&l);
    return s;
}

static void assert_log_has(const char *run_id, const char *task, int try_number, const char *needle)
{
    char *s = log_text(run_id, task, try_number);
    if (!strstr(s, needle))
        fail_msg("log of %s try %d lacks '%s':\n%s", task, try_number, needle, s);
    free(s);
}

/* Each try runs in a scratch folder of its own, removed when the try ends, whether the
 * command left files in it or not. */
static void test_scratch_folder_removed(void **state)
{
    (void)state;
    make_run("r_scratch", NULL);
    struct weir_err err = { 0 };
    const char *tasks[] = { "scratch", "scratch0" };
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(run_task("r_scratch", tasks[i], 1, &err), EXEC_EXIT_SUCCESS);
        json_t *v = NULL;
        assert_int_equal(store_xcom_get(st, "rd", "r_scratch", tasks[i], "return_value", &v, &err),
                         0);
        const char *wd = json_string_value(v);
        assert_non_null(wd);
        assert_non_null(strstr(wd, "weir-try-"));
        assert_int_equal(access(wd, F_OK), -1); /* gone, files and all */
        json_decref(v);
    }
}

static void test_success(void **state)
{
    (void)state;
    make_run("r_ok", NULL);
    struct weir_err err = { 0 };
    int64_t t0 = ts_now_us();
    assert_int_equal(run_task("r_ok", "ok", 1, &err), EXEC_EXIT_SUCCESS);
    struct store_ti ti;
    get_ti("r_ok", "ok", &ti);
    assert_int_equal(ti.state, TI_SUCCESS);
    assert_int_equal(ti.try_number, 1);
    assert_true(ti.start_date >= t0 && ti.end_date >= ti.start_date);
    assert_int_equal(ti.pid, (int)getpid());
    assert_non_null(ti.hostname);
    store_ti_release(&ti);
    assert_log_has("r_ok", "ok", 1, "INFO hello\nINFO world\nINFO \nWARN oops\n");
    assert_log_has("r_ok", "ok", 1, "INFO task success");
    json_t *v = NULL;
    assert_int_equal(store_xcom_get(st, "rd", "r_ok", "ok", "return_value", &v, &err), 0);
    assert_string_equal(json_string_value(v), "world");
    json_decref(v);

    /* the same try again: the claim CAS refuses it and nothing changes */
    assert_int_equal(run_task("r_ok", "ok", 1, &err), -WEIR_ECONFLICT);
    assert_non_null(strstr(err.msg, "is success at try 1, not queued at try 0"));
    get_ti("r_ok", "ok", &ti);
    assert_int_equal(ti.state, TI_SUCCESS);
    store_ti_release(&ti);
    /* a try that does not follow the last one */
    assert_int_equal(run_task("r_ok", "skip", 2, &err), -WEIR_ECONFLICT);
    /* unknown things */
    assert_int_equal(run_task("r_nope", "ok", 1, &err), -WEIR_ENOTFOUND);
    assert_int_equal(run_task("r_ok", "nope", 1, &err), -WEIR_ENOTFOUND);
}

/* A borrowed control channel (a worker's, kept across tries) that fails: the try records
 * itself on its own connection, and the channel is shut down, not closed, so its owner
 * sees it is gone and connects again. One that works records the end for the try. */
static void test_borrowed_ctl(void **state)
{
    (void)state;
    make_run("r_ctl", NULL);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    close(sv[1]); /* the executor is gone */
    struct stat before, after;
    assert_int_equal(fstat(sv[0], &before), 0);
    struct exec_task_opts o = { .dag_id = "rd", .run_id = "r_ctl", .task_id = "ok",
                                .try_number = 1, .store_url = url, .heartbeat_us = 100000,
                                .ctl = "weir-test-no-such-socket", .ctl_conn = true,
                                .ctl_fd = sv[0] };
    struct weir_err err = { 0 };
    assert_int_equal(exec_task_run(NULL, reg, &o, &err), EXEC_EXIT_SUCCESS);
    assert_false(exec__runner_told_executor());
    struct store_ti ti;
    get_ti("r_ctl", "ok", &ti);
    assert_int_equal(ti.state, TI_SUCCESS);
    store_ti_release(&ti);
    assert_log_has("r_ctl", "ok", 1, "INFO task success");
    /* still ours to close: the same socket, not closed (and its number reused) */
    assert_int_equal(fstat(sv[0], &after), 0);
    assert_true(S_ISSOCK(after.st_mode) && after.st_ino == before.st_ino);
    struct pollfd p = { .fd = sv[0], .events = POLLIN };
    assert_int_equal(poll(&p, 1, 0), 1); /* shut down: its owner sees that */
    close(sv[0]);
}

static void requeue(const char *run_id, const char *task, enum store_ti_state from)
{
    struct weir_err err = { 0 };
    struct store_ti_update u = { .to = TI_QUEUED };
    assert_int_equal(store_ti_update(st, "rd", run_id, task, from, -1, &u, &err), 0);
}

static void test_retries(void **state)
{
    (void)state;
    make_run("r_retry", NULL);
    struct weir_err err = { 0 };
    struct store_ti ti;
    /* try 1: up_for_retry after 10 s */
    assert_int_equal(run_task("r_retry", "flaky", 1, &err), EXEC_EXIT_FAILED);
    get_ti("r_retry", "flaky", &ti);
    assert_int_equal(ti.state, TI_UP_FOR_RETRY);
    int64_t d = ti.next_retry_at - ti.end_date;
    assert_true(d >= 9900000 && d <= 10100000);
    store_ti_release(&ti);
    assert_log_has("r_retry", "flaky", 1, "ERROR command exited with code 3");
    assert_log_has("r_retry", "flaky", 1, "retrying in 10 s");
    /* try 2: backoff doubles to 20 s, capped at 15 s */
    requeue("r_retry", "flaky", TI_UP_FOR_RETRY);
    assert_int_equal(run_task("r_retry", "flaky", 2, &err), EXEC_EXIT_FAILED);
    get_ti("r_retry", "flaky", &ti);
    assert_int_equal(ti.state, TI_UP_FOR_RETRY);
    d = ti.next_retry_at - ti.end_date;
    assert_true(d >= 14900000 && d <= 15100000);
    store_ti_release(&ti);
    /* try 3 of 3: failed */
    requeue("r_retry", "flaky", TI_UP_FOR_RETRY);
    assert_int_equal(run_task("r_retry", "flaky", 3, &err), EXEC_EXIT_FAILED);
    get_ti("r_retry", "flaky", &ti);
    assert_int_equal(ti.state, TI_FAILED);
    assert_int_equal(ti.try_number, 3);
    store_ti_release(&ti);
    /* each try has its own log */
    assert_log_has("r_retry", "flaky", 3, "task failed");

    assert_int_equal(run_task("r_retry", "skip", 1, &err), EXEC_EXIT_SKIPPED);
    get_ti("r_retry", "skip", &ti);
    assert_int_equal(ti.state, TI_SKIPPED);
    store_ti_release(&ti);
}

static void test_templates(void **state)
{
    (void)state;
    make_run("r_tmpl", "{\"q\": 7}");
    struct weir_err err = { 0 };
    assert_int_equal(run_task("r_tmpl", "ok", 1, &err), EXEC_EXIT_SUCCESS);
    int rc = run_task("r_tmpl", "tmpl", 1, &err);
    if (rc != EXEC_EXIT_SUCCESS) {
        char *s = log_text("r_tmpl", "tmpl", 1);
        fail_msg("tmpl: rc %d: %s\n%s", rc, err.msg, s);
    }
    json_t *v = NULL;
    assert_int_equal(store_xcom_get(st, "rd", "r_tmpl", "tmpl", "return_value", &v, &err), 0);
    assert_string_equal(json_string_value(v), "2026-01-02 20260102 2026-01-02T03:04:05+00:00 "
                                              "pdef 7 varval world 1 rd tmpl hi-r_tmpl");
    json_decref(v);

    /* a template error fails the try (retried: it may depend on an upstream XCom) */
    assert_int_equal(run_task("r_tmpl", "badtmpl", 1, &err), EXEC_EXIT_FAILED);
    struct store_ti ti;
    get_ti("r_tmpl", "badtmpl", &ti);
    assert_int_equal(ti.state, TI_UP_FOR_RETRY);
    store_ti_release(&ti);
    assert_log_has("r_tmpl", "badtmpl", 1, "ERROR template error in with");
    assert_log_has("r_tmpl", "badtmpl", 1, "nope");

    /* invalid parameters fail without retry */
    assert_int_equal(run_task("r_tmpl", "badparam", 1, &err), EXEC_EXIT_FAILED);
    get_ti("r_tmpl", "badparam", &ti);
    assert_int_equal(ti.state, TI_FAILED);
    store_ti_release(&ti);
    assert_log_has("r_tmpl", "badparam", 1, "shell.run: unknown parameter 'bogus'");

    /* an unknown operator fails the try with the reason in the log */
    assert_int_equal(run_task("r_tmpl", "noop", 1, &err), EXEC_EXIT_FAILED);
    assert_log_has("r_tmpl", "noop", 1, "unknown operator 'nope.run'");
}

static void test_secret_masked(void **state)
{
    (void)state;
    make_run("r_secret", NULL);
    log_add_secret("hunter2-secret");
    struct weir_err err = { 0 };
    assert_int_equal(run_task("r_secret", "secret", 1, &err), EXEC_EXIT_SUCCESS);
    char *s = log_text("r_secret", "secret", 1);
    assert_null(strstr(s, "hunter2"));
    assert_non_null(strstr(s, "pw=***"));
    free(s);
}

static json_t *ret_value(const char *run_id, const char *task)
{
    json_t *v = NULL;
    struct weir_err err = { 0 };
    assert_int_equal(store_xcom_get(st, "rd", run_id, task, "return_value", &v, &err), 0);
    return v;
}

static void test_shell_params(void **state)
{
    (void)state;
    make_run("r_shell", NULL);
    struct weir_err err = { 0 };
    assert_int_equal(run_task("r_shell", "envcwd", 1, &err), EXEC_EXIT_SUCCESS);
    assert_log_has("r_shell", "envcwd", 1, "INFO bar 5\nINFO /\n");
    assert_int_equal(run_task("r_shell", "noenv", 1, &err), EXEC_EXIT_SUCCESS);
    json_t *v = ret_value("r_shell", "noenv");
    assert_string_equal(json_string_value(v), "unset 1");
    json_decref(v);
    /* append_env false with an empty env: nothing of ours */
    assert_int_equal(run_task("r_shell", "emptyenv", 1, &err), EXEC_EXIT_SUCCESS);
    v = ret_value("r_shell", "emptyenv");
    assert_string_equal(json_string_value(v), "unset");
    json_decref(v);
    /* plain words are exec'd directly, found in PATH, with our environment; a directory of
     * that name earlier in PATH is passed over (through the shell) */
    char pbin[512], path[8192];
    snprintf(pbin, sizeof pbin, "%s/pbin", dir);
    assert_int_equal(mkdir(pbin, 0755), 0);
    snprintf(path, sizeof path, "%s/printenv", pbin);
    assert_int_equal(mkdir(path, 0755), 0);
    const char *old_path = getenv("PATH");
    char *saved = strdup(old_path ? old_path : "/usr/bin:/bin");
    for (int pass = 0; pass < 2; pass++) {
        const char *run = pass ? "r_direct1" : "r_direct0";
        make_run(run, NULL);
        if (pass == 1) {
            snprintf(path, sizeof path, "%s:%s", pbin, saved);
            setenv("PATH", path, 1);
        }
        assert_int_equal(run_task(run, "direct", 1, &err), EXEC_EXIT_SUCCESS);
        v = ret_value(run, "direct");
        assert_string_equal(json_string_value(v), "varval");
        json_decref(v);
    }
    setenv("PATH", saved, 1);
    free(saved);
    snprintf(path, sizeof path, "%s/printenv", pbin);
    rmdir(path);
    rmdir(pbin);
    /* a program that is nowhere: the shell says so, and the try fails */
    assert_int_equal(run_task("r_shell", "notfound", 1, &err), EXEC_EXIT_FAILED);
    assert_log_has("r_shell", "notfound", 1, "not found");
    assert_log_has("r_shell", "notfound", 1, "command exited with code 127");
    assert_int_equal(run_task("r_shell", "badcwd", 1, &err), EXEC_EXIT_FAILED);
    assert_log_has("r_shell", "badcwd", 1,
                   "cannot use '/nonexistent/dir' as working directory: No such file");
    /* "3" from a template is converted for the integer parameter */
    assert_int_equal(run_task("r_shell", "skip3", 1, &err), EXEC_EXIT_SKIPPED);
    /* bytes that are not UTF-8 reach the log as '?', and no return_value is pushed */
    assert_int_equal(run_task("r_shell", "bytes", 1, &err), EXEC_EXIT_SUCCESS);
    assert_log_has("r_shell", "bytes", 1, "INFO a?b\n");
    json_t *none = NULL;
    assert_int_equal(store_xcom_get(st, "rd", "r_shell", "bytes", "return_value", &none, &err),
                     -WEIR_ENOTFOUND);
    /* a background job holding stdout open does not keep the task running */
    int64_t t0 = ts_mono_us();
    assert_int_equal(run_task("r_shell", "bg", 1, &err), EXEC_EXIT_SUCCESS);
    assert_true(ts_mono_us() - t0 < 2 * TS_US_PER_SEC);
    v = ret_value("r_shell", "bg");
    assert_string_equal(json_string_value(v), "started");
    json_decref(v);
}

static void test_heartbeat(void **state)
{
    (void)state;
    make_run("r_hb", NULL);
    struct weir_err err = { 0 };
    assert_int_equal(run_task("r_hb", "slow", 1, &err), EXEC_EXIT_SUCCESS);
    struct store_ti ti;
    get_ti("r_hb", "slow", &ti);
    /* heartbeats every 100 ms during a 600 ms command */
    assert_true(ti.heartbeat_at > ti.start_date + 300000);
    store_ti_release(&ti);
    assert_log_has("r_hb", "slow", 1, "INFO done");
}

static void test_test_mode(void **state)
{
    (void)state;
    make_run("r_test", NULL);
    struct weir_err err = { 0 };
    struct exec_task_opts o = {
        .dag_id = "rd", .run_id = "r_test", .task_id = "ok", .try_number = 1, .test = true
    };
    assert_int_equal(exec_task_run(st, reg, &o, &err), EXEC_EXIT_SUCCESS);
    struct store_ti ti;
    get_ti("r_test", "ok", &ti);
    assert_int_equal(ti.state, TI_QUEUED);
    assert_int_equal(ti.try_number, 0);
    store_ti_release(&ti);
    json_t *v = NULL;
    assert_int_equal(store_xcom_get(st, "rd", "r_test", "ok", "return_value", &v, &err),
                     -WEIR_ENOTFOUND);
    char *s = log_text("r_test", "ok", 1);
    assert_string_equal(s, "");
    free(s);
}

static void *send_term(void *arg)
{
    (void)arg;
    struct timespec ts = { 0, 300 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    kill(getpid(), SIGTERM);
    return NULL;
}

static void test_cancel_by_signal(void **state)
{
    (void)state;
    make_run("r_term", NULL);
    struct weir_err err = { 0 };
    pthread_t th;
    int64_t t0 = ts_mono_us();
    pthread_create(&th, NULL, send_term, NULL);
    assert_int_equal(run_task("r_term", "long", 1, &err), EXEC_EXIT_FAILED);
    pthread_join(th, NULL);
    assert_true(ts_mono_us() - t0 < 5 * TS_US_PER_SEC);
    struct store_ti ti;
    get_ti("r_term", "long", &ti);
    assert_int_equal(ti.state, TI_UP_FOR_RETRY);
    store_ti_release(&ti);
    assert_log_has("r_term", "long", 1, "command cancelled");
}

static void *mark_failed(void *arg)
{
    (void)arg;
    struct timespec ts = { 0, 300 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    struct weir_err err = { 0 };
    struct store *s2 = store_open(url, &err);
    assert_non_null(s2);
    struct store_ti_update u = { .to = TI_FAILED };
    assert_int_equal(store_ti_update(s2, "rd", "r_lost", "long", TI_RUNNING, 1, &u, &err), 0);
    store_free(s2);
    return NULL;
}

static void test_lost(void **state)
{
    (void)state;
    make_run("r_lost", NULL);
    struct weir_err err = { 0 };
    pthread_t th;
    int64_t t0 = ts_mono_us();
    pthread_create(&th, NULL, mark_failed, NULL);
    assert_int_equal(run_task("r_lost", "long", 1, &err), EXEC_EXIT_LOST);
    pthread_join(th, NULL);
    assert_true(ts_mono_us() - t0 < 5 * TS_US_PER_SEC);
    struct store_ti ti;
    get_ti("r_lost", "long", &ti);
    assert_int_equal(ti.state, TI_FAILED); /* what the other writer set stays */
    store_ti_release(&ti);
    assert_log_has("r_lost", "long", 1, "command cancelled");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_success),      cmocka_unit_test(test_borrowed_ctl),
        cmocka_unit_test(test_scratch_folder_removed),      cmocka_unit_test(test_retries),
        cmocka_unit_test(test_templates),    cmocka_unit_test(test_secret_masked),
        cmocka_unit_test(test_shell_params), cmocka_unit_test(test_heartbeat),
        cmocka_unit_test(test_test_mode),    cmocka_unit_test(test_cancel_by_signal),
        cmocka_unit_test(test_lost),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
