/*
 * server.c - racefree's HTTP/1.1 server: listening, the connection table,
 * deadlines, limits, eviction, the handler worker pool and graceful drain.
 * (http1.c parses; exchange.c turns one request into one response.)
 *
 * Threads: ONE event-loop thread (epoll, level-triggered) accepts, reads,
 * parses and writes for every connection and enforces every deadline; a
 * bounded pool of worker threads runs handlers (they block on the library).
 * A write operation whose caller's key is in the key cache takes no worker:
 * the loop parses and checks it and submits it to the executor
 * (rf_x_start -> rf_op_submit), whose callback, on an executor thread
 * right after the COMMIT, only hands the connection back (op_done); the
 * loop then renders the answer (rf_x_finish). So a write costs no thread
 * hand-over but the executor's own.
 * A connection belongs to the loop, except while its complete request is
 * with a worker or the executor (state BUSY): the loop then does not touch
 * it, and the hand-back goes through srv->mu (and one eventfd write per
 * wake of the loop), so no connection field is ever shared. Idle
 * connections cost a table slot and a few hundred bytes, never a thread.
 *
 * A connection's way: HEAD (reading the header section, deadline counted
 * from accept or from the request's first byte) -> BODY (deadline) -> BUSY
 * (worker or executor; no deadline) -> WRITE (deadline) -> IDLE (keep-alive,
 * idle timeout) or, after an answer with Connection: close, LINGER (shut
 * down for writing, read and drop what the client still sends for a short
 * while, then close, so the client reads the answer instead of a reset).
 *
 * Availability: the table has conns_max slots and each client IP at most
 * client_conns_max. A new connection over either limit evicts the oldest
 * connection that is IDLE, else the oldest still in HEAD (of that client,
 * or of anyone for the global limit); connections in BODY, BUSY and WRITE
 * are never evicted. Only when nothing can be evicted is the new connection
 * answered 503 too_many_connections and closed.
 */
#include "http/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/assert.h"
#include "base/clock.h"
#include "base/limits.h"
#include "base/log.h"
#include "base/logbuf.h"
#include "http/exchange.h"
#include "http/handlers.h"
#include "http/metrics.h"
#include "http/request.h"
#include "http/respond.h"
#include "http/routes.h"
#include "http/unauth.h"
#include "core/ratelimit.h"

#define ACCEPT_BATCH 64
#define EVENTS_BATCH 256
#define LISTEN_BACKLOG 4096
#define CONTINUE_LINE "HTTP/1.1 100 Continue\r\n\r\n"

enum conn_state { CS_HEAD, CS_BODY, CS_BUSY, CS_WRITE, CS_IDLE, CS_LINGER };
enum { L_NONE, L_IDLE, L_HEAD, L_COUNT };

struct conn {
    struct rf_http_server *srv;
    int fd;
    uint32_t ip;                /* client IPv4, network order */
    int slot;                   /* index in srv->slots */
    enum conn_state state;
    int64_t deadline_ms;        /* rf_mono_ms; 0: none (BUSY) */
    int list;                   /* eviction list it is on (L_*) */
    struct conn *prev, *next;
    char *in;                   /* RF_HTTP_READ_BYTES, allocated while needed */
    size_t in_len;
    bool close_after;           /* the current answer closes the connection */
    bool chunked;
    int64_t body_left;          /* Content-Length bytes still to read */
    struct rf_h1_chunked ck;
    struct rf_exchange x;
    char *out;
    size_t out_len, out_off;
    size_t lingered;            /* bytes dropped while lingering */
    struct conn *ret_next;      /* the return queue (workers, executor); the dead list */
    struct h_op_call *call;     /* a submitted write's state, allocated while needed */
    bool submitted;             /* BUSY with the executor: the loop renders its answer */
    rf_err op_err;              /* the executor's answer (written before the hand-back) */
    struct conn *again_next;    /* the loop's list of pipelined requests to parse */
    bool again;                 /* on that list */
};

struct clist {
    struct conn *first, *last;
};

struct client {
    uint32_t ip;
    int n;                      /* 0: free slot */
};

struct rf_http_server {
    struct rf_http_ctx ctx;
    struct rf_metrics metrics;
    struct rf_http_config cfg;  /* with defaults filled in */
    int port, lfd, epfd, evfd;
    pthread_t loop;
    pthread_t *workers;
    int n_workers;
    /* event-loop thread only */
    struct conn **slots;
    int n_conns, n_free;
    int *free_slots;
    struct clist lists[L_COUNT];
    struct client *clients;
    size_t clients_cap;         /* power of two */
    int64_t accept_paused_until;
    bool accepting;
    bool drain_begun;
    int64_t drain_deadline;
    int64_t linger_deadline;    /* 0 until the listener is closed at the drain's end */
    struct conn *dead;          /* closed, freed after the event batch */
    struct conn *again;         /* buffered (pipelined) requests to parse next */
    struct rf_unauth *unauth;   /* requests without a valid key per IP; NULL: off */
    /* shared, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct conn **queue;        /* requests for workers (ring of conns_max) */
    size_t q_head, q_len;
    struct conn *ret_first, *ret_last; /* answered by workers or the executor, for the loop */
    atomic_bool wake_pending;   /* the eventfd was written since the loop last read it */
    bool stopping;
    atomic_int busy;            /* conns with a worker or the executor */
    atomic_bool stop_loop;
};

static void advance(struct rf_http_server *s, struct conn *c);
static void conn_close(struct rf_http_server *s, struct conn *c);

/* ---- per-client counts: open addressing, backward-shift deletion -------------- */

static size_t client_home(const struct rf_http_server *s, uint32_t ip) {
    return (size_t)((ip * 2654435761u) & (s->clients_cap - 1));
}

static struct client *client_find(struct rf_http_server *s, uint32_t ip, bool create) {
    for (size_t i = client_home(s, ip), k = 0; k < s->clients_cap; i = (i + 1) & (s->clients_cap - 1), k++) {
        if (s->clients[i].n && s->clients[i].ip == ip) return &s->clients[i];
        if (s->clients[i].n == 0) {
            if (!create) return NULL;
            s->clients[i].ip = ip;
            return &s->clients[i];
        }
    }
    RF_ASSERT(0 && "client table full (it has twice as many slots as connections)");
    return NULL;
}

static void client_dec(struct rf_http_server *s, uint32_t ip) {
    struct client *cl = client_find(s, ip, false);
    RF_ASSERT(cl && cl->n > 0);
    if (--cl->n > 0) return;
    size_t mask = s->clients_cap - 1, hole = (size_t)(cl - s->clients);
    for (size_t j = (hole + 1) & mask; s->clients[j].n; j = (j + 1) & mask) {
        size_t home = client_home(s, s->clients[j].ip);
        /* move j into the hole unless its home lies cyclically in (hole, j] */
        bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (stays) continue;
        s->clients[hole] = s->clients[j];
        s->clients[j].n = 0;
        hole = j;
    }
}

/* ---- eviction lists and states --------------------------------------------------- */

static void list_del(struct rf_http_server *s, struct conn *c) {
    if (c->list == L_NONE) return;
    struct clist *l = &s->lists[c->list];
    if (c->prev) c->prev->next = c->next;
    else l->first = c->next;
    if (c->next) c->next->prev = c->prev;
    else l->last = c->prev;
    c->prev = c->next = NULL;
    c->list = L_NONE;
}

static void list_add(struct rf_http_server *s, struct conn *c, int which) {
    struct clist *l = &s->lists[which];
    c->list = which;
    c->prev = l->last;
    c->next = NULL;
    if (l->last) l->last->next = c;
    else l->first = c;
    l->last = c;
}

static uint32_t state_events(enum conn_state st) {
    switch (st) {
    case CS_BUSY: return 0;
    case CS_WRITE: return EPOLLOUT;
    default: return EPOLLIN;
    }
}

/* Moves c to state st with a deadline timeout_ms from now (0: none). */
static void set_state(struct rf_http_server *s, struct conn *c, enum conn_state st,
                      int timeout_ms) {
    enum conn_state old = c->state;
    list_del(s, c);
    c->state = st;
    c->deadline_ms = timeout_ms > 0 ? rf_mono_ms() + timeout_ms : 0;
    if (st == CS_IDLE) list_add(s, c, L_IDLE);
    if (st == CS_HEAD) list_add(s, c, L_HEAD);
    if (state_events(st) == state_events(old)) return;
    /* BUSY is off epoll altogether: it would still report hang-ups, level-
     * triggered, over and over while the handler runs */
    int op = old == CS_BUSY ? EPOLL_CTL_ADD : st == CS_BUSY ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
    struct epoll_event ev = {.events = state_events(st), .data.ptr = c};
    int rc = epoll_ctl(s->epfd, op, c->fd, &ev);
    RF_ASSERT(rc == 0);
}

/* ---- connections ------------------------------------------------------------------ */

static struct conn *conn_new(struct rf_http_server *s, int fd, uint32_t ip) {
    struct conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->srv = s;
    c->fd = fd;
    c->ip = ip;
    c->state = CS_HEAD;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        free(c);
        return NULL;
    }
    RF_ASSERT(s->n_free > 0);
    c->slot = s->free_slots[--s->n_free];
    s->slots[c->slot] = c;
    s->n_conns++;
    client_find(s, ip, true)->n++;
    rf_x_init(&c->x, &s->ctx);
    list_add(s, c, L_HEAD);
    c->deadline_ms = rf_mono_ms() + s->cfg.header_timeout_ms;
    return c;
}

/* Closes c; the memory waits on the dead list until the event batch that
 * may still name it is over (reap_dead). */
static void conn_close(struct rf_http_server *s, struct conn *c) {
    RF_ASSERT(c->state != CS_BUSY && c->fd >= 0);
    list_del(s, c);
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    client_dec(s, c->ip);
    s->slots[c->slot] = NULL;
    s->free_slots[s->n_free++] = c->slot;
    s->n_conns--;
    rf_x_clear(&c->x);
    free(c->in);
    free(c->out);
    free(c->call);
    c->in = c->out = NULL;
    c->call = NULL;
    c->ret_next = s->dead;
    s->dead = c;
}

static void reap_dead(struct rf_http_server *s) {
    while (s->dead) {
        struct conn *c = s->dead;
        s->dead = c->ret_next;
        free(c);
    }
}

/* Drops n bytes from the front of the input buffer. */
static void in_consume(struct conn *c, size_t n) {
    RF_ASSERT(n <= c->in_len);
    memmove(c->in, c->in + n, c->in_len - n);
    c->in_len -= n;
}

/* ---- writing answers ---------------------------------------------------------------- */

static void linger_start(struct rf_http_server *s, struct conn *c) {
    shutdown(c->fd, SHUT_WR);
    c->in_len = 0;
    set_state(s, c, CS_LINGER, RF_HTTP_LINGER_MS);
}

/* The answer is out: next request, keep-alive or close. */
static void after_write(struct rf_http_server *s, struct conn *c) {
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_off = 0;
    rf_x_clear(&c->x);
    rf_x_init(&c->x, &s->ctx);
    if (c->close_after || atomic_load(&s->ctx.draining)) {
        linger_start(s, c);
        return;
    }
    c->chunked = false;
    c->body_left = 0;
    if (c->in_len == 0) {
        free(c->in);
        free(c->call);
        c->in = NULL;
        c->call = NULL;
        set_state(s, c, CS_IDLE, s->cfg.idle_timeout_ms);
        return;
    }
    /* a pipelined request: parsed from the loop, not from here, so a buffer
     * of requests answered without a worker is a loop, not a recursion */
    set_state(s, c, CS_HEAD, s->cfg.header_timeout_ms);
    if (!c->again) {
        c->again = true;
        c->again_next = s->again;
        s->again = c;
    }
}

static void run_again(struct rf_http_server *s) {
    while (s->again) {
        struct conn *c = s->again;
        s->again = c->again_next;
        c->again = false;
        if (c->fd >= 0) advance(s, c);
    }
}

/* Sends what the socket takes now; true when the whole answer is out. A
 * failed send closes c (false, and c->fd < 0). */
static bool send_now(struct rf_http_server *s, struct conn *c) {
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
        if (n <= 0) {
            if (c->state == CS_BUSY) set_state(s, c, CS_WRITE, RF_HTTP_WRITE_TIMEOUT_MS);
            conn_close(s, c);
            return false;
        }
        c->out_off += (size_t)n;
    }
    return true;
}

static void try_write(struct rf_http_server *s, struct conn *c) {
    if (send_now(s, c)) after_write(s, c);
}

/* Starts writing rendered bytes (NULL: out of memory, close). Most answers
 * fit in the socket's buffer and go out at once: the connection moves
 * straight to what comes next, and its epoll interest changes once (from
 * BUSY, off epoll, back to reading) instead of twice more (to EPOLLOUT and
 * back), each a system call on the loop for every request. */
static void start_write(struct rf_http_server *s, struct conn *c, char *bytes, size_t len) {
    if (!bytes) {
        if (c->state == CS_BUSY) set_state(s, c, CS_WRITE, RF_HTTP_WRITE_TIMEOUT_MS);
        conn_close(s, c);
        return;
    }
    if (s->unauth && c->x.status == 401 && c->x.match.kind == RF_MATCH_OK &&
        c->x.match.route->roles != RF_ROLES_PUBLIC) /* not a webhook's bad signature */
        rf_unauth_charge(s->unauth, c->ip, rf_mono_ms());
    c->out = bytes;
    c->out_len = len;
    c->out_off = 0;
    if (send_now(s, c)) after_write(s, c);
    else if (c->fd >= 0) set_state(s, c, CS_WRITE, RF_HTTP_WRITE_TIMEOUT_MS);
}

/* Answers from the loop (no handler): consumes reply. */
static void respond(struct rf_http_server *s, struct conn *c, struct rf_reply *reply) {
    if (atomic_load(&s->ctx.draining)) c->close_after = true;
    size_t len = 0;
    char *bytes = rf_x_render(&c->x, reply, c->close_after, &len);
    start_write(s, c, bytes, len);
}

/* A problem answer that ends the connection (framing errors, 413, 408). */
static void respond_close(struct rf_http_server *s, struct conn *c, rf_err err,
                          const char *detail) {
    struct rf_reply r = {0};
    rf_x_problem(&r, err, detail);
    c->close_after = true;
    respond(s, c, &r);
}

/* The same for a problem the parser made (it may name a header: param). */
static void respond_problem_close(struct rf_http_server *s, struct conn *c,
                                  const struct rf_problem *p) {
    struct rf_reply r = {0};
    rf_reply_problem(&r, p);
    c->close_after = true;
    respond(s, c, &r);
}

/* ---- workers --------------------------------------------------------------------------- */

static void dispatch(struct rf_http_server *s, struct conn *c) {
    set_state(s, c, CS_BUSY, 0);
    atomic_fetch_add(&s->busy, 1);
    pthread_mutex_lock(&s->mu);
    RF_ASSERT(s->q_len < (size_t)s->cfg.conns_max);
    s->queue[(s->q_head + s->q_len++) % (size_t)s->cfg.conns_max] = c;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static struct conn *queue_pop(struct rf_http_server *s) {
    pthread_mutex_lock(&s->mu);
    while (s->q_len == 0 && !s->stopping) pthread_cond_wait(&s->cv, &s->mu);
    struct conn *c = NULL;
    if (s->q_len > 0) {
        c = s->queue[s->q_head];
        s->q_head = (s->q_head + 1) % (size_t)s->cfg.conns_max;
        s->q_len--;
    }
    pthread_mutex_unlock(&s->mu);
    return c;
}

/* One eventfd write per wake: none while one is pending (the loop clears
 * the flag before it takes the return queue, so nothing queued after that
 * goes unseen). */
static void wake_loop(struct rf_http_server *s) {
    if (atomic_exchange(&s->wake_pending, true)) return;
    uint64_t one = 1;
    ssize_t n = write(s->evfd, &one, sizeof one);
    (void)n; /* a full counter still wakes the loop */
}

/* A BUSY connection goes back to the loop (any thread). */
static void give_back(struct rf_http_server *s, struct conn *c) {
    pthread_mutex_lock(&s->mu);
    c->ret_next = NULL;
    if (s->ret_last) s->ret_last->ret_next = c;
    else s->ret_first = c;
    s->ret_last = c;
    pthread_mutex_unlock(&s->mu);
    wake_loop(s);
}

static void *worker_main(void *arg) {
    struct rf_http_server *s = arg;
    struct conn *c;
    while ((c = queue_pop(s)) != NULL) {
        struct rf_reply reply = {0};
        rf_x_serve(&c->x, &reply);
        if (atomic_load(&s->ctx.draining)) c->close_after = true;
        c->out = rf_x_render(&c->x, &reply, c->close_after, &c->out_len);
        give_back(s, c);
    }
    return NULL;
}

/* ---- writes the loop submits itself ---------------------------------------------------- */

/* The executor's answer, on an executor thread right after the COMMIT (or
 * on the loop, when the call was refused at once): only the hand-back. */
static void op_done(void *arg, rf_err err) {
    struct conn *c = arg;
    c->op_err = err;
    give_back(c->srv, c);
}

/* Starts the request on the loop when it needs no worker; false: it does
 * (nothing was done). The connection is BUSY while the executor has it. */
static bool loop_start(struct rf_http_server *s, struct conn *c) {
    if (!c->call && !(c->call = malloc(sizeof *c->call))) return false;
    struct rf_reply reply = {0};
    c->submitted = true; /* read by the loop only, when the connection comes back */
    enum rf_start st = rf_x_start(&c->x, c->call, &reply, op_done, c);
    if (st != RF_START_SUBMITTED) c->submitted = false;
    if (st == RF_START_WORKER) return false;
    if (st == RF_START_ANSWERED) {
        respond(s, c, &reply);
        return true;
    }
    set_state(s, c, CS_BUSY, 0);
    atomic_fetch_add(&s->busy, 1);
    return true;
}

/* A submitted write is back: its answer is rendered here, on the loop. */
static void op_answer(struct rf_http_server *s, struct conn *c) {
    c->submitted = false;
    struct rf_reply reply = {0};
    rf_x_finish(&c->x, c->call, c->op_err, &reply);
    respond(s, c, &reply);
}

/* The loop takes back the connections whose answers the workers rendered. */
static void take_returns(struct rf_http_server *s) {
    uint64_t v;
    ssize_t n = read(s->evfd, &v, sizeof v);
    (void)n;
    atomic_store(&s->wake_pending, false);
    pthread_mutex_lock(&s->mu);
    struct conn *c = s->ret_first;
    s->ret_first = s->ret_last = NULL;
    pthread_mutex_unlock(&s->mu);
    while (c) {
        struct conn *next = c->ret_next;
        atomic_fetch_sub(&s->busy, 1);
        if (c->submitted) {
            op_answer(s, c);
            c = next;
            continue;
        }
        char *bytes = c->out;
        c->out = NULL;
        start_write(s, c, bytes, c->out_len);
        c = next;
    }
}

/* ---- reading requests --------------------------------------------------------------------- */

/* A request that needs a key, from an IP past its unauthenticated limit,
 * without a key this process verified lately: 429 at once (no key read). */
static bool unauth_refused(struct rf_http_server *s, struct conn *c) {
    const struct rf_match *m = &c->x.match;
    int64_t retry_ms = 0;
    if (!s->unauth || m->kind != RF_MATCH_OK || m->route->roles == RF_ROLES_PUBLIC ||
        !rf_unauth_over(s->unauth, c->ip, rf_mono_ms(), &retry_ms))
        return false;
    const char *token = rf_bearer_token(rf_h1_field(&c->x.h1, "Authorization"));
    if (token && rf_key_seen(s->ctx.db, token)) return false;
    struct rf_reply r = {0};
    rf_reply_error(&r, RF_ERR_RATE_LIMITED, "too many requests without a valid API key from "
                   "this address; retry later");
    rf_reply_header(&r, "Retry-After", "%lld", (long long)gcra_ceil_s(retry_ms));
    respond(s, c, &r);
    return true;
}

/* The request is complete: answer the decided refusal, or hand it to a worker. */
static void request_ready(struct rf_http_server *s, struct conn *c) {
    if (c->x.pending.status != 0) {
        respond(s, c, &c->x.pending);
        return;
    }
    if (atomic_load(&s->ctx.draining)) {
        struct rf_reply r = {0};
        rf_reply_error(&r, RF_ERR_SHUTTING_DOWN, NULL);
        respond(s, c, &r);
        return;
    }
    if (unauth_refused(s, c)) return;
    if (!loop_start(s, c)) dispatch(s, c);
}

static void too_large(struct rf_http_server *s, struct conn *c) {
    char detail[96];
    snprintf(detail, sizeof detail, "the body is larger than %zu bytes", c->x.body_limit);
    respond_close(s, c, RF_ERR_BODY_TOO_LARGE, detail);
}

/* "100 Continue" for a request that will be read. Tiny and first on an
 * emptied socket; a short write means a broken connection. */
static bool send_continue(struct conn *c) {
    ssize_t n = send(c->fd, CONTINUE_LINE, strlen(CONTINUE_LINE), MSG_NOSIGNAL | MSG_DONTWAIT);
    return n == (ssize_t)strlen(CONTINUE_LINE);
}

/* The head is parsed: decide the body. False when the request is answered
 * (or the connection closed) already. */
static bool head_done(struct rf_http_server *s, struct conn *c) {
    struct rf_exchange *x = &c->x;
    rf_x_head_done(x);
    c->close_after = !x->h1.keep_alive;
    bool has_body = x->h1.chunked || x->h1.content_length > 0;
    if (x->h1.content_length > (int64_t)x->body_limit && x->pending.status == 0) {
        too_large(s, c);
        return false;
    }
    if (has_body && x->pending.status != 0 && (x->h1.expect_continue ||
                                               x->h1.content_length > (int64_t)x->body_limit)) {
        c->close_after = true; /* refused without reading the body */
        respond(s, c, &x->pending);
        return false;
    }
    if (!has_body) {
        request_ready(s, c);
        return false;
    }
    if (x->h1.expect_continue && c->in_len == 0 && !send_continue(c)) {
        conn_close(s, c);
        return false;
    }
    c->chunked = x->h1.chunked;
    c->body_left = x->h1.content_length;
    rf_h1_chunked_init(&c->ck);
    set_state(s, c, CS_BODY, s->cfg.body_timeout_ms);
    return true;
}

/* HEAD: parses a complete header section. True to go on (reading a body). */
static bool step_head(struct rf_http_server *s, struct conn *c) {
    in_consume(c, rf_h1_skip_empty_lines(c->in, c->in_len));
    size_t end = rf_h1_head_end(c->in, c->in_len);
    struct rf_problem p;
    if (end == 0) {
        if (c->in_len < RF_HEADER_BYTES_MAX) return false;
        rf_problem_set(&p, RF_ERR_HEADERS_TOO_LARGE, "the header section is over %d bytes",
                       RF_HEADER_BYTES_MAX);
        respond_problem_close(s, c, &p);
        return false;
    }
    c->x.head = malloc(end + 1);
    if (!c->x.head) {
        conn_close(s, c);
        return false;
    }
    memcpy(c->x.head, c->in, end);
    in_consume(c, end);
    if (!rf_h1_parse_head(c->x.head, end, &c->x.h1, &p)) {
        respond_problem_close(s, c, &p);
        return false;
    }
    return head_done(s, c);
}

/* BODY with Content-Length. */
static bool step_body_length(struct rf_http_server *s, struct conn *c) {
    size_t take = c->in_len < (uint64_t)c->body_left ? c->in_len : (size_t)c->body_left;
    if (!rf_x_body_append(&c->x, c->in, take)) {
        too_large(s, c);
        return false;
    }
    in_consume(c, take);
    c->body_left -= (int64_t)take;
    if (c->body_left > 0) return false;
    request_ready(s, c);
    return false;
}

/* BODY with chunked framing: decodes what is buffered. */
static bool step_body_chunked(struct rf_http_server *s, struct conn *c) {
    while (c->in_len > 0) {
        size_t used = 0, n = 0;
        const char *data = NULL;
        enum rf_h1_chunk_rc rc = rf_h1_chunked_feed(&c->ck, c->in, c->in_len, &used, &data, &n);
        if (n > 0 && !rf_x_body_append(&c->x, data, n)) {
            too_large(s, c);
            return false;
        }
        in_consume(c, used);
        if (rc == RF_H1_CHUNK_BAD) {
            respond_close(s, c, RF_ERR_MALFORMED_CHUNKED_BODY,
                          "the chunked body is malformed (chunk size line, CRLF or trailers)");
            return false;
        }
        if (rc == RF_H1_CHUNK_DONE) {
            request_ready(s, c);
            return false;
        }
    }
    return false;
}

/* Parses what is buffered as far as it goes. */
static void advance(struct rf_http_server *s, struct conn *c) {
    for (bool more = true; more;) {
        if (c->state == CS_HEAD && c->in_len > 0) more = step_head(s, c);
        else if (c->state == CS_BODY) more = c->chunked ? step_body_chunked(s, c)
                                                        : step_body_length(s, c);
        else more = false;
    }
}

static void linger_read(struct rf_http_server *s, struct conn *c) {
    char scratch[4096];
    ssize_t n = recv(c->fd, scratch, sizeof scratch, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    c->lingered += n > 0 ? (size_t)n : 0;
    if (n <= 0 || c->lingered > RF_BODY_DISCARD_BYTES_MAX) conn_close(s, c);
}

static void on_readable(struct rf_http_server *s, struct conn *c) {
    if (c->state == CS_LINGER) {
        linger_read(s, c);
        return;
    }
    if (!c->in && !(c->in = malloc(RF_HTTP_READ_BYTES))) {
        conn_close(s, c);
        return;
    }
    RF_ASSERT(c->in_len < RF_HTTP_READ_BYTES); /* HEAD stops at the header limit, BODY drains */
    ssize_t n = recv(c->fd, c->in + c->in_len, RF_HTTP_READ_BYTES - c->in_len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
        conn_close(s, c); /* EOF or error: any complete request was already taken */
        return;
    }
    c->in_len += (size_t)n;
    if (c->state == CS_IDLE) {
        set_state(s, c, CS_HEAD, s->cfg.header_timeout_ms); /* a request's first byte */
        rf_x_init(&c->x, &s->ctx);
    }
    advance(s, c);
}

/* ---- accepting and eviction ------------------------------------------------------------------- */

/* Closes the oldest IDLE connection, else the oldest HEAD one (of client ip
 * when by_ip). False when there is none. */
static bool evict_one(struct rf_http_server *s, uint32_t ip, bool by_ip) {
    for (int l = L_IDLE; l <= L_HEAD; l++) {
        for (struct conn *c = s->lists[l].first; c; c = c->next) {
            if (by_ip && c->ip != ip) continue;
            conn_close(s, c);
            return true;
        }
    }
    return false;
}

static void refuse(struct rf_http_server *s, int fd) {
    size_t len = 0;
    char *bytes = rf_x_refusal(&s->ctx, &len);
    if (bytes) {
        ssize_t n = send(fd, bytes, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)n; /* best effort: the client is told when its buffer has room */
        shutdown(fd, SHUT_WR);
    }
    free(bytes);
    close(fd);
}

static void admit(struct rf_http_server *s, int fd, uint32_t ip) {
    struct client *cl = client_find(s, ip, false);
    bool ok = !cl || cl->n < s->cfg.client_conns_max || evict_one(s, ip, true);
    if (ok && s->n_conns >= s->cfg.conns_max) ok = evict_one(s, 0, false);
    if (!ok || !conn_new(s, fd, ip)) refuse(s, fd);
}

static void on_accept(struct rf_http_server *s) {
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_in sa;
        socklen_t len = sizeof sa;
        int fd = accept4(s->lfd, (struct sockaddr *)&sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                s->accept_paused_until = rf_mono_ms() + RF_HTTP_ACCEPT_PAUSE_MS;
                epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->lfd, NULL);
                s->accepting = false;
            }
            return;
        }
        admit(s, fd, sa.sin_addr.s_addr);
    }
}

static void accept_resume(struct rf_http_server *s) {
    if (s->lfd < 0 || s->accepting || rf_mono_ms() < s->accept_paused_until) return;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->lfd, &ev) == 0) s->accepting = true;
}

/* ---- deadlines and drain ------------------------------------------------------------------------- */

static void on_deadline(struct rf_http_server *s, struct conn *c) {
    if (c->state == CS_HEAD && c->in_len > 0)
        respond_close(s, c, RF_ERR_REQUEST_TIMEOUT, "the request headers took too long");
    else if (c->state == CS_BODY)
        respond_close(s, c, RF_ERR_REQUEST_TIMEOUT, "the request body took too long");
    else
        conn_close(s, c); /* idle, silent new connection, stuck write, done lingering */
}

static void sweep(struct rf_http_server *s, int64_t now) {
    for (int i = 0; i < s->cfg.conns_max; i++) {
        struct conn *c = s->slots[i];
        if (c && c->deadline_ms && now >= c->deadline_ms) on_deadline(s, c);
    }
}

/* Draining begins: idle keep-alive connections are closed (after reading
 * what they may have sent already, which then gets its 503). */
static void drain_begin(struct rf_http_server *s) {
    s->drain_begun = true;
    s->drain_deadline = rf_mono_ms() + RF_SHUTDOWN_DRAIN_MS;
    while (s->lists[L_IDLE].first) {
        struct conn *c = s->lists[L_IDLE].first;
        on_readable(s, c);
        if (c->fd >= 0 && c->state == CS_IDLE) conn_close(s, c);
    }
}

static bool drained(const struct rf_http_server *s);

/* The drain's end: what is already in the listen backlog is accepted (a
 * backlog closed with connections in it resets them), then the listener is
 * closed, so a client that connects from now on is refused cleanly. Open
 * connections then get up to RF_SHUTDOWN_LINGER_MS to send the request they
 * may be sending, which is answered 503 shutting_down, rather than being
 * closed under it. */
static void stop_listening(struct rf_http_server *s, int64_t now) {
    for (int i = 0; i < s->cfg.conns_max / ACCEPT_BATCH + 1 && s->n_conns < s->cfg.conns_max; i++)
        on_accept(s);
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->lfd, NULL);
    close(s->lfd);
    s->lfd = -1;
    s->accepting = false;
    s->linger_deadline = now + RF_SHUTDOWN_LINGER_MS;
}

/* True when the loop may stop: nothing with a request in hand, and then
 * no connection left that may still be sending one (or the linger is over). */
static bool drain_done(struct rf_http_server *s, int64_t now) {
    if (now >= s->drain_deadline) return true;
    if (!drained(s)) return false;
    if (s->lfd >= 0) stop_listening(s, now);
    bool quiet = !s->lists[L_HEAD].first && !s->lists[L_IDLE].first;
    return quiet || now >= s->linger_deadline;
}

/* True when nothing that has a request in hand is left. */
static bool drained(const struct rf_http_server *s) {
    if (atomic_load(&s->busy) > 0) return false;
    for (int i = 0; i < s->cfg.conns_max; i++) {
        const struct conn *c = s->slots[i];
        if (c && (c->state == CS_BODY || c->state == CS_WRITE)) return false;
    }
    return true;
}

/* ---- the loop ----------------------------------------------------------------------------------------- */

static void handle_event(struct rf_http_server *s, struct epoll_event *ev) {
    if (ev->data.ptr == NULL) {
        on_accept(s);
        return;
    }
    if (ev->data.ptr == s) {
        take_returns(s);
        return;
    }
    struct conn *c = ev->data.ptr;
    if (c->state == CS_WRITE) try_write(s, c);
    else if (c->state != CS_BUSY) on_readable(s, c);
}

static void *loop_main(void *arg) {
    struct rf_http_server *s = arg;
    struct epoll_event evs[EVENTS_BATCH];
    int64_t next_sweep = rf_mono_ms() + RF_HTTP_SWEEP_MS;
    for (;;) {
        rf_log_flush(); /* the access log lines of the last round, in one write */
        int n = epoll_wait(s->epfd, evs, EVENTS_BATCH, RF_HTTP_SWEEP_MS);
        for (int i = 0; i < n; i++) {
            /* an earlier event may have closed this connection: events of a
             * closed fd were removed from epoll, but not from this batch */
            if (evs[i].data.ptr && evs[i].data.ptr != s &&
                ((struct conn *)evs[i].data.ptr)->fd < 0)
                continue;
            handle_event(s, &evs[i]);
        }
        int64_t now = rf_mono_ms();
        if (now >= next_sweep) {
            sweep(s, now);
            accept_resume(s);
            next_sweep = now + RF_HTTP_SWEEP_MS;
        }
        bool stop = atomic_load(&s->stop_loop);
        if (stop && !s->drain_begun) drain_begin(s);
        run_again(s);
        reap_dead(s);
        if (stop && drain_done(s, rf_mono_ms())) break;
    }
    rf_log_flush();
    return NULL;
}

/* ---- lifecycle ------------------------------------------------------------------------------------------ */

bool rf_http_parse_listen(const char *text, char host[RF_HOST_BYTES], int *port) {
    const char *colon = text ? strrchr(text, ':') : NULL;
    if (!colon || colon == text || (size_t)(colon - text) >= RF_HOST_BYTES) return false;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    const char *p = colon + 1;
    long v = 0;
    size_t n = 0;
    for (; p[n]; n++) {
        if (n >= 5 || p[n] < '0' || p[n] > '9') return false;
        v = v * 10 + (p[n] - '0');
    }
    if (n == 0 || v > 65535) return false;
    *port = (int)v;
    return true;
}

static bool listen_addr(const char *host, int port, struct sockaddr_in *sa) {
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0) host = "127.0.0.1";
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1;
}

/* Soft RLIMIT_NOFILE up to the hard limit; conns_max shrinks to fit it. */
static void raise_nofile(struct rf_http_config *cfg) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    const rlim_t reserve = 256; /* store connections, logs, the listener */
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)cfg->conns_max + reserve) {
        int fit = rl.rlim_cur > reserve * 2 ? (int)(rl.rlim_cur - reserve) : (int)reserve;
        rf_log(RF_LOG_WARN, "open file limit %llu: serving at most %d connections",
               (unsigned long long)rl.rlim_cur, fit);
        cfg->conns_max = fit;
    }
}

static void config_defaults(struct rf_http_config *c) {
    if (!c->body_max_bytes) c->body_max_bytes = RF_BODY_BYTES_MAX;
    if (c->workers <= 0) c->workers = RF_HTTP_WORKERS_DEFAULT;
    if (c->conns_max <= 0) c->conns_max = RF_HTTP_CONNS_MAX;
    if (c->client_conns_max <= 0) c->client_conns_max = RF_HTTP_CLIENT_CONNS_MAX;
    if (c->header_timeout_ms <= 0) c->header_timeout_ms = RF_HTTP_HEADER_TIMEOUT_MS;
    if (c->body_timeout_ms <= 0) c->body_timeout_ms = RF_HTTP_BODY_TIMEOUT_MS;
    if (c->idle_timeout_ms <= 0) c->idle_timeout_ms = RF_HTTP_IDLE_TIMEOUT_MS;
    char why[128];
    if (!c->unauth_off && !c->unauth_limit.quota &&
        !rf_rate_limit_parse(RF_UNAUTH_RATE_DEFAULT, &c->unauth_limit, why, sizeof why))
        RF_ASSERT(0 && "RF_UNAUTH_RATE_DEFAULT is a valid limit");
    raise_nofile(c);
}

static int listen_socket(const struct sockaddr_in *sa, bool reuse_port, int *port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    /* The kernel spreads new connections over every process bound this way. */
    if (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
        close(fd);
        return -1;
    }
    struct sockaddr_in bound;
    socklen_t len = sizeof bound;
    if (bind(fd, (const struct sockaddr *)sa, sizeof *sa) != 0 || listen(fd, LISTEN_BACKLOG) != 0 ||
        getsockname(fd, (struct sockaddr *)&bound, &len) != 0) {
        int e = errno; /* the caller reports it */
        close(fd);
        errno = e;
        return -1;
    }
    *port = ntohs(bound.sin_port);
    return fd;
}

/* Tables, epoll, the eventfd; false on failure (server_free cleans up). */
static bool server_alloc(struct rf_http_server *s) {
    int n = s->cfg.conns_max;
    s->clients_cap = 1;
    while (s->clients_cap < (size_t)n * 2) s->clients_cap *= 2;
    s->slots = calloc((size_t)n, sizeof *s->slots);
    s->free_slots = calloc((size_t)n, sizeof *s->free_slots);
    s->queue = calloc((size_t)n, sizeof *s->queue);
    s->clients = calloc(s->clients_cap, sizeof *s->clients);
    if (!s->cfg.unauth_off && !(s->unauth = rf_unauth_new(&s->cfg.unauth_limit))) return false;
    s->workers = calloc((size_t)s->cfg.workers, sizeof *s->workers);
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    s->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!s->slots || !s->free_slots || !s->queue || !s->clients || !s->workers || s->epfd < 0 ||
        s->evfd < 0)
        return false;
    for (int i = 0; i < n; i++) s->free_slots[i] = n - 1 - i;
    s->n_free = n;
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    struct epoll_event eev = {.events = EPOLLIN, .data.ptr = s};
    s->accepting = true;
    return epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->lfd, &lev) == 0 &&
           epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->evfd, &eev) == 0;
}

static void server_free(struct rf_http_server *s) {
    if (s->epfd >= 0) close(s->epfd);
    if (s->evfd >= 0) close(s->evfd);
    if (s->lfd >= 0) close(s->lfd);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->slots);
    free(s->free_slots);
    free(s->queue);
    free(s->clients);
    free(s->workers);
    rf_unauth_free(s->unauth);
    free(s);
}

static bool threads_start(struct rf_http_server *s) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, RF_HTTP_THREAD_STACK_BYTES);
    bool ok = true;
    for (; ok && s->n_workers < s->cfg.workers; s->n_workers++)
        ok = pthread_create(&s->workers[s->n_workers], &attr, worker_main, s) == 0;
    if (!ok) s->n_workers--;
    pthread_attr_destroy(&attr);
    return ok && pthread_create(&s->loop, NULL, loop_main, s) == 0;
}

static void workers_join(struct rf_http_server *s) {
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->n_workers; i++) pthread_join(s->workers[i], NULL);
    s->n_workers = 0;
    rf_log_flush(); /* a worker's last lines, after the loop's last flush */
}

static struct rf_http_server *server_new(const struct rf_http_config *cfg) {
    struct rf_http_server *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->cfg = *cfg;
    config_defaults(&s->cfg);
    s->lfd = s->epfd = s->evfd = -1;
    s->ctx.db = cfg->db;
    s->ctx.test_hooks = cfg->test_hooks;
    s->ctx.scheduler = cfg->scheduler;
    memcpy(s->ctx.role_limits, cfg->role_limits, sizeof s->ctx.role_limits);
    s->ctx.body_max_bytes = s->cfg.body_max_bytes;
    s->ctx.webhook_tolerance_s = s->cfg.webhook_tolerance_s;
    s->ctx.metrics = &s->metrics;
    atomic_init(&s->ctx.draining, false);
    atomic_init(&s->busy, 0);
    atomic_init(&s->wake_pending, false);
    atomic_init(&s->stop_loop, false);
    rf_metrics_init(&s->metrics);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    return s;
}

int rf_http_listen(const char *host, int port, bool reuse_port, char *err, size_t err_cap) {
    RF_ASSERT(host && port >= 0 && port <= 65535);
    struct sockaddr_in sa;
    if (!listen_addr(host, port, &sa)) {
        snprintf(err, err_cap, "listen host '%s' is not an IPv4 address or localhost", host);
        return -1;
    }
    int bound = 0;
    int fd = listen_socket(&sa, reuse_port, &bound);
    if (fd < 0) {
        int e = errno;
        snprintf(err, err_cap, "cannot listen on %s:%d: %s%s", host, port, strerror(e),
                 e == EADDRINUSE ? " (another process serves there: stop it, or choose "
                                   "another port with --listen or $RACEFREE_LISTEN)"
                                 : "");
    }
    return fd;
}

struct rf_http_server *rf_http_start(const struct rf_http_config *cfg, int lfd, char *err,
                                     size_t err_cap) {
    RF_ASSERT(cfg->db && cfg->host && lfd >= 0);
    if (sodium_init() < 0) {
        snprintf(err, err_cap, "libsodium failed to initialise");
        close(lfd);
        return NULL;
    }
    struct rf_http_server *s = server_new(cfg);
    if (!s) {
        snprintf(err, err_cap, "out of memory");
        close(lfd);
        return NULL;
    }
    struct sockaddr_in bound;
    socklen_t len = sizeof bound;
    s->lfd = lfd;
    if (getsockname(lfd, (struct sockaddr *)&bound, &len) != 0 || !server_alloc(s) ||
        !threads_start(s)) {
        snprintf(err, err_cap, "cannot start the HTTP server (out of memory or threads)");
        workers_join(s);
        server_free(s);
        return NULL;
    }
    s->port = ntohs(bound.sin_port);
    return s;
}

int rf_http_port(const struct rf_http_server *s) { return s->port; }

/* After the loop and the workers stopped: wait for the writes the executor
 * still has (it answers every one), send what is ready, answer what was
 * received, then close everything. */
static void final_pass(struct rf_http_server *s) {
    take_returns(s);
    while (atomic_load(&s->busy) > 0) {
        struct pollfd p = {.fd = s->evfd, .events = POLLIN};
        poll(&p, 1, RF_HTTP_SWEEP_MS);
        take_returns(s);
    }
    on_accept(s);
    for (int i = 0; i < s->cfg.conns_max; i++) {
        struct conn *c = s->slots[i];
        if (c && (c->state == CS_HEAD || c->state == CS_IDLE)) on_readable(s, c);
    }
    run_again(s);
    for (int i = 0; i < s->cfg.conns_max; i++)
        if (s->slots[i]) conn_close(s, s->slots[i]);
    reap_dead(s);
}

void rf_http_stop(struct rf_http_server *s) {
    if (!s) return;
    atomic_store(&s->ctx.draining, true);
    atomic_store(&s->stop_loop, true);
    wake_loop(s);
    pthread_join(s->loop, NULL);
    int left = atomic_load(&s->busy);
    if (left > 0)
        rf_log(RF_LOG_WARN, "%d request(s) still running after %d ms; waiting for them", left,
               RF_SHUTDOWN_DRAIN_MS);
    workers_join(s);
    final_pass(s);
    server_free(s);
}
