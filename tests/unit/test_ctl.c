/* tests/unit/test_ctl.c - how a try's claim and end are recorded (executor/ctl.c) and the
 * local executor's control socket that records them for forked tries: the claim and end
 * transactions, recognising a transaction committed by an executor whose answer was lost
 * (no duplicate log lines), a try that left running, and the socket's answers to real,
 * conflicting, malformed, unknown and oversized requests, over a real Unix socket against
 * a real SQLite store. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "core/err.h"
#include "core/ts.h"
#include "executor/executor.h"
#include "executor/executor_int.h"
#include "store/store.h"

static char dir[256];
static char url[320];
static struct store *st;

static const char doc_json[] =
    "{\"dag_id\": \"cd\", \"tasks\": [{\"task_id\": \"a\", \"run\": \"shell.run\"},"
    " {\"task_id\": \"b\", \"run\": \"shell.run\"}, {\"task_id\": \"c\", \"run\": \"shell.run\"}]}";

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/weir-test-ctl-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(url, sizeof url, "sqlite://%s/weir.db", dir);
    struct weir_err err = {0};
    st = store_open(url, &err);
    int64_t version = 0;
    if (!st || store_migrate(st, NULL, &err) < 0 ||
        store_dag_sync(st, "cd", "/dags/cd.yaml", doc_json, "", NULL, "UTC", NULL, false,
                       &version, &err) < 0) {
        fprintf(stderr, "store: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    store_free(st);
    static const char *const files[] = {"weir.db", "weir.db-wal", "weir.db-shm"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char p[400];
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
    return 0;
}

/* Run `run_id` with task instances a, b, c queued at try 0. */
static void make_run(const char *run_id)
{
    struct weir_err err = {0};
    struct store_dag d = {0};
    assert_int_equal(store_dag_get(st, "cd", &d, &err), 0);
    struct store_run r = {.dag_id = "cd", .run_id = (char *)run_id, .version = d.version,
                          .state = RUN_RUNNING, .run_type = RUN_TYPE_MANUAL,
                          .logical_date = TS_NONE, .data_interval_start = TS_NONE,
                          .data_interval_end = TS_NONE, .queued_at = TS_NONE,
                          .start_date = TS_NONE, .end_date = TS_NONE};
    json_t *ids = json_pack("[s, s, s]", "a", "b", "c");
    if (store_run_create(st, &r, ids, &err) < 0)
        fail_msg("run create: %s", err.msg);
    json_decref(ids);
    store_dag_release(&d);
    const char *tasks[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        struct store_ti_update u = {.to = TI_QUEUED, .set_max_tries = true, .max_tries = 2};
        assert_int_equal(store_ti_update(st, "cd", run_id, tasks[i], TI_NONE, 0, &u, &err), 0);
    }
}

static struct store_ti ti_of(const char *run_id, const char *task)
{
    struct store_ti ti = {0};
    assert_int_equal(store_ti_get(st, "cd", run_id, task, &ti, NULL), 0);
    return ti;
}

static size_t log_lines(const char *run_id, const char *task, int try_number)
{
    struct store_log_list l = {0};
    assert_int_equal(store_log_read(st, "cd", run_id, task, try_number, 0, 0, &l, NULL), 0);
    size_t n = l.n;
    store_log_list_release(&l);
    return n;
}

static void test_claim_and_finish(void **state)
{
    (void)state;
    make_run("r1");
    struct weir_err err = {0};
    json_t *v = json_string("old");
    assert_int_equal(store_xcom_set(st, "cd", "r1", "a", "k", v, &err), 0);
    json_decref(v);
    int max_tries = 0;
    assert_int_equal(exec__claim_store(st, "cd", "r1", "a", 1, 4242, &max_tries, &err), 0);
    struct store_ti ti = ti_of("r1", "a");
    assert_int_equal(ti.state, TI_RUNNING);
    assert_int_equal(ti.try_number, 1);
    assert_int_equal(ti.pid, 4242);
    store_ti_release(&ti);
    json_t *x = NULL;
    assert_int_equal(store_xcom_get(st, "cd", "r1", "a", "k", &x, NULL), -WEIR_ENOTFOUND);
    /* the same claim again by the same process: it is ours (an answer that was lost) */
    assert_int_equal(exec__claim_store(st, "cd", "r1", "a", 1, 4242, &max_tries, &err), 0);
    assert_int_equal(max_tries, 2);
    /* another process: somebody else's */
    assert_int_equal(exec__claim_store(st, "cd", "r1", "a", 1, 4243, NULL, &err), -WEIR_ECONFLICT);
    assert_non_null(strstr(err.msg, "running at try 1"));
    /* a claim at the wrong try */
    assert_int_equal(exec__claim_store(st, "cd", "r1", "b", 2, 4242, NULL, &err), -WEIR_ECONFLICT);

    const char *lines[] = {"INFO one", "INFO two"};
    int64_t ts[] = {ts_now_us(), ts_now_us()};
    struct store_ti_update u = {.to = TI_SUCCESS, .set_end_date = true, .end_date = ts[1]};
    assert_int_equal(exec__finish_store(st, "cd", "r1", "a", 1, &u, lines, ts, 2, &err), 0);
    ti = ti_of("r1", "a");
    assert_int_equal(ti.state, TI_SUCCESS);
    store_ti_release(&ti);
    assert_int_equal(log_lines("r1", "a", 1), 2);
    /* the same end again (the executor committed it, its answer was lost): recognised, and
     * the lines are not stored twice */
    assert_int_equal(exec__finish_store(st, "cd", "r1", "a", 1, &u, lines, ts, 2, &err), 0);
    assert_int_equal(log_lines("r1", "a", 1), 2);

    /* a try whose task instance was cleared meanwhile: not recorded, lines kept */
    assert_int_equal(exec__claim_store(st, "cd", "r1", "c", 1, 4242, NULL, &err), 0);
    struct store_ti_update clear = {.to = TI_NONE};
    assert_int_equal(store_ti_update(st, "cd", "r1", "c", TI_RUNNING, 1, &clear, &err), 0);
    struct store_ti_update end = {.to = TI_FAILED, .set_end_date = true, .end_date = ts[0]};
    assert_int_equal(exec__finish_store(st, "cd", "r1", "c", 1, &end, lines, ts, 2, &err),
                     -WEIR_ECONFLICT);
    ti = ti_of("r1", "c");
    assert_int_equal(ti.state, TI_NONE);
    store_ti_release(&ti);
    assert_int_equal(log_lines("r1", "c", 1), 2);
}

/* ---- the control socket ------------------------------------------------------------------ */

struct client {
    const char *name;
    uv_async_t done;
    int failures;
    char why[512];
};

static void note(struct client *c, bool ok, const char *what)
{
    if (!ok && !c->failures++)
        snprintf(c->why, sizeof c->why, "%s", what);
}

static json_t *call(int fd, const char *text)
{
    json_t *req = json_loads(text, 0, NULL);
    json_t *ans = req ? exec__ctl_call(fd, req) : NULL;
    json_decref(req);
    return ans;
}

static bool ok_of(json_t *ans)
{
    return json_is_true(json_object_get(ans, "ok"));
}

static bool code_is(json_t *ans, const char *code)
{
    const char *c = json_string_value(json_object_get(ans, "code"));
    return !ok_of(ans) && c && strcmp(c, code) == 0;
}

static void *client_main(void *arg)
{
    struct client *c = arg;
    int fd = exec__ctl_connect(c->name);
    note(c, fd >= 0, "connect");
    char req[512];
    snprintf(req, sizeof req,
             "{\"op\": \"claim\", \"dag_id\": \"cd\", \"run_id\": \"r2\", \"task_id\": \"a\","
             " \"try_number\": 1, \"pid\": %d, \"want_run\": true}", (int)getpid());
    json_t *a = call(fd, req);
    note(c, ok_of(a), "claim answered ok");
    note(c, json_is_string(json_object_get(json_object_get(a, "run"), "run_id")),
         "claim answer carries the run");
    json_decref(a);
    a = call(fd, "{\"op\": \"claim\", \"dag_id\": \"cd\", \"run_id\": \"r2\", \"task_id\": \"b\","
                 " \"try_number\": 3, \"pid\": 1}");
    note(c, code_is(a, "conflict"), "claim at the wrong try is a conflict");
    json_decref(a);
    a = call(fd, "{\"op\": \"finish\", \"dag_id\": \"cd\", \"run_id\": \"r2\", \"task_id\": \"a\","
                 " \"try_number\": 1, \"state\": \"up_for_retry\", \"end_date\": 1000,"
                 " \"next_retry_at\": 2000, \"lines\": [[1, \"INFO x\"], [2, \"ERROR y\"],"
                 " [3, \"INFO z\"]]}");
    note(c, ok_of(a), "finish answered ok");
    json_decref(a);
    a = call(fd, "{\"op\": \"finish\", \"dag_id\": \"cd\", \"run_id\": \"r2\", \"task_id\": \"b\","
                 " \"try_number\": 1, \"state\": \"running\", \"end_date\": 1,"
                 " \"next_retry_at\": 1, \"lines\": []}");
    note(c, code_is(a, "error"), "finish into a state that is not an end is refused");
    json_decref(a);
    a = call(fd, "{\"op\": \"launch_missiles\", \"dag_id\": \"cd\", \"run_id\": \"r2\","
                 " \"task_id\": \"b\", \"try_number\": 1}");
    note(c, code_is(a, "error"), "unknown op refused");
    json_decref(a);
    a = call(fd, "[1, 2, 3]");
    note(c, code_is(a, "error"), "not an object: refused");
    json_decref(a);
    /* a frame that is not JSON at all */
    const char junk[] = "\x05\0\0\0{{{{{";
    note(c, send(fd, junk, sizeof junk - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof junk - 1),
         "send junk");
    uint32_t n = 0;
    char buf[256];
    note(c, read(fd, &n, 4) == 4 && n < sizeof buf && read(fd, buf, n) == (ssize_t)n,
         "junk answered");
    note(c, n > 0 && strstr(buf, "\"error\"") != NULL, "junk answered with an error");
    /* an absurd length: the executor hangs up */
    uint32_t huge = 0x7fffffffu;
    note(c, send(fd, &huge, 4, MSG_NOSIGNAL) == 4, "send huge");
    note(c, read(fd, buf, sizeof buf) == 0, "huge frame: connection closed");
    close(fd);
    uv_async_send(&c->done);
    return NULL;
}

static void on_done(void *ud, const struct exec_event *ev)
{
    (void)ud;
    (void)ev;
}

static struct exec *the_ex;

static void on_client_done(uv_async_t *h)
{
    uv_close((uv_handle_t *)h, NULL);
    exec_close(the_ex, false);
}

static void test_ctl_socket(void **state)
{
    (void)state;
    make_run("r2");
    uv_loop_t loop;
    uv_loop_init(&loop);
    /* No fork server binary here: the server fails to start; the socket works regardless. */
    struct exec_local_opts o = {.weir_exe = "/bin/false", .parallelism = 1, .fork_server = true,
                                .store = st};
    struct weir_err err = {0};
    the_ex = exec_local_new(&loop, &o, on_done, NULL, &err);
    assert_non_null(the_ex);
    struct client c = {.name = exec__local_ctl_name(the_ex)};
    assert_non_null(c.name);
    uv_async_init(&loop, &c.done, on_client_done);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, client_main, &c), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    pthread_join(t, NULL);
    uv_loop_close(&loop);
    if (c.failures)
        fail_msg("%d failed checks, first: %s", c.failures, c.why);
    struct store_ti ti = ti_of("r2", "a");
    assert_int_equal(ti.state, TI_UP_FOR_RETRY);
    assert_int_equal(ti.pid, (int)getpid());
    assert_int_equal(ti.end_date, 1000);
    assert_int_equal(ti.next_retry_at, 2000);
    store_ti_release(&ti);
    assert_int_equal(log_lines("r2", "a", 1), 3);
    ti = ti_of("r2", "b");
    assert_int_equal(ti.state, TI_QUEUED);
    store_ti_release(&ti);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_claim_and_finish),
        cmocka_unit_test(test_ctl_socket),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
