/* core/tmpl_int.h - declarations shared by the template engine's files (tmpl.c parses,
 * tmpl_eval.c renders, tmpl_lib.c holds filters, tests, methods and value helpers).
 * Nothing outside core/tmpl*.c includes this file. */
#ifndef WEIR_CORE_TMPL_INT_H
#define WEIR_CORE_TMPL_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

struct arena;
struct tmpl_env;

/* Limits. Every size that template text or data drives is bounded (STYLE.md, Errors). */
#define TMPL_MAX_SRC         ((size_t)16 << 20)  /* template source bytes */
#define TMPL_MAX_DEPTH       100                 /* block nesting, parentheses, unary chains */
#define TMPL_MAX_HEIGHT      200                 /* expression tree height (a+b+c... chains) */
#define TMPL_MAX_VALUE_DEPTH 500                 /* nesting of lists/dicts the engine builds */
#define TMPL_MAX_ITERS       ((size_t)1000000)   /* loop iterations per render, all loops */
#define TMPL_MAX_ITEMS       ((size_t)1000000)   /* items in a list the engine builds */
#define TMPL_MAX_STEPS       ((size_t)20000000)  /* evaluation steps per render */
#define TMPL_MAX_MADE        ((size_t)256 << 20) /* bytes of strings/lists made per render */
#define TMPL_DEFAULT_OUTPUT  ((size_t)16 << 20)
#define TMPL_MAX_ARGS        16
#define TMPL_MAX_NS          64 /* namespace() objects per render */

enum tmpl_xkind {
    X_LIT,    /* lit */
    X_NAME,   /* name */
    X_ATTR,   /* a.name */
    X_INDEX,  /* a[b] */
    X_SLICE,  /* a[args[0]:args[1]:args[2]], each may be NULL */
    X_CALL,   /* a(args) */
    X_FILTER, /* a | name(args) */
    X_TEST,   /* a is [not] name(args) */
    X_BIN,    /* a op b (arithmetic and ~) */
    X_CMP,    /* args[0] ops[0] args[1] ops[1] ... (chained comparisons) */
    X_NEG,    /* -a */
    X_POS,    /* +a */
    X_NOT,    /* not a */
    X_AND,    /* a and b */
    X_OR,     /* a or b */
    X_COND,   /* a if b else c (c may be NULL) */
    X_LIST,   /* [args] */
    X_DICT,   /* {args[0]: args[1], ...} */
};

enum tmpl_op {
    OP_ADD,
    OP_SUB,
    OP_MUL,
    OP_DIV,
    OP_FDIV,
    OP_MOD,
    OP_POW,
    OP_CAT,
    OP_EQ,
    OP_NE,
    OP_LT,
    OP_LE,
    OP_GT,
    OP_GE,
    OP_IN,
    OP_NOTIN,
};

struct tmpl_expr {
    enum tmpl_xkind kind;
    enum tmpl_op op;
    bool negate;      /* X_TEST: `is not` */
    unsigned height;  /* 1 + the children's greatest height */
    size_t pos, end;  /* source span [pos, end) */
    json_t *lit;      /* X_LIT: borrowed from tmpl.consts */
    const char *name; /* X_NAME, X_ATTR, X_FILTER, X_TEST */
    struct tmpl_expr *a, *b, *c;
    struct tmpl_expr **args; /* X_CALL, X_FILTER, X_TEST, X_LIST, X_DICT, X_CMP, X_SLICE */
    const char **kwnames;    /* per arg: keyword name, or NULL for a positional argument */
    enum tmpl_op *ops;       /* X_CMP: nargs - 1 operators */
    size_t nargs;
};

enum tmpl_nkind {
    N_TEXT,
    N_OUT,
    N_IF,
    N_FOR,
    N_SET,
    N_SETBLOCK
};

struct tmpl_branch {
    struct tmpl_expr *cond; /* NULL for `else` */
    struct tmpl_node *body;
    struct tmpl_branch *next;
};

struct tmpl_node {
    enum tmpl_nkind kind;
    size_t pos;
    struct tmpl_node *next;
    const char *text; /* N_TEXT */
    size_t len;
    struct tmpl_expr *e;      /* N_OUT, N_SET value, N_FOR iterable */
    struct tmpl_expr *filter; /* N_FOR `if` filter, may be NULL */
    const char **targets;     /* N_FOR loop variables; N_SET/N_SETBLOCK name [, attribute] */
    size_t ntargets;
    struct tmpl_node *body, *alt; /* N_FOR body and `else`; N_SETBLOCK body */
    struct tmpl_branch *branches; /* N_IF */
    bool uses_loop;               /* N_FOR: the body names `loop` (else it is not built) */
};

struct tmpl {
    struct arena *arena; /* nodes, expressions, names */
    json_t *consts;      /* owns the literal values */
    const char *src;
    size_t len;
    struct tmpl_node *root;
};

/* State of one render. */
struct tmpl_ctx {
    const struct tmpl *t;
    const struct tmpl_env *env;
    struct weir_err *err; /* never NULL */
    json_t *scopes[TMPL_MAX_DEPTH + 2];
    size_t nscopes;
    size_t steps, iters, made, max_str;
    /* namespace() objects: the only mutable values. None is reachable from another (checked
     * on assignment), so values never form cycles. */
    json_t *ns[TMPL_MAX_NS];
    size_t nns;
};

/* tmpl.c */
int tmpl__parse(struct tmpl *t, const char *src, size_t len, struct weir_err *err);
void tmpl__release(struct tmpl *t);
/* Formats the "line:col" of byte offset `pos` of `src`. */
void tmpl__loc(const char *src, size_t pos, char *out, size_t size);

/* tmpl_eval.c */
int tmpl__run(struct tmpl_ctx *c, struct buf *out);
/* Fails the render at `pos` of the template: fills c->err with loc. Returns -code. */
int tmpl__fail(struct tmpl_ctx *c, size_t pos, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Charges `n` units of work; fails with -WEIR_ETOOBIG past the budget. */
int tmpl__charge(struct tmpl_ctx *c, size_t pos, size_t steps, size_t bytes);

/* tmpl_lib.c: values */
bool tmpl__truthy(const json_t *v);
const char *tmpl__typename(const json_t *v);
/* Appends str(v) (Jinja rendering: True/False/None, Python floats, JSON containers). */
int tmpl__str(struct tmpl_ctx *c, size_t pos, const json_t *v, struct buf *b);
/* New string value of `len` bytes, charged against the budget and c->max_str. */
int tmpl__mkstr(struct tmpl_ctx *c, size_t pos, const char *s, size_t len, json_t **out);
int tmpl__mkreal(struct tmpl_ctx *c, size_t pos, double d, json_t **out);
/* Checks that `v` may be placed inside a new container (depth limit). */
int tmpl__check_nest(struct tmpl_ctx *c, size_t pos, const json_t *v);
/* Work units for a linear pass over `v` (string bytes / 16, items of a list or dict). */
size_t tmpl__cost(const json_t *v);
/* Python-style equality (1 == 1.0). Adds the nodes it visits to c->steps (the next
 * tmpl__charge fails if that overran the budget). */
bool tmpl__equal(struct tmpl_ctx *c, const json_t *a, const json_t *b);
/* Python-style ordering; -WEIR_EINVAL for incomparable types. */
int tmpl__compare(struct tmpl_ctx *c, size_t pos, const json_t *a, const json_t *b, int *res);
/* Formats a double as Python's str() does ("1.5", "2.0", "1e+16"). */
void tmpl__fmt_real(double d, char *out, size_t size);
/* Turns an iterable (list, dict keys, string characters) into a new list. */
int tmpl__to_list(struct tmpl_ctx *c, size_t pos, json_t *v, json_t **out);
/* Python's `fmt % args` for %s %d %i %f %e %g %x %% with width/precision; `args` is a list
 * (several values) or a single value. */
int tmpl__percent(struct tmpl_ctx *c, size_t pos, const json_t *fmt, json_t *args, json_t **out);
/* Builtin filters, tests, methods and functions. `argv`/`kwv` come from the call site. */
int tmpl__filter(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t *in, json_t **argv,
                 size_t argc, const char **kwnames, json_t **out);
int tmpl__test(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t *in, json_t **argv,
               size_t argc, bool *res);
bool tmpl__has_filter(const char *name);
bool tmpl__has_test(const char *name);
/* Returns 1 and sets *out when `name` is a method of `obj`'s type, 0 when it is not. */
int tmpl__method(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t *obj, const char *name,
                 json_t **argv, size_t argc, json_t **out);
/* Engine functions (range, ds_add...); returns 1 if handled, 0 if `name` is not one. */
int tmpl__builtin(struct tmpl_ctx *c, const struct tmpl_expr *e, const char *name, json_t **argv,
                  size_t argc, json_t **out);

#endif
