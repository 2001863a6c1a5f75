/* scheduler/doc.c - helpers over the canonical DAG doc (docs/architecture.md#dag-doc). */
#include "scheduler/scheduler.h"

#include <string.h>

json_t *sched_doc_task(json_t *doc, const char *task_id)
{
    json_t *tasks = json_object_get(doc, "tasks");
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t) {
        const char *id = json_string_value(json_object_get(t, "task_id"));
        if (id && strcmp(id, task_id) == 0)
            return t;
    }
    return NULL;
}
