/* executor/conn.c - connections given as text (WEIR_CONN_<ID> environment variables):
 * Airflow's URI form scheme://login:password@host:port/schema?key=value&... and its JSON
 * form, turned into the object host->conn_get returns. */
#include "executor/executor_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"

#define MAX_CONN_TEXT (64 * 1024)

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into a new string; '+' becomes a space when `plus`. */
static char *pct_decode(const char *s, size_t n, bool plus)
{
    char *out = xmalloc(n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        int h, l;
        if (s[i] == '%' && i + 2 < n && (h = hexval(s[i + 1])) >= 0 &&
            (l = hexval(s[i + 2])) >= 0) {
            *o++ = (char)(h * 16 + l);
            i += 2;
        } else if (plus && s[i] == '+') {
            *o++ = ' ';
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

/* Sets key to the decoded s[0..n) unless empty; steals nothing. Returns -1 if the decoded
 * text is not UTF-8. */
static int set_part(json_t *o, const char *key, const char *s, size_t n, bool plus)
{
    if (n == 0)
        return 0;
    char *d = pct_decode(s, n, plus);
    json_t *v = json_string(d);
    free(d);
    if (!v)
        return -1;
    json_object_set_new(o, key, v);
    return 0;
}

static json_t *from_json(const char *conn_id, const char *text, struct weir_err *err)
{
    json_error_t je;
    json_t *in = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(in)) {
        json_decref(in);
        err_set(err, WEIR_EINVAL, "invalid connection JSON: %s", in ? "not an object" : je.text);
        return NULL;
    }
    json_t *o = json_pack("{s:s}", "conn_id", conn_id);
    static const char *const keys[] = { "conn_type", "host", "login", "password", "schema" };
    for (size_t i = 0; i < WEIR_ARRAY_LEN(keys); i++) {
        json_t *v = json_object_get(in, keys[i]);
        if (json_is_string(v) && *json_string_value(v))
            json_object_set(o, keys[i], v);
    }
    json_t *port = json_object_get(in, "port");
    if (json_is_integer(port))
        json_object_set(o, "port", port);
    json_t *extra = json_object_get(in, "extra");
    if (json_is_string(extra))
        extra = json_loads(json_string_value(extra), 0, NULL);
    else
        json_incref(extra);
    if (json_is_object(extra))
        json_object_set(o, "extra", extra);
    json_decref(extra);
    json_decref(in);
    return o;
}

json_t *exec__conn_parse(const char *conn_id, const char *text, struct weir_err *err)
{
    if (strlen(text) > MAX_CONN_TEXT) {
        err_set(err, WEIR_ETOOBIG, "connection text longer than %d bytes", MAX_CONN_TEXT);
        return NULL;
    }
    while (*text == ' ' || *text == '\t' || *text == '\n')
        text++;
    if (*text == '{')
        return from_json(conn_id, text, err);

    const char *sep = strstr(text, "://");
    if (!sep || sep == text) {
        err_set(err, WEIR_EINVAL, "connection URI needs a scheme (scheme://...)");
        return NULL;
    }
    json_t *o = json_pack("{s:s}", "conn_id", conn_id);
    char *type = xstrndup(text, (size_t)(sep - text));
    for (char *p = type; *p; p++)
        if (*p == '-')
            *p = '_';
    if (strcmp(type, "postgresql") == 0) /* as Airflow does */
        json_object_set_new(o, "conn_type", json_string("postgres"));
    else
        json_object_set_new(o, "conn_type", json_string(type));
    free(type);

    const char *a = sep + 3;
    size_t alen = strcspn(a, "/?#");
    const char *rest = a + alen;
    /* userinfo ends at the LAST '@' of the authority (passwords may hold '@' unescaped). */
    const char *at = NULL;
    for (const char *p = a; p < a + alen; p++)
        if (*p == '@')
            at = p;
    const char *hp = a;
    if (at) {
        const char *colon = memchr(a, ':', (size_t)(at - a));
        if (colon) {
            if (set_part(o, "login", a, (size_t)(colon - a), false) < 0 ||
                set_part(o, "password", colon + 1, (size_t)(at - colon - 1), false) < 0)
                goto bad_utf8;
        } else if (set_part(o, "login", a, (size_t)(at - a), false) < 0) {
            goto bad_utf8;
        }
        hp = at + 1;
    }
    size_t hplen = (size_t)(a + alen - hp);
    const char *port = NULL;
    if (hplen && hp[0] == '[') { /* [ipv6]:port */
        const char *rb = memchr(hp, ']', hplen);
        if (rb && rb + 1 < hp + hplen && rb[1] == ':')
            port = rb + 1;
    } else {
        port = memchr(hp, ':', hplen);
    }
    size_t hostlen = port ? (size_t)(port - hp) : hplen;
    if (set_part(o, "host", hp, hostlen, false) < 0)
        goto bad_utf8;
    if (port && port + 1 < hp + hplen) {
        char pb[16];
        size_t pl = (size_t)(hp + hplen - port - 1);
        char *end;
        long v = 0;
        if (pl < sizeof pb) {
            memcpy(pb, port + 1, pl);
            pb[pl] = '\0';
            errno = 0;
            v = strtol(pb, &end, 10);
        }
        if (pl >= sizeof pb || errno || *end || v < 1 || v > 65535) {
            json_decref(o);
            err_set(err, WEIR_EINVAL, "connection URI has an invalid port");
            return NULL;
        }
        json_object_set_new(o, "port", json_integer(v));
    }
    if (*rest == '/') {
        size_t sl = strcspn(rest + 1, "?#");
        if (set_part(o, "schema", rest + 1, sl, false) < 0)
            goto bad_utf8;
        rest += 1 + sl;
    }
    if (*rest == '?') {
        json_t *extra = json_object();
        const char *q = rest + 1;
        while (*q && *q != '#') {
            size_t pl = strcspn(q, "&#");
            const char *eq = memchr(q, '=', pl);
            size_t kl = eq ? (size_t)(eq - q) : pl;
            if (kl) {
                char *k = pct_decode(q, kl, true);
                char *v = eq ? pct_decode(eq + 1, pl - kl - 1, true) : xstrdup("");
                if (strcmp(k, "__extra__") == 0) {
                    json_t *j = json_loads(v, 0, NULL);
                    if (json_is_object(j))
                        json_object_update(extra, j);
                    json_decref(j);
                } else {
                    json_t *js = json_string(v);
                    if (js)
                        json_object_set_new(extra, k, js);
                }
                free(k);
                free(v);
            }
            q += pl;
            if (*q == '&')
                q++;
        }
        if (json_object_size(extra))
            json_object_set_new(o, "extra", extra);
        else
            json_decref(extra);
    }
    return o;
bad_utf8:
    json_decref(o);
    err_set(err, WEIR_EINVAL, "connection URI: a part is not UTF-8 after decoding");
    return NULL;
}
