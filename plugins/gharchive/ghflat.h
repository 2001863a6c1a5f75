/* plugins/gharchive/ghflat.h - GH Archive events, streamed: gzip bytes in, flattened
 * NDJSON rows out, with memory bounded by the longest line whatever the file size.
 *
 * A row is one JSON object per line with the columns id, type, actor_id, actor_login,
 * repo_id, repo_name, org_login, created_at, public, payload: each the event's value at
 * that path (null when absent), payload as its JSON text in a string.
 *
 * Each line goes through a targeted single-pass extractor that validates the whole line
 * as JSON (strings, escapes, surrogates, UTF-8, numbers, nesting) while it picks out the
 * fields and copies the original bytes. Lines it cannot handle exactly (a key written with
 * escapes, a type filter on an escaped type) go to the jansson path, which is also the
 * reference the unit tests compare it with. A line that is not JSON is a bad line. */
#ifndef WEIR_PLUGINS_GHFLAT_H
#define WEIR_PLUGINS_GHFLAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zlib.h>

#define GHF_MAX_LINE_DEFAULT (64u << 20) /* GH Archive lines are KBs; 64 MiB is absurd */

/* Receives output bytes (whole rows); returns 0, or non-zero to stop with an error. */
typedef int (*ghf_write_fn)(void *ud, const char *data, size_t len);

/* A growable byte buffer with a hard maximum (curl's dynbuf): appends past `max` fail. */
struct ghf_buf {
    char *p;
    size_t len, cap, max;
};

struct ghf_stats {
    uint64_t lines;     /* non-empty lines seen */
    uint64_t rows;      /* rows written (after the type filter) */
    uint64_t filtered;  /* valid events dropped by the type filter */
    uint64_t bad;       /* lines that were not a JSON object */
    uint64_t slow;      /* lines that took the jansson path */
    uint64_t bytes_in;  /* compressed bytes fed */
    uint64_t bytes_out; /* decompressed bytes */
};

/* The streaming flattener. Fields are private except `stats` and `err`. */
struct ghf {
    z_stream zs;
    bool z_live; /* inflateInit2 done */
    bool z_end;  /* the last gzip member ended and no bytes followed (yet) */
    unsigned char *zout;
    size_t zout_cap;
    struct ghf_buf carry; /* the partial line between inflate outputs */
    struct ghf_buf out;   /* rows waiting for `write` */
    struct ghf_buf row;   /* scratch for one row */
    size_t max_line;
    uint64_t max_bad;         /* bad lines tolerated before failing */
    const char *const *types; /* filter (borrowed), NULL: every type */
    size_t n_types;
    ghf_write_fn write;
    void *ud;
    struct ghf_stats stats;
    char err[256];
};

/* Prepares `g`. `types` (borrowed for g's lifetime; NULL or n_types 0 for all) filters by
 * event type. `max_line` 0 means GHF_MAX_LINE_DEFAULT. Returns 0, or -1 (g->err). */
int ghf_init(struct ghf *g, const char *const *types, size_t n_types, size_t max_line,
             uint64_t max_bad, ghf_write_fn write, void *ud);

/* Feeds gzip bytes (one or more concatenated members, as gzip itself accepts). Every
 * complete line is flattened and the rows handed to `write` in large chunks. Returns 0,
 * or -1 with g->err set (corrupt gzip, a line over max_line, too many bad lines, write
 * failed). */
int ghf_feed_gz(struct ghf *g, const void *data, size_t n);

/* Feeds already decompressed NDJSON bytes (used by tests and by ghf_feed_gz). */
int ghf_feed_text(struct ghf *g, const char *data, size_t n);

/* Ends the stream: fails when the gzip data stopped inside a member (a truncated
 * download), flattens a last line without a newline and flushes rows to `write`.
 * `gz` says whether the input came through ghf_feed_gz. Returns 0 or -1 (g->err). */
int ghf_finish(struct ghf *g, bool gz);

/* Starts over for a new input (a retried download), keeping the settings; stats reset. */
int ghf_reset(struct ghf *g);

/* Frees everything `g` holds. Safe on a zeroed or released struct. */
void ghf_release(struct ghf *g);

/* Flattens one line into `out` (appending the row and '\n'). Returns 1 when a row was
 * added, 0 when the type filter dropped the event, -1 when the line is not a JSON
 * object. `slow` (may be NULL) tells whether the jansson path was taken. */
int ghf_flatten_line(const char *line, size_t n, const char *const *types, size_t n_types,
                     struct ghf_buf *out, bool *slow);

/* The reference: the same row built with jansson (json_loadb, json_dumps). Same
 * return values as ghf_flatten_line. Rows are equal as JSON, not byte for byte. */
int ghf_flatten_jansson(const char *line, size_t n, const char *const *types, size_t n_types,
                        struct ghf_buf *out);

/* Appends to a buffer; -1 when it would exceed b->max (0: no limit) or memory runs out. */
int ghf_buf_add(struct ghf_buf *b, const void *p, size_t n);
void ghf_buf_release(struct ghf_buf *b);

#endif
