/* Fuzz target: braced's HTTP/1.1 front (http_*.c on llhttp) reading an app's
 * bytes. The first input byte says where to split the rest; the rest is
 * written, in those two pieces, into two socketpairs the server serves,
 * one as an app connection and one as an admin connection. Every request
 * it hands over is answered at once, as the daemon would, and the loop runs
 * until nothing is left to do. The server must never crash, leak or read
 * past what it was given, whatever the framing, and no request it must
 * refuse (http.h) may reach on_request, where the daemon routes. */
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "fuzz.h"

/* Loop turns per piece: enough for parse, reply and pipelined requests. */
#define FUZZ_HTTP_TURNS 16
#define FUZZ_MAX_BODY 8192

/* The bytes the connections read, and how many requests each handed over. */
static const uint8_t *stream;
static size_t stream_len;
static unsigned handed[2];

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

static void on_request(struct http_request *req, void *arg)
{
	static const struct http_header h = { "Content-Type", 12, "text/plain", 10 };
	char *body = malloc(2);
	size_t hosts = 0;

	(void)arg;
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
	if (req->body_len > (req->admin ? 0 : FUZZ_MAX_BODY))
		abort();
	if (handed[req->admin]++ == 0)
		check_request_line(req);
	if (body)
		memcpy(body, "ok", 2);
	http_reply(req, 200, &h, 1, body, body ? 2 : 0);
}

static void on_gone(struct http_request *req, void *arg)
{
	(void)req;
	(void)arg;
}

static void feed(struct event_base *base, const int *fds, const uint8_t *data, size_t size)
{
	char sink[4096];

	for (int k = 0; k < 2; k++)
		if (fds[k] >= 0 && size > 0 && write(fds[k], data, size) < 0)
			return;
	for (int i = 0; i < FUZZ_HTTP_TURNS; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		for (int k = 0; k < 2; k++)
			while (fds[k] >= 0 && read(fds[k], sink, sizeof(sink)) > 0)
				;
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
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
	stream = data + 1;
	stream_len = size - 1;
	handed[0] = handed[1] = 0;
	cut = data[0] % (stream_len + 1);
	for (int k = 0; k < 2; k++) {
		int sv[2];

		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
			goto out;
		fcntl(sv[1], F_SETFL, O_NONBLOCK);
		if (http_server_add_connection(srv, sv[0], kinds[k]) < 0) {
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
	feed(base, fds, NULL, 0);
out:
	for (int k = 0; k < 2; k++)
		if (fds[k] >= 0)
			close(fds[k]);
	http_server_free(srv);
	if (base)
		event_base_free(base);
	return 0;
}
