/* Tests of the http server's streamed replies (http_stream_*): a server on
 * a private event_base answers over socketpairs (and loopback TCP for the
 * reset) while the test plays both the caller and the app. Framing by
 * Content-Length, chunks and the close; HEAD, 204 and 304; aborts that show
 * the truncation; on_drain at low water; pipelining behind a stream; the
 * app leaving; the per-progress stall deadline. No sleeps but short loop
 * runs. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "http.h"
#include "suites.h"

#define IDLE_MS 200 /* the stall deadline of these tests */

static struct event_base *base;
static struct http_server *srv;
static struct http_request *reqs[4]; /* requests held, in arrival order */
static int nreqs;
static int gone_calls, drain_calls;
static int in_api, in_drain;         /* re-entrancy watch */
static int drain_write;              /* bytes on_drain writes, when not 0 */
static size_t drain_queued;          /* queued seen by the last on_drain */
static struct http_request *drained; /* the request of the last on_drain */

static void on_request(struct http_request *req, void *arg)
{
	(void)arg;
	ck_assert_int_eq(in_api, 0);
	if (!strncmp(req->target, "/inline", 7)) {
		/* the whole stream inside on_request */
		ck_assert_int_eq(http_stream_begin(req, 200, NULL, 0, NULL), 0);
		ck_assert_int_eq(http_stream_write(req, "inline", 6), 0);
		ck_assert_int_eq(http_stream_end(req), 0);
		nreqs++;
		return;
	}
	if (!strncmp(req->target, "/reply", 6)) {
		char *body = strdup("second");

		http_reply(req, 200, NULL, 0, body, strlen(body));
		nreqs++;
		return;
	}
	ck_assert_int_lt(nreqs, 4);
	reqs[nreqs++] = req;
}

static void on_gone(struct http_request *req, void *arg)
{
	(void)arg;
	ck_assert_int_eq(in_api, 0);
	ck_assert_int_eq(req->gone, 1);
	gone_calls++;
}

static char body[256 * 1024];

static void on_drain(struct http_request *req, void *arg)
{
	(void)arg;
	ck_assert_msg(!in_api, "on_drain inside an http_stream_*() call");
	ck_assert_msg(!in_drain, "on_drain re-entered");
	in_drain = 1;
	drain_calls++;
	drained = req;
	drain_queued = http_stream_queued(req);
	if (drain_write)
		ck_assert_int_eq(http_stream_write(req, body, (size_t)drain_write), 0);
	in_drain = 0;
}

static void setup(void)
{
	struct http_limits l = {
		.max_header_size = 4096,
		.max_request_body = 1024,
		.max_connections = 8,
		.header_timeout_ms = 1000,
		.body_timeout_ms = 1000,
		.idle_timeout_ms = IDLE_MS,
		.admin_max_connections = 2,
	};

	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	srv = http_server_new(base, &l, on_request, on_gone, NULL);
	ck_assert_ptr_nonnull(srv);
	http_server_set_drain_handler(srv, on_drain);
	memset(reqs, 0, sizeof(reqs));
	nreqs = gone_calls = drain_calls = in_api = in_drain = drain_write = 0;
	drained = NULL;
}

static void teardown(void)
{
	http_server_free(srv);
	srv = NULL;
	event_base_free(base);
	base = NULL;
}

/* ---- the caller's calls, watched for re-entrancy ---- */

static int api_ret;
/* call, with in_api set while it runs */
#define WATCHED(call) (in_api = 1, api_ret = (call), in_api = 0, api_ret)
#define s_write(req, buf, n) WATCHED(http_stream_write(req, buf, n))
#define s_end(req) WATCHED(http_stream_end(req))
#define s_abort(req) WATCHED(http_stream_abort(req))

static int s_begin(struct http_request *req, int status, int64_t length, size_t low_water)
{
	struct http_header h = { "Content-Type", 12, "text/plain", 10 };
	struct http_stream_opts o = { length, low_water };

	return WATCHED(http_stream_begin(req, status, &h, 1, &o));
}

/* ---- the app's side ---- */

/* The other end of a socketpair served as an app connection; small kernel
 * buffers when small, so a queue builds up after a few KiB. */
static int client(int small)
{
	int sv[2], sz = 4096;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	if (small) {
		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	}
	ck_assert_int_eq(http_server_add_connection(srv, sv[0], HTTP_LISTENER_APP), 0);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	return sv[1];
}

static void send_str(int fd, const char *s)
{
	ck_assert_int_eq(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* Runs what is ready in the loop, a few rounds, without waiting. */
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
static char rx[4 * 1024 * 1024];
static size_t rx_len;
static int rx_eof, rx_err;

/* Reads at most max bytes of what is there now. Returns how many. */
static size_t rx_read(int fd, size_t max)
{
	size_t got = 0;

	while (got < max && rx_len < sizeof(rx)) {
		size_t want = max - got < sizeof(rx) - rx_len ? max - got : sizeof(rx) - rx_len;
		ssize_t n = read(fd, rx + rx_len, want);

		if (n > 0) {
			rx_len += (size_t)n;
			got += (size_t)n;
			continue;
		}
		if (n == 0)
			rx_eof = 1;
		else if (errno != EAGAIN && errno != EWOULDBLOCK)
			rx_err = errno;
		break;
	}
	return got;
}

/* Spins and reads until nothing more comes. */
static void pump(int fd)
{
	for (int idle = 0; idle < 3;) {
		spin();
		idle = rx_read(fd, SIZE_MAX) ? 0 : idle + 1;
		if (rx_eof || rx_err)
			return;
	}
}

/* The length of the head at the start of rx, or 0 when incomplete. */
static size_t head_len(void)
{
	char *e = memmem(rx, rx_len, "\r\n\r\n", 4);

	return e ? (size_t)(e - rx) + 4 : 0;
}

static int head_has(const char *line)
{
	size_t h = head_len();

	return h && memmem(rx, h, line, strlen(line)) != NULL;
}

/* Decodes the chunked body at p (len bytes) into out. Returns the bytes
 * used up to and with the last chunk, or 0 when there is none (*out_len
 * then has what the complete chunks held). Fails the test on bad framing. */
static size_t dechunk(const char *p, size_t len, char *out, size_t *out_len)
{
	size_t i = 0;

	*out_len = 0;
	for (;;) {
		size_t size = 0, start = i;

		while (i < len && p[i] != '\r') {
			ck_assert_msg((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f'),
				      "bad chunk size byte at %zu", i);
			size = size * 16 + (size_t)(p[i] <= '9' ? p[i] - '0' : p[i] - 'a' + 10);
			i++;
		}
		if (i + 2 > len)
			return 0;
		ck_assert_msg(i > start && p[i + 1] == '\n', "bad chunk size line");
		i += 2;
		if (size == 0) {
			if (i + 2 > len)
				return 0;
			ck_assert_msg(p[i] == '\r' && p[i + 1] == '\n',
				      "no CRLF after the last chunk");
			return i + 2;
		}
		if (i + size + 2 > len)
			return 0;
		memcpy(out + *out_len, p + i, size);
		*out_len += size;
		i += size;
		ck_assert_msg(p[i] == '\r' && p[i + 1] == '\n', "no CRLF after chunk data");
		i += 2;
	}
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

/* A fresh connection whose request (one GET of version minor 1 or 0, or
 * method) is with the caller. */
static int request_on(int small, const char *method, int minor)
{
	char line[128];
	int fd = client(small);

	rx_len = 0;
	rx_eof = rx_err = 0;
	snprintf(line, sizeof(line), "%s /s HTTP/1.%d\r\nHost: x\r\n\r\n", method, minor);
	send_str(fd, line);
	spin();
	ck_assert_int_eq(nreqs, 1);
	return fd;
}

/* ---- framing ---- */

START_TEST(test_length_pieces)
{
	int fd = request_on(0, "GET", 1);
	size_t total = 100000, sent = 0, h;

	ck_assert_int_eq(s_begin(reqs[0], 200, (int64_t)total, 0), 0);
	fill(body, total, 0);
	while (sent < total) {
		size_t n = total - sent < 7000 ? total - sent : 7000;

		ck_assert_int_eq(s_write(reqs[0], body + sent, n), 0);
		sent += n;
		pump(fd);
	}
	ck_assert_int_eq(s_write(reqs[0], "x", 1), -EMSGSIZE); /* past the length */
	ck_assert_int_eq(s_end(reqs[0]), 0);
	pump(fd);
	h = head_len();
	ck_assert_uint_gt(h, 0);
	ck_assert(!strncmp(rx, "HTTP/1.1 200 OK\r\n", 17));
	ck_assert(head_has("Content-Length: 100000\r\n"));
	ck_assert(head_has("Content-Type: text/plain\r\n"));
	ck_assert(!head_has("Transfer-Encoding"));
	ck_assert(!head_has("Connection: close"));
	ck_assert_uint_eq(rx_len - h, total);
	ck_assert(is_fill(rx + h, total));
	ck_assert_int_eq(rx_eof, 0); /* kept alive: the next request is read */
	send_str(fd, "GET /reply HTTP/1.1\r\nHost: x\r\n\r\n");
	rx_len = 0;
	pump(fd);
	ck_assert_int_eq(nreqs, 2);
	ck_assert(!strncmp(rx, "HTTP/1.1 200 OK\r\n", 17));
	close(fd);
}
END_TEST

START_TEST(test_chunked)
{
	static const size_t sizes[] = { 1, 15, 16, 255, 256, 4096, 70000, 3 };
	static char out[sizeof(body)];
	int fd = request_on(0, "GET", 1);
	size_t sent = 0, out_len, h, used;

	ck_assert_int_eq(s_begin(reqs[0], 200, -1, 0), 0);
	fill(body, sizeof(body), 0);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		ck_assert_int_eq(s_write(reqs[0], body + sent, sizes[i]), 0);
		sent += sizes[i];
		ck_assert_int_eq(s_write(reqs[0], body, 0), 0); /* no empty chunk */
		pump(fd);
	}
	ck_assert_int_eq(s_end(reqs[0]), 0);
	pump(fd);
	h = head_len();
	ck_assert(head_has("Transfer-Encoding: chunked\r\n"));
	ck_assert(!head_has("Content-Length"));
	used = dechunk(rx + h, rx_len - h, out, &out_len);
	ck_assert_uint_eq(used, rx_len - h); /* the last chunk ends the bytes */
	ck_assert_uint_eq(out_len, sent);
	ck_assert(is_fill(out, sent));
	ck_assert_int_eq(rx_eof, 0);
	close(fd);
}
END_TEST

START_TEST(test_http10_close)
{
	int fd = request_on(0, "GET", 0);
	size_t h;

	ck_assert_int_eq(s_begin(reqs[0], 200, -1, 0), 0);
	fill(body, 5000, 0);
	ck_assert_int_eq(s_write(reqs[0], body, 3000), 0);
	pump(fd);
	ck_assert_int_eq(s_write(reqs[0], body + 3000, 2000), 0);
	ck_assert_int_eq(s_end(reqs[0]), 0);
	pump(fd);
	h = head_len();
	ck_assert(head_has("Connection: close\r\n"));
	ck_assert(!head_has("Content-Length"));
	ck_assert(!head_has("Transfer-Encoding"));
	ck_assert_uint_eq(rx_len - h, 5000);
	ck_assert(is_fill(rx + h, 5000));
	ck_assert_int_eq(rx_eof, 1);
	ck_assert_int_eq(rx_err, 0);
	close(fd);
}
END_TEST

static const struct {
	const char *method;
	int status;
	int64_t length;
	const char *length_line; /* in the head, or NULL for none */
} bodiless[] = {
	{ "HEAD", 200, 5, "Content-Length: 5\r\n" },
	{ "HEAD", 200, -1, NULL },
	{ "GET", 204, -1, NULL },
	{ "GET", 204, 5, NULL },
	{ "GET", 304, 5, NULL },
	{ "GET", 304, -1, NULL },
};

START_TEST(test_bodiless)
{
	int fd = request_on(0, bodiless[_i].method, 1);

	ck_assert_int_eq(s_begin(reqs[0], bodiless[_i].status, bodiless[_i].length, 0), 0);
	ck_assert_int_eq(s_write(reqs[0], "hello", 5), 0);
	ck_assert_int_eq(s_end(reqs[0]), 0);
	pump(fd);
	ck_assert_uint_eq(head_len(), rx_len); /* the head alone */
	ck_assert(!head_has("Transfer-Encoding"));
	if (bodiless[_i].length_line)
		ck_assert(head_has(bodiless[_i].length_line));
	else
		ck_assert(!head_has("Content-Length"));
	ck_assert_int_eq(rx_eof, 0);
	send_str(fd, "GET /reply HTTP/1.1\r\nHost: x\r\n\r\n");
	pump(fd);
	ck_assert_int_eq(nreqs, 2);
	close(fd);
}
END_TEST

/* ---- aborts ---- */

START_TEST(test_abort_length)
{
	int fd = request_on(0, "GET", 1);

	ck_assert_int_eq(s_begin(reqs[0], 200, 1000, 0), 0);
	fill(body, 300, 0);
	ck_assert_int_eq(s_write(reqs[0], body, 300), 0);
	ck_assert_int_eq(s_abort(reqs[0]), 0);
	pump(fd);
	ck_assert(head_has("Content-Length: 1000\r\n"));
	ck_assert_uint_eq(rx_len - head_len(), 300);
	ck_assert_int_eq(rx_eof, 1);
	close(fd);
}
END_TEST

START_TEST(test_end_short_of_length)
{
	int fd = request_on(0, "GET", 1);

	ck_assert_int_eq(s_begin(reqs[0], 200, 1000, 0), 0);
	ck_assert_int_eq(s_write(reqs[0], "abc", 3), 0);
	ck_assert_int_eq(s_end(reqs[0]), -EMSGSIZE);
	pump(fd);
	ck_assert_uint_eq(rx_len - head_len(), 3);
	ck_assert_int_eq(rx_eof, 1);
	close(fd);
}
END_TEST

START_TEST(test_abort_chunked)
{
	static char out[1024];
	int fd = request_on(0, "GET", 1);
	size_t out_len, h;

	ck_assert_int_eq(s_begin(reqs[0], 200, -1, 0), 0);
	fill(body, 300, 0);
	ck_assert_int_eq(s_write(reqs[0], body, 300), 0);
	ck_assert_int_eq(s_abort(reqs[0]), 0);
	pump(fd);
	h = head_len();
	ck_assert_uint_eq(dechunk(rx + h, rx_len - h, out, &out_len), 0); /* no last chunk */
	ck_assert_uint_eq(out_len, 300);
	ck_assert_int_eq(rx_eof, 1);
	close(fd);
}
END_TEST

/* The TCP_NODELAY of the server's end (in this process) of the loopback
 * connection fd, once accepted; -1 when not found. */
static int accepted_nodelay(int fd)
{
	struct sockaddr_in mine, peer;
	socklen_t len = sizeof(mine);

	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&mine, &len), 0);
	for (int i = 0; i < 50; i++) {
		run_ms(2);
		for (int s = 3; s < 1024; s++) {
			int on = 0;
			socklen_t olen = sizeof(on);

			len = sizeof(peer);
			if (s == fd || getpeername(s, (struct sockaddr *)&peer, &len) < 0 ||
			    peer.sin_family != AF_INET || peer.sin_port != mine.sin_port)
				continue;
			ck_assert_int_eq(getsockopt(s, IPPROTO_TCP, TCP_NODELAY, &on, &olen), 0);
			return on ? 1 : 0;
		}
	}
	return -1;
}

/* HTTP/1.0 over loopback TCP: an EOF would make the cut body look whole,
 * so the app must see a reset after the bytes queued before the abort. */
START_TEST(test_abort_close_resets)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), fd;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(lfd, 4), 0);
	ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
	ck_assert_int_eq(http_server_add_listener(srv, lfd, HTTP_LISTENER_APP), 0);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	ck_assert_int_eq(accepted_nodelay(fd), 1); /* TCP_NODELAY on app sockets */
	rx_len = 0;
	rx_eof = rx_err = 0;
	send_str(fd, "GET /s HTTP/1.0\r\n\r\n");
	for (int i = 0; i < 50 && nreqs == 0; i++)
		run_ms(2);
	ck_assert_int_eq(nreqs, 1);
	ck_assert_int_eq(s_begin(reqs[0], 200, -1, 0), 0);
	fill(body, 300, 0);
	ck_assert_int_eq(s_write(reqs[0], body, 300), 0);
	ck_assert_int_eq(s_abort(reqs[0]), 0);
	for (int i = 0; i < 50 && !rx_eof && !rx_err; i++) {
		run_ms(2);
		rx_read(fd, SIZE_MAX);
	}
	ck_assert_uint_eq(rx_len - head_len(), 300);
	ck_assert(is_fill(rx + head_len(), 300));
	ck_assert_int_eq(rx_eof, 0);
	ck_assert_int_eq(rx_err, ECONNRESET);
	close(fd);
}
END_TEST

/* ---- backpressure ---- */

/* Fills the queue well above low water without reading, then reads it
 * all: one on_drain per crossing, never inside a call, and queued never
 * more than what was queued minus what the app read. */
START_TEST(test_drain_once_per_crossing)
{
	enum { PIECE = 4096, LOW = 8192 };
	struct {
		size_t queued, body, read;
	} seen[256];
	size_t nseen = 0, sent = 0, h;
	int fd = request_on(1, "GET", 1);

	ck_assert_int_eq(s_begin(reqs[0], 200, 2 * 64 * 1024, LOW), 0);
	fill(body, sizeof(body), 0);
	for (int round = 1; round <= 2; round++) {
		for (int i = 0; i < 16; i++) {
			ck_assert_int_eq(s_write(reqs[0], body + sent, PIECE), 0);
			sent += PIECE;
			spin();
			seen[nseen++] =
			    (typeof(seen[0])){ http_stream_queued(reqs[0]), sent, rx_len };
		}
		ck_assert_uint_gt(http_stream_queued(reqs[0]), LOW);
		ck_assert_int_eq(drain_calls, round - 1);
		while (http_stream_queued(reqs[0]) > 0 || rx_read(fd, SIZE_MAX)) {
			rx_read(fd, 1024);
			spin();
			seen[nseen++] =
			    (typeof(seen[0])){ http_stream_queued(reqs[0]), sent, rx_len };
			ck_assert_uint_lt(nseen, 256);
		}
		ck_assert_int_eq(drain_calls, round);
		ck_assert_ptr_eq(drained, reqs[0]);
		ck_assert_uint_le(drain_queued, LOW);
	}
	ck_assert_int_eq(s_end(reqs[0]), 0);
	pump(fd);
	ck_assert_int_eq(drain_calls, 2);
	h = head_len();
	ck_assert_uint_eq(rx_len - h, sent);
	ck_assert(is_fill(rx + h, sent));
	for (size_t i = 0; i < nseen; i++)
		ck_assert_msg(seen[i].queued + seen[i].read <= h + seen[i].body,
			      "queued %zu + read %zu > written %zu", seen[i].queued, seen[i].read,
			      h + seen[i].body);
	close(fd);
}
END_TEST

/* on_drain may write: that is no new call of on_drain from inside it. */
START_TEST(test_drain_writes)
{
	int fd = request_on(1, "GET", 1);
	size_t h, out_len;
	static char out[sizeof(body)];

	ck_assert_int_eq(s_begin(reqs[0], 200, -1, 1024), 0);
	fill(body, sizeof(body), 0);
	drain_write = 32 * 1024; /* more than the socket takes at once */
	for (int i = 0; i < 16; i++)
		ck_assert_int_eq(s_write(reqs[0], body, 4096), 0);
	spin();
	for (int i = 0; i < 200 && drain_calls < 3; i++) {
		rx_read(fd, SIZE_MAX);
		spin();
	}
	ck_assert_int_ge(drain_calls, 3);
	drain_write = 0;
	ck_assert_int_eq(s_end(reqs[0]), 0);
	pump(fd);
	h = head_len();
	ck_assert_uint_eq(dechunk(rx + h, rx_len - h, out, &out_len), rx_len - h);
	ck_assert_uint_eq(out_len, 16 * 4096 + (size_t)drain_calls * 32 * 1024);
	close(fd);
}
END_TEST

/* ---- the connection around a stream ---- */

START_TEST(test_pipelined_waits)
{
	int fd = request_on(0, "GET", 1);
	static char out[1024];
	size_t h, used, out_len;

	ck_assert_int_eq(s_begin(reqs[0], 200, -1, 0), 0);
	ck_assert_int_eq(s_write(reqs[0], "first", 5), 0);
	send_str(fd, "GET /reply HTTP/1.1\r\nHost: x\r\n\r\n");
	pump(fd);
	ck_assert_int_eq(nreqs, 1); /* waits for the stream's end */
	ck_assert_int_eq(s_write(reqs[0], "more", 4), 0);
	ck_assert_int_eq(s_end(reqs[0]), 0);
	pump(fd);
	ck_assert_int_eq(nreqs, 2);
	h = head_len();
	used = dechunk(rx + h, rx_len - h, out, &out_len);
	ck_assert_uint_gt(used, 0);
	ck_assert_uint_eq(out_len, 9);
	ck_assert(!memcmp(out, "firstmore", 9));
	ck_assert(!strncmp(rx + h + used, "HTTP/1.1 200 OK\r\n", 17));
	ck_assert_ptr_nonnull(memmem(rx + h + used, rx_len - h - used, "\r\n\r\nsecond", 10));
	close(fd);
}
END_TEST

START_TEST(test_inline_then_pipelined)
{
	static char out[64];
	int fd = client(0);
	size_t h, used, out_len;

	rx_len = 0;
	rx_eof = rx_err = 0;
	send_str(fd, "GET /inline HTTP/1.1\r\nHost: x\r\n\r\n"
		     "GET /reply HTTP/1.1\r\nHost: x\r\n\r\n");
	pump(fd);
	ck_assert_int_eq(nreqs, 2);
	h = head_len();
	ck_assert(head_has("Transfer-Encoding: chunked\r\n"));
	used = dechunk(rx + h, rx_len - h, out, &out_len);
	ck_assert_uint_gt(used, 0);
	ck_assert_uint_eq(out_len, 6);
	ck_assert(!memcmp(out, "inline", 6));
	ck_assert(!strncmp(rx + h + used, "HTTP/1.1 200 OK\r\n", 17));
	ck_assert_int_eq(rx_eof, 0);
	close(fd);
}
END_TEST

START_TEST(test_app_gone)
{
	int fd = request_on(0, "GET", 1);

	ck_assert_int_eq(s_begin(reqs[0], 200, -1, 0), 0);
	ck_assert_int_eq(s_write(reqs[0], "abc", 3), 0);
	spin();
	close(fd);
	spin();
	ck_assert_int_eq(gone_calls, 1);
	ck_assert_int_eq(reqs[0]->gone, 1);
	ck_assert_int_eq(s_write(reqs[0], "abc", 3), -EPIPE);
	ck_assert_int_eq(s_end(reqs[0]), -EPIPE);
	spin();
	ck_assert_int_eq(gone_calls, 1);
}
END_TEST

/* With reading off (more than 64 KiB pipelined), the app's leaving is
 * still seen at once. */
START_TEST(test_app_gone_reading_off)
{
	static char junk[80 * 1024];
	int fd = request_on(0, "GET", 1);
	size_t off = 0;

	ck_assert_int_eq(s_begin(reqs[0], 200, -1, 0), 0);
	memset(junk, 'x', sizeof(junk));
	while (off < sizeof(junk)) {
		ssize_t n = write(fd, junk + off, sizeof(junk) - off);

		if (n > 0)
			off += (size_t)n;
		spin();
	}
	pump(fd);
	ck_assert_int_eq(gone_calls, 0);
	ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
	spin();
	ck_assert_int_eq(gone_calls, 1);
	ck_assert_int_eq(s_write(reqs[0], "abc", 3), -EPIPE);
	ck_assert_int_eq(s_abort(reqs[0]), 0);
	close(fd);
}
END_TEST

/* A reader that takes nothing is cut after idle_timeout_ms. */
START_TEST(test_stalled_reader_cut)
{
	int fd = request_on(1, "GET", 1);

	ck_assert_int_eq(s_begin(reqs[0], 200, -1, 0), 0);
	fill(body, sizeof(body), 0);
	ck_assert_int_eq(s_write(reqs[0], body, 64 * 1024), 0);
	run_ms(IDLE_MS / 2);
	ck_assert_int_eq(gone_calls, 0);
	run_ms(IDLE_MS);
	ck_assert_int_eq(gone_calls, 1);
	ck_assert_int_eq(s_write(reqs[0], body, 10), -EPIPE);
	ck_assert_int_eq(s_abort(reqs[0]), 0);
	close(fd);
}
END_TEST

/* A reader that keeps taking a little is never cut, however long the
 * stream lasts: the deadline is per progress, not per reply. */
START_TEST(test_slow_reader_kept)
{
	int fd = request_on(1, "GET", 1);
	size_t h;

	ck_assert_int_eq(s_begin(reqs[0], 200, sizeof(body), 0), 0);
	fill(body, sizeof(body), 0);
	ck_assert_int_eq(s_write(reqs[0], body, sizeof(body)), 0);
	for (int i = 0; i < 12; i++) { /* 3 x IDLE_MS, 8 KiB each time */
		run_ms(IDLE_MS / 4);
		rx_read(fd, 8 * 1024);
	}
	ck_assert_int_eq(gone_calls, 0);
	ck_assert_uint_gt(http_stream_queued(reqs[0]), 0);
	ck_assert_int_eq(s_end(reqs[0]), 0);
	pump(fd);
	h = head_len();
	ck_assert_uint_eq(rx_len - h, sizeof(body));
	ck_assert(is_fill(rx + h, sizeof(body)));
	close(fd);
}
END_TEST

START_TEST(test_refused)
{
	struct http_header bad = { "X-Bad", 5, "a\r\nb", 4 };
	struct http_stream_opts o = { -2, 0 };
	int fd = request_on(0, "GET", 1);

	ck_assert_int_eq(http_stream_begin(reqs[0], 200, &bad, 1, NULL), -EINVAL);
	ck_assert_int_eq(http_stream_begin(reqs[0], 99, NULL, 0, NULL), -EINVAL);
	ck_assert_int_eq(http_stream_begin(reqs[0], 200, NULL, 0, &o), -EINVAL);
	ck_assert_int_eq(http_stream_write(reqs[0], "x", 1), -EINVAL); /* not begun */
	pump(fd);
	ck_assert_uint_eq(rx_len, 0); /* nothing sent: still to be answered */
	ck_assert_int_eq(s_begin(reqs[0], 200, 1, 0), 0);
	ck_assert_int_eq(http_stream_begin(reqs[0], 200, NULL, 0, NULL), -EINVAL); /* twice */
	ck_assert_int_eq(s_write(reqs[0], "x", 1), 0);
	ck_assert_int_eq(s_end(reqs[0]), 0);
	pump(fd);
	ck_assert(head_has("Content-Length: 1\r\n"));
	ck_assert_uint_eq(rx_len - head_len(), 1);
	close(fd);
}
END_TEST

Suite *stream_suite(void)
{
	Suite *s = suite_create("stream");
	TCase *t = tcase_create("stream");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, test_length_pieces);
	tcase_add_test(t, test_chunked);
	tcase_add_test(t, test_http10_close);
	tcase_add_loop_test(t, test_bodiless, 0, sizeof(bodiless) / sizeof(bodiless[0]));
	tcase_add_test(t, test_abort_length);
	tcase_add_test(t, test_end_short_of_length);
	tcase_add_test(t, test_abort_chunked);
	tcase_add_test(t, test_abort_close_resets);
	tcase_add_test(t, test_drain_once_per_crossing);
	tcase_add_test(t, test_drain_writes);
	tcase_add_test(t, test_pipelined_waits);
	tcase_add_test(t, test_inline_then_pipelined);
	tcase_add_test(t, test_app_gone);
	tcase_add_test(t, test_app_gone_reading_off);
	tcase_add_test(t, test_stalled_reader_cut);
	tcase_add_test(t, test_slow_reader_kept);
	tcase_add_test(t, test_refused);
	suite_add_tcase(s, t);
	return s;
}
