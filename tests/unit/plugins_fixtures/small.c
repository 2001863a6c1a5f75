/* tests/unit/plugins_fixtures/small.c - a descriptor whose `size` is smaller than ABI 1
 * ever was: the host must refuse it, naming both sizes. */
#include <stddef.h>

#include "weir/plugin.h"

static const struct weir_plugin plugin = {
    .abi = WEIR_PLUGIN_ABI,
    .size = offsetof(struct weir_plugin, n_operators),
    .name = "fix_small",
    .version = "0.1",
    .summary = "too small",
};

const struct weir_plugin *weir_plugin_init(const struct weir_host *host)
{
    (void)host;
    return &plugin;
}
