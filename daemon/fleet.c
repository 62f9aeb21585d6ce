/* Fleet glue: one command connection and one subscriber connection to
 * Redis through hiredis on the event loop. The guards tell the fleet of
 * their changes through hooks (guard.h); the fleet publishes them and
 * applies what other instances publish. Every call is timed: a watch timer,
 * armed only while calls wait, abandons the connection when the oldest
 * waits longer than fleet.timeout, and a jittered backoff reconnects. The
 * budget sync runs only while a guard is busy (guard_fleet_busy): an idle
 * instance has nothing to push and decides no retry, so it sleeps.
 * With fleet.secret, every message and value is signed (fleetproto.h)
 * and what Redis hands back is verified before use: a value that does not
 * verify is replaced, a message ignored, both counted. */
#include "fleet.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "fleetproto.h"
#include "guard.h"
#include "log.h"
#include "request.h"
#include "rng.h"

/* Calls waiting for their reply on the command connection; beyond it new
 * calls are dropped (counted as overflow) until replies come. */
#define FLEET_MAX_PENDING 4096
/* Longest reply string read from Redis (a window end is at most 20 digits). */
#define FLEET_MAX_VALUE 32
/* What a reply may hold at all: longer strings (errors included), arrays
 * of more elements, an array inside an array, or a reply on the command
 * connection that no call waits for drop the connection (a hostile or
 * confused server; hiredis would buffer or abort). */
#define FLEET_MAX_REPLY_STRING 1024
#define FLEET_MAX_REPLY_ELEMENTS 8
/* Bytes of an unfinished reply held before the connection is dropped
 * (hiredis would buffer a bulk string of any announced length); one read
 * more (16 KiB) may come on top. */
#define FLEET_MAX_BUFFERED 65536

/* Redis's counters cannot be signed: a fleet budget total beyond this is
 * a forgery or a fault, and the local budget decides instead. */
#define FLEET_MAX_COUNT (1ull << 40)

_Static_assert(CONFIG_FLEET_SECRET_MAX <= FLEET_SECRET_MAX, "fleet.secret beyond what is signed");

/* Extends KEYS[1] to ARGV[1] (wall-clock ms) if later, expiring then, and
 * publishes ARGV[3] on ARGV[2] when it did. */
static const char SCRIPT_EXTEND[] = "local cur = tonumber(redis.call('GET', KEYS[1]) or '0') or 0\n"
				    "local u = tonumber(ARGV[1])\n"
				    "if u > cur then\n"
				    "  redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[1])\n"
				    "  redis.call('PUBLISH', ARGV[2], ARGV[3])\n"
				    "  return 1\n"
				    "end\n"
				    "return 0\n";

/* Signed: the same, storing the signed value ARGV[4]. Redis cannot check
 * a signature (the secret stays out of Redis), so it only reads the window
 * end out of "KIND UNTIL TS MAC"; when it does not extend, it returns the
 * value it holds, for braced to verify (and replace when forged). */
static const char SCRIPT_EXTEND_SIGNED[] =
    "local v = redis.call('GET', KEYS[1])\n"
    "local cur = 0\n"
    "if v then cur = tonumber(string.match(v, '^%a+ (%d+) ')) end\n"
    "if cur and tonumber(ARGV[1]) > cur then\n"
    "  redis.call('SET', KEYS[1], ARGV[4], 'PXAT', ARGV[1])\n"
    "  redis.call('PUBLISH', ARGV[2], ARGV[3])\n"
    "  return 1\n"
    "end\n"
    "return v\n";

/* Takes the probe lock KEYS[1] with the signed value ARGV[1] for ARGV[2]
 * ms: 1, or the holder's value for braced to verify. */
static const char SCRIPT_PROBE_SIGNED[] =
    "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end\n"
    "return redis.call('GET', KEYS[1])\n";

/* Replaces a value braced rejected: if KEYS[1] still holds ARGV[1], sets
 * ARGV[2] for ARGV[3] ms and publishes ARGV[5] (when not empty) on
 * ARGV[4]; 1 when it did, 0 when the key changed meanwhile. */
static const char SCRIPT_REPLACE[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
    "redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])\n"
    "if ARGV[5] ~= '' then redis.call('PUBLISH', ARGV[4], ARGV[5]) end\n"
    "return 1\n";

/* Adds ARGV[4] requests and ARGV[5] retries to the bucket of second
 * ARGV[1] (KEYS[1] .. second, expiring after ARGV[3] seconds) and returns
 * the totals of the seconds ARGV[2] .. ARGV[1]. */
static const char SCRIPT_BUDGET[] =
    "local now = tonumber(ARGV[1])\n"
    "local k = KEYS[1] .. ARGV[1]\n"
    "if tonumber(ARGV[4]) > 0 then redis.call('HINCRBY', k, 'd', ARGV[4]) end\n"
    "if tonumber(ARGV[5]) > 0 then redis.call('HINCRBY', k, 'w', ARGV[5]) end\n"
    "redis.call('EXPIRE', k, ARGV[3])\n"
    "local d, w = 0, 0\n"
    "for s = tonumber(ARGV[2]), now do\n"
    "  local v = redis.call('HMGET', KEYS[1] .. s, 'd', 'w')\n"
    "  d = d + (tonumber(v[1]) or 0)\n"
    "  w = w + (tonumber(v[2]) or 0)\n"
    "end\n"
    "return {d, w}\n";

struct fleet_profile {
	struct guard *g; /* borrowed: guards outlive the fleet */
	char id[FLEET_ID_MAX];
	char key_cooldown[FLEET_KEY_MAX], key_breaker[FLEET_KEY_MAX], key_probe[FLEET_KEY_MAX],
	    key_budget[FLEET_KEY_MAX];
	uint32_t budget_window_ms;
	uint32_t retry_after_max_ms; /* caps a window read from Redis */
	uint32_t open_for_ms;        /* caps an open period read from Redis */
	int syncing;                 /* a budget sync is on its way */
};

/* One connection and the send times of its calls in reply order. */
struct conn {
	redisAsyncContext *ac;
	uint64_t sent_us[FLEET_MAX_PENDING];
	size_t head, n;
	int ready;
	int pushes;          /* the subscriber: replies come unasked */
	const char *refused; /* why a reply was refused (static), or NULL */
};

enum op_kind {
	OP_HELLO,
	OP_COOLDOWN,
	OP_BREAKER,
	OP_PROBE,
	OP_BUDGET,
	OP_RESYNC_COOL,
	OP_RESYNC_BREAKER,
	OP_REPLACE_COOL, /* a forged value replaced (fleet.secret) */
	OP_REPLACE_BREAKER,
	OP_REPLACE_PROBE
};

static const enum fleet_op op_metric[] = {
	[OP_HELLO] = FLEET_OP_CONNECT,           [OP_COOLDOWN] = FLEET_OP_COOLDOWN,
	[OP_BREAKER] = FLEET_OP_BREAKER,         [OP_PROBE] = FLEET_OP_PROBE,
	[OP_BUDGET] = FLEET_OP_BUDGET,           [OP_RESYNC_COOL] = FLEET_OP_RESYNC,
	[OP_RESYNC_BREAKER] = FLEET_OP_RESYNC,   [OP_REPLACE_COOL] = FLEET_OP_COOLDOWN,
	[OP_REPLACE_BREAKER] = FLEET_OP_BREAKER, [OP_REPLACE_PROBE] = FLEET_OP_PROBE,
};

struct fleet {
	struct event_base *base;
	struct metrics_global *mg;
	struct fleet_setting set; /* a private copy; set.password and set.secret are secrets */
	struct fleet_profile *profiles;
	size_t nprofiles;
	struct conn cmd, sub;
	uint64_t sub_wait_us; /* SUBSCRIBE sent, not confirmed yet; 0 when none */
	int up;               /* both connections work */
	int logged_down;      /* "unavailable" already logged for this outage */
	unsigned attempt;     /* reconnects since the last success */
	uint64_t instance;
	char channel[FLEET_KEY_MAX];
	struct rng rng;
	/* One-shot timers: the reconnect, the next budget sync (armed while
	 * a guard is busy), the deadline of the oldest call (armed while
	 * calls wait). */
	struct event *retry_timer, *sync_timer, *watch_timer;
	uint64_t last_sync_us; /* the last budget sync started; 0 never */
	unsigned gen;          /* bumped by every fleet_configure */
};

struct op {
	struct fleet *f;
	enum op_kind kind;
	size_t idx;   /* the profile's index in f->profiles */
	unsigned gen; /* f->gen when sent: a reload renumbers the profiles */
	uint64_t arg; /* signed extends: the window end (wall ms); probes: the lock's ms */
};

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void count_error(struct fleet *f, enum fleet_op op)
{
	if ((unsigned)op < FLEET_OP__COUNT)
		f->mg->fleet_errors[op]++;
}

static void count_reject(struct fleet *f, enum fleet_reject why)
{
	if ((unsigned)why < FLEET_REJECT__COUNT)
		f->mg->fleet_rejected[why]++;
}

static void ms_to_tv(uint32_t ms, struct timeval *tv)
{
	tv->tv_sec = ms / 1000;
	tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
}

/* ---- replies: hiredis's reply objects, within limits ---- */

/* The reader's privdata is the connection: on the command connection a
 * reply must answer a call waiting. A NULL return makes hiredis drop the
 * connection; c->refused says why. */
static redisReply *reply_new(const redisReadTask *task, int type)
{
	struct conn *c = task->privdata;
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

	if (len > FLEET_MAX_REPLY_STRING) {
		((struct conn *)task->privdata)->refused = "a reply string over its limit";
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

	if (task->parent || elements < 0 || elements > FLEET_MAX_REPLY_ELEMENTS) {
		((struct conn *)task->privdata)->refused = "a nested or long array reply";
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

static void connect_now(struct fleet *f);

static void set_gates(struct fleet *f, int up)
{
	for (size_t i = 0; i < f->nprofiles; i++) {
		struct guard *g = f->profiles[i].g;

		guard_fleet_gate(g, up && (f->set.share & FLEET_SHARE_BREAKER));
		if (!up) {
			guard_fleet_budget_lost(g);
			f->profiles[i].syncing = 0;
		}
	}
}

static void drop_conn(struct conn *c)
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

static void disconnect(struct fleet *f)
{
	drop_conn(&f->cmd);
	drop_conn(&f->sub);
	f->sub_wait_us = 0;
	if (f->watch_timer)
		event_del(f->watch_timer);
	if (f->sync_timer)
		event_del(f->sync_timer);
}

/* Something failed (op, why): drop both connections, let the guards decide
 * alone, and reconnect after a jittered backoff. Logged once per outage. */
static void go_down(struct fleet *f, enum fleet_op op, const char *why)
{
	struct timeval tv;
	double r;

	count_error(f, op);
	disconnect(f);
	set_gates(f, 0);
	if (f->up || !f->logged_down) {
		struct logline *l =
		    log_begin(LOG_WARN, "fleet: Redis unavailable, local state decides");

		log_str(l, "redis", f->set.redis);
		log_str(l, "op", fleet_op_name(op));
		log_str(l, "reason", why);
		log_end(l);
		f->logged_down = 1;
	}
	f->up = 0;
	f->mg->fleet_up = 0;
	r = (double)(rng_next(&f->rng) >> 11) / (double)(1ull << 53);
	ms_to_tv(fleet_backoff_ms(f->attempt, r), &tv);
	if (f->attempt < 16)
		f->attempt++;
	event_add(f->retry_timer, &tv);
}

static void send_resync(struct fleet *f);
static void sync_arm(struct fleet *f);

static void maybe_up(struct fleet *f)
{
	if (f->up || !f->cmd.ready || !f->sub.ready)
		return;
	f->up = 1;
	f->mg->fleet_up = 1;
	f->attempt = 0;
	f->logged_down = 0;
	{
		struct logline *l = log_begin(LOG_INFO, "fleet: sharing state through Redis");

		log_str(l, "redis", f->set.redis);
		log_end(l);
	}
	set_gates(f, 1);
	send_resync(f);
	sync_arm(f);
}

/* ---- timed calls ---- */

static void on_reply(redisAsyncContext *ac, void *r, void *privdata);

/* Arms the watch timer for the earliest deadline of a waiting call (the
 * oldest on the command connection, or the SUBSCRIBE), or stops it when
 * nothing waits: an idle connection costs no wake-up. */
static void watch_arm(struct fleet *f)
{
	uint64_t limit = (uint64_t)f->set.timeout_ms * 1000, due = UINT64_MAX, now;
	struct timeval tv;

	if (f->cmd.ac && f->cmd.n > 0)
		due = f->cmd.sent_us[f->cmd.head] + limit;
	if (f->sub_wait_us && f->sub_wait_us + limit < due)
		due = f->sub_wait_us + limit;
	if (due == UINT64_MAX) {
		event_del(f->watch_timer);
		return;
	}
	now = request_now_us();
	due = due > now ? due - now + 1 : 1;
	tv.tv_sec = (time_t)(due / 1000000);
	tv.tv_usec = (suseconds_t)(due % 1000000);
	event_add(f->watch_timer, &tv);
}

/* Sends one command on the command connection, timed; arg goes to the
 * reply's handler. */
static int vcall(struct fleet *f, enum op_kind kind, struct fleet_profile *p, uint64_t arg,
		 const char *fmt, va_list ap)
{
	struct conn *c = &f->cmd;
	struct op *o;
	int rc;

	if (!c->ac)
		return -ENOTCONN;
	if (c->n >= FLEET_MAX_PENDING) {
		count_error(f, FLEET_OP_OVERFLOW);
		return -ENOBUFS;
	}
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	*o = (struct op){ .f = f,
			  .kind = kind,
			  .idx = p ? (size_t)(p - f->profiles) : 0,
			  .gen = f->gen,
			  .arg = arg };
	rc = redisvAsyncCommand(c->ac, on_reply, o, fmt, ap);
	if (rc != REDIS_OK) {
		free(o);
		count_error(f, op_metric[kind]);
		return -EIO;
	}
	c->sent_us[(c->head + c->n) % FLEET_MAX_PENDING] = request_now_us();
	if (c->n++ == 0)
		watch_arm(f);
	return 0;
}

static int call(struct fleet *f, enum op_kind kind, struct fleet_profile *p, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vcall(f, kind, p, 0, fmt, ap);
	va_end(ap);
	return rc;
}

static int call_with(struct fleet *f, enum op_kind kind, struct fleet_profile *p, uint64_t arg,
		     const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vcall(f, kind, p, arg, fmt, ap);
	va_end(ap);
	return rc;
}

static void watch(evutil_socket_t fd, short what, void *arg)
{
	struct fleet *f = arg;
	uint64_t now = request_now_us(), limit = (uint64_t)f->set.timeout_ms * 1000;

	(void)fd;
	(void)what;
	if ((f->cmd.n > 0 && now - f->cmd.sent_us[f->cmd.head] > limit) ||
	    (f->sub_wait_us && now - f->sub_wait_us > limit))
		go_down(f, FLEET_OP_TIMEOUT, "no answer within fleet.timeout");
	else
		watch_arm(f);
}

/* A string reply of at most FLEET_MAX_VALUE digits as a number; nil is 0. */
static int reply_uint(const redisReply *r, uint64_t *ret)
{
	if (r->type == REDIS_REPLY_NIL) {
		*ret = 0;
		return 0;
	}
	if (r->type != REDIS_REPLY_STRING || r->len > FLEET_MAX_VALUE)
		return -EINVAL;
	return fleet_parse_uint(r->str, r->len, ret);
}

static void apply_open(struct fleet_profile *p, uint64_t until_wall)
{
	uint64_t now = request_now_us(), wnow = wall_ms();
	uint64_t until = fleet_wall_to_mono(until_wall, wnow, now / 1000);

	if (until > now / 1000 + p->open_for_ms)
		until = now / 1000 + p->open_for_ms;
	guard_fleet_open(p->g, now, until * 1000);
}

static void apply_cooldown(struct fleet_profile *p, uint64_t until_wall)
{
	uint64_t now = request_now_us(), wnow = wall_ms();
	uint64_t until = fleet_wall_to_mono(until_wall, wnow, now / 1000);

	if (until > now / 1000 + p->retry_after_max_ms)
		until = now / 1000 + p->retry_after_max_ms;
	if (until > now / 1000)
		guard_fleet_cool_down(p->g, until * 1000);
}

/* ---- signed values (fleet.secret) ---- */

/* How old a stored value may be when read: the message window plus the
 * longest life of a value of its kind. */
static uint64_t value_max_age(const struct fleet *f, const struct fleet_profile *p,
			      enum fleet_value_kind kind)
{
	return fleet_max_age_ms(f->set.sync_interval_ms) +
	       (kind == FLEET_VALUE_COOLDOWN ? p->retry_after_max_ms : p->open_for_ms);
}

/* Verifies a value of kind read back from Redis (a string reply). Returns
 * 0 and *ret_v, or -EBADMSG once counted as rejected. */
static int read_value(struct fleet *f, const struct fleet_profile *p, enum fleet_value_kind kind,
		      const redisReply *r, uint64_t *ret_v)
{
	enum fleet_reject why = FLEET_REJECT_UNSIGNED;

	if (fleet_value_decode_signed(kind, r->str, r->len, f->set.secret, p->id, wall_ms(),
				      value_max_age(f, p, kind), ret_v, &why) < 0) {
		count_reject(f, why);
		return -EBADMSG;
	}
	return 0;
}

/* The signed message and value (each FLEET_MSG_MAX + 1 bytes) of a window
 * of kind mk ending at until (wall ms). */
static int seal_window(struct fleet *f, const struct fleet_profile *p, enum fleet_msg_kind mk,
		       uint64_t until, char *msg, char *val)
{
	struct fleet_msg m = { .kind = mk, .instance = f->instance, .until_ms = until };
	enum fleet_value_kind vk =
	    mk == FLEET_MSG_COOLDOWN ? FLEET_VALUE_COOLDOWN : FLEET_VALUE_BREAKER;
	uint64_t now = wall_ms();

	memcpy(m.id, p->id, sizeof(m.id));
	if (fleet_msg_encode_signed(&m, f->set.secret, now, msg, FLEET_MSG_MAX + 1) < 0 ||
	    fleet_value_encode_signed(vk, until, f->set.secret, p->id, now, val,
				      FLEET_MSG_MAX + 1) < 0)
		return -EINVAL;
	return 0;
}

/* Replaces the value r that Redis holds for p and braced rejected (kind
 * names the key: OP_REPLACE_*) with this instance's own: the window
 * ending at arg (wall ms, published again) or the probe lock for arg ms.
 * Once, and only if the key still holds r. Returns 0 or -errno. */
static int replace_value(struct fleet *f, struct fleet_profile *p, enum op_kind kind,
			 const redisReply *r, uint64_t arg)
{
	char msg[FLEET_MSG_MAX + 1] = "", val[FLEET_MSG_MAX + 1], px[24];
	uint64_t wnow = wall_ms(), ms = arg;
	const char *key = p->key_probe;

	if (kind == OP_REPLACE_PROBE) {
		if (fleet_value_encode_signed(FLEET_VALUE_PROBE, f->instance, f->set.secret, p->id,
					      wnow, val, sizeof(val)) < 0)
			return -EINVAL;
	} else {
		if (arg <= wnow)
			return -ETIME; /* the window is over: nothing to restore */
		key = kind == OP_REPLACE_COOL ? p->key_cooldown : p->key_breaker;
		if (seal_window(f, p, kind == OP_REPLACE_COOL ? FLEET_MSG_COOLDOWN : FLEET_MSG_OPEN,
				arg, msg, val) < 0)
			return -EINVAL;
		ms = arg - wnow;
	}
	snprintf(px, sizeof(px), "%llu", (unsigned long long)(ms ? ms : 1));
	return call_with(f, kind, p, arg, "EVAL %s 1 %s %b %s %s %s %s", SCRIPT_REPLACE, key,
			 r->str, r->len, val, px, f->channel, msg);
}

/* A window read back from Redis: *ret_v its end (0: none). Returns 0,
 * -EINVAL for a reply of the wrong type, -EBADMSG for one rejected. */
static int read_window(struct fleet *f, const struct fleet_profile *p, enum fleet_value_kind kind,
		       const redisReply *r, uint64_t *ret_v)
{
	if (!f->set.secret)
		return reply_uint(r, ret_v) < 0 ? -EINVAL : 0;
	if (r->type == REDIS_REPLY_NIL) {
		*ret_v = 0;
		return 0;
	}
	if (r->type != REDIS_REPLY_STRING)
		return -EINVAL;
	return read_value(f, p, kind, r, ret_v);
}

/* The reply to a probe lock request (signed or not); *ret_bad when it is
 * not one Redis should send. Returns 1 when this instance holds the lock,
 * 0 when it does not, -EINPROGRESS when a replacement decides. */
static int probe_reply(struct fleet *f, struct fleet_profile *p, const redisReply *r, uint64_t arg,
		       int *ret_bad)
{
	uint64_t v;

	*ret_bad = 0;
	if (r->type == REDIS_REPLY_NIL)
		return 0;
	if (!f->set.secret) {
		*ret_bad =
		    !(r->type == REDIS_REPLY_STATUS && r->len == 2 && memcmp(r->str, "OK", 2) == 0);
		return !*ret_bad;
	}
	if (r->type == REDIS_REPLY_INTEGER && r->integer == 1)
		return 1;
	if (r->type != REDIS_REPLY_STRING) {
		*ret_bad = 1;
		return 0;
	}
	/* A holder the fleet signed keeps it; a forged one is replaced. */
	if (read_value(f, p, FLEET_VALUE_PROBE, r, &v) == 0 ||
	    replace_value(f, p, OP_REPLACE_PROBE, r, arg) < 0)
		return 0;
	return -EINPROGRESS;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct op *o = privdata;
	struct fleet *f = o->f;
	const redisReply *r = reply;
	struct fleet_profile *p =
	    o->gen == f->gen && o->idx < f->nprofiles ? &f->profiles[o->idx] : NULL;
	enum op_kind kind = o->kind;
	uint64_t v = 0, arg = o->arg;
	int bad = 0;

	free(o);
	if (ac != f->cmd.ac)
		return; /* a dropped connection's leftovers */
	if (f->cmd.n > 0) {
		f->cmd.head = (f->cmd.head + 1) % FLEET_MAX_PENDING;
		f->cmd.n--;
		watch_arm(f);
	}
	if (r && kind != OP_HELLO && !p)
		return; /* sent before a reload: its profile is gone or moved */
	if (!r) {
		go_down(f, FLEET_OP_CONNECT, f->cmd.refused ? f->cmd.refused : "connection lost");
		return;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		if (kind == OP_HELLO) {
			/* AUTH or SELECT refused: say which, never the password. */
			go_down(f, FLEET_OP_CONNECT, "Redis refused AUTH, SELECT or PING");
			return;
		}
		count_error(f, op_metric[kind]);
		if (kind == OP_BUDGET && p) {
			p->syncing = 0;
			guard_fleet_budget_lost(p->g);
		}
		if ((kind == OP_PROBE || kind == OP_REPLACE_PROBE) && p)
			guard_fleet_probe_lock(p->g, 0, request_now_us() + 1000000);
		return;
	}
	switch (kind) {
	case OP_HELLO:
		if (r->type == REDIS_REPLY_STATUS && r->len == 4 &&
		    memcmp(r->str, "PONG", 4) == 0) {
			f->cmd.ready = 1;
			maybe_up(f);
		}
		break;
	case OP_COOLDOWN:
	case OP_BREAKER:
		if (f->set.secret && r->type == REDIS_REPLY_STRING) {
			/* Not extended: a later window a fleet member signed, or a forgery. */
			enum fleet_value_kind vk =
			    kind == OP_COOLDOWN ? FLEET_VALUE_COOLDOWN : FLEET_VALUE_BREAKER;

			if (read_value(f, p, vk, r, &v) < 0)
				replace_value(f, p,
					      kind == OP_COOLDOWN ? OP_REPLACE_COOL
								  : OP_REPLACE_BREAKER,
					      r, arg);
			else if (kind == OP_COOLDOWN)
				apply_cooldown(p, v);
			else
				apply_open(p, v);
			break;
		}
		bad = r->type != REDIS_REPLY_INTEGER && r->type != REDIS_REPLY_STATUS;
		break;
	case OP_PROBE:
	case OP_REPLACE_PROBE: {
		uint64_t wait = p->open_for_ms < 1000 ? p->open_for_ms : 1000;
		int won = kind == OP_PROBE ? probe_reply(f, p, r, arg, &bad)
					   : r->type == REDIS_REPLY_INTEGER && r->integer == 1;

		if (kind == OP_REPLACE_PROBE)
			bad = r->type != REDIS_REPLY_INTEGER;
		if (won >= 0)
			guard_fleet_probe_lock(p->g, won, request_now_us() + wait * 1000);
		break;
	}
	case OP_REPLACE_COOL:
	case OP_REPLACE_BREAKER:
		bad = r->type != REDIS_REPLY_INTEGER;
		break;
	case OP_BUDGET:
		p->syncing = 0;
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_INTEGER ||
		    r->element[1]->type != REDIS_REPLY_INTEGER || r->element[0]->integer < 0 ||
		    r->element[1]->integer < 0 ||
		    (f->set.secret && ((uint64_t)r->element[0]->integer > FLEET_MAX_COUNT ||
				       (uint64_t)r->element[1]->integer > FLEET_MAX_COUNT))) {
			bad = 1;
			guard_fleet_budget_lost(p->g);
			break;
		}
		guard_fleet_budget(p->g, (uint64_t)r->element[0]->integer,
				   (uint64_t)r->element[1]->integer,
				   request_now_us() + (uint64_t)f->set.sync_interval_ms * 3000 +
				       (uint64_t)f->set.timeout_ms * 1000);
		break;
	case OP_RESYNC_COOL:
	case OP_RESYNC_BREAKER: {
		int e = read_window(
		    f, p, kind == OP_RESYNC_COOL ? FLEET_VALUE_COOLDOWN : FLEET_VALUE_BREAKER, r,
		    &v);

		bad = e == -EINVAL;
		if (e < 0 || !v)
			break;
		if (kind == OP_RESYNC_COOL)
			apply_cooldown(p, v);
		else
			apply_open(p, v);
		break;
	}
	}
	if (bad)
		count_error(f, op_metric[kind]);
}

/* ---- the subscriber ---- */

static struct fleet_profile *find_profile(struct fleet *f, const char *id)
{
	for (size_t i = 0; i < f->nprofiles; i++)
		if (strcmp(f->profiles[i].id, id) == 0)
			return &f->profiles[i];
	return NULL;
}

static void on_message(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct fleet *f = privdata;
	const redisReply *r = reply, *kind, *payload;
	struct fleet_msg m;
	struct fleet_profile *p;

	if (ac != f->sub.ac)
		return;
	if (!r) {
		go_down(f, FLEET_OP_SUBSCRIBE, "subscriber connection lost");
		return;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		go_down(f, FLEET_OP_SUBSCRIBE, "Redis refused AUTH or SUBSCRIBE");
		return;
	}
	if (r->type == REDIS_REPLY_STATUS) /* AUTH's OK */
		return;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
		count_error(f, FLEET_OP_MESSAGE);
		return;
	}
	kind = r->element[0];
	payload = r->element[2];
	if (kind->type != REDIS_REPLY_STRING) {
		count_error(f, FLEET_OP_MESSAGE);
		return;
	}
	if (kind->len == 9 && memcmp(kind->str, "subscribe", 9) == 0) {
		f->sub_wait_us = 0;
		watch_arm(f);
		f->sub.ready = 1;
		maybe_up(f);
		return;
	}
	if (kind->len != 7 || memcmp(kind->str, "message", 7) != 0)
		return;
	if (payload->type != REDIS_REPLY_STRING) {
		count_error(f, FLEET_OP_MESSAGE);
		return;
	}
	if (f->set.secret) {
		enum fleet_reject why = FLEET_REJECT_UNSIGNED;
		int e =
		    fleet_msg_decode_signed(payload->str, payload->len, f->set.secret, wall_ms(),
					    fleet_max_age_ms(f->set.sync_interval_ms), &m, &why);

		if (e == -EBADMSG)
			count_reject(f, why);
		else if (e < 0)
			count_error(f, FLEET_OP_MESSAGE);
		if (e < 0)
			return;
	} else if (fleet_msg_decode(payload->str, payload->len, &m) < 0) {
		count_error(f, FLEET_OP_MESSAGE);
		return;
	}
	if (m.instance == f->instance || !(p = find_profile(f, m.id)))
		return;
	switch (m.kind) {
	case FLEET_MSG_COOLDOWN:
		if (f->set.share & FLEET_SHARE_COOLDOWN)
			apply_cooldown(p, m.until_ms);
		break;
	case FLEET_MSG_OPEN:
		if (f->set.share & FLEET_SHARE_BREAKER)
			apply_open(p, m.until_ms);
		break;
	case FLEET_MSG_CLOSE:
		if (f->set.share & FLEET_SHARE_BREAKER)
			guard_fleet_close(p->g, request_now_us());
		break;
	default:
		break;
	}
}

/* ---- what the guards tell ---- */

static void publish_extend(struct fleet *f, struct fleet_profile *p, enum op_kind kind,
			   const char *key, enum fleet_msg_kind mk, uint64_t until_us)
{
	uint64_t now = request_now_us();
	uint64_t until = wall_ms() + (until_us > now ? (until_us - now) / 1000 : 0);
	struct fleet_msg m = { .kind = mk, .instance = f->instance, .until_ms = until };
	char msg[FLEET_MSG_MAX + 1], ustr[24];

	snprintf(ustr, sizeof(ustr), "%llu", (unsigned long long)until);
	if (f->set.secret) {
		char val[FLEET_MSG_MAX + 1];

		if (seal_window(f, p, mk, until, msg, val) == 0)
			call_with(f, kind, p, until, "EVAL %s 1 %s %s %s %s %s",
				  SCRIPT_EXTEND_SIGNED, key, ustr, f->channel, msg, val);
		return;
	}
	memcpy(m.id, p->id, sizeof(m.id));
	if (fleet_msg_encode(&m, msg, sizeof(msg)) < 0)
		return;
	call(f, kind, p, "EVAL %s 1 %s %s %s %s", SCRIPT_EXTEND, key, ustr, f->channel, msg);
}

static void on_guard_event(void *arg, struct guard *g, const struct guard_event *ev)
{
	struct fleet *f = arg;
	struct fleet_profile *p = NULL;

	if (!f->up)
		return;
	for (size_t i = 0; i < f->nprofiles && !p; i++)
		if (f->profiles[i].g == g)
			p = &f->profiles[i];
	if (!p)
		return;
	switch (ev->kind) {
	case GUARD_EV_COOLDOWN:
		if (f->set.share & FLEET_SHARE_COOLDOWN)
			publish_extend(f, p, OP_COOLDOWN, p->key_cooldown, FLEET_MSG_COOLDOWN,
				       ev->until_us);
		break;
	case GUARD_EV_OPEN:
		if (f->set.share & FLEET_SHARE_BREAKER)
			publish_extend(f, p, OP_BREAKER, p->key_breaker, FLEET_MSG_OPEN,
				       ev->until_us);
		break;
	case GUARD_EV_CLOSE:
		if (f->set.share & FLEET_SHARE_BREAKER) {
			struct fleet_msg m = { .kind = FLEET_MSG_CLOSE, .instance = f->instance };
			char msg[FLEET_MSG_MAX + 1];

			memcpy(m.id, p->id, sizeof(m.id));
			if ((f->set.secret ? fleet_msg_encode_signed(&m, f->set.secret, wall_ms(),
								     msg, sizeof(msg))
					   : fleet_msg_encode(&m, msg, sizeof(msg))) < 0)
				break;
			call(f, OP_BREAKER, p, "DEL %s", p->key_breaker);
			call(f, OP_BREAKER, p, "PUBLISH %s %s", f->channel, msg);
		}
		break;
	case GUARD_EV_WANT_PROBE: {
		char inst[FLEET_MSG_MAX + 1], px[24];
		uint64_t ms = ev->open_for_ms ? ev->open_for_ms : 1;
		int rc = -EINVAL;

		snprintf(px, sizeof(px), "%llu", (unsigned long long)ms);
		if (!f->set.secret) {
			snprintf(inst, sizeof(inst), "%016llx", (unsigned long long)f->instance);
			rc = call(f, OP_PROBE, p, "SET %s %s NX PX %s", p->key_probe, inst, px);
		} else if (fleet_value_encode_signed(FLEET_VALUE_PROBE, f->instance, f->set.secret,
						     p->id, wall_ms(), inst, sizeof(inst)) >= 0) {
			rc = call_with(f, OP_PROBE, p, ms, "EVAL %s 1 %s %s %s",
				       SCRIPT_PROBE_SIGNED, p->key_probe, inst, px);
		}
		if (rc < 0)
			guard_fleet_probe_lock(g, 0, request_now_us() + 1000000);
		break;
	}
	case GUARD_EV_COUNTS:
		sync_arm(f);
		break;
	}
}

static void send_resync(struct fleet *f)
{
	for (size_t i = 0; i < f->nprofiles; i++) {
		struct fleet_profile *p = &f->profiles[i];

		if (f->set.share & FLEET_SHARE_COOLDOWN)
			call(f, OP_RESYNC_COOL, p, "GET %s", p->key_cooldown);
		if (f->set.share & FLEET_SHARE_BREAKER)
			call(f, OP_RESYNC_BREAKER, p, "GET %s", p->key_breaker);
	}
}

/* Arms the next budget sync, sync_interval after the last one (at once
 * after a pause), when sharing the budget and a guard is busy. */
static void sync_arm(struct fleet *f)
{
	uint64_t now, at, every = (uint64_t)f->set.sync_interval_ms * 1000;
	struct timeval tv;
	int busy = 0;

	if (!f->up || !(f->set.share & FLEET_SHARE_BUDGET) || evtimer_pending(f->sync_timer, NULL))
		return;
	for (size_t i = 0; i < f->nprofiles && !busy; i++)
		busy = guard_fleet_busy(f->profiles[i].g);
	if (!busy)
		return;
	now = request_now_us();
	at = f->last_sync_us ? f->last_sync_us + every : now;
	at = at > now ? at - now : 0;
	tv.tv_sec = (time_t)(at / 1000000);
	tv.tv_usec = (suseconds_t)(at % 1000000);
	event_add(f->sync_timer, &tv);
}

static void on_sync(evutil_socket_t fd, short what, void *arg)
{
	struct fleet *f = arg;
	uint64_t wnow = wall_ms();

	(void)fd;
	(void)what;
	if (!f->up)
		return;
	f->last_sync_us = request_now_us();
	for (size_t i = 0; i < f->nprofiles; i++) {
		struct fleet_profile *p = &f->profiles[i];
		uint64_t first, d, w;
		uint32_t count;
		char a1[24], a2[24], a3[24], a4[24], a5[24];

		/* Idle: nothing to push, and no retry to decide. */
		if (p->syncing || !guard_fleet_busy(p->g))
			continue;
		fleet_buckets(wnow, p->budget_window_ms, &first, &count);
		guard_fleet_take_counts(p->g, &d, &w);
		snprintf(a1, sizeof(a1), "%llu", (unsigned long long)(wnow / 1000));
		snprintf(a2, sizeof(a2), "%llu", (unsigned long long)first);
		snprintf(a3, sizeof(a3), "%u", count + FLEET_BUCKET_SLACK_S);
		snprintf(a4, sizeof(a4), "%llu", (unsigned long long)d);
		snprintf(a5, sizeof(a5), "%llu", (unsigned long long)w);
		if (call(f, OP_BUDGET, p, "EVAL %s 1 %s %s %s %s %s %s", SCRIPT_BUDGET,
			 p->key_budget, a1, a2, a3, a4, a5) == 0)
			p->syncing = 1;
		else
			guard_fleet_budget_lost(p->g);
	}
	sync_arm(f);
}

/* ---- connecting ---- */

/* Forgets ac, which hiredis frees once its callback returns. Returns 1
 * when ac was one of f's connections, 0 for a stale one. */
static int forget_context(struct fleet *f, const redisAsyncContext *ac)
{
	if (ac == f->cmd.ac)
		f->cmd.ac = NULL;
	else if (ac == f->sub.ac)
		f->sub.ac = NULL;
	else
		return 0;
	return 1;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct fleet *f = ac->data;

	if (status == REDIS_OK || !f || !forget_context(f, ac))
		return;
	go_down(f, FLEET_OP_CONNECT, ac->errstr[0] ? ac->errstr : "cannot connect");
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct fleet *f = ac->data;

	(void)status;
	if (!f || !forget_context(f, ac))
		return;
	if (f->cmd.refused || f->sub.refused)
		go_down(f, FLEET_OP_CONNECT, f->cmd.refused ? f->cmd.refused : f->sub.refused);
	else
		go_down(f, FLEET_OP_CONNECT, "connection closed");
}

/* hiredis's libevent read handler, behind a bound on the unfinished reply
 * it holds. */
static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	redisLibeventEvents *e = arg;
	redisAsyncContext *ac = e->context;
	const redisReader *rd = ac->c.reader;
	struct fleet *f = ac->data;

	(void)fd;
	(void)what;
	if (f && rd && rd->len - rd->pos > FLEET_MAX_BUFFERED &&
	    (ac == f->cmd.ac || ac == f->sub.ac)) {
		go_down(f, FLEET_OP_CONNECT, "a reply over its limit"); /* frees e */
		return;
	}
	redisAsyncHandleRead(ac);
}

static redisAsyncContext *open_ctx(struct fleet *f, struct conn *c)
{
	redisAsyncContext *ac = f->set.unix_socket ? redisAsyncConnectUnix(f->set.path)
						   : redisAsyncConnect(f->set.host, f->set.port);

	if (!ac)
		return NULL;
	if (ac->err) {
		redisAsyncFree(ac);
		return NULL;
	}
	ac->data = f;
	ac->c.reader->fn = &reply_functions;
	ac->c.reader->privdata = c;
	c->pushes = c == &f->sub;
	c->refused = NULL;
	if (redisLibeventAttach(ac, f->base) != REDIS_OK || !ac->ev.data) {
		redisAsyncFree(ac);
		return NULL;
	}
	{
		redisLibeventEvents *e = ac->ev.data;

		event_del(e->rev);
		event_assign(e->rev, f->base, ac->c.fd, EV_READ, on_readable, e);
		event_add(e->rev, NULL);
	}
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	return ac;
}

static void connect_now(struct fleet *f)
{
	if (!f->set.enabled)
		return;
	f->cmd.ac = open_ctx(f, &f->cmd);
	f->sub.ac = f->cmd.ac ? open_ctx(f, &f->sub) : NULL;
	if (!f->cmd.ac || !f->sub.ac) {
		go_down(f, FLEET_OP_CONNECT, "cannot open a connection");
		return;
	}
	if (f->set.password && f->set.username) {
		call(f, OP_HELLO, NULL, "AUTH %s %s", f->set.username, f->set.password);
		redisAsyncCommand(f->sub.ac, on_message, f, "AUTH %s %s", f->set.username,
				  f->set.password);
	} else if (f->set.password) {
		call(f, OP_HELLO, NULL, "AUTH %s", f->set.password);
		redisAsyncCommand(f->sub.ac, on_message, f, "AUTH %s", f->set.password);
	}
	if (f->set.db) {
		char db[16];

		snprintf(db, sizeof(db), "%u", f->set.db);
		call(f, OP_HELLO, NULL, "SELECT %s", db);
	}
	call(f, OP_HELLO, NULL, "PING");
	if (redisAsyncCommand(f->sub.ac, on_message, f, "SUBSCRIBE %s", f->channel) != REDIS_OK) {
		go_down(f, FLEET_OP_SUBSCRIBE, "cannot subscribe");
		return;
	}
	f->sub_wait_us = request_now_us();
	watch_arm(f);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	connect_now(arg);
}

/* ---- configuration ---- */

static void setting_release(struct fleet_setting *s)
{
	free(s->redis);
	free(s->host);
	free(s->path);
	free(s->username);
	config_secret_free(s->password);
	config_secret_free(s->secret);
	free(s->key_prefix);
	memset(s, 0, sizeof(*s));
}

static char *dup_or_null(const char *s, int *failed)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*failed = 1;
	return d;
}

static int setting_copy(struct fleet_setting *dst, const struct fleet_setting *src)
{
	int failed = 0;

	*dst = *src;
	dst->redis = dup_or_null(src->redis, &failed);
	dst->host = dup_or_null(src->host, &failed);
	dst->path = dup_or_null(src->path, &failed);
	dst->username = dup_or_null(src->username, &failed);
	dst->password = dup_or_null(src->password, &failed);
	dst->secret = dup_or_null(src->secret, &failed);
	dst->key_prefix = dup_or_null(src->key_prefix, &failed);
	if (failed) {
		setting_release(dst);
		return -ENOMEM;
	}
	return 0;
}

struct fleet *fleet_new(struct event_base *base, struct metrics_global *mg)
{
	struct fleet *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->base = base;
	f->mg = mg;
	if (rng_seed_os(&f->rng) < 0)
		goto fail;
	f->instance = rng_next(&f->rng);
	f->retry_timer = evtimer_new(base, on_retry, f);
	f->sync_timer = evtimer_new(base, on_sync, f);
	f->watch_timer = evtimer_new(base, watch, f);
	if (!f->retry_timer || !f->sync_timer || !f->watch_timer)
		goto fail;
	return f;
fail:
	fleet_free(f);
	return NULL;
}

int fleet_configure(struct fleet *f, const struct config *cfg, struct guard *all,
		    struct guard **by_profile)
{
	const struct fleet_setting *s = &cfg->fleet;
	struct fleet_profile *profiles = NULL;
	struct guard_hooks hooks = { .event = on_guard_event, .arg = f };
	int reconnect = !config_fleet_equal(s, &f->set);
	struct fleet_setting copy;

	if (s->enabled) {
		profiles = calloc(cfg->nprofiles ? cfg->nprofiles : 1, sizeof(*profiles));
		if (!profiles)
			return -ENOMEM;
		for (size_t i = 0; i < cfg->nprofiles; i++) {
			const struct profile *pr = &cfg->profiles[i];
			struct fleet_profile *p = &profiles[i];

			p->g = by_profile[i];
			if (fleet_profile_id(p->id, sizeof(p->id), pr->name, pr->upstream) < 0 ||
			    fleet_key(p->key_cooldown, sizeof(p->key_cooldown), s->key_prefix,
				      p->id, "cooldown") < 0 ||
			    fleet_key(p->key_breaker, sizeof(p->key_breaker), s->key_prefix, p->id,
				      "breaker") < 0 ||
			    fleet_key(p->key_probe, sizeof(p->key_probe), s->key_prefix, p->id,
				      "probe") < 0 ||
			    fleet_key(p->key_budget, sizeof(p->key_budget), s->key_prefix, p->id,
				      "budget:") < 0) {
				free(profiles);
				return -ENOMEM;
			}
			p->budget_window_ms = pr->policy.retry.budget_window_ms;
			p->retry_after_max_ms = pr->policy.retry.retry_after_max_ms;
			p->open_for_ms = pr->policy.breaker.open_for_ms;
		}
	}
	if (reconnect) {
		if (setting_copy(&copy, s) < 0) {
			free(profiles);
			return -ENOMEM;
		}
		disconnect(f);
		event_del(f->retry_timer);
		if (f->up || f->logged_down) {
			struct logline *l = log_begin(LOG_INFO, "fleet: configuration changed");

			log_str(l, "redis", s->enabled ? s->redis : "off");
			log_end(l);
		}
		f->up = 0;
		f->logged_down = 0;
		f->attempt = 0;
		f->mg->fleet_up = 0;
		setting_release(&f->set);
		f->set = copy;
		fleet_channel(f->channel, sizeof(f->channel), f->set.key_prefix);
	}
	/* Every guard unhooked first: those of removed profiles stay so. A
	 * reload starts the fleet state afresh (read again once up). */
	for (struct guard *g = all; g; g = guard_next(g))
		guard_set_hooks(g, NULL);
	free(f->profiles);
	f->profiles = profiles;
	f->gen++;
	f->nprofiles = s->enabled ? cfg->nprofiles : 0;
	f->mg->fleet_enabled = s->enabled;
	for (size_t i = 0; i < f->nprofiles; i++) {
		guard_set_hooks(f->profiles[i].g, &hooks);
		guard_fleet_budget_bounded(f->profiles[i].g, f->set.secret != NULL);
	}
	if (!s->enabled)
		return 0;
	if (reconnect) {
		connect_now(f);
	} else if (f->up) {
		set_gates(f, 1);
		send_resync(f);
		sync_arm(f);
	}
	return 0;
}

int fleet_is_up(const struct fleet *f)
{
	return f && f->up;
}

void fleet_free(struct fleet *f)
{
	if (!f)
		return;
	disconnect(f);
	for (size_t i = 0; i < f->nprofiles; i++)
		guard_set_hooks(f->profiles[i].g, NULL);
	if (f->retry_timer)
		event_free(f->retry_timer);
	if (f->sync_timer)
		event_free(f->sync_timer);
	if (f->watch_timer)
		event_free(f->watch_timer);
	free(f->profiles);
	setting_release(&f->set);
	free(f);
}
