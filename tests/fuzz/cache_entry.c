/* Fuzz target: a kept answer's blob (cacheentry.h). The input's first byte
 * picks how it is read:
 * - even: the rest is a blob. Decoding it never reads outside it; when it
 *   decodes, every view lies within it, and encoding what it holds gives
 *   the same bytes back (one encoding per entry).
 * - odd: the rest is an answer the upstream controls: "name:value" lines up
 *   to a blank line, then the body. Fields within the bounds encode, and
 *   decode to the same status, fields and body; an empty name or a field
 *   past a bound makes the entry unkeepable (size 0), never a short one. */
#include "cacheentry.h"
#include "fuzz.h"

static int within(const void *p, size_t len, const uint8_t *blob, size_t blen)
{
	const uint8_t *q = p;

	return len == 0 || (q >= blob && q + len <= blob + blen);
}

static void check_blob(const uint8_t *data, size_t size)
{
	static struct cacheentry_view v;
	uint8_t *copy = malloc(size ? size : 1), *again;
	size_t n;

	if (!copy)
		return;
	memcpy(copy, data, size);
	if (cacheentry_decode(copy, size, &v) == 0) {
		if (v.nfields > CACHEENTRY_FIELDS_MAX || !within(v.body, v.body_len, copy, size))
			abort();
		for (size_t i = 0; i < v.nfields; i++)
			if (!within(v.fields[i].name, v.fields[i].name_len, copy, size) ||
			    !within(v.fields[i].value, v.fields[i].value_len, copy, size) ||
			    v.fields[i].name_len > CACHEENTRY_NAME_MAX ||
			    v.fields[i].value_len > CACHEENTRY_VALUE_MAX)
				abort();
		n = cacheentry_size(v.fields, v.nfields, v.body_len);
		again = malloc(n ? n : 1);
		if (again) {
			if (n != size ||
			    cacheentry_encode(&v.meta, v.fields, v.nfields, v.body, v.body_len,
					      again, n) != size ||
			    memcmp(again, copy, size) != 0)
				abort();
			free(again);
		}
	}
	free(copy);
}

static void check_answer(const uint8_t *data, size_t size)
{
	static struct cacheentry_field f[CACHEENTRY_FIELDS_MAX + 8];
	static struct cacheentry_view v;
	const char *p = (const char *)data, *end = p + size;
	struct cacheentry_meta m = { .status = 200, .stored_at = 1785000000, .lifetime_s = 60 };
	size_t nf = 0, n, w;
	int over = 0;
	uint8_t *blob;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p)), *colon;

		if (!eol)
			eol = end;
		if (eol == p) {
			p++;
			break;
		}
		colon = memchr(p, ':', (size_t)(eol - p));
		if (colon && nf < sizeof(f) / sizeof(f[0])) {
			f[nf] = (struct cacheentry_field){ p, (size_t)(colon - p), colon + 1,
							   (size_t)(eol - colon - 1) };
			if (f[nf].name_len == 0 || f[nf].name_len > CACHEENTRY_NAME_MAX ||
			    f[nf].value_len > CACHEENTRY_VALUE_MAX)
				over = 1;
			nf++;
		}
		p = eol < end ? eol + 1 : end;
	}
	if (nf > CACHEENTRY_FIELDS_MAX)
		over = 1;
	n = cacheentry_size(f, nf, (size_t)(end - p));
	if (over != (n == 0))
		abort();
	if (!n)
		return;
	blob = malloc(n);
	if (!blob)
		return;
	w = cacheentry_encode(&m, f, nf, p, (size_t)(end - p), blob, n);
	if (w != n || cacheentry_decode(blob, n, &v) != 0 || v.meta.status != 200 ||
	    v.meta.lifetime_s != 60 || v.nfields != nf || v.body_len != (size_t)(end - p) ||
	    (v.body_len && memcmp(v.body, p, v.body_len) != 0))
		abort();
	for (size_t i = 0; i < nf; i++)
		if (v.fields[i].name_len != f[i].name_len ||
		    v.fields[i].value_len != f[i].value_len ||
		    memcmp(v.fields[i].name, f[i].name, f[i].name_len) != 0 ||
		    memcmp(v.fields[i].value, f[i].value, f[i].value_len) != 0)
			abort();
	/* cut short anywhere, it never decodes */
	if (cacheentry_decode(blob, n - 1, &v) == 0)
		abort();
	free(blob);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] & 1)
		check_answer(data + 1, size - 1);
	else
		check_blob(data + 1, size - 1);
	return 0;
}
