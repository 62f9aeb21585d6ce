/* The request body of one proxied request on its way upstream (SPEC 3.1):
 * held whole when a retry may have to send it again (up to
 * limits.retry_buffer) or a schema checks it, within the memory budget
 * (memory.h); piped to the upstream as the app sends it otherwise, with
 * backpressure both ways. The HTTP server hands the request over at its
 * head (http_server_set_head_handler). */
#ifndef BRACED_UPLOAD_H
#define BRACED_UPLOAD_H

#include <stddef.h>

struct request;

/* req was routed at its head and has a body (hreq->body_length): reads
 * it whole, then starts the request, or starts it now with the body piped.
 * req may be answered (422, 503) and freed. */
void upload_begin(struct request *req);
/* Body bytes came, or the body ended or failed (the HTTP server's
 * on_body). req may be started, answered or freed. */
void upload_on_body(struct request *req);
/* The read source of a piped body (upstream.h call_read_fn), arg the request. */
long upload_read(void *arg, char *buf, size_t n, int *ret_end);

#endif
