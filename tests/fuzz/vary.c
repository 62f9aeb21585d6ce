/* Fuzz target: cachecontrol_vary_parse() over the input's lines (one Vary
 * field line each, up to LINES_MAX). The result is the same read twice, "*"
 * keeps no name, at most CACHECONTROL_VARY_MAX names are kept, each a
 * non-empty lowercase token within its bound and listed once, and the first
 * two lines read as one joined with ", " give the same. */
#include "ascii.h"
#include "cachecontrol.h"
#include "fuzz.h"

#define LINES_MAX 8

static void parse(const struct cachecontrol_line *l, size_t n, struct cachecontrol_vary *ret)
{
	struct cachecontrol_vary again;

	cachecontrol_vary_parse(l, n, ret);
	cachecontrol_vary_parse(l, n, &again);
	if (memcmp(ret, &again, sizeof(again)) != 0)
		abort();
	if ((unsigned)ret->star > 1 || ret->n > CACHECONTROL_VARY_MAX || (ret->star && ret->n))
		abort();
	for (size_t i = 0; i < ret->n; i++) {
		const char *name = ret->names[i];
		size_t len = strnlen(name, sizeof(ret->names[i]));

		if (len == 0 || len > CACHECONTROL_VARY_NAME_MAX || (len == 1 && name[0] == '*'))
			abort();
		for (size_t k = 0; k < len; k++)
			if (!ascii_is_tchar((unsigned char)name[k]) ||
			    (name[k] >= 'A' && name[k] <= 'Z'))
				abort();
		for (size_t j = 0; j < i; j++)
			if (strcmp(ret->names[j], name) == 0)
				abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cachecontrol_line l[LINES_MAX];
	char *copy[LINES_MAX];
	size_t lens[LINES_MAX];
	struct cachecontrol_vary v, joined;
	size_t n = fuzz_lines(data, size, copy, lens, LINES_MAX);

	for (size_t i = 0; i < n; i++)
		l[i] = (struct cachecontrol_line){ copy[i], lens[i] };
	parse(l, n, &v);
	if (n >= 2 && l[0].len + 2 + l[1].len <= CACHECONTROL_LINE_MAX) {
		size_t len = l[0].len + 2 + l[1].len;
		char *buf = malloc(len);
		struct cachecontrol_line one = { buf, len };

		if (!buf)
			goto out;
		memcpy(buf, l[0].p, l[0].len);
		memcpy(buf + l[0].len, ", ", 2);
		memcpy(buf + l[0].len + 2, l[1].p, l[1].len);
		parse(l, 2, &v);
		parse(&one, 1, &joined);
		free(buf);
		if (memcmp(&v, &joined, sizeof(v)) != 0)
			abort();
	}
out:
	fuzz_free_lines(copy, n);
	return 0;
}
