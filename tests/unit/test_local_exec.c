/* tests/unit/test_local_exec.c - the local executor, with a fake weir binary (a shell
 * script whose behaviour is chosen by the task id): exit codes and signals reported, the
 * argv it receives, its own process group, the parallelism bound, timeouts that kill the
 * whole group (grandchildren and SIGTERM-ignoring ones too), and exec_close. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "core/err.h"
#include "executor/executor.h"

static char dir[256];
static char exe[300];

static const char fake_weir[] =
    "#!/bin/sh\n"
    "# fake weir: tasks run DAG TASK RUN_ID --try N\n"
    "d=\"$FAKE_DIR\"\n"
    "case \"$4\" in\n"
    "ok) exit 0 ;;\n"
    "exit3) exit 3 ;;\n"
    "sig) kill -KILL $$ ;;\n"
    "nap) sleep 0.2; exit 0 ;;\n"
    "args) echo \"$*\" > \"$d/args\"; read -r _ _ _ _ pgid _ < /proc/$$/stat;"
    " echo \"$$ $pgid\" > \"$d/pgid\"; exit 0 ;;\n"
    "tree) sleep 60 & echo $! > \"$d/gc.$5\"; sleep 60 & wait ;;\n"
    "stubborn) trap '' TERM; sleep 60 & echo $! > \"$d/gc.$5\"; wait; wait ;;\n"
    "escape) perl -e 'setpgrp(0, 0); sleep 60' & echo $! > \"$d/gc.$5\"; trap '' TERM; wait ;;\n"
    "esac\n"
    "exit 64\n";

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/weir-test-local-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(exe, sizeof exe, "%s/weir", dir);
    FILE *f = fopen(exe, "w");
    if (!f)
        return -1;
    fputs(fake_weir, f);
    fclose(f);
    chmod(exe, 0755);
    setenv("FAKE_DIR", dir, 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "%s", dir);
    /* only our own temp folder, with known file names */
    static const char *const names[] = {
        "weir", "args", "pgid", "gc.r1", "gc.r2", "gc.r3", "gc.r4"
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char p[400];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(cmd);
    return 0;
}

#define MAX_EV 32
struct rec {
    struct exec *ex;
    int n;
    struct {
        char task[32];
        char run[32];
        int try_number;
        int64_t exit_status;
        int term_signal;
        bool timed_out;
    } ev[MAX_EV];
    /* parallelism test: tries still to launch, and the most seen running at once */
    int to_launch;
    int max_running;
};

static void on_done(void *ud, const struct exec_event *ev)
{
    struct rec *r = ud;
    assert_true(r->n < MAX_EV);
    snprintf(r->ev[r->n].task, sizeof r->ev[r->n].task, "%s", ev->task_id);
    snprintf(r->ev[r->n].run, sizeof r->ev[r->n].run, "%s", ev->run_id);
    r->ev[r->n].try_number = ev->try_number;
    r->ev[r->n].exit_status = ev->exit_status;
    r->ev[r->n].term_signal = ev->term_signal;
    r->ev[r->n].timed_out = ev->timed_out;
    r->n++;
    /* the slot is free already: launching from the callback works */
    assert_false(exec_is_running(r->ex, "d", ev->run_id, ev->task_id, ev->try_number));
    while (r->to_launch > 0 && exec_slots_free(r->ex) > 0) {
        char run[16];
        snprintf(run, sizeof run, "p%d", r->to_launch);
        struct exec_task t = { .dag_id = "d", .run_id = run, .task_id = "nap", .try_number = 1 };
        assert_int_equal(exec_launch(r->ex, &t, NULL), 0);
        assert_true(exec_is_running(r->ex, "d", run, "nap", 1));
        r->to_launch--;
        if (exec_running(r->ex) > r->max_running)
            r->max_running = exec_running(r->ex);
    }
}

static struct exec *new_exec(uv_loop_t *loop, struct rec *r, int parallelism, int64_t grace_us)
{
    struct exec_local_opts o = { .weir_exe = exe,
                                 .parallelism = parallelism,
                                 .kill_grace_us = grace_us };
    struct weir_err err = { 0 };
    struct exec *ex = exec_local_new(loop, &o, on_done, r, &err);
    assert_non_null(ex);
    r->ex = ex;
    return ex;
}

static int launch(struct exec *ex, const char *task, const char *run, int64_t timeout_us)
{
    struct exec_task t = {
        .dag_id = "d", .run_id = run, .task_id = task, .try_number = 2, .timeout_us = timeout_us
    };
    struct weir_err err = { 0 };
    return exec_launch(ex, &t, &err);
}

static void finish(uv_loop_t *loop, struct exec *ex)
{
    exec_close(ex, false);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void test_exit_codes(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct rec r = { 0 };
    struct exec *ex = new_exec(&loop, &r, 4, 0);
    assert_int_equal(launch(ex, "ok", "r1", 0), 0);
    assert_int_equal(launch(ex, "exit3", "r1", 0), 0);
    assert_int_equal(launch(ex, "sig", "r1", 0), 0);
    assert_int_equal(exec_running(ex), 3);
    assert_true(exec_is_running(ex, "d", "r1", "ok", 2));
    assert_false(exec_is_running(ex, "d", "r1", "ok", 1));
    assert_false(exec_is_running(ex, "d", "r2", "ok", 2));
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(r.n, 3);
    assert_int_equal(exec_running(ex), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(r.ev[i].try_number, 2);
        assert_false(r.ev[i].timed_out);
        if (strcmp(r.ev[i].task, "ok") == 0) {
            assert_int_equal(r.ev[i].exit_status, 0);
            assert_int_equal(r.ev[i].term_signal, 0);
        } else if (strcmp(r.ev[i].task, "exit3") == 0) {
            assert_int_equal(r.ev[i].exit_status, 3);
        } else {
            assert_string_equal(r.ev[i].task, "sig");
            assert_int_equal(r.ev[i].exit_status, -1);
            assert_int_equal(r.ev[i].term_signal, 9);
        }
    }
    finish(&loop, ex);
}

/* The contents of file `name` in the test folder without its trailing newline, or NULL if
 * it cannot be read. With `whole_line`, also NULL until the file holds a whole line (the
 * shell creates the file before it writes to it). */
static char *read_mark(const char *name, bool whole_line)
{
    static char buf[512];
    char p[400];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "r");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    if (n && buf[n - 1] == '\n')
        buf[n - 1] = '\0';
    else if (whole_line)
        return NULL;
    return buf;
}

static char *slurp(const char *name)
{
    return read_mark(name, false);
}

static void test_argv_and_group(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct rec r = { 0 };
    struct exec *ex = new_exec(&loop, &r, 1, 0);
    assert_int_equal(launch(ex, "args", "manual__1", 0), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.ev[0].exit_status, 0);
    assert_string_equal(slurp("args"), "tasks run d args manual__1 --try 2");
    int pid = 0, pgid = 0;
    assert_int_equal(sscanf(slurp("pgid"), "%d %d", &pid, &pgid), 2);
    assert_int_equal(pid, pgid);           /* its own process group... */
    assert_int_not_equal(pgid, getpgrp()); /* ...not ours */
    finish(&loop, ex);
}

static void test_parallelism(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct rec r = { 0 };
    struct exec *ex = new_exec(&loop, &r, 2, 0);
    /* two slots, and room for two tries waiting for one */
    assert_int_equal(exec_slots_free(ex), 4);
    assert_int_equal(launch(ex, "nap", "r1", 0), 0);
    assert_int_equal(launch(ex, "nap", "r2", 0), 0);
    assert_int_equal(exec_running(ex), 2);
    assert_int_equal(exec_slots_free(ex), 2);
    assert_int_equal(launch(ex, "nap", "r3", 0), 0);
    assert_int_equal(launch(ex, "nap", "r4", 0), 0);
    assert_int_equal(exec_running(ex), 2); /* r3 and r4 wait for a slot... */
    assert_true(exec_is_running(ex, "d", "r3", "nap", 2)); /* ...as tries of this executor */
    assert_int_equal(exec_slots_free(ex), 0);
    struct weir_err err = { 0 };
    struct exec_task t = { .dag_id = "d", .run_id = "r5", .task_id = "nap", .try_number = 1 };
    assert_int_equal(exec_launch(ex, &t, &err), -WEIR_EUNAVAIL);
    r.to_launch = 4;
    r.max_running = 2;
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(r.n, 8);
    assert_int_equal(r.max_running, 2); /* never more than `parallelism` at once */
    assert_int_equal(exec_slots_free(ex), 4);
    finish(&loop, ex);
}

/* Waits until `pid` is gone (or a zombie nobody reaped yet). */
static bool gone(int pid)
{
    for (int i = 0; i < 300; i++) {
        char p[64], st[512];
        snprintf(p, sizeof p, "/proc/%d/stat", pid);
        FILE *f = fopen(p, "r");
        if (!f)
            return true;
        size_t n = fread(st, 1, sizeof st - 1, f);
        fclose(f);
        st[n] = '\0';
        const char *rp = strrchr(st, ')');
        if (rp && rp[1] == ' ' && rp[2] == 'Z')
            return true;
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    return false;
}

static int to_int(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    assert_true(end != s && v > 0);
    return (int)v;
}

static int64_t mono_ms(void)
{
    return (int64_t)(uv_hrtime() / 1000000);
}

static void test_timeout_kills_group(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct rec r = { 0 };
    struct exec *ex = new_exec(&loop, &r, 2, 5000000);
    int64_t t0 = mono_ms();
    assert_int_equal(launch(ex, "tree", "r1", 300000), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    int64_t took = mono_ms() - t0;
    assert_int_equal(r.n, 1);
    assert_true(r.ev[0].timed_out);
    assert_int_equal(r.ev[0].term_signal, 15);
    assert_int_equal(r.ev[0].exit_status, -1);
    assert_true(took >= 250 && took < 4000);
    char *gc = slurp("gc.r1");
    assert_non_null(gc);
    assert_true(gone(to_int(gc)));
    finish(&loop, ex);
}

static void test_timeout_sigkill_after_grace(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct rec r = { 0 };
    struct exec *ex = new_exec(&loop, &r, 2, 300000);
    int64_t t0 = mono_ms();
    assert_int_equal(launch(ex, "stubborn", "r2", 200000), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    int64_t took = mono_ms() - t0;
    assert_int_equal(r.n, 1);
    assert_true(r.ev[0].timed_out);
    assert_int_equal(r.ev[0].term_signal, 9);
    assert_true(took >= 450 && took < 5000);
    char *gc = slurp("gc.r2");
    assert_non_null(gc);
    assert_true(gone(to_int(gc)));
    finish(&loop, ex);
}

/* A grandchild in a process group of its own (as the shell plugin makes) survives a kill
 * of the runner's group; the executor's kill reaches it through the session. */
static void test_timeout_kills_session(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct rec r = { 0 };
    struct exec *ex = new_exec(&loop, &r, 2, 200000);
    assert_int_equal(launch(ex, "escape", "r4", 300000), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(r.n, 1);
    assert_true(r.ev[0].timed_out);
    assert_int_equal(r.ev[0].term_signal, 9);
    char *gc = slurp("gc.r4");
    assert_non_null(gc);
    assert_true(gone(to_int(gc)));
    finish(&loop, ex);
}

static void test_close_kill_running(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct rec r = { 0 };
    struct exec *ex = new_exec(&loop, &r, 2, 0);
    assert_int_equal(launch(ex, "tree", "r3", 0), 0);
    /* let the script start its grandchildren */
    char *gc = NULL;
    for (int i = 0; i < 300 && !(gc = read_mark("gc.r3", true)); i++) {
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    assert_non_null(gc);
    int gcpid = to_int(gc);
    exec_close(ex, true);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(r.n, 0); /* done is not called after exec_close */
    assert_true(gone(gcpid));
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_spawn_failure(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct rec r = { 0 };
    struct exec_local_opts o = { .weir_exe = "/nonexistent/weir", .parallelism = 1 };
    struct weir_err err = { 0 };
    struct exec *ex = exec_local_new(&loop, &o, on_done, &r, &err);
    assert_non_null(ex);
    r.ex = ex;
    struct exec_task t = { .dag_id = "d", .run_id = "r", .task_id = "t", .try_number = 1 };
    assert_int_equal(exec_launch(ex, &t, &err), -WEIR_EIO);
    assert_non_null(strstr(err.msg, "cannot start '/nonexistent/weir' for task 't'"));
    assert_int_equal(exec_running(ex), 0);
    assert_null(exec_local_new(&loop, &(struct exec_local_opts){ 0 }, on_done, &r, &err));
    finish(&loop, ex);
    assert_int_equal(r.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_codes),
        cmocka_unit_test(test_argv_and_group),
        cmocka_unit_test(test_parallelism),
        cmocka_unit_test(test_timeout_kills_group),
        cmocka_unit_test(test_timeout_sigkill_after_grace),
        cmocka_unit_test(test_timeout_kills_session),
        cmocka_unit_test(test_close_kill_running),
        cmocka_unit_test(test_spawn_failure),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
