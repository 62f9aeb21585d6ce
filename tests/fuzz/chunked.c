/* Fuzz target: the strict decoder of chunked upstream bodies
 * (proto/chunked.h), fed as libcurl hands a body over, in blocks. The
 * input's first byte seeds the cutting; the rest is the raw body. Checked:
 * the cutting never changes the result (refused, or accepted with the same
 * data and bytes consumed); data is never longer than its framing; a block decoded again
 * from a saved state (a paused block delivered twice) gives the same data;
 * an accepted body's data, framed again in one chunk, decodes to itself;
 * every byte a refusal or the end leaves is never taken. */
#include <errno.h>
#include <stdio.h>

#include "chunked.h"
#include "fuzz.h"

#define FUZZ_CHUNKED_MAX (256 * 1024)

struct outcome {
	long consumed; /* or -EPROTO */
	int done;
	size_t data_len;
};

/* Decodes in[0, n) in blocks whose sizes come from seed; data to out. */
static struct outcome decode(const uint8_t *in, size_t n, unsigned seed, char *out)
{
	struct chunked c;
	struct outcome r = { 0, 0, 0 };
	size_t pos = 0;

	chunked_init(&c);
	while (pos < n) {
		size_t len = seed ? 1 + (seed * (pos + 7)) % 61 : n - pos, got = 0;
		struct chunked saved = c;
		long used;

		if (len > n - pos)
			len = n - pos;
		used = chunked_decode(&c, (const char *)in + pos, len, out + r.data_len, &got);
		if (used >= 0 && (seed & 1)) {
			/* delivered again from the state before: the same */
			size_t again = 0;
			long used2;
			char *tmp = malloc(len ? len : 1);

			c = saved;
			used2 = chunked_decode(&c, (const char *)in + pos, len, tmp, &again);
			if (used2 != used || again != got ||
			    memcmp(tmp, out + r.data_len, got) != 0)
				abort();
			free(tmp);
		}
		if (used < 0) {
			r.consumed = used;
			return r;
		}
		if ((size_t)used > len || got > (size_t)used)
			abort();
		r.data_len += got;
		pos += (size_t)used;
		if (c.done || (size_t)used < len)
			break;
	}
	r.consumed = (long)pos;
	r.done = c.done;
	if (r.done != (c.why == NULL && c.done))
		abort();
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outcome whole, cut;
	char *a, *b;

	if (size < 1 || size > FUZZ_CHUNKED_MAX)
		return 0;
	a = malloc(size);
	b = malloc(size);
	whole = decode(data + 1, size - 1, 0, a);
	cut = decode(data + 1, size - 1, (unsigned)data[0] + 1, b);
	/* Refused whatever the cutting; the data before a fault may have gone
	 * out in earlier blocks, so only an accepted body's data is compared. */
	if (whole.consumed != cut.consumed)
		abort();
	if (whole.consumed >= 0 && (whole.done != cut.done || whole.data_len != cut.data_len ||
				    memcmp(a, b, whole.data_len) != 0))
		abort();
	if (whole.done) {
		/* the data framed again as one chunk decodes to itself */
		size_t n = whole.data_len, len;
		char *framed = malloc(n + 64), *back = malloc(n + 64);
		struct outcome again;

		len = (size_t)snprintf(framed, 64, "%zx\r\n", n);
		memcpy(framed + len, a, n);
		memcpy(framed + len + n, "\r\n0\r\n\r\n", 7);
		len += n + 7;
		if (n == 0)
			len = (size_t)snprintf(framed, 64, "0\r\n\r\n");
		again = decode((const uint8_t *)framed, len, 0, back);
		if (!again.done || again.data_len != n || memcmp(back, a, n) != 0)
			abort();
		free(framed);
		free(back);
	}
	free(a);
	free(b);
	return 0;
}
