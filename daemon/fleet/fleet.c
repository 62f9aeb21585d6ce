/* Fleet logic: what the profiles' guards share through Redis (redis.h).
 * The guards tell the fleet of their changes through hooks (guard.h); the
 * fleet publishes them and applies what other instances publish. The
 * budget sync runs only while a guard is busy (guard_fleet_busy): an idle
 * instance has nothing to push and decides no retry, so it sleeps.
 * With fleet.secret, every message and value is signed (fleetproto.h)
 * and what Redis hands back is verified before use: a value that does not
 * verify is replaced, a message ignored, both counted. */
#include "fleet_internal.h"
#include "clock.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fleetproto.h"
#include "guard.h"
#include "log.h"
#include "redis.h"
#include "rng.h"

const enum fleet_op fleet_op_metric[] = {
	[OP_COOLDOWN] = FLEET_OP_COOLDOWN,
	[OP_BREAKER] = FLEET_OP_BREAKER,
	[OP_PROBE] = FLEET_OP_PROBE,
	[OP_BUDGET] = FLEET_OP_BUDGET,
	[OP_RESYNC_COOL] = FLEET_OP_RESYNC,
	[OP_RESYNC_BREAKER] = FLEET_OP_RESYNC,
	[OP_REPLACE_COOL] = FLEET_OP_COOLDOWN,
	[OP_REPLACE_BREAKER] = FLEET_OP_BREAKER,
	[OP_REPLACE_PROBE] = FLEET_OP_PROBE,
	[OP_EJECT] = FLEET_OP_EJECT,
	[OP_RESYNC_EJECT] = FLEET_OP_RESYNC,
	[OP_REPLACE_EJECT] = FLEET_OP_EJECT,
	[OP_RATE] = FLEET_OP_RATE,
};

uint64_t fleet_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void fleet_count_error(struct fleet *f, enum fleet_op op)
{
	if ((unsigned)op < FLEET_OP__COUNT)
		f->counters->errors[op]++;
}

static void count_reject(struct fleet *f, enum fleet_reject why)
{
	if ((unsigned)why < FLEET_REJECT__COUNT)
		f->counters->rejected[why]++;
}

/* What failed to send (err, from redis_vcommand()) is counted: too many
 * calls waiting as overflow, a refusal by hiredis against op. */
static void count_unsent(struct fleet *f, int err, enum fleet_op op)
{
	if (err == -ENOBUFS)
		fleet_count_error(f, FLEET_OP_OVERFLOW);
	else if (err == -EIO)
		fleet_count_error(f, op);
}

/* ---- connection state ---- */

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

static void send_resync(struct fleet *f);

/* Redis failed (what, why): the connections are dropped and a reconnect
 * armed; the guards decide alone. Logged once per outage. */
static void on_down(void *arg, enum redis_failure what, const char *why)
{
	static const enum fleet_op ops[] = {
		[REDIS_FAILED_CONNECT] = FLEET_OP_CONNECT,
		[REDIS_FAILED_SUBSCRIBE] = FLEET_OP_SUBSCRIBE,
		[REDIS_FAILED_TIMEOUT] = FLEET_OP_TIMEOUT,
	};
	struct fleet *f = arg;
	enum fleet_op op = ops[what];

	/* The user knows the limit by its setting's name. */
	if (what == REDIS_FAILED_TIMEOUT)
		why = "no answer within fleet.timeout";
	fleet_count_error(f, op);
	event_del(f->sync_timer);
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
	f->counters->up = 0;
	fleet_rate_state(f);
}

static void on_up(void *arg)
{
	struct fleet *f = arg;

	f->up = 1;
	f->counters->up = 1;
	f->logged_down = 0;
	{
		struct logline *l = log_begin(LOG_INFO, "fleet: sharing state through Redis");

		log_str(l, "redis", f->set.redis);
		log_end(l);
	}
	set_gates(f, 1);
	send_resync(f);
	fleet_budget_arm(f);
	fleet_rate_state(f);
}

/* A command of the Redis client's own, while connecting, was not sent. */
static void on_unsent(void *arg, int err)
{
	count_unsent(arg, err, FLEET_OP_CONNECT);
}

/* ---- timed calls ---- */

/* Sends one command through the Redis client, timed; arg and endpoint
 * (NULL but for ejections; copied) go to the reply's handler. */
static int vcall(struct fleet *f, enum op_kind kind, struct fleet_profile *p, uint64_t arg,
		 const char *endpoint, const char *fmt, va_list ap)
{
	struct op *o = calloc(1, sizeof(*o));
	int rc;

	if (!o)
		return -ENOMEM;
	*o = (struct op){ .f = f,
			  .kind = kind,
			  .idx = p ? (size_t)(p - f->profiles) : 0,
			  .gen = f->gen,
			  .arg = arg };
	if (endpoint)
		snprintf(o->endpoint, sizeof(o->endpoint), "%s", endpoint);
	rc = redis_vcommand(f->redis, o, fmt, ap);
	if (rc < 0) {
		free(o);
		count_unsent(f, rc, fleet_op_metric[kind]);
	}
	return rc;
}

static int call(struct fleet *f, enum op_kind kind, struct fleet_profile *p, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vcall(f, kind, p, 0, NULL, fmt, ap);
	va_end(ap);
	return rc;
}

int fleet_call_with(struct fleet *f, enum op_kind kind, struct fleet_profile *p, uint64_t arg,
		    const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vcall(f, kind, p, arg, NULL, fmt, ap);
	va_end(ap);
	return rc;
}

/* fleet_call_with() for an ejection of endpoint. */
static int call_eject(struct fleet *f, enum op_kind kind, struct fleet_profile *p, uint64_t arg,
		      const char *endpoint, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vcall(f, kind, p, arg, endpoint, fmt, ap);
	va_end(ap);
	return rc;
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
	uint64_t now = clock_now_us(), wnow = fleet_wall_ms();
	uint64_t until = fleet_wall_to_mono(until_wall, wnow, now / 1000);

	if (until > now / 1000 + p->open_for_ms)
		until = now / 1000 + p->open_for_ms;
	guard_fleet_open(p->g, now, until * 1000);
}

static void apply_cooldown(struct fleet_profile *p, uint64_t until_wall)
{
	uint64_t now = clock_now_us(), wnow = fleet_wall_ms();
	uint64_t until = fleet_wall_to_mono(until_wall, wnow, now / 1000);

	if (until > now / 1000 + p->retry_after_max_ms)
		until = now / 1000 + p->retry_after_max_ms;
	if (until > now / 1000)
		guard_fleet_cool_down(p->g, until * 1000);
}

/* Another instance ejected endpoint until until_wall: ejected here until
 * the same instant, at most this profile's eject.max (none when this
 * profile does not eject). */
static void apply_eject(struct fleet_profile *p, const char *endpoint, uint64_t until_wall)
{
	uint64_t now = clock_now_us(), wnow = fleet_wall_ms();
	uint64_t until = fleet_wall_to_mono(until_wall, wnow, now / 1000);

	if (until > now / 1000 + p->eject_max_ms)
		until = now / 1000 + p->eject_max_ms;
	if (until > now / 1000)
		guard_fleet_eject(p->g, endpoint, until * 1000, now);
}

/* ---- signed values (fleet.secret) ---- */

/* How old a stored value may be when read: the message window plus the
 * longest life of a value of its kind, life_ms. */
static uint64_t value_max_age(const struct fleet *f, uint32_t life_ms)
{
	return fleet_max_age_ms(f->set.sync_interval_ms) + life_ms;
}

/* Verifies a value of kind read back from Redis (a string reply). Returns
 * 0 and *ret_v, or -EBADMSG once counted as rejected. */
static int read_value(struct fleet *f, const struct fleet_profile *p, enum fleet_value_kind kind,
		      const redisReply *r, uint64_t *ret_v)
{
	uint32_t life = kind == FLEET_VALUE_COOLDOWN ? p->retry_after_max_ms : p->open_for_ms;
	enum fleet_reject why = FLEET_REJECT_UNSIGNED;

	if (fleet_value_decode_signed(kind, r->str, r->len, f->set.secret, p->id, fleet_wall_ms(),
				      value_max_age(f, life), ret_v, &why) < 0) {
		count_reject(f, why);
		return -EBADMSG;
	}
	return 0;
}

/* read_value() for the ejection of endpoint. */
static int read_eject_value(struct fleet *f, const struct fleet_profile *p, const char *endpoint,
			    const redisReply *r, uint64_t *ret_v)
{
	enum fleet_reject why = FLEET_REJECT_UNSIGNED;

	if (fleet_eject_value_decode_signed(r->str, r->len, f->set.secret, p->id, endpoint,
					    fleet_wall_ms(), value_max_age(f, p->eject_max_ms),
					    ret_v, &why) < 0) {
		count_reject(f, why);
		return -EBADMSG;
	}
	return 0;
}

/* The signed message and value (each FLEET_MSG_MAX + 1 bytes) of a window
 * of kind mk ending at until (wall ms); endpoint names the endpoint of an
 * ejection (NULL for the others). */
static int seal_window(struct fleet *f, const struct fleet_profile *p, enum fleet_msg_kind mk,
		       uint64_t until, const char *endpoint, char *msg, char *val)
{
	struct fleet_msg m = { .kind = mk, .instance = f->instance, .until_ms = until };
	enum fleet_value_kind vk =
	    mk == FLEET_MSG_COOLDOWN ? FLEET_VALUE_COOLDOWN : FLEET_VALUE_BREAKER;
	uint64_t now = fleet_wall_ms();

	memcpy(m.id, p->id, sizeof(m.id));
	if (mk == FLEET_MSG_EJECT)
		snprintf(m.endpoint, sizeof(m.endpoint), "%s", endpoint);
	if (fleet_msg_encode_signed(&m, f->set.secret, now, msg, FLEET_MSG_MAX + 1) < 0 ||
	    (mk == FLEET_MSG_EJECT
		 ? fleet_eject_value_encode_signed(until, endpoint, f->set.secret, p->id, now, val,
						   FLEET_MSG_MAX + 1)
		 : fleet_value_encode_signed(vk, until, f->set.secret, p->id, now, val,
					     FLEET_MSG_MAX + 1)) < 0)
		return -EINVAL;
	return 0;
}

/* Replaces the value r that Redis holds for p and braced rejected (kind
 * names the key: OP_REPLACE_*; endpoint, the ejection's) with this
 * instance's own: the window ending at arg (wall ms, published again) or
 * the probe lock for arg ms. Once, and only if the key still holds r.
 * Returns 0 or -errno. */
static int replace_value(struct fleet *f, struct fleet_profile *p, enum op_kind kind,
			 const redisReply *r, uint64_t arg, const char *endpoint)
{
	char msg[FLEET_MSG_MAX + 1] = "", val[FLEET_MSG_MAX + 1], px[24];
	char ekey[FLEET_KEY_MAX];
	uint64_t wnow = fleet_wall_ms(), ms = arg;
	const char *key = p->key_probe;
	enum fleet_msg_kind mk = FLEET_MSG_OPEN;

	if (kind == OP_REPLACE_PROBE) {
		if (fleet_value_encode_signed(FLEET_VALUE_PROBE, f->instance, f->set.secret, p->id,
					      wnow, val, sizeof(val)) < 0)
			return -EINVAL;
	} else {
		if (arg <= wnow)
			return -ETIME; /* the window is over: nothing to restore */
		if (kind == OP_REPLACE_COOL) {
			key = p->key_cooldown;
			mk = FLEET_MSG_COOLDOWN;
		} else if (kind == OP_REPLACE_EJECT) {
			if (fleet_eject_key(ekey, sizeof(ekey), f->set.key_prefix, p->id,
					    endpoint) < 0)
				return -EINVAL;
			key = ekey;
			mk = FLEET_MSG_EJECT;
		} else {
			key = p->key_breaker;
		}
		if (seal_window(f, p, mk, arg, endpoint, msg, val) < 0)
			return -EINVAL;
		ms = arg - wnow;
	}
	snprintf(px, sizeof(px), "%llu", (unsigned long long)(ms ? ms : 1));
	return call_eject(f, kind, p, arg, endpoint, "EVAL %s 1 %s %b %s %s %s %s",
			  fleet_script_replace, key, r->str, r->len, val, px, f->channel, msg);
}

/* A window read back from Redis: *ret_v its end (0: none); endpoint names
 * an ejection's (NULL: a window of kind). Returns 0, -EINVAL for a reply
 * of the wrong type, -EBADMSG for one rejected. */
static int read_window(struct fleet *f, const struct fleet_profile *p, enum fleet_value_kind kind,
		       const char *endpoint, const redisReply *r, uint64_t *ret_v)
{
	if (!f->set.secret)
		return reply_uint(r, ret_v) < 0 ? -EINVAL : 0;
	if (r->type == REDIS_REPLY_NIL) {
		*ret_v = 0;
		return 0;
	}
	if (r->type != REDIS_REPLY_STRING)
		return -EINVAL;
	return endpoint ? read_eject_value(f, p, endpoint, r, ret_v)
			: read_value(f, p, kind, r, ret_v);
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
	    replace_value(f, p, OP_REPLACE_PROBE, r, arg, NULL) < 0)
		return 0;
	return -EINPROGRESS;
}

static void on_reply(void *cmd, const redisReply *r)
{
	struct op *o = cmd;
	struct fleet *f = o->f;
	struct fleet_profile *p =
	    o->gen == f->gen && o->idx < f->nprofiles ? &f->profiles[o->idx] : NULL;
	enum op_kind kind = o->kind;
	uint64_t v = 0, arg = o->arg;
	char endpoint[ENDPOINT_NAME_MAX];
	int bad = 0;

	memcpy(endpoint, o->endpoint, sizeof(endpoint));
	free(o);
	if (!r)
		return; /* no answer will come: the Redis client goes down */
	if (!p)
		return; /* sent before a reload: its profile is gone or moved */
	if (r->type == REDIS_REPLY_ERROR) {
		fleet_count_error(f, fleet_op_metric[kind]);
		if (kind == OP_BUDGET && p) {
			p->syncing = 0;
			guard_fleet_budget_lost(p->g);
		}
		if ((kind == OP_PROBE || kind == OP_REPLACE_PROBE) && p)
			guard_fleet_probe_lock(p->g, 0, clock_now_us() + 1000000);
		return;
	}
	switch (kind) {
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
					      r, arg, NULL);
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
			guard_fleet_probe_lock(p->g, won, clock_now_us() + wait * 1000);
		break;
	}
	case OP_EJECT:
		if (f->set.secret && r->type == REDIS_REPLY_STRING) {
			/* Not extended: a later ejection a fleet member signed, or a forgery. */
			if (read_eject_value(f, p, endpoint, r, &v) < 0)
				replace_value(f, p, OP_REPLACE_EJECT, r, arg, endpoint);
			else
				apply_eject(p, endpoint, v);
			break;
		}
		bad = r->type != REDIS_REPLY_INTEGER;
		break;
	case OP_REPLACE_COOL:
	case OP_REPLACE_BREAKER:
	case OP_REPLACE_EJECT:
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
				   clock_now_us() + (uint64_t)f->set.sync_interval_ms * 3000 +
				       (uint64_t)f->set.timeout_ms * 1000);
		break;
	case OP_RESYNC_COOL:
	case OP_RESYNC_BREAKER: {
		int e = read_window(
		    f, p, kind == OP_RESYNC_COOL ? FLEET_VALUE_COOLDOWN : FLEET_VALUE_BREAKER, NULL,
		    r, &v);

		bad = e == -EINVAL;
		if (e < 0 || !v)
			break;
		if (kind == OP_RESYNC_COOL)
			apply_cooldown(p, v);
		else
			apply_open(p, v);
		break;
	}
	case OP_RATE:
		fleet_rate_reply(f, p, arg, r);
		break;
	case OP_RESYNC_EJECT: {
		int e = read_window(f, p, FLEET_VALUE__COUNT, endpoint, r, &v);

		bad = e == -EINVAL;
		if (e == 0 && v)
			apply_eject(p, endpoint, v);
		break;
	}
	}
	if (bad)
		fleet_count_error(f, fleet_op_metric[kind]);
}

/* ---- the subscriber ---- */

static struct fleet_profile *find_profile(struct fleet *f, const char *id)
{
	for (size_t i = 0; i < f->nprofiles; i++)
		if (strcmp(f->profiles[i].id, id) == 0)
			return &f->profiles[i];
	return NULL;
}

static void on_message(void *arg, const char *data, size_t len)
{
	struct fleet *f = arg;
	struct fleet_msg m;
	struct fleet_profile *p;

	if (!data) {
		fleet_count_error(f, FLEET_OP_MESSAGE);
		return;
	}
	if (f->set.secret) {
		enum fleet_reject why = FLEET_REJECT_UNSIGNED;
		int e =
		    fleet_msg_decode_signed(data, len, f->set.secret, fleet_wall_ms(),
					    fleet_max_age_ms(f->set.sync_interval_ms), &m, &why);

		if (e == -EBADMSG)
			count_reject(f, why);
		else if (e < 0)
			fleet_count_error(f, FLEET_OP_MESSAGE);
		if (e < 0)
			return;
	} else if (fleet_msg_decode(data, len, &m) < 0) {
		fleet_count_error(f, FLEET_OP_MESSAGE);
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
			guard_fleet_close(p->g, clock_now_us());
		break;
	case FLEET_MSG_EJECT:
		if (f->set.share & FLEET_SHARE_EJECTIONS)
			apply_eject(p, m.endpoint, m.until_ms);
		break;
	default:
		break;
	}
}

/* ---- what the guards tell ---- */

/* Extends the window of kind mk in key to until_us (monotonic, turned to
 * wall ms here) and publishes it when Redis did; endpoint names the
 * endpoint of an ejection (NULL for the others). */
static void publish_extend(struct fleet *f, struct fleet_profile *p, enum op_kind kind,
			   const char *key, enum fleet_msg_kind mk, uint64_t until_us,
			   const char *endpoint)
{
	uint64_t now = clock_now_us();
	uint64_t until = fleet_wall_ms() + (until_us > now ? (until_us - now) / 1000 : 0);
	struct fleet_msg m = { .kind = mk, .instance = f->instance, .until_ms = until };
	char msg[FLEET_MSG_MAX + 1], ustr[24];

	snprintf(ustr, sizeof(ustr), "%llu", (unsigned long long)until);
	if (f->set.secret) {
		char val[FLEET_MSG_MAX + 1];

		if (seal_window(f, p, mk, until, endpoint, msg, val) == 0)
			call_eject(f, kind, p, until, endpoint, "EVAL %s 1 %s %s %s %s %s",
				   fleet_script_extend_signed, key, ustr, f->channel, msg, val);
		return;
	}
	memcpy(m.id, p->id, sizeof(m.id));
	if (endpoint)
		snprintf(m.endpoint, sizeof(m.endpoint), "%s", endpoint);
	if (fleet_msg_encode(&m, msg, sizeof(msg)) < 0)
		return;
	call_eject(f, kind, p, until, endpoint, "EVAL %s 1 %s %s %s %s", fleet_script_extend, key,
		   ustr, f->channel, msg);
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
				       ev->until_us, NULL);
		break;
	case GUARD_EV_OPEN:
		if (f->set.share & FLEET_SHARE_BREAKER)
			publish_extend(f, p, OP_BREAKER, p->key_breaker, FLEET_MSG_OPEN,
				       ev->until_us, NULL);
		break;
	case GUARD_EV_CLOSE:
		if (f->set.share & FLEET_SHARE_BREAKER) {
			struct fleet_msg m = { .kind = FLEET_MSG_CLOSE, .instance = f->instance };
			char msg[FLEET_MSG_MAX + 1];

			memcpy(m.id, p->id, sizeof(m.id));
			if ((f->set.secret
				 ? fleet_msg_encode_signed(&m, f->set.secret, fleet_wall_ms(), msg,
							   sizeof(msg))
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
						     p->id, fleet_wall_ms(), inst,
						     sizeof(inst)) >= 0) {
			rc = fleet_call_with(f, OP_PROBE, p, ms, "EVAL %s 1 %s %s %s",
					     fleet_script_probe_signed, p->key_probe, inst, px);
		}
		if (rc < 0)
			guard_fleet_probe_lock(g, 0, clock_now_us() + 1000000);
		break;
	}
	case GUARD_EV_COUNTS:
		fleet_budget_arm(f);
		break;
	case GUARD_EV_EJECT: {
		char key[FLEET_KEY_MAX];

		/* An endpoint name no message can carry stays this instance's. */
		if ((f->set.share & FLEET_SHARE_EJECTIONS) && ev->endpoint &&
		    fleet_eject_key(key, sizeof(key), f->set.key_prefix, p->id, ev->endpoint) == 0)
			publish_extend(f, p, OP_EJECT, key, FLEET_MSG_EJECT, ev->until_us,
				       ev->endpoint);
		break;
	}
	}
}

/* Reads the ejections of the endpoints p's guard has now: an endpoint
 * it learns of later is ejected by the next message about it. */
static void resync_ejections(struct fleet *f, struct fleet_profile *p)
{
	struct endpoint_snapshot snap[ENDPOINTS_MAX];
	size_t n = endpoints_snapshot(guard_endpoints(p->g), clock_now_us(), snap, ENDPOINTS_MAX);
	char key[FLEET_KEY_MAX];

	for (size_t i = 0; i < n; i++)
		if (fleet_eject_key(key, sizeof(key), f->set.key_prefix, p->id, snap[i].name) == 0)
			call_eject(f, OP_RESYNC_EJECT, p, 0, snap[i].name, "GET %s", key);
}

static void send_resync(struct fleet *f)
{
	for (size_t i = 0; i < f->nprofiles; i++) {
		struct fleet_profile *p = &f->profiles[i];

		if (f->set.share & FLEET_SHARE_COOLDOWN)
			call(f, OP_RESYNC_COOL, p, "GET %s", p->key_cooldown);
		if (f->set.share & FLEET_SHARE_BREAKER)
			call(f, OP_RESYNC_BREAKER, p, "GET %s", p->key_breaker);
		if (f->set.share & FLEET_SHARE_EJECTIONS)
			resync_ejections(f, p);
	}
}

/* ---- configuration ---- */

/* Connects the Redis client with f->set, which it borrows. */
static void connect_redis(struct fleet *f)
{
	const struct redis_setting rs = {
		.unix_socket = f->set.unix_socket,
		.path = f->set.path,
		.host = f->set.host,
		.port = f->set.port,
		.username = f->set.username,
		.password = f->set.password,
		.db = f->set.db,
		.timeout_ms = f->set.timeout_ms,
		.channel = f->channel,
	};

	redis_connect(f->redis, &rs);
}

struct fleet *fleet_new(struct event_base *base, struct fleet_counters *counters)
{
	struct fleet *f = calloc(1, sizeof(*f));
	const struct redis_handlers h = {
		.up = on_up,
		.down = on_down,
		.unsent = on_unsent,
		.reply = on_reply,
		.message = on_message,
		.backoff_ms = fleet_backoff_ms,
		.arg = f,
	};

	if (!f)
		return NULL;
	f->base = base;
	f->counters = counters;
	if (rng_seed_os(&f->rng) < 0)
		goto fail;
	f->instance = rng_next(&f->rng);
	f->redis = redis_new(base, &f->rng, &h);
	f->sync_timer = evtimer_new(base, fleet_budget_timer, f);
	f->rate_timer = evtimer_new(base, fleet_rate_timer, f);
	if (!f->redis || !f->sync_timer || !f->rate_timer)
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
				      "budget:") < 0 ||
			    fleet_key(p->key_rate, sizeof(p->key_rate), s->key_prefix, p->id,
				      "rate:") < 0 ||
			    fleet_key(p->key_instances, sizeof(p->key_instances), s->key_prefix,
				      p->id, "instances") < 0) {
				free(profiles);
				return -ENOMEM;
			}
			p->budget_window_ms = pr->policy.retry.budget_window_ms;
			p->retry_after_max_ms = pr->policy.retry.retry_after_max_ms;
			p->open_for_ms = pr->policy.breaker.open_for_ms;
			p->eject_max_ms = pr->policy.endpoints.eject_base_ms
					      ? pr->policy.endpoints.eject_max_ms
					      : 0;
		}
	}
	if (reconnect) {
		if (config_fleet_copy(&copy, s) < 0) {
			free(profiles);
			return -ENOMEM;
		}
		redis_stop(f->redis);
		event_del(f->sync_timer);
		event_del(f->rate_timer);
		if (f->up || f->logged_down) {
			struct logline *l = log_begin(LOG_INFO, "fleet: configuration changed");

			log_str(l, "redis", s->enabled ? s->redis : "off");
			log_end(l);
		}
		f->up = 0;
		f->logged_down = 0;
		f->counters->up = 0;
		config_fleet_release(&f->set);
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
	f->counters->enabled = s->enabled;
	for (size_t i = 0; i < f->nprofiles; i++) {
		guard_set_hooks(f->profiles[i].g, &hooks);
		guard_fleet_budget_bounded(f->profiles[i].g, f->set.secret != NULL);
	}
	f->rate_shared = s->enabled && config_shares_rate(cfg);
	fleet_rate_state(f);
	if (!s->enabled)
		return 0;
	if (reconnect) {
		connect_redis(f);
	} else if (f->up) {
		set_gates(f, 1);
		send_resync(f);
		fleet_budget_arm(f);
	}
	return 0;
}

void fleet_free(struct fleet *f)
{
	if (!f)
		return;
	/* Commands still waiting come back to on_reply: f must still be whole. */
	redis_free(f->redis);
	f->redis = NULL;
	for (size_t i = 0; i < f->nprofiles; i++)
		guard_set_hooks(f->profiles[i].g, NULL);
	if (f->sync_timer)
		event_free(f->sync_timer);
	if (f->rate_timer)
		event_free(f->rate_timer);
	free(f->profiles);
	config_fleet_release(&f->set);
	free(f);
}
