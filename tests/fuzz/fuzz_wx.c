/* tests/fuzz/fuzz_wx.c - fuzz target for the weather plugin's parsers (plugins/weather/
 * wxlib.c): the places CSV, and the same bytes as an Open-Meteo response checked and
 * flattened into rows. Seeds: corpus/wx (the Dutch cities, CSV edge cases, responses). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wxlib.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wx_places pl;
    struct ing_err err;
    if (wx_places_parse((const char *)data, size, &pl, &err) == 0) {
        if (pl.n == 0 || !pl.v[0].name)
            __builtin_trap();
        const char *vars[] = { "t" };
        struct wx_query q = { vars, 1, NULL, 0, 0 };
        char *u = wx_url("http://h", &pl, 0, pl.n < 5 ? pl.n : 5, &q);
        free(u);
        wx_places_release(&pl);
    }
    const char *vars[] = { "temperature_2m", "t" };
    for (size_t count = 1; count <= 2; count++) {
        struct wx_query q = { vars, 2, NULL, 0, 0 };
        json_t *resp = NULL;
        if (wx_response_check((const char *)data, size, count, &q, &resp, &err) == WX_OK) {
            struct wx_place p = { "x", 1, 2 };
            struct ing_buf out = { 0 };
            for (size_t i = 0; i < count; i++)
                wx_rows(&p, json_array_get(resp, i), &q, &out);
            ing_buf_release(&out);
        } else if (resp) {
            __builtin_trap(); /* failures leave no result */
        }
        json_decref(resp);
    }
    return 0;
}
