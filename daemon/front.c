/* Front end: listeners and the evhttp request callback. Each request is
 * checked against the limits and header rules of SPEC 3, routed to its
 * profile and route, and handed to request.c with its upstream URL, header
 * list and body ready. */
#include "front.h"
#include "guard.h"
#include "headers.h"
#include "log.h"
#include "request.h"
#include "upstream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

/* Backlog of every listening socket (evhttp's own bind uses 128). */
#define FRONT_BACKLOG 1024
/* How long accepting pauses after accept() fails for lack of resources. */
#define FRONT_ACCEPT_PAUSE_MS 100
/* Seconds an idle keep-alive connection from the app stays open. */
#define FRONT_IDLE_TIMEOUT_S 60
/* Longest control header value read. */
#define CONTROL_VALUE_MAX 10

/* The listener callbacks' argument is evhttp's, so the accept error
 * callback finds the server here: braced runs one server per process. */
static struct server *accepting_server;

static void on_accept_resume(evutil_socket_t fd, short what, void *arg);

static const struct {
	enum evhttp_cmd_type cmd;
	enum http_method method;
} methods[] = {
	{ EVHTTP_REQ_GET, METHOD_GET },       { EVHTTP_REQ_HEAD, METHOD_HEAD },
	{ EVHTTP_REQ_POST, METHOD_POST },     { EVHTTP_REQ_PUT, METHOD_PUT },
	{ EVHTTP_REQ_DELETE, METHOD_DELETE }, { EVHTTP_REQ_OPTIONS, METHOD_OPTIONS },
	{ EVHTTP_REQ_PATCH, METHOD_PATCH },
};

static int fail(struct request *req, enum problem_code code, const char *detail)
{
	struct problem p;

	problem_init(&p, code);
	p.detail = detail;
	request_fail(req, &p);
	return -1;
}

/* 1 when the segment [s, s+len) is "." or ".." written raw or with %2e. */
static int is_dot_segment(const char *s, size_t len)
{
	size_t dots = 0;

	for (size_t i = 0; i < len;) {
		if (s[i] == '.') {
			i++;
		} else if (s[i] == '%' && i + 2 < len && s[i + 1] == '2' &&
			   (s[i + 2] == 'e' || s[i + 2] == 'E')) {
			i += 3;
		} else {
			return 0;
		}
		dots++;
	}
	return dots == 1 || dots == 2;
}

static int has_dot_segment(const char *path, size_t len)
{
	const char *p = path, *end = path + len;

	while (p < end) {
		const char *seg = p + 1, *stop = memchr(seg, '/', (size_t)(end - seg));

		if (!stop)
			stop = end;
		if (is_dot_segment(seg, (size_t)(stop - seg)))
			return 1;
		p = stop;
	}
	return 0;
}

/* Parses a control header: 1 to 10 digits, value at least 1. */
static int parse_control(const char *v, uint64_t *ret)
{
	uint64_t n = 0;
	size_t len = strlen(v);

	if (len == 0 || len > CONTROL_VALUE_MAX)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -EINVAL;
		n = n * 10 + (uint64_t)(v[i] - '0');
	}
	if (n == 0)
		return -EINVAL;
	*ret = n;
	return 0;
}

/* Checks the app's headers: size, values, control headers. */
static int check_headers(struct request *req, struct evkeyvalq *in)
{
	const struct config *cfg = req->cfg;
	/* evhttp counts the bytes of every header line as received. */
	size_t size = strlen(req->path) + strlen(req->method_name) + 12 + req->hreq->headers_size;
	struct evkeyval *h;

	TAILQ_FOREACH(h, in, next)
	{
		/* A name braced cannot read exactly ("Transfer-Encoding :") may be
		 * read otherwise upstream: refuse it rather than forward it. */
		if (!headers_name_ok(h->key, strlen(h->key))) {
			char detail[128];
			size_t n = (size_t)snprintf(detail, sizeof(detail),
						    "a request header name is not a token: '");
			for (const char *k = h->key; *k && n < sizeof(detail) - 8; k++)
				detail[n++] = (*k > 0x20 && *k < 0x7f && *k != '\'') ? *k : '?';
			snprintf(detail + n, sizeof(detail) - n, "'");
			return fail(req, PROBLEM_BAD_REQUEST, detail);
		}
		if (!headers_value_ok(h->value))
			return fail(req, PROBLEM_BAD_REQUEST,
				    "a request header value contains a control character");
	}
	if (size > cfg->max_header_size) {
		char detail[128];

		snprintf(detail, sizeof(detail), "request headers are larger than %llu bytes",
			 (unsigned long long)cfg->max_header_size);
		return fail(req, PROBLEM_HEADERS_TOO_LARGE, detail);
	}
	return 0;
}

static int apply_controls(struct request *req, struct evkeyvalq *in)
{
	const char *v;
	uint64_t n;

	req->total_ms = req->policy->timeouts.total_ms;
	req->max_attempts = req->policy->retry.attempts;
	if ((v = evhttp_find_header(in, "Brace-Timeout-Ms"))) {
		if (parse_control(v, &n) < 0)
			return fail(
			    req, PROBLEM_BAD_REQUEST,
			    "Brace-Timeout-Ms must be a whole number of milliseconds from 1");
		if (n < req->total_ms)
			req->total_ms = (uint32_t)n;
	}
	if ((v = evhttp_find_header(in, "Brace-Max-Attempts"))) {
		if (parse_control(v, &n) < 0)
			return fail(req, PROBLEM_BAD_REQUEST,
				    "Brace-Max-Attempts must be a whole number from 1");
		if (n < req->max_attempts)
			req->max_attempts = (uint32_t)n;
	}
	return 0;
}

static void set_correlation(struct request *req, struct evkeyvalq *in)
{
	const char *v = evhttp_find_header(in, req->correlation_header);

	if (v && headers_correlation_ok(v))
		snprintf(req->correlation, sizeof(req->correlation), "%s", v);
	else
		rng_uuid4(&req->srv->rng, req->correlation);
}

/* The idempotency key: the app's, or a new UUIDv4 for the configured methods. */
static int set_idempotency(struct request *req, struct evkeyvalq *in)
{
	const char *v;

	req->idempotency_header = req->policy->idempotency_header;
	v = evhttp_find_header(in, req->idempotency_header);
	if (v) {
		if (!headers_idempotency_ok(v))
			return fail(
			    req, PROBLEM_BAD_REQUEST,
			    "the idempotency key must be 1 to 255 visible ASCII characters");
		snprintf(req->idempotency_key, sizeof(req->idempotency_key), "%s", v);
	} else if (req->policy->idempotency_methods & METHOD_BIT(req->method)) {
		rng_uuid4(&req->srv->rng, req->idempotency_key);
	}
	return 0;
}

static int profile_sets(const struct profile *p, const char *name)
{
	for (size_t i = 0; i < p->nheaders; i++)
		if (strcasecmp(p->headers[i].name, name) == 0)
			return 1;
	return 0;
}

/* The upstream header list: the app's headers less the dropped ones, then
 * the profile's, then braced's own. */
static int build_headers(struct request *req, struct evkeyvalq *in)
{
	const struct profile *p = req->profile;
	const char *connection = evhttp_find_header(in, "Connection");
	int r = 0;
	struct evkeyval *h;

	TAILQ_FOREACH(h, in, next)
	{
		if (headers_request_dropped(h->key, connection) || profile_sets(p, h->key) ||
		    strcasecmp(h->key, req->correlation_header) == 0 ||
		    strcasecmp(h->key, req->idempotency_header) == 0)
			continue;
		r |= header_list_add(&req->headers, h->key, h->value);
	}
	for (size_t i = 0; i < p->nheaders; i++)
		r |= header_list_add(&req->headers, p->headers[i].name, p->headers[i].value);
	r |= header_list_add(&req->headers, req->correlation_header, req->correlation);
	if (req->idempotency_key[0])
		r |= header_list_add(&req->headers, req->idempotency_header, req->idempotency_key);
	return r ? -ENOMEM : 0;
}

static int build_url(struct request *req, const char *rest)
{
	const char *base = req->profile->upstream;
	size_t blen = strlen(base), rlen = strlen(rest);

	req->url = malloc(blen + rlen + 1);
	if (!req->url)
		return -ENOMEM;
	memcpy(req->url, base, blen);
	memcpy(req->url + blen, rest, rlen + 1);
	return 0;
}

/* Routes and prepares req; answers it itself on any error. */
static int route(struct server *srv, struct request *req)
{
	struct evhttp_request *hreq = req->hreq;
	struct evkeyvalq *in = evhttp_request_get_input_headers(hreq);
	struct evbuffer *body = evhttp_request_get_input_buffer(hreq);
	const char *uri = evhttp_request_get_uri(hreq), *name, *rest;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(hreq);
	size_t nlen, blen;
	int e;

	req->path = uri;
	req->path_len = strcspn(uri, "?");
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (methods[i].cmd == cmd)
			req->method = (int)methods[i].method;
	if (req->method >= 0)
		req->method_name = config_method_name((enum http_method)req->method);
	set_correlation(req, in);
	if (req->method < 0)
		return fail(req, PROBLEM_BAD_REQUEST, "method not supported");
	if (uri[0] != '/' || strchr(uri, '#'))
		return fail(req, PROBLEM_BAD_REQUEST, "request target must be an absolute path");
	for (const unsigned char *c = (const unsigned char *)uri; *c; c++)
		if (*c <= 0x20 || *c >= 0x7f)
			return fail(req, PROBLEM_BAD_REQUEST,
				    "request target contains a space, control or non-ASCII byte");
	name = uri + 1;
	nlen = strcspn(name, "/?");
	rest = name + nlen;
	if (nlen == 0)
		return fail(req, PROBLEM_UNKNOWN_PROFILE, "the path must start with /PROFILE/");
	if (has_dot_segment(rest, strcspn(rest, "?")))
		return fail(req, PROBLEM_BAD_REQUEST, "the path has a '.' or '..' segment");
	req->profile = config_find_profile(req->cfg, name, nlen);
	if (!req->profile) {
		char detail[160];

		snprintf(detail, sizeof(detail), "no profile named '%.*s'",
			 (int)(nlen > 63 ? 63 : nlen), name);
		return fail(req, PROBLEM_UNKNOWN_PROFILE, detail);
	}
	if (check_headers(req, in) < 0)
		return -1;
	blen = evbuffer_get_length(body);
	if (blen > req->cfg->max_request_body) {
		char detail[128];

		snprintf(detail, sizeof(detail), "request body is larger than %llu bytes",
			 (unsigned long long)req->cfg->max_request_body);
		return fail(req, PROBLEM_PAYLOAD_TOO_LARGE, detail);
	}
	/* Routing sees the normalized path (path.h); build_url keeps rest as sent. */
	e = config_match_route(req->profile, req->method, rest, strcspn(rest, "?"), &req->route);
	if (e == -ENOSPC)
		return fail(req, PROBLEM_BAD_REQUEST, "the path is too long to be routed");
	if (e < 0)
		return fail(req, PROBLEM_BAD_REQUEST,
			    "the path has an encoded '/', '\\' or NUL, a raw '\\', a malformed "
			    "'%' escape, or a '.' or '..' segment");
	req->policy = req->route ? &req->route->policy : &req->profile->policy;
	if (strcasecmp(req->correlation_header, req->policy->correlation_header) != 0) {
		req->correlation_header = req->policy->correlation_header;
		set_correlation(req, in);
	}
	if (!req->route && req->profile->routes_only)
		return fail(req, PROBLEM_ROUTE_NOT_FOUND, "no route of this profile matches");
	if (apply_controls(req, in) < 0 || set_idempotency(req, in) < 0)
		return -1;
	if (srv->draining)
		return fail(req, PROBLEM_OVERLOADED, "braced is shutting down");
	/* A reply still being written holds its memory: it counts as in flight,
	 * so apps that stop reading cannot pile up answers without bound. */
	if (srv->inflight + srv->writing > req->cfg->max_inflight)
		return fail(req, PROBLEM_OVERLOADED, "too many requests in flight");
	req->pool = srv->pools[req->profile->index];
	req->guard = srv->guards_by_profile[req->profile->index];
	req->body = blen ? (const char *)evbuffer_pullup(body, -1) : NULL;
	req->body_len = blen;
	if (request_validate(req) < 0)
		return -1;
	if (build_url(req, rest) < 0 || build_headers(req, in) < 0)
		return fail(req, PROBLEM_INTERNAL, "out of memory");
	return 0;
}

static void on_request(struct evhttp_request *hreq, void *arg)
{
	struct server *srv = arg;
	struct request *req = request_new(srv, hreq);

	if (!req) {
		evhttp_send_error(hreq, 500, NULL);
		return;
	}
	if (route(srv, req) == 0)
		request_start(req);
}

/* Pools and guards of cfg's profiles, by profile index; both outlive the
 * configuration, found again by name after a reload. */
static int pools_for(struct server *srv, struct config *cfg, struct upstream_pool ***ret,
		     struct guard ***ret_guards)
{
	size_t n = cfg->nprofiles ? cfg->nprofiles : 1;
	struct upstream_pool **pools = calloc(n, sizeof(*pools));
	struct guard **guards = calloc(n, sizeof(*guards));
	long idle = 0;

	if (!pools || !guards)
		goto fail;
	for (size_t i = 0; i < cfg->nprofiles; i++) {
		const struct profile *p = &cfg->profiles[i];

		pools[i] = upstream_pool_get(srv->up, p->name, p->policy.pool_max_connections);
		guards[i] = guard_get(&srv->guards, p->name);
		if (!pools[i] || !guards[i])
			goto fail;
		guard_configure(guards[i], &p->policy);
		/* More idle connections than the pool may open are never needed. */
		idle += p->policy.pool_max_idle < p->policy.pool_max_connections
			    ? p->policy.pool_max_idle
			    : p->policy.pool_max_connections;
	}
	upstream_set_max_idle(srv->up, idle);
	*ret = pools;
	*ret_guards = guards;
	return 0;
fail:
	free(pools);
	free(guards);
	return -ENOMEM;
}

int server_set_config(struct server *srv, struct config *cfg)
{
	struct upstream_pool **pools;
	struct guard **guards;

	if (pools_for(srv, cfg, &pools, &guards) < 0)
		return -ENOMEM;
	free(srv->pools);
	srv->pools = pools;
	free(srv->guards_by_profile);
	srv->guards_by_profile = guards;
	config_unref(srv->cfg);
	srv->cfg = config_ref(cfg);
	if (srv->http) {
		evhttp_set_max_headers_size(srv->http, (ev_ssize_t)cfg->max_header_size * 2);
		evhttp_set_max_body_size(srv->http, (ev_ssize_t)cfg->max_request_body * 2 + 4096);
	}
	return 0;
}

struct server *server_new(struct event_base *base, struct config *cfg, struct upstream *up)
{
	struct server *srv = calloc(1, sizeof(*srv));

	if (!srv)
		return NULL;
	srv->base = base;
	srv->up = up;
	TAILQ_INIT(&srv->requests);
	evtimer_assign(&srv->accept_timer, base, on_accept_resume, srv);
	accepting_server = srv;
	if (rng_seed_os(&srv->rng) < 0)
		goto fail;
	srv->http = evhttp_new(base);
	if (!srv->http)
		goto fail;
	evhttp_set_allowed_methods(srv->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
						  EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
						  EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_default_content_type(srv->http, NULL);
	evhttp_set_timeout(srv->http, FRONT_IDLE_TIMEOUT_S);
	evhttp_set_gencb(srv->http, on_request, srv);
	if (server_set_config(srv, cfg) < 0)
		goto fail;
	return srv;
fail:
	server_free(srv);
	return NULL;
}

/* The bound address of a TCP listener as "HOST:PORT" or "[V6]:PORT". */
static void format_bound(evutil_socket_t fd, char *out, size_t outlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";

	memset(&ss, 0, sizeof(ss));
	getsockname(fd, (struct sockaddr *)&ss, &sslen);
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(out, outlen, "[%s]:%u", host, ntohs(s6->sin6_port));
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(out, outlen, "%s:%u", host, ntohs(s4->sin_port));
	}
}

struct evconnlistener *front_bind(struct event_base *base, const struct listener_setting *ls,
				  int backlog, const char *what)
{
	struct evconnlistener *lev;
	struct logline *l;
	char addr[INET6_ADDRSTRLEN + 16];

	if (ls->kind == LISTENER_UNIX) {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		struct stat st;

		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", ls->path);
		/* A stale socket from an earlier run is replaced; any other file is not. */
		if (lstat(ls->path, &st) == 0) {
			if (!S_ISSOCK(st.st_mode)) {
				log_msgf(
				    LOG_ERROR,
				    "cannot listen on '%s': the path exists and is not a socket",
				    ls->address);
				errno = EEXIST;
				return NULL;
			}
			unlink(ls->path);
		}
		lev = evconnlistener_new_bind(base, NULL, NULL,
					      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
					      backlog, (struct sockaddr *)&sun, sizeof(sun));
		if (lev)
			chmod(ls->path, 0660);
		snprintf(addr, sizeof(addr), "%s", ls->address);
	} else {
		struct addrinfo hints = { .ai_family = AF_UNSPEC,
					  .ai_socktype = SOCK_STREAM,
					  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
		struct addrinfo *ai = NULL;
		char port[8];
		int r;

		snprintf(port, sizeof(port), "%u", ls->port);
		r = getaddrinfo(ls->host, port, &hints, &ai);
		if (r != 0) {
			log_msgf(LOG_ERROR, "cannot resolve listen address '%s': %s", ls->address,
				 gai_strerror(r));
			errno = EINVAL;
			return NULL;
		}
		lev = evconnlistener_new_bind(base, NULL, NULL,
					      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC |
						  LEV_OPT_REUSEABLE,
					      backlog, ai->ai_addr, (int)ai->ai_addrlen);
		freeaddrinfo(ai);
		if (lev)
			format_bound(evconnlistener_get_fd(lev), addr, sizeof(addr));
	}
	if (!lev) {
		log_msgf(LOG_ERROR, "cannot listen on '%s': %s", ls->address, strerror(errno));
		return NULL;
	}
	l = log_begin(LOG_INFO, what);
	log_str(l, "listen", addr);
	log_end(l);
	return lev;
}

/* Accepting again after a pause; not while draining (the listeners are gone). */
static void on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	srv->accept_paused = 0;
	if (srv->draining)
		return;
	for (size_t i = 0; i < srv->nbound; i++)
		evconnlistener_enable(evhttp_bound_socket_get_listener(srv->bound[i]));
}

/* accept() failed: out of file descriptors or memory. Left enabled, the
 * listener would spin on the pending connection; pause all for a while. */
static void on_accept_error(struct evconnlistener *lev, void *arg)
{
	struct server *srv = accepting_server;
	struct timeval tv = { 0, FRONT_ACCEPT_PAUSE_MS * 1000 };
	int err = EVUTIL_SOCKET_ERROR();

	(void)lev;
	(void)arg;
	if (!srv || srv->accept_paused)
		return;
	log_msgf(LOG_WARN, "accept failed (%s); pausing new connections for %d ms",
		 evutil_socket_error_to_string(err), FRONT_ACCEPT_PAUSE_MS);
	for (size_t i = 0; i < srv->nbound; i++)
		evconnlistener_disable(evhttp_bound_socket_get_listener(srv->bound[i]));
	srv->accept_paused = 1;
	evtimer_add(&srv->accept_timer, &tv);
}

static int bind_one(struct server *srv, const struct listener_setting *ls)
{
	struct evconnlistener *lev = front_bind(srv->base, ls, FRONT_BACKLOG, "listening");

	if (!lev)
		return -errno;
	evconnlistener_set_error_cb(lev, on_accept_error);
	if (!(srv->bound[srv->nbound] = evhttp_bind_listener(srv->http, lev))) {
		evconnlistener_free(lev);
		return -ENOMEM;
	}
	srv->nbound++;
	if (ls->kind == LISTENER_UNIX) {
		srv->unix_paths[srv->nunix] = strdup(ls->path);
		if (srv->unix_paths[srv->nunix])
			srv->nunix++;
	}
	return 0;
}

/* Sockets passed by systemd (LISTEN_PID/LISTEN_FDS, from fd 3). Returns how
 * many were adopted, 0 when none were passed, or a negative errno. */
static int adopt_passed_sockets(struct server *srv)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	long n;

	if (!pid || !fds || strtol(pid, NULL, 10) != (long)getpid())
		return 0;
	n = strtol(fds, NULL, 10);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (n <= 0 || n > CONFIG_MAX_LISTENERS)
		return n == 0 ? 0 : -EINVAL;
	for (int fd = 3; fd < 3 + n; fd++) {
		struct sockaddr_storage ss;
		socklen_t sslen = sizeof(ss);
		char addr[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];
		struct logline *l;

		/* systemd passes them blocking unless NonBlocking=yes: evhttp would hang. */
		evutil_make_socket_nonblocking(fd);
		evutil_make_socket_closeonexec(fd);
		srv->bound[srv->nbound] = evhttp_accept_socket_with_handle(srv->http, fd);
		if (!srv->bound[srv->nbound]) {
			log_msgf(LOG_ERROR, "cannot use passed socket %d", fd);
			return -EINVAL;
		}
		evconnlistener_set_error_cb(
		    evhttp_bound_socket_get_listener(srv->bound[srv->nbound]), on_accept_error);
		srv->nbound++;
		memset(&ss, 0, sizeof(ss));
		getsockname(fd, (struct sockaddr *)&ss, &sslen);
		if (ss.ss_family == AF_UNIX)
			snprintf(addr, sizeof(addr), "unix:%.100s",
				 ((struct sockaddr_un *)&ss)->sun_path);
		else
			format_bound(fd, addr, sizeof(addr));
		l = log_begin(LOG_INFO, "listening");
		log_str(l, "listen", addr);
		log_int(l, "passed_fd", fd);
		log_end(l);
	}
	return (int)n;
}

int server_listen(struct server *srv)
{
	int passed = adopt_passed_sockets(srv);

	/* Socket activation replaces the configured listeners. */
	if (passed != 0)
		return passed < 0 ? passed : 0;
	for (size_t i = 0; i < srv->cfg->nlisteners; i++) {
		const struct listener_setting *ls = &srv->cfg->listeners[i];
		int r = bind_one(srv, ls);

		if (r < 0)
			return r;
	}
	return 0;
}

void server_stop_listening(struct server *srv)
{
	srv->draining = 1;
	while (srv->nbound > 0)
		evhttp_del_accept_socket(srv->http, srv->bound[--srv->nbound]);
}

void server_free(struct server *srv)
{
	if (!srv)
		return;
	while (!TAILQ_EMPTY(&srv->requests))
		request_abort(TAILQ_FIRST(&srv->requests));
	event_del(&srv->accept_timer);
	if (accepting_server == srv)
		accepting_server = NULL;
	if (srv->http)
		evhttp_free(srv->http);
	/* Only the sockets this process created. */
	for (size_t i = 0; i < srv->nunix; i++) {
		unlink(srv->unix_paths[i]);
		free(srv->unix_paths[i]);
	}
	free(srv->pools);
	free(srv->guards_by_profile);
	guards_free(srv->guards);
	config_unref(srv->cfg);
	free(srv);
}
