/* A request body held whole or piped upstream (upload.h). */
#include "upload.h"
#include "exchange.h"
#include "memory.h"
#include "request.h"
#include "upstream.h"
#include "validate.h"

#include <errno.h>
#include <stdlib.h>

/* 1 when the route's request schema reads the body. */
static int schema_reads_body(const struct request *req)
{
	return req->route && req->route->request.mode != SCHEMA_MODE_OFF &&
	       req->route->request.body_schema;
}

/* Pipes the body to the upstream from now on and starts the request. The
 * bytes already buffered go first. Not replayable: no hedge, and a retry
 * only while nothing of it was sent. */
static void pipe_start(struct request *req)
{
	size_t room = (size_t)req->cfg->stream_buffer;

	req->upload = UPLOAD_PIPE;
	req->read_body = upload_read;
	memory_give(req, req->held);
	if (http_body_stream(req->hreq, room) < 0)
		http_body_set_room(req->hreq, room);
	/* The body may have ended while it was collected. */
	req->body_ended = http_body_state(req->hreq, NULL) == HTTP_BODY_END;
	request_start(req);
}

/* A body a schema checks is larger than limits.max_validated_body: a
 * violation of keyword size. Enforced, the app gets 422 (nothing was
 * sent); reported, the body is piped. */
static void too_large_for_schema(struct request *req, uint64_t len)
{
	req->body = NULL;
	req->body_len = (size_t)len;
	if (validate_request(req) < 0)
		return;
	req->body_len = 0;
	pipe_start(req);
}

/* The whole body is buffered: it becomes the request's held body, what was
 * reserved beyond it goes back, and the request starts. */
static void held(struct request *req)
{
	size_t n = http_body_buffered(req->hreq), got = 0;
	char *buf = malloc(n ? n : 1);

	if (!buf) {
		request_fail_body(req, PROBLEM_INTERNAL);
		return;
	}
	while (got < n) {
		size_t r = http_body_read(req->hreq, buf + got, n - got);

		if (!r)
			break;
		got += r;
	}
	req->body_owned = buf;
	req->body = buf;
	req->body_len = got;
	req->upload = UPLOAD_NONE;
	memory_give(req, req->collect_room > got ? req->collect_room - got : 0);
	if (validate_request(req) < 0)
		return;
	request_start(req);
}

/* req waited in line and its body's memory is now reserved: read it. */
static void upload_granted(struct request *req)
{
	http_body_set_room(req->hreq, (size_t)req->collect_room);
	/* The body may have come whole with its head, while it waited. */
	upload_on_body(req);
}

/* Collects the body whole, room bytes at most, once they are reserved. */
static void collect(struct request *req, uint64_t room)
{
	int rc;

	req->upload = UPLOAD_COLLECT;
	req->collect_room = room;
	rc = memory_reserve(req, room, NULL, upload_granted);
	if (rc < 0) {
		request_fail_body(req, PROBLEM_INTERNAL);
		return;
	}
	if (rc == 1) {
		/* In line: nothing is read (no 100 Continue) until it fits. */
		http_body_stream(req->hreq, 0);
		request_wait_memory(req);
		return;
	}
	http_body_stream(req->hreq, (size_t)room);
}

void upload_begin(struct request *req)
{
	int64_t len = req->hreq->body_length;
	uint64_t max = req->cfg->max_validated_body;

	if (schema_reads_body(req)) {
		if (len >= 0 && (uint64_t)len > max)
			too_large_for_schema(req, (uint64_t)len);
		else
			collect(req, len >= 0 ? (uint64_t)len : max + 1);
		return;
	}
	if ((len >= 0 && (uint64_t)len > req->cfg->retry_buffer) || !req->cfg->retry_buffer) {
		pipe_start(req);
		return;
	}
	/* A chunked body is held while it fits in retry_buffer, piped beyond. */
	collect(req, len >= 0 ? (uint64_t)len : req->cfg->retry_buffer);
}

void upload_on_body(struct request *req)
{
	enum problem_code code = PROBLEM_INTERNAL;
	enum http_body_state state = http_body_state(req->hreq, &code);

	if (state == HTTP_BODY_FAILED) {
		/* The app's failure, never the upstream's: before an answer it
		 * gets the problem; an answer already flowing is cut as if the
		 * app left (not counted against the upstream). */
		if (!req->stream_begun)
			request_fail_body(req, code);
		else
			request_client_gone(req);
		return;
	}
	/* Waiting in line for the memory to hold it: its turn comes first. */
	if (req->in_line)
		return;
	if (req->upload == UPLOAD_COLLECT) {
		size_t n = http_body_buffered(req->hreq);

		if (state == HTTP_BODY_END)
			held(req);
		else if (n >= req->collect_room && schema_reads_body(req))
			too_large_for_schema(req, n);
		else if (n >= req->collect_room)
			pipe_start(req);
		return;
	}
	if (req->upload != UPLOAD_PIPE)
		return;
	for (unsigned i = 0; i < ENGINE_MAX_INFLIGHT; i++)
		if (req->calls[i].call)
			call_upload_more(req->calls[i].call);
	if (state == HTTP_BODY_END && !req->body_ended) {
		req->body_ended = 1;
		request_body_end(req);
	}
}

long upload_read(void *arg, char *buf, size_t n, int *ret_end)
{
	struct request *req = arg;
	size_t got;

	*ret_end = 0;
	if (!req->hreq)
		return -1;
	got = http_body_read(req->hreq, buf, n);
	if (got)
		return (long)got;
	switch (http_body_state(req->hreq, NULL)) {
	case HTTP_BODY_END:
		*ret_end = 1;
		return 0;
	case HTTP_BODY_FAILED:
		/* on_body ends the request (the app's failure, not the
		 * upstream's): nothing more is sent meanwhile. */
	case HTTP_BODY_MORE:
	default:
		return 0;
	}
}
