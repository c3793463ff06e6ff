/*
 * rf_testlib.h - a small shared library for racefree's black-box tests.
 *
 *  - a minimal HTTP/1.1 client over raw sockets (127.0.0.1 only, one request
 *    per connection, `Connection: close`, bounded sizes, receive timeout);
 *  - a server harness that runs `$RF_BIN serve` on a free port and stops it;
 *  - helpers that run the CLI (`keys create` and friends);
 *  - the test database (RF_TEST_DB: "sqlite" or a PostgreSQL URL) and random
 *    ids, so parallel tests and reruns on a shared database never collide;
 *  - a barrier helper: N threads released together, each doing its part.
 *
 * Nothing here depends on cmocka; rf_testassert.h adds assertion macros.
 * Functions return 0 on success and -1 on failure with a message on stderr.
 */
#ifndef RF_TESTLIB_H
#define RF_TESTLIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- bounds ------------------------------------------------------------- */
#define RF_T_HEADERS_MAX 64                 /* response headers kept */
#define RF_T_HEAD_BYTES_MAX (64 * 1024)     /* status line + headers */
#define RF_T_BODY_BYTES_MAX (8 * 1024 * 1024)
#define RF_T_RECV_TIMEOUT_MS 60000          /* per recv()/send() */
#define RF_T_URL_BYTES 512
#define RF_T_KEY_BYTES 256
#define RF_T_CLI_OUT_BYTES (256 * 1024)

/* ---- HTTP client ---------------------------------------------------------- */
struct rf_t_header {
    char *name;
    char *value;
};

struct rf_t_resp {
    int status;                 /* 0 when the exchange failed */
    int err;                    /* 0, or an errno-like code of the failure */
    char errmsg[160];
    struct rf_t_header headers[RF_T_HEADERS_MAX];
    int n_headers;
    char *body;                 /* NUL-terminated; malloc'd */
    size_t body_len;
};

/* One request. `headers` is a NULL-terminated list of "Name: value" strings
 * (may be NULL). A body goes with "Content-Type: application/json" unless
 * the headers give one; the bare entry "Content-Type" (no colon) sends none.
 * body may be NULL (then Content-Length: 0 is sent for PUT/POST/PATCH/DELETE,
 * nothing for GET/HEAD). Returns 0 when a complete
 * response was read, -1 otherwise (out->err and out->errmsg say why). */
int rf_http(int port, const char *method, const char *path, const char *const *headers,
            const void *body, size_t body_len, struct rf_t_resp *out);

/* Convenience: adds "Authorization: Bearer <api_key>" when api_key is
 * non-NULL, plus up to a few extra "Name: value" headers (NULL-terminated,
 * may be NULL). body is a C string or NULL. */
int rf_req(int port, const char *method, const char *path, const char *api_key,
           const char *body, const char *const *extra_headers, struct rf_t_resp *out);

/* Case-insensitive header lookup; NULL when absent. */
const char *rf_resp_header(const struct rf_t_resp *r, const char *name);
void rf_resp_free(struct rf_t_resp *r);
/* Percent-encodes everything but [A-Za-z0-9-._~]; -1 when out is too small. */
int rf_urlencode(const char *in, char *out, size_t cap);
/* A deep copy (for keeping a response past the thread that got it). */
void rf_resp_move(struct rf_t_resp *dst, struct rf_t_resp *src);

/* ---- server harness --------------------------------------------------------- */
struct rf_server {
    pid_t pid;
    int port;
    char db_url[RF_T_URL_BYTES];
    char out_path[128];        /* stdout of the server */
    char err_path[128];        /* stderr of the server */
};

/* Starts `$RF_BIN serve --db db_url --listen 127.0.0.1:PORT [extra_args]`
 * (extra_args NULL-terminated, may be NULL) on a free port and waits (at most
 * 20 s) for GET /healthz = 200. */
int rf_server_start(const char *db_url, const char *const *extra_args, struct rf_server *srv);
/* The two halves of rf_server_start, for starting several servers at once:
 * spawn (no wait, no retry) and then wait for /healthz (bounded). */
int rf_server_spawn(const char *db_url, const char *const *extra_args, struct rf_server *srv);
int rf_server_wait_healthy(struct rf_server *srv);
/* SIGTERM, then waitpid at most timeout_ms (0: 30 s); after that SIGKILL.
 * Returns the exit code (0..255) when the process exited on its own, or -1
 * (killed by a signal or by the timeout); the reason is printed on stderr
 * with the tail of the server's stderr. Removes the log files on exit 0. */
int rf_server_stop(struct rf_server *srv, int timeout_ms);
/* Sends SIGTERM only (for shutdown tests); rf_server_wait collects it. */
int rf_server_signal(struct rf_server *srv, int sig);
int rf_server_wait(struct rf_server *srv, int timeout_ms);
/* A crash: SIGKILL, then reaps the process (bounded). Returns 0 when it died
 * of that SIGKILL (its log files are removed), -1 when it had already ended
 * otherwise or could not be reaped (the log is printed). */
int rf_server_kill(struct rf_server *srv);
/* Prints the last `max_bytes` of the server's stderr on stderr. */
void rf_server_dump_log(const struct rf_server *srv, size_t max_bytes);
/* Reads the server's stdout so far into buf (NUL-terminated, truncated). */
size_t rf_server_read_stdout(const struct rf_server *srv, char *buf, size_t cap);
/* The same for its stderr (the JSON log lines). */
size_t rf_server_read_stderr(const struct rf_server *srv, char *buf, size_t cap);

/* The racefree binary (env RF_BIN); aborts the process if it is unset. */
const char *rf_bin(void);

/* Runs `$RF_BIN args...` (args NULL-terminated, args[0] is the subcommand),
 * with stdout captured into out (NUL-terminated, truncated to cap) and stderr
 * into err (may be NULL). Bounded to timeout_ms (0: 60 s). Returns the exit
 * code, or -1 on a signal, a timeout, or a failure to run. */
int rf_cli_run(const char *const *args, char *out, size_t out_cap, char *err, size_t err_cap,
               int timeout_ms);

/* `$RF_BIN keys create --db URL --role ROLE --name NAME`; the key is the last
 * non-empty line of stdout. name may be NULL. */
int rf_key_create_cli(const char *db_url, const char *role, const char *name,
                      char key_out[RF_T_KEY_BYTES]);
/* Copies the last non-empty line of text into out. */
int rf_last_line(const char *text, char *out, size_t cap);

/* ---- test database and ids -------------------------------------------------- */
/* True when RF_TEST_DB names PostgreSQL. */
bool rf_test_db_is_pg(void);
/* A database URL for one test: for SQLite a fresh file
 * /tmp/rf-http-<pid>-<counter>.db ("sqlite:/tmp/..."), for PostgreSQL the
 * process's own database on the server of RF_TEST_DB (rf_p_<random>, made
 * on the first call; every later call returns the same one). */
int rf_test_db_url(char *out, size_t cap);
/* A fresh, empty store: for SQLite as above, for PostgreSQL a new database
 * (CREATE DATABASE rf_t_<random>) on the server of RF_TEST_DB. */
int rf_test_db_fresh(char *out, size_t cap);
/* Removes what rf_test_db_url/rf_test_db_fresh made (the SQLite file with
 * its -wal and -shm, or the fresh PostgreSQL database). Keeps the process's one. */
void rf_test_db_cleanup(const char *url);

/* "<prefix>-<16 random hex digits>" into out. */
void rf_rand_id(const char *prefix, char *out, size_t cap);
/* Uniform random in [0, n). Thread-safe. */
uint32_t rf_rand_below(uint32_t n);

/* ---- barrier ------------------------------------------------------------------ */
/* Runs fn(idx, ctx) on n threads released together by a pthread barrier and
 * joins them all. Returns 0, or -1 when the threads could not be started. */
int rf_parallel_fn(int n, void (*fn)(int idx, void *ctx), void *ctx);

/* One request in a parallel set; the response lands in resp. */
struct rf_par_req {
    int port;
    const char *method;
    char path[512];
    const char *api_key;
    const char *body;
    const char *headers[8];    /* extra "Name: value", NULL-terminated */
    struct rf_t_resp resp;
};
/* Every reqs[i] on its own thread, released together. */
int rf_parallel(struct rf_par_req *reqs, int n);
void rf_par_free(struct rf_par_req *reqs, int n);

/* Milliseconds since an arbitrary start (CLOCK_MONOTONIC). */
int64_t rf_t_now_ms(void);
void rf_t_sleep_ms(int ms);

#ifdef __cplusplus
}
#endif
#endif
