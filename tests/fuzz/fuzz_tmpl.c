/* tests/fuzz/fuzz_tmpl.c - libFuzzer target for the template engine (core/tmpl.h).
 * The input is a template; it is checked, then rendered against a fixed set of variables
 * and a host function, with a small output limit. Any crash, leak or sanitizer report is a
 * bug; errors are expected. Build with clang -fsanitize=fuzzer,address,undefined, or link
 * with tests/fuzz/replay_main.c to replay the corpus (ctest fuzz.tmpl). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/tmpl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_t *fuzz_call(void *ud, const char *name, json_t *args, struct weir_err *err)
{
    (void)ud;
    if (!strcmp(name, "var") && json_is_string(json_array_get(args, 0)))
        return json_sprintf("var:%s", json_string_value(json_array_get(args, 0)));
    if (!strcmp(name, "xcom"))
        return json_pack("{s:s, s:[i, f, b, n]}", "key", "s3://raw/x.json", "list", 1, 2.5, 1);
    if (!strcmp(name, "echo"))
        return json_deep_copy(args);
    err_set(err, WEIR_ENOTFOUND, "unknown function '%s'", name);
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    char *src = malloc(size + 1);
    if (!src)
        return 0;
    memcpy(src, data, size);
    src[size] = '\0';

    static const char vars_json[] =
        "{\"ds\": \"2026-01-05\", \"ds_nodash\": \"20260105\", \"ts\": "
        "\"2026-01-05T00:00:00+00:00\", \"run_id\": \"scheduled__2026-01-05\", "
        "\"dag\": {\"id\": \"weather\"}, \"task\": {\"id\": \"fetch\"}, "
        "\"params\": {\"city\": \"Utrecht\", \"n\": 3, \"f\": 1.5, \"xs\": [3, 1, 2], "
        "\"m\": {\"a\": 1, \"b\": [true, false, null]}, \"empty\": \"\"}, "
        "\"conf\": {}, \"big\": 9223372036854775807}";
    json_t *vars = json_loads(vars_json, 0, NULL);
    struct tmpl_env env = { .vars = vars, .call = fuzz_call, .ud = NULL, .max_output = 1 << 16 };
    struct weir_err err;
    char *out = NULL;

    int crc = tmpl_check(src, &err);
    int rrc = tmpl_render(src, &env, &out, &err);
    /* A template that renders must also pass the syntax check, and vice versa for
     * syntax errors (render reports them first). */
    if (rrc == 0 && crc != 0)
        abort();
    if (rrc == 0 && !out)
        abort();
    if (rrc != 0 && (out || err.msg[0] == '\0'))
        abort();
    free(out);

    /* The same text as a string inside a JSON value. */
    json_t *doc = json_object(), *list = json_array();
    json_array_append_new(list, json_stringn_nocheck(src, size));
    json_object_set_new(doc, "with", list);
    {
        json_t *r = NULL;
        int jrc = tmpl_render_json(doc, &env, &r, &err);
        if (jrc == 0 && !r)
            abort();
        json_decref(r);
        json_decref(doc);
    }
    json_decref(vars);
    free(src);
    return 0;
}
