/* tests/unit/plugins_fixtures/null_init.c - a plugin whose init refuses the host. */
#include "weir/plugin.h"

const struct weir_plugin *weir_plugin_init(const struct weir_host *host)
{
    (void)host;
    return NULL;
}
