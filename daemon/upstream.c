/* curl multi ↔ libevent glue. One event per socket curl asks about, one
 * timer for curl's timeouts, one drain of curl_multi_info_read after every
 * socket action. Calls are completed only from the drain or from our own
 * timers, never from inside a libcurl callback. */
#include "upstream.h"
#include "headers.h"
#include "strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/socket.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>
#include <curl/curl.h>
#include <event2/buffer.h>

/* Easy handles kept for reuse when idle. */
#define UPSTREAM_FREE_HANDLES 256
/* Seconds over which the peak of transfers in flight keeps their
 * connections: a steady load never closes a connection it will need again. */
#define UPSTREAM_PEAK_WINDOW_S 5
/* First libcurl that clears its last-header pointer when a handle starts a
 * new transfer (curl commit cd1c611b, issue 11101). Before it, a reused easy
 * handle keeps pointing at the previous transfer's freed last header, and an
 * answer whose first header line is an obs-fold continuation makes libcurl
 * append to that freed memory: handles are then used once. */
#define UPSTREAM_SAFE_REUSE_VERSION 0x080100
/* Response header bytes kept for one attempt (curl itself caps a line at 100 KiB). */
#define CALL_MAX_HEADER_BYTES (64 * 1024)
/* Seconds libcurl keeps the certificate store it built from a profile's
 * ca_file (CURLOPT_CA_CACHE_TIMEOUT, libcurl 7.87.0+) for the next TLS
 * handshakes: a CA file replaced on disk is used by new connections after
 * at most this long. Without the cache every new connection parsed the file
 * again (about 1.5 million instructions for one certificate). */
#define UPSTREAM_CA_CACHE_S 60

enum call_state { CALL_WAITING, CALL_RUNNING, CALL_DONE };
enum io_phase { PHASE_CONNECT, PHASE_WRITE, PHASE_READ };

struct call {
	struct upstream *up;
	struct upstream_pool *pool;
	enum call_state state;
	struct call_params p;
	call_done_fn done;
	void *arg;
	CURL *easy;
	struct event *timer; /* pool wait, then read/write idle */
	enum io_phase phase;
	uint64_t last_io_ms; /* last progress, for the idle timers */
	uint64_t start_ms;
	uint64_t start_us; /* the same moment in µs, for durations */
	uint64_t begin_us; /* when the pool let it run; 0 while waiting */
	uint32_t elapsed_ms;
	uint64_t elapsed_us;
	size_t body_sent;
	int headers_done; /* the blank line ended the headers: trailers follow */
	struct headers_check check;
	const char *malformed; /* static: why the answer was refused, or NULL */
	struct sockctx *sock;  /* the socket libcurl last reported for this call */
	int too_large;
	int failed_start;
	unsigned prereqs;   /* connections libcurl readied for this transfer */
	int resend_refused; /* libcurl tried to send the request again */
	enum call_outcome outcome;
	enum call_timeout timeout;
	int status;
	struct evbuffer *body;
	struct strbuf headers;
	struct curl_slist *send_headers; /* nodes over p.headers' lines, one allocation */
	char errbuf[CURL_ERROR_SIZE];
	TAILQ_ENTRY(call) wait_link;
};

TAILQ_HEAD(call_queue, call);

struct upstream_pool {
	char *name;
	unsigned max, active;
	struct call_queue waiting;
	struct upstream_pool *next;
};

struct upstream {
	struct event_base *base;
	CURLM *multi;
	/* TLS sessions, shared by every easy handle so that a new connection
	 * to an upstream resumes the session of an earlier one (libcurl keeps
	 * them per easy handle otherwise, and braced's handles are one-use
	 * before 8.1.0). NULL when libcurl refused it: full handshakes then. */
	CURLSH *share;
	struct event *curl_timer;
	CURL *free_handles[UPSTREAM_FREE_HANDLES];
	unsigned nfree;
	int reuse_handles; /* this libcurl may reuse easy handles safely */
	unsigned running;  /* transfers in the multi handle, all pools */
	long max_idle;     /* idle connections kept once the load goes away */
	struct {
		uint64_t sec;  /* which second this slot holds */
		unsigned peak; /* most transfers running in it */
	} peaks[UPSTREAM_PEAK_WINDOW_S];
	struct upstream_pool *pools;
	LIST_HEAD(, sockctx) sockets;
	/* The contexts of the connection sockets braced opened for libcurl,
	 * indexed by descriptor (nowned slots; at most one per open file). */
	struct sockctx **owned;
	size_t nowned;
};

/* A socket libcurl asked about. A connection socket that braced opened
 * outlives its transfers: between them it stays parked in the loop,
 * watched for reading, so a reused connection costs no epoll_ctl. */
struct sockctx {
	struct upstream *up;
	struct event *ev;
	struct call *call; /* the transfer libcurl last reported on it, or NULL */
	curl_socket_t fd;
	short kind;   /* the events ev is added with; 0 when not added */
	int is_owned; /* opened by open_socket(): freed by close_socket() */
	int parked;   /* libcurl no longer watches it (between transfers) */
	int poisoned; /* sock_poison() ended its connection */
	LIST_ENTRY(sockctx) link;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t now_us_precise(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t now_ms_precise(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void ms_to_tv(uint64_t ms, struct timeval *tv)
{
	tv->tv_sec = (time_t)(ms / 1000);
	tv->tv_usec = (suseconds_t)((ms % 1000) * 1000);
}

static void drain(struct upstream *up);
static void sock_check_parked(struct sockctx *sc, int woke);
static void call_begin(struct call *c);
static void call_complete(struct call *c);

/* ---- libevent side of the glue --------------------------------------- */

static void on_curl_timer(evutil_socket_t fd, short what, void *arg)
{
	struct upstream *up = arg;
	int running;

	(void)fd;
	(void)what;
	curl_multi_socket_action(up->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	drain(up);
}

static int curl_timer_cb(CURLM *multi, long timeout_ms, void *arg)
{
	struct upstream *up = arg;
	struct timeval tv;

	(void)multi;
	if (timeout_ms < 0) {
		evtimer_del(up->curl_timer);
		return 0;
	}
	/* 0 ms runs on the next loop turn, never from inside this callback. */
	ms_to_tv((uint64_t)timeout_ms, &tv);
	evtimer_add(up->curl_timer, &tv);
	return 0;
}

static void on_socket(evutil_socket_t fd, short what, void *arg)
{
	struct sockctx *sc = arg;
	struct upstream *up = sc->up;
	int running, flags = 0;

	if (sc->parked) {
		/* An idle connection woke up: the peer closed it, reset it or
		 * sent bytes nobody asked for. */
		sock_check_parked(sc, 1);
		return;
	}
	if (what & EV_READ) {
		flags |= CURL_CSELECT_IN;
		/* Any byte counts as progress for the read timeout, not only a
		 * whole header line or body block handed to a callback. */
		if (sc->call)
			sc->call->last_io_ms = now_ms();
	}
	if (what & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	/* sc may be freed by the socket callback inside this action. */
	curl_multi_socket_action(up->multi, fd, flags, &running);
	drain(up);
}

/* Links socket and call both ways, so either can go first. */
static void sock_link(struct sockctx *sc, struct call *c)
{
	if (sc->call && sc->call->sock == sc)
		sc->call->sock = NULL;
	sc->call = c;
	if (c) {
		if (c->sock && c->sock != sc && c->sock->call == c)
			c->sock->call = NULL;
		c->sock = sc;
	}
}

/* Watches sc for kind (EV_PERSIST and EV_READ and/or EV_WRITE); nothing
 * to do when it is already watched so. */
static int sock_watch(struct sockctx *sc, short kind)
{
	if (sc->kind == kind)
		return 0;
	if (sc->kind)
		event_del(sc->ev);
	sc->kind = 0;
	event_assign(sc->ev, sc->up->base, sc->fd, kind, on_socket, sc);
	if (sc->parked)
		(void)event_priority_set(sc->ev, 0);
	if (event_add(sc->ev, NULL) < 0)
		return -1;
	sc->kind = kind;
	return 0;
}

/* Ends the connection under sc for good while libcurl still holds its
 * descriptor: the descriptor becomes one end of a socket pair whose other
 * end is closed, so libcurl's check before reuse reads end-of-file and
 * closes it (through close_socket()), never sending on it again. The TCP
 * connection loses its last reference and is closed at once (with a reset
 * when unread bytes are left). Without descriptors for the pair, shutting
 * both directions down still keeps any answer off it: the next send fails
 * before a byte leaves, and libcurl's resend of it is refused (on_prereq). */
static void sock_poison(struct sockctx *sc)
{
	int pair[2];

	if (sc->kind)
		event_del(sc->ev);
	sc->kind = 0;
	sc->poisoned = 1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
		(void)shutdown(sc->fd, SHUT_RDWR);
		return;
	}
	close(pair[1]);
	if (dup3(pair[0], sc->fd, O_CLOEXEC) < 0)
		(void)shutdown(sc->fd, SHUT_RDWR);
	close(pair[0]);
}

/* A parked connection must hold no unread byte: an answer nobody asked for
 * would otherwise be read as the answer to the next request sent on it
 * (libcurl 7.88's check before reuse takes a readable connection with data
 * for a live one). woke: epoll said it is readable. Bytes, or an error,
 * poison it; the peer's close is left to libcurl's check. */
static void sock_check_parked(struct sockctx *sc, int woke)
{
	char byte;
	ssize_t n;

	if (sc->poisoned)
		return;
	n = recv(sc->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n > 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
		sock_poison(sc);
	} else if (n == 0 && woke && sc->kind) {
		/* Closed by the peer: stop watching a descriptor that stays
		 * readable until libcurl closes it. */
		event_del(sc->ev);
		sc->kind = 0;
	}
}

static struct sockctx *sock_new(struct upstream *up, curl_socket_t s)
{
	struct sockctx *sc = calloc(1, sizeof(*sc));

	if (!sc)
		return NULL;
	sc->up = up;
	sc->fd = s;
	sc->ev = event_new(up->base, s, EV_PERSIST | EV_READ, on_socket, sc);
	if (!sc->ev) {
		free(sc);
		return NULL;
	}
	LIST_INSERT_HEAD(&up->sockets, sc, link);
	return sc;
}

static void sock_free(struct sockctx *sc)
{
	sock_link(sc, NULL);
	event_free(sc->ev);
	LIST_REMOVE(sc, link);
	free(sc);
}

static struct sockctx *sock_owned(struct upstream *up, curl_socket_t s)
{
	return s >= 0 && (size_t)s < up->nowned ? up->owned[s] : NULL;
}

static int curl_socket_cb(CURL *easy, curl_socket_t s, int what, void *arg, void *sockp)
{
	struct upstream *up = arg;
	struct sockctx *sc = sockp;
	char *priv = NULL;

	if (!sc)
		sc = sock_owned(up, s);
	if (what == CURL_POLL_REMOVE) {
		if (!sc)
			return 0;
		curl_multi_assign(up->multi, s, NULL);
		if (!sc->is_owned) {
			sock_free(sc);
			return 0;
		}
		/* Kept watched for reading until close_socket(): the next
		 * transfer on this connection usually asks for just that. Bytes
		 * already behind the answer are found now, before a transfer
		 * that libcurl starts in this same action could reuse it; bytes
		 * arriving later wake the parked event, which runs before any
		 * other callback of its loop turn (priority 0). */
		sock_link(sc, NULL);
		sc->parked = 1;
		if (sc->kind)
			(void)event_priority_set(sc->ev, 0);
		(void)sock_watch(sc, EV_PERSIST | EV_READ);
		sock_check_parked(sc, 0);
		return 0;
	}
	if (!sc) {
		sc = sock_new(up, s);
		if (!sc)
			return -1;
	}
	if (sc->parked || !sockp)
		curl_multi_assign(up->multi, s, sc);
	if (sc->parked && sc->kind)
		(void)event_priority_set(sc->ev, event_base_get_npriorities(up->base) / 2);
	sc->parked = 0;
	if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv) == CURLE_OK && priv)
		sock_link(sc, (struct call *)priv);
	return sock_watch(sc, (short)(EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
				      ((what & CURL_POLL_OUT) ? EV_WRITE : 0)));
}

/* CURLOPT_OPENSOCKETFUNCTION: connection sockets are opened here so that
 * their context can live until close_socket() and stay parked between
 * transfers. */
static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
	struct upstream *up = arg;
	struct sockctx *sc;
	curl_socket_t s;

	(void)purpose;
	s = socket(addr->family, addr->socktype, addr->protocol);
	if (s < 0)
		return CURL_SOCKET_BAD;
	if ((size_t)s >= up->nowned) {
		size_t n = (size_t)s + 64;
		struct sockctx **t = realloc(up->owned, n * sizeof(*t));

		if (!t)
			goto fail;
		memset(t + up->nowned, 0, (n - up->nowned) * sizeof(*t));
		up->owned = t;
		up->nowned = n;
	}
	sc = sock_new(up, s);
	if (!sc)
		goto fail;
	sc->is_owned = 1;
	sc->parked = 1;
	up->owned[s] = sc;
	return s;
fail:
	close(s);
	return CURL_SOCKET_BAD;
}

/* CURLOPT_CLOSESOCKETFUNCTION: the end of a socket open_socket() made. */
static int close_socket(void *arg, curl_socket_t s)
{
	struct upstream *up = arg;
	struct sockctx *sc = sock_owned(up, s);

	if (sc) {
		up->owned[s] = NULL;
		sock_free(sc);
	}
	return close(s);
}

/* ---- one attempt ------------------------------------------------------ */

static enum call_outcome classify(struct call *c, CURLcode rc, int connected)
{
	switch (rc) {
	case CURLE_OK:
		return CALL_OK;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
		return CALL_CONNECT;
	case CURLE_OPERATION_TIMEDOUT:
		if (!connected)
			c->timeout = CALL_TIMEOUT_CONNECT;
		else
			c->timeout = CALL_TIMEOUT_ATTEMPT;
		return CALL_TIMEOUT;
	case CURLE_WRITE_ERROR:
		if (c->too_large)
			return CALL_TOO_LARGE;
		return CALL_INTERNAL;
	default:
		/* 52 empty reply, 55/56 send/recv failure, 18 partial, 16/92 HTTP/2,
		 * 1 a malformed status line: once connected, the request may have
		 * been processed, so none of these is a connect failure. */
		return connected ? CALL_RESET : CALL_CONNECT;
	}
}

/* libcurl's CURLMOPT_MAXCONNECTS caps its whole connection cache, busy
 * connections included: when a transfer hands its connection back and the
 * cache holds more, the oldest idle one is closed. A fixed cap below the
 * load closed and reopened connections in steady state, and so would a cap
 * that follows the transfers of the moment (apps pause between requests),
 * so the cap follows the peak of the last UPSTREAM_PEAK_WINDOW_S seconds:
 * what that peak used stays open, plus max_idle. Once the load is gone,
 * each finishing transfer closes the oldest idle connection beyond that, so
 * max_idle remain (the finishing transfer counts in the peak: hence -1). */
static void update_max_connects(struct upstream *up)
{
	uint64_t sec = now_ms() / 1000;
	unsigned peak = 0;
	long cap;

	if (up->peaks[sec % UPSTREAM_PEAK_WINDOW_S].sec != sec)
		up->peaks[sec % UPSTREAM_PEAK_WINDOW_S].peak = 0;
	up->peaks[sec % UPSTREAM_PEAK_WINDOW_S].sec = sec;
	if (up->running > up->peaks[sec % UPSTREAM_PEAK_WINDOW_S].peak)
		up->peaks[sec % UPSTREAM_PEAK_WINDOW_S].peak = up->running;
	for (size_t i = 0; i < UPSTREAM_PEAK_WINDOW_S; i++)
		if (sec - up->peaks[i].sec < UPSTREAM_PEAK_WINDOW_S && up->peaks[i].peak > peak)
			peak = up->peaks[i].peak;
	cap = (long)peak + up->max_idle - 1;

	curl_multi_setopt(up->multi, CURLMOPT_MAXCONNECTS, cap > 0 ? cap : 1L);
}

/* Starts the oldest waiters while the pool has free slots. */
static void pool_run_waiters(struct upstream_pool *pool)
{
	while (pool->active < pool->max && !TAILQ_EMPTY(&pool->waiting)) {
		struct call *next = TAILQ_FIRST(&pool->waiting);

		TAILQ_REMOVE(&pool->waiting, next, wait_link);
		evtimer_del(next->timer);
		call_begin(next);
	}
}

static void pool_release(struct call *c)
{
	struct upstream_pool *pool = c->pool;

	if (!pool || c->state != CALL_RUNNING)
		return;
	pool->active--;
	c->up->running--;
	update_max_connects(c->up);
	pool_run_waiters(pool); /* hand the slot to the oldest waiter */
}

static void easy_recycle(struct upstream *up, CURL *easy)
{
	if (!easy)
		return;
	if (up->reuse_handles && up->nfree < UPSTREAM_FREE_HANDLES) {
		curl_easy_reset(easy);
		up->free_handles[up->nfree++] = easy;
	} else {
		curl_easy_cleanup(easy);
	}
}

/* Takes the call out of the multi and out of the pool. */
static void call_detach(struct call *c)
{
	struct upstream *up = c->up;

	if (c->state == CALL_WAITING) {
		TAILQ_REMOVE(&c->pool->waiting, c, wait_link);
	} else if (c->state == CALL_RUNNING) {
		if (c->easy)
			curl_multi_remove_handle(up->multi, c->easy);
		pool_release(c);
	}
	if (c->sock && c->sock->call == c)
		c->sock->call = NULL;
	c->sock = NULL;
	easy_recycle(up, c->easy);
	c->easy = NULL;
	if (c->timer)
		evtimer_del(c->timer);
	c->elapsed_us = now_us_precise() - c->start_us;
	c->elapsed_ms = (uint32_t)(c->elapsed_us / 1000);
	c->state = CALL_DONE;
}

static void call_complete(struct call *c)
{
	call_detach(c);
	c->done(c, c->arg);
}

static void arm_idle(struct call *c, uint64_t after_ms)
{
	struct timeval tv;

	ms_to_tv(after_ms, &tv);
	evtimer_add(c->timer, &tv);
}

/* The idle timer: pool wait while waiting, then read/write inactivity.
 * Progress only stamps last_io_ms; the timer re-arms itself lazily. */
static void on_call_timer(evutil_socket_t fd, short what, void *arg)
{
	struct call *c = arg;
	uint64_t limit, idle;

	(void)fd;
	(void)what;
	if (c->state == CALL_WAITING || c->failed_start) {
		c->outcome = c->failed_start ? CALL_INTERNAL : CALL_POOL_TIMEOUT;
		call_complete(c);
		return;
	}
	limit = c->phase == PHASE_WRITE ? c->p.write_ms : c->p.read_ms;
	idle = now_ms() - c->last_io_ms;
	if (idle < limit) {
		arm_idle(c, limit - idle);
		return;
	}
	c->outcome = CALL_TIMEOUT;
	c->timeout = c->phase == PHASE_WRITE ? CALL_TIMEOUT_WRITE : CALL_TIMEOUT_READ;
	snprintf(c->errbuf, sizeof(c->errbuf), "no %s progress for %u ms",
		 c->phase == PHASE_WRITE ? "upload" : "response", (unsigned)limit);
	call_complete(c);
}

static int on_prereq(void *arg, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port,
		     int conn_local_port)
{
	struct call *c = arg;

	(void)conn_primary_ip;
	(void)conn_local_ip;
	(void)conn_primary_port;
	(void)conn_local_port;
	/* A second connection for one transfer: libcurl is about to send the
	 * request again after the first connection died without an answer
	 * (curl's Curl_retry_request). The upstream may have acted on it, so
	 * only braced's policy may repeat it, as a counted attempt. */
	if (c->prereqs++ > 0) {
		c->resend_refused = 1;
		return CURL_PREREQFUNC_ABORT;
	}
	/* Connected (or reused): from here on the read/write idle limits apply. */
	c->phase = c->p.send_body && c->p.body_len > 0 ? PHASE_WRITE : PHASE_READ;
	c->last_io_ms = now_ms();
	c->body_sent = 0;
	arm_idle(c, c->phase == PHASE_WRITE ? c->p.write_ms : c->p.read_ms);
	return CURL_PREREQFUNC_OK;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *arg)
{
	struct call *c = arg;
	size_t left = c->p.body_len - c->body_sent, n = size * nitems;

	if (n > left)
		n = left;
	memcpy(buf, c->p.body + c->body_sent, n);
	c->body_sent += n;
	c->last_io_ms = now_ms();
	/* libcurl stops asking once the declared size is sent: the wait for the
	 * answer is bounded by the read timeout from here on. */
	if (c->body_sent == c->p.body_len && c->phase == PHASE_WRITE)
		c->phase = PHASE_READ;
	return n;
}

static int on_seek(void *arg, curl_off_t offset, int origin)
{
	struct call *c = arg;

	/* libcurl rewinds only to send the request again on a new connection
	 * (see on_prereq): refused, so the transfer fails instead. */
	(void)offset;
	(void)origin;
	c->resend_refused = 1;
	return CURL_SEEKFUNC_CANTSEEK;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *arg)
{
	struct call *c = arg;
	size_t n = size * nitems, len = n;
	const char *colon;

	c->last_io_ms = now_ms();
	if (c->phase == PHASE_WRITE)
		c->phase = PHASE_READ; /* an early answer ends the upload phase */
	if (headers_check_line(&c->check, buf, n) < 0) {
		/* Refused: libcurl ends the transfer and closes the connection. */
		c->malformed = c->check.why;
		return 0;
	}
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
		/* A new status line (after 1xx or a resend): start over. */
		c->headers.len = 0;
		c->headers.failed = 0;
		c->headers_done = 0;
		return n;
	}
	if (len == 0) {
		c->headers_done = c->check.in_trailers;
		return n;
	}
	if (c->headers_done)
		return n; /* trailers are not passed on */
	colon = memchr(buf, ':', len);
	if ((size_t)(colon - buf) == 14 && strncasecmp(buf, "Content-Length", 14) == 0 &&
	    !c->p.head && c->check.status != 304 && c->check.status != 204) {
		/* A HEAD or 304 answer announces a body it does not send. */
		if (c->check.content_length > c->p.max_response_body) {
			c->too_large = 1;
			return 0;
		}
	}
	strbuf_add(&c->headers, buf, (size_t)(colon - buf));
	strbuf_add(&c->headers, "", 1);
	colon++;
	while (colon < buf + len && (*colon == ' ' || *colon == '\t'))
		colon++;
	strbuf_add(&c->headers, colon, (size_t)(buf + len - colon));
	strbuf_add(&c->headers, "", 1);
	return n;
}

static size_t on_write(char *buf, size_t size, size_t nitems, void *arg)
{
	struct call *c = arg;
	size_t n = size * nitems;

	c->last_io_ms = now_ms();
	if (evbuffer_get_length(c->body) + n > c->p.max_response_body) {
		c->too_large = 1;
		return 0;
	}
	if (evbuffer_add(c->body, buf, n) < 0)
		return 0;
	return n;
}

static int setup_easy(struct call *c)
{
	CURL *e = c->easy;
	const struct call_params *p = &c->p;
	int ok = 1;

#define SET(opt, val) ok &= curl_easy_setopt(e, opt, val) == CURLE_OK
	SET(CURLOPT_URL, p->url);
	SET(CURLOPT_PRIVATE, c);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_ERRORBUFFER, c->errbuf);
	SET(CURLOPT_HTTPHEADER, c->send_headers);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, c);
	SET(CURLOPT_WRITEFUNCTION, on_write);
	SET(CURLOPT_WRITEDATA, c);
	SET(CURLOPT_PREREQFUNCTION, on_prereq);
	SET(CURLOPT_PREREQDATA, c);
	SET(CURLOPT_OPENSOCKETFUNCTION, open_socket);
	SET(CURLOPT_OPENSOCKETDATA, c->up);
	SET(CURLOPT_CLOSESOCKETFUNCTION, close_socket);
	SET(CURLOPT_CLOSESOCKETDATA, c->up);
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long)p->connect_ms);
	if (p->attempt_ms) {
		/* The attempt cap covers the pool wait too. */
		uint64_t waited = now_ms_precise() - c->start_ms;

		SET(CURLOPT_TIMEOUT_MS,
		    waited < p->attempt_ms ? (long)(p->attempt_ms - waited) : 1L);
	}
	SET(CURLOPT_SSL_VERIFYPEER, p->tls_verify ? 1L : 0L);
	SET(CURLOPT_SSL_VERIFYHOST, p->tls_verify ? 2L : 0L);
	if (c->up->share)
		SET(CURLOPT_SHARE, c->up->share);
	if (p->ca_file) {
		/* Exactly the CAs of ca_file: not also the directory libcurl was
		 * built with (Debian's /etc/ssl/certs), which would trust every
		 * public CA too and keeps libcurl from caching the store. */
		SET(CURLOPT_CAINFO, p->ca_file);
		SET(CURLOPT_CAPATH, NULL);
#if LIBCURL_VERSION_NUM >= 0x075700
		SET(CURLOPT_CA_CACHE_TIMEOUT, (long)UPSTREAM_CA_CACHE_S);
#endif
	}
	SET(CURLOPT_PATH_AS_IS, 1L);
	if (p->head) {
		SET(CURLOPT_NOBODY, 1L);
	} else if (p->send_body) {
		SET(CURLOPT_POST, 1L);
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)p->body_len);
		SET(CURLOPT_READFUNCTION, on_read);
		SET(CURLOPT_READDATA, c);
		SET(CURLOPT_SEEKFUNCTION, on_seek);
		SET(CURLOPT_SEEKDATA, c);
		if (strcmp(p->method, "POST") != 0)
			SET(CURLOPT_CUSTOMREQUEST, p->method);
	} else if (strcmp(p->method, "GET") != 0) {
		SET(CURLOPT_CUSTOMREQUEST, p->method);
	}
#undef SET
	return ok ? 0 : -EINVAL;
}

static void call_begin(struct call *c)
{
	struct upstream *up = c->up;

	c->state = CALL_RUNNING;
	c->begin_us = now_us_precise();
	c->pool->active++;
	up->running++;
	update_max_connects(up);
	c->phase = PHASE_CONNECT;
	c->easy = up->nfree ? up->free_handles[--up->nfree] : curl_easy_init();
	if (!c->easy || setup_easy(c) < 0 ||
	    curl_multi_add_handle(up->multi, c->easy) != CURLM_OK) {
		snprintf(c->errbuf, sizeof(c->errbuf), "libcurl refused the transfer");
		/* Reported from the timer so done never runs inside upstream_start. */
		c->failed_start = 1;
		event_active(c->timer, EV_TIMEOUT, 0);
	}
}

/* libcurl refused the answer itself, before braced's header callback saw
 * the offending line: say so in the words braced uses for its own checks. */
static void note_malformed(struct call *c, CURLcode rc)
{
	char msg[CURL_ERROR_SIZE];

	switch (rc) {
	case CURLE_BAD_FUNCTION_ARGUMENT:
		/* The header store refused a line, before the callback. */
		snprintf(c->errbuf, sizeof(c->errbuf),
			 "malformed answer: a header line libcurl could not store "
			 "(an obs-fold continuation or a line without a colon)");
		break;
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_UNSUPPORTED_PROTOCOL:
		snprintf(msg, sizeof(msg), "%s", c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc));
		snprintf(c->errbuf, sizeof(c->errbuf), "malformed answer: %.200s", msg);
		break;
	default:
		break;
	}
}

static void drain(struct upstream *up)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(up->multi, &left))) {
		struct call *c = NULL;
		CURLcode rc;
		long status = 0;
		char *priv = NULL;
		curl_off_t pretransfer = 0;

		if (msg->msg != CURLMSG_DONE)
			continue;
		rc = msg->data.result; /* msg dies with remove_handle */
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		c = (struct call *)priv;
		curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_getinfo(c->easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
		c->status = (int)status;
		c->outcome = classify(c, rc, c->phase != PHASE_CONNECT || pretransfer > 0);
		if (c->resend_refused) {
			c->outcome = CALL_RESET;
			snprintf(
			    c->errbuf, sizeof(c->errbuf),
			    "the connection closed after the request was sent, without an answer");
		} else if (c->malformed) {
			c->outcome = CALL_RESET;
			snprintf(c->errbuf, sizeof(c->errbuf), "malformed answer: %s",
				 c->malformed);
		} else if (c->outcome == CALL_RESET) {
			note_malformed(c, rc);
		}
		if (c->outcome == CALL_OK && c->headers.failed) {
			c->outcome = CALL_TOO_LARGE;
			snprintf(c->errbuf, sizeof(c->errbuf), "response headers too large");
		}
		call_complete(c);
	}
}

/* ---- public API ------------------------------------------------------- */

struct upstream *upstream_new(struct event_base *base)
{
	struct upstream *up = calloc(1, sizeof(*up));

	if (!up)
		return NULL;
	up->base = base;
	up->reuse_handles =
	    curl_version_info(CURLVERSION_NOW)->version_num >= UPSTREAM_SAFE_REUSE_VERSION;
	LIST_INIT(&up->sockets);
	up->multi = curl_multi_init();
	up->curl_timer = evtimer_new(base, on_curl_timer, up);
	if (!up->multi || !up->curl_timer) {
		upstream_free(up);
		return NULL;
	}
	/* One thread: the share needs no lock functions. libcurl only looks a
	 * session up for a connection whose TLS settings (verify, CA file,
	 * host) match those it was made with. */
	up->share = curl_share_init();
	if (up->share && curl_share_setopt(up->share, CURLSHOPT_SHARE,
					   CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
		curl_share_cleanup(up->share);
		up->share = NULL;
	}
	curl_multi_setopt(up->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
	curl_multi_setopt(up->multi, CURLMOPT_SOCKETDATA, up);
	curl_multi_setopt(up->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
	curl_multi_setopt(up->multi, CURLMOPT_TIMERDATA, up);
	return up;
}

void upstream_set_max_idle(struct upstream *up, long max_idle)
{
	up->max_idle = max_idle > 0 ? max_idle : 1;
	update_max_connects(up);
}

void upstream_free(struct upstream *up)
{
	struct upstream_pool *pool, *next;

	if (!up)
		return;
	for (pool = up->pools; pool; pool = next) {
		next = pool->next;
		while (!TAILQ_EMPTY(&pool->waiting))
			upstream_cancel(TAILQ_FIRST(&pool->waiting));
		free(pool->name);
		free(pool);
	}
	up->pools = NULL;
	/* Running calls belong to requests, which main cancels before this. */
	if (up->multi)
		curl_multi_cleanup(up->multi);
	up->multi = NULL;
	while (up->nfree)
		curl_easy_cleanup(up->free_handles[--up->nfree]);
	/* After every easy handle that used it. */
	if (up->share)
		curl_share_cleanup(up->share);
	while (!LIST_EMPTY(&up->sockets))
		sock_free(LIST_FIRST(&up->sockets));
	free(up->owned);
	if (up->curl_timer)
		event_free(up->curl_timer);
	free(up);
}

struct upstream_pool *upstream_pool_get(struct upstream *up, const char *name,
					unsigned max_connections)
{
	struct upstream_pool *pool;

	for (pool = up->pools; pool; pool = pool->next)
		if (strcmp(pool->name, name) == 0)
			break;
	if (!pool) {
		pool = calloc(1, sizeof(*pool));
		if (!pool)
			return NULL;
		pool->name = strdup(name);
		if (!pool->name) {
			free(pool);
			return NULL;
		}
		TAILQ_INIT(&pool->waiting);
		pool->next = up->pools;
		up->pools = pool;
	}
	pool->max = max_connections ? max_connections : 1;
	return pool;
}

void upstream_pool_set_max(struct upstream_pool *pool, unsigned max_connections)
{
	pool->max = max_connections ? max_connections : 1;
	pool_run_waiters(pool); /* a raised limit lets them run at once */
}

uint64_t call_queued_us(const struct call *c)
{
	if (!c->begin_us)
		return c->elapsed_us;
	return c->begin_us > c->start_us ? c->begin_us - c->start_us : 0;
}

int call_waiting(const struct call *c)
{
	return c->state == CALL_WAITING;
}

/* libcurl's list for the request headers: nodes pointing at the lines of
 * list and at extra (all borrowed until done), then the empty "Name:" lines that stop
 * libcurl from adding headers the app did not send. One allocation;
 * NULL on OOM. */
static struct curl_slist *send_headers_of(const struct header_list *list, const char *extra,
					  int with_body)
{
	static char expect[] = "Expect:", type[] = "Content-Type:", accept[] = "Accept:";
	size_t n = list ? list->n : 0, i = 0;
	struct curl_slist *nodes = calloc(n + 4, sizeof(*nodes));

	if (!nodes)
		return NULL;
	for (; i < n; i++)
		nodes[i].data = list->lines[i];
	/* curl_slist's data is not const; libcurl only reads it. */
	if (extra)
		nodes[i++].data = (char *)(uintptr_t)extra;
	/* libcurl adds Expect and Content-Type only to a request with a body:
	 * a body over 1 MiB or of unknown length would wait for 100-continue.
	 * Without a body the list stays shorter (libcurl scans it per header
	 * it considers adding). */
	if (with_body) {
		nodes[i++].data = expect;
		if (!list || !header_list_has(list, "Content-Type"))
			nodes[i++].data = type;
	}
	if (!list || !header_list_has(list, "Accept"))
		nodes[i++].data = accept;
	for (size_t j = 0; j + 1 < i; j++)
		nodes[j].next = &nodes[j + 1];
	return nodes;
}

struct call *upstream_start(struct upstream *up, struct upstream_pool *pool,
			    const struct call_params *params, call_done_fn done, void *arg)
{
	struct call *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->up = up;
	c->pool = pool;
	c->p = *params;
	c->done = done;
	c->arg = arg;
	c->start_us = now_us_precise();
	c->start_ms = c->start_us / 1000;
	c->body = evbuffer_new();
	c->timer = evtimer_new(up->base, on_call_timer, c);
	strbuf_init(&c->headers, CALL_MAX_HEADER_BYTES);
	headers_check_init(&c->check);
	c->send_headers = send_headers_of(params->headers, params->extra_header,
					  params->send_body && !params->head);
	if (!c->body || !c->timer || !c->send_headers) {
		call_free(c);
		return NULL;
	}
	if (pool->active < pool->max) {
		call_begin(c);
	} else {
		struct timeval tv;

		c->state = CALL_WAITING;
		TAILQ_INSERT_TAIL(&pool->waiting, c, wait_link);
		ms_to_tv(params->pool_ms, &tv);
		evtimer_add(c->timer, &tv);
	}
	return c;
}

void upstream_cancel(struct call *c)
{
	if (!c)
		return;
	if (c->state != CALL_DONE)
		call_detach(c);
	call_free(c);
}

enum call_outcome call_outcome(const struct call *c)
{
	return c->outcome;
}

enum call_timeout call_timeout_kind(const struct call *c)
{
	return c->timeout;
}

int call_status(const struct call *c)
{
	return c->status;
}

struct evbuffer *call_body(struct call *c)
{
	return c->body;
}

int call_header_next(const struct call *c, size_t *pos, const char **ret_name,
		     const char **ret_value)
{
	/* Stored as "name\0value\0" pairs; an overflowed store shows nothing. */
	size_t len = c->headers.failed ? 0 : c->headers.len;
	const char *name, *value;

	if (*pos >= len)
		return 0;
	name = c->headers.data + *pos;
	value = name + strlen(name) + 1;
	*pos = (size_t)(value - c->headers.data) + strlen(value) + 1;
	*ret_name = name;
	*ret_value = value;
	return 1;
}

uint64_t call_elapsed_us(const struct call *c)
{
	return c->elapsed_us;
}

uint32_t call_elapsed_ms(const struct call *c)
{
	return c->elapsed_ms;
}

const char *call_error(const struct call *c)
{
	return c->errbuf;
}

void call_free(struct call *c)
{
	if (!c)
		return;
	if (c->timer)
		event_free(c->timer);
	if (c->body)
		evbuffer_free(c->body);
	strbuf_release(&c->headers);
	free(c->send_headers);
	free(c);
}
