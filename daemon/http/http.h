/* braced's own HTTP/1.1 server: listeners handed in by the caller,
 * connections, strict request framing on llhttp (RFC 9112), deadlines,
 * connection and size limits, and replies. It answers framing errors, limits
 * and deadlines itself with problem+json; every parsed request goes to the
 * caller's on_request, which answers it with exactly one http_reply(), or
 * streams the answer (http_stream_begin() ... http_stream_end()). A caller
 * that sets a head handler gets requests with a body at their head instead,
 * and reads the body whole or through a bounded pipe (http_body_*). */
#ifndef BRACED_HTTP_H
#define BRACED_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "problem.h"

struct evbuffer;

struct event_base;
struct http_server;
struct http_conn;

/* The admin listener's own limits, apart from the app's (SPEC 6):
 * an admin connection has HTTP_ADMIN_HEAD_MS for its request head, waits
 * HTTP_ADMIN_IDLE_MS for the next request (or for its client to read an
 * answer), sends at most HTTP_ADMIN_MAX_HEAD head bytes, and sends no body
 * (413 at the head). At most http_admin_max_connections() are open. */
#define HTTP_ADMIN_MAX_CONNECTIONS 64 /* admin connections open at once, at most */
#define HTTP_ADMIN_FD_SHARE 8         /* and at most 1/8 of RLIMIT_NOFILE */
#define HTTP_ADMIN_HEAD_MS 3000
#define HTTP_ADMIN_IDLE_MS 10000
#define HTTP_ADMIN_MAX_HEAD (8 * 1024)

struct http_limits {
	uint64_t max_header_size;   /* request line and headers, bytes (431) */
	uint64_t max_request_body;  /* body bytes after de-chunking (413); 0: no limit */
	uint32_t max_connections;   /* open app connections; admin ones not counted */
	uint32_t header_timeout_ms; /* the whole head, from its first byte (408) */
	/* the whole body, from the end of the head (408); for a piped body
	 * (http_body_stream()), each stall of the app while braced wants bytes */
	uint32_t body_timeout_ms;
	uint32_t idle_timeout_ms;       /* keep-alive wait for the next request (quiet close) */
	uint32_t admin_max_connections; /* open admin connections: http_admin_max_connections() */
};

/* The admin connection cap for a descriptor limit of nofile (RLIMIT_NOFILE's
 * soft limit): nofile / HTTP_ADMIN_FD_SHARE, at least 1 and at most
 * HTTP_ADMIN_MAX_CONNECTIONS, so admin clients never hold the descriptors
 * app connections and upstream sockets need. */
uint32_t http_admin_max_connections(uint64_t nofile);

/* A header as received or to send: name and value with their lengths. One
 * to send needs no NUL; a received one has a NUL right after its name and
 * after its value, so both read as strings. Received names are tokens;
 * received values have no CTL but HTAB (obs-text bytes 0x80-0xff are kept)
 * and no leading or trailing whitespace. */
struct http_header {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

/* A parsed request. Every pointer is owned by the server and valid until
 * http_reply(), http_stream_end() or http_stream_abort() is called for it. */
struct http_request {
	const char *method; /* upper case, NUL-terminated ("GET") */
	const char *target; /* request-target as sent, NUL-terminated */
	size_t target_len;
	int version_minor;                 /* HTTP/1.<version_minor>: 0 or 1 */
	int keep_alive;                    /* the client allows another request after this one */
	const struct http_header *headers; /* in the order received */
	size_t nheaders;
	const char *body; /* de-chunked; NULL when body_len is 0 */
	size_t body_len;
	/* At on_head (http_server_set_head_handler()): the Content-Length, or
	 * -1 for a chunked body; at on_request, the body_len. */
	int64_t body_length;
	int expect_continue;    /* the app sent Expect: 100-continue (HTTP/1.1 only) */
	int gone;               /* the client went away; a reply is dropped */
	int admin;              /* arrived on an admin listener */
	void *user;             /* free for the caller, NULL at first */
	struct http_conn *conn; /* private */
};

enum http_listener_kind {
	HTTP_LISTENER_APP, /* counted against max_connections */
	/* counted against admin_max_connections, under the HTTP_ADMIN_* limits;
	 * accepts from a reserve of descriptors. At the cap a new connection
	 * closes the least recently used admin connection not being answered
	 * (or is closed itself when every one is). */
	HTTP_LISTENER_ADMIN,
};

struct http_counters {
	uint32_t connections;       /* open app connections */
	uint32_t admin_connections; /* open admin connections */
	uint64_t accepted;          /* connections accepted, both kinds */
	uint64_t requests;          /* requests handed to on_request */
	uint32_t admin_limit;       /* admin_max_connections in effect */
	uint64_t admin_evicted;     /* admin connections closed to make room for a new one */
	uint64_t admin_refused;     /* admin connections closed at once: no room */
	uint64_t bad_requests;      /* answered 400 by the server */
	uint64_t not_implemented;   /* answered 501 by the server (a transfer coding) */
	uint64_t too_large;         /* answered 413 or 431 by the server */
	uint64_t timeouts;          /* answered 408 by the server */
	uint64_t idle_closed;       /* idle keep-alive connections closed */
	uint64_t gone;              /* clients gone before their reply */
	uint64_t accept_paused;     /* times accepting paused at max_connections */
	uint64_t fd_shortage;       /* accepts that failed with EMFILE/ENFILE */
	uint32_t writing;           /* replies waiting for their client to read them */
	uint32_t streaming;         /* streamed replies begun and not ended */
};

/* Called once per complete request (head and body), or, as on_head, once
 * per request whose body is still to come. The callee owns the
 * duty to call http_reply(req, ...) exactly once, or to stream the answer
 * (http_stream_begin() then http_stream_end() or _abort()), now or later,
 * even after on_gone. It must not free req. */
typedef void (*http_request_cb)(struct http_request *req, void *arg);
/* Called when the client of a request not yet answered goes away (EOF,
 * reset), or of a streamed answer not yet ended (also a write error, or a
 * reader that took nothing for idle_timeout_ms while bytes waited); req->gone
 * is set. Cancel the work, then still http_reply() or end the stream. */
typedef void (*http_gone_cb)(struct http_request *req, void *arg);

/* Called, from the event loop and never inside an http_stream_*() call,
 * when the bytes a stream has queued fall to its low_water after having
 * been above it: once per such crossing. */
typedef void (*http_drain_cb)(struct http_request *req, void *arg);

/* Called, from the event loop and never inside an http_body_*() call,
 * when body bytes arrived for a request whose body is piped
 * (http_body_stream()), when its body ended, or when it failed; also when
 * a body held by http_body_hold() failed. Calls may be coalesced: read
 * http_body_buffered() and http_body_state(). */
typedef void (*http_body_cb)(struct http_request *req, void *arg);

/* Creates a server on base (borrowed, must outlive the server) with a copy
 * of limits. on_request is required; on_gone may be NULL; arg is passed to
 * both. Returns NULL on OOM or when limits has a 0 size, timeout or
 * connection cap.
 *
 * Every request head is held to RFC 9112 before on_request sees it:
 * exactly one SP between method, target and version; header names are
 * tokens, no obs-fold, no CTL but HTAB in a value; Content-Length with
 * Transfer-Encoding, differing or malformed Content-Length, a
 * Transfer-Encoding not ending in chunked (or chunked twice, or on
 * HTTP/1.0), an HTTP/1.1 request without Host, two Host fields, and a
 * chunk size that overflows 63 bits are 400 bad_request; a transfer
 * coding other than chunked before it ("gzip, chunked") is 501
 * not_implemented. Each such answer closes the connection. */
struct http_server *http_server_new(struct event_base *base, const struct http_limits *limits,
				    http_request_cb on_request, http_gone_cb on_gone, void *arg);

/* Streams are watched for low water and on_drain (with the arg of
 * http_server_new()) is called as http_drain_cb says; NULL stops it. */
void http_server_set_drain_handler(struct http_server *srv, http_drain_cb on_drain);

/* Dispatch at the head. With on_head set (and on_body, both required;
 * NULL for both turns it off for requests started from now on), an app
 * request with a body (Content-Length > 0 or chunked) goes to on_head (with
 * the arg of http_server_new()) as soon as its head is read and checked,
 * before its body, under on_request's duty to answer; a request without
 * one still goes to on_request, complete, as before. A Content-Length over
 * max_request_body is still refused at the head (413) and never reaches
 * on_head. Reading the body stops at on_head: the caller then calls
 * exactly one of http_body_hold() or http_body_stream(), or answers at
 * once. An answer (http_reply() or http_stream_begin()) given before the
 * body was read whole carries Connection: close, sends no 100 Continue,
 * and after it the connection reads and discards what the app still sends
 * (bounded) and closes. The next pipelined request is read only after both
 * the body's end and the answer's end. Admin requests never come here. */
void http_server_set_head_handler(struct http_server *srv, http_request_cb on_head,
				  http_body_cb on_body);

/* Requests read from admin listeners go to on_admin (with arg) instead of
 * on_request, under the same duty; with none (NULL) they get 404. */
void http_server_set_admin_handler(struct http_server *srv, http_request_cb on_admin, void *arg);

/* Serves fd, a listening stream socket (TCP or unix) bound by the caller.
 * The server takes fd, makes it non-blocking and closes it in
 * http_server_free(). Returns 0, or a negative errno (fd is then closed). */
int http_server_add_listener(struct http_server *srv, int fd, enum http_listener_kind kind);

/* Serves fd, a connected stream socket (a socketpair end, or a connection
 * accepted elsewhere), like an accepted one of kind. The server takes fd,
 * makes it non-blocking and closes it. Returns 0, -EBUSY when an app
 * connection would pass max_connections, or another negative errno; fd is
 * closed on failure. */
int http_server_add_connection(struct http_server *srv, int fd, enum http_listener_kind kind);

/* Replaces the limits for connections accepted and requests started from
 * now on (a reload); max_connections applies at once. */
void http_server_set_limits(struct http_server *srv, const struct http_limits *limits);

/* Stops or resumes accepting on every listener (drain on SIGTERM). */
void http_server_pause_accepting(struct http_server *srv, int paused);

/* Copies the counters into *ret. */
void http_server_counters(const struct http_server *srv, struct http_counters *ret);

/* Closes the listeners and every connection and frees them; requests not
 * answered yet are freed too, so answer (or forget) them first. NULL is a
 * no-op. */
void http_server_free(struct http_server *srv);

/* Answers req with status (200-599) and the caller's headers (borrowed; the
 * server adds Content-Length and Connection; a Content-Length of the
 * caller's is dropped, but for HEAD, where it replaces the server's). body (body_len bytes, may be
 * NULL when 0) is taken: the server free()s it once written, without copying
 * it. The body is not sent for HEAD, 204 or 304. Headers whose name is not a
 * token or whose value holds CR, LF or NUL, or a status out of range, turn
 * the reply into 500 internal and return -EINVAL. req is invalid afterwards,
 * whatever the result. Writing may raise SIGPIPE: the process ignores it.
 * Returns 0 or a negative errno. */
int http_reply(struct http_request *req, int status, const struct http_header *headers,
	       size_t nheaders, void *body, size_t body_len);

/* http_reply() with the bytes of body as the answer's body: they are moved
 * into the connection's output (libevent's chains change hands, nothing is
 * copied), so body is left empty; body itself stays the caller's. */
int http_reply_buffer(struct http_request *req, int status, const struct http_header *headers,
		      size_t nheaders, struct evbuffer *body);

/* Most bytes a stream may have queued (head, body and chunk framing not
 * yet taken by the socket): the caller keeps far below it (its own
 * stream_buffer); a write past it is refused. */
#define HTTP_STREAM_QUEUED_MAX (16 * 1024 * 1024)

struct http_stream_opts {
	/* >= 0: the body's Content-Length. -1: unknown, sent chunked to an
	 * HTTP/1.1 app and delimited by the connection's close to an HTTP/1.0
	 * one (which then is not kept alive). */
	int64_t length;
	/* on_drain comes when queued falls to this after having been above */
	size_t low_water;
};

/* Begins a streamed answer to req: the head (status 200-599, the caller's
 * headers, borrowed, under http_reply()'s rules, and the framing of
 * o->length, borrowed; NULL is {-1, 0}) is queued and written at once.
 * HEAD, 204 and 304 get the head alone: what is written is dropped. From
 * then on the app's pipelined requests wait, its leaving comes to on_gone
 * at once, and a reader is cut only when it takes nothing for
 * idle_timeout_ms while bytes wait (the deadline restarts on every write
 * that makes progress). Returns 0; -EPIPE when the app is gone, or
 * -ENOMEM (the connection is then closed): end it anyway; -EINVAL for a
 * bad status, header or length, or a reply already begun, and then nothing
 * is sent and req is still to be answered. After any other result, req
 * stays valid until exactly one http_stream_end() or http_stream_abort(). */
int http_stream_begin(struct http_request *req, int status, const struct http_header *headers,
		      size_t nheaders, const struct http_stream_opts *o);

/* Queues n bytes of buf (copied) as the next piece of the body and writes
 * what the socket takes now. Returns 0; -EPIPE once the app is gone;
 * -EMSGSIZE past the Content-Length or -ENOBUFS past
 * HTTP_STREAM_QUEUED_MAX, queuing nothing. */
int http_stream_write(struct http_request *req, const void *buf, size_t n);

/* The bytes queued for req's app and not yet taken by the socket. */
size_t http_stream_queued(const struct http_request *req);

/* Ends the body (the last chunk when chunked); the connection then goes on
 * to the next pipelined request as after http_reply(), or closes when the
 * body is delimited by the close. A body short of its Content-Length is
 * aborted instead (-EMSGSIZE). Returns 0 or -EPIPE when the app is gone.
 * req is invalid afterwards, whatever the result. */
int http_stream_end(struct http_request *req);

/* Cuts the stream short: what is queued is still written (each stall
 * bounded by idle_timeout_ms), then the connection closes so the app sees
 * the truncation: fewer bytes than the Content-Length, no last chunk, or a
 * reset (SO_LINGER {1, 0}) for a body delimited by the close. Pipelined
 * requests are dropped. req is invalid afterwards. Returns 0. */
int http_stream_abort(struct http_request *req);

/* ---- request bodies, after on_head ---- */

/* The most body bytes one read of the app adds to a piped body: the
 * buffer may pass its room by less than this. */
#define HTTP_BODY_SLICE (16 * 1024)

/* Reads the body of req, announced to on_head, whole, as a server without
 * a head handler does (max_request_body, body_timeout_ms for the whole
 * body from now on), then calls on_request with req->body and body_len
 * set (from the event loop, never inside this call). A body that fails
 * (framing 400, limit 413, deadline 408) comes to on_body instead, in
 * HTTP_BODY_FAILED, for the caller to answer. Sends the 100 Continue the
 * app asked for. Returns 0; -EPIPE when the app is gone (on_gone came:
 * answer it); -EINVAL when req's body is not waiting for this choice. */
int http_body_hold(struct http_request *req);

/* Pipes the body of req, announced to on_head: the server reads while
 * fewer than room unread body bytes are buffered (so at most room plus one
 * read, HTTP_READ_CHUNK, ever are) and calls on_body as bytes come, at the
 * end and on a failure. room 0 reads nothing yet. The first room that is
 * not 0 sends the 100 Continue the app asked for. body_timeout_ms bounds
 * each stall of the app while the server wants bytes (room above what is
 * buffered); while the caller holds room at 0 or the buffer is full, no
 * stall is counted. Returns 0; -EPIPE when the app is gone (on_gone came:
 * answer it); -EINVAL when req's body is not waiting for this choice. */
int http_body_stream(struct http_request *req, size_t room);

/* Copies up to n of the piped body bytes buffered for req into buf (n
 * bytes, borrowed) and returns how many: 0 when none are buffered (see
 * http_body_state() for why). Taking bytes may let the server read again
 * (from the event loop, never inside this call). */
size_t http_body_read(struct http_request *req, char *buf, size_t n);

/* The piped body bytes buffered for req and not yet read. */
size_t http_body_buffered(const struct http_request *req);

enum http_body_state {
	HTTP_BODY_MORE,   /* more body bytes are to come */
	HTTP_BODY_END,    /* the body ended: what is buffered is the rest of it */
	HTTP_BODY_FAILED, /* the body broke off: it will never be whole */
};

/* Where the body of req is. For HTTP_BODY_FAILED, *ret_code (may be
 * NULL) gets the problem the server would have answered: bad_request for
 * a framing error, request_timeout for a stall or deadline,
 * payload_too_large past max_request_body (internal when memory ran out);
 * the caller answers it, and the connection closes after the answer. A
 * request that came to on_request has its body whole: HTTP_BODY_END. */
enum http_body_state http_body_state(const struct http_request *req, enum problem_code *ret_code);

/* Changes the room of a piped body (http_body_stream()); 0 stops reading,
 * for instance while the caller waits for memory. */
void http_body_set_room(struct http_request *req, size_t room);

/* Case-insensitive lookup of the first header called name in req; NULL when
 * absent. The result is borrowed from req. */
const struct http_header *http_request_header(const struct http_request *req, const char *name);

#endif
