/* Fuzz target: braced's HTTP/1.1 front (http_*.c on llhttp) reading an app's
 * bytes. The first input byte says where to split the rest; the rest is
 * written, in those two pieces, into two socketpairs the server serves,
 * one as an app connection and one as an admin connection. Every request
 * it hands over is answered at once, as the daemon would, and the loop runs
 * until nothing is left to do. The server must never crash, leak or read
 * past what it was given, whatever the framing, and no request it must
 * refuse (http.h) may reach on_request, where the daemon routes.
 *
 * The same bytes then go to a server in head mode (on_head, bodies held
 * or piped): the last input byte picks the room, how much the caller reads
 * at a time, and hold or pipe. The requests handed over whole (method,
 * target, body bytes) must be the same, in the same order, as in the first
 * run, and no refused request may get past its head there either. */
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "fuzz.h"

/* Loop turns per piece, at least: enough for parse, reply and pipelined
 * requests; more while anything moves, up to FUZZ_HTTP_TURNS_MAX. */
#define FUZZ_HTTP_TURNS 16
#define FUZZ_HTTP_TURNS_MAX 200000
#define FUZZ_QUIET_TURNS 3 /* turns without a change that end the loop */
#define FUZZ_MAX_BODY 8192
#define FUZZ_RECORD_MAX (256 * 1024) /* the requests handed over, as bytes */

/* The bytes the connections read, and how many requests each handed over. */
static const uint8_t *stream;
static size_t stream_len;
static unsigned handed[2];

/* What each run handed over whole, app requests only: method NUL target
 * NUL body length, body, one after the other. */
struct record {
	char bytes[FUZZ_RECORD_MAX];
	size_t len;
	int full;
};
static struct record records[2];
static int run;                /* 0: bodies read whole; 1: head mode */
static unsigned long activity; /* callbacks run: the loop goes on while it grows */

/* Head mode's choices, from the input's last byte. */
static size_t room;                /* http_body_stream()'s */
static size_t slice;               /* bytes the caller takes per http_body_read() */
static unsigned how;               /* 0 pipe, 1 hold, 2 both in turn, 3 pipe with room 0 at times */
static unsigned headed;            /* requests that came to on_head */
static struct http_request *piped; /* the piped request being read */
static char piped_body[FUZZ_MAX_BODY + 1];
static size_t piped_len;
static unsigned takes; /* calls of take(): how 3 gives room 0 on every other one */

static int is(const struct http_header *h, const char *name)
{
	return h->name_len == strlen(name) && !strncasecmp(h->name, name, h->name_len);
}

/* Transfer-Encoding, all fields joined, is "chunked" and nothing else once
 * SP, HTAB and commas are dropped; absent counts as fine. */
static void check_transfer_encoding(const struct http_request *req)
{
	char joined[16];
	size_t n = 0, fields = 0;

	for (size_t i = 0; i < req->nheaders; i++) {
		if (!is(&req->headers[i], "Transfer-Encoding"))
			continue;
		fields++;
		for (size_t j = 0; j < req->headers[i].value_len; j++) {
			char ch = req->headers[i].value[j];

			if (ch == ' ' || ch == '\t' || ch == ',')
				continue;
			if (n == sizeof(joined) - 1)
				abort(); /* a coding beside chunked got through */
			joined[n++] = ch;
		}
	}
	joined[n] = '\0';
	if (fields && strcasecmp(joined, "chunked") != 0)
		abort();
	if (fields && req->version_minor == 0)
		abort();
	if (fields && req->admin)
		abort(); /* an admin body is refused at the head */
}

/* The first request of a connection starts the stream (after empty lines):
 * its request line is METHOD SP TARGET SP HTTP/1.x, one SP each. */
static void check_request_line(const struct http_request *req)
{
	size_t at = 0, end, want = strlen(req->method) + 1 + req->target_len + 1 + 8;

	while (at < stream_len && (stream[at] == '\r' || stream[at] == '\n'))
		at++;
	for (end = at; end < stream_len && stream[end] != '\n'; end++)
		;
	if (end > at && stream[end - 1] == '\r')
		end--;
	if (end - at != want)
		abort();
}

static void record(const struct http_request *req, const char *body, size_t body_len)
{
	struct record *r = &records[run];
	size_t m = strlen(req->method) + 1, t = req->target_len + 1;

	if (req->admin || r->full)
		return;
	if (r->len + m + t + sizeof(body_len) + body_len > sizeof(r->bytes)) {
		r->full = 1;
		return;
	}
	memcpy(r->bytes + r->len, req->method, m);
	memcpy(r->bytes + r->len + m, req->target, t);
	memcpy(r->bytes + r->len + m + t, &body_len, sizeof(body_len));
	if (body_len)
		memcpy(r->bytes + r->len + m + t + sizeof(body_len), body, body_len);
	r->len += m + t + sizeof(body_len) + body_len;
}

/* The checks every request handed over passes, at its head. */
static void check_head(const struct http_request *req)
{
	size_t hosts = 0;

	/* Reading every header, as the front's routing does. */
	for (size_t i = 0; i < req->nheaders; i++) {
		if (req->headers[i].name_len == 0 ||
		    strlen(req->headers[i].name) != req->headers[i].name_len)
			abort();
		hosts += is(&req->headers[i], "Host");
	}
	if (hosts > 1 || (req->version_minor == 1 && hosts == 0))
		abort();
	check_transfer_encoding(req);
}

static void on_request(struct http_request *req, void *arg)
{
	static const struct http_header h = { "Content-Type", 12, "text/plain", 10 };
	char *body = malloc(2);

	(void)arg;
	activity++;
	check_head(req);
	if (req->body_len > (req->admin ? 0 : FUZZ_MAX_BODY))
		abort();
	if (handed[req->admin]++ == 0 && !(run && !req->admin && headed))
		check_request_line(req);
	record(req, req->body, req->body_len);
	if (body)
		memcpy(body, "ok", 2);
	http_reply(req, 200, &h, 1, body, body ? 2 : 0);
}

/* The app left a request still with the caller (a body held or piped):
 * the caller answers it all the same. */
static void on_gone(struct http_request *req, void *arg)
{
	(void)arg;
	activity++;
	if (req == piped)
		piped = NULL;
	http_reply(req, 200, NULL, 0, NULL, 0);
}

/* ---- head mode ---- */

static void on_head(struct http_request *req, void *arg)
{
	(void)arg;
	activity++;
	if (req->admin || piped)
		abort(); /* admin bodies are refused; one request at a time */
	check_head(req);
	if (headed++ == 0 && handed[0] == 0)
		check_request_line(req);
	if (req->body_length == 0 || req->body_length > FUZZ_MAX_BODY)
		abort(); /* no body, or one refused at the head */
	if (how == 1 || (how == 2 && headed % 2)) {
		if (http_body_hold(req) != 0)
			abort();
		return;
	}
	if (http_body_stream(req, how == 3 && headed % 2 ? 0 : room) != 0)
		abort();
	piped = req;
	piped_len = 0;
}

/* The caller takes up to one slice of the piped body; at its end or
 * failure, it answers. */
static void take(struct http_request *req)
{
	static const struct http_header h = { "Content-Type", 12, "text/plain", 10 };
	size_t n = slice < sizeof(piped_body) - piped_len ? slice : sizeof(piped_body) - piped_len;
	enum problem_code code = PROBLEM_INTERNAL;
	int status;
	enum http_body_state st;

	piped_len += http_body_read(req, piped_body + piped_len, n);
	if (piped_len > FUZZ_MAX_BODY)
		abort(); /* past max_request_body, and not failed */
	if (how == 3)
		http_body_set_room(req, takes++ % 2 ? room : 0);
	st = http_body_state(req, &code);
	status = problem_code_status(code);
	if (st == HTTP_BODY_FAILED) {
		if (status != 400 && status != 408 && status != 413 && status != 500)
			abort();
		piped = NULL;
		http_reply(req, status, NULL, 0, NULL, 0);
		return;
	}
	if (st != HTTP_BODY_END || http_body_buffered(req))
		return;
	if (req->body_length >= 0 && piped_len != (size_t)req->body_length)
		abort();
	piped = NULL;
	record(req, piped_body, piped_len);
	if (how == 3) {
		struct http_stream_opts o = { -1, 0 };

		if (http_stream_begin(req, 200, &h, 1, &o) == 0)
			http_stream_write(req, "ok", 2);
		http_stream_end(req);
		return;
	}
	http_reply(req, 200, &h, 1, NULL, 0);
}

static void on_body(struct http_request *req, void *arg)
{
	static const struct http_header h = { "Content-Type", 12, "text/plain", 10 };
	enum problem_code code = PROBLEM_INTERNAL;

	(void)arg;
	activity++;
	if (req != piped) {
		/* a held body that failed */
		if (http_body_state(req, &code) != HTTP_BODY_FAILED)
			abort();
		http_reply(req, problem_code_status(code), &h, 1, NULL, 0);
		return;
	}
	take(req);
}

/* The bytes the server has not read yet on its ends (sv[0]) of the pairs. */
static int unread(const int *srv_fds)
{
	int total = 0;

	for (int k = 0; k < 2; k++) {
		int n = 0;

		if (srv_fds[k] >= 0 && ioctl(srv_fds[k], FIONREAD, &n) == 0)
			total += n;
	}
	return total;
}

static int srv_fds[2] = { -1, -1 };

static void feed(struct event_base *base, const int *fds, const uint8_t *data, size_t size)
{
	char sink[4096];
	int quiet = 0;

	for (int k = 0; k < 2; k++)
		if (fds[k] >= 0 && size > 0 && write(fds[k], data, size) < 0)
			return;
	for (int i = 0;
	     i < FUZZ_HTTP_TURNS_MAX && (i < FUZZ_HTTP_TURNS || quiet < FUZZ_QUIET_TURNS); i++) {
		unsigned long before = activity;
		int was = unread(srv_fds);

		event_base_loop(base, EVLOOP_NONBLOCK);
		if (piped) {
			size_t had = piped_len;

			take(piped);
			activity += !piped || piped_len != had;
		}
		for (int k = 0; k < 2; k++)
			while (fds[k] >= 0 && read(fds[k], sink, sizeof(sink)) > 0)
				activity++;
		quiet = activity == before && unread(srv_fds) == was ? quiet + 1 : 0;
	}
}

/* As the daemon does (http_reply() may write to a client gone). */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

/* One run over the input: 0 reads bodies whole, 1 in head mode. */
static void run_once(const uint8_t *data, size_t size)
{
	static const struct http_limits limits = {
		.max_header_size = 4096,
		.max_request_body = FUZZ_MAX_BODY,
		.max_connections = 4,
		.header_timeout_ms = 10000,
		.body_timeout_ms = 10000,
		.idle_timeout_ms = 10000,
		.admin_max_connections = 4,
	};
	static const enum http_listener_kind kinds[2] = { HTTP_LISTENER_APP, HTTP_LISTENER_ADMIN };
	struct event_base *base = event_base_new();
	struct http_server *srv =
	    base ? http_server_new(base, &limits, on_request, on_gone, NULL) : NULL;
	int fds[2] = { -1, -1 };
	size_t cut;

	if (!srv || size == 0)
		goto out;
	http_server_set_admin_handler(srv, on_request, NULL);
	if (run)
		http_server_set_head_handler(srv, on_head, on_body);
	stream = data + 1;
	stream_len = size - 1;
	handed[0] = handed[1] = 0;
	headed = 0;
	takes = 0;
	piped = NULL;
	records[run].len = 0;
	records[run].full = 0;
	cut = data[0] % (stream_len + 1);
	for (int k = 0; k < 2; k++) {
		int sv[2];

		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
			goto out;
		fcntl(sv[1], F_SETFL, O_NONBLOCK);
		srv_fds[k] = sv[0];
		if (http_server_add_connection(srv, sv[0], kinds[k]) < 0) {
			srv_fds[k] = -1;
			close(sv[1]);
			goto out;
		}
		fds[k] = sv[1];
	}
	feed(base, fds, stream, cut);
	feed(base, fds, stream + cut, stream_len - cut);
	/* The app leaves: the server must let go of everything. */
	for (int k = 0; k < 2; k++) {
		close(fds[k]);
		fds[k] = -1;
	}
	srv_fds[0] = srv_fds[1] = -1; /* closed by the server from now on */
	feed(base, fds, NULL, 0);
out:
	for (int k = 0; k < 2; k++)
		if (fds[k] >= 0)
			close(fds[k]);
	srv_fds[0] = srv_fds[1] = -1;
	http_server_free(srv);
	if (base)
		event_base_free(base);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t rooms[8] = { 1, 2, 7, 64, 512, 4096, 16384, 1 << 20 };
	static const size_t slices[8] = { 1, 3, 16, 100, 1024, 8192, 65536, 1 << 20 };
	uint8_t last = size ? data[size - 1] : 0;

	room = rooms[last & 7];
	slice = slices[(last >> 3) & 7];
	how = (last >> 6) & 3;
	for (run = 0; run < 2; run++)
		run_once(data, size);
	if (records[0].full || records[1].full)
		return 0;
	if (records[0].len != records[1].len ||
	    memcmp(records[0].bytes, records[1].bytes, records[0].len) != 0)
		abort(); /* head mode handed over other requests than whole mode */
	return 0;
}
