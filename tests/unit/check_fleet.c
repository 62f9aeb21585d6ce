/* The fleet protocol (fleetproto.c): identities, keys, strict message
 * decoding of hostile input, signatures (fleet.secret), budget arithmetic
 * and backoff; the fleet: block of the configuration. The guard's fleet
 * verbs are in check_guard.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "config.h"
#include "fleetproto.h"
#include "hash.h"
#include "rng.h"
#include "suites.h"

START_TEST(test_identity_and_keys)
{
	char a[FLEET_ID_MAX], b[FLEET_ID_MAX], key[FLEET_KEY_MAX];
	char longname[70];

	/* FNV-1a 64 reference values. */
	ck_assert_uint_eq(hash_fnv1a64("", 0), 0xcbf29ce484222325ull);
	ck_assert_uint_eq(hash_fnv1a64("a", 1), 0xaf63dc4c8601ec8cull);
	ck_assert_int_eq(fleet_profile_id(a, sizeof(a), "weather", "https://a.example"), 0);
	ck_assert_int_eq(fleet_profile_id(b, sizeof(b), "weather", "https://b.example"), 0);
	ck_assert_str_ne(a, b); /* same name, another upstream: never shared */
	ck_assert_uint_eq(strlen(a), strlen("weather:") + 16);
	ck_assert_int_eq(fleet_key(key, sizeof(key), "braced:", a, "cooldown"), 0);
	ck_assert_int_eq(strncmp(key, "braced:{weather:", 16), 0);
	ck_assert_str_eq(key + strlen(key) - strlen("}:cooldown"), "}:cooldown");
	ck_assert_int_eq(fleet_key(key, 10, "braced:", a, "cooldown"), -ENOSPC);
	ck_assert_int_eq(fleet_channel(key, sizeof(key), "p:"), 0);
	ck_assert_str_eq(key, "p:events");
	memset(longname, 'a', 64);
	longname[64] = '\0';
	ck_assert_int_lt(fleet_profile_id(a, sizeof(a), longname, "u"), 0);
}
END_TEST

START_TEST(test_message_round_trip)
{
	struct fleet_msg m = { .kind = FLEET_MSG_OPEN,
			       .instance = 0x0123456789abcdefull,
			       .until_ms = 1700000000123ull },
			 out;
	char buf[FLEET_MSG_MAX + 1];
	int n;

	ck_assert_int_eq(fleet_profile_id(m.id, sizeof(m.id), "p-1", "http://x"), 0);
	n = fleet_msg_encode(&m, buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(fleet_msg_decode(buf, (size_t)n, &out), 0);
	ck_assert_int_eq(out.kind, FLEET_MSG_OPEN);
	ck_assert_uint_eq(out.instance, m.instance);
	ck_assert_str_eq(out.id, m.id);
	ck_assert_uint_eq(out.until_ms, m.until_ms);
	m.kind = FLEET_MSG_CLOSE;
	m.until_ms = 0;
	n = fleet_msg_encode(&m, buf, sizeof(buf));
	ck_assert_int_eq(fleet_msg_decode(buf, (size_t)n, &out), 0);
	ck_assert_int_eq(out.kind, FLEET_MSG_CLOSE);
}
END_TEST

START_TEST(test_hostile_messages_refused)
{
	static const char *const bad[] = {
		"",
		"braced1",
		"braced2 open 0123456789abcdef p:0123456789abcdef 5",
		"braced1 opem 0123456789abcdef p:0123456789abcdef 5",
		"braced1 open 0123456789abcde p:0123456789abcdef 5",
		"braced1 open 0123456789ABCDEF p:0123456789abcdef 5",
		"braced1 open 0123456789abcdef P:0123456789abcdef 5",
		"braced1 open 0123456789abcdef p:0123456789abcde 5",
		"braced1 open 0123456789abcdef p0123456789abcdef 5",
		"braced1 open 0123456789abcdef :0123456789abcdef 5",
		"braced1 open 0123456789abcdef p:0123456789abcdef -5",
		"braced1 open 0123456789abcdef p:0123456789abcdef 0",
		"braced1 open 0123456789abcdef p:0123456789abcdef 5 ",
		"braced1 open 0123456789abcdef p:0123456789abcdef 5 6",
		"braced1  open 0123456789abcdef p:0123456789abcdef 5",
		"braced1 open 0123456789abcdef p:0123456789abcdef 99999999999999999999",
		"braced1 cooldown 0123456789abcdef p:0123456789abcdef 5x",
	};
	struct fleet_msg out;
	char big[FLEET_MSG_MAX + 10];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(fleet_msg_decode(bad[i], strlen(bad[i]), &out) < 0, "accepted '%s'",
			      bad[i]);
	/* An embedded NUL, and a message over the limit. */
	ck_assert_int_lt(
	    fleet_msg_decode("braced1 open 0123456789abcdef p:0123456789abcdef 5\0", 51, &out), 0);
	memset(big, 'a', sizeof(big));
	ck_assert_int_lt(fleet_msg_decode(big, sizeof(big), &out), 0);
	ck_assert_int_lt(fleet_msg_decode(NULL, 0, &out), 0);
	ck_assert_int_eq(
	    fleet_msg_decode("braced1 cooldown 0123456789abcdef p:0123456789abcdef 5", 54, &out),
	    0);
}
END_TEST

START_TEST(test_eject_messages)
{
	static const char *const good[] = {
		"braced1 eject 0123456789abcdef p:0123456789abcdef 5 127.0.0.2:8080",
		"braced1 eject 0123456789abcdef p:0123456789abcdef 5 [::1]:443",
		"braced1 eject 0123456789abcdef p:0123456789abcdef 5 [2001:db8::a:f]:1",
	};
	static const char *const bad[] = {
		/* missing fields */
		"braced1 eject 0123456789abcdef p:0123456789abcdef 5",
		"braced1 eject 0123456789abcdef p:0123456789abcdef 5 ",
		"braced1 eject 0123456789abcdef p:0123456789abcdef 127.0.0.2:8080",
		"braced1 eject 0123456789abcdef 5 127.0.0.2:8080",
		"braced1 eject p:0123456789abcdef 5 127.0.0.2:8080",
		/* an instant of 0, or no number */
		"braced1 eject 0123456789abcdef p:0123456789abcdef 0 127.0.0.2:8080",
		"braced1 eject 0123456789abcdef p:0123456789abcdef x 127.0.0.2:8080",
		/* characters an address never has */
		"braced1 eject 0123456789abcdef p:0123456789abcdef 5 db.example:80",
		"braced1 eject 0123456789abcdef p:0123456789abcdef 5 [2001:DB8::1]:1",
		"braced1 eject 0123456789abcdef p:0123456789abcdef 5 127.0.0.2:80/x",
		"braced1 eject 0123456789abcdef p:0123456789abcdef 5 127.0.0.2:80{x}",
		"braced1 eject 0123456789abcdef p:0123456789abcdef 5 127.0.0.2:-80",
		/* one field too many, two spaces */
		"braced1 eject 0123456789abcdef p:0123456789abcdef 5 127.0.0.2:80 x",
		"braced1 eject 0123456789abcdef p:0123456789abcdef 5  127.0.0.2:80",
		/* an endpoint on another kind */
		"braced1 open 0123456789abcdef p:0123456789abcdef 5 127.0.0.2:80",
		"braced1 close 0123456789abcdef p:0123456789abcdef 0 127.0.0.2:80",
	};
	char buf[FLEET_MSG_MAX + 1], longest[ENDPOINT_NAME_MAX + 1];
	struct fleet_msg m = { .kind = FLEET_MSG_EJECT,
			       .instance = 0x0123456789abcdefull,
			       .until_ms = 1700000000123ull,
			       .endpoint = "127.0.0.2:8080" },
			 out;
	char name[64];
	int n;

	/* round trip, with the longest identity */
	memset(name, 'n', 63);
	name[63] = '\0';
	ck_assert_int_eq(fleet_profile_id(m.id, sizeof(m.id), name, "http://x"), 0);
	n = fleet_msg_encode(&m, buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	ck_assert_str_eq(buf + n - strlen(" 1700000000123 127.0.0.2:8080"),
			 " 1700000000123 127.0.0.2:8080");
	ck_assert_int_eq(fleet_msg_decode(buf, (size_t)n, &out), 0);
	ck_assert_int_eq(out.kind, FLEET_MSG_EJECT);
	ck_assert_uint_eq(out.instance, m.instance);
	ck_assert_str_eq(out.id, m.id);
	ck_assert_uint_eq(out.until_ms, m.until_ms);
	ck_assert_str_eq(out.endpoint, "127.0.0.2:8080");
	/* the longest endpoint goes through, one byte more does not */
	memset(longest, '1', ENDPOINT_NAME_MAX);
	longest[ENDPOINT_NAME_MAX - 1] = '\0';
	memcpy(m.endpoint, longest, ENDPOINT_NAME_MAX);
	n = fleet_msg_encode(&m, buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(fleet_msg_decode(buf, (size_t)n, &out), 0);
	ck_assert_str_eq(out.endpoint, longest);
	ck_assert_int_eq(fleet_msg_encode_signed(&m, "0123456789abcdef-fleet", 1700000000000ull,
						 buf, sizeof(buf)) > 0,
			 1);
	ck_assert_int_le((int)strlen(buf), FLEET_MSG_MAX);
	n = snprintf(buf, sizeof(buf), "braced1 eject 0123456789abcdef p:0123456789abcdef 5 %s1",
		     longest);
	ck_assert_int_lt(fleet_msg_decode(buf, (size_t)n, &out), 0);
	/* encoding refuses what decoding would */
	strcpy(m.endpoint, "");
	ck_assert_int_eq(fleet_msg_encode(&m, buf, sizeof(buf)), -EINVAL);
	strcpy(m.endpoint, "db.example:80");
	ck_assert_int_eq(fleet_msg_encode(&m, buf, sizeof(buf)), -EINVAL);
	/* the other kinds carry none */
	m.kind = FLEET_MSG_OPEN;
	n = fleet_msg_encode(&m, buf, sizeof(buf));
	ck_assert_int_eq(fleet_msg_decode(buf, (size_t)n, &out), 0);
	ck_assert_str_eq(out.endpoint, "");

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(fleet_msg_decode(good[i], strlen(good[i]), &out) == 0, "refused '%s'",
			      good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(fleet_msg_decode(bad[i], strlen(bad[i]), &out) < 0, "accepted '%s'",
			      bad[i]);
	/* an embedded NUL in the endpoint */
	{
		static const char nul[] =
		    "braced1 eject 0123456789abcdef p:0123456789abcdef 5 1.2.3.4\0:80";

		ck_assert_int_lt(fleet_msg_decode(nul, sizeof(nul) - 1, &out), 0);
	}

	ck_assert(fleet_endpoint_valid("[fe80::1]:8443", 14));
	ck_assert(!fleet_endpoint_valid("", 0));
	ck_assert(!fleet_endpoint_valid(NULL, 0));
	ck_assert(!fleet_endpoint_valid("1.2.3.4 :80", 11));
}
END_TEST

START_TEST(test_eject_keys)
{
	char id[FLEET_ID_MAX], key[FLEET_KEY_MAX], prefix[CONFIG_FLEET_PREFIX_MAX + 1],
	    longest[ENDPOINT_NAME_MAX], name[64];

	ck_assert_int_eq(fleet_profile_id(id, sizeof(id), "weather", "https://a.example"), 0);
	ck_assert_int_eq(fleet_eject_key(key, sizeof(key), "braced:", id, "127.0.0.2:8080"), 0);
	ck_assert_int_eq(strncmp(key, "braced:{weather:", 16), 0);
	ck_assert_str_eq(key + strlen(key) - strlen("}:eject:127.0.0.2:8080"),
			 "}:eject:127.0.0.2:8080");
	ck_assert_int_eq(fleet_eject_key(key, sizeof(key), "braced:", id, "a b"), -EINVAL);
	ck_assert_int_eq(fleet_eject_key(key, sizeof(key), "braced:", id, "*"), -EINVAL);
	ck_assert_int_eq(fleet_eject_key(key, 20, "braced:", id, "1.2.3.4:5"), -ENOSPC);
	/* the longest prefix, identity and endpoint fit */
	memset(prefix, 'x', CONFIG_FLEET_PREFIX_MAX);
	prefix[CONFIG_FLEET_PREFIX_MAX] = '\0';
	memset(name, 'n', 63);
	name[63] = '\0';
	memset(longest, '1', ENDPOINT_NAME_MAX - 1);
	longest[ENDPOINT_NAME_MAX - 1] = '\0';
	ck_assert_int_eq(fleet_profile_id(id, sizeof(id), name, "u"), 0);
	ck_assert_int_eq(fleet_eject_key(key, sizeof(key), prefix, id, longest), 0);
}
END_TEST

/* ---- signatures ---- */

#define SECRET "0123456789abcdef-fleet"
#define NOW 1700000000000ull

static int sign_msg(enum fleet_msg_kind kind, const char *secret, uint64_t ts, char *buf)
{
	struct fleet_msg m = { .kind = kind, .instance = 0xfeedull, .until_ms = NOW + 5000 };

	if (kind == FLEET_MSG_EJECT)
		strcpy(m.endpoint, "127.0.0.2:8080");
	ck_assert_int_eq(fleet_profile_id(m.id, sizeof(m.id), "p-1", "http://x"), 0);
	return fleet_msg_encode_signed(&m, secret, ts, buf, FLEET_MSG_MAX + 1);
}

/* Decodes s signed at NOW with a window of 2 s; the reason or -1 when good. */
static int verdict(const char *s, size_t len, struct fleet_msg *m)
{
	enum fleet_reject why = FLEET_REJECT__COUNT;
	int e = fleet_msg_decode_signed(s, len, SECRET, NOW, 2000, m, &why);

	if (e == 0)
		return -1;
	ck_assert_int_eq(e, -EBADMSG);
	return (int)why;
}

START_TEST(test_signed_messages)
{
	char buf[FLEET_MSG_MAX + 1], other[FLEET_MSG_MAX + 1], *mac;
	struct fleet_msg m;
	int n;

	ck_assert_uint_eq(fleet_max_age_ms(100), 2000); /* the floor */
	ck_assert_uint_eq(fleet_max_age_ms(1000), 5000);
	ck_assert_str_eq(fleet_reject_name(FLEET_REJECT_BAD_SIGNATURE), "bad_signature");

	/* good, for every kind */
	for (int k = 0; k < FLEET_MSG__COUNT; k++) {
		n = sign_msg((enum fleet_msg_kind)k, SECRET, NOW, buf);
		ck_assert_int_gt(n, 0);
		ck_assert_int_eq(verdict(buf, (size_t)n, &m), -1);
		ck_assert_int_eq(m.kind, k);
		ck_assert_uint_eq(m.instance, 0xfeedull);
	}
	n = sign_msg(FLEET_MSG_OPEN, SECRET, NOW, buf);
	ck_assert_uint_eq(strlen(buf), (size_t)n);
	ck_assert_int_le(n, FLEET_MSG_MAX);
	ck_assert_int_eq(verdict(buf, (size_t)n, &m), -1);
	ck_assert_uint_eq(m.until_ms, NOW + 5000);

	/* unsigned: today's form, and a signature's shape cut short */
	ck_assert_int_eq(verdict("braced1 open 000000000000feed p-1:0123456789abcdef 5",
				 strlen("braced1 open 000000000000feed p-1:0123456789abcdef 5"),
				 &m),
			 FLEET_REJECT_UNSIGNED);
	for (size_t cut = 1; cut < FLEET_MAC_HEX + 2; cut++)
		ck_assert_int_eq(verdict(buf, (size_t)n - cut, &m), FLEET_REJECT_UNSIGNED);
	ck_assert_int_eq(verdict(buf, 0, &m), FLEET_REJECT_UNSIGNED);

	/* mis-signed: another secret, one flipped digit of the MAC, of the
	 * timestamp, of the content; a content that no longer decodes */
	n = sign_msg(FLEET_MSG_OPEN, "another secret, same length", NOW, other);
	ck_assert_int_eq(verdict(other, (size_t)n, &m), FLEET_REJECT_BAD_SIGNATURE);
	n = sign_msg(FLEET_MSG_OPEN, SECRET, NOW, buf);
	mac = buf + n - FLEET_MAC_HEX;
	mac[10] = mac[10] == '0' ? '1' : '0';
	ck_assert_int_eq(verdict(buf, (size_t)n, &m), FLEET_REJECT_BAD_SIGNATURE);
	n = sign_msg(FLEET_MSG_OPEN, SECRET, NOW, buf);
	buf[n - FLEET_MAC_HEX - 2] = buf[n - FLEET_MAC_HEX - 2] == '0' ? '1' : '0';
	ck_assert_int_eq(verdict(buf, (size_t)n, &m), FLEET_REJECT_BAD_SIGNATURE);
	n = sign_msg(FLEET_MSG_OPEN, SECRET, NOW, buf);
	memcpy(strstr(buf, " open "), " cool ", 6);
	ck_assert_int_eq(fleet_msg_decode_signed(buf, (size_t)n, SECRET, NOW, 2000, &m,
						 &(enum fleet_reject){ 0 }),
			 -EINVAL);
	/* the open message of one profile, its identity rewritten to another's */
	n = sign_msg(FLEET_MSG_OPEN, SECRET, NOW, buf);
	memcpy(strstr(buf, "p-1:"), "p-2:", 4);
	ck_assert_int_eq(verdict(buf, (size_t)n, &m), FLEET_REJECT_BAD_SIGNATURE);
	/* uppercase hex is not the form written */
	n = sign_msg(FLEET_MSG_OPEN, SECRET, NOW, buf);
	for (char *c = buf + n - FLEET_MAC_HEX; *c; c++)
		if (*c >= 'a' && *c <= 'f')
			*c = (char)(*c - 'a' + 'A');
	ck_assert_int_eq(verdict(buf, (size_t)n, &m), FLEET_REJECT_UNSIGNED);

	/* stale: older than the window (a replay), or too far ahead */
	n = sign_msg(FLEET_MSG_OPEN, SECRET, NOW - 2000, buf);
	ck_assert_int_eq(verdict(buf, (size_t)n, &m), -1);
	n = sign_msg(FLEET_MSG_OPEN, SECRET, NOW - 2001, buf);
	ck_assert_int_eq(verdict(buf, (size_t)n, &m), FLEET_REJECT_STALE);
	n = sign_msg(FLEET_MSG_OPEN, SECRET, NOW + FLEET_SKEW_MS, buf);
	ck_assert_int_eq(verdict(buf, (size_t)n, &m), -1);
	n = sign_msg(FLEET_MSG_OPEN, SECRET, NOW + FLEET_SKEW_MS + 1, buf);
	ck_assert_int_eq(verdict(buf, (size_t)n, &m), FLEET_REJECT_STALE);
	/* a forged stale message is first of all forged */
	n = sign_msg(FLEET_MSG_OPEN, "another secret, same length", NOW - 60000, other);
	ck_assert_int_eq(verdict(other, (size_t)n, &m), FLEET_REJECT_BAD_SIGNATURE);

	/* sealing refuses what it cannot hold */
	ck_assert_int_eq(sign_msg(FLEET_MSG_OPEN, "", NOW, buf), -EINVAL);
	strcpy(buf, "x");
	ck_assert_int_eq(fleet_seal(SECRET, "p:0123456789abcdef", NOW, buf, 1, 40), -ENOSPC);
	ck_assert_str_eq(buf, "x");
}
END_TEST

START_TEST(test_signed_values)
{
	char id[FLEET_ID_MAX], other[FLEET_ID_MAX], buf[FLEET_MSG_MAX + 1];
	enum fleet_reject why;
	uint64_t v = 0;
	int n;

	ck_assert_int_eq(fleet_profile_id(id, sizeof(id), "p", "http://a"), 0);
	ck_assert_int_eq(fleet_profile_id(other, sizeof(other), "p", "http://b"), 0);
	n = fleet_value_encode_signed(FLEET_VALUE_BREAKER, NOW + 3000, SECRET, id, NOW, buf,
				      sizeof(buf));
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(strncmp(buf, "breaker 1700000003000 1700000000000 ", 36), 0);
	/* good */
	ck_assert_int_eq(fleet_value_decode_signed(FLEET_VALUE_BREAKER, buf, (size_t)n, SECRET, id,
						   NOW + 4000, 5000, &v, &why),
			 0);
	ck_assert_uint_eq(v, NOW + 3000);
	/* another profile's key (same name, another upstream) */
	ck_assert_int_eq(fleet_value_decode_signed(FLEET_VALUE_BREAKER, buf, (size_t)n, SECRET,
						   other, NOW, 5000, &v, &why),
			 -EBADMSG);
	ck_assert_int_eq(why, FLEET_REJECT_BAD_SIGNATURE);
	/* the same profile's other key: a signed window copied over */
	ck_assert_int_eq(fleet_value_decode_signed(FLEET_VALUE_COOLDOWN, buf, (size_t)n, SECRET, id,
						   NOW, 5000, &v, &why),
			 -EBADMSG);
	ck_assert_int_eq(why, FLEET_REJECT_BAD_SIGNATURE);
	/* stale */
	ck_assert_int_eq(fleet_value_decode_signed(FLEET_VALUE_BREAKER, buf, (size_t)n, SECRET, id,
						   NOW + 5001, 5000, &v, &why),
			 -EBADMSG);
	ck_assert_int_eq(why, FLEET_REJECT_STALE);
	/* what braced wrote without a secret, and what an attacker writes */
	ck_assert_int_eq(fleet_value_decode_signed(FLEET_VALUE_BREAKER, "1700000003000", 13, SECRET,
						   id, NOW, 5000, &v, &why),
			 -EBADMSG);
	ck_assert_int_eq(why, FLEET_REJECT_UNSIGNED);
	ck_assert_int_eq(fleet_value_decode_signed(FLEET_VALUE_PROBE, "probe 1", 7, SECRET, id, NOW,
						   5000, &v, &why),
			 -EBADMSG);
	ck_assert_int_eq(why, FLEET_REJECT_UNSIGNED);
	/* truncated */
	ck_assert_int_eq(fleet_value_decode_signed(FLEET_VALUE_BREAKER, buf, (size_t)n - 1, SECRET,
						   id, NOW, 5000, &v, &why),
			 -EBADMSG);
	ck_assert_int_eq(why, FLEET_REJECT_UNSIGNED);
	ck_assert_uint_eq(v, NOW + 3000); /* untouched by the failures */
	/* an instance: all 64 bits */
	n = fleet_value_encode_signed(FLEET_VALUE_PROBE, 0xfedcba9876543210ull, SECRET, id, NOW,
				      buf, sizeof(buf));
	ck_assert_int_eq(strncmp(buf, "probe fedcba9876543210 ", 23), 0);
	ck_assert_int_eq(fleet_value_decode_signed(FLEET_VALUE_PROBE, buf, (size_t)n, SECRET, id,
						   NOW, 5000, &v, &why),
			 0);
	ck_assert_uint_eq(v, 0xfedcba9876543210ull);
}
END_TEST

START_TEST(test_signed_eject)
{
	char id[FLEET_ID_MAX], other[FLEET_ID_MAX], buf[FLEET_MSG_MAX + 1], copy[FLEET_MSG_MAX + 1];
	enum fleet_reject why;
	struct fleet_msg m;
	uint64_t v = 0;
	char *at;
	int n;

	/* the message: every field covered by the MAC, the endpoint included */
	n = sign_msg(FLEET_MSG_EJECT, SECRET, NOW, buf);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(verdict(buf, (size_t)n, &m), -1);
	ck_assert_int_eq(m.kind, FLEET_MSG_EJECT);
	ck_assert_str_eq(m.endpoint, "127.0.0.2:8080");
	at = strstr(buf, "127.0.0.2:8080");
	at[8] = '3'; /* 127.0.0.3: another endpoint, same length */
	ck_assert_int_eq(verdict(buf, (size_t)n, &m), FLEET_REJECT_BAD_SIGNATURE);
	n = sign_msg(FLEET_MSG_EJECT, SECRET, NOW, buf);
	at = strstr(buf, "127.0.0.2:8080");
	at[1] = 'X'; /* signed or not, not an endpoint */
	ck_assert_int_eq(fleet_msg_decode_signed(buf, (size_t)n, SECRET, NOW, 2000, &m,
						 &(enum fleet_reject){ 0 }),
			 -EINVAL);

	/* the value */
	ck_assert_int_eq(fleet_profile_id(id, sizeof(id), "p", "http://a"), 0);
	ck_assert_int_eq(fleet_profile_id(other, sizeof(other), "p", "http://b"), 0);
	n = fleet_eject_value_encode_signed(NOW + 3000, "127.0.0.2:8080", SECRET, id, NOW, buf,
					    sizeof(buf));
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(strncmp(buf, "eject 1700000003000 127.0.0.2:8080 1700000000000 ", 49), 0);
	ck_assert_int_eq(fleet_eject_value_decode_signed(buf, (size_t)n, SECRET, id,
							 "127.0.0.2:8080", NOW + 4000, 5000, &v,
							 &why),
			 0);
	ck_assert_uint_eq(v, NOW + 3000);
	/* copied to another endpoint's key, or another profile's */
	ck_assert_int_eq(fleet_eject_value_decode_signed(buf, (size_t)n, SECRET, id,
							 "127.0.0.1:8080", NOW, 5000, &v, &why),
			 -EBADMSG);
	ck_assert_int_eq(why, FLEET_REJECT_BAD_SIGNATURE);
	ck_assert_int_eq(fleet_eject_value_decode_signed(buf, (size_t)n, SECRET, other,
							 "127.0.0.2:8080", NOW, 5000, &v, &why),
			 -EBADMSG);
	ck_assert_int_eq(why, FLEET_REJECT_BAD_SIGNATURE);
	/* a breaker window copied into an ejection's key, and back */
	n = fleet_value_encode_signed(FLEET_VALUE_BREAKER, NOW + 3000, SECRET, id, NOW, copy,
				      sizeof(copy));
	ck_assert_int_eq(fleet_eject_value_decode_signed(copy, (size_t)n, SECRET, id,
							 "127.0.0.2:8080", NOW, 5000, &v, &why),
			 -EBADMSG);
	ck_assert_int_eq(why, FLEET_REJECT_BAD_SIGNATURE);
	n = (int)strlen(buf);
	ck_assert_int_eq(fleet_value_decode_signed(FLEET_VALUE_BREAKER, buf, (size_t)n, SECRET, id,
						   NOW, 5000, &v, &why),
			 -EBADMSG);
	/* stale, unsigned, truncated */
	ck_assert_int_eq(fleet_eject_value_decode_signed(buf, (size_t)n, SECRET, id,
							 "127.0.0.2:8080", NOW + 5001, 5000, &v,
							 &why),
			 -EBADMSG);
	ck_assert_int_eq(why, FLEET_REJECT_STALE);
	ck_assert_int_eq(fleet_eject_value_decode_signed("1700000003000", 13, SECRET, id,
							 "127.0.0.2:8080", NOW, 5000, &v, &why),
			 -EBADMSG);
	ck_assert_int_eq(why, FLEET_REJECT_UNSIGNED);
	ck_assert_int_eq(fleet_eject_value_decode_signed(buf, (size_t)n - 1, SECRET, id,
							 "127.0.0.2:8080", NOW, 5000, &v, &why),
			 -EBADMSG);
	ck_assert_int_eq(why, FLEET_REJECT_UNSIGNED);
	ck_assert_uint_eq(v, NOW + 3000); /* untouched by the failures */
	/* no value for an endpoint no key can name */
	ck_assert_int_eq(
	    fleet_eject_value_encode_signed(NOW, "a b", SECRET, id, NOW, buf, sizeof(buf)),
	    -EINVAL);
}
END_TEST

START_TEST(test_parse_uint)
{
	uint64_t v;

	ck_assert_int_eq(fleet_parse_uint("1700000000000", 13, &v), 0);
	ck_assert_uint_eq(v, 1700000000000ull);
	ck_assert_int_lt(fleet_parse_uint("", 0, &v), 0);
	ck_assert_int_lt(fleet_parse_uint("12a", 3, &v), 0);
	ck_assert_int_lt(fleet_parse_uint("+1", 2, &v), 0);
	ck_assert_int_lt(fleet_parse_uint("12345678901234567890", 20, &v), 0);
}
END_TEST

START_TEST(test_buckets_and_budget)
{
	uint64_t first;
	uint32_t n;

	fleet_buckets(100500, 10000, &first, &n);
	ck_assert_uint_eq(n, 10);
	ck_assert_uint_eq(first, 91); /* seconds 91..100 */
	fleet_buckets(100500, 1500, &first, &n);
	ck_assert_uint_eq(n, 2);
	fleet_buckets(1700000000000ull, 24u * 3600 * 1000, &first, &n);
	ck_assert_uint_eq(n, FLEET_MAX_BUCKETS);
	fleet_buckets(500, 10000, &first, &n); /* never before second 0 */
	ck_assert_uint_eq(first, 0);
	ck_assert_uint_eq(n, 1);
	/* 0.2 × 90 + 1 × 10 = 28: the 28th retry fits, the 29th does not. */
	ck_assert(budget_allows(0.2, 1, 10000, 90, 27));
	ck_assert(!budget_allows(0.2, 1, 10000, 90, 28));
	/* One floor for the fleet, whatever the number of instances. */
	ck_assert(!budget_allows(0, 10, 10000, 0, 100));
	ck_assert(budget_allows(0.7, 0, 10000, 90, 62)); /* 0.7 × 90 is 63 */
}
END_TEST

START_TEST(test_backoff_and_clocks)
{
	struct rng rng;

	rng_seed(&rng, 7);
	for (unsigned n = 0; n < 40; n++) {
		for (int k = 0; k < 200; k++) {
			uint32_t w = fleet_backoff_ms(n, &rng);

			ck_assert_uint_le(w, n < 6 ? 100u << n : 5000);
			ck_assert_uint_ge(w, 10);
		}
	}
	ck_assert_uint_eq(fleet_wall_to_mono(2000, 1000, 50), 1050);
	ck_assert_uint_eq(fleet_wall_to_mono(500, 1000, 50), 50);
	ck_assert_str_eq(fleet_op_name(FLEET_OP_TIMEOUT), "timeout");
	ck_assert_str_eq(fleet_op_name(FLEET_OP__COUNT), "unknown");
}
END_TEST

/* ---- configuration ---- */

static struct config *load(const char *fleet, struct config_errors *errs)
{
	char text[1024];

	snprintf(text, sizeof(text),
		 "fleet:\n%s\nprofiles:\n  p:\n    upstream: http://127.0.0.1:9\n", fleet);
	config_errors_release(errs);
	return config_load_string("/etc/braced/braced.yaml", text, strlen(text), errs);
}

START_TEST(test_config_fleet)
{
	struct config_errors errs;
	struct config *cfg;
	const char *none = "profiles:\n  p:\n    upstream: http://127.0.0.1:9\n";

	memset(&errs, 0, sizeof(errs));
	cfg = config_load_string("/x.yaml", none, strlen(none), &errs);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_int_eq(cfg->fleet.enabled, 0); /* off by default */
	ck_assert_str_eq(cfg->fleet.key_prefix, "braced:");
	ck_assert_uint_eq(cfg->fleet.share, 7);
	ck_assert_uint_eq(cfg->fleet.timeout_ms, 50);
	ck_assert_uint_eq(cfg->fleet.sync_interval_ms, 100);
	config_unref(cfg);

	cfg = load("  redis: redis://localhost:6380/3\n  password: pw\n  key_prefix: \"x:\"\n"
		   "  share: [budget]\n  timeout: 20ms\n  sync_interval: 1s",
		   &errs);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_int_eq(cfg->fleet.enabled, 1);
	ck_assert_str_eq(cfg->fleet.host, "127.0.0.1");
	ck_assert_uint_eq(cfg->fleet.port, 6380);
	ck_assert_uint_eq(cfg->fleet.db, 3);
	ck_assert_str_eq(cfg->fleet.password, "pw");
	ck_assert_uint_eq(cfg->fleet.share, FLEET_SHARE_BUDGET);
	ck_assert_uint_eq(cfg->fleet.timeout_ms, 20);
	ck_assert_uint_eq(cfg->fleet.sync_interval_ms, 1000);
	{
		struct config *same = load("  redis: redis://localhost:6380/3\n  password: pw\n  "
					   "key_prefix: \"x:\"\n  share: [budget]\n  timeout: "
					   "20ms\n  sync_interval: 1s",
					   &errs);

		ck_assert(config_fleet_equal(&cfg->fleet, &same->fleet));
		config_unref(same);
	}
	config_unref(cfg);

	cfg = load("  redis: unix:/run/redis.sock", &errs);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_int_eq(cfg->fleet.unix_socket, 1);
	ck_assert_str_eq(cfg->fleet.path, "/run/redis.sock");
	config_unref(cfg);

	/* Without a secret: a warning at fleet.redis, the load goes on. */
	cfg = load("  redis: unix:/run/redis.sock\n  secret: \"\"", &errs);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_ptr_null(cfg->fleet.secret);
	ck_assert_uint_eq(errs.nwarnings, 1);
	ck_assert_ptr_nonnull(strstr(errs.warnings[0], "braced.yaml:2:10: warning: fleet.redis is "
						       "set without fleet.secret"));
	config_unref(cfg);
	cfg = load("  redis: unix:/run/redis.sock\n  secret: " SECRET
		   "\n  username: braced\n  password: pw",
		   &errs);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_str_eq(cfg->fleet.secret, SECRET);
	ck_assert_str_eq(cfg->fleet.username, "braced");
	ck_assert_uint_eq(errs.nwarnings, 0);
	{
		struct config *other = load("  redis: unix:/run/redis.sock\n  secret: " SECRET "x"
					    "\n  username: braced\n  password: pw",
					    &errs);

		ck_assert(!config_fleet_equal(&cfg->fleet, &other->fleet));
		config_unref(other);
	}
	config_unref(cfg);
	/* Too short a secret, a username without a password: errors that
	 * never show the secret. */
	cfg = load("  redis: off\n  secret: short-one\n  username: u", &errs);
	ck_assert_ptr_null(cfg);
	ck_assert_uint_eq(errs.count, 2);
	ck_assert_ptr_nonnull(strstr(errs.lines[0], "fleet.secret must be from 16"));
	ck_assert_ptr_null(strstr(errs.lines[0], "short-one"));
	ck_assert_ptr_nonnull(strstr(errs.lines[1], "fleet.username needs fleet.password"));

	cfg = load("  redis: redis://db.example:6379\n  sharee: [budget]", &errs);
	ck_assert_ptr_null(cfg);
	ck_assert_uint_eq(errs.count, 2);
	ck_assert_ptr_nonnull(strstr(errs.lines[0], "braced.yaml:2:10: "));
	ck_assert_ptr_nonnull(strstr(errs.lines[1], "did you mean 'share'?"));
	config_errors_release(&errs);
}
END_TEST

Suite *fleet_suite(void)
{
	Suite *s = suite_create("fleet");
	TCase *tc = tcase_create("fleet");

	tcase_add_test(tc, test_identity_and_keys);
	tcase_add_test(tc, test_message_round_trip);
	tcase_add_test(tc, test_hostile_messages_refused);
	tcase_add_test(tc, test_eject_messages);
	tcase_add_test(tc, test_eject_keys);
	tcase_add_test(tc, test_signed_messages);
	tcase_add_test(tc, test_signed_values);
	tcase_add_test(tc, test_signed_eject);
	tcase_add_test(tc, test_parse_uint);
	tcase_add_test(tc, test_buckets_and_budget);
	tcase_add_test(tc, test_backoff_and_clocks);
	tcase_add_test(tc, test_config_fleet);
	suite_add_tcase(s, tc);
	return s;
}
