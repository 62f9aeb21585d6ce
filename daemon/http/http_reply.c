/* The http server's replies: the status line from a table of reason
 * phrases, the caller's headers, Date, Content-Length and Connection in one
 * block with a small body, direct writes (a write event only after EAGAIN),
 * the problem answers of the server's own refusals, and http_reply(). */
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

static void reply_done(struct http_conn *c)
{
	switch (c->then) {
	case CONN_THEN_LINGER:
		shutdown(c->fd, SHUT_WR);
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
	int n = evbuffer_write(c->out, c->fd);

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

/* Queues the reply on c->out, taking body, and writes it. The head, and a
 * body up to HTTP_BODY_INLINE bytes, go into one contiguous block: one
 * iovec, no chain of its own for a small body. */
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
		http_conn_close(c);
		return;
	}
	p = vec.iov_base;
	p = put(p, "HTTP/1.1 ", 9);
	p = ascii_put_uint(p, (uint64_t)status);
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
		p = ascii_put_uint(p, body_len);
		p = put(p, "\r\n", 2);
	}
	if (c->then != CONN_THEN_NEXT)
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
	if (c->state == CONN_DISPATCH) {
		/* on_request answered at once: write after it returns */
		event_active(&c->ev_defer, EV_TIMEOUT, 1);
		return;
	}
	http_reply_flush(c);
}

/* Answers c's current (possibly partial) request with a problem and closes. */
void http_reply_fail(struct http_conn *c, enum problem_code code)
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
