/* tests/fuzz/fuzz_webbody.c - libFuzzer target for REST request bodies: web_parse_body
 * (webui/webui.h), the size, UTF-8, depth, JSON and object checks every API body passes.
 * An accepted body must be an object that re-serializes and parses back equal; any crash,
 * sanitizer report or abort() is a bug. Build with clang -fsanitize=fuzzer,address,undefined
 * (-dict=fuzz/webbody.dict), or link tests/fuzz/replay_main.c to replay the corpus
 * (ctest fuzz.webbody). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "webui/webui.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct weir_err err = { 0 };
    json_t *v = NULL;
    int rc = web_parse_body((const char *)data, size, 1u << 20, &v, &err);
    if (rc < 0) {
        if (v || (rc != -WEIR_EINVAL && rc != -WEIR_ETOOBIG) || !err.msg[0])
            abort();
        return 0;
    }
    if (!json_is_object(v))
        abort();
    char *s = json_dumps(v, JSON_COMPACT);
    if (!s)
        abort();
    json_t *back = NULL;
    if (web_parse_body(s, strlen(s), 1u << 20, &back, &err) != 0 || !json_equal(v, back))
        abort();
    free(s);
    json_decref(back);
    json_decref(v);
    return 0;
}
