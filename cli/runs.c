/* cli/runs.c - `weir runs list|show`. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/ts.h"
#include "store/store.h"

static const char *runs_usage =
    "usage: weir runs list [--dag DAG] [--state STATE] [--limit N] [--json]\n"
    "       weir runs show DAG RUN_ID [--json]";

static void fmt_time(int64_t t, char *out, size_t len)
{
    if (t == TS_NONE)
        snprintf(out, len, "-");
    else
        ts_format(t, TS_FMT_Z, out, len);
}

int cli_runs_main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        puts(runs_usage);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *sub = argv[1], *dag = NULL, *state = NULL, *limit_s = NULL;
    const char *pos[2] = {NULL, NULL};
    int npos = 0;
    bool json = false, bad = false;
    for (int i = 2; i < argc && !bad; i++) {
        if (cli_opt(argc, argv, &i, "--json", false, NULL, &bad))
            json = true;
        else if (cli_opt(argc, argv, &i, "--dag", true, &dag, &bad) ||
                 cli_opt(argc, argv, &i, "--state", true, &state, &bad) ||
                 cli_opt(argc, argv, &i, "--limit", true, &limit_s, &bad))
            ;
        else if (argv[i][0] == '-')
            return cli_usage("unknown option '%s'\n%s", argv[i], runs_usage);
        else if (npos < 2)
            pos[npos++] = argv[i];
        else
            return cli_usage("too many arguments\n%s", runs_usage);
    }
    if (bad)
        return CLI_USAGE;
    struct store_run_filter f = {.dag_id = dag, .logical_date_gte = TS_NONE,
                                 .logical_date_lte = TS_NONE, .limit = 100};
    if (limit_s) {
        char *end;
        long long v = strtoll(limit_s, &end, 10);
        if (*end || v < 0)
            return cli_usage("--limit: '%s' is not a number", limit_s);
        f.limit = (size_t)v;
    }
    if (state) {
        enum store_run_state s;
        if (store_run_state_parse(state, &s) < 0)
            return cli_usage("--state: unknown run state '%s' (queued, running, success, failed)",
                             state);
        f.state_mask = 1 << s;
    }
    if (strcmp(sub, "list") != 0 && strcmp(sub, "show") != 0)
        return cli_usage("unknown command 'runs %s'\n%s", sub, runs_usage);
    if (strcmp(sub, "show") == 0 && npos < 2)
        return cli_usage("'runs show' needs DAG and RUN_ID\n%s", runs_usage);
    struct cli_env e;
    int code = cli_env_open(&e, CLI_NEED_STORE);
    if (code) {
        cli_env_close(&e);
        return code;
    }
    struct weir_err err = {0};
    if (strcmp(sub, "list") == 0) {
        struct store_run_list l = {0};
        int rc = store_run_list(e.st, &f, &l, &err);
        if (rc < 0) {
            code = cli_fail(rc, &err);
        } else if (json) {
            json_t *arr = json_array();
            for (size_t i = 0; i < l.n; i++)
                json_array_append_new(arr, store_run_to_json(&l.items[i]));
            json_t *o = json_pack("{s:o,s:I}", "dag_runs", arr, "total_entries", (json_int_t)l.total);
            cli_print_json(o);
            json_decref(o);
        } else {
            printf("%-24s %-48s %-8s %-10s %s\n", "dag_id", "run_id", "state", "run_type",
                   "logical_date");
            for (size_t i = 0; i < l.n; i++) {
                char t[48];
                fmt_time(l.items[i].logical_date, t, sizeof t);
                printf("%-24s %-48s %-8s %-10s %s\n", l.items[i].dag_id, l.items[i].run_id,
                       store_run_state_name(l.items[i].state),
                       store_run_type_name(l.items[i].run_type), t);
            }
        }
        store_run_list_release(&l);
    } else {
        struct store_run r = {0};
        struct store_ti_list tis = {0};
        int rc = store_run_get(e.st, pos[0], pos[1], &r, &err);
        if (rc == 0)
            rc = store_ti_list_run(e.st, pos[0], pos[1], &tis, &err);
        if (rc < 0) {
            code = cli_fail(rc, &err);
        } else if (json) {
            json_t *o = store_run_to_json(&r);
            json_t *arr = json_array();
            for (size_t i = 0; i < tis.n; i++)
                json_array_append_new(arr, store_ti_to_json(&tis.items[i]));
            json_object_set_new(o, "task_instances", arr);
            cli_print_json(o);
            json_decref(o);
        } else {
            char a[48], b[48], c[48];
            fmt_time(r.logical_date, a, sizeof a);
            fmt_time(r.start_date, b, sizeof b);
            fmt_time(r.end_date, c, sizeof c);
            printf("dag_id:       %s\nrun_id:       %s\nstate:        %s\nrun_type:     %s\n"
                   "logical_date: %s\nstart_date:   %s\nend_date:     %s\n",
                   r.dag_id, r.run_id, store_run_state_name(r.state),
                   store_run_type_name(r.run_type), a, b, c);
            printf("%-28s %-16s %s\n", "task_id", "state", "try_number");
            for (size_t i = 0; i < tis.n; i++)
                printf("%-28s %-16s %d\n", tis.items[i].task_id,
                       store_ti_state_name(tis.items[i].state), tis.items[i].try_number);
        }
        store_ti_list_release(&tis);
        store_run_release(&r);
    }
    cli_env_close(&e);
    return code;
}
