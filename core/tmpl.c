/* core/tmpl.c - the template language's lexer and parser, and the public entry points of
 * core/tmpl.h. Source text becomes a tree of nodes and expressions in an arena; tmpl_eval.c
 * walks it. Recursion in the parser and the tree height are bounded (TMPL_MAX_DEPTH,
 * TMPL_MAX_HEIGHT), so hostile input fails with -WEIR_ETOOBIG instead of overflowing the stack. */
#include "core/tmpl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"
#include "core/tmpl_int.h"

enum tok_kind {
    T_EOF,
    T_END,
    T_NAME,
    T_INT,
    T_FLOAT,
    T_STR,
    T_OP
};

/* Multi-character operators are encoded as these letters; others are their own character. */
enum {
    OPC_FDIV = 'F',
    OPC_POW = 'P',
    OPC_EQ = 'E',
    OPC_NE = 'N',
    OPC_LE = 'L',
    OPC_GE = 'G'
};

struct token {
    enum tok_kind kind;
    size_t pos, len;
    int op;
    long long i;
    double d;
    const char *s; /* T_NAME (NUL-terminated), T_STR (decoded) */
    size_t slen;
    bool strip; /* T_END: the closer was "-%}" or "-}}" */
};

struct parser {
    struct tmpl *t;
    const char *src;
    size_t len, pos;
    struct token tok;
    size_t prev_end; /* end of the last consumed token */
    int nest;        /* open ( [ { inside the current tag */
    char endch;      /* '}' inside {{ }}, '%' inside {% %} */
    int depth, blocks;
    bool lstrip;   /* the previous tag ended with '-': strip the next text's leading space */
    bool saw_loop; /* the name `loop` was parsed (see tmpl_node.uses_loop) */
    struct weir_err *err;
    int rc;
};

/* What ended a body: a tag the body does not own (elif, else, endif...) or the end. */
struct stop {
    const char *name; /* NULL at the end of the template */
    size_t pos;
};

void tmpl__loc(const char *src, size_t pos, char *out, size_t size)
{
    size_t line = 1, col = 1;
    for (size_t i = 0; i < pos && src[i]; i++) {
        if (src[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    snprintf(out, size, "%zu:%zu", line, col);
}

static int perr(struct parser *p, size_t pos, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int perr(struct parser *p, size_t pos, int code, const char *fmt, ...)
{
    if (p->rc)
        return p->rc; /* keep the first error */
    va_list ap;
    va_start(ap, fmt);
    err_vset(p->err, code, fmt, ap);
    va_end(ap);
    if (p->err)
        tmpl__loc(p->src, pos, p->err->loc, sizeof p->err->loc);
    p->rc = -code;
    return p->rc;
}

static void *palloc(struct parser *p, size_t n)
{
    void *m = arena_calloc(p->t->arena, 1, n);
    if (!m)
        perr(p, p->pos, WEIR_ETOOBIG, "template is too big");
    return m;
}

/* A short quote of the current token for messages. */
static const char *tokdesc(struct parser *p, char *buf, size_t size)
{
    switch (p->tok.kind) {
    case T_EOF:
        return "end of template";
    case T_END:
        return p->endch == '%' ? "'%}'" : "'}}'";
    default: {
        size_t n = p->tok.len > 24 ? 24 : p->tok.len;
        snprintf(buf, size, "'%.*s'", (int)n, p->src + p->tok.pos);
        return buf;
    }
    }
}

/* ---- lexer (inside a tag) ---- */

static bool is_name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int lex_number(struct parser *p, struct token *tk)
{
    const char *s = p->src;
    size_t i = p->pos;
    bool real = false;
    char tmp[64];
    size_t n = 0;
    while (i < p->len && (is_digit(s[i]) || s[i] == '_')) {
        if (s[i] != '_' && n < sizeof tmp - 1)
            tmp[n++] = s[i];
        i++;
    }
    if (i + 1 < p->len && s[i] == '.' && is_digit(s[i + 1])) {
        real = true;
        tmp[n < sizeof tmp - 1 ? n++ : n] = '.';
        i++;
        while (i < p->len && is_digit(s[i])) {
            if (n < sizeof tmp - 1)
                tmp[n++] = s[i];
            i++;
        }
    }
    if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        if (j < p->len && (s[j] == '+' || s[j] == '-'))
            j++;
        if (j < p->len && is_digit(s[j])) {
            real = true;
            if (n < sizeof tmp - 1)
                tmp[n++] = 'e';
            for (size_t k = i + 1; k < j; k++)
                if (n < sizeof tmp - 1)
                    tmp[n++] = s[k];
            i = j;
            while (i < p->len && is_digit(s[i])) {
                if (n < sizeof tmp - 1)
                    tmp[n++] = s[i];
                i++;
            }
        }
    }
    tmp[n] = '\0';
    if (n >= sizeof tmp - 1)
        return perr(p, p->pos, WEIR_EINVAL, "number literal is too long");
    tk->len = i - p->pos;
    errno = 0;
    char *end = NULL;
    if (real) {
        tk->kind = T_FLOAT;
        tk->d = strtod(tmp, &end);
        if (errno == ERANGE || !end || *end)
            return perr(p, p->pos, WEIR_EINVAL, "number '%s' is out of range", tmp);
    } else {
        tk->kind = T_INT;
        tk->i = strtoll(tmp, &end, 10);
        if (errno == ERANGE || !end || *end)
            return perr(p, p->pos, WEIR_EINVAL, "integer '%s' is out of range", tmp);
    }
    p->pos = i;
    return 0;
}

static int lex_string(struct parser *p, struct token *tk)
{
    const char *s = p->src;
    char q = s[p->pos];
    size_t i = p->pos + 1;
    size_t n = 0;
    /* First pass: find the end and the decoded length. */
    while (i < p->len && s[i] != q) {
        if (s[i] == '\\' && i + 1 < p->len)
            i++;
        i++;
        n++;
    }
    if (i >= p->len)
        return perr(p, p->pos, WEIR_EINVAL, "unterminated string");
    char *d = palloc(p, n + 1);
    if (!d)
        return p->rc;
    n = 0;
    for (size_t k = p->pos + 1; k < i; k++) {
        char c = s[k];
        if (c == '\\') {
            c = s[++k];
            switch (c) {
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            case 'r':
                c = '\r';
                break;
            case '\\':
            case '\'':
            case '"':
                break;
            default:
                d[n++] = '\\'; /* unknown escapes stay as written (Python) */
                break;
            }
        }
        d[n++] = c;
    }
    d[n] = '\0';
    tk->kind = T_STR;
    tk->s = d;
    tk->slen = n;
    tk->len = i + 1 - p->pos;
    p->pos = i + 1;
    return 0;
}

static int lex(struct parser *p, struct token *tk)
{
    const char *s = p->src;
    memset(tk, 0, sizeof *tk);
    while (p->pos < p->len &&
           (s[p->pos] == ' ' || s[p->pos] == '\t' || s[p->pos] == '\n' || s[p->pos] == '\r'))
        p->pos++;
    tk->pos = p->pos;
    if (p->pos >= p->len) {
        tk->kind = T_EOF;
        return 0;
    }
    char c = s[p->pos];
    char c1 = p->pos + 1 < p->len ? s[p->pos + 1] : '\0';
    char c2 = p->pos + 2 < p->len ? s[p->pos + 2] : '\0';
    if (p->nest == 0) {
        if (c == '-' && c1 == p->endch && c2 == '}') {
            tk->kind = T_END;
            tk->strip = true;
            tk->len = 3;
            p->pos += 3;
            return 0;
        }
        if (c == p->endch && c1 == '}') {
            tk->kind = T_END;
            tk->len = 2;
            p->pos += 2;
            return 0;
        }
    }
    if (is_digit(c))
        return lex_number(p, tk);
    if (c == '\'' || c == '"')
        return lex_string(p, tk);
    if (is_name_start(c)) {
        size_t i = p->pos;
        while (i < p->len && (is_name_start(s[i]) || is_digit(s[i])))
            i++;
        char *name = arena_strndup(p->t->arena, s + p->pos, i - p->pos);
        if (!name)
            return perr(p, p->pos, WEIR_ETOOBIG, "template is too big");
        tk->kind = T_NAME;
        tk->s = name;
        tk->len = i - p->pos;
        p->pos = i;
        return 0;
    }
    static const struct {
        char a, b;
        int op;
    } two[] = { { '/', '/', OPC_FDIV }, { '*', '*', OPC_POW }, { '=', '=', OPC_EQ },
                { '!', '=', OPC_NE },   { '<', '=', OPC_LE },  { '>', '=', OPC_GE } };
    for (size_t k = 0; k < WEIR_ARRAY_LEN(two); k++) {
        if (c == two[k].a && c1 == two[k].b) {
            tk->kind = T_OP;
            tk->op = two[k].op;
            tk->len = 2;
            p->pos += 2;
            return 0;
        }
    }
    if (strchr("+-*/%~<>()[]{},.:|=", c) && c != '\0') {
        if (c == '(' || c == '[' || c == '{')
            p->nest++;
        else if ((c == ')' || c == ']' || c == '}') && p->nest > 0)
            p->nest--;
        tk->kind = T_OP;
        tk->op = c;
        tk->len = 1;
        p->pos++;
        return 0;
    }
    if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7f)
        return perr(p, p->pos, WEIR_EINVAL, "unexpected character '%c'", c);
    return perr(p, p->pos, WEIR_EINVAL, "unexpected byte 0x%02x", (unsigned char)c);
}

static int advance(struct parser *p)
{
    p->prev_end = p->tok.pos + p->tok.len;
    return lex(p, &p->tok);
}

static bool at_op(struct parser *p, int op)
{
    return p->tok.kind == T_OP && p->tok.op == op;
}

static bool at_name(struct parser *p, const char *name)
{
    return p->tok.kind == T_NAME && strcmp(p->tok.s, name) == 0;
}

/* Is the token after the current one the name `name` (or the operator `op` if name is NULL)? */
static bool peek_is(struct parser *p, const char *name, int op)
{
    size_t pos = p->pos;
    int nest = p->nest;
    struct token tk;
    struct weir_err *saved = p->err;
    struct weir_err scratch;
    p->err = &scratch;
    int rc = lex(p, &tk);
    p->err = saved;
    bool r = false;
    if (rc == 0) {
        if (name)
            r = tk.kind == T_NAME && strcmp(tk.s, name) == 0;
        else
            r = tk.kind == T_OP && tk.op == op;
    }
    p->rc = 0; /* a lexing error here is found again when the token is really read */
    p->pos = pos;
    p->nest = nest;
    return r;
}

static int expect_op(struct parser *p, int op, const char *what)
{
    if (!at_op(p, op)) {
        char b[40];
        return perr(p, p->tok.pos, WEIR_EINVAL, "expected '%s', got %s", what,
                    tokdesc(p, b, sizeof b));
    }
    return advance(p);
}

static int expect_end(struct parser *p)
{
    if (p->tok.kind != T_END) {
        char b[40];
        return perr(p, p->tok.pos, WEIR_EINVAL, "expected '%s', got %s",
                    p->endch == '%' ? "%}" : "}}", tokdesc(p, b, sizeof b));
    }
    p->lstrip = p->tok.strip;
    return 0;
}

/* ---- expressions ---- */

static struct tmpl_expr *parse_expr(struct parser *p);
static struct tmpl_expr *parse_or(struct parser *p);
static struct tmpl_expr *parse_unary(struct parser *p, bool with_filter);

static struct tmpl_expr *mkx(struct parser *p, enum tmpl_xkind kind, size_t pos)
{
    struct tmpl_expr *e = palloc(p, sizeof *e);
    if (e) {
        e->kind = kind;
        e->pos = pos;
        e->end = pos;
    }
    return e;
}

static unsigned hmax(unsigned h, const struct tmpl_expr *e)
{
    return e && e->height > h ? e->height : h;
}

/* Sets the height and span of a finished node; fails past TMPL_MAX_HEIGHT. */
static struct tmpl_expr *done(struct parser *p, struct tmpl_expr *e)
{
    if (!e || p->rc)
        return NULL;
    unsigned h = hmax(hmax(hmax(0, e->a), e->b), e->c);
    for (size_t i = 0; i < e->nargs; i++)
        h = hmax(h, e->args[i]);
    e->height = h + 1;
    e->end = p->prev_end > e->pos ? p->prev_end : e->pos;
    if (e->height > TMPL_MAX_HEIGHT) {
        perr(p, e->pos, WEIR_ETOOBIG, "expression nests too deeply (limit %d)", TMPL_MAX_HEIGHT);
        return NULL;
    }
    return e;
}

static struct tmpl_expr *mklit(struct parser *p, size_t pos, json_t *v)
{
    if (!v || json_array_append_new(p->t->consts, v)) {
        perr(p, pos, WEIR_EINTERNAL, "cannot store a literal");
        return NULL;
    }
    struct tmpl_expr *e = mkx(p, X_LIT, pos);
    if (e)
        e->lit = v;
    return e;
}

static struct tmpl_expr *mkbin(struct parser *p, enum tmpl_xkind kind, enum tmpl_op op,
                               struct tmpl_expr *a, struct tmpl_expr *b)
{
    if (!a || !b)
        return NULL;
    struct tmpl_expr *e = mkx(p, kind, a->pos);
    if (!e)
        return NULL;
    e->op = op;
    e->a = a;
    e->b = b;
    return done(p, e);
}

/* A growable temporary list of expressions, copied into the arena when complete. */
struct xvec {
    struct tmpl_expr **v;
    const char **kw;
    size_t n, cap;
};

static void xvec_push(struct xvec *xv, struct tmpl_expr *e, const char *kw)
{
    if (xv->n == xv->cap) {
        xv->cap = xv->cap ? xv->cap * 2 : 8;
        xv->v = xrealloc(xv->v, xv->cap * sizeof *xv->v);
        xv->kw = xrealloc(xv->kw, xv->cap * sizeof *xv->kw);
    }
    xv->v[xv->n] = e;
    xv->kw[xv->n] = kw;
    xv->n++;
}

/* Moves the vector into e->args (and e->kwnames if `kw`); frees the temporary. */
static int xvec_move(struct parser *p, struct xvec *xv, struct tmpl_expr *e, bool kw)
{
    int rc = 0;
    if (e && xv->n) {
        e->args = palloc(p, xv->n * sizeof *e->args);
        if (kw)
            e->kwnames = palloc(p, xv->n * sizeof *e->kwnames);
        if (e->args && (!kw || e->kwnames)) {
            memcpy(e->args, xv->v, xv->n * sizeof *e->args);
            if (kw)
                memcpy(e->kwnames, xv->kw, xv->n * sizeof *e->kwnames);
            e->nargs = xv->n;
        } else {
            rc = p->rc;
        }
    }
    free(xv->v);
    free(xv->kw);
    memset(xv, 0, sizeof *xv);
    return rc;
}

/* Parses call arguments after '(' up to and including ')'. */
static int parse_args(struct parser *p, struct tmpl_expr *e)
{
    struct xvec xv = { 0 };
    bool seen_kw = false;
    while (!p->rc && !at_op(p, ')')) {
        const char *kw = NULL;
        if (p->tok.kind == T_NAME && peek_is(p, NULL, '=')) {
            kw = p->tok.s;
            if (advance(p) || advance(p))
                break;
            seen_kw = true;
        } else if (seen_kw) {
            perr(p, p->tok.pos, WEIR_EINVAL, "positional argument after a keyword argument");
            break;
        }
        struct tmpl_expr *a = parse_expr(p);
        if (!a)
            break;
        if (xv.n >= TMPL_MAX_ARGS) {
            perr(p, a->pos, WEIR_EINVAL, "too many arguments (limit %d)", TMPL_MAX_ARGS);
            break;
        }
        xvec_push(&xv, a, kw);
        if (!at_op(p, ','))
            break;
        advance(p);
    }
    if (!p->rc)
        expect_op(p, ')', ")");
    xvec_move(p, &xv, e, true);
    return p->rc;
}

static struct tmpl_expr *parse_list(struct parser *p, size_t pos, int close)
{
    struct tmpl_expr *e = mkx(p, X_LIST, pos);
    struct xvec xv = { 0 };
    while (e && !p->rc && !at_op(p, close)) {
        struct tmpl_expr *a = parse_expr(p);
        if (!a)
            break;
        xvec_push(&xv, a, NULL);
        if (!at_op(p, ','))
            break;
        advance(p);
    }
    if (!p->rc)
        expect_op(p, close, close == ']' ? "]" : ")");
    xvec_move(p, &xv, e, false);
    return done(p, e);
}

static struct tmpl_expr *parse_dict(struct parser *p, size_t pos)
{
    struct tmpl_expr *e = mkx(p, X_DICT, pos);
    struct xvec xv = { 0 };
    while (e && !p->rc && !at_op(p, '}')) {
        struct tmpl_expr *k = parse_expr(p);
        if (!k || expect_op(p, ':', ":"))
            break;
        struct tmpl_expr *v = parse_expr(p);
        if (!v)
            break;
        xvec_push(&xv, k, NULL);
        xvec_push(&xv, v, NULL);
        if (!at_op(p, ','))
            break;
        advance(p);
    }
    if (!p->rc)
        expect_op(p, '}', "}");
    xvec_move(p, &xv, e, false);
    return done(p, e);
}

static struct tmpl_expr *parse_primary(struct parser *p)
{
    size_t pos = p->tok.pos;
    char b[40];
    switch (p->tok.kind) {
    case T_NAME: {
        const char *n = p->tok.s;
        json_t *v = NULL;
        if (!strcmp(n, "true") || !strcmp(n, "True"))
            v = json_true();
        else if (!strcmp(n, "false") || !strcmp(n, "False"))
            v = json_false();
        else if (!strcmp(n, "none") || !strcmp(n, "None"))
            v = json_null();
        if (advance(p))
            return NULL;
        if (v)
            return done(p, mklit(p, pos, v));
        struct tmpl_expr *e = mkx(p, X_NAME, pos);
        if (e)
            e->name = n;
        if (!strcmp(n, "loop"))
            p->saw_loop = true;
        return done(p, e);
    }
    case T_STR: {
        /* Adjacent string literals concatenate, as in Python. */
        struct buf s;
        buf_init(&s, TMPL_MAX_SRC);
        while (p->tok.kind == T_STR && !p->rc) {
            buf_add(&s, p->tok.s, p->tok.slen);
            advance(p);
        }
        struct tmpl_expr *e = NULL;
        if (!p->rc)
            e = done(p, mklit(p, pos, json_stringn_nocheck(s.s, s.len)));
        buf_release(&s);
        return e;
    }
    case T_INT: {
        long long i = p->tok.i;
        if (advance(p))
            return NULL;
        return done(p, mklit(p, pos, json_integer(i)));
    }
    case T_FLOAT: {
        double d = p->tok.d;
        if (advance(p))
            return NULL;
        return done(p, mklit(p, pos, json_real(d)));
    }
    case T_OP:
        if (p->tok.op == '(') {
            if (advance(p))
                return NULL;
            if (at_op(p, ')'))
                return parse_list(p, pos, ')');
            struct tmpl_expr *e = parse_expr(p);
            if (!e)
                return NULL;
            if (at_op(p, ',')) {
                /* A tuple: a list whose first item is already parsed. */
                struct tmpl_expr *l = mkx(p, X_LIST, pos);
                struct xvec xv = { 0 };
                xvec_push(&xv, e, NULL);
                while (l && !p->rc && at_op(p, ',')) {
                    if (advance(p) || at_op(p, ')'))
                        break;
                    struct tmpl_expr *a = parse_expr(p);
                    if (!a)
                        break;
                    xvec_push(&xv, a, NULL);
                }
                if (!p->rc)
                    expect_op(p, ')', ")");
                xvec_move(p, &xv, l, false);
                return done(p, l);
            }
            if (expect_op(p, ')', ")"))
                return NULL;
            return e;
        }
        if (p->tok.op == '[') {
            if (advance(p))
                return NULL;
            return parse_list(p, pos, ']');
        }
        if (p->tok.op == '{') {
            if (advance(p))
                return NULL;
            return parse_dict(p, pos);
        }
        break;
    default:
        break;
    }
    perr(p, pos, WEIR_EINVAL, "expected an expression, got %s", tokdesc(p, b, sizeof b));
    return NULL;
}

static struct tmpl_expr *parse_subscript(struct parser *p, struct tmpl_expr *obj)
{
    /* After '['. Either an index or a slice a[start:stop:step]. */
    struct tmpl_expr *parts[3] = { NULL, NULL, NULL };
    int n = 0;
    bool slice = false;
    while (!p->rc) {
        if (!at_op(p, ':') && !at_op(p, ']')) {
            parts[n] = parse_expr(p);
            if (!parts[n])
                return NULL;
        }
        if (at_op(p, ':') && n < 2) {
            slice = true;
            n++;
            advance(p);
            continue;
        }
        break;
    }
    if (p->rc || expect_op(p, ']', "]"))
        return NULL;
    if (!slice) {
        if (!parts[0]) {
            perr(p, obj->pos, WEIR_EINVAL, "empty subscript");
            return NULL;
        }
        return mkbin(p, X_INDEX, OP_ADD, obj, parts[0]);
    }
    struct tmpl_expr *e = mkx(p, X_SLICE, obj->pos);
    if (!e)
        return NULL;
    e->a = obj;
    e->args = palloc(p, 3 * sizeof *e->args);
    if (!e->args)
        return NULL;
    memcpy(e->args, parts, sizeof parts);
    e->nargs = 3;
    return done(p, e);
}

static struct tmpl_expr *parse_postfix(struct parser *p, struct tmpl_expr *e)
{
    while (e && !p->rc) {
        if (at_op(p, '.')) {
            if (advance(p))
                return NULL;
            if (p->tok.kind == T_NAME) {
                struct tmpl_expr *x = mkx(p, X_ATTR, e->pos);
                if (!x)
                    return NULL;
                x->a = e;
                x->name = p->tok.s;
                advance(p);
                e = done(p, x);
            } else if (p->tok.kind == T_INT) {
                struct tmpl_expr *i = mklit(p, p->tok.pos, json_integer(p->tok.i));
                advance(p);
                e = mkbin(p, X_INDEX, OP_ADD, e, done(p, i));
            } else {
                char b[40];
                perr(p, p->tok.pos, WEIR_EINVAL, "expected a name after '.', got %s",
                     tokdesc(p, b, sizeof b));
                return NULL;
            }
        } else if (at_op(p, '[')) {
            if (advance(p))
                return NULL;
            e = parse_subscript(p, e);
        } else if (at_op(p, '(')) {
            struct tmpl_expr *x = mkx(p, X_CALL, e->pos);
            if (!x || advance(p))
                return NULL;
            x->a = e;
            if (parse_args(p, x))
                return NULL;
            e = done(p, x);
        } else {
            break;
        }
    }
    return p->rc ? NULL : e;
}

static bool is_keyword(const char *s)
{
    static const char *const kw[] = { "and", "or", "not", "in", "is", "if", "else" };
    for (size_t i = 0; i < WEIR_ARRAY_LEN(kw); i++)
        if (!strcmp(s, kw[i]))
            return true;
    return false;
}

static struct tmpl_expr *parse_filters(struct parser *p, struct tmpl_expr *e)
{
    while (e && !p->rc) {
        if (at_op(p, '|')) {
            if (advance(p))
                return NULL;
            if (p->tok.kind != T_NAME) {
                char b[40];
                perr(p, p->tok.pos, WEIR_EINVAL, "expected a filter name after '|', got %s",
                     tokdesc(p, b, sizeof b));
                return NULL;
            }
            if (!tmpl__has_filter(p->tok.s)) {
                perr(p, p->tok.pos, WEIR_EINVAL, "unknown filter '%s'", p->tok.s);
                return NULL;
            }
            struct tmpl_expr *x = mkx(p, X_FILTER, e->pos);
            if (!x)
                return NULL;
            x->a = e;
            x->name = p->tok.s;
            if (advance(p))
                return NULL;
            if (at_op(p, '(') && (advance(p) || parse_args(p, x)))
                return NULL;
            e = done(p, x);
        } else if (at_name(p, "is")) {
            struct tmpl_expr *x = mkx(p, X_TEST, e->pos);
            if (!x || advance(p))
                return NULL;
            x->a = e;
            if (at_name(p, "not")) {
                x->negate = true;
                if (advance(p))
                    return NULL;
            }
            if (p->tok.kind != T_NAME) {
                char b[40];
                perr(p, p->tok.pos, WEIR_EINVAL, "expected a test name after 'is', got %s",
                     tokdesc(p, b, sizeof b));
                return NULL;
            }
            if (!tmpl__has_test(p->tok.s)) {
                perr(p, p->tok.pos, WEIR_EINVAL, "unknown test '%s'", p->tok.s);
                return NULL;
            }
            x->name = p->tok.s;
            if (advance(p))
                return NULL;
            if (at_op(p, '(')) {
                if (advance(p) || parse_args(p, x))
                    return NULL;
            } else if (p->tok.kind == T_INT || p->tok.kind == T_FLOAT || p->tok.kind == T_STR ||
                       (p->tok.kind == T_NAME && !is_keyword(p->tok.s))) {
                /* `x is divisibleby 3`: one bare argument */
                struct tmpl_expr *a = parse_unary(p, false);
                if (!a)
                    return NULL;
                x->args = palloc(p, sizeof *x->args);
                x->kwnames = palloc(p, sizeof *x->kwnames);
                if (!x->args || !x->kwnames)
                    return NULL;
                x->args[0] = a;
                x->nargs = 1;
            }
            e = done(p, x);
        } else {
            break;
        }
    }
    return p->rc ? NULL : e;
}

static int enter(struct parser *p)
{
    if (++p->depth > TMPL_MAX_DEPTH)
        return perr(p, p->tok.pos, WEIR_ETOOBIG, "expression nests too deeply (limit %d)",
                    TMPL_MAX_DEPTH);
    return 0;
}

static struct tmpl_expr *parse_unary(struct parser *p, bool with_filter)
{
    struct tmpl_expr *e;
    size_t pos = p->tok.pos;
    if (enter(p))
        return NULL;
    if (at_op(p, '-') || at_op(p, '+')) {
        enum tmpl_xkind k = at_op(p, '-') ? X_NEG : X_POS;
        if (advance(p))
            return NULL;
        struct tmpl_expr *a = parse_unary(p, false);
        e = a ? mkx(p, k, pos) : NULL;
        if (e) {
            e->a = a;
            e = done(p, e);
        }
    } else {
        e = parse_primary(p);
    }
    e = parse_postfix(p, e);
    if (with_filter)
        e = parse_filters(p, e);
    p->depth--;
    return e;
}

static struct tmpl_expr *parse_pow(struct parser *p)
{
    struct tmpl_expr *e = parse_unary(p, true);
    while (e && at_op(p, OPC_POW)) {
        if (advance(p))
            return NULL;
        e = mkbin(p, X_BIN, OP_POW, e, parse_unary(p, true));
    }
    return e;
}

static struct tmpl_expr *parse_math2(struct parser *p)
{
    struct tmpl_expr *e = parse_pow(p);
    while (e && p->tok.kind == T_OP) {
        enum tmpl_op op;
        switch (p->tok.op) {
        case '*':
            op = OP_MUL;
            break;
        case '/':
            op = OP_DIV;
            break;
        case OPC_FDIV:
            op = OP_FDIV;
            break;
        case '%':
            op = OP_MOD;
            break;
        default:
            return e;
        }
        if (advance(p))
            return NULL;
        e = mkbin(p, X_BIN, op, e, parse_pow(p));
    }
    return e;
}

static struct tmpl_expr *parse_concat(struct parser *p)
{
    struct tmpl_expr *e = parse_math2(p);
    while (e && at_op(p, '~')) {
        if (advance(p))
            return NULL;
        e = mkbin(p, X_BIN, OP_CAT, e, parse_math2(p));
    }
    return e;
}

static struct tmpl_expr *parse_math1(struct parser *p)
{
    struct tmpl_expr *e = parse_concat(p);
    while (e && (at_op(p, '+') || at_op(p, '-'))) {
        enum tmpl_op op = at_op(p, '+') ? OP_ADD : OP_SUB;
        if (advance(p))
            return NULL;
        e = mkbin(p, X_BIN, op, e, parse_concat(p));
    }
    return e;
}

static bool cmp_op(struct parser *p, enum tmpl_op *op)
{
    if (p->tok.kind == T_OP) {
        switch (p->tok.op) {
        case OPC_EQ:
            *op = OP_EQ;
            return true;
        case OPC_NE:
            *op = OP_NE;
            return true;
        case '<':
            *op = OP_LT;
            return true;
        case OPC_LE:
            *op = OP_LE;
            return true;
        case '>':
            *op = OP_GT;
            return true;
        case OPC_GE:
            *op = OP_GE;
            return true;
        default:
            return false;
        }
    }
    if (at_name(p, "in")) {
        *op = OP_IN;
        return true;
    }
    if (at_name(p, "not") && peek_is(p, "in", 0)) {
        *op = OP_NOTIN;
        return true;
    }
    return false;
}

static struct tmpl_expr *parse_cmp(struct parser *p)
{
    struct tmpl_expr *first = parse_math1(p);
    enum tmpl_op op;
    if (!first || !cmp_op(p, &op))
        return first;
    struct tmpl_expr *e = mkx(p, X_CMP, first->pos);
    struct xvec xv = { 0 };
    enum tmpl_op *ops = NULL;
    size_t nops = 0;
    xvec_push(&xv, first, NULL);
    while (e && cmp_op(p, &op)) {
        if (advance(p) || (op == OP_NOTIN && advance(p)))
            break;
        struct tmpl_expr *r = parse_math1(p);
        if (!r)
            break;
        ops = xrealloc(ops, (nops + 1) * sizeof *ops);
        ops[nops++] = op;
        xvec_push(&xv, r, NULL);
    }
    if (e && !p->rc && nops) {
        e->ops = palloc(p, nops * sizeof *ops);
        if (e->ops)
            memcpy(e->ops, ops, nops * sizeof *ops);
    }
    free(ops);
    xvec_move(p, &xv, e, false);
    return done(p, e);
}

static struct tmpl_expr *parse_not(struct parser *p)
{
    if (!at_name(p, "not"))
        return parse_cmp(p);
    size_t pos = p->tok.pos;
    if (enter(p) || advance(p))
        return NULL;
    struct tmpl_expr *a = parse_not(p);
    p->depth--;
    struct tmpl_expr *e = a ? mkx(p, X_NOT, pos) : NULL;
    if (!e)
        return NULL;
    e->a = a;
    return done(p, e);
}

static struct tmpl_expr *parse_and(struct parser *p)
{
    struct tmpl_expr *e = parse_not(p);
    while (e && at_name(p, "and")) {
        if (advance(p))
            return NULL;
        e = mkbin(p, X_AND, OP_ADD, e, parse_not(p));
    }
    return e;
}

static struct tmpl_expr *parse_or(struct parser *p)
{
    struct tmpl_expr *e = parse_and(p);
    while (e && at_name(p, "or")) {
        if (advance(p))
            return NULL;
        e = mkbin(p, X_OR, OP_ADD, e, parse_and(p));
    }
    return e;
}

static struct tmpl_expr *parse_expr(struct parser *p)
{
    if (enter(p))
        return NULL;
    struct tmpl_expr *e = parse_or(p);
    while (e && at_name(p, "if")) {
        struct tmpl_expr *x = mkx(p, X_COND, e->pos);
        if (!x || advance(p))
            return NULL;
        x->a = e;
        x->b = parse_or(p);
        if (!x->b)
            return NULL;
        if (at_name(p, "else")) {
            if (advance(p))
                return NULL;
            x->c = parse_expr(p);
            if (!x->c)
                return NULL;
        }
        e = done(p, x);
    }
    p->depth--;
    return p->rc ? NULL : e;
}

/* ---- statements ---- */

static struct tmpl_node *parse_body(struct parser *p, struct stop *st);

static struct tmpl_node *mknode(struct parser *p, enum tmpl_nkind kind, size_t pos)
{
    struct tmpl_node *n = palloc(p, sizeof *n);
    if (n) {
        n->kind = kind;
        n->pos = pos;
    }
    return n;
}

/* Enters a tag after its opener ("{{" or "{%" plus an optional '-'). */
static int open_tag(struct parser *p, char endch)
{
    p->endch = endch;
    p->nest = 0;
    p->depth = 0;
    return lex(p, &p->tok);
}

/* Parses the body of a block tag; *st tells which tag (or the end) stopped it. Counts the
 * block nesting, which bounds the parser's and the renderer's recursion. */
static struct tmpl_node *parse_nested(struct parser *p, struct stop *st)
{
    if (++p->blocks > TMPL_MAX_DEPTH) {
        perr(p, p->tok.pos, WEIR_ETOOBIG, "blocks nest too deeply (limit %d)", TMPL_MAX_DEPTH);
        return NULL;
    }
    struct tmpl_node *n = parse_body(p, st);
    p->blocks--;
    return n;
}

static int unclosed(struct parser *p, const struct stop *st, const char *tag, size_t pos,
                    const char *want)
{
    if (!st->name)
        return perr(p, pos, WEIR_EINVAL, "unclosed '%s' block (missing '{%% %s %%}')", tag, want);
    return perr(p, st->pos, WEIR_EINVAL, "unexpected '%s' inside '%s' block (expected '%s')",
                st->name, tag, want);
}

static struct tmpl_node *parse_if(struct parser *p, size_t pos)
{
    struct tmpl_node *n = mknode(p, N_IF, pos);
    struct tmpl_branch **tail = n ? &n->branches : NULL;
    bool seen_else = false;
    while (n && !p->rc) {
        struct tmpl_branch *br = palloc(p, sizeof *br);
        if (!br)
            return NULL;
        if (!seen_else) {
            br->cond = parse_expr(p);
            if (!br->cond)
                return NULL;
        }
        if (expect_end(p))
            return NULL;
        struct stop st = { 0 };
        br->body = parse_nested(p, &st);
        if (p->rc)
            return NULL;
        *tail = br;
        tail = &br->next;
        if (st.name && !strcmp(st.name, "endif")) {
            if (advance(p) || expect_end(p))
                return NULL;
            return n;
        }
        if (st.name && !seen_else && !strcmp(st.name, "elif")) {
            if (advance(p))
                return NULL;
            continue;
        }
        if (st.name && !seen_else && !strcmp(st.name, "else")) {
            seen_else = true;
            if (advance(p))
                return NULL;
            continue;
        }
        unclosed(p, &st, "if", pos, "endif");
    }
    return NULL;
}

static const char *target_name(struct parser *p)
{
    if (p->tok.kind != T_NAME || is_keyword(p->tok.s)) {
        char b[40];
        perr(p, p->tok.pos, WEIR_EINVAL, "expected a variable name, got %s",
             tokdesc(p, b, sizeof b));
        return NULL;
    }
    const char *s = p->tok.s;
    if (advance(p))
        return NULL;
    return s;
}

static struct tmpl_node *parse_for(struct parser *p, size_t pos)
{
    struct tmpl_node *n = mknode(p, N_FOR, pos);
    const char *names[TMPL_MAX_ARGS];
    size_t k = 0;
    if (!n)
        return NULL;
    for (;;) {
        if (k == TMPL_MAX_ARGS) {
            perr(p, p->tok.pos, WEIR_EINVAL, "too many loop variables (limit %d)", TMPL_MAX_ARGS);
            return NULL;
        }
        if (!(names[k] = target_name(p)))
            return NULL;
        k++;
        if (!at_op(p, ','))
            break;
        if (advance(p))
            return NULL;
    }
    if (!at_name(p, "in")) {
        char b[40];
        perr(p, p->tok.pos, WEIR_EINVAL, "expected 'in', got %s", tokdesc(p, b, sizeof b));
        return NULL;
    }
    n->targets = palloc(p, k * sizeof *n->targets);
    if (!n->targets || advance(p))
        return NULL;
    memcpy(n->targets, names, k * sizeof *names);
    n->ntargets = k;
    p->depth = 0;
    n->e = parse_or(p);
    if (!n->e)
        return NULL;
    if (at_name(p, "if")) {
        if (advance(p))
            return NULL;
        n->filter = parse_expr(p);
        if (!n->filter)
            return NULL;
    }
    if (expect_end(p))
        return NULL;
    struct stop st = { 0 };
    bool outer_saw = p->saw_loop;
    p->saw_loop = false;
    n->body = parse_nested(p, &st);
    n->uses_loop = p->saw_loop;
    p->saw_loop = outer_saw || n->uses_loop;
    if (p->rc)
        return NULL;
    if (st.name && !strcmp(st.name, "else")) {
        if (advance(p) || expect_end(p))
            return NULL;
        n->alt = parse_nested(p, &st);
        if (p->rc)
            return NULL;
    }
    if (!st.name || strcmp(st.name, "endfor")) {
        unclosed(p, &st, "for", pos, "endfor");
        return NULL;
    }
    if (advance(p) || expect_end(p))
        return NULL;
    return n;
}

static struct tmpl_node *parse_set(struct parser *p, size_t pos)
{
    const char *name = target_name(p);
    if (!name)
        return NULL;
    struct tmpl_node *n = mknode(p, N_SET, pos);
    if (!n)
        return NULL;
    n->targets = palloc(p, 2 * sizeof *n->targets);
    if (!n->targets)
        return NULL;
    n->targets[0] = name;
    n->ntargets = 1;
    if (at_op(p, '.')) {
        /* {% set ns.attr = ... %}: assigns into a namespace() object */
        if (advance(p) || !(n->targets[1] = target_name(p)))
            return NULL;
        n->ntargets = 2;
    }
    if (p->tok.kind == T_END) {
        /* {% set x %}...{% endset %} captures rendered text */
        n->kind = N_SETBLOCK;
        if (expect_end(p))
            return NULL;
        struct stop st = { 0 };
        n->body = parse_nested(p, &st);
        if (p->rc)
            return NULL;
        if (!st.name || strcmp(st.name, "endset")) {
            unclosed(p, &st, "set", pos, "endset");
            return NULL;
        }
        if (advance(p) || expect_end(p))
            return NULL;
        return n;
    }
    if (expect_op(p, '=', "="))
        return NULL;
    n->e = parse_expr(p);
    if (!n->e || expect_end(p))
        return NULL;
    return n;
}

/* {% raw %}...{% endraw %}: everything up to the end tag is text. */
static struct tmpl_node *parse_raw(struct parser *p, size_t pos)
{
    if (expect_end(p))
        return NULL;
    size_t start = p->pos;
    if (p->lstrip)
        while (start < p->len && is_space(p->src[start]))
            start++;
    for (size_t i = start; i + 1 < p->len; i++) {
        if (p->src[i] != '{' || p->src[i + 1] != '%')
            continue;
        size_t j = i + 2;
        bool strip = false;
        if (j < p->len && p->src[j] == '-') {
            strip = true;
            j++;
        }
        while (j < p->len &&
               (p->src[j] == ' ' || p->src[j] == '\t' || p->src[j] == '\n' || p->src[j] == '\r'))
            j++;
        if (p->len - j < 6 || memcmp(p->src + j, "endraw", 6))
            continue;
        p->pos = j;
        if (open_tag(p, '%') || advance(p) || expect_end(p))
            return NULL;
        struct tmpl_node *n = mknode(p, N_TEXT, start);
        if (!n)
            return NULL;
        size_t end = i;
        if (strip)
            while (end > start && is_space(p->src[end - 1]))
                end--;
        n->text = p->src + start;
        n->len = end - start;
        return n;
    }
    perr(p, pos, WEIR_EINVAL, "unclosed 'raw' block (missing '{%% endraw %%}')");
    return NULL;
}

static void append(struct tmpl_node ***tail, struct tmpl_node *n)
{
    **tail = n;
    *tail = &n->next;
}

/* Parses text and tags until the end of the template or a tag this level does not own
 * (elif, else, end...). In the latter case st->name is that tag and the current token is
 * its name. */
static struct tmpl_node *parse_body(struct parser *p, struct stop *st)
{
    struct tmpl_node *head = NULL, **tail = &head;
    const char *s = p->src;
    st->name = NULL;
    while (!p->rc) {
        size_t i = p->pos;
        while (i + 1 < p->len &&
               !(s[i] == '{' && (s[i + 1] == '{' || s[i + 1] == '%' || s[i + 1] == '#')))
            i++;
        bool found = i + 1 < p->len;
        size_t a = p->pos, b = found ? i : p->len;
        bool strip = found && i + 2 < p->len && s[i + 2] == '-';
        if (p->lstrip) {
            while (a < b && is_space(s[a]))
                a++;
            p->lstrip = false;
        }
        if (strip)
            while (b > a && is_space(s[b - 1]))
                b--;
        if (b > a) {
            struct tmpl_node *n = mknode(p, N_TEXT, a);
            if (!n)
                return NULL;
            n->text = s + a;
            n->len = b - a;
            append(&tail, n);
        }
        if (!found) {
            p->pos = p->len;
            return head;
        }
        size_t tagpos = i;
        char kind = s[i + 1];
        p->pos = i + 2 + (strip ? 1 : 0);
        if (kind == '#') {
            const char *e = memmem(s + p->pos, p->len - p->pos, "#}", 2);
            if (!e) {
                perr(p, tagpos, WEIR_EINVAL, "unclosed comment (missing '#}')");
                return NULL;
            }
            p->lstrip = e > s + p->pos && e[-1] == '-';
            p->pos = (size_t)(e - s) + 2;
            continue;
        }
        if (kind == '{') {
            struct tmpl_node *n = mknode(p, N_OUT, tagpos);
            if (!n || open_tag(p, '}'))
                return NULL;
            n->e = parse_expr(p);
            if (!n->e || expect_end(p))
                return NULL;
            append(&tail, n);
            continue;
        }
        if (open_tag(p, '%'))
            return NULL;
        if (p->tok.kind != T_NAME) {
            char bq[40];
            perr(p, p->tok.pos, WEIR_EINVAL, "expected a tag name, got %s",
                 tokdesc(p, bq, sizeof bq));
            return NULL;
        }
        const char *name = p->tok.s;
        struct tmpl_node *n = NULL;
        static const char *const stops[] = {
            "elif", "else", "endif", "endfor", "endset", "endraw"
        };
        for (size_t k = 0; k < WEIR_ARRAY_LEN(stops); k++) {
            if (!strcmp(name, stops[k])) {
                st->name = name;
                st->pos = tagpos;
                return head;
            }
        }
        if (advance(p))
            return NULL;
        p->depth = 0;
        if (!strcmp(name, "if"))
            n = parse_if(p, tagpos);
        else if (!strcmp(name, "for"))
            n = parse_for(p, tagpos);
        else if (!strcmp(name, "set"))
            n = parse_set(p, tagpos);
        else if (!strcmp(name, "raw"))
            n = parse_raw(p, tagpos);
        else
            perr(p, tagpos, WEIR_EINVAL, "unknown tag '%s'", name);
        if (!n)
            return NULL;
        append(&tail, n);
    }
    return NULL;
}

int tmpl__parse(struct tmpl *t, const char *src, size_t len, struct weir_err *err)
{
    memset(t, 0, sizeof *t);
    if (len > TMPL_MAX_SRC)
        return err_set(err, WEIR_ETOOBIG, "template is too big (%zu bytes, limit %zu)", len,
                       TMPL_MAX_SRC);
    /* Like Jinja's default keep_trailing_newline=False: one trailing newline is dropped. */
    if (len && src[len - 1] == '\n')
        len--;
    if (len && src[len - 1] == '\r')
        len--;
    t->arena = arena_new(0);
    t->consts = json_array();
    t->src = src;
    t->len = len;
    struct parser p = { .t = t, .src = src, .len = len, .err = err };
    struct stop st = { 0 };
    t->root = parse_body(&p, &st);
    if (!p.rc && st.name)
        perr(&p, st.pos, WEIR_EINVAL, "unexpected '%s'", st.name);
    return p.rc;
}

void tmpl__release(struct tmpl *t)
{
    arena_free(t->arena);
    json_decref(t->consts);
    memset(t, 0, sizeof *t);
}

/* Renders `len` bytes at `src` into a new string (*out, *outlen). */
static int render_n(const char *src, size_t len, const struct tmpl_env *env, char **out,
                    size_t *outlen, struct weir_err *err)
{
    struct tmpl t;
    struct buf b;
    int rc = tmpl__parse(&t, src, len, err);
    if (rc == 0) {
        size_t max = env && env->max_output ? env->max_output : TMPL_DEFAULT_OUTPUT;
        struct tmpl_ctx c = { .t = &t, .env = env, .err = err, .max_str = max };
        buf_init(&b, max);
        rc = tmpl__run(&c, &b);
        if (rc == 0) {
            *outlen = b.len;
            *out = buf_detach(&b);
        }
        buf_release(&b); /* buf_detach leaves a fresh empty buffer behind */
    }
    tmpl__release(&t);
    return rc;
}

int tmpl_render(const char *src, const struct tmpl_env *env, char **out, struct weir_err *err)
{
    struct weir_err local = { 0 };
    struct weir_err *e = err ? err : &local;
    size_t n;
    err_clear(e);
    if (!out)
        return err_set(e, WEIR_EINVAL, "tmpl_render: no output pointer");
    *out = NULL;
    if (!src)
        return err_set(e, WEIR_EINVAL, "tmpl_render: no template");
    return render_n(src, strnlen(src, TMPL_MAX_SRC + 1), env, out, &n, e);
}

#define TMPL_MAX_JSON_DEPTH 2048

static int render_value(json_t *v, const struct tmpl_env *env, struct buf *path, int depth,
                        json_t **out, struct weir_err *err)
{
    *out = NULL;
    if (depth > TMPL_MAX_JSON_DEPTH)
        return err_set(err, WEIR_ETOOBIG, "%s: value nests too deeply", path->s);
    size_t plen = path->len;
    int rc = 0;
    switch (json_typeof(v)) {
    case JSON_STRING: {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v), rn = 0;
        char *r = NULL;
        if (!memchr(s, '{', n) && !(n && (s[n - 1] == '\n' || s[n - 1] == '\r'))) {
            *out = json_stringn_nocheck(s, n); /* nothing to render */
            return 0;
        }
        rc = render_n(s, n, env, &r, &rn, err);
        if (rc) {
            if (path->len)
                err_prefix(err, "%s", path->s);
            return rc;
        }
        *out = json_stringn(r, rn);
        free(r);
        if (!*out)
            return err_set(err, WEIR_EINVAL, "%s%srendered value is not valid UTF-8", path->s,
                           path->len ? ": " : "");
        return 0;
    }
    case JSON_OBJECT: {
        json_t *o = json_object();
        const char *key;
        json_t *item;
        json_object_foreach(v, key, item) {
            json_t *r = NULL;
            if (path->len)
                buf_addc(path, '.');
            buf_adds(path, key);
            rc = render_value(item, env, path, depth + 1, &r, err);
            path->len = plen;
            path->s[plen] = '\0';
            if (rc || json_object_set_new(o, key, r)) {
                json_decref(o);
                return rc ? rc : err_set(err, WEIR_EINTERNAL, "cannot build the rendered object");
            }
        }
        *out = o;
        return 0;
    }
    case JSON_ARRAY: {
        json_t *a = json_array();
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item) {
            json_t *r = NULL;
            buf_addf(path, "[%zu]", i);
            rc = render_value(item, env, path, depth + 1, &r, err);
            path->len = plen;
            path->s[plen] = '\0';
            if (rc || json_array_append_new(a, r)) {
                json_decref(a);
                return rc ? rc : err_set(err, WEIR_EINTERNAL, "cannot build the rendered array");
            }
        }
        *out = a;
        return 0;
    }
    default:
        *out = json_copy(v);
        return 0;
    }
}

int tmpl_render_json(json_t *value, const struct tmpl_env *env, json_t **out, struct weir_err *err)
{
    struct weir_err local = { 0 };
    struct weir_err *e = err ? err : &local;
    err_clear(e);
    if (!out)
        return err_set(e, WEIR_EINVAL, "tmpl_render_json: no output pointer");
    *out = NULL;
    if (!value)
        return err_set(e, WEIR_EINVAL, "tmpl_render_json: no value");
    struct buf path;
    buf_init(&path, 1024);
    int rc = render_value(value, env, &path, 0, out, e);
    buf_release(&path);
    return rc;
}

int tmpl_check(const char *src, struct weir_err *err)
{
    struct weir_err local = { 0 };
    struct weir_err *e = err ? err : &local;
    struct tmpl t;
    err_clear(e);
    if (!src)
        return err_set(e, WEIR_EINVAL, "tmpl_check: no template");
    int rc = tmpl__parse(&t, src, strnlen(src, TMPL_MAX_SRC + 1), e);
    tmpl__release(&t);
    return rc;
}
