/* The http server's listening side: listeners and their pauses, accepting
 * in batches, the reserve of descriptors for admin accepts and the admin
 * connection cap, and the server's life (http_server_new ... _free). */
#include "http_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#define HTTP_ACCEPT_BATCH 32 /* accepts per listener wake-up */
#define HTTP_FD_RETRY_MS 100 /* accept pause when descriptors ran out */

/* ---- listeners and descriptors ---- */

static int listener_should_run(const struct http_server *srv, const struct listener *l)
{
	if (l->kind == HTTP_LISTENER_ADMIN)
		return 1;
	return !srv->paused_full && !srv->paused_drain && !srv->paused_fd;
}

/* Adds or removes listener events after a pause changed: epoll_ctl only here,
 * at the limits, never per request. */
void http_listeners_sync(struct http_server *srv)
{
	for (size_t i = 0; i < srv->nlisteners; i++) {
		struct listener *l = &srv->listeners[i];
		int want = listener_should_run(srv, l);

		if (want == l->active)
			continue;
		if (want)
			event_add(l->ev, NULL);
		else
			event_del(l->ev);
		l->active = want;
	}
}

void http_reserve_refill(struct http_server *srv)
{
	for (int i = 0; i < HTTP_ADMIN_RESERVE; i++)
		if (srv->reserve[i] < 0)
			srv->reserve[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static int reserve_release_one(struct http_server *srv)
{
	for (int i = 0; i < HTTP_ADMIN_RESERVE; i++)
		if (srv->reserve[i] >= 0) {
			close(srv->reserve[i]);
			srv->reserve[i] = -1;
			return 0;
		}
	return -EMFILE;
}

static void fd_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_server *srv = arg;

	(void)fd;
	(void)what;
	srv->paused_fd = 0;
	http_listeners_sync(srv);
}

/* ---- accepting ---- */

static int close_oldest_idle(struct http_server *srv)
{
	struct http_conn *c = TAILQ_FIRST(&srv->idle);

	if (!c)
		return -1;
	srv->counters.idle_closed++;
	http_conn_close(c);
	return 0;
}

/* At the admin cap, closes the least recently used admin connection that
 * is not with the caller, so a probe always gets in while the cap holds.
 * Returns 0, or -EBUSY when every admin connection is being answered. */
static int admin_make_room(struct http_server *srv)
{
	struct http_conn *c;

	TAILQ_FOREACH(c, &srv->admin, admin_link)
	if (c->state != CONN_WAIT && c->state != CONN_DISPATCH && c->state != CONN_STREAM) {
		srv->counters.admin_evicted++;
		http_conn_close(c);
		return 0;
	}
	return -EBUSY;
}

/* A descriptor for an admin accept that failed for lack of them: an admin
 * slot's when the cap is reached, else one of the reserve. */
static int admin_free_descriptor(struct http_server *srv)
{
	if (srv->counters.admin_connections >= srv->admin_limits.max_connections &&
	    admin_make_room(srv) == 0)
		return 0;
	return reserve_release_one(srv);
}

static void conn_count(struct http_conn *c)
{
	c->srv->counters.accepted++;
	if (c->admin)
		c->srv->counters.admin_connections++;
	else
		c->srv->counters.connections++;
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct listener *l = arg;
	struct http_server *srv = l->srv;
	int admin = l->kind == HTTP_LISTENER_ADMIN;

	(void)what;
	for (int i = 0; i < HTTP_ACCEPT_BATCH; i++) {
		struct http_conn *c;
		int fd;

		if (!admin && srv->counters.connections >= srv->limits.max_connections) {
			srv->paused_full = 1;
			srv->counters.accept_paused++;
			http_listeners_sync(srv);
			return;
		}
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EMFILE && errno != ENFILE)
				return;
			srv->counters.fd_shortage++;
			if (admin ? admin_free_descriptor(srv) == 0 : close_oldest_idle(srv) == 0)
				continue;
			if (!admin && !srv->paused_fd) {
				struct timeval tv = { 0, HTTP_FD_RETRY_MS * 1000 };

				srv->paused_fd = 1;
				http_listeners_sync(srv);
				evtimer_add(srv->fd_retry, &tv);
			}
			return;
		}
		if (admin && srv->counters.admin_connections >= srv->admin_limits.max_connections &&
		    admin_make_room(srv) < 0) {
			srv->counters.admin_refused++;
			close(fd);
			http_reserve_refill(srv);
			continue;
		}
		/* a streamed head or event must not wait for a delayed ACK */
		if (l->tcp && !admin)
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
		c = http_conn_new(srv, fd, admin);
		if (!c) {
			close(fd);
			return;
		}
		conn_count(c);
	}
}

/* Makes fd non-blocking. Returns 0, or -errno after closing fd. */
static int nonblock_or_close(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0)
		return 0;
	flags = -errno;
	close(fd);
	return flags;
}

int http_server_add_connection(struct http_server *srv, int fd, enum http_listener_kind kind)
{
	int admin = kind == HTTP_LISTENER_ADMIN;
	struct http_conn *c;
	int r;

	if ((!admin && srv->counters.connections >= srv->limits.max_connections) ||
	    (admin && srv->counters.admin_connections >= srv->admin_limits.max_connections &&
	     admin_make_room(srv) < 0)) {
		close(fd);
		return -EBUSY;
	}
	r = nonblock_or_close(fd);
	if (r < 0)
		return r;
	c = http_conn_new(srv, fd, admin);
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	conn_count(c);
	if (!admin && srv->counters.connections >= srv->limits.max_connections) {
		srv->paused_full = 1;
		http_listeners_sync(srv);
	}
	return 0;
}

/* Whether fd is an AF_INET or AF_INET6 socket. */
static int is_tcp(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return 0;
	return ss.ss_family == AF_INET || ss.ss_family == AF_INET6;
}

/* ---- public API ---- */

static int limits_ok(const struct http_limits *l)
{
	return l->max_header_size && l->max_connections && l->header_timeout_ms &&
	       l->body_timeout_ms && l->idle_timeout_ms && l->admin_max_connections;
}

uint32_t http_admin_max_connections(uint64_t nofile)
{
	uint64_t n = nofile / HTTP_ADMIN_FD_SHARE;

	if (n < 1)
		return 1;
	return n < HTTP_ADMIN_MAX_CONNECTIONS ? (uint32_t)n : HTTP_ADMIN_MAX_CONNECTIONS;
}

/* limits with the admin listener's own values in place of the app's. */
static void admin_limits_of(const struct http_limits *limits, struct http_limits *ret)
{
	*ret = (struct http_limits){
		.max_header_size = HTTP_ADMIN_MAX_HEAD,
		.max_request_body = 0,
		.max_connections = limits->admin_max_connections,
		.header_timeout_ms = HTTP_ADMIN_HEAD_MS,
		.body_timeout_ms = HTTP_ADMIN_HEAD_MS,
		.idle_timeout_ms = HTTP_ADMIN_IDLE_MS,
		.admin_max_connections = limits->admin_max_connections,
	};
}

struct http_server *http_server_new(struct event_base *base, const struct http_limits *limits,
				    http_request_cb on_request, http_gone_cb on_gone, void *arg)
{
	struct http_server *srv;

	if (!base || !limits || !on_request || !limits_ok(limits))
		return NULL;
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return NULL;
	srv->base = base;
	srv->limits = *limits;
	admin_limits_of(limits, &srv->admin_limits);
	srv->counters.admin_limit = limits->admin_max_connections;
	srv->on_request = on_request;
	srv->on_gone = on_gone;
	srv->arg = arg;
	TAILQ_INIT(&srv->idle);
	TAILQ_INIT(&srv->admin);
	TAILQ_INIT(&srv->all);
	for (int i = 0; i < HTTP_ADMIN_RESERVE; i++)
		srv->reserve[i] = -1;
	srv->fd_retry = evtimer_new(base, fd_retry_cb, srv);
	if (!srv->fd_retry) {
		free(srv);
		return NULL;
	}
	return srv;
}

void http_server_set_head_handler(struct http_server *srv, http_request_cb on_head,
				  http_body_cb on_body)
{
	/* one without the other could not hand a body over */
	if (!on_head != !on_body)
		return;
	srv->on_head = on_head;
	srv->on_body = on_body;
}

void http_server_set_admin_handler(struct http_server *srv, http_request_cb on_admin, void *arg)
{
	srv->on_admin = on_admin;
	srv->admin_arg = arg;
}

int http_server_add_listener(struct http_server *srv, int fd, enum http_listener_kind kind)
{
	struct listener *l;
	int r;

	if (srv->nlisteners == HTTP_MAX_LISTENERS) {
		close(fd);
		return -ENOSPC;
	}
	r = nonblock_or_close(fd);
	if (r < 0)
		return r;
	l = &srv->listeners[srv->nlisteners];
	l->srv = srv;
	l->fd = fd;
	l->tcp = is_tcp(fd);
	l->kind = kind;
	l->ev = event_new(srv->base, fd, EV_READ | EV_PERSIST, on_accept, l);
	if (!l->ev) {
		close(fd);
		return -ENOMEM;
	}
	srv->nlisteners++;
	if (kind == HTTP_LISTENER_ADMIN)
		http_reserve_refill(srv);
	l->active = 0;
	http_listeners_sync(srv);
	return 0;
}

void http_server_set_limits(struct http_server *srv, const struct http_limits *limits)
{
	if (!limits_ok(limits))
		return;
	srv->limits = *limits;
	/* a lower admin cap closes no connection: new ones make room */
	admin_limits_of(limits, &srv->admin_limits);
	srv->counters.admin_limit = limits->admin_max_connections;
	srv->paused_full = srv->counters.connections >= limits->max_connections;
	http_listeners_sync(srv);
}

void http_server_pause_accepting(struct http_server *srv, int paused)
{
	srv->paused_drain = !!paused;
	http_listeners_sync(srv);
}

void http_server_counters(const struct http_server *srv, struct http_counters *ret)
{
	*ret = srv->counters;
}

void http_server_free(struct http_server *srv)
{
	if (!srv)
		return;
	srv->paused_drain = 1; /* no listener comes back while connections close */
	while (!TAILQ_EMPTY(&srv->all))
		http_conn_free(TAILQ_FIRST(&srv->all));
	for (size_t i = 0; i < srv->nlisteners; i++) {
		event_free(srv->listeners[i].ev);
		close(srv->listeners[i].fd);
	}
	for (int i = 0; i < HTTP_ADMIN_RESERVE; i++)
		if (srv->reserve[i] >= 0)
			close(srv->reserve[i]);
	event_free(srv->fd_retry);
	free(srv);
}
