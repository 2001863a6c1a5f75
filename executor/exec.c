/* executor/exec.c - executor operations common to every kind (dispatch on the kind). */
#include "executor/executor.h"

#include "executor/executor_int.h"

int exec_launch(struct exec *ex, const struct exec_task *t, struct weir_err *err)
{
    return ex->ops->launch(ex, t, err);
}

int exec_slots_free(const struct exec *ex)
{
    return ex->ops->slots_free(ex);
}

int exec_running(const struct exec *ex)
{
    return ex->ops->running(ex);
}

bool exec_is_running(const struct exec *ex, const char *dag_id, const char *run_id,
                     const char *task_id, int try_number)
{
    return ex->ops->is_running(ex, dag_id, run_id, task_id, try_number);
}

void exec_close(struct exec *ex, bool kill_running)
{
    if (ex)
        ex->ops->close(ex, kill_running);
}
