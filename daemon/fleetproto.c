/* Fleet protocol: names, messages and arithmetic; no I/O. */
#include "fleetproto.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const op_names[FLEET_OP__COUNT] = {
	[FLEET_OP_CONNECT] = "connect",   [FLEET_OP_TIMEOUT] = "timeout",
	[FLEET_OP_COOLDOWN] = "cooldown", [FLEET_OP_BREAKER] = "breaker",
	[FLEET_OP_PROBE] = "probe",       [FLEET_OP_BUDGET] = "budget",
	[FLEET_OP_RESYNC] = "resync",     [FLEET_OP_SUBSCRIBE] = "subscribe",
	[FLEET_OP_MESSAGE] = "message",   [FLEET_OP_OVERFLOW] = "overflow",
};

static const char *const kind_names[FLEET_MSG__COUNT] = {
	[FLEET_MSG_COOLDOWN] = "cooldown",
	[FLEET_MSG_OPEN] = "open",
	[FLEET_MSG_CLOSE] = "close",
};

#define MSG_MAGIC "braced1"
/* A profile name as config.c accepts it: [a-z0-9][a-z0-9_-]{0,62}. */
#define NAME_MAX_LEN 63

const char *fleet_op_name(enum fleet_op op)
{
	return (unsigned)op < FLEET_OP__COUNT ? op_names[op] : "unknown";
}

uint64_t fleet_hash(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

int fleet_profile_id(char *out, size_t outlen, const char *name, const char *url)
{
	int n;

	if (strlen(name) > NAME_MAX_LEN || outlen < FLEET_ID_MAX)
		return -EINVAL;
	n = snprintf(out, outlen, "%s:%016llx", name,
		     (unsigned long long)fleet_hash(url, strlen(url)));
	return n < 0 || (size_t)n >= outlen ? -EINVAL : 0;
}

int fleet_key(char *out, size_t outlen, const char *prefix, const char *id, const char *suffix)
{
	int n = snprintf(out, outlen, "%s{%s}:%s", prefix, id, suffix);

	return n < 0 || (size_t)n >= outlen ? -ENOSPC : 0;
}

int fleet_channel(char *out, size_t outlen, const char *prefix)
{
	int n = snprintf(out, outlen, "%sevents", prefix);

	return n < 0 || (size_t)n >= outlen ? -ENOSPC : 0;
}

int fleet_msg_encode(const struct fleet_msg *m, char *out, size_t outlen)
{
	int n;

	if ((unsigned)m->kind >= FLEET_MSG__COUNT)
		return -EINVAL;
	n = snprintf(out, outlen, MSG_MAGIC " %s %016llx %s %llu", kind_names[m->kind],
		     (unsigned long long)m->instance, m->id, (unsigned long long)m->until_ms);
	return n < 0 || (size_t)n >= outlen ? -ENOSPC : n;
}

int fleet_parse_uint(const char *s, size_t len, uint64_t *ret)
{
	uint64_t v = 0;

	if (len == 0 || len > 19)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*ret = v;
	return 0;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* NAME:HASH with NAME per config.c and HASH 16 lowercase hex digits. */
static int valid_id(const char *s, size_t len)
{
	const char *colon = memchr(s, ':', len);
	size_t nlen;

	if (!colon)
		return 0;
	nlen = (size_t)(colon - s);
	if (nlen == 0 || nlen > NAME_MAX_LEN || len - nlen - 1 != 16)
		return 0;
	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return 0;
	for (size_t i = 1; i < nlen; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return 0;
	}
	for (size_t i = nlen + 1; i < len; i++)
		if (hex_value(s[i]) < 0)
			return 0;
	return 1;
}

/* The next space-separated token of [*p, end); exactly one space between. */
static int token(const char **p, const char *end, const char **ret, size_t *ret_len)
{
	const char *s = *p, *sp;

	if (s >= end)
		return -EINVAL;
	sp = memchr(s, ' ', (size_t)(end - s));
	if (!sp)
		sp = end;
	if (sp == s)
		return -EINVAL;
	*ret = s;
	*ret_len = (size_t)(sp - s);
	*p = sp < end ? sp + 1 : end;
	if (sp < end && *p >= end)
		return -EINVAL; /* a trailing space */
	return 0;
}

int fleet_msg_decode(const char *s, size_t len, struct fleet_msg *ret)
{
	const char *p = s, *end = s + len, *t;
	size_t tl;
	struct fleet_msg m;
	int kind = -1;

	if (!s || len == 0 || len > FLEET_MSG_MAX)
		return -EINVAL;
	memset(&m, 0, sizeof(m));
	if (token(&p, end, &t, &tl) < 0 || tl != strlen(MSG_MAGIC) || memcmp(t, MSG_MAGIC, tl))
		return -EINVAL;
	if (token(&p, end, &t, &tl) < 0)
		return -EINVAL;
	for (int k = 0; k < FLEET_MSG__COUNT; k++)
		if (strlen(kind_names[k]) == tl && memcmp(kind_names[k], t, tl) == 0)
			kind = k;
	if (kind < 0)
		return -EINVAL;
	m.kind = (enum fleet_msg_kind)kind;
	if (token(&p, end, &t, &tl) < 0 || tl != 16)
		return -EINVAL;
	for (size_t i = 0; i < tl; i++) {
		int h = hex_value(t[i]);

		if (h < 0)
			return -EINVAL;
		m.instance = m.instance << 4 | (uint64_t)h;
	}
	if (token(&p, end, &t, &tl) < 0 || tl >= sizeof(m.id) || !valid_id(t, tl))
		return -EINVAL;
	memcpy(m.id, t, tl);
	m.id[tl] = '\0';
	if (token(&p, end, &t, &tl) < 0 || fleet_parse_uint(t, tl, &m.until_ms) < 0)
		return -EINVAL;
	if (p != end)
		return -EINVAL;
	if (m.kind != FLEET_MSG_CLOSE && m.until_ms == 0)
		return -EINVAL;
	*ret = m;
	return 0;
}

void fleet_buckets(uint64_t now_ms, uint32_t window_ms, uint64_t *ret_first, uint32_t *ret_count)
{
	uint64_t now_s = now_ms / 1000;
	uint32_t n = (window_ms + 999) / 1000;

	if (n < 1)
		n = 1;
	if (n > FLEET_MAX_BUCKETS)
		n = FLEET_MAX_BUCKETS;
	if (n > now_s + 1)
		n = (uint32_t)(now_s + 1);
	*ret_first = now_s + 1 - n;
	*ret_count = n;
}

uint32_t fleet_backoff_ms(unsigned n, double r)
{
	uint32_t cap = 100;

	for (unsigned i = 0; i < n && cap < 5000; i++)
		cap *= 2;
	if (cap > 5000)
		cap = 5000;
	if (r < 0 || r >= 1)
		r = 0;
	/* At least 10 ms: a refused connect must not spin the loop. */
	return 10 + (uint32_t)(r * (cap - 10));
}

uint64_t fleet_wall_to_mono(uint64_t wall_ms, uint64_t wall_now, uint64_t mono_now)
{
	if (wall_ms <= wall_now)
		return mono_now;
	return mono_now + (wall_ms - wall_now);
}
