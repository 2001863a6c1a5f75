/* tests/helpers/ghflat_bench.c - drives the gharchive flattener (plugins/gharchive/ghflat.c)
 * over a .json.gz file the way the plugin does (16 KiB chunks, as libcurl hands them over)
 * and prints one line of figures: events, rows, seconds (CPU and wall), events/s.
 * Used by bench/gharchive_flatten.sh and by the unit tests as a smoke run.
 *
 *   ghflat_bench FILE.json.gz [OUT.ndjson] [--types A,B] [--jansson]
 *
 * --jansson flattens every line with the jansson reference instead (for comparison). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zlib.h>

#include "ghflat.h"

#define CHUNK (16u << 10)

static int write_rows(void *ud, const char *p, size_t n)
{
    return fwrite(p, 1, n, ud) == n ? 0 : -1;
}

static double secs(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --jansson: inflate with gzread and flatten each line through the reference. */
static int run_jansson(const char *path, FILE *out, unsigned long long *rows)
{
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return -1;
    char *line = NULL;
    size_t cap = 1 << 20;
    line = malloc(cap);
    struct ghf_buf b = { 0 };
    int rc = 0;
    while (line && gzgets(gz, line, (int)cap)) {
        size_t n = strlen(line);
        if (n && line[n - 1] == '\n')
            n--;
        if (!n)
            continue;
        b.len = 0;
        if (ghf_flatten_jansson(line, n, NULL, 0, &b) == 1) {
            (*rows)++;
            fwrite(b.p, 1, b.len, out);
        } else {
            rc = -1;
        }
    }
    ghf_buf_release(&b);
    free(line);
    gzclose(gz);
    return rc;
}

int main(int argc, char **argv)
{
    const char *in = NULL, *outp = "/dev/null";
    char *types_arg = NULL;
    int jansson = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--types") == 0 && i + 1 < argc)
            types_arg = argv[++i];
        else if (strcmp(argv[i], "--jansson") == 0)
            jansson = 1;
        else if (!in)
            in = argv[i];
        else
            outp = argv[i];
    }
    if (!in) {
        fprintf(stderr, "usage: ghflat_bench FILE.json.gz [OUT] [--types A,B] [--jansson]\n");
        return 2;
    }
    const char *types[64];
    size_t nt = 0;
    for (char *t = types_arg; t && *t && nt < 64;) {
        char *comma = strchr(t, ',');
        if (comma)
            *comma = '\0';
        if (*t)
            types[nt++] = t;
        t = comma ? comma + 1 : NULL;
    }
    FILE *f = fopen(in, "rb");
    FILE *out = fopen(outp, "wb");
    if (!f || !out) {
        fprintf(stderr, "ghflat_bench: cannot open '%s' or '%s'\n", in, outp);
        return 2;
    }
    static char obuf[1 << 20];
    setvbuf(out, obuf, _IOFBF, sizeof obuf);
    double c0 = secs(CLOCK_PROCESS_CPUTIME_ID), w0 = secs(CLOCK_MONOTONIC);
    unsigned long long rows = 0, lines = 0, slow = 0;
    int rc = 0;
    if (jansson) {
        fclose(f);
        rc = run_jansson(in, out, &rows);
        lines = rows;
    } else {
        struct ghf g;
        if (ghf_init(&g, nt ? types : NULL, nt, 0, 0, write_rows, out) < 0) {
            fprintf(stderr, "ghflat_bench: %s\n", g.err);
            return 1;
        }
        static char buf[CHUNK];
        size_t n;
        while (rc == 0 && (n = fread(buf, 1, sizeof buf, f)) > 0)
            rc = ghf_feed_gz(&g, buf, n);
        if (rc == 0)
            rc = ghf_finish(&g, true);
        if (rc < 0)
            fprintf(stderr, "ghflat_bench: %s\n", g.err);
        rows = g.stats.rows;
        lines = g.stats.lines;
        slow = g.stats.slow;
        ghf_release(&g);
        fclose(f);
    }
    if (fclose(out) != 0)
        rc = -1;
    double cpu = secs(CLOCK_PROCESS_CPUTIME_ID) - c0, wall = secs(CLOCK_MONOTONIC) - w0;
    printf("events=%llu rows=%llu slow=%llu cpu_s=%.3f wall_s=%.3f events_per_s_cpu=%.0f "
           "events_per_s_wall=%.0f\n",
           lines, rows, slow, cpu, wall, cpu > 0 ? (double)lines / cpu : 0.0,
           wall > 0 ? (double)lines / wall : 0.0);
    return rc < 0 ? 1 : 0;
}
