/* One attempt at the upstream, from start to outcome: its easy handle
 * (reused when this libcurl allows), the request's headers and body, the
 * header, body, prereq and seek callbacks, the read, write, pool-wait and
 * attempt timers, and the classification of how it ended (what it tells
 * about itself afterwards: call_view.c). */
#include "upstream_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>

/* Response header bytes kept for one attempt (curl itself caps a line at 100 KiB). */
#define CALL_MAX_HEADER_BYTES (64 * 1024)
/* Seconds libcurl keeps the certificate store it built from a profile's
 * ca_file (CURLOPT_CA_CACHE_TIMEOUT, libcurl 7.87.0+) for the next TLS
 * handshakes: a CA file replaced on disk is used by new connections after
 * at most this long. Without the cache every new connection parsed the file
 * again (about 1.5 million instructions for one certificate). */
#define UPSTREAM_CA_CACHE_S 60

/* ---- one attempt ------------------------------------------------------ */

static enum attempt_end classify(struct call *c, CURLcode rc, int connected)
{
	switch (rc) {
	case CURLE_OK:
		return ATTEMPT_OK;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
		return ATTEMPT_CONNECT;
	case CURLE_OPERATION_TIMEDOUT:
		if (!connected)
			c->timeout = LIMIT_CONNECT;
		else
			c->timeout = LIMIT_ATTEMPT;
		return ATTEMPT_TIMEOUT;
	case CURLE_WRITE_ERROR:
		if (c->too_large)
			return ATTEMPT_TOO_LARGE;
		return ATTEMPT_INTERNAL;
	default:
		/* 52 empty reply, 55/56 send/recv failure, 18 partial, 16/92 HTTP/2,
		 * 1 a malformed status line: once connected, the request may have
		 * been processed, so none of these is a connect failure. */
		return connected ? ATTEMPT_RESET : ATTEMPT_CONNECT;
	}
}

static void easy_recycle(struct upstream *up, CURL *easy)
{
	if (!easy)
		return;
	if (up->reuse_handles && up->nfree < UPSTREAM_FREE_HANDLES) {
		curl_easy_reset(easy);
		up->free_handles[up->nfree++] = easy;
	} else {
		curl_easy_cleanup(easy);
	}
}

/* Takes the call out of the multi and out of the pool. */
static void call_detach(struct call *c)
{
	struct upstream *up = c->up;

	/* Leaving the multi ends any pause: its socket is parked (and checked
	 * for the unread answer) like any other. */
	c->paused = 0;
	if (c->head_queued) {
		TAILQ_REMOVE(&up->heads, c, head_link);
		c->head_queued = 0;
	}
	if (c->state == CALL_RUNNING && c->easy)
		curl_multi_remove_handle(up->multi, c->easy);
	upstream_pool_leave(c);
	if (c->sock && c->sock->call == c)
		c->sock->call = NULL;
	c->sock = NULL;
	easy_recycle(up, c->easy);
	c->easy = NULL;
	if (c->timer)
		evtimer_del(c->timer);
	if (c->attempt_timer)
		evtimer_del(c->attempt_timer);
	c->elapsed_us = clock_now_us() - c->start_us;
	c->state = CALL_DONE;
}

static void call_complete(struct call *c)
{
	call_detach(c);
	c->done(c, c->arg);
}

static void arm_idle(struct call *c, uint64_t after_ms)
{
	struct timeval tv;

	clock_ms_to_tv(after_ms, &tv);
	evtimer_add(c->timer, &tv);
}

/* The direction whose silence the idle timer measures now. */
static unsigned phase_direction(const struct call *c)
{
	return c->phase == PHASE_WRITE ? CURLPAUSE_SEND : CURLPAUSE_RECV;
}

/* Sets braced's mirror of libcurl's pause bits. While the current phase's
 * direction is paused its idle timer stands still: when the pause ends,
 * the time braced held the transfer is added to last_io_ms and the timer
 * is armed for what is left. */
static void set_paused(struct call *c, unsigned paused)
{
	unsigned dir = phase_direction(c);
	uint64_t now = clock_coarse_ms();

	if (!(c->paused & dir) && (paused & dir)) {
		c->paused_at_ms = now;
	} else if ((c->paused & dir) && !(paused & dir)) {
		uint64_t limit = dir == CURLPAUSE_SEND ? c->p.write_ms : c->p.read_ms, idle;

		c->last_io_ms += now - c->paused_at_ms;
		idle = now > c->last_io_ms ? now - c->last_io_ms : 0;
		arm_idle(c, idle < limit ? limit - idle : 0);
	}
	c->paused = paused;
}

/* An answer of 300 or more came while the upload waited for the app:
 * libcurl stops sending, but a transfer it holds paused for sending never
 * ends. The pause is lifted here, from the loop. Returns -1 when libcurl
 * refused. */
static int stop_upload(struct call *c)
{
	unsigned paused = c->paused & ~(unsigned)CURLPAUSE_SEND;

	c->unpause_send = 0;
	if (c->state != CALL_RUNNING || !(c->paused & CURLPAUSE_SEND))
		return 0;
	set_paused(c, paused);
	return curl_easy_pause(c->easy, (int)paused) == CURLE_OK ? 0 : -1;
}

/* The idle timer: pool wait while waiting, then read/write inactivity.
 * Progress only stamps last_io_ms; the timer re-arms itself lazily, and
 * keeps ticking while braced holds the direction paused, without firing. */
static void on_call_timer(evutil_socket_t fd, short what, void *arg)
{
	struct call *c = arg;
	uint64_t limit, idle;

	(void)fd;
	(void)what;
	if (c->unpause_send && stop_upload(c) < 0 && !c->failed_start) {
		c->failed_start = 1;
		snprintf(c->errbuf, sizeof(c->errbuf), "libcurl refused to end the upload");
	}
	if (c->state == CALL_WAITING || c->failed_start) {
		/* A failure found while the call was held keeps its kind. */
		c->outcome = c->state == CALL_WAITING ? ATTEMPT_POOL_TIMEOUT
			     : c->too_large           ? ATTEMPT_TOO_LARGE
			     : c->malformed           ? ATTEMPT_RESET
						      : ATTEMPT_INTERNAL;
		if (c->malformed)
			snprintf(c->errbuf, sizeof(c->errbuf), "malformed answer: %s",
				 c->malformed);
		call_complete(c);
		return;
	}
	limit = c->phase == PHASE_WRITE ? c->p.write_ms : c->p.read_ms;
	if (c->paused & phase_direction(c)) {
		arm_idle(c, limit);
		return;
	}
	idle = clock_coarse_ms() - c->last_io_ms;
	if (idle < limit) {
		arm_idle(c, limit - idle);
		return;
	}
	c->outcome = ATTEMPT_TIMEOUT;
	c->timeout = c->phase == PHASE_WRITE ? LIMIT_WRITE : LIMIT_READ;
	snprintf(c->errbuf, sizeof(c->errbuf), "no %s progress for %u ms",
		 c->phase == PHASE_WRITE ? "upload" : "response", (unsigned)limit);
	call_complete(c);
}

/* 1 once libcurl has a connection for c: what it sent may have been acted
 * upon. */
static int call_connected(struct call *c)
{
	curl_off_t pretransfer = 0;

	if (c->phase != PHASE_CONNECT)
		return 1;
	curl_easy_getinfo(c->easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
	return pretransfer > 0;
}

/* The attempt cap ran out: as libcurl's CURLOPT_TIMEOUT_MS did, an attempt
 * still connecting ends as a connect timeout (nothing was sent), any other
 * as the attempt's. */
static void on_attempt_timer(evutil_socket_t fd, short what, void *arg)
{
	struct call *c = arg;

	(void)fd;
	(void)what;
	c->outcome = ATTEMPT_TIMEOUT;
	c->timeout = call_connected(c) ? LIMIT_ATTEMPT : LIMIT_CONNECT;
	snprintf(c->errbuf, sizeof(c->errbuf), "attempt not over within %u ms",
		 (unsigned)c->p.attempt_ms);
	call_complete(c);
}

/* The upload is over (sent whole, or the answer began): from here the read
 * limit bounds each silence. The timer armed for the write limit is moved
 * when the read limit is shorter, or it would first fire at the write
 * limit. last_io_ms is now. */
static void end_upload(struct call *c)
{
	if (c->phase != PHASE_WRITE)
		return;
	c->phase = PHASE_READ;
	if (c->p.read_ms < c->p.write_ms || !evtimer_pending(c->timer, NULL))
		arm_idle(c, c->p.read_ms);
}

static int on_prereq(void *arg, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port,
		     int conn_local_port)
{
	struct call *c = arg;

	(void)conn_primary_ip;
	(void)conn_local_ip;
	(void)conn_primary_port;
	(void)conn_local_port;
	/* A second connection for one transfer: libcurl is about to send the
	 * request again after the first connection died without an answer
	 * (curl's Curl_retry_request). The upstream may have acted on it, so
	 * only braced's policy may repeat it, as a counted attempt. */
	if (c->prereqs++ > 0) {
		c->resend_refused = 1;
		return CURL_PREREQFUNC_ABORT;
	}
	/* Connected (or reused): from here on the read/write idle limits apply. */
	c->phase =
	    c->p.send_body && (c->p.body_len > 0 || c->p.read_body) ? PHASE_WRITE : PHASE_READ;
	c->last_io_ms = clock_coarse_ms();
	c->body_sent = 0;
	arm_idle(c, c->phase == PHASE_WRITE ? c->p.write_ms : c->p.read_ms);
	return CURL_PREREQFUNC_OK;
}

/* A streamed body: what the app sent so far, a pause when it sent nothing
 * new, the end, or an abort when its body failed. Never 0 before the end:
 * libcurl takes 0 for the end of the body. */
static size_t read_streamed(struct call *c, char *buf, size_t n)
{
	int end = 0;
	long got = c->p.read_body(c->arg, buf, n, &end);

	if (got < 0) {
		c->app_failed = 1;
		return CURL_READFUNC_ABORT;
	}
	c->last_io_ms = clock_coarse_ms();
	if (got > 0) {
		c->body_sent += (size_t)got;
		return (size_t)got;
	}
	if (end) {
		end_upload(c);
		return 0;
	}
	/* Waiting for the app is not a silence of the upstream. */
	set_paused(c, c->paused | CURLPAUSE_SEND);
	return CURL_READFUNC_PAUSE;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *arg)
{
	struct call *c = arg;
	size_t left = c->p.body_len - c->body_sent, n = size * nitems;

	if (c->p.read_body)
		return read_streamed(c, buf, n);
	if (n > left)
		n = left;
	memcpy(buf, c->p.body + c->body_sent, n);
	c->body_sent += n;
	c->last_io_ms = clock_coarse_ms();
	/* libcurl stops asking once the declared size is sent: the wait for the
	 * answer is bounded by the read timeout from here on. */
	if (c->body_sent == c->p.body_len)
		end_upload(c);
	return n;
}

static int on_seek(void *arg, curl_off_t offset, int origin)
{
	struct call *c = arg;

	/* libcurl rewinds only to send the request again on a new connection
	 * (see on_prereq): refused, so the transfer fails instead. */
	(void)offset;
	(void)origin;
	c->resend_refused = 1;
	return CURL_SEEKFUNC_CANTSEEK;
}

/* The answer has no body whatever it announces: HEAD, 204, 304. */
static int body_less(const struct call *c)
{
	return c->p.head || c->check.status == 304 || c->check.status == 204;
}

static void queue_head(struct call *c)
{
	c->head_waits = 0;
	TAILQ_INSERT_TAIL(&c->up->heads, c, head_link);
	c->head_queued = 1;
}

/* The final head ended (its blank line): with a window, the call is
 * reported to on_head after this socket action unless it finishes in it. */
static void note_head(struct call *c)
{
	c->status = c->check.status;
	if (c->status >= 300 && (c->paused & CURLPAUSE_SEND)) {
		c->unpause_send = 1;
		event_active(c->timer, EV_TIMEOUT, 0);
	}
	c->chunked = c->check.seen_te && !body_less(c);
	if (c->chunked)
		chunked_init(&c->dechunk);
	c->head_length = body_less(c)       ? 0
			 : c->check.seen_cl ? (int64_t)c->check.content_length
					    : -1;
	if (!c->p.window || !c->p.on_head || c->head_queued)
		return;
	if (c->status >= 400 && c->head_length != 0 && c->p.error_prefix > 0) {
		c->head_waits = 1;
		return;
	}
	queue_head(c);
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *arg)
{
	struct call *c = arg;
	size_t n = size * nitems, len = n;
	const char *colon;

	c->last_io_ms = clock_coarse_ms();
	end_upload(c); /* an early answer ends the upload phase */
	if (headers_check_line(&c->check, buf, n) < 0) {
		/* Refused: libcurl ends the transfer and closes the connection. */
		c->malformed = c->check.why;
		return 0;
	}
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
		/* A new status line (after 1xx or a resend): start over. */
		c->headers.len = 0;
		c->headers.failed = 0;
		c->headers_done = 0;
		c->body_taken = 0;
		return n;
	}
	if (len == 0) {
		c->headers_done = c->check.in_trailers;
		if (c->headers_done)
			note_head(c);
		return n;
	}
	if (c->headers_done)
		return n; /* trailers are not passed on */
	colon = memchr(buf, ':', len);
	if (!c->p.window && (size_t)(colon - buf) == 14 &&
	    strncasecmp(buf, "Content-Length", 14) == 0 && !body_less(c)) {
		/* A HEAD or 304 answer announces a body it does not send. */
		if (c->check.content_length > c->p.max_response_body) {
			c->too_large = 1;
			return 0;
		}
	}
	strbuf_add(&c->headers, buf, (size_t)(colon - buf));
	strbuf_add(&c->headers, "", 1);
	colon++;
	while (colon < buf + len && (*colon == ' ' || *colon == '\t'))
		colon++;
	strbuf_add(&c->headers, colon, (size_t)(buf + len - colon));
	strbuf_add(&c->headers, "", 1);
	return n;
}

/* Takes n bytes of body data where the call's sink says: n when taken,
 * CURL_WRITEFUNC_PAUSE when they must wait (none taken), 0 on failure. */
static size_t take_body(struct call *c, const char *buf, size_t n)
{
	switch (c->sink) {
	case SINK_STREAM:
		if (!n || c->sink_fn(c->sink_arg, buf, n) == n)
			return n;
		set_paused(c, c->paused | CURLPAUSE_RECV);
		return CURL_WRITEFUNC_PAUSE;
	case SINK_WINDOW:
		if (c->p.window && evbuffer_get_length(c->body) + n > c->p.window) {
			/* Full before a decision: the block stays with libcurl. */
			if (c->head_waits)
				queue_head(c);
			set_paused(c, c->paused | CURLPAUSE_RECV);
			return CURL_WRITEFUNC_PAUSE;
		}
		if (c->p.window) {
			if (c->head_waits && evbuffer_get_length(c->body) + n >= c->p.error_prefix)
				queue_head(c);
			break;
		}
		/* no window: every answer is held, as below */
		if (evbuffer_get_length(c->body) + n > c->p.max_response_body) {
			c->too_large = 1;
			return 0;
		}
		break;
	case SINK_HOLD:
		if (evbuffer_get_length(c->body) + n > c->p.max_response_body) {
			c->too_large = 1;
			return 0;
		}
		break;
	}
	if (n && evbuffer_add(c->body, buf, n) < 0)
		return 0;
	return n;
}

/* A block of a chunked answer as it came (CURLOPT_HTTP_TRANSFER_DECODING
 * is off): braced's strict decoder takes the framing off, and the data goes
 * to the sink. A block the sink cannot take now is decoded again when
 * libcurl delivers it again: the decoder's state is put back. */
static size_t take_chunked(struct call *c, const char *buf, size_t n)
{
	struct chunked before = c->dechunk;
	size_t data = 0, rc;
	long used;

	if (n > c->scratch_size) {
		char *grown = realloc(c->scratch, n);

		if (!grown)
			return 0;
		c->scratch = grown;
		c->scratch_size = n;
	}
	used = chunked_decode(&c->dechunk, buf, n, c->scratch, &data);
	if (used < 0) {
		/* Refused: libcurl ends the transfer and closes the connection. */
		c->malformed = c->dechunk.why;
		return 0;
	}
	rc = take_body(c, c->scratch, data);
	if (rc == CURL_WRITEFUNC_PAUSE) {
		c->dechunk = before;
		return rc;
	}
	/* Bytes after the last chunk belong to no answer: never relayed. */
	return rc == data ? n : 0;
}

static size_t on_write(char *buf, size_t size, size_t nitems, void *arg)
{
	struct call *c = arg;
	size_t n = size * nitems;

	c->last_io_ms = clock_coarse_ms();
	if (c->pause_asked & CURLPAUSE_RECV) {
		/* libcurl keeps the block (taking none of it is the only
		 * answer it accepts with a pause) and delivers it again when
		 * call_resume() unpauses. */
		c->pause_asked &= ~CURLPAUSE_RECV;
		set_paused(c, c->paused | CURLPAUSE_RECV);
		return CURL_WRITEFUNC_PAUSE;
	}
	if (c->chunked)
		return take_chunked(c, buf, n);
	n = take_body(c, buf, n);
	if (n != CURL_WRITEFUNC_PAUSE)
		c->body_taken += n;
	return n;
}

/* The final answer came whole: its head, then all its Content-Length or
 * its last chunk (or it has no body). */
static int answer_whole(const struct call *c)
{
	if (!c->headers_done || c->status < 200)
		return 0;
	if (c->chunked)
		return c->dechunk.done;
	return c->head_length >= 0 && c->body_taken >= (uint64_t)c->head_length;
}

static int setup_easy(struct call *c)
{
	CURL *e = c->easy;
	const struct call_params *p = &c->p;
	int ok = 1;

#define SET(opt, val) ok &= curl_easy_setopt(e, opt, val) == CURLE_OK
	SET(CURLOPT_URL, p->url);
	SET(CURLOPT_PRIVATE, c);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_ERRORBUFFER, c->errbuf);
	SET(CURLOPT_HTTPHEADER, c->send_headers);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, c);
	SET(CURLOPT_WRITEFUNCTION, on_write);
	SET(CURLOPT_WRITEDATA, c);
	SET(CURLOPT_PREREQFUNCTION, on_prereq);
	SET(CURLOPT_PREREQDATA, c);
	SET(CURLOPT_OPENSOCKETFUNCTION, upstream_open_socket);
	SET(CURLOPT_OPENSOCKETDATA, c->up);
	SET(CURLOPT_CLOSESOCKETFUNCTION, upstream_close_socket);
	SET(CURLOPT_CLOSESOCKETDATA, c->up);
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long)p->connect_ms);
	if (p->connect_to)
		SET(CURLOPT_CONNECT_TO, &c->connect_node);
	SET(CURLOPT_SSL_VERIFYPEER, p->tls_verify ? 1L : 0L);
	SET(CURLOPT_SSL_VERIFYHOST, p->tls_verify ? 2L : 0L);
	if (c->up->share)
		SET(CURLOPT_SHARE, c->up->share);
	if (p->ca_file) {
		/* Exactly the CAs of ca_file: not also the directory libcurl was
		 * built with (Debian's /etc/ssl/certs), which would trust every
		 * public CA too and keeps libcurl from caching the store. */
		SET(CURLOPT_CAINFO, p->ca_file);
		SET(CURLOPT_CAPATH, NULL);
#if LIBCURL_VERSION_NUM >= 0x075700
		SET(CURLOPT_CA_CACHE_TIMEOUT, (long)UPSTREAM_CA_CACHE_S);
#endif
	}
	SET(CURLOPT_PATH_AS_IS, 1L);
	/* A chunked answer comes with its framing, for braced's strict
	 * decoder (proto/chunked.h); libcurl still finds its end. */
	SET(CURLOPT_HTTP_TRANSFER_DECODING, 0L);
	/* HTTP/1.1 to every upstream, as nginx and HAProxy speak to theirs by
	 * default: a paused HTTP/2 stream in libcurl 7.88 stops its whole
	 * connection and leaves up to a 32 MiB window in flight, so neither a
	 * slow app's backpressure nor a pool slot would mean one connection. */
	SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	if (p->head) {
		SET(CURLOPT_NOBODY, 1L);
	} else if (p->send_body) {
		SET(CURLOPT_POST, 1L);
		/* -1: unknown, sent chunked (HTTP/1.1) */
		SET(CURLOPT_POSTFIELDSIZE_LARGE,
		    p->read_body ? (curl_off_t)p->body_length : (curl_off_t)p->body_len);
		SET(CURLOPT_READFUNCTION, on_read);
		SET(CURLOPT_READDATA, c);
		SET(CURLOPT_SEEKFUNCTION, on_seek);
		SET(CURLOPT_SEEKDATA, c);
		if (strcmp(p->method, "POST") != 0)
			SET(CURLOPT_CUSTOMREQUEST, p->method);
	} else if (strcmp(p->method, "GET") != 0) {
		SET(CURLOPT_CUSTOMREQUEST, p->method);
	}
#undef SET
	return ok ? 0 : -EINVAL;
}

void call_begin(struct call *c)
{
	struct upstream *up = c->up;

	c->state = CALL_RUNNING;
	c->begin_us = clock_now_us();
	if (c->attempt_timer) {
		/* braced's own timer, not CURLOPT_TIMEOUT_MS: the cap can then
		 * stop where braced decides (at the answer's head, once answers
		 * stream). It counts the pool wait too; one already longer than
		 * the cap still starts, and ends at the next loop turn. */
		uint64_t waited = (c->begin_us - c->start_us) / 1000;
		struct timeval tv;

		clock_ms_to_tv(waited < c->p.attempt_ms ? c->p.attempt_ms - waited : 1, &tv);
		evtimer_add(c->attempt_timer, &tv);
	}
	TAILQ_INSERT_TAIL(&c->pool->running, c, link);
	c->pool->active++;
	up->running++;
	upstream_update_max_connects(up);
	c->phase = PHASE_CONNECT;
	c->easy = up->nfree ? up->free_handles[--up->nfree] : curl_easy_init();
	if (!c->easy || setup_easy(c) < 0 ||
	    curl_multi_add_handle(up->multi, c->easy) != CURLM_OK) {
		snprintf(c->errbuf, sizeof(c->errbuf), "libcurl refused the transfer");
		/* Reported from the timer so done never runs inside upstream_start. */
		c->failed_start = 1;
		event_active(c->timer, EV_TIMEOUT, 0);
	}
}

/* libcurl refused the answer itself, before braced's header callback saw
 * the offending line: say so in the words braced uses for its own checks. */
static void note_malformed(struct call *c, CURLcode rc)
{
	char msg[CURL_ERROR_SIZE];

	switch (rc) {
	case CURLE_BAD_FUNCTION_ARGUMENT:
		/* The header store refused a line, before the callback. */
		snprintf(c->errbuf, sizeof(c->errbuf),
			 "malformed answer: a header line libcurl could not store "
			 "(an obs-fold continuation or a line without a colon)");
		break;
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_BAD_CONTENT_ENCODING: /* more codings than libcurl stacks */
		snprintf(msg, sizeof(msg), "%s", c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc));
		snprintf(c->errbuf, sizeof(c->errbuf), "malformed answer: %.200s", msg);
		break;
	default:
		break;
	}
}

void call_finish(struct call *c, CURLcode rc)
{
	long status = 0;

	curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
	c->status = (int)status;
	c->outcome = classify(c, rc, call_connected(c));
	if (c->app_failed) {
		c->outcome = ATTEMPT_INTERNAL;
		snprintf(c->errbuf, sizeof(c->errbuf), "the app's request body failed");
	} else if (c->resend_refused) {
		c->outcome = ATTEMPT_RESET;
		snprintf(c->errbuf, sizeof(c->errbuf),
			 "the connection closed after the request was sent, without an answer");
	} else if (c->malformed) {
		c->outcome = ATTEMPT_RESET;
		snprintf(c->errbuf, sizeof(c->errbuf), "malformed answer: %s", c->malformed);
	} else if (c->outcome == ATTEMPT_RESET && answer_whole(c)) {
		/* An early answer came whole, then sending the rest of the
		 * request failed (the upstream closed after answering, as it
		 * may): the answer stands. */
		c->outcome = ATTEMPT_OK;
	} else if (c->outcome == ATTEMPT_RESET) {
		note_malformed(c, rc);
	}
	if (c->outcome == ATTEMPT_OK && c->headers.failed) {
		c->outcome = ATTEMPT_TOO_LARGE;
		snprintf(c->errbuf, sizeof(c->errbuf), "response headers too large");
	}
	call_complete(c);
}

void call_pause_recv(struct call *c)
{
	if (c->state == CALL_RUNNING && !(c->paused & CURLPAUSE_RECV))
		c->pause_asked |= CURLPAUSE_RECV;
}

int call_resume(struct call *c)
{
	unsigned paused = c->paused & ~(unsigned)CURLPAUSE_RECV;

	c->pause_asked &= ~CURLPAUSE_RECV;
	if (c->state != CALL_RUNNING || !(c->paused & CURLPAUSE_RECV))
		return 0;
	/* The mirror first: the kept block is delivered inside
	 * curl_easy_pause, and a write callback may pause again there. The
	 * whole mask, always: curl_easy_pause sets every bit from its
	 * argument, so CURLPAUSE_RECV_CONT alone would also unpause a send
	 * braced paused. */
	set_paused(c, paused);
	return curl_easy_pause(c->easy, (int)paused) == CURLE_OK ? 0 : -EIO;
}

void call_stream(struct call *c, call_sink_fn sink, void *arg)
{
	c->sink = SINK_STREAM;
	c->sink_fn = sink;
	c->sink_arg = arg;
	/* The attempt cap bounds the time to the answer's head, not its body. */
	if (c->attempt_timer)
		evtimer_del(c->attempt_timer);
}

void call_hold(struct call *c)
{
	c->sink = SINK_HOLD;
	if (c->head_length > 0 && (uint64_t)c->head_length > c->p.max_response_body) {
		/* Refused at once: the next block the call takes fails it. */
		c->too_large = 1;
		c->p.max_response_body = 0;
	}
	if (call_resume(c) < 0) {
		/* libcurl refused: the answer is not held whole, the attempt
		 * failed. Reported from the timer, never from here. */
		c->failed_start = 1;
		snprintf(c->errbuf, sizeof(c->errbuf), "libcurl refused to resume the answer");
		event_active(c->timer, EV_TIMEOUT, 0);
	}
}

void call_hold_at_most(struct call *c, uint64_t max)
{
	if (max < c->p.max_response_body)
		c->p.max_response_body = max;
}

void call_refuse_hold(struct call *c)
{
	c->p.max_response_body = 0;
	call_hold(c);
}

void call_upload_more(struct call *c)
{
	unsigned paused = c->paused & ~(unsigned)CURLPAUSE_SEND;

	if (c->state != CALL_RUNNING || !(c->paused & CURLPAUSE_SEND))
		return;
	/* The whole mask: a download paused for a slow app stays paused. */
	set_paused(c, paused);
	if (curl_easy_pause(c->easy, (int)paused) != CURLE_OK) {
		c->failed_start = 1;
		snprintf(c->errbuf, sizeof(c->errbuf), "libcurl refused to resume the upload");
		event_active(c->timer, EV_TIMEOUT, 0);
	}
}

struct call *call_paused_of(CURL *easy)
{
	char *priv = NULL;
	struct call *c;

	if (!easy || curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv) != CURLE_OK || !priv)
		return NULL;
	c = (struct call *)priv;
	return c->paused ? c : NULL;
}

/* libcurl's list for the request headers: nodes pointing at the lines of
 * list and at extra (all borrowed until done), then the empty "Name:" lines that stop
 * libcurl from adding headers the app did not send. One allocation;
 * NULL on OOM. */
static struct curl_slist *send_headers_of(const struct header_list *list, const char *extra,
					  int with_body)
{
	static char expect[] = "Expect:", type[] = "Content-Type:", accept[] = "Accept:";
	size_t n = list ? list->n : 0, i = 0;
	struct curl_slist *nodes = calloc(n + 4, sizeof(*nodes));

	if (!nodes)
		return NULL;
	for (; i < n; i++)
		nodes[i].data = list->lines[i];
	/* curl_slist's data is not const; libcurl only reads it. */
	if (extra)
		nodes[i++].data = (char *)(uintptr_t)extra;
	/* libcurl adds Expect and Content-Type only to a request with a body:
	 * a body over 1 MiB or of unknown length would wait for 100-continue.
	 * Without a body the list stays shorter (libcurl scans it per header
	 * it considers adding). */
	if (with_body) {
		nodes[i++].data = expect;
		if (!list || !header_list_has(list, "Content-Type"))
			nodes[i++].data = type;
	}
	if (!list || !header_list_has(list, "Accept"))
		nodes[i++].data = accept;
	for (size_t j = 0; j + 1 < i; j++)
		nodes[j].next = &nodes[j + 1];
	return nodes;
}

struct call *upstream_start(struct upstream *up, struct upstream_pool *pool,
			    const struct call_params *params, call_done_fn done, void *arg)
{
	struct call *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->up = up;
	c->pool = pool;
	c->p = *params;
	c->done = done;
	c->arg = arg;
	c->start_us = clock_now_us();
	c->body = evbuffer_new();
	c->timer = evtimer_new(up->base, on_call_timer, c);
	if (params->attempt_ms)
		c->attempt_timer = evtimer_new(up->base, on_attempt_timer, c);
	strbuf_init(&c->headers, CALL_MAX_HEADER_BYTES);
	headers_check_init(&c->check);
	c->send_headers = send_headers_of(params->headers, params->extra_header,
					  params->send_body && !params->head);
	if (params->connect_to) {
		size_t len = strnlen(params->connect_to, sizeof(c->connect_to));

		if (len + 3 > sizeof(c->connect_to)) {
			call_free(c);
			return NULL;
		}
		memcpy(c->connect_to, "::", 2);
		memcpy(c->connect_to + 2, params->connect_to, len + 1);
		c->connect_node = (struct curl_slist){ .data = c->connect_to, .next = NULL };
		c->p.connect_to = c->connect_to + 2;
	}
	if (!c->body || !c->timer || (params->attempt_ms && !c->attempt_timer) ||
	    !c->send_headers) {
		call_free(c);
		return NULL;
	}
	upstream_pool_enter(c);
	return c;
}

void upstream_cancel(struct call *c)
{
	if (!c)
		return;
	if (c->state != CALL_DONE)
		call_detach(c);
	call_free(c);
}

void call_free(struct call *c)
{
	if (!c)
		return;
	if (c->timer)
		event_free(c->timer);
	if (c->attempt_timer)
		event_free(c->attempt_timer);
	if (c->body)
		evbuffer_free(c->body);
	strbuf_release(&c->headers);
	free(c->send_headers);
	free(c->scratch);
	free(c);
}
