/* plugins/warehouse/whlib.h - the pure parts of the warehouse plugin, kept apart from the
 * operators so unit tests can reach them: table names, SQL quoting, input formats, where
 * the database folder is, a CSV file's header, and results as JSON for XComs.
 *
 * Plugin code: it sees weir/plugin.h, the engine's public header warehouse/warehouse.h
 * (the one host header plugins/warehouse may include, with core/err.h for the struct
 * weir_err its functions fill) and the ingest helpers (plugins/ingest/ingest.h). */
#ifndef WEIR_PLUGINS_WAREHOUSE_WHLIB_H
#define WEIR_PLUGINS_WAREHOUSE_WHLIB_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "ingest.h"

struct wh_result;

/* The column that tags every row warehouse.load writes with its load key. */
#define WHP_KEY_COLUMN "_weir_load"
/* The load ledger: one row per load (docs/pipelines.md, "warehouse.load"). */
#define WHP_LEDGER "weir.loads"

/* A table name split into schema and table, both folded to lower case as PostgreSQL does
 * with unquoted names. */
struct whp_name {
    char schema[64];
    char table[64];
};

/* Parses "table" (schema public) or "schema.table"; each part [A-Za-z_][A-Za-z0-9_]*, at
 * most 63 bytes. Returns 0, or -1 with err filled. */
int whp_parse_table(const char *s, struct whp_name *out, struct ing_err *err);

/* Appends `s` as a SQL string literal ('...' with quotes doubled) / a double-quoted
 * identifier ("..." with quotes doubled). */
void whp_add_lit(struct ing_buf *b, const char *s);
void whp_add_ident(struct ing_buf *b, const char *s);

enum whp_format {
    WHP_FMT_UNKNOWN = 0,
    WHP_FMT_CSV = 1,
    WHP_FMT_JSON = 2
};

/* The format of input `path`: `fmt` when it is "csv" or "json" (also "ndjson", "jsonl"),
 * else (fmt NULL, "" or "auto") by the name without a trailing .gz: .csv and .tsv are
 * CSV, .ndjson, .jsonl and .json are JSON; anything else is WHP_FMT_UNKNOWN. */
enum whp_format whp_format_of(const char *path, const char *fmt);

/* The database folder, first found of: `param` (the task's `path`), `conn_path` (its
 * connection's extra.path), `env_path` (WEIR_WAREHOUSE__PATH), `weir_home`/warehouse,
 * `home`/.weir/warehouse. Empty strings count as absent. Returns a malloc'd string, or
 * NULL when nothing is set. */
char *whp_db_path(const char *param, const char *conn_path, const char *env_path,
                  const char *weir_home, const char *home);

/* Reads the first record of CSV file `path` (gzip or plain; RFC 4180 quoting with `quote`,
 * fields split at `delim`) into *names (a malloc'd array of malloc'd strings, *n entries;
 * free with whp_names_free). Returns 0, or -1 with err filled (unreadable, empty, a header
 * over 1 MiB or 4096 fields). */
int whp_csv_header(const char *path, char delim, char quote, char ***names, size_t *n,
                   struct ing_err *err);
void whp_names_free(char **names, size_t n);

/* One value of a result as JSON: NULL -> null, booleans, integers, floating point numbers
 * (finite ones) as JSON numbers, everything else (text, numeric, dates, timestamps,
 * intervals) as PostgreSQL's text form. Returns a new reference, NULL on OOM. */
json_t *whp_value_json(const struct wh_result *r, size_t row, size_t col);

/* The first `max_rows` rows of `r` as an array of objects keyed by column name (a later
 * column with a repeated name wins). Returns a new reference, NULL on OOM. */
json_t *whp_rows_json(const struct wh_result *r, size_t max_rows);

#endif
