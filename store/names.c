/* store/names.c - the state and run-type names as Airflow spells them, both ways. */
#include "store/store.h"

#include <string.h>

#include "core/err.h"

static const char *const run_states[] = {"queued", "running", "success", "failed"};
static const char *const run_types[] = {"scheduled", "manual", "backfill"};
static const char *const ti_states[] = {"none",   "scheduled",  "queued",
                                        "running", "success",   "failed",
                                        "up_for_retry", "upstream_failed", "skipped"};

static int lookup(const char *const *names, int n, const char *s)
{
    for (int i = 0; s && i < n; i++)
        if (strcmp(names[i], s) == 0)
            return i;
    return -1;
}

const char *store_run_state_name(enum store_run_state s)
{
    return (unsigned)s < 4 ? run_states[s] : "unknown";
}

int store_run_state_parse(const char *s, enum store_run_state *out)
{
    int i = lookup(run_states, 4, s);
    if (i < 0)
        return -WEIR_EINVAL;
    *out = (enum store_run_state)i;
    return 0;
}

const char *store_run_type_name(enum store_run_type t)
{
    return (unsigned)t < 3 ? run_types[t] : "unknown";
}

int store_run_type_parse(const char *s, enum store_run_type *out)
{
    int i = lookup(run_types, 3, s);
    if (i < 0)
        return -WEIR_EINVAL;
    *out = (enum store_run_type)i;
    return 0;
}

const char *store_ti_state_name(enum store_ti_state s)
{
    return (unsigned)s < TI__COUNT ? ti_states[s] : "unknown";
}

int store_ti_state_parse(const char *s, enum store_ti_state *out)
{
    int i = lookup(ti_states, TI__COUNT, s);
    if (i < 0)
        return -WEIR_EINVAL;
    *out = (enum store_ti_state)i;
    return 0;
}

bool store_ti_state_finished(enum store_ti_state s)
{
    return s == TI_SUCCESS || s == TI_FAILED || s == TI_SKIPPED || s == TI_UPSTREAM_FAILED;
}
