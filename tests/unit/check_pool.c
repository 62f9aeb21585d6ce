/* Tests of daemon/upstream/upstream_pool.c through upstream.h: per-profile
 * pools with a limit of attempts in flight, a FIFO of waiters each waiting
 * at most its pool_ms, a freed slot going to the oldest waiter, a limit
 * raised or lowered, and a pool found again by name on a reload. The
 * upstream is a listener on 127.0.0.1 of the test's own: it accepts
 * nothing unless a test serves an answer, so attempts stay in flight as
 * long as a test needs them. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <event2/buffer.h>
#include <event2/event.h>

#include "suites.h"
#include "upstream.h"

static struct event_base *base;
static struct upstream *up;
static int lfd;
static char url[64];
static int served[16];
static int nserved;

/* What the done callback saw, in order. */
static struct {
	struct call *call[16];
	int n;
} ended;

/* The calls started and neither ended nor cancelled: the test's to cancel,
 * as main cancels its requests before it frees the upstream. */
static struct call *live[32];
static int nlive;

static void forget(struct call *call)
{
	for (int i = 0; i < nlive; i++)
		if (live[i] == call)
			live[i] = live[--nlive];
}

static void on_done(struct call *call, void *arg)
{
	(void)arg;
	ck_assert_int_lt(ended.n, 16);
	ended.call[ended.n++] = call;
	forget(call);
}

static void cancel(struct call *call)
{
	forget(call);
	upstream_cancel(call);
}

static void setup(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);

	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	up = upstream_new(base);
	ck_assert_ptr_nonnull(up);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(lfd, 64), 0);
	ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", ntohs(a.sin_port));
	memset(&ended, 0, sizeof(ended));
	nlive = 0;
	nserved = 0;
}

static void teardown(void)
{
	while (nlive > 0)
		cancel(live[0]);
	for (int i = 0; i < ended.n; i++)
		call_free(ended.call[i]);
	upstream_free(up);
	up = NULL;
	for (int i = 0; i < nserved; i++)
		close(served[i]);
	close(lfd);
	event_base_free(base);
	base = NULL;
}

static struct call *start(struct upstream_pool *pool, uint32_t pool_ms)
{
	struct call_params p = {
		.url = url,
		.method = "GET",
		.connect_ms = 5000,
		.read_ms = 5000,
		.write_ms = 5000,
		.pool_ms = pool_ms,
		.max_response_body = 1024,
	};
	struct call *c = upstream_start(up, pool, &p, on_done, NULL);

	ck_assert_ptr_nonnull(c);
	ck_assert_int_lt(nlive, 32);
	live[nlive++] = c;
	return c;
}

/* Runs the loop for about ms milliseconds, or until `ends` calls ended
 * (0: the whole time). */
static void run(int ms, int ends)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		struct timeval tv = { 0, 1000 };

		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((ends == 0 || ended.n < ends) &&
		 (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
}

/* Reads one request head from fd (non-blocking) while the loop runs; 1
 * when a whole GET head came. */
static int read_request(int fd)
{
	char buf[4096];
	size_t got = 0;

	buf[0] = '\0';
	for (int i = 0; i < 500; i++) {
		ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);

		if (n > 0) {
			got += (size_t)n;
			buf[got] = '\0';
			if (strstr(buf, "\r\n\r\n"))
				break;
		}
		run(1, 0);
	}
	ck_assert_msg(strstr(buf, "GET / HTTP/1.1\r\n") == buf, "request '%s'", buf);
	return 1;
}

/* Accepts one connection the upstream opened and reads its request: the
 * served descriptor, or -1 when none came. */
static int accept_request(void)
{
	int fd = -1;

	for (int i = 0; i < 500 && fd < 0; i++) {
		run(1, 0);
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	}
	if (fd < 0)
		return -1;
	ck_assert_int_lt(nserved, 16);
	served[nserved++] = fd;
	read_request(fd);
	return fd;
}

/* Accepts one connection the upstream opened, reads its request and
 * answers 200 "ok"; 1 when it did. */
static int serve_one(void)
{
	static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	int fd = accept_request();

	if (fd < 0)
		return 0;
	ck_assert_int_eq(write(fd, answer, sizeof(answer) - 1), (ssize_t)sizeof(answer) - 1);
	return 1;
}

/* At most max in flight; the rest wait in their order, and each slot that
 * frees goes to the oldest waiter. */
START_TEST(test_limit_and_fifo)
{
	struct upstream_pool *pool = upstream_pool_get(up, "p", 2);
	struct call *a, *b, *c, *d, *e;

	ck_assert_ptr_nonnull(pool);
	a = start(pool, 5000);
	b = start(pool, 5000);
	c = start(pool, 5000);
	d = start(pool, 5000);
	ck_assert_int_eq(call_waiting(a), 0);
	ck_assert_int_eq(call_waiting(b), 0);
	ck_assert_int_eq(call_waiting(c), 1);
	ck_assert_int_eq(call_waiting(d), 1);
	run(20, 1);
	ck_assert_int_eq(ended.n, 0); /* nobody waits out, nobody is cut */
	cancel(a);
	ck_assert_int_eq(call_waiting(c), 0); /* the oldest waiter, at once */
	ck_assert_int_eq(call_waiting(d), 1);
	/* A waiter that leaves frees nothing. */
	cancel(d);
	e = start(pool, 5000);
	ck_assert_int_eq(call_waiting(e), 1);
	cancel(b);
	ck_assert_int_eq(call_waiting(e), 0);
	ck_assert_int_eq(ended.n, 0); /* cancelled calls never report */
}
END_TEST

/* An attempt that finishes hands its slot to the oldest waiter. */
START_TEST(test_finished_attempt_frees_its_slot)
{
	struct upstream_pool *pool = upstream_pool_get(up, "p", 1);
	struct call *a = start(pool, 5000), *b = start(pool, 5000), *c = start(pool, 5000);

	ck_assert_int_eq(call_waiting(b), 1);
	ck_assert(serve_one());
	run(1000, 1);
	ck_assert_int_eq(ended.n, 1);
	ck_assert_ptr_eq(ended.call[0], a);
	ck_assert_int_eq(call_outcome(a), ATTEMPT_OK);
	ck_assert_int_eq(call_status(a), 200);
	ck_assert_int_eq(call_waiting(b), 0);
	ck_assert_int_eq(call_waiting(c), 1);
}
END_TEST

/* A wait longer than pool_ms ends the attempt with ATTEMPT_POOL_TIMEOUT,
 * nothing sent; the one running is not disturbed. */
START_TEST(test_wait_runs_out)
{
	struct upstream_pool *pool = upstream_pool_get(up, "p", 1);
	struct call *a = start(pool, 5000), *b = start(pool, 30);

	ck_assert_int_eq(call_waiting(b), 1);
	run(1000, 1);
	ck_assert_int_eq(ended.n, 1);
	ck_assert_ptr_eq(ended.call[0], b);
	ck_assert_int_eq(call_outcome(b), ATTEMPT_POOL_TIMEOUT);
	/* It waited its pool_ms (libevent's coarse clock may end it a tick
	 * early), not a moment. */
	ck_assert_uint_ge(call_queued_us(b), 20000);
	ck_assert_uint_ge(call_elapsed_us(b), call_queued_us(b));
	ck_assert_int_eq(call_waiting(a), 0);
	/* The slot is still a's: the next one waits too. */
	ck_assert_int_eq(call_waiting(start(pool, 5000)), 1);
}
END_TEST

/* Each profile has its own pool: a full one does not hold another back. */
START_TEST(test_pools_per_profile)
{
	struct upstream_pool *pa = upstream_pool_get(up, "a", 1);
	struct upstream_pool *pb = upstream_pool_get(up, "b", 1);
	struct call *a1, *a2, *b1;

	ck_assert_ptr_ne(pa, pb);
	a1 = start(pa, 5000);
	a2 = start(pa, 5000);
	b1 = start(pb, 5000);
	ck_assert_int_eq(call_waiting(a1), 0);
	ck_assert_int_eq(call_waiting(a2), 1);
	ck_assert_int_eq(call_waiting(b1), 0);
	cancel(b1); /* b's slot is not a's */
	ck_assert_int_eq(call_waiting(a2), 1);
}
END_TEST

/* A reload finds the pool by name: the same pool, its waiters still in
 * line, its running attempts still counted. */
START_TEST(test_pool_survives_reload)
{
	struct upstream_pool *pool = upstream_pool_get(up, "p", 1);
	struct call *a = start(pool, 5000), *b = start(pool, 5000);

	ck_assert_ptr_eq(upstream_pool_get(up, "p", 1), pool);
	ck_assert_int_eq(call_waiting(b), 1);
	ck_assert_int_eq(call_waiting(start(pool, 5000)), 1);
	cancel(a);
	ck_assert_int_eq(call_waiting(b), 0);
}
END_TEST

/* A reload that raises the limit starts the waiters at once, not at the
 * profile's next request. */
START_TEST(test_reload_raising_the_limit_starts_waiters)
{
	struct upstream_pool *pool = upstream_pool_get(up, "p", 1);
	struct call *b, *c;

	start(pool, 5000);
	b = start(pool, 5000);
	c = start(pool, 5000);
	ck_assert_int_eq(call_waiting(b), 1);
	ck_assert_ptr_eq(upstream_pool_get(up, "p", 2), pool);
	ck_assert_int_eq(call_waiting(b), 0);
	ck_assert_int_eq(call_waiting(c), 1);
}
END_TEST

/* A raised limit starts the oldest waiters at once; a lowered one cuts
 * nothing, and new attempts wait until the running ones are below it. */
START_TEST(test_set_max)
{
	struct upstream_pool *pool = upstream_pool_get(up, "p", 1);
	struct call *a = start(pool, 5000), *b = start(pool, 5000), *c = start(pool, 5000);
	struct call *d = start(pool, 5000), *e;

	upstream_pool_set_max(pool, 3);
	ck_assert_int_eq(call_waiting(b), 0);
	ck_assert_int_eq(call_waiting(c), 0);
	ck_assert_int_eq(call_waiting(d), 1);
	upstream_pool_set_max(pool, 1);
	run(20, 1);
	ck_assert_int_eq(ended.n, 0); /* beyond the new limit, undisturbed */
	e = start(pool, 5000);
	ck_assert_int_eq(call_waiting(e), 1);
	cancel(a);
	cancel(b);
	ck_assert_int_eq(call_waiting(d), 1); /* c alone is at the limit */
	cancel(c);
	ck_assert_int_eq(call_waiting(d), 0);
	ck_assert_int_eq(call_waiting(e), 1);
}
END_TEST

/* Freeing the upstream cancels the waiters, and none reports. */
START_TEST(test_free_with_waiters)
{
	struct upstream_pool *pool = upstream_pool_get(up, "p", 1);
	struct call *a = start(pool, 5000);

	start(pool, 5000);
	start(pool, 5000);
	run(5, 1);
	cancel(a); /* what runs belongs to a request: main cancels it first */
	nlive = 0; /* the waiters are the upstream's to cancel */
	upstream_free(up);
	up = NULL;
	ck_assert_int_eq(ended.n, 0);
}
END_TEST

/* upstream.h: upstream_free "cancels every call (no callbacks) and frees
 * everything". An attempt connected and waiting for its answer when the
 * upstream is freed must never report afterwards. */
START_TEST(test_free_with_attempt_in_flight)
{
	struct upstream_pool *pool = upstream_pool_get(up, "p", 1);
	struct call_params p = {
		.url = url,
		.method = "GET",
		.connect_ms = 5000,
		.read_ms = 100, /* its read idle timer, armed once connected */
		.write_ms = 5000,
		.pool_ms = 5000,
		.max_response_body = 1024,
	};

	ck_assert_ptr_nonnull(upstream_start(up, pool, &p, on_done, NULL));
	run(20, 1); /* connected: the kernel's backlog holds it, nobody answers */
	ck_assert_int_eq(ended.n, 0);
	upstream_free(up);
	up = NULL;
	run(300, 1);
	ck_assert_msg(ended.n == 0, "done called after upstream_free: outcome %d, '%s'",
		      (int)call_outcome(ended.call[0]), call_error(ended.call[0]));
}
END_TEST

static struct call *start_capped(struct upstream_pool *pool, uint32_t attempt_ms)
{
	struct call_params p = {
		.url = url,
		.method = "GET",
		.connect_ms = 5000,
		.read_ms = 5000,
		.write_ms = 5000,
		.pool_ms = 5000,
		.attempt_ms = attempt_ms,
		.max_response_body = 1024,
	};
	struct call *c = upstream_start(up, pool, &p, on_done, NULL);

	ck_assert_ptr_nonnull(c);
	live[nlive++] = c;
	return c;
}

/* The attempt cap is braced's timer: counted from the start, the pool wait
 * included, it ends a connected attempt with no answer as an attempt
 * timeout, and says so in braced's words. */
START_TEST(test_attempt_cap_counts_the_pool_wait)
{
	struct upstream_pool *pool = upstream_pool_get(up, "p", 1);
	struct call *a = start(pool, 5000), *b = start_capped(pool, 400);

	ck_assert_int_eq(call_waiting(b), 1);
	run(250, 1);
	ck_assert_int_eq(ended.n, 0);
	cancel(a);
	ck_assert_int_eq(call_waiting(b), 0);
	run(2000, 1);
	ck_assert_int_eq(ended.n, 1);
	ck_assert_ptr_eq(ended.call[0], b);
	ck_assert_int_eq(call_outcome(b), ATTEMPT_TIMEOUT);
	ck_assert_int_eq(call_timeout_kind(b), LIMIT_ATTEMPT);
	ck_assert_uint_ge(call_queued_us(b), 200000);
	/* 400 ms from the start, not 400 ms from the end of the wait. */
	ck_assert_uint_ge(call_elapsed_us(b), 350000);
	ck_assert_uint_lt(call_elapsed_us(b), 600000);
	ck_assert_msg(strstr(call_error(b), "attempt") && strstr(call_error(b), "400 ms"),
		      "error '%s'", call_error(b));
}
END_TEST

/* The cap covers the whole answer: a head and the start of a body, then
 * silence shorter than the read limit, end as an attempt timeout. */
START_TEST(test_attempt_cap_covers_the_answer)
{
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc";
	struct upstream_pool *pool = upstream_pool_get(up, "p", 1);
	struct call *c = start_capped(pool, 300);
	int fd = accept_request();

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, head, sizeof(head) - 1), (ssize_t)sizeof(head) - 1);
	run(2000, 1);
	ck_assert_int_eq(ended.n, 1);
	ck_assert_int_eq(call_outcome(c), ATTEMPT_TIMEOUT);
	ck_assert_int_eq(call_timeout_kind(c), LIMIT_ATTEMPT);
	ck_assert_uint_ge(call_elapsed_us(c), 250000);
	ck_assert_uint_lt(call_elapsed_us(c), 1000000);
}
END_TEST

/* The answer of the pause test: larger than what loopback's socket buffers
 * hold, so a paused reader holds the upstream back. */
#define BIG_BODY (24 * 1024 * 1024)

static unsigned char big_byte(size_t i)
{
	return (unsigned char)((i * 7 + i / 4093) % 251);
}

/* Writes what fd takes of [data + *off, data + len) without blocking. */
static void pump(int fd, const unsigned char *data, size_t len, size_t *off)
{
	while (*off < len) {
		ssize_t n = send(fd, data + *off, len - *off > 65536 ? 65536 : len - *off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n <= 0)
			return;
		*off += (size_t)n;
	}
}

/* Runs the loop for about ms milliseconds while the upstream writes. */
static void run_pumping(int ms, int fd, const unsigned char *data, size_t len, size_t *off)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		pump(fd, data, len, off);
		run(1, 0);
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (ended.n == 0 &&
		 (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
}

/* The answer on the wire, body big_byte(0..BIG_BODY-1): with a
 * Content-Length (chunked 0) or in chunks of odd sizes. Returns its length;
 * *wire is malloc'd. */
static size_t big_answer(int chunked, unsigned char **wire)
{
	unsigned char *w = malloc(BIG_BODY + BIG_BODY / 1000 * 16 + 256);
	size_t n = 0;

	ck_assert_ptr_nonnull(w);
	if (!chunked) {
		n = (size_t)sprintf((char *)w, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n",
				    BIG_BODY);
		for (size_t i = 0; i < BIG_BODY; i++)
			w[n++] = big_byte(i);
	} else {
		n = (size_t)sprintf((char *)w, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
		for (size_t i = 0, piece = 1000; i < BIG_BODY; i += piece, piece = 1000 + i % 7919) {
			if (piece > BIG_BODY - i)
				piece = BIG_BODY - i;
			n += (size_t)sprintf((char *)w + n, "%zx\r\n", piece);
			for (size_t k = i; k < i + piece; k++)
				w[n++] = big_byte(k);
			w[n++] = '\r';
			w[n++] = '\n';
		}
		memcpy(w + n, "0\r\n\r\n", 5);
		n += 5;
	}
	*wire = w;
	return n;
}

/* A call braced pauses from its write callback takes nothing more, keeps
 * its connection (libcurl stops watching the socket: it is not parked,
 * peeked at or poisoned) and is not timed out for the silence; resumed,
 * it gets the whole body intact, and the connection serves the next call.
 * Loop: 0 with a Content-Length, 1 chunked. */
START_TEST(test_pause_and_resume_a_large_answer)
{
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	struct upstream_pool *pool = upstream_pool_get(up, "p", 1);
	struct call_params p = {
		.url = url,
		.method = "GET",
		.connect_ms = 5000,
		.read_ms = 100, /* far shorter than the pause */
		.write_ms = 5000,
		.pool_ms = 5000,
		.max_response_body = BIG_BODY,
	};
	unsigned char *data, *body;
	struct call *c, *next;
	size_t len = big_answer(_i, &data), off = 0, held, sent_paused;
	int fd;

	c = upstream_start(up, pool, &p, on_done, NULL);
	ck_assert_ptr_nonnull(c);
	live[nlive++] = c;
	fd = accept_request();
	ck_assert_int_ge(fd, 0);
	while (ended.n == 0 && evbuffer_get_length(call_body(c)) < 256 * 1024)
		run_pumping(1, fd, data, len, &off);
	call_pause_recv(c);
	run_pumping(50, fd, data, len, &off);
	held = evbuffer_get_length(call_body(c));
	sent_paused = off;
	run_pumping(500, fd, data, len, &off);
	ck_assert_msg(ended.n == 0, "the paused call ended: outcome %d, '%s'",
		      (int)call_outcome(c), call_error(c));
	ck_assert_uint_eq(evbuffer_get_length(call_body(c)), held);
	ck_assert_uint_lt(held, BIG_BODY);
	/* Nothing read: the upstream is held back once the socket buffers fill. */
	ck_assert_uint_lt(off, len);
	ck_assert_uint_ge(off, sent_paused);
	ck_assert_int_eq(call_resume(c), 0);
	for (int i = 0; i < 5000 && ended.n == 0; i++)
		run_pumping(1, fd, data, len, &off);
	ck_assert_int_eq(ended.n, 1);
	ck_assert_msg(call_outcome(c) == ATTEMPT_OK, "outcome %d, '%s'", (int)call_outcome(c),
		      call_error(c));
	ck_assert_int_eq(call_status(c), 200);
	ck_assert_uint_eq(evbuffer_get_length(call_body(c)), BIG_BODY);
	body = evbuffer_pullup(call_body(c), -1);
	for (size_t i = 0; i < BIG_BODY; i++)
		if (body[i] != big_byte(i))
			ck_abort_msg("byte %zu differs", i);
	free(data);
	/* The same connection serves the next call: no new one is opened. */
	next = start(pool, 5000);
	ck_assert(read_request(fd));
	ck_assert_int_eq(accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK), -1);
	ck_assert_int_eq(write(fd, ok, sizeof(ok) - 1), (ssize_t)sizeof(ok) - 1);
	run(1000, 2);
	ck_assert_int_eq(ended.n, 2);
	ck_assert_int_eq(call_outcome(next), ATTEMPT_OK);
}
END_TEST

Suite *pool_suite(void)
{
	Suite *s = suite_create("pool");
	TCase *tc = tcase_create("pool");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_limit_and_fifo);
	tcase_add_test(tc, test_finished_attempt_frees_its_slot);
	tcase_add_test(tc, test_wait_runs_out);
	tcase_add_test(tc, test_pools_per_profile);
	tcase_add_test(tc, test_pool_survives_reload);
	tcase_add_test(tc, test_reload_raising_the_limit_starts_waiters);
	tcase_add_test(tc, test_set_max);
	tcase_add_test(tc, test_free_with_waiters);
	tcase_add_test(tc, test_free_with_attempt_in_flight);
	tcase_add_test(tc, test_attempt_cap_counts_the_pool_wait);
	tcase_add_test(tc, test_attempt_cap_covers_the_answer);
	tcase_add_loop_test(tc, test_pause_and_resume_a_large_answer, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}
