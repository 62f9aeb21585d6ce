/* The http server's replies: the status line from a table of reason
 * phrases, the caller's headers, Date, Content-Length and Connection in one
 * block with a small body, direct writes (a write event only after EAGAIN),
 * the problem answers of the server's own refusals, and http_reply(). Also
 * streamed replies (http_stream_*): the same head, a body framed by length,
 * chunks or the close, on_drain at low water, a stall deadline per
 * progress, and aborts the app sees as truncations. */
#include "http_internal.h"
#include "ascii.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "headers.h"

#define HTTP_BODY_INLINE (16 * 1024) /* reply bodies copied next to the head */

/* ---- writing ---- */

static void stream_flush(struct http_conn *c, int from_caller);

static void reply_done(struct http_conn *c)
{
	c->frame = FRAME_WHOLE;
	switch (c->then) {
	case CONN_THEN_LINGER:
		shutdown(c->fd, SHUT_WR);
		/* a body dropped since the answer began goes on counting */
		if (c->body_mode != BODY_DISCARD)
			c->head_bytes = 0;
		http_conn_set_state(c, CONN_LINGER);
		http_conn_read(c, 1);
		return;
	case CONN_THEN_CLOSE:
		http_conn_close(c);
		return;
	case CONN_THEN_NEXT:
		break;
	}
	http_parse_reset(c);
	llhttp_resume(&c->parser);
	http_conn_set_state(c, CONN_IDLE);
	http_conn_read(c, 1);
	if (c->pending_len > c->pending_off)
		event_active(&c->ev_defer, EV_TIMEOUT, 1);
}

void http_reply_flush(struct http_conn *c)
{
	int n;

	if (c->frame != FRAME_WHOLE) {
		stream_flush(c, 0);
		return;
	}
	n = evbuffer_write(c->out, c->fd);

	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
		http_conn_close(c);
		return;
	}
	if (evbuffer_get_length(c->out) > 0) {
		if (c->state != CONN_WRITE)
			http_conn_set_state(c, CONN_WRITE);
		event_add(&c->ev_write, NULL);
		return;
	}
	reply_done(c);
}

static int value_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
			return 0;
	return 1;
}

/* The reason phrase of each status code (RFC 9110 15 and the registry),
 * indexed by the code; "" for one without. */
#define HTTP_STATUS_MAX 599
static const char *const reason_phrases[HTTP_STATUS_MAX + 1] = {
	[100] = "Continue",
	[200] = "OK",
	[201] = "Created",
	[202] = "Accepted",
	[203] = "Non-Authoritative Information",
	[204] = "No Content",
	[205] = "Reset Content",
	[206] = "Partial Content",
	[207] = "Multi-Status",
	[208] = "Already Reported",
	[226] = "IM Used",
	[300] = "Multiple Choices",
	[301] = "Moved Permanently",
	[302] = "Found",
	[303] = "See Other",
	[304] = "Not Modified",
	[305] = "Use Proxy",
	[307] = "Temporary Redirect",
	[308] = "Permanent Redirect",
	[400] = "Bad Request",
	[401] = "Unauthorized",
	[402] = "Payment Required",
	[403] = "Forbidden",
	[404] = "Not Found",
	[405] = "Method Not Allowed",
	[406] = "Not Acceptable",
	[407] = "Proxy Authentication Required",
	[408] = "Request Timeout",
	[409] = "Conflict",
	[410] = "Gone",
	[411] = "Length Required",
	[412] = "Precondition Failed",
	[413] = "Content Too Large",
	[414] = "URI Too Long",
	[415] = "Unsupported Media Type",
	[416] = "Range Not Satisfiable",
	[417] = "Expectation Failed",
	[421] = "Misdirected Request",
	[422] = "Unprocessable Content",
	[423] = "Locked",
	[424] = "Failed Dependency",
	[425] = "Too Early",
	[426] = "Upgrade Required",
	[428] = "Precondition Required",
	[429] = "Too Many Requests",
	[431] = "Request Header Fields Too Large",
	[451] = "Unavailable For Legal Reasons",
	[500] = "Internal Server Error",
	[501] = "Not Implemented",
	[502] = "Bad Gateway",
	[503] = "Service Unavailable",
	[504] = "Gateway Timeout",
	[505] = "HTTP Version Not Supported",
	[506] = "Variant Also Negotiates",
	[507] = "Insufficient Storage",
	[508] = "Loop Detected",
	[511] = "Network Authentication Required",
};

static const char *reason_phrase(int status)
{
	const char *r = status >= 0 && status <= HTTP_STATUS_MAX ? reason_phrases[status] : NULL;

	return r ? r : "";
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

/* An answer to req has no body: HEAD, 204 and 304. */
static int bodiless(const struct http_request *req, int status)
{
	return status == 204 || status == 304 || (req->method && !strcmp(req->method, "HEAD"));
}

/* Reserves room on c->out for the head of status with the caller's
 * headers and the framing frame (length for FRAME_LENGTH), plus room bytes
 * after it, and writes the head there. Returns the end of the head in
 * *vec, or NULL on OOM (nothing queued). */
static char *put_head(struct http_conn *c, int status, const struct http_header *headers,
		      size_t nheaders, enum conn_frame frame, uint64_t length, size_t room,
		      struct evbuffer_iovec *vec)
{
	const char *reason = reason_phrase(status);
	int is_head = c->req.method && !strcmp(c->req.method, "HEAD");
	int caller_length = 0, caller_date = 0, send_length;
	size_t reason_len = strlen(reason), need;
	char *p;

	for (size_t i = 0; i < nheaders; i++) {
		if (is_head && ieq(headers[i].name, headers[i].name_len, "Content-Length"))
			caller_length = 1;
		if (ieq(headers[i].name, headers[i].name_len, "Date"))
			caller_date = 1;
	}
	send_length = (frame == FRAME_WHOLE || frame == FRAME_LENGTH) && status != 204 &&
		      status != 304 && !(is_head && caller_length);
	/* "HTTP/1.1 " status " " reason CRLF, the headers, Content-Length
	 * (or Transfer-Encoding), Connection, the blank line: 24 digits per
	 * number at most. */
	need = 9 + 24 + 1 + reason_len + 2 + 16 + 24 + 2 + 24 + 2 + HTTP_DATE_LINE_LEN + room;
	for (size_t i = 0; i < nheaders; i++)
		need += headers[i].name_len + 2 + headers[i].value_len + 2;
	if (evbuffer_reserve_space(c->out, (ev_ssize_t)need, vec, 1) < 1 || vec->iov_len < need)
		return NULL;
	p = vec->iov_base;
	p = put(p, "HTTP/1.1 ", 9);
	p = ascii_put_uint(p, (uint64_t)status);
	p = put(p, " ", 1);
	p = put(p, reason, reason_len);
	p = put(p, "\r\n", 2);
	for (size_t i = 0; i < nheaders; i++) {
		/* only a HEAD answer may say how long the GET one would be */
		if (!is_head && ieq(headers[i].name, headers[i].name_len, "Content-Length"))
			continue;
		/* the server frames a stream itself */
		if (frame != FRAME_WHOLE &&
		    ieq(headers[i].name, headers[i].name_len, "Transfer-Encoding"))
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
		p = ascii_put_uint(p, length);
		p = put(p, "\r\n", 2);
	} else if (frame == FRAME_CHUNKED) {
		p = put(p, "Transfer-Encoding: chunked\r\n", 28);
	}
	if (c->then != CONN_THEN_NEXT)
		p = put(p, "Connection: close\r\n", 19);
	else if (c->req.version_minor == 0)
		p = put(p, "Connection: keep-alive\r\n", 24);
	p = put(p, "\r\n", 2);
	return p;
}

/* Queues the reply on c->out, taking body, and writes it. The head, and a
 * body up to HTTP_BODY_INLINE bytes, go into one contiguous block: one
 * iovec, no chain of its own for a small body. */
static void conn_send(struct http_conn *c, int status, const struct http_header *headers,
		      size_t nheaders, void *body, size_t body_len, struct evbuffer *src)
{
	int inline_body;
	struct evbuffer_iovec vec;
	char *p;

	if (src)
		body_len = evbuffer_get_length(src);
	if (c->state == CONN_CLOSED) {
		free(body);
		return;
	}
	if (bodiless(&c->req, status) || !body_len) {
		free(body);
		body = NULL;
		src = NULL;
	}
	inline_body = (body || src) && body_len <= HTTP_BODY_INLINE;
	p = put_head(c, status, headers, nheaders, FRAME_WHOLE, body_len,
		     inline_body ? body_len : 0, &vec);
	if (!p) {
		free(body);
		http_conn_close(c);
		return;
	}
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
	if (c->state == CONN_DISPATCH) {
		/* on_request answered at once: write after it returns */
		event_active(&c->ev_defer, EV_TIMEOUT, 1);
		return;
	}
	http_reply_flush(c);
}

void http_reply_count(struct http_server *srv, enum problem_code code)
{
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
}

/* Answers c's current (possibly partial) request with a problem and closes. */
void http_reply_fail(struct http_conn *c, enum problem_code code)
{
	struct problem p;
	struct http_header h[2];
	const char *name = problem_code_name(code);
	size_t len = 0;
	char *body;

	http_reply_count(c->srv, code);
	problem_init(&p, code);
	p.detail = c->error_detail;
	body = problem_render(&p, &len);
	h[0] = (struct http_header){ "Content-Type", 12, "application/problem+json", 24 };
	h[1] = (struct http_header){ "Brace-Error", 11, name, strlen(name) };
	c->then = CONN_THEN_LINGER;
	/* the rest of the input is not parsed: stop reading until the reply
	 * is out, then drain it while lingering */
	http_conn_read(c, 0);
	c->pending_off = c->pending_len = 0;
	conn_send(c, problem_code_status(code), h, 2, body, body ? len : 0, NULL);
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
		http_conn_set_state(c, CONN_DEAD);
		event_active(&c->ev_defer, EV_TIMEOUT, 1);
		return bad ? -EINVAL : 0;
	}
	if (c->srv->paused_drain && !c->admin && c->then == CONN_THEN_NEXT)
		c->then = CONN_THEN_CLOSE;
	http_body_answered(c, 1);
	if (bad) {
		free(body);
		http_reply_fail(c, PROBLEM_INTERNAL);
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

/* ---- streamed replies ---- */

/* Whether status and headers can be sent as a head (http_reply()'s rules). */
static int head_ok(int status, const struct http_header *headers, size_t nheaders)
{
	if (status < 200 || status > 599)
		return 0;
	for (size_t i = 0; i < nheaders; i++)
		if (!headers_name_ok(headers[i].name, headers[i].name_len) ||
		    !value_ok(headers[i].value, headers[i].value_len))
			return 0;
	return 1;
}

/* Gives req back from a connection already closed: it is freed from
 * ev_defer. */
static void release_closed(struct http_conn *c)
{
	c->req_out = 0;
	http_conn_set_state(c, CONN_DEAD);
	event_active(&c->ev_defer, EV_TIMEOUT, 1);
}

void http_reply_cut(struct http_conn *c)
{
	/* a body delimited by the close would look whole after a FIN */
	if (c->frame == FRAME_CLOSE && c->fd >= 0) {
		struct linger lg = { 1, 0 };

		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	http_conn_close(c);
}

/* The stall deadline: idle_timeout_ms from the last write that made
 * progress, armed only while bytes wait, so neither a slow reader that
 * keeps reading nor a quiet stream is cut. */
static void stall_watch(struct http_conn *c, int progressed, size_t left)
{
	if (!left) {
		event_del(&c->ev_timer);
	} else if (progressed || !evtimer_pending(&c->ev_timer, NULL)) {
		uint32_t ms = c->lim->idle_timeout_ms;
		struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

		event_add(&c->ev_timer, &tv);
	}
}

/* Writes what a streamed reply has queued. from_caller: inside an
 * http_stream_*() call, where no callback of the caller's may run, so a
 * write error only marks req gone and on_gone waits for ev_defer. */
static void stream_flush(struct http_conn *c, int from_caller)
{
	/* libevent says -1 for an empty buffer: nothing to write is no error */
	int n = evbuffer_get_length(c->out) ? evbuffer_write(c->out, c->fd) : 0;
	size_t left = evbuffer_get_length(c->out);

	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
		if (c->state != CONN_STREAM) {
			http_conn_close(c); /* req is back with the server */
		} else if (from_caller) {
			c->req.gone = 1;
			event_active(&c->ev_defer, EV_TIMEOUT, 1);
		} else {
			http_conn_gone(c);
		}
		return;
	}
	stall_watch(c, n > 0, left);
	if (left)
		event_add(&c->ev_write, NULL);
	if (c->state == CONN_STREAM && c->above_low && left <= c->low_water) {
		c->above_low = 0;
		c->drain_due = 1;
		event_active(&c->ev_defer, EV_TIMEOUT, 1);
	}
	if (left)
		return;
	if (c->state == CONN_ABORT)
		http_reply_cut(c);
	else if (c->state == CONN_WRITE)
		reply_done(c);
}

/* Writes now unless the socket is known to be full (ev_write waits). */
static void stream_push(struct http_conn *c)
{
	if (!event_pending(&c->ev_write, EV_WRITE, NULL))
		stream_flush(c, 1);
}

void http_stream_deferred(struct http_conn *c)
{
	struct http_server *srv = c->srv;

	if (c->state == CONN_STREAM && c->req.gone) {
		http_conn_gone(c);
		return;
	}
	if (c->state != CONN_STREAM || !c->drain_due)
		return;
	c->drain_due = 0;
	/* a write since the crossing may have filled the queue again */
	if (srv->on_drain && evbuffer_get_length(c->out) <= c->low_water)
		srv->on_drain(&c->req, srv->arg);
	else if (evbuffer_get_length(c->out) > c->low_water)
		c->above_low = 1;
}

/* Notes a queue above low water: its fall to it is a crossing. */
static void stream_level(struct http_conn *c)
{
	if (evbuffer_get_length(c->out) > c->low_water)
		c->above_low = 1;
}

int http_stream_begin(struct http_request *req, int status, const struct http_header *headers,
		      size_t nheaders, const struct http_stream_opts *o)
{
	static const struct http_stream_opts unknown = { -1, 0 };
	struct http_conn *c = req->conn;
	int none = bodiless(req, status);
	enum conn_frame frame = FRAME_CHUNKED;
	struct evbuffer_iovec vec;
	char *p;

	if (!o)
		o = &unknown;
	if (!c->req_out || c->frame != FRAME_WHOLE || o->length < -1 ||
	    !head_ok(status, headers, nheaders))
		return -EINVAL;
	if (c->state == CONN_CLOSED)
		return -EPIPE;
	if (c->srv->paused_drain && !c->admin && c->then == CONN_THEN_NEXT)
		c->then = CONN_THEN_CLOSE;
	http_body_answered(c, 0);
	if (o->length >= 0) {
		frame = FRAME_LENGTH;
	} else if (none) {
		frame = FRAME_NONE;
	} else if (req->version_minor == 0) {
		/* the FIN ends the body: shut the write side first, so
		 * pipelined input left unread cannot turn it into a reset */
		frame = FRAME_CLOSE;
		c->then = CONN_THEN_LINGER;
	}
	p = put_head(c, status, headers, nheaders, frame, o->length >= 0 ? (uint64_t)o->length : 0,
		     0, &vec);
	if (!p) {
		http_conn_close(c);
		return -ENOMEM;
	}
	vec.iov_len = (size_t)(p - (char *)vec.iov_base);
	evbuffer_commit_space(c->out, &vec, 1);
	c->frame = none ? FRAME_NONE : frame;
	c->stream_left = o->length >= 0 ? (uint64_t)o->length : 0;
	c->low_water = o->low_water;
	c->above_low = c->drain_due = 0;
	http_conn_set_state(c, CONN_STREAM);
	stream_push(c);
	stream_level(c);
	return req->gone ? -EPIPE : 0;
}

/* Writes the chunk-size line of an n-byte chunk (hex, CRLF) at p; returns
 * its length. */
static size_t chunk_line(char *p, size_t n)
{
	char digits[2 * sizeof(size_t)];
	size_t k = 0, len = 0;

	do {
		digits[k++] = "0123456789abcdef"[n & 15];
		n >>= 4;
	} while (n);
	while (k)
		p[len++] = digits[--k];
	p[len++] = '\r';
	p[len++] = '\n';
	return len;
}

int http_stream_write(struct http_request *req, const void *buf, size_t n)
{
	struct http_conn *c = req->conn;
	char line[2 * sizeof(size_t) + 2];
	size_t line_len = 0, need;

	if (req->gone || c->state == CONN_CLOSED)
		return -EPIPE;
	if (c->state != CONN_STREAM)
		return -EINVAL;
	/* an empty chunk would be the last one */
	if (!n || c->frame == FRAME_NONE)
		return 0;
	if (c->frame == FRAME_LENGTH && n > c->stream_left)
		return -EMSGSIZE;
	if (c->frame == FRAME_CHUNKED)
		line_len = chunk_line(line, n);
	need = line_len + n + (line_len ? 2 : 0);
	if (n > HTTP_STREAM_QUEUED_MAX ||
	    evbuffer_get_length(c->out) + need > HTTP_STREAM_QUEUED_MAX)
		return -ENOBUFS;
	/* room first, so a chunk is queued whole or not at all */
	if (evbuffer_expand(c->out, need) < 0)
		return -ENOMEM;
	if (line_len) {
		evbuffer_add(c->out, line, line_len);
		evbuffer_add(c->out, buf, n);
		evbuffer_add(c->out, "\r\n", 2);
	} else {
		evbuffer_add(c->out, buf, n);
	}
	if (c->frame == FRAME_LENGTH)
		c->stream_left -= n;
	stream_push(c);
	stream_level(c);
	return req->gone ? -EPIPE : 0;
}

size_t http_stream_queued(const struct http_request *req)
{
	const struct http_conn *c = req->conn;

	return c->fd < 0 ? 0 : evbuffer_get_length(c->out);
}

int http_stream_abort(struct http_request *req)
{
	struct http_conn *c = req->conn;

	if (c->state == CONN_CLOSED) {
		release_closed(c);
		return 0;
	}
	c->req_out = 0;
	if (c->state != CONN_STREAM || req->gone) {
		http_conn_close(c);
		return 0;
	}
	http_body_answered(c, 1);
	c->pending_off = c->pending_len = 0;
	http_conn_set_state(c, CONN_ABORT);
	stream_flush(c, 1);
	return 0;
}

int http_stream_end(struct http_request *req)
{
	struct http_conn *c = req->conn;

	if (c->state == CONN_CLOSED) {
		release_closed(c);
		return -EPIPE;
	}
	if (c->state != CONN_STREAM || req->gone) {
		c->req_out = 0;
		http_conn_close(c);
		return -EPIPE;
	}
	if (c->frame == FRAME_LENGTH && c->stream_left) {
		http_stream_abort(req);
		return -EMSGSIZE;
	}
	if (c->frame == FRAME_CHUNKED && evbuffer_add(c->out, "0\r\n\r\n", 5) < 0) {
		http_stream_abort(req);
		return -ENOMEM;
	}
	http_body_answered(c, 1);
	c->req_out = 0;
	c->drain_due = 0;
	http_conn_set_state(c, CONN_WRITE);
	stream_flush(c, 1);
	return 0;
}

void http_server_set_drain_handler(struct http_server *srv, http_drain_cb on_drain)
{
	srv->on_drain = on_drain;
}
