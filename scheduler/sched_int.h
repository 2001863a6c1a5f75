/* scheduler/sched_int.h - declarations shared between the scheduler's own files. */
#ifndef WEIR_SCHEDULER_SCHED_INT_H
#define WEIR_SCHEDULER_SCHED_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct weir_err;
struct store;
struct tz;
struct cron;

/* Loads the DAG doc of `dag_id` at `version` (0: latest) from the store. *doc is new. */
int sched__doc_load(struct store *st, const char *dag_id, int64_t version, json_t **doc,
                    struct weir_err *err);

/* The DAG's schedule as a parsed cron and zone; returns false for manual-only DAGs. */
bool sched__doc_cron(json_t *doc, struct cron *c, const struct tz **tz);

/* A DAG doc time field ("start_date", "end_date") as microseconds, or TS_NONE. */
int64_t sched__doc_time(json_t *doc, const char *key);

/* Creates the run for schedule time `t` of `doc` (scheduled or backfill): run_id
 * "<type>__<RFC3339>", data interval from the previous fire time. -WEIR_ECONFLICT if it
 * exists. */
int sched__create_cron_run(struct store *st, json_t *doc, int64_t version, int64_t t,
                           int run_type, json_t *conf, struct weir_err *err);

/* The task ids of a doc as a new JSON array. */
json_t *sched__doc_task_ids(json_t *doc);

/* Retry delay before try `next_try` (2..) of `task` (a DAG doc task), in microseconds:
 * retry_delay, doubled per earlier retry with retry_exponential_backoff, capped by
 * max_retry_delay. */
int64_t sched__retry_delay(json_t *task, int next_try);

#endif
