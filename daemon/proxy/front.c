/* Front end: listeners handed to braced's HTTP server (http.h) and its
 * request callback. Each request is checked against the header rules of
 * SPEC 3, routed to its profile and route, and handed to request.c with its
 * upstream URL, header list and body ready. Framing, sizes and deadlines
 * are the HTTP server's. */
#include "front.h"
#include "cache.h"
#include "guard.h"
#include "headers.h"
#include "log.h"
#include "memory.h"
#include "reply.h"
#include "request.h"
#include "route.h"
#include "upload.h"
#include "upstream.h"
#include "validate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

/* Backlog of every app listening socket. */
#define FRONT_BACKLOG 1024
/* Longest control header value read. */
#define CONTROL_VALUE_MAX 10

static int fail(struct request *req, enum problem_code code, const char *detail)
{
	struct problem p;

	problem_init(&p, code);
	p.detail = detail;
	reply_fail(req, &p);
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
static int parse_control(const struct http_header *h, uint64_t *ret)
{
	const char *v = h->value;
	size_t len = h->value_len;
	uint64_t n = 0;

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

static int apply_controls(struct request *req, const struct http_request *in)
{
	const struct http_header *v;
	uint64_t n;

	req->total_ms = req->policy->timeouts.total_ms;
	req->max_attempts = req->policy->retry.attempts;
	req->controlled = http_request_header(in, "Brace-Timeout-Ms") ||
			  http_request_header(in, "Brace-Max-Attempts");
	if ((v = http_request_header(in, "Brace-Timeout-Ms"))) {
		if (parse_control(v, &n) < 0)
			return fail(
			    req, PROBLEM_BAD_REQUEST,
			    "Brace-Timeout-Ms must be a whole number of milliseconds from 1");
		if (n < req->total_ms)
			req->total_ms = (uint32_t)n;
	}
	if ((v = http_request_header(in, "Brace-Max-Attempts"))) {
		if (parse_control(v, &n) < 0)
			return fail(req, PROBLEM_BAD_REQUEST,
				    "Brace-Max-Attempts must be a whole number from 1");
		if (n < req->max_attempts)
			req->max_attempts = (uint32_t)n;
	}
	return 0;
}

static void set_correlation(struct request *req, const struct http_request *in)
{
	const struct http_header *v = http_request_header(in, req->correlation_header);

	if (v && headers_correlation_ok(v->value))
		snprintf(req->correlation, sizeof(req->correlation), "%s", v->value);
	else
		rng_uuid4(&req->env->rng, req->correlation);
}

/* The idempotency key: the app's, or a new UUIDv4 for the configured methods. */
static int set_idempotency(struct request *req, const struct http_request *in)
{
	const struct http_header *v;

	req->idempotency_header = req->policy->idempotency_header;
	v = http_request_header(in, req->idempotency_header);
	if (v) {
		if (!headers_idempotency_ok(v->value))
			return fail(
			    req, PROBLEM_BAD_REQUEST,
			    "the idempotency key must be 1 to 255 visible ASCII characters");
		snprintf(req->idempotency_key, sizeof(req->idempotency_key), "%s", v->value);
	} else if (req->policy->idempotency_methods & METHOD_BIT(req->method)) {
		rng_uuid4(&req->env->rng, req->idempotency_key);
		req->idempotency_minted = 1;
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
/* The request's trace context (W3C Trace Context) under its policy: the
 * app's traceparent when it is valid and alone, else a new trace with
 * tracing.traceparent: generate. A malformed one is dropped, not refused. */
static void set_trace(struct request *req, const struct http_request *in)
{
	const struct http_header *tp = NULL;
	size_t n = 0;

	req->trace.valid = 0;
	if (req->policy->trace_mode == TRACE_OFF)
		return;
	for (size_t i = 0; i < in->nheaders; i++)
		if (strcasecmp(in->headers[i].name, "traceparent") == 0 && n++ == 0)
			tp = &in->headers[i];
	if (n == 1 && trace_parse(tp->value, &req->trace) == 0)
		return;
	req->trace.valid = 0;
	if (req->policy->trace_mode == TRACE_GENERATE)
		trace_start(&req->trace, &req->env->rng);
}

/* The app's tracestate fields joined in order with commas, as W3C Trace
 * Context reads several (into out, TRACE_STATE_MAX + 1 bytes). Returns 0
 * when there is none or the whole is longer than TRACE_STATE_MAX: braced
 * forwards all of it or none. */
static int join_tracestate(const struct http_request *in, char *out)
{
	size_t len = 0;
	int found = 0;

	for (size_t i = 0; i < in->nheaders; i++) {
		const struct http_header *h = &in->headers[i];

		if (h->name_len != 10 || strncasecmp(h->name, "tracestate", 10) != 0)
			continue;
		if (len + (found ? 1 : 0) + h->value_len > TRACE_STATE_MAX)
			return 0;
		if (found)
			out[len++] = ',';
		memcpy(out + len, h->value, h->value_len);
		len += h->value_len;
		found = 1;
	}
	out[len] = '\0';
	return found;
}

/* 1 when the app's header name is one braced sets itself for tracing. */
static int trace_header(const struct request *req, const char *name)
{
	return req->policy->trace_mode != TRACE_OFF &&
	       (strcasecmp(name, "traceparent") == 0 || strcasecmp(name, "tracestate") == 0);
}

static int build_headers(struct request *req, const struct http_request *in)
{
	const struct profile *p = req->profile;
	const struct http_header *conn = http_request_header(in, "Connection");
	const char *connection = conn ? conn->value : NULL;
	int r = 0;

	for (size_t i = 0; i < in->nheaders; i++) {
		const char *name = in->headers[i].name;

		if (headers_request_dropped(name, connection) || profile_sets(p, name) ||
		    strcasecmp(name, req->correlation_header) == 0 ||
		    strcasecmp(name, req->idempotency_header) == 0 || trace_header(req, name))
			continue;
		r |= header_list_add(&req->headers, name, in->headers[i].value);
	}
	/* tracestate belongs to the app's trace: kept with it, dropped with it. */
	if (req->trace.valid && req->trace.from_app && !profile_sets(p, "tracestate")) {
		char ts[TRACE_STATE_MAX + 1];

		if (join_tracestate(in, ts) && trace_state_ok(ts))
			r |= header_list_add(&req->headers, "tracestate", ts);
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
	const struct http_request *in = req->hreq;
	const char *uri = in->target, *name, *rest;
	size_t nlen;
	int e;

	req->path = uri;
	req->path_len = strcspn(uri, "?");
	req->method = method_parse(in->method);
	/* TRACE would reflect the app's headers; CONNECT opens tunnels: neither
	 * is proxied (config.h knows TRACE only for route patterns). */
	if (req->method == METHOD_TRACE)
		req->method = -1;
	if (req->method >= 0)
		req->method_name = method_name((enum http_method)req->method);
	set_correlation(req, in);
	if (req->method < 0) {
		char detail[96];

		snprintf(detail, sizeof(detail), "method '%.32s' is not proxied", in->method);
		return fail(req, PROBLEM_BAD_REQUEST, detail);
	}
	if (uri[0] != '/' || strchr(uri, '#'))
		return fail(req, PROBLEM_BAD_REQUEST, "request target must be an absolute path");
	for (const unsigned char *c = (const unsigned char *)uri; *c; c++)
		if (*c <= 0x20 || *c >= 0x7f)
			return fail(req, PROBLEM_BAD_REQUEST,
				    "request target contains a space, control or non-ASCII byte");
	if (strlen(uri) != in->target_len)
		return fail(req, PROBLEM_BAD_REQUEST, "request target contains a NUL byte");
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
	/* Routing sees the normalized path (path.h); build_url keeps rest as sent. */
	e = route_match(req->profile, req->method, rest, strcspn(rest, "?"), &req->route);
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
	set_trace(req, in);
	if (apply_controls(req, in) < 0 || set_idempotency(req, in) < 0)
		return -1;
	if (srv->draining)
		return fail(req, PROBLEM_OVERLOADED, "braced is shutting down");
	/* A reply still being written holds its memory: it counts as in flight,
	 * so apps that stop reading cannot pile up answers without bound. */
	if (srv->env.inflight + server_writing(srv) > req->cfg->max_inflight)
		return fail(req, PROBLEM_OVERLOADED, "too many requests in flight");
	req->pool = srv->pools[req->profile->index];
	req->guard = srv->guards_by_profile[req->profile->index];
	if (build_url(req, rest) < 0 || build_headers(req, in) < 0)
		return fail(req, PROBLEM_INTERNAL, "out of memory");
	return 0;
}

/* A request for hreq, routed; NULL when it was answered already (out of
 * memory, or refused by route()). */
static struct request *routed_request(struct server *srv, struct http_request *hreq)
{
	struct request *req = request_new(&srv->env, hreq);

	if (!req) {
		http_reply(hreq, 500, NULL, 0, NULL, 0);
		return NULL;
	}
	return route(srv, req) == 0 ? req : NULL;
}

/* A request without a body, or one read whole by the server. */
static void on_request(struct http_request *hreq, void *arg)
{
	struct request *req = routed_request(arg, hreq);

	if (!req)
		return;
	req->body = hreq->body;
	req->body_len = hreq->body_len;
	if (validate_request(req) != 0)
		return;
	switch (cache_begin(req)) {
	case CACHE_GO:
		request_start(req);
		break;
	case CACHE_WAIT:
		request_wait_memory(req); /* for an identical request's answer, its budget long */
		break;
	case CACHE_ANSWERED:
		break;
	}
}

/* A request with a body, at its head: routed (and refused, before a byte
 * of its body is read, when it goes nowhere), then its body is held or
 * piped (upload.c). */
static void on_head(struct http_request *hreq, void *arg)
{
	struct request *req = routed_request(arg, hreq);

	if (!req)
		return;
	cache_bypass(req);
	upload_begin(req);
}

static void on_body(struct http_request *hreq, void *arg)
{
	(void)arg;
	if (hreq->user)
		upload_on_body(hreq->user);
}

static void on_gone(struct http_request *hreq, void *arg)
{
	(void)arg;
	/* admin requests are answered at once: only proxied ones wait */
	if (hreq->user)
		request_client_gone(hreq->user);
}

static void on_drain(struct http_request *hreq, void *arg)
{
	(void)arg;
	if (hreq->user)
		request_drained(hreq->user);
}

/* RLIMIT_NOFILE's soft limit, read when the limits are (re)made: main
 * raises it to the hard limit first. */
static uint64_t fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return UINT64_MAX;
	return (uint64_t)rl.rlim_cur;
}

static void limits_of(const struct config *cfg, struct http_limits *ret)
{
	*ret = (struct http_limits){
		.max_header_size = cfg->max_header_size,
		.max_request_body = cfg->max_request_body,
		.max_connections = cfg->max_connections,
		.header_timeout_ms = cfg->header_timeout_ms,
		.body_timeout_ms = cfg->body_timeout_ms,
		.idle_timeout_ms = cfg->idle_timeout_ms,
		.admin_max_connections = http_admin_max_connections(fd_limit()),
	};
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

		guards[i] = guard_get(&srv->guards, p->name);
		if (!guards[i])
			goto fail;
		guard_configure(guards[i], &p->policy);
		/* pool.max_connections, or the adaptive limit under it. */
		pools[i] =
		    upstream_pool_get(srv->env.up, p->name, guard_concurrency_limit(guards[i]));
		if (!pools[i])
			goto fail;
		/* More idle connections than the pool may open are never needed. */
		idle += p->policy.pool_max_idle < p->policy.pool_max_connections
			    ? p->policy.pool_max_idle
			    : p->policy.pool_max_connections;
	}
	upstream_set_max_idle(srv->env.up, idle);
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
	if (cache_env_configure(&srv->env, srv->env.cfg, cfg) < 0)
		log_msgf(LOG_ERROR, "out of memory for the cache's store: the cache is off");
	free(srv->pools);
	srv->pools = pools;
	free(srv->guards_by_profile);
	srv->guards_by_profile = guards;
	config_unref(srv->env.cfg);
	srv->env.cfg = config_ref(cfg);
	memory_env_set_max(&srv->env, cfg->max_buffered);
	if (srv->http) {
		struct http_limits lim;

		limits_of(cfg, &lim);
		http_server_set_limits(srv->http, &lim);
	}
	return 0;
}

struct server *server_new(struct event_base *base, struct config *cfg, struct upstream *up)
{
	struct server *srv = calloc(1, sizeof(*srv));
	struct http_limits lim;

	if (!srv)
		return NULL;
	srv->env.base = base;
	srv->env.up = up;
	TAILQ_INIT(&srv->env.requests);
	memory_env_init(&srv->env, cfg->max_buffered);
	if (rng_seed_os(&srv->env.rng) < 0)
		goto fail;
	limits_of(cfg, &lim);
	srv->env.finish = request_finish;
	srv->env.answer_early = request_reply_early;
	srv->env.start = request_start;
	srv->http = http_server_new(base, &lim, on_request, on_gone, srv);
	if (!srv->http)
		goto fail;
	http_server_set_drain_handler(srv->http, on_drain);
	http_server_set_head_handler(srv->http, on_head, on_body);
	if (server_set_config(srv, cfg) < 0)
		goto fail;
	srv->bound_cfg = config_ref(cfg);
	return srv;
fail:
	server_free(srv);
	return NULL;
}

/* The bound address of a TCP listener as "HOST:PORT" or "[V6]:PORT". */
static void format_bound(int fd, char *out, size_t outlen)
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

/* A listening socket for ai (or a unix sockaddr): close-on-exec, address
 * reuse for TCP. Returns the descriptor or -1 with errno set. */
static int listen_on(const struct sockaddr *sa, socklen_t salen, int backlog)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1, err;

	if (fd < 0)
		return -1;
	if (sa->sa_family != AF_UNIX &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail;
	if (bind(fd, sa, salen) < 0 || listen(fd, backlog) < 0)
		goto fail;
	return fd;
fail:
	err = errno;
	close(fd);
	errno = err;
	return -1;
}

/* Keeps addr as an open listener of kind, for /config. */
static void add_open(struct server *srv, enum http_listener_kind kind, const char *addr)
{
	if (srv->nopen >= sizeof(srv->open) / sizeof(srv->open[0]))
		return;
	srv->open[srv->nopen].kind = kind;
	snprintf(srv->open[srv->nopen].addr, sizeof(srv->open[0].addr), "%s", addr);
	srv->nopen++;
}

void server_open_text(const struct server *srv, enum http_listener_kind kind, char *buf, size_t len)
{
	size_t used = 0;

	snprintf(buf, len, "none");
	for (size_t i = 0; i < srv->nopen && used < len; i++) {
		int n;

		if (srv->open[i].kind != kind)
			continue;
		n = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", srv->open[i].addr);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

int front_bind(struct server *srv, const struct listener_setting *ls, int backlog,
	       enum http_listener_kind kind)
{
	const char *what = kind == HTTP_LISTENER_ADMIN ? "admin listening" : "listening";
	char addr[FRONT_ADDR_MAX];
	int fd;

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
				return -EEXIST;
			}
			unlink(ls->path);
		}
		fd = listen_on((struct sockaddr *)&sun, sizeof(sun), backlog);
		if (fd >= 0) {
			chmod(ls->path, 0660);
			if (srv->nunix < sizeof(srv->unix_paths) / sizeof(srv->unix_paths[0]) &&
			    (srv->unix_paths[srv->nunix] = strdup(ls->path)))
				srv->nunix++;
		}
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
			return -EINVAL;
		}
		fd = listen_on(ai->ai_addr, ai->ai_addrlen, backlog);
		freeaddrinfo(ai);
		if (fd >= 0)
			format_bound(fd, addr, sizeof(addr));
	}
	if (fd < 0) {
		int err = errno;

		log_msgf(LOG_ERROR, "cannot listen on '%s': %s", ls->address, strerror(err));
		return -err;
	}
	if (srv->nbound < sizeof(srv->bound) / sizeof(srv->bound[0])) {
		srv->bound[srv->nbound].what = what;
		snprintf(srv->bound[srv->nbound].addr, sizeof(srv->bound[0].addr), "%s", addr);
		srv->nbound++;
	}
	add_open(srv, kind, addr);
	return fd;
}

void server_announce(struct server *srv)
{
	for (size_t i = 0; i < srv->nbound; i++) {
		struct logline *l = log_begin(LOG_INFO, srv->bound[i].what);

		log_str(l, "listen", srv->bound[i].addr);
		log_end(l);
	}
	srv->nbound = 0;
}

static int bind_one(struct server *srv, const struct listener_setting *ls)
{
	int fd = front_bind(srv, ls, FRONT_BACKLOG, HTTP_LISTENER_APP);

	if (fd < 0)
		return fd;
	return http_server_add_listener(srv->http, fd, HTTP_LISTENER_APP);
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

		memset(&ss, 0, sizeof(ss));
		getsockname(fd, (struct sockaddr *)&ss, &sslen);
		if (ss.ss_family == AF_UNIX)
			snprintf(addr, sizeof(addr), "unix:%.100s",
				 ((struct sockaddr_un *)&ss)->sun_path);
		else
			format_bound(fd, addr, sizeof(addr));
		/* systemd passes them blocking unless NonBlocking=yes: the server
		 * makes them non-blocking, or the loop would hang in accept(). */
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		if (http_server_add_listener(srv->http, fd, HTTP_LISTENER_APP) < 0) {
			log_msgf(LOG_ERROR, "cannot use passed socket %d", fd);
			return -EINVAL;
		}
		l = log_begin(LOG_INFO, "listening");
		log_str(l, "listen", addr);
		log_int(l, "passed_fd", fd);
		log_end(l);
		add_open(srv, HTTP_LISTENER_APP, addr);
	}
	srv->socket_activated = 1;
	return (int)n;
}

/* Says once that the passed sockets stand for `listen`, which is then
 * read but not used: an operator editing it sees why nothing changes. */
static void log_socket_activation(const struct server *srv)
{
	char open[CONFIG_MAX_LISTENERS * (FRONT_ADDR_MAX + 2)];
	char conf[sizeof(open)];
	struct logline *l;

	server_open_text(srv, HTTP_LISTENER_APP, open, sizeof(open));
	config_listen_text(srv->env.cfg, conf, sizeof(conf));
	l = log_begin(LOG_INFO, "socket-activated listeners replace 'listen', which is not used");
	log_str(l, "listeners", open);
	log_str(l, "listen_not_used", conf);
	log_end(l);
}

int server_listen(struct server *srv)
{
	int passed = adopt_passed_sockets(srv);

	/* Socket activation replaces the configured listeners. */
	if (passed < 0)
		return passed;
	if (passed > 0) {
		log_socket_activation(srv);
		return 0;
	}
	for (size_t i = 0; i < srv->env.cfg->nlisteners; i++) {
		const struct listener_setting *ls = &srv->env.cfg->listeners[i];
		int r = bind_one(srv, ls);

		if (r < 0)
			return r;
	}
	return 0;
}

void server_stop_listening(struct server *srv)
{
	srv->draining = 1;
	srv->env.draining = 1;
	http_server_pause_accepting(srv->http, 1);
}

unsigned server_writing(const struct server *srv)
{
	struct http_counters k;

	http_server_counters(srv->http, &k);
	return k.writing;
}

void server_free(struct server *srv)
{
	if (!srv)
		return;
	while (!TAILQ_EMPTY(&srv->env.requests))
		request_abort(TAILQ_FIRST(&srv->env.requests));
	memory_env_done(&srv->env);
	cache_env_free(&srv->env);
	/* Every request has had its reply: the connections may go. */
	http_server_free(srv->http);
	srv->http = NULL;
	/* Only the sockets this process created. */
	for (size_t i = 0; i < srv->nunix; i++) {
		unlink(srv->unix_paths[i]);
		free(srv->unix_paths[i]);
	}
	free(srv->pools);
	free(srv->guards_by_profile);
	guards_free(srv->guards);
	config_unref(srv->env.cfg);
	config_unref(srv->bound_cfg);
	free(srv);
}
