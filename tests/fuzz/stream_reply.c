/* Fuzz target: braced's streamed replies to the app (http_stream_*() in
 * http_reply.c), whose body bytes and framing come from what an upstream
 * sends. The input picks the app's request (GET or HEAD, HTTP/1.0 or 1.1,
 * maybe a pipelined second one), the status and framing begun, then a run
 * of body writes, app reads of any size, loop turns, and the end: end,
 * abort, or the app leaving. Everything the app receives is parsed as
 * responses by llhttp and held to http.h: the status and framing begun,
 * the body written (or a prefix of it the app can tell is cut short), the
 * pipelined answer after a whole stream only, the queue cap, and no
 * callback from inside an http_stream_*() call. */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <llhttp.h>

#include "http.h"
#include "fuzz.h"

/* Per-input bounds: writes, body bytes, and loop turns of each kind. */
#define FUZZ_MAX_OPS 256
#define FUZZ_MAX_WRITES 64
#define FUZZ_MAX_BODY (1024 * 1024)
#define FUZZ_OP_TURNS 8       /* one turns op runs 1 to this many turns */
#define FUZZ_GONE_TURNS 64    /* for on_gone once the app has left */
#define FUZZ_DRAIN_TURNS 4096 /* for the whole answer at the end */
#define FUZZ_QUIET_TURNS 8    /* turns without a byte that say the answer is over */
#define FUZZ_TCP_WAIT_MS 10   /* and the wait after each, over TCP */
/* What the app may receive: the body, chunk lines, two heads. */
#define FUZZ_RX_MAX (FUZZ_MAX_BODY + 64 * 1024)

/* The second, pipelined request and its answer's body. */
#define SECOND_TARGET "/second"
#define SECOND_BODY "second"

enum end_kind {
	END_END,       /* http_stream_end() */
	END_ABORT,     /* http_stream_abort() */
	END_APP_CLOSE, /* the app closes its end first, then end or abort */
};

/* How the answer's body is delimited, as http.h says it must be. */
enum frame {
	FRAME_NO_BODY, /* HEAD, 204, 304 */
	FRAME_LENGTH,
	FRAME_CHUNKED,
	FRAME_CLOSE,
};

enum op_kind {
	OP_WRITE,     /* a write of bytes from the input */
	OP_READ,      /* the app reads up to n bytes */
	OP_TURNS,     /* n loop turns */
	OP_READ_ALL,  /* the app reads what is there */
	OP_OVERFLOW,  /* a write one byte past HTTP_STREAM_QUEUED_MAX */
	OP_WRITE_BIG, /* a write of up to 1 MiB of patterned bytes */
	OP_PUMP,      /* a turn, then the app reads what is there */
};

struct op {
	enum op_kind kind;
	size_t n;
	const uint8_t *data; /* OP_WRITE: the first data_len bytes, from the input */
	size_t data_len;
	uint8_t seed; /* the bytes past data_len: seed + i */
};

/* One input, decoded. */
struct plan {
	int head, minor, pipelined, tcp, drain, inline_begin, conn_header, caller_headers;
	int status;
	enum end_kind end;
	int end_then_abort; /* END_APP_CLOSE: abort rather than end after */
	int64_t length;
	size_t low_water;
	int bufsize;
	struct op ops[FUZZ_MAX_OPS];
	size_t nops;
};

/* What the input is decoded from: bytes taken in order, 0 past the end. */
struct cursor {
	const uint8_t *p;
	size_t n;
};

static uint8_t take(struct cursor *c)
{
	uint8_t b = 0;

	if (c->n) {
		b = *c->p++;
		c->n--;
	}
	return b;
}

static size_t take16(struct cursor *c)
{
	size_t hi = take(c);

	return hi << 8 | take(c);
}

/* The state of one run, shared with the server's callbacks. */
static struct plan plan;
static struct http_request *req; /* the streamed request, until it ends */
static int requests, gone_calls, drain_calls;
static int in_api;                    /* inside an http_stream_*() call */
static int ended;                     /* http_stream_end() or _abort() was called */
static int begin_ret = 1;             /* http_stream_begin()'s result; 1: not yet */
static uint8_t expect[FUZZ_MAX_BODY]; /* the body written and accepted */
static size_t expect_len;
static char rx[FUZZ_RX_MAX]; /* what the app received */
static size_t rx_len;
static int rx_eof, rx_err;
static char overflow[HTTP_STREAM_QUEUED_MAX + 1]; /* OP_OVERFLOW's bytes, never read */
static int listen_fd = -1;                        /* loopback TCP, for resets */

/* A result of http_stream_*() that breaks http.h; the message names it. */
static void fail(const char *what)
{
	fprintf(stderr, "stream_reply: %s\n", what);
	abort();
}

static void check(int ok, const char *what)
{
	if (!ok)
		fail(what);
}

static void check_queued(void)
{
	if (req && !ended)
		check(http_stream_queued(req) <= HTTP_STREAM_QUEUED_MAX,
		      "http_stream_queued() past HTTP_STREAM_QUEUED_MAX");
}

static int s_begin(void)
{
	struct http_header h[3] = {
		{ "Content-Type", 12, "application/octet-stream", 24 },
		/* the server frames a stream itself: both dropped (HEAD keeps
		 * a Content-Length of the caller's) */
		{ "Transfer-Encoding", 17, "chunked", 7 },
		{ "Content-Length", 14, "7", 1 },
	};
	struct http_stream_opts o = { plan.length, plan.low_water };
	int r;

	in_api = 1;
	r = http_stream_begin(req, plan.status, h, plan.caller_headers ? 3 : 1, &o);
	in_api = 0;
	check(r == 0, "http_stream_begin() failed with the app there");
	return r;
}

static void on_request(struct http_request *r, void *arg)
{
	(void)arg;
	check(!in_api, "on_request inside an http_stream_*() call");
	if (requests++ == 0) {
		req = r;
		if (plan.inline_begin)
			begin_ret = s_begin();
		return;
	}
	/* the pipelined request: only after a whole stream, and answered */
	check(requests == 2 && ended && !strcmp(r->target, SECOND_TARGET),
	      "a pipelined request handed over before the stream ended");
	{
		char *body = malloc(sizeof(SECOND_BODY) - 1);

		if (body)
			memcpy(body, SECOND_BODY, sizeof(SECOND_BODY) - 1);
		http_reply(r, 200, NULL, 0, body, body ? sizeof(SECOND_BODY) - 1 : 0);
	}
}

static void on_gone(struct http_request *r, void *arg)
{
	(void)arg;
	check(!in_api, "on_gone inside an http_stream_*() call");
	check(r->gone, "on_gone without req->gone");
	if (r == req) {
		check(!ended, "on_gone after the stream ended");
		gone_calls++;
		check(gone_calls == 1, "on_gone twice");
	}
}

static void on_drain(struct http_request *r, void *arg)
{
	(void)arg;
	check(!in_api, "on_drain inside an http_stream_*() call");
	check(r == req && !ended, "on_drain for no stream");
	check(http_stream_queued(r) <= plan.low_water, "on_drain above low water");
	drain_calls++;
}

/* ---- the app's side ---- */

/* Reads at most max bytes of what is there now; returns how many. */
static size_t app_read(int fd, size_t max)
{
	size_t got = 0;

	while (fd >= 0 && got < max && !rx_eof && !rx_err) {
		size_t want = max - got;
		ssize_t n;

		if (rx_len == sizeof(rx))
			fail("the app received more than was written");
		if (want > sizeof(rx) - rx_len)
			want = sizeof(rx) - rx_len;
		n = read(fd, rx + rx_len, want);
		if (n > 0) {
			rx_len += (size_t)n;
			got += (size_t)n;
		} else if (n == 0) {
			rx_eof = 1;
		} else {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				rx_err = errno;
			break;
		}
	}
	return got;
}

static void turn(struct event_base *base)
{
	event_base_loop(base, EVLOOP_NONBLOCK);
	check_queued();
}

/* Turns and reads until the connection ends or stays quiet. */
static void app_drain(struct event_base *base, int fd)
{
	for (int i = 0, quiet = 0; i < FUZZ_DRAIN_TURNS && quiet < FUZZ_QUIET_TURNS; i++) {
		turn(base);
		if (app_read(fd, SIZE_MAX)) {
			quiet = 0;
			continue;
		}
		if (rx_eof || rx_err)
			return;
		quiet++;
		/* loopback TCP may hold a segment back for a window update */
		if (plan.tcp) {
			struct pollfd pfd = { fd, POLLIN, 0 };

			poll(&pfd, 1, FUZZ_TCP_WAIT_MS);
		}
	}
}

/* A connected pair: the server's end in *ret_srv, the app's returned
 * (non-blocking). A socketpair with small buffers, or loopback TCP when
 * tcp, so a reset can be seen; TCP keeps its own buffers, as a tiny window
 * waits on timers (persist, delayed ACK). -1 on failure. */
static int connect_app(int tcp, int *ret_srv)
{
	int sz = plan.bufsize, sv[2] = { -1, -1 };

	if (!tcp) {
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
			return -1;
	} else {
		struct sockaddr_in a;
		socklen_t alen = sizeof(a);

		sv[1] = socket(AF_INET, SOCK_STREAM, 0);
		if (sv[1] < 0)
			return -1;
		if (getsockname(listen_fd, (struct sockaddr *)&a, &alen) < 0 ||
		    connect(sv[1], (struct sockaddr *)&a, alen) < 0 ||
		    (sv[0] = accept(listen_fd, NULL, NULL)) < 0) {
			close(sv[1]);
			return -1;
		}
	}
	if (!tcp) {
		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	}
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	*ret_srv = sv[0];
	return sv[1];
}

/* Leaves with a reset on TCP, so no TIME_WAIT piles up over a run. */
static void app_close(int fd, int tcp)
{
	if (tcp) {
		struct linger lg = { 1, 0 };

		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(fd);
}

/* ---- decoding the input ---- */

static void decode(const uint8_t *data, size_t size)
{
	static const int statuses[8] = { 200, 204, 304, 206, 201, 404, 503, 200 };
	struct cursor c = { data, size };
	uint8_t f0 = take(&c), f1 = take(&c), delta = take(&c);
	size_t writes = 0, body = 0;
	int length_mode;

	memset(&plan, 0, sizeof(plan));
	plan.head = f0 & 1;
	plan.minor = !(f0 & 2);
	plan.pipelined = !!(f0 & 4);
	plan.tcp = !!(f0 & 8);
	plan.end = (f0 >> 4 & 3) == 3 ? END_APP_CLOSE : (f0 >> 4 & 3) == 2 ? END_ABORT : END_END;
	plan.end_then_abort = !!(f0 & 0x40);
	plan.drain = !(f0 & 0x80);
	plan.status = statuses[f1 & 7];
	plan.conn_header = !!(f1 & 8);
	length_mode = f1 >> 4 & 3;
	plan.caller_headers = !!(f1 & 0x40);
	plan.inline_begin = !!(f1 & 0x80);
	plan.low_water = take16(&c) * 4;
	plan.bufsize = 1024 << (take(&c) % 7);

	while (c.n && plan.nops < FUZZ_MAX_OPS) {
		uint8_t o = take(&c);
		struct op *op = &plan.ops[plan.nops];

		memset(op, 0, sizeof(*op));
		switch (o & 7) {
		case 0:
		case 1:
			op->kind = OP_WRITE;
			op->n = o & 8 ? take16(&c) : take(&c) % 64;
			op->data = c.p;
			op->data_len = op->n < c.n ? op->n : c.n;
			c.p += op->data_len;
			c.n -= op->data_len;
			break;
		case 2:
			op->kind = OP_READ;
			op->n = take16(&c) % 8192 + 1;
			break;
		case 3:
			op->kind = OP_TURNS;
			op->n = (o >> 3) % FUZZ_OP_TURNS + 1;
			break;
		case 4:
			op->kind = OP_READ_ALL;
			break;
		case 5:
			op->kind = OP_OVERFLOW;
			break;
		case 6:
			op->kind = OP_WRITE_BIG;
			op->n = take16(&c) << 4;
			break;
		default:
			op->kind = OP_PUMP;
			break;
		}
		op->seed = o;
		if (op->kind == OP_WRITE || op->kind == OP_WRITE_BIG) {
			if (writes == FUZZ_MAX_WRITES)
				continue;
			if (op->n > FUZZ_MAX_BODY - body)
				op->n = FUZZ_MAX_BODY - body;
			if (op->data_len > op->n)
				op->data_len = op->n;
			writes++;
			body += op->n;
		}
		plan.nops++;
	}
	/* a Content-Length the writes meet, fall short of, or pass */
	switch (length_mode) {
	case 0:
		plan.length = -1;
		break;
	case 1:
		plan.length = (int64_t)body;
		break;
	case 2:
		plan.length = body > delta ? (int64_t)(body - delta) : 0;
		break;
	default:
		plan.length = (int64_t)(body + delta);
		break;
	}
}

/* ---- what the app must have received ---- */

/* One response as the app's parser saw it. */
struct seen {
	int status;
	int lengths, chunked, te_other, conn_close, conn_keep_alive;
	uint64_t length;
	int complete;
	uint8_t *body; /* the first response's, de-framed */
	size_t body_len;
};

struct app_parse {
	struct seen msg[2];
	int heads; /* responses whose head is complete */
	char field[64];
	size_t field_len;
	char value[64];
	size_t value_len;
	int in_value;
};

static uint8_t seen_body[FUZZ_RX_MAX];

static struct app_parse *ap_of(llhttp_t *p)
{
	return p->data;
}

static void ap_header_done(struct app_parse *ap)
{
	struct seen *m;

	if (!ap->in_value)
		return;
	ap->in_value = 0;
	if (ap->heads >= 2)
		fail("a third response");
	m = &ap->msg[ap->heads];
	ap->field[ap->field_len] = '\0';
	ap->value[ap->value_len] = '\0';
	if (!strcasecmp(ap->field, "Content-Length")) {
		m->lengths++;
		m->length = strtoull(ap->value, NULL, 10);
	} else if (!strcasecmp(ap->field, "Transfer-Encoding")) {
		if (!strcasecmp(ap->value, "chunked"))
			m->chunked++;
		else
			m->te_other++;
	} else if (!strcasecmp(ap->field, "Connection")) {
		m->conn_close += !strcasecmp(ap->value, "close");
		m->conn_keep_alive += !strcasecmp(ap->value, "keep-alive");
	}
	ap->field_len = ap->value_len = 0;
}

static void append(char *buf, size_t *len, size_t cap, const char *at, size_t n)
{
	if (n > cap - 1 - *len)
		n = cap - 1 - *len;
	memcpy(buf + *len, at, n);
	*len += n;
}

static int ap_field(llhttp_t *p, const char *at, size_t n)
{
	struct app_parse *ap = ap_of(p);

	ap_header_done(ap);
	append(ap->field, &ap->field_len, sizeof(ap->field), at, n);
	return 0;
}

static int ap_value(llhttp_t *p, const char *at, size_t n)
{
	struct app_parse *ap = ap_of(p);

	ap->in_value = 1;
	append(ap->value, &ap->value_len, sizeof(ap->value), at, n);
	return 0;
}

static int ap_headers_complete(llhttp_t *p)
{
	struct app_parse *ap = ap_of(p);

	ap_header_done(ap);
	if (ap->heads >= 2)
		fail("a third response");
	ap->msg[ap->heads].status = p->status_code;
	/* the first answers the HEAD, when it was one: no body follows */
	return ap->heads++ == 0 && plan.head ? 1 : 0;
}

static int ap_body(llhttp_t *p, const char *at, size_t n)
{
	struct app_parse *ap = ap_of(p);
	struct seen *m = &ap->msg[ap->heads - 1];

	if (ap->heads == 1) {
		memcpy(m->body + m->body_len, at, n);
	} else if (m->body_len + n > sizeof(SECOND_BODY) - 1 ||
		   memcmp(&SECOND_BODY[m->body_len], at, n)) {
		fail("the pipelined answer's body is not its own");
	}
	m->body_len += n;
	return 0;
}

static int ap_message_complete(llhttp_t *p)
{
	struct app_parse *ap = ap_of(p);

	ap->msg[ap->heads - 1].complete = 1;
	return 0;
}

/* The framing the answer must have, from the plan (http.h). */
static enum frame expected_frame(void)
{
	if (plan.head || plan.status == 204 || plan.status == 304)
		return FRAME_NO_BODY;
	if (plan.length >= 0)
		return FRAME_LENGTH;
	return plan.minor ? FRAME_CHUNKED : FRAME_CLOSE;
}

/* Whether the app allowed another request: HTTP/1.1 unless it said
 * close, HTTP/1.0 only when it said keep-alive. */
static int app_keep_alive(void)
{
	return plan.minor ? !plan.conn_header : plan.conn_header;
}

static void check_head(const struct seen *m, enum frame fr, int kept)
{
	check(m->status == plan.status, "the status is not the one begun");
	check(!m->te_other, "a transfer coding other than chunked");
	switch (fr) {
	case FRAME_NO_BODY:
		check(!m->chunked, "chunked framing on an answer without a body");
		if (plan.head && plan.length >= 0 && plan.status != 204 && plan.status != 304)
			check(m->lengths == 1 &&
				  m->length == (plan.caller_headers ? 7 : (uint64_t)plan.length),
			      "a HEAD answer without the Content-Length begun");
		else if (!plan.head || !plan.caller_headers)
			check(!m->lengths, "a Content-Length on an answer without a body");
		break;
	case FRAME_LENGTH:
		check(m->lengths == 1 && m->length == (uint64_t)plan.length && !m->chunked,
		      "not the one Content-Length begun");
		break;
	case FRAME_CHUNKED:
		check(m->chunked == 1 && !m->lengths, "unknown length to HTTP/1.1 not chunked");
		break;
	case FRAME_CLOSE:
		check(!m->chunked && !m->lengths && m->conn_close && !m->conn_keep_alive,
		      "unknown length to HTTP/1.0 not delimited by the close");
		break;
	}
	if (kept)
		check(!m->conn_close && m->conn_keep_alive == !plan.minor,
		      "Connection does not say the connection is kept");
	else
		check(m->conn_close && !m->conn_keep_alive,
		      "no Connection: close on the last answer");
}

/* The body the app saw is the body written, or a prefix of it. */
static void check_body(const struct seen *m, int whole)
{
	check(m->body_len <= expect_len && !memcmp(m->body, expect, m->body_len),
	      "the body seen is not a prefix of the body written");
	if (whole)
		check(m->body_len == expect_len, "the body seen is not the body written");
}

static void check_received(int aborted, int left)
{
	static llhttp_settings_t settings;
	static int settings_made;
	static struct app_parse ap;
	enum frame fr = expected_frame();
	int kept = app_keep_alive() && fr != FRAME_CLOSE;
	llhttp_t p;
	llhttp_errno_t err;

	if (!settings_made) {
		llhttp_settings_init(&settings);
		settings.on_header_field = ap_field;
		settings.on_header_value = ap_value;
		settings.on_headers_complete = ap_headers_complete;
		settings.on_body = ap_body;
		settings.on_message_complete = ap_message_complete;
		settings_made = 1;
	}
	memset(&ap, 0, sizeof(ap));
	ap.msg[0].body = seen_body;
	llhttp_init(&p, HTTP_RESPONSE, &settings);
	p.data = &ap;
	err = llhttp_execute(&p, rx, rx_len);
	check(err == HPE_OK, "the answer does not parse");
	if (rx_eof || rx_err)
		err = llhttp_finish(&p);
	check(ap.heads >= 1, "no head");
	check_head(&ap.msg[0], fr, kept); /* written at the begin, whatever the end */
	check_body(&ap.msg[0], !aborted);
	if (!aborted) {
		check(err == HPE_OK && ap.msg[0].complete, "a stream ended whole is not complete");
		if (kept && plan.pipelined) {
			check(ap.heads == 2 && ap.msg[1].complete && ap.msg[1].status == 200 &&
				  ap.msg[1].body_len == sizeof(SECOND_BODY) - 1,
			      "the pipelined request is not answered after the stream");
		} else {
			check(ap.heads == 1, "an answer to no request");
		}
		check(kept == !(rx_eof || rx_err), "the connection is kept against its framing");
		return;
	}
	check(ap.heads == 1, "a pipelined request answered after an abort");
	check(rx_eof || rx_err, "an aborted stream's connection stays open");
	/* the app can tell the body is cut short, when it is */
	if (fr == FRAME_LENGTH && left)
		check(!ap.msg[0].complete && err != HPE_OK,
		      "a short Content-Length body looks whole");
	if (fr == FRAME_CHUNKED)
		check(!ap.msg[0].complete, "an aborted chunked body has its last chunk");
	if (fr == FRAME_CLOSE && plan.tcp)
		check(rx_err == ECONNRESET, "an aborted close-delimited body ends in a FIN");
}

/* ---- running the plan ---- */

/* What http_stream_write() of n bytes must return, the app being there,
 * with queued bytes waiting and left owed under a Content-Length. */
static int write_expect(size_t n, size_t queued, uint64_t left)
{
	if (!n || expected_frame() == FRAME_NO_BODY)
		return 0;
	if (expected_frame() == FRAME_LENGTH && n > left)
		return -EMSGSIZE;
	if (n > HTTP_STREAM_QUEUED_MAX - queued)
		return -ENOBUFS;
	return 0;
}

static uint8_t wbuf[FUZZ_MAX_BODY];

static void do_write(const struct op *op, int app_gone, uint64_t *left)
{
	const uint8_t *buf = wbuf;
	size_t n = op->n, queued = http_stream_queued(req);
	int r, want;

	if (op->kind == OP_OVERFLOW) {
		buf = (const uint8_t *)overflow;
		n = HTTP_STREAM_QUEUED_MAX + 1 - queued;
	} else {
		if (op->data_len)
			memcpy(wbuf, op->data, op->data_len);
		for (size_t i = op->data_len; i < n; i++)
			wbuf[i] = (uint8_t)(op->seed + i);
	}
	want = write_expect(n, queued, *left);
	in_api = 1;
	r = http_stream_write(req, buf, n);
	in_api = 0;
	check_queued();
	if (gone_calls)
		check(r == -EPIPE, "a write after on_gone not -EPIPE");
	else if (app_gone)
		check(r == want || r == -EPIPE, "a write to an app gone neither refused nor taken");
	else
		check(r == want, "http_stream_write() result against http.h");
	if (op->kind == OP_OVERFLOW)
		check(r != 0 || !n || expected_frame() == FRAME_NO_BODY,
		      "a write past HTTP_STREAM_QUEUED_MAX taken");
	if (r == 0 && n && expected_frame() != FRAME_NO_BODY) {
		if (expect_len + n > sizeof(expect))
			fail("more body than bounded");
		memcpy(expect + expect_len, buf, n);
		expect_len += n;
		*left -= expected_frame() == FRAME_LENGTH ? n : 0;
	}
}

/* The app reads what is there and closes its end mid-stream: on_gone must
 * follow from the loop. Returns 1 (the app is gone). */
static int app_leave(struct event_base *base, int fd)
{
	app_read(fd, SIZE_MAX);
	app_close(fd, plan.tcp);
	for (int t = 0; t < FUZZ_GONE_TURNS && !gone_calls; t++)
		turn(base);
	check(gone_calls == 1, "the app left and on_gone never came");
	return 1;
}

static void run(struct event_base *base, int fd)
{
	uint64_t left = plan.length >= 0 ? (uint64_t)plan.length : 0;
	int app_gone = 0, r;

	for (size_t i = 0; i < plan.nops; i++) {
		const struct op *op = &plan.ops[i];

		/* the app leaves halfway through the ops */
		if (plan.end == END_APP_CLOSE && !app_gone && i >= plan.nops / 2)
			app_gone = app_leave(base, fd);
		switch (op->kind) {
		case OP_WRITE:
		case OP_WRITE_BIG:
		case OP_OVERFLOW:
			do_write(op, app_gone, &left);
			break;
		case OP_READ:
			if (!app_gone)
				app_read(fd, op->n);
			break;
		case OP_TURNS:
			for (size_t t = 0; t < op->n; t++)
				turn(base);
			break;
		case OP_READ_ALL:
			if (!app_gone)
				app_read(fd, SIZE_MAX);
			break;
		case OP_PUMP:
			turn(base);
			if (!app_gone)
				app_read(fd, SIZE_MAX);
			break;
		}
	}
	if (plan.end == END_APP_CLOSE && !app_gone)
		app_gone = app_leave(base, fd);
	in_api = 1;
	if (plan.end == END_ABORT || (plan.end == END_APP_CLOSE && plan.end_then_abort)) {
		r = http_stream_abort(req);
		in_api = 0;
		ended = 1;
		check(r == 0, "http_stream_abort() not 0");
	} else {
		int short_body = expected_frame() == FRAME_LENGTH && left;

		r = http_stream_end(req);
		in_api = 0;
		ended = 1;
		if (app_gone)
			check(r == -EPIPE, "http_stream_end() after on_gone not -EPIPE");
		else if (short_body)
			check(r == -EMSGSIZE, "a body short of its Content-Length ended whole");
		else
			check(r == 0, "http_stream_end() failed with the app there");
	}
	req = NULL;
	if (app_gone)
		return;
	app_drain(base, fd);
	check_received(plan.end != END_END || (expected_frame() == FRAME_LENGTH && left),
		       expected_frame() == FRAME_LENGTH && left);
}

/* As the daemon does (writes may meet an app gone). A loopback listener
 * for the inputs that need a reset to be seen. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET };

	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	if (listen_fd >= 0 &&
	    (bind(listen_fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(listen_fd, 4) < 0)) {
		close(listen_fd);
		listen_fd = -1;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct http_limits limits = {
		.max_header_size = 4096,
		.max_request_body = 1024,
		.max_connections = 4,
		.header_timeout_ms = 10000,
		.body_timeout_ms = 10000,
		.idle_timeout_ms = 10000,
		.admin_max_connections = 4,
	};
	struct event_base *base = event_base_new();
	struct http_server *srv =
	    base ? http_server_new(base, &limits, on_request, on_gone, NULL) : NULL;
	char head[256];
	int fd = -1, sfd = -1, len;

	req = NULL;
	requests = gone_calls = drain_calls = in_api = ended = 0;
	begin_ret = 1;
	expect_len = rx_len = 0;
	rx_eof = rx_err = 0;
	if (!srv)
		goto out;
	decode(data, size);
	/* TCP only where only it can tell: a body delimited by the close */
	if (listen_fd < 0 || expected_frame() != FRAME_CLOSE)
		plan.tcp = 0;
	if (plan.drain)
		http_server_set_drain_handler(srv, on_drain);
	fd = connect_app(plan.tcp, &sfd);
	if (fd < 0)
		goto out;
	if (http_server_add_connection(srv, sfd, HTTP_LISTENER_APP) < 0) {
		app_close(fd, plan.tcp);
		fd = -1;
		goto out;
	}
	len = snprintf(head, sizeof(head), "%s /s HTTP/1.%d\r\nHost: x\r\n%s\r\n%s",
		       plan.head ? "HEAD" : "GET", plan.minor,
		       !plan.conn_header ? ""
		       : plan.minor      ? "Connection: close\r\n"
					 : "Connection: keep-alive\r\n",
		       plan.pipelined ? "GET " SECOND_TARGET " HTTP/1.1\r\nHost: x\r\n\r\n" : "");
	if (write(fd, head, (size_t)len) != len)
		goto out;
	for (int t = 0; t < FUZZ_OP_TURNS && !req; t++)
		turn(base);
	check(req != NULL, "the request never reached on_request");
	if (begin_ret == 1)
		begin_ret = s_begin();
	run(base, fd);
	if (plan.end == END_APP_CLOSE)
		fd = -1;
out:
	if (fd >= 0)
		app_close(fd, plan.tcp);
	for (int t = 0; base && t < FUZZ_QUIET_TURNS; t++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	http_server_free(srv);
	if (base)
		event_base_free(base);
	return 0;
}
