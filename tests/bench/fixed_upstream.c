/* A minimal upstream for benchmarks: evhttp answering every request with the
 * same small JSON body, keep-alive, on 127.0.0.1:PORT (argv[1], 0 = any). It
 * prints the bound port on stdout, so the benchmark measures braced and not a
 * slow test server. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

static const char body[] =
	"{\"city\":\"Paris\",\"temperature\":14.2,\"condition\":\"cloudy\",\"source_latency_ms\":3}";

static void on_request(struct evhttp_request *req, void *arg)
{
	struct evbuffer *out = arg;

	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "application/json");
	evbuffer_add_reference(out, body, sizeof(body) - 1, NULL, NULL);
	evhttp_send_reply(req, 200, "OK", out);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	event_base_loopbreak(arg);
}

int main(int argc, char **argv)
{
	struct event_base *base = event_base_new();
	struct evhttp *http = evhttp_new(base);
	struct evbuffer *out = evbuffer_new();
	struct evhttp_bound_socket *bs;
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	struct event *sig;

	signal(SIGPIPE, SIG_IGN);
	evhttp_set_gencb(http, on_request, out);
	bs = evhttp_bind_socket_with_handle(http, "127.0.0.1", argc > 1 ? (unsigned short)atoi(argv[1]) : 0);
	if (!bs) {
		perror("bind");
		return 1;
	}
	getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &len);
	printf("%u\n", ntohs(sin.sin_port));
	fflush(stdout);
	sig = evsignal_new(base, SIGTERM, on_signal, base);
	evsignal_add(sig, NULL);
	event_base_dispatch(base);
	event_free(sig);
	evhttp_free(http);
	evbuffer_free(out);
	event_base_free(base);
	return 0;
}
