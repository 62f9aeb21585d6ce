/* The http server's parsing: llhttp's settings and callbacks, which copy
 * the request head into the connection's arena and hold it to RFC 9112
 * (one SP in the request line, no obs-fold, Host, Content-Length and
 * Transfer-Encoding framing), the body with its limits, the body API of
 * head mode (http_body_*: held whole or piped through a bounded buffer),
 * and the lookup of a parsed request's headers. */
#include "http_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>

#include "headers.h"

#define HTTP_BODY_PREALLOC (64 * 1024) /* body bytes reserved on Content-Length */
/* The largest body length taken (curl_off_t's range): a chunk size that
 * takes a body past it overflows (400). */
#define HTTP_BODY_MAX ((uint64_t)INT64_MAX)
/* "HTTP/" between the target's SP and the version digits */
#define HTTP_VERSION_PREFIX 5

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

/* Copies len bytes at at into the arena. Returns 0, or fail_user()'s
 * HPE_USER (headers_too_large) past max_header_size or on OOM. */
static int arena_add(struct http_conn *c, const char *at, size_t len)
{
	size_t need = c->arena_len + len + 1;

	/* the room check stays here: it runs for every piece of the head */
	if (need > c->lim->max_header_size + 1 ||
	    (need > c->arena_cap &&
	     http_buf_reserve(&c->arena, &c->arena_cap, need, 1024, SIZE_MAX) < 0))
		return fail_user(c, PROBLEM_HEADERS_TOO_LARGE);
	memcpy(c->arena + c->arena_len, at, len);
	c->arena_len += len;
	return 0;
}

static void span_seen(struct http_conn *c, const char *at, size_t len)
{
	if (at + len > c->exec_begin && at + len <= c->exec_end)
		c->span_end = at + len;
}

/* A piece of the target, a name or a value that llhttp hands over: seen in
 * this read, copied into the arena and added to *str_len, the length of
 * the string it belongs to. Returns 0, or arena_add()'s HPE_USER. */
static int head_piece(struct http_conn *c, const char *at, size_t len, uint32_t *str_len)
{
	span_seen(c, at, len);
	if (arena_add(c, at, len) != 0)
		return HPE_USER;
	*str_len += (uint32_t)len;
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
	return head_piece(c, at, len, &c->target_len);
}

static int cb_url_complete(llhttp_t *p)
{
	struct http_conn *c = CONN_OF(p);

	/* the target is the arena's first string: NUL-terminate it */
	return arena_add(c, "", 1);
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

/* The parser is past the head: what comes as headers are trailers. In head
 * mode the connection has left CONN_BODY by then; body_mode says it. */
static int in_trailers(const struct http_conn *c)
{
	return c->state == CONN_BODY || c->body_mode != BODY_NONE;
}

/* max_request_body, with 0 for no limit. */
static uint64_t body_limit(const struct http_conn *c)
{
	return c->lim->max_request_body ? c->lim->max_request_body : HTTP_BODY_MAX;
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

	if (in_trailers(c))
		return trailer_bytes(c, len); /* trailers are not kept */
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
	return head_piece(c, at, len, &c->hoffs[c->nh - 1].name_len);
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

	if (in_trailers(c))
		return 0;
	return arena_add(c, "", 1);
}

/* The header whose value is being read; its value starts here when it
 * has not yet. */
static struct hdr_off *value_of(struct http_conn *c)
{
	struct hdr_off *h = &c->hoffs[c->nh - 1];

	if (!c->in_value) {
		h->value_off = (uint32_t)c->arena_len;
		h->value_len = 0;
		c->in_value = 1;
	}
	return h;
}

static int cb_header_value(llhttp_t *p, const char *at, size_t len)
{
	struct http_conn *c = CONN_OF(p);
	struct hdr_off *h;

	if (in_trailers(c))
		return trailer_bytes(c, len);
	if (len && is_fold(c, at))
		return fail_user(c, PROBLEM_BAD_REQUEST);
	h = value_of(c);
	return head_piece(c, at, len, &h->value_len);
}

static int cb_header_value_complete(llhttp_t *p)
{
	struct http_conn *c = CONN_OF(p);
	struct hdr_off *h;

	if (in_trailers(c))
		return 0;
	h = value_of(c); /* an empty value gets no value span */
	/* the NUL after the value, written over trailing whitespace if any:
	 * the arena never outgrows the raw head (": " and CRLF are not kept) */
	if (arena_add(c, "", 1) != 0)
		return HPE_USER;
	while (h->value_len && (c->arena[h->value_off + h->value_len - 1] == ' ' ||
				c->arena[h->value_off + h->value_len - 1] == '\t'))
		h->value_len--;
	c->arena[h->value_off + h->value_len] = '\0';
	return 0;
}

/* The request's header list from the arena. Returns 0, or fail_user()'s
 * HPE_USER: internal on OOM, bad_request for a name that is no token. */
static int build_headers(struct http_conn *c)
{
	struct http_header *hs = NULL;

	if (c->nh) {
		hs = realloc(c->headers, c->nh * sizeof(*hs));
		if (!hs)
			return fail_user(c, PROBLEM_INTERNAL);
		c->headers = hs;
	}
	for (size_t i = 0; i < c->nh; i++) {
		const struct hdr_off *o = &c->hoffs[i];

		if (!headers_name_ok(c->arena + o->name_off, o->name_len))
			return fail_user(c, PROBLEM_BAD_REQUEST);
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
	int asks_continue;

	c->head_bytes += (uint64_t)((c->span_end ? c->span_end : c->exec_begin) - c->exec_begin);
	if (c->head_bytes > lim->max_header_size)
		return fail_user(c, PROBLEM_HEADERS_TOO_LARGE);
	if (p->http_major != 1 || p->http_minor > 1)
		return fail_user(c, PROBLEM_BAD_REQUEST);
	if (build_headers(c) != 0)
		return HPE_USER;
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
	if (!(p->flags & F_CHUNKED) && p->content_length > body_limit(c))
		return fail_user(c, PROBLEM_PAYLOAD_TOO_LARGE);
	if (!has_body)
		return 0;
	expect = http_request_header(&c->req, "Expect");
	asks_continue =
	    expect && p->http_minor == 1 && ieq(expect->value, expect->value_len, "100-continue");
	http_conn_set_state(c, CONN_BODY);
	if (c->srv->on_head && !c->admin) {
		/* handed over once llhttp_execute() returns, with the body bytes
		 * of this read in body_in; the 100 waits for the caller */
		c->body_mode = BODY_HEAD;
		c->body_end = HTTP_BODY_MORE;
		c->req.body_length = (p->flags & F_CHUNKED) ? -1 : (int64_t)p->content_length;
		c->req.expect_continue = asks_continue;
		c->req.keep_alive = llhttp_should_keep_alive(p);
		c->continue_owed = asks_continue;
		return 0;
	}
	if (!(p->flags & F_CHUNKED)) {
		/* a head alone never reserves more than HTTP_BODY_PREALLOC */
		size_t cap = p->content_length < HTTP_BODY_PREALLOC ? (size_t)p->content_length
								    : HTTP_BODY_PREALLOC;

		c->body = malloc(cap);
		if (!c->body)
			return fail_user(c, PROBLEM_INTERNAL);
		c->body_cap = cap;
	}
	if (asks_continue)
		send_continue(c);
	return 0;
}

static int cb_body(llhttp_t *p, const char *at, size_t len)
{
	struct http_conn *c = CONN_OF(p);

	if (c->body_len + len > body_limit(c))
		return fail_user(c, PROBLEM_PAYLOAD_TOO_LARGE);
	/* In head mode every byte is taken, whatever the room: a pause here
	 * would be a span callback's, whose error_pos is the span's end, and a
	 * pause on the last body byte leaves on_message_complete to a later
	 * execute. Reading stops at the socket instead (http_body_flow()), so
	 * HPE_PAUSED means only "message complete" and no pipelined byte is
	 * lost. */
	if (c->body_mode != BODY_NONE) {
		if (evbuffer_add(c->body_in, at, len) < 0)
			return fail_user(c, PROBLEM_INTERNAL);
		c->body_len += len;
		return 0;
	}
	if (c->body_len + len > c->body_cap &&
	    http_buf_reserve(&c->body, &c->body_cap, c->body_len + len, 4096, body_limit(c)) < 0)
		return fail_user(c, PROBLEM_INTERNAL);
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
	if (size > body_limit(c) - c->body_len)
		return fail_user(c, PROBLEM_PAYLOAD_TOO_LARGE);
	return 0;
}

static int cb_message_complete(llhttp_t *p)
{
	struct http_conn *c = CONN_OF(p);

	c->req.keep_alive = llhttp_should_keep_alive(p);
	if (c->body_mode == BODY_NONE) {
		c->req.body = c->body_len ? c->body : NULL;
		c->req.body_len = c->body_len;
		c->req.body_length = (int64_t)c->body_len;
	}
	/* the next pipelined request waits until this one is answered */
	return HPE_PAUSED;
}

static const llhttp_settings_t parser_settings = {
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

void http_parse_init(struct http_conn *c)
{
	llhttp_init(&c->parser, HTTP_REQUEST, &parser_settings);
	c->parser.data = c;
}

void http_parse_reset(struct http_conn *c)
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
	c->body_mode = BODY_NONE;
	c->body_end = HTTP_BODY_MORE;
	c->body_room = 0;
	c->body_due = 0;
	c->continue_owed = 0;
	evbuffer_drain(c->body_in, evbuffer_get_length(c->body_in));
	event_del(&c->ev_body);
	event_del(&c->ev_closed);
	c->has_error = 0;
	c->error_detail = NULL;
	c->span_end = NULL;
	c->last_nonws = 0;
	memset(&c->req, 0, sizeof(c->req));
	c->req.conn = c;
	c->req.admin = c->admin;
}

/* ---- the body in head mode ---- */

int http_body_feeding(const struct http_conn *c)
{
	return (c->body_mode == BODY_HOLD || c->body_mode == BODY_PIPE) &&
	       c->body_end == HTTP_BODY_MORE;
}

/* The 100 Continue the app asked for, once the caller wants its body. */
static void continue_now(struct http_conn *c)
{
	if (!c->continue_owed || c->fd < 0)
		return;
	c->continue_owed = 0;
	send_continue(c);
}

void http_body_fail(struct http_conn *c, enum problem_code code)
{
	http_reply_count(c->srv, code);
	c->body_end = HTTP_BODY_FAILED;
	c->body_error = code;
	/* what follows the broken part is not parsed */
	c->pending_off = c->pending_len = 0;
	event_del(&c->ev_body);
	http_body_flow(c);
	http_body_notify(c);
}

void http_body_answered(struct http_conn *c, int whole)
{
	c->continue_owed = 0;
	if (c->body_mode == BODY_NONE || c->body_end == HTTP_BODY_END)
		return;
	/* RFC 9112 9.3: the rest of the body can no longer be told from the
	 * next request, so the connection ends after this answer */
	c->then = CONN_THEN_LINGER;
	if (whole || c->body_mode != BODY_PIPE) {
		c->body_mode = BODY_DISCARD;
		c->head_bytes = 0; /* counts the bytes dropped, up to the linger cap */
		event_del(&c->ev_body);
	}
	http_body_flow(c);
}

int http_body_hold(struct http_request *req)
{
	struct http_conn *c = req->conn;
	uint32_t ms = c->lim->body_timeout_ms;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (c->body_mode != BODY_ASKED || !c->req_out)
		return -EINVAL;
	if (req->gone)
		return -EPIPE;
	c->body_mode = BODY_HOLD;
	continue_now(c);
	if (c->body_end == HTTP_BODY_MORE)
		event_add(&c->ev_body, &tv);
	else
		http_body_notify(c); /* whole already: on_request from ev_defer */
	http_body_flow(c);
	return 0;
}

int http_body_stream(struct http_request *req, size_t room)
{
	struct http_conn *c = req->conn;

	if (c->body_mode != BODY_ASKED || !c->req_out)
		return -EINVAL;
	if (req->gone)
		return -EPIPE;
	c->body_mode = BODY_PIPE;
	c->body_room = room;
	if (room)
		continue_now(c);
	/* bytes of the head's read, or the whole body, are there already */
	if (evbuffer_get_length(c->body_in) || c->body_end != HTTP_BODY_MORE)
		http_body_notify(c);
	http_body_flow(c);
	return 0;
}

size_t http_body_read(struct http_request *req, char *buf, size_t n)
{
	struct http_conn *c = req->conn;
	int got;

	if (c->body_mode != BODY_PIPE || !n)
		return 0;
	got = evbuffer_remove(c->body_in, buf, n);
	if (got <= 0)
		return 0;
	if (c->body_end == HTTP_BODY_MORE)
		http_body_flow(c);
	return (size_t)got;
}

size_t http_body_buffered(const struct http_request *req)
{
	const struct http_conn *c = req->conn;

	return c->body_mode == BODY_PIPE ? evbuffer_get_length(c->body_in) : 0;
}

enum http_body_state http_body_state(const struct http_request *req, enum problem_code *ret_code)
{
	const struct http_conn *c = req->conn;

	if (c->body_mode == BODY_NONE)
		return HTTP_BODY_END;
	if (c->body_end == HTTP_BODY_FAILED && ret_code)
		*ret_code = c->body_error;
	return c->body_end;
}

void http_body_set_room(struct http_request *req, size_t room)
{
	struct http_conn *c = req->conn;

	if (c->body_mode != BODY_PIPE)
		return;
	c->body_room = room;
	if (room)
		continue_now(c);
	if (c->body_end == HTTP_BODY_MORE)
		http_body_flow(c);
}

const struct http_header *http_request_header(const struct http_request *req, const char *name)
{
	for (size_t i = 0; i < req->nheaders; i++)
		if (ieq(req->headers[i].name, req->headers[i].name_len, name))
			return &req->headers[i];
	return NULL;
}
