/* webui/auth.c - who is calling and what they may do. Users and roles (admin > op >
 * viewer) live in the store with libsodium password hashes. Three ways in:
 *   - HTTP basic auth: verified with crypto_pwhash_str_verify; because Argon2id costs tens
 *     of milliseconds by design, a success is cached for 30 s under a keyed BLAKE2b hash
 *     of the credentials (the key is random per process; the password is never kept).
 *   - Bearer tokens: `weir users token` (API) or a UI session; the store keeps only the
 *     BLAKE2b-256 hash of a token and looks it up on each request.
 *   - The UI session cookie `weir_session` (HttpOnly, SameSite=Strict), set by POST
 *     /auth/login. A state-changing request authenticated by the cookie must carry the
 *     session's CSRF token in the X-CSRF-Token header (synchronizer token pattern).
 * The 401 answer advertises only Bearer, so browsers never pop up a basic-auth dialog and
 * never replay basic credentials on their own (which would bypass the CSRF check). */
#define LOG_MODULE "web"
#include "webui/webui.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/ts.h"
#include "store/store.h"
#include "webui/web_int.h"

#define SESSION_TTL_US (12 * 3600 * TS_US_PER_SEC)
#define CACHE_TTL_US   (30 * TS_US_PER_SEC)
#define PASSWORD_MIN   8
#define PASSWORD_MAX   1024

static const char *const role_names[] = {
    [ROLE_NONE] = "none", [ROLE_VIEWER] = "viewer", [ROLE_OP] = "op", [ROLE_ADMIN] = "admin"
};

const char *web__role_name(int role)
{
    return role >= 0 && role <= ROLE_ADMIN ? role_names[role] : "none";
}

int web__role_parse(const char *s)
{
    if (!s)
        return ROLE_NONE;
    for (int i = ROLE_VIEWER; i <= ROLE_ADMIN; i++)
        if (strcasecmp(s, role_names[i]) == 0)
            return i;
    return ROLE_NONE;
}

static void init_sodium(void)
{
    if (sodium_init() < 0) {
        LOG_ERROR("libsodium cannot be initialized");
        abort();
    }
}

void web__auth_init(struct web *w)
{
    init_sodium();
    randombytes_buf(w->cache_secret, sizeof w->cache_secret);
}

/* hex of BLAKE2b-256(token): the key of a token in the store */
static void token_hash(const char *token, char out[65])
{
    unsigned char h[32];
    crypto_generichash(h, sizeof h, (const unsigned char *)token, strlen(token), NULL, 0);
    sodium_bin2hex(out, 65, h, sizeof h);
}

static void random_hex(char *out, size_t bytes)
{
    unsigned char b[64];
    WEIR_ASSERT(bytes <= sizeof b);
    randombytes_buf(b, bytes);
    sodium_bin2hex(out, bytes * 2 + 1, b, bytes);
}

int web__hash_password(const char *password, char **out, struct weir_err *err)
{
    init_sodium();
    size_t n = strlen(password);
    if (n < PASSWORD_MIN)
        return err_set(err, WEIR_EINVAL, "password is shorter than %d characters", PASSWORD_MIN);
    if (n > PASSWORD_MAX)
        return err_set(err, WEIR_EINVAL, "password is longer than %d characters", PASSWORD_MAX);
    char hash[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str(hash, password, n, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        return err_set(err, WEIR_EIO, "password hashing ran out of memory");
    *out = xstrdup(hash);
    return 0;
}

int web_user_create(struct store *st, const char *username, const char *role, const char *password,
                    struct weir_err *err)
{
    /* no ':' either: basic auth splits "user:password" at the first one */
    if (!username || !web__valid_id(username) || strchr(username, ':'))
        return err_set(err, WEIR_EINVAL, "username '%s' must be 1 to 250 of [A-Za-z0-9_.~+-]",
                       username ? username : "");
    int r = web__role_parse(role);
    if (r == ROLE_NONE)
        return err_set(err, WEIR_EINVAL, "role '%s' is not admin, op or viewer", role ? role : "");
    char *hash = NULL;
    int rc = web__hash_password(password ? password : "", &hash, err);
    if (rc < 0)
        return rc;
    rc = store_user_create(st, username, role_names[r], hash, err);
    free(hash);
    return rc;
}

int web_user_set_password(struct store *st, const char *username, const char *password,
                          struct weir_err *err)
{
    char *hash = NULL;
    int rc = web__hash_password(password ? password : "", &hash, err);
    if (rc < 0)
        return rc;
    rc = store_user_update(st, username, NULL, hash, err);
    free(hash);
    return rc;
}

void web_random_password(char *out, size_t len)
{
    static const char alphabet[] =
        "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"; /* no look-alikes */
    init_sodium();
    size_t n = len > 25 ? 24 : (len ? len - 1 : 0);
    for (size_t i = 0; i < n; i++)
        out[i] = alphabet[randombytes_uniform((uint32_t)(sizeof alphabet - 1))];
    if (len)
        out[n] = '\0';
}

int web_token_create(struct store *st, const char *username, int64_t ttl_us, char *out, size_t len,
                     struct weir_err *err)
{
    init_sodium();
    if (len < 72)
        return err_set(err, WEIR_EINVAL, "token buffer too small");
    char hex[65], h[65];
    random_hex(hex, 32);
    snprintf(out, len, "weir_%s", hex);
    token_hash(out, h);
    int rc = store_token_create(st, h, username, "api", NULL,
                                ttl_us > 0 ? ts_now_us() + ttl_us : TS_NONE, err);
    if (rc < 0)
        out[0] = '\0';
    return rc;
}

/* ---- the basic-auth cache ---------------------------------------------------------------- */

static void cache_key(struct web *w, const char *user, const char *pass, unsigned char key[32])
{
    crypto_generichash_state s;
    crypto_generichash_init(&s, w->cache_secret, sizeof w->cache_secret, 32);
    crypto_generichash_update(&s, (const unsigned char *)user, strlen(user) + 1);
    crypto_generichash_update(&s, (const unsigned char *)pass, strlen(pass));
    crypto_generichash_final(&s, key, 32);
}

static bool cache_get(struct web *w, const unsigned char key[32], struct req *r)
{
    bool hit = false;
    struct web__cache_ent *e = &w->cache[key[0] % WEB_CACHE_SLOTS];
    pthread_mutex_lock(&w->cache_mu);
    if (e->expires > ts_mono_us() && sodium_memcmp(e->key, key, 32) == 0) {
        snprintf(r->user, sizeof r->user, "%s", e->username);
        r->role = e->role;
        hit = true;
    }
    pthread_mutex_unlock(&w->cache_mu);
    return hit;
}

static void cache_put(struct web *w, const unsigned char key[32], const char *user, int role)
{
    struct web__cache_ent *e = &w->cache[key[0] % WEB_CACHE_SLOTS];
    pthread_mutex_lock(&w->cache_mu);
    memcpy(e->key, key, 32);
    snprintf(e->username, sizeof e->username, "%s", user);
    e->role = role;
    e->expires = ts_mono_us() + CACHE_TTL_US;
    pthread_mutex_unlock(&w->cache_mu);
}

void web__auth_cache_clear(struct web *w)
{
    pthread_mutex_lock(&w->cache_mu);
    sodium_memzero(w->cache, sizeof w->cache);
    pthread_mutex_unlock(&w->cache_mu);
}

/* ---- authentication ------------------------------------------------------------------------ */

static int check_password(struct req *r, const char *user, const char *pass)
{
    struct weir_err err = { 0 };
    struct store *st = web__store(r, &err);
    if (!st)
        return web__fail(r, -WEIR_EUNAVAIL, &err);
    struct store_user u = { 0 };
    int rc = STORE(r, store_user_get(st, user, &u, &err));
    if (rc == -WEIR_ENOTFOUND)
        return -WEB_EUNAUTH;
    if (rc < 0)
        return web__fail(r, rc, &err);
    int role = web__role_parse(u.role);
    bool ok =
        role != ROLE_NONE && crypto_pwhash_str_verify(u.password_hash, pass, strlen(pass)) == 0;
    store_user_release(&u);
    if (!ok)
        return -WEB_EUNAUTH;
    snprintf(r->user, sizeof r->user, "%s", user);
    r->role = role;
    return 0;
}

static int auth_basic(struct req *r, const char *b64)
{
    unsigned char dec[1024];
    size_t n = 0;
    while (*b64 == ' ')
        b64++;
    if (sodium_base642bin(dec, sizeof dec - 1, b64, strlen(b64), NULL, &n, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0)
        return -WEB_EUNAUTH;
    dec[n] = '\0';
    if (memchr(dec, '\0', n))
        return -WEB_EUNAUTH;
    char *colon = strchr((char *)dec, ':');
    if (!colon)
        return -WEB_EUNAUTH;
    *colon = '\0';
    const char *user = (const char *)dec, *pass = colon + 1;
    if (!web__valid_id(user) || strlen(pass) > PASSWORD_MAX)
        return -WEB_EUNAUTH;
    unsigned char key[32];
    cache_key(r->w, user, pass, key);
    int rc = 0;
    if (!cache_get(r->w, key, r)) {
        rc = check_password(r, user, pass);
        if (rc == 0)
            cache_put(r->w, key, r->user, r->role);
    }
    sodium_memzero(dec, sizeof dec);
    return rc;
}

/* Looks a token up; kind "session" tokens also yield the CSRF token. */
static int auth_token(struct req *r, const char *token, bool cookie)
{
    size_t n = strlen(token);
    if (n < 16 || n > 200)
        return -WEB_EUNAUTH;
    struct weir_err err = { 0 };
    struct store *st = web__store(r, &err);
    if (!st)
        return web__fail(r, -WEIR_EUNAVAIL, &err);
    char h[65];
    token_hash(token, h);
    struct store_token t = { 0 };
    int rc = STORE(r, store_token_get(st, h, ts_now_us(), &t, &err));
    if (rc == -WEIR_ENOTFOUND)
        return -WEB_EUNAUTH;
    if (rc < 0)
        return web__fail(r, rc, &err);
    if (cookie && strcmp(t.kind, "session") != 0) {
        store_token_release(&t);
        return -WEB_EUNAUTH;
    }
    snprintf(r->user, sizeof r->user, "%s", t.username);
    r->role = web__role_parse(t.role);
    r->via_cookie = cookie;
    snprintf(r->csrf, sizeof r->csrf, "%s", t.csrf ? t.csrf : "");
    store_token_release(&t);
    return r->role == ROLE_NONE ? -WEB_EUNAUTH : 0;
}

static bool safe_method(const char *m)
{
    return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "OPTIONS") == 0;
}

int web__auth(struct req *r, enum web_perm perm)
{
    if (perm == PERM_PUBLIC)
        return 0;
    int rc = -WEB_EUNAUTH;
    const char *ah = web__header(r, "Authorization");
    const char *cookie = MHD_lookup_connection_value(r->c, MHD_COOKIE_KIND, "weir_session");
    if (ah && strncasecmp(ah, "Basic ", 6) == 0)
        rc = auth_basic(r, ah + 6);
    else if (ah && strncasecmp(ah, "Bearer ", 7) == 0)
        rc = auth_token(r, ah + 7, false);
    else if (cookie && *cookie)
        rc = auth_token(r, cookie, true);
    if (r->responded)
        return -1; /* the store failed and was reported */
    if (rc < 0)
        return web__problem(r, WEB_EUNAUTH,
                            ah || cookie ? "invalid credentials" : "authentication required");
    if (r->via_cookie && !safe_method(r->method)) {
        const char *tok = web__header(r, "X-CSRF-Token");
        size_t n = strlen(r->csrf);
        if (!tok || !n || strlen(tok) != n || sodium_memcmp(tok, r->csrf, n) != 0)
            return web__problem(r, WEB_EFORBIDDEN,
                                "CSRF token missing or wrong (send the "
                                "X-CSRF-Token header)");
    }
    int need = perm == PERM_READ ? ROLE_VIEWER : perm == PERM_EDIT ? ROLE_OP : ROLE_ADMIN;
    if (r->role < need)
        return web__problem(r, WEB_EFORBIDDEN, "user '%s' with role %s may not do this", r->user,
                            web__role_name(r->role));
    return 0;
}

/* ---- login, logout, me ---------------------------------------------------------------------- */

static int send_session(struct req *r, int status, const char *token, const char *csrf,
                        int64_t max_age_s)
{
    char c1[200], c2[200];
    snprintf(c1, sizeof c1, "weir_session=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%lld",
             token, (long long)max_age_s);
    snprintf(c2, sizeof c2, "weir_csrf=%s; Path=/; SameSite=Strict; Max-Age=%lld", csrf,
             (long long)max_age_s);
    json_t *o = json_object();
    if (status == 200) {
        json_object_set_new(o, "username", json_string(r->user));
        json_object_set_new(o, "role", json_string(web__role_name(r->role)));
        json_object_set_new(o, "csrf_token", json_string(csrf));
    }
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    const char *h[] = { "Cache-Control", "no-store", "Set-Cookie", c1, "Set-Cookie", c2, NULL };
    int rc = status == 204 ? web__send(r, 204, "application/json", "", 0, h)
                           : web__send(r, status, "application/json", s, strlen(s), h);
    free(s);
    return rc;
}

int web__login(struct req *r)
{
    json_t *body = NULL;
    if (web__body_object(r, &body) < 0)
        return -1;
    static const char *const keys[] = { "username", "password", NULL };
    int rc = web__check_keys(r, body, keys);
    const char *user = json_string_value(json_object_get(body, "username"));
    const char *pass = json_string_value(json_object_get(body, "password"));
    if (rc == 0 && (!user || !pass))
        rc = web__problem(r, WEIR_EINVAL, "username and password are required strings");
    if (rc == 0 && (!web__valid_id(user) || strlen(pass) > PASSWORD_MAX))
        rc = web__problem(r, WEB_EUNAUTH, "wrong username or password");
    if (rc == 0) {
        rc = check_password(r, user, pass);
        if (rc < 0 && !r->responded)
            rc = web__problem(r, WEB_EUNAUTH, "wrong username or password");
    }
    if (rc == 0) {
        struct weir_err err = { 0 };
        char token[80], csrf[80], h[65];
        memcpy(token, "weir_s_", 7);
        random_hex(token + 7, 32);
        random_hex(csrf, 32);
        token_hash(token, h);
        int64_t now = ts_now_us();
        STORE(r, store_token_purge(r->st, now, NULL, NULL));
        rc = STORE(
            r, store_token_create(r->st, h, r->user, "session", csrf, now + SESSION_TTL_US, &err));
        if (rc < 0)
            rc = web__fail(r, rc, &err);
        else
            rc = send_session(r, 200, token, csrf, SESSION_TTL_US / TS_US_PER_SEC);
        LOG_INFO("login user=%s ok=%d", r->user, rc == 0);
    }
    json_decref(body);
    return rc;
}

int web__logout(struct req *r)
{
    const char *cookie = MHD_lookup_connection_value(r->c, MHD_COOKIE_KIND, "weir_session");
    if (r->via_cookie && cookie) {
        char h[65];
        token_hash(cookie, h);
        STORE(r, store_token_delete(r->st, h, NULL));
    }
    return send_session(r, 204, "", "", 0);
}

int web__me(struct req *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "username", json_string(r->user));
    json_object_set_new(o, "role", json_string(web__role_name(r->role)));
    json_object_set_new(o, "csrf_token", r->via_cookie ? json_string(r->csrf) : json_null());
    return web__json(r, 200, o);
}
