/* A streamed answer's body from its attempt to the app: the sink libcurl's
 * blocks go to, the pause when the app's queue is full and the resume when
 * it drained (flow.h). */
#include "flow.h"
#include "exchange.h"
#include "memory.h"
#include "upstream.h"

#include <errno.h>
#include <event2/buffer.h>

/* Adds n bytes relayed to the cache's copy, or drops the copy when it
 * would pass its room, and gives its room back (limits.max_buffered). */
static void tee(struct request *req, const void *buf, size_t n)
{
	if (evbuffer_get_length(req->tee) + n > req->tee_room ||
	    evbuffer_add(req->tee, buf, n) < 0) {
		evbuffer_free(req->tee);
		req->tee = NULL;
		req->tee_over = 1;
		memory_give(req, req->tee_room);
		req->tee_room = 0;
	}
}

/* Takes a block of the streamed body for the app, or none of it (the
 * attempt pauses) while the app's queue holds stream_buffer or the app is
 * gone (on_gone, deferred, then ends the request). All or nothing: libcurl
 * delivers a refused block again on resume. */
static size_t flow_sink(void *arg, const char *buf, size_t n)
{
	struct request *req = arg;
	struct http_request *h = req->hreq;

	if (!h || h->gone)
		return 0;
	if (http_stream_queued(h) >= req->cfg->stream_buffer) {
		req->pauses++;
		return 0;
	}
	if (http_stream_write(h, buf, n) < 0)
		return 0;
	if (req->tee)
		tee(req, buf, n);
	req->bytes_out += n;
	return n;
}

/* Sends what call kept before the decision (at most the window). */
static int send_window(struct request *req, struct call *call)
{
	struct evbuffer *body = call_body(call);
	struct evbuffer_iovec v[8];
	int rc = 0;

	while (evbuffer_get_length(body) > 0 && rc == 0) {
		int nv = evbuffer_peek(body, -1, NULL, v, 8);
		size_t done = 0;

		if (nv > 8)
			nv = 8;
		for (int i = 0; i < nv && rc == 0; i++) {
			rc = http_stream_write(req->hreq, v[i].iov_base, v[i].iov_len);
			if (rc == 0 && req->tee)
				tee(req, v[i].iov_base, v[i].iov_len);
			if (rc == 0)
				done += v[i].iov_len;
		}
		req->bytes_out += done;
		evbuffer_drain(body, done);
	}
	return rc < 0 ? -EPIPE : 0;
}

int flow_begin(struct request *req, struct call *call, int status, const struct http_header *h,
	       size_t n)
{
	const struct http_stream_opts o = {
		.length = call_content_length(call),
		.low_water = req->cfg->stream_buffer / 2,
	};
	int rc = http_stream_begin(req->hreq, status, h, n, &o);

	if (rc == -EINVAL)
		return -EINVAL;
	req->stream_begun = 1;
	req->streamed = call;
	if (rc < 0 || send_window(req, call) < 0)
		return -EPIPE;
	call_stream(call, flow_sink, req);
	if (http_stream_queued(req->hreq) < req->cfg->stream_buffer && call_resume(call) < 0)
		return -EIO;
	return 0;
}

int flow_on_drain(struct request *req)
{
	if (!req->streamed || !req->hreq || req->hreq->gone)
		return 0;
	return call_resume(req->streamed) < 0 ? -EIO : 0;
}
