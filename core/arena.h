/* core/arena.h - region allocator for bounded lifetimes (a DAG parse, a scheduler tick,
 * an HTTP request, a warehouse batch): many allocations, one reset. Every arena has a byte
 * limit; allocation past it returns NULL (callers fail with WEIR_ETOOBIG) rather than
 * eating RAM. Cleanups registered with arena_on_reset release non-memory resources. */
#ifndef WEIR_CORE_ARENA_H
#define WEIR_CORE_ARENA_H

#include <stddef.h>

struct arena;

typedef void (*arena_cleanup_fn)(void *p);

/* Creates an arena that may hold up to `limit` bytes (0 means 256 MiB). Never NULL. */
struct arena *arena_new(size_t limit);
/* Runs cleanups (newest first) and frees everything. NULL-safe. */
void arena_free(struct arena *a);
/* Runs cleanups and forgets all allocations, keeping the first block for reuse. */
void arena_reset(struct arena *a);
/* Returns `n` bytes aligned to 16, or NULL when the limit would be exceeded. */
void *arena_alloc(struct arena *a, size_t n);
/* Zeroed allocation; NULL on limit. */
void *arena_calloc(struct arena *a, size_t nmemb, size_t size);
/* Copies of strings into the arena; NULL on limit (or when `s` is NULL). */
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);
char *arena_printf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Registers fn(p) to run at the next reset or free. Returns 0, or -WEIR_ETOOBIG. */
int arena_on_reset(struct arena *a, arena_cleanup_fn fn, void *p);
/* Bytes currently allocated from the arena (for limits and tests). */
size_t arena_used(const struct arena *a);

#endif
