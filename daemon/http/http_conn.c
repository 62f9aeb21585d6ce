/* One http connection from accept to close: its explicit state and the
 * deadline of each state (one timer), one persistent read event, pipelined
 * input held while a request is answered, the hand-over of each parsed
 * request to the caller, and in head mode the flow of a body the caller
 * already has: reading only while it has room, its stall deadline. */
#include "http_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#define HTTP_PENDING_MAX (64 * 1024) /* pipelined bytes held while a request is answered */
#define HTTP_LINGER_MS 2000          /* input drained after an error reply, at most */
#define HTTP_LINGER_MAX (256 * 1024) /* bytes drained after an error reply, at most */

static void conn_feed(struct http_conn *c, const char *data, size_t len, int from_pending);
static void conn_continue(struct http_conn *c);

/* ---- connection bookkeeping ---- */

int http_buf_reserve(char **buf, size_t *cap, size_t need, size_t first, size_t max)
{
	size_t n = *cap ? *cap : first;
	char *p;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	if (n > max)
		n = max;
	p = realloc(*buf, n);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = n;
	return 0;
}

void http_conn_read(struct http_conn *c, int on)
{
	if (on == c->read_added)
		return;
	if (on)
		event_add(&c->ev_read, NULL);
	else
		event_del(&c->ev_read);
	c->read_added = on;
}

/* The deadline of state in *ret_ms; 0 for a state without one. */
static int state_deadline(const struct http_conn *c, enum conn_state state, uint32_t *ret_ms)
{
	switch (state) {
	case CONN_IDLE:
	/* a client that reads nothing holds the reply no longer than an idle
	 * connection would be held */
	case CONN_WRITE:
		*ret_ms = c->lim->idle_timeout_ms;
		return 1;
	case CONN_HEAD:
		*ret_ms = c->lim->header_timeout_ms;
		return 1;
	case CONN_BODY:
		*ret_ms = c->lim->body_timeout_ms;
		return 1;
	case CONN_LINGER:
		*ret_ms = HTTP_LINGER_MS;
		return 1;
	/* CONN_STREAM and CONN_ABORT: idle_timeout_ms per stall of the reader,
	 * armed by the writer only while bytes wait (stream_flush()) */
	default:
		return 0;
	}
}

void http_conn_set_state(struct http_conn *c, enum conn_state state)
{
	struct http_server *srv = c->srv;
	enum conn_state old = c->state;
	uint32_t ms;

	if (old == CONN_IDLE && !c->admin)
		TAILQ_REMOVE(&srv->idle, c, idle_link);
	if (old == CONN_WRITE)
		srv->counters.writing--;
	if (state == CONN_WRITE)
		srv->counters.writing++;
	if (old == CONN_STREAM) {
		srv->counters.streaming--;
		event_del(&c->ev_closed);
	}
	if (state == CONN_STREAM)
		srv->counters.streaming++;
	if (state == CONN_IDLE && !c->admin)
		TAILQ_INSERT_TAIL(&srv->idle, c, idle_link);
	c->state = state;
	if (state_deadline(c, state, &ms)) {
		struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

		event_add(&c->ev_timer, &tv);
	} else if (state_deadline(c, old, &ms)) {
		/* only a state with a deadline leaves the timer added */
		event_del(&c->ev_timer);
	}
}

/* Closes the descriptor and gives back its slot; the struct stays while the
 * caller holds its request. */
static void conn_close_fd(struct http_conn *c)
{
	struct http_server *srv = c->srv;

	if (c->fd < 0)
		return;
	http_conn_read(c, 0);
	event_del(&c->ev_write);
	event_del(&c->ev_timer);
	event_del(&c->ev_closed);
	event_del(&c->ev_body);
	close(c->fd);
	c->fd = -1;
	http_conn_set_state(c, CONN_CLOSED);
	if (c->admin) {
		TAILQ_REMOVE(&srv->admin, c, admin_link);
		srv->counters.admin_connections--;
	} else {
		srv->counters.connections--;
		if (srv->paused_full && srv->counters.connections < srv->limits.max_connections) {
			srv->paused_full = 0;
			http_listeners_sync(srv);
		}
	}
	http_reserve_refill(srv);
}

void http_conn_free(struct http_conn *c)
{
	if (!c)
		return;
	conn_close_fd(c);
	event_del(&c->ev_defer);
	TAILQ_REMOVE(&c->srv->all, c, all_link);
	evbuffer_free(c->out);
	evbuffer_free(c->body_in);
	free(c->pending);
	free(c->arena);
	free(c->hoffs);
	free(c->headers);
	free(c->body);
	free(c);
}

/* Ends the connection; the struct is freed from ev_defer, never under a
 * caller up the stack, and not before the caller's reply. */
void http_conn_close(struct http_conn *c)
{
	conn_close_fd(c);
	if (!c->req_out) {
		http_conn_set_state(c, CONN_DEAD);
		event_active(&c->ev_defer, EV_TIMEOUT, 1);
	}
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	http_reply_flush(arg);
}

/* ---- reading ---- */

static int pending_add(struct http_conn *c, const char *data, size_t len)
{
	if (c->pending_off == c->pending_len)
		c->pending_off = c->pending_len = 0;
	if (c->pending_len + len > c->pending_cap) {
		size_t cap;

		if (c->pending_off) {
			memmove(c->pending, c->pending + c->pending_off,
				c->pending_len - c->pending_off);
			c->pending_len -= c->pending_off;
			c->pending_off = 0;
		}
		/* exactly what is held: pipelined input is rare */
		cap = c->pending_len + len;
		if (http_buf_reserve(&c->pending, &c->pending_cap, cap, cap, cap) < 0)
			return -1;
	}
	memcpy(c->pending + c->pending_len, data, len);
	c->pending_len += len;
	return 0;
}

/* Hands the request over: to on_head when its head alone is read (head
 * mode, body_mode BODY_HEAD), else complete to on_request or on_admin. */
static void dispatch(struct http_conn *c)
{
	struct http_server *srv = c->srv;
	int at_head = c->body_mode == BODY_HEAD;

	http_conn_set_state(c, CONN_DISPATCH);
	if (c->admin) {
		TAILQ_REMOVE(&srv->admin, c, admin_link);
		TAILQ_INSERT_TAIL(&srv->admin, c, admin_link);
	}
	c->req_out = 1;
	c->then = c->req.keep_alive ? CONN_THEN_NEXT : CONN_THEN_CLOSE;
	srv->counters.requests++;
	if (at_head) {
		c->body_mode = BODY_ASKED;
		srv->on_head(&c->req, srv->arg);
	} else if (!c->req.admin)
		srv->on_request(&c->req, srv->arg);
	else if (srv->on_admin)
		srv->on_admin(&c->req, srv->admin_arg);
	else
		http_reply(&c->req, 404, NULL, 0, NULL, 0);
	/* A reply given inside on_request went to ev_defer: the state stays.
	 * A connection closed inside it is CONN_DEAD and stays so, for
	 * ev_defer to free. */
	if (c->state == CONN_DISPATCH)
		http_conn_set_state(c, CONN_WAIT);
	if (at_head)
		http_body_flow(c);
}

/* A held body is whole: on_request gets it, in one piece. Runs from
 * ev_defer. */
static void dispatch_held(struct http_conn *c)
{
	struct http_server *srv = c->srv;
	unsigned char *body = c->body_len ? evbuffer_pullup(c->body_in, -1) : NULL;

	if (c->body_len && !body) {
		http_body_fail(c, PROBLEM_INTERNAL);
		return;
	}
	c->req.body = (const char *)body;
	c->req.body_len = c->body_len;
	c->req.body_length = (int64_t)c->body_len;
	http_conn_set_state(c, CONN_DISPATCH);
	srv->on_request(&c->req, srv->arg);
	if (c->state == CONN_DISPATCH)
		http_conn_set_state(c, CONN_WAIT);
}

void http_body_notify(struct http_conn *c)
{
	c->body_due = 1;
	event_active(&c->ev_defer, EV_TIMEOUT, 1);
}

/* The body in head mode takes more bytes now. */
static int body_wants(const struct http_conn *c)
{
	return http_body_feeding(c) &&
	       (c->body_mode == BODY_HOLD || evbuffer_get_length(c->body_in) < c->body_room);
}

void http_body_flow(struct http_conn *c)
{
	int has_pending = c->pending_len > c->pending_off, want;

	if (c->fd < 0 || c->body_mode == BODY_NONE || c->body_mode == BODY_HEAD)
		return;
	if (c->body_mode == BODY_DISCARD) {
		http_conn_read(c, 1);
		event_del(&c->ev_closed);
		return;
	}
	if (c->body_end == HTTP_BODY_FAILED) {
		/* nothing more is parsed; the app leaving is still seen */
		http_conn_read(c, 0);
		event_add(&c->ev_closed, NULL);
		return;
	}
	if (c->body_end == HTTP_BODY_END) {
		/* pipelined input from now on, as for a request read whole */
		want = c->pending_len - c->pending_off <= HTTP_PENDING_MAX;
		http_conn_read(c, want);
		if (want || c->state != CONN_STREAM)
			event_del(&c->ev_closed);
		else
			event_add(&c->ev_closed, NULL);
		return;
	}
	want = body_wants(c);
	/* pending input goes first, in slices, from ev_defer (conn_continue) */
	http_conn_read(c, want && !has_pending);
	if (want && !has_pending)
		event_del(&c->ev_closed);
	else
		event_add(&c->ev_closed, NULL);
	if (want && has_pending)
		event_active(&c->ev_defer, EV_TIMEOUT, 1);
	if (c->body_mode != BODY_PIPE)
		return; /* a held body has one deadline, from http_body_hold() */
	/* a stall counts only while the server wants bytes: never for its
	 * own backpressure (room 0, or a full buffer) */
	if (!want) {
		event_del(&c->ev_body);
	} else if (!evtimer_pending(&c->ev_body, NULL)) {
		uint32_t ms = c->lim->body_timeout_ms;
		struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

		event_add(&c->ev_body, &tv);
	}
}

static void note_trailing(struct http_conn *c, const char *data, size_t len)
{
	for (size_t i = len; i > 0; i--)
		if (data[i - 1] != ' ' && data[i - 1] != '\t') {
			c->last_nonws = data[i - 1];
			return;
		}
}

/* Parses len bytes of input (from the shared read buffer, or the pending
 * ones when from_pending) and acts on the outcome. */
static void conn_feed(struct http_conn *c, const char *data, size_t len, int from_pending)
{
	llhttp_errno_t err;
	size_t used, had = c->body_len;

	if (c->state == CONN_IDLE) {
		http_parse_reset(c);
		http_conn_set_state(c, CONN_HEAD);
	}
	c->exec_begin = data;
	c->exec_end = data + len;
	c->span_end = NULL;
	err = llhttp_execute(&c->parser, data, len);
	if (err == HPE_OK) {
		c->feed_off += len;
		if (from_pending)
			c->pending_off += len;
		if (c->state == CONN_HEAD) {
			c->head_bytes += len;
			if (c->head_bytes > c->lim->max_header_size) {
				http_reply_fail(c, PROBLEM_HEADERS_TOO_LARGE);
				return;
			}
			note_trailing(c, data, len);
		}
		if (c->body_mode == BODY_HEAD)
			dispatch(c);
		else if (c->body_mode == BODY_PIPE && c->body_len > had)
			http_body_notify(c);
		return;
	}
	if (err == HPE_PAUSED) {
		used = (size_t)(llhttp_get_error_pos(&c->parser) - data);
		if (from_pending) {
			c->pending_off += used;
		} else if (used < len && pending_add(c, data + used, len - used) < 0) {
			http_conn_close(c);
			return;
		}
		if (c->body_mode == BODY_NONE) {
			dispatch(c);
			return;
		}
		c->body_end = HTTP_BODY_END;
		if (c->body_mode == BODY_HEAD) {
			dispatch(c);
			return;
		}
		/* trailers may have said Connection: close */
		if (!c->req.keep_alive && c->then == CONN_THEN_NEXT)
			c->then = CONN_THEN_CLOSE;
		event_del(&c->ev_body);
		http_body_flow(c);
		http_body_notify(c);
		return;
	}
	if (http_body_feeding(c)) {
		/* the caller has the request: it answers the failure */
		http_body_fail(c, c->has_error ? c->error : PROBLEM_BAD_REQUEST);
		return;
	}
	if (c->has_error) {
		/* a callback's own verdict, whatever code llhttp reports it with */
		http_reply_fail(c, c->error);
		return;
	}
	http_reply_fail(c, PROBLEM_BAD_REQUEST);
}

void http_conn_gone(struct http_conn *c)
{
	struct http_server *srv = c->srv;

	if ((c->state == CONN_WAIT || c->state == CONN_STREAM) && c->req_out) {
		c->req.gone = 1;
		srv->counters.gone++;
		conn_close_fd(c);
		if (srv->on_gone)
			srv->on_gone(&c->req, srv->arg);
		return;
	}
	http_conn_close(c);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;
	struct http_server *srv = c->srv;
	ssize_t n;

	(void)what;
	n = read(fd, srv->rbuf, sizeof(srv->rbuf));
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		if (c->state == CONN_IDLE)
			srv->counters.idle_closed++;
		http_conn_gone(c);
		return;
	}
	switch (c->state) {
	case CONN_LINGER:
		c->head_bytes += (uint64_t)n;
		if (c->head_bytes > HTTP_LINGER_MAX)
			http_conn_close(c);
		return;
	case CONN_DISPATCH:
	case CONN_WAIT:
	case CONN_WRITE:
	case CONN_STREAM:
		if (c->body_mode == BODY_DISCARD) {
			/* the rest of a body answered early, bounded as lingering is */
			c->head_bytes += (uint64_t)n;
			if (c->head_bytes > HTTP_LINGER_MAX)
				http_conn_close(c);
			return;
		}
		/* a read already under way when the room filled is kept pending,
		 * so the buffer never passes its room by more than one read */
		if (body_wants(c) && c->pending_len == c->pending_off) {
			size_t had = c->body_len;

			conn_feed(c, srv->rbuf, (size_t)n, 0);
			if (c->body_mode == BODY_PIPE && c->body_len > had)
				event_del(&c->ev_body); /* progress: a new stall starts */
			http_body_flow(c);
			return;
		}
		/* pipelined: kept until the reply is out; a client that sends
		 * more than HTTP_PENDING_MAX ahead is read no further until then */
		if (pending_add(c, srv->rbuf, (size_t)n) < 0) {
			http_conn_close(c);
			return;
		}
		if (http_body_feeding(c)) {
			http_body_flow(c); /* a body's bytes behind pending ones */
			return;
		}
		if (c->pending_len - c->pending_off > HTTP_PENDING_MAX) {
			http_conn_read(c, 0);
			/* a stream may last: its app leaving must still be seen */
			if (c->state == CONN_STREAM)
				event_add(&c->ev_closed, NULL);
		}
		return;
	case CONN_ABORT:
		return; /* dies with the connection */
	case CONN_IDLE:
	case CONN_HEAD:
	case CONN_BODY:
		if (c->pending_len > c->pending_off) {
			/* pipelined bytes wait for ev_defer: these go after them */
			if (pending_add(c, srv->rbuf, (size_t)n) < 0) {
				http_conn_close(c);
				return;
			}
			conn_continue(c);
			return;
		}
		conn_feed(c, srv->rbuf, (size_t)n, 0);
		return;
	case CONN_CLOSED:
	case CONN_DEAD:
		return;
	}
}

/* The deadline of a held body, or the stall of a piped one, passed. */
static void on_body_timer(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;

	(void)fd;
	(void)what;
	if (http_body_feeding(c))
		http_body_fail(c, PROBLEM_REQUEST_TIMEOUT);
}

static void on_closed(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	http_conn_gone(arg);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;

	(void)fd;
	(void)what;
	switch (c->state) {
	case CONN_HEAD:
	case CONN_BODY:
		http_reply_fail(c, PROBLEM_REQUEST_TIMEOUT);
		return;
	case CONN_IDLE:
		c->srv->counters.idle_closed++;
		http_conn_close(c);
		return;
	case CONN_STREAM:
		http_conn_gone(c); /* a reader that took nothing for a whole stall */
		return;
	case CONN_WRITE:
	case CONN_ABORT:
		http_reply_cut(c);
		return;
	default:
		http_conn_close(c);
		return;
	}
}

/* Parses pipelined input after a reply, and the pending bytes of a body in
 * head mode while it has room; runs from ev_defer. */
static void conn_continue(struct http_conn *c)
{
	while (c->fd >= 0 && c->pending_len > c->pending_off &&
	       (c->state == CONN_IDLE || c->state == CONN_HEAD || c->state == CONN_BODY ||
		body_wants(c))) {
		size_t n = c->pending_len - c->pending_off;

		/* in head mode a body may start in these bytes: fed a read's
		 * worth at a time, so its buffer passes its room by less than
		 * a read, as from the socket */
		if (c->srv->on_head && n > HTTP_READ_CHUNK)
			n = HTTP_READ_CHUNK;
		conn_feed(c, c->pending + c->pending_off, n, 1);
	}
	if (c->fd < 0)
		return;
	if (c->body_mode != BODY_NONE && c->body_mode != BODY_HEAD) {
		http_body_flow(c);
		return;
	}
	if (c->state != CONN_WAIT && c->state != CONN_WRITE && c->state != CONN_STREAM &&
	    c->state != CONN_ABORT && c->state != CONN_CLOSED)
		http_conn_read(c, 1);
}

static void on_defer(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;

	(void)fd;
	(void)what;
	if (c->state == CONN_DEAD) {
		http_conn_free(c);
		return;
	}
	if (c->state == CONN_CLOSED)
		return;
	if (c->body_due) {
		struct http_server *srv = c->srv;

		c->body_due = 0;
		if (c->req_out && c->body_mode == BODY_HOLD && c->body_end == HTTP_BODY_END &&
		    c->state == CONN_WAIT)
			dispatch_held(c);
		else if (c->req_out && (c->body_mode == BODY_PIPE || c->body_mode == BODY_HOLD))
			srv->on_body(&c->req, srv->arg);
		/* the rest of this work on the next turn, from the new state */
		event_active(&c->ev_defer, EV_TIMEOUT, 1);
		return;
	}
	if (http_body_feeding(c) && c->pending_len > c->pending_off) {
		conn_continue(c);
		if (c->state == CONN_DEAD || c->state == CONN_CLOSED || c->body_due)
			return; /* ev_defer runs again */
	}
	if (c->state == CONN_STREAM || c->state == CONN_ABORT) {
		http_stream_deferred(c);
		return;
	}
	if (c->state == CONN_WAIT && !c->req_out && evbuffer_get_length(c->out)) {
		http_reply_flush(c); /* a reply given inside on_request */
		return;
	}
	conn_continue(c);
}

struct http_conn *http_conn_new(struct http_server *srv, int fd, int admin)
{
	struct http_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->out = evbuffer_new();
	c->body_in = evbuffer_new();
	if (!c->out || !c->body_in) {
		if (c->out)
			evbuffer_free(c->out);
		if (c->body_in)
			evbuffer_free(c->body_in);
		free(c);
		return NULL;
	}
	c->srv = srv;
	TAILQ_INSERT_TAIL(&srv->all, c, all_link);
	c->fd = fd;
	c->admin = admin;
	c->lim = admin ? &srv->admin_limits : &srv->limits;
	if (admin)
		TAILQ_INSERT_TAIL(&srv->admin, c, admin_link);
	event_assign(&c->ev_read, srv->base, fd, EV_READ | EV_PERSIST, on_read, c);
	event_assign(&c->ev_write, srv->base, fd, EV_WRITE, on_write, c);
	evtimer_assign(&c->ev_timer, srv->base, on_timer, c);
	event_assign(&c->ev_defer, srv->base, -1, 0, on_defer, c);
	event_assign(&c->ev_closed, srv->base, fd, EV_CLOSED, on_closed, c);
	evtimer_assign(&c->ev_body, srv->base, on_body_timer, c);
	http_parse_init(c);
	http_parse_reset(c);
	c->state = CONN_CLOSED;
	http_conn_set_state(c, CONN_IDLE);
	http_conn_read(c, 1);
	return c;
}
