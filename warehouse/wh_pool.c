/* warehouse/wh_pool.c - the warehouse's fixed worker thread pool: a database owns one pool of
 * (threads - 1) workers, started on first use; wh__pool_run hands out task indexes from an
 * atomic counter to the workers and the calling thread and returns once every task is done.
 * Tasks never touch the catalog; the ones that allocate query memory do it through a per-task
 * copy of the query context that shares the arena under a mutex (wh__par_rows). */
#include "warehouse/wh_int.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/mem.h"

struct wh_pool {
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    int nthreads; /* workers started */
    pthread_t *tids;
    bool stop;
    uint64_t gen; /* bumped for every run */
    /* The current run. */
    wh_task_fn fn;
    void *arg;
    size_t ntasks;
    atomic_size_t next;
    int active; /* workers still inside the current run */
};

static void run_tasks(struct wh_pool *p)
{
    for (;;) {
        size_t i = atomic_fetch_add(&p->next, 1);
        if (i >= p->ntasks)
            break;
        p->fn(p->arg, i);
    }
}

static void *worker(void *arg)
{
    struct wh_pool *p = arg;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->gen == seen)
            pthread_cond_wait(&p->work, &p->mu);
        if (p->stop)
            break;
        seen = p->gen;
        pthread_mutex_unlock(&p->mu);
        run_tasks(p);
        pthread_mutex_lock(&p->mu);
        if (--p->active == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int wh__default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    if (n > WH_MAX_THREADS)
        n = WH_MAX_THREADS;
    return (int)n;
}

struct wh_pool *wh__pool_new(int threads)
{
    struct wh_pool *p = xcalloc(1, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->next, 0);
    if (threads > 1) {
        p->tids = xcalloc((size_t)threads - 1, sizeof *p->tids);
        for (int k = 0; k < threads - 1; k++) {
            if (pthread_create(&p->tids[p->nthreads], NULL, worker, p) != 0)
                break; /* run with fewer workers; the caller always takes part */
            p->nthreads++;
        }
    }
    return p;
}

void wh__pool_free(struct wh_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (int k = 0; k < p->nthreads; k++)
        pthread_join(p->tids[k], NULL);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p->tids);
    free(p);
}

int wh__pool_size(const struct wh_pool *p)
{
    return p ? p->nthreads + 1 : 1;
}

void wh__pool_run(struct wh_pool *p, size_t ntasks, wh_task_fn fn, void *arg)
{
    if (!p || p->nthreads == 0 || ntasks < 2) {
        for (size_t i = 0; i < ntasks; i++)
            fn(arg, i);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->ntasks = ntasks;
    atomic_store(&p->next, 0);
    p->active = p->nthreads;
    p->gen++;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    run_tasks(p);
    pthread_mutex_lock(&p->mu);
    while (p->active > 0)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

/* ---- row-range parallelism with query memory ---- */

struct par {
    struct wh_q *q;
    pthread_mutex_t *amu;
    size_t n, chunk;
    wh_rows_fn fn;
    void *arg;
    struct weir_err *errs; /* one per task */
    bool *failed;
};

static void par_task(void *arg, size_t i)
{
    struct par *pa = arg;
    struct wh_q sub = *pa->q;
    sub.amu = pa->amu;
    sub.err = &pa->errs[i];
    sub.worker = true;
    size_t from = i * pa->chunk, to = from + pa->chunk;
    if (to > pa->n)
        to = pa->n;
    if (setjmp(sub.jb)) {
        pa->failed[i] = true;
        return;
    }
    pa->fn(&sub, pa->arg, i, from, to);
}

size_t wh__par_chunks(struct wh_q *q, size_t n, size_t min_rows)
{
    if (q->worker || q->db->threads < 2 || n < 2 * min_rows)
        return 1;
    int th = wh__pool_size(wh__db_pool(q->db));
    if (th < 2)
        return 1;
    /* A few chunks per thread balance uneven work; chunks stay whole granules. */
    size_t k = (size_t)th * 4;
    size_t chunk = (n + k - 1) / k;
    chunk = (chunk + WH_GRANULE - 1) / WH_GRANULE * WH_GRANULE;
    if (chunk < min_rows)
        chunk = min_rows;
    return (n + chunk - 1) / chunk;
}

void wh__par_rows(struct wh_q *q, size_t n, size_t nchunks, wh_rows_fn fn, void *arg)
{
    if (nchunks <= 1) {
        fn(q, arg, 0, 0, n);
        return;
    }
    size_t chunk = (n + nchunks - 1) / nchunks;
    pthread_mutex_t amu;
    pthread_mutex_init(&amu, NULL);
    struct par pa = { .q = q, .amu = &amu, .n = n, .chunk = chunk, .fn = fn, .arg = arg };
    pa.errs = xcalloc(nchunks, sizeof *pa.errs);
    pa.failed = xcalloc(nchunks, sizeof *pa.failed);
    wh__pool_run(q->db->pool, nchunks, par_task, &pa);
    pthread_mutex_destroy(&amu);
    /* The first failing chunk's error wins, so errors are deterministic too. */
    struct weir_err e;
    int code = 0;
    for (size_t i = 0; i < nchunks && !code; i++)
        if (pa.failed[i]) {
            e = pa.errs[i];
            code = e.code ? e.code : WEIR_EINTERNAL;
        }
    free(pa.errs);
    free(pa.failed);
    if (code) {
        if (q->err)
            *q->err = e;
        longjmp(q->jb, 1);
    }
}
