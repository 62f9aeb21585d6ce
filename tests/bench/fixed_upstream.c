/* The benchmark's upstream: a small libevent HTTP/1.1 keep-alive server that
 * answers GET with a fixed weather JSON body and injects faults on demand
 * (503s, resets, 429 with Retry-After, a delay, schema-drifted bodies, and a
 * POST mode answering 503 then 200 per logical request), counting what it saw
 * so the benchmark can compute amplification. It parses requests itself, so
 * it stays cheaper than the proxies it measures.
 *
 * Usage: fixed_upstream [PORT] [--503 PCT] [--reset PCT] [--429 PCT]
 *                       [--delay MS] [--drift PCT] [--post PCT] [--seed N]
 *                       [--tls CERT KEY] [--host ADDR]
 * It listens on 127.0.0.1, or on the IPv4 address ADDR (127.0.0.2 and up reach
 * loopback on Linux: one machine, several endpoints), and prints the bound
 * port on stdout. With --tls it speaks HTTPS only (the
 * control paths too), with the PEM certificate chain CERT and key KEY.
 * Control paths (never counted):
 *   GET /__mode?s503=PCT&reset=PCT&s429=PCT&delay=MS&drift=PCT&post=PCT
 *              &tail=PCT&tail_ms=MS&cap=N&work=MS
 *        sets every fault at once (absent = 0) and zeroes the counters;
 *   GET /__stats  answers the counters as JSON.
 * Health checks: GET /health is counted in `checks`, not `requests`, and
 * answered at once: reset or 503 as the reset and 503 faults say, else 200
 * with the weather body (delay, tail, cap and drift do not apply).
 * Streaming paths (counted as requests; the 503, reset and 429 faults apply,
 * delay, tail, cap and drift do not):
 *   GET /bytes/N  N bytes (N <= 64 GiB) of a fixed 64-byte repeating pattern
 *        with Content-Length; `?chunked=1` frames them in 64 KiB chunks;
 *   GET /sse?n=N&ms=M  text/event-stream, chunked: N events (N <= 1,000,000)
 *        M ms apart (M <= 60,000), the first at once, each one chunk holding
 *        `data: SEQ T\n\n` (SEQ from 1; T = CLOCK_MONOTONIC in microseconds
 *        when it is written), then the last chunk.
 *   A value out of range or not a number gets 400. Both are written as the
 *   client takes them: at most STREAM_HIGH bytes wait in the connection's
 *   output (an event whose time has come waits for room; its T is when it
 *   is written), and other connections are served meanwhile.
 * Latency modes: `delay` holds every answer MS; `tail` holds PCT% of them
 * tail_ms instead (a slow tail); `cap` > 0 serves at most N requests in
 * parallel, each `work` ms, and queues the rest in arrival order (a
 * queueing upstream). `inflight`/`peak` count requests held by a delay or
 * the queue, now and at most; `accepts` counts accepted connections (TLS
 * handshakes with --tls).
 * 429 windows: each 429 announces `Retry-After: 1`, a window of 1 s from the
 * moment it is sent. `in_window` counts requests that arrived while a window
 * this upstream announced (to anyone) was open; of them, `in_window_head`
 * arrived at most EDGE_MS after the oldest announcement still open (so every
 * open window was at most EDGE_MS old: the request may have been on its way
 * already), `in_window_end` in the last EDGE_MS of the latest window, the
 * rest well inside a known window. `in_conn_window` counts requests that
 * arrived inside a window announced on their own connection.
 * POST mode: POSTs must carry X-Bench-Id, one value per logical request. For
 * PCT% of the ids (picked by the id's hash) the first POST gets 503 and later
 * ones 200; the others get 200. For those ids, `ids` counts the ids and
 * `pairs` the distinct (X-Bench-Id, Idempotency-Key) pairs, so the keys one
 * logical request was sent with = pairs / ids. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>

#define MAX_HEAD 16384     /* a request head larger than this is refused */
#define MAX_BODY (1 << 20) /* a request body larger than this is refused */
#define SET_BITS 20        /* hash set of 2^20 entries for ids and pairs */
#define SET_SIZE (1u << SET_BITS)
#define SET_FULL (SET_SIZE / 2) /* past this, new entries are not recorded */
#define WINDOW_S 1.0            /* the window a `Retry-After: 1` announces */
#define EDGE_MS 10.0            /* in_window_head and _end: this close to an edge */
#define STREAM_BLOCK 65536      /* /bytes: one block, one chunk with ?chunked=1 */
#define STREAM_HIGH (1 << 20)   /* a stream adds output while less waits than this */
#define STREAM_LOW (256 << 10)  /* ... and is called back when this little is left */
#define BYTES_MAX (64ull << 30) /* /bytes/N: N at most 64 GiB */
#define SSE_MAX_N 1000000       /* /sse: n at most */
#define SSE_MAX_MS 60000        /* /sse: ms at most */

static const char ok_body[] =
    "{\"city\":\"Paris\",\"temperature\":14.2,\"condition\":\"cloudy\",\"source_latency_ms\":3}";
/* temperature as a string: fails the weather schema's `type: number` */
static const char drift_body[] = "{\"city\":\"Paris\",\"temperature\":\"14.2\",\"condition\":"
				 "\"cloudy\",\"source_latency_ms\":3}";

struct mode {
	int s503, reset, s429, drift; /* percentages */
	int delay_ms;
	int post;          /* percentage of logical POSTs answered 503 then 200 */
	int tail, tail_ms; /* tail% of answers held tail_ms instead of delay_ms */
	int cap, work_ms;  /* cap > 0: N in service at once, work_ms each, FIFO */
};

struct counters {
	unsigned long requests, posts, ok, s503, s429, resets, drifted, delayed;
	unsigned long ids, pairs;
	unsigned long accepts, tailed, queued, inflight, peak;
	unsigned long in_window, in_window_head, in_window_end, in_conn_window;
	unsigned long checks; /* GET /health, not in requests */
};

struct conn {
	struct bufferevent *bev;
	struct event *timer; /* a delayed answer, or a queued one's service */
	int drift;
	int waiting;                /* held by a delay or the queue: counted in inflight */
	int serving;                /* in service under `cap` */
	struct conn *qprev, *qnext; /* in the queue when queued */
	int queued;
	double last_429; /* when this connection was last sent a 429 */
	/* a streaming answer in progress (reads nothing more meanwhile) */
	int streaming; /* STREAM_BYTES or STREAM_SSE; 0 = none */
	int chunked;   /* /bytes: chunked framing */
	uint64_t left; /* /bytes: bytes still to add; /sse: events still to send */
	uint64_t seq;  /* /sse: the last event's sequence number */
	int ms;        /* /sse: between events */
	int due;       /* /sse: an event's time has come, waiting for room */
};

enum { STREAM_BYTES = 1, STREAM_SSE = 2 };

static struct mode mode;
static struct counters cnt;
static uint64_t rng_state = 88172645463325252ull;
static uint64_t *set; /* open addressing over 64-bit hashes; 0 = empty */
static unsigned long set_used;
static double last_429 = -1e9;      /* when this upstream last sent a 429 */
#define ANN_SIZE (1u << 16)         /* announcements kept: a ring of the open ones */
static double ann[ANN_SIZE];        /* when each open window was announced, oldest first */
static unsigned ann_head, ann_tail; /* ann_head - ann_tail entries, indices mod ANN_SIZE */
static struct conn *qhead, *qtail;  /* the queue of the `cap` mode */
static int in_service;
static SSL_CTX *tls_ctx;
static char pattern[STREAM_BLOCK]; /* /bytes: a 64-byte period, so blocks join up */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_next(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static int chance(int pct)
{
	return pct > 0 && (int)(rng_next() % 100) < pct;
}

static uint64_t fnv(uint64_t h, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	return h;
}

/* splitmix64's finalizer: FNV of short ids differs only in a few bits. */
static uint64_t mix(uint64_t h)
{
	h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
	h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
	return h ^ (h >> 31);
}

/* Adds h to the set; returns 1 when it was new. */
static int set_add(uint64_t h)
{
	size_t i;

	if (h == 0)
		h = 1;
	for (i = h & (SET_SIZE - 1); set[i]; i = (i + 1) & (SET_SIZE - 1))
		if (set[i] == h)
			return 0;
	if (set_used >= SET_FULL)
		return 0;
	set[i] = h;
	set_used++;
	return 1;
}

static void set_clear(void)
{
	memset(set, 0, SET_SIZE * sizeof(*set));
	set_used = 0;
}

static void serve_next(void);

static void unqueue(struct conn *c)
{
	if (c->qprev)
		c->qprev->qnext = c->qnext;
	else
		qhead = c->qnext;
	if (c->qnext)
		c->qnext->qprev = c->qprev;
	else
		qtail = c->qprev;
	c->qprev = c->qnext = NULL;
	c->queued = 0;
}

static void conn_free(struct conn *c)
{
	int was_serving = c->serving;

	if (c->queued)
		unqueue(c);
	if (c->waiting)
		cnt.inflight--;
	if (c->serving)
		in_service--;
	if (c->timer)
		event_free(c->timer);
	bufferevent_free(c->bev);
	free(c);
	if (was_serving)
		serve_next();
}

static void reply(struct conn *c, int status, const char *reason, const char *extra,
		  const char *body, size_t len)
{
	evbuffer_add_printf(bufferevent_get_output(c->bev),
			    "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
			    "Content-Length: %zu\r\n%s\r\n",
			    status, reason, len, extra ? extra : "");
	if (len)
		evbuffer_add(bufferevent_get_output(c->bev), body, len);
}

static void reply_ok(struct conn *c, int drift)
{
	if (drift) {
		cnt.drifted++;
		reply(c, 200, "OK", NULL, drift_body, sizeof(drift_body) - 1);
	} else {
		reply(c, 200, "OK", NULL, ok_body, sizeof(ok_body) - 1);
	}
	cnt.ok++;
}

/* Aborts the connection with a TCP RST: SO_LINGER 0, then close. */
static void reset_conn(struct conn *c)
{
	struct linger l = { 1, 0 };

	setsockopt(bufferevent_getfd(c->bev), SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	cnt.resets++;
	conn_free(c);
}

static void on_read(struct bufferevent *bev, void *arg);

static void on_delay(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	event_free(c->timer);
	c->timer = NULL;
	c->waiting = 0;
	cnt.inflight--;
	reply_ok(c, c->drift);
	if (c->serving) {
		c->serving = 0;
		in_service--;
		serve_next();
	}
	bufferevent_enable(c->bev, EV_READ);
	on_read(c->bev, c); /* requests that arrived while this one waited */
}

/* Holds c's answer ms milliseconds; reads nothing more from c meanwhile. */
static void hold(struct conn *c, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	c->timer = evtimer_new(bufferevent_get_base(c->bev), on_delay, c);
	evtimer_add(c->timer, &tv);
}

/* The `cap` mode: start serving queued requests while there is room. */
static void serve_next(void)
{
	while (qhead && in_service < mode.cap) {
		struct conn *c = qhead;

		unqueue(c);
		c->serving = 1;
		in_service++;
		hold(c, mode.work_ms);
	}
}

/* c's request waits: held by a delay, or queued for service. One request
 * at a time per connection: read the next once this one is answered. */
static void wait_answer(struct conn *c)
{
	c->waiting = 1;
	if (++cnt.inflight > cnt.peak)
		cnt.peak = cnt.inflight;
	bufferevent_disable(c->bev, EV_READ);
	if (mode.cap > 0) {
		cnt.queued++;
		c->queued = 1;
		c->qprev = qtail;
		if (qtail)
			qtail->qnext = c;
		else
			qhead = c;
		qtail = c;
		serve_next();
		return;
	}
	cnt.delayed++;
	if (chance(mode.tail)) {
		cnt.tailed++;
		hold(c, mode.tail_ms);
	} else {
		hold(c, mode.delay_ms);
	}
}

static int query_int(const char *q, const char *name)
{
	size_t n = strlen(name);

	while (q && *q) {
		if (strncmp(q, name, n) == 0 && q[n] == '=')
			return atoi(q + n + 1);
		q = strchr(q, '&');
		if (q)
			q++;
	}
	return 0;
}

static void control(struct conn *c, const char *path)
{
	char out[1024];
	int n;

	if (strncmp(path, "/__mode", 7) == 0) {
		const char *q = strchr(path, '?');

		mode.s503 = query_int(q ? q + 1 : NULL, "s503");
		mode.reset = query_int(q ? q + 1 : NULL, "reset");
		mode.s429 = query_int(q ? q + 1 : NULL, "s429");
		mode.drift = query_int(q ? q + 1 : NULL, "drift");
		mode.delay_ms = query_int(q ? q + 1 : NULL, "delay");
		mode.post = query_int(q ? q + 1 : NULL, "post");
		mode.tail = query_int(q ? q + 1 : NULL, "tail");
		mode.tail_ms = query_int(q ? q + 1 : NULL, "tail_ms");
		mode.cap = query_int(q ? q + 1 : NULL, "cap");
		mode.work_ms = query_int(q ? q + 1 : NULL, "work");
		/* requests still held keep counting until answered */
		{
			unsigned long inflight = cnt.inflight;

			memset(&cnt, 0, sizeof(cnt));
			cnt.inflight = inflight;
		}
		last_429 = -1e9;
		ann_head = ann_tail = 0;
		set_clear();
		serve_next();
	}
	n = snprintf(out, sizeof(out),
		     "{\"requests\":%lu,\"posts\":%lu,\"ok\":%lu,\"s503\":%lu,\"s429\":%lu,"
		     "\"resets\":%lu,\"drifted\":%lu,\"delayed\":%lu,\"ids\":%lu,\"pairs\":%lu,"
		     "\"accepts\":%lu,\"tailed\":%lu,\"queued\":%lu,\"inflight\":%lu,"
		     "\"peak\":%lu,\"in_window\":%lu,\"in_window_head\":%lu,"
		     "\"in_window_end\":%lu,"
		     "\"in_conn_window\":%lu,\"checks\":%lu,"
		     "\"mode\":{\"s503\":%d,\"reset\":%d,\"s429\":%d,\"drift\":%d,\"delay\":%d,"
		     "\"post\":%d,\"tail\":%d,\"tail_ms\":%d,\"cap\":%d,\"work\":%d}}",
		     cnt.requests, cnt.posts, cnt.ok, cnt.s503, cnt.s429, cnt.resets, cnt.drifted,
		     cnt.delayed, cnt.ids, cnt.pairs, cnt.accepts, cnt.tailed, cnt.queued,
		     cnt.inflight, cnt.peak, cnt.in_window, cnt.in_window_head, cnt.in_window_end,
		     cnt.in_conn_window, cnt.checks, mode.s503, mode.reset, mode.s429, mode.drift,
		     mode.delay_ms, mode.post, mode.tail, mode.tail_ms, mode.cap, mode.work_ms);
	reply(c, 200, "OK", NULL, out, (size_t)n);
}

/* Returns the value of header name inside head (NUL-terminated), or NULL;
 * *len gets its length. */
static const char *header(const char *head, const char *name, size_t *len)
{
	size_t n = strlen(name);

	for (const char *p = strstr(head, "\r\n"); p; p = strstr(p, "\r\n")) {
		p += 2;
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			const char *v = p + n + 1;

			while (*v == ' ' || *v == '\t')
				v++;
			*len = strcspn(v, "\r\n");
			while (*len && (v[*len - 1] == ' ' || v[*len - 1] == '\t'))
				(*len)--;
			return v;
		}
	}
	return NULL;
}

static void post(struct conn *c, const char *head)
{
	size_t idn = 0, keyn = 0;
	const char *id = header(head, "X-Bench-Id", &idn);
	const char *key = header(head, "Idempotency-Key", &keyn);
	uint64_t h;

	cnt.posts++;
	if (!id) {
		reply(c, 400, "Bad Request", NULL, "", 0);
		return;
	}
	h = fnv(14695981039346656037ull, id, idn);
	/* the id's hash, not the RNG, picks the failing ones: every attempt of
	 * one logical request agrees on whether it is one */
	if (mix(h) % 100 >= (uint64_t)mode.post) {
		reply(c, 200, "OK", NULL, "{\"order\":\"accepted\"}", 20);
		cnt.ok++;
		return;
	}
	if (key)
		cnt.pairs += (unsigned long)set_add(fnv(fnv(h, "\n", 1), key, keyn));
	if (set_add(h)) {
		cnt.ids++;
		cnt.s503++;
		reply(c, 503, "Service Unavailable", NULL, "", 0);
	} else {
		reply(c, 200, "OK", NULL, "{\"order\":\"accepted\"}", 20);
		cnt.ok++;
	}
}

/* Parses the value of query parameter name in q into *v; returns 1, 0 when
 * absent, -1 when not a decimal number or over max. */
static int query_u64(const char *q, const char *name, uint64_t max, uint64_t *v)
{
	size_t n = strlen(name);

	while (q && *q) {
		if (strncmp(q, name, n) == 0 && q[n] == '=') {
			const char *p = q + n + 1;
			uint64_t x = 0;

			if (*p < '0' || *p > '9')
				return -1;
			for (; *p >= '0' && *p <= '9'; p++) {
				x = x * 10 + (uint64_t)(*p - '0');
				if (x > max)
					return -1;
			}
			if (*p && *p != '&')
				return -1;
			*v = x;
			return 1;
		}
		q = strchr(q, '&');
		if (q)
			q++;
	}
	return 0;
}

static void on_stream_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

/* Starts a streaming answer: reads nothing more from c until it ends. */
static void stream_begin(struct conn *c, int kind)
{
	c->streaming = kind;
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_setwatermark(c->bev, EV_WRITE, STREAM_LOW, 0);
	bufferevent_setcb(c->bev, on_read, on_stream_write, on_event, c);
}

/* The stream is written whole: back to one request at a time. Returns
 * after on_read, which may free c. */
static void stream_end(struct conn *c)
{
	c->streaming = 0;
	if (c->timer) {
		event_free(c->timer);
		c->timer = NULL;
	}
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
	cnt.ok++;
	bufferevent_enable(c->bev, EV_READ);
	on_read(c->bev, c); /* requests that arrived while this one streamed */
}

/* /bytes: adds blocks (references to the static pattern, no copies) while
 * less than STREAM_HIGH waits; returns 1 once everything is added. */
static int bytes_fill(struct conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	while (c->left > 0 && evbuffer_get_length(out) < STREAM_HIGH) {
		size_t n = c->left < STREAM_BLOCK ? (size_t)c->left : STREAM_BLOCK;

		if (c->chunked)
			evbuffer_add_printf(out, "%zx\r\n", n);
		evbuffer_add_reference(out, pattern, n, NULL, NULL);
		if (c->chunked)
			evbuffer_add(out, "\r\n", 2);
		c->left -= n;
	}
	if (c->left > 0)
		return 0;
	if (c->chunked)
		evbuffer_add(out, "0\r\n\r\n", 5);
	return 1;
}

static void sse_send(struct conn *c);

static void on_sse_timer(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) >= STREAM_HIGH) {
		c->due = 1; /* the client is behind: write once it takes more */
		return;
	}
	sse_send(c);
}

/* /sse: writes the next event (and the last chunk after the last one), then
 * arms the timer for the one after it, or ends the stream. */
static void sse_send(struct conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct timespec ts;
	char ev[64];
	int n;

	c->due = 0;
	if (c->left > 0) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		n = snprintf(ev, sizeof(ev), "data: %llu %llu\n\n", (unsigned long long)++c->seq,
			     (unsigned long long)ts.tv_sec * 1000000ull +
				 (unsigned long long)ts.tv_nsec / 1000);
		evbuffer_add_printf(out, "%x\r\n", n);
		evbuffer_add(out, ev, (size_t)n);
		evbuffer_add(out, "\r\n", 2);
		c->left--;
	}
	if (c->left == 0) {
		evbuffer_add(out, "0\r\n\r\n", 5);
		if (c->timer) {
			event_free(c->timer);
			c->timer = NULL;
		}
		/* the stream ends once the write callback sees its output drained */
		return;
	}
	{
		struct timeval tv = { c->ms / 1000, (c->ms % 1000) * 1000 };

		if (!c->timer)
			c->timer = evtimer_new(bufferevent_get_base(c->bev), on_sse_timer, c);
		evtimer_add(c->timer, &tv);
	}
}

/* The output went down to STREAM_LOW: add more, or end the stream once it
 * is all added and mostly sent (the rest goes out as usual). */
static void on_stream_write(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	if (c->streaming == STREAM_BYTES) {
		if (bytes_fill(c))
			stream_end(c);
	} else if (c->streaming == STREAM_SSE) {
		if (c->due)
			sse_send(c);
		else if (c->left == 0 && !c->timer)
			stream_end(c);
	}
}

/* GET /bytes/N[?chunked=1] */
static void stream_bytes(struct conn *c, const char *path)
{
	const char *p = path + 7, *q = strchr(path, '?');
	uint64_t n = 0, chunked = 0;

	for (; *p >= '0' && *p <= '9'; p++) {
		n = n * 10 + (uint64_t)(*p - '0');
		if (n > BYTES_MAX)
			break;
	}
	if (p == path + 7 || n > BYTES_MAX || (*p && *p != '?') ||
	    query_u64(q ? q + 1 : NULL, "chunked", 1, &chunked) < 0) {
		reply(c, 400, "Bad Request", NULL, "", 0);
		return;
	}
	c->chunked = chunked == 1;
	c->left = n;
	if (c->chunked)
		evbuffer_add_printf(bufferevent_get_output(c->bev),
				    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
				    "Transfer-Encoding: chunked\r\n\r\n");
	else
		evbuffer_add_printf(bufferevent_get_output(c->bev),
				    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
				    "Content-Length: %llu\r\n\r\n",
				    (unsigned long long)n);
	if (bytes_fill(c)) /* small enough to add at once */
		cnt.ok++;
	else
		stream_begin(c, STREAM_BYTES);
}

/* GET /sse?n=N&ms=M */
static void stream_sse(struct conn *c, const char *path)
{
	const char *q = strchr(path, '?');
	uint64_t n = 0, ms = 0;

	if (query_u64(q ? q + 1 : NULL, "n", SSE_MAX_N, &n) < 0 ||
	    query_u64(q ? q + 1 : NULL, "ms", SSE_MAX_MS, &ms) < 0) {
		reply(c, 400, "Bad Request", NULL, "", 0);
		return;
	}
	evbuffer_add_printf(bufferevent_get_output(c->bev),
			    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
			    "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n");
	c->left = n;
	c->seq = 0;
	c->ms = (int)ms;
	stream_begin(c, STREAM_SSE);
	sse_send(c);
}

/* Handles one complete request; returns 0, or -1 when c was freed. */
static int handle(struct conn *c, char *head)
{
	char *sp1 = strchr(head, ' ');
	char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	char path[512];
	size_t n;
	double now;

	if (!sp2) {
		conn_free(c);
		return -1;
	}
	n = (size_t)(sp2 - sp1 - 1);
	if (n >= sizeof(path))
		n = sizeof(path) - 1;
	memcpy(path, sp1 + 1, n);
	path[n] = '\0';
	if (strncmp(path, "/__", 3) == 0) {
		control(c, path);
		return 0;
	}
	if (strcmp(path, "/health") == 0) {
		cnt.checks++;
		if (chance(mode.reset)) {
			reset_conn(c);
			return -1;
		}
		if (chance(mode.s503))
			reply(c, 503, "Service Unavailable", NULL, "", 0);
		else
			reply(c, 200, "OK", NULL, ok_body, sizeof(ok_body) - 1);
		return 0;
	}
	cnt.requests++;
	now = now_s();
	while (ann_head != ann_tail && ann[ann_tail % ANN_SIZE] + WINDOW_S <= now)
		ann_tail++;
	if (now < last_429 + WINDOW_S) {
		cnt.in_window++;
		if (ann_head != ann_tail && now <= ann[ann_tail % ANN_SIZE] + EDGE_MS / 1000)
			cnt.in_window_head++;
		else if (now >= last_429 + WINDOW_S - EDGE_MS / 1000)
			cnt.in_window_end++;
	}
	if (now < c->last_429 + WINDOW_S)
		cnt.in_conn_window++;
	if (mode.post && strncmp(head, "POST ", 5) == 0) {
		post(c, head);
		return 0;
	}
	if (chance(mode.reset)) {
		reset_conn(c);
		return -1;
	}
	if (chance(mode.s503)) {
		cnt.s503++;
		reply(c, 503, "Service Unavailable", NULL, "", 0);
		return 0;
	}
	if (chance(mode.s429)) {
		cnt.s429++;
		last_429 = c->last_429 = now;
		if (ann_head - ann_tail == ANN_SIZE)
			ann_tail++; /* full: forget the oldest */
		ann[ann_head++ % ANN_SIZE] = now;
		reply(c, 429, "Too Many Requests", "Retry-After: 1\r\n", "", 0);
		return 0;
	}
	if (strncmp(path, "/bytes/", 7) == 0) {
		stream_bytes(c, path);
		return 0;
	}
	if (strncmp(path, "/sse", 4) == 0 && (path[4] == '\0' || path[4] == '?')) {
		stream_sse(c, path);
		return 0;
	}
	c->drift = chance(mode.drift);
	if (mode.delay_ms > 0 || mode.tail > 0 || mode.cap > 0) {
		wait_answer(c);
		return 0;
	}
	reply_ok(c, c->drift);
	return 0;
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	while (!c->waiting && !c->streaming) {
		struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
		char head[MAX_HEAD + 1];
		size_t hlen, blen = 0;
		const char *cl;

		if (end.pos < 0) {
			if (evbuffer_get_length(in) > MAX_HEAD)
				conn_free(c);
			return;
		}
		hlen = (size_t)end.pos + 4;
		if (hlen > MAX_HEAD) {
			conn_free(c);
			return;
		}
		evbuffer_copyout(in, head, hlen);
		head[hlen] = '\0';
		cl = header(head, "Content-Length", &blen);
		blen = cl ? strtoul(cl, NULL, 10) : 0;
		if (blen > MAX_BODY) {
			conn_free(c);
			return;
		}
		if (evbuffer_get_length(in) < hlen + blen)
			return;
		evbuffer_drain(in, hlen + blen);
		if (handle(c, head) < 0)
			return;
	}
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		conn_free(arg);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
		      void *arg)
{
	struct conn *c = calloc(1, sizeof(*c));
	int one = 1;

	(void)l;
	(void)sa;
	(void)len;
	if (!c) {
		evutil_closesocket(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	cnt.accepts++;
	c->last_429 = -1e9;
	if (tls_ctx) {
		SSL *ssl = SSL_new(tls_ctx);

		c->bev = ssl ? bufferevent_openssl_socket_new(
				   arg, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE)
			     : NULL;
		if (!c->bev) {
			if (ssl)
				SSL_free(ssl);
			evutil_closesocket(fd);
			free(c);
			return;
		}
	} else {
		c->bev = bufferevent_socket_new(arg, fd, BEV_OPT_CLOSE_ON_FREE);
	}
	bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
	bufferevent_enable(c->bev, EV_READ);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	event_base_loopbreak(arg);
}

int main(int argc, char **argv)
{
	struct event_base *base;
	struct evconnlistener *lis;
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	struct event *sig;
	int port = 0;
	struct in_addr host = { htonl(INADDR_LOOPBACK) };

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		int v = i + 1 < argc ? atoi(argv[i + 1]) : 0;

		if (strcmp(a, "--503") == 0)
			mode.s503 = v, i++;
		else if (strcmp(a, "--reset") == 0)
			mode.reset = v, i++;
		else if (strcmp(a, "--429") == 0)
			mode.s429 = v, i++;
		else if (strcmp(a, "--delay") == 0)
			mode.delay_ms = v, i++;
		else if (strcmp(a, "--drift") == 0)
			mode.drift = v, i++;
		else if (strcmp(a, "--seed") == 0)
			rng_state = (uint64_t)v * 2654435761u + 1, i++;
		else if (strcmp(a, "--host") == 0 && i + 1 < argc) {
			if (inet_pton(AF_INET, argv[i + 1], &host) != 1) {
				fprintf(stderr, "fixed_upstream: bad --host '%s'\n", argv[i + 1]);
				return 2;
			}
			i++;
		} else if (strcmp(a, "--post") == 0)
			mode.post = v, i++;
		else if (strcmp(a, "--tls") == 0 && i + 2 < argc) {
			tls_ctx = SSL_CTX_new(TLS_server_method());
			if (!tls_ctx ||
			    SSL_CTX_use_certificate_chain_file(tls_ctx, argv[i + 1]) != 1 ||
			    SSL_CTX_use_PrivateKey_file(tls_ctx, argv[i + 2], SSL_FILETYPE_PEM) !=
				1) {
				ERR_print_errors_fp(stderr);
				return 1;
			}
			i += 2;
		} else if (a[0] >= '0' && a[0] <= '9')
			port = atoi(a);
		else {
			fprintf(stderr, "fixed_upstream: unknown option '%s'\n", a);
			return 2;
		}
	}
	set = calloc(SET_SIZE, sizeof(*set));
	if (!set)
		return 1;
	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] =
		    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-\n"[i % 64];
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr = host;
	sin.sin_port = htons((unsigned short)port);
	lis = evconnlistener_new_bind(base, on_accept, base,
				      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 1024,
				      (struct sockaddr *)&sin, sizeof(sin));
	if (!lis) {
		perror("bind");
		return 1;
	}
	getsockname(evconnlistener_get_fd(lis), (struct sockaddr *)&sin, &len);
	printf("%u\n", ntohs(sin.sin_port));
	fflush(stdout);
	sig = evsignal_new(base, SIGTERM, on_signal, base);
	evsignal_add(sig, NULL);
	event_base_dispatch(base);
	event_free(sig);
	evconnlistener_free(lis);
	event_base_free(base);
	free(set);
	if (tls_ctx)
		SSL_CTX_free(tls_ctx);
	return 0;
}
