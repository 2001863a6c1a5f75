/* tests/unit/test_s3client.c - the S3 client (plugins/s3/client) against the real
 * SigV4-verifying test server of the ctest fixture "s3" (settings in $WEIR_TEST_S3_ENV):
 * round trips, pagination, copy, delete, odd keys, multipart with bounded memory, wrong
 * secret, missing bucket, and a proxy (tests/helpers/flaky_proxy.py) that fails first. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "s3client.h"

extern char **environ;

static char endpoint[256], region[64], access_key[128], secret_key[128];
static char bucket[64];
static char tmpdir[256];

/* Reads S3_X='value' lines written by s3peer.sh start. */
static void load_env(void)
{
    const char *path = getenv("WEIR_TEST_S3_ENV");
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f) {
        fprintf(stderr, "test_s3client: no S3 fixture (WEIR_TEST_S3_ENV=%s)\n",
                path ? path : "(unset)");
        exit(1);
    }
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = '\0';
        char *v = eq + 1;
        v[strcspn(v, "\n")] = '\0';
        size_t n = strlen(v);
        if (n >= 2 && v[0] == '\'' && v[n - 1] == '\'') {
            v[n - 1] = '\0';
            v++;
        }
        if (!strcmp(line, "S3_ENDPOINT"))
            snprintf(endpoint, sizeof endpoint, "%s", v);
        else if (!strcmp(line, "S3_REGION"))
            snprintf(region, sizeof region, "%s", v);
        else if (!strcmp(line, "S3_ACCESS_KEY"))
            snprintf(access_key, sizeof access_key, "%s", v);
        else if (!strcmp(line, "S3_SECRET_KEY"))
            snprintf(secret_key, sizeof secret_key, "%s", v);
    }
    fclose(f);
    assert_true(endpoint[0] && access_key[0] && secret_key[0]);
}

static struct s3_client *client(void)
{
    struct s3_err e = { 0 };
    struct s3_client *c = s3_client_new(endpoint, region, access_key, secret_key, true, &e);
    if (!c)
        fail_msg("s3_client_new: %s", e.msg);
    s3_client_set_retries(c, 3, 10);
    return c;
}

static void path_in_tmp(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void put_str(struct s3_client *c, const char *key, const char *s)
{
    struct s3_err e = { 0 };
    int rc = s3_put_buffer(c, bucket, key, s, strlen(s), "text/plain", &e);
    if (rc != 0)
        fail_msg("put '%s': %s", key, e.msg);
}

static void expect_content(struct s3_client *c, const char *key, const char *want)
{
    char p[512];
    struct s3_err e = { 0 };
    path_in_tmp(p, sizeof p, "got");
    int rc = s3_get_to_file(c, bucket, key, p, &e);
    if (rc != 0)
        fail_msg("get '%s': %s", key, e.msg);
    size_t n;
    char *got = read_file(p, &n);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(got, want, n);
    free(got);
    unlink(p);
}

static int group_setup(void **state)
{
    (void)state;
    load_env();
    snprintf(tmpdir, sizeof tmpdir, "%s/weir-s3test-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir))
        return -1;
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    snprintf(bucket, sizeof bucket, "weir-test-%d-%d", (int)getpid(), rand() % 100000);
    struct s3_client *c = client();
    struct s3_err e = { 0 };
    int rc = s3_bucket_create(c, bucket, &e);
    if (rc != 0)
        fprintf(stderr, "create bucket: %s\n", e.msg);
    /* A second create of our own bucket is not an error. */
    if (rc == 0)
        rc = s3_bucket_create(c, bucket, &e);
    s3_client_free(c);
    return rc;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[300];
    /* tmpdir holds only files this test wrote; no shell: unlink each known name. */
    snprintf(cmd, sizeof cmd, "%s/big", tmpdir);
    unlink(cmd);
    snprintf(cmd, sizeof cmd, "%s/big.back", tmpdir);
    unlink(cmd);
    rmdir(tmpdir);
    return 0;
}

static void test_url_parse(void **state)
{
    (void)state;
    char *b, *k;
    struct s3_err e = { 0 };
    assert_int_equal(s3_url_parse("s3://bkt/a/b c.txt", &b, &k, &e), 0);
    assert_string_equal(b, "bkt");
    assert_string_equal(k, "a/b c.txt");
    free(b);
    free(k);
    assert_int_equal(s3_url_parse("s3://bkt", &b, &k, &e), 0);
    assert_string_equal(k, "");
    free(b);
    free(k);
    assert_int_equal(s3_url_parse("http://bkt/x", &b, &k, &e), S3_EINVAL);
    assert_null(b);
    assert_non_null(strstr(e.msg, "not an s3:// URL"));
    assert_int_equal(s3_url_parse("s3://bad bucket/x", &b, &k, &e), S3_EINVAL);
    assert_non_null(strstr(e.msg, "invalid bucket name"));
}

static void test_client_new_errors(void **state)
{
    (void)state;
    struct s3_err e = { 0 };
    assert_null(s3_client_new("ftp://x", NULL, "a", "b", true, &e));
    assert_int_equal(e.status, S3_EINVAL);
    assert_null(s3_client_new("http://x/path", NULL, "a", "b", true, &e));
    assert_null(s3_client_new("http://x", NULL, "", "b", true, &e));
    assert_non_null(strstr(e.msg, "access key"));
    struct s3_client *c = s3_client_new(NULL, "eu-west-1", "a", "b", false, &e);
    assert_non_null(c); /* AWS default endpoint */
    s3_client_free(c);
}

static void test_from_conn(void **state)
{
    (void)state;
    struct s3_err e = { 0 };
    /* The URI form s3://KEY:SECRET@127.0.0.1:PORT/?region_name=..&path_style=true&secure=false
     * arrives as this object. */
    const char *hp = strstr(endpoint, "://") + 3;
    char host[128];
    snprintf(host, sizeof host, "%.*s", (int)strcspn(hp, ":"), hp);
    long port = strtol(strchr(hp, ':') + 1, NULL, 10);
    json_t *conn = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:{s:s, s:s, s:s}}", "conn_id",
                             "s3test", "conn_type", "s3", "host", host, "port", (json_int_t)port,
                             "login", access_key, "password", secret_key, "extra", "region_name",
                             region, "path_style", "true", "secure", "false");
    struct s3_client *c = s3_client_from_conn(conn, &e);
    if (!c)
        fail_msg("from_conn: %s", e.msg);
    put_str(c, "conn/one.txt", "one");
    s3_client_free(c);
    json_decref(conn);

    /* Airflow's aws form: endpoint_url in extra, path style implied. */
    conn =
        json_pack("{s:s, s:s, s:s, s:{s:s, s:s}}", "conn_type", "aws", "login", access_key,
                  "password", secret_key, "extra", "endpoint_url", endpoint, "region_name", region);
    c = s3_client_from_conn(conn, &e);
    if (!c)
        fail_msg("from_conn aws: %s", e.msg);
    expect_content(c, "conn/one.txt", "one");
    s3_client_free(c);
    json_decref(conn);

    conn = json_pack("{s:s, s:s, s:s, s:{s:s}}", "conn_type", "s3", "login", "k", "password", "s",
                     "extra", "path_style", "maybe");
    assert_null(s3_client_from_conn(conn, &e));
    assert_non_null(strstr(e.msg, "must be true or false"));
    json_decref(conn);

    conn = json_pack("{s:s, s:s}", "conn_id", "pg", "conn_type", "postgres");
    assert_null(s3_client_from_conn(conn, &e));
    assert_int_equal(e.status, S3_EINVAL);
    assert_non_null(strstr(e.msg, "not an S3 connection"));
    json_decref(conn);
}

static void test_put_get_head_delete(void **state)
{
    (void)state;
    struct s3_client *c = client();
    struct s3_err e = { 0 };
    put_str(c, "dir/hello.txt", "hello, s3");
    expect_content(c, "dir/hello.txt", "hello, s3");

    struct s3_object o = { 0 };
    assert_int_equal(s3_head(c, bucket, "dir/hello.txt", &o, &e), 1);
    assert_int_equal(o.size, 9);
    assert_string_equal(o.key, "dir/hello.txt");
    assert_true(strlen(o.etag) > 0);
    s3_object_release(&o);
    assert_int_equal(s3_head(c, bucket, "dir/missing.txt", NULL, &e), 0);

    /* Empty objects work too. */
    assert_int_equal(s3_put_buffer(c, bucket, "empty", "", 0, NULL, &e), 0);
    expect_content(c, "empty", "");

    assert_int_equal(s3_delete(c, bucket, "dir/hello.txt", &e), 0);
    assert_int_equal(s3_head(c, bucket, "dir/hello.txt", NULL, &e), 0);
    /* Deleting a missing key succeeds, as on S3. */
    assert_int_equal(s3_delete(c, bucket, "dir/hello.txt", &e), 0);

    char p[512];
    path_in_tmp(p, sizeof p, "nothing");
    assert_int_equal(s3_get_to_file(c, bucket, "dir/hello.txt", p, &e), S3_ENOTFOUND);
    assert_string_equal(e.code, "NoSuchKey");
    assert_int_equal(e.http, 404);
    assert_non_null(strstr(e.msg, "get 's3://"));
    assert_non_null(strstr(e.msg, "NoSuchKey"));
    assert_int_equal(access(p, F_OK), -1); /* nothing half written */
    s3_client_free(c);
}

static void test_list_pagination(void **state)
{
    (void)state;
    struct s3_client *c = client();
    struct s3_err e = { 0 };
    char key[64];
    for (int i = 0; i < 7; i++) {
        snprintf(key, sizeof key, "page/k%02d", i);
        put_str(c, key, "x");
    }
    put_str(c, "pageX/other", "x");
    struct s3_object_list l = { 0 };
    int n = s3_list(c, bucket, "page/", 2, 0, &l, &e);
    if (n < 0)
        fail_msg("list: %s", e.msg);
    assert_int_equal(n, 7);
    for (int i = 0; i < 7; i++) {
        snprintf(key, sizeof key, "page/k%02d", i);
        assert_string_equal(l.items[i].key, key);
        assert_int_equal(l.items[i].size, 1);
    }
    s3_object_list_release(&l);

    /* "page" without the slash also matches pageX/. */
    assert_int_equal(s3_list(c, bucket, "page", 3, 0, &l, &e), 8);
    s3_object_list_release(&l);

    assert_int_equal(s3_list(c, bucket, "page/", 2, 5, &l, &e), S3_ETOOBIG);
    assert_null(l.items);
    assert_int_equal(s3_list(c, bucket, "nothing-here/", 0, 0, &l, &e), 0);
    s3_client_free(c);
}

static void test_copy(void **state)
{
    (void)state;
    struct s3_client *c = client();
    struct s3_err e = { 0 };
    put_str(c, "copy/src.txt", "copied");
    if (s3_copy(c, bucket, "copy/src.txt", bucket, "copy/dst.txt", &e) != 0)
        fail_msg("copy: %s", e.msg);
    expect_content(c, "copy/dst.txt", "copied");
    expect_content(c, "copy/src.txt", "copied");
    int rc = s3_copy(c, bucket, "copy/none.txt", bucket, "copy/dst2.txt", &e);
    assert_int_equal(rc, S3_ENOTFOUND);
    assert_non_null(strstr(e.msg, "NoSuchKey"));
    s3_client_free(c);
}

static void test_odd_keys(void **state)
{
    (void)state;
    static const char *const keys[] = {
        "with space/a b.txt",
        "plus+sign+key",
        "unicode/\xc3\xa9t\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87.txt",
        "percent%20literal%",
        "tilde~star*quote'paren(x)!",
        "eq=amp&semi;colon:at@comma,dollar$",
        "hash#question?",
        /* Not "a/./b", "a/../b" or "a//b": the client sends them verbatim (PATH_AS_IS),
         * but s3rver stores objects as files and normalizes such paths. */
    };
    struct s3_client *c = client();
    struct s3_err e = { 0 };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char k[256];
        snprintf(k, sizeof k, "odd/%s", keys[i]);
        put_str(c, k, keys[i]);
        assert_int_equal(s3_head(c, bucket, k, NULL, &e), 1);
        expect_content(c, k, keys[i]);
    }
    struct s3_object_list l = { 0 };
    int n = s3_list(c, bucket, "odd/", 3, 0, &l, &e);
    if (n < 0)
        fail_msg("list: %s", e.msg);
    assert_int_equal(n, (int)(sizeof keys / sizeof keys[0]));
    for (size_t i = 0; i < l.n; i++) {
        bool found = false;
        for (size_t j = 0; j < sizeof keys / sizeof keys[0]; j++) {
            char k[256];
            snprintf(k, sizeof k, "odd/%s", keys[j]);
            found = found || !strcmp(l.items[i].key, k);
        }
        if (!found)
            fail_msg("unexpected key in listing: '%s'", l.items[i].key);
    }
    s3_object_list_release(&l);
    /* A prefix with a space and unicode is encoded in the query too. */
    assert_int_equal(s3_list(c, bucket, "odd/unicode/\xc3\xa9", 0, 0, &l, &e), 1);
    s3_object_list_release(&l);
    /* The copy source is percent-encoded as boto3 does (AWS and MinIO decode it fully);
     * s3rver decodes it with JavaScript's decodeURI, which leaves %2B and friends alone,
     * so the source here has only spaces and unicode. */
    if (s3_copy(c, bucket, "odd/with space/a b.txt", bucket, "odd2/copy of +\xc3\xa9", &e) != 0)
        fail_msg("copy: %s", e.msg);
    expect_content(c, "odd2/copy of +\xc3\xa9", "with space/a b.txt");
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char k[256];
        snprintf(k, sizeof k, "odd/%s", keys[i]);
        assert_int_equal(s3_delete(c, bucket, k, &e), 0);
        assert_int_equal(s3_head(c, bucket, k, NULL, &e), 0);
    }
    s3_client_free(c);
}

/* VmRSS or VmHWM of this process in KiB, or -1. */
static long proc_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t fl = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, fl) && line[fl] == ':')
            v = strtol(line + fl + 1, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

/* Resets VmHWM to the current RSS (Linux >= 4.0); false when not allowed. */
static bool reset_hwm(void)
{
    int fd = open("/proc/self/clear_refs", O_WRONLY);
    if (fd < 0)
        return false;
    bool ok = write(fd, "5", 1) == 1;
    close(fd);
    return ok;
}

static void test_multipart_20mib(void **state)
{
    (void)state;
    const size_t total = 20u * 1024 * 1024;
    char path[512], back[512];
    path_in_tmp(path, sizeof path, "big");
    path_in_tmp(back, sizeof back, "big.back");
    /* Written in 64 KiB chunks of pseudo-random bytes: the test never holds the file. */
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    uint64_t x = 88172645463325252ull;
    static unsigned char chunk[64 * 1024];
    for (size_t off = 0; off < total; off += sizeof chunk) {
        for (size_t i = 0; i < sizeof chunk; i += 8) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            memcpy(chunk + i, &x, 8);
        }
        assert_int_equal(fwrite(chunk, 1, sizeof chunk, f), sizeof chunk);
    }
    assert_int_equal(fclose(f), 0);

    struct s3_client *c = client();
    struct s3_err e = { 0 };
    struct s3_put_opts opts = { .content_type = "application/x-test",
                                .multipart_threshold = 8u * 1024 * 1024,
                                .part_size = 5u * 1024 * 1024 };
    bool measured = reset_hwm();
    long rss0 = proc_kb("VmRSS");
    int rc = s3_put_file(c, bucket, "big/file.bin", path, &opts, &e);
    long hwm = proc_kb("VmHWM");
    if (rc != 0)
        fail_msg("multipart put: %s", e.msg);
    if (measured && rss0 > 0 && hwm > 0) {
        long grew = hwm - rss0;
        fprintf(stderr, "multipart 20 MiB: peak RSS grew by %ld KiB (part 5 MiB)\n", grew);
        /* One 5 MiB part in memory plus curl and (under ASan) shadow memory; the whole
         * file would be 20 MiB. */
        assert_true(grew < 14 * 1024);
    }
    struct s3_object o = { 0 };
    assert_int_equal(s3_head(c, bucket, "big/file.bin", &o, &e), 1);
    assert_int_equal(o.size, total);
    s3_object_release(&o);

    if (s3_get_to_file(c, bucket, "big/file.bin", back, &e) != 0)
        fail_msg("get: %s", e.msg);
    FILE *a = fopen(path, "rb"), *b = fopen(back, "rb");
    assert_non_null(a);
    assert_non_null(b);
    static unsigned char ca[64 * 1024], cb[64 * 1024];
    size_t na, nb, seen = 0;
    do {
        na = fread(ca, 1, sizeof ca, a);
        nb = fread(cb, 1, sizeof cb, b);
        assert_int_equal(na, nb);
        assert_memory_equal(ca, cb, na);
        seen += na;
    } while (na > 0);
    assert_int_equal(seen, total);
    fclose(a);
    fclose(b);
    unlink(back);

    /* Below the threshold: one PUT. A missing local file is an I/O error. */
    assert_int_equal(s3_put_file(c, bucket, "big/none", "/nonexistent/file", NULL, &e), S3_EIO);
    assert_non_null(strstr(e.msg, "cannot open '/nonexistent/file'"));
    assert_int_equal(s3_delete(c, bucket, "big/file.bin", &e), 0);
    s3_client_free(c);
    unlink(path);
}

static void test_wrong_secret(void **state)
{
    (void)state;
    struct s3_err e = { 0 };
    struct s3_client *c = s3_client_new(endpoint, region, access_key, "not-the-secret", true, &e);
    assert_non_null(c);
    int rc = s3_put_buffer(c, bucket, "denied.txt", "x", 1, NULL, &e);
    assert_int_equal(rc, S3_EDENIED);
    assert_int_equal(e.http, 403);
    assert_string_equal(e.code, "SignatureDoesNotMatch");
    assert_non_null(strstr(e.msg, "put 's3://"));
    assert_non_null(strstr(e.msg, "SignatureDoesNotMatch"));
    assert_null(strstr(e.msg, "not-the-secret"));
    assert_null(strstr(e.msg, "attempts")); /* 403 is not retried */
    s3_client_free(c);

    c = s3_client_new(endpoint, region, "NOSUCHKEY", secret_key, true, &e);
    assert_int_equal(s3_head(c, bucket, "x", NULL, &e), S3_EDENIED);
    s3_client_free(c);
    c = s3_client_new(endpoint, region, "NOSUCHKEY", secret_key, true, &e);
    struct s3_object_list l = { 0 };
    assert_int_equal(s3_list(c, bucket, NULL, 0, 0, &l, &e), S3_EDENIED);
    assert_string_equal(e.code, "InvalidAccessKeyId");
    s3_client_free(c);
}

static void test_missing_bucket(void **state)
{
    (void)state;
    struct s3_client *c = client();
    struct s3_err e = { 0 };
    struct s3_object_list l = { 0 };
    assert_int_equal(s3_list(c, "weir-no-such-bucket", NULL, 0, 0, &l, &e), S3_ENOTFOUND);
    assert_string_equal(e.code, "NoSuchBucket");
    assert_non_null(strstr(e.msg, "NoSuchBucket"));
    assert_int_equal(s3_put_buffer(c, "weir-no-such-bucket", "k", "x", 1, NULL, &e), S3_ENOTFOUND);
    assert_string_equal(e.code, "NoSuchBucket");
    s3_client_free(c);
}

/* Starts flaky_proxy.py in front of the fixture; returns its pid, port in *port, and the
 * write end of its stdin in *stdin_fd (closing it stops the proxy). */
static pid_t start_proxy(const char *mode, int fail, int *port, int *stdin_fd)
{
    const char *script = getenv("WEIR_TEST_FLAKY_PROXY");
    assert_non_null(script);
    int in[2], out[2];
    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(out), 0);
    char nfail[16];
    snprintf(nfail, sizeof nfail, "%d", fail);
    char *argv[] = { "python3", (char *)script, endpoint,     "--fail",
                     nfail,     "--mode",       (char *)mode, NULL };
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, in[1]);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    pid_t pid;
    assert_int_equal(posix_spawnp(&pid, "python3", &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    char buf[64] = "";
    size_t got = 0;
    while (got < sizeof buf - 1 && !strchr(buf, '\n')) {
        ssize_t n = read(out[0], buf + got, sizeof buf - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        buf[got] = '\0';
    }
    close(out[0]);
    assert_int_equal(sscanf(buf, "PORT %d", port), 1);
    *stdin_fd = in[1];
    return pid;
}

static void stop_proxy(pid_t pid, int stdin_fd)
{
    close(stdin_fd);
    int status;
    waitpid(pid, &status, 0);
}

static int retries_logged;

static void count_retry(void *arg, const char *line)
{
    (void)arg;
    fprintf(stderr, "retry: %s\n", line);
    retries_logged++;
}

static struct s3_client *proxy_client(int port, int attempts)
{
    char ep[64];
    struct s3_err e = { 0 };
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", port);
    struct s3_client *c = s3_client_new(ep, region, access_key, secret_key, true, &e);
    assert_non_null(c);
    s3_client_set_retries(c, attempts, 20);
    s3_client_set_log(c, count_retry, NULL);
    return c;
}

static void test_fails_then_recovers(void **state)
{
    (void)state;
    int port, in;
    struct s3_err e = { 0 };
    pid_t pid = start_proxy("status", 3, &port, &in);
    struct s3_client *c = proxy_client(port, 5);
    retries_logged = 0;
    int rc = s3_put_buffer(c, bucket, "flaky/recovered.txt", "ok", 2, NULL, &e);
    if (rc != 0)
        fail_msg("put through the flaky proxy: %s", e.msg);
    assert_int_equal(retries_logged, 3);
    expect_content(c, "flaky/recovered.txt", "ok");
    s3_client_free(c);
    stop_proxy(pid, in);

    /* More failures than attempts: a clear error with the last status. */
    pid = start_proxy("status", 10, &port, &in);
    c = proxy_client(port, 3);
    rc = s3_put_buffer(c, bucket, "flaky/never.txt", "x", 1, NULL, &e);
    assert_int_equal(rc, S3_EHTTP);
    assert_int_equal(e.http, 503);
    assert_non_null(strstr(e.msg, "ServiceUnavailable"));
    assert_non_null(strstr(e.msg, "after 3 attempts"));
    s3_client_free(c);
    stop_proxy(pid, in);

    /* Dropped connections are network errors, retried the same way. */
    pid = start_proxy("drop", 2, &port, &in);
    c = proxy_client(port, 4);
    retries_logged = 0;
    rc = s3_put_buffer(c, bucket, "flaky/dropped.txt", "d", 1, NULL, &e);
    if (rc != 0)
        fail_msg("put after dropped connections: %s", e.msg);
    assert_int_equal(retries_logged, 2);
    s3_client_free(c);
    stop_proxy(pid, in);
}

static void test_connection_refused(void **state)
{
    (void)state;
    struct s3_err e = { 0 };
    struct s3_client *c = s3_client_new("http://127.0.0.1:1", region, "a", "b", true, &e);
    s3_client_set_retries(c, 2, 1);
    assert_int_equal(s3_head(c, bucket, "k", NULL, &e), S3_ENET);
    assert_non_null(strstr(e.msg, "http://127.0.0.1:1"));
    assert_non_null(strstr(e.msg, "after 2 attempts"));
    s3_client_free(c);
}

static int cancel_now(void *arg)
{
    (void)arg;
    return 1;
}

static void test_cancel(void **state)
{
    (void)state;
    struct s3_client *c = client();
    struct s3_err e = { 0 };
    s3_client_set_cancel(c, cancel_now, NULL);
    assert_int_equal(s3_put_buffer(c, bucket, "cancelled", "x", 1, NULL, &e), S3_ECANCELLED);
    assert_non_null(strstr(e.msg, "cancelled"));
    s3_client_free(c);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_parse),
        cmocka_unit_test(test_client_new_errors),
        cmocka_unit_test(test_from_conn),
        cmocka_unit_test(test_put_get_head_delete),
        cmocka_unit_test(test_list_pagination),
        cmocka_unit_test(test_copy),
        cmocka_unit_test(test_odd_keys),
        cmocka_unit_test(test_multipart_20mib),
        cmocka_unit_test(test_wrong_secret),
        cmocka_unit_test(test_missing_bucket),
        cmocka_unit_test(test_fails_then_recovers),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_cancel),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
