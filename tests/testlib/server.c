/*
 * server.c - runs `racefree serve` and the racefree CLI for black-box tests.
 *
 * The server gets a free port (bind to port 0, read it, close; retried when
 * another process takes it first), its stdout and stderr go to files under
 * /tmp, and start waits (bounded) until GET /healthz answers 200. Children get
 * PR_SET_PDEATHSIG so a test that dies does not leave servers behind; servers
 * still running at exit are killed by an atexit hook.
 */
#include "testlib/rf_testlib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_TIMEOUT_MS 20000
#define STOP_TIMEOUT_MS 30000
#define CLI_TIMEOUT_MS 60000
#define START_TRIES 3
#define ARGS_MAX 32
#define LIVE_MAX 64

int64_t rf_t_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void rf_t_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

const char *rf_bin(void)
{
    const char *b = getenv("RF_BIN");
    if (!b || !*b) {
        fprintf(stderr, "testlib: RF_BIN is not set (run the tests through ctest)\n");
        abort();
    }
    return b;
}

/* ---- servers still running at exit are killed ---------------------------- */
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static pid_t live[LIVE_MAX];
static atomic_int counter;

static void live_killall(void)
{
    pthread_mutex_lock(&live_mu);
    for (int i = 0; i < LIVE_MAX; i++) {
        if (live[i] > 0) {
            kill(live[i], SIGKILL);
            waitpid(live[i], NULL, 0);
            live[i] = 0;
        }
    }
    pthread_mutex_unlock(&live_mu);
}

static void live_add(pid_t pid)
{
    static bool registered;
    pthread_mutex_lock(&live_mu);
    if (!registered) {
        atexit(live_killall);
        registered = true;
    }
    for (int i = 0; i < LIVE_MAX; i++) {
        if (live[i] == 0) {
            live[i] = pid;
            break;
        }
    }
    pthread_mutex_unlock(&live_mu);
}

static void live_del(pid_t pid)
{
    pthread_mutex_lock(&live_mu);
    for (int i = 0; i < LIVE_MAX; i++)
        if (live[i] == pid)
            live[i] = 0;
    pthread_mutex_unlock(&live_mu);
}

/* ---- helpers ------------------------------------------------------------------ */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        close(fd);
        return -1;
    }
    close(fd);
    return ntohs(sa.sin_port);
}

static void describe_status(int status, char *buf, size_t cap)
{
    if (WIFEXITED(status))
        snprintf(buf, cap, "exit %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, cap, "signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(buf, cap, "status 0x%x", status);
}

static void dump_file_tail(const char *path, const char *what, size_t max_bytes)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    long from = size > (long)max_bytes ? size - (long)max_bytes : 0;
    fseek(f, from, SEEK_SET);
    fprintf(stderr, "---- %s (%s, last %ld bytes) ----\n", what, path, size - from);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, n, stderr);
    fprintf(stderr, "\n---- end of %s ----\n", what);
    fclose(f);
}

void rf_server_dump_log(const struct rf_server *srv, size_t max_bytes)
{
    dump_file_tail(srv->err_path, "server stderr", max_bytes);
}

static size_t read_whole(const char *path, char *buf, size_t cap)
{
    if (cap == 0)
        return 0;
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
    return n;
}

size_t rf_server_read_stdout(const struct rf_server *srv, char *buf, size_t cap)
{
    return read_whole(srv->out_path, buf, cap);
}

size_t rf_server_read_stderr(const struct rf_server *srv, char *buf, size_t cap)
{
    return read_whole(srv->err_path, buf, cap);
}

static bool file_contains(const char *path, const char *needle)
{
    char buf[65536];
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strstr(buf, needle) != NULL;
}

/* Waits for pid at most timeout_ms; 1 = reaped (status set), 0 = still
 * running, -1 = error. */
static int wait_bounded(pid_t pid, int timeout_ms, int *status)
{
    int64_t deadline = rf_t_now_ms() + timeout_ms;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 1;
        if (r < 0 && errno != EINTR)
            return -1;
        if (rf_t_now_ms() >= deadline)
            return 0;
        rf_t_sleep_ms(20);
    }
}

/* ---- server ------------------------------------------------------------------- */
static pid_t spawn_server(const char *db_url, int port, const char *const *extra,
                          const struct rf_server *srv)
{
    const char *bin = rf_bin();
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    const char *argv[ARGS_MAX + 8];
    int n = 0;
    argv[n++] = bin;
    argv[n++] = "serve";
    argv[n++] = "--db";
    argv[n++] = db_url;
    argv[n++] = "--listen";
    argv[n++] = listen;
    for (int i = 0; extra && extra[i] && i < ARGS_MAX; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;

    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int in = open("/dev/null", O_RDONLY);
        int out = open(srv->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int err = open(srv->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || out < 0 || err < 0)
            _exit(127);
        dup2(in, 0);
        dup2(out, 1);
        dup2(err, 2);
        execv(bin, (char *const *)argv);
        fprintf(stderr, "testlib: exec %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    return pid;
}

int rf_server_spawn(const char *db_url, const char *const *extra_args, struct rf_server *srv)
{
    memset(srv, 0, sizeof *srv);
    snprintf(srv->db_url, sizeof srv->db_url, "%s", db_url);
    int c = atomic_fetch_add(&counter, 1);
    snprintf(srv->out_path, sizeof srv->out_path, "/tmp/rf-srv-%d-%d.out", (int)getpid(), c);
    snprintf(srv->err_path, sizeof srv->err_path, "/tmp/rf-srv-%d-%d.err", (int)getpid(), c);
    srv->port = free_port();
    if (srv->port <= 0) {
        fprintf(stderr, "testlib: no free port: %s\n", strerror(errno));
        return -1;
    }
    srv->pid = spawn_server(db_url, srv->port, extra_args, srv);
    if (srv->pid < 0) {
        fprintf(stderr, "testlib: fork: %s\n", strerror(errno));
        srv->pid = 0;
        return -1;
    }
    live_add(srv->pid);
    return 0;
}

/* 0 = healthy; -1 = died or timed out (reaped/killed, logged); -2 = died
 * because its port was taken (worth another try). */
static int wait_healthy(struct rf_server *srv, bool retry_port)
{
    int64_t deadline = rf_t_now_ms() + START_TIMEOUT_MS;
    while (rf_t_now_ms() < deadline) {
        int status;
        pid_t r = waitpid(srv->pid, &status, WNOHANG);
        if (r == srv->pid) {
            live_del(srv->pid);
            srv->pid = 0;
            if (retry_port && file_contains(srv->err_path, "in use")) {
                fprintf(stderr, "testlib: port %d taken, retrying\n", srv->port);
                return -2;
            }
            char how[64];
            describe_status(status, how, sizeof how);
            fprintf(stderr, "testlib: `racefree serve --db %s` died at start (%s)\n",
                    srv->db_url, how);
            rf_server_dump_log(srv, 8192);
            return -1;
        }
        struct rf_t_resp r2;
        if (rf_http(srv->port, "GET", "/healthz", NULL, NULL, 0, &r2) == 0 && r2.status == 200) {
            rf_resp_free(&r2);
            return 0;
        }
        rf_resp_free(&r2);
        rf_t_sleep_ms(50);
    }
    fprintf(stderr, "testlib: server on port %d not healthy after %d ms\n", srv->port,
            START_TIMEOUT_MS);
    rf_server_dump_log(srv, 8192);
    kill(srv->pid, SIGKILL);
    waitpid(srv->pid, NULL, 0);
    live_del(srv->pid);
    srv->pid = 0;
    return -1;
}

int rf_server_wait_healthy(struct rf_server *srv)
{
    if (srv->pid <= 0)
        return -1;
    return wait_healthy(srv, false) == 0 ? 0 : -1;
}

int rf_server_start(const char *db_url, const char *const *extra_args, struct rf_server *srv)
{
    for (int attempt = 0; attempt < START_TRIES; attempt++) {
        if (rf_server_spawn(db_url, extra_args, srv) != 0)
            return -1;
        int rc = wait_healthy(srv, attempt + 1 < START_TRIES);
        if (rc == 0)
            return 0;
        if (rc == -1)
            return -1;
    }
    return -1;
}

int rf_server_signal(struct rf_server *srv, int sig)
{
    if (srv->pid <= 0)
        return -1;
    return kill(srv->pid, sig);
}

int rf_server_wait(struct rf_server *srv, int timeout_ms)
{
    if (srv->pid <= 0)
        return -1;
    if (timeout_ms <= 0)
        timeout_ms = STOP_TIMEOUT_MS;
    int status = 0;
    int r = wait_bounded(srv->pid, timeout_ms, &status);
    if (r == 0) {
        fprintf(stderr, "testlib: server pid %d still running %d ms after SIGTERM; SIGKILL\n",
                (int)srv->pid, timeout_ms);
        kill(srv->pid, SIGKILL);
        waitpid(srv->pid, NULL, 0);
        rf_server_dump_log(srv, 8192);
        live_del(srv->pid);
        srv->pid = 0;
        return -1;
    }
    live_del(srv->pid);
    srv->pid = 0;
    if (r < 0) {
        fprintf(stderr, "testlib: waitpid: %s\n", strerror(errno));
        return -1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        unlink(srv->out_path);
        unlink(srv->err_path);
        return 0;
    }
    char how[64];
    describe_status(status, how, sizeof how);
    fprintf(stderr, "testlib: server on port %d ended with %s\n", srv->port, how);
    rf_server_dump_log(srv, 16384);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int rf_server_kill(struct rf_server *srv)
{
    if (srv->pid <= 0)
        return -1;
    pid_t pid = srv->pid;
    kill(pid, SIGKILL);
    int status = 0;
    int r = wait_bounded(pid, STOP_TIMEOUT_MS, &status);
    live_del(pid);
    srv->pid = 0;
    if (r == 1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
        unlink(srv->out_path);
        unlink(srv->err_path);
        return 0;
    }
    char how[64] = "not reaped";
    if (r == 1)
        describe_status(status, how, sizeof how);
    fprintf(stderr, "testlib: server on port %d was to die of SIGKILL, but: %s\n", srv->port, how);
    rf_server_dump_log(srv, 16384);
    return -1;
}

int rf_server_stop(struct rf_server *srv, int timeout_ms)
{
    if (srv->pid <= 0)
        return -1;
    kill(srv->pid, SIGTERM);
    return rf_server_wait(srv, timeout_ms);
}

/* ---- CLI ------------------------------------------------------------------------- */
int rf_cli_run(const char *const *args, char *out, size_t out_cap, char *err, size_t err_cap,
               int timeout_ms)
{
    const char *bin = rf_bin();
    const char *argv[ARGS_MAX + 2];
    int n = 0;
    argv[n++] = bin;
    for (int i = 0; args[i] && i < ARGS_MAX; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    if (timeout_ms <= 0)
        timeout_ms = CLI_TIMEOUT_MS;

    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) != 0)
        return -1;
    if (pipe2(pe, O_CLOEXEC) != 0) {
        close(po[0]);
        close(po[1]);
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(po[0]), close(po[1]), close(pe[0]), close(pe[1]);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int in = open("/dev/null", O_RDONLY);
        if (in >= 0)
            dup2(in, 0);
        dup2(po[1], 1);
        dup2(pe[1], 2);
        execv(bin, (char *const *)argv);
        fprintf(stderr, "testlib: exec %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);

    size_t olen = 0, elen = 0;
    char scratch[4096];
    struct pollfd pf[2] = {{.fd = po[0], .events = POLLIN}, {.fd = pe[0], .events = POLLIN}};
    int open_fds = 2;
    int64_t deadline = rf_t_now_ms() + timeout_ms;
    bool timed_out = false;
    while (open_fds > 0) {
        int64_t left = deadline - rf_t_now_ms();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        int pr = poll(pf, 2, (int)left);
        if (pr < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t r = read(pf[i].fd, scratch, sizeof scratch);
            if (r <= 0) {
                if (r < 0 && errno == EINTR)
                    continue;
                close(pf[i].fd);
                pf[i].fd = -1;
                open_fds--;
                continue;
            }
            char *dst = i == 0 ? out : err;
            size_t cap = i == 0 ? out_cap : err_cap;
            size_t *len = i == 0 ? &olen : &elen;
            if (dst && cap > 0) {
                size_t room = cap - 1 - *len;
                size_t k = (size_t)r < room ? (size_t)r : room;
                memcpy(dst + *len, scratch, k);
                *len += k;
            }
        }
    }
    for (int i = 0; i < 2; i++)
        if (pf[i].fd >= 0)
            close(pf[i].fd);
    if (out && out_cap > 0)
        out[olen] = '\0';
    if (err && err_cap > 0)
        err[elen] = '\0';

    int status = 0;
    int w = wait_bounded(pid, timed_out ? 0 : (int)(deadline - rf_t_now_ms() + 1000), &status);
    if (w != 1) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fprintf(stderr, "testlib: `%s %s` timed out after %d ms\n", bin, args[0], timeout_ms);
        return -1;
    }
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    char how[64];
    describe_status(status, how, sizeof how);
    fprintf(stderr, "testlib: `%s %s` ended with %s\n", bin, args[0], how);
    return -1;
}

int rf_last_line(const char *text, char *out, size_t cap)
{
    size_t len = strlen(text);
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        len--;
    size_t start = len;
    while (start > 0 && text[start - 1] != '\n')
        start--;
    size_t n = len - start;
    if (n == 0 || n >= cap)
        return -1;
    memcpy(out, text + start, n);
    out[n] = '\0';
    return 0;
}

int rf_key_create_cli(const char *db_url, const char *role, const char *name,
                      char key_out[RF_T_KEY_BYTES])
{
    char out[8192], err[8192];
    /* `keys` refuses a SQLite file that does not exist: make the store first,
     * as a user would. */
    const char *margs[] = {"migrate", "--db", db_url, NULL};
    if (strncmp(db_url, "sqlite:", 7) == 0 && access(db_url + 7, F_OK) != 0 &&
        rf_cli_run(margs, out, sizeof out, err, sizeof err, 0) != 0) {
        fprintf(stderr, "testlib: `racefree migrate --db %s` failed:\n%s\n", db_url, err);
        return -1;
    }
    const char *args[] = {"keys", "create", "--db", db_url, "--role", role,
                          name ? "--name" : NULL, name, NULL};
    int rc = rf_cli_run(args, out, sizeof out, err, sizeof err, 0);
    if (rc != 0) {
        fprintf(stderr, "testlib: `racefree keys create --role %s` exited %d\nstdout:\n%s\nstderr:\n%s\n",
                role, rc, out, err);
        return -1;
    }
    if (rf_last_line(out, key_out, RF_T_KEY_BYTES) != 0) {
        fprintf(stderr, "testlib: `racefree keys create` printed no key:\n%s\n", out);
        return -1;
    }
    return 0;
}
