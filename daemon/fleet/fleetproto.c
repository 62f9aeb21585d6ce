/* Fleet protocol: names, messages, signatures and arithmetic; no I/O. */
#include "fleetproto.h"
#include "hash.h"
#include "retry.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

static const char *const op_names[FLEET_OP__COUNT] = {
	[FLEET_OP_CONNECT] = "connect",   [FLEET_OP_TIMEOUT] = "timeout",
	[FLEET_OP_COOLDOWN] = "cooldown", [FLEET_OP_BREAKER] = "breaker",
	[FLEET_OP_PROBE] = "probe",       [FLEET_OP_BUDGET] = "budget",
	[FLEET_OP_RESYNC] = "resync",     [FLEET_OP_SUBSCRIBE] = "subscribe",
	[FLEET_OP_MESSAGE] = "message",   [FLEET_OP_OVERFLOW] = "overflow",
	[FLEET_OP_EJECT] = "eject",       [FLEET_OP_RATE] = "rate_limit",
};

static const char *const reject_names[FLEET_REJECT__COUNT] = {
	[FLEET_REJECT_UNSIGNED] = "unsigned",
	[FLEET_REJECT_BAD_SIGNATURE] = "bad_signature",
	[FLEET_REJECT_STALE] = "stale",
};

static const char *const value_names[FLEET_VALUE__COUNT] = {
	[FLEET_VALUE_COOLDOWN] = "cooldown",
	[FLEET_VALUE_BREAKER] = "breaker",
	[FLEET_VALUE_PROBE] = "probe",
};

static const char *const kind_names[FLEET_MSG__COUNT] = {
	[FLEET_MSG_COOLDOWN] = "cooldown",
	[FLEET_MSG_OPEN] = "open",
	[FLEET_MSG_CLOSE] = "close",
	[FLEET_MSG_EJECT] = "eject",
};

#define MSG_MAGIC "braced1"
/* What an ejection's value starts with. */
#define EJECT_VALUE "eject"
/* A profile name as config.c accepts it: [a-z0-9][a-z0-9_-]{0,62}. */
#define NAME_MAX_LEN 63
/* What a MAC covers before the identity: a new layout gets a new label. */
#define MAC_DOMAIN "braced-fleet1\n"
#define MAC_BYTES 32
/* The bytes a MAC is computed over: domain, identity, timestamp, content. */
#define MAC_INPUT_MAX (sizeof(MAC_DOMAIN) + FLEET_ID_MAX + 22 + FLEET_CONTENT_MAX)
/* The longest message: an eject with the longest identity, a 20-digit
 * instant and the longest endpoint. It must be signable. */
#define EJECT_MSG_MAX                                                                              \
	(sizeof(MSG_MAGIC " eject ") - 1 + 16 + 1 + (FLEET_ID_MAX - 1) + 1 + 20 + 1 +              \
	 (ENDPOINT_NAME_MAX - 1))
_Static_assert(EJECT_MSG_MAX <= FLEET_CONTENT_MAX, "an eject message must fit a signed message");

const char *fleet_op_name(enum fleet_op op)
{
	return (unsigned)op < FLEET_OP__COUNT ? op_names[op] : "unknown";
}

const char *fleet_reject_name(enum fleet_reject why)
{
	return (unsigned)why < FLEET_REJECT__COUNT ? reject_names[why] : "unknown";
}

int fleet_profile_id(char *out, size_t outlen, const char *name, const char *url)
{
	int n;

	if (strlen(name) > NAME_MAX_LEN || outlen < FLEET_ID_MAX)
		return -EINVAL;
	n = snprintf(out, outlen, "%s:%016llx", name,
		     (unsigned long long)hash_fnv1a64(url, strlen(url)));
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

int fleet_endpoint_valid(const char *s, size_t len)
{
	if (!s || len == 0 || len > ENDPOINT_NAME_MAX - 1)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '.' || c == ':' ||
		      c == '[' || c == ']'))
			return 0;
	}
	return 1;
}

int fleet_eject_key(char *out, size_t outlen, const char *prefix, const char *id,
		    const char *endpoint)
{
	char suffix[sizeof("eject:") + ENDPOINT_NAME_MAX];

	if (!fleet_endpoint_valid(endpoint, strnlen(endpoint, ENDPOINT_NAME_MAX)))
		return -EINVAL;
	snprintf(suffix, sizeof(suffix), "eject:%s", endpoint);
	return fleet_key(out, outlen, prefix, id, suffix);
}

int fleet_msg_encode(const struct fleet_msg *m, char *out, size_t outlen)
{
	int eject = m->kind == FLEET_MSG_EJECT;
	int n;

	if ((unsigned)m->kind >= FLEET_MSG__COUNT)
		return -EINVAL;
	if (eject && !fleet_endpoint_valid(m->endpoint, strnlen(m->endpoint, sizeof(m->endpoint))))
		return -EINVAL;
	n = snprintf(out, outlen, MSG_MAGIC " %s %016llx %s %llu%s%s", kind_names[m->kind],
		     (unsigned long long)m->instance, m->id, (unsigned long long)m->until_ms,
		     eject ? " " : "", eject ? m->endpoint : "");
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

/* 16 lowercase hex digits (an instance) into *ret. Returns 0 or -EINVAL. */
static int parse_hex16(const char *s, size_t len, uint64_t *ret)
{
	uint64_t v = 0;

	if (len != 16)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		int h = hex_value(s[i]);

		if (h < 0)
			return -EINVAL;
		v = v << 4 | (uint64_t)h;
	}
	*ret = v;
	return 0;
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
	if (token(&p, end, &t, &tl) < 0 || parse_hex16(t, tl, &m.instance) < 0)
		return -EINVAL;
	if (token(&p, end, &t, &tl) < 0 || tl >= sizeof(m.id) || !valid_id(t, tl))
		return -EINVAL;
	memcpy(m.id, t, tl);
	m.id[tl] = '\0';
	if (token(&p, end, &t, &tl) < 0 || fleet_parse_uint(t, tl, &m.until_ms) < 0)
		return -EINVAL;
	if (m.kind == FLEET_MSG_EJECT) {
		if (token(&p, end, &t, &tl) < 0 || !fleet_endpoint_valid(t, tl))
			return -EINVAL;
		memcpy(m.endpoint, t, tl);
		m.endpoint[tl] = '\0';
	}
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

uint32_t fleet_backoff_ms(unsigned n, struct rng *rng)
{
	/* At least 10 ms: a refused connect must not spin the loop. */
	static const struct retry_backoff reconnect = {
		.base_ms = 100,
		.max_ms = 5000,
		.min_ms = 10,
		.jitter = JITTER_FULL,
	};

	return retry_backoff_wait(&reconnect, n + 1, 0, rng);
}

uint64_t fleet_wall_to_mono(uint64_t wall_ms, uint64_t wall_now, uint64_t mono_now)
{
	if (wall_ms <= wall_now)
		return mono_now;
	return mono_now + (wall_ms - wall_now);
}

/* ---- signatures ---- */

uint64_t fleet_max_age_ms(uint32_t sync_interval_ms)
{
	uint64_t age = (uint64_t)sync_interval_ms * FLEET_AGE_INTERVALS;

	return age < FLEET_MIN_AGE_MS ? FLEET_MIN_AGE_MS : age;
}

static int mac_of(const char *secret, const char *id, uint64_t ts, const char *content, size_t len,
		  unsigned char out[MAC_BYTES])
{
	char in[MAC_INPUT_MAX];
	unsigned int mdlen = 0;
	size_t slen;
	int n;

	if (!secret || !(slen = strlen(secret)) || slen > FLEET_SECRET_MAX ||
	    len > FLEET_CONTENT_MAX || strlen(id) >= FLEET_ID_MAX)
		return -EINVAL;
	n = snprintf(in, sizeof(in), MAC_DOMAIN "%s\n%llu\n", id, (unsigned long long)ts);
	if (n < 0 || (size_t)n + len > sizeof(in))
		return -EINVAL;
	memcpy(in + n, content, len);
	if (!HMAC(EVP_sha256(), secret, (int)slen, (const unsigned char *)in, (size_t)n + len, out,
		  &mdlen) ||
	    mdlen != MAC_BYTES)
		return -EIO;
	return 0;
}

int fleet_seal(const char *secret, const char *id, uint64_t ts_ms, char *buf, size_t len,
	       size_t size)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char mac[MAC_BYTES];
	char tail[FLEET_SEAL_MAX + 1];
	int n, e;

	e = mac_of(secret, id, ts_ms, buf, len, mac);
	if (e < 0)
		return e;
	n = snprintf(tail, sizeof(tail), " %llu ", (unsigned long long)ts_ms);
	if (n < 0 || (size_t)n + FLEET_MAC_HEX >= sizeof(tail))
		return -EINVAL;
	for (size_t i = 0; i < MAC_BYTES; i++) {
		tail[n++] = hex[mac[i] >> 4];
		tail[n++] = hex[mac[i] & 15];
	}
	if (len + (size_t)n >= size)
		return -ENOSPC;
	memcpy(buf + len, tail, (size_t)n);
	buf[len + (size_t)n] = '\0';
	return (int)(len + (size_t)n);
}

/* Splits "CONTENT TS MAC": *ret_len, *ret_ts and the MAC's bytes. Returns
 * 0, or -ENOMSG when s does not end in a signature's shape. */
static int split_seal(const char *s, size_t len, size_t *ret_len, uint64_t *ret_ts,
		      unsigned char mac[MAC_BYTES])
{
	size_t end, start;

	if (!s || len < FLEET_MAC_HEX + 4 || len > FLEET_MSG_MAX ||
	    s[len - FLEET_MAC_HEX - 1] != ' ')
		return -ENOMSG;
	for (size_t i = 0; i < MAC_BYTES; i++) {
		int hi = hex_value(s[len - FLEET_MAC_HEX + 2 * i]);
		int lo = hex_value(s[len - FLEET_MAC_HEX + 2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -ENOMSG;
		mac[i] = (unsigned char)(hi << 4 | lo);
	}
	end = len - FLEET_MAC_HEX - 1;
	start = end;
	while (start > 0 && s[start - 1] >= '0' && s[start - 1] <= '9')
		start--;
	if (start < 2 || s[start - 1] != ' ' ||
	    fleet_parse_uint(s + start, end - start, ret_ts) < 0)
		return -ENOMSG;
	*ret_len = start - 1;
	return 0;
}

/* Verifies a split signature for id, then its age. */
static int check_seal(const char *secret, const char *id, const char *content, size_t len,
		      uint64_t ts, const unsigned char mac[MAC_BYTES], uint64_t now_ms,
		      uint64_t max_age_ms, enum fleet_reject *ret_why)
{
	unsigned char want[MAC_BYTES];

	if (mac_of(secret, id, ts, content, len, want) < 0 ||
	    CRYPTO_memcmp(want, mac, MAC_BYTES) != 0) {
		*ret_why = FLEET_REJECT_BAD_SIGNATURE;
		return -EBADMSG;
	}
	if (ts > now_ms + FLEET_SKEW_MS || (now_ms > max_age_ms && ts < now_ms - max_age_ms)) {
		*ret_why = FLEET_REJECT_STALE;
		return -EBADMSG;
	}
	return 0;
}

int fleet_unseal(const char *secret, const char *id, const char *s, size_t len, uint64_t now_ms,
		 uint64_t max_age_ms, size_t *ret_len, enum fleet_reject *ret_why)
{
	unsigned char mac[MAC_BYTES];
	uint64_t ts;
	size_t clen;

	if (split_seal(s, len, &clen, &ts, mac) < 0) {
		*ret_why = FLEET_REJECT_UNSIGNED;
		return -EBADMSG;
	}
	if (check_seal(secret, id, s, clen, ts, mac, now_ms, max_age_ms, ret_why) < 0)
		return -EBADMSG;
	*ret_len = clen;
	return 0;
}

int fleet_msg_encode_signed(const struct fleet_msg *m, const char *secret, uint64_t ts_ms,
			    char *out, size_t outlen)
{
	int n = fleet_msg_encode(m, out, outlen);

	return n < 0 ? n : fleet_seal(secret, m->id, ts_ms, out, (size_t)n, outlen);
}

int fleet_msg_decode_signed(const char *s, size_t len, const char *secret, uint64_t now_ms,
			    uint64_t max_age_ms, struct fleet_msg *ret, enum fleet_reject *ret_why)
{
	unsigned char mac[MAC_BYTES];
	struct fleet_msg m;
	uint64_t ts;
	size_t clen;

	if (split_seal(s, len, &clen, &ts, mac) < 0) {
		*ret_why = FLEET_REJECT_UNSIGNED;
		return -EBADMSG;
	}
	if (fleet_msg_decode(s, clen, &m) < 0)
		return -EINVAL;
	if (check_seal(secret, m.id, s, clen, ts, mac, now_ms, max_age_ms, ret_why) < 0)
		return -EBADMSG;
	*ret = m;
	return 0;
}

int fleet_value_encode_signed(enum fleet_value_kind kind, uint64_t v, const char *secret,
			      const char *id, uint64_t ts_ms, char *out, size_t outlen)
{
	int n;

	if ((unsigned)kind >= FLEET_VALUE__COUNT)
		return -EINVAL;
	/* An instance is 64 random bits: hex, as in messages. */
	n = snprintf(out, outlen, kind == FLEET_VALUE_PROBE ? "%s %016llx" : "%s %llu",
		     value_names[kind], (unsigned long long)v);
	if (n < 0 || (size_t)n >= outlen)
		return -ENOSPC;
	return fleet_seal(secret, id, ts_ms, out, (size_t)n, outlen);
}

int fleet_value_decode_signed(enum fleet_value_kind kind, const char *s, size_t len,
			      const char *secret, const char *id, uint64_t now_ms,
			      uint64_t max_age_ms, uint64_t *ret_v, enum fleet_reject *ret_why)
{
	size_t clen, nlen;

	if ((unsigned)kind >= FLEET_VALUE__COUNT) {
		*ret_why = FLEET_REJECT_BAD_SIGNATURE;
		return -EBADMSG;
	}
	if (fleet_unseal(secret, id, s, len, now_ms, max_age_ms, &clen, ret_why) < 0)
		return -EBADMSG;
	nlen = strlen(value_names[kind]);
	/* Signed by the fleet, but for another key: a copy, not this value. */
	if (clen <= nlen + 1 || memcmp(s, value_names[kind], nlen) != 0 || s[nlen] != ' ' ||
	    (kind == FLEET_VALUE_PROBE
		 ? parse_hex16(s + nlen + 1, clen - nlen - 1, ret_v)
		 : fleet_parse_uint(s + nlen + 1, clen - nlen - 1, ret_v)) < 0) {
		*ret_why = FLEET_REJECT_BAD_SIGNATURE;
		return -EBADMSG;
	}
	return 0;
}

int fleet_eject_value_encode_signed(uint64_t until_ms, const char *endpoint, const char *secret,
				    const char *id, uint64_t ts_ms, char *out, size_t outlen)
{
	int n;

	if (!fleet_endpoint_valid(endpoint, strnlen(endpoint, ENDPOINT_NAME_MAX)))
		return -EINVAL;
	n = snprintf(out, outlen, EJECT_VALUE " %llu %s", (unsigned long long)until_ms, endpoint);
	if (n < 0 || (size_t)n >= outlen)
		return -ENOSPC;
	return fleet_seal(secret, id, ts_ms, out, (size_t)n, outlen);
}

int fleet_eject_value_decode_signed(const char *s, size_t len, const char *secret, const char *id,
				    const char *endpoint, uint64_t now_ms, uint64_t max_age_ms,
				    uint64_t *ret_until_ms, enum fleet_reject *ret_why)
{
	const char *p, *end, *t;
	size_t clen, tl;
	uint64_t until;

	if (fleet_unseal(secret, id, s, len, now_ms, max_age_ms, &clen, ret_why) < 0)
		return -EBADMSG;
	/* Signed by the fleet, but for another key: a copy, not this value. */
	p = s;
	end = s + clen;
	if (token(&p, end, &t, &tl) < 0 || tl != strlen(EJECT_VALUE) ||
	    memcmp(t, EJECT_VALUE, tl) != 0 || token(&p, end, &t, &tl) < 0 ||
	    fleet_parse_uint(t, tl, &until) < 0 || token(&p, end, &t, &tl) < 0 || p != end ||
	    tl != strlen(endpoint) || memcmp(t, endpoint, tl) != 0) {
		*ret_why = FLEET_REJECT_BAD_SIGNATURE;
		return -EBADMSG;
	}
	*ret_until_ms = until;
	return 0;
}

/* ---- the scripts fleet.c runs in Redis ---- */

/* Extends KEYS[1] to ARGV[1] (wall-clock ms) if later, expiring then, and
 * publishes ARGV[3] on ARGV[2] when it did. */
const char fleet_script_extend[] = "local cur = tonumber(redis.call('GET', KEYS[1]) or '0') or 0\n"
				   "local u = tonumber(ARGV[1])\n"
				   "if u > cur then\n"
				   "  redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[1])\n"
				   "  redis.call('PUBLISH', ARGV[2], ARGV[3])\n"
				   "  return 1\n"
				   "end\n"
				   "return 0\n";

/* Signed: the same, storing the signed value ARGV[4]. Redis cannot check
 * a signature (the secret stays out of Redis), so it only reads the window
 * end out of "KIND UNTIL TS MAC" (or "eject UNTIL ENDPOINT TS MAC"); when
 * it does not extend, it returns the value it holds, for braced to verify
 * (and replace when forged). */
const char fleet_script_extend_signed[] =
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
const char fleet_script_probe_signed[] =
    "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end\n"
    "return redis.call('GET', KEYS[1])\n";

/* Replaces a value braced rejected: if KEYS[1] still holds ARGV[1], sets
 * ARGV[2] for ARGV[3] ms and publishes ARGV[5] (when not empty) on
 * ARGV[4]; 1 when it did, 0 when the key changed meanwhile. */
const char fleet_script_replace[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
    "redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])\n"
    "if ARGV[5] ~= '' then redis.call('PUBLISH', ARGV[4], ARGV[5]) end\n"
    "return 1\n";

/* Adds ARGV[4] requests and ARGV[5] retries to the bucket of second
 * ARGV[1] (KEYS[1] .. second, expiring after ARGV[3] seconds) and returns
 * the totals of the seconds ARGV[2] .. ARGV[1]. */
const char fleet_script_rate[] = "local now = tonumber(ARGV[1])\n"
				 "local me = ARGV[2]\n"
				 "local cap = tonumber(ARGV[4])\n"
				 "local stale = tonumber(ARGV[5])\n"
				 "redis.call('ZADD', KEYS[2], now, me)\n"
				 "redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 60000)\n"
				 "redis.call('PEXPIRE', KEYS[2], 120000)\n"
				 "local n = redis.call('ZCARD', KEYS[2])\n"
				 "redis.call('HSET', KEYS[1], me, ARGV[3] .. ':' .. ARGV[1])\n"
				 "redis.call('PEXPIRE', KEYS[1], 120000)\n"
				 "local all = redis.call('HGETALL', KEYS[1])\n"
				 "local ds = {}\n"
				 "for i = 1, #all, 2 do\n"
				 "  local d, at = string.match(all[i + 1], '^(%d+):(%d+)$')\n"
				 "  if d and tonumber(at) >= now - stale then\n"
				 "    ds[#ds + 1] = {all[i], tonumber(d)}\n"
				 "  else\n"
				 "    redis.call('HDEL', KEYS[1], all[i])\n"
				 "  end\n"
				 "end\n"
				 "local floor = cap / (4 * #ds)\n"
				 "for _, e in ipairs(ds) do e[2] = math.max(e[2], floor) end\n"
				 "table.sort(ds, function(a, b) return a[2] < b[2] end)\n"
				 "local left, k, mine = cap, #ds, 0\n"
				 "for _, e in ipairs(ds) do\n"
				 "  local s = math.min(e[2], left / k)\n"
				 "  if e[1] == me then mine = s end\n"
				 "  left = left - s\n"
				 "  k = k - 1\n"
				 "end\n"
				 "mine = mine + left / #ds\n"
				 "return {math.floor(mine), n, #ds}\n";

const char fleet_script_budget[] =
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
