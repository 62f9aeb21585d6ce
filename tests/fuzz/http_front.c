/* Fuzz target: braced's HTTP/1.1 front (http.c on llhttp) reading an app's
 * bytes. The input is written, in two pieces split at its first byte's
 * value, into a socketpair the server serves; every request it hands over
 * is answered at once, as the daemon would, and the loop runs until
 * nothing is left to do. The server must never crash, leak or read past
 * what it was given, whatever the framing. */
#include <event2/event.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "fuzz.h"

/* Loop turns per piece: enough for parse, reply and pipelined requests. */
#define FUZZ_HTTP_TURNS 16

static void on_request(struct http_request *req, void *arg)
{
	static const struct http_header h = { "Content-Type", 12, "text/plain", 10 };
	char *body = malloc(2);

	(void)arg;
	/* Reading every header, as the front's routing does. */
	for (size_t i = 0; i < req->nheaders; i++)
		if (req->headers[i].name_len == 0 ||
		    strlen(req->headers[i].name) != req->headers[i].name_len)
			abort();
	if (body)
		memcpy(body, "ok", 2);
	http_reply(req, 200, &h, 1, body, body ? 2 : 0);
}

static void on_gone(struct http_request *req, void *arg)
{
	(void)req;
	(void)arg;
}

static void feed(struct event_base *base, int fd, const uint8_t *data, size_t size)
{
	char sink[4096];

	if (size > 0 && write(fd, data, size) < 0)
		return;
	for (int i = 0; i < FUZZ_HTTP_TURNS; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		while (read(fd, sink, sizeof(sink)) > 0)
			;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct http_limits limits = {
		.max_header_size = 4096,
		.max_request_body = 8192,
		.max_connections = 4,
		.header_timeout_ms = 10000,
		.body_timeout_ms = 10000,
		.idle_timeout_ms = 10000,
		.admin_max_connections = 4,
	};
	struct event_base *base = event_base_new();
	struct http_server *srv =
	    base ? http_server_new(base, &limits, on_request, on_gone, NULL) : NULL;
	size_t cut = size ? data[0] % (size + 1) : 0;
	int sv[2];

	if (!srv || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		goto out;
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	if (http_server_add_connection(srv, sv[0], HTTP_LISTENER_APP) < 0) {
		close(sv[1]);
		goto out;
	}
	feed(base, sv[1], data, cut);
	feed(base, sv[1], data + cut, size - cut);
	/* The app leaves: the server must let go of everything. */
	close(sv[1]);
	feed(base, -1, NULL, 0);
out:
	http_server_free(srv);
	if (base)
		event_base_free(base);
	return 0;
}
