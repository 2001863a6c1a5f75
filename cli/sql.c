/* cli/sql.c - `weir sql`: runs SQL against the bundled warehouse, from -c, -f, a pipe, or an
 * interactive shell with libedit line editing and history. Output as an aligned table, CSV,
 * JSON lines or markdown; \dt, \d TABLE, \timing and \q in the shell. */
#ifdef WEIR_HAVE_WAREHOUSE
#include "cli/cli.h"

#include <editline/readline.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"
#include "warehouse/warehouse.h"

enum fmt {
    FMT_TABLE,
    FMT_CSV,
    FMT_JSONL,
    FMT_MARKDOWN
};

struct sqlcli {
    struct wh_db *db;
    enum fmt fmt;
    bool timing;
    int failures;
};

static const char *sql_usage =
    "usage: weir sql [--db DIR] [-c SQL | -f FILE] [--format table|csv|jsonl|markdown] "
    "[--timing]\n"
    "Without -c or -f, reads SQL from a pipe, or opens an interactive shell on a terminal\n"
    "(\\dt lists tables, \\d TABLE describes one, \\timing toggles timing, \\q quits).\n"
    "The database folder defaults to $WEIR_HOME/warehouse (~/.weir/warehouse).";

static bool is_right_aligned(enum wh_type t)
{
    return t != WH_T_TEXT && t != WH_T_DATE && t != WH_T_TS && t != WH_T_TSTZ && t != WH_T_BOOL &&
           t != WH_T_UNKNOWN;
}

static size_t utf8_width(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += (*s & 0xC0) != 0x80;
    return n;
}

static char *cell(struct wh_result *r, size_t i, size_t c)
{
    char buf[512];
    if (!wh_result_text(r, i, c, buf, sizeof buf)) {
        return NULL;
    }
    if (wh_result_coltype(r, c) == WH_T_TEXT) {
        const char *s = wh_result_str(r, i, c);
        return xstrdup(s ? s : "");
    }
    return xstrdup(buf);
}

static void print_table(struct wh_result *r)
{
    size_t nc = wh_result_ncols(r), nr = wh_result_nrows(r);
    size_t *w = xcalloc(nc + 1, sizeof *w);
    for (size_t c = 0; c < nc; c++)
        w[c] = utf8_width(wh_result_colname(r, c));
    for (size_t i = 0; i < nr; i++)
        for (size_t c = 0; c < nc; c++) {
            char *v = cell(r, i, c);
            size_t l = v ? utf8_width(v) : 0;
            if (l > w[c])
                w[c] = l;
            free(v);
        }
    for (size_t c = 0; c < nc; c++) {
        const char *h = wh_result_colname(r, c);
        size_t pad = w[c] - utf8_width(h);
        printf("%s %*s%s%*s ", c ? "|" : "", (int)(pad / 2), "", h, (int)(pad - pad / 2), "");
    }
    printf("\n");
    for (size_t c = 0; c < nc; c++) {
        printf("%s", c ? "+" : "");
        for (size_t k = 0; k < w[c] + 2; k++)
            putchar('-');
    }
    printf("\n");
    for (size_t i = 0; i < nr; i++) {
        for (size_t c = 0; c < nc; c++) {
            char *v = cell(r, i, c);
            const char *s = v ? v : "";
            int pad = (int)(w[c] - utf8_width(s));
            if (is_right_aligned(wh_result_coltype(r, c)))
                printf("%s %*s%s ", c ? "|" : "", pad, "", s);
            else
                printf("%s %s%*s ", c ? "|" : "", s, pad, "");
            free(v);
        }
        printf("\n");
    }
    printf("(%zu row%s)\n\n", nr, nr == 1 ? "" : "s");
    free(w);
}

static void csv_out(const char *s)
{
    if (!strpbrk(s, ",\"\n\r") && *s) {
        fputs(s, stdout);
        return;
    }
    putchar('"');
    for (; *s; s++) {
        if (*s == '"')
            putchar('"');
        putchar(*s);
    }
    putchar('"');
}

static void print_csv(struct wh_result *r)
{
    size_t nc = wh_result_ncols(r), nr = wh_result_nrows(r);
    for (size_t c = 0; c < nc; c++) {
        if (c)
            putchar(',');
        csv_out(wh_result_colname(r, c));
    }
    putchar('\n');
    for (size_t i = 0; i < nr; i++) {
        for (size_t c = 0; c < nc; c++) {
            if (c)
                putchar(',');
            char *v = cell(r, i, c);
            if (v) {
                if (*v)
                    csv_out(v);
                else
                    fputs("\"\"", stdout); /* empty string, unlike NULL */
            }
            free(v);
        }
        putchar('\n');
    }
}

static void print_jsonl(struct wh_result *r)
{
    size_t nc = wh_result_ncols(r), nr = wh_result_nrows(r);
    for (size_t i = 0; i < nr; i++) {
        json_t *o = json_object();
        for (size_t c = 0; c < nc; c++) {
            json_t *v;
            enum wh_type t = wh_result_coltype(r, c);
            if (wh_result_isnull(r, i, c))
                v = json_null();
            else if (t == WH_T_BOOL)
                v = json_boolean(wh_result_int(r, i, c));
            else if (t == WH_T_INT2 || t == WH_T_INT4 || t == WH_T_INT8)
                v = json_integer(wh_result_int(r, i, c));
            else if (t == WH_T_FLOAT4 || t == WH_T_FLOAT8 || t == WH_T_NUMERIC)
                v = json_real(wh_result_double(r, i, c));
            else {
                char *s = cell(r, i, c);
                v = json_string(s ? s : "");
                free(s);
            }
            json_object_set_new(o, wh_result_colname(r, c), v ? v : json_null());
        }
        char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
        if (s)
            puts(s);
        free(s);
        json_decref(o);
    }
}

static void md_out(const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            fputs("\\|", stdout);
        else if (*s == '\n')
            fputs("<br>", stdout);
        else
            putchar(*s);
    }
}

static void print_markdown(struct wh_result *r)
{
    size_t nc = wh_result_ncols(r), nr = wh_result_nrows(r);
    printf("|");
    for (size_t c = 0; c < nc; c++) {
        putchar(' ');
        md_out(wh_result_colname(r, c));
        printf(" |");
    }
    printf("\n|");
    for (size_t c = 0; c < nc; c++)
        printf(is_right_aligned(wh_result_coltype(r, c)) ? "---:|" : "---|");
    printf("\n");
    for (size_t i = 0; i < nr; i++) {
        printf("|");
        for (size_t c = 0; c < nc; c++) {
            char *v = cell(r, i, c);
            putchar(' ');
            md_out(v ? v : "NULL");
            printf(" |");
            free(v);
        }
        printf("\n");
    }
}

static int on_result(struct wh_result *r, double secs, void *arg)
{
    struct sqlcli *cl = arg;
    if (wh_result_ncols(r) > 0 || !strcmp(wh_result_tag(r), "SELECT")) {
        switch (cl->fmt) {
        case FMT_TABLE:
            print_table(r);
            break;
        case FMT_CSV:
            print_csv(r);
            break;
        case FMT_JSONL:
            print_jsonl(r);
            break;
        case FMT_MARKDOWN:
            print_markdown(r);
            break;
        }
    } else if (cl->fmt == FMT_TABLE && *wh_result_tag(r)) {
        const char *tag = wh_result_tag(r);
        if (!strcmp(tag, "INSERT"))
            printf("INSERT 0 %llu\n", (unsigned long long)wh_result_affected(r));
        else if (!strcmp(tag, "DELETE") || !strcmp(tag, "UPDATE") || !strcmp(tag, "COPY") ||
                 !strcmp(tag, "SELECT"))
            printf("%s %llu\n", tag, (unsigned long long)wh_result_affected(r));
        else
            printf("%s\n", tag);
    }
    if (cl->timing)
        fprintf(stderr, "Time: %.3f ms\n", secs * 1000);
    fflush(stdout);
    return 0;
}

static int code_exit(int code)
{
    switch (code) {
    case WEIR_ENOTFOUND:
        return CLI_NOTFOUND;
    case WEIR_ECONFLICT:
        return CLI_CONFLICT;
    case WEIR_EINVAL:
        return CLI_USAGE;
    default:
        return CLI_FAILED;
    }
}

static int run_sql(struct sqlcli *cl, const char *sql)
{
    struct weir_err err;
    err_clear(&err);
    int rc = wh_exec_each(cl->db, sql, on_result, cl, &err);
    if (rc < 0) {
        fprintf(stderr, "weir: %s\n", err.msg);
        cl->failures++;
        return code_exit(-rc);
    }
    return CLI_OK;
}

static void show_listing(struct sqlcli *cl, int rc, struct wh_result **rp, struct weir_err *err)
{
    struct wh_result *r = *rp;
    if (rc < 0) {
        fprintf(stderr, "weir: %s\n", err->msg);
        return;
    }
    on_result(r, 0, &(struct sqlcli){ .fmt = cl->fmt });
    wh_result_free(r);
}

/* Handles a backslash command; returns false for \q. */
static bool meta(struct sqlcli *cl, char *line)
{
    struct weir_err err;
    struct wh_result *r = NULL;
    char *arg = line + 1;
    while (*arg && *arg != ' ')
        arg++;
    while (*arg == ' ')
        *arg++ = 0;
    char *end = arg + strlen(arg);
    while (end > arg && (end[-1] == ' ' || end[-1] == ';'))
        *--end = 0;
    if (!strcmp(line, "\\q")) {
        return false;
    } else if (!strcmp(line, "\\dt")) {
        show_listing(cl, wh_tables(cl->db, &r, &err), &r, &err);
    } else if (!strcmp(line, "\\d")) {
        if (*arg)
            show_listing(cl, wh_describe(cl->db, arg, &r, &err), &r, &err);
        else
            show_listing(cl, wh_tables(cl->db, &r, &err), &r, &err);
    } else if (!strcmp(line, "\\timing")) {
        cl->timing = !cl->timing;
        printf("Timing is %s.\n", cl->timing ? "on" : "off");
    } else if (!strcmp(line, "\\?") || !strcmp(line, "\\h")) {
        printf("\\dt  list tables\n\\d T describe table T\n\\timing  toggle timing\n\\q  quit\n");
    } else {
        fprintf(stderr, "weir: invalid command \"%s\"; try \\?\n", line);
    }
    return true;
}

/* True when `s` ends a statement: a `;` outside quotes and comments at the end. */
static bool complete(const char *s)
{
    bool sq = false, dq = false, last_semi = false;
    for (const char *p = s; *p; p++) {
        if (!sq && !dq && p[0] == '-' && p[1] == '-') {
            while (*p && *p != '\n')
                p++;
            if (!*p)
                break;
            continue;
        }
        if (*p == '\'' && !dq)
            sq = !sq;
        else if (*p == '"' && !sq)
            dq = !dq;
        if (*p == ';' && !sq && !dq)
            last_semi = true;
        else if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            last_semi = false;
    }
    return last_semi && !sq && !dq;
}

/* Feeds one input line to the statement being collected; runs backslash commands and
 * complete statements. Returns false when the user quits. */
static bool feed_line(struct sqlcli *cl, struct buf *stmt, char *line, bool interactive)
{
    if (!stmt->len && line[0] == '\\') {
        if (interactive)
            add_history(line);
        return meta(cl, line);
    }
    if (stmt->len)
        buf_addc(stmt, '\n');
    if (buf_adds(stmt, line) < 0) {
        fprintf(stderr, "weir: statement too long\n");
        buf_reset(stmt);
    }
    if (stmt->len && complete(stmt->s)) {
        if (interactive)
            add_history(stmt->s);
        run_sql(cl, stmt->s);
        buf_reset(stmt);
    }
    return true;
}

static int shell(struct sqlcli *cl, bool interactive)
{
    char *hist = NULL;
    const char *home = getenv("HOME");
    if (interactive) {
        if (home)
            hist = xasprintf("%s/.weir_sql_history", home);
        using_history();
        if (hist)
            read_history(hist);
        printf("weir sql %s: type SQL ending in ';', \\? for help, \\q to quit\n", WEIR_VERSION);
    }
    struct buf stmt;
    buf_init(&stmt, (size_t)64 << 20);
    char *pline = NULL;
    size_t pcap = 0;
    for (;;) {
        char *line;
        if (interactive) {
            line = readline(stmt.len ? "weir-# " : "weir=> ");
        } else {
            ssize_t n = getline(&pline, &pcap, stdin);
            if (n > 0 && pline[n - 1] == '\n')
                pline[n - 1] = 0;
            line = n < 0 ? NULL : xstrdup(pline);
        }
        if (!line)
            break;
        bool go = feed_line(cl, &stmt, line, interactive);
        free(line);
        if (!go)
            break;
    }
    /* A last statement without its ';' still runs. */
    if (stmt.len && !interactive)
        run_sql(cl, stmt.s);
    free(pline);
    if (hist) {
        write_history(hist);
        free(hist);
    }
    buf_release(&stmt);
    if (interactive)
        printf("\n");
    return cl->failures ? CLI_FAILED : CLI_OK;
}

static char *read_stream(FILE *f, const char *what)
{
    struct buf b;
    buf_init(&b, (size_t)64 << 20);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (buf_add(&b, chunk, n) < 0) {
            fprintf(stderr, "weir: %s is larger than 64 MiB\n", what);
            buf_release(&b);
            return NULL;
        }
    return buf_detach(&b);
}

int cli_sql_main(int argc, char **argv)
{
    const char *dbdir = NULL, *cmd = NULL, *file = NULL;
    struct sqlcli cl = { .fmt = FMT_TABLE };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (!strcmp(a, "--db") && has) {
            dbdir = argv[++i];
        } else if (!strcmp(a, "-c") && has) {
            cmd = argv[++i];
        } else if (!strcmp(a, "-f") && has) {
            file = argv[++i];
        } else if (!strcmp(a, "--format") && has) {
            const char *f = argv[++i];
            if (!strcmp(f, "table"))
                cl.fmt = FMT_TABLE;
            else if (!strcmp(f, "csv"))
                cl.fmt = FMT_CSV;
            else if (!strcmp(f, "jsonl") || !strcmp(f, "json"))
                cl.fmt = FMT_JSONL;
            else if (!strcmp(f, "markdown") || !strcmp(f, "md"))
                cl.fmt = FMT_MARKDOWN;
            else {
                fprintf(stderr, "weir: unknown format '%s'\n%s\n", f, sql_usage);
                return CLI_USAGE;
            }
        } else if (!strcmp(a, "--timing")) {
            cl.timing = true;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            puts(sql_usage);
            return CLI_OK;
        } else {
            fprintf(stderr, "weir: unknown or incomplete argument '%s'\n%s\n", a, sql_usage);
            return CLI_USAGE;
        }
    }
    if (cmd && file) {
        fprintf(stderr, "weir: give either -c or -f, not both\n");
        return CLI_USAGE;
    }
    char *defdir = NULL;
    if (!dbdir) {
        const char *wh = getenv("WEIR_HOME"), *home = getenv("HOME");
        if (wh && *wh) {
            defdir = xasprintf("%s/warehouse", wh);
        } else if (home && *home) {
            char *base = xasprintf("%s/.weir", home);
            mkdir(base, 0755);
            defdir = xasprintf("%s/warehouse", base);
            free(base);
        } else {
            fprintf(stderr, "weir: no --db given and neither WEIR_HOME nor HOME is set\n");
            return CLI_USAGE;
        }
        dbdir = defdir;
    }
    struct weir_err err;
    int rc = wh_open(dbdir, &cl.db, &err);
    free(defdir);
    if (rc < 0) {
        fprintf(stderr, "weir: %s\n", err.msg);
        return code_exit(-rc);
    }
    int ret = CLI_OK;
    if (cmd && cmd[0] == '\\') {
        char *c = xstrdup(cmd);
        meta(&cl, c);
        free(c);
    } else if (cmd) {
        ret = run_sql(&cl, cmd);
    } else if (file) {
        FILE *f = fopen(file, "r");
        if (!f) {
            char eb[128];
            fprintf(stderr, "weir: cannot open '%s': %s\n", file, err_errno(errno, eb, sizeof eb));
            ret = CLI_NOTFOUND;
        } else {
            char *sql = read_stream(f, file);
            fclose(f);
            ret = sql ? run_sql(&cl, sql) : CLI_FAILED;
            free(sql);
        }
    } else {
        ret = shell(&cl, isatty(STDIN_FILENO));
    }
    wh_close(cl.db);
    return ret;
}
#endif
