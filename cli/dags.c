/* cli/dags.c - `weir dags list|show|trigger|pause|unpause|backfill|test`. */
#define LOG_MODULE "cli"
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "core/ts.h"
#include "scheduler/scheduler.h"
#include "store/store.h"
#include "executor/executor.h"
#include "weir/plugin.h"

static const char *dags_usage =
    "usage: weir dags list [--json]\n"
    "       weir dags show DAG [--json]\n"
    "       weir dags trigger DAG [--conf JSON] [--run-id ID] [--logical-date DATE] [--note TEXT] [--json]\n"
    "       weir dags pause DAG | weir dags unpause DAG\n"
    "       weir dags backfill DAG --from DATE --to DATE [--conf JSON] [--wait]\n"
    "       weir dags test DAG [LOGICAL_DATE] [--conf JSON]";

static int open_synced(struct cli_env *e)
{
    return cli_env_open(e, CLI_NEED_SYNC);
}

static int dags_list(struct cli_env *e, bool json)
{
    struct store_dag_list l = {0};
    struct weir_err err = {0};
    json_t *ierr = NULL;
    int rc = store_dag_list(e->st, true, 0, 0, &l, &err);
    if (rc == 0)
        rc = store_import_error_list(e->st, &ierr, &err);
    if (rc < 0) {
        store_dag_list_release(&l);
        return cli_fail(rc, &err);
    }
    if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < l.n; i++)
            json_array_append_new(arr, store_dag_to_json(&l.items[i]));
        json_t *out = json_pack("{s:o,s:I,s:O}", "dags", arr, "total_entries", (json_int_t)l.n,
                                "import_errors", ierr);
        cli_print_json(out);
        json_decref(out);
    } else {
        printf("%-32s %-16s %-7s %s\n", "dag_id", "schedule", "paused", "fileloc");
        for (size_t i = 0; i < l.n; i++) {
            const struct store_dag *d = &l.items[i];
            printf("%-32s %-16s %-7s %s\n", d->dag_id, d->schedule ? d->schedule : "None",
                   d->is_paused ? "True" : "False", d->fileloc ? d->fileloc : "");
        }
        size_t i;
        json_t *ie;
        if (json_array_size(ierr))
            printf("\nimport errors:\n");
        json_array_foreach(ierr, i, ie)
            printf("%s\n", json_string_value(json_object_get(ie, "stack_trace")));
    }
    json_decref(ierr);
    store_dag_list_release(&l);
    return CLI_OK;
}

static int dags_show(struct cli_env *e, const char *dag_id, bool json)
{
    struct store_dag d = {0};
    struct weir_err err = {0};
    char *doc_text = NULL;
    int rc = store_dag_get(e->st, dag_id, &d, &err);
    if (rc == 0)
        rc = store_dag_version_get(e->st, dag_id, d.version, &doc_text, &err);
    if (rc < 0) {
        store_dag_release(&d);
        return cli_fail(rc, &err);
    }
    json_t *doc = json_loads(doc_text, 0, NULL);
    free(doc_text);
    json_t *out = store_dag_to_json(&d);
    json_object_set(out, "tasks", json_object_get(doc, "tasks"));
    json_object_set(out, "params", json_object_get(doc, "params"));
    json_object_set_new(out, "version", json_integer(d.version));
    if (json) {
        cli_print_json(out);
    } else {
        printf("dag_id:      %s\nschedule:    %s (%s)\npaused:      %s\nfile:        %s\nversion:     %lld\n",
               d.dag_id, d.schedule ? d.schedule : "None", d.timezone ? d.timezone : "UTC",
               d.is_paused ? "yes" : "no", d.fileloc ? d.fileloc : "", (long long)d.version);
        if (d.description && *d.description)
            printf("description: %s\n", d.description);
        printf("tasks:\n");
        size_t i;
        json_t *t;
        json_array_foreach(json_object_get(doc, "tasks"), i, t) {
            printf("  %-24s %-20s", json_string_value(json_object_get(t, "task_id")),
                   json_string_value(json_object_get(t, "run")));
            json_t *needs = json_object_get(t, "needs");
            if (json_array_size(needs)) {
                printf(" needs:");
                size_t j;
                json_t *n;
                json_array_foreach(needs, j, n)
                    printf(" %s", json_string_value(n));
            }
            putchar('\n');
        }
    }
    json_decref(out);
    json_decref(doc);
    store_dag_release(&d);
    return CLI_OK;
}

static json_t *parse_conf(const char *text, int *code)
{
    if (!text)
        return NULL;
    json_error_t je;
    json_t *conf = json_loads(text, 0, &je);
    if (!conf || !json_is_object(conf)) {
        *code = cli_usage("--conf: not a JSON object: %s", conf ? "wrong type" : je.text);
        json_decref(conf);
        return NULL;
    }
    return conf;
}

static int dags_trigger(struct cli_env *e, const char *dag_id, const char *conf_text,
                        const char *run_id, const char *date, const char *note, bool json)
{
    int code = 0;
    int64_t ld = TS_NONE;
    if (date && !cli_time_arg(date, &ld))
        return CLI_USAGE;
    json_t *conf = parse_conf(conf_text, &code);
    if (code)
        return code;
    struct store_run r = {0};
    struct weir_err err = {0};
    int rc = sched_trigger(e->st, dag_id, run_id, ld, conf, note, &r, &err);
    json_decref(conf);
    if (rc < 0)
        return cli_fail(rc, &err);
    cli_notify(e);
    if (json) {
        json_t *o = store_run_to_json(&r);
        cli_print_json(o);
        json_decref(o);
    } else {
        printf("triggered %s %s\n", r.dag_id, r.run_id);
    }
    store_run_release(&r);
    return CLI_OK;
}

static int print_run_summary(struct cli_env *e, const char *dag_id, const char *run_id)
{
    struct store_ti_list l = {0};
    struct store_run r = {0};
    if (store_run_get(e->st, dag_id, run_id, &r, NULL) == 0)
        fprintf(stderr, "run %s %s: %s\n", dag_id, run_id, store_run_state_name(r.state));
    if (store_ti_list_run(e->st, dag_id, run_id, &l, NULL) == 0)
        for (size_t i = 0; i < l.n; i++)
            fprintf(stderr, "  %-28s %-16s try %d\n", l.items[i].task_id,
                    store_ti_state_name(l.items[i].state), l.items[i].try_number);
    int failed = r.state != RUN_SUCCESS;
    store_ti_list_release(&l);
    store_run_release(&r);
    return failed;
}

static int dags_test(struct cli_env *e, const char *dag_id, const char *date, const char *conf_text)
{
    int code = 0;
    int64_t ld = TS_NONE;
    if (date && !cli_time_arg(date, &ld))
        return CLI_USAGE;
    if (ld == TS_NONE)
        ld = ts_now_us();
    json_t *conf = parse_conf(conf_text, &code);
    if (code)
        return code;
    char rid[128], t[48];
    snprintf(rid, sizeof rid, "test__%s__%lld", ts_format(ld, TS_FMT_OFFSET, t, sizeof t),
             (long long)(ts_now_us() % 1000000000));
    struct store_run r = {0};
    struct weir_err err = {0};
    int rc = sched_trigger(e->st, dag_id, rid, ld, conf, "weir dags test", &r, &err);
    json_decref(conf);
    if (rc < 0)
        return cli_fail(rc, &err);
    json_t *runs = json_pack("[[ss]]", r.dag_id, r.run_id);
    store_run_release(&r);
    rc = cli_run_until_done(e, dag_id, runs, &err);
    if (rc < 0) {
        json_decref(runs);
        return cli_fail(rc, &err);
    }
    int failed = print_run_summary(e, dag_id, rid);
    json_decref(runs);
    return failed ? CLI_FAILED : CLI_OK;
}

static int dags_backfill(struct cli_env *e, const char *dag_id, const char *from, const char *to,
                         const char *conf_text, bool wait)
{
    int code = 0;
    int64_t f, t;
    if (!from || !to)
        return cli_usage("backfill needs --from and --to\n%s", dags_usage);
    if (!cli_time_arg(from, &f) || !cli_time_arg(to, &t))
        return CLI_USAGE;
    json_t *conf = parse_conf(conf_text, &code);
    if (code)
        return code;
    int created = 0;
    struct weir_err err = {0};
    int rc = sched_backfill(e->st, dag_id, f, t, conf, &created, &err);
    json_decref(conf);
    if (rc < 0)
        return cli_fail(rc, &err);
    printf("backfill %s: %d runs created\n", dag_id, created);
    cli_notify(e);
    if (!wait)
        return CLI_OK;
    struct store_run_filter flt = {.dag_id = dag_id, .logical_date_gte = f, .logical_date_lte = t,
                                   .order_by = "logical_date"};
    struct store_run_list l = {0};
    rc = store_run_list(e->st, &flt, &l, &err);
    if (rc < 0)
        return cli_fail(rc, &err);
    json_t *runs = json_array();
    for (size_t i = 0; i < l.n; i++)
        if (l.items[i].run_type == RUN_TYPE_BACKFILL)
            json_array_append_new(runs, json_pack("[ss]", l.items[i].dag_id, l.items[i].run_id));
    store_run_list_release(&l);
    rc = cli_run_until_done(e, dag_id, runs, &err);
    json_decref(runs);
    if (rc < 0)
        return cli_fail(rc, &err);
    printf("backfill %s: %d runs failed\n", dag_id, rc);
    return rc ? CLI_FAILED : CLI_OK;
}

int cli_dags_main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        puts(dags_usage);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *sub = argv[1];
    const char *pos[2] = {NULL, NULL};
    int npos = 0;
    const char *conf = NULL, *run_id = NULL, *date = NULL, *note = NULL, *from = NULL, *to = NULL;
    bool json = false, wait = false, bad = false;
    for (int i = 2; i < argc && !bad; i++) {
        if (cli_opt(argc, argv, &i, "--json", false, NULL, &bad))
            json = true;
        else if (cli_opt(argc, argv, &i, "--wait", false, NULL, &bad))
            wait = true;
        else if (cli_opt(argc, argv, &i, "--conf", true, &conf, &bad) ||
                 cli_opt(argc, argv, &i, "--run-id", true, &run_id, &bad) ||
                 cli_opt(argc, argv, &i, "--logical-date", true, &date, &bad) ||
                 cli_opt(argc, argv, &i, "--note", true, &note, &bad) ||
                 cli_opt(argc, argv, &i, "--from", true, &from, &bad) ||
                 cli_opt(argc, argv, &i, "--to", true, &to, &bad))
            ;
        else if (argv[i][0] == '-' && argv[i][1])
            return cli_usage("unknown option '%s'\n%s", argv[i], dags_usage);
        else if (npos < 2)
            pos[npos++] = argv[i];
        else
            return cli_usage("too many arguments\n%s", dags_usage);
    }
    if (bad)
        return CLI_USAGE;
    bool needs_dag = strcmp(sub, "list") != 0;
    if (needs_dag && !pos[0])
        return cli_usage("'dags %s' needs a DAG id\n%s", sub, dags_usage);
    if (strcmp(sub, "list") && strcmp(sub, "show") && strcmp(sub, "trigger") &&
        strcmp(sub, "pause") && strcmp(sub, "unpause") && strcmp(sub, "backfill") &&
        strcmp(sub, "test"))
        return cli_usage("unknown command 'dags %s'\n%s", sub, dags_usage);
    struct cli_env e;
    int code = open_synced(&e);
    if (code) {
        cli_env_close(&e);
        return code;
    }
    if (strcmp(sub, "list") == 0) {
        code = dags_list(&e, json);
    } else if (strcmp(sub, "show") == 0) {
        code = dags_show(&e, pos[0], json);
    } else if (strcmp(sub, "trigger") == 0) {
        code = dags_trigger(&e, pos[0], conf, run_id, date ? date : pos[1], note, json);
    } else if (strcmp(sub, "pause") == 0 || strcmp(sub, "unpause") == 0) {
        struct weir_err err = {0};
        bool paused = strcmp(sub, "pause") == 0;
        int rc = store_dag_set_paused(e.st, pos[0], paused, &err);
        if (rc < 0) {
            code = cli_fail(rc, &err);
        } else {
            cli_notify(&e);
            printf("dag %s is %s\n", pos[0], paused ? "paused" : "unpaused");
        }
    } else if (strcmp(sub, "backfill") == 0) {
        code = dags_backfill(&e, pos[0], from, to, conf, wait);
    } else {
        code = dags_test(&e, pos[0], pos[1] ? pos[1] : date, conf);
    }
    cli_env_close(&e);
    return code;
}
