/* tests/unit/plugins_fixtures/dup.c - a second plugin named "fixture" (a duplicate). */
#include "weir/plugin.h"

static const struct weir_plugin plugin = {
    .abi = WEIR_PLUGIN_ABI,
    .size = sizeof(struct weir_plugin),
    .name = "fixture",
    .version = "0.2",
    .summary = "duplicate name",
};

const struct weir_plugin *weir_plugin_init(const struct weir_host *host)
{
    (void)host;
    return &plugin;
}
