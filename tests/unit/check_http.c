/* Tests of daemon/http/: the server on a private event_base, driven over
 * socketpair()s (and a loopback listener for the accept limits): framing
 * rules, chunked bodies, pipelining order, HTTP/1.0, 100-continue, its own
 * problem+json answers, deadlines in milliseconds and max_connections. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "http.h"
#include "suites.h"

static struct event_base *base;
static struct http_server *srv;
static struct http_request *held; /* a request answered later */
static int gone_calls;
static int bad_reply; /* answer with a header that cannot be sent */

static void on_request(struct http_request *req, void *arg)
{
	char *body;
	int n;

	(void)arg;
	if (strstr(req->target, "/slow")) {
		held = req;
		return;
	}
	body = malloc(req->body_len + 256);
	n = sprintf(body, "%s %s %d %zu|", req->method, req->target, req->nheaders > 0 ? 1 : 0,
		    req->body_len);
	memcpy(body + n, req->body ? req->body : "", req->body_len);
	if (bad_reply) {
		struct http_header h = { "X-Bad", 5, "a\r\nb", 4 };

		http_reply(req, 200, &h, 1, body, (size_t)n + req->body_len);
		return;
	}
	http_reply(req, 200, NULL, 0, body, (size_t)n + req->body_len);
}

static void on_gone(struct http_request *req, void *arg)
{
	(void)req;
	(void)arg;
	gone_calls++;
}

static struct http_limits test_limits(void)
{
	struct http_limits l = {
		.max_header_size = 1024,
		.max_request_body = 64,
		.max_connections = 8,
		.header_timeout_ms = 1000,
		.body_timeout_ms = 1000,
		.idle_timeout_ms = 1000,
		.admin_max_connections = 2,
	};
	return l;
}

static void start(const struct http_limits *l)
{
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	srv = http_server_new(base, l, on_request, on_gone, NULL);
	ck_assert_ptr_nonnull(srv);
	/* The admin listener's requests come to the same test handler. */
	http_server_set_admin_handler(srv, on_request, NULL);
	held = NULL;
	gone_calls = 0;
	bad_reply = 0;
}

static void setup(void)
{
	struct http_limits l = test_limits();

	start(&l);
}

static void teardown(void)
{
	http_server_free(srv);
	srv = NULL;
	event_base_free(base);
	base = NULL;
}

/* A client: the other end of a socketpair whose server end is served as
 * a connection of kind. */
static int client_of(enum http_listener_kind kind)
{
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(http_server_add_connection(srv, sv[0], kind), 0);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	return sv[1];
}

static int client(void)
{
	return client_of(HTTP_LISTENER_APP);
}

static void run_ms(int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

static void send_str(int fd, const char *s, size_t len)
{
	ck_assert_int_eq(write(fd, s, len), (ssize_t)len);
}

/* Reads what the server sent; *eof is set when it closed. */
static char *recv_all(int fd, int *eof)
{
	static char buf[65536];
	size_t len = 0;
	ssize_t n;

	*eof = 0;
	while (len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) != 0) {
		if (n < 0)
			break;
		len += (size_t)n;
	}
	if (n == 0)
		*eof = 1;
	buf[len] = '\0';
	return buf;
}

/* Sends s on a fresh connection, runs the loop for 30 ms, returns the
 * answer. */
static char *exchange(const char *s, size_t len, int *eof)
{
	int fd = client();
	char *out;

	send_str(fd, s, len);
	run_ms(30);
	out = recv_all(fd, eof);
	close(fd);
	run_ms(1);
	return out;
}

static void assert_problem(const char *out, int eof, const char *status, const char *code)
{
	char want[128];

	ck_assert_msg(strncmp(out, status, strlen(status)) == 0, "want '%s', got '%s'", status,
		      out);
	ck_assert_msg(strstr(out, "Content-Type: application/problem+json\r\n") != NULL, "%s", out);
	snprintf(want, sizeof(want), "\"code\":\"%s\"", code);
	ck_assert_msg(strstr(out, want) != NULL, "%s not in '%s'", want, out);
	ck_assert_msg(strstr(out, "Connection: close\r\n") != NULL, "%s", out);
	ck_assert_int_eq(eof, 1);
}

#define S(x) x, sizeof(x) - 1

/* Sends the n parts of a request on a fresh connection, each in a read of
 * its own, and returns the answer. */
static char *exchange_parts(const char *const *parts, size_t n, int *eof)
{
	int fd = client();
	char *out;

	for (size_t j = 0; j < n; j++) {
		send_str(fd, parts[j], strlen(parts[j]));
		run_ms(5);
	}
	run_ms(20);
	out = recv_all(fd, eof);
	close(fd);
	run_ms(1);
	return out;
}

/* Sends req alone and checks that the server answered status with a
 * problem of code and handed nothing over; returns its counters. */
static struct http_counters refused(const char *what, const char *req, size_t len,
				    const char *status, const char *code)
{
	int eof;
	char *out = exchange(req, len, &eof);
	struct http_counters k;

	ck_assert_msg(strncmp(out, status, strlen(status)) == 0, "%s: got '%s'", what, out);
	assert_problem(out, eof, status, code);
	http_server_counters(srv, &k);
	ck_assert_uint_eq(k.requests, 0);
	return k;
}

static const struct {
	const char *what;
	const char *req;
	size_t len;
} bad_cases[] = {
	{ "CL with TE", S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: "
			  "chunked\r\n\r\n0\r\n\r\n") },
	{ "TE with CL", S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "
			  "chunked\r\nContent-Length: 3\r\n\r\nabc") },
	{ "differing CL",
	  S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd") },
	{ "malformed CL", S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3x\r\n\r\nabc") },
	{ "negative CL", S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n") },
	{ "CL list", S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc") },
	{ "TE not chunked", S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nabc") },
	{ "TE chunked then gzip",
	  S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n") },
	{ "obs-fold", S("GET / HTTP/1.1\r\nHost: a\r\nX-A: a\r\n b\r\n\r\n") },
	{ "obs-fold of empty", S("GET / HTTP/1.1\r\nHost: a\r\nX-A:\r\n\tb\r\n\r\n") },
	{ "NUL in value", S("GET / HTTP/1.1\r\nHost: a\r\nX-A: a\0b\r\n\r\n") },
	{ "bare CR in value", S("GET / HTTP/1.1\r\nHost: a\r\nX-A: a\rb\r\n\r\n") },
	{ "bare CR after version", S("GET / HTTP/1.1\rX-A: b\r\n\r\n") },
	{ "DEL in value", S("GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x7f\r\n\r\n") },
	{ "ESC in value", S("GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x1b[0m\r\n\r\n") },
	{ "SOH in value", S("GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x01b\r\n\r\n") },
	{ "name with space", S("GET / HTTP/1.1\r\nHost: a\r\nX-A : a\r\n\r\n") },
	{ "name not a token", S("GET / HTTP/1.1\r\nHost: a\r\nX(A): a\r\n\r\n") },
	{ "HTTP/0.9", S("GET /\r\n\r\n") },
	{ "HTTP/2.0", S("GET / HTTP/2.0\r\n\r\n") },
	{ "space in target", S("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n") },
	{ "lower-case method", S("get / HTTP/1.1\r\nHost: a\r\n\r\n") },
	/* RFC 9112 3: one SP between the parts of the request line */
	{ "two spaces after the method", S("GET  /x HTTP/1.1\r\nHost: a\r\n\r\n") },
	{ "two spaces before the version", S("GET /x  HTTP/1.1\r\nHost: a\r\n\r\n") },
	/* RFC 9112 3.2: exactly one Host on HTTP/1.1, never two */
	{ "HTTP/1.1 without Host", S("GET /x HTTP/1.1\r\nX-A: 1\r\n\r\n") },
	{ "two Host fields", S("GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n") },
	{ "two equal Host fields", S("GET /x HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n") },
	{ "HTTP/1.0 with two Host fields", S("GET /x HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n") },
	/* RFC 9112 6.1 and 7: chunked once and last, never on HTTP/1.0 */
	{ "TE chunked twice",
	  S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n") },
	{ "TE chunked in two fields", S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "
					"chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n") },
	{ "TE chunked with a parameter",
	  S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=1\r\n\r\n0\r\n\r\n") },
	{ "TE on HTTP/1.0",
	  S("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n") },
	/* a chunk size past 2^63-1 is no length: refused before waiting for it */
	{ "chunk size 2^64-1", S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
				 "ffffffffffffffff\r\nabc") },
	{ "chunk size 2^63", S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
			       "8000000000000000\r\nabc") },
	{ "chunk size 2^64", S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
			       "10000000000000000\r\nabc") },
};

/* A transfer coding before chunked would reach the upstream without its
 * label: 501, not forwarded, whatever the fields it is spread over. */
static const struct {
	const char *what;
	const char *req;
	size_t len;
} coding_cases[] = {
	{ "gzip, chunked",
	  S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
	    "3\r\nabc\r\n0\r\n\r\n") },
	{ "gzip then chunked fields",
	  S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: "
	    "chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n") },
	{ "identity, chunked",
	  S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity ,\tchunked\r\n\r\n"
	    "3\r\nabc\r\n0\r\n\r\n") },
	{ "deflate with a parameter",
	  S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: x;q=1, CHUNKED\r\n\r\n") },
};

START_TEST(test_transfer_coding_501)
{
	struct http_counters k = refused(coding_cases[_i].what, coding_cases[_i].req,
					 coding_cases[_i].len, "HTTP/1.1 501 ", "not_implemented");

	ck_assert_uint_eq(k.not_implemented, 1);
	ck_assert_uint_eq(k.bad_requests, 0);
}
END_TEST

/* What the stricter rules still take: HTTP/1.0 without Host, an empty
 * Host, chunked in any case with empty list elements, and a request line
 * split over reads at its spaces. */
START_TEST(test_strict_still_accepts)
{
	static const char *whole[] = {
		"GET /a HTTP/1.0\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost:\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , CHUNKED\r\n\r\n"
		"1\r\nz\r\n0\r\n\r\n",
		"\r\nGET /a HTTP/1.1\r\nHost: a\r\n\r\n",
	};
	static const char *split[][3] = {
		{ "GET", " /a", " HTTP/1.1\r\nHost: a\r\n\r\n" },
		{ "GET ", "/a ", "HTTP/1.1\r\nHost: a\r\n\r\n" },
		{ "GET /", "a H", "TTP/1.1\r\nHost: a\r\n\r\n" },
		{ "G", "ET /a HTTP/", "1.1\r\nHost: a\r\n\r\n" },
	};
	int eof;

	for (size_t i = 0; i < sizeof(whole) / sizeof(whole[0]); i++) {
		char *out = exchange(whole[i], strlen(whole[i]), &eof);

		ck_assert_msg(strncmp(out, "HTTP/1.1 200 ", 13) == 0, "%zu: '%s'", i, out);
	}
	for (size_t i = 0; i < sizeof(split) / sizeof(split[0]); i++) {
		char *out = exchange_parts(split[i], 3, &eof);

		ck_assert_msg(strncmp(out, "HTTP/1.1 200 ", 13) == 0, "split %zu: '%s'", i, out);
	}
}
END_TEST

/* Two spaces are found when each lands in a read of its own. */
START_TEST(test_request_line_spaces_split)
{
	static const char *parts[][2] = {
		{ "GET ", " /a HTTP/1.1\r\nHost: a\r\n\r\n" },
		{ "GET /a ", " HTTP/1.1\r\nHost: a\r\n\r\n" },
	};
	int eof;

	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		char *out = exchange_parts(parts[i], 2, &eof);

		assert_problem(out, eof, "HTTP/1.1 400 ", "bad_request");
	}
}
END_TEST

START_TEST(test_framing_rejected)
{
	struct http_counters k = refused(bad_cases[_i].what, bad_cases[_i].req, bad_cases[_i].len,
					 "HTTP/1.1 400 ", "bad_request");

	ck_assert_uint_eq(k.bad_requests, 1);
}
END_TEST

/* A fold split over two reads is found as well. */
START_TEST(test_fold_split)
{
	static const char *parts[][2] = {
		{ "GET / HTTP/1.1\r\nHost: a\r\nX-A: a", "\r\n b\r\n\r\n" },
		{ "GET / HTTP/1.1\r\nHost: a\r\nX-A: a\r\n", " b\r\n\r\n" },
		{ "GET / HTTP/1.1\r\nHost: a\r\nX-A: a\r\n ", "b\r\n\r\n" },
		{ "GET / HTTP/1.1\r\nHost: a\r\nX-A:", "\r\n b\r\n\r\n" },
		{ "GET / HTTP/1.1\r\nHost: a\r\nX-A:\r\n", " b\r\n\r\n" },
	};
	int eof;

	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		char *out = exchange_parts(parts[i], 2, &eof);

		ck_assert_msg(strncmp(out, "HTTP/1.1 400 ", 13) == 0, "case %zu: '%s'", i, out);
	}
}
END_TEST

/* Values split over reads, obs-text and trailing whitespace are fine. */
START_TEST(test_values)
{
	int fd = client(), eof;
	char *out;

	send_str(fd, S("GET /v HTTP/1.1\r\nHost: a\r\nX-A: a\x80\xff b  \t\r\nX-B: lo"));
	run_ms(5);
	send_str(fd, S("ng\r\nX-C:\r\n\r\n"));
	run_ms(20);
	ck_assert_ptr_null(held);
	out = recv_all(fd, &eof);
	ck_assert_msg(strstr(out, "HTTP/1.1 200 OK\r\n") == out, "%s", out);
	ck_assert_int_eq(eof, 0);
	close(fd);
}
END_TEST

static void check_headers(struct http_request *req, void *arg)
{
	const struct http_header *h;

	(void)arg;
	ck_assert_uint_eq(req->nheaders, 4);
	h = http_request_header(req, "x-a");
	ck_assert_ptr_nonnull(h);
	ck_assert_uint_eq(h->value_len, 5);
	ck_assert_int_eq(memcmp(h->value, "a\x80\xff b", 5), 0);
	h = http_request_header(req, "X-B");
	ck_assert_uint_eq(h->value_len, 4);
	ck_assert_int_eq(memcmp(h->value, "long", 4), 0);
	h = http_request_header(req, "X-C");
	ck_assert_uint_eq(h->value_len, 0);
	ck_assert_str_eq(req->method, "GET");
	ck_assert_str_eq(req->target, "/v");
	http_reply(req, 204, NULL, 0, NULL, 0);
}

static void reply_451(struct http_request *req, void *arg)
{
	(void)arg;
	http_reply(req, 451, NULL, 0, NULL, 0);
}

/* Every status a proxied answer may carry goes out with its reason phrase. */
START_TEST(test_reason_phrase)
{
	struct http_limits l = test_limits();
	int fd, eof;
	char *out;

	teardown();
	base = event_base_new();
	srv = http_server_new(base, &l, reply_451, NULL, NULL);
	fd = client();
	send_str(fd, S("GET /v HTTP/1.1\r\nHost: a\r\n\r\n"));
	run_ms(20);
	out = recv_all(fd, &eof);
	ck_assert_msg(strstr(out, "HTTP/1.1 451 Unavailable For Legal Reasons\r\n") == out, "%s",
		      out);
	close(fd);
}
END_TEST

START_TEST(test_header_values_parsed)
{
	struct http_limits l = test_limits();
	int fd, eof;
	char *out;

	teardown();
	base = event_base_new();
	srv = http_server_new(base, &l, check_headers, NULL, NULL);
	fd = client();
	send_str(fd, S("GET /v HTTP/1.1\r\nHost: a\r\nX-A: a\x80\xff b  \t\r\nX-B: lo"));
	run_ms(5);
	send_str(fd, S("ng\r\nX-C:\r\n\r\n"));
	run_ms(20);
	out = recv_all(fd, &eof);
	ck_assert_msg(strstr(out, "HTTP/1.1 204 No Content\r\n") == out, "%s", out);
	close(fd);
}
END_TEST

/* llhttp 8.1 refuses a second extension after one with a value (a=b;c):
 * the forms below are the ones it takes. */
START_TEST(test_chunked_extensions)
{
	int eof;
	char *out =
	    exchange(S("POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
		       "3;q=\"x y\";e\r\nabc\r\n2;a=b\r\nde\r\n0;z\r\nTrailer-X: 1\r\n\r\n"),
		     &eof);

	ck_assert_msg(strstr(out, "HTTP/1.1 200 OK\r\n") == out, "%s", out);
	ck_assert_msg(strstr(out, "\r\n\r\nPOST /c 1 5|abcde") != NULL, "%s", out);
}
END_TEST

/* HEAD and GET bodies are read by their framing, so the next request on the
 * connection starts where they end. */
START_TEST(test_head_with_body)
{
	int eof;
	char *out = exchange(S("HEAD /h HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nGET /xGET "
			       "/g HTTP/1.1\r\nHost: a\r\n"
			       "\r\n"),
			     &eof);
	char *second = strstr(out + 1, "HTTP/1.1 200");
	const char *after_date;

	/* "Date: Sun, 06 Nov 1994 08:49:37 GMT": braced's own answers carry it. */
	ck_assert_msg(strncmp(out, "HTTP/1.1 200 OK\r\nDate: ", 23) == 0, "%s", out);
	after_date = strstr(out, " GMT\r\n");
	ck_assert_ptr_nonnull(after_date);
	ck_assert_int_eq(after_date - (out + 23), 25);
	ck_assert_msg(strncmp(after_date + 6, "Content-Length: 18\r\n\r\nHTTP/1.1 200", 34) == 0,
		      "%s", out);
	ck_assert_ptr_nonnull(second);
	ck_assert_msg(strstr(second, "GET /g 1 0|") != NULL, "%s", out);
	ck_assert_ptr_null(strstr(out, "/x"));
}
END_TEST

START_TEST(test_pipelining_order)
{
	int fd = client(), eof;
	char *out, *a, *b;
	struct http_request *r;

	send_str(fd,
		 S("GET /slow HTTP/1.1\r\nHost: a\r\n\r\nGET /fast HTTP/1.1\r\nHost: a\r\n\r\n"));
	run_ms(20);
	ck_assert_ptr_nonnull(held);
	out = recv_all(fd, &eof);
	ck_assert_str_eq(out, ""); /* the second is not answered before the first */
	r = held;
	held = NULL;
	http_reply(r, 200, NULL, 0, strdup("first"), 5);
	run_ms(20);
	out = recv_all(fd, &eof);
	a = strstr(out, "first");
	b = strstr(out, "GET /fast");
	ck_assert_msg(a && b && a < b, "%s", out);
	ck_assert_int_eq(eof, 0);
	close(fd);
}
END_TEST

START_TEST(test_http10)
{
	int eof;
	char *out = exchange(S("GET /a HTTP/1.0\r\n\r\n"), &eof);

	ck_assert_msg(strstr(out, "HTTP/1.1 200 OK\r\n") == out, "%s", out);
	ck_assert_ptr_nonnull(strstr(out, "Connection: close\r\n"));
	ck_assert_int_eq(eof, 1);
	out = exchange(S("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), &eof);
	ck_assert_ptr_nonnull(strstr(out, "Connection: keep-alive\r\n"));
	ck_assert_int_eq(eof, 0);
	out = exchange(S("GET /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"), &eof);
	ck_assert_ptr_nonnull(strstr(out, "Connection: close\r\n"));
	ck_assert_int_eq(eof, 1);
}
END_TEST

START_TEST(test_keep_alive_many)
{
	int fd = client(), eof;
	struct http_counters k;

	for (int i = 0; i < 5; i++) {
		char *out;

		send_str(fd, S("GET /k HTTP/1.1\r\nHost: a\r\n\r\n"));
		run_ms(5);
		out = recv_all(fd, &eof);
		ck_assert_msg(strstr(out, "HTTP/1.1 200 OK\r\n") == out, "%d: %s", i, out);
		ck_assert_int_eq(eof, 0);
	}
	http_server_counters(srv, &k);
	ck_assert_uint_eq(k.requests, 5);
	ck_assert_uint_eq(k.connections, 1);
	close(fd);
}
END_TEST

START_TEST(test_continue)
{
	int fd = client(), eof;
	char *out;

	send_str(
	    fd,
	    S("PUT /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"));
	run_ms(10);
	out = recv_all(fd, &eof);
	ck_assert_str_eq(out, "HTTP/1.1 100 Continue\r\n\r\n");
	send_str(fd, S("xyz"));
	run_ms(10);
	out = recv_all(fd, &eof);
	ck_assert_msg(strstr(out, "HTTP/1.1 200 OK\r\n") == out, "%s", out);
	ck_assert_ptr_nonnull(strstr(out, "PUT /e 1 3|xyz"));
	close(fd);
}
END_TEST

/* No 100 Continue for a body that is refused: 413 at once. */
START_TEST(test_continue_too_large)
{
	int eof;
	char *out = exchange(
	    S("PUT /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 65\r\n\r\n"),
	    &eof);

	assert_problem(out, eof, "HTTP/1.1 413 ", "payload_too_large");
	ck_assert_ptr_null(strstr(out, "100 Continue"));
}
END_TEST

START_TEST(test_headers_too_large)
{
	char req[2048];
	int n =
	    snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: a\r\nX-Big: %01100d\r\n\r\n", 0);
	int eof;
	char *out = exchange(req, (size_t)n, &eof);
	struct http_counters k;

	assert_problem(out, eof, "HTTP/1.1 431 ", "headers_too_large");
	http_server_counters(srv, &k);
	ck_assert_uint_eq(k.too_large, 1);
}
END_TEST

/* The head limit also holds for a head that never ends. */
START_TEST(test_headers_endless)
{
	int fd = client(), eof;
	char line[100];
	char *out = NULL;

	send_str(fd, S("GET / HTTP/1.1\r\nHost: a\r\n"));
	memset(line, 'a', sizeof(line));
	for (int i = 0; i < 20; i++) {
		if (write(fd, line, sizeof(line)) < 0)
			break;
		run_ms(1);
	}
	run_ms(10);
	out = recv_all(fd, &eof);
	assert_problem(out, eof, "HTTP/1.1 431 ", "headers_too_large");
	close(fd);
}
END_TEST

START_TEST(test_body_too_large)
{
	int eof;
	char *out = exchange(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 65\r\n\r\n"), &eof);

	assert_problem(out, eof, "HTTP/1.1 413 ", "payload_too_large");
	out =
	    exchange(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
		       "40\r\n0123456789012345678901234567890123456789012345678901234567890123\r\n"
		       "1\r\nx\r\n0\r\n\r\n"),
		     &eof);
	assert_problem(out, eof, "HTTP/1.1 413 ", "payload_too_large");
	out = exchange(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 64\r\n\r\n"
			 "0123456789012345678901234567890123456789012345678901234567890123"),
		       &eof);
	ck_assert_msg(strstr(out, "HTTP/1.1 200 OK\r\n") == out, "%s", out);
}
END_TEST

static void start_deadlines(void)
{
	struct http_limits l = test_limits();

	l.header_timeout_ms = 60;
	l.body_timeout_ms = 60;
	l.idle_timeout_ms = 60;
	start(&l);
}

/* A head trickled a byte at a time past header_timeout gets 408. */
START_TEST(test_header_timeout_trickle)
{
	int fd = client(), eof;
	const char *req = "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1234567890\r\n\r\n";
	char *out;
	struct http_counters k;

	for (int i = 0; i < 10; i++) {
		send_str(fd, req + i, 1);
		run_ms(10);
	}
	out = recv_all(fd, &eof);
	assert_problem(out, eof, "HTTP/1.1 408 ", "request_timeout");
	http_server_counters(srv, &k);
	ck_assert_uint_eq(k.timeouts, 1);
	close(fd);
}
END_TEST

START_TEST(test_body_timeout)
{
	int fd = client(), eof;
	char *out;

	send_str(fd, S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nab"));
	run_ms(40);
	out = recv_all(fd, &eof);
	ck_assert_str_eq(out, "");
	send_str(fd, S("cd"));
	run_ms(40);
	out = recv_all(fd, &eof);
	assert_problem(out, eof, "HTTP/1.1 408 ", "request_timeout");
	close(fd);
}
END_TEST

/* An idle keep-alive connection is closed without a word. */
START_TEST(test_idle_timeout)
{
	int fd = client(), eof;
	char *out;
	struct http_counters k;

	send_str(fd, S("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
	run_ms(10);
	out = recv_all(fd, &eof);
	ck_assert_msg(strstr(out, "HTTP/1.1 200 OK\r\n") == out, "%s", out);
	run_ms(90);
	out = recv_all(fd, &eof);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(eof, 1);
	http_server_counters(srv, &k);
	ck_assert_uint_eq(k.idle_closed, 1);
	ck_assert_uint_eq(k.connections, 0);
	close(fd);
}
END_TEST

START_TEST(test_gone)
{
	int fd = client();
	struct http_counters k;

	send_str(fd, S("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n"));
	run_ms(10);
	ck_assert_ptr_nonnull(held);
	close(fd);
	run_ms(10);
	ck_assert_int_eq(gone_calls, 1);
	ck_assert_int_eq(held->gone, 1);
	http_server_counters(srv, &k);
	ck_assert_uint_eq(k.connections, 0);
	ck_assert_int_eq(http_reply(held, 200, NULL, 0, strdup("late"), 4), 0);
	held = NULL;
	run_ms(1);
}
END_TEST

START_TEST(test_bad_reply_header)
{
	int eof;
	char *out;

	bad_reply = 1;
	out = exchange(S("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), &eof);
	assert_problem(out, eof, "HTTP/1.1 500 ", "internal");
}
END_TEST

static int listen_loopback(int *ret_port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(fd, 16), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	*ret_port = ntohs(a.sin_port);
	return fd;
}

static int connect_loopback(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

/* At max_connections the listener pauses; the kernel backlog holds the
 * next client, accepted once a connection closes. Admin ones don't count. */
START_TEST(test_max_connections)
{
	struct http_limits l = test_limits();
	struct http_counters k;
	int port, aport, fds[3], afd, eof;
	char *out;

	teardown();
	l.max_connections = 2;
	start(&l);
	ck_assert_int_eq(http_server_add_listener(srv, listen_loopback(&port), HTTP_LISTENER_APP),
			 0);
	ck_assert_int_eq(
	    http_server_add_listener(srv, listen_loopback(&aport), HTTP_LISTENER_ADMIN), 0);
	for (int i = 0; i < 3; i++)
		fds[i] = connect_loopback(port);
	run_ms(20);
	http_server_counters(srv, &k);
	ck_assert_uint_eq(k.connections, 2);
	ck_assert_uint_ge(k.accept_paused, 1);
	send_str(fds[2], S("GET /third HTTP/1.1\r\nHost: a\r\n\r\n"));
	run_ms(20);
	ck_assert_str_eq(recv_all(fds[2], &eof), "");

	afd = connect_loopback(aport);
	send_str(afd, S("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"));
	run_ms(20);
	out = recv_all(afd, &eof);
	ck_assert_msg(strstr(out, "HTTP/1.1 200 OK\r\n") == out, "%s", out);
	http_server_counters(srv, &k);
	ck_assert_uint_eq(k.admin_connections, 1);

	close(fds[0]);
	run_ms(20);
	out = recv_all(fds[2], &eof);
	ck_assert_msg(strstr(out, "GET /third") != NULL, "%s", out);
	http_server_counters(srv, &k);
	ck_assert_uint_eq(k.connections, 2);
	close(fds[1]);
	close(fds[2]);
	close(afd);
	run_ms(5);
	http_server_counters(srv, &k);
	ck_assert_uint_eq(k.connections, 0);
	ck_assert_uint_eq(k.admin_connections, 0);
}
END_TEST

START_TEST(test_admin_max_connections_of_fd_limit)
{
	ck_assert_uint_eq(http_admin_max_connections(0), 1);
	ck_assert_uint_eq(http_admin_max_connections(15), 1);
	ck_assert_uint_eq(http_admin_max_connections(64), 8);
	ck_assert_uint_eq(http_admin_max_connections(256), 32);
	ck_assert_uint_eq(http_admin_max_connections(1024), HTTP_ADMIN_MAX_CONNECTIONS);
	ck_assert_uint_eq(http_admin_max_connections(UINT64_MAX), HTTP_ADMIN_MAX_CONNECTIONS);
}
END_TEST

/* An admin request with a body is refused at its head, the body unread. */
START_TEST(test_admin_body_413)
{
	static const char *reqs[] = {
		"POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\nabc",
		"GET /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx",
		"POST /metrics HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n",
	};
	struct http_counters k;
	int eof;

	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		int fd = client_of(HTTP_LISTENER_ADMIN);
		char *out;

		send_str(fd, reqs[i], strlen(reqs[i]));
		run_ms(20);
		out = recv_all(fd, &eof);
		ck_assert_msg(strncmp(out, "HTTP/1.1 413 ", 13) == 0, "%zu: '%s'", i, out);
		ck_assert_ptr_nonnull(strstr(out, "payload_too_large"));
		close(fd);
		run_ms(1);
	}
	http_server_counters(srv, &k);
	ck_assert_uint_eq(k.requests, 0);
	ck_assert_uint_eq(k.admin_connections, 0);
	/* Content-Length: 0 is no body */
	{
		int fd = client_of(HTTP_LISTENER_ADMIN);
		char *out;

		send_str(fd, S("GET /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"));
		run_ms(20);
		out = recv_all(fd, &eof);
		ck_assert_msg(strncmp(out, "HTTP/1.1 200 ", 13) == 0, "'%s'", out);
		close(fd);
	}
}
END_TEST

/* At admin_max_connections (2 here) a new admin connection closes the
 * least recently used one that is not being answered; app connections are
 * neither counted nor touched. */
START_TEST(test_admin_cap_evicts_oldest)
{
	struct http_counters k;
	int app = client(), busy, idle, third, fourth, eof;
	char *out;

	busy = client_of(HTTP_LISTENER_ADMIN);
	send_str(busy, S("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n"));
	run_ms(5);
	ck_assert_ptr_nonnull(held);
	idle = client_of(HTTP_LISTENER_ADMIN);
	third = client_of(HTTP_LISTENER_ADMIN); /* idle makes room */
	run_ms(5);
	out = recv_all(idle, &eof);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(eof, 1);
	fourth = client_of(HTTP_LISTENER_ADMIN); /* then third; busy is kept */
	run_ms(5);
	(void)recv_all(third, &eof);
	ck_assert_int_eq(eof, 1);
	http_server_counters(srv, &k);
	ck_assert_uint_eq(k.admin_connections, 2);
	ck_assert_uint_eq(k.admin_evicted, 2);
	ck_assert_uint_eq(k.admin_limit, 2);
	ck_assert_uint_eq(k.connections, 1);

	http_reply(held, 200, NULL, 0, strdup("late"), 4);
	held = NULL;
	run_ms(5);
	out = recv_all(busy, &eof);
	ck_assert_msg(strstr(out, "HTTP/1.1 200 OK\r\n") == out, "%s", out);
	send_str(fourth, S("GET /f HTTP/1.1\r\nHost: a\r\n\r\n"));
	send_str(app, S("GET /a HTTP/1.1\r\nHost: a\r\n\r\n"));
	run_ms(5);
	out = recv_all(fourth, &eof);
	ck_assert_msg(strstr(out, "HTTP/1.1 200 OK\r\n") == out, "%s", out);
	out = recv_all(app, &eof);
	ck_assert_msg(strstr(out, "HTTP/1.1 200 OK\r\n") == out, "%s", out);
	close(app);
	close(busy);
	close(idle);
	close(third);
	close(fourth);
	run_ms(1);
}
END_TEST

START_TEST(test_add_connection_at_limit)
{
	struct http_limits l = test_limits();
	int sv[2];

	teardown();
	l.max_connections = 1;
	start(&l);
	(void)client();
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(http_server_add_connection(srv, sv[0], HTTP_LISTENER_APP), -EBUSY);
	close(sv[1]);
}
END_TEST

Suite *http_suite(void)
{
	Suite *s = suite_create("http");
	TCase *t = tcase_create("framing");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_loop_test(t, test_framing_rejected, 0, sizeof(bad_cases) / sizeof(bad_cases[0]));
	tcase_add_loop_test(t, test_transfer_coding_501, 0,
			    sizeof(coding_cases) / sizeof(coding_cases[0]));
	tcase_add_test(t, test_strict_still_accepts);
	tcase_add_test(t, test_request_line_spaces_split);
	tcase_add_test(t, test_fold_split);
	tcase_add_test(t, test_values);
	tcase_add_test(t, test_header_values_parsed);
	tcase_add_test(t, test_reason_phrase);
	tcase_add_test(t, test_chunked_extensions);
	tcase_add_test(t, test_head_with_body);
	tcase_add_test(t, test_pipelining_order);
	tcase_add_test(t, test_http10);
	tcase_add_test(t, test_keep_alive_many);
	tcase_add_test(t, test_continue);
	tcase_add_test(t, test_continue_too_large);
	tcase_add_test(t, test_headers_too_large);
	tcase_add_test(t, test_headers_endless);
	tcase_add_test(t, test_body_too_large);
	tcase_add_test(t, test_gone);
	tcase_add_test(t, test_bad_reply_header);
	tcase_add_test(t, test_max_connections);
	tcase_add_test(t, test_add_connection_at_limit);
	tcase_add_test(t, test_admin_max_connections_of_fd_limit);
	tcase_add_test(t, test_admin_body_413);
	tcase_add_test(t, test_admin_cap_evicts_oldest);
	suite_add_tcase(s, t);

	t = tcase_create("deadlines");
	tcase_add_checked_fixture(t, start_deadlines, teardown);
	tcase_add_test(t, test_header_timeout_trickle);
	tcase_add_test(t, test_body_timeout);
	tcase_add_test(t, test_idle_timeout);
	suite_add_tcase(s, t);
	return s;
}
