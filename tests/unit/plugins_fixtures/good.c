/* tests/unit/plugins_fixtures/good.c - a well-formed test plugin "fixture" with two
 * operators: "echo" pushes its `msg` parameter as an XCom and logs it; "block" sleeps `ms`
 * milliseconds without calling the host at all (an operator stuck in a long library call),
 * then logs once. */
#include <string.h>
#include <time.h>

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

static int block_run(struct weir_task_ctx *ctx, const struct weir_host *host, json_t *params)
{
    json_int_t ms = json_integer_value(json_object_get(params, "ms"));
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
    host->log(ctx, WEIR_LOG_INFO, "blocked for %lld ms", (long long)ms);
    return WEIR_TASK_SUCCESS;
}

static const struct weir_operator ops[] = {
    { .name = "echo",
      .summary = "echo a message",
      .params_schema = "{\"msg\": {\"type\": \"string\", \"required\": true},"
                       " \"times\": {\"type\": \"integer\", \"default\": 1}}",
      .run = echo_run },
    { .name = "block",
      .summary = "sleep without calling the host",
      .params_schema = "{\"ms\": {\"type\": \"integer\", \"required\": true}}",
      .run = block_run },
};

static const struct weir_plugin plugin = {
    .abi = WEIR_PLUGIN_ABI,
    .size = sizeof(struct weir_plugin),
    .name = "fixture",
    .version = "0.1",
    .summary = "test fixture",
    .n_operators = 2,
    .operators = ops,
};

const struct weir_plugin *weir_plugin_init(const struct weir_host *host)
{
    (void)host;
    return &plugin;
}
