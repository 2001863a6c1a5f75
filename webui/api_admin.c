/* webui/api_admin.c - the REST API's administrative endpoints: variables, connections
 * (passwords are accepted but never returned), pools, users (admin only), import errors,
 * /version and /health. Airflow's paths and field names. */
#define LOG_MODULE "web"
#include "webui/webui.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/ts.h"
#include "store/store.h"
#include "webui/web_int.h"

#define GET_STORE(r, st)                      \
    struct weir_err err = { 0 };              \
    struct store *st = web__store((r), &err); \
    if (!st)                                  \
    return web__fail((r), -WEIR_EUNAVAIL, &err)

/* Finds the element of `arr` whose `key` equals `val`; new reference or NULL. */
static json_t *find_by(json_t *arr, const char *key, const char *val)
{
    size_t i;
    json_t *x;
    json_array_foreach(arr, i, x) {
        const char *s = json_string_value(json_object_get(x, key));
        if (s && strcmp(s, val) == 0)
            return json_incref(x);
    }
    return NULL;
}

/* A string field that may be absent or null: *out NULL then. Responds 400 otherwise. */
static int opt_str(struct req *r, json_t *body, const char *key, const char **out)
{
    json_t *v = json_object_get(body, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return web__problem(r, WEIR_EINVAL, "%s must be a string", key);
    *out = json_string_value(v);
    return 0;
}

/* update_mask: a comma list of fields to change; NULL means every field in the body. */
static bool in_mask(struct req *r, const char *field)
{
    const char *mask = web__query(r, "update_mask");
    if (!mask)
        return true;
    size_t n = strlen(field);
    for (const char *p = mask; *p;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (len == n && strncmp(p, field, n) == 0)
            return true;
        p += len;
        if (*p == ',')
            p++;
    }
    return false;
}

static int check_mask(struct req *r, const char *const *fields)
{
    const char *mask = web__query(r, "update_mask");
    if (!mask)
        return 0;
    for (const char *p = mask; *p;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        bool ok = false;
        for (size_t i = 0; fields[i]; i++)
            if (strlen(fields[i]) == len && strncmp(p, fields[i], len) == 0)
                ok = true;
        if (!ok && len)
            return web__problem(r, WEIR_EINVAL, "update_mask: unknown field '%.*s'",
                                (int)(len > 60 ? 60 : len), p);
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* The key in the body must match the path when given. */
static int same_key(struct req *r, json_t *body, const char *key, const char *path_val)
{
    json_t *v = json_object_get(body, key);
    if (v && (!json_is_string(v) || strcmp(json_string_value(v), path_val) != 0))
        return web__problem(r, WEIR_EINVAL, "%s in the body differs from the path", key);
    return 0;
}

/* ---- variables --------------------------------------------------------------------------------
 */

int web__h_variables_list(struct req *r)
{
    GET_STORE(r, st);
    size_t limit, offset;
    if (web__page_params(r, &limit, &offset) < 0)
        return -1;
    json_t *arr = NULL;
    int rc = STORE(r, store_var_list(st, &arr, &err));
    if (rc < 0)
        return web__fail(r, rc, &err);
    return web__json(r, 200, web__page_of("variables", arr, limit, offset));
}

static int var_reply(struct req *r, struct store *st, const char *key)
{
    json_t *arr = NULL;
    struct weir_err err = { 0 };
    int rc = STORE(r, store_var_list(st, &arr, &err));
    if (rc < 0)
        return web__fail(r, rc, &err);
    json_t *v = find_by(arr, "key", key);
    json_decref(arr);
    if (!v)
        return web__problem(r, WEIR_ENOTFOUND, "variable '%s' not found", key);
    return web__json(r, 200, v);
}

int web__h_variable_get(struct req *r)
{
    GET_STORE(r, st);
    return var_reply(r, st, r->args[0]);
}

static int var_write(struct req *r, const char *path_key)
{
    GET_STORE(r, st);
    json_t *body = NULL;
    if (web__body_object(r, &body) < 0)
        return -1;
    static const char *const keys[] = { "key", "value", "description", NULL };
    int rc = web__check_keys(r, body, keys);
    if (rc == 0)
        rc = check_mask(r, keys);
    const char *key = NULL, *value = NULL, *desc = NULL;
    if (rc == 0)
        rc = opt_str(r, body, "key", &key);
    if (rc == 0)
        rc = opt_str(r, body, "value", &value);
    if (rc == 0)
        rc = opt_str(r, body, "description", &desc);
    char *old_value = NULL;
    json_t *old = NULL;
    if (rc == 0 && path_key) {
        rc = same_key(r, body, "key", path_key);
        key = path_key;
        if (rc == 0) {
            /* PATCH: fields outside the mask or absent keep their values */
            json_t *arr = NULL;
            rc = STORE(r, store_var_list(st, &arr, &err));
            if (rc < 0)
                rc = web__fail(r, rc, &err);
            else if (!(old = find_by(arr, "key", key)))
                rc = web__problem(r, WEIR_ENOTFOUND, "variable '%s' not found", key);
            json_decref(arr);
        }
        if (rc == 0) {
            if (!value || !in_mask(r, "value"))
                value = json_string_value(json_object_get(old, "value"));
            if (!json_object_get(body, "description") || !in_mask(r, "description"))
                desc = json_string_value(json_object_get(old, "description"));
        }
    }
    if (rc == 0 && (!key || !web__valid_id(key)))
        rc = web__problem(r, WEIR_EINVAL, "key must be 1 to 250 characters of [A-Za-z0-9_.~:+-]");
    if (rc == 0 && !value)
        rc = web__problem(r, WEIR_EINVAL, "value is required");
    if (rc == 0) {
        rc = STORE(r, store_var_set(st, key, value, desc, &err));
        if (rc < 0)
            rc = web__fail(r, rc, &err);
    }
    if (rc == 0) {
        LOG_INFO("variable set key=%s user=%s", key, r->user);
        rc = var_reply(r, st, key);
    }
    free(old_value);
    json_decref(old);
    json_decref(body);
    return rc;
}

int web__h_variable_post(struct req *r)
{
    return var_write(r, NULL);
}

int web__h_variable_patch(struct req *r)
{
    return var_write(r, r->args[0]);
}

int web__h_variable_delete(struct req *r)
{
    GET_STORE(r, st);
    int rc = STORE(r, store_var_delete(st, r->args[0], &err));
    if (rc < 0)
        return web__fail(r, rc, &err);
    LOG_INFO("variable deleted key=%s user=%s", r->args[0], r->user);
    return web__no_content(r);
}

/* ---- connections ----------------------------------------------------------------------------- */

int web__h_connections_list(struct req *r)
{
    GET_STORE(r, st);
    size_t limit, offset;
    if (web__page_params(r, &limit, &offset) < 0)
        return -1;
    json_t *arr = NULL;
    int rc = STORE(r, store_conn_list(st, &arr, &err));
    if (rc < 0)
        return web__fail(r, rc, &err);
    return web__json(r, 200, web__page_of("connections", arr, limit, offset));
}

/* The list view is the one that never holds passwords (and masks secrets in extra). */
static int conn_reply(struct req *r, struct store *st, const char *id, int status)
{
    json_t *arr = NULL;
    struct weir_err err = { 0 };
    int rc = STORE(r, store_conn_list(st, &arr, &err));
    if (rc < 0)
        return web__fail(r, rc, &err);
    json_t *c = find_by(arr, "connection_id", id);
    json_decref(arr);
    if (!c)
        return web__problem(r, WEIR_ENOTFOUND, "connection '%s' not found", id);
    return web__json(r, status, c);
}

int web__h_connection_get(struct req *r)
{
    GET_STORE(r, st);
    return conn_reply(r, st, r->args[0], 200);
}

static int conn_write(struct req *r, const char *path_id)
{
    GET_STORE(r, st);
    json_t *body = NULL;
    if (web__body_object(r, &body) < 0)
        return -1;
    static const char *const keys[] = { "connection_id", "conn_type", "description", "host",
                                        "login",         "schema",    "port",        "password",
                                        "extra",         NULL };
    int rc = web__check_keys(r, body, keys);
    if (rc == 0)
        rc = check_mask(r, keys);
    struct store_conn c = { 0 };
    bool exists = false;
    const char *id = path_id;
    if (rc == 0 && path_id) {
        rc = same_key(r, body, "connection_id", path_id);
        if (rc == 0) {
            rc = STORE(r, store_conn_get(st, path_id, &c, &err));
            if (rc < 0)
                rc = web__fail(r, rc, &err);
            else
                exists = true;
        }
    } else if (rc == 0) {
        rc = opt_str(r, body, "connection_id", &id);
        if (rc == 0 && (!id || !web__valid_id(id)))
            rc = web__problem(r, WEIR_EINVAL,
                              "connection_id must be 1 to 250 characters of "
                              "[A-Za-z0-9_.~:+-]");
        struct store_conn tmp = { 0 };
        if (rc == 0 && STORE(r, store_conn_get(st, id, &tmp, NULL)) == 0) {
            store_conn_release(&tmp);
            rc = web__problem(r, WEIR_ECONFLICT, "connection '%s' already exists", id);
        }
        if (rc == 0)
            c.conn_id = xstrdup(id);
    }
    /* string fields: absent or outside update_mask keep their stored value */
    static const char *const sf[] = { "conn_type", "description", "host",
                                      "login",     "schema",      "password" };
    char **dst[] = { &c.conn_type, &c.description, &c.host, &c.login, &c.schema, &c.password };
    for (size_t i = 0; rc == 0 && i < WEIR_ARRAY_LEN(sf); i++) {
        json_t *v = json_object_get(body, sf[i]);
        if (!v || !in_mask(r, sf[i]))
            continue;
        const char *s = NULL;
        rc = opt_str(r, body, sf[i], &s);
        if (rc == 0) {
            free(*dst[i]);
            *dst[i] = s ? xstrdup(s) : NULL;
        }
    }
    json_t *port = json_object_get(body, "port");
    if (rc == 0 && port && in_mask(r, "port")) {
        if (json_is_null(port))
            c.port = 0;
        else if (!json_is_integer(port) || json_integer_value(port) < 0 ||
                 json_integer_value(port) > 65535)
            rc = web__problem(r, WEIR_EINVAL, "port must be an integer from 0 to 65535");
        else
            c.port = (int)json_integer_value(port);
    }
    json_t *extra = json_object_get(body, "extra");
    if (rc == 0 && extra && in_mask(r, "extra")) {
        /* Airflow sends extra as a JSON string; an object is accepted too */
        json_t *obj = NULL;
        if (json_is_string(extra) && *json_string_value(extra))
            obj = json_loads(json_string_value(extra), 0, NULL);
        else if (json_is_object(extra))
            obj = json_incref(extra);
        if (json_is_null(extra) || (json_is_string(extra) && !*json_string_value(extra))) {
            json_decref(c.extra);
            c.extra = NULL;
        } else if (!json_is_object(obj)) {
            json_decref(obj);
            rc = web__problem(r, WEIR_EINVAL, "extra must be a JSON object (or its text)");
        } else {
            json_decref(c.extra);
            c.extra = obj;
        }
    }
    if (rc == 0 && !c.conn_type && !exists)
        rc = web__problem(r, WEIR_EINVAL, "conn_type is required");
    if (rc == 0) {
        rc = STORE(r, store_conn_set(st, &c, &err));
        if (rc < 0)
            rc = web__fail(r, rc, &err);
    }
    if (rc == 0) {
        LOG_INFO("connection set conn=%s user=%s", c.conn_id, r->user);
        rc = conn_reply(r, st, c.conn_id, 200);
    }
    store_conn_release(&c);
    json_decref(body);
    return rc;
}

int web__h_connection_post(struct req *r)
{
    return conn_write(r, NULL);
}

int web__h_connection_patch(struct req *r)
{
    return conn_write(r, r->args[0]);
}

int web__h_connection_delete(struct req *r)
{
    GET_STORE(r, st);
    int rc = STORE(r, store_conn_delete(st, r->args[0], &err));
    if (rc < 0)
        return web__fail(r, rc, &err);
    LOG_INFO("connection deleted conn=%s user=%s", r->args[0], r->user);
    return web__no_content(r);
}

/* ---- pools --------------------------------------------------------------------------------------
 */

/* Airflow's Pool object; the slot counts come from the store's active task instances
 * (running_slots counts queued ones too: the store counts them together). */
static int pool_decorate(struct req *r, struct store *st, json_t *p)
{
    struct weir_err err = { 0 };
    int64_t used = 0;
    const char *name = json_string_value(json_object_get(p, "name"));
    int rc = STORE(r, store_ti_count_active(st, NULL, name, &used, &err));
    if (rc < 0)
        return web__fail(r, rc, &err);
    int64_t slots = json_integer_value(json_object_get(p, "slots"));
    json_object_set_new(p, "occupied_slots", json_integer(used));
    json_object_set_new(p, "running_slots", json_integer(used));
    json_object_set_new(p, "queued_slots", json_integer(0));
    json_object_set_new(p, "scheduled_slots", json_integer(0));
    json_object_set_new(p, "deferred_slots", json_integer(0));
    json_object_set_new(p, "open_slots",
                        json_integer(slots < 0 ? -1 : (slots > used ? slots - used : 0)));
    json_object_set_new(p, "include_deferred", json_false());
    return 0;
}

int web__h_pools_list(struct req *r)
{
    GET_STORE(r, st);
    size_t limit, offset;
    if (web__page_params(r, &limit, &offset) < 0)
        return -1;
    json_t *arr = NULL;
    int rc = STORE(r, store_pool_list(st, &arr, &err));
    if (rc < 0)
        return web__fail(r, rc, &err);
    json_t *o = web__page_of("pools", arr, limit, offset);
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(o, "pools"), i, p) {
        if (pool_decorate(r, st, p) < 0) {
            json_decref(o);
            return -1;
        }
    }
    return web__json(r, 200, o);
}

static int pool_reply(struct req *r, struct store *st, const char *name)
{
    json_t *arr = NULL;
    struct weir_err err = { 0 };
    int rc = STORE(r, store_pool_list(st, &arr, &err));
    if (rc < 0)
        return web__fail(r, rc, &err);
    json_t *p = find_by(arr, "name", name);
    json_decref(arr);
    if (!p)
        return web__problem(r, WEIR_ENOTFOUND, "pool '%s' not found", name);
    if (pool_decorate(r, st, p) < 0) {
        json_decref(p);
        return -1;
    }
    return web__json(r, 200, p);
}

int web__h_pool_get(struct req *r)
{
    GET_STORE(r, st);
    return pool_reply(r, st, r->args[0]);
}

static int pool_write(struct req *r, const char *path_name)
{
    GET_STORE(r, st);
    json_t *body = NULL;
    if (web__body_object(r, &body) < 0)
        return -1;
    static const char *const keys[] = { "name", "slots", "description", "include_deferred", NULL };
    int rc = web__check_keys(r, body, keys);
    if (rc == 0)
        rc = check_mask(r, keys);
    const char *name = path_name, *desc = NULL;
    int64_t slots = 0;
    json_t *js = json_object_get(body, "slots");
    json_t *defer = json_object_get(body, "include_deferred");
    if (rc == 0 && defer && !json_is_false(defer))
        rc = web__problem(r, WEIR_EINVAL, "include_deferred: weir has no deferred tasks");
    if (rc == 0)
        rc = opt_str(r, body, "description", &desc);
    if (rc == 0 && js && (!json_is_integer(js) || json_integer_value(js) < -1))
        rc = web__problem(r, WEIR_EINVAL, "slots must be an integer >= -1 (-1: unlimited)");
    if (rc == 0 && path_name) {
        rc = same_key(r, body, "name", path_name);
        int64_t old = 0;
        if (rc == 0) {
            rc = STORE(r, store_pool_get(st, name, &old, &err));
            if (rc < 0)
                rc = web__fail(r, rc, &err);
        }
        json_t *arr = NULL, *p = NULL;
        if (rc == 0 && STORE(r, store_pool_list(st, &arr, NULL)) == 0)
            p = find_by(arr, "name", name);
        json_decref(arr);
        slots = js && in_mask(r, "slots") ? json_integer_value(js) : old;
        char *old_desc = p ? xstrdup(json_string_value(json_object_get(p, "description"))
                                         ? json_string_value(json_object_get(p, "description"))
                                         : "")
                           : NULL;
        json_decref(p);
        if (rc == 0) {
            bool keep = !json_object_get(body, "description") || !in_mask(r, "description");
            rc = STORE(r, store_pool_set(st, name, slots, keep ? old_desc : desc, &err));
            if (rc < 0)
                rc = web__fail(r, rc, &err);
        }
        free(old_desc);
    } else if (rc == 0) {
        rc = opt_str(r, body, "name", &name);
        int64_t old = 0;
        if (rc == 0 && (!name || !web__valid_id(name)))
            rc = web__problem(r, WEIR_EINVAL,
                              "name must be 1 to 250 characters of [A-Za-z0-9_.~:+-]");
        if (rc == 0 && !js)
            rc = web__problem(r, WEIR_EINVAL, "slots is required");
        if (rc == 0 && STORE(r, store_pool_get(st, name, &old, NULL)) == 0)
            rc = web__problem(r, WEIR_ECONFLICT, "pool '%s' already exists", name);
        if (rc == 0) {
            rc = STORE(r, store_pool_set(st, name, json_integer_value(js), desc, &err));
            if (rc < 0)
                rc = web__fail(r, rc, &err);
        }
    }
    if (rc == 0) {
        LOG_INFO("pool set pool=%s user=%s", name, r->user);
        web__wake(r);
        rc = pool_reply(r, st, name);
    }
    json_decref(body);
    return rc;
}

int web__h_pool_post(struct req *r)
{
    return pool_write(r, NULL);
}

int web__h_pool_patch(struct req *r)
{
    return pool_write(r, r->args[0]);
}

int web__h_pool_delete(struct req *r)
{
    GET_STORE(r, st);
    int rc = STORE(r, store_pool_delete(st, r->args[0], &err));
    if (rc < 0)
        return web__fail(r, rc, &err);
    LOG_INFO("pool deleted pool=%s user=%s", r->args[0], r->user);
    return web__no_content(r);
}

/* ---- users (admin) --------------------------------------------------------------------------- */

/* Airflow's User object (the FAB fields weir has) plus "role". */
static void user_decorate(json_t *u)
{
    const char *role = json_string_value(json_object_get(u, "role"));
    json_t *roles = json_array();
    json_t *ro = json_object();
    json_object_set_new(ro, "name", json_string(role ? role : ""));
    json_array_append_new(roles, ro);
    json_object_set_new(u, "roles", roles);
    json_object_set(u, "created_on", json_object_get(u, "created_at"));
    json_object_set_new(u, "active", json_true());
}

int web__h_users_list(struct req *r)
{
    GET_STORE(r, st);
    size_t limit, offset;
    if (web__page_params(r, &limit, &offset) < 0)
        return -1;
    json_t *arr = NULL;
    int rc = STORE(r, store_user_list(st, &arr, &err));
    if (rc < 0)
        return web__fail(r, rc, &err);
    size_t i;
    json_t *u;
    json_array_foreach(arr, i, u)
        user_decorate(u);
    return web__json(r, 200, web__page_of("users", arr, limit, offset));
}

static int user_reply(struct req *r, struct store *st, const char *name)
{
    json_t *arr = NULL;
    struct weir_err err = { 0 };
    int rc = STORE(r, store_user_list(st, &arr, &err));
    if (rc < 0)
        return web__fail(r, rc, &err);
    json_t *u = find_by(arr, "username", name);
    json_decref(arr);
    if (!u)
        return web__problem(r, WEIR_ENOTFOUND, "user '%s' not found", name);
    user_decorate(u);
    return web__json(r, 200, u);
}

int web__h_user_get(struct req *r)
{
    GET_STORE(r, st);
    return user_reply(r, st, r->args[0]);
}

/* The role from "role" or Airflow's "roles": [{"name": ...}]; NULL if neither. */
static int body_role(struct req *r, json_t *body, const char **out)
{
    *out = NULL;
    json_t *roles = json_object_get(body, "roles");
    if (opt_str(r, body, "role", out) < 0)
        return -1;
    if (roles) {
        if (!json_is_array(roles) || json_array_size(roles) != 1 ||
            !json_is_string(json_object_get(json_array_get(roles, 0), "name")))
            return web__problem(r, WEIR_EINVAL, "roles must hold exactly one {\"name\": ROLE}");
        *out = json_string_value(json_object_get(json_array_get(roles, 0), "name"));
    }
    if (*out && web__role_parse(*out) == ROLE_NONE)
        return web__problem(r, WEIR_EINVAL, "role '%.40s' is not admin, op or viewer", *out);
    if (*out)
        *out = web__role_name(web__role_parse(*out));
    return 0;
}

static const char *const user_keys[] = { "username",   "password",  "role",  "roles",
                                         "first_name", "last_name", "email", NULL };

int web__h_user_post(struct req *r)
{
    GET_STORE(r, st);
    json_t *body = NULL;
    if (web__body_object(r, &body) < 0)
        return -1;
    const char *user = NULL, *pass = NULL, *role = NULL;
    int rc = web__check_keys(r, body, user_keys);
    if (rc == 0)
        rc = opt_str(r, body, "username", &user);
    if (rc == 0)
        rc = opt_str(r, body, "password", &pass);
    if (rc == 0)
        rc = body_role(r, body, &role);
    if (rc == 0 && (!user || !pass || !role))
        rc = web__problem(r, WEIR_EINVAL, "username, password and role are required");
    if (rc == 0) {
        rc = STORE(r, web_user_create(st, user, role, pass, &err));
        if (rc < 0)
            rc = web__fail(r, rc, &err);
    }
    if (rc == 0) {
        LOG_INFO("user created username=%s role=%s by=%s", user, role, r->user);
        rc = user_reply(r, st, user);
    }
    json_decref(body);
    return rc;
}

int web__h_user_patch(struct req *r)
{
    GET_STORE(r, st);
    json_t *body = NULL;
    if (web__body_object(r, &body) < 0)
        return -1;
    const char *pass = NULL, *role = NULL;
    char *hash = NULL;
    int rc = web__check_keys(r, body, user_keys);
    if (rc == 0)
        rc = same_key(r, body, "username", r->args[0]);
    if (rc == 0)
        rc = opt_str(r, body, "password", &pass);
    if (rc == 0)
        rc = body_role(r, body, &role);
    if (rc == 0 && pass && web__hash_password(pass, &hash, &err) < 0)
        rc = web__fail(r, -WEIR_EINVAL, &err);
    if (rc == 0) {
        rc = STORE(r, store_user_update(st, r->args[0], role, hash, &err));
        if (rc < 0)
            rc = web__fail(r, rc, &err);
    }
    free(hash);
    json_decref(body);
    if (rc < 0)
        return rc;
    web__auth_cache_clear(r->w);
    LOG_INFO("user changed username=%s by=%s", r->args[0], r->user);
    return user_reply(r, st, r->args[0]);
}

int web__h_user_delete(struct req *r)
{
    GET_STORE(r, st);
    if (strcmp(r->args[0], r->user) == 0)
        return web__problem(r, WEIR_EINVAL, "you cannot delete yourself");
    int rc = STORE(r, store_user_delete(st, r->args[0], &err));
    if (rc < 0)
        return web__fail(r, rc, &err);
    web__auth_cache_clear(r->w);
    LOG_INFO("user deleted username=%s by=%s", r->args[0], r->user);
    return web__no_content(r);
}

/* ---- import errors, version, health -------------------------------------------------------- */

int web__h_import_errors(struct req *r)
{
    GET_STORE(r, st);
    size_t limit, offset;
    if (web__page_params(r, &limit, &offset) < 0)
        return -1;
    json_t *arr = NULL;
    int rc = STORE(r, store_import_error_list(st, &arr, &err));
    if (rc < 0)
        return web__fail(r, rc, &err);
    return web__json(r, 200, web__page_of("import_errors", arr, limit, offset));
}

int web__h_version(struct req *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "version", json_string(WEIR_VERSION));
    json_object_set_new(o, "git_version", json_null());
    return web__json(r, 200, o);
}

/* Airflow's HealthInfo. The scheduler part is known only when one runs in this process
 * (weir standalone); a lone web server reports its status as null. 503 when the store
 * cannot be reached, so load balancers take the replica out. */
int web__health(struct req *r)
{
    struct weir_err err = { 0 };
    struct store *st = web__store(r, &err);
    int ver = 0;
    bool db_ok = st && STORE(r, store_schema_version(st, &ver, &err)) == 0;
    json_t *o = json_object();
    json_object_set_new(o, "metadatabase",
                        json_pack("{s:s}", "status", db_ok ? "healthy" : "unhealthy"));
    json_t *sch = json_object();
    json_t *stats = r->w->stats ? r->w->stats(r->w->stats_ud) : NULL;
    json_object_set_new(sch, "status", stats ? json_string("healthy") : json_null());
    json_object_set_new(sch, "latest_scheduler_heartbeat", json_null());
    json_decref(stats);
    json_object_set_new(o, "scheduler", sch);
    if (!db_ok)
        LOG_ERROR("health: store unreachable: %s", err.msg);
    return web__json(r, db_ok ? 200 : 503, o);
}
