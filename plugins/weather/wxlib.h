/* plugins/weather/wxlib.h - the pure parts of the weather plugin, kept apart so unit tests
 * drive them without HTTP: the places CSV, the Open-Meteo request URL, checking a
 * response and flattening it into rows (place x hour).
 *
 * Open-Meteo (https://open-meteo.com/en/docs): GET /v1/forecast?latitude=a,b&longitude=
 * a,b&hourly=v1,v2&timezone=UTC answers one object per place, or an array of them when
 * several places are asked for; each has hourly.time and one array per variable. Errors
 * are HTTP 400 with {"error":true,"reason":"..."}. */
#ifndef WEIR_PLUGINS_WXLIB_H
#define WEIR_PLUGINS_WXLIB_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "ingest.h"

#define WX_MAX_PLACES 10000
#define WX_MAX_CSV    (16u << 20)
#define WX_MAX_VARS   64

struct wx_place {
    char *name;
    double lat, lon;
};

struct wx_places {
    struct wx_place *v;
    size_t n;
};

/* Parses CSV text (RFC 4180: quoted fields, "" escapes, CRLF, an optional UTF-8 BOM) whose
 * header names the columns name, latitude and longitude (any order, any case; other
 * columns are ignored). Blank lines are skipped. Returns 0 and fills `out` (release with
 * wx_places_release), or -1 with err naming the line. */
int wx_places_parse(const char *text, size_t n, struct wx_places *out, struct ing_err *err);

/* Reads and parses the CSV file at `path` (at most WX_MAX_CSV bytes). */
int wx_places_load(const char *path, struct wx_places *out, struct ing_err *err);

void wx_places_release(struct wx_places *p);

/* Splits a comma-separated variable list (or takes a JSON array of strings) into `vars`
 * (pointers into the new `storage` array, which the caller json_decrefs). Names must be
 * [a-z0-9_]+. Returns the count (>= 1) or -1 with err. */
int wx_vars_parse(json_t *spec, const char **vars, size_t max, json_t **storage,
                  struct ing_err *err);

struct wx_query {
    const char *const *vars;
    size_t n_vars;
    const char *timezone; /* NULL or "": UTC */
    int forecast_days;    /* 0: the API's default */
    int past_days;        /* 0: none */
};

/* The request URL for places[from .. from+count) under `base` (no trailing '/').
 * Returns a malloc'd string or NULL (out of memory). */
char *wx_url(const char *base, const struct wx_places *pl, size_t from, size_t count,
             const struct wx_query *q);

enum wx_check {
    WX_OK = 0,
    WX_EAPI = -1,   /* {"error":true,"reason":...}: the request itself is wrong */
    WX_EPARSE = -2, /* not JSON (a truncated body): worth another try */
    WX_ESHAPE = -3, /* JSON, but not the expected answer (count, variables, lengths) */
};

/* Checks a response body for `count` places and the query's variables. On WX_OK *out is
 * a new reference to an array of `count` objects (a single object is wrapped). Otherwise
 * returns a WX_E* code with err filled (for WX_EAPI, Open-Meteo's reason). */
int wx_response_check(const char *body, size_t n, size_t count, const struct wx_query *q,
                      json_t **out, struct ing_err *err);

/* Appends one NDJSON row per hour of `resp` (one checked element) for `place`:
 * {"name","latitude","longitude","time", one key per variable}. Returns the number of
 * rows, or -1 when out of memory. */
long wx_rows(const struct wx_place *place, json_t *resp, const struct wx_query *q,
             struct ing_buf *out);

#endif
