/* Tests of daemon/upstream/resolve.c: numeric names answer without a query,
 * a hosts file answers first (IPv4 first, duplicates removed), a name that
 * is nowhere fails in bounded time, a real DNS server (Debian's dnsmasq on
 * a loopback port, started here and stopped by its PID) answers A and AAAA
 * and a changed zone after SIGHUP; cancel and resolver_free() with queries
 * in flight call nobody back. Every wait is bounded by a timer. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>
#include <event2/event.h>

#include "resolve.h"
#include "suites.h"

#define DNSMASQ "/usr/sbin/dnsmasq"
#define WAIT_MS 10000 /* bound on any one wait: far above what a pass takes */

static struct event_base *base;
static char dir[64];
static pid_t dnsmasq = -1;
static int silent = -1; /* a UDP socket that reads queries and never answers */
static int inside_lookup;

/* What a callback saw. */
struct got {
	int calls;
	int err;
	size_t n;
	char addrs[RESOLVE_MAX_ADDRS][RESOLVE_ADDR_MAX];
	char why[128];
	int during_lookup;
};

static void on_answer(void *arg, int err, const char *const *addrs, size_t n, const char *why)
{
	struct got *g = arg;

	g->calls++;
	g->during_lookup |= inside_lookup;
	g->err = err;
	g->n = n;
	ck_assert_uint_le(n, RESOLVE_MAX_ADDRS);
	for (size_t i = 0; i < n; i++)
		snprintf(g->addrs[i], sizeof(g->addrs[i]), "%s", addrs[i]);
	snprintf(g->why, sizeof(g->why), "%s", why ? why : "");
}

static struct resolve_query *lookup(struct resolver *r, const char *name, struct got *g)
{
	struct resolve_query *q;

	memset(g, 0, sizeof(*g));
	inside_lookup = 1;
	q = resolver_lookup(r, name, on_answer, g);
	inside_lookup = 0;
	ck_assert_ptr_nonnull(q);
	ck_assert_int_eq(g->calls, 0);
	return q;
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(int *)arg = 1;
}

/* Runs the loop until *calls is non-zero or ms passed. */
static void run_until(const int *calls, int ms)
{
	int expired = 0;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	struct event *t = evtimer_new(base, on_deadline, &expired);

	ck_assert_ptr_nonnull(t);
	evtimer_add(t, &tv);
	while (!expired && !(calls && *calls))
		event_base_loop(base, EVLOOP_ONCE);
	event_free(t);
}

static int has(const struct got *g, const char *addr)
{
	for (size_t i = 0; i < g->n; i++)
		if (!strcmp(g->addrs[i], addr))
			return 1;
	return 0;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_ge(fputs(text, f), 0);
	ck_assert_int_eq(fclose(f), 0);
}

/* A port on 127.0.0.1 free for UDP and TCP just now; with keep, the UDP
 * socket stays bound (returned in *ret_fd). */
static int free_port(int keep, int *ret_fd)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(u, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(u, (struct sockaddr *)&a, &alen), 0);
	if (bind(t, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(t);
		close(u);
		return free_port(keep, ret_fd);
	}
	close(t);
	if (keep)
		*ret_fd = u;
	else
		close(u);
	return ntohs(a.sin_port);
}

static void setup(void)
{
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	snprintf(dir, sizeof(dir), "/tmp/check_resolve.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	/* dnsmasq started as root reads its files as nobody. */
	ck_assert_int_eq(chmod(dir, 0755), 0);
	dnsmasq = -1;
	silent = -1;
}

static void stop_dnsmasq(void)
{
	if (dnsmasq > 0) {
		kill(dnsmasq, SIGTERM);
		waitpid(dnsmasq, NULL, 0);
	}
	dnsmasq = -1;
}

static void teardown(void)
{
	char cmd[128];

	stop_dnsmasq();
	if (silent >= 0)
		close(silent);
	silent = -1;
	/* Let evdns finish what resolver_free() left to the loop. */
	event_base_loop(base, EVLOOP_NONBLOCK);
	event_base_free(base);
	base = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static struct resolver *new_resolver(const char *ns, const char *hosts, uint32_t timeout_ms)
{
	const char *list[1] = { ns };
	struct resolver_settings s = {
		.nameservers = list,
		.n = 1,
		.hosts_file = hosts,
		.timeout_ms = timeout_ms,
	};
	char err[256] = "";
	struct resolver *r = resolver_new(base, &s, err, sizeof(err));

	ck_assert_msg(r != NULL, "resolver_new: %s", err);
	return r;
}

/* A nameserver at a UDP port nobody listens on: queries are refused. */
static struct resolver *new_closed_resolver(const char *hosts, uint32_t timeout_ms)
{
	char ns[32];

	snprintf(ns, sizeof(ns), "127.0.0.1:%d", free_port(0, NULL));
	return new_resolver(ns, hosts, timeout_ms);
}

/* A nameserver that reads every query and answers none. */
static struct resolver *new_silent_resolver_timing_out(uint32_t timeout_ms)
{
	char ns[32];

	snprintf(ns, sizeof(ns), "127.0.0.1:%d", free_port(1, &silent));
	return new_resolver(ns, NULL, timeout_ms);
}

static struct resolver *new_silent_resolver(void)
{
	return new_silent_resolver_timing_out(2000);
}

START_TEST(test_numeric_names_answer_later_without_a_query)
{
	static const struct {
		const char *name, *addr;
	} cases[] = {
		{ "192.0.2.1", "192.0.2.1" },
		{ "2001:db8::1", "2001:db8::1" },
		{ "[2001:DB8:0::1]", "2001:db8::1" },
		{ "::ffff:192.0.2.7", "::ffff:192.0.2.7" },
	};
	/* Silent: a query would never be answered. */
	struct resolver *r = new_silent_resolver();

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct got g;

		lookup(r, cases[i].name, &g);
		run_until(&g.calls, WAIT_MS);
		ck_assert_int_eq(g.calls, 1);
		ck_assert_int_eq(g.during_lookup, 0);
		ck_assert_int_eq(g.err, 0);
		ck_assert_uint_eq(g.n, 1);
		ck_assert_str_eq(g.addrs[0], cases[i].addr);
	}
	resolver_free(r);
}
END_TEST

START_TEST(test_hosts_file_first_ipv4_first_deduplicated)
{
	char hosts[128];
	struct got g;
	struct resolver *r;

	snprintf(hosts, sizeof(hosts), "%s/hosts", dir);
	write_file(hosts, "# a comment\n"
			  "2001:db8::10 multi.test\n"
			  "192.0.2.10 multi.test\n"
			  "192.0.2.11 other.test multi.test\n"
			  "2001:db8::11   multi.test # the second\n"
			  "192.0.2.10\tmulti.test\n"
			  "2001:db8:0:0::10 multi.test\n"
			  "192.0.2.12 MULTI.test\n"
			  "192.0.2.99 elsewhere.test\n"
			  "192.0.2.98 v4only.test\n");
	/* The nameserver refuses: an answer can only come from the file. */
	r = new_closed_resolver(hosts, 200);
	lookup(r, "multi.test", &g);
	run_until(&g.calls, WAIT_MS);
	ck_assert_int_eq(g.calls, 1);
	ck_assert_int_eq(g.during_lookup, 0);
	ck_assert_msg(g.err == 0, "err %d (%s)", g.err, g.why);
	ck_assert_uint_eq(g.n, 5);
	ck_assert_str_eq(g.addrs[0], "192.0.2.10");
	ck_assert_str_eq(g.addrs[1], "192.0.2.11");
	ck_assert_str_eq(g.addrs[2], "192.0.2.12");
	ck_assert_str_eq(g.addrs[3], "2001:db8::10");
	ck_assert_str_eq(g.addrs[4], "2001:db8::11");

	/* Found in the file with IPv4 only: that is the whole answer. */
	lookup(r, "v4only.test", &g);
	run_until(&g.calls, WAIT_MS);
	ck_assert_int_eq(g.calls, 1);
	ck_assert_int_eq(g.err, 0);
	ck_assert_uint_eq(g.n, 1);
	ck_assert_str_eq(g.addrs[0], "192.0.2.98");
	resolver_free(r);
}
END_TEST

START_TEST(test_name_nowhere_fails_in_bounded_time)
{
	struct got g;
	struct resolver *r = new_closed_resolver(NULL, 100);

	lookup(r, "nowhere.invalid", &g);
	run_until(&g.calls, WAIT_MS);
	ck_assert_int_eq(g.calls, 1);
	ck_assert_int_lt(g.err, 0);
	ck_assert_uint_eq(g.n, 0);
	ck_assert_str_ne(g.why, "");
	resolver_free(r);

	/* A nameserver that never answers: evdns' tries time out. */
	r = new_silent_resolver_timing_out(100);
	lookup(r, "nowhere.invalid", &g);
	run_until(&g.calls, WAIT_MS);
	ck_assert_int_eq(g.calls, 1);
	ck_assert_int_eq(g.err, -EIO);
	ck_assert_uint_eq(g.n, 0);
	resolver_free(r);
}
END_TEST

START_TEST(test_names_that_cannot_be_asked_fail_later)
{
	static const char *const bad[] = { "",    ".",           "a..b", ".a",
					   "a b", "[192.0.2.1]", "[::1", "x\tz" };
	char toolong[300], label[80];
	struct resolver *r = new_silent_resolver();
	struct got g;

	memset(toolong, 'a', sizeof(toolong) - 1);
	toolong[sizeof(toolong) - 1] = '\0';
	memset(label, 'b', sizeof(label) - 1);
	memcpy(label + sizeof(label) - 6, ".test", 6);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]) + 2; i++) {
		const char *name = i < sizeof(bad) / sizeof(bad[0])    ? bad[i]
				   : i == sizeof(bad) / sizeof(bad[0]) ? toolong
								       : label;

		lookup(r, name, &g);
		run_until(&g.calls, WAIT_MS);
		ck_assert_int_eq(g.calls, 1);
		ck_assert_msg(g.err == -EINVAL, "'%s': %d", name, g.err);
		ck_assert_int_eq(g.during_lookup, 0);
	}
	resolver_free(r);
}
END_TEST

START_TEST(test_cancel_calls_nobody_back)
{
	struct got asking, deferred;
	struct resolver *r = new_silent_resolver();

	resolve_cancel(lookup(r, "in-flight.test", &asking));
	resolve_cancel(lookup(r, "192.0.2.1", &deferred));
	run_until(NULL, 300);
	ck_assert_int_eq(asking.calls, 0);
	ck_assert_int_eq(deferred.calls, 0);
	resolver_free(r);
	run_until(NULL, 50);
	ck_assert_int_eq(asking.calls, 0);
}
END_TEST

START_TEST(test_free_with_queries_in_flight)
{
	struct got a, b, c;
	struct resolver *r = new_silent_resolver();

	lookup(r, "one.test", &a);
	lookup(r, "two.test", &b);
	lookup(r, "[::1]", &c);
	/* A cancelled one whose evdns callback is still owed, too. */
	run_until(NULL, 20);
	resolve_cancel(lookup(r, "three.test", &c));
	resolver_free(r);
	run_until(NULL, 300);
	ck_assert_int_eq(a.calls, 0);
	ck_assert_int_eq(b.calls, 0);
	ck_assert_int_eq(c.calls, 0);
}
END_TEST

START_TEST(test_bad_settings_fail_with_a_message)
{
	static const char *const bad[] = { "not-an-ip", "192.0.2.1:99999", "[2001:db8::1", "" };
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *list[2] = { "127.0.0.1", bad[i] };
		struct resolver_settings s = { .nameservers = list, .n = 2 };
		char want[64];

		err[0] = '\0';
		ck_assert_ptr_null(resolver_new(base, &s, err, sizeof(err)));
		snprintf(want, sizeof(want), "'%s'", bad[i]);
		ck_assert_msg(strstr(err, want) && strstr(err, "nameserver"), "message: %s", err);
	}

	{
		const char *list[RESOLVE_MAX_NAMESERVERS + 1];
		char names[RESOLVE_MAX_NAMESERVERS + 1][32];
		struct resolver_settings s = { .nameservers = list,
					       .n = RESOLVE_MAX_NAMESERVERS + 1 };

		for (size_t i = 0; i < s.n; i++) {
			snprintf(names[i], sizeof(names[i]), "127.0.0.%zu", i + 1);
			list[i] = names[i];
		}
		err[0] = '\0';
		ck_assert_ptr_null(resolver_new(base, &s, err, sizeof(err)));
		ck_assert_msg(strstr(err, "too many nameservers"), "message: %s", err);
	}

	{
		const char *list[1] = { "127.0.0.1" };
		char missing[128];
		struct resolver_settings s = { .nameservers = list, .n = 1, .hosts_file = missing };

		snprintf(missing, sizeof(missing), "%s/no-such-hosts", dir);
		err[0] = '\0';
		ck_assert_ptr_null(resolver_new(base, &s, err, sizeof(err)));
		ck_assert_msg(strstr(err, "hosts file") && strstr(err, "no-such-hosts"),
			      "message: %s", err);
	}
}
END_TEST

/* No nameserver given: /etc/resolv.conf's, or 127.0.0.1 without one; the
 * system's hosts file when asked for. */
START_TEST(test_system_settings)
{
	struct resolver_settings s = { .hosts_file = "/etc/hosts" };
	char err[256] = "";
	struct resolver *r = resolver_new(base, &s, err, sizeof(err));
	struct got g;

	ck_assert_msg(r != NULL, "resolver_new: %s", err);
	lookup(r, "192.0.2.1", &g);
	run_until(&g.calls, WAIT_MS);
	ck_assert_int_eq(g.calls, 1);
	ck_assert_str_eq(g.addrs[0], "192.0.2.1");
	resolver_free(r);
}
END_TEST

/* Starts dnsmasq serving the names of hosts on a free loopback port;
 * returns the port. It dies with this process (PR_SET_PDEATHSIG) should a
 * failed assertion skip the teardown. */
static int start_dnsmasq(const char *hosts)
{
	for (int tries = 0; tries < 5; tries++) {
		int port = free_port(0, NULL);
		char port_arg[32], hosts_arg[160];
		pid_t pid;

		snprintf(port_arg, sizeof(port_arg), "--port=%d", port);
		snprintf(hosts_arg, sizeof(hosts_arg), "--addn-hosts=%s", hosts);
		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			int null = open("/dev/null", O_RDWR);

			prctl(PR_SET_PDEATHSIG, SIGTERM);
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
			execl(DNSMASQ, DNSMASQ, "--no-daemon", "--conf-file=/dev/null", port_arg,
			      "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv",
			      "--no-hosts", "--local=/test/", hosts_arg, "--pid-file",
			      "--log-facility=-", (char *)NULL);
			_exit(127);
		}
		/* Up once it is still running a moment later; a lost race for
		 * the port makes it exit at once. */
		usleep(200 * 1000);
		if (waitpid(pid, NULL, WNOHANG) == 0) {
			dnsmasq = pid;
			return port;
		}
	}
	ck_abort_msg("dnsmasq (%s) did not start", DNSMASQ);
	return -1;
}

/* Resolves name through r until the answer has want addresses (dnsmasq
 * re-reads its file after SIGHUP on its own time), at most WAIT_MS. */
static void resolve_expecting(struct resolver *r, const char *name, size_t want, struct got *g)
{
	for (int i = 0; i < WAIT_MS / 100; i++) {
		lookup(r, name, g);
		run_until(&g->calls, WAIT_MS);
		ck_assert_int_eq(g->calls, 1);
		if (g->err == 0 && g->n == want)
			return;
		run_until(NULL, 100);
	}
	ck_abort_msg("no answer of %zu addresses for '%s' (last: err %d '%s', %zu)", want, name,
		     g->err, g->why, g->n);
}

START_TEST(test_dnsmasq_answers_and_reloads)
{
	char hosts[128], ns[32];
	struct got g;
	struct resolver *r;

	ck_assert_msg(access(DNSMASQ, X_OK) == 0, "%s missing (Debian's dnsmasq-base)", DNSMASQ);
	snprintf(hosts, sizeof(hosts), "%s/zone", dir);
	write_file(hosts, "192.0.2.1 svc.test\n"
			  "192.0.2.2 svc.test\n"
			  "192.0.2.3 svc.test\n"
			  "2001:db8::1 svc.test\n");
	chmod(hosts, 0644);
	snprintf(ns, sizeof(ns), "127.0.0.1:%d", start_dnsmasq(hosts));
	r = new_resolver(ns, NULL, 500);

	resolve_expecting(r, "svc.test", 4, &g);
	ck_assert_int_eq(g.during_lookup, 0);
	for (int i = 0; i < 3; i++)
		ck_assert_msg(strchr(g.addrs[i], '.') != NULL, "IPv4 first: %s", g.addrs[i]);
	ck_assert(has(&g, "192.0.2.1") && has(&g, "192.0.2.2") && has(&g, "192.0.2.3"));
	ck_assert_str_eq(g.addrs[3], "2001:db8::1");

	write_file(hosts, "192.0.2.7 svc.test\n"
			  "2001:db8::7 svc.test\n"
			  "2001:db8::8 svc.test\n");
	ck_assert_int_eq(kill(dnsmasq, SIGHUP), 0);
	resolve_expecting(r, "svc.test", 3, &g);
	ck_assert_str_eq(g.addrs[0], "192.0.2.7");
	ck_assert(has(&g, "2001:db8::7") && has(&g, "2001:db8::8"));

	/* Not in the zone dnsmasq is the authority for (--local): NXDOMAIN. */
	lookup(r, "absent.test", &g);
	run_until(&g.calls, WAIT_MS);
	ck_assert_int_eq(g.calls, 1);
	ck_assert_int_eq(g.err, -ENOENT);
	resolver_free(r);
	stop_dnsmasq();
}
END_TEST

/* The first answer frees the resolver (as a reload would) while the other
 * query waits on a silent nameserver: the other is never called back. */
static struct resolver *freed_in_callback;

static void on_answer_then_free(void *arg, int err, const char *const *addrs, size_t n,
				const char *why)
{
	on_answer(arg, err, addrs, n, why);
	resolver_free(freed_in_callback);
	freed_in_callback = NULL;
}

START_TEST(test_free_from_a_callback)
{
	char hosts[128], ns[32];
	const char *list[2];
	struct got first;
	struct resolver_settings s = { .nameservers = list, .n = 2, .timeout_ms = 2000 };
	char err[256];

	snprintf(hosts, sizeof(hosts), "%s/zone", dir);
	write_file(hosts, "192.0.2.1 svc.test\n2001:db8::1 svc.test\n");
	chmod(hosts, 0644);
	snprintf(ns, sizeof(ns), "127.0.0.1:%d", start_dnsmasq(hosts));
	list[0] = ns;
	freed_in_callback = new_resolver(ns, NULL, 2000);
	resolve_expecting(freed_in_callback, "svc.test", 2, &first);

	memset(&first, 0, sizeof(first));
	ck_assert_ptr_nonnull(
	    resolver_lookup(freed_in_callback, "svc.test", on_answer_then_free, &first));
	run_until(&first.calls, WAIT_MS);
	ck_assert_int_eq(first.calls, 1);
	ck_assert_ptr_null(freed_in_callback);

	/* Again, the other query in flight this time (a silent second
	 * nameserver gets one of the two; evdns picks them in turn). */
	{
		char quiet[32];

		snprintf(quiet, sizeof(quiet), "127.0.0.1:%d", free_port(1, &silent));
		list[1] = quiet;
		freed_in_callback = resolver_new(base, &s, err, sizeof(err));
		ck_assert_msg(freed_in_callback != NULL, "%s", err);
		memset(&first, 0, sizeof(first));
		for (int i = 0; i < 4; i++)
			ck_assert_ptr_nonnull(resolver_lookup(freed_in_callback, "svc.test",
							      on_answer_then_free, &first));
		run_until(&first.calls, WAIT_MS);
		ck_assert_int_eq(first.calls, 1);
		run_until(NULL, 100);
		ck_assert_int_eq(first.calls, 1);
	}
	stop_dnsmasq();
}
END_TEST

Suite *resolve_suite(void)
{
	Suite *s = suite_create("resolve");
	TCase *tc = tcase_create("resolve");

	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_numeric_names_answer_later_without_a_query);
	tcase_add_test(tc, test_hosts_file_first_ipv4_first_deduplicated);
	tcase_add_test(tc, test_name_nowhere_fails_in_bounded_time);
	tcase_add_test(tc, test_names_that_cannot_be_asked_fail_later);
	tcase_add_test(tc, test_cancel_calls_nobody_back);
	tcase_add_test(tc, test_free_with_queries_in_flight);
	tcase_add_test(tc, test_bad_settings_fail_with_a_message);
	tcase_add_test(tc, test_system_settings);
	tcase_add_test(tc, test_dnsmasq_answers_and_reloads);
	tcase_add_test(tc, test_free_from_a_callback);
	suite_add_tcase(s, tc);
	return s;
}
