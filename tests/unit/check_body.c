/* Tests of the http server's head mode (http_server_set_head_handler and
 * http_body_*): a server on a private event_base reads over socketpairs
 * while the test plays both the caller and the app. Bodies piped in pieces
 * through a small room (Content-Length and chunked), backpressure at the
 * socket, 100-continue sent only when the body is wanted, early answers
 * that close and drain, failures mid-body, the per-stall deadline, held
 * bodies as before, and pipelining behind a piped body. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "http.h"
#include "suites.h"

#define BODY_MS 200 /* the body deadline of these tests */

static struct event_base *base;
static struct http_server *srv;
static struct http_request *cur;        /* the request with the caller */
static int heads, requests, gone_calls; /* calls of each callback */
static int body_calls, in_api;          /* on_body calls; re-entrancy watch */
static size_t room;                     /* room given at on_head for /stream */
static int auto_read;                   /* on_body reads all that is buffered */
static enum http_body_state last_state; /* as seen by the last on_body */
static int last_status;                 /* of a failed body */
static enum problem_code last_code;
static char log_[256];                  /* what the caller saw, in order */

static char got[11 * 1024 * 1024]; /* the body bytes the caller read */
static size_t got_len;

static void note(const char *what)
{
	strncat(log_, what, sizeof(log_) - strlen(log_) - 1);
}

static void on_request(struct http_request *req, void *arg)
{
	(void)arg;
	ck_assert_int_eq(in_api, 0);
	requests++;
	note("R");
	note(req->target);
	if (!strcmp(req->target, "/hold")) {
		memcpy(got, req->body ? req->body : "", req->body_len);
		got_len = req->body_len;
		ck_assert_int_eq(req->body_length, (int64_t)req->body_len);
	}
	if (!strcmp(req->target, "/hold") || !strcmp(req->target, "/wait")) {
		cur = req;
		return;
	}
	http_reply(req, 200, NULL, 0, NULL, 0);
}

static void on_head(struct http_request *req, void *arg)
{
	(void)arg;
	heads++;
	note("H");
	note(req->target);
	cur = req;
	ck_assert(req->body_length != 0);
	if (!strcmp(req->target, "/stream"))
		ck_assert_int_eq(http_body_stream(req, room), 0);
	else if (!strcmp(req->target, "/hold"))
		ck_assert_int_eq(http_body_hold(req), 0);
	else if (!strcmp(req->target, "/early"))
		ck_assert_int_eq(http_reply(req, 413, NULL, 0, NULL, 0), 0);
}

static void on_body(struct http_request *req, void *arg)
{
	(void)arg;
	ck_assert_msg(!in_api, "on_body inside an http_body_*() call");
	ck_assert_ptr_eq(req, cur);
	body_calls++;
	if (auto_read)
		while (http_body_buffered(req))
			got_len += http_body_read(req, got + got_len, sizeof(got) - got_len);
	last_state = http_body_state(req, &last_code);
	last_status = last_state == HTTP_BODY_FAILED ? problem_code_status(last_code) : 0;
	if (last_state != HTTP_BODY_MORE && !strstr(log_, "E"))
		note(last_state == HTTP_BODY_END ? "E" : "F");
}

static void on_gone(struct http_request *req, void *arg)
{
	(void)arg;
	ck_assert_int_eq(req->gone, 1);
	gone_calls++;
}

static void start(uint64_t max_body)
{
	struct http_limits l = {
		.max_header_size = 4096,
		.max_request_body = max_body,
		.max_connections = 8,
		.header_timeout_ms = 1000,
		.body_timeout_ms = BODY_MS,
		.idle_timeout_ms = 1000,
		.admin_max_connections = 2,
	};

	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	srv = http_server_new(base, &l, on_request, on_gone, NULL);
	ck_assert_ptr_nonnull(srv);
	http_server_set_head_handler(srv, on_head, on_body);
	cur = NULL;
	heads = requests = gone_calls = body_calls = in_api = 0;
	room = 64 * 1024;
	auto_read = 1;
	last_state = HTTP_BODY_MORE;
	last_status = 0;
	log_[0] = '\0';
	got_len = 0;
}

static void setup(void)
{
	start(0);
}

static void teardown(void)
{
	http_server_free(srv);
	srv = NULL;
	event_base_free(base);
	base = NULL;
}

/* call, with in_api set while it runs */
static size_t api_ret;
#define WATCHED(call) (in_api = 1, api_ret = (size_t)(call), in_api = 0, api_ret)
#define WATCHED_VOID(call)                                                                         \
	do {                                                                                       \
		in_api = 1;                                                                        \
		call;                                                                              \
		in_api = 0;                                                                        \
	} while (0)

/* ---- the app's side ---- */

/* The other end of a socketpair served as an app connection; small kernel
 * buffers when small, so the app's writes block after a few KiB. */
static int client(int small)
{
	int sv[2], sz = 16 * 1024;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	if (small) {
		setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	}
	ck_assert_int_eq(http_server_add_connection(srv, sv[0], HTTP_LISTENER_APP), 0);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	return sv[1];
}

static void send_n(int fd, const char *s, size_t n)
{
	ck_assert_int_eq(write(fd, s, n), (ssize_t)n);
}

static void send_str(int fd, const char *s)
{
	send_n(fd, s, strlen(s));
}

static void spin(void)
{
	for (int i = 0; i < 4; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
}

static void run_ms(int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

/* What the app received: rx_len bytes, then EOF or a read error. */
static char rx[64 * 1024];
static size_t rx_len;
static int rx_eof, rx_err;

static void rx_reset(void)
{
	rx_len = 0;
	rx_eof = rx_err = 0;
}

static void rx_read(int fd)
{
	for (;;) {
		ssize_t n = read(fd, rx + rx_len, sizeof(rx) - 1 - rx_len);

		if (n > 0) {
			rx_len += (size_t)n;
			rx[rx_len] = '\0';
			continue;
		}
		if (n == 0)
			rx_eof = 1;
		else if (errno != EAGAIN && errno != EWOULDBLOCK)
			rx_err = errno;
		return;
	}
}

static void pump(int fd)
{
	for (int i = 0; i < 4; i++) {
		spin();
		rx_read(fd);
	}
}

/* Writes what the socket takes of buf (n bytes); returns how much. */
static size_t send_some(int fd, const char *buf, size_t n)
{
	ssize_t w = write(fd, buf, n);

	return w > 0 ? (size_t)w : 0;
}

static void fill(char *buf, size_t n, size_t from)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)('a' + (from + i) % 26);
}

static int is_fill(const char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (buf[i] != (char)('a' + i % 26))
			return 0;
	return 1;
}

static char body[10 * 1024 * 1024];

/* ---- piping ---- */

/* A Content-Length body written in pieces through a room of 1000 bytes,
 * then a request glued to its last byte: the caller reads exactly what was
 * sent, MORE then END, and the second request comes only after the first
 * answer. */
START_TEST(test_length_pieces)
{
	enum { LEN = 100000 };
	int fd = client(0);
	size_t sent = 0;
	char head[128];

	room = 1000;
	fill(body, LEN, 0);
	snprintf(head, sizeof(head),
		 "POST /stream HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", LEN);
	send_str(fd, head);
	spin();
	ck_assert_int_eq(heads, 1);
	ck_assert_int_eq(cur->body_length, LEN);
	ck_assert_int_eq(cur->expect_continue, 0);
	while (sent < LEN - 10) {
		size_t n = LEN - 10 - sent < 7000 ? LEN - 10 - sent : 7000;

		send_n(fd, body + sent, n);
		sent += n;
		spin();
		ck_assert_int_eq(last_state, HTTP_BODY_MORE);
		ck_assert_uint_le(http_body_buffered(cur), room + HTTP_BODY_SLICE);
	}
	/* the last bytes and the next request in one write */
	memcpy(body + LEN, "GET /next HTTP/1.1\r\nHost: x\r\n\r\n", 31);
	send_n(fd, body + sent, 10 + 31);
	spin();
	ck_assert_int_eq(last_state, HTTP_BODY_END);
	ck_assert_uint_eq(got_len, LEN);
	ck_assert(is_fill(got, LEN));
	ck_assert_int_eq(requests, 0); /* waits for the answer */
	ck_assert_int_eq(http_reply(cur, 200, NULL, 0, NULL, 0), 0);
	rx_reset();
	pump(fd);
	ck_assert_int_eq(requests, 1);
	ck_assert_str_eq(log_, "H/streamER/next");
	ck_assert_ptr_null(strstr(rx, "Connection: close"));
	ck_assert_int_eq(rx_eof, 0);
	close(fd);
}
END_TEST

/* A chunked body, chunk-size lines split across writes, chunk extensions,
 * trailers, and a request glued to the last chunk. */
START_TEST(test_chunked_pieces)
{
	static const char *const pieces[] = {
		"POST /stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
		"1",
		"a",
		";ext=1\r",
		"\n",
		"abcdefghijklmnopqrstuvwxyz",
		"\r\n",
		"1000\r\n",
		NULL, /* 4096 bytes of fill, in two writes */
		"\r\n0;last\r\nX-Trailer: t\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n",
	};
	int fd = client(0);

	room = 7;
	fill(body, 4096, 0);
	for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
		if (pieces[i]) {
			send_str(fd, pieces[i]);
		} else {
			send_n(fd, body, 100);
			spin();
			send_n(fd, body + 100, 4096 - 100);
		}
		for (int k = 0;
		     k < 100 && last_state == HTTP_BODY_MORE && cur &&
		     http_body_buffered(cur) == 0 && i + 1 == sizeof(pieces) / sizeof(pieces[0]);
		     k++)
			spin();
		spin();
		if (cur)
			ck_assert_uint_le(http_body_buffered(cur), room + HTTP_BODY_SLICE);
	}
	for (int k = 0; k < 100 && last_state == HTTP_BODY_MORE; k++)
		spin();
	ck_assert_int_eq(cur->body_length, -1);
	ck_assert_int_eq(last_state, HTTP_BODY_END);
	ck_assert_uint_eq(got_len, 26 + 4096);
	ck_assert(!memcmp(got, "abcdefghijklmnopqrstuvwxyz", 26));
	ck_assert(is_fill(got + 26, 4096));
	ck_assert_int_eq(requests, 0);
	rx_reset();
	ck_assert_int_eq(http_reply(cur, 200, NULL, 0, NULL, 0), 0);
	pump(fd);
	ck_assert_str_eq(log_, "H/streamER/next");
	ck_assert_int_eq(rx_eof, 0);
	close(fd);
}
END_TEST

/* A request with a body pipelined behind one being answered: its head
 * and body come from the pending input, a read's worth at a time. */
START_TEST(test_body_from_pending)
{
	enum { LEN = 50000 };
	static char input[LEN + 256];
	int fd = client(0);
	size_t n, sent = 0, max_seen = 0;

	room = 1000;
	fill(body, LEN, 0);
	n = (size_t)snprintf(input, sizeof(input),
			     "GET /wait HTTP/1.1\r\nHost: x\r\n\r\n"
			     "POST /stream HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n",
			     LEN);
	memcpy(input + n, body, LEN);
	n += LEN;
	while (sent < n) {
		sent += send_some(fd, input + sent, n - sent);
		spin();
	}
	ck_assert_int_eq(requests, 1);
	ck_assert_int_eq(heads, 0); /* waits for the first answer */
	auto_read = 0;
	ck_assert_int_eq(http_reply(cur, 200, NULL, 0, NULL, 0), 0);
	for (int i = 0; i < 10000 && got_len < LEN; i++) {
		spin();
		if (heads && http_body_buffered(cur) > max_seen)
			max_seen = http_body_buffered(cur);
		if (heads)
			got_len += WATCHED(http_body_read(cur, got + got_len, 300));
	}
	ck_assert_int_eq(heads, 1);
	ck_assert_uint_eq(got_len, LEN);
	ck_assert(is_fill(got, LEN));
	ck_assert_uint_le(max_seen, room + HTTP_BODY_SLICE);
	spin();
	ck_assert_int_eq(http_body_state(cur, NULL), HTTP_BODY_END);
	ck_assert_int_eq(http_reply(cur, 200, NULL, 0, NULL, 0), 0);
	close(fd);
}
END_TEST

/* Room 64 KiB, a 10 MiB body: the buffer never holds more than room and
 * one read, and the app's writes block until the caller reads. */
START_TEST(test_backpressure)
{
	enum { LEN = 10 * 1024 * 1024 };
	int fd = client(1);
	size_t sent = 0, most = 0;
	char head[128];
	int blocked = 0;

	auto_read = 0;
	fill(body, LEN, 0);
	snprintf(head, sizeof(head),
		 "PUT /stream HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", LEN);
	send_str(fd, head);
	spin();
	ck_assert_int_eq(heads, 1);
	while (got_len < LEN) {
		sent += send_some(fd, body + sent, LEN - sent);
		spin();
		if (http_body_buffered(cur) > most)
			most = http_body_buffered(cur);
		ck_assert_uint_le(http_body_buffered(cur), room + HTTP_BODY_SLICE);
		if (sent < LEN && http_body_buffered(cur) >= room) {
			/* full: the server reads no more, so the app's writes fill
			 * the socket and block until the caller reads */
			size_t buffered = http_body_buffered(cur), w = 1;

			for (int i = 0; i < 64 && w && sent < LEN; i++) {
				w = send_some(fd, body + sent, LEN - sent);
				sent += w;
				spin();
			}
			ck_assert_uint_eq(http_body_buffered(cur), buffered);
			blocked += !w;
		}
		got_len += WATCHED(http_body_read(cur, got + got_len, 24 * 1024));
	}
	ck_assert_uint_eq(sent, LEN);
	ck_assert_uint_ge(most, room);
	ck_assert_int_gt(blocked, 0);
	spin();
	ck_assert_int_eq(http_body_state(cur, NULL), HTTP_BODY_END);
	ck_assert(is_fill(got, LEN));
	ck_assert_int_eq(http_reply(cur, 204, NULL, 0, NULL, 0), 0);
	close(fd);
}
END_TEST

/* ---- 100-continue ---- */

START_TEST(test_continue_when_asked)
{
	int fd = client(0);

	rx_reset();
	send_str(fd, "PUT /wait HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
		     "Content-Length: 5\r\n\r\n");
	pump(fd);
	ck_assert_int_eq(heads, 1);
	ck_assert_int_eq(cur->expect_continue, 1);
	ck_assert_uint_eq(rx_len, 0); /* nothing before the caller asks */
	ck_assert_int_eq(WATCHED(http_body_stream(cur, 0)), 0);
	pump(fd);
	ck_assert_uint_eq(rx_len, 0); /* room 0 wants nothing yet */
	WATCHED_VOID(http_body_set_room(cur, 100));
	pump(fd);
	ck_assert_str_eq(rx, "HTTP/1.1 100 Continue\r\n\r\n");
	send_str(fd, "hello");
	pump(fd);
	ck_assert_int_eq(last_state, HTTP_BODY_END);
	ck_assert_uint_eq(got_len, 5);
	ck_assert_int_eq(http_reply(cur, 200, NULL, 0, NULL, 0), 0);
	pump(fd);
	ck_assert_ptr_null(strstr(rx + 25, "Connection: close"));
	ck_assert_ptr_null(strstr(rx + 25, "100 Continue")); /* once */
	close(fd);
}
END_TEST

START_TEST(test_continue_hold)
{
	int fd = client(0);

	rx_reset();
	send_str(fd, "PUT /hold HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
		     "Content-Length: 5\r\n\r\n");
	pump(fd);
	ck_assert_str_eq(rx, "HTTP/1.1 100 Continue\r\n\r\n");
	send_str(fd, "hello");
	pump(fd);
	ck_assert_int_eq(requests, 1);
	ck_assert_uint_eq(got_len, 5);
	ck_assert(!memcmp(got, "hello", 5));
	close(fd);
}
END_TEST

/* HTTP/1.0 never gets a 100. */
START_TEST(test_continue_http10)
{
	int fd = client(0);

	rx_reset();
	send_str(fd, "PUT /stream HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
	pump(fd);
	ck_assert_int_eq(heads, 1);
	ck_assert_int_eq(cur->expect_continue, 0);
	ck_assert_uint_eq(rx_len, 0);
	send_str(fd, "hello");
	pump(fd);
	ck_assert_int_eq(last_state, HTTP_BODY_END);
	close(fd);
}
END_TEST

/* An answer before the body is asked for: no 100, Connection: close, the
 * body the app sends anyway is read and dropped, bounded, then the
 * connection closes. */
START_TEST(test_answer_before_asking)
{
	enum { LEN = 1024 * 1024 };
	int fd = client(1);
	size_t sent = 0;
	char head[160];

	rx_reset();
	snprintf(head, sizeof(head),
		 "PUT /early HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
		 "Content-Length: %d\r\n\r\n",
		 LEN);
	send_str(fd, head);
	pump(fd);
	ck_assert_int_eq(heads, 1);
	ck_assert(!strncmp(rx, "HTTP/1.1 413 ", 13));
	ck_assert_ptr_null(strstr(rx, "100 Continue"));
	ck_assert_ptr_nonnull(strstr(rx, "Connection: close\r\n"));
	fill(body, LEN, 0);
	for (int i = 0; i < 2000 && !rx_eof && !rx_err && sent < LEN; i++) {
		ssize_t w = write(fd, body + sent, LEN - sent);

		if (w > 0)
			sent += (size_t)w;
		spin();
		rx_read(fd);
	}
	for (int i = 0; i < 20 && !rx_eof && !rx_err; i++)
		pump(fd);
	ck_assert(rx_eof || rx_err);
	ck_assert_uint_lt(sent, LEN); /* closed before the app sent it all */
	ck_assert_int_eq(requests, 0);
	ck_assert_int_eq(body_calls, 0);
	close(fd);
}
END_TEST

/* An answer mid-body (413 after 1 MiB of 10 MiB): Connection: close, the
 * rest dropped, bounded, then closed. */
START_TEST(test_answer_mid_body)
{
	enum { LEN = 10 * 1024 * 1024, CUT = 1024 * 1024 };
	int fd = client(1);
	size_t sent = 0;
	char head[128];

	rx_reset();
	fill(body, LEN, 0);
	snprintf(head, sizeof(head),
		 "PUT /stream HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", LEN);
	send_str(fd, head);
	while (got_len < CUT) {
		sent += send_some(fd, body + sent, LEN - sent);
		spin();
	}
	ck_assert_int_eq(http_reply(cur, 413, NULL, 0, NULL, 0), 0);
	for (int i = 0; i < 4000 && !rx_eof && !rx_err && sent < LEN; i++) {
		ssize_t w = write(fd, body + sent, LEN - sent);

		if (w > 0)
			sent += (size_t)w;
		spin();
		rx_read(fd);
	}
	for (int i = 0; i < 20 && !rx_eof && !rx_err; i++)
		pump(fd);
	ck_assert(!strncmp(rx, "HTTP/1.1 413 ", 13));
	ck_assert_ptr_nonnull(strstr(rx, "Connection: close\r\n"));
	ck_assert(rx_eof || rx_err);
	/* what was dropped stays within the linger cap, give or take the
	 * buffers of the socket pair */
	ck_assert_uint_lt(sent, 2 * CUT);
	ck_assert_int_eq(last_state, HTTP_BODY_MORE);
	close(fd);
}
END_TEST

/* ---- failures ---- */

START_TEST(test_over_limit_stream)
{
	int fd;

	teardown();
	start(1000);
	fd = client(0);
	room = 100;
	/* the head alone first: a body that breaks in the head's read is
	 * refused before on_head, as before */
	send_str(fd, "POST /stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
	pump(fd);
	ck_assert_int_eq(heads, 1);
	send_str(fd, "1f4\r\n");
	fill(body, 1000, 0);
	send_n(fd, body, 500);
	send_str(fd, "\r\n1f4\r\n");
	send_n(fd, body, 500);
	send_str(fd, "\r\n1\r\n");
	for (int i = 0; i < 50 && last_state == HTTP_BODY_MORE; i++)
		spin();
	ck_assert_int_eq(last_state, HTTP_BODY_FAILED);
	ck_assert_int_eq(last_status, 413);
	ck_assert_uint_eq(got_len, 1000);
	rx_reset();
	ck_assert_int_eq(http_reply(cur, 413, NULL, 0, NULL, 0), 0);
	pump(fd);
	ck_assert_ptr_nonnull(strstr(rx, "Connection: close\r\n"));
	ck_assert_int_eq(rx_eof, 1);
	close(fd);

	/* a Content-Length over the limit is refused at the head, as before */
	fd = client(0);
	rx_reset();
	send_str(fd, "POST /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n");
	pump(fd);
	ck_assert_int_eq(heads, 1);
	ck_assert(!strncmp(rx, "HTTP/1.1 413 ", 13));
	close(fd);
}
END_TEST

START_TEST(test_framing_error)
{
	int fd = client(0);

	room = 10;
	send_str(fd, "POST /stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
		     "3\r\nabc\r\n");
	pump(fd);
	ck_assert_int_eq(heads, 1);
	send_str(fd, "zz\r\nabc\r\n");
	pump(fd);
	ck_assert_int_eq(last_state, HTTP_BODY_FAILED);
	ck_assert_int_eq(last_status, 400);
	ck_assert_uint_eq(got_len, 3);
	ck_assert_int_eq(http_reply(cur, 400, NULL, 0, NULL, 0), 0);
	rx_reset();
	pump(fd);
	ck_assert_ptr_nonnull(strstr(rx, "Connection: close\r\n"));
	ck_assert_int_eq(rx_eof, 1);
	close(fd);
}
END_TEST

START_TEST(test_gone_mid_body)
{
	static const int rooms[] = { 0, 10, 1000 };
	int fd = client(0);

	room = (size_t)rooms[_i];
	send_str(fd, "POST /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789");
	pump(fd);
	ck_assert_int_eq(heads, 1);
	close(fd);
	spin();
	ck_assert_int_eq(gone_calls, 1);
	ck_assert_int_eq(cur->gone, 1);
	ck_assert_int_eq(http_reply(cur, 200, NULL, 0, NULL, 0), 0);
	spin();
}
END_TEST

/* The deadline counts a stall of the app while the server wants bytes,
 * never while the caller holds room at 0 or leaves the buffer full. */
START_TEST(test_stall_counted_only_when_wanted)
{
	int fd = client(0);

	auto_read = 0;
	room = 10;
	send_str(fd, "POST /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n");
	pump(fd);
	send_str(fd, "0123456789");
	pump(fd);
	ck_assert_uint_eq(http_body_buffered(cur), 10); /* full */
	run_ms(3 * BODY_MS);
	ck_assert_int_eq(last_state, HTTP_BODY_MORE);
	got_len += WATCHED(http_body_read(cur, got, 10));
	WATCHED_VOID(http_body_set_room(cur, 0)); /* the caller waits */
	run_ms(3 * BODY_MS);
	ck_assert_int_eq(last_state, HTTP_BODY_MORE);
	WATCHED_VOID(http_body_set_room(cur, 50));
	for (int i = 0; i < 4; i++) { /* progress keeps it alive */
		run_ms(BODY_MS / 4);
		send_str(fd, "0123456789");
		run_ms(BODY_MS / 4);
		got_len += WATCHED(http_body_read(cur, got + got_len, 10));
	}
	ck_assert_int_eq(last_state, HTTP_BODY_MORE);
	run_ms(2 * BODY_MS); /* wanted, and the app stalls */
	ck_assert_int_eq(last_state, HTTP_BODY_FAILED);
	ck_assert_int_eq(last_status, 408);
	ck_assert_int_eq(http_reply(cur, 408, NULL, 0, NULL, 0), 0);
	rx_reset();
	pump(fd);
	ck_assert_ptr_nonnull(strstr(rx, "Connection: close\r\n"));
	close(fd);
}
END_TEST

/* ---- held bodies and requests without one ---- */

START_TEST(test_hold_as_before)
{
	int fd = client(0);

	rx_reset();
	send_str(fd,
		 "POST /hold HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel");
	pump(fd);
	ck_assert_int_eq(heads, 1);
	ck_assert_int_eq(requests, 0);
	send_str(fd, "lo\r\n6\r\n world\r\n0\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n");
	pump(fd);
	ck_assert_int_eq(requests, 1);
	ck_assert_uint_eq(got_len, 11);
	ck_assert(!memcmp(got, "hello world", 11));
	ck_assert_int_eq(body_calls, 0);
	ck_assert_int_eq(http_body_state(cur, NULL), HTTP_BODY_END);
	ck_assert_int_eq(http_reply(cur, 200, NULL, 0, NULL, 0), 0);
	pump(fd);
	ck_assert_str_eq(log_, "H/holdR/holdR/next");
	ck_assert_int_eq(rx_eof, 0);
	/* a body of the head's read alone, held */
	send_str(fd, "POST /hold HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
	pump(fd);
	ck_assert_int_eq(requests, 3);
	ck_assert_uint_eq(got_len, 3);
	ck_assert_int_eq(http_reply(cur, 200, NULL, 0, NULL, 0), 0);
	pump(fd);
	close(fd);
}
END_TEST

START_TEST(test_hold_deadline)
{
	int fd = client(0);

	send_str(fd, "POST /hold HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\n\r\nabc");
	pump(fd);
	run_ms(2 * BODY_MS);
	ck_assert_int_eq(requests, 0);
	ck_assert_int_eq(body_calls, 1);
	ck_assert_int_eq(last_state, HTTP_BODY_FAILED);
	ck_assert_int_eq(last_status, 408);
	ck_assert_int_eq(http_reply(cur, 408, NULL, 0, NULL, 0), 0);
	close(fd);
}
END_TEST

START_TEST(test_no_body_on_request)
{
	int fd = client(0);

	rx_reset();
	send_str(fd, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
		     "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
	pump(fd);
	ck_assert_int_eq(heads, 0);
	ck_assert_int_eq(requests, 2);
	ck_assert_str_eq(log_, "R/aR/b");
	close(fd);
}
END_TEST

/* The whole body in the head's read, piped: on_body at once with END. */
START_TEST(test_whole_in_head_read)
{
	int fd = client(0);

	send_str(fd, "POST /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
		     "GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
	pump(fd);
	ck_assert_int_eq(last_state, HTTP_BODY_END);
	ck_assert_uint_eq(got_len, 3);
	ck_assert_int_eq(requests, 0);
	ck_assert_int_eq(http_reply(cur, 200, NULL, 0, NULL, 0), 0);
	pump(fd);
	ck_assert_str_eq(log_, "H/streamER/next");
	close(fd);
}
END_TEST

/* A streamed answer begun before the body's end: the body keeps coming
 * (both directions at once), the head says Connection: close. */
START_TEST(test_stream_answer_duplex)
{
	int fd = client(0);

	rx_reset();
	send_str(fd, "POST /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabc");
	pump(fd);
	ck_assert_int_eq(http_stream_begin(cur, 200, NULL, 0, NULL), 0);
	send_str(fd, "def");
	pump(fd);
	ck_assert_int_eq(last_state, HTTP_BODY_END);
	ck_assert_uint_eq(got_len, 6);
	ck_assert_int_eq(http_stream_end(cur), 0);
	pump(fd);
	ck_assert_ptr_nonnull(strstr(rx, "Connection: close\r\n"));
	ck_assert_int_eq(rx_eof, 1);
	close(fd);
}
END_TEST

/* max_request_body 0 is no limit, with or without head mode. */
START_TEST(test_zero_is_no_limit)
{
	int fd;

	http_server_set_head_handler(srv, NULL, NULL);
	fd = client(0);
	fill(body, 3000, 0);
	send_str(fd, "POST /hold HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\n");
	send_n(fd, body, 3000);
	pump(fd);
	ck_assert_int_eq(heads, 0);
	ck_assert_int_eq(requests, 1);
	ck_assert_uint_eq(got_len, 3000);
	ck_assert(is_fill(got, 3000));
	ck_assert_int_eq(http_reply(cur, 200, NULL, 0, NULL, 0), 0);
	close(fd);
}
END_TEST

Suite *body_suite(void)
{
	Suite *s = suite_create("body");
	TCase *t = tcase_create("body");

	tcase_set_timeout(t, 30);
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, test_length_pieces);
	tcase_add_test(t, test_chunked_pieces);
	tcase_add_test(t, test_body_from_pending);
	tcase_add_test(t, test_backpressure);
	tcase_add_test(t, test_continue_when_asked);
	tcase_add_test(t, test_continue_hold);
	tcase_add_test(t, test_continue_http10);
	tcase_add_test(t, test_answer_before_asking);
	tcase_add_test(t, test_answer_mid_body);
	tcase_add_test(t, test_over_limit_stream);
	tcase_add_test(t, test_framing_error);
	tcase_add_loop_test(t, test_gone_mid_body, 0, 3);
	tcase_add_test(t, test_stall_counted_only_when_wanted);
	tcase_add_test(t, test_hold_as_before);
	tcase_add_test(t, test_hold_deadline);
	tcase_add_test(t, test_no_body_on_request);
	tcase_add_test(t, test_whole_in_head_read);
	tcase_add_test(t, test_stream_answer_duplex);
	tcase_add_test(t, test_zero_is_no_limit);
	suite_add_tcase(s, t);
	return s;
}
