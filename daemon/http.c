/* braced's own HTTP/1.1 server on llhttp: one struct http_conn per client
 * connection with an explicit state, one persistent read event, direct
 * writes (a write event only after EAGAIN), one timer for the deadline of the
 * current state, and the limits of struct http_limits. */
#include "http.h"
#include "headers.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <llhttp.h>

#include "problem.h"

#define HTTP_READ_CHUNK (16 * 1024)  /* one read(); a buffer shared by the server */
#define HTTP_PENDING_MAX (64 * 1024) /* pipelined bytes held while a request is answered */
#define HTTP_ACCEPT_BATCH 32         /* accepts per listener wake-up */
#define HTTP_ADMIN_RESERVE 4         /* descriptors held back for admin accepts */
#define HTTP_FD_RETRY_MS 100         /* accept pause when descriptors ran out */
#define HTTP_LINGER_MS 2000          /* input drained after an error reply, at most */
#define HTTP_LINGER_MAX (256 * 1024) /* bytes drained after an error reply, at most */
#define HTTP_MAX_LISTENERS 16
#define HTTP_BODY_PREALLOC (64 * 1024) /* body bytes reserved on Content-Length */
#define HTTP_BODY_INLINE (16 * 1024)   /* reply bodies copied next to the head */
/* The largest body length taken (curl_off_t's range): a chunk size that
 * takes a body past it overflows (400). */
#define HTTP_BODY_MAX ((uint64_t)INT64_MAX)
/* "HTTP/" between the target's SP and the version digits */
#define HTTP_VERSION_PREFIX 5

enum conn_state {
	CONN_IDLE,   /* waiting for the first byte of a request */
	CONN_HEAD,   /* reading the request head */
	CONN_BODY,   /* reading the request body */
	CONN_WAIT,   /* the request is with the caller */
	CONN_WRITE,  /* the reply waits for the socket to drain */
	CONN_LINGER, /* error reply sent, write side shut: discarding input */
	CONN_CLOSED, /* descriptor closed; kept until the caller's reply */
};

struct listener {
	struct http_server *srv;
	int fd;
	enum http_listener_kind kind;
	struct event *ev;
	int active;
};

struct hdr_off {
	uint32_t name_off, name_len, value_off, value_len;
};

struct http_conn {
	struct http_server *srv;
	const struct http_limits *lim; /* the server's app or admin limits */
	int fd;
	int admin;
	enum conn_state state;
	struct event ev_read, ev_write, ev_timer, ev_defer;
	int read_on;     /* ev_read is added */
	int dead;        /* free from ev_defer */
	int dispatching; /* inside on_request: replies are finished from ev_defer */
	llhttp_t parser;
	struct evbuffer *out;
	int close_after; /* close once the reply is written */
	int linger;      /* close through CONN_LINGER (an error reply) */

	/* pipelined input not parsed yet */
	char *pending;
	size_t pending_off, pending_len, pending_cap;

	/* the head being parsed: target, names and values copied in arena */
	char *arena;
	size_t arena_len, arena_cap;
	uint64_t head_bytes; /* raw head bytes before the current read */
	/* Request line layout, as offsets from the request's first byte:
	 * where the method ends, the target starts and ends (RFC 9112 3: one
	 * SP between the three parts). feed_off is the offset of exec_begin. */
	uint64_t feed_off, method_end, target_start, target_end;
	uint64_t trailer_bytes;
	struct hdr_off *hoffs;
	size_t nh, hcap;
	struct http_header *headers;
	int in_value;
	uint32_t target_len;
	const char *exec_begin, *exec_end, *span_end;
	char last_nonws; /* last byte that is not SP/HTAB before the current read */
	enum problem_code error;
	const char *error_detail; /* static text for the problem, or NULL */
	int has_error;

	char *body;
	size_t body_len, body_cap;

	struct http_request req;
	int req_out; /* req is with the caller until http_reply */

	TAILQ_ENTRY(http_conn) idle_link;
	int in_idle;
	TAILQ_ENTRY(http_conn) admin_link; /* open admin connections, least recently used first */
	TAILQ_ENTRY(http_conn) all_link;
};

TAILQ_HEAD(conn_list, http_conn);

struct http_server {
	struct event_base *base;
	struct http_limits limits;
	struct http_limits admin_limits; /* the HTTP_ADMIN_* ones and limits' admin cap */
	http_request_cb on_request;
	http_gone_cb on_gone;
	void *arg;
	struct listener listeners[HTTP_MAX_LISTENERS];
	size_t nlisteners;
	int paused_full, paused_drain, paused_fd;
	struct event *fd_retry;
	int reserve[HTTP_ADMIN_RESERVE];
	struct conn_list idle;  /* app connections in CONN_IDLE, oldest first */
	struct conn_list admin; /* open admin connections, least recently used first */
	struct conn_list all;
	struct http_counters counters;
	char rbuf[HTTP_READ_CHUNK];
};

static void conn_close(struct http_conn *c);
static void conn_fail(struct http_conn *c, enum problem_code code);
static void conn_feed(struct http_conn *c, const char *data, size_t len, int from_pending);
static void conn_continue(struct http_conn *c);
static int ieq(const char *a, size_t alen, const char *b);

/* ---- listeners and descriptors ---- */

static int listener_should_run(const struct http_server *srv, const struct listener *l)
{
	if (l->kind == HTTP_LISTENER_ADMIN)
		return 1;
	return !srv->paused_full && !srv->paused_drain && !srv->paused_fd;
}

/* Adds or removes listener events after a pause changed: epoll_ctl only here,
 * at the limits, never per request. */
static void listeners_sync(struct http_server *srv)
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

static void reserve_refill(struct http_server *srv)
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
	listeners_sync(srv);
}

/* ---- connection bookkeeping ---- */

static void idle_enter(struct http_conn *c)
{
	if (!c->admin && !c->in_idle) {
		TAILQ_INSERT_TAIL(&c->srv->idle, c, idle_link);
		c->in_idle = 1;
	}
}

static void idle_leave(struct http_conn *c)
{
	if (c->in_idle) {
		TAILQ_REMOVE(&c->srv->idle, c, idle_link);
		c->in_idle = 0;
	}
}

static void timer_set(struct http_conn *c, uint32_t ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	event_add(&c->ev_timer, &tv);
}

/* Moves c to state; the deadline of the new state starts now. */
static void conn_set_state(struct http_conn *c, enum conn_state state)
{
	const struct http_limits *lim = c->lim;

	if (c->state == CONN_IDLE)
		idle_leave(c);
	if (c->state == CONN_WRITE)
		c->srv->counters.writing--;
	if (state == CONN_WRITE)
		c->srv->counters.writing++;
	c->state = state;
	switch (state) {
	case CONN_IDLE:
		idle_enter(c);
		timer_set(c, lim->idle_timeout_ms);
		break;
	case CONN_HEAD:
		timer_set(c, lim->header_timeout_ms);
		break;
	case CONN_BODY:
		timer_set(c, lim->body_timeout_ms);
		break;
	case CONN_WRITE:
		/* a client that reads nothing holds the reply no longer than an
		 * idle connection would be held */
		timer_set(c, lim->idle_timeout_ms);
		break;
	case CONN_LINGER:
		timer_set(c, HTTP_LINGER_MS);
		break;
	case CONN_WAIT:
	case CONN_CLOSED:
		event_del(&c->ev_timer);
		break;
	}
}

static void request_storage_reset(struct http_conn *c)
{
	free(c->body);
	c->body = NULL;
	c->body_len = c->body_cap = 0;
	c->arena_len = 0;
	c->nh = 0;
	c->in_value = 0;
	c->target_len = 0;
	c->head_bytes = 0;
	c->feed_off = c->method_end = c->target_start = c->target_end = 0;
	c->trailer_bytes = 0;
	c->has_error = 0;
	c->error_detail = NULL;
	c->span_end = NULL;
	c->last_nonws = 0;
	memset(&c->req, 0, sizeof(c->req));
	c->req.conn = c;
	c->req.admin = c->admin;
}

/* Closes the descriptor and gives back its slot; the struct stays while the
 * caller holds its request. */
static void conn_close_fd(struct http_conn *c)
{
	struct http_server *srv = c->srv;

	if (c->fd < 0)
		return;
	idle_leave(c);
	event_del(&c->ev_read);
	event_del(&c->ev_write);
	event_del(&c->ev_timer);
	close(c->fd);
	c->fd = -1;
	conn_set_state(c, CONN_CLOSED);
	if (c->admin) {
		TAILQ_REMOVE(&srv->admin, c, admin_link);
		srv->counters.admin_connections--;
	} else {
		srv->counters.connections--;
		if (srv->paused_full && srv->counters.connections < srv->limits.max_connections) {
			srv->paused_full = 0;
			listeners_sync(srv);
		}
	}
	reserve_refill(srv);
}

static void conn_free(struct http_conn *c)
{
	if (!c)
		return;
	conn_close_fd(c);
	event_del(&c->ev_defer);
	TAILQ_REMOVE(&c->srv->all, c, all_link);
	evbuffer_free(c->out);
	free(c->pending);
	free(c->arena);
	free(c->hoffs);
	free(c->headers);
	free(c->body);
	free(c);
}

/* Ends the connection; the struct is freed from ev_defer, never under a
 * caller up the stack, and not before the caller's reply. */
static void conn_close(struct http_conn *c)
{
	conn_close_fd(c);
	if (!c->req_out) {
		c->dead = 1;
		event_active(&c->ev_defer, EV_TIMEOUT, 1);
	}
}

/* ---- writing ---- */

static void reply_done(struct http_conn *c)
{
	if (c->close_after) {
		if (c->linger) {
			shutdown(c->fd, SHUT_WR);
			c->head_bytes = 0;
			conn_set_state(c, CONN_LINGER);
			if (!c->read_on) {
				event_add(&c->ev_read, NULL);
				c->read_on = 1;
			}
			return;
		}
		conn_close(c);
		return;
	}
	request_storage_reset(c);
	llhttp_resume(&c->parser);
	conn_set_state(c, CONN_IDLE);
	if (!c->read_on) {
		event_add(&c->ev_read, NULL);
		c->read_on = 1;
	}
	if (c->pending_len > c->pending_off)
		event_active(&c->ev_defer, EV_TIMEOUT, 1);
}

static void conn_flush(struct http_conn *c)
{
	int n = evbuffer_write(c->out, c->fd);

	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
		conn_close(c);
		return;
	}
	if (evbuffer_get_length(c->out) > 0) {
		if (c->state != CONN_WRITE)
			conn_set_state(c, CONN_WRITE);
		event_add(&c->ev_write, NULL);
		return;
	}
	reply_done(c);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_flush(arg);
}

static int value_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
			return 0;
	return 1;
}

static const char *reason_phrase(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 203:
		return "Non-Authoritative Information";
	case 204:
		return "No Content";
	case 205:
		return "Reset Content";
	case 206:
		return "Partial Content";
	case 207:
		return "Multi-Status";
	case 208:
		return "Already Reported";
	case 226:
		return "IM Used";
	case 300:
		return "Multiple Choices";
	case 301:
		return "Moved Permanently";
	case 302:
		return "Found";
	case 303:
		return "See Other";
	case 304:
		return "Not Modified";
	case 305:
		return "Use Proxy";
	case 307:
		return "Temporary Redirect";
	case 308:
		return "Permanent Redirect";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 402:
		return "Payment Required";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 406:
		return "Not Acceptable";
	case 407:
		return "Proxy Authentication Required";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 410:
		return "Gone";
	case 411:
		return "Length Required";
	case 412:
		return "Precondition Failed";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 415:
		return "Unsupported Media Type";
	case 416:
		return "Range Not Satisfiable";
	case 417:
		return "Expectation Failed";
	case 421:
		return "Misdirected Request";
	case 422:
		return "Unprocessable Content";
	case 423:
		return "Locked";
	case 424:
		return "Failed Dependency";
	case 425:
		return "Too Early";
	case 426:
		return "Upgrade Required";
	case 428:
		return "Precondition Required";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 451:
		return "Unavailable For Legal Reasons";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	case 505:
		return "HTTP Version Not Supported";
	case 506:
		return "Variant Also Negotiates";
	case 507:
		return "Insufficient Storage";
	case 508:
		return "Loop Detected";
	case 511:
		return "Network Authentication Required";
	default:
		return "";
	}
}

static void body_free_cb(const void *data, size_t len, void *arg)
{
	(void)len;
	(void)arg;
	free((void *)data);
}

static char *put(char *p, const void *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

static char *put_uint(char *p, uint64_t v)
{
	char tmp[24];
	size_t i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return put(p, tmp + i, sizeof(tmp) - i);
}

/* Queues the reply on c->out, taking body, and writes it. The head, and a
 * body up to HTTP_BODY_INLINE bytes, go into one contiguous block: one
 * iovec, no chain of its own for a small body. */
/* "Date: " IMF-fixdate CRLF for now, made once a second. */
#define HTTP_DATE_LINE_LEN (6 + 29 + 2)
static const char *date_line(void)
{
	static char line[HTTP_DATE_LINE_LEN + 1];
	static time_t made = -1;
	time_t now = time(NULL);
	struct tm tm;

	if (now != made && gmtime_r(&now, &tm)) {
		strftime(line, sizeof(line), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
		made = now;
	}
	return line;
}

static void conn_send(struct http_conn *c, int status, const struct http_header *headers,
		      size_t nheaders, void *body, size_t body_len, struct evbuffer *src)
{
	const char *reason = reason_phrase(status);
	int is_head = c->req.method && !strcmp(c->req.method, "HEAD");
	int head_only = is_head || status == 204 || status == 304;
	int caller_length = 0, caller_date = 0, send_length, inline_body;
	size_t reason_len = strlen(reason), need;
	struct evbuffer_iovec vec;
	char *p;

	if (src)
		body_len = evbuffer_get_length(src);
	if (c->state == CONN_CLOSED) {
		free(body);
		return;
	}
	for (size_t i = 0; i < nheaders; i++) {
		if (is_head && ieq(headers[i].name, headers[i].name_len, "Content-Length"))
			caller_length = 1;
		if (ieq(headers[i].name, headers[i].name_len, "Date"))
			caller_date = 1;
	}
	send_length = status != 204 && status != 304 && !(is_head && caller_length);
	if (head_only || !body_len) {
		free(body);
		body = NULL;
		src = NULL;
	}
	inline_body = (body || src) && body_len <= HTTP_BODY_INLINE;
	/* "HTTP/1.1 " status " " reason CRLF, the headers, Content-Length,
	 * Connection, the blank line: 24 digits per number at most. */
	need = 9 + 24 + 1 + reason_len + 2 + 16 + 24 + 2 + 24 + 2 + HTTP_DATE_LINE_LEN +
	       (inline_body ? body_len : 0);
	for (size_t i = 0; i < nheaders; i++)
		need += headers[i].name_len + 2 + headers[i].value_len + 2;
	if (evbuffer_reserve_space(c->out, (ev_ssize_t)need, &vec, 1) < 1 || vec.iov_len < need) {
		free(body);
		conn_close(c);
		return;
	}
	p = vec.iov_base;
	p = put(p, "HTTP/1.1 ", 9);
	p = put_uint(p, (uint64_t)status);
	p = put(p, " ", 1);
	p = put(p, reason, reason_len);
	p = put(p, "\r\n", 2);
	for (size_t i = 0; i < nheaders; i++) {
		/* only a HEAD answer may say how long the GET one would be */
		if (!is_head && ieq(headers[i].name, headers[i].name_len, "Content-Length"))
			continue;
		p = put(p, headers[i].name, headers[i].name_len);
		p = put(p, ": ", 2);
		p = put(p, headers[i].value, headers[i].value_len);
		p = put(p, "\r\n", 2);
	}
	/* braced's own answers, and relayed ones that lack it (RFC 9110
	 * 6.6.1: a recipient with a clock adds it when forwarding). */
	if (!caller_date)
		p = put(p, date_line(), HTTP_DATE_LINE_LEN);
	if (send_length) {
		p = put(p, "Content-Length: ", 16);
		p = put_uint(p, body_len);
		p = put(p, "\r\n", 2);
	}
	if (c->close_after)
		p = put(p, "Connection: close\r\n", 19);
	else if (c->req.version_minor == 0)
		p = put(p, "Connection: keep-alive\r\n", 24);
	p = put(p, "\r\n", 2);
	if (inline_body && src) {
		p += evbuffer_remove(src, p, body_len);
		src = NULL;
	} else if (inline_body) {
		p = put(p, body, body_len);
		free(body);
		body = NULL;
	}
	vec.iov_len = (size_t)(p - (char *)vec.iov_base);
	evbuffer_commit_space(c->out, &vec, 1);
	if (body)
		evbuffer_add_reference(c->out, body, body_len, body_free_cb, NULL);
	else if (src)
		evbuffer_add_buffer(c->out, src); /* moves the chains: no copy */
	if (c->dispatching) {
		/* on_request answered at once: write after it returns */
		event_active(&c->ev_defer, EV_TIMEOUT, 1);
		return;
	}
	conn_flush(c);
}

/* Answers c's current (possibly partial) request with a problem and closes. */
static void conn_fail(struct http_conn *c, enum problem_code code)
{
	struct http_server *srv = c->srv;
	struct problem p;
	struct http_header h[2];
	const char *name = problem_code_name(code);
	size_t len = 0;
	char *body;

	switch (code) {
	case PROBLEM_REQUEST_TIMEOUT:
		srv->counters.timeouts++;
		break;
	case PROBLEM_PAYLOAD_TOO_LARGE:
	case PROBLEM_HEADERS_TOO_LARGE:
		srv->counters.too_large++;
		break;
	case PROBLEM_NOT_IMPLEMENTED:
		srv->counters.not_implemented++;
		break;
	default:
		srv->counters.bad_requests++;
		break;
	}
	problem_init(&p, code);
	p.detail = c->error_detail;
	body = problem_render(&p, &len);
	h[0] = (struct http_header){ "Content-Type", 12, "application/problem+json", 24 };
	h[1] = (struct http_header){ "Brace-Error", 11, name, strlen(name) };
	c->close_after = 1;
	c->linger = 1;
	if (c->read_on) {
		/* the rest of the input is not parsed: stop reading until the
		 * reply is out, then drain it while lingering */
		event_del(&c->ev_read);
		c->read_on = 0;
	}
	c->pending_off = c->pending_len = 0;
	conn_send(c, problem_code_status(code), h, 2, body, body ? len : 0, NULL);
}

/* ---- llhttp callbacks: copy the head, check every rule ---- */

#define CONN_OF(p) ((struct http_conn *)(p)->data)

static int fail_user(struct http_conn *c, enum problem_code code)
{
	c->error = code;
	c->has_error = 1;
	return HPE_USER;
}

/* fail_user() with a problem detail (static text) saying why. */
static int fail_why(struct http_conn *c, enum problem_code code, const char *detail)
{
	c->error_detail = detail;
	return fail_user(c, code);
}

static int arena_add(struct http_conn *c, const char *at, size_t len)
{
	size_t need = c->arena_len + len + 1;

	if (need > c->lim->max_header_size + 1)
		return -1;
	if (need > c->arena_cap) {
		size_t cap = c->arena_cap ? c->arena_cap : 1024;
		char *p;

		while (cap < need)
			cap *= 2;
		p = realloc(c->arena, cap);
		if (!p)
			return -1;
		c->arena = p;
		c->arena_cap = cap;
	}
	memcpy(c->arena + c->arena_len, at, len);
	c->arena_len += len;
	return 0;
}

static void span_seen(struct http_conn *c, const char *at, size_t len)
{
	if (at + len > c->exec_begin && at + len <= c->exec_end)
		c->span_end = at + len;
}

static int cb_message_begin(llhttp_t *p)
{
	struct http_conn *c = CONN_OF(p);

	(void)c;
	return 0;
}

/* Offset of at, a byte of the current llhttp_execute() input, from the
 * request's first byte. */
static uint64_t req_pos(const struct http_conn *c, const char *at)
{
	return c->feed_off + (uint64_t)(at - c->exec_begin);
}

/* llhttp 8.1 skips any run of SP after the method and after the target;
 * RFC 9112 3 has exactly one, and a server that takes more reads a line
 * another parser on the path may split differently. */
static int cb_method(llhttp_t *p, const char *at, size_t len)
{
	struct http_conn *c = CONN_OF(p);

	c->method_end = req_pos(c, at + len);
	return 0;
}

static int cb_url(llhttp_t *p, const char *at, size_t len)
{
	struct http_conn *c = CONN_OF(p);

	if (!c->target_start) {
		c->target_start = req_pos(c, at);
		if (c->target_start != c->method_end + 1)
			return fail_why(
			    c, PROBLEM_BAD_REQUEST,
			    "the request line needs exactly one space after the method");
	}
	c->target_end = req_pos(c, at + len);
	span_seen(c, at, len);
	if (arena_add(c, at, len) < 0)
		return fail_user(c, PROBLEM_HEADERS_TOO_LARGE);
	c->target_len += (uint32_t)len;
	return 0;
}

static int cb_url_complete(llhttp_t *p)
{
	struct http_conn *c = CONN_OF(p);

	/* the target is the arena's first string: NUL-terminate it */
	if (arena_add(c, "", 1) < 0)
		return fail_user(c, PROBLEM_HEADERS_TOO_LARGE);
	return 0;
}

/* The version digits start right after "HTTP/" and the target's one SP;
 * the first piece of the span is enough. */
static int cb_version(llhttp_t *p, const char *at, size_t len)
{
	struct http_conn *c = CONN_OF(p);

	(void)len;
	if (c->target_end && req_pos(c, at) != c->target_end + 1 + HTTP_VERSION_PREFIX)
		return fail_why(c, PROBLEM_BAD_REQUEST,
				"the request line needs exactly one space before HTTP/1.x");
	c->target_end = 0; /* later pieces of the span (another read) are not looked at */
	return 0;
}

static int trailer_bytes(struct http_conn *c, size_t len)
{
	c->trailer_bytes += len;
	if (c->trailer_bytes > c->lim->max_header_size)
		return fail_user(c, PROBLEM_HEADERS_TOO_LARGE);
	return 0;
}

static int cb_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct http_conn *c = CONN_OF(p);

	if (c->state == CONN_BODY)
		return trailer_bytes(c, len); /* trailers are not kept */
	span_seen(c, at, len);
	if (c->nh == 0 || c->in_value) {
		if (c->nh == c->hcap) {
			size_t cap = c->hcap ? c->hcap * 2 : 16;
			struct hdr_off *h = realloc(c->hoffs, cap * sizeof(*h));

			if (!h)
				return fail_user(c, PROBLEM_INTERNAL);
			c->hoffs = h;
			c->hcap = cap;
		}
		c->hoffs[c->nh++] = (struct hdr_off){ (uint32_t)c->arena_len, 0, 0, 0 };
		c->in_value = 0;
	}
	if (arena_add(c, at, len) < 0)
		return fail_user(c, PROBLEM_HEADERS_TOO_LARGE);
	c->hoffs[c->nh - 1].name_len += (uint32_t)len;
	return 0;
}

/* obs-fold: a value piece whose nearest byte before it, past SP and HTAB,
 * is a LF, in this read or at the end of the previous one. llhttp 8.1 joins
 * folded lines without a lenient flag; RFC 9112 5.2 lets a server reject.
 * Empty pieces are not looked at: llhttp reports an empty value after the
 * line's CRLF, and a fold that adds no byte changes no value. */
static int is_fold(const struct http_conn *c, const char *at)
{
	const char *q = at;

	while (q > c->exec_begin && (q[-1] == ' ' || q[-1] == '\t'))
		q--;
	if (q > c->exec_begin)
		return q[-1] == '\n';
	return c->last_nonws == '\n';
}

/* Ends a name with a NUL in the arena, so callers may read it as a string. */
static int cb_header_field_complete(llhttp_t *p)
{
	struct http_conn *c = CONN_OF(p);

	if (c->state == CONN_BODY)
		return 0;
	if (arena_add(c, "", 1) < 0)
		return fail_user(c, PROBLEM_HEADERS_TOO_LARGE);
	return 0;
}

static int cb_header_value(llhttp_t *p, const char *at, size_t len)
{
	struct http_conn *c = CONN_OF(p);
	struct hdr_off *h;

	if (c->state == CONN_BODY)
		return trailer_bytes(c, len);
	span_seen(c, at, len);
	if (len && is_fold(c, at))
		return fail_user(c, PROBLEM_BAD_REQUEST);
	h = &c->hoffs[c->nh - 1];
	if (!c->in_value) {
		h->value_off = (uint32_t)c->arena_len;
		h->value_len = 0;
		c->in_value = 1;
	}
	if (arena_add(c, at, len) < 0)
		return fail_user(c, PROBLEM_HEADERS_TOO_LARGE);
	h->value_len += (uint32_t)len;
	return 0;
}

static int cb_header_value_complete(llhttp_t *p)
{
	struct http_conn *c = CONN_OF(p);
	struct hdr_off *h;

	if (c->state == CONN_BODY)
		return 0;
	h = &c->hoffs[c->nh - 1];
	if (!c->in_value) {
		/* an empty value gets no value span */
		h->value_off = (uint32_t)c->arena_len;
		h->value_len = 0;
		c->in_value = 1;
	}
	/* the NUL after the value, written over trailing whitespace if any:
	 * the arena never outgrows the raw head (": " and CRLF are not kept) */
	if (arena_add(c, "", 1) < 0)
		return fail_user(c, PROBLEM_HEADERS_TOO_LARGE);
	while (h->value_len && (c->arena[h->value_off + h->value_len - 1] == ' ' ||
				c->arena[h->value_off + h->value_len - 1] == '\t'))
		h->value_len--;
	c->arena[h->value_off + h->value_len] = '\0';
	return 0;
}

static int ieq(const char *a, size_t alen, const char *b)
{
	return alen == strlen(b) && strncasecmp(a, b, alen) == 0;
}

static int build_headers(struct http_conn *c)
{
	struct http_header *hs = NULL;

	if (c->nh) {
		hs = realloc(c->headers, c->nh * sizeof(*hs));
		if (!hs)
			return -1;
		c->headers = hs;
	}
	for (size_t i = 0; i < c->nh; i++) {
		const struct hdr_off *o = &c->hoffs[i];

		if (!headers_name_ok(c->arena + o->name_off, o->name_len))
			return -2;
		hs[i] = (struct http_header){ c->arena + o->name_off, o->name_len,
					      c->arena + o->value_off, o->value_len };
	}
	c->req.headers = hs;
	c->req.nheaders = c->nh;
	return 0;
}

/* Transfer-Encoding, all its fields read as one list (RFC 9110 5.3; empty
 * elements are skipped): TE_OK when absent or exactly "chunked", once and
 * last; TE_CODING when another coding comes before it (braced would have
 * to forward the body without its label); TE_BAD otherwise. */
enum te_verdict { TE_OK, TE_CODING, TE_BAD };

static enum te_verdict te_check(const struct http_header *hs, size_t n)
{
	size_t fields = 0, codings = 0, chunked = 0, chunked_at = 0;

	for (size_t i = 0; i < n; i++) {
		const char *v = hs[i].value, *end = v + hs[i].value_len;

		if (!ieq(hs[i].name, hs[i].name_len, "Transfer-Encoding"))
			continue;
		fields++;
		for (;;) {
			const char *comma = memchr(v, ',', (size_t)(end - v));
			const char *a = v, *b = comma ? comma : end;

			while (a < b && (*a == ' ' || *a == '\t'))
				a++;
			while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
				b--;
			if (a < b)
				codings++;
			if (a < b && ieq(a, (size_t)(b - a), "chunked")) {
				chunked++;
				chunked_at = codings;
			}
			if (!comma)
				break;
			v = comma + 1;
		}
	}
	if (!fields)
		return TE_OK;
	if (chunked != 1 || chunked_at != codings)
		return TE_BAD;
	return codings > 1 ? TE_CODING : TE_OK;
}

/* The head rules llhttp 8.1 leaves to its caller: Host (RFC 9112 3.2:
 * exactly one on HTTP/1.1, at most one on HTTP/1.0) and Transfer-Encoding
 * (te_check; none on HTTP/1.0, RFC 9112 6.1). Returns 0, or fail_why()'s
 * HPE_USER with the refusal. */
static int head_check(struct http_conn *c)
{
	const struct http_request *req = &c->req;
	enum te_verdict te = te_check(req->headers, req->nheaders);
	size_t hosts = 0;

	for (size_t i = 0; i < req->nheaders; i++)
		hosts += ieq(req->headers[i].name, req->headers[i].name_len, "Host");
	if (hosts > 1)
		return fail_why(c, PROBLEM_BAD_REQUEST, "more than one Host header");
	if (hosts == 0 && req->version_minor == 1)
		return fail_why(c, PROBLEM_BAD_REQUEST, "an HTTP/1.1 request needs a Host header");
	if (req->version_minor == 0 && http_request_header(req, "Transfer-Encoding"))
		return fail_why(c, PROBLEM_BAD_REQUEST, "Transfer-Encoding on an HTTP/1.0 request");
	if (te == TE_BAD)
		return fail_why(c, PROBLEM_BAD_REQUEST,
				"Transfer-Encoding must end with chunked, once");
	if (te == TE_CODING)
		return fail_why(c, PROBLEM_NOT_IMPLEMENTED,
				"no transfer coding but chunked is accepted: send the body "
				"chunked, with Content-Encoding for a compressed one");
	return 0;
}

static void send_continue(struct http_conn *c)
{
	static const char line[] = "HTTP/1.1 100 Continue\r\n\r\n";

	/* the socket buffer is empty between requests, so this never blocks */
	(void)!send(c->fd, line, sizeof(line) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static int cb_headers_complete(llhttp_t *p)
{
	struct http_conn *c = CONN_OF(p);
	const struct http_limits *lim = c->lim;
	const struct http_header *expect;
	int has_body = (p->flags & F_CHUNKED) || p->content_length > 0;
	int r;

	c->head_bytes += (uint64_t)((c->span_end ? c->span_end : c->exec_begin) - c->exec_begin);
	if (c->head_bytes > lim->max_header_size)
		return fail_user(c, PROBLEM_HEADERS_TOO_LARGE);
	if (p->http_major != 1 || p->http_minor > 1)
		return fail_user(c, PROBLEM_BAD_REQUEST);
	r = build_headers(c);
	if (r < 0)
		return fail_user(c, r == -1 ? PROBLEM_INTERNAL : PROBLEM_BAD_REQUEST);
	/* braced does no upgrades nor tunnels: Upgrade is ignored (RFC 9110
	 * 7.8) and CONNECT is a request like any other, framed by its headers */
	p->upgrade = 0;
	c->req.method = llhttp_method_name((llhttp_method_t)p->method);
	c->req.target = c->arena;
	c->req.target_len = c->target_len;
	c->req.version_minor = p->http_minor;
	if (head_check(c) != 0)
		return HPE_USER;
	/* an admin request never has a body: refused before any of it is read */
	if (c->admin && has_body)
		return fail_why(c, PROBLEM_PAYLOAD_TOO_LARGE,
				"the admin API takes no request body");
	if (!(p->flags & F_CHUNKED) && p->content_length > lim->max_request_body)
		return fail_user(c, PROBLEM_PAYLOAD_TOO_LARGE);
	if (!has_body)
		return 0;
	if (!(p->flags & F_CHUNKED)) {
		/* a head alone never reserves more than HTTP_BODY_PREALLOC */
		size_t cap = p->content_length < HTTP_BODY_PREALLOC ? (size_t)p->content_length
								    : HTTP_BODY_PREALLOC;

		c->body = malloc(cap);
		if (!c->body)
			return fail_user(c, PROBLEM_INTERNAL);
		c->body_cap = cap;
	}
	expect = http_request_header(&c->req, "Expect");
	if (expect && p->http_minor == 1 && ieq(expect->value, expect->value_len, "100-continue"))
		send_continue(c);
	conn_set_state(c, CONN_BODY);
	return 0;
}

static int cb_body(llhttp_t *p, const char *at, size_t len)
{
	struct http_conn *c = CONN_OF(p);

	if (c->body_len + len > c->lim->max_request_body)
		return fail_user(c, PROBLEM_PAYLOAD_TOO_LARGE);
	if (c->body_len + len > c->body_cap) {
		size_t cap = c->body_cap ? c->body_cap : 4096;
		char *b;

		while (cap < c->body_len + len)
			cap *= 2;
		if (cap > c->lim->max_request_body)
			cap = c->lim->max_request_body;
		b = realloc(c->body, cap);
		if (!b)
			return fail_user(c, PROBLEM_INTERNAL);
		c->body = b;
		c->body_cap = cap;
	}
	memcpy(c->body + c->body_len, at, len);
	c->body_len += len;
	return 0;
}

/* A chunk size is checked before its data is read: one that takes the
 * body past HTTP_BODY_MAX is no length at all (400; llhttp 8.1 takes up to
 * 2^64-1 and would wait for the bytes), one past max_request_body is 413. */
static int cb_chunk_header(llhttp_t *p)
{
	struct http_conn *c = CONN_OF(p);
	uint64_t size = p->content_length;

	if (size > HTTP_BODY_MAX - c->body_len)
		return fail_why(c, PROBLEM_BAD_REQUEST, "the chunk size overflows");
	if (size > c->lim->max_request_body - c->body_len)
		return fail_user(c, PROBLEM_PAYLOAD_TOO_LARGE);
	return 0;
}

static int cb_message_complete(llhttp_t *p)
{
	struct http_conn *c = CONN_OF(p);

	c->req.keep_alive = llhttp_should_keep_alive(p);
	c->req.body = c->body_len ? c->body : NULL;
	c->req.body_len = c->body_len;
	/* the next pipelined request waits until this one is answered */
	return HPE_PAUSED;
}

static const llhttp_settings_t parser_settings = {
	.on_message_begin = cb_message_begin,
	.on_method = cb_method,
	.on_url = cb_url,
	.on_version = cb_version,
	.on_url_complete = cb_url_complete,
	.on_header_field = cb_header_field,
	.on_header_field_complete = cb_header_field_complete,
	.on_header_value = cb_header_value,
	.on_header_value_complete = cb_header_value_complete,
	.on_headers_complete = cb_headers_complete,
	.on_body = cb_body,
	.on_chunk_header = cb_chunk_header,
	.on_message_complete = cb_message_complete,
};

/* ---- reading and parsing ---- */

static int pending_add(struct http_conn *c, const char *data, size_t len)
{
	if (c->pending_off == c->pending_len)
		c->pending_off = c->pending_len = 0;
	if (c->pending_len + len > c->pending_cap) {
		size_t cap = c->pending_len + len;
		char *p;

		if (c->pending_off) {
			memmove(c->pending, c->pending + c->pending_off,
				c->pending_len - c->pending_off);
			c->pending_len -= c->pending_off;
			c->pending_off = 0;
			cap = c->pending_len + len;
		}
		if (cap > c->pending_cap) {
			p = realloc(c->pending, cap);
			if (!p)
				return -1;
			c->pending = p;
			c->pending_cap = cap;
		}
	}
	memcpy(c->pending + c->pending_len, data, len);
	c->pending_len += len;
	return 0;
}

static void dispatch(struct http_conn *c)
{
	struct http_server *srv = c->srv;

	conn_set_state(c, CONN_WAIT);
	if (c->admin) {
		TAILQ_REMOVE(&srv->admin, c, admin_link);
		TAILQ_INSERT_TAIL(&srv->admin, c, admin_link);
	}
	c->req_out = 1;
	c->close_after = !c->req.keep_alive;
	c->linger = 0;
	srv->counters.requests++;
	c->dispatching = 1;
	srv->on_request(&c->req, srv->arg);
	c->dispatching = 0;
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
	size_t used;

	if (c->state == CONN_IDLE) {
		request_storage_reset(c);
		conn_set_state(c, CONN_HEAD);
	}
	c->exec_begin = data;
	c->exec_end = data + len;
	c->span_end = NULL;
	err = llhttp_execute(&c->parser, data, len);
	if (err == HPE_OK) {
		c->feed_off += len;
		if (from_pending)
			c->pending_off = c->pending_len = 0;
		if (c->state == CONN_HEAD) {
			c->head_bytes += len;
			if (c->head_bytes > c->lim->max_header_size) {
				conn_fail(c, PROBLEM_HEADERS_TOO_LARGE);
				return;
			}
			note_trailing(c, data, len);
		}
		return;
	}
	if (err == HPE_PAUSED) {
		used = (size_t)(llhttp_get_error_pos(&c->parser) - data);
		if (from_pending) {
			c->pending_off += used;
		} else if (used < len && pending_add(c, data + used, len - used) < 0) {
			conn_close(c);
			return;
		}
		dispatch(c);
		return;
	}
	if (c->has_error) {
		/* a callback's own verdict, whatever code llhttp reports it with */
		conn_fail(c, c->error);
		return;
	}
	conn_fail(c, PROBLEM_BAD_REQUEST);
}

static void gone(struct http_conn *c)
{
	struct http_server *srv = c->srv;

	if (c->state == CONN_WAIT && c->req_out) {
		c->req.gone = 1;
		srv->counters.gone++;
		conn_close_fd(c);
		if (srv->on_gone)
			srv->on_gone(&c->req, srv->arg);
		return;
	}
	conn_close(c);
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
		gone(c);
		return;
	}
	switch (c->state) {
	case CONN_LINGER:
		c->head_bytes += (uint64_t)n;
		if (c->head_bytes > HTTP_LINGER_MAX)
			conn_close(c);
		return;
	case CONN_WAIT:
	case CONN_WRITE:
		/* pipelined: kept until the reply is out; a client that sends
		 * more than HTTP_PENDING_MAX ahead is read no further until then */
		if (pending_add(c, srv->rbuf, (size_t)n) < 0) {
			conn_close(c);
			return;
		}
		if (c->pending_len - c->pending_off > HTTP_PENDING_MAX) {
			event_del(&c->ev_read);
			c->read_on = 0;
		}
		return;
	case CONN_IDLE:
	case CONN_HEAD:
	case CONN_BODY:
		if (c->pending_len > c->pending_off) {
			/* pipelined bytes wait for ev_defer: these go after them */
			if (pending_add(c, srv->rbuf, (size_t)n) < 0) {
				conn_close(c);
				return;
			}
			conn_continue(c);
			return;
		}
		conn_feed(c, srv->rbuf, (size_t)n, 0);
		return;
	case CONN_CLOSED:
		return;
	}
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;

	(void)fd;
	(void)what;
	switch (c->state) {
	case CONN_HEAD:
	case CONN_BODY:
		conn_fail(c, PROBLEM_REQUEST_TIMEOUT);
		return;
	case CONN_IDLE:
		c->srv->counters.idle_closed++;
		conn_close(c);
		return;
	default:
		conn_close(c);
		return;
	}
}

/* Parses pipelined input after a reply; runs from ev_defer. */
static void conn_continue(struct http_conn *c)
{
	while (c->fd >= 0 && c->pending_len > c->pending_off &&
	       (c->state == CONN_IDLE || c->state == CONN_HEAD || c->state == CONN_BODY))
		conn_feed(c, c->pending + c->pending_off, c->pending_len - c->pending_off, 1);
	if (c->fd >= 0 && !c->read_on && c->state != CONN_WAIT && c->state != CONN_WRITE &&
	    c->state != CONN_CLOSED) {
		event_add(&c->ev_read, NULL);
		c->read_on = 1;
	}
}

static void on_defer(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;

	(void)fd;
	(void)what;
	if (c->dead) {
		conn_free(c);
		return;
	}
	if (c->state == CONN_CLOSED)
		return;
	if (c->state == CONN_WAIT && !c->req_out && evbuffer_get_length(c->out)) {
		conn_flush(c); /* a reply given inside on_request */
		return;
	}
	conn_continue(c);
}

static struct http_conn *conn_new(struct http_server *srv, int fd, int admin)
{
	struct http_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->out = evbuffer_new();
	if (!c->out) {
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
	llhttp_init(&c->parser, HTTP_REQUEST, &parser_settings);
	c->parser.data = c;
	request_storage_reset(c);
	c->state = CONN_CLOSED;
	conn_set_state(c, CONN_IDLE);
	event_add(&c->ev_read, NULL);
	c->read_on = 1;
	return c;
}

/* ---- accepting ---- */

static int close_oldest_idle(struct http_server *srv)
{
	struct http_conn *c = TAILQ_FIRST(&srv->idle);

	if (!c)
		return -1;
	srv->counters.idle_closed++;
	conn_close(c);
	return 0;
}

/* At the admin cap, closes the least recently used admin connection that
 * is not with the caller, so a probe always gets in while the cap holds.
 * Returns 0, or -EBUSY when every admin connection is being answered. */
static int admin_make_room(struct http_server *srv)
{
	struct http_conn *c;

	TAILQ_FOREACH(c, &srv->admin, admin_link)
	if (c->state != CONN_WAIT) {
		srv->counters.admin_evicted++;
		conn_close(c);
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
			listeners_sync(srv);
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
				listeners_sync(srv);
				evtimer_add(srv->fd_retry, &tv);
			}
			return;
		}
		if (admin && srv->counters.admin_connections >= srv->admin_limits.max_connections &&
		    admin_make_room(srv) < 0) {
			srv->counters.admin_refused++;
			close(fd);
			reserve_refill(srv);
			continue;
		}
		c = conn_new(srv, fd, admin);
		if (!c) {
			close(fd);
			return;
		}
		conn_count(c);
	}
}

int http_server_add_connection(struct http_server *srv, int fd, enum http_listener_kind kind)
{
	int admin = kind == HTTP_LISTENER_ADMIN;
	int flags = fcntl(fd, F_GETFL);
	struct http_conn *c;

	if ((!admin && srv->counters.connections >= srv->limits.max_connections) ||
	    (admin && srv->counters.admin_connections >= srv->admin_limits.max_connections &&
	     admin_make_room(srv) < 0)) {
		close(fd);
		return -EBUSY;
	}
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	c = conn_new(srv, fd, admin);
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	conn_count(c);
	if (!admin && srv->counters.connections >= srv->limits.max_connections) {
		srv->paused_full = 1;
		listeners_sync(srv);
	}
	return 0;
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

int http_server_add_listener(struct http_server *srv, int fd, enum http_listener_kind kind)
{
	struct listener *l;
	int flags = fcntl(fd, F_GETFL);

	if (srv->nlisteners == HTTP_MAX_LISTENERS) {
		close(fd);
		return -ENOSPC;
	}
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	l = &srv->listeners[srv->nlisteners];
	l->srv = srv;
	l->fd = fd;
	l->kind = kind;
	l->ev = event_new(srv->base, fd, EV_READ | EV_PERSIST, on_accept, l);
	if (!l->ev) {
		close(fd);
		return -ENOMEM;
	}
	srv->nlisteners++;
	if (kind == HTTP_LISTENER_ADMIN)
		reserve_refill(srv);
	l->active = 0;
	listeners_sync(srv);
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
	listeners_sync(srv);
}

void http_server_pause_accepting(struct http_server *srv, int paused)
{
	srv->paused_drain = !!paused;
	listeners_sync(srv);
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
		conn_free(TAILQ_FIRST(&srv->all));
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

/* http_reply() and http_reply_buffer(): body, or the bytes of src. */
static int reply(struct http_request *req, int status, const struct http_header *headers,
		 size_t nheaders, void *body, size_t body_len, struct evbuffer *src)
{
	struct http_conn *c = req->conn;
	int bad = status < 200 || status > 599;

	for (size_t i = 0; !bad && i < nheaders; i++)
		bad = !headers_name_ok(headers[i].name, headers[i].name_len) ||
		      !value_ok(headers[i].value, headers[i].value_len);
	c->req_out = 0;
	if (c->state == CONN_CLOSED) {
		free(body);
		c->dead = 1;
		event_active(&c->ev_defer, EV_TIMEOUT, 1);
		return bad ? -EINVAL : 0;
	}
	if (c->srv->paused_drain && !c->admin)
		c->close_after = 1;
	if (bad) {
		free(body);
		conn_fail(c, PROBLEM_INTERNAL);
		return -EINVAL;
	}
	conn_send(c, status, headers, nheaders, body, body_len, src);
	return 0;
}

int http_reply(struct http_request *req, int status, const struct http_header *headers,
	       size_t nheaders, void *body, size_t body_len)
{
	return reply(req, status, headers, nheaders, body, body_len, NULL);
}

int http_reply_buffer(struct http_request *req, int status, const struct http_header *headers,
		      size_t nheaders, struct evbuffer *body)
{
	return reply(req, status, headers, nheaders, NULL, 0, body);
}

const struct http_header *http_request_header(const struct http_request *req, const char *name)
{
	for (size_t i = 0; i < req->nheaders; i++)
		if (ieq(req->headers[i].name, req->headers[i].name_len, name))
			return &req->headers[i];
	return NULL;
}
