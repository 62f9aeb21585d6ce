/* The Redis client: one command connection and one subscriber connection
 * through hiredis on the event loop. Every call is timed: a watch timer,
 * armed only while calls wait, abandons the connection when the oldest
 * waits longer than the timeout, and a jittered backoff reconnects. Replies
 * are read with reply functions of its own that hold them to the limits. */
#include "redis.h"
#include "clock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>

#include "rng.h"

/* Calls waiting for their reply on the command connection; beyond it new
 * calls are refused (-ENOBUFS) until replies come. */
#define REDIS_MAX_PENDING 4096
/* What a reply may hold at all: longer strings (errors included), arrays
 * of more elements, an array inside an array, or a reply on the command
 * connection that no call waits for drop the connection (a hostile or
 * confused server; hiredis would buffer or abort). */
#define REDIS_MAX_REPLY_STRING 1024
#define REDIS_MAX_REPLY_ELEMENTS 8
/* Bytes of an unfinished reply held before the connection is dropped
 * (hiredis would buffer a bulk string of any announced length); one read
 * more (16 KiB) may come on top. */
#define REDIS_MAX_BUFFERED 65536

/* One connection and the send times of its calls in reply order. */
struct redis_conn {
	redisAsyncContext *ac;
	uint64_t sent_us[REDIS_MAX_PENDING];
	size_t head, n;
	int ready;
	int pushes;          /* the subscriber: replies come unasked */
	const char *refused; /* why a reply was refused (static), or NULL */
};

struct redis {
	struct event_base *base;
	struct rng *rng; /* borrowed */
	struct redis_handlers h;
	struct redis_setting set; /* its pointers borrowed; set.password is a secret */
	int on;                   /* between redis_connect() and redis_stop() */
	struct redis_conn cmd, sub;
	uint64_t sub_wait_us; /* SUBSCRIBE sent, not confirmed yet; 0 when none */
	int up;               /* both connections work */
	unsigned attempt;     /* reconnects since the last success */
	/* One-shot timers: the reconnect, the deadline of the oldest call
	 * (armed while calls wait). */
	struct event *retry_timer, *watch_timer;
};

/* ---- replies: hiredis's reply objects, within limits ---- */

/* The reader's privdata is the connection: on the command connection a
 * reply must answer a call waiting. A NULL return makes hiredis drop the
 * connection; c->refused says why. */
static redisReply *reply_new(const redisReadTask *task, int type)
{
	struct redis_conn *c = task->privdata;
	redisReply *r;

	if (!task->parent && !c->pushes && c->n == 0) {
		c->refused = "a reply no call waits for";
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->type = type;
	if (task->parent) {
		redisReply *parent = task->parent->obj;

		parent->element[task->idx] = r;
	}
	return r;
}

static void *reply_string(const redisReadTask *task, char *str, size_t len)
{
	redisReply *r;

	if (len > REDIS_MAX_REPLY_STRING) {
		((struct redis_conn *)task->privdata)->refused = "a reply string over its limit";
		return NULL;
	}
	if (!(r = reply_new(task, task->type)))
		return NULL;
	r->str = malloc(len + 1);
	if (!r->str) {
		if (task->parent)
			((redisReply *)task->parent->obj)->element[task->idx] = NULL;
		free(r);
		return NULL;
	}
	memcpy(r->str, str, len);
	r->str[len] = '\0';
	r->len = len;
	return r;
}

static void *reply_array(const redisReadTask *task, int elements)
{
	redisReply *r;

	if (task->parent || elements < 0 || elements > REDIS_MAX_REPLY_ELEMENTS) {
		((struct redis_conn *)task->privdata)->refused = "a nested or long array reply";
		return NULL;
	}
	if (!(r = reply_new(task, REDIS_REPLY_ARRAY)))
		return NULL;
	if (elements > 0) {
		r->element = calloc((size_t)elements, sizeof(*r->element));
		if (!r->element) {
			free(r);
			return NULL;
		}
	}
	r->elements = (size_t)elements;
	return r;
}

static void *reply_integer(const redisReadTask *task, long long value)
{
	redisReply *r = reply_new(task, REDIS_REPLY_INTEGER);

	if (r)
		r->integer = value;
	return r;
}

static void *reply_nil(const redisReadTask *task)
{
	return reply_new(task, REDIS_REPLY_NIL);
}

static redisReplyObjectFunctions reply_functions = {
	.createString = reply_string,
	.createArray = reply_array,
	.createInteger = reply_integer,
	.createNil = reply_nil,
	.freeObject = freeReplyObject,
};

/* ---- connection state ---- */

static void drop_conn(struct redis_conn *c)
{
	redisAsyncContext *ac = c->ac;

	c->ac = NULL;
	c->head = c->n = 0;
	c->ready = 0;
	c->refused = NULL;
	/* Pending callbacks run with no reply and see a context not ours. */
	if (ac)
		redisAsyncFree(ac);
}

static void disconnect(struct redis *r)
{
	drop_conn(&r->cmd);
	drop_conn(&r->sub);
	r->sub_wait_us = 0;
	if (r->watch_timer)
		event_del(r->watch_timer);
}

/* Something failed (what, why): drop both connections, tell the user, and
 * reconnect after a jittered backoff. */
static void go_down(struct redis *r, enum redis_failure what, const char *why)
{
	struct timeval tv;

	disconnect(r);
	r->h.down(r->h.arg, what, why);
	r->up = 0;
	clock_ms_to_tv(r->h.backoff_ms(r->attempt, r->rng), &tv);
	if (r->attempt < 16)
		r->attempt++;
	event_add(r->retry_timer, &tv);
}

static void maybe_up(struct redis *r)
{
	if (r->up || !r->cmd.ready || !r->sub.ready)
		return;
	r->up = 1;
	r->attempt = 0;
	r->h.up(r->h.arg);
}

/* ---- timed calls ---- */

/* Arms the watch timer for the earliest deadline of a waiting call (the
 * oldest on the command connection, or the SUBSCRIBE), or stops it when
 * nothing waits: an idle connection costs no wake-up. */
static void watch_arm(struct redis *r)
{
	uint64_t limit = (uint64_t)r->set.timeout_ms * 1000, due = UINT64_MAX, now;
	struct timeval tv;

	if (r->cmd.ac && r->cmd.n > 0)
		due = r->cmd.sent_us[r->cmd.head] + limit;
	if (r->sub_wait_us && r->sub_wait_us + limit < due)
		due = r->sub_wait_us + limit;
	if (due == UINT64_MAX) {
		event_del(r->watch_timer);
		return;
	}
	now = clock_now_us();
	due = due > now ? due - now + 1 : 1;
	clock_us_to_tv(due, &tv);
	event_add(r->watch_timer, &tv);
}

static void watch(evutil_socket_t fd, short what, void *arg)
{
	struct redis *r = arg;
	uint64_t now = clock_now_us(), limit = (uint64_t)r->set.timeout_ms * 1000;

	(void)fd;
	(void)what;
	if ((r->cmd.n > 0 && now - r->cmd.sent_us[r->cmd.head] > limit) ||
	    (r->sub_wait_us && now - r->sub_wait_us > limit))
		go_down(r, REDIS_FAILED_TIMEOUT, "no answer within the timeout");
	else
		watch_arm(r);
}

/* Sends one command on the command connection, timed; privdata goes to
 * fn with the reply. */
static int send_timed(struct redis *r, redisCallbackFn *fn, void *privdata, const char *fmt,
		      va_list ap)
{
	struct redis_conn *c = &r->cmd;

	if (!c->ac)
		return -ENOTCONN;
	if (c->n >= REDIS_MAX_PENDING)
		return -ENOBUFS;
	if (redisvAsyncCommand(c->ac, fn, privdata, fmt, ap) != REDIS_OK)
		return -EIO;
	c->sent_us[(c->head + c->n) % REDIS_MAX_PENDING] = clock_now_us();
	if (c->n++ == 0)
		watch_arm(r);
	return 0;
}

/* A reply came on the command connection: replies come in the order the
 * calls were sent, so it is the oldest call's. */
static void reply_came(struct redis *r)
{
	if (r->cmd.n > 0) {
		r->cmd.head = (r->cmd.head + 1) % REDIS_MAX_PENDING;
		r->cmd.n--;
		watch_arm(r);
	}
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct redis *r = ac->data;

	if (ac != r->cmd.ac) {
		r->h.reply(privdata, NULL); /* a dropped connection's leftovers */
		return;
	}
	reply_came(r);
	r->h.reply(privdata, reply);
	if (!reply)
		go_down(r, REDIS_FAILED_CONNECT,
			r->cmd.refused ? r->cmd.refused : "connection lost");
}

int redis_vcommand(struct redis *r, void *cmd, const char *fmt, va_list ap)
{
	return send_timed(r, on_reply, cmd, fmt, ap);
}

/* The replies to AUTH, SELECT and PING while connecting. */
static void on_hello(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct redis *r = ac->data;
	const redisReply *rep = reply;

	(void)privdata;
	if (ac != r->cmd.ac)
		return;
	reply_came(r);
	if (!rep) {
		go_down(r, REDIS_FAILED_CONNECT,
			r->cmd.refused ? r->cmd.refused : "connection lost");
		return;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		/* AUTH or SELECT refused: say which, never the password. */
		go_down(r, REDIS_FAILED_CONNECT, "Redis refused AUTH, SELECT or PING");
		return;
	}
	if (rep->type == REDIS_REPLY_STATUS && rep->len == 4 && memcmp(rep->str, "PONG", 4) == 0) {
		r->cmd.ready = 1;
		maybe_up(r);
	}
}

static void hello(struct redis *r, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = send_timed(r, on_hello, NULL, fmt, ap);
	va_end(ap);
	if (rc < 0)
		r->h.unsent(r->h.arg, rc);
}

/* ---- the subscriber ---- */

static void on_push(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct redis *r = privdata;
	const redisReply *rep = reply, *kind, *payload;

	if (ac != r->sub.ac)
		return;
	if (!rep) {
		go_down(r, REDIS_FAILED_SUBSCRIBE, "subscriber connection lost");
		return;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		go_down(r, REDIS_FAILED_SUBSCRIBE, "Redis refused AUTH or SUBSCRIBE");
		return;
	}
	if (rep->type == REDIS_REPLY_STATUS) /* AUTH's OK */
		return;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3) {
		r->h.message(r->h.arg, NULL, 0);
		return;
	}
	kind = rep->element[0];
	payload = rep->element[2];
	if (kind->type != REDIS_REPLY_STRING) {
		r->h.message(r->h.arg, NULL, 0);
		return;
	}
	if (kind->len == 9 && memcmp(kind->str, "subscribe", 9) == 0) {
		r->sub_wait_us = 0;
		watch_arm(r);
		r->sub.ready = 1;
		maybe_up(r);
		return;
	}
	if (kind->len != 7 || memcmp(kind->str, "message", 7) != 0)
		return;
	if (payload->type != REDIS_REPLY_STRING) {
		r->h.message(r->h.arg, NULL, 0);
		return;
	}
	r->h.message(r->h.arg, payload->str, payload->len);
}

/* ---- connecting ---- */

/* Forgets ac, which hiredis frees once its callback returns. Returns 1
 * when ac was one of r's connections, 0 for a stale one. */
static int forget_context(struct redis *r, const redisAsyncContext *ac)
{
	if (ac == r->cmd.ac)
		r->cmd.ac = NULL;
	else if (ac == r->sub.ac)
		r->sub.ac = NULL;
	else
		return 0;
	return 1;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct redis *r = ac->data;

	if (status == REDIS_OK || !r || !forget_context(r, ac))
		return;
	go_down(r, REDIS_FAILED_CONNECT, ac->errstr[0] ? ac->errstr : "cannot connect");
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct redis *r = ac->data;

	(void)status;
	if (!r || !forget_context(r, ac))
		return;
	if (r->cmd.refused || r->sub.refused)
		go_down(r, REDIS_FAILED_CONNECT, r->cmd.refused ? r->cmd.refused : r->sub.refused);
	else
		go_down(r, REDIS_FAILED_CONNECT, "connection closed");
}

/* hiredis's libevent read handler, behind a bound on the unfinished reply
 * it holds. */
static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	redisLibeventEvents *e = arg;
	redisAsyncContext *ac = e->context;
	const redisReader *rd = ac->c.reader;
	struct redis *r = ac->data;

	(void)fd;
	(void)what;
	if (r && rd && rd->len - rd->pos > REDIS_MAX_BUFFERED &&
	    (ac == r->cmd.ac || ac == r->sub.ac)) {
		go_down(r, REDIS_FAILED_CONNECT, "a reply over its limit"); /* frees e */
		return;
	}
	redisAsyncHandleRead(ac);
}

static redisAsyncContext *open_ctx(struct redis *r, struct redis_conn *c)
{
	redisAsyncContext *ac = r->set.unix_socket ? redisAsyncConnectUnix(r->set.path)
						   : redisAsyncConnect(r->set.host, r->set.port);

	if (!ac)
		return NULL;
	if (ac->err) {
		redisAsyncFree(ac);
		return NULL;
	}
	ac->data = r;
	ac->c.reader->fn = &reply_functions;
	ac->c.reader->privdata = c;
	c->pushes = c == &r->sub;
	c->refused = NULL;
	if (redisLibeventAttach(ac, r->base) != REDIS_OK || !ac->ev.data) {
		redisAsyncFree(ac);
		return NULL;
	}
	{
		redisLibeventEvents *e = ac->ev.data;

		event_del(e->rev);
		event_assign(e->rev, r->base, ac->c.fd, EV_READ, on_readable, e);
		event_add(e->rev, NULL);
	}
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	return ac;
}

static void connect_now(struct redis *r)
{
	if (!r->on)
		return;
	r->cmd.ac = open_ctx(r, &r->cmd);
	r->sub.ac = r->cmd.ac ? open_ctx(r, &r->sub) : NULL;
	if (!r->cmd.ac || !r->sub.ac) {
		go_down(r, REDIS_FAILED_CONNECT, "cannot open a connection");
		return;
	}
	if (r->set.password && r->set.username) {
		hello(r, "AUTH %s %s", r->set.username, r->set.password);
		redisAsyncCommand(r->sub.ac, on_push, r, "AUTH %s %s", r->set.username,
				  r->set.password);
	} else if (r->set.password) {
		hello(r, "AUTH %s", r->set.password);
		redisAsyncCommand(r->sub.ac, on_push, r, "AUTH %s", r->set.password);
	}
	if (r->set.db) {
		char db[16];

		snprintf(db, sizeof(db), "%u", r->set.db);
		hello(r, "SELECT %s", db);
	}
	hello(r, "PING");
	if (redisAsyncCommand(r->sub.ac, on_push, r, "SUBSCRIBE %s", r->set.channel) != REDIS_OK) {
		go_down(r, REDIS_FAILED_SUBSCRIBE, "cannot subscribe");
		return;
	}
	r->sub_wait_us = clock_now_us();
	watch_arm(r);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	connect_now(arg);
}

/* ---- the client ---- */

struct redis *redis_new(struct event_base *base, struct rng *rng, const struct redis_handlers *h)
{
	struct redis *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->base = base;
	r->rng = rng;
	r->h = *h;
	r->retry_timer = evtimer_new(base, on_retry, r);
	r->watch_timer = evtimer_new(base, watch, r);
	if (!r->retry_timer || !r->watch_timer) {
		redis_free(r);
		return NULL;
	}
	return r;
}

void redis_connect(struct redis *r, const struct redis_setting *s)
{
	r->set = *s;
	r->on = 1;
	connect_now(r);
}

void redis_stop(struct redis *r)
{
	disconnect(r);
	event_del(r->retry_timer);
	r->on = 0;
	r->up = 0;
	r->attempt = 0;
	memset(&r->set, 0, sizeof(r->set));
}

void redis_free(struct redis *r)
{
	if (!r)
		return;
	disconnect(r);
	if (r->retry_timer)
		event_free(r->retry_timer);
	if (r->watch_timer)
		event_free(r->watch_timer);
	free(r);
}
