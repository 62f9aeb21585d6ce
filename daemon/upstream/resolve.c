/* Upstream names to addresses with libevent's evdns (2.1) on the daemon's
 * loop: evdns_getaddrinfo() for A and AAAA, the hosts file first; answers
 * turned into deduplicated numeric text, IPv4 first, and always delivered
 * from the loop, never inside resolver_lookup(). */
#include "resolve.h"

#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/dns.h>
#include <event2/util.h>

#define RESOLV_CONF "/etc/resolv.conf"
#define DNS_PORT 53
#define DNS_NAME_MAX 253 /* RFC 1035 2.3.4, in text without the final dot */
#define DNS_LABEL_MAX 63

/* Where a query is. evdns owns a request while ASKING and calls back
 * exactly once, even after evdns_getaddrinfo_cancel() (with
 * EVUTIL_EAI_CANCEL, from a deferred callback): so a query cancelled while
 * ASKING (by resolve_cancel() or resolver_free()) turns DETACHED, leaves
 * its resolver's list and lives until that callback, which frees it
 * silently. */
enum query_state {
	QUERY_ASKING,   /* evdns has the request */
	QUERY_DEFERRED, /* answered; the answer waits for the zero-timeout event */
	QUERY_DETACHED, /* no one listens any more; evdns' callback frees it */
};

struct answer {
	int err;
	const char *why;
	size_t n;
	char text[RESOLVE_MAX_ADDRS][RESOLVE_ADDR_MAX];
};

struct resolve_query {
	struct resolver *r; /* NULL once DETACHED */
	struct resolve_query *prev, *next;
	enum query_state state;
	int in_lookup; /* inside evdns_getaddrinfo(): an answer now must wait */
	struct evdns_getaddrinfo_request *req;
	struct event *later; /* zero-timeout event that delivers a deferred answer */
	resolve_fn cb;
	void *arg;
	struct answer answer;
};

struct resolver {
	struct event_base *base;
	struct evdns_base *dns;
	struct resolve_query *queries; /* ASKING or DEFERRED */
	struct event *reaper;          /* frees dns a turn after resolver_free() */
};

static void link_query(struct resolver *r, struct resolve_query *q)
{
	q->r = r;
	q->prev = NULL;
	q->next = r->queries;
	if (r->queries)
		r->queries->prev = q;
	r->queries = q;
}

static void unlink_query(struct resolve_query *q)
{
	if (!q->r)
		return;
	if (q->prev)
		q->prev->next = q->next;
	else
		q->r->queries = q->next;
	if (q->next)
		q->next->prev = q->prev;
	q->prev = q->next = NULL;
	q->r = NULL;
}

/* event_free(NULL) crashes in libevent 2.1. */
static void event_free_null(struct event *ev)
{
	if (ev)
		event_free(ev);
}

static void query_free(struct resolve_query *q)
{
	unlink_query(q);
	event_free_null(q->later);
	q->later = NULL;
	free(q);
}

static void answer_fail(struct answer *a, int err, const char *why)
{
	a->err = err;
	a->why = why;
	a->n = 0;
}

/* Appends one address as text unless it is there already or the answer is
 * full. */
static void answer_add(struct answer *a, int family, const void *addr)
{
	char text[RESOLVE_ADDR_MAX];

	if (a->n == RESOLVE_MAX_ADDRS || !inet_ntop(family, addr, text, sizeof(text)))
		return;
	for (size_t i = 0; i < a->n; i++)
		if (!strcmp(a->text[i], text))
			return;
	memcpy(a->text[a->n++], text, strlen(text) + 1);
}

/* evdns' result (getaddrinfo error, list) as an answer: IPv4 first, then
 * IPv6, each in evdns' order. */
static void answer_from_evdns(struct answer *a, int result, const struct evutil_addrinfo *res)
{
	static const int families[] = { AF_INET, AF_INET6 };

	a->n = 0;
	switch (result) {
	case 0:
		break;
	case EVUTIL_EAI_NONAME:
		answer_fail(a, -ENOENT, "no such name");
		return;
	case EVUTIL_EAI_NODATA:
		answer_fail(a, -ENOENT, "no address");
		return;
	case EVUTIL_EAI_AGAIN:
		answer_fail(a, -ETIMEDOUT, "timed out");
		return;
	case EVUTIL_EAI_MEMORY:
		answer_fail(a, -ENOMEM, "out of memory");
		return;
	default:
		/* evdns reports timeouts, SERVFAIL, truncated and malformed
		 * answers all as EVUTIL_EAI_FAIL. */
		answer_fail(a, -EIO, "no usable answer from the nameservers");
		return;
	}
	for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++)
		for (const struct evutil_addrinfo *ai = res; ai; ai = ai->ai_next) {
			if (!ai->ai_addr || ai->ai_family != families[f])
				continue;
			if (families[f] == AF_INET && ai->ai_addrlen >= sizeof(struct sockaddr_in))
				answer_add(a, AF_INET,
					   &((const struct sockaddr_in *)ai->ai_addr)->sin_addr);
			else if (families[f] == AF_INET6 &&
				 ai->ai_addrlen >= sizeof(struct sockaddr_in6))
				answer_add(a, AF_INET6,
					   &((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr);
		}
	/* evdns answers "found, but not of this family" (a hosts entry) and
	 * an answer of only other record types with an empty success. */
	if (a->n == 0)
		answer_fail(a, -ENOENT, "no address");
	else
		a->err = 0;
}

/* Calls the user back with q's answer and frees q. */
static void deliver(struct resolve_query *q)
{
	const char *addrs[RESOLVE_MAX_ADDRS];
	const struct answer *a = &q->answer;
	resolve_fn cb = q->cb;
	void *arg = q->arg;

	for (size_t i = 0; i < a->n; i++)
		addrs[i] = a->text[i];
	/* Off the resolver's list first: the callback may free the resolver. */
	unlink_query(q);
	if (a->err < 0)
		cb(arg, a->err, NULL, 0, a->why);
	else
		cb(arg, 0, addrs, a->n, NULL);
	query_free(q);
}

static void on_later(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	deliver(arg);
}

static void defer(struct resolve_query *q)
{
	static const struct timeval zero = { 0, 0 };

	q->state = QUERY_DEFERRED;
	event_add(q->later, &zero);
}

/* evutil_freeaddrinfo(NULL) crashes in libevent 2.1. */
static void free_addrinfo(struct evutil_addrinfo *res)
{
	if (res)
		evutil_freeaddrinfo(res);
}

static void on_evdns(int result, struct evutil_addrinfo *res, void *arg)
{
	struct resolve_query *q = arg;

	q->req = NULL;
	if (q->state == QUERY_DETACHED) {
		free_addrinfo(res);
		query_free(q);
		return;
	}
	answer_from_evdns(&q->answer, result, res);
	free_addrinfo(res);
	if (q->in_lookup)
		defer(q);
	else
		deliver(q);
}

/* An IPv4 or IPv6 literal, the latter maybe in brackets, as an answer;
 * 0 when name is one. */
static int answer_numeric(struct answer *a, const char *name)
{
	unsigned char addr[sizeof(struct in6_addr)];
	char inner[RESOLVE_ADDR_MAX];
	size_t len = strlen(name);

	a->n = 0;
	a->err = 0;
	if (inet_pton(AF_INET, name, addr) == 1) {
		answer_add(a, AF_INET, addr);
		return 0;
	}
	if (len >= 2 && name[0] == '[' && name[len - 1] == ']' && len - 2 < sizeof(inner)) {
		memcpy(inner, name + 1, len - 2);
		inner[len - 2] = '\0';
		name = inner;
	}
	if (inet_pton(AF_INET6, name, addr) == 1) {
		answer_add(a, AF_INET6, addr);
		return 0;
	}
	return -1;
}

/* Whether name can go on the wire: 1 to DNS_NAME_MAX characters (a final
 * dot aside) in labels of 1 to DNS_LABEL_MAX, nothing below '!' nor DEL.
 * evdns sends "a..b" as a malformed query and "" as the root. */
static int name_ok(const char *name)
{
	size_t len = strlen(name), label = 0;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > DNS_NAME_MAX || name[0] == '[')
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c <= ' ' || c == 0x7f)
			return 0;
		if (c != '.')
			label++;
		else if (label == 0)
			return 0;
		else
			label = 0;
		if (label > DNS_LABEL_MAX)
			return 0;
	}
	return label > 0;
}

struct resolve_query *resolver_lookup(struct resolver *r, const char *name, resolve_fn cb,
				      void *arg)
{
	struct evutil_addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_protocol = IPPROTO_TCP,
	};
	struct resolve_query *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	q->cb = cb;
	q->arg = arg;
	q->later = evtimer_new(r->base, on_later, q);
	if (!q->later)
		goto fail;
	link_query(r, q);
	if (answer_numeric(&q->answer, name) == 0) {
		defer(q);
		return q;
	}
	if (!name_ok(name)) {
		answer_fail(&q->answer, -EINVAL, "not a host name");
		defer(q);
		return q;
	}
	q->state = QUERY_ASKING;
	q->in_lookup = 1;
	q->req = evdns_getaddrinfo(r->dns, name, NULL, &hints, on_evdns, q);
	q->in_lookup = 0;
	/* NULL: evdns answered already (hosts file, a literal, an error),
	 * and on_evdns deferred it. */
	return q;
fail:
	query_free(q);
	return NULL;
}

void resolve_cancel(struct resolve_query *q)
{
	if (!q)
		return;
	if (q->state == QUERY_ASKING) {
		unlink_query(q);
		q->state = QUERY_DETACHED;
		/* evdns calls on_evdns once more, with EVUTIL_EAI_CANCEL, on
		 * a later turn; that frees q. */
		evdns_getaddrinfo_cancel(q->req);
		return;
	}
	if (q->state == QUERY_DEFERRED)
		query_free(q);
}

static void port_default(struct sockaddr *sa, uint16_t port)
{
	if (sa->sa_family == AF_INET && ((struct sockaddr_in *)sa)->sin_port == 0)
		((struct sockaddr_in *)sa)->sin_port = htons(port);
	else if (sa->sa_family == AF_INET6 && ((struct sockaddr_in6 *)sa)->sin6_port == 0)
		((struct sockaddr_in6 *)sa)->sin6_port = htons(port);
}

/* Adds the nameservers or reads resolv.conf; 0, or -1 with err filled. */
static int add_nameservers(struct resolver *r, const struct resolver_settings *s, char *err,
			   size_t errlen)
{
	int rc;

	if (s->n > RESOLVE_MAX_NAMESERVERS) {
		snprintf(err, errlen, "too many nameservers: %zu, at most %d", s->n,
			 RESOLVE_MAX_NAMESERVERS);
		return -1;
	}
	if (s->n == 0) {
		/* Not DNS_OPTION_HOSTSFILE: the hosts file is the settings'. */
		rc = evdns_base_resolv_conf_parse(
		    r->dns, DNS_OPTION_NAMESERVERS | DNS_OPTION_SEARCH | DNS_OPTION_MISC,
		    RESOLV_CONF);
		/* 1 (no file) and 6 (no nameserver in it): evdns uses
		 * 127.0.0.1, as the C library does. */
		if (rc != 0 && rc != 1 && rc != 6) {
			snprintf(err, errlen, "cannot read '%s' (evdns error %d)", RESOLV_CONF, rc);
			return -1;
		}
		return 0;
	}
	for (size_t i = 0; i < s->n; i++) {
		const char *ns = s->nameservers[i];
		struct sockaddr_storage ss;
		int len = sizeof(ss);

		/* Parsed here rather than by evdns_base_nameserver_ip_add(),
		 * which would log its own line besides our message. */
		if (!ns || evutil_parse_sockaddr_port(ns, (struct sockaddr *)&ss, &len) != 0) {
			snprintf(err, errlen, "nameserver '%s' is not IP, IP:PORT or [IPv6]:PORT",
				 ns ? ns : "");
			return -1;
		}
		port_default((struct sockaddr *)&ss, DNS_PORT);
		rc = evdns_base_nameserver_sockaddr_add(r->dns, (struct sockaddr *)&ss,
							(ev_socklen_t)len, 0);
		if (rc == 3) /* listed twice: once is enough */
			continue;
		if (rc != 0) {
			snprintf(err, errlen, "cannot use nameserver '%s': %s", ns,
				 strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* Frees the evdns base and r, now. */
static void reap(struct resolver *r)
{
	if (r->dns)
		evdns_base_free(r->dns, 0);
	r->dns = NULL;
	event_free_null(r->reaper);
	r->reaper = NULL;
	free(r);
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	reap(arg);
}

/* evdns' own lines into braced's log instead of libevent's stderr default,
 * all of them as debug: a nameserver failing or answering garbage makes
 * evdns warn at every look-up (and a hostile one at every datagram), while
 * a failed look-up is logged once, by its caller (discovery.c). Nameservers
 * are parsed here, so a bad one gets braced's own message. */
static void on_evdns_log(int is_warning, const char *msg)
{
	(void)is_warning;
	log_msgf(LOG_DEBUG, "evdns: %s", msg);
}

struct resolver *resolver_new(struct event_base *base, const struct resolver_settings *s, char *err,
			      size_t errlen)
{
	struct resolver *r = calloc(1, sizeof(*r));

	if (!r)
		goto oom;
	r->base = base;
	r->reaper = evtimer_new(base, on_reap, r);
	if (!r->reaper)
		goto oom;
	/* Process-wide in libevent; every resolver sets the same one. */
	evdns_set_log_fn(on_evdns_log);
	r->dns = evdns_base_new(base, 0);
	if (!r->dns)
		goto oom;
	if (add_nameservers(r, s, err, errlen) < 0)
		goto fail;
	if (s->timeout_ms > 0) {
		char val[32];

		snprintf(val, sizeof(val), "%u.%03u", (unsigned)(s->timeout_ms / 1000),
			 (unsigned)(s->timeout_ms % 1000));
		/* evdns takes no less than a millisecond or so. */
		if (evdns_base_set_option(r->dns, "timeout:", val) != 0) {
			snprintf(err, errlen, "dns timeout of %ums is out of range",
				 (unsigned)s->timeout_ms);
			goto fail;
		}
	}
	if (s->hosts_file && s->hosts_file[0] &&
	    evdns_base_load_hosts(r->dns, s->hosts_file) != 0) {
		snprintf(err, errlen, "cannot read hosts file '%s'", s->hosts_file);
		goto fail;
	}
	return r;
oom:
	snprintf(err, errlen, "out of memory building the resolver");
fail:
	if (r)
		reap(r);
	return NULL;
}

void resolver_free(struct resolver *r)
{
	static const struct timeval zero = { 0, 0 };

	if (!r)
		return;
	while (r->queries) {
		if (r->queries->state == QUERY_ASKING)
			resolve_cancel(r->queries);
		else
			query_free(r->queries);
	}
	/* evdns' deferred callbacks (the cancels just made, an answer read
	 * but not yet delivered, the internal cancel after
	 * getaddrinfo-allow-skew fired) lock data->evdns_base unless their
	 * result is DNS_ERR_SHUTDOWN (evdns.c, evdns_getaddrinfo_gotresolve
	 * in 2.1.12): freeing the base now, even with evdns_base_free(dns,
	 * 1), has them read freed memory inside libevent, where ASan does
	 * not look. They are queued already (active, or active at the start
	 * of the next turn); a zero timer of the same default priority
	 * fires after them and frees the base with no request left. */
	event_add(r->reaper, &zero);
}
