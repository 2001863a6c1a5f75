/* cli/tasks.c - `weir tasks list|run|test|clear|logs`. `tasks run` is also what executors
 * start for every try. */
#define LOG_MODULE "cli"
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cfg.h"
#include "core/err.h"
#include "core/log.h"
#include "core/ts.h"
#include "executor/executor.h"
#include "scheduler/scheduler.h"
#include "store/store.h"

static const char *tasks_usage =
    "usage: weir tasks list DAG [--json]\n"
    "       weir tasks run DAG TASK RUN_ID --try N\n"
    "       weir tasks test DAG TASK [LOGICAL_DATE]\n"
    "       weir tasks clear DAG RUN_ID TASK [--downstream]\n"
    "       weir tasks logs DAG RUN_ID TASK [--try N] [--follow] [--json]";

static int tasks_list(struct cli_env *e, const char *dag_id, bool json)
{
    struct store_dag d = {0};
    struct weir_err err = {0};
    char *text = NULL;
    int rc = store_dag_get(e->st, dag_id, &d, &err);
    if (rc == 0)
        rc = store_dag_version_get(e->st, dag_id, d.version, &text, &err);
    store_dag_release(&d);
    if (rc < 0)
        return cli_fail(rc, &err);
    json_t *doc = json_loads(text, 0, NULL);
    free(text);
    json_t *tasks = json_object_get(doc, "tasks");
    if (json) {
        json_t *o = json_pack("{s:O,s:I}", "tasks", tasks, "total_entries",
                              (json_int_t)json_array_size(tasks));
        cli_print_json(o);
        json_decref(o);
    } else {
        size_t i;
        json_t *t;
        json_array_foreach(tasks, i, t)
            puts(json_string_value(json_object_get(t, "task_id")));
    }
    json_decref(doc);
    return CLI_OK;
}

static int tasks_run(struct cli_env *e, const char *dag, const char *task, const char *run,
                     int try_number, bool test)
{
    struct exec_task_opts o = {.dag_id = dag, .task_id = task, .run_id = run,
                               .try_number = try_number, .test = test,
                               .store_url = cfg_str(e->cfg, "store", "url"),
                               .heartbeat_us = cfg_int(e->cfg, "scheduler", "heartbeat_interval") *
                                               TS_US_PER_SEC};
    struct weir_err err = {0};
    int rc = exec_task_run(e->st, e->plugins, &o, &err);
    if (rc < 0)
        return cli_fail(rc, &err);
    return rc;
}

static int tasks_test(struct cli_env *e, const char *dag, const char *task, const char *date)
{
    int64_t ld = TS_NONE;
    if (date && !cli_time_arg(date, &ld))
        return CLI_USAGE;
    if (ld == TS_NONE)
        ld = ts_now_us();
    char rid[128], t[48];
    snprintf(rid, sizeof rid, "test__%s__%d", ts_format(ld, TS_FMT_OFFSET, t, sizeof t),
             (int)getpid());
    struct weir_err err = {0};
    struct store_run r = {0};
    int rc = sched_trigger(e->st, dag, rid, ld, NULL, "weir tasks test", NULL, &err);
    if (rc < 0)
        return cli_fail(rc, &err);
    store_run_release(&r);
    int code = tasks_run(e, dag, task, rid, 1, true);
    /* Nothing of a test is kept: the run existed only to give the task its context. */
    store_run_delete(e->st, dag, rid, NULL);
    return code;
}

static int tasks_logs(struct cli_env *e, const char *dag, const char *run, const char *task,
                      int try_number, bool follow, bool json)
{
    struct weir_err err = {0};
    struct store_ti ti = {0};
    int rc = store_ti_get(e->st, dag, run, task, &ti, &err);
    if (rc < 0)
        return cli_fail(rc, &err);
    if (try_number <= 0)
        try_number = ti.try_number > 0 ? ti.try_number : 1;
    store_ti_release(&ti);
    int64_t after = 0;
    for (;;) {
        struct store_log_list l = {0};
        rc = store_log_read(e->st, dag, run, task, try_number, after, 0, &l, &err);
        if (rc < 0)
            return cli_fail(rc, &err);
        for (size_t i = 0; i < l.n; i++) {
            char t[48];
            ts_format(l.items[i].ts, TS_FMT_Z, t, sizeof t);
            if (json) {
                json_t *o = json_pack("{s:I,s:s,s:s}", "seq", (json_int_t)l.items[i].seq,
                                      "timestamp", t, "line", l.items[i].line);
                char *s = json_dumps(o, JSON_COMPACT);
                puts(s);
                free(s);
                json_decref(o);
            } else {
                printf("[%s] %s\n", t, l.items[i].line);
            }
            after = l.items[i].seq;
        }
        store_log_list_release(&l);
        fflush(stdout);
        if (!follow)
            break;
        struct store_ti cur = {0};
        if (store_ti_get(e->st, dag, run, task, &cur, NULL) == 0) {
            bool done = cur.try_number > try_number ||
                        (cur.try_number == try_number && cur.state != TI_RUNNING &&
                         cur.state != TI_QUEUED);
            store_ti_release(&cur);
            if (done && l.n == 0)
                break;
        }
        usleep(200000);
    }
    return CLI_OK;
}

/* `weir tasks fork-server [CTL]` (internal, started by the local executor): loads every
 * plugin once, then forks tries on request (executor/forksrv.c). No store connection of
 * its own: each forked try records its claim and end through the executor's control
 * socket CTL (executor/ctl.c), or opens a connection when there is none. */
static int fork_server(const char *ctl)
{
    struct cli_env e;
    int code = cli_env_open(&e, CLI_NEED_PLUGINS);
    if (!code) {
        json_decref(exec_plugins_to_json(e.plugins)); /* loads them all before forking */
        code = exec_forkserver_main(e.plugins, cfg_str(e.cfg, "store", "url"),
                                    cfg_int(e.cfg, "scheduler", "heartbeat_interval") *
                                        TS_US_PER_SEC,
                                    ctl);
    }
    cli_env_close(&e);
    return code;
}

int cli_tasks_main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        puts(tasks_usage);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *sub = argv[1], *try_s = NULL;
    const char *pos[3] = {NULL, NULL, NULL};
    int npos = 0;
    bool json = false, bad = false, downstream = false, follow = false;
    for (int i = 2; i < argc && !bad; i++) {
        if (cli_opt(argc, argv, &i, "--json", false, NULL, &bad))
            json = true;
        else if (cli_opt(argc, argv, &i, "--downstream", false, NULL, &bad))
            downstream = true;
        else if (cli_opt(argc, argv, &i, "--follow", false, NULL, &bad) ||
                 cli_opt(argc, argv, &i, "-f", false, NULL, &bad))
            follow = true;
        else if (cli_opt(argc, argv, &i, "--try", true, &try_s, &bad))
            ;
        else if (argv[i][0] == '-')
            return cli_usage("unknown option '%s'\n%s", argv[i], tasks_usage);
        else if (npos < 3)
            pos[npos++] = argv[i];
        else
            return cli_usage("too many arguments\n%s", tasks_usage);
    }
    if (bad)
        return CLI_USAGE;
    int try_number = 0;
    if (try_s) {
        char *end;
        long v = strtol(try_s, &end, 10);
        if (*end || v < 1 || v > 1000000)
            return cli_usage("--try: '%s' is not a try number", try_s);
        try_number = (int)v;
    }
    if (strcmp(sub, "fork-server") == 0)
        return fork_server(pos[0]);
    int need_pos;
    unsigned need = CLI_NEED_STORE;
    if (strcmp(sub, "list") == 0) {
        need_pos = 1;
        need = CLI_NEED_SYNC;
    } else if (strcmp(sub, "run") == 0) {
        need_pos = 3;
        need |= CLI_NEED_PLUGINS;
        if (!try_number)
            return cli_usage("'tasks run' needs --try N\n%s", tasks_usage);
    } else if (strcmp(sub, "test") == 0) {
        need_pos = 2;
        need = CLI_NEED_SYNC;
    } else if (strcmp(sub, "clear") == 0 || strcmp(sub, "logs") == 0) {
        need_pos = 3;
    } else {
        return cli_usage("unknown command 'tasks %s'\n%s", sub, tasks_usage);
    }
    if (npos < need_pos)
        return cli_usage("'tasks %s' needs %d arguments\n%s", sub, need_pos, tasks_usage);
    struct cli_env e;
    int code = cli_env_open(&e, need);
    if (code) {
        cli_env_close(&e);
        return code;
    }
    if (strcmp(sub, "list") == 0) {
        code = tasks_list(&e, pos[0], json);
    } else if (strcmp(sub, "run") == 0) {
        code = tasks_run(&e, pos[0], pos[1], pos[2], try_number, false);
    } else if (strcmp(sub, "test") == 0) {
        code = tasks_test(&e, pos[0], pos[1], pos[2]);
    } else if (strcmp(sub, "clear") == 0) {
        int n = 0;
        struct weir_err err = {0};
        int rc = sched_clear(e.st, pos[0], pos[1], pos[2], downstream, &n, &err);
        if (rc < 0) {
            code = cli_fail(rc, &err);
        } else {
            cli_notify(&e);
            printf("cleared %d task instance%s\n", n, n == 1 ? "" : "s");
        }
    } else {
        code = tasks_logs(&e, pos[0], pos[1], pos[2], try_number, follow, json);
    }
    cli_env_close(&e);
    return code;
}
