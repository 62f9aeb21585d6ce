/* A test server for daemon/http/ (built by `make check`, not installed):
 * serves the module on 127.0.0.1:0 and an admin listener, prints
 * "port N admin M" once listening, and answers every request with its
 * method, target, headers and body length as JSON. A target starting with
 * /hold is answered only when the client leaves (to count on_gone).
 * Usage: http_echo [max_connections header_ms body_ms idle_ms max_body].
 * Stops on SIGTERM or SIGINT. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "http.h"
#include "strbuf.h"

static struct http_server *srv;

static void reply_json(struct http_request *req)
{
	struct http_header h = { "Content-Type", 12, "application/json", 16 };
	struct http_counters k;
	struct strbuf b;
	size_t len;
	char *body;

	http_server_counters(srv, &k);
	strbuf_init(&b, 1 << 20);
	strbuf_adds(&b, "{\"method\":");
	strbuf_add_json_string(&b, req->method, strlen(req->method));
	strbuf_adds(&b, ",\"target\":");
	strbuf_add_json_string(&b, req->target, req->target_len);
	strbuf_addf(&b, ",\"version\":\"1.%d\",\"keep_alive\":%s,\"headers\":[", req->version_minor,
		    req->keep_alive ? "true" : "false");
	for (size_t i = 0; i < req->nheaders; i++) {
		strbuf_adds(&b, i ? ",[" : "[");
		strbuf_add_json_string(&b, req->headers[i].name, req->headers[i].name_len);
		strbuf_adds(&b, ",");
		strbuf_add_json_string(&b, req->headers[i].value, req->headers[i].value_len);
		strbuf_adds(&b, "]");
	}
	strbuf_addf(&b,
		    "],\"body_len\":%zu,\"connections\":%u,\"admin_connections\":%u,"
		    "\"requests\":%llu,\"timeouts\":%llu,\"gone\":%llu,\"accept_paused\":%llu}\n",
		    req->body_len, k.connections, k.admin_connections,
		    (unsigned long long)k.requests, (unsigned long long)k.timeouts,
		    (unsigned long long)k.gone, (unsigned long long)k.accept_paused);
	body = strbuf_steal(&b, &len);
	http_reply(req, 200, &h, 1, body, body ? len : 0);
}

static void on_request(struct http_request *req, void *arg)
{
	(void)arg;
	if (!strncmp(req->target, "/hold", 5))
		return;
	reply_json(req);
}

static void on_gone(struct http_request *req, void *arg)
{
	(void)arg;
	http_reply(req, 200, NULL, 0, NULL, 0);
}

static int listen_any(int *ret_port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 128) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &alen) < 0) {
		perror("http_echo: listen");
		exit(1);
	}
	*ret_port = ntohs(a.sin_port);
	return fd;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	event_base_loopexit(arg, NULL);
}

int main(int argc, char **argv)
{
	struct http_limits l = {
		.max_header_size = 16 * 1024,
		.max_request_body = 1024 * 1024,
		.max_connections = 4096,
		.header_timeout_ms = 10000,
		.body_timeout_ms = 30000,
		.idle_timeout_ms = 60000,
		.admin_max_connections = HTTP_ADMIN_MAX_CONNECTIONS,
	};
	struct event_base *base;
	struct event *sigterm, *sigint;
	int port, aport;

	if (argc > 1)
		l.max_connections = (uint32_t)strtoul(argv[1], NULL, 10);
	if (argc > 4) {
		l.header_timeout_ms = (uint32_t)strtoul(argv[2], NULL, 10);
		l.body_timeout_ms = (uint32_t)strtoul(argv[3], NULL, 10);
		l.idle_timeout_ms = (uint32_t)strtoul(argv[4], NULL, 10);
	}
	if (argc > 5)
		l.max_request_body = strtoull(argv[5], NULL, 10);
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	srv = base ? http_server_new(base, &l, on_request, on_gone, NULL) : NULL;
	if (!srv) {
		fprintf(stderr, "http_echo: cannot start\n");
		return 1;
	}
	http_server_set_admin_handler(srv, on_request, NULL); /* both kinds echo */
	if (http_server_add_listener(srv, listen_any(&port), HTTP_LISTENER_APP) < 0 ||
	    http_server_add_listener(srv, listen_any(&aport), HTTP_LISTENER_ADMIN) < 0) {
		fprintf(stderr, "http_echo: cannot listen\n");
		return 1;
	}
	sigterm = evsignal_new(base, SIGTERM, on_signal, base);
	sigint = evsignal_new(base, SIGINT, on_signal, base);
	event_add(sigterm, NULL);
	event_add(sigint, NULL);
	printf("port %d admin %d\n", port, aport);
	fflush(stdout);
	event_base_dispatch(base);
	http_server_free(srv);
	event_free(sigterm);
	event_free(sigint);
	event_base_free(base);
	return 0;
}
