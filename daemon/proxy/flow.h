/* The body of a streamed answer on its way from the attempt that brought
 * it (upstream.h) to the app (http.h), with backpressure both ways: the
 * attempt is paused while the app's queue holds limits.stream_buffer and
 * resumed when the app has read half of it (SPEC 3.1). The request's life
 * around it (its end, its log line) is request.c's. */
#ifndef BRACED_FLOW_H
#define BRACED_FLOW_H

#include <stddef.h>

struct request;
struct call;
struct http_header;

/* Begins the app's streamed answer: status and the n headers h (borrowed
 * for the call), the framing of call's Content-Length, then what call
 * kept of the body before the decision, then the rest as it comes.
 * Returns 0; -EINVAL when nothing was sent (req is still to be answered);
 * -EPIPE when the app is gone or the stream could not begin, and -EIO when
 * libcurl refused to go on: the stream is begun and must end. */
int flow_begin(struct request *req, struct call *call, int status, const struct http_header *h,
	       size_t n);

/* The app's queue fell to its low water (the HTTP server's on_drain): the
 * paused attempt goes on. Returns 0, or -EIO when libcurl refused. */
int flow_on_drain(struct request *req);

#endif
