/* braced: command line, event base, signals and wiring of the front, the
 * backend and the configuration. No request logic lives here. */
#include "admin.h"
#include "clock.h"
#include "config.h"
#include "discovery.h"
#include "fleet.h"
#include "front.h"
#include "log.h"
#include "notify.h"
#include "upstream.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <curl/curl.h>
#include <event2/event.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.0.0"
#endif
/* configure's $(sysconfdir)/braced/braced.yaml, where `make install` puts it. */
#ifdef BRACED_DEFAULT_CONFIG
#define DEFAULT_CONFIG BRACED_DEFAULT_CONFIG
#else
#define DEFAULT_CONFIG "/etc/braced/braced.yaml"
#endif
/* How often a draining daemon checks whether it may exit. */
#define DRAIN_CHECK_MS 20

struct daemon_state {
	struct event_base *base;
	struct server *srv;
	struct upstream *up;
	struct admin *admin;
	struct fleet *fleet;
	struct discovery *discovery;
	struct metrics_global metrics;
	const char *config_path;
	struct event *drain_timer;
	struct event *watchdog;
	uint64_t drain_deadline_us;
};

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: braced [-c FILE] [-t] [-V] [-h]\n"
	    "  -c, --config FILE    configuration (default: $BRACED_CONFIG, else %s)\n"
	    "  -t, --check-config   validate FILE, print \"FILE: ok\" or every error, and exit\n"
	    "  -V, --version        print the version and exit\n"
	    "  -h, --help           print this help and exit\n",
	    DEFAULT_CONFIG);
}

/* One configuration error as a log line in the current format, with the
 * position as fields and the message without its FILE:LINE:COL prefix. */
static void log_config_error(const char *path, const char *text, unsigned line, unsigned col)
{
	struct logline *l = log_begin(LOG_ERROR, "configuration error");
	size_t plen = strlen(path);

	if (!l)
		return;
	/* "PATH:" then "LINE:COL: " when there is a position. */
	if (strncmp(text, path, plen) == 0 && text[plen] == ':') {
		text += plen + 1;
		if (line) {
			for (int colons = 0; *text && colons < 2; text++)
				colons += *text == ':';
		}
		while (*text == ' ')
			text++;
	}
	log_str(l, "file", path);
	if (line) {
		log_int(l, "line", line);
		log_int(l, "col", col);
	}
	log_str(l, "message", text);
	log_end(l);
}

/* Loads path. With as_log, every error is a log line in the current format
 * (the daemon's stderr stays a log); without, FILE:LINE:COL lines (-t).
 * Returns the configuration or NULL; *ret_errors (may be NULL) the count. */
static struct config *load(const char *path, int as_log, size_t *ret_errors)
{
	struct config_errors errs = { 0 };
	struct config *cfg = config_load(path, &errs);

	for (size_t i = 0; i < errs.count; i++) {
		if (as_log)
			log_config_error(path, errs.lines[i], errs.line[i], errs.col[i]);
		else
			fprintf(stderr, "%s\n", errs.lines[i]);
	}
	for (size_t i = 0; cfg && i < errs.nwarnings; i++) {
		if (as_log)
			log_msgf(LOG_WARN, "%s", errs.warnings[i]);
		else
			fprintf(stderr, "%s\n", errs.warnings[i]);
	}
	if (errs.dropped && as_log)
		log_msgf(LOG_ERROR, "%zu more configuration errors not shown", errs.dropped);
	else if (errs.dropped)
		fprintf(stderr, "%s: %zu more errors not shown\n", path, errs.dropped);
	if (!cfg && errs.count == 1 && strstr(errs.lines[0], "cannot open") && !as_log)
		fprintf(stderr, "braced: name the configuration with -c FILE or $BRACED_CONFIG\n");
	else if (!cfg && errs.count == 1 && strstr(errs.lines[0], "cannot open"))
		log_msgf(LOG_ERROR, "name the configuration with -c FILE or $BRACED_CONFIG");
	if (ret_errors)
		*ret_errors = errs.count + errs.dropped;
	config_errors_release(&errs);
	return cfg;
}

static void on_drain_check(evutil_socket_t fd, short what, void *arg)
{
	struct daemon_state *d = arg;

	(void)fd;
	(void)what;
	if ((d->srv->env.inflight == 0 && server_writing(d->srv) == 0) ||
	    clock_now_us() >= d->drain_deadline_us)
		event_base_loopbreak(d->base);
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon_state *d = arg;
	struct timeval tv = { 0, DRAIN_CHECK_MS * 1000 };

	(void)what;
	if (d->srv->draining) {
		event_base_loopbreak(d->base); /* a second signal: stop now */
		return;
	}
	log_msgf(LOG_INFO, "received %s, draining %u request%s for up to %u ms",
		 sig == SIGINT ? "SIGINT" : "SIGTERM", d->srv->env.inflight,
		 d->srv->env.inflight == 1 ? "" : "s", d->srv->env.cfg->shutdown_grace_ms);
	notify_send("STOPPING=1");
	server_stop_listening(d->srv);
	d->drain_deadline_us = clock_now_us() + (uint64_t)d->srv->env.cfg->shutdown_grace_ms * 1000;
	d->drain_timer = event_new(d->base, -1, EV_PERSIST, on_drain_check, d);
	if (d->drain_timer)
		event_add(d->drain_timer, &tv);
	else
		event_base_loopbreak(d->base);
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	/* Sent from the loop itself: a stuck loop stops the pings. */
	notify_send("WATCHDOG=1");
}

/* Pings systemd's watchdog at half its interval when WatchdogSec= is set. */
static int start_watchdog(struct daemon_state *d)
{
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	unsigned long long us;
	struct timeval tv;

	if (!usec || (pid && strtol(pid, NULL, 10) != (long)getpid()))
		return 0;
	us = strtoull(usec, NULL, 10) / 2;
	if (us == 0)
		return 0;
	d->watchdog = event_new(d->base, -1, EV_PERSIST, on_watchdog, d);
	if (!d->watchdog)
		return -1;
	clock_us_to_tv(us, &tv);
	return event_add(d->watchdog, &tv);
}

static void warn_no_profiles(const struct config *cfg)
{
	if (cfg->nprofiles == 0)
		log_msgf(LOG_WARN, "no profiles are configured: every request is answered 404 "
				   "unknown_profile until one is added");
}

/* A reload never rebinds: a change to `listen` or `admin` against the
 * listeners open is named, with what stays in use until a restart. */
static void warn_listener_changes(const struct server *srv, const struct config *cfg)
{
	char was[CONFIG_MAX_LISTENERS * (FRONT_ADDR_MAX + 2)];
	char now[sizeof(was)], open[sizeof(was)];
	const struct config *old = srv->bound_cfg;

	if (!config_listen_equal(old, cfg)) {
		config_listen_text(old, was, sizeof(was));
		config_listen_text(cfg, now, sizeof(now));
		server_open_text(srv, HTTP_LISTENER_APP, open, sizeof(open));
		log_msgf(LOG_WARN,
			 "'listen' changed from '%s' to '%s': takes effect at restart%s; "
			 "still listening on %s",
			 was, now, srv->socket_activated ? " without socket activation" : "", open);
	}
	if (!config_admin_equal(old, cfg)) {
		server_open_text(srv, HTTP_LISTENER_ADMIN, open, sizeof(open));
		log_msgf(LOG_WARN,
			 "'admin' changed from '%s' to '%s': takes effect at restart; admin still "
			 "on %s",
			 old->admin_enabled ? old->admin.address : "off",
			 cfg->admin_enabled ? cfg->admin.address : "off", open);
	}
}

static void on_reload_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon_state *d = arg;
	struct config *cfg;
	size_t nerrors = 0;
	char msg[64];

	(void)sig;
	(void)what;
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)clock_now_us());
	notify_send(msg);
	cfg = load(d->config_path, 1, &nerrors);
	if (!cfg) {
		d->metrics.reloads_error++;
		log_msgf(
		    LOG_ERROR,
		    "reload of '%s' failed with %zu error%s (logged above); keeping the running "
		    "configuration",
		    d->config_path, nerrors, nerrors == 1 ? "" : "s");
	} else if (server_set_config(d->srv, cfg) < 0 ||
		   fleet_configure(d->fleet, cfg, d->srv->guards, d->srv->guards_by_profile) < 0 ||
		   discovery_configure(d->discovery, cfg, d->srv->guards_by_profile) < 0) {
		d->metrics.reloads_error++;
		log_msgf(LOG_ERROR, "reload of '%s' failed: out of memory", d->config_path);
	} else {
		d->metrics.reloads_ok++;
		log_setup(cfg->log_format, cfg->log_level);
		log_msgf(LOG_INFO, "configuration '%s' reloaded", d->config_path);
		warn_listener_changes(d->srv, cfg);
		warn_no_profiles(cfg);
	}
	config_unref(cfg);
	notify_send("READY=1");
}

/* App connections, upstream connections and listeners are all descriptors:
 * use every one the hard limit allows. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int run(const char *path)
{
	struct daemon_state d = { .config_path = path };
	struct event *sigterm = NULL, *sigint = NULL, *sighup = NULL;
	struct config *cfg;
	int rc = 1;

	cfg = load(path, 1, NULL);
	if (!cfg)
		return 1;
	log_setup(cfg->log_format, cfg->log_level);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_msgf(LOG_ERROR, "cannot initialise libcurl");
		config_unref(cfg);
		return 1;
	}
	{
		/* Precise timers: a coarse clock fired Retry-After waits up to 4 ms early. */
		struct event_config *ec = event_config_new();

		if (!ec)
			goto out;
		event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER);
		d.base = event_base_new_with_config(ec);
		event_config_free(ec);
	}
	/* Two priorities, before any event exists: the backend runs its
	 * parked connections' wake-ups (priority 0) before anything else of a
	 * loop turn could reuse them; every other event has priority 1. */
	if (!d.base || event_base_priority_init(d.base, 2) < 0)
		goto out;
	d.up = upstream_new(d.base);
	if (!d.up)
		goto out;
	d.srv = server_new(d.base, cfg, d.up);
	if (!d.srv || server_listen(d.srv) < 0)
		goto out;
	d.fleet = fleet_new(d.base, &d.metrics.fleet);
	if (!d.fleet || fleet_configure(d.fleet, cfg, d.srv->guards, d.srv->guards_by_profile) < 0)
		goto out;
	d.discovery = discovery_new(d.base);
	if (!d.discovery || discovery_configure(d.discovery, cfg, d.srv->guards_by_profile) < 0)
		goto out;
	if (cfg->admin_enabled) {
		d.admin = admin_new(d.srv, &cfg->admin, &d.metrics);
		if (!d.admin)
			goto out;
	}
	sigterm = evsignal_new(d.base, SIGTERM, on_stop_signal, &d);
	sigint = evsignal_new(d.base, SIGINT, on_stop_signal, &d);
	sighup = evsignal_new(d.base, SIGHUP, on_reload_signal, &d);
	if (!sigterm || !sigint || !sighup)
		goto out;
	evsignal_add(sigterm, NULL);
	evsignal_add(sigint, NULL);
	evsignal_add(sighup, NULL);
	if (start_watchdog(&d) < 0)
		goto out;
	server_announce(d.srv);
	log_msgf(LOG_INFO, "braced %s started with %zu profile%s", PACKAGE_VERSION, cfg->nprofiles,
		 cfg->nprofiles == 1 ? "" : "s");
	warn_no_profiles(cfg);
	notify_send("READY=1");
	event_base_dispatch(d.base);
	log_msgf(LOG_INFO, "stopped");
	rc = 0;
out:
	if (rc != 0)
		log_msgf(LOG_ERROR, "start-up failed");
	if (sigterm)
		event_free(sigterm);
	if (sigint)
		event_free(sigint);
	if (sighup)
		event_free(sighup);
	/* Stopping already: a late signal must not turn a clean exit into a
	 * kill. After event_free, which restores the handlers libevent found. */
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	if (d.drain_timer)
		event_free(d.drain_timer);
	if (d.watchdog)
		event_free(d.watchdog);
	admin_free(d.admin);
	/* Before the guards it hooks, which the server frees. */
	fleet_free(d.fleet);
	discovery_free(d.discovery);
	server_free(d.srv);
	upstream_free(d.up);
	if (d.base) {
		/* The resolver's last callbacks run here (resolver_free()). */
		event_base_loop(d.base, EVLOOP_NONBLOCK);
		event_base_free(d.base);
	}
	curl_global_cleanup();
	config_unref(cfg);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 't' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = getenv("BRACED_CONFIG");
	int check = 0, c;

	if (!path || !*path)
		path = DEFAULT_CONFIG;
	while ((c = getopt_long(argc, argv, "c:tVh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 't':
			check = 1;
			break;
		case 'V':
			printf("braced %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "braced: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (check) {
		struct config *cfg = load(path, 0, NULL);

		if (!cfg)
			return 1;
		printf("%s: ok\n", path);
		config_unref(cfg);
		return 0;
	}
	return run(path);
}
