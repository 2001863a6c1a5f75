/* tests/unit/plugins_fixtures/old_size.c - a plugin built against ABI 1 before `flags` was
 * appended to struct weir_plugin: its `size` ends before the field. The host must load it
 * and must not read `flags` (set here only to show it is ignored). */
#include <stddef.h>

#include "weir/plugin.h"

static int noop_run(struct weir_task_ctx *ctx, const struct weir_host *host, json_t *params)
{
    (void)ctx;
    (void)host;
    (void)params;
    return WEIR_TASK_SUCCESS;
}

static const struct weir_operator ops[] = {
    { .name = "noop", .summary = "does nothing", .params_schema = "{}", .run = noop_run },
};

static const struct weir_plugin plugin = {
    .abi = WEIR_PLUGIN_ABI,
    .size = offsetof(struct weir_plugin, flags),
    .name = "fix_old",
    .version = "0.1",
    .summary = "built before flags",
    .n_operators = 1,
    .operators = ops,
    .flags = WEIR_PLUGIN_REUSABLE,
};

const struct weir_plugin *weir_plugin_init(const struct weir_host *host)
{
    (void)host;
    return &plugin;
}
