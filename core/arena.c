/* core/arena.c - bump allocator over a list of blocks, with cleanups and a byte limit. */
#include "core/arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"

#define ARENA_BLOCK 8192
#define ARENA_DEFAULT_LIMIT ((size_t)256 << 20)

struct block {
    struct block *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
};

struct cleanup {
    struct cleanup *next;
    arena_cleanup_fn fn;
    void *p;
};

struct arena {
    struct block *head;
    struct cleanup *cleanups;
    size_t limit, used;
};

struct arena *arena_new(size_t limit)
{
    struct arena *a = xcalloc(1, sizeof *a);
    a->limit = limit ? limit : ARENA_DEFAULT_LIMIT;
    return a;
}

static void run_cleanups(struct arena *a)
{
    while (a->cleanups) {
        struct cleanup *c = a->cleanups;
        a->cleanups = c->next;
        c->fn(c->p);
    }
}

void arena_free(struct arena *a)
{
    if (!a)
        return;
    run_cleanups(a);
    for (struct block *b = a->head, *n; b; b = n) {
        n = b->next;
        free(b);
    }
    free(a);
}

void arena_reset(struct arena *a)
{
    run_cleanups(a);
    struct block *keep = NULL;
    for (struct block *b = a->head, *n; b; b = n) {
        n = b->next;
        if (!n && b->size == ARENA_BLOCK) {
            keep = b;
            break;
        }
        free(b);
    }
    a->head = keep;
    if (keep) {
        keep->used = 0;
        keep->next = NULL;
    }
    a->used = 0;
}

void *arena_alloc(struct arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    if (n > a->limit - a->used || a->used > a->limit)
        return NULL;
    struct block *b = a->head;
    if (!b || b->size - b->used < n) {
        size_t size = n > ARENA_BLOCK / 4 ? n : ARENA_BLOCK;
        struct block *nb = xmalloc(sizeof *nb + size);
        nb->size = size;
        nb->used = 0;
        if (size == ARENA_BLOCK || !b) {
            nb->next = b;
            a->head = nb;
        } else {
            /* Big one-off allocation: keep the current block at the head for small ones. */
            nb->next = b->next;
            b->next = nb;
        }
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += n;
    a->used += n;
    return p;
}

void *arena_calloc(struct arena *a, size_t nmemb, size_t size)
{
    if (size && nmemb > SIZE_MAX / size)
        return NULL;
    void *p = arena_alloc(a, nmemb * size);
    if (p)
        memset(p, 0, nmemb * size);
    return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
    if (!s)
        return NULL;
    char *p = arena_alloc(a, n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

char *arena_strdup(struct arena *a, const char *s)
{
    return s ? arena_strndup(a, s, strlen(s)) : NULL;
}

char *arena_printf(struct arena *a, const char *fmt, ...)
{
    va_list ap, cp;
    va_start(ap, fmt);
    va_copy(cp, ap);
    int n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    char *p = n < 0 ? NULL : arena_alloc(a, (size_t)n + 1);
    if (p)
        vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

int arena_on_reset(struct arena *a, arena_cleanup_fn fn, void *p)
{
    struct cleanup *c = arena_alloc(a, sizeof *c);
    if (!c)
        return -WEIR_ETOOBIG;
    c->fn = fn;
    c->p = p;
    c->next = a->cleanups;
    a->cleanups = c;
    return 0;
}

size_t arena_used(const struct arena *a)
{
    return a->used;
}
