/* Header rules of SPEC 3 (request/response drop lists, names listed in a
 * Connection value, value and correlation id checks, token lists) and the
 * seeded random source: UUIDv4 text, reproducible sequences, rng_below's
 * bounds and uniformity. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "headers.h"
#include "rng.h"
#include "suites.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- request and response drop lists ---------------------------------- */

struct drop_case {
	const char *name;
	const char *connection; /* the message's Connection value, or NULL */
	int request, response;  /* expected drop decisions */
};

static const struct drop_case drop_cases[] = {
	/* hop-by-hop, any case */
	{ "Connection", NULL, 1, 1 },
	{ "connection", NULL, 1, 1 },
	{ "Keep-Alive", NULL, 1, 1 },
	{ "KEEP-ALIVE", NULL, 1, 1 },
	{ "Proxy-Connection", NULL, 1, 1 },
	{ "TE", NULL, 1, 1 },
	{ "te", NULL, 1, 1 },
	{ "Trailer", NULL, 1, 1 },
	{ "Transfer-Encoding", NULL, 1, 1 },
	{ "transfer-encoding", NULL, 1, 1 },
	{ "Upgrade", NULL, 1, 1 },
	/* braced frames both ends itself */
	{ "Content-Length", NULL, 1, 1 },
	{ "content-length", NULL, 1, 1 },
	/* request only */
	{ "Host", NULL, 1, 0 },
	{ "HOST", NULL, 1, 0 },
	{ "Expect", NULL, 1, 0 },
	/* braced's own headers: never forwarded, never taken from the upstream */
	{ "Brace-Timeout-Ms", NULL, 1, 1 },
	{ "brace-max-attempts", NULL, 1, 1 },
	{ "BRACE-Anything", NULL, 1, 1 },
	/* forwarded */
	{ "Accept", NULL, 0, 0 },
	{ "Authorization", NULL, 0, 0 },
	{ "Content-Type", NULL, 0, 0 },
	{ "X-Correlation-ID", NULL, 0, 0 },
	{ "Idempotency-Key", NULL, 0, 0 },
	{ "Trailers", NULL, 0, 0 },
	{ "Braces", NULL, 0, 0 },
	{ "Brace", NULL, 0, 0 },
	{ "X-Brace-Id", NULL, 0, 0 },
	{ "Hostname", NULL, 0, 0 },
	{ "Server-Timing", NULL, 0, 0 },
	/* named by Connection, odd spacing and case */
	{ "X-Foo", "close, X-Foo", 1, 1 },
	{ "x-foo", "close,X-FOO", 1, 1 },
	{ "X-Foo", "  x-foo  ", 1, 1 },
	{ "X-Foo", "\tX-Foo\t,close", 1, 1 },
	{ "X-Foo", "keep-alive ,  ,, x-foo ,", 1, 1 },
	{ "X-Bar", "close, X-Foo, x-bar", 1, 1 },
	{ "X-Foo", "close, X-Foobar", 0, 0 },
	{ "X-Foo", "close, X-Fo", 0, 0 },
	{ "X-Foo", "close, X-Foo-Bar", 0, 0 },
	{ "X-Foo", "close X-Foo", 0, 0 },
	{ "X-Foo", "", 0, 0 },
	{ "X-Foo", "close", 0, 0 },
	{ "Accept", "keep-alive", 0, 0 },
};

START_TEST(test_drop_table)
{
	const struct drop_case *c = &drop_cases[_i];

	ck_assert_msg(headers_request_dropped(c->name, c->connection) == c->request,
		      "request %s (Connection: %s): expected %s", c->name,
		      c->connection ? c->connection : "-", c->request ? "dropped" : "kept");
	ck_assert_msg(headers_response_dropped(c->name, c->connection) == c->response,
		      "response %s (Connection: %s): expected %s", c->name,
		      c->connection ? c->connection : "-", c->response ? "dropped" : "kept");
}
END_TEST

START_TEST(test_hop_by_hop)
{
	static const char *const hop[] = { "Connection", "Keep-Alive", "Proxy-Connection",
					   "TE",         "Trailer",    "Transfer-Encoding",
					   "Upgrade",    "upgrade" };
	static const char *const not_hop[] = { "Host",
					       "Content-Length",
					       "Expect",
					       "Brace-X",
					       "Proxy-Authorization",
					       "Trailers",
					       "T",
					       "" };

	for (int i = 0; i < N(hop); i++)
		ck_assert_msg(headers_is_hop_by_hop(hop[i]), "%s is hop-by-hop", hop[i]);
	for (int i = 0; i < N(not_hop); i++)
		ck_assert_msg(!headers_is_hop_by_hop(not_hop[i]), "%s is not hop-by-hop",
			      not_hop[i]);
}
END_TEST

/* ---- values ------------------------------------------------------------ */

START_TEST(test_value_ok)
{
	static const char *const good[] = {
		"",
		"text/plain",
		"a\tb",
		"\t",
		"Bearer abc.def-ghi_123~+/=",
		"caf\xc3\xa9",
		"\x80\xff",
		" leading and trailing ",
		"~!@#$%^&*()",
	};
	static const char *const bad[] = {
		"a\rb",
		"a\nb",
		"a\r\nX-Injected: 1",
		"\r",
		"\n",
		"a\x01",
		"\x1f",
		"a\x7f"
		"b",
		"\x0b",
		"\x0c",
		"\x1b[31m",
	};

	for (int i = 0; i < N(good); i++)
		ck_assert_msg(headers_value_ok(good[i]) == 1, "value %d should pass", i);
	for (int i = 0; i < N(bad); i++)
		ck_assert_msg(headers_value_ok(bad[i]) == 0, "value %d should be rejected", i);
}
END_TEST

START_TEST(test_value_every_byte)
{
	for (int c = 1; c < 256; c++) {
		char v[4] = { 'a', (char)c, 'b', '\0' };
		int want = !((c < 0x20 && c != '\t') || c == 0x7f);

		ck_assert_msg(headers_value_ok(v) == want, "byte 0x%02x: expected %d", c, want);
	}
}
END_TEST

/* ---- names and the upstream answer's framing ---------------------------- */

START_TEST(test_name_every_byte)
{
	static const char tchars[] = "!#$%&'*+-.^_`|~";

	for (int c = 1; c < 256; c++) {
		char v[4] = { 'X', (char)c, 'y', '\0' };
		int want = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
			   (c >= 'A' && c <= 'Z') || strchr(tchars, c) != NULL;

		ck_assert_msg(headers_name_ok(v, 3) == want, "byte 0x%02x: expected %d", c, want);
	}
	ck_assert_int_eq(headers_name_ok("", 0), 0);
	ck_assert_int_eq(headers_name_ok("Transfer-Encoding ", 18), 0);
	ck_assert_int_eq(headers_name_ok("Transfer-Encoding", 17), 1);
	ck_assert_int_eq(headers_name_ok("a\0b", 3), 0);
}
END_TEST

/* An answer as libcurl hands it over, one line per entry, and the line at
 * which the check must refuse it (-1: accepted whole). */
static const struct answer_case {
	const char *lines[6];
	int refused_at;
	const char *why; /* a word of the reason */
} answer_cases[] = {
	{ { "HTTP/1.1 200 OK\r\n", "Content-Length: 2\r\n", "\r\n" }, -1, NULL },
	{ { "HTTP/2 200 \r\n", "content-type: text/plain\r\n", "\r\n" }, -1, NULL },
	{ { "HTTP/1.1 204\r\n", "\r\n" }, -1, NULL },
	{ { "HTTP/1.0 599 Weird\n", "X: y\n", "\n" }, -1, NULL },
	{ { "HTTP/1.1 100 Continue\r\n", "\r\n", "HTTP/1.1 200 OK\r\n", "A: b\r\n", "\r\n" },
	  -1,
	  NULL },
	{ { "HTTP/1.1 200 OK\r\n", "Content-Length: 5, 5\r\n", "\r\n" }, -1, NULL },
	{ { "HTTP/1.1 200 OK\r\n", "Content-Length: 5\r\n", "content-length: 5\r\n", "\r\n" },
	  -1,
	  NULL },
	{ { "HTTP/1.1 200 OK\r\n", "Transfer-Encoding: chunked\r\n", "\r\n", "Trailer-A: 1\r\n",
	    "\r\n" },
	  -1,
	  NULL },
	{ { "HTTP/1.1 200 OK\r\n", "X: caf\xc3\xa9\tok\r\n", "\r\n" }, -1, NULL },
	{ { "HTTP/1.1 200 OK\r\n", "transfer-encoding:  Chunked \t\r\n", "\r\n" }, -1, NULL },
	/* refused */
	{ { "HTTP/1.1 200 OK\r\n", " X-Injected: yes\r\n" }, 1, "obs-fold" },
	{ { "HTTP/1.1 200 OK\r\n", "A: b\r\n", "\tcontinued\r\n" }, 2, "obs-fold" },
	{ { "HTTP/1.1 200 OK\r\n", "Transfer-Encoding : chunked\r\n" }, 1, "token" },
	{ { "HTTP/1.1 200 OK\r\n", "X\x01Y: 1\r\n" }, 1, "token" },
	{ { "HTTP/1.1 200 OK\r\n", ": empty\r\n" }, 1, "token" },
	{ { "HTTP/1.1 200 OK\r\n", "no colon here\r\n" }, 1, "colon" },
	{ { "HTTP/1.1 200 OK\r\n", "X: a\rb\r\n" }, 1, "control" },
	{ { "HTTP/1.1 200 OK\r\n", "X: a\x7f\r\n" }, 1, "control" },
	{ { "HTTP/1.1 999 Odd\r\n" }, 0, "100-599" },
	{ { "HTTP/1.1 099 Low\r\n" }, 0, "100-599" },
	{ { "HTTP/1.1 2000 OK\r\n" }, 0, "three digits" },
	{ { "HTTP/1.1 20 OK\r\n" }, 0, "three digits" },
	{ { "HTTP/1.1 101 Switching Protocols\r\n" }, 0, "101" },
	{ { "HTTP/x 200 OK\r\n" }, 0, "version" },
	{ { "HTTP/1.1 200 O\x01K\r\n" }, 0, "control" },
	{ { "HTTP/1.1 200 OK\r\n", "Content-Length: 5\r\n", "Content-Length: 10\r\n" },
	  2,
	  "differing" },
	{ { "HTTP/1.1 200 OK\r\n", "Content-Length: 5, 6\r\n" }, 1, "differing" },
	{ { "HTTP/1.1 200 OK\r\n", "Content-Length: +5\r\n" }, 1, "number" },
	{ { "HTTP/1.1 200 OK\r\n", "Content-Length: 0x10\r\n" }, 1, "number" },
	{ { "HTTP/1.1 200 OK\r\n", "Content-Length:\r\n" }, 1, "number" },
	{ { "HTTP/1.1 200 OK\r\n", "Content-Length: 1234567890123456789\r\n" }, 1, "too long" },
	{ { "HTTP/1.1 200 OK\r\n", "Content-Length: 3\r\n", "Transfer-Encoding: chunked\r\n",
	    "\r\n" },
	  3,
	  "Transfer-Encoding" },
	{ { "X: before\r\n" }, 0, "before the status" },
	/* a transfer coding other than chunked: libcurl would decode it */
	{ { "HTTP/1.1 200 OK\r\n", "Transfer-Encoding: gzip, chunked\r\n", "\r\n" },
	  1,
	  "Transfer-Encoding" },
	{ { "HTTP/1.1 200 OK\r\n", "Transfer-Encoding: chunked, chunked\r\n", "\r\n" },
	  1,
	  "Transfer-Encoding" },
	{ { "HTTP/1.1 200 OK\r\n", "Transfer-Encoding: identity\r\n", "\r\n" },
	  1,
	  "Transfer-Encoding" },
	{ { "HTTP/1.1 200 OK\r\n", "Transfer-Encoding: gzip\r\n", "\r\n" },
	  1,
	  "Transfer-Encoding" },
	{ { "HTTP/1.1 200 OK\r\n", "Transfer-Encoding:\r\n", "\r\n" }, 1, "Transfer-Encoding" },
	{ { "HTTP/1.1 200 OK\r\n", "Transfer-Encoding: chunked\r\n",
	    "Transfer-Encoding: chunked\r\n", "\r\n" },
	  2,
	  "Transfer-Encoding" },
	{ { "HTTP/1.1 200 OK\r\n", "Transfer-Encoding: gzip\r\n", "Transfer-Encoding: chunked\r\n",
	    "\r\n" },
	  1,
	  "Transfer-Encoding" },
	/* a second status line among the headers or trailers restarts nothing */
	{ { "HTTP/1.1 200 OK\r\n", "Transfer-Encoding: chunked\r\n", "HTTP/1.1 200 a:b\r\n",
	    "Content-Length: 5\r\n", "\r\n" },
	  2,
	  "token" },
	{ { "HTTP/1.1 200 OK\r\n", "Transfer-Encoding: chunked\r\n", "\r\n", "HTTP/1.1 200 a:b\r\n",
	    "X-From-Trailer: yes\r\n" },
	  3,
	  "token" },
};

START_TEST(test_answer_table)
{
	const struct answer_case *c = &answer_cases[_i];
	struct headers_check hc;
	int refused_at = -1;

	headers_check_init(&hc);
	for (int i = 0; i < 6 && c->lines[i]; i++) {
		if (headers_check_line(&hc, c->lines[i], strlen(c->lines[i])) < 0) {
			refused_at = i;
			break;
		}
	}
	ck_assert_msg(refused_at == c->refused_at, "case %d: refused at line %d, expected %d (%s)",
		      _i, refused_at, c->refused_at, hc.why ? hc.why : "-");
	if (c->why)
		ck_assert_msg(hc.why && strstr(hc.why, c->why), "case %d: reason '%s' lacks '%s'",
			      _i, hc.why ? hc.why : "-", c->why);
}
END_TEST

START_TEST(test_answer_content_length)
{
	struct headers_check hc;
	const char *cl = "Content-Length: 123456789012345678\r\n";

	headers_check_init(&hc);
	ck_assert_int_eq(headers_check_line(&hc, "HTTP/1.1 200 OK\r\n", 17), 0);
	ck_assert_int_eq(headers_check_line(&hc, cl, strlen(cl)), 0);
	ck_assert_uint_eq(hc.content_length, 123456789012345678ULL);
	ck_assert_int_eq(hc.status, 200);
}
END_TEST

START_TEST(test_correlation_ok)
{
	char s[200];

	ck_assert_int_eq(headers_correlation_ok("a"), 1);
	ck_assert_int_eq(headers_correlation_ok("0d6f1c3e-6b7a-4c47-9a9e-2f0b3a5f7c11"), 1);
	ck_assert_int_eq(headers_correlation_ok("req-42/abc:def;x=1"), 1);
	ck_assert_int_eq(headers_correlation_ok("!~"), 1);

	ck_assert_int_eq(headers_correlation_ok(""), 0);
	ck_assert_int_eq(headers_correlation_ok("a b"), 0);
	ck_assert_int_eq(headers_correlation_ok(" a"), 0);
	ck_assert_int_eq(headers_correlation_ok("a\t"), 0);
	ck_assert_int_eq(headers_correlation_ok("a\x7f"), 0);
	ck_assert_int_eq(headers_correlation_ok("a\x01"), 0);
	ck_assert_int_eq(headers_correlation_ok("caf\xc3\xa9"), 0);
	ck_assert_int_eq(headers_correlation_ok("\xff"), 0);

	memset(s, 'x', sizeof(s));
	s[HEADERS_CORRELATION_MAX] = '\0';
	ck_assert_int_eq(headers_correlation_ok(s), 1); /* 128 */
	s[HEADERS_CORRELATION_MAX] = 'x';
	s[HEADERS_CORRELATION_MAX + 1] = '\0';
	ck_assert_int_eq(headers_correlation_ok(s), 0); /* 129 */
	s[HEADERS_CORRELATION_MAX - 1] = ' ';
	s[HEADERS_CORRELATION_MAX] = '\0';
	ck_assert_int_eq(headers_correlation_ok(s), 0); /* 128 with a space */
}
END_TEST

START_TEST(test_correlation_every_byte)
{
	for (int c = 1; c < 256; c++) {
		char v[4] = { 'a', (char)c, 'b', '\0' };
		int want = c >= 0x21 && c <= 0x7e;

		ck_assert_msg(headers_correlation_ok(v) == want, "byte 0x%02x: expected %d", c,
			      want);
	}
}
END_TEST

START_TEST(test_list_contains)
{
	ck_assert_int_eq(headers_list_contains("close", "close"), 1);
	ck_assert_int_eq(headers_list_contains("close", "CLOSE"), 1);
	ck_assert_int_eq(headers_list_contains("a, b, c", "b"), 1);
	ck_assert_int_eq(headers_list_contains("a,b,c", "c"), 1);
	ck_assert_int_eq(headers_list_contains(" a ,\tb\t, c ", "b"), 1);
	ck_assert_int_eq(headers_list_contains(",,a,,", "a"), 1);
	ck_assert_int_eq(headers_list_contains("gzip, deflate", "deflate"), 1);

	ck_assert_int_eq(headers_list_contains("", "a"), 0);
	ck_assert_int_eq(headers_list_contains(NULL, "a"), 0);
	ck_assert_int_eq(headers_list_contains("ab, ba", "a"), 0);
	ck_assert_int_eq(headers_list_contains("a b", "a"), 0);
	ck_assert_int_eq(headers_list_contains("abc", "ab"), 0);
	ck_assert_int_eq(headers_list_contains("ab", "abc"), 0);
	ck_assert_int_eq(headers_list_contains(", ,", "a"), 0);
}
END_TEST

/* An upstream's Server-Timing without the entries braced writes itself. */
static const struct {
	const char *in, *out;
} timing_cases[] = {
	{ "db;dur=53", "db;dur=53" },
	{ "upstream;dur=0.1", "" },
	{ "total;dur=1", "" },
	{ "Upstream;dur=0.1, TOTAL", "" },
	{ "upstream;dur=0.1, db;dur=53, total;dur=1", "db;dur=53" },
	{ "db;dur=53, upstream;dur=0.1, cache;desc=hit", "db;dur=53, cache;desc=hit" },
	{ "miss, db;dur=53", "miss, db;dur=53" },
	{ "a,b", "a,b" },
	{ "  upstream , db  ", "db" },
	/* a quoted comma does not end an entry, nor does an escaped quote */
	{ "cache;desc=\"a, upstream\", total", "cache;desc=\"a, upstream\"" },
	{ "x;desc=\"q\\\", upstream\", db", "x;desc=\"q\\\", upstream\", db" },
	/* longer names are other entries */
	{ "upstreams;dur=1, totally", "upstreams;dur=1, totally" },
	/* entries with no name are dropped */
	{ ";dur=1, , db", "db" },
	{ "", "" },
	{ ",,,", "" },
};

START_TEST(test_server_timing_keep)
{
	const char *in = timing_cases[_i].in;
	char *out = malloc(strlen(in) + 1);
	size_t n;

	n = headers_server_timing_keep(in, out);
	ck_assert_msg(strcmp(out, timing_cases[_i].out) == 0, "'%s' gave '%s', expected '%s'", in,
		      out, timing_cases[_i].out);
	ck_assert_uint_eq(n, strlen(out));
	ck_assert_uint_le(n, strlen(in));
	free(out);
}
END_TEST

/* ---- rng ---------------------------------------------------------------- */

static void assert_uuid4(const char *u)
{
	ck_assert_uint_eq(strlen(u), RNG_UUID_LEN);
	for (int i = 0; i < RNG_UUID_LEN; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			ck_assert_msg(u[i] == '-', "%s: '-' expected at %d", u, i);
			continue;
		}
		ck_assert_msg((u[i] >= '0' && u[i] <= '9') || (u[i] >= 'a' && u[i] <= 'f'),
			      "%s: lowercase hex expected at %d", u, i);
	}
	ck_assert_msg(u[14] == '4', "%s: version nibble must be 4", u);
	ck_assert_msg(strchr("89ab", u[19]) != NULL, "%s: variant nibble must be 8-b", u);
}

START_TEST(test_uuid4_format)
{
	struct rng r;
	char u[RNG_UUID_LEN + 1], prev[RNG_UUID_LEN + 1] = "";
	int variants[4] = { 0 };

	rng_seed(&r, 42);
	for (int i = 0; i < 2000; i++) {
		memset(u, 'Z', sizeof(u));
		rng_uuid4(&r, u);
		assert_uuid4(u);
		ck_assert_str_ne(u, prev);
		variants[strchr("89ab", u[19]) - "89ab"]++;
		memcpy(prev, u, sizeof(u));
	}
	for (int i = 0; i < 4; i++)
		ck_assert_msg(variants[i] > 0, "variant nibble %c never drawn", "89ab"[i]);
}
END_TEST

START_TEST(test_uuid4_os_seed)
{
	struct rng a, b;
	char ua[RNG_UUID_LEN + 1], ub[RNG_UUID_LEN + 1];

	ck_assert_int_eq(rng_seed_os(&a), 0);
	ck_assert_int_eq(rng_seed_os(&b), 0);
	rng_uuid4(&a, ua);
	rng_uuid4(&b, ub);
	assert_uuid4(ua);
	assert_uuid4(ub);
	ck_assert_str_ne(ua, ub);
}
END_TEST

START_TEST(test_seeded_sequences)
{
	struct rng a, b, c;
	char ua[RNG_UUID_LEN + 1], ub[RNG_UUID_LEN + 1];
	int differs = 0;

	rng_seed(&a, 12345);
	rng_seed(&b, 12345);
	rng_seed(&c, 12346);
	for (int i = 0; i < 1000; i++) {
		uint64_t x = rng_next(&a), y = rng_next(&b), z = rng_next(&c);

		ck_assert_uint_eq(x, y);
		differs |= x != z;
	}
	ck_assert_msg(differs, "different seeds gave the same sequence");
	for (int i = 0; i < 100; i++) {
		ck_assert_uint_eq(rng_below(&a, 1000), rng_below(&b, 1000));
		rng_uuid4(&a, ua);
		rng_uuid4(&b, ub);
		ck_assert_str_eq(ua, ub);
	}
	/* Seed 0 must not give the all-zero (stuck) state. */
	rng_seed(&a, 0);
	ck_assert_uint_ne(rng_next(&a) | rng_next(&a) | rng_next(&a), 0);
}
END_TEST

START_TEST(test_below_bounds)
{
	static const uint64_t bounds[] = { 1,         2,    3,          7,
					   10,        1000, 1ULL << 32, (1ULL << 63) + 1,
					   UINT64_MAX };
	struct rng r;

	rng_seed(&r, 7);
	ck_assert_uint_eq(rng_below(&r, 0), 0);
	for (int i = 0; i < N(bounds); i++)
		for (int j = 0; j < 10000; j++) {
			uint64_t v = rng_below(&r, bounds[i]);

			ck_assert_msg(v < bounds[i], "rng_below(%llu) gave %llu",
				      (unsigned long long)bounds[i], (unsigned long long)v);
		}
	for (int j = 0; j < 1000; j++)
		ck_assert_uint_eq(rng_below(&r, 1), 0);
}
END_TEST

START_TEST(test_below_uniform)
{
	enum { BUCKETS = 10, DRAWS = 100000 };
	struct rng r;
	unsigned counts[BUCKETS] = { 0 };
	double expected = (double)DRAWS / BUCKETS, chi2 = 0;
	unsigned hits2[2] = { 0 };

	rng_seed(&r, 1);
	for (int i = 0; i < DRAWS; i++)
		counts[rng_below(&r, BUCKETS)]++;
	for (int i = 0; i < BUCKETS; i++)
		chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
	/* 9 degrees of freedom: p = 1e-6 is about 46. The seed is fixed, so this
	 * only trips on a real bias (e.g. a broken reduction). */
	ck_assert_msg(chi2 < 50.0, "chi-square %.1f over %d buckets", chi2, BUCKETS);
	for (int i = 0; i < BUCKETS; i++)
		ck_assert_msg(counts[i] > 9000 && counts[i] < 11000, "bucket %d has %u", i,
			      counts[i]);

	/* With n = 3 * 2^62, a plain modulo reduction would put 62.5% of the
	 * draws in the lower half of [0, n); an unbiased one puts 50%. */
	for (int i = 0; i < DRAWS; i++)
		hits2[rng_below(&r, (1ULL << 63) + (1ULL << 62)) >= (1ULL << 62) + (1ULL << 61)]++;
	ck_assert_msg(hits2[0] > 48000 && hits2[0] < 52000, "halves %u / %u", hits2[0], hits2[1]);
}
END_TEST

Suite *headers_suite(void)
{
	Suite *s = suite_create("headers");
	TCase *tc = tcase_create("drop");

	tcase_add_loop_test(tc, test_drop_table, 0, N(drop_cases));
	tcase_add_test(tc, test_hop_by_hop);
	suite_add_tcase(s, tc);

	tc = tcase_create("values");
	tcase_add_test(tc, test_value_ok);
	tcase_add_test(tc, test_value_every_byte);
	tcase_add_test(tc, test_correlation_ok);
	tcase_add_test(tc, test_correlation_every_byte);
	tcase_add_test(tc, test_list_contains);
	tcase_add_loop_test(tc, test_server_timing_keep, 0, N(timing_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("framing");
	tcase_add_test(tc, test_name_every_byte);
	tcase_add_loop_test(tc, test_answer_table, 0, N(answer_cases));
	tcase_add_test(tc, test_answer_content_length);
	suite_add_tcase(s, tc);

	tc = tcase_create("rng");
	tcase_add_test(tc, test_uuid4_format);
	tcase_add_test(tc, test_uuid4_os_seed);
	tcase_add_test(tc, test_seeded_sequences);
	tcase_add_test(tc, test_below_bounds);
	tcase_add_test(tc, test_below_uniform);
	suite_add_tcase(s, tc);
	return s;
}
