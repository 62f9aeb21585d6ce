/* Tests of daemon/http/http_reply.c, the reply writer, through http.h: a
 * server on a private event_base answers over a socketpair with what each
 * test plans, and the client side parses the bytes as an HTTP/1.1 client
 * would. The status line and its reason phrase, Date, Content-Length
 * (with HEAD, 204 and 304), keep-alive and close, the caller's headers,
 * what the writer refuses, and the problem+json body of its own answers.
 * The loop runs until the answer is complete: no fixed sleeps. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <json-c/json.h>

#include "http.h"
#include "suites.h"

#define S(x) x, sizeof(x) - 1

/* What on_request answers with. */
static struct {
	int status;
	const struct http_header *headers;
	size_t nheaders;
	size_t body_len; /* a body of this many bytes of pattern() */
	int buffer;      /* through http_reply_buffer() */
	int ret;         /* what the reply call returned */
	int calls;
} plan;

static struct event_base *base;
static struct http_server *srv;

static char pattern(size_t i)
{
	return (char)('a' + (i * 7) % 26);
}

static void on_request(struct http_request *req, void *arg)
{
	char *body = NULL;

	(void)arg;
	plan.calls++;
	if (plan.body_len) {
		body = malloc(plan.body_len);
		ck_assert_ptr_nonnull(body);
		for (size_t i = 0; i < plan.body_len; i++)
			body[i] = pattern(i);
	}
	if (plan.buffer) {
		struct evbuffer *b = evbuffer_new();

		if (body)
			evbuffer_add(b, body, plan.body_len);
		free(body);
		plan.ret = http_reply_buffer(req, plan.status, plan.headers, plan.nheaders, b);
		evbuffer_free(b);
		return;
	}
	plan.ret = http_reply(req, plan.status, plan.headers, plan.nheaders, body, plan.body_len);
}

static void setup(void)
{
	struct http_limits l = {
		.max_header_size = 4096,
		.max_request_body = 1024,
		.max_connections = 8,
		.header_timeout_ms = 5000,
		.body_timeout_ms = 5000,
		.idle_timeout_ms = 5000,
		.admin_max_connections = 2,
	};

	signal(SIGPIPE, SIG_IGN);
	memset(&plan, 0, sizeof(plan));
	plan.status = 200;
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	srv = http_server_new(base, &l, on_request, NULL, NULL);
	ck_assert_ptr_nonnull(srv);
}

static void teardown(void)
{
	http_server_free(srv);
	srv = NULL;
	event_base_free(base);
	base = NULL;
}

static int client(void)
{
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(http_server_add_connection(srv, sv[0], HTTP_LISTENER_APP), 0);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	return sv[1];
}

static void send_all(int fd, const char *s, size_t len)
{
	ck_assert_int_eq(write(fd, s, len), (ssize_t)len);
}

/* ---- the client side ---- */

struct answer {
	int status;
	char reason[64];
	struct {
		char name[64], value[256];
	} h[32];
	int nh;
	const char *body;
	size_t body_len;
};

/* What the client read, kept across answers on one connection. */
static struct {
	char *data;
	size_t len, off, cap;
	int eof;
} in;

static void in_reset(void)
{
	free(in.data);
	memset(&in, 0, sizeof(in));
}

/* Runs the loop once and reads what is there; waits up to 10 ms. */
static void pump(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	event_base_loop(base, EVLOOP_NONBLOCK);
	poll(&p, 1, 10);
	for (;;) {
		ssize_t n;

		if (in.cap - in.len < 65536) {
			in.cap = in.cap * 2 + 65536;
			in.data = realloc(in.data, in.cap + 1);
		}
		n = read(fd, in.data + in.len, in.cap - in.len);
		if (n == 0)
			in.eof = 1;
		if (n <= 0)
			break;
		in.len += (size_t)n;
	}
	in.data[in.len] = '\0';
}

static const char *header(const struct answer *a, const char *name)
{
	for (int i = 0; i < a->nh; i++)
		if (strcasecmp(a->h[i].name, name) == 0)
			return a->h[i].value;
	return NULL;
}

static int count(const struct answer *a, const char *name)
{
	int n = 0;

	for (int i = 0; i < a->nh; i++)
		n += strcasecmp(a->h[i].name, name) == 0;
	return n;
}

/* Parses the answer at in.off once it is whole: 1 and *a, or 0 to wait.
 * no_body: the request was HEAD (a Content-Length frames nothing). */
static int parse_answer(struct answer *a, int no_body)
{
	const char *p = in.data + in.off, *end, *line;
	const char *cl;
	size_t body = 0;

	if (!in.data)
		return 0;
	end = strstr(p, "\r\n\r\n");
	if (!end)
		return 0;
	memset(a, 0, sizeof(*a));
	ck_assert_msg(strncmp(p, "HTTP/1.1 ", 9) == 0, "status line: '%.40s'", p);
	ck_assert_msg(p[9] >= '1' && p[9] <= '5' && p[10] >= '0' && p[10] <= '9' && p[11] >= '0' &&
			  p[11] <= '9' && p[12] == ' ',
		      "status line: '%.40s'", p);
	a->status = atoi(p + 9);
	line = strstr(p, "\r\n");
	snprintf(a->reason, sizeof(a->reason), "%.*s", (int)(line - (p + 13)), p + 13);
	while (line < end) {
		const char *next = strstr(line + 2, "\r\n"), *colon;

		line += 2;
		colon = memchr(line, ':', (size_t)(next - line));
		ck_assert_msg(colon && colon > line, "header line '%.*s'", (int)(next - line),
			      line);
		ck_assert_msg(colon[1] == ' ', "no SP after the colon: '%.*s'", (int)(next - line),
			      line);
		ck_assert_int_lt(a->nh, 32);
		snprintf(a->h[a->nh].name, sizeof(a->h[0].name), "%.*s", (int)(colon - line), line);
		snprintf(a->h[a->nh].value, sizeof(a->h[0].value), "%.*s", (int)(next - colon - 2),
			 colon + 2);
		a->nh++;
		line = next;
	}
	cl = header(a, "Content-Length");
	if (cl && !no_body && a->status != 204 && a->status != 304)
		body = strtoul(cl, NULL, 10);
	if ((size_t)(end + 4 - in.data) + body > in.len)
		return 0;
	a->body = end + 4;
	a->body_len = body;
	in.off = (size_t)(end + 4 - in.data) + body;
	return 1;
}

/* Reads the next whole answer on fd (at most 2 s). */
static void next_answer(int fd, struct answer *a, int no_body)
{
	for (int i = 0; i < 200; i++) {
		if (parse_answer(a, no_body))
			return;
		if (in.eof)
			break;
		pump(fd);
	}
	ck_abort_msg("no whole answer: '%.200s'", in.data ? in.data + in.off : "");
}

/* 1 when the server closed fd's connection within 2 s. */
static int closed(int fd)
{
	for (int i = 0; i < 200 && !in.eof; i++)
		pump(fd);
	return in.eof;
}

/* One request on a fresh connection, its answer in *a; returns the fd. */
static int ask(const char *req, size_t len, struct answer *a, int no_body)
{
	int fd = client();

	in_reset();
	send_all(fd, req, len);
	next_answer(fd, a, no_body);
	return fd;
}

static void done(int fd)
{
	close(fd);
	in_reset();
	event_base_loop(base, EVLOOP_NONBLOCK);
}

/* ---- status line ---- */

/* RFC 9110 section 15's reason phrases, and none for an unregistered code
 * (the SP before the empty phrase is still there). */
static const struct {
	int status;
	const char *reason;
} phrases[] = {
	{ 200, "OK" },
	{ 201, "Created" },
	{ 202, "Accepted" },
	{ 203, "Non-Authoritative Information" },
	{ 204, "No Content" },
	{ 206, "Partial Content" },
	{ 301, "Moved Permanently" },
	{ 302, "Found" },
	{ 303, "See Other" },
	{ 304, "Not Modified" },
	{ 307, "Temporary Redirect" },
	{ 308, "Permanent Redirect" },
	{ 400, "Bad Request" },
	{ 401, "Unauthorized" },
	{ 403, "Forbidden" },
	{ 404, "Not Found" },
	{ 405, "Method Not Allowed" },
	{ 408, "Request Timeout" },
	{ 409, "Conflict" },
	{ 410, "Gone" },
	{ 412, "Precondition Failed" },
	{ 413, "Content Too Large" },
	{ 414, "URI Too Long" },
	{ 415, "Unsupported Media Type" },
	{ 421, "Misdirected Request" },
	{ 422, "Unprocessable Content" },
	{ 425, "Too Early" },
	{ 429, "Too Many Requests" },
	{ 431, "Request Header Fields Too Large" },
	{ 500, "Internal Server Error" },
	{ 501, "Not Implemented" },
	{ 502, "Bad Gateway" },
	{ 503, "Service Unavailable" },
	{ 504, "Gateway Timeout" },
	{ 505, "HTTP Version Not Supported" },
	{ 299, "" },
	{ 418, "" },
	{ 599, "" },
};

START_TEST(test_status_line)
{
	struct answer a;
	char want[80];
	int fd;

	plan.status = phrases[_i].status;
	plan.body_len = 3;
	fd = ask(S("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), &a, 0);
	ck_assert_int_eq(plan.ret, 0);
	ck_assert_int_eq(a.status, phrases[_i].status);
	ck_assert_str_eq(a.reason, phrases[_i].reason);
	snprintf(want, sizeof(want), "HTTP/1.1 %d %s\r\n", phrases[_i].status, phrases[_i].reason);
	ck_assert_int_eq(strncmp(in.data, want, strlen(want)), 0);
	done(fd);
}
END_TEST

/* ---- Date ---- */

START_TEST(test_date)
{
	struct answer a;
	struct tm tm;
	const char *d, *rest;
	time_t before = time(NULL), when;
	int fd = ask(S("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), &a, 0);

	ck_assert_int_eq(count(&a, "Date"), 1);
	d = header(&a, "Date");
	/* IMF-fixdate (RFC 9110 5.6.7): "Sun, 06 Nov 1994 08:49:37 GMT" */
	ck_assert_uint_eq(strlen(d), 29);
	memset(&tm, 0, sizeof(tm));
	rest = strptime(d, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	ck_assert_msg(rest && *rest == '\0', "Date: %s", d);
	when = timegm(&tm);
	ck_assert_msg(when >= before - 1 && when <= time(NULL) + 1, "Date: %s", d);
	done(fd);
}
END_TEST

/* A relayed answer that has its Date keeps it, alone. */
START_TEST(test_date_of_the_caller)
{
	static const struct http_header h[] = {
		{ "date", 4, "Sun, 06 Nov 1994 08:49:37 GMT", 29 },
	};
	struct answer a;
	int fd;

	plan.headers = h;
	plan.nheaders = 1;
	fd = ask(S("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), &a, 0);
	ck_assert_int_eq(count(&a, "Date"), 1);
	ck_assert_str_eq(header(&a, "Date"), "Sun, 06 Nov 1994 08:49:37 GMT");
	done(fd);
}
END_TEST

/* ---- Content-Length and the body ---- */

/* Around the size kept next to the head, and well past it; as a plain
 * body and as an evbuffer. */
static const size_t body_sizes[] = { 0, 1, 100, 16383, 16384, 16385, 300000 };
#define NSIZES ((int)(sizeof(body_sizes) / sizeof(body_sizes[0])))

START_TEST(test_content_length)
{
	struct answer a;
	char want[32];
	int fd;

	plan.body_len = body_sizes[_i % NSIZES];
	plan.buffer = _i >= NSIZES;
	fd = ask(S("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), &a, 0);
	ck_assert_int_eq(plan.ret, 0);
	ck_assert_int_eq(count(&a, "Content-Length"), 1);
	snprintf(want, sizeof(want), "%zu", plan.body_len);
	ck_assert_str_eq(header(&a, "Content-Length"), want);
	ck_assert_uint_eq(a.body_len, plan.body_len);
	for (size_t i = 0; i < a.body_len; i++)
		if (a.body[i] != pattern(i))
			ck_abort_msg("byte %zu of %zu differs", i, plan.body_len);
	/* nothing more than the body was sent */
	ck_assert_uint_eq(in.off, in.len);
	done(fd);
}
END_TEST

/* The caller's Content-Length cannot contradict the body it gives. */
START_TEST(test_content_length_of_the_caller_dropped)
{
	static const struct http_header h[] = {
		{ "Content-Length", 14, "999", 3 },
		{ "X-After", 7, "1", 1 },
	};
	struct answer a;
	int fd;

	plan.headers = h;
	plan.nheaders = 2;
	plan.body_len = 5;
	fd = ask(S("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), &a, 0);
	ck_assert_int_eq(count(&a, "Content-Length"), 1);
	ck_assert_str_eq(header(&a, "Content-Length"), "5");
	ck_assert_str_eq(header(&a, "X-After"), "1");
	/* the connection still frames the next answer right */
	send_all(fd, S("GET /2 HTTP/1.1\r\nHost: a\r\n\r\n"));
	next_answer(fd, &a, 0);
	ck_assert_int_eq(a.status, 200);
	ck_assert_uint_eq(a.body_len, 5);
	done(fd);
}
END_TEST

/* HEAD: the length the GET would have, no body; a relayed HEAD answer's
 * own Content-Length is the one kept. The next answer on the connection
 * starts right after the head. */
START_TEST(test_head)
{
	static const struct http_header h[] = { { "Content-Length", 14, "1234", 4 } };
	struct answer a;
	int fd;

	plan.body_len = 10;
	plan.buffer = _i;
	fd = ask(S("HEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), &a, 1);
	ck_assert_int_eq(a.status, 200);
	ck_assert_str_eq(header(&a, "Content-Length"), "10");
	next_answer(fd, &a, 0);
	ck_assert_int_eq(a.status, 200);
	ck_assert_uint_eq(a.body_len, 10);
	ck_assert_int_eq(a.body[0], pattern(0));
	ck_assert_uint_eq(in.off, in.len);

	plan.headers = h;
	plan.nheaders = 1;
	send_all(fd, S("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"));
	next_answer(fd, &a, 1);
	ck_assert_int_eq(count(&a, "Content-Length"), 1);
	ck_assert_str_eq(header(&a, "Content-Length"), "1234");
	plan.headers = NULL;
	plan.nheaders = 0;
	send_all(fd, S("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
	next_answer(fd, &a, 0);
	ck_assert_uint_eq(a.body_len, 10);
	ck_assert_uint_eq(in.off, in.len);
	done(fd);
}
END_TEST

/* 204 and 304 have no body and no Content-Length (RFC 9110 8.6), even when
 * the caller hands one over; the next answer follows the head. */
START_TEST(test_no_body_statuses)
{
	struct answer a;
	int fd;

	plan.status = _i ? 304 : 204;
	plan.body_len = 7;
	fd = ask(S("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), &a, 0);
	ck_assert_int_eq(a.status, plan.status);
	ck_assert_int_eq(count(&a, "Content-Length"), 0);
	pump(fd);
	ck_assert_uint_eq(in.off, in.len); /* no body bytes after the head */
	plan.status = 200;
	send_all(fd, S("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
	next_answer(fd, &a, 0);
	ck_assert_int_eq(a.status, 200);
	ck_assert_uint_eq(a.body_len, 7);
	done(fd);
}
END_TEST

/* ---- keep-alive and close ---- */

START_TEST(test_keep_alive_http11)
{
	struct answer a;
	int fd = ask(S("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), &a, 0);

	ck_assert_ptr_null(header(&a, "Connection")); /* persistent by default */
	for (int i = 0; i < 3; i++) {
		send_all(fd, S("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
		next_answer(fd, &a, 0);
		ck_assert_int_eq(a.status, 200);
	}
	ck_assert_int_eq(plan.calls, 4);
	ck_assert_int_eq(in.eof, 0);
	done(fd);
}
END_TEST

START_TEST(test_close_asked)
{
	struct answer a;
	int fd = ask(S("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"), &a, 0);

	ck_assert_str_eq(header(&a, "Connection"), "close");
	ck_assert(closed(fd));
	done(fd);
}
END_TEST

START_TEST(test_http10)
{
	struct answer a;
	int fd = ask(S("GET / HTTP/1.0\r\n\r\n"), &a, 0);

	ck_assert_str_eq(header(&a, "Connection"), "close");
	ck_assert(closed(fd));
	done(fd);

	fd = ask(S("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), &a, 0);
	ck_assert_str_eq(header(&a, "Connection"), "keep-alive");
	send_all(fd, S("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
	next_answer(fd, &a, 0);
	ck_assert_int_eq(a.status, 200);
	ck_assert_int_eq(plan.calls, 3); /* one on the closed connection, two here */
	done(fd);
}
END_TEST

/* ---- the caller's headers ---- */

/* Written as given and in order, repeated names included; HTAB and
 * obs-text in a value are fine. */
START_TEST(test_caller_headers)
{
	static const struct http_header h[] = {
		{ "X-A", 3, "1", 1 },
		{ "content-type", 12, "text/plain; charset=utf-8", 25 },
		{ "X-A", 3, "two\twords \xc3\xa9", 12 },
		{ "X-Empty", 7, "", 0 },
		{ "X-NotThis", 7, "ignored", 7 }, /* name_len cuts it to X-NotTh */
	};
	struct answer a;
	int fd, at[4];

	plan.headers = h;
	plan.nheaders = 5;
	fd = ask(S("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), &a, 0);
	ck_assert_int_eq(plan.ret, 0);
	for (int k = 0; k < 4; k++)
		at[k] = -1;
	for (int i = 0; i < a.nh; i++) {
		if (!strcmp(a.h[i].name, "X-A") && !strcmp(a.h[i].value, "1"))
			at[0] = i;
		else if (!strcmp(a.h[i].name, "content-type"))
			at[1] = i;
		else if (!strcmp(a.h[i].name, "X-A") &&
			 !strcmp(a.h[i].value, "two\twords \xc3\xa9"))
			at[2] = i;
		else if (!strcmp(a.h[i].name, "X-Empty") && !strcmp(a.h[i].value, ""))
			at[3] = i;
	}
	ck_assert_msg(at[0] >= 0 && at[0] < at[1] && at[1] < at[2] && at[2] < at[3],
		      "order %d %d %d %d: %s", at[0], at[1], at[2], at[3], in.data);
	ck_assert_str_eq(header(&a, "X-NotTh"), "ignored");
	done(fd);
}
END_TEST

/* A header that would split the answer, a name that is no token, or a
 * status out of range: nothing of it is sent; a 500 problem goes out and
 * the connection closes. */
static const struct {
	const char *what;
	struct http_header h;
	int status;
} refused_cases[] = {
	{ "CRLF in a value", { "X-A", 3, "a\r\nInjected: 1", 14 }, 200 },
	{ "LF in a value", { "X-A", 3, "a\nInjected: 1", 13 }, 200 },
	{ "CR in a value", { "X-A", 3, "a\rInjected: 1", 13 }, 200 },
	{ "NUL in a value", { "X-A", 3, "a\0Injected", 10 }, 200 },
	{ "space in a name", { "Injected X", 10, "1", 1 }, 200 },
	{ "colon in a name", { "Injected:", 9, "1", 1 }, 200 },
	{ "CRLF in a name", { "X\r\nInjected", 11, "1", 1 }, 200 },
	{ "empty name", { "", 0, "Injected", 8 }, 200 },
	{ "status 199", { "X-Injected", 10, "1", 1 }, 199 },
	{ "status 101", { "X-Injected", 10, "1", 1 }, 101 },
	{ "status 600", { "X-Injected", 10, "1", 1 }, 600 },
	{ "status 0", { "X-Injected", 10, "1", 1 }, 0 },
	{ "status -200", { "X-Injected", 10, "1", 1 }, -200 },
};

/* A problem+json answer: the body parses, its status and code are the
 * answer's, and it is framed by its Content-Length. */
static void assert_problem(const struct answer *a, int status, const char *code)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o, *v;

	ck_assert_int_eq(a->status, status);
	ck_assert_str_eq(header(a, "Content-Type"), "application/problem+json");
	ck_assert_str_eq(header(a, "Brace-Error"), code);
	ck_assert_uint_gt(a->body_len, 0);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, a->body, (int)a->body_len);
	/* the whole body is one object (a trailing newline allowed) */
	ck_assert_msg(o != NULL, "body: %.*s", (int)a->body_len, a->body);
	ck_assert_uint_ge(json_tokener_get_parse_end(tok), a->body_len - 1);
	ck_assert(json_object_object_get_ex(o, "status", &v));
	ck_assert_int_eq(json_object_get_int(v), status);
	ck_assert(json_object_object_get_ex(o, "code", &v));
	ck_assert_str_eq(json_object_get_string(v), code);
	json_object_put(o);
	json_tokener_free(tok);
}

START_TEST(test_refused)
{
	struct answer a;
	int fd;

	plan.headers = &refused_cases[_i].h;
	plan.nheaders = 1;
	plan.status = refused_cases[_i].status;
	plan.body_len = 4;
	fd = ask(S("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), &a, 0);
	ck_assert_msg(plan.ret == -EINVAL, "%s: returned %d", refused_cases[_i].what, plan.ret);
	assert_problem(&a, 500, "internal");
	ck_assert_str_eq(header(&a, "Connection"), "close");
	ck_assert(closed(fd));
	ck_assert_msg(strstr(in.data, "Injected") == NULL, "%s: sent '%s'", refused_cases[_i].what,
		      in.data);
	done(fd);
}
END_TEST

/* The server's own refusals carry a problem body too, framed and closed. */
START_TEST(test_problem_of_the_server)
{
	struct answer a;
	int fd = ask(S("GET / HTTP/1.1\r\nX-A: 1\r\n\r\n"), &a, 0); /* no Host */

	assert_problem(&a, 400, "bad_request");
	ck_assert_str_eq(header(&a, "Connection"), "close");
	ck_assert_int_eq(count(&a, "Date"), 1);
	ck_assert(closed(fd));
	ck_assert_uint_eq(in.off, in.len);
	ck_assert_int_eq(plan.calls, 0);
	done(fd);
}
END_TEST

Suite *reply_suite(void)
{
	Suite *s = suite_create("reply");
	TCase *tc = tcase_create("reply");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_status_line, 0, (int)(sizeof(phrases) / sizeof(phrases[0])));
	tcase_add_test(tc, test_date);
	tcase_add_test(tc, test_date_of_the_caller);
	tcase_add_loop_test(tc, test_content_length, 0, 2 * NSIZES);
	tcase_add_test(tc, test_content_length_of_the_caller_dropped);
	tcase_add_loop_test(tc, test_head, 0, 2);
	tcase_add_loop_test(tc, test_no_body_statuses, 0, 2);
	tcase_add_test(tc, test_keep_alive_http11);
	tcase_add_test(tc, test_close_asked);
	tcase_add_test(tc, test_http10);
	tcase_add_test(tc, test_caller_headers);
	tcase_add_loop_test(tc, test_refused, 0,
			    (int)(sizeof(refused_cases) / sizeof(refused_cases[0])));
	tcase_add_test(tc, test_problem_of_the_server);
	suite_add_tcase(s, tc);
	return s;
}
