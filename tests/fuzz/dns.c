/* Fuzz target: the resolver (daemon/upstream/resolve.c on libevent's evdns)
 * reading a nameserver's answers. The nameserver is a UDP socket of the
 * target's on 127.0.0.1; each query evdns sends (A, AAAA, retries) is
 * answered with the input bytes, the query's 16-bit ID written over the
 * first two when there are two, so evdns does not drop the answer for its
 * ID alone. The loop runs until the callback, or a bounded number of turns
 * after which the query is cancelled. The callback must come at most once
 * and keep what resolve.h promises: n <= RESOLVE_MAX_ADDRS, every address
 * numeric text inet_pton() takes, no duplicates, IPv4 before IPv6, and an
 * error with no address and a reason. Seeds answer "f.test". */
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "log.h"
#include "resolve.h"

#define FUZZ_DNS_NAME "f.test"
#define FUZZ_DNS_MAX_ANSWER 4096 /* evdns reads 1500 bytes of a datagram */
#define FUZZ_DNS_TURNS 64        /* loop turns per input at most */
#define FUZZ_DNS_QUIET 4         /* turns with no query to answer that end it */

static struct event_base *base;
static int ns_fd = -1;
static char ns_addr[32];

struct outcome {
	int calls;
};

static void check(int ok)
{
	if (!ok)
		__builtin_trap();
}

static void on_answer(void *arg, int err, const char *const *addrs, size_t n, const char *why)
{
	struct outcome *o = arg;
	int seen_v6 = 0;

	check(++o->calls == 1);
	if (err < 0) {
		check(n == 0 && addrs == NULL && why != NULL && why[0] != '\0');
		return;
	}
	check(err == 0 && n >= 1 && n <= RESOLVE_MAX_ADDRS && addrs != NULL);
	for (size_t i = 0; i < n; i++) {
		unsigned char bin[sizeof(struct in6_addr)];
		int v4 = inet_pton(AF_INET, addrs[i], bin) == 1;

		check(strlen(addrs[i]) < RESOLVE_ADDR_MAX);
		check(v4 || inet_pton(AF_INET6, addrs[i], bin) == 1);
		check(!(v4 && seen_v6));
		seen_v6 |= !v4;
		for (size_t j = 0; j < i; j++)
			check(strcmp(addrs[i], addrs[j]) != 0);
	}
}

/* Answers every query waiting on the nameserver socket with the input;
 * returns how many. */
static int answer_queries(const uint8_t *data, size_t size)
{
	uint8_t query[1500], answer[FUZZ_DNS_MAX_ANSWER];
	size_t len = size < sizeof(answer) ? size : sizeof(answer);
	int answered = 0;

	memcpy(answer, data, len);
	for (;;) {
		struct sockaddr_storage from;
		socklen_t fromlen = sizeof(from);
		ssize_t got = recvfrom(ns_fd, query, sizeof(query), MSG_DONTWAIT,
				       (struct sockaddr *)&from, &fromlen);

		if (got < 0)
			return answered;
		if (got >= 2 && len >= 2)
			memcpy(answer, query, 2);
		sendto(ns_fd, answer, len, 0, (struct sockaddr *)&from, fromlen);
		answered++;
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);

	(void)argc;
	(void)argv;
	log_setup(LOG_FORMAT_TEXT, LOG_ERROR);
	base = event_base_new();
	ns_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (!base || ns_fd < 0 || bind(ns_fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    getsockname(ns_fd, (struct sockaddr *)&a, &alen) != 0)
		abort();
	snprintf(ns_addr, sizeof(ns_addr), "127.0.0.1:%d", ntohs(a.sin_port));
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *list[1] = { ns_addr };
	/* A long try timeout: the turns below end long before one fires. */
	struct resolver_settings s = { .nameservers = list, .n = 1, .timeout_ms = 5000 };
	struct outcome o = { 0 };
	char err[256];
	struct resolver *r = resolver_new(base, &s, err, sizeof(err));
	struct resolve_query *q;
	int quiet = 0;

	if (!r)
		abort();
	q = resolver_lookup(r, FUZZ_DNS_NAME, on_answer, &o);
	if (!q)
		abort();
	for (int turn = 0; turn < FUZZ_DNS_TURNS && !o.calls && quiet < FUZZ_DNS_QUIET; turn++) {
		quiet = answer_queries(data, size) ? 0 : quiet + 1;
		event_base_loop(base, EVLOOP_NONBLOCK);
	}
	if (!o.calls)
		resolve_cancel(q);
	resolver_free(r);
	/* evdns' callbacks after cancel and free run on the next turns. */
	for (int turn = 0; turn < 4; turn++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	check(o.calls <= 1);
	while (recv(ns_fd, err, sizeof(err), MSG_DONTWAIT) >= 0)
		;
	return 0;
}
