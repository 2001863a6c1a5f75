/* tests/unit/plugins_fixtures/no_symbol.c - a shared object without weir_plugin_init. */
#include "weir/plugin.h"

WEIR_PLUGIN_EXPORT int not_a_plugin(void);

int not_a_plugin(void)
{
    return 42;
}
