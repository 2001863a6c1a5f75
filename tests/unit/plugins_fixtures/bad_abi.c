/* tests/unit/plugins_fixtures/bad_abi.c - a plugin built for a future ABI (2): the host
 * must refuse it, naming the file and both versions. */
#include "weir/plugin.h"

static const struct weir_plugin plugin = {
    .abi = 2,
    .size = sizeof(struct weir_plugin),
    .name = "future",
    .version = "9.0",
    .summary = "from the future",
};

const struct weir_plugin *weir_plugin_init(const struct weir_host *host)
{
    (void)host;
    return &plugin;
}
