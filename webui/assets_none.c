/* webui/assets_none.c - the empty asset table, built when webui/assets/assets.cmake does not
 * exist (no UI assets generated yet): the server then serves only its built-in login page. */
#include "webui/webui.h"

const struct web_asset *web_assets(size_t *n)
{
    *n = 0;
    return NULL;
}
