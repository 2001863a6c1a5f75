/* cli/serve.c - the long-running processes: `weir standalone` and `weir scheduler`, and the
 * in-process scheduler behind `weir dags test` and `weir dags backfill --wait`. Wires the
 * scheduler to the local executor and the plugin registry (the scheduler and executor
 * modules do not know each other), and in standalone the web server to both.
 *
 * The web server's threads never touch the loop's state: they wake the scheduler with
 * sched_wake (uv_async_send), and ask for /metrics counters through a second uv_async
 * that makes the loop thread take a snapshot, waiting for it at most 500 ms. */
#define LOG_MODULE "cli"
#include "cli/cli.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "core/cfg.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/ts.h"
#include "executor/executor.h"
#include "weir/plugin.h"
#include "scheduler/scheduler.h"
#include "store/store.h"
#include "webui/webui.h"

struct runtime {
    struct cli_env *env;
    uv_loop_t loop;
    struct exec *ex;
    struct sched *s;
    uv_signal_t sigint, sigterm;
    uv_timer_t check; /* run_until_done: polls the watched runs */
    json_t *runs;     /* run_until_done: [[dag, run], ...] */
    int failed;
    int parallelism;
    bool stopping;
    /* standalone's web server and its counters snapshot (see the file comment) */
    struct web *web;
    uv_async_t stats_async;
    pthread_mutex_t smu;
    pthread_cond_t scond;
    json_t *snapshot;
    uint64_t req_gen, done_gen;
    bool stats_on, stats_closing;
};

static void on_stats_async(uv_async_t *a)
{
    struct runtime *rt = a->data;
    json_t *j = rt->s ? sched_stats(rt->s) : json_object();
    if (rt->ex) {
        int free_slots = exec_slots_free(rt->ex);
        json_object_set_new(j, "executor_slots_free", json_integer(free_slots));
        json_object_set_new(j, "executor_parallelism", json_integer(rt->parallelism));
        json_object_set_new(j, "executor_slots_used",
                            json_integer(rt->parallelism - free_slots));
    }
    pthread_mutex_lock(&rt->smu);
    json_decref(rt->snapshot);
    rt->snapshot = j;
    rt->done_gen = rt->req_gen;
    pthread_cond_broadcast(&rt->scond);
    pthread_mutex_unlock(&rt->smu);
}

/* web_opts.stats: any thread. */
static json_t *web_stats(void *ud)
{
    struct runtime *rt = ud;
    json_t *out = NULL;
    pthread_mutex_lock(&rt->smu);
    if (!rt->stats_closing) {
        uint64_t my = ++rt->req_gen;
        uv_async_send(&rt->stats_async);
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_nsec += 500 * 1000 * 1000;
        if (dl.tv_nsec >= 1000000000) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000;
        }
        while (rt->done_gen < my && !rt->stats_closing)
            if (pthread_cond_timedwait(&rt->scond, &rt->smu, &dl) != 0)
                break;
        if (rt->snapshot)
            out = json_deep_copy(rt->snapshot);
    }
    pthread_mutex_unlock(&rt->smu);
    return out;
}

static void web_wake(void *ud)
{
    struct runtime *rt = ud;
    if (rt->s)
        sched_wake(rt->s);
}

static int ex_launch(void *ud, const struct sched_launch *l, struct weir_err *err)
{
    struct runtime *rt = ud;
    struct exec_task t = {.dag_id = l->dag_id, .run_id = l->run_id, .task_id = l->task_id,
                          .try_number = l->try_number, .timeout_us = l->timeout_us,
                          .pool = l->pool, .version = l->version, .max_tries = l->max_tries,
                          .run = l->run};
    return exec_launch(rt->ex, &t, err);
}

static int ex_slots(void *ud)
{
    return exec_slots_free(((struct runtime *)ud)->ex);
}

static bool ex_is_running(void *ud, const char *dag_id, const char *run_id, const char *task_id,
                          int try_number)
{
    return exec_is_running(((struct runtime *)ud)->ex, dag_id, run_id, task_id, try_number);
}

static void on_exec_done(void *ud, const struct exec_event *ev)
{
    struct runtime *rt = ud;
    if (rt->s)
        sched_task_exited(rt->s, ev->dag_id, ev->run_id, ev->task_id, ev->try_number,
                          ev->exit_status, ev->term_signal, ev->timed_out);
}

static void stop(struct runtime *rt)
{
    if (rt->stopping)
        return;
    rt->stopping = true;
    if (rt->web) {
        /* first the server, whose threads may be waiting for the loop (web_stats) */
        pthread_mutex_lock(&rt->smu);
        rt->stats_closing = true;
        pthread_cond_broadcast(&rt->scond);
        pthread_mutex_unlock(&rt->smu);
        web_stop(rt->web);
        rt->web = NULL;
    }
    if (rt->stats_on)
        uv_close((uv_handle_t *)&rt->stats_async, NULL);
    if (rt->s)
        sched_close(rt->s);
    if (rt->ex)
        exec_close(rt->ex, rt->runs != NULL); /* foreground runs take their tasks along */
    uv_close((uv_handle_t *)&rt->sigint, NULL);
    uv_close((uv_handle_t *)&rt->sigterm, NULL);
    uv_close((uv_handle_t *)&rt->check, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct runtime *rt = h->data;
    LOG_INFO("signal %d: shutting down (running tasks finish on their own)", signum);
    if (rt->runs)
        rt->failed = -WEIR_ETIMEOUT;
    stop(rt);
}

static void on_check(uv_timer_t *t)
{
    struct runtime *rt = t->data;
    size_t i;
    json_t *pair;
    int failed = 0;
    json_array_foreach(rt->runs, i, pair) {
        int state = 0;
        if (!sched_run_finished(rt->s, json_string_value(json_array_get(pair, 0)),
                                json_string_value(json_array_get(pair, 1)), &state))
            return;
        failed += state != RUN_SUCCESS;
    }
    if (exec_running(rt->ex) > 0)
        return;
    rt->failed = failed;
    stop(rt);
}

static int runtime_start(struct runtime *rt, struct cli_env *e, const struct sched_opts *base,
                         struct weir_err *err)
{
    memset(rt, 0, sizeof *rt);
    rt->env = e;
    uv_loop_init(&rt->loop);
    int par = (int)cfg_int(e->cfg, "executor", "parallelism");
    if (par <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        par = n > 0 ? (int)n : 2;
    }
    rt->parallelism = par;
    struct exec_local_opts lo = {.weir_exe = e->exe, .parallelism = par,
                                 .fork_server = cfg_bool(e->cfg, "executor", "fork_server"),
                                 .store = e->st,
                                 .heartbeat_us = cfg_int(e->cfg, "scheduler", "heartbeat_interval") *
                                                 TS_US_PER_SEC};
    rt->ex = exec_local_new(&rt->loop, &lo, on_exec_done, rt, err);
    if (!rt->ex)
        return -(err && err->code ? err->code : WEIR_EINTERNAL);
    struct sched_opts so = *base;
    so.ops.find = cli_op_find;
    so.ops.ud = e->plugins;
    so.exec.launch = ex_launch;
    so.exec.slots_free = ex_slots;
    so.exec.is_running = ex_is_running;
    so.exec.ud = rt;
    so.zombie_timeout_us = cfg_int(e->cfg, "scheduler", "zombie_timeout") * TS_US_PER_SEC;
    so.sweep_interval_us = cfg_int(e->cfg, "scheduler", "sweep_interval") * TS_US_PER_SEC;
    so.paused_on_create = cfg_bool(e->cfg, "scheduler", "dags_are_paused_at_creation");
    rt->s = sched_new(&rt->loop, e->st, &so, err);
    if (!rt->s) {
        exec_close(rt->ex, true);
        uv_run(&rt->loop, UV_RUN_DEFAULT);
        uv_loop_close(&rt->loop);
        return -(err && err->code ? err->code : WEIR_EINTERNAL);
    }
    uv_signal_init(&rt->loop, &rt->sigint);
    uv_signal_init(&rt->loop, &rt->sigterm);
    rt->sigint.data = rt->sigterm.data = rt;
    uv_signal_start(&rt->sigint, on_signal, SIGINT);
    uv_signal_start(&rt->sigterm, on_signal, SIGTERM);
    uv_timer_init(&rt->loop, &rt->check);
    rt->check.data = rt;
    return 0;
}

static void runtime_finish(struct runtime *rt)
{
    uv_run(&rt->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&rt->loop) != 0) {
        uv_run(&rt->loop, UV_RUN_DEFAULT);
        uv_loop_close(&rt->loop);
    }
    if (rt->stats_on) {
        json_decref(rt->snapshot);
        pthread_mutex_destroy(&rt->smu);
        pthread_cond_destroy(&rt->scond);
    }
}

/* standalone: the first admin, then the web server on this process's scheduler. */
static int start_web(struct runtime *rt, struct cli_env *e, struct weir_err *err)
{
    int rc = cli_ensure_admin(e, err);
    if (rc < 0)
        return rc;
    pthread_mutex_init(&rt->smu, NULL);
    pthread_cond_init(&rt->scond, NULL);
    uv_async_init(&rt->loop, &rt->stats_async, on_stats_async);
    rt->stats_async.data = rt;
    rt->stats_on = true;
    struct web_opts o;
    cli_web_opts(e, &o);
    o.wake = web_wake;
    o.wake_ud = rt;
    o.stats = web_stats;
    o.stats_ud = rt;
    rt->web = web_start(&o, err);
    return rt->web ? 0 : -(err->code ? err->code : WEIR_EINTERNAL);
}

/* A run finished: check at once whether they all have, instead of at the next tick. */
static void on_run_finished(void *ud, const char *dag_id, const char *run_id)
{
    (void)dag_id;
    (void)run_id;
    struct runtime *rt = ud;
    if (!rt->stopping)
        uv_timer_start(&rt->check, on_check, 0, 20);
}

int cli_run_until_done(struct cli_env *e, const char *only_dag, json_t *runs, struct weir_err *err)
{
    struct runtime rt;
    struct sched_opts so = {.dags_folder = NULL, .only_dag = only_dag, .no_cron = true,
                            .run_finished = on_run_finished, .run_finished_ud = &rt};
    int rc = runtime_start(&rt, e, &so, err);
    if (rc < 0)
        return rc;
    rt.runs = runs;
    uv_timer_start(&rt.check, on_check, 20, 20);
    runtime_finish(&rt);
    return rt.failed;
}

static const char *serve_usage = "usage: weir standalone | weir scheduler";

int cli_serve_main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            puts(serve_usage);
            return CLI_OK;
        }
        return cli_usage("unknown argument '%s'\n%s", argv[i], serve_usage);
    }
    struct cli_env e;
    int code = cli_env_open(&e, CLI_NEED_STORE | CLI_NEED_PLUGINS);
    if (code) {
        cli_env_close(&e);
        return code;
    }
    json_t *perr = exec_plugins_errors(e.plugins);
    size_t i;
    json_t *pe;
    json_array_foreach(perr, i, pe)
        LOG_ERROR("plugin not loaded file=%s: %s", json_string_value(json_object_get(pe, "file")),
                  json_string_value(json_object_get(pe, "error")));
    json_decref(perr);
    struct runtime rt;
    struct weir_err err = {0};
    struct sched_opts so = {.dags_folder = e.dags_folder, .wake_file = e.wake_file};
    LOG_INFO("weir %s %s home=%s store=%s dags=%s", WEIR_VERSION, argv[0], cfg_home(e.cfg),
             store_backend(e.st), e.dags_folder);
    int rc = runtime_start(&rt, &e, &so, &err);
    if (rc < 0) {
        code = cli_fail(rc, &err);
        cli_env_close(&e);
        return code;
    }
    if (strcmp(argv[0], "standalone") == 0 && (rc = start_web(&rt, &e, &err)) < 0) {
        code = cli_fail(rc, &err);
        rt.failed = rc;
        stop(&rt);
        runtime_finish(&rt);
        cli_env_close(&e);
        return code;
    }
    runtime_finish(&rt);
    cli_env_close(&e);
    return CLI_OK;
}
