/* tests/unit/plugins_fixtures/good.c - a well-formed test plugin "fixture" with one
 * operator "echo" that pushes its `msg` parameter as an XCom and logs it. */
#include <string.h>

#include "weir/plugin.h"

static int echo_run(struct weir_task_ctx *ctx, const struct weir_host *host, json_t *params)
{
    const char *msg = json_string_value(json_object_get(params, "msg"));
    host->log(ctx, WEIR_LOG_INFO, "echo: %s", msg);
    if (strcmp(msg, "fail") == 0)
        return host->fail(ctx, "asked to fail");
    json_t *v = json_string(msg);
    int rc = host->xcom_push(ctx, "msg", v);
    json_decref(v);
    return rc < 0 ? WEIR_TASK_FAILED : WEIR_TASK_SUCCESS;
}

static const struct weir_operator ops[] = {
    { .name = "echo",
      .summary = "echo a message",
      .params_schema = "{\"msg\": {\"type\": \"string\", \"required\": true},"
                       " \"times\": {\"type\": \"integer\", \"default\": 1}}",
      .run = echo_run },
};

static const struct weir_plugin plugin = {
    .abi = WEIR_PLUGIN_ABI,
    .size = sizeof(struct weir_plugin),
    .name = "fixture",
    .version = "0.1",
    .summary = "test fixture",
    .n_operators = 1,
    .operators = ops,
};

const struct weir_plugin *weir_plugin_init(const struct weir_host *host)
{
    (void)host;
    return &plugin;
}
