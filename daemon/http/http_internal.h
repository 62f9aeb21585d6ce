/* Private to the http modules (http_listen.c, http_conn.c, http_parse.c,
 * http_reply.c): struct http_server and struct http_conn, the limits they are
 * sized by, and the verbs one piece of the server offers the others. Nothing
 * outside daemon/http_*.c includes it; the API is http.h. */
#ifndef BRACED_HTTP_INTERNAL_H
#define BRACED_HTTP_INTERNAL_H

#include "http.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <llhttp.h>

#include "problem.h"

#define HTTP_READ_CHUNK HTTP_BODY_SLICE /* one read(); a buffer shared by the server */
#define HTTP_ADMIN_RESERVE 4            /* descriptors held back for admin accepts */
#define HTTP_MAX_LISTENERS 16

/* Where a connection is. Every place is a state: an app connection is on
 * the server's idle list exactly in CONN_IDLE, a reply given inside the
 * caller's on_request is written from ev_defer exactly in CONN_DISPATCH, and
 * the struct is freed from ev_defer exactly in CONN_DEAD. What follows the
 * reply is enum conn_then; whether ev_read is added is a fact about that
 * event, kept beside the state (read_added). */
enum conn_state {
	CONN_IDLE,     /* waiting for the first byte of a request (app: on srv->idle) */
	CONN_HEAD,     /* reading the request head */
	CONN_BODY,     /* reading the request body */
	CONN_DISPATCH, /* inside the caller's on_request: a reply waits for ev_defer */
	CONN_WAIT,     /* the request is with the caller */
	CONN_WRITE,    /* the reply waits for the socket to drain */
	CONN_STREAM,   /* request read, reply streaming (http_stream_begin ... _end) */
	CONN_ABORT,    /* a stream cut short: flushing what is queued, then close */
	CONN_LINGER,   /* error reply sent, write side shut: discarding input */
	CONN_CLOSED,   /* descriptor closed; kept until the caller's reply */
	CONN_DEAD,     /* closed and nothing lent out: freed from ev_defer */
};

/* What the connection does once the reply is written. */
enum conn_then {
	CONN_THEN_NEXT,   /* keep-alive: read the next request */
	CONN_THEN_CLOSE,  /* close */
	CONN_THEN_LINGER, /* an error reply: shut the write side, drain input, close */
};

/* Who takes the body of a request in head mode (http_server_set_head_handler).
 * The body comes in while the answer may already go out, so it has a state
 * of its own beside conn_state; how far its bytes got is the public enum
 * http_body_state (body_end). */
enum conn_body {
	BODY_NONE,    /* no head mode, or no body: a body is read whole before the hand-over */
	BODY_HEAD,    /* head parsed: goes to on_head once llhttp_execute() returns */
	BODY_ASKED,   /* with on_head's caller, which chose neither hold nor stream: not read */
	BODY_HOLD,    /* http_body_hold(): read whole, then on_request */
	BODY_PIPE,    /* http_body_stream(): read into body_in while below body_room */
	BODY_DISCARD, /* answered before its end: the rest is read and dropped, bounded */
};

/* How the body of the reply being written is delimited on the wire. */
enum conn_frame {
	FRAME_WHOLE,   /* http_reply(): Content-Length of the whole body */
	FRAME_LENGTH,  /* streamed under the caller's Content-Length */
	FRAME_CHUNKED, /* streamed in chunks (HTTP/1.1 app) */
	FRAME_CLOSE,   /* streamed up to the close (HTTP/1.0 app) */
	FRAME_NONE,    /* streamed head without a body (HEAD, 204, 304) */
};

struct listener {
	struct http_server *srv;
	int fd;
	int tcp; /* an AF_INET or AF_INET6 socket: accepted ones get TCP_NODELAY */
	enum http_listener_kind kind;
	struct event *ev;
	int active;
};

struct hdr_off {
	uint32_t name_off, name_len, value_off, value_len;
};

struct http_conn {
	struct http_server *srv;
	const struct http_limits *lim; /* the server's app or admin limits */
	int fd;
	int admin;
	enum conn_state state;
	enum conn_then then; /* after the current reply */
	struct event ev_read, ev_write, ev_timer, ev_defer;
	/* EV_CLOSED on fd: added in CONN_STREAM while reading is off, so an
	 * app that leaves is seen without reading its pipelined bytes */
	struct event ev_closed;
	int read_added; /* ev_read is added (http_conn_read() says so) */
	llhttp_t parser;
	struct evbuffer *out;

	/* pipelined input not parsed yet */
	char *pending;
	size_t pending_off, pending_len, pending_cap;

	/* the head being parsed: target, names and values copied in arena */
	char *arena;
	size_t arena_len, arena_cap;
	uint64_t head_bytes; /* raw head bytes before the current read */
	/* Request line layout, as offsets from the request's first byte:
	 * where the method ends, the target starts and ends (RFC 9112 3: one
	 * SP between the three parts). feed_off is the offset of exec_begin. */
	uint64_t feed_off, method_end, target_start, target_end;
	uint64_t trailer_bytes;
	struct hdr_off *hoffs;
	size_t nh, hcap;
	struct http_header *headers;
	int in_value;
	uint32_t target_len;
	const char *exec_begin, *exec_end, *span_end;
	char last_nonws; /* last byte that is not SP/HTAB before the current read */
	enum problem_code error;
	const char *error_detail; /* static text for the problem, or NULL */
	int has_error;

	char *body;
	size_t body_len, body_cap;

	/* the body in head mode: body_len counts its bytes, body_in holds
	 * those not yet taken (a held one: all of it) */
	enum conn_body body_mode;
	enum http_body_state body_end;
	enum problem_code body_error; /* why, in HTTP_BODY_FAILED */
	struct evbuffer *body_in;
	size_t body_room;
	int body_due;         /* on_body (or on_request of a held body) waits for ev_defer */
	int continue_owed;    /* the app asked for 100 Continue and got neither it nor an answer */
	struct event ev_body; /* the held body's deadline, or a piped one's stall */

	/* the reply being written; the rest only while streaming */
	enum conn_frame frame;
	uint64_t stream_left; /* FRAME_LENGTH: body bytes still owed */
	size_t low_water;     /* on_drain once queued falls to it ... */
	int above_low;        /* ... after having been above it */
	int drain_due;        /* on_drain waits for ev_defer */

	struct http_request req;
	int req_out; /* req is with the caller until http_reply or a stream's end */

	TAILQ_ENTRY(http_conn) idle_link;  /* on srv->idle: an app connection in CONN_IDLE */
	TAILQ_ENTRY(http_conn) admin_link; /* open admin connections, least recently used first */
	TAILQ_ENTRY(http_conn) all_link;
};

TAILQ_HEAD(conn_list, http_conn);

struct http_server {
	struct event_base *base;
	struct http_limits limits;
	struct http_limits admin_limits; /* the HTTP_ADMIN_* ones and limits' admin cap */
	http_request_cb on_request;
	http_gone_cb on_gone;
	http_drain_cb on_drain;  /* NULL: streams are not watched for low water */
	http_request_cb on_head; /* NULL: bodies are read whole before on_request */
	http_body_cb on_body;
	void *arg;
	http_request_cb on_admin; /* requests of admin listeners; NULL: 404 */
	void *admin_arg;
	struct listener listeners[HTTP_MAX_LISTENERS];
	size_t nlisteners;
	int paused_full, paused_drain, paused_fd;
	struct event *fd_retry;
	int reserve[HTTP_ADMIN_RESERVE];
	struct conn_list idle;  /* app connections in CONN_IDLE, oldest first */
	struct conn_list admin; /* open admin connections, least recently used first */
	struct conn_list all;
	struct http_counters counters;
	char rbuf[HTTP_READ_CHUNK];
};

/* Case-insensitive: a's alen bytes equal the string b. Runs per header on
 * every request and reply, so it stays inline. */
static inline int ieq(const char *a, size_t alen, const char *b)
{
	return alen == strlen(b) && strncasecmp(a, b, alen) == 0;
}

/* ---- http_listen.c ---- */

/* Adds or removes the listeners' events after a pause changed. */
void http_listeners_sync(struct http_server *srv);
/* Reopens the descriptors of the admin reserve given out. */
void http_reserve_refill(struct http_server *srv);

/* ---- http_conn.c ---- */

/* Grows *buf (*cap bytes, both updated) to hold need bytes: from first,
 * doubling, at most max (need <= max). Returns 0, or -ENOMEM with *buf and
 * *cap untouched. */
int http_buf_reserve(char **buf, size_t *cap, size_t need, size_t first, size_t max);

/* A connection on fd (taken) of srv (borrowed), reading, in CONN_IDLE;
 * NULL on OOM (fd is then the caller's). Not yet counted (conn_count). */
struct http_conn *http_conn_new(struct http_server *srv, int fd, int admin);
/* Moves c to state; the deadline of the new state starts now. */
void http_conn_set_state(struct http_conn *c, enum conn_state state);
/* Adds (on) or removes ev_read, when it is not so already. */
void http_conn_read(struct http_conn *c, int on);
/* Ends the connection; the struct is freed from ev_defer, never under a
 * caller up the stack, and not before the caller's reply. */
void http_conn_close(struct http_conn *c);
/* The app of c left (EOF, reset, write error, a stalled reader): a request
 * with the caller is marked gone and told to on_gone, then c closes. Runs
 * from the loop only, never inside a call of the caller's. */
void http_conn_gone(struct http_conn *c);
/* Closes and frees c at once, its request with it; NULL is a no-op. */
void http_conn_free(struct http_conn *c);
/* Sets reading, the EV_CLOSED watch and the stall deadline of a body in
 * head mode after its room, buffer, pending input or state changed, and
 * has ev_defer feed pending input the body has room for. */
void http_body_flow(struct http_conn *c);
/* Notes that on_body (or on_request of a held body) is due, for ev_defer. */
void http_body_notify(struct http_conn *c);

/* ---- http_parse.c ---- */

/* Sets up c's parser on the server's llhttp settings. */
void http_parse_init(struct http_conn *c);
/* Forgets the request being parsed (head, headers, body) for the next one. */
void http_parse_reset(struct http_conn *c);
/* The body in head mode is still to be read by the server (held or piped,
 * not ended). */
int http_body_feeding(const struct http_conn *c);
/* The body in head mode breaks off with code: HTTP_BODY_FAILED, counted as
 * the server's own answer would be, input dropped, the caller told. */
void http_body_fail(struct http_conn *c, enum problem_code code);
/* An answer to c's request begins (whole when the request goes back to
 * the server with it): no 100 Continue any more, and a body not read whole
 * closes the connection after the answer; a whole answer or a held body
 * turns the rest of the body to BODY_DISCARD. */
void http_body_answered(struct http_conn *c, int whole);

/* ---- http_reply.c ---- */

/* Writes what c->out holds; once empty, goes on to the next request or closes. */
void http_reply_flush(struct http_conn *c);
/* Counts a refusal of the server's own (code) in srv's counters. */
void http_reply_count(struct http_server *srv, enum problem_code code);
/* Answers c's current (possibly partial) request with a problem and closes. */
void http_reply_fail(struct http_conn *c, enum problem_code code);
/* Closes c with its reply unfinished (a stall, an aborted stream): a body
 * delimited by the close ends with a reset, so it does not look whole. */
void http_reply_cut(struct http_conn *c);
/* The work ev_defer does for a connection in CONN_STREAM or CONN_ABORT:
 * tell on_gone of a write error, write, call on_drain. */
void http_stream_deferred(struct http_conn *c);

#endif
