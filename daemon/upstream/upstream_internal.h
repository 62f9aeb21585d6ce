/* Private to the upstream modules (upstream.c, upstream_pool.c, call.c):
 * struct upstream, struct upstream_pool, struct call and struct sockctx,
 * the clocks they read, and the verbs one piece offers the others. Nothing
 * outside them includes it; the API is upstream.h. */
#ifndef BRACED_UPSTREAM_INTERNAL_H
#define BRACED_UPSTREAM_INTERNAL_H

#include "upstream.h"
#include "chunked.h"
#include "clock.h"
#include "headers.h"
#include "registry.h"
#include "strbuf.h"
#include "window.h"

#include <stdint.h>
#include <sys/queue.h>
#include <time.h>
#include <curl/curl.h>
#include <event2/event.h>

/* Easy handles kept for reuse when idle. */
#define UPSTREAM_FREE_HANDLES 256
/* Seconds over which the peak of transfers in flight keeps their
 * connections: a steady load never closes a connection it will need again. */
#define UPSTREAM_PEAK_WINDOW_S 5
_Static_assert(UPSTREAM_PEAK_WINDOW_S <= WINDOW_SLOTS_MAX, "the peak seconds fit the window ring");

enum call_state { CALL_WAITING, CALL_RUNNING, CALL_DONE };
/* Where the body of a running call goes. */
enum call_sink {
	SINK_WINDOW, /* into body, up to p.window (then paused): not decided */
	SINK_HOLD,   /* into body, up to p.max_response_body */
	SINK_STREAM, /* to sink_fn */
};
enum io_phase { PHASE_CONNECT, PHASE_WRITE, PHASE_READ };

/* "::" + "[IPv6]:PORT" + NUL */
#define UPSTREAM_CONNECT_TO_MAX 64

struct call {
	struct upstream *up;
	struct upstream_pool *pool;
	enum call_state state;
	struct call_params p;
	call_done_fn done;
	void *arg;
	CURL *easy;
	struct event *timer;         /* pool wait, then read/write idle */
	struct event *attempt_timer; /* the attempt cap; NULL without one */
	enum io_phase phase;
	uint64_t last_io_ms; /* last progress, for the idle timers */
	/* CURLPAUSE_RECV|SEND: braced's mirror of the pause bits libcurl holds
	 * for this transfer (curl_easy_pause sets them all at once). */
	unsigned paused;
	unsigned pause_asked;  /* CURLPAUSE_RECV: the next write callback pauses */
	uint64_t paused_at_ms; /* when the current phase's direction was paused */
	uint64_t start_us;     /* when it was started, for durations and the attempt cap */
	uint64_t begin_us;     /* when the pool let it run; 0 while waiting */
	uint64_t elapsed_us;
	size_t body_sent;
	int headers_done; /* the blank line ended the headers: trailers follow */
	struct headers_check check;
	const char *malformed; /* static: why the answer was refused, or NULL */
	struct sockctx *sock;  /* the socket libcurl last reported for this call */
	int too_large;
	int failed_start;
	unsigned prereqs;   /* connections libcurl readied for this transfer */
	int resend_refused; /* libcurl tried to send the request again */
	enum attempt_end outcome;
	enum attempt_limit timeout;
	int status;
	enum call_sink sink;
	call_sink_fn sink_fn;
	void *sink_arg;
	int64_t head_length; /* the final head's Content-Length, -1 none */
	uint64_t body_taken; /* body bytes of an answer not chunked taken so far */
	int head_queued;     /* in up->heads, to be reported */
	int head_waits;      /* an error head, reported once error_prefix bytes came */
	int app_failed;      /* read_body said the app's body failed */
	int unpause_send;    /* an early answer came while the upload was paused */
	int chunked;         /* the answer is chunked: dechunk decodes it */
	struct chunked dechunk;
	char *scratch; /* decoded data of one block */
	size_t scratch_size;
	TAILQ_ENTRY(call) head_link;
	struct evbuffer *body;
	struct strbuf headers;
	struct curl_slist *send_headers; /* nodes over p.headers' lines, one allocation */
	/* CURLOPT_CONNECT_TO's one entry, "::ADDR:PORT" (any host, any port:
	 * the handle has one URL); p.connect_to points at connect_to + 2. */
	struct curl_slist connect_node;
	char connect_to[UPSTREAM_CONNECT_TO_MAX];
	char errbuf[CURL_ERROR_SIZE];
	TAILQ_ENTRY(call) link; /* in its pool's waiting or running queue */
};

TAILQ_HEAD(call_queue, call);

struct upstream_pool {
	struct registry_entry entry; /* the profile's name, in the list of pools */
	unsigned max, active;
	struct call_queue waiting;
	struct call_queue running; /* the active calls, so that freeing can end them */
};

struct upstream {
	struct event_base *base;
	CURLM *multi;
	/* TLS sessions, shared by every easy handle so that a new connection
	 * to an upstream resumes the session of an earlier one (libcurl keeps
	 * them per easy handle otherwise, and braced's handles are one-use
	 * before 8.1.0). NULL when libcurl refused it: full handshakes then. */
	CURLSH *share;
	struct event *curl_timer;
	CURL *free_handles[UPSTREAM_FREE_HANDLES];
	unsigned nfree;
	int reuse_handles; /* this libcurl may reuse easy handles safely */
	unsigned running;  /* transfers in the multi handle, all pools */
	long max_idle;     /* idle connections kept once the load goes away */
	/* The most transfers running in each second of the peak window. */
	struct window peak_window;
	unsigned peaks[UPSTREAM_PEAK_WINDOW_S];
	struct upstream_pool *pools;
	/* Calls whose head came in the last socket action, reported after
	 * its finished transfers (drain). */
	struct call_queue heads;
	LIST_HEAD(, sockctx) sockets;
	/* The contexts of the connection sockets braced opened for libcurl,
	 * indexed by descriptor (nowned slots; at most one per open file). */
	struct sockctx **owned;
	size_t nowned;
};

/* A socket libcurl asked about. A connection socket that braced opened
 * outlives its transfers: between them it stays parked in the loop,
 * watched for reading, so a reused connection costs no epoll_ctl. */
struct sockctx {
	struct upstream *up;
	struct event *ev;
	struct call *call; /* the transfer libcurl last reported on it, or NULL */
	curl_socket_t fd;
	short kind;   /* the events ev is added with; 0 when not added */
	int is_owned; /* opened by open_socket(): freed by close_socket() */
	int parked;   /* libcurl no longer watches it (between transfers) */
	int poisoned; /* sock_poison() ended its connection */
	LIST_ENTRY(sockctx) link;
};

/* ---- upstream.c ---- */

/* CURLOPT_OPENSOCKETFUNCTION and CURLOPT_CLOSESOCKETFUNCTION, with the
 * upstream as their data. */
curl_socket_t upstream_open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *addr);
int upstream_close_socket(void *arg, curl_socket_t s);

/* ---- upstream_pool.c ---- */

/* Sets CURLMOPT_MAXCONNECTS from the recent peak of transfers in flight. */
void upstream_update_max_connects(struct upstream *up);
/* Runs c (new, borrowed) at once when its pool has room, else queues it
 * behind the pool's waiters for at most its pool_ms. */
void upstream_pool_enter(struct call *c);
/* Takes c out of its pool: out of the waiters, or gives its slot to the
 * oldest waiter when it was running. */
void upstream_pool_leave(struct call *c);
/* Cancels the waiters and frees every pool of up. */
void upstream_pools_free(struct upstream *up);

/* ---- call.c ---- */

/* Starts c's transfer: takes a slot of its pool and adds an easy handle to
 * the multi; a refusal completes c from its timer. */
void call_begin(struct call *c);
/* libcurl finished c's transfer with rc: sets the outcome and calls done. */
void call_finish(struct call *c, CURLcode rc);
/* The call of easy (borrowed) when braced holds it paused, else NULL. */
struct call *call_paused_of(CURL *easy);

#endif
