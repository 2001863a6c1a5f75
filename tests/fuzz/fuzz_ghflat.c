/* tests/fuzz/fuzz_ghflat.c - fuzz target for the gharchive flattener (plugins/gharchive/
 * ghflat.c). Each input is (1) one line for the fast extractor and the jansson reference,
 * which must agree on whether it is an event and on the row, as JSON; (2) NDJSON text
 * streamed in uneven chunks; (3) gzip bytes for the inflate path. Any disagreement traps.
 * Seeds: corpus/ghflat (real sample events, edge cases, a small .gz). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ghflat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_t *row_json(const struct ghf_buf *b)
{
    json_t *r = json_loadb(b->p, b->len ? b->len - 1 : 0, JSON_ALLOW_NUL, NULL);
    json_t *p = json_object_get(r, "payload");
    if (json_is_string(p)) {
        json_t *pj = json_loadb(json_string_value(p), json_string_length(p),
                                JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        if (!pj)
            __builtin_trap(); /* the payload text must be JSON */
        json_object_set_new(r, "payload", pj);
    }
    return r;
}

static int sink(void *ud, const char *p, size_t n)
{
    (void)p;
    *(size_t *)ud += n;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *line = (const char *)data;
    static const char *const types[] = { "PushEvent", "WatchEvent" };
    for (int filtered = 0; filtered < 2; filtered++) {
        struct ghf_buf f = { 0 }, j = { 0 };
        size_t nt = filtered ? 2 : 0;
        int rf = ghf_flatten_line(line, size, types, nt, &f, NULL);
        int rj = ghf_flatten_jansson(line, size, types, nt, &j);
        if (rf != rj)
            __builtin_trap();
        if (rf == 1) {
            json_t *a = row_json(&f), *b = row_json(&j);
            if (!a || !b || !json_equal(a, b))
                __builtin_trap();
            json_decref(a);
            json_decref(b);
        }
        ghf_buf_release(&f);
        ghf_buf_release(&j);
    }
    size_t out = 0;
    struct ghf g;
    if (ghf_init(&g, NULL, 0, 4096, UINT64_MAX, sink, &out) == 0) {
        size_t off = 0, step = 1;
        while (off < size) {
            size_t n = size - off < step ? size - off : step;
            if (ghf_feed_text(&g, line + off, n) < 0)
                break;
            off += n;
            step = step * 3 + 1;
        }
        ghf_finish(&g, false);
    }
    ghf_release(&g);
    if (ghf_init(&g, NULL, 0, 4096, UINT64_MAX, sink, &out) == 0) {
        if (ghf_feed_gz(&g, data, size) == 0)
            ghf_finish(&g, true);
    }
    ghf_release(&g);
    return 0;
}
