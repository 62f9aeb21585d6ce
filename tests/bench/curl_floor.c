/* The curl-multi floor: libcurl's multi interface alone, driven from one
 * libevent loop with the glue braced uses (socket and timer callbacks,
 * hiperfifo shape), keeping N keep-alive transfers in flight to one URL
 * for a while (after a 1 s warm-up that opens the connections), then printing the requests done and the process's CPU per
 * request. It shows what libcurl costs on its own before any proxying:
 * no front, no policy, the body appended to an evbuffer and dropped.
 *
 * Usage: curl_floor URL [--concurrency N] [--secs S] [--reuse] [--cafile PATH]
 *                   [--share]
 * With --reuse finished easy handles are reset and reused; without it each
 * transfer gets a fresh handle, as braced does on libcurl before 8.1.0.
 * With --cafile (an https URL) the peer's certificate is verified against
 * PATH, host name included, as braced's `tls: {verify: true, ca_file: PATH}`
 * does. With --share the easy handles share one TLS session cache
 * (CURLSH), as braced's do. The upstream's accepted connections tell how
 * many TLS handshakes were made.
 * Prints one line: "requests=N cpu_us_per_request=X seconds=S". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>

#define MAX_CONCURRENCY 1024
#define MAX_SECS 600

struct floor {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	struct event *stop, *mark;
	double cpu0;
	unsigned long done0;
	const char *url;
	const char *cafile; /* verify the peer against it; NULL: plain HTTP */
	CURLSH *share;      /* TLS sessions shared by the handles, or NULL */
	struct curl_slist *headers;
	int reuse, stopping;
	unsigned long done, failed;
	unsigned inflight;
};

struct slot {
	struct floor *f;
	CURL *easy;
	struct evbuffer *body;
	size_t header_bytes;
};

struct sock {
	struct floor *f;
	struct event *ev;
	short kind;
};

static void drain(struct floor *f);

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct floor *f = arg;
	int running;

	(void)fd;
	(void)what;
	curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	drain(f);
}

static int timer_cb(CURLM *multi, long ms, void *arg)
{
	struct floor *f = arg;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	(void)multi;
	if (ms < 0)
		evtimer_del(f->timer);
	else
		evtimer_add(f->timer, &tv);
	return 0;
}

static void on_socket(evutil_socket_t fd, short what, void *arg)
{
	struct sock *s = arg;
	struct floor *f = s->f; /* s may be freed inside the action */
	int running, flags = 0;

	if (what & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(f->multi, fd, flags, &running);
	drain(f);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *arg, void *sockp)
{
	struct floor *f = arg;
	struct sock *s = sockp;
	short kind;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (s) {
			event_free(s->ev);
			free(s);
			curl_multi_assign(f->multi, fd, NULL);
		}
		return 0;
	}
	kind = (short)(EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
		       ((what & CURL_POLL_OUT) ? EV_WRITE : 0));
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return -1;
		s->f = f;
		s->ev = event_new(f->base, fd, kind, on_socket, s);
		curl_multi_assign(f->multi, fd, s);
	} else if (s->kind != kind) {
		event_del(s->ev);
		event_assign(s->ev, f->base, fd, kind, on_socket, s);
	} else {
		return 0;
	}
	s->kind = kind;
	event_add(s->ev, NULL);
	return 0;
}

static size_t on_header(char *buf, size_t size, size_t n, void *arg)
{
	struct slot *sl = arg;

	(void)buf;
	sl->header_bytes += size * n;
	return size * n;
}

static size_t on_write(char *buf, size_t size, size_t n, void *arg)
{
	struct slot *sl = arg;

	return evbuffer_add(sl->body, buf, size * n) < 0 ? 0 : size * n;
}

static int start(struct floor *f, struct slot *sl)
{
	CURL *e = sl->easy;

	if (!e)
		e = sl->easy = curl_easy_init();
	if (!e)
		return -1;
	curl_easy_setopt(e, CURLOPT_URL, f->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, sl);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, f->headers);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, sl);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, sl);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 4000L);
	if (f->cafile) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
		curl_easy_setopt(e, CURLOPT_CAINFO, f->cafile);
	}
	if (f->share)
		curl_easy_setopt(e, CURLOPT_SHARE, f->share);
	if (curl_multi_add_handle(f->multi, e) != CURLM_OK)
		return -1;
	f->inflight++;
	return 0;
}

static void drain(struct floor *f)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(f->multi, &left))) {
		struct slot *sl = NULL;
		CURL *e = msg->easy_handle;

		if (msg->msg != CURLMSG_DONE)
			continue;
		if (msg->data.result == CURLE_OK)
			f->done++;
		else
			f->failed++;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&sl);
		curl_multi_remove_handle(f->multi, e);
		f->inflight--;
		evbuffer_drain(sl->body, evbuffer_get_length(sl->body));
		if (f->reuse) {
			curl_easy_reset(e);
		} else {
			curl_easy_cleanup(e);
			sl->easy = NULL;
		}
		if (f->stopping) {
			if (f->inflight == 0)
				event_base_loopbreak(f->base);
		} else if (start(f, sl) < 0) {
			fprintf(stderr, "curl_floor: cannot start a transfer\n");
			event_base_loopbreak(f->base);
		}
	}
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
	struct floor *f = arg;

	(void)fd;
	(void)what;
	f->stopping = 1;
	if (f->inflight == 0)
		event_base_loopbreak(f->base);
}

static double cpu_seconds(void);

/* The end of the warm-up: counting starts here. */
static void on_mark(evutil_socket_t fd, short what, void *arg)
{
	struct floor *f = arg;

	(void)fd;
	(void)what;
	f->cpu0 = cpu_seconds();
	f->done0 = f->done;
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
	static struct slot slots[MAX_CONCURRENCY];
	struct floor f = { 0 };
	long n = 64, secs = 5;
	struct timeval tv;
	double cpu1;
	unsigned long done;
	int share = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--concurrency") == 0 && i + 1 < argc)
			n = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--secs") == 0 && i + 1 < argc)
			secs = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--reuse") == 0)
			f.reuse = 1;
		else if (strcmp(argv[i], "--cafile") == 0 && i + 1 < argc)
			f.cafile = argv[++i];
		else if (strcmp(argv[i], "--share") == 0)
			share = 1;
		else if (!f.url && argv[i][0] != '-')
			f.url = argv[i];
		else
			f.url = NULL, i = argc;
	}
	if (!f.url || n < 1 || n > MAX_CONCURRENCY || secs < 1 || secs > MAX_SECS) {
		fprintf(stderr,
			"usage: curl_floor URL [--concurrency 1..%d] [--secs 1..%d] [--reuse] "
			"[--cafile PATH] [--share]\n",
			MAX_CONCURRENCY, MAX_SECS);
		return 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	f.base = event_base_new();
	f.multi = curl_multi_init();
	f.timer = evtimer_new(f.base, on_timer, &f);
	f.stop = evtimer_new(f.base, on_stop, &f);
	f.mark = evtimer_new(f.base, on_mark, &f);
	if (share) {
		f.share = curl_share_init();
		if (!f.share ||
		    curl_share_setopt(f.share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK)
			return 1;
	}
	/* The request braced sends: no Expect, no added Accept. */
	f.headers = curl_slist_append(NULL, "Expect:");
	f.headers = curl_slist_append(f.headers, "Accept:");
	if (!f.base || !f.multi || !f.timer || !f.stop || !f.mark || !f.headers)
		return 1;
	curl_multi_setopt(f.multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(f.multi, CURLMOPT_SOCKETDATA, &f);
	curl_multi_setopt(f.multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(f.multi, CURLMOPT_TIMERDATA, &f);
	curl_multi_setopt(f.multi, CURLMOPT_MAXCONNECTS, n);
	for (long i = 0; i < n; i++) {
		slots[i].f = &f;
		slots[i].body = evbuffer_new();
		if (!slots[i].body || start(&f, &slots[i]) < 0)
			return 1;
	}
	tv.tv_sec = 1;
	tv.tv_usec = 0;
	evtimer_add(f.mark, &tv);
	tv.tv_sec = 1 + secs;
	evtimer_add(f.stop, &tv);
	event_base_dispatch(f.base);
	cpu1 = cpu_seconds();
	done = f.done - f.done0;
	printf("requests=%lu failed=%lu cpu_us_per_request=%.1f seconds=%ld\n", done, f.failed,
	       done ? (cpu1 - f.cpu0) * 1e6 / (double)done : 0.0, secs);
	for (long i = 0; i < n; i++) {
		if (slots[i].easy)
			curl_easy_cleanup(slots[i].easy);
		evbuffer_free(slots[i].body);
	}
	curl_multi_cleanup(f.multi);
	if (f.share)
		curl_share_cleanup(f.share);
	curl_slist_free_all(f.headers);
	event_free(f.timer);
	event_free(f.stop);
	event_free(f.mark);
	event_base_free(f.base);
	curl_global_cleanup();
	return f.failed ? 1 : 0;
}
