/* Upstream names to addresses on braced's own loop, with libevent's evdns:
 * the hosts file first, then A and AAAA from the configured nameservers (or
 * /etc/resolv.conf's), never blocking the loop. One resolver per loop; each
 * look-up calls back exactly once, later, unless cancelled first. */
#ifndef BRACED_RESOLVE_H
#define BRACED_RESOLVE_H

#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>

#define RESOLVE_MAX_ADDRS 64 /* addresses one answer yields at most; more are dropped */
#define RESOLVE_MAX_NAMESERVERS 8
#define RESOLVE_ADDR_MAX 46 /* INET6_ADDRSTRLEN */

struct resolver;
struct resolve_query;

struct resolver_settings {
	/* "IP" or "IP:PORT" (IPv6 "[IP]:PORT"); n == 0: /etc/resolv.conf */
	const char *const *nameservers;
	size_t n;
	const char *hosts_file; /* consulted first, like the C library; NULL or "": none */
	uint32_t timeout_ms;    /* per DNS try; 0: evdns' default */
};

/* Builds a resolver on base (borrowed; it must outlive the resolver). s and
 * its strings are borrowed for the call only. NULL with a message in err
 * (lower case, what failed, user strings in 'single quotes') when a
 * nameserver does not parse, there are more than RESOLVE_MAX_NAMESERVERS,
 * the hosts file cannot be read, or on OOM. With n == 0, a resolv.conf that
 * is missing or lists no nameserver means 127.0.0.1, as in the C library.
 * The hosts file is read once, here: a changed file needs a new resolver. */
struct resolver *resolver_new(struct event_base *base, const struct resolver_settings *s, char *err,
			      size_t errlen);

/* Cancels every query in flight without calling back, then frees; NULL
 * no-op. Callable from a resolve_fn. Part of the freeing happens on base's
 * next turn (evdns still has callbacks queued there that read its state):
 * at exit, run event_base_loop(base, EVLOOP_NONBLOCK) once between
 * resolver_free() and event_base_free(), or LeakSanitizer reports the
 * evdns base and the cancelled queries. */
void resolver_free(struct resolver *r);

/* An answer: err 0 with addrs[0..n) (numeric text "192.0.2.1" /
 * "2001:db8::1", borrowed for the call), IPv4 and IPv6 both (A and AAAA),
 * duplicates removed, in a stable order (IPv4 first, then IPv6, each in the
 * order given), 1 <= n <= RESOLVE_MAX_ADDRS; or err < 0 with n == 0,
 * addrs NULL and why: a short lower-case text for the log (static). Errors:
 * -ENOENT no such name or no address, -EIO no usable answer (evdns folds
 * timeouts, SERVFAIL, REFUSED, truncated and malformed answers and an empty
 * NOERROR into one), -EINVAL a name that cannot be a host name (empty, an
 * empty label, too long, a bracket that is no IPv6 literal, a space or a
 * control character), -ETIMEDOUT (rare: evdns reports timeouts as -EIO),
 * -ENOMEM. The query is freed once the callback returns. */
typedef void (*resolve_fn)(void *arg, int err, const char *const *addrs, size_t n, const char *why);

/* Starts looking name (borrowed for the call) up, hosts file first. The
 * callback runs exactly once, later, from the loop, never inside
 * resolver_lookup, unless resolve_cancel() comes first. A numeric name
 * (IPv4, or IPv6 with or without brackets) answers itself without a query.
 * Returns the query, valid until its callback returns or it is cancelled;
 * NULL on OOM (no callback then). */
struct resolve_query *resolver_lookup(struct resolver *r, const char *name, resolve_fn cb,
				      void *arg);

/* Stops a query whose callback has not run; no callback follows. q is
 * invalid afterwards. */
void resolve_cancel(struct resolve_query *q);

#endif
