/* plugins/s3/client/s3client.h - a small blocking S3 client (AWS, MinIO, Scaleway, any
 * S3-compatible store) shared by the s3, weather and gharchive plugins as the static
 * library weir_s3client. Requests are signed with libcurl's CURLOPT_AWS_SIGV4 (see
 * s3client.c for how the gaps of libcurl 7.88.1 are closed) and retried with backoff on
 * 5xx, 429 and network errors.
 *
 * Threads: one struct s3_client per thread (it owns one curl handle). Nothing here calls
 * into weir: the plugin maps the negative S3_E* codes and `struct s3_err` to task errors.
 * Memory: uploads are read from disk one part at a time, so a put never holds more than
 * max(multipart threshold, part size) bytes of the file; downloads stream to disk. */
#ifndef WEIR_S3_S3CLIENT_H
#define WEIR_S3_S3CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct s3_client;

/* Return codes: 0 (or a count) on success, one of these on failure. Only ever appended. */
enum s3_status {
    S3_OK = 0,
    S3_EINVAL = -1,     /* bad argument or connection: retrying cannot help */
    S3_ENOTFOUND = -2,  /* NoSuchBucket, NoSuchKey, 404 */
    S3_EDENIED = -3,    /* 401/403: AccessDenied, SignatureDoesNotMatch, InvalidAccessKeyId */
    S3_EHTTP = -4,      /* any other S3 error response (after retries for 5xx/429) */
    S3_ENET = -5,       /* connection failed or broke (after retries) */
    S3_EIO = -6,        /* local file error */
    S3_ECANCELLED = -7, /* the cancel callback asked to stop */
    S3_ETOOBIG = -8,    /* a limit was exceeded (response size, listing size, part count) */
};

/* The error of the last failed call, filled by every function that takes one (callers may
 * pass NULL). A small value the caller keeps on its stack; never holds a secret. */
struct s3_err {
    int status;    /* the S3_E* code */
    int http;      /* HTTP status of the last response, 0 if none */
    char code[64]; /* S3's error code ("NoSuchKey", "SignatureDoesNotMatch"...), or "" */
    char msg[512]; /* one line, git style: "get 's3://b/k': NoSuchKey: The specified key..." */
};

/* Creates a client. `endpoint` is "http(s)://host[:port]" (NULL: AWS, https://s3.REGION.
 * amazonaws.com); `region` defaults to us-east-1 when NULL or empty. `path_style` puts the
 * bucket in the path (MinIO, s3rver) instead of the host name (AWS's virtual-hosted
 * style). The strings are copied. Returns NULL and fills `err` on bad arguments. */
struct s3_client *s3_client_new(const char *endpoint, const char *region, const char *access_key,
                                const char *secret_key, bool path_style, struct s3_err *err);

/* Creates a client from a weir connection object as host->conn_get returns it:
 *   {"conn_type": "aws"|"s3", "host", "port", "login" (access key), "password" (secret),
 *    "extra": {"endpoint_url", "region_name" (or "region"), "path_style" (true/"true"),
 *              "addressing_style" ("path"|"virtual"), "secure" (default true),
 *              "aws_access_key_id", "aws_secret_access_key", "aws_session_token"}}
 * The endpoint is extra.endpoint_url, else host (a URL, or a name plus port and `secure`),
 * else AWS. Path style defaults to true for a custom endpoint and false for AWS. Values in
 * extra may be strings (URIs give strings). Borrows `conn`. NULL and `err` on failure. */
struct s3_client *s3_client_from_conn(json_t *conn, struct s3_err *err);

/* Frees the client; NULL-safe. */
void s3_client_free(struct s3_client *c);

/* Tuning. Retries: a request is tried at most `attempts` times (default 5, at least 1);
 * waits start at `base_delay_ms` (default 250) and double up to 8 s, with jitter. */
void s3_client_set_retries(struct s3_client *c, int attempts, int base_delay_ms);
/* `fn(arg)` is polled during transfers and backoff waits; non-zero stops the call with
 * S3_ECANCELLED. NULL removes it. */
void s3_client_set_cancel(struct s3_client *c, int (*fn)(void *arg), void *arg);
/* `fn(arg, line)` receives one line for each retry ("retrying put 's3://b/k' in 500 ms
 * (attempt 2 of 5): HTTP 503 ..."), so a task log shows why a call was slow. */
void s3_client_set_log(struct s3_client *c, void (*fn)(void *arg, const char *line), void *arg);

/* ---- s3:// URLs ---------------------------------------------------------------------- */

/* Splits "s3://bucket/key/with/slashes" into new strings (free both with free()). The key
 * may be empty (a bucket or prefix URL). Returns 0, or S3_EINVAL with `err` filled. */
int s3_url_parse(const char *url, char **bucket, char **key, struct s3_err *err);

/* ---- objects ------------------------------------------------------------------------- */

struct s3_put_opts {
    const char *content_type;     /* NULL: "application/octet-stream" */
    uint64_t multipart_threshold; /* files larger than this use multipart; 0: 8 MiB */
    uint64_t part_size;           /* 0: 8 MiB; raised to 5 MiB minimum and as needed so a
                                     file fits in 10000 parts */
};

/* Uploads the local file `path` to bucket/key (single PUT up to the threshold, multipart
 * above, aborted on failure). `opts` may be NULL. Returns 0 or a negative S3_E*. */
int s3_put_file(struct s3_client *c, const char *bucket, const char *key, const char *path,
                const struct s3_put_opts *opts, struct s3_err *err);

/* Uploads `len` bytes (at most 5 GiB) as one object. `content_type` may be NULL. */
int s3_put_buffer(struct s3_client *c, const char *bucket, const char *key, const void *data,
                  size_t len, const char *content_type, struct s3_err *err);

/* Downloads bucket/key into `path` (written to a temporary file beside it, then renamed,
 * so `path` is never left half written). Returns 0 or a negative S3_E*. */
int s3_get_to_file(struct s3_client *c, const char *bucket, const char *key, const char *path,
                   struct s3_err *err);

struct s3_object {
    char *key;
    uint64_t size;
    char *etag;          /* without quotes; may be "" */
    char *last_modified; /* as the server gives it (ISO 8601 in listings); may be "" */
};

struct s3_object_list {
    struct s3_object *items;
    size_t n;
};

/* Lists the keys under `prefix` (NULL or "": all) in key order, following continuation
 * tokens (ListObjectsV2). `page_size` is max-keys per request (0: 1000); at most
 * `max_items` entries are collected (0: 1,000,000) before S3_ETOOBIG. On success returns
 * the number of entries and fills `out` (release with s3_object_list_release). */
int s3_list(struct s3_client *c, const char *bucket, const char *prefix, int page_size,
            size_t max_items, struct s3_object_list *out, struct s3_err *err);
void s3_object_list_release(struct s3_object_list *l);

/* Checks whether bucket/key exists: 1 yes (and fills `info` when non-NULL: release its
 * strings with s3_object_release), 0 no, or a negative S3_E*. */
int s3_head(struct s3_client *c, const char *bucket, const char *key, struct s3_object *info,
            struct s3_err *err);
void s3_object_release(struct s3_object *o);

/* Deletes bucket/key; deleting a missing key succeeds (as S3 does). */
int s3_delete(struct s3_client *c, const char *bucket, const char *key, struct s3_err *err);

/* Server-side copy (CopyObject, objects up to 5 GiB). */
int s3_copy(struct s3_client *c, const char *src_bucket, const char *src_key,
            const char *dst_bucket, const char *dst_key, struct s3_err *err);

/* Creates a bucket; an existing bucket of ours is not an error. */
int s3_bucket_create(struct s3_client *c, const char *bucket, struct s3_err *err);

#ifdef __cplusplus
}
#endif

#endif
