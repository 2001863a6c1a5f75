/* webui/metrics.c - /metrics in Prometheus text format (version 0.0.4): HTTP responses by
 * status, request and store-call latency histograms of this server, task instances and
 * runs by state and the queue depth from the store, and the in-process scheduler's and
 * executor's counters when `weir standalone` runs the server. */
#define LOG_MODULE "web"
#include "webui/webui.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/ts.h"
#include "store/store.h"
#include "webui/web_int.h"

static void hist(struct buf *b, const char *name, const char *help, struct web__hist *h)
{
    buf_addf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (int i = 0; i < WEB_NBUCKETS; i++) {
        cum += atomic_load(&h->bucket[i]);
        buf_addf(b, "%s_bucket{le=\"%g\"} %llu\n", name, web__bucket_le[i],
                 (unsigned long long)cum);
    }
    cum += atomic_load(&h->bucket[WEB_NBUCKETS]);
    buf_addf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
    buf_addf(b, "%s_sum %.6f\n%s_count %llu\n", name, (double)atomic_load(&h->sum_us) / 1e6, name,
             (unsigned long long)atomic_load(&h->count));
}

/* Scheduler counters: known names get Prometheus names and types; others are gauges. */
static void sched_metrics(struct buf *b, json_t *stats)
{
    static const char *const map[][4] = {
        { "runs_started", "weir_scheduler_runs_started_total", "counter", "runs started" },
        { "runs_finished", "weir_scheduler_runs_finished_total", "counter", "runs finished" },
        { "tis_launched", "weir_scheduler_task_instances_launched_total", "counter",
          "task tries handed to the executor" },
        { "loop_passes", "weir_scheduler_loop_passes_total", "counter", "scheduling passes" },
        { "last_pass_seconds", "weir_scheduler_loop_duration_seconds", "gauge",
          "duration of the last scheduling pass" },
        { "adopted", "weir_scheduler_adopted_task_instances", "gauge",
          "running tries adopted at start-up" },
        { "executor_slots_free", "weir_executor_open_slots", "gauge", "free executor slots" },
        { "executor_slots_used", "weir_executor_running_tasks", "gauge", "executor slots in use" },
        { "executor_parallelism", "weir_executor_parallelism", "gauge", "executor slots" },
    };
    const char *k;
    json_t *v;
    json_object_foreach(stats, k, v) {
        if (!json_is_number(v))
            continue;
        const char *name = NULL, *type = "gauge", *help = "scheduler statistic";
        for (size_t i = 0; i < WEIR_ARRAY_LEN(map); i++)
            if (strcmp(map[i][0], k) == 0) {
                name = map[i][1];
                type = map[i][2];
                help = map[i][3];
            }
        char gen[128];
        if (!name) {
            snprintf(gen, sizeof gen, "weir_scheduler_%s", k);
            for (char *p = gen; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
                    *p = '_';
            name = gen;
        }
        buf_addf(b, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name,
                 json_number_value(v));
    }
}

int web__metrics(struct req *r)
{
    struct web *w = r->w;
    struct weir_err err = { 0 };
    struct store *st = web__store(r, &err);
    if (!st)
        return web__fail(r, -WEIR_EUNAVAIL, &err);
    struct buf b;
    buf_init(&b, 0);
    buf_adds(&b, "# HELP weir_info weir build\n# TYPE weir_info gauge\n");
    buf_addf(&b, "weir_info{version=\"%s\"} 1\n", WEIR_VERSION);
    buf_addf(&b,
             "# HELP weir_web_start_time_seconds start of this web server\n"
             "# TYPE weir_web_start_time_seconds gauge\nweir_web_start_time_seconds %lld\n",
             (long long)(w->started_at / TS_US_PER_SEC));

    buf_adds(&b, "# HELP weir_task_instances task instances by state\n"
                 "# TYPE weir_task_instances gauge\n");
    int64_t depth = 0;
    for (int s = 0; s < TI__COUNT; s++) {
        struct store_ti_filter f = { .state_mask = 1 << s, .limit = 1 };
        struct store_ti_list l = { 0 };
        int rc = STORE(r, store_ti_list(st, &f, &l, &err));
        if (rc < 0) {
            buf_release(&b);
            return web__fail(r, rc, &err);
        }
        buf_addf(&b, "weir_task_instances{state=\"%s\"} %zu\n",
                 s == TI_NONE ? "none" : store_ti_state_name((enum store_ti_state)s), l.total);
        if (s == TI_SCHEDULED || s == TI_QUEUED)
            depth += (int64_t)l.total;
        store_ti_list_release(&l);
    }
    buf_addf(&b,
             "# HELP weir_queue_depth task instances scheduled or queued, waiting for a "
             "slot\n# TYPE weir_queue_depth gauge\nweir_queue_depth %lld\n",
             (long long)depth);
    buf_adds(&b, "# HELP weir_dag_runs runs by state\n# TYPE weir_dag_runs gauge\n");
    for (int s = RUN_QUEUED; s <= RUN_FAILED; s++) {
        struct store_run_filter f;
        store_run_filter_init(&f);
        f.state_mask = 1 << s;
        f.limit = 1;
        struct store_run_list l = { 0 };
        int rc = STORE(r, store_run_list(st, &f, &l, &err));
        if (rc < 0) {
            buf_release(&b);
            return web__fail(r, rc, &err);
        }
        buf_addf(&b, "weir_dag_runs{state=\"%s\"} %zu\n",
                 store_run_state_name((enum store_run_state)s), l.total);
        store_run_list_release(&l);
    }

    json_t *stats = w->stats ? w->stats(w->stats_ud) : NULL;
    if (stats)
        sched_metrics(&b, stats);
    json_decref(stats);

    buf_adds(&b, "# HELP weir_http_requests_total HTTP responses by status code\n"
                 "# TYPE weir_http_requests_total counter\n");
    for (int s = 100; s < WEB_NSTATUS; s++) {
        uint64_t n = atomic_load(&w->status_count[s]);
        if (n)
            buf_addf(&b, "weir_http_requests_total{code=\"%d\"} %llu\n", s, (unsigned long long)n);
    }
    hist(&b, "weir_http_request_duration_seconds", "time to answer HTTP requests", &w->req_hist);
    hist(&b, "weir_store_query_duration_seconds", "time of store calls made by the web server",
         &w->store_hist);
    const char *h[] = { "Cache-Control", "no-store", NULL };
    int rc = web__send(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.s, b.len, h);
    buf_release(&b);
    return rc;
}
