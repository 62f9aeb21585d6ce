/* curl multi ↔ libevent glue. One event per socket curl asks about, one
 * timer for curl's timeouts, one drain of curl_multi_info_read after every
 * socket action. Calls are completed only from the drain or from our own
 * timers, never from inside a libcurl callback. */
#include "upstream_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/socket.h>
#include <string.h>
#include <curl/curl.h>
#include <event2/event.h>

/* First libcurl that clears its last-header pointer when a handle starts a
 * new transfer (curl commit cd1c611b, issue 11101). Before it, a reused easy
 * handle keeps pointing at the previous transfer's freed last header, and an
 * answer whose first header line is an obs-fold continuation makes libcurl
 * append to that freed memory: handles are then used once. */
#define UPSTREAM_SAFE_REUSE_VERSION 0x080100

static void drain(struct upstream *up);
static void sock_check_parked(struct sockctx *sc, int woke);

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
	clock_ms_to_tv((uint64_t)timeout_ms, &tv);
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
			sc->call->last_io_ms = clock_coarse_ms();
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
 * closes it (through upstream_close_socket()), never sending on it again. The TCP
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
		if (call_paused_of(easy)) {
			/* libcurl stops watching a connection whose transfer
			 * braced paused (nothing to read or send until it
			 * resumes); the transfer is not over. Parking would peek,
			 * find the rest of the answer and poison the connection:
			 * only stop watching it. curl_easy_pause announces it
			 * again, and sock_owned() finds it. */
			if (sc->kind)
				event_del(sc->ev);
			sc->kind = 0;
			return 0;
		}
		/* Kept watched for reading until upstream_close_socket(): the next
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
 * their context can live until upstream_close_socket() and stay parked between
 * transfers. */
curl_socket_t upstream_open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
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

/* CURLOPT_CLOSESOCKETFUNCTION: the end of a socket upstream_open_socket() made. */
int upstream_close_socket(void *arg, curl_socket_t s)
{
	struct upstream *up = arg;
	struct sockctx *sc = sock_owned(up, s);

	if (sc) {
		up->owned[s] = NULL;
		sock_free(sc);
	}
	return close(s);
}

static void drain(struct upstream *up)
{
	struct call *c;
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(up->multi, &left))) {
		CURLcode rc;
		char *priv = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		rc = msg->data.result; /* msg dies with remove_handle */
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		call_finish((struct call *)priv, rc);
	}
	/* Heads whose transfer did not finish in the same action. A report
	 * may cancel or finish other calls: they leave the list as they go. */
	while ((c = TAILQ_FIRST(&up->heads))) {
		TAILQ_REMOVE(&up->heads, c, head_link);
		c->head_queued = 0;
		c->p.on_head(c, c->arg);
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
	TAILQ_INIT(&up->heads);
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
	upstream_update_max_connects(up);
}

void upstream_free(struct upstream *up)
{
	if (!up)
		return;
	upstream_pools_free(up); /* every call, before the multi handle goes */
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
