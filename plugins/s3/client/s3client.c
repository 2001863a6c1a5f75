/* plugins/s3/client/s3client.c - the S3 client of s3client.h: libcurl for transport and
 * SigV4 signing, a tiny tag scanner for S3's XML, retries with jittered backoff.
 *
 * SigV4 with libcurl 7.88.1 (Debian 12). CURLOPT_AWS_SIGV4 signs the request, but:
 * - it does not send x-amz-content-sha256, which S3 requires. We send it ourselves, and
 *   7.88.1 signs every header given through CURLOPT_HTTPHEADER, so it is covered. Its
 *   payload hash, though, is always computed over CURLOPT_POSTFIELDS (the empty string
 *   when the body comes from a read callback), so every body goes through POSTFIELDS:
 *   the hash libcurl signs and the one we send are then both sha256(body). That is why
 *   uploads read one part at a time into memory rather than streaming from a callback:
 *   memory stays bounded by the part size (not the file size).
 * - it copies the query string verbatim into the canonical request. We only ever send
 *   canonical queries: every pair RFC 3986-encoded, "key=" even when empty, sorted.
 * - it signs the path as given. We send each key segment RFC 3986-encoded (uppercase hex,
 *   '/' kept) and set CURLOPT_PATH_AS_IS, so decode-then-encode on the server (what S3
 *   does) gives back our exact path: spaces, '+', '%', unicode and "a//b" keys work.
 * - a header removed with "Name:" would still be signed, so we never remove any (curl's
 *   own Expect: 100-continue is not signed and S3 accepts it).
 * Responses are checked for S3's XML errors, also inside 200 responses (CopyObject and
 * CompleteMultipartUpload may fail after the status line was sent). */
#include "s3client.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MIB               (1024u * 1024u)
#define DEFAULT_THRESHOLD (8ull * MIB)
#define DEFAULT_PART      (8ull * MIB)
#define MIN_PART          (5ull * MIB)
#define MAX_PART          (5ull * 1024 * MIB) /* S3's limit for a part and a single PUT */
#define MAX_PARTS         10000
#define MAX_XML_BODY      (16u * MIB) /* error and listing responses */
#define DEFAULT_MAX_ITEMS 1000000
#define MAX_BACKOFF_MS    8000
#define EMPTY_SHA256      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct s3_client {
    char *scheme;   /* "http" or "https" */
    char *hostport; /* "127.0.0.1:9000", "s3.eu-west-1.amazonaws.com" */
    char *region;
    char *access_key;
    char *secret_key;
    char *token; /* session token or NULL */
    bool path_style;
    int attempts;
    int base_delay_ms;
    int (*cancel)(void *);
    void *cancel_arg;
    void (*log)(void *, const char *);
    void *log_arg;
    CURL *curl;
    uint64_t rng;
};

/* ---- small helpers ------------------------------------------------------------------- */

static int set_err(struct s3_err *err, int status, int http, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int set_err(struct s3_err *err, int status, int http, const char *code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->status = status;
        err->http = http;
        snprintf(err->code, sizeof err->code, "%s", code ? code : "");
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return status;
}

static const char *errtext(int e, char *buf, size_t len)
{
    return strerror_r(e, buf, len);
}

static char *dupstr(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A growable byte buffer with a hard maximum. */
struct dbuf {
    char *p;
    size_t len, cap, max;
};

static int dbuf_add(struct dbuf *b, const void *data, size_t n)
{
    if (n > b->max - b->len)
        return -1;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np)
            return -1;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static int dbuf_str(struct dbuf *b, const char *s)
{
    return dbuf_add(b, s, strlen(s));
}

static int dbuf_printf(struct dbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int dbuf_printf(struct dbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return -1;
    return dbuf_add(b, tmp, (size_t)n);
}

static void dbuf_release(struct dbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

static bool unreserved(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

/* Appends s RFC 3986-encoded (uppercase hex, as SigV4 wants); '/' kept when keep_slash. */
static int enc_add(struct dbuf *b, const char *s, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (unreserved(*p) || (keep_slash && *p == '/')) {
            if (dbuf_add(b, p, 1) < 0)
                return -1;
        } else {
            char e[3] = { '%', hex[*p >> 4], hex[*p & 15] };
            if (dbuf_add(b, e, 3) < 0)
                return -1;
        }
    }
    return 0;
}

/* A canonical query string: pairs encoded, "k=" for empty values, sorted by key then
 * value (byte order of the encoded text, as SigV4 specifies). */
struct qpair {
    const char *k, *v;
};

static int qpair_cmp(const void *a, const void *b)
{
    const struct qpair *x = a, *y = b;
    int c = strcmp(x->k, y->k);
    return c ? c : strcmp(x->v, y->v);
}

/* Builds the query from n pairs whose values may be NULL (pair left out). Our keys are
 * all unreserved ASCII, so sorting the raw keys sorts the encoded ones. */
static int query_build(struct dbuf *q, struct qpair *pairs, size_t n)
{
    qsort(pairs, n, sizeof *pairs, qpair_cmp);
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (!pairs[i].v)
            continue;
        if ((!first && dbuf_str(q, "&") < 0) || enc_add(q, pairs[i].k, false) < 0 ||
            dbuf_str(q, "=") < 0 || enc_add(q, pairs[i].v, false) < 0)
            return -1;
        first = false;
    }
    return 0;
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    static const char hex[] = "0123456789abcdef";
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        out[0] = '\0'; /* the server then rejects the request with a clear error */
        return;
    }
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

/* ---- XML: S3's responses are flat enough for a tag scanner --------------------------- */

/* Finds the first <tag>...</tag> in [s, end); sets the text span and returns the position
 * after the closing tag, or NULL. */
static const char *xml_find(const char *s, const char *end, const char *tag, const char **vs,
                            size_t *vl)
{
    char open[72], close[72];
    if (!s || end <= s)
        return NULL;
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    size_t ol = strlen(open), cl = strlen(close);
    const char *p = memmem(s, (size_t)(end - s), open, ol);
    if (!p)
        return NULL;
    p += ol;
    const char *q = memmem(p, (size_t)(end - p), close, cl);
    if (!q)
        return NULL;
    *vs = p;
    *vl = (size_t)(q - p);
    return q + cl;
}

/* Decodes XML text (the five entities and numeric references) into a new string. */
static char *xml_text(const char *s, size_t n)
{
    char *out = malloc(n * 4 + 1), *o = out; /* &#x10FFFF; never grows, UTF-8 is <= 4 */
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '&') {
            *o++ = s[i];
            continue;
        }
        const char *semi = memchr(s + i, ';', n - i);
        size_t el = semi ? (size_t)(semi - (s + i)) + 1 : 0;
        static const struct {
            const char *e;
            char c;
        } ents[] = { { "&amp;", '&' },
                     { "&lt;", '<' },
                     { "&gt;", '>' },
                     { "&quot;", '"' },
                     { "&apos;", '\'' } };
        bool done = false;
        for (size_t k = 0; semi && k < sizeof ents / sizeof ents[0]; k++) {
            if (strlen(ents[k].e) == el && memcmp(s + i, ents[k].e, el) == 0) {
                *o++ = ents[k].c;
                i += el - 1;
                done = true;
                break;
            }
        }
        if (!done && semi && el > 3 && s[i + 1] == '#') {
            char *e;
            unsigned long cp = (s[i + 2] == 'x' || s[i + 2] == 'X') ? strtoul(s + i + 3, &e, 16)
                                                                    : strtoul(s + i + 2, &e, 10);
            if (e == semi && cp > 0 && cp <= 0x10FFFF) {
                if (cp < 0x80) {
                    *o++ = (char)cp;
                } else if (cp < 0x800) {
                    *o++ = (char)(0xC0 | (cp >> 6));
                    *o++ = (char)(0x80 | (cp & 0x3F));
                } else if (cp < 0x10000) {
                    *o++ = (char)(0xE0 | (cp >> 12));
                    *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                    *o++ = (char)(0x80 | (cp & 0x3F));
                } else {
                    *o++ = (char)(0xF0 | (cp >> 18));
                    *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
                    *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                    *o++ = (char)(0x80 | (cp & 0x3F));
                }
                i += el - 1;
                done = true;
            }
        }
        if (!done)
            *o++ = '&';
    }
    *o = '\0';
    return out;
}

static char *xml_get(const char *s, const char *end, const char *tag)
{
    const char *vs;
    size_t vl;
    if (!xml_find(s, end, tag, &vs, &vl))
        return NULL;
    return xml_text(vs, vl);
}

/* True when the body is an <Error> document. */
static bool xml_is_error(const char *body, size_t len)
{
    const char *p = body, *end = body + len;
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    if (end - p > 5 && memcmp(p, "<?xml", 5) == 0) {
        const char *q = memmem(p, (size_t)(end - p), "?>", 2);
        if (!q)
            return false;
        p = q + 2;
        while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
            p++;
    }
    return end - p >= 7 && memcmp(p, "<Error>", 7) == 0;
}

/* ---- client -------------------------------------------------------------------------- */

static bool valid_bucket(const char *b)
{
    size_t n = strlen(b);
    if (n < 1 || n > 255)
        return false;
    for (; *b; b++)
        if (!((*b >= 'a' && *b <= 'z') || (*b >= 'A' && *b <= 'Z') || (*b >= '0' && *b <= '9') ||
              *b == '.' || *b == '-' || *b == '_'))
            return false;
    return true;
}

struct s3_client *s3_client_new(const char *endpoint, const char *region, const char *access_key,
                                const char *secret_key, bool path_style, struct s3_err *err)
{
    struct s3_client *c = NULL;
    char *aws = NULL;
    if (!access_key || !*access_key || !secret_key || !*secret_key) {
        set_err(err, S3_EINVAL, 0, NULL, "s3: an access key and a secret key are required");
        return NULL;
    }
    if (!region || !*region)
        region = "us-east-1";
    for (const char *p = region; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-')) {
            set_err(err, S3_EINVAL, 0, NULL, "s3: invalid region '%s'", region);
            return NULL;
        }
    if (!endpoint || !*endpoint) {
        size_t n = strlen(region) + 64;
        aws = malloc(n);
        if (!aws)
            goto oom;
        snprintf(aws, n, "https://s3.%s.amazonaws.com", region);
        endpoint = aws;
    }
    const char *sep = strstr(endpoint, "://");
    if (!sep || !((sep - endpoint == 4 && strncmp(endpoint, "http", 4) == 0) ||
                  (sep - endpoint == 5 && strncmp(endpoint, "https", 5) == 0))) {
        set_err(err, S3_EINVAL, 0, NULL, "s3: endpoint '%s' must start with http:// or https://",
                endpoint);
        free(aws);
        return NULL;
    }
    const char *hp = sep + 3;
    size_t hl = strcspn(hp, "/?#");
    if (hl == 0 || (hp[hl] == '/' && hp[hl + 1] != '\0') || (hp[hl] && hp[hl] != '/') ||
        memchr(hp, '@', hl)) {
        set_err(err, S3_EINVAL, 0, NULL,
                "s3: endpoint '%s' must be scheme://host[:port] without a path", endpoint);
        free(aws);
        return NULL;
    }
    c = calloc(1, sizeof *c);
    if (!c)
        goto oom;
    c->scheme = strndup(endpoint, (size_t)(sep - endpoint));
    c->hostport = strndup(hp, hl);
    c->region = dupstr(region);
    c->access_key = dupstr(access_key);
    c->secret_key = dupstr(secret_key);
    c->path_style = path_style;
    c->attempts = 5;
    c->base_delay_ms = 250;
    c->curl = curl_easy_init();
    c->rng = (uint64_t)mono_ms() ^ ((uint64_t)(uintptr_t)c << 16) ^ (uint64_t)getpid();
    if (!c->scheme || !c->hostport || !c->region || !c->access_key || !c->secret_key || !c->curl)
        goto oom;
    free(aws);
    return c;
oom:
    free(aws);
    s3_client_free(c);
    set_err(err, S3_EINVAL, 0, NULL, "s3: out of memory creating the client");
    return NULL;
}

void s3_client_free(struct s3_client *c)
{
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    free(c->scheme);
    free(c->hostport);
    free(c->region);
    free(c->access_key);
    if (c->secret_key)
        explicit_bzero(c->secret_key, strlen(c->secret_key));
    free(c->secret_key);
    free(c->token);
    free(c);
}

void s3_client_set_retries(struct s3_client *c, int attempts, int base_delay_ms)
{
    c->attempts = attempts < 1 ? 1 : attempts;
    c->base_delay_ms = base_delay_ms < 0 ? 0 : base_delay_ms;
}

void s3_client_set_cancel(struct s3_client *c, int (*fn)(void *arg), void *arg)
{
    c->cancel = fn;
    c->cancel_arg = arg;
}

void s3_client_set_log(struct s3_client *c, void (*fn)(void *arg, const char *line), void *arg)
{
    c->log = fn;
    c->log_arg = arg;
}

/* Reads a string or boolean setting from extra; NULL when absent or of another type. */
static const char *extra_str(json_t *extra, const char *key)
{
    json_t *v = json_object_get(extra, key);
    if (json_is_string(v) && *json_string_value(v))
        return json_string_value(v);
    if (json_is_true(v))
        return "true";
    if (json_is_false(v))
        return "false";
    return NULL;
}

/* -1 unset, 0 false, 1 true, -2 invalid. */
static int parse_bool(const char *s)
{
    if (!s)
        return -1;
    if (!strcasecmp(s, "true") || !strcmp(s, "1") || !strcasecmp(s, "yes") || !strcasecmp(s, "on"))
        return 1;
    if (!strcasecmp(s, "false") || !strcmp(s, "0") || !strcasecmp(s, "no") || !strcasecmp(s, "off"))
        return 0;
    return -2;
}

struct s3_client *s3_client_from_conn(json_t *conn, struct s3_err *err)
{
    if (!json_is_object(conn)) {
        set_err(err, S3_EINVAL, 0, NULL, "s3: connection is not an object");
        return NULL;
    }
    const char *id = json_string_value(json_object_get(conn, "conn_id"));
    id = id ? id : "?";
    const char *type = json_string_value(json_object_get(conn, "conn_type"));
    if (type && strcmp(type, "aws") != 0 && strcmp(type, "s3") != 0) {
        set_err(err, S3_EINVAL, 0, NULL,
                "connection '%s': type '%s' is not an S3 connection (use aws or s3)", id, type);
        return NULL;
    }
    json_t *extra = json_object_get(conn, "extra");
    const char *ak = json_string_value(json_object_get(conn, "login"));
    const char *sk = json_string_value(json_object_get(conn, "password"));
    if (!ak)
        ak = extra_str(extra, "aws_access_key_id");
    if (!sk)
        sk = extra_str(extra, "aws_secret_access_key");
    const char *region = extra_str(extra, "region_name");
    if (!region)
        region = extra_str(extra, "region");
    const char *endpoint = extra_str(extra, "endpoint_url");
    const char *host = json_string_value(json_object_get(conn, "host"));
    int secure = parse_bool(extra_str(extra, "secure"));
    int path = parse_bool(extra_str(extra, "path_style"));
    const char *addressing = extra_str(extra, "addressing_style");
    if (secure == -2 || path == -2) {
        set_err(err, S3_EINVAL, 0, NULL,
                "connection '%s': 'secure' and 'path_style' must be true or false", id);
        return NULL;
    }
    if (addressing && path < 0) {
        if (!strcmp(addressing, "path"))
            path = 1;
        else if (!strcmp(addressing, "virtual"))
            path = 0;
        else if (strcmp(addressing, "auto") != 0) {
            set_err(err, S3_EINVAL, 0, NULL,
                    "connection '%s': addressing_style must be path, virtual or auto", id);
            return NULL;
        }
    }
    char ep[512];
    if (!endpoint && host && *host) {
        json_t *port = json_object_get(conn, "port");
        if (strstr(host, "://")) {
            snprintf(ep, sizeof ep, "%s", host);
        } else if (json_is_integer(port)) {
            snprintf(ep, sizeof ep, "%s://%s:%lld", secure == 0 ? "http" : "https", host,
                     (long long)json_integer_value(port));
        } else {
            snprintf(ep, sizeof ep, "%s://%s", secure == 0 ? "http" : "https", host);
        }
        endpoint = ep;
    }
    if (endpoint && strlen(endpoint) >= sizeof ep) {
        set_err(err, S3_EINVAL, 0, NULL, "connection '%s': endpoint too long", id);
        return NULL;
    }
    /* "http://host:9000/" is common in configs: drop one trailing slash. */
    char epbuf[512];
    if (endpoint) {
        snprintf(epbuf, sizeof epbuf, "%s", endpoint);
        size_t n = strlen(epbuf);
        if (n > 0 && epbuf[n - 1] == '/')
            epbuf[n - 1] = '\0';
        endpoint = epbuf;
    }
    if (path < 0)
        path = endpoint ? 1 : 0;
    struct s3_err e2 = { 0 };
    struct s3_client *c = s3_client_new(endpoint, region, ak, sk, path == 1, &e2);
    if (!c) {
        set_err(err, e2.status, 0, NULL, "connection '%s': %s", id, e2.msg);
        return NULL;
    }
    const char *token = extra_str(extra, "aws_session_token");
    if (token && !(c->token = strdup(token))) {
        s3_client_free(c);
        set_err(err, S3_EINVAL, 0, NULL, "s3: out of memory");
        return NULL;
    }
    return c;
}

int s3_url_parse(const char *url, char **bucket, char **key, struct s3_err *err)
{
    *bucket = *key = NULL;
    if (!url || strncmp(url, "s3://", 5) != 0)
        return set_err(err, S3_EINVAL, 0, NULL, "'%s' is not an s3:// URL", url ? url : "");
    const char *b = url + 5;
    size_t bl = strcspn(b, "/");
    *bucket = strndup(b, bl);
    *key = strdup(b[bl] == '/' ? b + bl + 1 : "");
    if (!*bucket || !*key) {
        free(*bucket);
        free(*key);
        *bucket = *key = NULL;
        return set_err(err, S3_EINVAL, 0, NULL, "out of memory");
    }
    if (!valid_bucket(*bucket)) {
        set_err(err, S3_EINVAL, 0, NULL, "'%s': invalid bucket name '%s'", url, *bucket);
        free(*bucket);
        free(*key);
        *bucket = *key = NULL;
        return S3_EINVAL;
    }
    return 0;
}

/* ---- one request, with retries --------------------------------------------------------- */

struct req {
    const char *op;     /* for messages: "put", "get"... */
    const char *method; /* GET HEAD PUT POST DELETE */
    const char *bucket;
    const char *key; /* NULL for bucket requests */
    const char *query;
    const char *content_type;
    const char *extra_header; /* one "Name: value" line or NULL */
    const void *body;         /* sent when has_body */
    size_t body_len;
    bool has_body;
    bool error_in_200; /* the body of a 200 may be an <Error> document */
    FILE *out;         /* 2xx bodies go here instead of resp.body */
};

struct resp {
    long http;
    struct dbuf body;
    char etag[128];
    char last_modified[64];
    uint64_t content_length;
    bool too_big;
    FILE *out;
    bool write_failed;
    CURL *curl;
};

struct xfer {
    struct s3_client *c;
    bool cancelled;
};

static size_t on_write(char *data, size_t size, size_t n, void *arg)
{
    struct resp *r = arg;
    size_t len = size * n;
    long code = 0;
    curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &code);
    if (r->out && code >= 200 && code < 300) {
        if (fwrite(data, 1, len, r->out) != len) {
            r->write_failed = true;
            return 0;
        }
        return len;
    }
    if (dbuf_add(&r->body, data, len) < 0) {
        r->too_big = true;
        return 0;
    }
    return len;
}

/* Copies a header value (trimmed, quotes removed for ETag) when the line is `name:`. */
static bool header_value(const char *line, size_t len, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return false;
    const char *v = line + nl + 1, *e = line + len;
    while (v < e && (*v == ' ' || *v == '\t' || *v == '"'))
        v++;
    while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ' || e[-1] == '"'))
        e--;
    snprintf(out, cap, "%.*s", (int)(e - v), v);
    return true;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    struct resp *r = arg;
    size_t len = size * n;
    char tmp[32];
    if (len > 5 && strncmp(data, "HTTP/", 5) == 0) { /* a new response (after 100, redirect) */
        r->etag[0] = r->last_modified[0] = '\0';
        r->content_length = 0;
    }
    header_value(data, len, "ETag", r->etag, sizeof r->etag);
    header_value(data, len, "Last-Modified", r->last_modified, sizeof r->last_modified);
    if (header_value(data, len, "Content-Length", tmp, sizeof tmp))
        r->content_length = strtoull(tmp, NULL, 10);
    return len;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    struct xfer *x = arg;
    if (x->c->cancel && x->c->cancel(x->c->cancel_arg)) {
        x->cancelled = true;
        return 1;
    }
    return 0;
}

/* "s3://bucket/key" for messages (truncated when long). */
static void obj_name(const struct req *q, char *out, size_t cap)
{
    snprintf(out, cap, "s3://%s%s%s", q->bucket, q->key ? "/" : "", q->key ? q->key : "");
}

static int build_url(struct s3_client *c, const struct req *q, struct dbuf *u)
{
    if (dbuf_printf(u, "%s://", c->scheme) < 0)
        return -1;
    if (c->path_style) {
        if (dbuf_str(u, c->hostport) < 0 || dbuf_str(u, "/") < 0 ||
            enc_add(u, q->bucket, false) < 0)
            return -1;
        if (q->key && (dbuf_str(u, "/") < 0 || enc_add(u, q->key, true) < 0))
            return -1;
    } else {
        if (dbuf_printf(u, "%s.%s/", q->bucket, c->hostport) < 0)
            return -1;
        if (q->key && enc_add(u, q->key, true) < 0)
            return -1;
    }
    if (q->query && *q->query && (dbuf_str(u, "?") < 0 || dbuf_str(u, q->query) < 0))
        return -1;
    return 0;
}

static bool curl_retryable(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return true;
    default:
        return false;
    }
}

static bool code_retryable(const char *code)
{
    return !strcmp(code, "InternalError") || !strcmp(code, "SlowDown") ||
           !strcmp(code, "ServiceUnavailable") || !strcmp(code, "RequestTimeout");
}

/* Turns an error response into `err`; returns the S3_E* code. */
static int http_error(const struct req *q, struct resp *r, struct s3_err *err)
{
    char name[300];
    obj_name(q, name, sizeof name);
    char *code = NULL, *msg = NULL;
    if (r->body.len && xml_is_error(r->body.p, r->body.len)) {
        code = xml_get(r->body.p, r->body.p + r->body.len, "Code");
        msg = xml_get(r->body.p, r->body.p + r->body.len, "Message");
    }
    int st = S3_EHTTP;
    if (r->http == 404)
        st = S3_ENOTFOUND;
    else if (r->http == 401 || r->http == 403)
        st = S3_EDENIED;
    const char *c = code ? code : "";
    if (!code && r->http == 404)
        c = q->key ? "NoSuchKey" : "NoSuchBucket";
    if (!code && r->http == 403)
        c = "AccessDenied";
    const char *hint = "";
    if (!strcmp(c, "SignatureDoesNotMatch"))
        hint = " (check the secret key and region)";
    else if (!strcmp(c, "InvalidAccessKeyId"))
        hint = " (check the access key)";
    else if (!strcmp(c, "PermanentRedirect") || !strcmp(c, "AuthorizationHeaderMalformed"))
        hint = " (check the region and the endpoint)";
    if (msg && *msg)
        set_err(err, st, (int)r->http, c, "%s '%s': %s: %s (HTTP %ld)%s", q->op, name,
                *c ? c : "error", msg, r->http, hint);
    else
        set_err(err, st, (int)r->http, c, "%s '%s': %s (HTTP %ld)%s", q->op, name, *c ? c : "error",
                r->http, hint);
    free(code);
    free(msg);
    return st;
}

static uint64_t rng_next(struct s3_client *c)
{
    c->rng ^= c->rng << 13;
    c->rng ^= c->rng >> 7;
    c->rng ^= c->rng << 17;
    return c->rng;
}

/* Sleeps ms, polling the cancel callback; false when cancelled. */
static bool backoff_sleep(struct s3_client *c, int ms)
{
    int64_t until = mono_ms() + ms;
    for (;;) {
        if (c->cancel && c->cancel(c->cancel_arg))
            return false;
        int64_t left = until - mono_ms();
        if (left <= 0)
            return true;
        struct timespec ts = { 0, (long)(left < 50 ? left : 50) * 1000000L };
        nanosleep(&ts, NULL);
    }
}

/* One attempt. Returns 0 when the response is a success, else the S3_E* code with `err`
 * set and *retry telling whether another attempt may help. */
static int perform_once(struct s3_client *c, const struct req *q, const char *url, struct resp *r,
                        bool *retry, struct s3_err *err)
{
    CURL *h = c->curl;
    char name[300], hdr[160], ebuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers = NULL, *tmp;
    char sigv4[96], sha[65];
    struct xfer x = { c, false };
    int st = 0;
    *retry = false;
    obj_name(q, name, sizeof name);

    if (q->has_body)
        sha256_hex(q->body ? q->body : "", q->body_len, sha);
    else
        snprintf(sha, sizeof sha, "%s", EMPTY_SHA256);
    snprintf(hdr, sizeof hdr, "x-amz-content-sha256: %s", sha);
    if (!(tmp = curl_slist_append(headers, hdr)))
        goto oom;
    headers = tmp;
    if (q->has_body) {
        char ct[300];
        snprintf(ct, sizeof ct, "Content-Type: %s",
                 q->content_type ? q->content_type : "application/octet-stream");
        if (!(tmp = curl_slist_append(headers, ct)))
            goto oom;
        headers = tmp;
    }
    if (q->extra_header) {
        if (!(tmp = curl_slist_append(headers, q->extra_header)))
            goto oom;
        headers = tmp;
    }
    if (c->token) {
        struct dbuf t = { .max = 8192 };
        if (dbuf_printf(&t, "x-amz-security-token: ") < 0 || dbuf_str(&t, c->token) < 0) {
            dbuf_release(&t);
            goto oom;
        }
        tmp = curl_slist_append(headers, t.p);
        dbuf_release(&t);
        if (!tmp)
            goto oom;
        headers = tmp;
    }

    curl_easy_reset(h);
    snprintf(sigv4, sizeof sigv4, "aws:amz:%s:s3", c->region);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4);
    curl_easy_setopt(h, CURLOPT_USERNAME, c->access_key);
    curl_easy_setopt(h, CURLOPT_PASSWORD, c->secret_key);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (!strcmp(q->method, "HEAD")) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(q->method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q->method);
    }
    if (q->has_body) {
        /* POSTFIELDS, not a read callback: libcurl 7.88.1 hashes only POSTFIELDS. */
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, q->body ? (const char *)q->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
    }

    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->http);
    if (rc != CURLE_OK) {
        if (x.cancelled || (rc == CURLE_ABORTED_BY_CALLBACK && c->cancel)) {
            st = set_err(err, S3_ECANCELLED, 0, NULL, "%s '%s': cancelled", q->op, name);
        } else if (r->write_failed) {
            char eb[128];
            st = set_err(err, S3_EIO, 0, NULL, "%s '%s': cannot write the local file: %s", q->op,
                         name, errtext(errno, eb, sizeof eb));
        } else if (r->too_big) {
            st = set_err(err, S3_ETOOBIG, (int)r->http, NULL,
                         "%s '%s': response larger than %u bytes", q->op, name, MAX_XML_BODY);
        } else {
            *retry = curl_retryable(rc);
            st = set_err(err, S3_ENET, 0, NULL, "%s '%s': %s://%s: %s", q->op, name, c->scheme,
                         c->hostport, *ebuf ? ebuf : curl_easy_strerror(rc));
        }
    } else if (r->http < 200 || r->http >= 300) {
        st = http_error(q, r, err);
        *retry = r->http >= 500 || r->http == 429 || code_retryable(err ? err->code : "");
    } else if (q->error_in_200 && xml_is_error(r->body.p ? r->body.p : "", r->body.len)) {
        st = http_error(q, r, err);
        if (st == S3_EHTTP || st == S3_ENOTFOUND || st == S3_EDENIED)
            *retry = code_retryable(err ? err->code : "");
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(headers);
    return st;
oom:
    curl_slist_free_all(headers);
    return set_err(err, S3_EINVAL, 0, NULL, "%s '%s': out of memory", q->op, name);
}

/* Runs a request with retries. On success returns 0 with `r` holding the response (the
 * caller releases r->body); on failure returns an S3_E* code and fills `err`. */
static int perform(struct s3_client *c, const struct req *q, struct resp *r, struct s3_err *err)
{
    struct dbuf url = { .max = 64 * 1024 };
    struct s3_err local;
    char name[300];
    int st = 0;
    obj_name(q, name, sizeof name);
    if (!err)
        err = &local;
    memset(r, 0, sizeof *r);
    r->body.max = MAX_XML_BODY;
    r->curl = c->curl;
    r->out = q->out;
    if (!valid_bucket(q->bucket))
        return set_err(err, S3_EINVAL, 0, NULL, "%s '%s': invalid bucket name '%s'", q->op, name,
                       q->bucket);
    if (q->key && !*q->key)
        return set_err(err, S3_EINVAL, 0, NULL, "%s '%s': empty key", q->op, name);
    if (build_url(c, q, &url) < 0) {
        dbuf_release(&url);
        return set_err(err, S3_ETOOBIG, 0, NULL, "%s '%s': URL too long", q->op, name);
    }
    int tries = 0;
    for (int attempt = 1;; attempt++) {
        bool retry = false;
        tries = attempt;
        r->body.len = 0;
        r->http = 0;
        r->write_failed = r->too_big = false;
        if (r->out) {
            if (fflush(r->out) != 0 || fseeko(r->out, 0, SEEK_SET) != 0 ||
                ftruncate(fileno(r->out), 0) != 0) {
                char eb[128];
                st = set_err(err, S3_EIO, 0, NULL, "%s '%s': cannot rewind the local file: %s",
                             q->op, name, errtext(errno, eb, sizeof eb));
                break;
            }
        }
        st = perform_once(c, q, url.p, r, &retry, err);
        if (st == 0 || !retry || attempt >= c->attempts)
            break;
        int64_t delay = (int64_t)c->base_delay_ms << (attempt - 1 < 16 ? attempt - 1 : 16);
        if (delay > MAX_BACKOFF_MS)
            delay = MAX_BACKOFF_MS;
        delay = delay / 2 + (int64_t)(rng_next(c) % (uint64_t)(delay / 2 + 1)); /* jitter */
        if (c->log) {
            char line[1024];
            snprintf(line, sizeof line, "retrying %s '%s' in %lld ms (attempt %d of %d): %s", q->op,
                     name, (long long)delay, attempt + 1, c->attempts, err->msg);
            c->log(c->log_arg, line);
        }
        if (!backoff_sleep(c, (int)delay)) {
            st = set_err(err, S3_ECANCELLED, 0, NULL, "%s '%s': cancelled", q->op, name);
            break;
        }
    }
    if (st != 0 && tries > 1 && st != S3_ECANCELLED) {
        size_t n = strlen(err->msg);
        snprintf(err->msg + n, sizeof err->msg - n, " (after %d attempts)", tries);
    }
    dbuf_release(&url);
    if (st != 0) {
        dbuf_release(&r->body);
        return st;
    }
    return 0;
}

/* ---- operations ------------------------------------------------------------------------ */

int s3_put_buffer(struct s3_client *c, const char *bucket, const char *key, const void *data,
                  size_t len, const char *content_type, struct s3_err *err)
{
    if (len > MAX_PART)
        return set_err(err, S3_ETOOBIG, 0, NULL, "put 's3://%s/%s': %zu bytes is over 5 GiB",
                       bucket, key, len);
    struct req q = { .op = "put",
                     .method = "PUT",
                     .bucket = bucket,
                     .key = key,
                     .content_type = content_type,
                     .body = data,
                     .body_len = len,
                     .has_body = true };
    struct resp r;
    int st = perform(c, &q, &r, err);
    dbuf_release(&r.body);
    return st;
}

/* Reads exactly len bytes at off; -1 with errno (0 for a short file) otherwise. */
static int read_at(int fd, void *buf, size_t len, off_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, (char *)buf + got, len - got, off + (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = 0;
            return -1;
        }
        got += (size_t)n;
    }
    return 0;
}

static int multipart(struct s3_client *c, const char *bucket, const char *key, int fd,
                     uint64_t size, uint64_t part, const char *ctype, const char *path,
                     struct s3_err *err)
{
    char *upload_id = NULL, *buf = NULL;
    char(*etags)[128] = NULL;
    struct dbuf query = { .max = 4096 }, xml = { .max = 2u * MIB };
    struct resp r = { 0 };
    int st = 0;
    size_t nparts = (size_t)((size + part - 1) / part);

    struct qpair create[] = { { "uploads", "" } };
    if (query_build(&query, create, 1) < 0)
        goto oom;
    struct req q = { .op = "put (create multipart upload)",
                     .method = "POST",
                     .bucket = bucket,
                     .key = key,
                     .query = query.p,
                     .content_type = ctype,
                     .has_body = true,
                     .body = "",
                     .body_len = 0,
                     .error_in_200 = true };
    if ((st = perform(c, &q, &r, err)) != 0)
        goto out;
    upload_id = xml_get(r.body.p, r.body.p + r.body.len, "UploadId");
    dbuf_release(&r.body);
    if (!upload_id || !*upload_id) {
        st = set_err(err, S3_EHTTP, 200, NULL,
                     "put 's3://%s/%s': CreateMultipartUpload answered without an UploadId", bucket,
                     key);
        goto out;
    }
    etags = calloc(nparts, sizeof *etags);
    buf = malloc((size_t)part);
    if (!etags || !buf)
        goto oom;
    for (size_t i = 0; i < nparts; i++) {
        uint64_t off = (uint64_t)i * part;
        size_t len = (size_t)(size - off < part ? size - off : part);
        if (read_at(fd, buf, len, (off_t)off) < 0) {
            char eb[128];
            st = set_err(err, S3_EIO, 0, NULL, "put 's3://%s/%s': cannot read '%s': %s", bucket,
                         key, path, errno ? errtext(errno, eb, sizeof eb) : "file shrank");
            goto abort;
        }
        char pn[24];
        snprintf(pn, sizeof pn, "%zu", i + 1);
        struct qpair pq[] = { { "partNumber", pn }, { "uploadId", upload_id } };
        query.len = 0;
        if (query_build(&query, pq, 2) < 0)
            goto oom_abort;
        struct req pr = { .op = "put (upload part)",
                          .method = "PUT",
                          .bucket = bucket,
                          .key = key,
                          .query = query.p,
                          .content_type = "application/octet-stream",
                          .body = buf,
                          .body_len = len,
                          .has_body = true };
        if ((st = perform(c, &pr, &r, err)) != 0)
            goto abort;
        dbuf_release(&r.body);
        if (!r.etag[0]) {
            st = set_err(err, S3_EHTTP, 200, NULL,
                         "put 's3://%s/%s': part %zu uploaded without an ETag", bucket, key, i + 1);
            goto abort;
        }
        snprintf(etags[i], sizeof etags[i], "%s", r.etag);
    }
    if (dbuf_str(&xml, "<CompleteMultipartUpload>") < 0)
        goto oom_abort;
    for (size_t i = 0; i < nparts; i++)
        if (dbuf_printf(&xml, "<Part><PartNumber>%zu</PartNumber><ETag>\"%s\"</ETag></Part>", i + 1,
                        etags[i]) < 0)
            goto oom_abort;
    if (dbuf_str(&xml, "</CompleteMultipartUpload>") < 0)
        goto oom_abort;
    struct qpair cq[] = { { "uploadId", upload_id } };
    query.len = 0;
    if (query_build(&query, cq, 1) < 0)
        goto oom_abort;
    struct req cr = { .op = "put (complete multipart upload)",
                      .method = "POST",
                      .bucket = bucket,
                      .key = key,
                      .query = query.p,
                      .content_type = "application/xml",
                      .body = xml.p,
                      .body_len = xml.len,
                      .has_body = true,
                      .error_in_200 = true };
    if ((st = perform(c, &cr, &r, err)) != 0)
        goto abort;
    dbuf_release(&r.body);
    goto out;

oom_abort:
    st = set_err(err, S3_EINVAL, 0, NULL, "put 's3://%s/%s': out of memory", bucket, key);
abort : {
    /* Best effort, one attempt, and never over the error that brought us here. */
    struct qpair aq[] = { { "uploadId", upload_id } };
    query.len = 0;
    if (query_build(&query, aq, 1) == 0) {
        struct req ar = { .op = "put (abort multipart upload)",
                          .method = "DELETE",
                          .bucket = bucket,
                          .key = key,
                          .query = query.p };
        struct s3_err ignored;
        int saved = c->attempts;
        int (*cancel)(void *) = c->cancel;
        c->attempts = 1;
        c->cancel = NULL; /* abort even when cancelled */
        if (perform(c, &ar, &r, &ignored) == 0)
            dbuf_release(&r.body);
        c->attempts = saved;
        c->cancel = cancel;
    }
    goto out;
}
oom:
    st = set_err(err, S3_EINVAL, 0, NULL, "put 's3://%s/%s': out of memory", bucket, key);
out:
    free(upload_id);
    free(buf);
    free(etags);
    dbuf_release(&query);
    dbuf_release(&xml);
    return st;
}

int s3_put_file(struct s3_client *c, const char *bucket, const char *key, const char *path,
                const struct s3_put_opts *opts, struct s3_err *err)
{
    char eb[128];
    const char *ctype = opts && opts->content_type ? opts->content_type : NULL;
    uint64_t threshold =
        opts && opts->multipart_threshold ? opts->multipart_threshold : DEFAULT_THRESHOLD;
    uint64_t part = opts && opts->part_size ? opts->part_size : DEFAULT_PART;
    if (threshold > MAX_PART)
        threshold = MAX_PART;
    if (part < MIN_PART)
        part = MIN_PART;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return set_err(err, S3_EIO, 0, NULL, "put 's3://%s/%s': cannot open '%s': %s", bucket, key,
                       path, errtext(errno, eb, sizeof eb));
    struct stat sb;
    int st = 0;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = set_err(err, S3_EIO, 0, NULL, "put 's3://%s/%s': '%s' is not a regular file", bucket,
                     key, path);
        goto out;
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (size <= threshold) {
        char *buf = malloc(size ? (size_t)size : 1);
        if (!buf) {
            st = set_err(err, S3_EINVAL, 0, NULL, "put 's3://%s/%s': out of memory", bucket, key);
            goto out;
        }
        if (read_at(fd, buf, (size_t)size, 0) < 0)
            st = set_err(err, S3_EIO, 0, NULL, "put 's3://%s/%s': cannot read '%s': %s", bucket,
                         key, path, errno ? errtext(errno, eb, sizeof eb) : "file shrank");
        else
            st = s3_put_buffer(c, bucket, key, buf, (size_t)size, ctype, err);
        free(buf);
        goto out;
    }
    /* Fit in 10000 parts: grow the part size in whole MiB. */
    if ((size + part - 1) / part > MAX_PARTS)
        part = ((size + MAX_PARTS - 1) / MAX_PARTS + MIB - 1) / MIB * MIB;
    if (part > MAX_PART) {
        st = set_err(err, S3_ETOOBIG, 0, NULL, "put 's3://%s/%s': '%s' is too large for S3", bucket,
                     key, path);
        goto out;
    }
    st = multipart(c, bucket, key, fd, size, part, ctype, path, err);
out:
    close(fd);
    return st;
}

int s3_get_to_file(struct s3_client *c, const char *bucket, const char *key, const char *path,
                   struct s3_err *err)
{
    char eb[128];
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (!tmp)
        return set_err(err, S3_EINVAL, 0, NULL, "get: out of memory");
    snprintf(tmp, n, "%s.s3tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int st = set_err(err, S3_EIO, 0, NULL, "get 's3://%s/%s': cannot create '%s': %s", bucket,
                         key, tmp, errtext(errno, eb, sizeof eb));
        free(tmp);
        return st;
    }
    FILE *f = fdopen(fd, "w+");
    if (!f) {
        close(fd);
        unlink(tmp);
        free(tmp);
        return set_err(err, S3_EIO, 0, NULL, "get: fdopen failed");
    }
    struct req q = { .op = "get", .method = "GET", .bucket = bucket, .key = key, .out = f };
    struct resp r;
    int st = perform(c, &q, &r, err);
    dbuf_release(&r.body);
    if (fflush(f) != 0 && st == 0)
        st = set_err(err, S3_EIO, 0, NULL, "get 's3://%s/%s': cannot write '%s': %s", bucket, key,
                     tmp, errtext(errno, eb, sizeof eb));
    if (fclose(f) != 0 && st == 0)
        st = set_err(err, S3_EIO, 0, NULL, "get 's3://%s/%s': cannot write '%s': %s", bucket, key,
                     tmp, errtext(errno, eb, sizeof eb));
    if (st == 0) {
        /* mkstemp creates 0600; give the file the usual umask-based mode. */
        mode_t um = umask(0);
        umask(um);
        if (chmod(tmp, 0666 & ~um) != 0 || rename(tmp, path) != 0)
            st = set_err(err, S3_EIO, 0, NULL, "get 's3://%s/%s': cannot write '%s': %s", bucket,
                         key, path, errtext(errno, eb, sizeof eb));
    }
    if (st != 0)
        unlink(tmp);
    free(tmp);
    return st;
}

void s3_object_release(struct s3_object *o)
{
    if (!o)
        return;
    free(o->key);
    free(o->etag);
    free(o->last_modified);
    memset(o, 0, sizeof *o);
}

void s3_object_list_release(struct s3_object_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        s3_object_release(&l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

/* Strips the quotes S3 puts around ETags (&quot; already decoded). */
static char *unquote(char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        memmove(s, s + 1, n - 2);
        s[n - 2] = '\0';
    }
    return s;
}

int s3_list(struct s3_client *c, const char *bucket, const char *prefix, int page_size,
            size_t max_items, struct s3_object_list *out, struct s3_err *err)
{
    struct dbuf query = { .max = 8192 };
    char *token = NULL;
    size_t cap = 0;
    int st = 0;
    char mk[16];
    out->items = NULL;
    out->n = 0;
    if (page_size <= 0 || page_size > 1000)
        page_size = 1000;
    if (max_items == 0)
        max_items = DEFAULT_MAX_ITEMS;
    snprintf(mk, sizeof mk, "%d", page_size);
    for (int page = 0;; page++) {
        struct qpair qp[] = { { "continuation-token", token },
                              { "list-type", "2" },
                              { "max-keys", mk },
                              { "prefix", prefix && *prefix ? prefix : NULL } };
        query.len = 0;
        if (query_build(&query, qp, 4) < 0) {
            st = set_err(err, S3_ETOOBIG, 0, NULL, "list 's3://%s/%s': query too long", bucket,
                         prefix ? prefix : "");
            goto fail;
        }
        struct req q = { .op = "list", .method = "GET", .bucket = bucket, .query = query.p };
        struct resp r;
        if ((st = perform(c, &q, &r, err)) != 0)
            goto fail;
        const char *p = r.body.p ? r.body.p : "", *end = p + r.body.len, *vs;
        size_t vl;
        const char *next;
        while ((next = xml_find(p, end, "Contents", &vs, &vl))) {
            if (out->n >= max_items) {
                dbuf_release(&r.body);
                st = set_err(err, S3_ETOOBIG, 0, NULL, "list 's3://%s/%s': more than %zu objects",
                             bucket, prefix ? prefix : "", max_items);
                goto fail;
            }
            if (out->n == cap) {
                size_t nc = cap ? cap * 2 : 64;
                struct s3_object *ni = realloc(out->items, nc * sizeof *ni);
                if (!ni) {
                    dbuf_release(&r.body);
                    st = set_err(err, S3_EINVAL, 0, NULL, "list: out of memory");
                    goto fail;
                }
                out->items = ni;
                cap = nc;
            }
            struct s3_object *o = &out->items[out->n];
            memset(o, 0, sizeof *o);
            o->key = xml_get(vs, vs + vl, "Key");
            char *size = xml_get(vs, vs + vl, "Size");
            o->size = size ? strtoull(size, NULL, 10) : 0;
            free(size);
            o->etag = unquote(xml_get(vs, vs + vl, "ETag"));
            o->last_modified = xml_get(vs, vs + vl, "LastModified");
            if (!o->etag)
                o->etag = strdup("");
            if (!o->last_modified)
                o->last_modified = strdup("");
            out->n++;
            if (!o->key || !o->etag || !o->last_modified) {
                dbuf_release(&r.body);
                st = set_err(err, S3_EHTTP, 200, NULL,
                             "list 's3://%s': malformed ListObjectsV2 response", bucket);
                goto fail;
            }
            p = next;
        }
        char *trunc = xml_get(r.body.p ? r.body.p : "", end, "IsTruncated");
        bool more = trunc && !strcmp(trunc, "true");
        free(trunc);
        free(token);
        token = more ? xml_get(r.body.p, end, "NextContinuationToken") : NULL;
        dbuf_release(&r.body);
        if (!more)
            break;
        if (!token || !*token) {
            st = set_err(err, S3_EHTTP, 200, NULL,
                         "list 's3://%s': truncated listing without NextContinuationToken", bucket);
            goto fail;
        }
    }
    free(token);
    dbuf_release(&query);
    return (int)(out->n > (size_t)0x7fffffff ? 0x7fffffff : out->n);
fail:
    free(token);
    dbuf_release(&query);
    s3_object_list_release(out);
    return st;
}

int s3_head(struct s3_client *c, const char *bucket, const char *key, struct s3_object *info,
            struct s3_err *err)
{
    struct req q = { .op = "head", .method = "HEAD", .bucket = bucket, .key = key };
    struct resp r;
    int st = perform(c, &q, &r, err);
    dbuf_release(&r.body);
    if (st == S3_ENOTFOUND)
        return 0;
    if (st != 0)
        return st;
    if (info) {
        memset(info, 0, sizeof *info);
        info->key = strdup(key);
        info->etag = strdup(r.etag);
        info->last_modified = strdup(r.last_modified);
        info->size = r.content_length;
        if (!info->key || !info->etag || !info->last_modified) {
            s3_object_release(info);
            return set_err(err, S3_EINVAL, 0, NULL, "head: out of memory");
        }
    }
    return 1;
}

int s3_delete(struct s3_client *c, const char *bucket, const char *key, struct s3_err *err)
{
    struct req q = { .op = "delete", .method = "DELETE", .bucket = bucket, .key = key };
    struct resp r;
    struct s3_err e = { 0 };
    int st = perform(c, &q, &r, &e);
    dbuf_release(&r.body);
    if (st == S3_ENOTFOUND && !strcmp(e.code, "NoSuchKey"))
        return 0;
    if (st != 0 && err)
        *err = e;
    return st;
}

int s3_copy(struct s3_client *c, const char *src_bucket, const char *src_key,
            const char *dst_bucket, const char *dst_key, struct s3_err *err)
{
    struct dbuf h = { .max = 8192 };
    if (!valid_bucket(src_bucket))
        return set_err(err, S3_EINVAL, 0, NULL, "copy: invalid bucket name '%s'", src_bucket);
    if (dbuf_str(&h, "x-amz-copy-source: /") < 0 || enc_add(&h, src_bucket, false) < 0 ||
        dbuf_str(&h, "/") < 0 || enc_add(&h, src_key, true) < 0) {
        dbuf_release(&h);
        return set_err(err, S3_ETOOBIG, 0, NULL, "copy: source key too long");
    }
    struct req q = { .op = "copy",
                     .method = "PUT",
                     .bucket = dst_bucket,
                     .key = dst_key,
                     .extra_header = h.p,
                     .has_body = true,
                     .body = "",
                     .body_len = 0,
                     .error_in_200 = true };
    struct resp r;
    struct s3_err e = { 0 };
    int st = perform(c, &q, &r, &e);
    dbuf_release(&r.body);
    dbuf_release(&h);
    if (st != 0 && err) {
        *err = e;
        /* Say which side is missing: the message names the destination. */
        if (st == S3_ENOTFOUND && !strcmp(e.code, "NoSuchKey"))
            set_err(err, st, e.http, e.code, "copy 's3://%s/%s' to 's3://%s/%s': NoSuchKey: %s",
                    src_bucket, src_key, dst_bucket, dst_key, "the source key does not exist");
    }
    return st;
}

int s3_bucket_create(struct s3_client *c, const char *bucket, struct s3_err *err)
{
    char body[256] = "";
    if (strcmp(c->region, "us-east-1") != 0)
        snprintf(body, sizeof body,
                 "<CreateBucketConfiguration><LocationConstraint>%s</LocationConstraint>"
                 "</CreateBucketConfiguration>",
                 c->region);
    struct req q = { .op = "create bucket",
                     .method = "PUT",
                     .bucket = bucket,
                     .content_type = "application/xml",
                     .body = body,
                     .body_len = strlen(body),
                     .has_body = true };
    struct resp r;
    struct s3_err e = { 0 };
    int st = perform(c, &q, &r, &e);
    dbuf_release(&r.body);
    if (st == 0)
        return 0;
    if (e.http == 409) { /* exists: fine when it is ours (we can reach it) */
        struct req hq = { .op = "create bucket", .method = "HEAD", .bucket = bucket };
        if (perform(c, &hq, &r, NULL) == 0) {
            dbuf_release(&r.body);
            return 0;
        }
    }
    if (err)
        *err = e;
    return st;
}
